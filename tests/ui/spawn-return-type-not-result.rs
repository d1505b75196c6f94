use retry_pool::pooled;

// Reported once, by the signature, as without `spawn`.
#[pooled(concurrency = 8, retry = "lifo", spawn = true)]
async fn lengths(urls: Vec<String>) -> usize {
    urls.into_iter().map(|url| async move || url.len())
}

fn main() {}
