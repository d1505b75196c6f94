//! What a pool asks of a failed attempt's error: whether it is worth a retry
//! ([`Pool::retry_if`](crate::Pool::retry_if)), and whether it says how long to wait
//! ([`Pool::retry_after`](crate::Pool::retry_after)).
//!
//! Both are shared functions of the tasks' error type, checked where they are given and
//! called only when an attempt fails. The types here name a configured pool
//! (`Pool<RetryIfFn<io::Error>>`), and let code that decides retries of its own (a durable
//! queue's worker) keep the same settings: [`Hooks`] asks them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A pool without `retry_if`: every error is worth a retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveryError;

/// A pool without `retry_after`: errors say nothing of when to retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHint;

/// A pool's `retry_if`: a predicate on errors of type `E`, checked (and boxed) where it is
/// given, so that a function of the wrong type is reported there alone.
pub struct RetryIfFn<E>(Pred<E>);

/// A pool's `retry_after`: a hint from errors of type `E`, checked where it is given.
pub struct RetryAfterFn<E>(Hint<E>);

impl<E> RetryIfFn<E> {
    /// `pred` as a `retry_if` setting.
    pub fn new(pred: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        RetryIfFn(Arc::new(pred))
    }
}

impl<E> RetryAfterFn<E> {
    /// `hint` as a `retry_after` setting.
    pub fn new(hint: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static) -> Self {
        RetryAfterFn(Arc::new(hint))
    }
}

/// A shared `retry_if` predicate.
pub type Pred<E> = Arc<dyn Fn(&E) -> bool + Send + Sync>;
/// A shared `retry_after` hint.
pub type Hint<E> = Arc<dyn Fn(&E) -> Option<Duration> + Send + Sync>;

/// A `retry_if` setting that applies to errors of type `E`: [`EveryError`] or
/// [`RetryIfFn<E>`].
#[diagnostic::on_unimplemented(
    message = "this `retry_if` does not take the tasks' error type `{E}`",
    label = "the tasks fail with `{E}`",
    note = "`retry_if` takes a function `fn(&E) -> bool` of the error the tasks return"
)]
pub trait RetryIf<E> {
    /// The predicate, boxed; `None` for every error.
    fn into_pred(self) -> Option<Pred<E>>;
}

/// A `retry_after` setting that applies to errors of type `E`: [`NoHint`] or
/// [`RetryAfterFn<E>`].
#[diagnostic::on_unimplemented(
    message = "this `retry_after` does not take the tasks' error type `{E}`",
    label = "the tasks fail with `{E}`",
    note = "`retry_after` takes a function `fn(&E) -> Option<Duration>` of the error the tasks return"
)]
pub trait RetryAfter<E> {
    /// The hint, boxed; `None` for no hint.
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

/// The `retry_if` and `retry_after` settings, as a pool (or a queue's worker) asks them
/// when an attempt fails.
pub struct Hooks<E> {
    pred: Option<Pred<E>>,
    hint: Option<Hint<E>>,
}

impl<E> Hooks<E> {
    /// The settings, as given to the builder.
    pub fn new(retry_if: impl RetryIf<E>, retry_after: impl RetryAfter<E>) -> Self {
        Hooks {
            pred: retry_if.into_pred(),
            hint: retry_after.into_hint(),
        }
    }

    /// Whether a `retry_if` was given.
    pub fn has_retry_if(&self) -> bool {
        self.pred.is_some()
    }

    /// Whether a `retry_after` was given.
    pub fn has_retry_after(&self) -> bool {
        self.hint.is_some()
    }

    /// Whether `error` is worth a retry (always, without a `retry_if`).
    #[inline]
    pub fn retry_if(&self, error: &E) -> bool {
        self.pred.as_ref().is_none_or(|pred| pred(error))
    }

    /// How long `error` says to wait before the retry, if it says (never, without a
    /// `retry_after`).
    #[inline]
    pub fn retry_after(&self, error: &E) -> Option<Duration> {
        self.hint.as_ref().and_then(|hint| hint(error))
    }
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

impl<E> fmt::Debug for Hooks<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("retry_if", &self.pred.is_some())
            .field("retry_after", &self.hint.is_some())
            .finish()
    }
}
