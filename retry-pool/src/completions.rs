//! The in-place completion stream: attempts polled inside the stream's own poll.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};

use crate::backlog::{Backlog, Ended, Meta};
use crate::failure::panic_message;
use crate::pool::Pool;
use crate::slots::{Panic, Slots};
use crate::source::Source;
use crate::task::{Handback, Limits, Outcome, TaskResult};

/// The stream of a pool's outcomes, in completion order: the value of each task's first
/// successful attempt, or the [`Failure`](crate::Failure) of a task that gave up.
///
/// Made by [`Pool::run`], [`Pool::run_futures`], [`Pool::run_stream`] and `#[pooled]`
/// functions. Attempts run in place: they are polled when this stream is polled, on the
/// task that polls it. Dropping the stream drops every attempt in flight.
///
/// Each poll does a bounded amount of work and spends tokio's cooperative budget, so a
/// pool of always-ready tasks cannot starve the tasks beside it.
#[must_use = "streams do nothing unless polled"]
pub struct Completions<S: Source, F, A, R: TaskResult> {
    backlog: Backlog<S>,
    slots: Slots<A>,
    attempt: fn(F, Limits) -> A,
    limits: Limits,
    concurrency: usize,
    /// Outcomes settled but not yet yielded.
    outcomes: VecDeque<Outcome<R>>,
    /// No attempt starts while this many outcomes wait for the consumer, so that tasks
    /// that finish at once cannot pile up outcomes faster than they are taken.
    outcomes_cap: usize,
    /// Slot polls allowed in one turn, so that a poll does a bounded amount of work.
    polls_per_turn: usize,
    done: bool,
}

// Nothing is pinned in place: attempts live in their own pinned allocations and the task
// sources box what they must not move.
impl<S: Source, F, A, R: TaskResult> Unpin for Completions<S, F, A, R> {}

impl<S, F, A, R> Completions<S, F, A, R>
where
    S: Source<Task = F>,
    A: Future<Output = Handback<F, R>>,
    R: TaskResult,
{
    pub(crate) fn new(pool: Pool, source: S, attempt: fn(F, Limits) -> A) -> Self {
        // Room to poll every slot and to start an attempt in each: a full turn.
        let polls_per_turn = pool.concurrency.saturating_mul(2).clamp(64, 8192);
        Completions {
            backlog: Backlog::new(&pool, source),
            slots: Slots::new(),
            attempt,
            limits: pool.limits(),
            concurrency: pool.concurrency,
            outcomes: VecDeque::new(),
            outcomes_cap: pool.concurrency.min(polls_per_turn),
            polls_per_turn,
            done: false,
        }
    }

    /// Attempts in flight now.
    pub fn running(&self) -> usize {
        self.slots.running()
    }

    /// Failed tasks waiting to run again.
    pub fn waiting_retries(&self) -> usize {
        self.backlog.waiting_retries()
    }

    /// Starts attempts until every slot is busy, nothing is waiting, the consumer is
    /// behind or the turn is used up. A new attempt is polled at once, so that it is under
    /// way before anything returns.
    fn fill(&mut self, cx: &mut Context<'_>, polls: &mut usize) {
        while self.slots.running() < self.concurrency
            && self.outcomes.len() < self.outcomes_cap
            && *polls > 0
        {
            let Poll::Ready(Some(job)) = self.backlog.poll_next(cx) else {
                return;
            };
            let meta = job.next_attempt();
            let slot = self
                .slots
                .start(meta, (self.attempt)(job.task, self.limits));
            *polls -= 1;
            if let Poll::Ready((meta, output)) = self.slots.poll(slot) {
                self.settle(meta, output);
            }
        }
    }

    fn settle(&mut self, meta: Meta, output: Result<Handback<F, R>, Panic>) {
        let (task, ended) = match output {
            Ok((task, result)) => (task, Ended::Returned(result)),
            Err(panic) => (None, Ended::Panicked(panic_message(&*panic))),
        };
        if let Some(outcome) = self.backlog.settle(meta, task, ended) {
            self.outcomes.push_back(outcome);
        }
    }
}

impl<S, F, A, R> Stream for Completions<S, F, A, R>
where
    S: Source<Task = F>,
    A: Future<Output = Handback<F, R>>,
    R: TaskResult,
{
    type Item = Outcome<R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        this.slots.register(cx.waker());
        let mut polls = this.polls_per_turn;

        // Refill before anything is returned: a busy consumer leaves no slot idle.
        this.fill(cx, &mut polls);
        if this.outcomes.is_empty() {
            while polls > 0 {
                let Some(slot) = this.slots.next_woken() else {
                    break;
                };
                polls -= 1;
                if let Poll::Ready((meta, output)) = this.slots.poll(slot) {
                    this.settle(meta, output);
                    this.fill(cx, &mut polls);
                }
            }
        }

        if let Some(outcome) = this.outcomes.pop_front() {
            coop.made_progress();
            return Poll::Ready(Some(outcome));
        }
        if this.slots.running() == 0 && this.backlog.is_exhausted() {
            this.done = true;
            return Poll::Ready(None);
        }
        if polls == 0 {
            // The turn is used up with work left: come back after the others had theirs.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<S, F, A, R> FusedStream for Completions<S, F, A, R>
where
    S: Source<Task = F>,
    A: Future<Output = Handback<F, R>>,
    R: TaskResult,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<S: Source, F, A, R: TaskResult> fmt::Debug for Completions<S, F, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("concurrency", &self.concurrency)
            .field("slots", &self.slots)
            .field("backlog", &self.backlog)
            .field("outcomes", &self.outcomes.len())
            .field("done", &self.done)
            .finish()
    }
}
