//! What a worker asks of a failed attempt's error, as the local pool does: whether it is
//! worth a retry ([`Worker::retry_if`](crate::Worker::retry_if)), and whether it says how
//! long to wait ([`Worker::retry_after`](crate::Worker::retry_after)).
//!
//! The worker's local pool retries nothing (PostgreSQL decides retries), so the worker
//! keeps these functions itself and asks them at the end of each failed attempt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A worker without `retry_if`: every error is worth a retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveryError;

/// A worker without `retry_after`: errors say nothing of when to retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHint;

/// A worker's `retry_if`: a predicate on errors of type `E`, typed where it is given, so
/// that a function of the wrong type is reported at `run`.
pub struct RetryIfFn<E>(Pred<E>);

/// A worker's `retry_after`: a hint from errors of type `E`.
pub struct RetryAfterFn<E>(Hint<E>);

type Pred<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;
type Hint<E> = Arc<dyn Fn(&E) -> Option<Duration> + Send + Sync>;

impl<E> RetryIfFn<E> {
    pub(crate) fn new(pred: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        RetryIfFn(Arc::new(pred))
    }
}

impl<E> RetryAfterFn<E> {
    pub(crate) fn new(hint: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static) -> Self {
        RetryAfterFn(Arc::new(hint))
    }
}

/// A `retry_if` setting that applies to errors of type `E`. (`pub` only as a bound of
/// [`Worker::run`](crate::Worker::run); not exported.)
#[diagnostic::on_unimplemented(
    message = "this `retry_if` does not take the handler's error type `{E}`",
    label = "the handler fails with `{E}`",
    note = "`retry_if` takes a function `fn(&E) -> bool` of the error the handler returns"
)]
pub trait RetryIf<E> {
    /// The predicate; `None` for every error.
    fn into_pred(self) -> Option<Pred<E>>;
}

/// A `retry_after` setting that applies to errors of type `E`. (`pub` only as a bound of
/// [`Worker::run`](crate::Worker::run); not exported.)
#[diagnostic::on_unimplemented(
    message = "this `retry_after` does not take the handler's error type `{E}`",
    label = "the handler fails with `{E}`",
    note = "`retry_after` takes a function `fn(&E) -> Option<Duration>` of the error the handler returns"
)]
pub trait RetryAfter<E> {
    /// The hint; `None` for no hint.
    fn into_hint(self) -> Option<Hint<E>>;
}

impl<E> RetryIf<E> for EveryError {
    fn into_pred(self) -> Option<Pred<E>> {
        None
    }
}

impl<E> RetryIf<E> for RetryIfFn<E> {
    fn into_pred(self) -> Option<Pred<E>> {
        Some(self.0)
    }
}

impl<E> RetryAfter<E> for NoHint {
    fn into_hint(self) -> Option<Hint<E>> {
        None
    }
}

impl<E> RetryAfter<E> for RetryAfterFn<E> {
    fn into_hint(self) -> Option<Hint<E>> {
        Some(self.0)
    }
}

/// The hooks as an attempt asks them.
pub(crate) struct Hooks<E> {
    pred: Option<Pred<E>>,
    hint: Option<Hint<E>>,
}

impl<E> Hooks<E> {
    pub(crate) fn new(retry_if: impl RetryIf<E>, retry_after: impl RetryAfter<E>) -> Self {
        Hooks {
            pred: retry_if.into_pred(),
            hint: retry_after.into_hint(),
        }
    }

    /// The settings given, by name: they need a retry policy.
    pub(crate) fn given(&self) -> Vec<&'static str> {
        let given = [
            self.pred.is_some().then_some("retry_if"),
            self.hint.is_some().then_some("retry_after"),
        ];
        given.into_iter().flatten().collect()
    }

    /// What the hooks say of a failed attempt's `error`.
    pub(crate) fn verdict(&self, error: &E) -> Verdict {
        if self.pred.as_ref().is_some_and(|pred| !pred(error)) {
            return Verdict::Refused;
        }
        Verdict::Retry(self.hint.as_ref().and_then(|hint| hint(error)))
    }
}

/// Whether a handler's error may be retried, and after how long if it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Worth a retry (if attempts are left): after the hint, or the backoff on `None`.
    Retry(Option<Duration>),
    /// `retry_if` refused it: the task ends at this error.
    Refused,
}

impl<E> Clone for RetryIfFn<E> {
    fn clone(&self) -> Self {
        RetryIfFn(Arc::clone(&self.0))
    }
}

impl<E> Clone for RetryAfterFn<E> {
    fn clone(&self) -> Self {
        RetryAfterFn(Arc::clone(&self.0))
    }
}

impl<E> fmt::Debug for RetryIfFn<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryIfFn")
    }
}

impl<E> fmt::Debug for RetryAfterFn<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryAfterFn")
    }
}
