//! The long-running scheduler: a line of tasks ordered by priority, fed through cloneable
//! handles while the pool runs, and drained by the same machinery as a batch.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use futures_core::{FusedStream, Stream};
use tokio::sync::Notify;

use crate::backlog::Job;
use crate::completions::Completions;
use crate::source::{Cancel, Source};
use crate::spawned::Spawned;
use crate::stats::{Counters, Stats};
use crate::task::{Outcome, TaskResult};

/// How urgent a task is: smaller runs first; equal priorities run in submission order.
pub type Priority = i32;

/// A task submitted to a scheduler: its [`Failure::index`](crate::Failure::index) too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(usize);

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
/// use retry_pool::{Pool, boxed};
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
/// assert_eq!(done.get_ref().stats().cancelled, 1);
/// # }
/// ```
pub struct SchedulerHandle<F> {
    shared: Arc<Shared<F>>,
}

struct Shared<F> {
    line: Mutex<Line<F>>,
    /// The completion stream (or its driver), to wake when there is news for it.
    consumer: AtomicWaker,
    /// Submitters waiting for room in a bounded line.
    room: Notify,
    counters: Arc<Counters>,
    max_waiting: Option<usize>,
}

struct Line<F> {
    /// Waiting tasks by (priority, submission order).
    waiting: BTreeMap<(Priority, u64), Waiting<F>>,
    /// Where each waiting task stands in `waiting`.
    keys: HashMap<usize, (Priority, u64)>,
    /// Tasks that left the line and have no outcome yet, with their priority: running, or
    /// failed and waiting to run again.
    started: HashMap<usize, Priority>,
    cancels: Vec<Cancel>,
    next_id: usize,
    next_seq: u64,
    closed: bool,
    handles: usize,
}

struct Waiting<F> {
    id: usize,
    task: F,
    attempts: u32,
}

impl<F> Shared<F> {
    fn lock(&self) -> MutexGuard<'_, Line<F>> {
        // Nothing user-supplied runs under this lock, but stay usable whatever panicked.
        self.line.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<F> Line<F> {
    fn insert(&mut self, id: usize, task: F, attempts: u32, priority: Priority) {
        let key = (priority, self.next_seq);
        self.next_seq += 1;
        self.keys.insert(id, key);
        self.waiting.insert(key, Waiting { id, task, attempts });
    }
}

impl<F> SchedulerHandle<F> {
    pub(crate) fn new(max_waiting: Option<usize>) -> (Self, LineSource<F>) {
        let shared = Arc::new(Shared {
            line: Mutex::new(Line {
                waiting: BTreeMap::new(),
                keys: HashMap::new(),
                started: HashMap::new(),
                cancels: Vec::new(),
                next_id: 0,
                next_seq: 0,
                closed: false,
                handles: 1,
            }),
            consumer: AtomicWaker::new(),
            room: Notify::new(),
            counters: Arc::default(),
            max_waiting,
        });
        let source = LineSource {
            shared: Arc::clone(&shared),
            ended: false,
        };
        (SchedulerHandle { shared }, source)
    }

    /// Submits `task` at `priority` if there is room, without waiting.
    pub fn try_submit(&self, task: F, priority: Priority) -> Result<TaskId, SubmitError<F>> {
        let mut line = self.shared.lock();
        if line.closed {
            return Err(SubmitError::Closed(task));
        }
        if self
            .shared
            .max_waiting
            .is_some_and(|max| line.waiting.len() >= max)
        {
            return Err(SubmitError::Full(task));
        }
        let id = line.next_id;
        line.next_id += 1;
        line.insert(id, task, 0, priority);
        drop(line);
        self.shared.consumer.wake();
        Ok(TaskId(id))
    }

    /// Submits `task` at `priority`, waiting for room when the line is bounded
    /// ([`Pool::max_waiting`](crate::Pool::max_waiting)) and full. Fails only when the
    /// scheduler is closed, handing the task back.
    pub async fn submit(&self, task: F, priority: Priority) -> Result<TaskId, SubmitError<F>> {
        let mut task = task;
        loop {
            // Registered before the check, so that room made in between is not missed.
            let room = self.shared.room.notified();
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
        let mut line = self.shared.lock();
        if let Some(started) = line.started.get_mut(&id.0) {
            *started = priority;
            return false;
        }
        let Some(key) = line.keys.remove(&id.0) else {
            return false;
        };
        let waiting = line.waiting.remove(&key).expect("keys and waiting agree");
        line.insert(waiting.id, waiting.task, waiting.attempts, priority);
        true
    }

    /// Cancels a task: a waiting one leaves the line, a running one has its attempt
    /// dropped at once. Either way it ends with a [`Failure`](crate::Failure) for which
    /// [`is_cancelled`](crate::Failure::is_cancelled) holds. Returns whether the task
    /// had not finished yet: when `true`, it ends cancelled, even if its running attempt
    /// finishes before the cancel reaches it.
    pub fn cancel(&self, id: TaskId) -> bool {
        let mut line = self.shared.lock();
        let cancelled = match line.keys.remove(&id.0) {
            Some(key) => {
                let waiting = line.waiting.remove(&key).expect("keys and waiting agree");
                line.cancels.push(Cancel::Waiting {
                    index: id.0,
                    attempts: waiting.attempts,
                });
                drop(line);
                drop(waiting);
                self.shared.room.notify_one();
                true
            }
            None if line.started.contains_key(&id.0) => {
                line.cancels.push(Cancel::Started { index: id.0 });
                true
            }
            None => false,
        };
        if cancelled {
            self.shared.consumer.wake();
        }
        cancelled
    }

    /// Closes the scheduler: submissions fail from now on, and the completion stream ends
    /// once every task submitted so far has its outcome.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.room.notify_waiters();
        self.shared.consumer.wake();
    }

    /// Whether the scheduler is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// What the scheduler is doing, and has done: see [`Stats`].
    pub fn stats(&self) -> Stats {
        let waiting = self.shared.lock().waiting.len();
        self.shared.counters.snapshot(waiting)
    }

    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.shared.counters)
    }
}

impl<F> Clone for SchedulerHandle<F> {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        SchedulerHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<F> Drop for SchedulerHandle<F> {
    fn drop(&mut self) {
        let mut line = self.shared.lock();
        line.handles -= 1;
        if line.handles == 0 && !line.closed {
            drop(line);
            self.close();
        }
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

/// The scheduler's line as the pool's task source.
pub struct LineSource<F> {
    shared: Arc<Shared<F>>,
    ended: bool,
}

impl<F> Source for LineSource<F> {
    type Task = F;

    const CANCELS: bool = true;

    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<Option<F>> {
        let mut index = 0;
        self.poll_job(cx, &mut index)
            .map(|job| job.map(|job| job.task))
    }

    fn poll_job(&mut self, cx: &mut Context<'_>, _: &mut usize) -> Poll<Option<Job<F>>> {
        self.shared.consumer.register(cx.waker());
        let mut line = self.shared.lock();
        if let Some(((priority, _), waiting)) = line.waiting.pop_first() {
            line.keys.remove(&waiting.id);
            line.started.insert(waiting.id, priority);
            drop(line);
            self.shared.room.notify_one();
            return Poll::Ready(Some(Job {
                task: waiting.task,
                index: waiting.id,
                attempts: waiting.attempts,
            }));
        }
        if line.closed {
            self.ended = true;
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// A FIFO retry goes back in line behind the tasks of its priority.
    fn requeue(&mut self, job: Job<F>) -> Option<Job<F>> {
        if self.ended {
            return Some(job);
        }
        let mut line = self.shared.lock();
        let priority = line.started.remove(&job.index).unwrap_or_default();
        let index = job.index;
        let pending = line
            .cancels
            .iter()
            .position(|cancel| *cancel == Cancel::Started { index });
        match pending {
            // Cancelled while it ran: it ends now, as a waiting task cancelled.
            Some(at) => {
                line.cancels[at] = Cancel::Waiting {
                    index,
                    attempts: job.attempts,
                };
                drop(line);
                drop(job);
            }
            None => line.insert(index, job.task, job.attempts, priority),
        }
        None
    }

    fn poll_cancellations(&mut self, cx: &mut Context<'_>, into: &mut Vec<Cancel>) {
        self.shared.consumer.register(cx.waker());
        into.append(&mut self.shared.lock().cancels);
    }

    fn take_cancel(&mut self, index: usize) -> bool {
        let mut line = self.shared.lock();
        let pending = line
            .cancels
            .iter()
            .position(|cancel| *cancel == Cancel::Started { index });
        pending.map(|at| line.cancels.remove(at)).is_some()
    }

    fn settled(&mut self, index: usize) {
        self.shared.lock().started.remove(&index);
    }
}

impl<F> Drop for LineSource<F> {
    /// The stream is gone, and nothing will run what waits: the line closes (submissions
    /// fail, a `submit` waiting for room returns) and lets go of its tasks at once, though
    /// handles live on.
    fn drop(&mut self) {
        let waiting = {
            let mut line = self.shared.lock();
            line.closed = true;
            line.keys.clear();
            line.started.clear();
            line.cancels.clear();
            std::mem::take(&mut line.waiting)
        };
        self.shared.room.notify_waiters();
        // Dropped outside the lock: a task's drop may use a handle.
        drop(waiting);
    }
}

impl<F> fmt::Debug for LineSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSource")
            .field("ended", &self.ended)
            .finish()
    }
}

/// A scheduler's completion stream: each task's id with its outcome, in completion order.
/// It ends once the scheduler is closed (or every handle dropped) and every task
/// submitted has its outcome.
#[must_use = "streams do nothing unless polled"]
pub struct Scheduled<C> {
    inner: C,
}

impl<C> Scheduled<C> {
    pub(crate) fn new(inner: C) -> Self {
        Scheduled { inner }
    }

    /// The stream that runs the tasks: [`Completions`] in place, [`Spawned`] spawned.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }
}

/// Streams whose outcomes carry their task's index.
pub trait Indexed {
    /// What one attempt returns.
    type Result: TaskResult;

    /// The next outcome with its task's index.
    fn poll_indexed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<Self::Result>)>>;
}

impl<S, F, A, R> Indexed for Completions<S, F, A, R>
where
    S: Source<Task = F>,
    A: Future<Output = crate::task::Handback<F, R>>,
    R: TaskResult,
{
    type Result = R;

    fn poll_indexed(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Outcome<R>)>> {
        Completions::poll_indexed(self, cx)
    }
}

impl<R: TaskResult> Indexed for Spawned<R> {
    type Result = R;

    fn poll_indexed(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Outcome<R>)>> {
        Spawned::poll_indexed(self, cx)
    }
}

impl<C: Indexed + Unpin> Stream for Scheduled<C> {
    type Item = (TaskId, Outcome<C::Result>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .inner
            .poll_indexed(cx)
            .map(|next| next.map(|(index, outcome)| (TaskId(index), outcome)))
    }
}

impl<C: Indexed + FusedStream + Unpin> FusedStream for Scheduled<C> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<C: fmt::Debug> fmt::Debug for Scheduled<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scheduled").field(&self.inner).finish()
    }
}
