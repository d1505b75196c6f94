//! `#[pooled]` on every kind of function it accepts, and what its stream promises.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use retry_pool::{Failure, PoolStream, Stats, pooled};
use support::Probe;

/// A fake HTTP client: each URL fails its first `failures[url]` calls.
#[derive(Debug, Default)]
struct Client {
    failures: HashMap<String, usize>,
    calls: Mutex<HashMap<String, usize>>,
    probe: Probe,
}

#[derive(Debug, PartialEq)]
struct FetchError(String);

impl Client {
    fn failing(failures: &[(&str, usize)]) -> Self {
        Client {
            failures: failures
                .iter()
                .map(|&(url, n)| (url.to_owned(), n))
                .collect(),
            ..Client::default()
        }
    }

    async fn get(&self, url: &str) -> Result<String, FetchError> {
        let _in_flight = self.probe.enter();
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(url.to_owned()).or_default();
            *count += 1;
            *count
        };
        tokio::task::yield_now().await;
        if call <= self.failures.get(url).copied().unwrap_or(0) {
            Err(FetchError(format!("{url}: call {call} failed")))
        } else {
            Ok(format!("page of {url}"))
        }
    }

    fn calls(&self, url: &str) -> usize {
        self.calls.lock().unwrap().get(url).copied().unwrap_or(0)
    }
}

fn urls(names: &[&str]) -> Vec<String> {
    names.iter().map(|&name| name.to_owned()).collect()
}

fn assert_send<T: Send>(_: &T) {}

#[pooled(concurrency = 2, retry = "lifo", attempts = 4)]
async fn fetch_lifo(client: &Client, urls: Vec<String>) -> Result<String, FetchError> {
    urls.into_iter()
        .map(move |url| async move || client.get(&url).await)
}

#[tokio::test]
async fn free_fn_retries_until_success_or_last_attempt() {
    let client = Client::failing(&[("a", 1), ("b", 3), ("c", 10)]);
    let stream = fetch_lifo(&client, urls(&["a", "b", "c", "d"]));
    // The tasks borrow `client`, and the stream is still `Send`.
    assert_send(&stream);
    let outcomes: Vec<_> = stream.collect().await;

    let mut pages: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect();
    pages.sort();
    assert_eq!(pages, ["page of a", "page of b", "page of d"]);
    let failures: Vec<&Failure<FetchError>> =
        outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].index(), failures[0].attempts()), (2, 4));
    assert_eq!(
        failures[0].error(),
        Some(&FetchError("c: call 4 failed".into()))
    );
    assert_eq!(
        [
            client.calls("a"),
            client.calls("b"),
            client.calls("c"),
            client.calls("d")
        ],
        [2, 4, 4, 1]
    );
    assert_eq!(client.probe.peak(), 2);
}

#[pooled(concurrency = 2, retry = "lifo", attempts = 4, spawn = true)]
async fn fetch_spawned(client: Arc<Client>, urls: Vec<String>) -> Result<String, FetchError> {
    urls.into_iter().map(move |url| {
        let client = Arc::clone(&client);
        move || {
            let (client, url) = (Arc::clone(&client), url.clone());
            async move { client.get(&url).await }
        }
    })
}

/// A `#[pooled]` function returns `impl PoolStream`: its caller reads the pool's stats, in
/// place and spawned, before the first poll, while it runs and at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_a_pooled_stream() {
    let failing = [("a", 1), ("b", 3), ("c", 10)];
    let names = ["a", "b", "c", "d"];
    let client = Arc::new(Client::failing(&failing));
    let in_place = fetch_lifo(&client, urls(&names));
    let spawned = fetch_spawned(Arc::new(Client::failing(&failing)), urls(&names));
    let streams: [std::pin::Pin<Box<dyn PoolStream<Item = _> + '_>>; 2] =
        [Box::pin(in_place), Box::pin(spawned)];
    for mut stream in streams {
        assert_eq!(
            stream.stats(),
            Stats::default(),
            "nothing runs before the first poll"
        );
        let mut outcomes = 0;
        while let Some(_outcome) = stream.next().await {
            outcomes += 1;
            assert!(stream.stats().running <= 2);
        }
        let stats = stream.stats();
        // a: 1 retry, b: 3, c: 3 and gives up after 4 attempts, d: none.
        assert_eq!(outcomes, 4);
        assert_eq!(
            (stats.succeeded, stats.failed, stats.retried),
            (3, 1, 1 + 3 + 3)
        );
        assert_eq!((stats.running, stats.waiting), (0, 0));
    }
}

#[pooled(concurrency = 1, retry = "fifo")]
async fn fetch_fifo(client: &Client, urls: Vec<String>) -> Result<String, FetchError> {
    urls.into_iter().map(move |url| {
        move || {
            let url = url.clone();
            async move { client.get(&url).await }
        }
    })
}

#[tokio::test]
async fn fifo_retries_behind_the_input_with_three_attempts_by_default() {
    let client = Client::failing(&[("a", 1), ("z", 5)]);
    let outcomes: Vec<_> = fetch_fifo(&client, urls(&["a", "b", "z"])).collect().await;
    let order: Vec<String> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(page) => page,
            Err(failure) => format!(
                "gave up on #{} after {}",
                failure.index(),
                failure.attempts()
            ),
        })
        .collect();
    // `a` failed first, so it retried after `b` and `z`.
    assert_eq!(order, ["page of b", "page of a", "gave up on #2 after 3"]);
    assert_eq!(client.calls("z"), 3);
}

#[pooled(concurrency = 3)]
async fn fetch_once(client: &Client, urls: Vec<String>) -> Result<String, FetchError> {
    urls.into_iter()
        .map(move |url| async move { client.get(&url).await })
}

#[pooled(concurrency = 3, retry = "none", attempts = 1)]
async fn fetch_once_with_closures(
    client: &Client,
    urls: Vec<String>,
) -> Result<String, FetchError> {
    urls.into_iter()
        .map(move |url| async move || client.get(&url).await)
}

#[tokio::test]
async fn without_retry_tasks_are_futures_or_closures_run_once() {
    let client = Client::failing(&[("a", 1)]);
    let stream = fetch_once(&client, urls(&["a", "b"]));
    assert_send(&stream);
    let outcomes: Vec<_> = stream.collect().await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert_eq!(client.calls("a"), 1);

    let client = Client::failing(&[("a", 1)]);
    let stream = fetch_once_with_closures(&client, urls(&["a", "b"]));
    // Closures that borrow an argument, run once: `Send` too.
    assert_send(&stream);
    let outcomes: Vec<_> = stream.collect().await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert_eq!(client.calls("a"), 1);
}

#[pooled(concurrency = 4, retry = "lifo")]
async fn fetch_owned(client: Arc<Client>, urls: Vec<String>) -> Result<String, FetchError> {
    urls.into_iter().map(move |url| {
        let client = Arc::clone(&client);
        async move || client.get(&url).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_of_static_arguments_can_be_spawned() {
    let client = Arc::new(Client::failing(&[("a", 2)]));
    let stream = fetch_owned(Arc::clone(&client), urls(&["a", "b", "c"]));
    let handle = tokio::spawn(stream.collect::<Vec<_>>());
    let outcomes = handle.await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(client.calls("a"), 3);
}

#[pooled(concurrency = 2)]
async fn listed_after_await(client: &Client, pages: usize) -> Result<String, FetchError> {
    // The body may `.await` before it lists the tasks.
    let index = client.get("index").await.unwrap();
    (0..pages).map(move |n| {
        let url = format!("{index}/{n}");
        async move { client.get(&url).await }
    })
}

#[tokio::test]
async fn body_may_await_before_listing_its_tasks() {
    let client = Client::default();
    let pages: Vec<_> = listed_after_await(&client, 3)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(pages.len(), 3);
    assert_eq!(client.calls("index"), 1);
    assert_eq!(client.calls("page of index/2"), 1);
}

#[tokio::test]
async fn nothing_runs_until_first_polled() {
    static LISTED: AtomicUsize = AtomicUsize::new(0);
    static STARTED: AtomicUsize = AtomicUsize::new(0);

    #[pooled(concurrency = 2)]
    async fn counted(n: usize) -> Result<usize, ()> {
        LISTED.fetch_add(1, Ordering::SeqCst);
        (0..n).map(|i| async move {
            STARTED.fetch_add(1, Ordering::SeqCst);
            Ok(i)
        })
    }

    let mut stream = counted(3);
    tokio::task::yield_now().await;
    assert_eq!(
        (
            LISTED.load(Ordering::SeqCst),
            STARTED.load(Ordering::SeqCst)
        ),
        (0, 0)
    );
    assert!(stream.next().await.unwrap().is_ok());
    assert_eq!(LISTED.load(Ordering::SeqCst), 1);
    assert_eq!(stream.count().await, 2);
    assert_eq!(STARTED.load(Ordering::SeqCst), 3);
}

/// A service with a limit of its own.
struct Service {
    limit: usize,
    client: Client,
    served: usize,
}

impl Service {
    #[pooled(concurrency = self.limit, retry = "lifo")]
    async fn by_ref(&self, urls: Vec<String>) -> Result<String, FetchError> {
        let client = &self.client;
        urls.into_iter()
            .map(move |url| async move || client.get(&url).await)
    }

    #[pooled(concurrency = self.limit)]
    async fn by_mut(&mut self, urls: Vec<String>) -> Result<String, FetchError> {
        self.served += urls.len();
        let client = &self.client;
        urls.into_iter()
            .map(move |url| async move { client.get(&url).await })
    }

    #[pooled(concurrency = self.limit, retry = "fifo", attempts = 2)]
    async fn by_value(self, urls: Vec<String>) -> Result<String, FetchError> {
        let client = Arc::new(self.client);
        urls.into_iter().map(move |url| {
            let client = Arc::clone(&client);
            async move || client.get(&url).await
        })
    }
}

#[tokio::test]
async fn methods_take_every_receiver_and_read_their_limit() {
    let mut service = Service {
        limit: 1,
        client: Client::failing(&[("a", 1)]),
        served: 0,
    };
    let by_ref = service.by_ref(urls(&["a", "b"]));
    assert_send(&by_ref);
    assert_eq!(
        by_ref
            .filter(|o| std::future::ready(o.is_ok()))
            .count()
            .await,
        2
    );
    assert_eq!(service.client.probe.peak(), 1);

    assert_eq!(service.by_mut(urls(&["c", "d", "e"])).count().await, 3);
    assert_eq!(service.served, 3);

    service.limit = 3;
    let client_calls = service.by_value(urls(&["a", "x", "y"])).count().await;
    assert_eq!(client_calls, 3);
}

#[pooled(concurrency = width, retry = "lifo", attempts = 2)]
async fn generic<T, E, I>(items: I, width: u8) -> Result<T, E>
where
    T: Clone + Send + 'static,
    E: From<String>,
    I: IntoIterator<Item = Result<T, String>>,
{
    items
        .into_iter()
        .map(|item| async move || item.clone().map_err(E::from))
}

#[tokio::test]
async fn generic_fns_with_where_clauses_and_a_limit_argument() {
    let outcomes: Vec<Result<u32, Failure<String>>> =
        generic(vec![Ok(1), Err("no".to_owned()), Ok(3)], 2)
            .collect()
            .await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
    let failure = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!((failure.index(), failure.attempts()), (1, 2));
}

#[tokio::test]
#[should_panic(expected = "`concurrency` must be at least 1, but it evaluated to 0")]
async fn a_limit_of_zero_panics_at_the_call() {
    let _stream = generic::<u32, String, _>(Vec::new(), 0);
}

mod visibility {
    use super::*;

    /// Kept: doc comments and attributes other than `#[pooled]`.
    #[pooled(concurrency = 1)]
    #[cfg(not(any()))]
    #[inline]
    pub(crate) async fn io_result(path: &str) -> std::io::Result<usize> {
        [async move { Ok(path.len()) }]
    }

    // Never compiled: were `#[cfg(any())]` dropped, this would define `io_result` twice.
    #[pooled(concurrency = 1)]
    #[cfg(any())]
    pub(crate) async fn io_result(path: &str) -> std::io::Result<usize> {
        [async move { Ok(path.len()) }]
    }

    #[pooled(concurrency = 2, retry = "lifo", attempts = 2)]
    pub async fn anyhow_result(numbers: &[i64]) -> anyhow::Result<i64> {
        numbers.iter().map(|&n| {
            async move || {
                anyhow::ensure!(n >= 0, "negative: {n}");
                Ok(n * 2)
            }
        })
    }
}

#[tokio::test]
async fn visibility_attributes_and_result_aliases() {
    let lengths: Vec<usize> = visibility::io_result("abc")
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(lengths, [3]);

    let outcomes: Vec<_> = visibility::anyhow_result(&[1, -2]).collect().await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    let failure = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!(failure.attempts(), 2);
    assert_eq!(failure.error().unwrap().to_string(), "negative: -2");
}

mod hygiene {
    // Names the expansion must not pick up: it uses absolute paths only.
    #[allow(dead_code)]
    mod core {}
    #[allow(dead_code)]
    mod std {}
    #[allow(dead_code)]
    mod retry_pool {}
    #[allow(dead_code)]
    struct Option;
    #[allow(dead_code, non_camel_case_types)]
    struct Some;

    use ::futures::StreamExt;

    // Arguments named like the expansion's own locals.
    #[::retry_pool::pooled(concurrency = concurrency, retry = "lifo")]
    async fn clash(
        concurrency: usize,
        pool: u32,
        task: u32,
        limits: u32,
        __retry_pool_task: u32,
    ) -> ::core::result::Result<u32, ()> {
        let result = pool + task + limits + __retry_pool_task;
        (0..concurrency as u32).map(move |n| async move || ::core::result::Result::Ok(n + result))
    }

    // The same with every key, spawned.
    #[::retry_pool::pooled(
        concurrency = concurrency,
        retry = "lifo",
        attempts = 2,
        backoff = "1ms..2ms",
        timeout = "1s",
        spawn = true
    )]
    async fn clash_spawned(
        concurrency: usize,
        pool: u32,
        task: u32,
        __retry_pool_checked: u32,
        __retry_pool_tasks: u32,
    ) -> ::core::result::Result<u32, ()> {
        let result = pool + task + __retry_pool_checked + __retry_pool_tasks;
        (0..concurrency as u32).map(move |n| async move || ::core::result::Result::Ok(n + result))
    }

    #[::tokio::test]
    async fn generated_names_and_paths_do_not_clash() {
        let sum: u32 = clash(2, 1, 1, 1, 1)
            .map(|o| o.unwrap())
            .fold(0, |a, b| async move { a + b })
            .await;
        assert_eq!(sum, 4 + 5);
        let sum: u32 = clash_spawned(2, 1, 1, 1, 1)
            .map(|o| o.unwrap())
            .fold(0, |a, b| async move { a + b })
            .await;
        assert_eq!(sum, 4 + 5);
    }
}

mod renamed {
    /// The runtime, re-exported under another path.
    mod my_reexport {
        pub use ::retry_pool::*;
    }

    use futures::StreamExt;
    use my_reexport::pooled;

    #[pooled(concurrency = 2, retry = "lifo", crate = "my_reexport")]
    async fn doubled(numbers: Vec<u8>) -> Result<u16, ()> {
        numbers
            .into_iter()
            .map(|n| async move || Ok(u16::from(n) * 2))
    }

    #[pooled(
        concurrency = 2,
        retry = "lifo",
        backoff = "1ms",
        timeout = "1s",
        spawn = true,
        crate = "my_reexport"
    )]
    async fn doubled_spawned(numbers: Vec<u8>) -> Result<u16, ()> {
        numbers
            .into_iter()
            .map(|n| async move || Ok(u16::from(n) * 2))
    }

    #[tokio::test]
    async fn crate_path_is_used_for_every_generated_path() {
        assert_eq!(doubled(vec![1, 2, 3]).count().await, 3);
        assert_eq!(doubled_spawned(vec![1, 2, 3]).count().await, 3);
    }
}
