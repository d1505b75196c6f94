//! Helpers shared by the integration tests, the examples and the benchmarks.

pub mod counting;
pub mod flags;
pub mod flaky_server;
pub mod link_graph;
mod serving;

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

/// Yields to the executor once, whatever the executor: wakes itself, then returns
/// `Pending` the first time it is polled.
pub async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Keeps panics whose message starts with `prefix` (the planned ones of a test) off
/// stderr; every other panic is reported as usual.
pub fn quiet_panics(prefix: &'static str) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if !message.is_some_and(|m| m.starts_with(prefix)) {
            report(info);
        }
    }));
}

/// The innermost cause of `error`: what an HTTP client's error chain says went wrong in the
/// end (its outer layers say which request failed).
pub fn innermost_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause
}
