//! `#[pooled]` with the keys of time and threads: `timeout`, `backoff` and `spawn`.
//!
//! The time tests run on tokio's paused clock (`start_paused = true`): sleeps end exactly
//! when due, so every instant below is exact.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{Failure, pooled};
use tokio::time::{Instant, sleep};

/// What happened to each attempt, and when (milliseconds since the log was made).
#[derive(Clone)]
struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<(u64, String)>>>,
}

impl Log {
    fn new() -> Self {
        Log {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn record(&self, event: impl Into<String>) {
        let now = self.now();
        self.events.lock().unwrap().push((now, event.into()));
    }

    fn events(&self) -> Vec<(u64, String)> {
        self.events.lock().unwrap().clone()
    }

    /// When each event with this name happened.
    fn times(&self, event: &str) -> Vec<u64> {
        self.events()
            .into_iter()
            .filter(|(_, name)| name == event)
            .map(|(at, _)| at)
            .collect()
    }
}

/// The value of an outcome that must be a success.
fn ok<T: Clone, E: std::fmt::Debug>(outcome: &Result<T, Failure<E>>) -> T {
    match outcome {
        Ok(value) => value.clone(),
        Err(failure) => panic!("unexpected failure: {failure:?}"),
    }
}

/// Records `dropped` when dropped before `finish`: an attempt cut off by its timeout.
struct Attempt {
    log: Log,
    name: String,
    finished: bool,
}

impl Attempt {
    fn start(log: &Log, name: String) -> Self {
        log.record(format!("{name} started"));
        Attempt {
            log: log.clone(),
            name,
            finished: false,
        }
    }

    fn finish(mut self) {
        self.finished = true;
        self.log.record(format!("{} finished", self.name));
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.finished {
            self.log.record(format!("{} dropped", self.name));
        }
    }
}

/// Task `n` sleeps `sleeps[n][k]` ms in its attempt `k` (the last one again once past the
/// end), then succeeds with its attempt number.
#[pooled(concurrency = 2, retry = "lifo", attempts = 3, timeout = "1s")]
async fn timed(log: Log, sleeps: Vec<Vec<u64>>) -> Result<u32, String> {
    sleeps.into_iter().enumerate().map(move |(n, sleeps)| {
        let log = log.clone();
        let mut attempt = 0u32;
        async move || {
            attempt += 1;
            let running = Attempt::start(&log, format!("{n}#{attempt}"));
            let ms = sleeps[(attempt as usize - 1).min(sleeps.len() - 1)];
            sleep(Duration::from_millis(ms)).await;
            running.finish();
            Ok(attempt)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_dropped_at_its_timeout_and_retried() {
    let log = Log::new();
    // Task 0: too slow once, then 10ms. Task 1: 300ms, in time.
    let outcomes: Vec<_> = timed(log.clone(), vec![vec![5_000, 10], vec![300]])
        .collect()
        .await;

    assert_eq!(outcomes.len(), 2);
    assert_eq!(ok(&outcomes[0]), 1, "task 1 finishes first, at 300ms");
    assert_eq!(ok(&outcomes[1]), 2, "task 0 succeeds on its second attempt");
    assert_eq!(
        log.events(),
        [
            (0, "0#1 started".to_owned()),
            (0, "1#1 started".to_owned()),
            (300, "1#1 finished".to_owned()),
            // Cut off at 1s, and started again at once (LIFO, no backoff).
            (1_000, "0#1 dropped".to_owned()),
            (1_000, "0#2 started".to_owned()),
            (1_010, "0#2 finished".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_that_always_times_out_ends_with_is_timeout() {
    let log = Log::new();
    let start = Instant::now();
    let outcomes: Vec<Result<u32, Failure<String>>> =
        timed(log.clone(), vec![vec![60_000]]).collect().await;

    let [Err(failure)] = &outcomes[..] else {
        panic!("one failure expected: {outcomes:?}");
    };
    assert!(failure.is_timeout(), "{failure}");
    assert!(!failure.is_panic());
    assert_eq!(failure.attempts(), 3);
    assert_eq!(failure.error(), None);
    // Three attempts of exactly one second each, none of them finished.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(log.times("0#1 dropped"), [1_000]);
    assert_eq!(log.times("0#2 dropped"), [2_000]);
    assert_eq!(log.times("0#3 dropped"), [3_000]);
    assert!(log.events().iter().all(|(_, e)| !e.ends_with("finished")));
}

/// Task `n` fails its first `failures[n]` attempts after 10ms each, then succeeds after
/// `work[n]` ms.
#[pooled(concurrency = 1, retry = "lifo", attempts = 3, backoff = "100ms")]
async fn fixed_backoff(
    log: Log,
    failures: Vec<u32>,
    work: Vec<u64>,
) -> Result<(usize, u32), String> {
    failures
        .into_iter()
        .zip(work)
        .enumerate()
        .map(move |(n, (failures, work))| {
            let log = log.clone();
            let mut attempt = 0u32;
            async move || {
                attempt += 1;
                let running = Attempt::start(&log, format!("{n}#{attempt}"));
                if attempt <= failures {
                    sleep(Duration::from_millis(10)).await;
                    running.finish();
                    return Err(format!("{n} failed attempt {attempt}"));
                }
                sleep(Duration::from_millis(work)).await;
                running.finish();
                Ok((n, attempt))
            }
        })
}

#[tokio::test(start_paused = true)]
async fn a_task_waiting_out_its_backoff_holds_no_slot() {
    let log = Log::new();
    // One slot. Task 0 fails once at 10ms; task 1 takes 30ms.
    let outcomes: Vec<_> = fixed_backoff(log.clone(), vec![1, 0], vec![5, 30])
        .collect()
        .await;

    let done: Vec<_> = outcomes.iter().map(ok).collect();
    assert_eq!(done, [(1, 1), (0, 2)]);
    assert_eq!(
        log.events(),
        [
            (0, "0#1 started".to_owned()),
            (10, "0#1 finished".to_owned()),
            // Task 0 waits out its backoff without its slot: task 1 runs in it meanwhile,
            // though LIFO would otherwise run task 0 again first.
            (10, "1#1 started".to_owned()),
            (40, "1#1 finished".to_owned()),
            // Exactly 100ms after the failure.
            (110, "0#2 started".to_owned()),
            (115, "0#2 finished".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_backoff_applies_before_every_retry() {
    let log = Log::new();
    let outcomes: Vec<_> = fixed_backoff(log.clone(), vec![5], vec![0]).collect().await;
    let [Err(failure)] = &outcomes[..] else {
        panic!("one failure expected: {outcomes:?}");
    };
    assert_eq!(failure.attempts(), 3);
    assert_eq!(
        failure.error().map(String::as_str),
        Some("0 failed attempt 3")
    );
    // Each attempt fails after 10ms, and the next starts 100ms later.
    assert_eq!(log.times("0#1 started"), [0]);
    assert_eq!(log.times("0#2 started"), [110]);
    assert_eq!(log.times("0#3 started"), [220]);
}

/// Every task fails at once until its last attempt, recording when each attempt started.
#[pooled(concurrency = 8, retry = "fifo", attempts = 6, backoff = "100ms..1s")]
async fn exponential_backoff(
    starts: Arc<Mutex<HashMap<usize, Vec<Instant>>>>,
    tasks: usize,
) -> Result<usize, usize> {
    (0..tasks).map(move |n| {
        let starts = Arc::clone(&starts);
        async move || {
            let mut starts = starts.lock().unwrap();
            let mine = starts.entry(n).or_default();
            mine.push(Instant::now());
            if mine.len() < 6 { Err(n) } else { Ok(n) }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn exponential_delays_double_up_to_the_cap_with_jitter() {
    let starts = Arc::new(Mutex::new(HashMap::new()));
    let outcomes: Vec<_> = exponential_backoff(Arc::clone(&starts), 8).collect().await;
    assert_eq!(outcomes.len(), 8);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

    // The nominal delays: 100, 200, 400, 800, then capped at 1s.
    let nominal = [100, 200, 400, 800, 1_000].map(Duration::from_millis);
    let starts = starts.lock().unwrap();
    let mut jittered = 0;
    for (n, attempts) in starts.iter() {
        assert_eq!(attempts.len(), 6, "task {n}");
        let delays: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        for (k, (&delay, &nominal)) in delays.iter().zip(&nominal).enumerate() {
            assert!(
                nominal / 2 <= delay && delay <= nominal,
                "task {n}, delay {k}: {delay:?} is not within [{:?}, {nominal:?}]",
                nominal / 2
            );
            if delay != nominal {
                jittered += 1;
            }
        }
        // Up to the cap, each delay's range starts where the one before ends.
        assert!(
            delays[..4].windows(2).all(|w| w[0] <= w[1]),
            "task {n}: the delays grow: {delays:?}"
        );
    }
    // 40 delays drawn at random between half and all of their nominal length.
    assert!(jittered > 20, "only {jittered} of 40 delays were jittered");
}

/// A service whose method runs its tasks on the runtime's worker threads.
struct Service {
    pages: Arc<Pages>,
    limit: usize,
}

/// A fake web: each URL fails its first `failures[url]` calls.
#[derive(Default)]
struct Pages {
    failures: HashMap<String, usize>,
    calls: Mutex<HashMap<String, usize>>,
}

impl Pages {
    async fn get(&self, url: &str) -> Result<String, String> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(url.to_owned()).or_default();
            *count += 1;
            *count
        };
        tokio::task::yield_now().await;
        if url == "panic" {
            panic!("planned panic: {url}");
        }
        if call <= self.failures.get(url).copied().unwrap_or(0) {
            Err(format!("{url}: call {call} failed"))
        } else {
            Ok(format!("page of {url}"))
        }
    }

    fn calls(&self, url: &str) -> usize {
        self.calls.lock().unwrap().get(url).copied().unwrap_or(0)
    }
}

impl Service {
    /// Borrows `self` only to list the tasks: each task holds its own `Arc`.
    #[pooled(concurrency = self.limit, retry = "lifo", attempts = 3, spawn = true)]
    async fn fetch(&self, urls: Vec<String>) -> Result<String, String> {
        let pages = Arc::clone(&self.pages);
        urls.into_iter().map(move |url| {
            let pages = Arc::clone(&pages);
            async move || pages.get(&url).await
        })
    }
}

fn assert_send<T: Send>(_: &T) {}

fn urls(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("u{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_with_self_spawns_its_static_tasks() {
    let service = Service {
        pages: Arc::new(Pages {
            failures: [("u3".to_owned(), 2), ("u7".to_owned(), 5)].into(),
            ..Pages::default()
        }),
        limit: 4,
    };
    let stream = service.fetch(urls(50));
    assert_send(&stream);
    let outcomes: Vec<_> = stream.collect().await;

    // Every task yields exactly once.
    assert_eq!(outcomes.len(), 50);
    let pages: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(pages.len(), 49);
    assert!(pages.contains(&&"page of u3".to_owned()));
    let failures: Vec<&Failure<String>> =
        outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].index(), 7);
    assert_eq!(failures[0].attempts(), 3);
    assert_eq!(
        failures[0].error().map(String::as_str),
        Some("u7: call 3 failed")
    );
    assert_eq!(service.pages.calls("u3"), 3);
    assert_eq!(service.pages.calls("u0"), 1);
}

/// Free functions too; the tasks count how many run at once.
#[pooled(concurrency = 8, spawn = true)]
async fn spawned_work(
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    tasks: usize,
) -> Result<usize, String> {
    (0..tasks).map(move |n| {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            // Real (short) work on a worker thread.
            tokio::time::sleep(Duration::from_millis(1)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(n)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spawned_outcome_arrives_within_the_bound() {
    let (running, peak) = (Arc::default(), Arc::<AtomicUsize>::default());
    let mut done: Vec<usize> = spawned_work(running, Arc::clone(&peak), 200)
        .map(|outcome| outcome.unwrap())
        .collect()
        .await;
    done.sort();
    assert_eq!(done, (0..200).collect::<Vec<_>>());
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=8).contains(&peak), "peak {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_panic_becomes_is_panic() {
    support::quiet_panics("planned panic");
    let service = Service {
        pages: Arc::default(),
        limit: 2,
    };
    let urls = vec!["a".to_owned(), "panic".to_owned(), "b".to_owned()];
    let outcomes: Vec<_> = service.fetch(urls).collect().await;

    assert_eq!(outcomes.len(), 3);
    let failures: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].is_panic(), "{}", failures[0]);
    assert_eq!(failures[0].index(), 1);
    // A panic is a bug, not a transient fault: no retry.
    assert_eq!(failures[0].attempts(), 1);
    assert_eq!(service.pages.calls("panic"), 1);
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
}

/// The spawned flavour on the paused clock: a timeout ends a spawned attempt, and a
/// backoff delays its retry.
#[pooled(
    concurrency = 2,
    retry = "lifo",
    attempts = 2,
    backoff = "250ms",
    timeout = "1s",
    spawn = true
)]
async fn spawned_in_time(log: Log, sleeps: Vec<u64>) -> Result<usize, String> {
    sleeps.into_iter().enumerate().map(move |(n, ms)| {
        let log = log.clone();
        move || {
            let log = log.clone();
            async move {
                let running = Attempt::start(&log, format!("{n}"));
                sleep(Duration::from_millis(ms)).await;
                running.finish();
                Ok(n)
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn spawned_attempts_time_out_and_back_off() {
    let log = Log::new();
    let outcomes: Vec<_> = spawned_in_time(log.clone(), vec![10, 5_000])
        .collect()
        .await;

    assert_eq!(outcomes.len(), 2);
    assert_eq!(ok(&outcomes[0]), 0);
    let Err(failure) = &outcomes[1] else {
        panic!("task 1 always times out: {outcomes:?}");
    };
    assert!(failure.is_timeout());
    assert_eq!(failure.attempts(), 2);
    // Cut off at 1s, started again 250ms later, cut off again 1s after that.
    assert_eq!(log.times("1 started"), [0, 1_250]);
    assert_eq!(log.times("1 dropped"), [1_000, 2_250]);
}

/// A generic function: its type parameters need `Send + 'static` bounds of their own.
#[pooled(concurrency = 2, retry = "fifo", spawn = true)]
async fn spawned_generic<T>(items: Vec<T>) -> Result<String, ()>
where
    T: std::fmt::Display + Clone + Send + Sync + 'static,
{
    items
        .into_iter()
        .map(|item| async move || Ok(item.to_string()))
}

#[tokio::test]
async fn generic_functions_spawn_on_a_current_thread_runtime_too() {
    let mut done: Vec<String> = spawned_generic(vec![3, 1, 2])
        .map(|outcome| outcome.unwrap())
        .collect()
        .await;
    done.sort();
    assert_eq!(done, ["1", "2", "3"]);
}
