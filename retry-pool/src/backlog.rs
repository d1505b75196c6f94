//! The line of tasks waiting for a slot: retries, then the source (LIFO), or the source,
//! then retries (FIFO). And the rule that turns an ended attempt into an outcome or a retry.
//!
//! Both flavours share it: only how an attempt runs differs between them.

use std::collections::VecDeque;
use std::fmt;
use std::task::{Context, Poll};

use crate::backoff::{Backoff, Delayed};
use crate::failure::{Cause, Failure};
use crate::pool::{Pool, Retry};
use crate::source::Source;
use crate::task::{Outcome, TaskResult};

/// Which task an attempt belongs to, and which attempt it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The task's 0-based position in the input.
    pub(crate) index: usize,
    /// Attempts started so far, this one included.
    pub(crate) attempts: u32,
}

/// A task waiting for a slot.
pub(crate) struct Job<F> {
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
        }
    }

    /// The next task to start. `Ready(None)` says nothing is waiting, not even in a
    /// backoff, and the source has ended: only running attempts may still queue retries.
    /// `Pending` means the source or a backoff timer will wake `cx`.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        while let Poll::Ready(job) = self.delayed.poll_due(cx) {
            self.queue_retry(job);
        }
        // LIFO: a retry goes before the input. FIFO: only once the input has ended, unless
        // it waited out a backoff, which was its turn in the line.
        if self.retry == Retry::Lifo || self.backoff.is_some() {
            if let Some(job) = self.retries.pop_front() {
                return Poll::Ready(Some(job));
            }
        }
        if !self.source_ended {
            match self.source.poll_task(cx) {
                Poll::Ready(Some(task)) => {
                    let index = self.next_index;
                    self.next_index += 1;
                    return Poll::Ready(Some(Job {
                        task,
                        index,
                        attempts: 0,
                    }));
                }
                Poll::Ready(None) => self.source_ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.retries.pop_front() {
            Some(job) => Poll::Ready(Some(job)),
            None if self.delayed.len() > 0 => Poll::Pending,
            None => Poll::Ready(None),
        }
    }

    /// Whether nothing is waiting and nothing more will come from the source.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.source_ended && self.retries.is_empty() && self.delayed.len() == 0
    }

    /// Failed tasks waiting to run again, in their backoff or for a slot.
    pub(crate) fn waiting_retries(&self) -> usize {
        self.retries.len() + self.delayed.len()
    }

    fn queue_retry(&mut self, job: Job<S::Task>) {
        match self.retry {
            Retry::Lifo => self.retries.push_front(job),
            Retry::Fifo | Retry::None => self.retries.push_back(job),
        }
    }

    /// Settles an ended attempt: the task's outcome, or `None` when it was queued to run
    /// again. `task` is what the attempt handed back (`None` when it cannot be restarted).
    pub(crate) fn settle<R: TaskResult>(
        &mut self,
        meta: Meta,
        task: Option<S::Task>,
        ended: Ended<R>,
    ) -> Option<Outcome<R>> {
        let cause = match ended {
            Ended::Returned(Some(result)) => match result.into_result() {
                Ok(value) => return Some(Ok(value)),
                Err(error) => Cause::Error(error),
            },
            Ended::Returned(None) => Cause::Timeout,
            // A panic is a bug, not a transient fault: never retried.
            Ended::Panicked(message) => {
                return Some(Err(Failure::new(
                    meta.index,
                    meta.attempts,
                    Cause::Panic(message),
                )));
            }
        };
        match task {
            Some(task) if meta.attempts < self.max_attempts => {
                let job = Job {
                    task,
                    index: meta.index,
                    attempts: meta.attempts,
                };
                match self.backoff {
                    Some(backoff) => {
                        let delay = backoff.delay(meta.attempts, &mut self.rng);
                        self.delayed.push(job, delay);
                    }
                    None => self.queue_retry(job),
                }
                None
            }
            _ => Some(Err(Failure::new(meta.index, meta.attempts, cause))),
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
