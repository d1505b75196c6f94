use retry_pool::pooled;

fn is_transient(_: &std::io::Error) -> bool {
    true
}

#[pooled(concurrency = 8, retry = "lifo", retry_after = is_transient)]
async fn fetch(urls: Vec<String>) -> Result<usize, std::io::Error> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
