//! What a worker yields for a task it finished: its value, or why it failed.

use std::fmt;

use crate::task::TaskId;

/// A task that this worker gave its outcome, as its stream yields it: the task, the
/// attempts it took (across every worker), and its value or its [`TaskFailure`].
#[derive(Debug)]
pub struct Outcome<T, E> {
    /// The task.
    pub id: TaskId,
    /// Attempts it took, the last one included, whichever workers ran them.
    pub attempts: u32,
    /// The value of the attempt that succeeded, or why the task failed.
    pub result: Result<T, TaskFailure<E>>,
}

/// Why a task ended without a value, as [`retry_pool::Failure`] says it for the
/// in-process pool.
pub struct TaskFailure<E> {
    id: TaskId,
    attempts: u32,
    cause: Cause<E>,
    permanent: bool,
}

/// What ended a task without a value.
#[derive(Debug)]
pub(crate) enum Cause<E> {
    /// The handler's error, on the last attempt.
    Error(E),
    /// The handler panicked (never retried: a panic is a bug).
    Panic(Option<String>),
    /// The last attempt ran past the timeout.
    Timeout,
    /// Cancelled by a producer while it ran.
    Cancelled,
    /// The lease of the last attempt expired: its worker died or stalled. The message is
    /// the one stored in `last_error`.
    LeaseExpired(String),
    /// The payload did not deserialize, or the value did not serialize (never retried).
    Json(String),
}

impl<E> TaskFailure<E> {
    pub(crate) fn new(id: TaskId, attempts: u32, cause: Cause<E>) -> Self {
        TaskFailure {
            id,
            attempts,
            cause,
            permanent: false,
        }
    }

    /// Marks the failure as [`is_permanent`](TaskFailure::is_permanent) when `permanent`.
    pub(crate) fn permanent(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }

    /// The task.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Attempts made, the last one included, across every worker.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The handler's error on the last attempt; `None` when the task panicked, timed out,
    /// was cancelled, lost its lease, or had a payload that does not deserialize.
    pub fn error(&self) -> Option<&E> {
        match &self.cause {
            Cause::Error(error) => Some(error),
            _ => None,
        }
    }

    /// The handler's error, by value.
    pub fn into_error(self) -> Option<E> {
        match self.cause {
            Cause::Error(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the handler panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.cause, Cause::Panic(_))
    }

    /// The panic's message, when it was a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.cause {
            Cause::Panic(message) => message.as_deref(),
            _ => None,
        }
    }

    /// Whether the last attempt timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self.cause, Cause::Timeout)
    }

    /// Whether a producer cancelled the task while it ran.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.cause, Cause::Cancelled)
    }

    /// Whether the last attempt's lease expired (its worker died or stalled) with no
    /// attempts left.
    pub fn is_lease_expired(&self) -> bool {
        matches!(self.cause, Cause::LeaseExpired(_))
    }

    /// Whether the payload did not deserialize into the handler's type, or the value did
    /// not serialize.
    pub fn is_json(&self) -> bool {
        matches!(self.cause, Cause::Json(_))
    }

    /// Whether the task ended at its error, with attempts left, because
    /// [`Worker::retry_if`](crate::Worker::retry_if) said the error is not worth a retry
    /// (a 404, say): unlike a task that used up its attempts. The task's row says it too
    /// ([`TaskInfo::permanent`](crate::TaskInfo::permanent)).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl<E: fmt::Display> fmt::Display for TaskFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, attempts) = (self.id, self.attempts);
        let s = if attempts == 1 { "" } else { "s" };
        match &self.cause {
            Cause::Error(error) => {
                let why = if self.permanent {
                    ", not retried (`retry_if` refused the error)"
                } else {
                    ""
                };
                write!(
                    f,
                    "task {id} failed after {attempts} attempt{s}{why}: {error}"
                )
            }
            Cause::Panic(Some(message)) => write!(f, "task {id} panicked: {message}"),
            Cause::Panic(None) => write!(f, "task {id} panicked"),
            Cause::Timeout => write!(f, "task {id} timed out on attempt {attempts}"),
            Cause::Cancelled => write!(f, "task {id} was cancelled while it ran"),
            Cause::LeaseExpired(message) => write!(f, "task {id}: {message}"),
            Cause::Json(message) => write!(f, "task {id}: {message}"),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFailure")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("cause", &self.cause)
            .field("permanent", &self.permanent)
            .finish()
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskFailure<E> {}
