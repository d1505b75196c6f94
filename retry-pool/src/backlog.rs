//! The line of tasks waiting for a slot: retries, then the source (LIFO), or the source,
//! then retries (FIFO). And the rule that turns an ended attempt into an outcome or a retry.
//!
//! Both flavours share it: only how an attempt runs differs between them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::backoff::{Backoff, Delayed};
use crate::failure::{Cause, Failure};
use crate::pool::{Pool, Retry};
use crate::source::{Cancel, Source};
use crate::stats::Counters;
use crate::task::{Outcome, TaskResult};
use crate::trace;

/// Which task an attempt belongs to, and which attempt it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The task's 0-based position in the input.
    pub(crate) index: usize,
    /// Attempts started so far, this one included.
    pub(crate) attempts: u32,
}

/// A task waiting for a slot. (`pub` only so that [`Source`] can name it; not exported.)
#[derive(Debug)]
pub struct Job<F> {
    pub(crate) task: F,
    pub(crate) index: usize,
    /// Attempts already made.
    pub(crate) attempts: u32,
}

impl<F> Job<F> {
    /// The meta of the attempt this job is about to start.
    pub(crate) fn next_attempt(&self) -> Meta {
        Meta {
            index: self.index,
            attempts: self.attempts + 1,
        }
    }
}

/// How an attempt ended.
pub(crate) enum Ended<R> {
    /// It returned this result, or `None` when it ran past its timeout.
    Returned(Option<R>),
    /// It panicked, with this message.
    Panicked(Option<String>),
}

pub(crate) struct Backlog<S: Source> {
    source: S,
    source_ended: bool,
    next_index: usize,
    /// Failed tasks eligible to run again.
    retries: VecDeque<Job<S::Task>>,
    /// Failed tasks waiting out their backoff.
    delayed: Delayed<Job<S::Task>>,
    retry: Retry,
    max_attempts: u32,
    backoff: Option<Backoff>,
    rng: fastrand::Rng,
    counters: Arc<Counters>,
}

impl<S: Source> Backlog<S> {
    pub(crate) fn new(pool: &Pool, source: S) -> Self {
        Backlog {
            source,
            source_ended: false,
            next_index: 0,
            retries: VecDeque::new(),
            delayed: Delayed::new(),
            retry: pool.effective_retry(),
            max_attempts: pool.max_attempts(),
            backoff: pool.backoff,
            rng: fastrand::Rng::new(),
            counters: Arc::default(),
        }
    }

    /// Keeps its counts in `counters` (a scheduler's, which its handles read) instead of
    /// counters of its own.
    pub(crate) fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        self
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The next task to start, counted as running from here on. See [`poll_waiting`].
    ///
    /// [`poll_waiting`]: Backlog::poll_waiting
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        let next = self.poll_waiting(cx);
        if let Poll::Ready(Some(_)) = &next {
            self.counters.started();
        }
        next
    }

    /// The next task to start. `Ready(None)` says nothing is waiting, not even in a
    /// backoff, and the source has ended: only running attempts may still queue retries.
    /// `Pending` means the source or a backoff timer will wake `cx`.
    fn poll_waiting(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        while let Poll::Ready(job) = self.delayed.poll_due(cx) {
            self.queue_retry(job);
        }
        // LIFO: a retry goes before the input. FIFO: only once the input has ended, unless
        // it waited out a backoff, which was its turn in the line.
        if self.retry == Retry::Lifo || self.backoff.is_some() {
            if let Some(job) = self.pop_retry() {
                return Poll::Ready(Some(job));
            }
        }
        if !self.source_ended {
            match self.source.poll_job(cx, &mut self.next_index) {
                Poll::Ready(Some(job)) => return Poll::Ready(Some(job)),
                Poll::Ready(None) => self.source_ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.pop_retry() {
            Some(job) => Poll::Ready(Some(job)),
            None if self.delayed.len() > 0 => Poll::Pending,
            None => Poll::Ready(None),
        }
    }

    /// Whether nothing is waiting and nothing more will come from the source.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.source_ended && self.retries.is_empty() && self.delayed.len() == 0
    }

    fn pop_retry(&mut self) -> Option<Job<S::Task>> {
        let job = self.retries.pop_front()?;
        self.counters.retry_left();
        Some(job)
    }

    fn queue_retry(&mut self, job: Job<S::Task>) {
        match self.retry {
            Retry::Lifo => self.retries.push_front(job),
            // A scheduler's source takes FIFO retries back into its own line; a batch
            // source keeps none, and they wait here for the end of the input.
            Retry::Fifo | Retry::None => match self.source_ended {
                true => self.retries.push_back(job),
                false => match self.source.requeue(job) {
                    Some(job) => self.retries.push_back(job),
                    // Waiting in the source's line now, and counted there.
                    None => self.counters.retry_left(),
                },
            },
        }
    }

    /// Cancellations asked of the source since the last call; registers `cx` to be woken
    /// for the next one.
    pub(crate) fn poll_cancellations(&mut self, cx: &mut Context<'_>, into: &mut Vec<Cancel>) {
        self.source.poll_cancellations(cx, into);
    }

    /// Takes a failed task out of the line if it is waiting there to run again.
    pub(crate) fn remove_retry(&mut self, index: usize) -> Option<Job<S::Task>> {
        let job = match self.retries.iter().position(|job| job.index == index) {
            Some(at) => self.retries.remove(at),
            None => self.delayed.remove(|job| job.index == index),
        }?;
        self.counters.retry_left();
        Some(job)
    }

    /// The outcome of a cancelled task, which had made `attempts` attempts.
    /// `was_running`: it was cancelled in a slot, not while waiting.
    pub(crate) fn cancelled<R: TaskResult>(
        &mut self,
        index: usize,
        attempts: u32,
        was_running: bool,
    ) -> (usize, Outcome<R>) {
        if was_running {
            self.counters.stopped();
        }
        self.finish::<R>(index, Err(Failure::new(index, attempts, Cause::Cancelled)))
    }

    fn finish<R: TaskResult>(&mut self, index: usize, outcome: Outcome<R>) -> (usize, Outcome<R>) {
        match &outcome {
            Ok(_) => self.counters.succeeded(),
            Err(failure) => {
                match failure.is_cancelled() {
                    true => self.counters.cancelled(),
                    false => self.counters.failed(),
                }
                let meta = Meta {
                    index,
                    attempts: failure.attempts(),
                };
                trace::gave_up(meta, failure.cause_name());
            }
        }
        self.source.settled(index);
        (index, outcome)
    }

    /// Settles an ended attempt: the task's index and outcome, or `None` when it was
    /// queued to run again. `task` is what the attempt handed back (`None` when it cannot
    /// be restarted); `cancelled`: a cancel of the task reached the attempt too late to
    /// stop it (the source may also hold one, not yet carried out).
    #[inline]
    pub(crate) fn settle<R: TaskResult>(
        &mut self,
        meta: Meta,
        task: Option<S::Task>,
        ended: Ended<R>,
        cancelled: bool,
    ) -> Option<(usize, Outcome<R>)> {
        self.counters.stopped();
        // A cancel that came while the attempt ran, too late to stop it, still holds: the
        // task ends cancelled whatever the attempt returned (`cancel` said it would).
        if S::CANCELS && (cancelled || self.source.take_cancel(meta.index)) {
            let failure = Failure::new(meta.index, meta.attempts, Cause::Cancelled);
            return Some(self.finish::<R>(meta.index, Err(failure)));
        }
        let cause = match ended {
            Ended::Returned(Some(result)) => match result.into_result() {
                Ok(value) => return Some(self.finish::<R>(meta.index, Ok(value))),
                Err(error) => Cause::Error(error),
            },
            Ended::Returned(None) => Cause::Timeout,
            // A panic is a bug, not a transient fault: never retried.
            Ended::Panicked(message) => {
                let failure = Failure::new(meta.index, meta.attempts, Cause::Panic(message));
                return Some(self.finish::<R>(meta.index, Err(failure)));
            }
        };
        match task {
            Some(task) if meta.attempts < self.max_attempts => {
                let job = Job {
                    task,
                    index: meta.index,
                    attempts: meta.attempts,
                };
                self.counters.retry_queued();
                trace::retrying(meta, cause.name());
                match self.backoff {
                    Some(backoff) => {
                        let delay = backoff.delay(meta.attempts, &mut self.rng);
                        self.delayed.push(job, delay);
                    }
                    None => self.queue_retry(job),
                }
                None
            }
            _ => {
                let failure = Failure::new(meta.index, meta.attempts, cause);
                Some(self.finish::<R>(meta.index, Err(failure)))
            }
        }
    }
}

impl<S: Source> fmt::Debug for Backlog<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backlog")
            .field("pulled", &self.next_index)
            .field("source_ended", &self.source_ended)
            .field("retries", &self.retries.len())
            .field("delayed", &self.delayed)
            .field("retry", &self.retry)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}
