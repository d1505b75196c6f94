//! What one worker has done so far, counted as it goes.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one worker's counters (the queue's own counts are
/// [`Queue::stats`](crate::Queue::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Attempts claimed.
    pub claimed: u64,
    /// Attempts in flight now.
    pub running: u64,
    /// Tasks this worker ended with a value.
    pub succeeded: u64,
    /// Tasks this worker ended failed (lease expiries it rescued included).
    pub failed: u64,
    /// Failed attempts put back in line.
    pub retried: u64,
    /// Tasks this worker ended cancelled.
    pub cancelled: u64,
    /// Attempts whose result was not written because the lease was lost (fenced off).
    pub fenced: u64,
    /// Tasks with an expired lease that this worker rescued.
    pub rescued: u64,
}

/// The live counters behind [`WorkerStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) claimed: AtomicU64,
    pub(crate) settled: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) rescued: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let claimed = get(&self.claimed);
        WorkerStats {
            claimed,
            running: claimed.saturating_sub(get(&self.settled)),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            retried: get(&self.retried),
            cancelled: get(&self.cancelled),
            fenced: get(&self.fenced),
            rescued: get(&self.rescued),
        }
    }
}
