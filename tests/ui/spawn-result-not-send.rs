use std::rc::Rc;

use retry_pool::pooled;

// What the tasks return comes back from the worker threads.
#[pooled(concurrency = 8, retry = "lifo", spawn = true)]
async fn lengths(urls: Vec<String>) -> Result<Rc<usize>, ()> {
    urls.into_iter()
        .map(|url| async move || Ok(Rc::new(url.len())))
}

fn main() {}
