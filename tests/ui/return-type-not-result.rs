use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "lifo")]
async fn lengths(urls: Vec<String>) -> usize {
    urls.into_iter().map(|url| async move || url.len())
}

fn main() {}
