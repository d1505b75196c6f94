//! The retry policy: where a failed task goes, how many attempts it gets and how long it
//! waits first; and the one rule set that says which settings go together, kept by the
//! builder and the attribute alike.

use std::fmt;
use std::time::Duration;

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
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    pub(crate) order: Retry,
    /// Total attempts per task, the first one included.
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Option<Backoff>,
    /// At most this many attempt starts in any window of this length.
    pub(crate) rate: Option<(u32, Duration)>,
    /// gRPC's retry throttling: its tokens, and the share of a token a success gives back.
    pub(crate) throttle: Option<(u32, f64)>,
}

/// A pool's settings, as the builder or the attribute was given them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Settings {
    pub(crate) retry: Retry,
    pub(crate) attempts: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) rate: Option<(u32, Duration)>,
    pub(crate) throttle: Option<(u32, f64)>,
    pub(crate) retry_if: bool,
    pub(crate) retry_after: bool,
}

/// Settings that do not go together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// More than one attempt, but no retry policy to run the others.
    AttemptsWithoutRetry(u32),
    /// A setting about retries (`backoff`, `retry_if`, `retry_after`, `retry_throttle`),
    /// but no retry policy.
    NeedsRetry(&'static str),
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
    pub(crate) fn new(settings: Settings) -> Result<Self, Conflict> {
        let max_attempts = max_attempts(settings.retry, settings.attempts);
        if !settings.retry.retries() {
            if max_attempts > 1 {
                return Err(Conflict::AttemptsWithoutRetry(max_attempts));
            }
            let about_retries = [
                (settings.backoff.is_some(), "backoff"),
                (settings.retry_if, "retry_if"),
                (settings.retry_after, "retry_after"),
                (settings.throttle.is_some(), "retry_throttle"),
            ];
            if let Some(&(_, name)) = about_retries.iter().find(|&&(set, _)| set) {
                return Err(Conflict::NeedsRetry(name));
            }
        }
        Ok(RetryPolicy {
            order: settings.retry,
            max_attempts,
            backoff: settings.backoff,
            rate: settings.rate,
            throttle: settings.throttle,
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
            Conflict::NeedsRetry(setting) => {
                let what = match *setting {
                    "backoff" => "is the delay before a failed task runs again",
                    "retry_if" => "chooses which errors are retried",
                    "retry_after" => "lets an error say how long to wait before its retry",
                    _ => "throttles retries",
                };
                write!(
                    f,
                    "`{setting}` {what}, but the pool has no retry policy (`Retry::None`, the default, runs each task once); add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`"
                )
            }
        }
    }
}
