use retry_pool::pooled;

#[pooled(concurrency = 8)]
async fn fetch(urls: Vec<String>) {
    urls.into_iter()
        .map(|url| async move { Ok::<_, ()>(url.len()) })
}

fn main() {}
