//! What `#[pooled]` expands to. Not public API: no stability promised.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use crate::source::BodySource;
pub use crate::task::{Handback, Limits, Outcome, TaskResult};
pub use crate::{Backoff, Completions, Failure, Pool, Retry, Spawned};
pub use futures_core::Stream;

/// The value of `concurrency = <expr>`, checked when the function is called.
#[track_caller]
pub fn concurrency<N>(value: N) -> usize
where
    N: TryInto<usize> + Copy + std::fmt::Display,
{
    match value.try_into() {
        Ok(0) => panic!(
            "retry-pool: `concurrency` must be at least 1, but it evaluated to 0 (a pool of 0 slots would never run a task)"
        ),
        Ok(concurrency) => concurrency,
        Err(_) => panic!(
            "retry-pool: `concurrency` must be a positive number of slots, but it evaluated to {value}"
        ),
    }
}

/// The stream of a `#[pooled]` function: `body` lists the tasks when first polled, and
/// `attempt` (written by the expansion, where the task type is concrete) runs one attempt.
pub fn pooled<B, F, A, R>(
    pool: Pool,
    body: B,
    attempt: fn(F, Limits) -> A,
) -> Completions<BodySource<B, <B::Output as IntoIterator>::IntoIter>, F, A, R>
where
    B: Future,
    B::Output: IntoIterator<Item = F>,
    A: Future<Output = Handback<F, R>>,
    R: TaskResult,
{
    pool.run_with(BodySource::new(body), attempt)
}

/// The stream of a `#[pooled(spawn = true)]` function: as [`pooled`], with every attempt a
/// tokio task. The body, its tasks and their attempts must be `Send + 'static`.
pub fn spawned<B, F, A, R>(pool: Pool, body: B, attempt: fn(F, Limits) -> A) -> Spawned<R>
where
    B: Future + Send + 'static,
    B::Output: IntoIterator<Item = F>,
    <B::Output as IntoIterator>::IntoIter: Send + 'static,
    F: Send + 'static,
    A: Future<Output = Handback<F, R>> + Send + 'static,
    R: TaskResult + Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
{
    pool.spawn_with(BodySource::new(body), attempt)
}

/// Marks a task that is a plain future (`IntoFuture`): it runs once.
#[derive(Debug)]
pub enum ViaFuture {}

/// Marks a task that can be started again (`AsyncFnMut`).
#[derive(Debug)]
pub enum ViaClosure {}

/// A task of a non-retrying pool: a plain future or a closure, told apart by `M`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task of a `#[pooled]` function",
    label = "each item of the body's iterator must be a task",
    note = "a task is an async closure (`async move || ...`), a closure returning a future, or (without retry) a future"
)]
pub trait Task<M>: Sized {
    /// What one attempt returns.
    type Output;

    /// Starts the task's one and only attempt, consuming it.
    ///
    /// A closure is called by value (`AsyncFnOnce`), so the future borrows nothing from a
    /// local: the `Send` of a task that borrows the function's arguments can then be
    /// proven where the task's type is concrete.
    fn start(self) -> impl Future<Output = Self::Output>;
}

impl<Fut: IntoFuture> Task<ViaFuture> for Fut {
    type Output = Fut::Output;

    fn start(self) -> impl Future<Output = Self::Output> {
        self.into_future()
    }
}

impl<F, R> Task<ViaClosure> for F
where
    F: AsyncFnMut() -> R,
{
    type Output = R;

    fn start(self) -> impl Future<Output = R> {
        call_once(self)
    }
}

fn call_once<F: AsyncFnOnce() -> R, R>(task: F) -> impl Future<Output = R> {
    task()
}

/// The check that a retrying pool's tasks can be started again, with the message for the
/// common mistake (plain futures): see [`restartable`].
#[diagnostic::on_unimplemented(
    message = "retrying needs a task that can be started again, but `{Self}` cannot be",
    label = "these tasks cannot be started again",
    note = "a future runs once: make each task an async closure (`async move || ...`) or a closure returning a future (`move || async move {{ ... }}`)",
    note = "or run each task once, without retry: `retry = \"none\"`"
)]
pub trait Restartable {
    /// The task itself: `Self`, but found through `R` (see [`restartable`]).
    type Task;

    /// The task itself.
    fn restartable(self) -> Self::Task;
}

impl<F, R> Restartable for F
where
    F: AsyncFnMut() -> R,
{
    type Task = <R as Same<F>>::Is;

    fn restartable(self) -> Self::Task {
        <R as Same<F>>::same(self)
    }
}

/// `<R as Same<T>>::Is` is `T`, but only once `R` is known.
pub trait Same<T> {
    /// `T`.
    type Is;
    /// `t`.
    fn same(t: T) -> Self::Is;
}

impl<R, T> Same<T> for R {
    type Is = T;

    fn same(t: T) -> T {
        t
    }
}

/// Checks that `task` can be started again, and gives it back.
///
/// The one place that reports a retrying pool's plain futures (rather than the function's
/// signature or the stream's `let`s, where rustc would repeat it), and with its own message.
/// When the check fails, the returned type is left unknown (`R` of the impl is never found,
/// so `<R as Same<F>>::Is` is not normalized), and rustc turns it into an error type once
/// the error is reported: calling the task then adds no second error.
pub fn restartable<F: Restartable>(task: F) -> F::Task {
    task.restartable()
}

/// The stream a `#[pooled]` function returns when it has a mistake, beside the error:
/// typed as the real one, so that its callers see no errors of their own. Never polled, as
/// the crate does not build; empty.
///
/// Its item type is inferred from the function's declared stream type, whatever it is.
pub fn fallback<T>() -> Fallback<T> {
    Fallback(PhantomData)
}

/// See [`fallback`].
pub struct Fallback<T>(PhantomData<fn() -> T>);

impl<T> Stream for Fallback<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(None)
    }
}

impl<R> fmt::Debug for Fallback<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallback")
    }
}
