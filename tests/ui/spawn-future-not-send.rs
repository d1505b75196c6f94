use std::rc::Rc;

use retry_pool::pooled;

// Each attempt holds an `Rc` across an `.await`: its future cannot move between threads.
#[pooled(concurrency = 8, retry = "lifo", spawn = true)]
async fn lengths(urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(|url| {
        async move || {
            let length = Rc::new(url.len());
            tokio::task::yield_now().await;
            Ok(*length)
        }
    })
}

fn main() {}
