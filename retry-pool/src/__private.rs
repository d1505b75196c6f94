//! What `#[pooled]` expands to. Not public API: no stability promised.

use std::future::{Future, IntoFuture};

pub use crate::source::BodySource;
pub use crate::task::{Handback, Limits, Outcome, TaskResult};
pub use crate::{Completions, Failure, Pool, Retry};
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

    /// Runs one attempt within `limits` and hands back what can be started again.
    fn attempt(self, limits: Limits) -> impl Future<Output = Handback<Self, Self::Output>>;
}

impl<Fut: IntoFuture> Task<ViaFuture> for Fut {
    type Output = Fut::Output;

    fn attempt(self, limits: Limits) -> impl Future<Output = Handback<Self, Self::Output>> {
        async move { (None, limits.apply(self.into_future()).await) }
    }
}

impl<F, R> Task<ViaClosure> for F
where
    F: AsyncFnMut() -> R,
{
    type Output = R;

    fn attempt(mut self, limits: Limits) -> impl Future<Output = Handback<Self, R>> {
        async move {
            let result = limits.apply(self()).await;
            (Some(self), result)
        }
    }
}
