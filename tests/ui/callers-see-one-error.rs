use futures::StreamExt;
use retry_pool::pooled;

struct Client;

impl Client {
    async fn get(&self, url: &str) -> Result<usize, std::io::Error> {
        Ok(url.len())
    }
}

// The mistake is in the attribute: the function still returns its stream, so the code
// that calls it and uses the stream adds no error.
#[pooled(concurrency = 8, retry = "lifoo")]
async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<usize, std::io::Error> {
    urls.into_iter()
        .map(move |url| async move || client.get(&url).await)
}

#[tokio::main]
async fn main() {
    let client = Client;
    let mut pages = fetch_all(&client, vec!["a".into()]);
    while let Some(done) = pages.next().await {
        match done {
            Ok(length) => println!("{length}"),
            Err(failure) => eprintln!(
                "#{} after {}: {failure}",
                failure.index(),
                failure.attempts()
            ),
        }
    }
    let static_client: &'static Client = Box::leak(Box::new(Client));
    tokio::spawn(fetch_all(static_client, Vec::new()).count())
        .await
        .unwrap();
}
