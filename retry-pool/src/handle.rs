//! A scheduler's handle: what producers hold to submit tasks, reprioritise and cancel
//! them, and close the scheduler.

use std::fmt;
use std::sync::Arc;

use crate::idle::Unfinished;
use crate::line::{self, LineSource, Priority, Refused, Shared};
use crate::stats::{Counters, Stats};

/// A task submitted to a scheduler: its [`Failure::index`](crate::Failure::index) too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) usize);

impl TaskId {
    /// The id as a number: submissions are numbered from 0, in the order they were made.
    pub fn get(self) -> usize {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a submission was refused. Either way the task is handed back.
#[derive(PartialEq, Eq)]
pub enum SubmitError<F> {
    /// The line is full ([`Pool::max_waiting`](crate::Pool::max_waiting)); try again, or
    /// use [`SchedulerHandle::submit`], which waits for room.
    Full(F),
    /// The scheduler is closed: it takes no more tasks.
    Closed(F),
}

impl<F> SubmitError<F> {
    /// The task that was not submitted.
    pub fn into_task(self) -> F {
        match self {
            SubmitError::Full(task) | SubmitError::Closed(task) => task,
        }
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("Full(..)"),
            SubmitError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("the scheduler's line is full"),
            SubmitError::Closed(_) => f.write_str("the scheduler is closed"),
        }
    }
}

impl<F> std::error::Error for SubmitError<F> {}

/// Submits tasks to a running scheduler, reprioritises and cancels them, and closes it.
/// Cheap to clone; the scheduler closes itself when the last handle is dropped.
///
/// Made with its completion stream by [`Pool::scheduler`](crate::Pool::scheduler) or
/// [`Pool::spawn_scheduler`](crate::Pool::spawn_scheduler).
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{Pool, PoolStream, boxed};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (handle, mut done) = Pool::new(1).scheduler();
/// let report = handle.try_submit(boxed(|| async { Ok::<_, String>("report") }), 5).unwrap();
/// let backup = handle.try_submit(boxed(|| async { Ok("backup") }), 5).unwrap();
/// let page = handle.try_submit(boxed(|| async { Ok("page") }), 9).unwrap();
///
/// assert!(handle.set_priority(page, 0)); // urgent after all: it runs first
/// assert!(handle.cancel(backup)); // not needed any more
/// assert_eq!(handle.stats().waiting, 2);
/// handle.close(); // no more tasks: the stream ends once these have their outcomes
///
/// // A cancelled task's outcome comes at once; then the tasks run by priority.
/// let (id, outcome) = done.next().await.unwrap();
/// assert_eq!(id, backup);
/// assert!(outcome.unwrap_err().is_cancelled());
/// assert_eq!(done.next().await.unwrap(), (page, Ok("page")));
/// assert_eq!(done.next().await.unwrap(), (report, Ok("report")));
/// assert!(done.next().await.is_none());
/// assert_eq!(done.stats().cancelled, 1); // see `PoolStream`
/// # }
/// ```
pub struct SchedulerHandle<F> {
    shared: Arc<Shared<F>>,
}

impl<F> SchedulerHandle<F> {
    /// A new scheduler's first handle, its line as a task source, and its idle point,
    /// which the completion stream tells of every outcome it yields.
    pub(crate) fn new(
        max_waiting: Option<usize>,
        counters: Arc<Counters>,
    ) -> (Self, LineSource<F>, Arc<Unfinished>) {
        let unfinished = Arc::new(Unfinished::default());
        let (shared, source) = line::new(max_waiting, counters, Arc::clone(&unfinished));
        (SchedulerHandle { shared }, source, unfinished)
    }

    /// Submits `task` at `priority` if there is room, without waiting.
    pub fn try_submit(&self, task: F, priority: Priority) -> Result<TaskId, SubmitError<F>> {
        match self.shared.push(task, priority) {
            Ok(id) => Ok(TaskId(id)),
            Err((Refused::Full, task)) => Err(SubmitError::Full(task)),
            Err((Refused::Closed, task)) => Err(SubmitError::Closed(task)),
        }
    }

    /// Submits `task` at `priority`, waiting for room when the line is bounded
    /// ([`Pool::max_waiting`](crate::Pool::max_waiting)) and full. Fails only when the
    /// scheduler is closed, handing the task back.
    pub async fn submit(&self, task: F, priority: Priority) -> Result<TaskId, SubmitError<F>> {
        let mut task = task;
        loop {
            // Registered before the check, so that room made in between is not missed.
            let room = self.shared.room().notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            match self.try_submit(task, priority) {
                Err(SubmitError::Full(back)) => {
                    task = back;
                    room.await;
                }
                done => return done,
            }
        }
    }

    /// Moves a waiting task to `priority`, behind the tasks already there. Returns whether
    /// it was waiting. A task that already started keeps its place, but runs any FIFO
    /// retry at its new priority.
    pub fn set_priority(&self, id: TaskId, priority: Priority) -> bool {
        self.shared.set_priority(id.0, priority)
    }

    /// Cancels a task: a waiting one leaves the line, a running one has its attempt
    /// dropped (in place at once; spawned, aborted, the task reported once the attempt is
    /// dropped). Either way it ends with a [`Failure`](crate::Failure) for which
    /// [`is_cancelled`](crate::Failure::is_cancelled) holds. Returns whether the task
    /// had not finished yet: when `true`, it ends cancelled, even if its running attempt
    /// finishes before the cancel reaches it.
    pub fn cancel(&self, id: TaskId) -> bool {
        self.shared.cancel(id.0)
    }

    /// Closes the scheduler: submissions fail from now on, and the completion stream ends
    /// once every task submitted so far has its outcome.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Resolves once every task submitted so far has its outcome, taken from the
    /// completion stream: nothing is waiting, running, due to run again (in a backoff or a
    /// retry), or waiting for the consumer. The scheduler stays open: tasks submitted after
    /// may make it busy again, and `idle` can be awaited again.
    ///
    /// The outcomes come from the completion stream, which must be polled meanwhile (in
    /// place, [`Pool::scheduler`](crate::Pool::scheduler), nothing runs otherwise): await
    /// `idle` beside the loop that takes the outcomes (in another task, or with
    /// `tokio::select!`), not before it. Since the last outcome has been taken when it
    /// resolves, a crawl that submits the links it finds knows there are none left. When
    /// the stream is dropped, no outcome will come, and `idle` resolves.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, boxed};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (handle, mut done) = Pool::new(2).scheduler();
    /// for n in 0..5 {
    ///     handle.try_submit(boxed(move || async move { Ok::<_, ()>(n) }), 0).unwrap();
    /// }
    /// let consume = async {
    ///     while let Some((_id, outcome)) = done.next().await {
    ///         outcome.unwrap();
    ///     }
    /// };
    /// // The crawl is over when the line is idle, though the scheduler is still open.
    /// tokio::select! {
    ///     () = handle.idle() => {}
    ///     () = consume => unreachable!("the scheduler is open: the stream goes on"),
    /// }
    /// assert!(!handle.is_closed());
    /// # }
    /// ```
    pub async fn idle(&self) {
        self.shared.idle().await;
    }

    /// Whether the scheduler is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// What the scheduler is doing, and has done: see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.shared.counters().snapshot()
    }
}

impl<F> Clone for SchedulerHandle<F> {
    fn clone(&self) -> Self {
        self.shared.add_handle();
        SchedulerHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<F> Drop for SchedulerHandle<F> {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

impl<F> fmt::Debug for SchedulerHandle<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedulerHandle")
            .field("stats", &self.stats())
            .field("closed", &self.is_closed())
            .finish()
    }
}
