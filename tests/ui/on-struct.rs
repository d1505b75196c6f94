use retry_pool::pooled;

#[pooled(concurrency = 8)]
struct Fetcher {
    urls: Vec<String>,
}

fn main() {}
