use retry_pool::pooled;

#[pooled(concurrency = 8, retry = "fifo")]
async fn lengths(urls: Vec<String>) -> Result<usize, ()> {
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|url| async move { Ok(url.len()) })
        .collect();
    tasks
}

fn main() {}
