//! The line of tasks waiting for a slot, in the order the retry policy gives them: under
//! LIFO, retries before the input; under FIFO, the input before retries, unless a retry
//! waited out a delay (a backoff, or one its error asked for), which was its turn in the
//! line. Failed tasks in their delay wait here too, holding no slot.

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
    /// FIFO retries whose delay is over: they run before the input.
    due: VecDeque<Job<S::Task>>,
    /// Failed tasks waiting out a delay.
    delayed: Delayed<Job<S::Task>>,
    order: Retry,
    /// Counts the retries waiting here.
    counters: Arc<Counters>,
}

impl<S: Source> TaskQueue<S> {
    pub(crate) fn new(source: S, order: Retry, counters: Arc<Counters>) -> Self {
        TaskQueue {
            source,
            source_ended: false,
            next_index: 0,
            retries: VecDeque::new(),
            due: VecDeque::new(),
            delayed: Delayed::new(),
            order,
            counters,
        }
    }

    /// The next task to start. `Ready(None)` says nothing is waiting, not even in a
    /// delay, and the source has ended: only running attempts may still queue retries.
    /// `Pending` means the source or a delay's timer will wake `cx`.
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        // The common case, kept small enough to inline: nothing waits to run again, so the
        // next task is the input's whatever the order.
        if self.delayed.len() == 0
            && self.due.is_empty()
            && self.retries.is_empty()
            && !self.source_ended
        {
            return self.poll_source(cx);
        }
        self.poll_waiting(cx)
    }

    /// The input's next task; notes when the input has ended.
    #[inline(always)]
    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        let next = self.source.poll_job(cx, &mut self.next_index);
        if let Poll::Ready(None) = next {
            self.source_ended = true;
        }
        next
    }

    /// [`poll_next`](TaskQueue::poll_next) when a task waits to run again or the input has
    /// ended.
    #[inline(never)]
    fn poll_waiting(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        while self.delayed.len() > 0 {
            let Poll::Ready(job) = self.delayed.poll_due(cx) else {
                break;
            };
            match self.order {
                Retry::Lifo => self.retries.push_front(job),
                // A scheduler's line takes it back at its priority; else it runs next.
                Retry::Fifo | Retry::None => {
                    if let Some(job) = self.requeue(job) {
                        self.due.push_back(job);
                    }
                }
            }
        }
        if let Some(job) = self.due.pop_front() {
            self.counters.retry_left();
            return Poll::Ready(Some(job));
        }
        if self.order == Retry::Lifo {
            if let Some(job) = self.pop_retry() {
                return Poll::Ready(Some(job));
            }
        }
        if !self.source_ended {
            match self.poll_source(cx) {
                Poll::Ready(Some(job)) => return Poll::Ready(Some(job)),
                Poll::Ready(None) => {}
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
        self.source_ended
            && self.retries.is_empty()
            && self.due.is_empty()
            && self.delayed.len() == 0
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
            // A batch source keeps no retries: they wait here for the end of the input.
            Retry::Fifo | Retry::None => {
                if let Some(job) = self.requeue(job) {
                    self.retries.push_back(job);
                }
            }
        }
    }

    /// Offers a FIFO retry to the source: a scheduler's line takes it back behind the
    /// tasks of its priority (and counts it there); a batch source hands it back.
    fn requeue(&mut self, job: Job<S::Task>) -> Option<Job<S::Task>> {
        if self.source_ended {
            return Some(job);
        }
        let back = self.source.requeue(job);
        if back.is_none() {
            self.counters.retry_left();
        }
        back
    }

    /// Takes a failed task out of the line if it is waiting there to run again.
    pub(crate) fn remove_retry(&mut self, index: usize) -> Option<Job<S::Task>> {
        let listed = |retries: &mut VecDeque<Job<S::Task>>| {
            let at = retries.iter().position(|job| job.index == index)?;
            retries.remove(at)
        };
        let job = listed(&mut self.retries)
            .or_else(|| listed(&mut self.due))
            .or_else(|| self.delayed.remove(|job| job.index == index))?;
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
            .field("due", &self.due.len())
            .field("delayed", &self.delayed)
            .field("order", &self.order)
            .finish()
    }
}
