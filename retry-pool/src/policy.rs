//! The retry policy: where a failed task goes, how many attempts it gets and how long it
//! waits first; and the one rule set that says which settings go together, kept by the
//! builder and the attribute alike.

use std::fmt;

use crate::backoff::Backoff;

/// Where a failed task goes when it has attempts left.
///
/// The crate documentation shows both orders side by side ("How retries are ordered").
///
/// ```
/// use retry_pool::{Pool, Retry};
///
/// // No retry by default: one attempt per task.
/// assert_eq!(Pool::new(4).max_attempts(), 1);
/// // A retry policy alone gives 3 attempts.
/// assert_eq!(Pool::new(4).retry(Retry::Fifo).max_attempts(), 3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Retry {
    /// No retry: every task gets one attempt. The default.
    #[default]
    None,
    /// A failed task runs again before anything else that is waiting, most recent failure
    /// first. The input is pulled only when no retry is waiting.
    Lifo,
    /// A failed task goes to the back of the line, behind the rest of the input, in the
    /// order of failure. Retries wait until the input ends, so an endless input wants
    /// [`Retry::Lifo`] or a backoff.
    Fifo,
}

impl Retry {
    /// Whether failed tasks run again.
    pub(crate) fn retries(self) -> bool {
        self != Retry::None
    }
}

/// Attempts per task when retrying and no attempt count was given.
pub(crate) const DEFAULT_RETRY_ATTEMPTS: u32 = 3;

/// The policy a pool's tasks are retried by, once its settings were found to agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub(crate) order: Retry,
    /// Total attempts per task, the first one included.
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Option<Backoff>,
}

/// Settings that do not go together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// More than one attempt, but no retry policy to run the others.
    AttemptsWithoutRetry(u32),
    /// A backoff, but no retry policy to wait before.
    BackoffWithoutRetry,
}

/// The total attempts per task: `attempts` if given, else the default for `retry`.
pub(crate) fn max_attempts(retry: Retry, attempts: Option<u32>) -> u32 {
    match (attempts, retry) {
        (Some(attempts), _) => attempts,
        (None, Retry::None) => 1,
        (None, _) => DEFAULT_RETRY_ATTEMPTS,
    }
}

impl RetryPolicy {
    /// The policy for these settings, or the first that contradicts another.
    pub(crate) fn new(
        retry: Retry,
        attempts: Option<u32>,
        backoff: Option<Backoff>,
    ) -> Result<Self, Conflict> {
        let max_attempts = max_attempts(retry, attempts);
        if !retry.retries() {
            if max_attempts > 1 {
                return Err(Conflict::AttemptsWithoutRetry(max_attempts));
            }
            if backoff.is_some() {
                return Err(Conflict::BackoffWithoutRetry);
            }
        }
        Ok(RetryPolicy {
            order: retry,
            max_attempts,
            backoff,
        })
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::AttemptsWithoutRetry(attempts) => write!(
                f,
                "`attempts({attempts})` needs a retry policy, but the pool has none (`Retry::None`, the default, runs each task once); add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`"
            ),
            Conflict::BackoffWithoutRetry => f.write_str(
                "`backoff` is the delay before a failed task runs again, but the pool has no retry policy (`Retry::None`, the default, runs each task once); add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`",
            ),
        }
    }
}
