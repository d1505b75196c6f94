//! What `#[pooled]` expands to. Not public API: no stability promised.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::hooks::{RetryAfter, RetryIf};
use crate::pool_stream::PoolStream;
use crate::source::{BodySource, IntoSource, Listing, Source};
use crate::stats::Stats;
pub use crate::task::{Handback, Limits, Outcome, Plain, TaskResult};
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

/// The task source of a `#[pooled]` function's body `B`, which evaluates to an iterator or
/// a stream of tasks (`M` says which).
type Body<B, M> = BodySource<B, <<B as Future>::Output as IntoSource<M>>::Source, M>;

/// The stream of a `#[pooled]` function: `body` lists the tasks when first polled (an
/// iterator or a stream of them), and `attempt` (written by the expansion, where the task
/// type is concrete) runs one attempt.
#[track_caller]
pub fn pooled<B, M, F, A, Make, R, If, After>(
    pool: Pool<If, After>,
    body: B,
    attempt: Make,
) -> Completions<Body<B, M>, A, Make>
where
    B: Future,
    B::Output: IntoSource<M, Source: Source<Task = F>>,
    A: Future<Output = Handback<F, R>>,
    Make: Fn(F, Limits) -> A + Copy,
    R: TaskResult,
    If: RetryIf<R::Err>,
    After: RetryAfter<R::Err>,
{
    pool.run_with(BodySource::new(body), attempt, Default::default())
}

/// The stream of a `#[pooled(spawn = true)]` function: the body lists the tasks in place,
/// on the first polls of the stream, and then every attempt runs as a tokio task.
///
/// The body need be neither `Send` nor `'static`: a method taking `&self` may clone what
/// its tasks need out of `self`. What crosses to the worker threads (the iterator, its
/// tasks, their attempts and results) must be `Send + 'static`, which [`spawnable`] checks
/// first, where the types are concrete. (The expansion is documented on `pooled`, in the
/// macro crate.)
#[track_caller]
pub fn spawn_pooled<B, F, A, R, If, After>(
    pool: Pool<If, After>,
    checked: Spawnable<B, F, A, R, If, After>,
) -> SpawnPooled<B, F, A, R, If, After>
where
    B: Future,
    R: TaskResult,
{
    // The settings are checked at the call, as in place, not at the first poll.
    pool.policy();
    SpawnPooled {
        pool: Some(pool),
        attempt: checked.attempt,
        start: checked.start,
        tasks: Listing::new(checked.body),
    }
}

/// Checks that a spawned pool's tasks, attempts and results can cross to tokio's worker
/// threads, with a message of its own for each, and keeps the proof (a function that
/// spawns them) for [`spawn_pooled`].
///
/// The expansion locates this call on the user's tasks, so that a task that is not `Send`
/// is reported there, and `result` on the declared return type, so that a `Result` that is
/// not `Send` is reported there (rustc reports a bound on `R` at the one argument whose type
/// mentions it).
pub fn spawnable<B, M, F, A, R, If, After>(
    body: B,
    attempt: fn(F, Limits) -> A,
    result: PhantomData<R>,
) -> Spawnable<B, F, A, R, If, After>
where
    B: Future,
    B::Output: IntoSource<M, Source: Source<Task = F>>,
    F: SpawnTask<<B::Output as IntoSource<M>>::Source, A>,
    A: Future<Output = Handback<F, R>>,
    R: SendResult,
    If: RetryIf<R::Err>,
    After: RetryAfter<R::Err>,
{
    let PhantomData = result;
    Spawnable {
        body,
        attempt,
        start: start_spawned::<B::Output, M, F, A, R, If, After>,
    }
}

/// The `'static` half of the check on the tasks, applied to the body's value inside its
/// `async` block: a task that borrows an argument or a local is then reported by rustc as
/// that borrow escaping, at the tasks. (`'static` bounds are checked by the borrow checker,
/// which takes no custom message; where rustc shows the bound, it shows its line, comment
/// included.)
pub fn static_tasks<I>(tasks: I) -> I
where
    I: 'static, // spawned pools need `Send + 'static` tasks: move or clone, not borrow
{
    tasks
}

/// The one attempt of an in-place `#[pooled]` task that is not retried: `start(task)`
/// within its limits, handing no task back. Not an `async` block, which would hold the task
/// twice (captured, and again within `Timed` once started).
pub fn once<F, Fut, S>(task: F, limits: Limits, start: S) -> Plain<F, Fut, S>
where
    Fut: Future,
    S: FnOnce(F) -> Fut,
{
    Plain::new(task, limits, start)
}

/// The `Result` an attempt of a spawned pool returned, as a `Result` by name: a declared
/// type that is not a `Result` is reported here (at the declared type, as by the signature),
/// and then leaves the spawned pool's result type unknown rather than wrong, so that
/// `spawnable` adds no error of its own.
pub fn into_result<R: TaskResult>(result: Option<R>) -> Option<Result<R::Ok, R::Err>> {
    result.map(R::into_result)
}

fn start_spawned<L, M, F, A, R, If, After>(
    pool: Pool<If, After>,
    listed: L,
    attempt: fn(F, Limits) -> A,
) -> Spawned<R>
where
    L: IntoSource<M, Source: Source<Task = F>>,
    F: SpawnTask<L::Source, A>,
    A: Future<Output = Handback<F, R>>,
    R: SendResult,
    If: RetryIf<R::Err>,
    After: RetryAfter<R::Err>,
{
    F::spawn(pool, listed.into_source(), attempt)
}

/// Spawns the listed tasks of a spawned pool: `start_spawned`, made where its bounds hold.
type Start<L, F, A, R, If, After> = fn(Pool<If, After>, L, fn(F, Limits) -> A) -> Spawned<R>;

/// What [`spawnable`] checked, for [`spawn_pooled`].
pub struct Spawnable<B: Future, F, A, R: TaskResult, If, After> {
    body: B,
    attempt: fn(F, Limits) -> A,
    start: Start<B::Output, F, A, R, If, After>,
}

impl<B: Future, F, A, R: TaskResult, If, After> fmt::Debug for Spawnable<B, F, A, R, If, After> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Spawnable")
    }
}

/// The check that a spawned pool's tasks can cross to tokio's worker threads, and what
/// spawns them: see [`spawnable`].
///
/// Its impl is `#[diagnostic::do_not_recommend]`, so that a task that is not `Send` is
/// reported with this trait's message rather than rustc's own about the `Rc` inside it.
#[diagnostic::on_unimplemented(
    message = "spawned pools need `Send + 'static` tasks, but `{Self}` is not `Send`, or holds something that is not across an `.await`",
    label = "these tasks run on other threads (`spawn = true`), so they must be `Send`",
    note = "with `spawn = true`, every attempt runs as a tokio task on the runtime's worker threads: each task, what it captures, the future of each attempt and the iterator or stream listing the tasks must all be `Send + 'static`",
    note = "share data with `Arc` rather than `Rc`, and hold no `RefCell` borrow or `std::sync::MutexGuard` across an `.await`; or remove `spawn = true` to run the tasks in place"
)]
pub trait SpawnTask<X, A>: Sized {
    /// Runs the tasks of `source` in `pool`, every attempt a tokio task.
    fn spawn<R, If, After>(
        pool: Pool<If, After>,
        source: X,
        attempt: fn(Self, Limits) -> A,
    ) -> Spawned<R>
    where
        A: Future<Output = Handback<Self, R>>,
        R: SendResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>;
}

#[diagnostic::do_not_recommend]
impl<F, X, A> SpawnTask<X, A> for F
where
    F: Send + 'static,
    X: Source<Task = F> + Send + 'static,
    A: Future + Send + 'static,
{
    fn spawn<R, If, After>(
        pool: Pool<If, After>,
        source: X,
        attempt: fn(F, Limits) -> A,
    ) -> Spawned<R>
    where
        A: Future<Output = Handback<F, R>>,
        R: SendResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        pool.spawn_with(source, attempt, Default::default())
    }
}

/// The check that what a spawned pool's tasks return can cross threads: see [`spawnable`].
///
/// The expansion checks `Result<R::Ok, R::Err>` (see [`into_result`]): a declared type that
/// is not a `Result` is reported by the signature alone.
#[diagnostic::on_unimplemented(
    message = "spawned pools need a `Send + 'static` result, but `{Self}` is not `Send`",
    label = "the outcomes of a spawned pool come back from other threads (`spawn = true`), so they must be `Send`",
    note = "share data with `Arc` rather than `Rc`; or remove `spawn = true` to run the tasks in place"
)]
pub trait SendResult: TaskResult<Ok: Send + 'static, Err: Send + 'static> + Send + 'static {}

#[diagnostic::do_not_recommend]
impl<R> SendResult for R where
    R: TaskResult<Ok: Send + 'static, Err: Send + 'static> + Send + 'static
{
}

/// See [`spawn_pooled`].
#[must_use = "streams do nothing unless polled"]
pub struct SpawnPooled<B: Future, F, A, R: TaskResult, If, After> {
    /// Until the body has listed the tasks.
    pool: Option<Pool<If, After>>,
    attempt: fn(F, Limits) -> A,
    /// Made where the `Send + 'static` bounds are known to hold: the stream itself needs
    /// none, so that it is `Send` exactly when its body is.
    start: Start<B::Output, F, A, R, If, After>,
    /// The body, until it has listed the tasks; then their stream.
    tasks: Listing<B, Spawned<R>>,
}

impl<B: Future, F, A, R: TaskResult, If, After> Unpin for SpawnPooled<B, F, A, R, If, After> {}

impl<B: Future, F, A, R: TaskResult, If, After> Stream for SpawnPooled<B, F, A, R, If, After> {
    type Item = Outcome<R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let (start, attempt, pool) = (this.start, this.attempt, &mut this.pool);
        let spawned = std::task::ready!(this.tasks.poll_listed(cx, |tasks| {
            let pool = pool.take().expect("the body lists its tasks once");
            start(pool, tasks, attempt)
        }));
        Pin::new(spawned).poll_next(cx)
    }
}

impl<B: Future, F, A, R: TaskResult, If, After> PoolStream for SpawnPooled<B, F, A, R, If, After> {
    fn stats(&self) -> Stats {
        match &self.tasks {
            // Nothing has started yet.
            Listing::Body(_) => Stats::default(),
            Listing::Listed(spawned) => spawned.stats(),
        }
    }
}

impl<B: Future, F, A, R: TaskResult, If, After> fmt::Debug for SpawnPooled<B, F, A, R, If, After> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tasks {
            Listing::Body(_) => f.write_str("SpawnPooled(listing)"),
            Listing::Listed(spawned) => f.debug_tuple("SpawnPooled").field(spawned).finish(),
        }
    }
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

impl<T> PoolStream for Fallback<T> {
    fn stats(&self) -> Stats {
        Stats::default()
    }
}

impl<R> fmt::Debug for Fallback<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallback")
    }
}
