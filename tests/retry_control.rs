//! Rule 14 of ARCHITECTURE.md, retry control: which errors retry (`retry_if`), delays the error gives (`retry_after`),
//! a rate limit, retry throttling, in place, spawned and through `#[pooled]`; the
//! scheduler's idle point; and `#[pooled]` bodies that are streams. Paused clocks, so
//! that every time is exact.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::LocalBoxStream;
use futures::{FutureExt, StreamExt};
use retry_pool::{Backoff, Failure, Pool, PoolStream, Retry, boxed, pooled};
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq)]
enum Fetch {
    /// Permanent: never worth a retry.
    NotFound,
    /// Transient.
    Unavailable,
    /// Transient, and says when to come back.
    TooMany(Duration),
}

impl std::fmt::Display for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

fn transient(error: &Fetch) -> bool {
    !matches!(error, Fetch::NotFound)
}

fn retry_after(error: &Fetch) -> Option<Duration> {
    match error {
        Fetch::TooMany(delay) => Some(*delay),
        _ => None,
    }
}

/// When each attempt of each task started, from the test's start.
#[derive(Clone)]
struct Log {
    starts: Arc<Mutex<Vec<(usize, Duration)>>>,
    start: Instant,
}

impl Log {
    fn new() -> Self {
        Log {
            starts: Arc::default(),
            start: Instant::now(),
        }
    }

    fn started(&self, task: usize) {
        let at = self.start.elapsed();
        self.starts.lock().unwrap().push((task, at));
    }

    /// The starts of `task`.
    fn of(&self, task: usize) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts
            .iter()
            .filter(|&&(t, _)| t == task)
            .map(|&(_, at)| at)
            .collect()
    }

    /// Every start, in order.
    fn all(&self) -> Vec<Duration> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .map(|&(_, at)| at)
            .collect()
    }
}

type Attempt = BoxFuture<'static, Result<usize, Fetch>>;
type Outcome = Result<usize, Failure<Fetch>>;

/// Task `n`: fails with `errors` in turn, then succeeds with `n`; each attempt takes
/// `work`.
fn task(
    log: &Log,
    n: usize,
    errors: &[Fetch],
    work: Duration,
) -> impl FnMut() -> Attempt + AsyncFnMut() -> Result<usize, Fetch> + Send + use<> {
    let log = log.clone();
    let errors = Arc::new(Mutex::new(VecDeque::from(errors.to_vec())));
    move || {
        let (log, errors) = (log.clone(), Arc::clone(&errors));
        async move {
            log.started(n);
            tokio::time::sleep(work).await;
            let next = errors.lock().unwrap().pop_front();
            match next {
                Some(error) => Err(error),
                None => Ok(n),
            }
        }
        .boxed()
    }
}

/// Runs `tasks` in `pool`, in place or spawned, and returns the outcomes by task.
async fn outcomes(stream: LocalBoxStream<'_, Outcome>) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = stream.collect().await;
    outcomes.sort_by_key(|outcome| match outcome {
        Ok(n) => *n,
        Err(failure) => failure.index(),
    });
    outcomes
}

/// `retry_if`: a permanent error ends its task at its first attempt, told apart from a
/// task that used up its attempts; transient ones retry. In place and spawned.
#[tokio::test(start_paused = true)]
async fn retry_if_ends_a_task_at_a_permanent_error() {
    for spawn in [false, true] {
        let log = Log::new();
        let tasks = vec![
            task(&log, 0, &[Fetch::NotFound], Duration::ZERO),
            task(&log, 1, &vec![Fetch::Unavailable; 5], Duration::ZERO),
            task(
                &log,
                2,
                &[Fetch::Unavailable, Fetch::NotFound],
                Duration::ZERO,
            ),
            task(&log, 3, &[Fetch::Unavailable], Duration::ZERO),
        ];
        let pool = Pool::new(2)
            .retry(Retry::Lifo)
            .attempts(3)
            .retry_if(transient);
        let stream = match spawn {
            true => pool.spawn(tasks).boxed_local(),
            false => pool.run(tasks).boxed_local(),
        };
        let outcomes = outcomes(stream).await;
        let failure = |i: usize| outcomes[i].as_ref().unwrap_err();

        assert_eq!(failure(0).error(), Some(&Fetch::NotFound));
        assert!(failure(0).is_permanent() && failure(0).attempts() == 1);
        assert_eq!(
            failure(0).to_string(),
            "task #0 failed after 1 attempt, not retried (`retry_if` refused the error): NotFound"
        );
        // Used up its attempts: not permanent.
        assert!(!failure(1).is_permanent() && failure(1).attempts() == 3);
        assert!(failure(2).is_permanent() && failure(2).attempts() == 2);
        assert_eq!(outcomes[3].as_ref().ok(), Some(&3));
        assert_eq!(
            log.of(0).len() + log.of(1).len() + log.of(2).len(),
            1 + 3 + 2,
            "spawn: {spawn}"
        );
    }
}

/// `retry_after`: the error's delay replaces the backoff, and the task holds no slot
/// while it waits. One slot: task 0 gets a 429 asking for 3s, task 1 runs meanwhile, and
/// task 0 is back exactly 3s after its failure; a plain error waits the backoff (100ms).
#[tokio::test(start_paused = true)]
async fn retry_after_delays_a_retry_by_what_the_error_says() {
    for spawn in [false, true] {
        let log = Log::new();
        let work = Duration::from_millis(10);
        let tasks = vec![
            task(
                &log,
                0,
                &[Fetch::TooMany(Duration::from_secs(3)), Fetch::Unavailable],
                work,
            ),
            task(&log, 1, &[], work),
        ];
        let pool = Pool::new(1)
            .retry(Retry::Lifo)
            .attempts(3)
            .backoff(Backoff::fixed(Duration::from_millis(100)))
            .retry_after(retry_after);
        let stream = match spawn {
            true => pool.spawn(tasks).boxed_local(),
            false => pool.run(tasks).boxed_local(),
        };
        let outcomes = outcomes(stream).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let ms = Duration::from_millis;
        // 0: fails at 10ms, asked for 3s: back at 3.010s; fails again at 3.020s, backoff
        // 100ms: back at 3.120s. Task 1 ran in the free slot at 10ms.
        assert_eq!(log.of(0), [ms(0), ms(3010), ms(3120)], "spawn: {spawn}");
        assert_eq!(log.of(1), [ms(10)], "spawn: {spawn}");
    }
}

/// The rate limit: never more than `n` starts in any window of `per`, retries included,
/// and no slower. 2 per second, 8 slots, 5 instant tasks, one of which fails once: starts
/// at 0, 0, 1, 1, 2 and 2 seconds. Waiting tasks are not in flight.
#[tokio::test(start_paused = true)]
async fn a_rate_limit_spaces_out_attempt_starts() {
    for spawn in [false, true] {
        let log = Log::new();
        let tasks: Vec<_> = (0..5)
            .map(|n| {
                let errors: &[Fetch] = if n == 1 { &[Fetch::Unavailable] } else { &[] };
                task(&log, n, errors, Duration::ZERO)
            })
            .collect();
        let pool = Pool::new(8)
            .retry(Retry::Fifo)
            .rate_limit(2, Duration::from_secs(1));
        let mut stream = match spawn {
            true => pool.spawn(tasks).boxed_local(),
            false => pool.run(tasks).boxed_local(),
        };
        let mut done = 0;
        while let Some(outcome) = stream.next().await {
            assert!(outcome.is_ok());
            done += 1;
        }
        assert_eq!(done, 5);
        let s = Duration::from_secs;
        assert_eq!(
            log.all(),
            [s(0), s(0), s(1), s(1), s(2), s(2)],
            "spawn: {spawn}"
        );
    }
}

/// Under a rate limit, a task waiting for its turn holds no slot: `running` counts only
/// the attempts started.
#[tokio::test(start_paused = true)]
async fn tasks_waiting_for_the_rate_are_not_in_flight() {
    let log = Log::new();
    let tasks: Vec<_> = (0..6)
        .map(|n| task(&log, n, &[], Duration::from_secs(10)))
        .collect();
    let mut stream = Pool::new(8)
        .rate_limit(2, Duration::from_secs(1))
        .run(tasks);
    // Poll the stream for 1.5s: 4 attempts started (2 at 0s, 2 at 1s), none finished.
    let polled = tokio::time::timeout(Duration::from_millis(1500), stream.next()).await;
    assert!(polled.is_err());
    assert_eq!(stream.stats().running, 4);
    assert_eq!(log.all().len(), 4);
}

/// gRPC's retry throttling: with 10 tokens, failures drain them, and once no more than 5
/// would be left, failed tasks give up at once (`is_throttled`, `Stats::throttled`);
/// successes give tokens back (0.5 each here), and retries resume.
#[tokio::test(start_paused = true)]
async fn retry_throttle_stops_retries_while_too_many_attempts_fail() {
    for spawn in [false, true] {
        let log = Log::new();
        // Tasks 0-5 fail once, then succeed; tasks 6-11 fail twice (of 3 attempts).
        let tasks: Vec<_> = (0..12)
            .map(|n| {
                let failures = if n < 6 { 1 } else { 2 };
                task(&log, n, &vec![Fetch::Unavailable; failures], Duration::ZERO)
            })
            .collect();
        let pool = Pool::new(1)
            .retry(Retry::Lifo)
            .attempts(3)
            .retry_throttle(10, 0.5);
        let mut stream = match spawn {
            true => pool.spawn(tasks).boxed_pool(),
            false => pool.run(tasks).boxed_pool(),
        };
        let mut outcomes = Vec::new();
        while let Some(outcome) = stream.next().await {
            outcomes.push(outcome);
        }
        outcomes.sort_by_key(|o| match o {
            Ok(n) => *n,
            Err(f) => f.index(),
        });
        let throttled: Vec<usize> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .filter(|f| f.is_throttled())
            .map(|f| f.index())
            .collect();
        // One slot, so in order. Tasks 0-5 each take a token and give back half of one:
        // 10 - 6 × 0.5 = 7 tokens. Task 6 fails: 6 left, retried; fails again: 5, not
        // above 10 / 2, refused. Every later failure is refused too (4, 3, 2, 1, 0).
        assert!(outcomes[..6].iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(throttled, [6, 7, 8, 9, 10, 11], "spawn: {spawn}");
        let first = outcomes[6].as_ref().unwrap_err();
        assert_eq!(first.attempts(), 2);
        assert_eq!(
            first.to_string(),
            "task #6 failed after 2 attempts, not retried (retries throttled): Unavailable"
        );
        assert!(
            outcomes[7..]
                .iter()
                .all(|o| o.as_ref().unwrap_err().attempts() == 1)
        );
        assert_eq!(stream.stats().throttled, 6);
    }
}

/// A pool stream of any flavour, boxed, keeping `stats()`.
trait BoxedPool<'a>: PoolStream<Item = Outcome> + Sized + 'a {
    fn boxed_pool(self) -> std::pin::Pin<Box<dyn PoolStream<Item = Outcome> + 'a>> {
        Box::pin(self)
    }
}

impl<'a, S: PoolStream<Item = Outcome> + 'a> BoxedPool<'a> for S {}

/// The attribute's keys, in place and spawned: the same behaviour as the builder.
#[pooled(
    concurrency = 1,
    retry = "lifo",
    attempts = 3,
    backoff = "100ms",
    retry_if = transient,
    retry_after = retry_after,
    rate = "2/s"
)]
async fn controlled(log: Log, errors: Vec<Vec<Fetch>>) -> Result<usize, Fetch> {
    errors
        .into_iter()
        .enumerate()
        .map(move |(n, errors)| task(&log, n, &errors, Duration::ZERO))
}

#[pooled(
    concurrency = 1,
    retry = "lifo",
    attempts = 3,
    backoff = "100ms",
    retry_if = transient,
    retry_after = retry_after,
    rate = "2/s",
    retry_throttle = (10, 0.5),
    spawn = true
)]
async fn controlled_spawned(log: Log, errors: Vec<Vec<Fetch>>) -> Result<usize, Fetch> {
    errors
        .into_iter()
        .enumerate()
        .map(move |(n, errors)| task(&log, n, &errors, Duration::ZERO))
}

#[tokio::test(start_paused = true)]
async fn the_attribute_keys_control_retries_as_the_builder_does() {
    let errors = vec![
        vec![Fetch::NotFound],
        vec![Fetch::TooMany(Duration::from_secs(5))],
        vec![Fetch::Unavailable, Fetch::Unavailable],
    ];
    for spawn in [false, true] {
        let log = Log::new();
        let stream = match spawn {
            true => controlled_spawned(log.clone(), errors.clone()).boxed_local(),
            false => controlled(log.clone(), errors.clone()).boxed_local(),
        };
        let outcomes = outcomes(stream).await;
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert!(outcomes[0].as_ref().unwrap_err().is_permanent());
        assert_eq!(outcomes[1].as_ref().ok(), Some(&1));
        assert_eq!(outcomes[2].as_ref().ok(), Some(&2));
        // Two starts in any second ([t, t + 1s)): tasks 0 and 1 at 0s (0 is permanent,
        // 1 asks for 5s); 2 waits for the window, 1s; it fails, and its retry 100ms later
        // is allowed (the starts in [0.1s, 1.1s): just one); it fails again, and 100ms
        // later the window holds 1s and 1.1s, so the third start waits for 2s. Task 1 is
        // back at 5s.
        assert_eq!(log.of(0), [s(0)], "spawn: {spawn}");
        assert_eq!(log.of(1), [s(0), s(5)], "spawn: {spawn}");
        assert_eq!(log.of(2), [s(1), ms(1100), s(2)], "spawn: {spawn}");
    }
}

/// The scheduler's idle point: resolves when nothing submitted is waiting, running or
/// due to run again (a retry in its backoff included); the scheduler stays open, and is
/// idle again after more work. Spawned, and in place with the stream polled beside it.
#[tokio::test(start_paused = true)]
async fn idle_waits_for_every_task_including_retries() {
    let log = Log::new();
    let (handle, mut done) = Pool::new(2)
        .retry(Retry::Lifo)
        .backoff(Backoff::fixed(Duration::from_secs(1)))
        .spawn_scheduler();
    let outcomes = tokio::spawn(async move {
        let mut count = 0;
        while let Some((_id, outcome)) = done.next().await {
            assert!(outcome.is_ok());
            count += 1;
        }
        count
    });
    for n in 0..4 {
        let errors: &[Fetch] = if n == 0 { &[Fetch::Unavailable] } else { &[] };
        handle
            .submit(task(&log, n, errors, Duration::from_millis(100)), 0)
            .await
            .unwrap();
    }
    let start = Instant::now();
    handle.idle().await;
    // Task 0 failed at 100ms and came back after its 1s backoff: done at 1.2s.
    assert_eq!(start.elapsed(), Duration::from_millis(1200));
    assert_eq!(log.of(0).len(), 2);
    assert!(!handle.is_closed());

    // More work: busy again, then idle again.
    handle
        .submit(task(&log, 4, &[], Duration::from_secs(2)), 0)
        .await
        .unwrap();
    let again = Instant::now();
    handle.idle().await;
    assert_eq!(again.elapsed(), Duration::from_secs(2));
    handle.close();
    assert_eq!(outcomes.await.unwrap(), 5);

    // In place, the stream is polled beside the wait.
    let (handle, mut done) = Pool::new(2).scheduler();
    for n in 0..3u64 {
        let job = boxed(move || async move {
            tokio::time::sleep(Duration::from_secs(n)).await;
            Ok::<_, ()>(n)
        });
        handle.try_submit(job, 0).unwrap();
    }
    let start = Instant::now();
    let consume = async { while done.next().await.is_some() {} };
    tokio::select! {
        () = handle.idle() => {}
        () = consume => unreachable!("the scheduler is open: its stream goes on"),
    }
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// Work discovered as the pool runs: a `#[pooled]` body that is a stream, fed back by the
/// tasks through a channel. A "crawl" of a tree where page `p` links to `2p + 1` and
/// `2p + 2` below 15: every page once, and the stream ends when the last sender is gone.
#[pooled(concurrency = 3, retry = "lifo")]
async fn crawl_tree(root: u32) -> Result<u32, ()> {
    let (found, pages) = futures::channel::mpsc::unbounded::<u32>();
    found.unbounded_send(root).unwrap();
    // Each task holds a sender while it may still find pages; the stream of pages ends
    // once every task that could send has finished.
    let found = Arc::new(Mutex::new(Some(found)));
    let pending = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    pages.map(move |page| {
        let (found, pending) = (Arc::clone(&found), Arc::clone(&pending));
        async move || {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let links = [2 * page + 1, 2 * page + 2]
                .into_iter()
                .filter(|&link| link < 15);
            let mut sender = found.lock().unwrap();
            for link in links {
                pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                sender.as_ref().unwrap().unbounded_send(link).unwrap();
            }
            if pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                // The last page: nothing more can be found.
                sender.take();
            }
            Ok(page)
        }
    })
}

#[pooled(concurrency = 3, retry = "lifo", spawn = true)]
async fn crawl_tree_spawned(pages: Vec<u32>) -> Result<u32, ()> {
    futures::stream::iter(pages).map(|page| async move || Ok(page * 10))
}

#[tokio::test(start_paused = true)]
async fn a_pooled_body_may_be_a_stream_of_tasks() {
    let mut pages: Vec<u32> = crawl_tree(0).map(Result::unwrap).collect().await;
    pages.sort_unstable();
    assert_eq!(pages, (0..15).collect::<Vec<_>>());

    let mut spawned: Vec<u32> = crawl_tree_spawned(vec![1, 2, 3])
        .map(Result::unwrap)
        .collect()
        .await;
    spawned.sort_unstable();
    assert_eq!(spawned, [10, 20, 30]);
}

/// The scheduler keeps the same retry control: `retry_if`, `retry_after` and the rate
/// limit, in place and spawned.
#[tokio::test(start_paused = true)]
async fn the_scheduler_keeps_retry_control() {
    for spawn in [false, true] {
        let log = Log::new();
        let pool = Pool::new(4)
            .retry(Retry::Lifo)
            .retry_if(transient)
            .retry_after(retry_after)
            .rate_limit(1, Duration::from_secs(1));
        let tasks = [
            task(&log, 0, &[Fetch::NotFound], Duration::ZERO),
            task(
                &log,
                1,
                &[Fetch::TooMany(Duration::from_secs(10))],
                Duration::ZERO,
            ),
            task(&log, 2, &[], Duration::ZERO),
        ];
        let (handle, done) = match spawn {
            true => {
                let (handle, done) = pool.spawn_scheduler();
                (handle, done.boxed_local())
            }
            false => {
                let (handle, done) = pool.scheduler();
                (handle, done.boxed_local())
            }
        };
        for task in tasks {
            handle.try_submit(task, 0).unwrap();
        }
        handle.close();
        let mut outcomes: Vec<(usize, Outcome)> = done
            .map(|(id, outcome)| (id.get(), outcome))
            .collect()
            .await;
        outcomes.sort_by_key(|&(id, _)| id);
        assert!(
            outcomes[0].1.as_ref().unwrap_err().is_permanent(),
            "spawn: {spawn}"
        );
        assert!(outcomes[1].1.is_ok() && outcomes[2].1.is_ok());
        let s = Duration::from_secs;
        // One start a second; task 1's 429 asks for 10s.
        assert_eq!(log.of(0), [s(0)], "spawn: {spawn}");
        assert_eq!(log.of(1), [s(1), s(11)], "spawn: {spawn}");
        assert_eq!(log.of(2), [s(2)], "spawn: {spawn}");
    }
}

/// `idle()` resolves only once every outcome has been taken from the stream: one settled
/// but still waiting for the consumer keeps the scheduler busy, in place and spawned.
#[tokio::test]
async fn idle_waits_for_the_consumer_to_take_every_outcome() {
    use futures::FutureExt as _;
    for spawn in [false, true] {
        let job = |n: u32| boxed(move || async move { Ok::<_, ()>(n) });
        let (handle, mut done) = match spawn {
            true => {
                let (handle, done) = Pool::new(2).spawn_scheduler();
                (handle, done.boxed_local())
            }
            false => {
                let (handle, done) = Pool::new(2).scheduler();
                (handle, done.boxed_local())
            }
        };
        for n in 0..2 {
            handle.try_submit(job(n), 0).unwrap();
        }
        assert!(done.next().await.is_some());
        // Both tasks have finished by now; one outcome has not been taken.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let early = tokio::time::timeout(Duration::from_millis(50), handle.idle()).await;
        assert!(
            early.is_err(),
            "idle before the last outcome was taken (spawn: {spawn})"
        );
        assert!(done.next().now_or_never().flatten().is_some());
        assert!(handle.idle().now_or_never().is_some(), "spawn: {spawn}");
        // Dropping the stream: nobody will take an outcome, nobody waits for one.
        handle.try_submit(job(2), 0).unwrap();
        drop(done);
        assert!(handle.idle().now_or_never().is_some(), "spawn: {spawn}");
    }
}
