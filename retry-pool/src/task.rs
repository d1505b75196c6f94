//! What a task is, and how one attempt of it runs.
//!
//! An attempt is a future that owns its task while it runs and hands it back when it ends,
//! so that the same task can be started again: `async move { let r = task().await; (task, r) }`.
//! The pool stores that future as it is, pinned in a slot, with no box of its own.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// What every attempt of a pool is held to, given to it by the slot or lane that runs it.
/// Small, so that an attempt carries no timer of its own: the timer is the slot's
/// (a `Deadline`), which only tells the attempt when its time is up.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Set by the runner's [`Deadline`] once the attempt's time is up; `None`: no timeout.
    expired: Option<Arc<AtomicBool>>,
}

impl Limits {
    /// Runs `attempt` within these limits: its output, or `None` when it timed out.
    pub fn apply<Fut: Future>(self, attempt: Fut) -> Timed<Fut> {
        Timed {
            attempt,
            expired: self.expired,
        }
    }
}

pin_project! {
    /// An attempt with an optional deadline.
    #[must_use = "futures do nothing unless polled"]
    pub struct Timed<Fut> {
        #[pin]
        attempt: Fut,
        expired: Option<Arc<AtomicBool>>,
    }
}

impl<Fut: Future> Future for Timed<Fut> {
    type Output = Option<Fut::Output>;

    // Into the attempt's `async fn`, with the task: one call and one state machine's
    // prologue fewer per poll (benches/RESULTS.md, the third in-place round).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Set by the runner only after a poll that left the attempt waiting, as its timer
        // fired: an output ready by the deadline still wins, as with `tokio::time::timeout`.
        if this
            .expired
            .as_ref()
            .is_some_and(|expired| expired.load(Ordering::Relaxed))
        {
            return Poll::Ready(None);
        }
        this.attempt.poll(cx).map(Some)
    }
}

/// Polls `timed` in a call of its own: where the attempt that holds it is inlined into
/// its runner (as a [`Plain`] attempt is), the task inlined too costs more than the call
/// (benches/RESULTS.md, the third in-place round).
#[inline(never)]
fn poll_out_of_line<Fut: Future>(
    timed: Pin<&mut Timed<Fut>>,
    cx: &mut Context<'_>,
) -> Poll<Option<Fut::Output>> {
    timed.poll(cx)
}

/// The timeout of the attempts that one slot (in place) or lane (spawned) runs, one after
/// another: one timer in one allocation made with the runner, reset for each attempt that
/// waits, so that starting an attempt allocates nothing.
pub(crate) struct Deadline {
    timeout: Duration,
    /// `None` after [`Deadline::idle`] until the next attempt starts: a timer left behind
    /// by an attempt that ended would wake the runner for nothing, and a paused clock
    /// would be advanced to it.
    timer: Pin<Box<Option<Sleep>>>,
    /// Shared with the running attempt's [`Timed`].
    expired: Arc<AtomicBool>,
    /// Whether the timer is set for the running attempt: only once the attempt has waited,
    /// so that an attempt that ends in its first poll never touches the timer wheel.
    armed: bool,
    /// Whether the timer was set since it was last taken out: it may still be registered
    /// with the runtime, for this attempt or an earlier one.
    registered: bool,
}

/// How far `tokio::time::sleep` puts a deadline that overflows.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Deadline {
    /// Needs the runtime's timer, as `tokio::time::sleep` does: the timer is made here (not
    /// registered until set), so that a runtime without one fails as the runner is made,
    /// outside any attempt.
    pub(crate) fn new(timeout: Duration) -> Self {
        Deadline {
            timeout,
            timer: Box::pin(Some(tokio::time::sleep(timeout))),
            expired: Arc::default(),
            armed: false,
            registered: false,
        }
    }

    /// The limits of a new attempt, whose clock starts at its first poll.
    pub(crate) fn start(&mut self) -> Limits {
        if self.timer.is_none() {
            // Made again after `idle` here, outside the attempt: a panic of the runtime's
            // (no timer where the stream is now polled) is the pool's, not the task's.
            self.timer.set(Some(tokio::time::sleep(self.timeout)));
        }
        self.expired.store(false, Ordering::Relaxed);
        self.armed = false;
        Limits {
            expired: Some(Arc::clone(&self.expired)),
        }
    }

    /// Sets the timer for an attempt first polled at `started`.
    fn arm(&mut self, started: tokio::time::Instant) {
        // A timeout past what an instant can hold never fires: as `tokio::time::sleep`
        // does, it is taken as thirty years.
        let deadline = started
            .checked_add(self.timeout)
            .unwrap_or(started + FAR_FUTURE);
        let Some(timer) = self.timer.as_mut().as_pin_mut() else {
            unreachable!("a started attempt's deadline holds its timer");
        };
        timer.reset(deadline);
        self.armed = true;
        self.registered = true;
    }

    /// Whether the timer may still be registered with the runtime.
    pub(crate) fn is_registered(&self) -> bool {
        self.registered
    }

    /// Takes the timer out of the runtime: for a runner left without an attempt while its
    /// consumer waits. (A runner that starts another attempt at once resets it instead.)
    pub(crate) fn idle(&mut self) {
        if self.registered {
            self.timer.set(None);
            self.armed = false;
            self.registered = false;
        }
    }

    /// Called after a poll that left the attempt waiting, once `arm`ed: whether its time
    /// is up, in which case the attempt is told, and ends as timed out when polled again.
    /// Otherwise `cx` is woken at the deadline.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timer) = self.timer.as_mut().as_pin_mut() else {
            unreachable!("an armed deadline holds its timer");
        };
        if timer.poll(cx).is_pending() {
            return false;
        }
        self.expired.store(true, Ordering::Relaxed);
        true
    }
}

/// The limits of a runner's next attempt, on the runner's deadline if it has one.
#[inline]
pub(crate) fn limits(deadline: Option<&mut Deadline>) -> Limits {
    deadline.map_or_else(Limits::default, Deadline::start)
}

/// Polls `attempt` and, when it waits, its `deadline`: an attempt whose time is up is
/// polled once more, to end as timed out. The clock starts at the attempt's first poll,
/// as a `tokio::time::sleep` made in its body would. What both flavours' runners poll an
/// attempt with.
#[inline]
pub(crate) fn poll_attempt<A: Future>(
    mut attempt: Pin<&mut A>,
    deadline: Option<&mut Deadline>,
    cx: &mut Context<'_>,
) -> Poll<A::Output> {
    let Some(deadline) = deadline else {
        return attempt.poll(cx);
    };
    let first_poll = (!deadline.armed).then(tokio::time::Instant::now);
    match attempt.as_mut().poll(cx) {
        Poll::Pending => {
            if let Some(started) = first_poll {
                deadline.arm(started);
            }
            match deadline.poll_expired(cx) {
                true => attempt.poll(cx),
                false => Poll::Pending,
            }
        }
        ready => ready,
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("timeout", &self.timeout)
            .finish()
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
pub(crate) fn attempt_future<Fut: IntoFuture>(
    future: Fut,
    limits: Limits,
) -> impl Future<Output = Handback<Fut, Fut::Output>> {
    Plain::new(future, limits, IntoFuture::into_future)
}

pin_project! {
    /// The one attempt of a task of type `F` that cannot be started again, started by `S`
    /// into a future `Fut` within its limits; it hands no task back. Written out rather
    /// than an `async fn`, whose state would hold the task twice (as its argument, and
    /// within `Timed` once started) and be copied into its slot with it. Like an `async
    /// fn`, it starts its task at its first poll, and drops what is left of it before it
    /// returns, both within the poll (where a panic is caught).
    #[must_use = "futures do nothing unless polled"]
    pub struct Plain<F, Fut, S> {
        #[pin]
        state: State<F, Fut, S>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateOwn]
    enum State<F, Fut, S> {
        // Not polled yet.
        Waiting { task: F, start: S, limits: Limits },
        // Started.
        Running { #[pin] timed: Timed<Fut> },
        // Ended, or panicked as it started.
        Done,
    }
}

impl<F, Fut, S> Plain<F, Fut, S> {
    pub(crate) fn new(task: F, limits: Limits, start: S) -> Self {
        Plain {
            state: State::Waiting {
                task,
                start,
                limits,
            },
        }
    }
}

impl<F, Fut, S> Future for Plain<F, Fut, S>
where
    Fut: Future,
    S: FnOnce(F) -> Fut,
{
    type Output = Handback<F, Fut::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        if let StateProj::Waiting { .. } = state.as_mut().project() {
            // Taken out first: a task that panics as it starts is not started again.
            let StateOwn::Waiting {
                task,
                start,
                limits,
            } = state.as_mut().project_replace(State::Done)
            else {
                unreachable!("the state was just seen waiting")
            };
            state.set(State::Running {
                timed: limits.apply(start(task)),
            });
        }
        let StateProj::Running { timed } = state.as_mut().project() else {
            panic!("a `Plain` attempt polled after it ended");
        };
        let output = std::task::ready!(poll_out_of_line(timed, cx));
        state.set(State::Done);
        Poll::Ready((None, output))
    }
}
