//! The attempts a worker holds under lease, each with the signal that drops it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::task::TaskId;

/// Why a worker drops a running attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A producer cancelled the task.
    Cancelled,
    /// The lease is gone (rescued by another worker, or not renewed in time): whatever
    /// the attempt does now could not be written.
    LeaseLost,
}

/// The receiving end of an attempt's stop signal.
pub(crate) type StopSignal = watch::Receiver<Option<Stop>>;

struct Entry {
    attempt: u32,
    renewed: Instant,
    stop: watch::Sender<Option<Stop>>,
}

/// The attempts held, by task.
#[derive(Default)]
pub(crate) struct Held {
    entries: Mutex<HashMap<TaskId, Entry>>,
}

impl Held {
    fn lock(&self) -> MutexGuard<'_, HashMap<TaskId, Entry>> {
        // The map stays consistent whatever panicked while holding it: every change is one
        // insert or remove.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds attempt `attempt` of `id`, claimed at `claimed_at`.
    pub(crate) fn hold(&self, id: TaskId, attempt: u32, claimed_at: Instant) -> StopSignal {
        let (stop, signal) = watch::channel(None);
        self.lock().insert(
            id,
            Entry {
                attempt,
                renewed: claimed_at,
                stop,
            },
        );
        signal
    }

    /// Lets go of an attempt once its result is written (or fenced off).
    pub(crate) fn release(&self, id: TaskId, attempt: u32) {
        let mut entries = self.lock();
        if entries
            .get(&id)
            .is_some_and(|entry| entry.attempt == attempt)
        {
            entries.remove(&id);
        }
    }

    /// The attempts to renew.
    pub(crate) fn snapshot(&self) -> Vec<(TaskId, u32)> {
        self.lock()
            .iter()
            .map(|(id, entry)| (*id, entry.attempt))
            .collect()
    }

    /// When the lease of this attempt was last known good.
    pub(crate) fn renewed_at(&self, id: TaskId, attempt: u32) -> Option<Instant> {
        self.lock()
            .get(&id)
            .filter(|entry| entry.attempt == attempt)
            .map(|entry| entry.renewed)
    }

    /// Applies a renewal's answer: the attempts in `kept` hold their lease (and are
    /// stopped if a cancel was asked); the others of `asked` lost it and are stopped.
    pub(crate) fn renewed(&self, asked: &[(TaskId, u32)], kept: &[(TaskId, bool)], at: Instant) {
        let kept: HashMap<TaskId, bool> = kept.iter().copied().collect();
        let mut entries = self.lock();
        for (id, attempt) in asked {
            let Some(entry) = entries
                .get_mut(id)
                .filter(|entry| entry.attempt == *attempt)
            else {
                continue; // released meanwhile
            };
            match kept.get(id) {
                Some(&cancel) => {
                    entry.renewed = at;
                    if cancel {
                        entry.stop.send_replace(Some(Stop::Cancelled));
                    }
                }
                None => {
                    entry.stop.send_replace(Some(Stop::LeaseLost));
                }
            }
        }
    }

    /// Stops the attempts whose lease, not renewed for `lease`, has surely expired: the
    /// database could not be reached, and another worker may have rescued them.
    pub(crate) fn expire(&self, lease: Duration, now: Instant) {
        for entry in self.lock().values() {
            if now.saturating_duration_since(entry.renewed) >= lease {
                entry.stop.send_replace(Some(Stop::LeaseLost));
            }
        }
    }
}
