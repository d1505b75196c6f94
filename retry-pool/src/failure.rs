//! The error item of a completion stream: a task that gave up.

use std::error::Error;
use std::fmt;

/// A task that did not succeed: the error item of every completion stream.
///
/// It says which task gave up ([`index`](Failure::index)), after how many attempts
/// ([`attempts`](Failure::attempts)), and why: the last attempt's error
/// ([`error`](Failure::error)), a panic ([`is_panic`](Failure::is_panic)), a timeout
/// ([`is_timeout`](Failure::is_timeout)) or a cancellation
/// ([`is_cancelled`](Failure::is_cancelled)); and, when it gave up before its attempts were
/// used up, why it was not retried: [`is_permanent`](Failure::is_permanent) (refused by
/// [`Pool::retry_if`](crate::Pool::retry_if)) or [`is_throttled`](Failure::is_throttled)
/// (refused by [`Pool::retry_throttle`](crate::Pool::retry_throttle)).
///
/// It implements [`std::error::Error`] with the last attempt's error as its
/// [`source`](Error::source), so `?` carries it into `anyhow` or `Box<dyn Error>`.
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{Pool, Retry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tasks = (0..3).map(|n| async move || if n == 1 { Err("boom") } else { Ok(n) });
/// let mut done = Pool::new(2).retry(Retry::Lifo).attempts(2).run(tasks);
/// while let Some(outcome) = done.next().await {
///     if let Err(failure) = outcome {
///         assert_eq!(failure.index(), 1);
///         assert_eq!(failure.attempts(), 2);
///         assert_eq!(failure.error(), Some(&"boom"));
///         assert_eq!(failure.to_string(), "task #1 failed after 2 attempts: boom");
///     }
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Failure<E>(Box<Failed<E>>);

/// What a [`Failure`] says, boxed so that an outcome is no larger than a pointer beside the
/// task's value: outcomes are moved and queued on every task's path, failures are rare.
#[derive(Clone, PartialEq, Eq)]
struct Failed<E> {
    index: usize,
    attempts: u32,
    cause: Cause<E>,
    /// Why the task was not retried though it had attempts left, if it was not.
    not_retried: Option<NotRetried>,
}

/// Why a failed task with attempts left was not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotRetried {
    /// `retry_if` refused its error.
    Permanent,
    /// The retry throttle had too few tokens left.
    Throttled,
}

/// Why a task gave up.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Cause<E> {
    /// The last attempt returned this error.
    Error(E),
    /// An attempt panicked, with this message (when the payload was a string).
    Panic(Option<String>),
    /// The last attempt ran past its timeout.
    Timeout,
    /// The task was cancelled.
    Cancelled,
}

impl<E> Cause<E> {
    /// One word for logs: "error", "panic", "timeout" or "cancelled".
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Cause::Error(_) => "error",
            Cause::Panic(_) => "panic",
            Cause::Timeout => "timeout",
            Cause::Cancelled => "cancelled",
        }
    }
}

impl<E> Failure<E> {
    pub(crate) fn cause_name(&self) -> &'static str {
        self.0.cause.name()
    }

    pub(crate) fn new(index: usize, attempts: u32, cause: Cause<E>) -> Self {
        Failure(Box::new(Failed {
            index,
            attempts,
            cause,
            not_retried: None,
        }))
    }

    /// The same failure, ended before its attempts were used up, for `why`.
    pub(crate) fn not_retried(mut self, why: NotRetried) -> Self {
        self.0.not_retried = Some(why);
        self
    }

    /// The task's 0-based position in the input (or its id in a scheduler).
    pub fn index(&self) -> usize {
        self.0.index
    }

    /// How many attempts were started, the last one included.
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// The last attempt's error, or `None` when it panicked, timed out or was cancelled.
    pub fn error(&self) -> Option<&E> {
        match &self.0.cause {
            Cause::Error(error) => Some(error),
            _ => None,
        }
    }

    /// Takes the last attempt's error, or `None` when it panicked, timed out or was
    /// cancelled.
    pub fn into_error(self) -> Option<E> {
        match self.0.cause {
            Cause::Error(error) => Some(error),
            _ => None,
        }
    }

    /// Whether an attempt panicked. A panic ends its task at once: it is a bug, not a
    /// transient fault, so it is never retried.
    pub fn is_panic(&self) -> bool {
        matches!(self.0.cause, Cause::Panic(_))
    }

    /// The panic's message, when an attempt panicked with a string payload
    /// (as `panic!("...")` does).
    pub fn panic_message(&self) -> Option<&str> {
        match &self.0.cause {
            Cause::Panic(message) => message.as_deref(),
            _ => None,
        }
    }

    /// Whether the last attempt ran past its timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.0.cause, Cause::Timeout)
    }

    /// Whether the task was cancelled before it could finish.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.0.cause, Cause::Cancelled)
    }

    /// Whether the task ended at its error, with attempts left, because
    /// [`Pool::retry_if`](crate::Pool::retry_if) said the error is not worth a retry (a
    /// 404, say): unlike a task that used up its attempts.
    pub fn is_permanent(&self) -> bool {
        self.0.not_retried == Some(NotRetried::Permanent)
    }

    /// Whether the task ended with attempts left because the retry throttle
    /// ([`Pool::retry_throttle`](crate::Pool::retry_throttle)) refused its retry: too many
    /// attempts were failing.
    pub fn is_throttled(&self) -> bool {
        self.0.not_retried == Some(NotRetried::Throttled)
    }
}

fn plural(attempts: u32) -> &'static str {
    if attempts == 1 { "" } else { "s" }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, attempts, s) = (self.0.index, self.0.attempts, plural(self.0.attempts));
        let why = match self.0.not_retried {
            None => "",
            Some(NotRetried::Permanent) => ", not retried (`retry_if` refused the error)",
            Some(NotRetried::Throttled) => ", not retried (retries throttled)",
        };
        match &self.0.cause {
            Cause::Error(error) => {
                write!(
                    f,
                    "task #{index} failed after {attempts} attempt{s}{why}: {error}"
                )
            }
            Cause::Panic(Some(message)) => {
                write!(f, "task #{index} panicked on attempt {attempts}: {message}")
            }
            Cause::Panic(None) => write!(f, "task #{index} panicked on attempt {attempts}"),
            Cause::Timeout => {
                write!(
                    f,
                    "task #{index} timed out after {attempts} attempt{s}{why}"
                )
            }
            Cause::Cancelled => {
                write!(f, "task #{index} was cancelled after {attempts} attempt{s}")
            }
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Failure");
        debug
            .field("index", &self.0.index)
            .field("attempts", &self.0.attempts);
        match &self.0.cause {
            Cause::Error(error) => debug.field("error", error),
            Cause::Panic(message) => debug.field("panic", message),
            Cause::Timeout => debug.field("timeout", &true),
            Cause::Cancelled => debug.field("cancelled", &true),
        };
        if let Some(why) = self.0.not_retried {
            debug.field("not_retried", &why);
        }
        debug.finish()
    }
}

impl<E> Error for Failure<E>
where
    E: Error + 'static,
{
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error().map(|error| error as &(dyn Error + 'static))
    }
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}
