use retry_pool::pooled;

fn is_transient(error: &std::fmt::Error) -> bool {
    let _ = error;
    true
}

#[pooled(concurrency = 8, retry = "lifo", retry_if = is_transient)]
async fn fetch(urls: Vec<String>) -> Result<usize, std::io::Error> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
