use std::rc::Rc;

use retry_pool::pooled;

struct Config {
    prefix: String,
}

// An `Rc` cannot cross to the worker threads that run a spawned pool's tasks.
#[pooled(concurrency = 4, retry = "lifo", spawn = true)]
async fn lengths(config: Rc<Config>, urls: Vec<String>) -> Result<usize, ()> {
    urls.into_iter().map(move |url| {
        let config = Rc::clone(&config);
        async move || Ok(config.prefix.len() + url.len())
    })
}

fn main() {
    let config = Rc::new(Config {
        prefix: String::new(),
    });
    let _outcomes = lengths(config, Vec::new());
}
