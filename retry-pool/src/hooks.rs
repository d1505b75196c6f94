//! What a pool asks of a failed attempt's error: whether it is worth a retry
//! ([`Pool::retry_if`](crate::Pool::retry_if)), and whether it says how long to wait
//! ([`Pool::retry_after`](crate::Pool::retry_after)).
//!
//! The builder holds them as it was given them, typed; the engine as boxed functions of
//! the tasks' error type, called only when an attempt fails.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// A pool without `retry_if`: every error is worth a retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveryError;

/// A pool without `retry_after`: errors say nothing of when to retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHint;

/// A pool's `retry_if`: `pred` on errors of type `E`.
pub struct RetryIfFn<E, P> {
    pred: P,
    error: PhantomData<fn(&E)>,
}

/// A pool's `retry_after`: `hint` on errors of type `E`.
pub struct RetryAfterFn<E, H> {
    hint: H,
    error: PhantomData<fn(&E)>,
}

impl<E, P> RetryIfFn<E, P> {
    pub(crate) fn new(pred: P) -> Self {
        RetryIfFn {
            pred,
            error: PhantomData,
        }
    }
}

impl<E, H> RetryAfterFn<E, H> {
    pub(crate) fn new(hint: H) -> Self {
        RetryAfterFn {
            hint,
            error: PhantomData,
        }
    }
}

type Pred<E> = Box<dyn Fn(&E) -> bool + Send + Sync>;
type Hint<E> = Box<dyn Fn(&E) -> Option<Duration> + Send + Sync>;

/// A `retry_if` setting that applies to errors of type `E`. (`pub` only as a bound of the
/// builder's entry points; not exported.)
pub trait RetryIf<E> {
    /// The predicate, boxed; `None` for every error.
    fn into_pred(self) -> Option<Pred<E>>;
}

/// A `retry_after` setting that applies to errors of type `E`. (`pub` only as a bound of
/// the builder's entry points; not exported.)
pub trait RetryAfter<E> {
    /// The hint, boxed; `None` for no hint.
    fn into_hint(self) -> Option<Hint<E>>;
}

impl<E> RetryIf<E> for EveryError {
    fn into_pred(self) -> Option<Pred<E>> {
        None
    }
}

impl<E, P> RetryIf<E> for RetryIfFn<E, P>
where
    P: Fn(&E) -> bool + Send + Sync + 'static,
{
    fn into_pred(self) -> Option<Pred<E>> {
        Some(Box::new(self.pred))
    }
}

impl<E> RetryAfter<E> for NoHint {
    fn into_hint(self) -> Option<Hint<E>> {
        None
    }
}

impl<E, H> RetryAfter<E> for RetryAfterFn<E, H>
where
    H: Fn(&E) -> Option<Duration> + Send + Sync + 'static,
{
    fn into_hint(self) -> Option<Hint<E>> {
        Some(Box::new(self.hint))
    }
}

/// The hooks as the engine calls them.
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

    /// Whether `error` is worth a retry.
    #[inline]
    pub(crate) fn retry_if(&self, error: &E) -> bool {
        self.pred.as_ref().is_none_or(|pred| pred(error))
    }

    /// How long `error` says to wait before the retry, if it says.
    #[inline]
    pub(crate) fn retry_after(&self, error: &E) -> Option<Duration> {
        self.hint.as_ref().and_then(|hint| hint(error))
    }
}

impl<E, P: Clone> Clone for RetryIfFn<E, P> {
    fn clone(&self) -> Self {
        RetryIfFn::new(self.pred.clone())
    }
}

impl<E, P: Copy> Copy for RetryIfFn<E, P> {}

impl<E, H: Clone> Clone for RetryAfterFn<E, H> {
    fn clone(&self) -> Self {
        RetryAfterFn::new(self.hint.clone())
    }
}

impl<E, H: Copy> Copy for RetryAfterFn<E, H> {}

impl<E, P> fmt::Debug for RetryIfFn<E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryIfFn")
    }
}

impl<E, H> fmt::Debug for RetryAfterFn<E, H> {
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
