use retry_pool::pooled;

#[pooled(concurrency = 8)]
async fn lengths(urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(|url| url.len())
}

fn main() {}
