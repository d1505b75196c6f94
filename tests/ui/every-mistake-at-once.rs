use retry_pool::pooled;

// Each mistake is reported, in one build.
#[pooled(concurency = 8, retry = "lifoo", attempts = 0, timeout = "2 s")]
async fn fetch(urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(|url| async move || Ok(url.len()))
}

fn main() {}
