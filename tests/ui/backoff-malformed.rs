use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "lifo", backoff = "50 millis")]
async fn fetch(urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
