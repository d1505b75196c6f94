//! The spawned flavour: attempts run on the runtime's workers, in lanes.
//!
//! A lane is a tokio task that runs attempts one after another, at most `concurrency`
//! lanes at once. Everything the pool knows sits in one core under a lock: the engine, the
//! lanes, the outcomes waiting for the consumer. A lane whose attempt ends settles it in
//! the core and takes the next task there, then runs it itself: no task spawned, nothing
//! allocated and no channel between one attempt and the next, and the pool stays full
//! while the consumer is busy. A lane with nothing to start ends; a driver task does what
//! comes with time (a backoff or the rate limit running out, a stream source's next task,
//! a cancellation) and spawns lanes again. The consumer only takes outcomes.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;
use tokio::runtime::RuntimeFlavor;
use tokio::task::{AbortHandle, JoinHandle};

use crate::engine::{Engine, Stop};
use crate::job::{Ended, Job, Meta};
use crate::lock::lock;
use crate::pool_stream::PoolStream;
use crate::source::{Cancel, Source};
use crate::stats::{Counters, Stats};
use crate::task::{Attempt, Deadline, Limits, Outcome, Panic, TaskResult, limits, poll_attempt};

/// What the task of a lane dropped unfinished, though not cancelled, reports as its panic.
const LANE_LOST: &str = "the attempt was dropped unfinished (a panic outside it)";

/// The most outcomes buffered for a slow consumer, whatever the concurrency.
const MAX_BUFFER: usize = 1 << 16;

/// The completion stream of a spawned pool: like [`Completions`](crate::Completions), but
/// attempts run on the runtime's worker threads, so CPU-heavy tasks use every one.
///
/// Made by [`Pool::spawn`](crate::Pool::spawn),
/// [`Pool::spawn_futures`](crate::Pool::spawn_futures) and `#[pooled(spawn = true)]`. On
/// its first poll it spawns up to `concurrency` tokio tasks, lanes, each running attempts
/// one after another: when an attempt ends, its lane starts the next task at once, even
/// while the consumer is busy. Finished outcomes wait for the consumer: while
/// twice `concurrency` of them (at most 65,536) wait, no attempt starts (a poll takes every
/// outcome waiting at once, then yields them one by one). It must be polled within a tokio
/// runtime.
///
/// Dropping the stream aborts every attempt in flight; none starts after.
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{Pool, PoolStream, Retry};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
/// let tasks = (0..8u64).map(|n| move || async move {
///     tokio::time::sleep(Duration::from_millis(5)).await;
///     if n % 4 == 0 { Err("unlucky") } else { Ok(n) }
/// });
/// let mut done = Pool::new(4).retry(Retry::Lifo).attempts(2).spawn(tasks);
/// let first = done.next().await.unwrap();
/// // While the consumer is busy, the lanes keep the pool full; outcomes wait for it.
/// tokio::time::sleep(Duration::from_millis(50)).await;
/// let mut outcomes = vec![first];
/// outcomes.extend(done.by_ref().collect::<Vec<_>>().await);
/// assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 6);
/// let stats = done.stats(); // see `PoolStream`
/// assert_eq!((stats.succeeded, stats.failed, stats.retried), (6, 2, 2));
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Spawned<R: TaskResult> {
    pool: Arc<dyn Run<R>>,
    /// Outcomes taken from the pool in one go, not yet yielded.
    taken: VecDeque<(usize, Outcome<R>)>,
    counters: Arc<Counters>,
    state: State,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Not polled yet: nothing has started.
    Idle,
    Running,
    Done,
}

impl<R: TaskResult> Spawned<R>
where
    R: Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
{
    pub(crate) fn new<S, A>(
        engine: Engine<S, R>,
        attempt: fn(A::Task, Limits) -> A,
        timeout: Option<Duration>,
        concurrency: usize,
    ) -> Self
    where
        S: Source<Task = A::Task> + Send + 'static,
        A: Attempt<Result = R> + Send + 'static,
        A::Task: Send + 'static,
    {
        let counters = Arc::clone(engine.counters());
        let driver = Arc::new(DriverWake::default());
        let shared = Shared {
            core: Mutex::new(Some(Core {
                engine,
                running: Running::default(),
                finished: VecDeque::new(),
                consumer: None,
                idle: false,
                stalled: false,
                panic: None,
                abandoned: false,
                cancels: Vec::new(),
            })),
            attempt,
            timeout,
            concurrency,
            // Twice the slots: measured on 2 workers, a buffer of `concurrency` outcomes
            // filled before the consumer's thread was back on a CPU, and the workers went
            // idle in between (half the throughput at concurrency 64).
            buffer: concurrency.saturating_mul(2).min(MAX_BUFFER),
            closed: AtomicBool::new(false),
            aborted: Mutex::new(Vec::new()),
            driver_waker: Waker::from(Arc::clone(&driver)),
            driver,
        };
        Spawned {
            pool: Arc::new(shared),
            taken: VecDeque::new(),
            counters,
            state: State::Idle,
        }
    }
}

// Nothing is pinned in place: the outcomes held are moved out as they are.
impl<R: TaskResult> Unpin for Spawned<R> {}

impl<R: TaskResult> Spawned<R> {
    /// The next outcome with its task's index.
    pub(crate) fn poll_indexed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<R>)>> {
        // Spends tokio's budget like any resource, so that a consumer fed faster than it
        // reads cannot keep its worker from other tasks (rule 12).
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if let Some(outcome) = self.taken.pop_front() {
            coop.made_progress();
            return Poll::Ready(Some(outcome));
        }
        match self.state {
            State::Done => return Poll::Ready(None),
            State::Idle => {
                Arc::clone(&self.pool).start();
                self.state = State::Running;
            }
            State::Running => {}
        }
        match std::task::ready!(self.pool.poll_outcomes(cx, &mut self.taken)) {
            Ok(true) => {
                coop.made_progress();
                Poll::Ready(self.taken.pop_front())
            }
            Ok(false) => {
                self.state = State::Done;
                Poll::Ready(None)
            }
            // A source or a hook panicked (a bug in it, or in retry-pool itself): say so
            // rather than end quietly.
            Err(panic) => {
                self.state = State::Done;
                resume_unwind(panic)
            }
        }
    }
}

impl<R: TaskResult> Stream for Spawned<R> {
    type Item = Outcome<R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_indexed(cx)
            .map(|next| next.map(|(_, outcome)| outcome))
    }
}

impl<R: TaskResult> PoolStream for Spawned<R> {
    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl<R: TaskResult> FusedStream for Spawned<R> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl<R: TaskResult> Drop for Spawned<R> {
    fn drop(&mut self) {
        self.pool.close();
    }
}

impl<R: TaskResult> fmt::Debug for Spawned<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// An attempt that runs on another thread than the consumer's, with all it hands back.
trait SendAttempt:
    Attempt<
        Task: Send + 'static,
        Result: TaskResult<Ok: Send + 'static, Err: Send + 'static> + Send + 'static,
    > + Send
    + 'static
{
}

impl<A> SendAttempt for A where
    A: Attempt<
            Task: Send + 'static,
            Result: TaskResult<Ok: Send + 'static, Err: Send + 'static> + Send + 'static,
        > + Send
        + 'static
{
}

/// What the stream asks of its pool, whatever the pool's source and attempts.
trait Run<R: TaskResult>: Send + Sync {
    /// Spawns the driver, which starts the first attempts.
    fn start(self: Arc<Self>);
    /// Moves every outcome waiting into `into`, which is empty: `true` when there was
    /// one, `false` once every task has its outcome; `Err`: the source or a hook panicked,
    /// and the pool stopped.
    #[allow(clippy::type_complexity)]
    fn poll_outcomes(
        &self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<(usize, Outcome<R>)>,
    ) -> Poll<Result<bool, Panic>>;
    /// Aborts every attempt and starts none after.
    fn close(&self);
}

/// Whether the stream is polled by a thread that parks when it waits (`block_on`, as in
/// `#[tokio::main]`) while the attempts run on a multi-thread runtime's workers. A consumer
/// that is itself a task does not park: its worker runs other tasks meanwhile.
fn parks_its_own_thread() -> bool {
    tokio::task::try_id().is_none()
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// The pool behind a [`Spawned`] stream, shared by the stream, the driver and every
/// running attempt.
struct Shared<S: Source, A: Attempt> {
    /// `None` once the stream is dropped: the source (a scheduler's line) and what waits
    /// go with it, not with the last attempt to be dropped.
    core: Mutex<Option<Core<S, A::Result>>>,
    attempt: fn(A::Task, Limits) -> A,
    /// Each attempt's, from its first poll.
    timeout: Option<Duration>,
    concurrency: usize,
    /// No attempt starts while this many outcomes wait for the consumer.
    buffer: usize,
    /// Set when the stream is dropped or a panic stopped the pool: nothing starts after.
    closed: AtomicBool,
    /// Slots whose lane was dropped unfinished (aborted for a cancellation, or by a panic
    /// outside its attempt), for the driver to settle: what drops a lane cannot take the
    /// core's lock, which may be held by the very call that dropped it (a spawn while the
    /// runtime shuts down).
    aborted: Mutex<Vec<usize>>,
    driver: Arc<DriverWake>,
    /// Wakes the driver: what every poll of the engine registers, wherever it is polled.
    driver_waker: Waker,
}

struct Core<S: Source, R: TaskResult> {
    engine: Engine<S, R>,
    running: Running,
    /// Outcomes waiting for the consumer.
    finished: VecDeque<(usize, Outcome<R>)>,
    /// The consumer, when it waits for an outcome.
    consumer: Option<Waker>,
    /// The engine said nothing waits and its source has ended: only a settled attempt can
    /// give it work again.
    idle: bool,
    /// Starts stopped because the buffer was full: the consumer's next take restarts them.
    stalled: bool,
    /// What the source or a hook panicked with, for the consumer.
    panic: Option<Panic>,
    /// The driver was dropped before the pool's work was done (its runtime shut down):
    /// nothing more will happen, and the stream ends after what waits.
    abandoned: bool,
    /// Cancellations taken from the source, being carried out.
    cancels: Vec<Cancel>,
}

/// Wakes the driver task, whichever waker it registered last.
#[derive(Default)]
struct DriverWake(AtomicWaker);

impl Wake for DriverWake {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake();
    }
}

impl<S, A> Run<A::Result> for Shared<S, A>
where
    S: Source<Task = A::Task> + Send + 'static,
    A: SendAttempt,
{
    fn start(self: Arc<Self>) {
        // Outside a runtime this panics before a driver exists, whose drop would mark the
        // pool abandoned: a later poll within a runtime starts it afresh.
        let runtime = tokio::runtime::Handle::current();
        runtime.spawn(Driver {
            shared: self,
            finished: false,
        });
    }

    fn poll_outcomes(
        &self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<(usize, Outcome<A::Result>)>,
    ) -> Poll<Result<bool, Panic>> {
        let mut guard = lock(&self.core);
        let Some(mut core) = guard.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        if core.finished.is_empty() && core.running.len > 0 && parks_its_own_thread() {
            // About to park until the next outcome while the workers are busy: waking a
            // parked thread for each outcome costs more than quick attempts. Giving up
            // the CPU once first lets a worker finish an attempt on it (measured: 2.5
            // times fewer context switches, a third less CPU per task).
            drop(guard);
            std::thread::yield_now();
            guard = lock(&self.core);
            let Some(relocked) = guard.as_mut() else {
                return Poll::Ready(Ok(false));
            };
            core = relocked;
        }
        if !core.finished.is_empty() {
            // One lock for every outcome waiting: the workers that add them take it too.
            std::mem::swap(&mut core.finished, into);
            if std::mem::take(&mut core.stalled) {
                drop(guard);
                self.driver.0.wake();
            }
            return Poll::Ready(Ok(true));
        }
        if let Some(panic) = core.panic.take() {
            return Poll::Ready(Err(panic));
        }
        if core.is_done() || core.abandoned {
            return Poll::Ready(Ok(false));
        }
        match &mut core.consumer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            consumer => *consumer = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn close(&self) {
        let core = {
            let mut core = lock(&self.core);
            self.closed.store(true, Ordering::Release);
            core.take()
        };
        // Outside the lock, since what goes now is the user's (the source, tasks waiting,
        // outcomes) and may do anything. An abort only flags a lane: it is dropped later,
        // by its worker, and reports nothing once `closed` is set.
        if let Some(mut core) = core {
            for handle in core.running.take_handles() {
                handle.abort();
            }
        }
        self.driver.0.wake();
    }
}

impl<S, A> Shared<S, A>
where
    S: Source<Task = A::Task> + Send + 'static,
    A: SendAttempt,
{
    /// Settles the attempt that ended in lane `slot`: the next task for the lane to run,
    /// or `None` when the lane ends (nothing to start now, or the lane is being aborted).
    fn ended(
        self: &Arc<Self>,
        slot: usize,
        ended: Ended<A::Task, A::Result>,
    ) -> Option<(Meta, A::Task)> {
        let (next, done) = self.with_core(|core, aborts| {
            // Not running anything while it settles: a cancellation carried out now must
            // not find the lane by the task it ran.
            let (meta, cancelled) = core.running.pause(slot);
            core.idle = false;
            if let Some(outcome) = core.engine.settle(meta, ended, cancelled) {
                core.finished.push_back(outcome);
            }
            let mut cx = Context::from_waker(&self.driver_waker);
            if S::CANCELS {
                self.cancel(core, &mut cx, aborts);
            }
            // A lane whose attempt was cancelled is about to be aborted: it ends here
            // rather than have the abort land on its next attempt.
            let next = match cancelled {
                true => None,
                false => self.next_job(core, &mut cx),
            };
            let next = match next {
                Some(job) => {
                    let meta = job.next_attempt();
                    core.running.resume(slot, meta);
                    Some((meta, job.task))
                }
                None => {
                    core.running.release(slot);
                    None
                }
            };
            self.fill(core, &mut cx);
            (next, core.is_done())
        })?;
        if done {
            // The last attempt: the driver has nothing left to wait for.
            self.driver.0.wake();
        }
        next
    }

    /// What the driver does when woken: settles the attempts of lanes dropped unfinished,
    /// then starts what can start. True once the pool has nothing left to do.
    fn drive(self: &Arc<Self>) -> bool {
        let aborted = std::mem::take(&mut *lock(&self.aborted));
        self.with_core(|core, aborts| {
            for slot in aborted {
                let (meta, cancelled) = core.running.pause(slot);
                core.running.release(slot);
                core.idle = false;
                // Aborted for a cancellation, or else dropped by a panic outside the
                // attempt (in tracing, say): its task ends as if the attempt had panicked.
                let outcome = match cancelled {
                    true => Some(core.engine.aborted(meta)),
                    false => core.engine.settle(meta, Err(Box::new(LANE_LOST)), false),
                };
                core.finished.extend(outcome);
            }
            core.stalled = false;
            let mut cx = Context::from_waker(&self.driver_waker);
            if S::CANCELS {
                self.cancel(core, &mut cx, aborts);
            }
            self.fill(core, &mut cx);
            core.is_done()
        })
        .unwrap_or(true)
    }

    /// Runs `change` on the core, then wakes the consumer if it has something to take.
    /// A panic in it (from the source or a hook) stops the pool and goes to the consumer.
    /// `None` when the pool is stopped, or `change` panicked.
    fn with_core<T>(
        &self,
        change: impl FnOnce(&mut Core<S, A::Result>, &mut Vec<AbortHandle>) -> T,
    ) -> Option<T> {
        let mut aborts = Vec::new();
        let (changed, consumer) = {
            let mut core = lock(&self.core);
            let core = core
                .as_mut()
                .filter(|_| !self.closed.load(Ordering::Acquire))?;
            let changed = match catch_unwind(AssertUnwindSafe(|| change(core, &mut aborts))) {
                Ok(changed) => Some(changed),
                Err(panic) => {
                    self.closed.store(true, Ordering::Release);
                    core.panic = Some(panic);
                    let handles = core.running.take_handles();
                    aborts.extend(handles.iter().map(JoinHandle::abort_handle));
                    // For the driver to see the pool stopped, and end.
                    self.driver.0.wake();
                    None
                }
            };
            let news = core.panic.is_some() || !core.finished.is_empty() || core.is_done();
            (changed, news.then(|| core.consumer.take()).flatten())
        };
        // Outside the lock: a waker may do anything, and an abort only flags the lane.
        for abort in aborts {
            abort.abort();
        }
        if let Some(consumer) = consumer {
            consumer.wake();
        }
        changed
    }

    /// The next task to start, if a lane is free, few enough outcomes wait and one is
    /// ready; counted as running from here on.
    fn next_job(
        &self,
        core: &mut Core<S, A::Result>,
        cx: &mut Context<'_>,
    ) -> Option<Job<A::Task>> {
        while core.running.len < self.concurrency && !core.idle {
            if core.finished.len() >= self.buffer {
                core.stalled = true;
                return None;
            }
            match core.engine.poll_next(cx) {
                Poll::Ready(Some(job)) => return Some(job),
                Poll::Ready(None) => core.idle = true,
                Poll::Pending => return None,
            }
        }
        None
    }

    /// Spawns a lane for every task that can start now.
    ///
    /// Spawning under the lock keeps a lane and its handle in step. It cannot deadlock: a
    /// lane dropped at once (a runtime shutting down) reports to `aborted`, never to the
    /// core.
    fn fill(self: &Arc<Self>, core: &mut Core<S, A::Result>, cx: &mut Context<'_>) {
        while let Some(job) = self.next_job(core, cx) {
            let meta = job.next_attempt();
            let mut deadline = self.timeout.map(Deadline::new);
            let attempt = (self.attempt)(job.task, limits(deadline.as_mut()));
            let slot = core.running.take(meta);
            let lane = Lane {
                attempt: Some(traced(attempt, meta)),
                deadline,
                guard: Guard {
                    shared: Arc::clone(self),
                    slot,
                    ended: false,
                },
            };
            core.running.slots[slot].handle = Some(tokio::spawn(lane));
        }
    }

    /// Carries out the cancellations asked of the source: a running attempt is aborted
    /// with its lane, and its task reported when the attempt has been dropped.
    fn cancel(
        &self,
        core: &mut Core<S, A::Result>,
        cx: &mut Context<'_>,
        aborts: &mut Vec<AbortHandle>,
    ) {
        let Core {
            engine,
            running,
            finished,
            cancels,
            ..
        } = core;
        engine.poll_cancellations(cx, cancels);
        for cancel in cancels.drain(..) {
            let outcome = engine.cancel(cancel, |index| match running.find(index) {
                Some(slot) => {
                    slot.cancelled = true;
                    aborts.extend(slot.handle.as_ref().map(JoinHandle::abort_handle));
                    Stop::Stopping
                }
                None => Stop::NotRunning,
            });
            finished.extend(outcome);
        }
    }
}

impl<S: Source, R: TaskResult> Core<S, R> {
    /// Whether every task has its outcome, taken or not.
    fn is_done(&self) -> bool {
        self.running.len == 0 && self.engine.is_exhausted()
    }
}

/// The driver task: does what comes with time, whenever the engine's waker fires.
struct Driver<S: Source, A: Attempt> {
    shared: Arc<Shared<S, A>>,
    /// It returned `Ready`: the pool had nothing left to do, or was stopped.
    finished: bool,
}

impl<S: Source, A: Attempt> Drop for Driver<S, A> {
    /// Dropped unfinished, its runtime shutting down: nothing will start or settle any
    /// more, so the stream ends after the outcomes waiting rather than wait for ever.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let consumer = lock(&self.shared.core).as_mut().and_then(|core| {
            core.abandoned = true;
            core.consumer.take()
        });
        if let Some(consumer) = consumer {
            consumer.wake();
        }
    }
}

impl<S, A> Future for Driver<S, A>
where
    S: Source<Task = A::Task> + Send + 'static,
    A: SendAttempt,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before looking, so that a wake while it looks is not lost.
        self.shared.driver.0.register(cx.waker());
        match self.shared.drive() {
            true => {
                self.finished = true;
                Poll::Ready(())
            }
            false => Poll::Pending,
        }
    }
}

/// The lanes, each in a numbered slot.
#[derive(Default)]
struct Running {
    slots: Vec<Slot>,
    /// Numbers of the slots that hold no lane.
    free: Vec<usize>,
    /// Lanes running an attempt.
    len: usize,
}

struct Slot {
    /// The attempt the lane runs.
    meta: Meta,
    /// Whether it runs one: not while it settles the last.
    busy: bool,
    /// To abort the lane; `None` while the slot is free.
    handle: Option<JoinHandle<()>>,
    /// Aborted for a cancellation: if it ended first, it still ends its task as cancelled.
    cancelled: bool,
}

impl Running {
    /// A free slot for a lane about to be spawned to run `meta`.
    fn take(&mut self, meta: Meta) -> usize {
        let slot = Slot {
            meta,
            busy: false,
            handle: None,
            cancelled: false,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.resume(index, meta);
        index
    }

    /// The lane in `index` runs `meta` now.
    fn resume(&mut self, index: usize, meta: Meta) {
        let slot = &mut self.slots[index];
        slot.meta = meta;
        slot.busy = true;
        slot.cancelled = false;
        self.len += 1;
    }

    /// The lane in `index` ended its attempt: its meta, and whether it was cancelled.
    fn pause(&mut self, index: usize) -> (Meta, bool) {
        let slot = &mut self.slots[index];
        slot.busy = false;
        self.len -= 1;
        (slot.meta, slot.cancelled)
    }

    /// The lane in `index` has ended: frees its slot.
    fn release(&mut self, index: usize) {
        self.slots[index].handle = None;
        self.free.push(index);
    }

    /// The slot of task `index`'s running attempt. Linear: cancellations are rare.
    fn find(&mut self, index: usize) -> Option<&mut Slot> {
        self.slots
            .iter_mut()
            .find(|slot| slot.busy && slot.meta.index == index)
    }

    /// The handles of every lane, to abort them all.
    fn take_handles(&mut self) -> Vec<JoinHandle<()>> {
        self.slots
            .iter_mut()
            .filter_map(|slot| slot.handle.take())
            .collect()
    }
}

/// An attempt as a lane runs it: in its span, with the `tracing` feature.
#[cfg(feature = "tracing")]
type Traced<A> = tracing::instrument::Instrumented<A>;

#[cfg(not(feature = "tracing"))]
type Traced<A> = A;

#[cfg(feature = "tracing")]
fn traced<A>(attempt: A, meta: Meta) -> Traced<A> {
    tracing::Instrument::instrument(attempt, crate::trace::attempt_span(meta))
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
fn traced<A>(attempt: A, _: Meta) -> Traced<A> {
    attempt
}

/// Attempts a lane runs in one poll at most, when they end without waiting: then it
/// yields, so that it cannot keep its worker from other tasks.
const ATTEMPTS_PER_POLL: usize = 16;

pin_project! {
    /// A tokio task that runs attempts one after another: each ended attempt is settled
    /// and the next task started in its place, with no task spawned in between. It ends
    /// when nothing can start.
    struct Lane<S: Source, A: Attempt> {
        #[pin]
        attempt: Option<Traced<A>>,
        // The timer of its attempts, when the pool has a timeout.
        deadline: Option<Deadline>,
        // After the attempt, so dropped after it: a cancelled attempt has let go of what
        // it held by the time its task is reported.
        guard: Guard<S, A>,
    }
}

impl<S, A> Future for Lane<S, A>
where
    S: Source<Task = A::Task> + Send + 'static,
    A: SendAttempt,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let shared = &this.guard.shared;
        for _ in 0..ATTEMPTS_PER_POLL {
            // The stream was dropped (or the pool stopped) before this attempt started,
            // or between two: it never starts, and the abort that took the lane's handle
            // with the core is on its way.
            if shared.closed.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            let Some(attempt) = this.attempt.as_mut().as_pin_mut() else {
                return Poll::Ready(());
            };
            let deadline = this.deadline.as_mut();
            let ended = match catch_unwind(AssertUnwindSafe(|| poll_attempt(attempt, deadline, cx)))
            {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(handback)) => Ok(handback),
                Err(panic) => Err(panic),
            };
            // What is left of a finished attempt goes before its task is settled; the
            // drop of a panicked one may panic too.
            let _ = catch_unwind(AssertUnwindSafe(|| this.attempt.set(None)));
            match shared.ended(this.guard.slot, ended) {
                Some((meta, task)) => {
                    let attempt = (shared.attempt)(task, limits(this.deadline.as_mut()));
                    this.attempt.set(Some(traced(attempt, meta)));
                }
                None => {
                    this.guard.ended = true;
                    return Poll::Ready(());
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Tells the pool of a lane dropped before it ended: aborted for a cancellation, or by a
/// panic outside its attempt.
struct Guard<S: Source, A: Attempt> {
    shared: Arc<Shared<S, A>>,
    slot: usize,
    /// The lane ended by itself: the pool knows.
    ended: bool,
}

impl<S: Source, A: Attempt> Drop for Guard<S, A> {
    fn drop(&mut self) {
        if self.ended || self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        lock(&self.shared.aborted).push(self.slot);
        self.shared.driver.0.wake();
    }
}
