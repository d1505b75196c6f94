//! The in-place flavour: attempts polled inside the stream's own poll, in slots.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::{FusedStream, Stream};

use crate::engine::{Engine, Stop};
use crate::job::Job;
use crate::pool_stream::PoolStream;
use crate::slots::Slots;
use crate::source::{Cancel, Source};
use crate::stats::Stats;
use crate::task::{Attempt, Limits, Outcome};

/// The stream of a pool's outcomes, in completion order: the value of each task's first
/// successful attempt, or the [`Failure`](crate::Failure) of a task that gave up.
///
/// Made by [`Pool::run`](crate::Pool::run), [`Pool::run_futures`](crate::Pool::run_futures),
/// [`Pool::run_stream`](crate::Pool::run_stream) and `#[pooled]`
/// functions. Attempts run in place: they are polled when this stream is polled, on the
/// task that polls it. Dropping the stream drops every attempt in flight.
///
/// Each poll does a bounded amount of work and spends tokio's cooperative budget, so a
/// pool of always-ready tasks cannot starve the tasks beside it.
///
/// As nothing is spawned, tasks may borrow local data and need not be `Send`:
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::Pool;
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let words = vec!["in", "place"]; // borrowed by the tasks
/// let calls = Rc::new(Cell::new(0)); // not `Send`: fine in place
/// let tasks = words.iter().map(|word| {
///     let calls = Rc::clone(&calls);
///     async move || {
///         calls.set(calls.get() + 1);
///         Ok::<_, std::io::Error>(word.len())
///     }
/// });
/// let lengths: Vec<usize> = Pool::new(2).run(tasks).map(Result::unwrap).collect().await;
/// assert_eq!((lengths.iter().sum::<usize>(), calls.get()), (7, 2));
/// # }
/// ```
///
/// `S` is where the tasks come from, `A` the future of one attempt and `M` the function
/// that makes one. The last two have no names, so the pool's methods return this stream as
/// an `impl PoolStream<Item = ...>`: write the same where you must name it.
#[must_use = "streams do nothing unless polled"]
pub struct Completions<S: Source, A: Attempt, M = fn(<A as Attempt>::Task, Limits) -> A> {
    engine: Engine<S, A::Result>,
    slots: Slots<A>,
    // The function itself rather than a pointer to it: each attempt is then made where it
    // is stored, without an indirect call and the copies of the task around it.
    attempt: M,
    concurrency: usize,
    /// Outcomes settled but not yet yielded, with their task's index.
    outcomes: VecDeque<(usize, Outcome<A::Result>)>,
    /// Cancellations taken from the source, reused so that polls do not allocate.
    cancels: Vec<Cancel>,
    /// No attempt starts while more outcomes than this wait for the consumer (besides the
    /// one about to be returned), so that tasks that finish at once cannot pile up
    /// outcomes faster than they are taken.
    outcomes_cap: usize,
    /// Slot polls allowed in one turn, so that a poll does a bounded amount of work.
    polls_per_turn: usize,
    done: bool,
}

// Nothing is pinned in place: attempts live in their own pinned allocations and the task
// sources box what they must not move.
impl<S: Source, A: Attempt, M> Unpin for Completions<S, A, M> {}

impl<S, A, M> Completions<S, A, M>
where
    S: Source<Task = A::Task>,
    A: Attempt,
    M: Fn(A::Task, Limits) -> A + Copy,
{
    pub(crate) fn new(
        engine: Engine<S, A::Result>,
        attempt: M,
        timeout: Option<Duration>,
        concurrency: usize,
    ) -> Self {
        // Room to poll every slot and to start an attempt in each: a full turn.
        let polls_per_turn = concurrency.saturating_mul(2).clamp(64, 8192);
        Completions {
            engine,
            slots: Slots::new(timeout),
            attempt,
            concurrency,
            outcomes: VecDeque::new(),
            cancels: Vec::new(),
            outcomes_cap: concurrency.min(polls_per_turn),
            polls_per_turn,
            done: false,
        }
    }

    /// Starts attempts until every slot is busy, nothing is waiting, the consumer is
    /// behind or the turn is used up. A new attempt is polled at once, so that it is under
    /// way before anything returns.
    fn fill(&mut self, cx: &mut Context<'_>, polls: &mut usize) {
        while self.slots.running() < self.concurrency {
            let Some(job) = self.next_job(cx, polls) else {
                return;
            };
            let attempt = self.attempt;
            let slot = self
                .slots
                .start(job.next_attempt(), |limits| attempt(job.task, limits));
            self.run_slot(cx, slot, polls);
        }
    }

    /// The next task to start, unless nothing is waiting, the consumer is behind or the
    /// turn is used up; the poll it is about to have is taken from the turn.
    #[inline]
    fn next_job(&mut self, cx: &mut Context<'_>, polls: &mut usize) -> Option<Job<A::Task>> {
        if self.outcomes.len() > self.outcomes_cap || *polls == 0 {
            return None;
        }
        let Poll::Ready(Some(job)) = self.engine.poll_next(cx) else {
            return None;
        };
        *polls -= 1;
        Some(job)
    }

    /// Polls the attempt in `slot`, its poll already taken from the turn. When it ends, it
    /// is settled and the next task started at once (in the slot just freed) and polled,
    /// and so on while tasks can start.
    #[inline]
    fn run_slot(&mut self, cx: &mut Context<'_>, mut slot: usize, polls: &mut usize) {
        while self.poll_slot(slot) {
            let Some(job) = self.next_job(cx, polls) else {
                return;
            };
            let attempt = self.attempt;
            slot = self
                .slots
                .start(job.next_attempt(), |limits| attempt(job.task, limits));
        }
    }

    /// Polls the attempt in `slot` and settles it if it ended; says whether it did.
    #[inline]
    fn poll_slot(&mut self, slot: usize) -> bool {
        let (engine, outcomes) = (&mut self.engine, &mut self.outcomes);
        self.slots.poll(slot, |meta, ended| {
            if let Some(outcome) = engine.settle(meta, ended, false) {
                outcomes.push_back(outcome);
            }
        })
    }

    /// Carries out the cancellations asked of the source (a scheduler's handle): a
    /// running attempt is dropped at once, a waiting retry taken out of the line.
    fn cancel(&mut self, cx: &mut Context<'_>) {
        let mut cancels = std::mem::take(&mut self.cancels);
        self.engine.poll_cancellations(cx, &mut cancels);
        for cancel in cancels.drain(..) {
            // In place, a running attempt is dropped at once.
            let slots = &mut self.slots;
            let stop = |index| slots.cancel(index).map_or(Stop::NotRunning, Stop::Dropped);
            let cancelled = self.engine.cancel(cancel, stop);
            self.outcomes.extend(cancelled);
        }
        // Put back with its capacity, so that the next cancellations need no allocation.
        self.cancels = cancels;
    }

    /// The next outcome with its task's index: what [`Stream::poll_next`] yields, and a
    /// scheduler's stream with the index as the task's id.
    pub(crate) fn poll_indexed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<A::Result>)>> {
        if self.done {
            return Poll::Ready(None);
        }
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if S::CANCELS {
            self.cancel(cx);
        }
        let mut polls = self.polls_per_turn;
        loop {
            // Refill before anything is returned: a busy consumer leaves no slot idle.
            self.fill(cx, &mut polls);
            // Woken attempts are polled even while outcomes wait for the consumer: else,
            // as long as tasks that finish at once keep the outcomes coming, an attempt
            // that needs another poll waits for all of them (and may time out meanwhile).
            while polls > 0 {
                let Some(slot) = self.slots.next_woken() else {
                    break;
                };
                polls -= 1;
                self.run_slot(cx, slot, &mut polls);
            }

            if let Some(outcome) = self.outcomes.pop_front() {
                coop.made_progress();
                return Poll::Ready(Some(outcome));
            }
            if self.slots.running() == 0 && self.engine.is_exhausted() {
                self.done = true;
                self.slots.idle();
                return Poll::Ready(None);
            }
            if polls == 0 {
                // The turn is used up with work left: come back after the others had theirs.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Registered only now, when about to wait: a slot woken since it last looked
            // is taken at once instead.
            if !self.slots.register(cx.waker()) {
                // Slots left free keep no timer while the consumer waits.
                self.slots.idle();
                return Poll::Pending;
            }
        }
    }
}

impl<S, A, M> Stream for Completions<S, A, M>
where
    S: Source<Task = A::Task>,
    A: Attempt,
    M: Fn(A::Task, Limits) -> A + Copy,
{
    type Item = Outcome<A::Result>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_indexed(cx)
            .map(|next| next.map(|(_, outcome)| outcome))
    }
}

impl<S, A, M> PoolStream for Completions<S, A, M>
where
    S: Source<Task = A::Task>,
    A: Attempt,
    M: Fn(A::Task, Limits) -> A + Copy,
{
    /// What the pool is doing, and has done: see [`Stats`]. Cheap: a few loads.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, PoolStream, Retry};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let tasks = (0..10).map(|n| async move || if n < 3 { Err(n) } else { Ok(n) });
    /// let mut done = Pool::new(4).retry(Retry::Lifo).attempts(2).run(tasks);
    /// while done.next().await.is_some() {}
    /// let stats = done.stats();
    /// assert_eq!((stats.succeeded, stats.failed, stats.retried), (7, 3, 3));
    /// assert_eq!((stats.running, stats.waiting), (0, 0));
    /// # }
    /// ```
    fn stats(&self) -> Stats {
        self.engine.counters().snapshot()
    }
}

impl<S, A, M> FusedStream for Completions<S, A, M>
where
    S: Source<Task = A::Task>,
    A: Attempt,
    M: Fn(A::Task, Limits) -> A + Copy,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<S: Source, A: Attempt, M> fmt::Debug for Completions<S, A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("concurrency", &self.concurrency)
            .field("slots", &self.slots)
            .field("engine", &self.engine)
            .field("outcomes", &self.outcomes.len())
            .field("done", &self.done)
            .finish()
    }
}
