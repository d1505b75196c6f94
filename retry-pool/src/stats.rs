//! A cheap snapshot of what a pool is doing, from counters its parts keep as they go.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// What a pool is doing, and has done: a snapshot.
///
/// From [`PoolStream::stats`](crate::PoolStream::stats), on every completion stream, and
/// [`SchedulerHandle::stats`](crate::SchedulerHandle::stats). Each count is read on its own,
/// so a snapshot taken while the pool runs may be a moment apart between fields.
///
/// A progress report while the pool runs:
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{Pool, PoolStream, Retry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tasks = (0..100).map(|n| {
///     let mut tried = false;
///     async move || {
///         tokio::task::yield_now().await;
///         if n % 10 == 0 && !tried {
///             tried = true;
///             return Err("flaky");
///         }
///         Ok(n)
///     }
/// });
/// let mut done = Pool::new(8).retry(Retry::Lifo).run(tasks);
/// while let Some(_outcome) = done.next().await {
///     let stats = done.stats();
///     assert!(stats.running <= 8);
///     // A progress bar would show stats.succeeded, stats.failed, stats.retried...
/// }
/// assert_eq!((done.stats().succeeded, done.stats().retried), (100, 10));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks waiting to start: submitted to a scheduler and not started yet, or failed and
    /// waiting to run again (in their backoff or for a slot). A batch's input not yet
    /// pulled is not counted: it is not known.
    pub waiting: usize,
    /// Attempts in flight.
    pub running: usize,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that gave up: errors, timeouts and panics on their last attempt.
    pub failed: u64,
    /// Failed attempts that were queued to run again.
    pub retried: u64,
    /// Tasks cancelled through a scheduler's handle.
    pub cancelled: u64,
    /// Retries the retry throttle refused ([`Pool::retry_throttle`](crate::Pool::retry_throttle)):
    /// tasks that gave up with attempts left, counted in `failed` too.
    pub throttled: u64,
}

/// The counters behind [`Stats`], shared by the parts of one pool.
///
/// Only the pool's engine writes them, from one task at a time, so an increment is a
/// plain load and store (no locked instruction on the hot path); anyone may read them.
/// The one exception, `queued`, is a scheduler's line, written under its lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Tasks in a scheduler's line.
    queued: AtomicUsize,
    /// Failed tasks held to run again (not counting those in a scheduler's own line).
    retry_waiting: AtomicUsize,
    running: AtomicUsize,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    cancelled: AtomicU64,
    throttled: AtomicU64,
}

#[inline]
fn add(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

#[inline]
fn up(counter: &AtomicUsize) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

#[inline]
fn down(counter: &AtomicUsize) {
    counter.store(counter.load(Relaxed) - 1, Relaxed);
}

impl Counters {
    #[inline]
    pub(crate) fn started(&self) {
        up(&self.running);
    }

    #[inline]
    pub(crate) fn stopped(&self) {
        down(&self.running);
    }

    #[inline]
    pub(crate) fn retry_queued(&self) {
        add(&self.retried);
        up(&self.retry_waiting);
    }

    #[inline]
    pub(crate) fn retry_left(&self) {
        down(&self.retry_waiting);
    }

    #[inline]
    pub(crate) fn succeeded(&self) {
        add(&self.succeeded);
    }

    #[inline]
    pub(crate) fn failed(&self) {
        add(&self.failed);
    }

    #[inline]
    pub(crate) fn cancelled(&self) {
        add(&self.cancelled);
    }

    #[inline]
    pub(crate) fn throttled(&self) {
        add(&self.throttled);
    }

    /// Says how many tasks a scheduler's line holds now.
    #[inline]
    pub(crate) fn set_queued(&self, queued: usize) {
        self.queued.store(queued, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            waiting: self.queued.load(Relaxed) + self.retry_waiting.load(Relaxed),
            running: self.running.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
        }
    }
}
