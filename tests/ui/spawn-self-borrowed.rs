use std::sync::Arc;

use retry_pool::pooled;

struct Client {
    base: Arc<String>,
}

impl Client {
    // The tasks borrow `self`: clone what they need out of it instead.
    #[pooled(concurrency = 8, spawn = true)]
    async fn lengths(&self, urls: Vec<String>) -> Result<usize, ()> {
        urls.into_iter()
            .map(move |url| async move { Ok(self.base.len() + url.len()) })
    }
}

fn main() {}
