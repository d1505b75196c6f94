//! The claim loop: rescues expired leases, claims as many tasks as there are free slots,
//! and hands them to the local pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::Error;
use crate::held::StopSignal;
use crate::lease::{self, Claimed};
use crate::outcome::{Cause, Outcome, TaskFailure};
use crate::shared::Shared;
use crate::task::TaskState;
use crate::worker_stats::Counters;

/// What the claim loop sends to the worker's stream.
pub(crate) type Item<T, E> = Result<Outcome<T, E>, Error>;

/// Claims until a graceful stop, then returns, which drops `attempts` and so ends the
/// pool's input. Rescues run at most once per poll interval, whether or not a slot is
/// free, so that a dead worker's tasks wait at most the lease plus one poll.
pub(crate) async fn run<T, E>(
    shared: Arc<Shared>,
    attempts: mpsc::UnboundedSender<(Arc<Claimed>, StopSignal)>,
    out: mpsc::Sender<Item<T, E>>,
) {
    let settings = &shared.settings;
    let mut stopping = shared.stopping.subscribe();
    let mut next_rescue = Instant::now();
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        let now = Instant::now();
        if now >= next_rescue {
            next_rescue = now + settings.poll;
            match lease::rescue(&shared.pool, &shared.queue, settings.lifo()).await {
                Ok(rescued) => {
                    Counters::add(&shared.counters.rescued, rescued.len() as u64);
                    for task in rescued {
                        let cause = match task.state {
                            TaskState::Failed => Cause::LeaseExpired(task.error),
                            TaskState::Cancelled => Cause::Cancelled,
                            _ => continue, // back in line: no outcome yet
                        };
                        let counter = match task.state {
                            TaskState::Failed => &shared.counters.failed,
                            _ => &shared.counters.cancelled,
                        };
                        Counters::add(counter, 1);
                        let outcome = Outcome {
                            id: task.id,
                            attempts: task.attempts,
                            result: Err(TaskFailure::new(task.id, task.attempts, cause)),
                        };
                        if out.send(Ok(outcome)).await.is_err() {
                            return; // the stream was dropped
                        }
                    }
                }
                Err(error) => {
                    if out.send(Err(error.into())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let free = shared.slots.available_permits();
        let mut more = false;
        if free > 0 {
            let asked = Instant::now();
            match lease::claim(
                &shared.pool,
                &shared.queue,
                &shared.owner,
                free,
                settings.attempts,
                settings.lease,
            )
            .await
            {
                Ok(claimed) => {
                    // Only this loop takes permits, so the `free` counted above are still
                    // there; they come back one by one as results are written.
                    if let Ok(permits) = shared.slots.try_acquire_many(claimed.len() as u32) {
                        permits.forget();
                    }
                    Counters::add(&shared.counters.claimed, claimed.len() as u64);
                    more = claimed.len() == free;
                    for task in claimed {
                        let signal = shared.held.hold(task.id, task.attempt, asked);
                        if attempts.send((Arc::new(task), signal)).is_err() {
                            return; // the pool is gone: its leases will be rescued
                        }
                    }
                }
                Err(error) => {
                    if out.send(Err(error.into())).await.is_err() {
                        return;
                    }
                    // The database is away: try again after a poll, not in a tight loop.
                    next_rescue = next_rescue.max(Instant::now());
                    tokio::select! {
                        _ = sleep_until(Instant::now() + settings.poll.min(Duration::from_secs(1))) => {}
                        _ = stopping.wait_for(|stop| *stop) => {}
                    }
                    continue;
                }
            }
        }
        if more {
            continue; // a full batch: there may be more ready now
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = sleep_until(next_rescue) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }
}
