use retry_pool::pooled;

fn retry_after_header(_: &std::io::Error) -> Option<std::time::Duration> {
    None
}

#[pooled(concurrency = 8, retry = "lifo", retry_if = retry_after_header)]
async fn fetch(urls: Vec<String>) -> Result<usize, std::io::Error> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
