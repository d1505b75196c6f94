use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "lifo")]
async fn lengths(urls: Vec<String>, limit: usize) -> Result<usize, ()> {
    let limit: u32 = limit;
    urls.into_iter()
        .take(limit as usize)
        .map(|url| async move || Ok(url.len()))
}

fn main() {}
