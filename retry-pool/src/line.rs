//! A scheduler's line: tasks waiting by priority, shared by the handles that feed it and
//! the pool that takes from it as its task source.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use tokio::sync::Notify;

use crate::idle::Unfinished;
use crate::job::Job;
use crate::lock::lock;
use crate::source::{Cancel, Source};
use crate::stats::Counters;

/// How urgent a task is: smaller runs first; equal priorities run in submission order.
pub type Priority = i32;

/// The line and who waits on it, shared by the handles and the pool.
pub(crate) struct Shared<F> {
    line: Mutex<Line<F>>,
    /// The completion stream (or its driver), to wake when there is news for it.
    consumer: AtomicWaker,
    /// Submitters waiting for room in a bounded line.
    room: Notify,
    /// Tasks whose outcome has not reached the consumer: the idle point.
    unfinished: Arc<Unfinished>,
    /// The scheduler's counters: the line keeps the count of its tasks there.
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

/// Why a task was not put in line.
pub(crate) enum Refused {
    Full,
    Closed,
}

impl<F> Line<F> {
    fn insert(&mut self, id: usize, task: F, attempts: u32, priority: Priority) {
        let key = (priority, self.next_seq);
        self.next_seq += 1;
        self.keys.insert(id, key);
        self.waiting.insert(key, Waiting { id, task, attempts });
    }

    /// Takes task `id` out of `waiting`, if it waits there.
    fn remove(&mut self, id: usize) -> Option<Waiting<F>> {
        let key = self.keys.remove(&id)?;
        self.waiting.remove(&key)
    }

    /// The position of a pending cancel of the started task `index`.
    fn pending_cancel(&self, index: usize) -> Option<usize> {
        self.cancels
            .iter()
            .position(|cancel| *cancel == Cancel::Started { index })
    }

    /// Takes back a pending cancel of the started task `index`; `true` if there was one.
    fn take_cancel(&mut self, index: usize) -> bool {
        let pending = self.pending_cancel(index);
        pending.map(|at| self.cancels.remove(at)).is_some()
    }
}

/// A new line, with one handle: its shared half for the handles, and its task source.
pub(crate) fn new<F>(
    max_waiting: Option<usize>,
    counters: Arc<Counters>,
    unfinished: Arc<Unfinished>,
) -> (Arc<Shared<F>>, LineSource<F>) {
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
        unfinished,
        counters,
        max_waiting,
    });
    let source = LineSource {
        shared: Arc::clone(&shared),
        ended: false,
    };
    (shared, source)
}

impl<F> Shared<F> {
    fn lock(&self) -> MutexGuard<'_, Line<F>> {
        lock(&self.line)
    }

    /// Publishes the line's length in the counters: called under the lock after a change.
    fn count(&self, line: &Line<F>) {
        self.counters.set_queued(line.waiting.len());
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Where submitters wait for room.
    pub(crate) fn room(&self) -> &Notify {
        &self.room
    }

    /// Puts `task` in line at `priority` and returns its id, unless the line is closed or
    /// full.
    pub(crate) fn push(&self, task: F, priority: Priority) -> Result<usize, (Refused, F)> {
        let mut line = self.lock();
        if line.closed {
            return Err((Refused::Closed, task));
        }
        if self
            .max_waiting
            .is_some_and(|max| line.waiting.len() >= max)
        {
            return Err((Refused::Full, task));
        }
        let id = line.next_id;
        line.next_id += 1;
        self.unfinished.added();
        line.insert(id, task, 0, priority);
        self.count(&line);
        drop(line);
        self.consumer.wake();
        Ok(id)
    }

    /// Moves a waiting task to `priority`, behind the tasks already there; a started task
    /// keeps its place, and any FIFO retry of it goes in at `priority`. Returns whether it
    /// was waiting.
    pub(crate) fn set_priority(&self, id: usize, priority: Priority) -> bool {
        let mut line = self.lock();
        if let Some(started) = line.started.get_mut(&id) {
            *started = priority;
            return false;
        }
        let Some(waiting) = line.remove(id) else {
            return false;
        };
        line.insert(waiting.id, waiting.task, waiting.attempts, priority);
        true
    }

    /// Asks for task `id` to be cancelled; returns whether it had not finished yet.
    pub(crate) fn cancel(&self, id: usize) -> bool {
        let mut line = self.lock();
        let cancelled = match line.remove(id) {
            Some(waiting) => {
                line.cancels.push(Cancel::Waiting {
                    index: id,
                    attempts: waiting.attempts,
                });
                self.count(&line);
                drop(line);
                // Dropped outside the lock: a task's drop may use a handle.
                drop(waiting);
                self.room.notify_one();
                true
            }
            None if line.started.contains_key(&id) => {
                line.cancels.push(Cancel::Started { index: id });
                true
            }
            None => false,
        };
        if cancelled {
            self.consumer.wake();
        }
        cancelled
    }

    /// Takes no more tasks; the pool ends once those in line have their outcomes.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.room.notify_waiters();
        self.consumer.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits until every task submitted so far has its outcome delivered.
    pub(crate) async fn idle(&self) {
        self.unfinished.wait().await;
    }

    /// One more handle.
    pub(crate) fn add_handle(&self) {
        self.lock().handles += 1;
    }

    /// One handle fewer: the last one closes the line.
    pub(crate) fn drop_handle(&self) {
        let mut line = self.lock();
        line.handles -= 1;
        if line.handles == 0 && !line.closed {
            drop(line);
            self.close();
        }
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
        let shared = &*self.shared;
        shared.consumer.register(cx.waker());
        let mut line = shared.lock();
        if let Some(((priority, _), waiting)) = line.waiting.pop_first() {
            line.keys.remove(&waiting.id);
            line.started.insert(waiting.id, priority);
            shared.count(&line);
            drop(line);
            shared.room.notify_one();
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
        let shared = &*self.shared;
        let mut line = shared.lock();
        let priority = line.started.remove(&job.index).unwrap_or_default();
        let index = job.index;
        match line.pending_cancel(index) {
            // Cancelled while it ran: it ends now, as a waiting task cancelled.
            Some(at) => {
                line.cancels[at] = Cancel::Waiting {
                    index,
                    attempts: job.attempts,
                };
                drop(line);
                drop(job);
            }
            None => {
                line.insert(index, job.task, job.attempts, priority);
                shared.count(&line);
            }
        }
        None
    }

    fn poll_cancellations(&mut self, cx: &mut Context<'_>, into: &mut Vec<Cancel>) {
        self.shared.consumer.register(cx.waker());
        into.append(&mut self.shared.lock().cancels);
    }

    fn take_cancel(&mut self, index: usize) -> bool {
        self.shared.lock().take_cancel(index)
    }

    fn settled(&mut self, index: usize) -> bool {
        let mut line = self.shared.lock();
        line.started.remove(&index);
        line.take_cancel(index)
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
            let waiting = std::mem::take(&mut line.waiting);
            self.shared.count(&line);
            waiting
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
