use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "lifo")]
async fn lengths(urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(|url| async move || Ok(url.clone()))
}

fn main() {}
