use retry_pool::pooled;

// The tasks borrow a local of the body: a spawned pool's tasks must own what they use.
#[pooled(concurrency = 4, spawn = true)]
async fn lengths(urls: Vec<String>) -> Result<usize, ()> {
    let prefix = String::from("https://");
    let prefix = &prefix;
    urls.into_iter()
        .map(move |url| async move { Ok(prefix.len() + url.len()) })
}

fn main() {}
