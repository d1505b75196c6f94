//! Helpers shared by the integration tests, the examples and the benchmarks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts attempts in flight and remembers the most seen at once.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    started: AtomicUsize,
}

impl Probe {
    /// A probe with every count at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks an attempt as started; it counts as in flight until the guard is dropped.
    pub fn enter(&self) -> InFlight {
        let now = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.peak.fetch_max(now, Ordering::SeqCst);
        self.inner.started.fetch_add(1, Ordering::SeqCst);
        InFlight {
            probe: self.clone(),
        }
    }

    /// Attempts in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// The most attempts ever in flight at once.
    pub fn peak(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// Attempts started so far.
    pub fn started(&self) -> usize {
        self.inner.started.load(Ordering::SeqCst)
    }
}

/// An attempt in flight; dropping it ends it.
#[derive(Debug)]
pub struct InFlight {
    probe: Probe,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.probe.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
