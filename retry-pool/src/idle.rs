//! A scheduler's idle point: how many tasks it was given whose outcome has not reached its
//! consumer yet, and who waits for there to be none.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Unfinished {
    count: AtomicUsize,
    idle: Notify,
}

impl Unfinished {
    /// A task was submitted.
    pub(crate) fn added(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// A task's outcome reached the consumer.
    pub(crate) fn delivered(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// The consumer is gone: no outcome will reach it, and nobody need wait for one.
    pub(crate) fn abandon(&self) {
        self.count.store(0, Ordering::Release);
        self.idle.notify_waiters();
    }

    /// Waits until every task submitted so far has its outcome delivered.
    pub(crate) async fn wait(&self) {
        loop {
            // Registered before the check, so that the last delivery in between is not
            // missed.
            let idle = self.idle.notified();
            let mut idle = std::pin::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}
