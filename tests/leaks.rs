//! Leak accounting (rules 4 and 9 of ARCHITECTURE.md): every task value and every attempt
//! future is dropped exactly once, whether its task succeeds, gives up (errors, panics,
//! timeouts), is cancelled or has its stream dropped under it, in place, spawned, through
//! `#[pooled]` and in both schedulers.
//!
//! Each task captures a [`TaskGuard`], made when the task is made and dropped with the task
//! value; each attempt future makes an [`AttemptGuard`] when it starts, dropped with the
//! future (or as it unwinds). A [`Ledger`] counts both, per task, so that a task dropped
//! twice shows as well as one never dropped.

use std::collections::HashMap;
use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{Backoff, BoxTask, Pool, Retry, pooled};

/// Counts of task values and attempt futures made and dropped.
#[derive(Debug, Default)]
struct Ledger {
    tasks_made: AtomicUsize,
    /// Drops per task index.
    task_drops: Mutex<HashMap<usize, usize>>,
    attempts_made: AtomicUsize,
    attempts_dropped: AtomicUsize,
    /// Set once the stream is dropped: an attempt starting after that is a bug.
    closed: AtomicBool,
    started_after_close: AtomicUsize,
    /// On worker threads an attempt may be starting on one thread while the stream is
    /// dropped on another: such starts are not counted there.
    on_workers: bool,
}

impl Ledger {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A ledger for a test on worker threads (`on_workers`), or on one thread.
    fn for_threads(on_workers: bool) -> Arc<Self> {
        Arc::new(Ledger {
            on_workers,
            ..Ledger::default()
        })
    }

    fn tasks_dropped(&self) -> usize {
        self.task_drops.lock().unwrap().values().sum()
    }

    fn balanced(&self) -> bool {
        self.tasks_made.load(SeqCst) == self.tasks_dropped()
            && self.attempts_made.load(SeqCst) == self.attempts_dropped.load(SeqCst)
    }

    /// Asserts that everything made was dropped, each task exactly once, and that no
    /// attempt started after the stream was dropped.
    #[track_caller]
    fn assert_balanced(&self, what: &str) {
        let drops = self.task_drops.lock().unwrap();
        let twice: Vec<_> = drops.iter().filter(|&(_, &n)| n != 1).collect();
        assert!(
            twice.is_empty(),
            "{what}: tasks dropped more than once: {twice:?}"
        );
        let made = self.tasks_made.load(SeqCst);
        assert_eq!(drops.len(), made, "{what}: task values made vs dropped");
        assert_eq!(
            self.attempts_made.load(SeqCst),
            self.attempts_dropped.load(SeqCst),
            "{what}: attempt futures made vs dropped"
        );
        assert_eq!(
            self.started_after_close.load(SeqCst),
            0,
            "{what}: attempts started after the stream was dropped"
        );
    }

    /// Marks the stream dropped (call right after dropping it).
    fn close(&self) {
        self.closed.store(true, SeqCst);
    }

    /// Waits (a bounded while) until the counts balance: spawned attempts are dropped by
    /// their worker once the abort reaches them.
    async fn settle(&self) {
        for _ in 0..5_000 {
            if self.balanced() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Held by a task value: dropped with it.
#[derive(Debug)]
struct TaskGuard {
    ledger: Arc<Ledger>,
    index: usize,
}

impl TaskGuard {
    fn new(ledger: &Arc<Ledger>, index: usize) -> Self {
        ledger.tasks_made.fetch_add(1, SeqCst);
        TaskGuard {
            ledger: Arc::clone(ledger),
            index,
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        *self
            .ledger
            .task_drops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(self.index)
            .or_default() += 1;
    }
}

/// Made inside an attempt future when it starts: dropped with the future.
struct AttemptGuard {
    ledger: Arc<Ledger>,
}

impl AttemptGuard {
    fn new(ledger: &Arc<Ledger>) -> Self {
        ledger.attempts_made.fetch_add(1, SeqCst);
        if ledger.closed.load(SeqCst) && !ledger.on_workers {
            ledger.started_after_close.fetch_add(1, SeqCst);
        }
        AttemptGuard {
            ledger: Arc::clone(ledger),
        }
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.ledger.attempts_dropped.fetch_add(1, SeqCst);
    }
}

/// What one attempt does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Ok,
    Err,
    Panic,
    /// Pending forever (woken by nothing): ended only by a timeout, a cancel or a drop.
    Hang,
    /// Sleeps this many milliseconds, then succeeds.
    Sleep(u64),
}

/// The act of attempt `attempt` (1-based) of task `index`.
type Script = fn(usize, u32) -> Act;

async fn perform(act: Act, index: usize) -> Result<usize, usize> {
    match act {
        Act::Ok => {
            tokio::task::yield_now().await;
            Ok(index)
        }
        Act::Err => {
            tokio::task::yield_now().await;
            Err(index)
        }
        Act::Panic => {
            tokio::task::yield_now().await;
            panic!("planned panic in task {index}")
        }
        Act::Hang => pending().await,
        Act::Sleep(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(index)
        }
    }
}

/// An async closure, for the in-place flavour.
fn async_task(
    ledger: &Arc<Ledger>,
    index: usize,
    script: Script,
) -> impl AsyncFnMut() -> Result<usize, usize> {
    let guard = TaskGuard::new(ledger, index);
    let mut attempt = 0;
    async move || {
        attempt += 1;
        let _attempt = AttemptGuard::new(&guard.ledger);
        perform(script(index, attempt), index).await
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<usize, usize>> + Send>>;

/// A closure returning a future, for the spawned flavour and the schedulers.
fn fn_task(
    ledger: &Arc<Ledger>,
    index: usize,
    script: Script,
) -> impl FnMut() -> Attempt + Send + 'static {
    let guard = TaskGuard::new(ledger, index);
    let mut attempt = 0;
    move || {
        attempt += 1;
        let (ledger, act) = (Arc::clone(&guard.ledger), script(index, attempt));
        Box::pin(async move {
            let _attempt = AttemptGuard::new(&ledger);
            perform(act, index).await
        })
    }
}

fn boxed_task(ledger: &Arc<Ledger>, index: usize, script: Script) -> BoxTask<usize, usize> {
    Box::new(fn_task(ledger, index, script))
}

/// A plain future (task value and attempt at once), for `run_futures`/`spawn_futures`.
fn future_task(
    ledger: &Arc<Ledger>,
    index: usize,
    act: Act,
) -> impl Future<Output = Result<usize, usize>> + Send + 'static {
    let guard = TaskGuard::new(ledger, index);
    async move {
        let _attempt = AttemptGuard::new(&guard.ledger);
        perform(act, index).await
    }
}

static QUIET: Once = Once::new();

fn quiet() {
    QUIET.call_once(|| support::quiet_panics("planned panic"));
}

// The scripts.

fn succeed(index: usize, _: u32) -> Act {
    match index % 3 {
        0 => Act::Ok,
        1 => Act::Sleep(1 + index as u64 % 5),
        _ => Act::Ok,
    }
}

/// Every task gives up: errors to the last attempt, panics, and hangs past the timeout.
fn give_up(index: usize, attempt: u32) -> Act {
    match index % 4 {
        0 => Act::Err,
        1 => Act::Panic,
        2 => Act::Hang,
        // Fails, then hangs, then panics.
        _ => [Act::Err, Act::Hang, Act::Panic][(attempt as usize - 1) % 3],
    }
}

/// A bit of everything, hangs included; the stream is dropped before the end.
fn mixed(index: usize, attempt: u32) -> Act {
    match (index % 7, attempt) {
        (0, _) => Act::Hang,
        (1, 1) | (2, _) => Act::Err,
        (3, _) => Act::Panic,
        (4, _) => Act::Sleep(3),
        _ => Act::Ok,
    }
}

const TASKS: usize = 200;

fn pool() -> Pool {
    Pool::new(8)
        .retry(Retry::Lifo)
        .attempts(3)
        .timeout(Duration::from_millis(20))
}

/// Reads `n` outcomes (or fewer, when a second passes without one) and drops the stream.
async fn take_then_drop<S: futures::Stream + Unpin>(mut stream: S, n: usize, ledger: &Ledger) {
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    drop(stream);
    ledger.close();
}

#[tokio::test(start_paused = true)]
async fn in_place_success_and_give_up() {
    quiet();
    for (name, script) in [("success", succeed as Script), ("give up", give_up)] {
        let ledger = Ledger::new();
        let tasks = (0..TASKS).map(|i| async_task(&ledger, i, script));
        let outcomes: Vec<_> = pool().run(tasks).collect().await;
        assert_eq!(outcomes.len(), TASKS);
        if name == "give up" {
            assert!(outcomes.iter().all(Result::is_err));
        } else {
            assert!(outcomes.iter().all(Result::is_ok));
        }
        // The iterator and every task are dropped with the stream at the latest; most
        // much earlier (checked by `every_task_is_dropped_when_it_settles`).
        ledger.assert_balanced(name);
    }
}

/// A task's value is dropped as soon as it has its outcome, not at the end of the stream.
#[tokio::test(start_paused = true)]
async fn every_task_is_dropped_when_it_settles() {
    quiet();
    let ledger = Ledger::new();
    let tasks = (0..TASKS).map(|i| async_task(&ledger, i, give_up));
    let mut done = pool().run(tasks);
    let mut seen = 0;
    while let Some(outcome) = done.next().await {
        seen += 1;
        let index = outcome.unwrap_or_else(|f| f.index());
        let drops = ledger.task_drops.lock().unwrap().get(&index).copied();
        assert_eq!(drops, Some(1), "task {index} dropped when it gave up");
    }
    assert_eq!(seen, TASKS);
    drop(done);
    ledger.assert_balanced("give up, one at a time");
}

#[tokio::test(start_paused = true)]
async fn in_place_drop_of_the_stream() {
    quiet();
    for take in [0, 1, 10, 50, 150] {
        for retry in [Retry::Lifo, Retry::Fifo] {
            for backoff in [None, Some(Backoff::fixed(Duration::from_secs(3600)))] {
                let ledger = Ledger::new();
                let tasks = (0..TASKS).map(|i| async_task(&ledger, i, mixed));
                let mut pool = Pool::new(8).retry(retry).attempts(3);
                if let Some(backoff) = backoff {
                    pool = pool.backoff(backoff);
                }
                let done = pool.run(tasks);
                take_then_drop(done, take, &ledger).await;
                let what = format!("drop after {take}, {retry:?}, backoff {backoff:?}");
                ledger.assert_balanced(&what);
                // Nothing runs later either.
                let attempts = ledger.attempts_made.load(SeqCst);
                tokio::time::sleep(Duration::from_secs(7200)).await;
                assert_eq!(ledger.attempts_made.load(SeqCst), attempts, "{what}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn in_place_futures_and_streams() {
    quiet();
    let acts = [Act::Ok, Act::Err, Act::Panic, Act::Hang, Act::Sleep(2)];
    for take in [usize::MAX, 0, 7] {
        let ledger = Ledger::new();
        let futures = (0..TASKS).map(|i| future_task(&ledger, i, acts[i % acts.len()]));
        let done = Pool::new(8)
            .timeout(Duration::from_millis(20))
            .run_futures(futures);
        take_then_drop(done, take, &ledger).await;
        ledger.assert_balanced(&format!("run_futures, take {take}"));

        let ledger = Ledger::new();
        let tasks = futures::stream::iter(0..TASKS).map(|i| async_task(&ledger, i, mixed));
        let done = pool().run_stream(tasks);
        take_then_drop(done, take, &ledger).await;
        ledger.assert_balanced(&format!("run_stream, take {take}"));
    }
}

// The spawned cases run on one thread (where "nothing starts after the drop" is exact) and
// on worker threads.

#[tokio::test(start_paused = true)]
async fn spawned_success_give_up_and_drop() {
    spawned_cases(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_success_give_up_and_drop_on_workers() {
    spawned_cases(true).await;
}

async fn spawned_cases(on_workers: bool) {
    quiet();
    for (name, script) in [
        ("success", succeed as Script),
        ("give up", give_up),
        ("mixed", mixed),
    ] {
        for take in [usize::MAX, 0, 1, 25] {
            let ledger = Ledger::for_threads(on_workers);
            let tasks: Vec<_> = (0..TASKS).map(|i| fn_task(&ledger, i, script)).collect();
            let done = pool().spawn(tasks);
            if take == usize::MAX && name != "mixed" {
                let outcomes: Vec<_> = done.collect().await;
                assert_eq!(outcomes.len(), TASKS, "{name}");
            } else {
                take_then_drop(done, take, &ledger).await;
            }
            ledger.settle().await;
            ledger.assert_balanced(&format!("spawned {name}, take {take}, {on_workers}"));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn spawned_futures() {
    spawned_futures_cases(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_futures_on_workers() {
    spawned_futures_cases(true).await;
}

async fn spawned_futures_cases(on_workers: bool) {
    quiet();
    let acts = [Act::Ok, Act::Err, Act::Panic, Act::Hang, Act::Sleep(2)];
    for take in [usize::MAX, 0, 7] {
        let ledger = Ledger::for_threads(on_workers);
        let futures: Vec<_> = (0..TASKS)
            .map(|i| future_task(&ledger, i, acts[i % acts.len()]))
            .collect();
        let done = Pool::new(8)
            .timeout(Duration::from_millis(20))
            .spawn_futures(futures);
        take_then_drop(done, take, &ledger).await;
        ledger.settle().await;
        ledger.assert_balanced(&format!("spawn_futures, take {take}"));
    }
}

#[pooled(concurrency = 8, retry = "fifo", attempts = 3, timeout = "20ms")]
async fn pooled_in_place(ledger: &Arc<Ledger>, script: Script) -> Result<usize, usize> {
    (0..TASKS).map(move |i| async_task(ledger, i, script))
}

#[pooled(
    concurrency = 8,
    retry = "lifo",
    attempts = 3,
    timeout = "20ms",
    spawn = true
)]
async fn pooled_spawned(ledger: &Arc<Ledger>, script: Script) -> Result<usize, usize> {
    let ledger = Arc::clone(ledger);
    (0..TASKS).map(move |index| {
        let guard = TaskGuard::new(&ledger, index);
        let mut attempt = 0;
        async move || {
            attempt += 1;
            let _attempt = AttemptGuard::new(&guard.ledger);
            perform(script(index, attempt), index).await
        }
    })
}

#[tokio::test(start_paused = true)]
async fn pooled_both_flavours() {
    pooled_cases(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_both_flavours_on_workers() {
    pooled_cases(true).await;
}

async fn pooled_cases(on_workers: bool) {
    quiet();
    for script in [succeed as Script, give_up, mixed] {
        for take in [usize::MAX, 0, 9] {
            let ledger = Ledger::new();
            take_then_drop(pooled_in_place(&ledger, script), take, &ledger).await;
            ledger.assert_balanced(&format!("pooled in place, take {take}"));

            let ledger = Ledger::for_threads(on_workers);
            take_then_drop(pooled_spawned(&ledger, script), take, &ledger).await;
            ledger.settle().await;
            ledger.assert_balanced(&format!("pooled spawned, take {take}"));
        }
    }
}

/// A scheduler run: tasks waiting, running (hung), in a backoff and done, some cancelled,
/// then the rest drained (`drain`) or the stream dropped.
async fn scheduler_case<C>(
    ledger: &Arc<Ledger>,
    handle: retry_pool::SchedulerHandle<BoxTask<usize, usize>>,
    mut done: retry_pool::Scheduled<C>,
    drain: bool,
) where
    retry_pool::Scheduled<C>: futures::Stream<
            Item = (
                retry_pool::TaskId,
                Result<usize, retry_pool::Failure<usize>>,
            ),
        >,
    retry_pool::Scheduled<C>: Unpin,
{
    let ids: Vec<_> = (0..60)
        .map(|i| {
            let script: Script = match i % 4 {
                0 => |_, _| Act::Hang,
                1 => |_, _| Act::Err,
                2 => |_, _| Act::Sleep(5),
                _ => |_, _| Act::Ok,
            };
            handle
                .try_submit(boxed_task(ledger, i, script), (i % 5) as i32)
                .unwrap()
        })
        .collect();
    // Some outcomes first, so that tasks are running, in their backoff and finished.
    for _ in 0..10 {
        let _ = tokio::time::timeout(Duration::from_millis(50), done.next()).await;
    }
    let mut cancelled = 0;
    for id in ids.iter().step_by(3) {
        cancelled += usize::from(handle.cancel(*id));
    }
    assert!(cancelled > 0);
    if drain {
        // The hung tasks not cancelled yet end by cancellation too.
        for id in ids.iter().step_by(4) {
            handle.cancel(*id);
        }
        handle.close();
        let rest = tokio::time::timeout(Duration::from_secs(60), done.count()).await;
        assert!(rest.is_ok(), "the scheduler drained");
        drop(handle);
    } else {
        drop(done);
        ledger.close();
        drop(handle);
    }
}

fn scheduler_pool() -> Pool {
    Pool::new(6)
        .retry(Retry::Fifo)
        .attempts(3)
        .backoff(Backoff::fixed(Duration::from_millis(30)))
}

#[tokio::test(start_paused = true)]
async fn in_place_scheduler() {
    quiet();
    for drain in [true, false] {
        let ledger = Ledger::new();
        let (handle, done) = scheduler_pool().scheduler();
        scheduler_case(&ledger, handle, done, drain).await;
        ledger.assert_balanced(&format!("in-place scheduler, drain {drain}"));
    }
}

#[tokio::test(start_paused = true)]
async fn spawned_scheduler() {
    spawned_scheduler_cases(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_scheduler_on_workers() {
    spawned_scheduler_cases(true).await;
}

async fn spawned_scheduler_cases(on_workers: bool) {
    quiet();
    for drain in [true, false] {
        let ledger = Ledger::for_threads(on_workers);
        let (handle, done) = scheduler_pool().spawn_scheduler();
        scheduler_case(&ledger, handle, done, drain).await;
        ledger.settle().await;
        ledger.assert_balanced(&format!("spawned scheduler, drain {drain}"));
    }
}

/// The scheduler's waiting tasks are dropped with its stream, though a handle lives on:
/// nothing will ever run them.
#[tokio::test(start_paused = true)]
async fn dropping_a_schedulers_stream_drops_its_waiting_tasks() {
    let ledger = Ledger::new();
    let (handle, done) = Pool::new(1).scheduler();
    for i in 0..5 {
        handle
            .try_submit(boxed_task(&ledger, i, |_, _| Act::Ok), 0)
            .unwrap();
    }
    drop(done);
    ledger.close();
    assert_eq!(
        ledger.tasks_dropped(),
        5,
        "the waiting tasks were dropped with the stream while a handle is alive"
    );
    ledger.assert_balanced("stream dropped, handle alive");
    drop(handle);
}
