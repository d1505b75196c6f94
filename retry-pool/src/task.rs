//! What a task is, and how one attempt of it runs.
//!
//! An attempt is a future that owns its task while it runs and hands it back when it ends,
//! so that the same task can be started again: `async move { let r = task().await; (task, r) }`.
//! The pool stores that future as it is, pinned in a slot, with no box of its own.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::Failure;

/// The output of one attempt: a `Result`, whose `Ok` a completion stream yields and whose
/// `Err` it retries or reports in a [`Failure`].
///
/// Implemented for every `Result<T, E>`, aliases such as `io::Result<T>` included.
#[diagnostic::on_unimplemented(
    message = "a pooled task must return a `Result`, but it returns `{Self}`",
    label = "this is not a `Result`",
    note = "each attempt returns `Ok` when it succeeds, or `Err` to be retried or reported"
)]
pub trait TaskResult: sealed::Sealed {
    /// The value of a successful attempt.
    type Ok;
    /// The error of a failed attempt.
    type Err;
    /// The `Result` itself.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> TaskResult for Result<T, E> {
    type Ok = T;
    type Err = E;

    fn into_result(self) -> Result<T, E> {
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T, E> Sealed for Result<T, E> {}
}

/// The item of a completion stream for tasks returning `R`: the value of the attempt that
/// succeeded, or the [`Failure`] of a task that gave up.
pub type Outcome<R> = Result<<R as TaskResult>::Ok, Failure<<R as TaskResult>::Err>>;

/// What an attempt hands back when it ends: its task, to start again (`None` when it
/// cannot be, as for a plain future), and its result (`None` when it timed out).
pub type Handback<F, R> = (Option<F>, Option<R>);

/// A panic payload caught from an attempt.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// One attempt of a task: a future that hands its task back with its result. Implemented
/// for every such future, so that a stream's type names the attempt alone and finds the
/// task and result types through it.
pub trait Attempt: Future<Output = Handback<Self::Task, Self::Result>> {
    /// The task the attempt runs, and hands back.
    type Task;
    /// What the attempt returns.
    type Result: TaskResult;
}

impl<A, F, R> Attempt for A
where
    A: Future<Output = Handback<F, R>>,
    R: TaskResult,
{
    type Task = F;
    type Result = R;
}

/// A task of any kind, boxed: what a scheduler takes when its tasks are of different
/// kinds. Made by [`boxed`].
/// Each call starts one attempt, a boxed future.
pub type BoxTask<T, E> =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send>;

/// Boxes a task (a closure returning a future) so that tasks of different kinds share one
/// type.
///
/// ```
/// use retry_pool::{BoxTask, boxed};
///
/// let tasks: Vec<BoxTask<u32, String>> = vec![
///     boxed(|| async { Ok(1) }),
///     boxed(move || async move { Err("no".to_string()) }),
/// ];
/// assert_eq!(tasks.len(), 2);
/// ```
pub fn boxed<F, Fut, T, E>(mut task: F) -> BoxTask<T, E>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    Box::new(move || Box::pin(task()))
}

/// What every attempt of a pool is held to. `Copy`, so the attempt function can take it
/// by value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub(crate) timeout: Option<Duration>,
}

impl Limits {
    /// Runs `attempt` within these limits: its output, or `None` when it timed out.
    pub fn apply<Fut: Future>(self, attempt: Fut) -> Timed<Fut> {
        Timed {
            attempt,
            deadline: self.timeout.map(tokio::time::sleep),
        }
    }
}

pin_project! {
    /// An attempt with an optional deadline.
    #[must_use = "futures do nothing unless polled"]
    pub struct Timed<Fut> {
        #[pin]
        attempt: Fut,
        #[pin]
        deadline: Option<Sleep>,
    }
}

impl<Fut: Future> Future for Timed<Fut> {
    type Output = Option<Fut::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.attempt.poll(cx) {
            return Poll::Ready(Some(output));
        }
        match this.deadline.as_pin_mut() {
            Some(deadline) => deadline.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    }
}

/// One attempt of a task that can be started again.
pub(crate) async fn attempt_closure<F, R>(mut task: F, limits: Limits) -> Handback<F, R>
where
    F: AsyncFnMut() -> R,
{
    let result = limits.apply(task()).await;
    (Some(task), result)
}

/// One attempt of a closure returning a future: unlike [`attempt_closure`], its `Send` can
/// be proven in generic code, from `Fut: Send`.
pub(crate) async fn attempt_fn_mut<F, Fut>(mut task: F, limits: Limits) -> Handback<F, Fut::Output>
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    let result = limits.apply(task()).await;
    (Some(task), result)
}

/// The one attempt of a plain future.
pub(crate) async fn attempt_future<Fut: IntoFuture>(
    future: Fut,
    limits: Limits,
) -> Handback<Fut, Fut::Output> {
    (None, limits.apply(future.into_future()).await)
}
