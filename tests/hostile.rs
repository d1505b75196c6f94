//! Hostile inputs: concurrency from `usize::MAX` down to 1, `u32::MAX` attempts,
//! durations at their limits, empty inputs at every entry point, tasks that never wake
//! their waker and tasks that wake themselves forever. Each gives the documented behaviour,
//! and none hangs: every wait is under a `tokio::time::timeout`, so that a hang fails.
//!
//! Also the regression tests of the bugs these inputs found: attempts of a spawned pool
//! starting after its stream was dropped, a scheduler whose stream is gone still taking
//! (and holding) tasks, and cancellations lost to a finishing attempt.

use std::cell::Cell;
use std::future::{Future, pending, poll_fn};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

use futures::stream::FusedStream;
use futures::{FutureExt, Stream, StreamExt};
use retry_pool::hooks::{RetryAfter, RetryIf};
use retry_pool::{
    Backoff, BoxTask, Failure, Pool, PoolStream, Retry, SchedulerHandle, SubmitError, TaskId,
    boxed, pooled,
};
use support::Probe;
use tokio::time::{Instant, timeout};

// A counting allocator: the bytes allocated on a thread while it counts.

struct Tally;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

impl support::counting::Record for Tally {
    fn record(size: usize) {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            let _ = BYTES.try_with(|bytes| bytes.set(bytes.get().saturating_add(size)));
        }
    }
}

#[global_allocator]
static ALLOCATOR: support::counting::Counting<Tally> = support::counting::Counting::new();

/// Runs `future` to its end, and returns its output with the bytes allocated on this
/// thread meanwhile (on a current-thread runtime: the pool's, the tasks' and tokio's).
async fn bytes_allocated<T>(future: impl Future<Output = T>) -> (T, usize) {
    BYTES.with(|bytes| bytes.set(0));
    COUNTING.with(|counting| counting.set(true));
    let output = future.await;
    COUNTING.with(|counting| counting.set(false));
    (output, BYTES.with(Cell::get))
}

/// A scheduler of boxed tasks, in place or spawned, and its stream.
#[allow(clippy::type_complexity)] // an `impl Stream` cannot be named by an alias
fn scheduler<T, E, If, After>(
    pool: Pool<If, After>,
    spawn: bool,
) -> (
    SchedulerHandle<BoxTask<T, E>>,
    impl Stream<Item = (TaskId, Result<T, Failure<E>>)> + Unpin,
)
where
    T: Send + 'static,
    E: Send + 'static,
    If: RetryIf<E>,
    After: RetryAfter<E>,
{
    if spawn {
        let (handle, done) = pool.spawn_scheduler();
        (handle, futures::future::Either::Left(done))
    } else {
        let (handle, done) = pool.scheduler();
        (handle, futures::future::Either::Right(done))
    }
}

/// Where a task finds its own handle and id, once submitted: to cancel itself.
type Me = Arc<OnceLock<(SchedulerHandle<BoxTask<u8, u8>>, TaskId)>>;

/// `future`'s output, or a failure when it takes longer than `secs` (on the runtime's
/// clock: a hang of a paused clock fails at once).
#[track_caller]
fn within<T>(secs: u64, future: impl Future<Output = T>) -> impl Future<Output = T> {
    let at = std::panic::Location::caller();
    async move {
        match timeout(Duration::from_secs(secs), future).await {
            Ok(output) => output,
            Err(_) => panic!("hung: no answer within {secs}s (at {at})"),
        }
    }
}

/// A scheduler's task that returns `result` 5ms after each start.
fn after_a_moment(result: Result<u8, u8>) -> BoxTask<u8, u8> {
    boxed(move || async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        result
    })
}

/// Counts the drops of what it is captured by.
#[derive(Clone, Debug, Default)]
struct Drops(Arc<AtomicUsize>);

impl Drops {
    fn guard(&self) -> DropGuard {
        DropGuard(self.clone())
    }

    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }

    /// Waits (a bounded while) until `n` drops are counted: spawned attempts are dropped
    /// once the abort reaches them.
    async fn until(&self, n: usize) -> usize {
        for _ in 0..2_000 {
            if self.count() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.count()
    }
}

struct DropGuard(Drops);

impl Drop for DropGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_add(1, SeqCst);
    }
}

/// An async closure failing its first `failures` attempts, counting its attempts in
/// `attempts`: for the in-place flavour.
fn flaky_async(
    n: usize,
    failures: u32,
    attempts: &Arc<AtomicU32>,
) -> impl AsyncFnMut() -> Result<usize, usize> + Send + use<> {
    let attempts = Arc::clone(attempts);
    async move || {
        let attempt = attempts.fetch_add(1, SeqCst) + 1;
        tokio::task::yield_now().await;
        if attempt <= failures { Err(n) } else { Ok(n) }
    }
}

/// A closure returning a future, failing its first `failures` attempts, counting its
/// attempts in `attempts`: for the spawned flavour and the schedulers.
fn flaky(
    n: usize,
    failures: u32,
    attempts: &Arc<AtomicU32>,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Result<usize, usize>> + Send>> + Send + 'static
{
    let attempts = Arc::clone(attempts);
    move || {
        let attempt = attempts.fetch_add(1, SeqCst) + 1;
        Box::pin(async move {
            tokio::task::yield_now().await;
            if attempt <= failures { Err(n) } else { Ok(n) }
        })
    }
}

// 1. Concurrency from usize::MAX down to 1.

const CONCURRENCIES: [usize; 10] = [
    usize::MAX,
    usize::MAX - 1,
    1 << 48,
    u32::MAX as usize,
    1 << 16,
    1000,
    64,
    7,
    2,
    1,
];

/// Each concurrency runs a small input in place, spawned and in both schedulers, with
/// retries, with every outcome and the bound as for any other concurrency, and no more
/// than a small, fixed amount of memory (nothing sized by the concurrency).
#[tokio::test]
async fn concurrency_from_usize_max_down_to_1() {
    const TASKS: usize = 50;
    for concurrency in CONCURRENCIES {
        let pool = Pool::new(concurrency).retry(Retry::Lifo).attempts(2);
        let bound = concurrency.min(TASKS);
        assert_eq!(pool.concurrency(), concurrency);

        let probe = Probe::new();
        let tasks = (0..TASKS).map(|n| {
            let probe = probe.clone();
            let mut attempt = 0;
            async move || {
                attempt += 1;
                let _in_flight = probe.enter();
                tokio::task::yield_now().await;
                if n % 5 == 0 && attempt == 1 {
                    Err(n)
                } else {
                    Ok(n)
                }
            }
        });
        let (outcomes, bytes) =
            bytes_allocated(within(10, pool.run(tasks).collect::<Vec<_>>())).await;
        let mut ok: Vec<usize> = outcomes.into_iter().map(Result::unwrap).collect();
        ok.sort_unstable();
        assert_eq!(
            ok,
            (0..TASKS).collect::<Vec<_>>(),
            "in place, {concurrency}"
        );
        assert!(
            probe.peak() <= bound,
            "in place, {concurrency}: peak {}",
            probe.peak()
        );
        assert_eq!(probe.started(), TASKS + TASKS / 5);
        assert!(
            bytes < 1 << 20,
            "in place, {concurrency}: {bytes} bytes allocated"
        );

        let counts: Vec<_> = (0..TASKS).map(|_| Arc::new(AtomicU32::new(0))).collect();
        let tasks: Vec<_> = (0..TASKS)
            .map(|n| flaky(n, u32::from(n % 5 == 0), &counts[n]))
            .collect();
        let (outcomes, bytes) =
            bytes_allocated(within(10, pool.spawn(tasks).collect::<Vec<_>>())).await;
        assert_eq!(outcomes.len(), TASKS, "spawned, {concurrency}");
        assert!(outcomes.iter().all(Result::is_ok), "spawned, {concurrency}");
        assert!(
            bytes < 4 << 20,
            "spawned, {concurrency}: {bytes} bytes allocated"
        );

        let (handle, done) = pool.max_waiting(usize::MAX).scheduler();
        let (spawned_handle, spawned_done) = pool.spawn_scheduler();
        for n in 0..TASKS {
            let once = Arc::new(AtomicU32::new(0));
            handle
                .try_submit(boxed(flaky(n, 1, &once)), n as i32)
                .unwrap();
            let once = Arc::new(AtomicU32::new(0));
            spawned_handle
                .try_submit(boxed(flaky(n, 1, &once)), -(n as i32))
                .unwrap();
        }
        drop((handle, spawned_handle));
        let outcomes: Vec<_> = within(10, done.collect::<Vec<_>>()).await;
        assert!(outcomes.iter().all(|(_, o)| o.is_ok()) && outcomes.len() == TASKS);
        let outcomes: Vec<_> = within(10, spawned_done.collect::<Vec<_>>()).await;
        assert!(outcomes.iter().all(|(_, o)| o.is_ok()) && outcomes.len() == TASKS);
    }
}

/// A pool far wider than its input, polled by hand: the first poll starts every task at
/// once (the bound is the input), and no more slots are made than tasks.
#[tokio::test]
async fn usize_max_concurrency_starts_the_whole_input_at_once() {
    let probe = Probe::new();
    let gate = Arc::new(tokio::sync::Notify::new());
    let tasks = (0..300).map(|n| {
        let (probe, gate) = (probe.clone(), Arc::clone(&gate));
        async move || {
            let _in_flight = probe.enter();
            gate.notified().await;
            Ok::<_, ()>(n)
        }
    });
    let mut done = Pool::new(usize::MAX).run(tasks);
    assert!(futures::poll!(done.next()).is_pending());
    assert_eq!(probe.in_flight(), 300);
    gate.notify_waiters();
    assert_eq!(within(10, done.count()).await, 300);
}

// 2. attempts = u32::MAX.

#[tokio::test(start_paused = true)]
async fn u32_max_attempts_succeed_after_a_few() {
    for retry in [Retry::Lifo, Retry::Fifo] {
        for backoff in [
            None,
            Some(Backoff::exponential(
                Duration::from_millis(1),
                Duration::from_secs(1),
            )),
        ] {
            let mut pool = Pool::new(3).retry(retry).attempts(u32::MAX);
            if let Some(backoff) = backoff {
                pool = pool.backoff(backoff);
            }
            assert_eq!(pool.max_attempts(), u32::MAX);
            let counts: Vec<_> = (0..20).map(|_| Arc::new(AtomicU32::new(0))).collect();
            let in_place = counts.iter().enumerate().map(|(n, count)| {
                let count = Arc::clone(count);
                async move || {
                    let attempt = count.fetch_add(1, SeqCst) + 1;
                    if attempt <= n as u32 * 3 {
                        Err(attempt)
                    } else {
                        Ok(attempt)
                    }
                }
            });
            let outcomes: Vec<_> = within(3600, pool.run(in_place).collect::<Vec<_>>()).await;
            let mut attempts: Vec<u32> = outcomes.into_iter().map(Result::unwrap).collect();
            attempts.sort_unstable();
            assert_eq!(attempts, (0..20).map(|n| n * 3 + 1).collect::<Vec<u32>>());

            let counts: Vec<_> = (0..20).map(|_| Arc::new(AtomicU32::new(0))).collect();
            let spawned: Vec<_> = (0..20)
                .map(|n| flaky(n, n as u32 * 3, &counts[n]))
                .collect();
            let outcomes: Vec<_> = within(3600, pool.spawn(spawned).collect::<Vec<_>>()).await;
            assert!(outcomes.iter().all(Result::is_ok));
            for (n, count) in counts.iter().enumerate() {
                assert_eq!(count.load(SeqCst), n as u32 * 3 + 1);
            }
        }
    }
}

/// A task that always fails, allowed `u32::MAX` attempts: its attempts go on being
/// counted without overflow (10,000 of them here, then the stream is dropped), and the
/// same task with a bounded count ends after exactly that many.
#[tokio::test(start_paused = true)]
async fn u32_max_attempts_of_a_task_that_always_fails() {
    const SEEN: u32 = 10_000;
    for spawn in [false, true] {
        let count = Arc::new(AtomicU32::new(0));
        let seen_enough = Arc::new(tokio::sync::Notify::new());
        let always = {
            let (count, seen_enough) = (Arc::clone(&count), Arc::clone(&seen_enough));
            move || {
                let (count, seen_enough) = (Arc::clone(&count), Arc::clone(&seen_enough));
                async move {
                    if count.fetch_add(1, SeqCst) + 1 == SEEN {
                        seen_enough.notify_one();
                    }
                    tokio::task::yield_now().await;
                    Err::<(), _>("never")
                }
            }
        };
        // With a backoff, doubling from 1ns and capped at 1µs: the doubling count goes far
        // past what a `u32` shift could take.
        let pool =
            Pool::new(2)
                .retry(Retry::Lifo)
                .attempts(u32::MAX)
                .backoff(Backoff::exponential(
                    Duration::from_nanos(1),
                    Duration::from_micros(1),
                ));
        let mut done: std::pin::Pin<Box<dyn Stream<Item = _>>> = if spawn {
            Box::pin(pool.spawn([always]))
        } else {
            Box::pin(pool.run([always]))
        };
        tokio::select! {
            outcome = done.next() => panic!("a task with u32::MAX attempts gave up: {outcome:?}"),
            () = within(3600, seen_enough.notified()) => {}
        }
        drop(done);
        let seen = count.load(SeqCst);
        assert!((SEEN..SEEN + 2).contains(&seen), "{seen}");

        // Bounded: it ends, after exactly its attempts.
        let count = Arc::new(AtomicU32::new(0));
        let pool = Pool::new(2).retry(Retry::Fifo).attempts(1000);
        let outcomes: Vec<_> = if spawn {
            within(60, pool.spawn([flaky(0, u32::MAX, &count)]).collect()).await
        } else {
            within(60, pool.run([flaky_async(0, u32::MAX, &count)]).collect()).await
        };
        assert_eq!(count.load(SeqCst), 1000);
        let failure = outcomes[0].as_ref().unwrap_err();
        assert_eq!((failure.attempts(), failure.error()), (1000, Some(&0)));
    }
    // The backoff of the billionth failure is as defined: capped, no overflow.
    let exponential = Backoff::exponential(Duration::from_millis(1), Duration::from_secs(60));
    assert_eq!(exponential.nominal_delay(u32::MAX), Duration::from_secs(60));
    assert_eq!(exponential.nominal_delay(0), Duration::from_millis(1));
    assert_eq!(
        Backoff::fixed(Duration::MAX).nominal_delay(u32::MAX),
        Duration::MAX
    );
    let wide = Backoff::exponential(Duration::from_nanos(1), Duration::MAX);
    let mut last = Duration::ZERO;
    for failures in (0..64).chain([1000, u32::MAX - 1, u32::MAX]) {
        let delay = wide.nominal_delay(failures);
        assert!(delay >= last, "delays never shrink: {failures}");
        last = delay;
    }
}

// 3. Durations at their limits.

/// `Duration::MAX` as a timeout is a timeout that never fires: attempts that take 1,000
/// days succeed, and one that never ends is still running ten years on.
#[tokio::test(start_paused = true)]
async fn a_duration_max_timeout_never_fires() {
    const DAY: u64 = 86400;
    let drops = Drops::default();
    for spawn in [false, true] {
        let long = (0..4).map(|n| {
            move || async move {
                tokio::time::sleep(Duration::from_secs(1000 * DAY)).await;
                Ok::<_, ()>(n)
            }
        });
        let pool = Pool::new(4).timeout(Duration::MAX);
        let outcomes: Vec<_> = if spawn {
            within(2000 * DAY, pool.spawn(long).collect()).await
        } else {
            within(2000 * DAY, pool.run(long).collect()).await
        };
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

        let guard = drops.clone();
        let forever = move || {
            let guard = guard.guard();
            async move {
                let _guard = guard;
                pending::<Result<(), ()>>().await
            }
        };
        let mut done: std::pin::Pin<Box<dyn Stream<Item = _>>> = if spawn {
            Box::pin(Pool::new(1).timeout(Duration::MAX).spawn([forever]))
        } else {
            Box::pin(Pool::new(1).timeout(Duration::MAX).run([forever]))
        };
        let start = Instant::now();
        let waited = timeout(Duration::from_secs(10 * 365 * DAY), done.next()).await;
        assert!(waited.is_err(), "the timeout never fires: {waited:?}");
        assert!(start.elapsed() >= Duration::from_secs(10 * 365 * DAY));
        drop(done);
    }
    assert_eq!(
        drops.until(2).await,
        2,
        "the endless attempts were dropped with their streams"
    );
}

/// `Duration::MAX` as a backoff saturates: no panic on adding it to the clock, the task
/// waits out its backoff without a slot while the others finish, and dropping the stream
/// ends the wait. Jittered and exponential backoffs at the limit too.
#[tokio::test(start_paused = true)]
async fn a_duration_max_backoff_saturates() {
    const YEAR: u64 = 365 * 86400;
    for backoff in [
        Backoff::fixed(Duration::MAX),
        Backoff::exponential(Duration::MAX, Duration::MAX),
        Backoff::exponential(Duration::MAX / 2, Duration::MAX),
        Backoff::exponential(Duration::MAX, Duration::ZERO),
    ] {
        for spawn in [false, true] {
            let counts: Vec<_> = (0..6).map(|_| Arc::new(AtomicU32::new(0))).collect();
            // Task 0 fails once, and then waits out its backoff.
            let failures = |n| u32::from(n == 0);
            let pool = Pool::new(2).retry(Retry::Lifo).attempts(2).backoff(backoff);
            let mut done: std::pin::Pin<Box<dyn Stream<Item = _>>> = if spawn {
                let tasks: Vec<_> = (0..6).map(|n| flaky(n, failures(n), &counts[n])).collect();
                Box::pin(pool.spawn(tasks))
            } else {
                let tasks: Vec<_> = (0..6)
                    .map(|n| flaky_async(n, failures(n), &counts[n]))
                    .collect();
                Box::pin(pool.run(tasks))
            };
            for _ in 1..6 {
                let outcome = within(1, done.next()).await.unwrap();
                assert_ne!(outcome, Ok(0));
            }
            let waited = timeout(Duration::from_secs(10 * YEAR), done.next()).await;
            assert!(
                waited.is_err(),
                "{backoff:?}: still in its backoff ten years on"
            );
            assert_eq!(counts[0].load(SeqCst), 1);
            drop(done);
        }
    }
    // And in a scheduler, where the task in its backoff can be cancelled.
    let (handle, mut done) = Pool::new(1)
        .retry(Retry::Lifo)
        .backoff(Backoff::fixed(Duration::MAX))
        .scheduler();
    let count = Arc::new(AtomicU32::new(0));
    let id = handle.try_submit(boxed(flaky(0, 1, &count)), 0).unwrap();
    assert!(
        timeout(Duration::from_secs(YEAR), done.next())
            .await
            .is_err()
    );
    assert_eq!(handle.stats().waiting, 1);
    assert!(handle.cancel(id));
    let (cancelled, outcome) = within(1, done.next()).await.unwrap();
    assert_eq!(cancelled, id);
    assert!(outcome.unwrap_err().is_cancelled());
}

/// Zero durations: a zero timeout lets an attempt that is ready at once succeed and
/// times out one that is not; a zero backoff retries at once.
#[tokio::test(start_paused = true)]
async fn zero_durations() {
    for spawn in [false, true] {
        let tasks = (0..4).map(|n| {
            move || async move {
                if n % 2 == 1 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok::<_, ()>(n)
            }
        });
        let pool = Pool::new(2).timeout(Duration::ZERO);
        let outcomes: Vec<_> = if spawn {
            within(1, pool.spawn(tasks).collect()).await
        } else {
            within(1, pool.run(tasks).collect()).await
        };
        let mut ok: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        ok.sort_unstable();
        assert_eq!(ok, [&0, &2], "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err())
                .all(|f| f.is_timeout())
        );

        for backoff in [
            Backoff::fixed(Duration::ZERO),
            Backoff::exponential(Duration::ZERO, Duration::ZERO),
        ] {
            let counts: Vec<_> = (0..4).map(|_| Arc::new(AtomicU32::new(0))).collect();
            let pool = Pool::new(2).retry(Retry::Fifo).attempts(3).backoff(backoff);
            let start = Instant::now();
            let outcomes: Vec<_> = if spawn {
                let tasks: Vec<_> = (0..4).map(|n| flaky(n, 2, &counts[n])).collect();
                within(1, pool.spawn(tasks).collect()).await
            } else {
                let tasks: Vec<_> = (0..4).map(|n| flaky_async(n, 2, &counts[n])).collect();
                within(1, pool.run(tasks).collect()).await
            };
            assert!(outcomes.iter().all(Result::is_ok));
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
    }
}

// 4. Empty inputs at every entry point.

#[pooled(concurrency = 3, retry = "lifo")]
async fn nothing_in_place() -> Result<u8, ()> {
    std::iter::empty::<fn() -> std::future::Ready<Result<u8, ()>>>()
}

#[pooled(concurrency = 3, spawn = true)]
async fn nothing_spawned() -> Result<u8, ()> {
    Vec::<std::future::Ready<Result<u8, ()>>>::new()
}

/// Ends at once, says so again, and counts nothing.
async fn ends_at_once<S>(mut stream: S, what: &str)
where
    S: Stream + FusedStream + Unpin,
    S::Item: std::fmt::Debug,
{
    assert!(within(1, stream.next()).await.is_none(), "{what}");
    assert!(stream.is_terminated(), "{what}");
    assert!(within(1, stream.next()).await.is_none(), "{what}: fused");
}

#[tokio::test(start_paused = true)]
async fn empty_inputs_end_at_once_everywhere() {
    type Task = fn() -> std::future::Ready<Result<u8, ()>>;
    for concurrency in [1, usize::MAX] {
        let pool = Pool::new(concurrency).retry(Retry::Lifo);
        let done = pool.run(Vec::<Task>::new());
        assert_eq!(done.stats(), Default::default());
        ends_at_once(done, "run").await;
        ends_at_once(
            pool.run_stream(futures::stream::empty::<Task>()),
            "run_stream",
        )
        .await;
        ends_at_once(
            Pool::new(concurrency)
                .run_futures(std::iter::empty::<std::future::Ready<Result<u8, ()>>>()),
            "run_futures",
        )
        .await;
        let done = pool.spawn(Vec::<Task>::new());
        assert_eq!(done.stats(), Default::default());
        ends_at_once(done, "spawn").await;
        ends_at_once(
            Pool::new(concurrency).spawn_futures(Vec::<std::future::Ready<Result<u8, ()>>>::new()),
            "spawn_futures",
        )
        .await;

        let (handle, done) = pool.scheduler::<Task, _, _>();
        handle.close();
        ends_at_once(done, "scheduler, closed").await;
        let (handle, done) = pool.scheduler::<Task, _, _>();
        drop(handle);
        ends_at_once(done, "scheduler, handle dropped").await;
        let (handle, done) = pool.spawn_scheduler::<Task, _, _>();
        handle.close();
        ends_at_once(done, "spawn_scheduler, closed").await;
        let (handle, done) = pool.spawn_scheduler::<Task, _, _>();
        drop(handle.clone());
        drop(handle);
        ends_at_once(done, "spawn_scheduler, handles dropped").await;
    }
    assert!(within(1, nothing_in_place().next()).await.is_none());
    assert!(within(1, nothing_spawned().next()).await.is_none());
}

// 5. Tasks that never wake their waker.

/// Pending without keeping the waker: nothing will ever poll it again but a timeout.
fn never_wakes(drops: &Drops) -> impl Future<Output = Result<usize, usize>> + Send + use<> {
    let guard = drops.guard();
    poll_fn(move |_| {
        let _keep = &guard;
        Poll::Pending
    })
}

/// In place: a timeout still ends them (retried, then `is_timeout`), the other tasks'
/// outcomes come meanwhile; without a timeout they stay pending and dropping the stream
/// drops them.
#[tokio::test(start_paused = true)]
async fn tasks_that_never_wake_in_place() {
    let drops = Drops::default();
    let tasks = (0..10).map(|n| {
        let drops = drops.clone();
        async move || match n % 3 {
            0 => never_wakes(&drops).await,
            _ => Ok(n),
        }
    });
    let outcomes: Vec<_> = within(
        10,
        Pool::new(3)
            .retry(Retry::Lifo)
            .attempts(2)
            .timeout(Duration::from_millis(50))
            .run(tasks)
            .collect(),
    )
    .await;
    for outcome in &outcomes {
        match outcome {
            Ok(n) => assert_ne!(n % 3, 0),
            Err(failure) => {
                assert!(failure.is_timeout() && failure.attempts() == 2);
                assert_eq!(failure.index() % 3, 0);
            }
        }
    }
    assert_eq!(outcomes.len(), 10);
    assert_eq!(
        drops.count(),
        8,
        "4 tasks, 2 attempts each, each dropped at its timeout"
    );

    let drops = Drops::default();
    let tasks = (0..10).map(|n| {
        let drops = drops.clone();
        async move || match n % 3 {
            0 => never_wakes(&drops).await,
            _ => Ok(n),
        }
    });
    let mut done = Pool::new(5).run(tasks);
    let mut ok = 0;
    while let Ok(Some(outcome)) = timeout(Duration::from_secs(1), done.next()).await {
        assert_ne!(outcome.unwrap() % 3, 0);
        ok += 1;
    }
    assert_eq!(ok, 6, "every other task's outcome came");
    assert_eq!(drops.count(), 0);
    drop(done);
    assert_eq!(drops.count(), 4, "dropped with the stream");
}

#[tokio::test(start_paused = true)]
async fn tasks_that_never_wake_spawned() {
    for with_timeout in [true, false] {
        let drops = Drops::default();
        let tasks: Vec<_> = (0..10)
            .map(|n| {
                let drops = drops.clone();
                move || {
                    let never = (n % 3 == 0).then(|| never_wakes(&drops));
                    async move {
                        match never {
                            Some(never) => never.await,
                            None => Ok(n),
                        }
                    }
                }
            })
            .collect();
        let mut pool = Pool::new(5);
        if with_timeout {
            pool = pool.timeout(Duration::from_millis(50));
        }
        let mut done = pool.spawn(tasks);
        let mut seen = 0;
        while let Ok(Some(outcome)) = timeout(Duration::from_secs(1), done.next()).await {
            match outcome {
                Ok(n) => assert_ne!(n % 3, 0),
                Err(failure) => assert!(with_timeout && failure.is_timeout()),
            }
            seen += 1;
        }
        drop(done);
        assert_eq!(seen, if with_timeout { 10 } else { 6 });
        // Made 4 times each; the attempts are dropped by their timeout or the abort.
        assert_eq!(drops.until(4).await, 4, "timeout {with_timeout}");
    }
}

/// A scheduler's cancel drops an attempt that never wakes, in place at once, spawned soon.
#[tokio::test(start_paused = true)]
async fn cancelling_a_task_that_never_wakes() {
    fn never(drops: &Drops) -> BoxTask<usize, usize> {
        let (drops, task) = (drops.clone(), drops.guard());
        boxed(move || {
            let _task = &task;
            never_wakes(&drops)
        })
    }
    let drops = Drops::default();
    let (handle, mut done) = Pool::new(2).scheduler();
    let stuck = handle.try_submit(never(&drops), 0).unwrap();
    assert!(futures::poll!(done.next()).is_pending());
    assert!(handle.cancel(stuck));
    assert_eq!(drops.count(), 0);
    let (id, outcome) = within(1, done.next()).await.unwrap();
    assert_eq!(id, stuck);
    assert!(outcome.unwrap_err().is_cancelled());
    assert_eq!(
        drops.count(),
        2,
        "the attempt and then the task were dropped"
    );

    let drops = Drops::default();
    let (handle, mut done) = Pool::new(2).spawn_scheduler();
    let stuck = handle.try_submit(never(&drops), 0).unwrap();
    assert!(
        timeout(Duration::from_millis(10), done.next())
            .await
            .is_err()
    );
    assert!(handle.cancel(stuck));
    let (id, outcome) = within(1, done.next()).await.unwrap();
    assert_eq!(id, stuck);
    assert!(outcome.unwrap_err().is_cancelled());
    assert_eq!(drops.until(2).await, 2);
}

// 6. Tasks that wake themselves in a loop.

/// Wakes itself and returns `Pending`, forever (or for `polls` polls).
fn busy(polls: usize) -> impl Future<Output = Result<usize, usize>> + Send {
    let mut left = polls;
    poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(Ok(usize::MAX));
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// On the real clock: a paused clock never moves while a task is always busy.
#[tokio::test]
async fn tasks_that_wake_themselves_forever_in_place() {
    // Task 0 spins forever; the others yield a while, then succeed.
    let tasks = (0..20usize).map(|n| {
        async move || match n {
            0 => busy(usize::MAX).await,
            _ => {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                Ok(n)
            }
        }
    });
    let mut done = Pool::new(4).run(tasks);
    // Each poll returns.
    for _ in 0..3 {
        let _ = futures::poll!(done.next());
    }
    let mut seen = Vec::new();
    while seen.len() < 19 {
        seen.push(within(10, done.next()).await.unwrap().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..20).collect::<Vec<_>>());
    assert!(futures::poll!(done.next()).is_pending());
    drop(done);

    // With a timeout, the spinning task ends too; a long but finite spin succeeds.
    let tasks = (0..3usize).map(|n| {
        async move || match n {
            0 => busy(usize::MAX).await,
            1 => busy(1_000).await,
            _ => Ok(n),
        }
    });
    let outcomes: Vec<_> = within(
        30,
        Pool::new(3)
            .timeout(Duration::from_millis(500))
            .run(tasks)
            .collect(),
    )
    .await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.contains(&Ok(usize::MAX)) && outcomes.contains(&Ok(2)));
    assert!(
        outcomes
            .iter()
            .any(|o| o.as_ref().is_err_and(|f| f.is_timeout()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_wake_themselves_forever_spawned() {
    let drops = Drops::default();
    let tasks: Vec<_> = (0..20usize)
        .map(|n| {
            let drops = drops.clone();
            move || {
                let guard = drops.guard();
                async move {
                    let _guard = guard;
                    match n {
                        0 | 1 => busy(usize::MAX).await,
                        _ => {
                            tokio::task::yield_now().await;
                            Ok(n)
                        }
                    }
                }
            }
        })
        .collect();
    let mut done = Pool::new(4).spawn(tasks);
    let mut seen = Vec::new();
    while seen.len() < 18 {
        seen.push(within(10, done.next()).await.unwrap().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (2..20).collect::<Vec<_>>());
    drop(done);
    assert_eq!(
        drops.until(20).await,
        20,
        "the spinning attempts were aborted"
    );
}

// Regressions.

/// Spawned: nothing starts after the stream is dropped, though attempts were spawned and
/// not yet polled when it was (here the first attempt to run drops it, on a current-thread
/// runtime, with the others spawned and queued behind it).
#[tokio::test]
async fn spawned_nothing_starts_after_the_stream_is_dropped() {
    type Shared = Arc<Mutex<Option<retry_pool::Spawned<Result<usize, ()>>>>>;
    let stream = Shared::default();
    let dropped = Arc::new(AtomicBool::new(false));
    let late = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8usize)
        .map(|n| {
            let (stream, dropped, late) = (stream.clone(), dropped.clone(), late.clone());
            move || {
                let (stream, dropped, late) = (stream.clone(), dropped.clone(), late.clone());
                async move {
                    if dropped.load(SeqCst) {
                        late.fetch_add(1, SeqCst);
                    }
                    // The first attempt to start drops the stream.
                    let taken = stream.lock().unwrap().take();
                    if let Some(taken) = taken {
                        drop(taken);
                        dropped.store(true, SeqCst);
                    }
                    pending::<()>().await;
                    Ok(n)
                }
            }
        })
        .collect();
    let mut done = Pool::new(4).spawn(tasks);
    assert!(futures::poll!(done.next()).is_pending());
    *stream.lock().unwrap() = Some(done);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(dropped.load(SeqCst));
    assert_eq!(
        late.load(SeqCst),
        0,
        "attempts started after the stream was dropped"
    );
}

/// A scheduler whose stream is dropped takes no more tasks: `try_submit` and `submit`
/// say it is closed (a `submit` waiting for room in a full line would otherwise wait
/// forever), and the tasks waiting in its line are dropped with it.
#[tokio::test(start_paused = true)]
async fn a_scheduler_without_its_stream_is_closed() {
    for spawn in [false, true] {
        let drops = Drops::default();
        let task = |drops: &Drops| -> BoxTask<(), ()> {
            let guard = drops.guard();
            boxed(move || {
                let _keep = &guard;
                tokio::time::sleep(Duration::from_secs(1)).map(Ok)
            })
        };
        let pool = Pool::new(1).max_waiting(2);
        let (handle, done) = scheduler(pool, spawn);
        handle.try_submit(task(&drops), 0).unwrap();
        handle.try_submit(task(&drops), 0).unwrap();
        assert!(matches!(
            handle.try_submit(task(&drops), 0),
            Err(SubmitError::Full(_))
        ));
        let mut done = done;
        // The first task starts; the second waits in line.
        assert!(futures::poll!(done.next()).is_pending());
        tokio::task::yield_now().await;
        drop(done);
        // A spawned scheduler's line goes with its driver, which was never started here.
        assert_eq!(
            drops.until(3).await,
            3,
            "spawn {spawn}: the waiting tasks were dropped"
        );
        assert!(handle.is_closed(), "spawn {spawn}");
        assert!(matches!(
            handle.try_submit(task(&drops), 0),
            Err(SubmitError::Closed(_))
        ));
        let submitted = within(1, handle.submit(task(&drops), 0)).await;
        assert!(
            matches!(submitted, Err(SubmitError::Closed(_))),
            "spawn {spawn}"
        );
    }
}

/// The same, with the stream dropped while a `submit` waits for room.
#[tokio::test(start_paused = true)]
async fn a_waiting_submit_ends_when_the_stream_is_dropped() {
    let (handle, done) = Pool::new(1).max_waiting(1).scheduler();
    handle
        .try_submit(boxed(|| async { Ok::<_, ()>(()) }), 0)
        .unwrap();
    let waiting = tokio::spawn({
        let handle = handle.clone();
        async move {
            handle
                .submit(boxed(|| async { Ok(()) }), 0)
                .await
                .map(|_| ())
        }
    });
    tokio::task::yield_now().await;
    drop(done);
    let submitted = within(1, waiting).await.unwrap();
    assert!(matches!(submitted, Err(SubmitError::Closed(_))));
}

// Cancellations racing a failing attempt (found by the chaos soak, fixed). A cancel of a
// running task (`Cancel::Started`) used to be lost when the attempt failed before the pool
// looked at it: the failure was settled first (retried in the same poll under LIFO, handed
// back to the scheduler's line under FIFO, or, spawned, the abort landed on a finished
// attempt), and the task ran on to its last attempt. Now `Backlog::settle` takes a pending
// cancel from the source (`Source::take_cancel`) or from the spawned driver (an attempt it
// aborted) before it decides on a retry, and `LineSource::requeue` turns a cancel that
// arrives in between into a cancel of a waiting task.

/// A task that cancels itself during its attempt and then fails: the cancellation must
/// not be lost when the failure sends it back into the line (FIFO), nor when its attempt
/// had ended before the cancellation reached a spawned driver. It ends cancelled after
/// that one attempt, and never runs again.
#[tokio::test(start_paused = true)]
async fn a_cancel_racing_a_failing_attempt_is_not_lost() {
    let mut lost = Vec::new();
    for retry in [Retry::Fifo, Retry::Lifo] {
        for spawn in [false, true] {
            let pool = Pool::new(1).retry(retry).attempts(3);
            let (handle, done) = scheduler(pool, spawn);
            let mut done = done;
            let me: Me = Arc::default();
            let attempts = Arc::new(AtomicU32::new(0));
            let doomed = {
                let (me, attempts) = (Arc::clone(&me), Arc::clone(&attempts));
                boxed(move || {
                    attempts.fetch_add(1, SeqCst);
                    let me = Arc::clone(&me);
                    async move {
                        if let Some((handle, id)) = me.get() {
                            assert!(handle.cancel(*id), "not finished yet");
                        }
                        Err(0)
                    }
                })
            };
            let id = handle.try_submit(doomed, 0).unwrap();
            // Another task waits behind it, so that a FIFO retry goes back in line.
            let other = handle.try_submit(after_a_moment(Ok(1)), 0).unwrap();
            me.set((handle.clone(), id)).ok().unwrap();
            handle.close();
            let outcomes: Vec<_> = within(10, (&mut done).collect::<Vec<_>>()).await;
            // Break the cycle through the task's own handle.
            drop(me);
            let what = format!("{retry:?}, spawn {spawn}");
            assert_eq!(outcomes.len(), 2, "{what}");
            let (_, mine) = outcomes.iter().find(|(i, _)| *i == id).unwrap();
            let (_, theirs) = outcomes.iter().find(|(i, _)| *i == other).unwrap();
            assert_eq!(theirs, &Ok(1), "{what}");
            let attempts = attempts.load(SeqCst);
            if !mine.as_ref().is_err_and(|f| f.is_cancelled()) || attempts != 1 {
                lost.push(format!("{what}: {mine:?} after {attempts} attempts"));
            }
        }
    }
    assert!(lost.is_empty(), "cancellations lost: {lost:#?}");
}

/// A cancel that comes while the attempt's end is being settled (here from `retry_if`,
/// which runs after the pool looked for a cancel and before the outcome is out) still
/// holds: `cancel` returned `true`, so the task ends cancelled, not with its error. Found
/// by reading the engine: before, the task ended `Err(error)`, not retried, and the
/// cancel was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_inside_the_settling_of_an_attempt_is_kept() {
    for spawn in [false, true] {
        let me: Me = Arc::default();
        let asked = Arc::new(AtomicU32::new(0));
        let pool = {
            let (me, asked) = (Arc::clone(&me), Arc::clone(&asked));
            Pool::new(1)
                .retry(Retry::Lifo)
                .attempts(3)
                .retry_if(move |_: &u8| {
                    asked.fetch_add(1, SeqCst);
                    if let Some((handle, id)) = me.get() {
                        assert!(handle.cancel(*id), "not finished yet");
                    }
                    false
                })
        };
        let (handle, done) = scheduler(pool, spawn);
        let id = handle.try_submit(after_a_moment(Err(7)), 0).unwrap();
        me.set((handle.clone(), id)).ok().unwrap();
        handle.close();
        let outcomes: Vec<_> = within(10, done.collect::<Vec<_>>()).await;
        // Break the cycle through the hook's handle.
        drop(me);
        assert_eq!(asked.load(SeqCst), 1, "spawn {spawn}");
        assert_eq!(outcomes.len(), 1, "spawn {spawn}");
        let failure = outcomes[0].1.as_ref().unwrap_err();
        assert!(failure.is_cancelled(), "spawn {spawn}: {failure:?}");
        assert_eq!(failure.attempts(), 1, "spawn {spawn}");
        assert_eq!(handle.stats().cancelled, 1, "spawn {spawn}");
    }
}

/// Spawned: an attempt that ends (with an error) before the cancellation is taken is not
/// retried; here the retry waits for room, the buffer being full of outcomes for a
/// consumer that does not read, while the task is cancelled.
#[tokio::test(start_paused = true)]
async fn spawned_cancel_of_an_attempt_that_already_failed() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let attempts = Arc::new(AtomicU32::new(0));
    let (handle, mut done) = Pool::new(2)
        .retry(Retry::Lifo)
        .attempts(3)
        .spawn_scheduler();
    let failing = {
        let (gate, attempts) = (Arc::clone(&gate), Arc::clone(&attempts));
        boxed(move || {
            let gate = Arc::clone(&gate);
            let attempt = attempts.fetch_add(1, SeqCst) + 1;
            async move {
                if attempt == 1 {
                    gate.notified().await;
                }
                Err::<u8, u8>(0)
            }
        })
    };
    let doomed = handle.try_submit(failing, 0).unwrap();
    // Five quick ones: four fill the buffer (twice the concurrency), the fifth waits for
    // room.
    for n in 1..=5 {
        handle
            .try_submit(boxed(move || async move { Ok(n) }), 1)
            .unwrap();
    }
    let _ = futures::poll!(done.next());
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(attempts.load(SeqCst), 1);
    // The attempt fails; its retry cannot start while the buffer is full.
    gate.notify_one();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(handle.cancel(doomed), "its outcome was not out yet");
    handle.close();
    let outcomes: Vec<_> = within(10, done.collect::<Vec<_>>()).await;
    assert_eq!(outcomes.len(), 6);
    let (_, outcome) = outcomes.iter().find(|(id, _)| *id == doomed).unwrap();
    let failure = outcome.as_ref().unwrap_err();
    assert!(failure.is_cancelled(), "{failure:?}");
    assert_eq!(attempts.load(SeqCst), 1, "no attempt after the cancel");
}

/// A job whose `into_future` panics when it is a `Bomb`: the panic happens as its one
/// attempt starts.
enum Job {
    Good(u8),
    Bomb,
}

impl std::future::IntoFuture for Job {
    type Output = Result<u8, ()>;
    type IntoFuture = std::future::Ready<Result<u8, ()>>;

    fn into_future(self) -> Self::IntoFuture {
        match self {
            Job::Good(n) => std::future::ready(Ok(n)),
            Job::Bomb => panic!("bomb"),
        }
    }
}

/// Rule 8: a plain future that panics as it starts (in `into_future`) is that task's panic,
/// in place and spawned; the other tasks go on. (Its attempt starts at its first poll,
/// within the pool's catch.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_future_that_panics_as_it_starts_is_its_tasks_panic() {
    let in_place: Vec<_> = within(
        10,
        Pool::new(2)
            .run_futures([Job::Bomb, Job::Good(7)])
            .collect(),
    )
    .await;
    let spawned: Vec<_> = within(
        10,
        Pool::new(2)
            .spawn_futures([Job::Bomb, Job::Good(7)])
            .collect(),
    )
    .await;
    for outcomes in [in_place, spawned] {
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
        let failure = outcomes
            .iter()
            .find_map(|o| o.as_ref().err())
            .expect("one failure");
        assert!(failure.is_panic(), "{failure:?}");
        assert_eq!(
            (failure.index(), failure.panic_message()),
            (0, Some("bomb"))
        );
        assert!(
            outcomes.iter().any(|o| o.as_ref().ok() == Some(&7)),
            "{outcomes:?}"
        );
    }
}

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("dropped");
    }
}

/// Rule 8: a timed-out plain future whose drop panics is dropped within the pool's catch:
/// its task ends with that panic, and the next task runs (in place, in the same slot).
#[tokio::test(start_paused = true)]
async fn a_timed_out_future_that_panics_as_it_is_dropped() {
    let futures = [0u8, 1].map(|n| async move {
        if n == 0 {
            let _guard = PanicsOnDrop;
            pending::<()>().await;
        }
        Ok::<_, ()>(n)
    });
    let outcomes: Vec<_> = within(
        10,
        Pool::new(1)
            .timeout(Duration::from_secs(1))
            .run_futures(futures)
            .collect(),
    )
    .await;
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let failure = outcomes[0].as_ref().unwrap_err();
    assert_eq!(
        (failure.index(), failure.panic_message()),
        (0, Some("dropped"))
    );
    assert_eq!(outcomes[1].as_ref().ok(), Some(&1));
}

/// A spawned attempt's timeout counts from its first poll, not from when it was made: an
/// attempt that waits for a worker (here behind one that blocks the only thread for longer
/// than the timeout) is not timed out before it ran.
#[tokio::test(flavor = "current_thread")]
async fn a_spawned_attempt_is_timed_from_its_first_poll() {
    let tasks = [0u8, 1].map(|n| {
        move || async move {
            match n {
                // Blocks the runtime's only thread: the other lane waits to be polled.
                0 => std::thread::sleep(Duration::from_millis(300)),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            Ok::<_, ()>(n)
        }
    });
    let outcomes: Vec<_> = within(
        10,
        Pool::new(2)
            .timeout(Duration::from_millis(100))
            .spawn(tasks)
            .collect(),
    )
    .await;
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}

/// A hook that panics takes the consumer's poll with it; a consumer that catches the panic
/// and polls on still gets every other outcome and the end of the stream (the slot of the
/// task being settled was freed first).
#[tokio::test(start_paused = true)]
async fn a_stream_polled_on_after_a_hook_panicked_still_ends() {
    let tasks = (0..4u8).map(|n| {
        async move || {
            tokio::task::yield_now().await;
            if n == 1 { Err(n) } else { Ok(n) }
        }
    });
    let mut outcomes = Pool::new(2)
        .retry(Retry::Lifo)
        .timeout(Duration::from_secs(1))
        .retry_if(|_: &u8| -> bool { panic!("hook") })
        .run(tasks);
    let mut got = Vec::new();
    let mut panics = 0;
    within(10, async {
        loop {
            match std::panic::AssertUnwindSafe(outcomes.next())
                .catch_unwind()
                .await
            {
                Ok(Some(outcome)) => got.push(outcome),
                Ok(None) => break,
                Err(_) => panics += 1,
            }
        }
    })
    .await;
    assert_eq!(panics, 1);
    got.sort_by_key(|o| *o.as_ref().unwrap());
    assert_eq!(
        got.iter().map(|o| *o.as_ref().unwrap()).collect::<Vec<_>>(),
        [0, 2, 3]
    );
}

/// Counts the wakes of a consumer.
struct Wakes(AtomicUsize);

impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A task of [`an_ended_attempt_leaves_no_timer_behind`]: waits 10ms, then succeeds, or
/// panics (task 1), or never ends (task 2).
fn waits_then_ends(n: u8) -> impl AsyncFnMut() -> Result<u8, ()> {
    async move || {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(n != 1, "hostile: task 1 panics after waiting");
        if n == 2 {
            pending::<()>().await;
        }
        Ok(n)
    }
}

/// Polls `stream` with `waker` (sleeping 1ms after each `Pending`) until `got` holds
/// `until` items or the stream ends.
async fn poll_until<S: Stream + Unpin>(
    stream: &mut S,
    waker: &std::task::Waker,
    got: &mut Vec<S::Item>,
    until: usize,
) {
    while got.len() < until {
        match stream.poll_next_unpin(&mut std::task::Context::from_waker(waker)) {
            Poll::Ready(Some(item)) => got.push(item),
            Poll::Ready(None) => return,
            Poll::Pending => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// An attempt's timer goes with it: once the attempts of a timed pool have ended (after
/// waiting, by succeeding or by panicking), none of their timers stays with the runtime to
/// wake the consumer at a deadline that no longer matters (or to be advanced to by a
/// paused clock) while it waits for the next task; and the next attempt that waits in
/// that slot is timed again, from its first poll. The stream is polled by hand, with a
/// waker that counts its wakes.
#[tokio::test(start_paused = true)]
async fn an_ended_attempt_leaves_no_timer_behind() {
    support::quiet_panics("hostile");
    let timeout = Duration::from_secs(60);
    let begin = Instant::now();
    // Two tasks at once; after one and a half timeouts, a third that never ends.
    let late = futures::stream::once(async move {
        tokio::time::sleep(timeout * 3 / 2).await;
        waits_then_ends(2)
    });
    let tasks = futures::stream::iter((0..2).map(waits_then_ends)).chain(late);
    let mut outcomes = Pool::new(1).timeout(timeout).run_stream(tasks);
    let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(Arc::clone(&wakes));
    let mut got = Vec::new();
    within(10, poll_until(&mut outcomes, &waker, &mut got, 2)).await;
    assert!(
        got.iter().any(|o| o.as_ref().is_err_and(Failure::is_panic)),
        "{got:?}"
    );
    // Waiting for the third task, past the deadlines the first two had.
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(outcomes.poll_next_unpin(&mut cx).is_pending());
    let before = wakes.0.load(SeqCst);
    tokio::time::sleep(timeout * 5 / 4).await;
    assert_eq!(
        wakes.0.load(SeqCst),
        before,
        "a timer of an ended attempt woke the consumer"
    );
    // The third task times out one timeout after it started, in the same slot.
    within(
        timeout.as_secs() * 2,
        poll_until(&mut outcomes, &waker, &mut got, 3),
    )
    .await;
    assert!(got[2].as_ref().is_err_and(Failure::is_timeout), "{got:?}");
    let took = begin.elapsed();
    let expected = timeout * 5 / 2;
    assert!(
        took >= expected && took < expected + Duration::from_secs(1),
        "{took:?}"
    );
    assert!(within(1, outcomes.next()).await.is_none());
}
