//! What an ended attempt becomes: a guarded write of its result, then an outcome for the
//! worker's stream when the task is finished.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use retry_pool::Failure;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use crate::Error;
use crate::claimer::Item;
use crate::held::Stop;
use crate::hooks::Verdict;
use crate::lease::{self, Claimed, Next};
use crate::outcome::{Cause, Outcome, TaskFailure};
use crate::shared::Shared;
use crate::task::TaskState;
use crate::worker_stats::Counters;

/// How an attempt ended without a value, before the local pool wraps it in a `Failure`.
#[derive(Debug)]
pub(crate) enum AttemptEnd<E> {
    /// The handler's error, and what `retry_if`/`retry_after` said of it.
    Failed(E, Verdict),
    /// The payload did not deserialize.
    Json(String),
    /// The worker dropped the attempt.
    Stopped(Stop),
}

/// The write an ended attempt needs, and the cause to report if it ends the task.
enum Write<E> {
    Complete(String),
    Fail {
        error: String,
        next: Next,
        cause: Cause<E>,
    },
    /// The lease is gone: nothing may be written.
    Nothing,
}

/// Writes the result of attempt `task` (fenced by task, attempt and owner), then frees
/// its slot and, when the task is finished, sends its outcome.
pub(crate) async fn settle<T, E>(
    shared: Arc<Shared>,
    task: Arc<Claimed>,
    result: Result<T, Failure<AttemptEnd<E>>>,
    out: mpsc::Sender<Item<T, E>>,
) where
    T: Serialize,
    E: Display,
{
    let settings = &shared.settings;
    let mut value = None;
    let write = match result {
        Ok(ok) => match serde_json::to_string(&ok) {
            Ok(json) => {
                value = Some(ok);
                Write::Complete(json)
            }
            Err(error) => {
                let error = format!("the value does not serialize to JSON: {error}");
                Write::Fail {
                    error: error.clone(),
                    next: Next::Final,
                    cause: Cause::Json(error),
                }
            }
        },
        Err(failure) if failure.is_panic() => {
            let message = failure.panic_message().map(str::to_owned);
            Write::Fail {
                error: format!("panicked: {}", message.as_deref().unwrap_or("(no message)")),
                next: Next::Final,
                cause: Cause::Panic(message),
            }
        }
        Err(failure) if failure.is_timeout() => Write::Fail {
            error: format!("timed out after {:?}", settings.timeout.unwrap_or_default()),
            next: settings.after_failure(task.attempt, None),
            cause: Cause::Timeout,
        },
        Err(failure) => match failure.into_error() {
            Some(AttemptEnd::Failed(error, verdict)) => Write::Fail {
                error: error.to_string(),
                next: match verdict {
                    Verdict::Retry(hint) => settings.after_failure(task.attempt, hint),
                    Verdict::Refused => Next::Refused,
                },
                cause: Cause::Error(error),
            },
            Some(AttemptEnd::Json(error)) => Write::Fail {
                error: error.clone(),
                next: Next::Final,
                cause: Cause::Json(error),
            },
            Some(AttemptEnd::Stopped(Stop::Cancelled)) => Write::Fail {
                error: "cancelled while it ran".to_owned(),
                next: Next::Final,
                cause: Cause::Cancelled,
            },
            Some(AttemptEnd::Stopped(Stop::LeaseLost)) | None => Write::Nothing,
        },
    };

    let (id, attempt, owner) = (task.id, task.attempt, shared.owner.as_str());
    // Refused with attempts left, as the runtime's `Failure::is_permanent` (and as `fail`
    // marks the row): refused on the last attempt, the task used up its attempts anyway.
    let mut permanent = false;
    let (written, cause) = match write {
        Write::Nothing => (Ok(None), None),
        Write::Complete(json) => {
            // Batched with the other results ending meanwhile (see `completer`).
            let written = with_retries(&shared, &task, || {
                shared.completions.complete(id, attempt, json.clone())
            })
            .await;
            (written, None)
        }
        Write::Fail { error, next, cause } => {
            permanent = matches!(next, Next::Refused) && attempt < task.max_attempts;
            let written = with_retries(&shared, &task, || {
                lease::fail(&shared.pool, id, attempt, owner, &error, next)
            })
            .await;
            if let (Ok(Some(TaskState::Available)), Next::Retry { backoff, .. }) = (&written, next)
                && !backoff.is_zero()
            {
                // Wake this worker's claims when the backoff is over; other workers find
                // the task at their next poll.
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    sleep(backoff).await;
                    shared.wake.notify_one();
                });
            }
            (written, Some(cause))
        }
    };

    let counters = &shared.counters;
    let failure = |cause| TaskFailure::new(id, attempt, cause);
    let item = match written {
        Ok(Some(TaskState::Succeeded)) => {
            Counters::add(&counters.succeeded, 1);
            value.map(Ok)
        }
        Ok(Some(TaskState::Failed)) => {
            Counters::add(&counters.failed, 1);
            cause.map(|cause| Err(failure(cause).permanent(permanent)))
        }
        Ok(Some(TaskState::Cancelled)) => {
            Counters::add(&counters.cancelled, 1);
            Some(Err(failure(Cause::Cancelled)))
        }
        Ok(Some(TaskState::Available | TaskState::Running)) => {
            Counters::add(&counters.retried, 1);
            None
        }
        Ok(None) => {
            // Fenced off: another worker rescued the task, or it ended meanwhile.
            Counters::add(&counters.fenced, 1);
            None
        }
        Err(error) => {
            // Not written: the lease will expire and the task will be rescued.
            let _ = out.send(Err(error)).await;
            None
        }
    };
    if let Some(result) = item {
        let outcome = Outcome {
            id,
            attempts: attempt,
            result,
        };
        // A dropped stream takes no more outcomes; the write above stands.
        let _ = out.send(Ok(outcome)).await;
    }
    shared.held.release(id, attempt);
    Counters::add(&counters.settled, 1);
    shared.slots.add_permits(1);
    shared.wake.notify_one();
}

/// Runs a guarded write, trying again while the database is away but the lease may still
/// hold; once it surely expired, the write could only be fenced off, so it gives up.
async fn with_retries<F, Fut>(
    shared: &Shared,
    task: &Claimed,
    mut write: F,
) -> Result<Option<TaskState>, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<TaskState>, sqlx::Error>>,
{
    let pause = Duration::from_millis(250);
    loop {
        match write().await {
            Ok(state) => return Ok(state),
            Err(error) => {
                let deadline = shared
                    .held
                    .renewed_at(task.id, task.attempt)
                    .map(|renewed| renewed + shared.settings.lease);
                if deadline.is_none_or(|deadline| Instant::now() + pause >= deadline) {
                    return Err(error.into());
                }
                sleep(pause).await;
            }
        }
    }
}
