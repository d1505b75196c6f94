use retry_pool::pooled;

#[pooled(concurrency = 8, rate = 100)]
async fn fetch(urls: Vec<String>) -> Result<usize, std::io::Error> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
