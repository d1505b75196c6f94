//! The line of tasks waiting for a slot, in the order the retry policy gives them: under
//! LIFO, retries before the input; under FIFO, the input before retries (unless a retry
//! waited out a backoff, which was its turn in the line). Failed tasks in their backoff wait
//! here too, holding no slot.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::backoff::Delayed;
use crate::job::Job;
use crate::policy::Retry;
use crate::source::Source;
use crate::stats::Counters;

pub(crate) struct TaskQueue<S: Source> {
    source: S,
    source_ended: bool,
    next_index: usize,
    /// Failed tasks eligible to run again.
    retries: VecDeque<Job<S::Task>>,
    /// Failed tasks waiting out their backoff.
    delayed: Delayed<Job<S::Task>>,
    order: Retry,
    /// Whether retries wait out a backoff first.
    backs_off: bool,
    /// Counts the retries waiting here.
    counters: Arc<Counters>,
}

impl<S: Source> TaskQueue<S> {
    pub(crate) fn new(source: S, order: Retry, backs_off: bool, counters: Arc<Counters>) -> Self {
        TaskQueue {
            source,
            source_ended: false,
            next_index: 0,
            retries: VecDeque::new(),
            delayed: Delayed::new(),
            order,
            backs_off,
            counters,
        }
    }

    /// The next task to start. `Ready(None)` says nothing is waiting, not even in a
    /// backoff, and the source has ended: only running attempts may still queue retries.
    /// `Pending` means the source or a backoff timer will wake `cx`.
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        while let Poll::Ready(job) = self.delayed.poll_due(cx) {
            self.queue_retry(job);
        }
        if self.order == Retry::Lifo || self.backs_off {
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

    /// Puts a failed task back in line, after `delay` if there is one.
    pub(crate) fn retry(&mut self, job: Job<S::Task>, delay: Option<Duration>) {
        self.counters.retry_queued();
        match delay {
            Some(delay) => self.delayed.push(job, delay),
            None => self.queue_retry(job),
        }
    }

    fn pop_retry(&mut self) -> Option<Job<S::Task>> {
        let job = self.retries.pop_front()?;
        self.counters.retry_left();
        Some(job)
    }

    fn queue_retry(&mut self, job: Job<S::Task>) {
        match self.order {
            Retry::Lifo => self.retries.push_front(job),
            // A scheduler's line takes FIFO retries back; a batch source keeps none, and
            // they wait here for the end of the input.
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

    /// Takes a failed task out of the line if it is waiting there to run again.
    pub(crate) fn remove_retry(&mut self, index: usize) -> Option<Job<S::Task>> {
        let job = match self.retries.iter().position(|job| job.index == index) {
            Some(at) => self.retries.remove(at),
            None => self.delayed.remove(|job| job.index == index),
        }?;
        self.counters.retry_left();
        Some(job)
    }

    /// The source, for what it does besides yielding tasks (cancellations).
    pub(crate) fn source(&mut self) -> &mut S {
        &mut self.source
    }
}

impl<S: Source> fmt::Debug for TaskQueue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskQueue")
            .field("pulled", &self.next_index)
            .field("source_ended", &self.source_ended)
            .field("retries", &self.retries.len())
            .field("delayed", &self.delayed)
            .field("order", &self.order)
            .finish()
    }
}
