use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "lifo", timeout = "0.5ns")]
async fn fetch(urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
