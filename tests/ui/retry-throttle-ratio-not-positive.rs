use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "lifo", retry_throttle = (10, 0.0))]
async fn fetch(urls: Vec<String>) -> Result<usize, std::io::Error> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
