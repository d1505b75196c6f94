use retry_pool::pooled;

struct Client;

impl Client {
    async fn get(&self, url: &str) -> Result<usize, ()> {
        Ok(url.len())
    }
}

// The tasks borrow `client`, but a spawned pool's tasks must be `'static`.
#[pooled(concurrency = 4, retry = "lifo", spawn = true)]
async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter()
        .map(move |url| async move || client.get(&url).await)
}

fn main() {
    let client = Client;
    let _pages = fetch_all(&client, Vec::new());
}
