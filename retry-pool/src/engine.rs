//! What both flavours share: which task starts next, and what becomes of an attempt that
//! ended (an outcome, or a retry) or of a task that was cancelled. A flavour supplies only
//! how an attempt runs and how it stops.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::failure::{Cause, Failure, NotRetried, panic_message};
use crate::hooks::Hooks;
use crate::job::{Ended, Job, Meta};
use crate::policy::RetryPolicy;
use crate::queue::TaskQueue;
use crate::rate::RateLimit;
use crate::source::{Cancel, Source};
use crate::stats::Counters;
use crate::task::{Outcome, TaskResult};
use crate::throttle::Throttle;
use crate::trace;

pub(crate) struct Engine<S: Source, R: TaskResult> {
    queue: TaskQueue<S>,
    policy: RetryPolicy,
    hooks: Hooks<R::Err>,
    rate: Option<RateLimit>,
    throttle: Option<Throttle>,
    /// For the backoff's jitter.
    rng: fastrand::Rng,
    counters: Arc<Counters>,
}

/// What a flavour did with the running attempt of a task being cancelled.
pub(crate) enum Stop {
    /// Dropped it, at once: the task ends now.
    Dropped(Meta),
    /// Asked it to stop (an abort): the task ends when the attempt is reported, as
    /// [`Engine::aborted`].
    Stopping,
    /// The task has no attempt running.
    NotRunning,
}

impl<S: Source, R: TaskResult> Engine<S, R> {
    /// `counters`: a scheduler's, which its handles read too, or the pool's own.
    pub(crate) fn new(
        policy: RetryPolicy,
        hooks: Hooks<R::Err>,
        source: S,
        counters: Arc<Counters>,
    ) -> Self {
        Engine {
            queue: TaskQueue::new(source, policy.order, Arc::clone(&counters)),
            rate: policy.rate.map(|(max, per)| RateLimit::new(max, per)),
            throttle: policy
                .throttle
                .map(|(tokens, ratio)| Throttle::new(tokens, ratio)),
            policy,
            hooks,
            rng: fastrand::Rng::new(),
            counters,
        }
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The next task to start, counted as running from here on. `Ready(None)`: nothing is
    /// waiting and the source has ended (only running attempts may still queue retries).
    /// Under a rate limit, `Pending` until a start is allowed: the task waits in line, not
    /// in flight.
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Job<S::Task>>> {
        if let Some(rate) = &mut self.rate {
            std::task::ready!(rate.poll_ready(cx));
        }
        let next = self.queue.poll_next(cx);
        if let Poll::Ready(Some(_)) = &next {
            self.counters.started();
            if let Some(rate) = &mut self.rate {
                rate.started();
            }
        }
        next
    }

    /// Whether nothing is waiting and nothing more will come from the source.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.queue.is_exhausted()
    }

    /// Cancellations asked of the source (a scheduler's handle) since the last call;
    /// registers `cx` to be woken for the next one.
    pub(crate) fn poll_cancellations(&mut self, cx: &mut Context<'_>, into: &mut Vec<Cancel>) {
        self.queue.source().poll_cancellations(cx, into);
    }

    /// Carries out a cancellation: a waiting task ends at once; a running one is stopped
    /// by `stop`, the flavour's way of stopping the attempt of a task; a task waiting to
    /// run again is taken out of the line.
    pub(crate) fn cancel(
        &mut self,
        cancel: Cancel,
        stop: impl FnOnce(usize) -> Stop,
    ) -> Option<(usize, Outcome<R>)> {
        match cancel {
            Cancel::Waiting { index, attempts } => Some(self.cancelled(index, attempts)),
            Cancel::Started { index } => match stop(index) {
                Stop::Dropped(meta) => Some(self.aborted(meta)),
                Stop::Stopping => None,
                Stop::NotRunning => {
                    let job = self.queue.remove_retry(index)?;
                    Some(self.cancelled(index, job.attempts))
                }
            },
        }
    }

    /// The outcome of a task whose running attempt was stopped for a cancellation.
    pub(crate) fn aborted(&mut self, meta: Meta) -> (usize, Outcome<R>) {
        self.counters.stopped();
        self.cancelled(meta.index, meta.attempts)
    }

    fn cancelled(&mut self, index: usize, attempts: u32) -> (usize, Outcome<R>) {
        self.finish(
            index,
            attempts,
            Err(Failure::new(index, attempts, Cause::Cancelled)),
        )
    }

    fn finish(&mut self, index: usize, attempts: u32, outcome: Outcome<R>) -> (usize, Outcome<R>) {
        // Only a scheduler's line keeps track of its tasks (and cancels them). A cancel
        // that came while the attempt was being settled (after `settle` looked, from a
        // hook, say) still holds: `cancel` returned `true`.
        let outcome = match S::CANCELS && self.queue.source().settled(index) {
            true => Err(Failure::new(index, attempts, Cause::Cancelled)),
            false => outcome,
        };
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
        (index, outcome)
    }

    /// Settles an ended attempt: the task's index and outcome, or `None` when it was
    /// queued to run again. `cancelled`: a cancel of the task reached the attempt too late
    /// to stop it (the source may also hold one, not yet carried out).
    #[inline]
    pub(crate) fn settle(
        &mut self,
        meta: Meta,
        ended: Ended<S::Task, R>,
        cancelled: bool,
    ) -> Option<(usize, Outcome<R>)> {
        self.counters.stopped();
        // A cancel that came while the attempt ran, too late to stop it, still holds: the
        // task ends cancelled whatever the attempt returned (`cancel` said it would).
        if S::CANCELS && (cancelled || self.queue.source().take_cancel(meta.index)) {
            return Some(self.cancelled(meta.index, meta.attempts));
        }
        let (task, cause) = match ended {
            Ok((task, Some(result))) => match result.into_result() {
                Ok(value) => {
                    if let Some(throttle) = &mut self.throttle {
                        throttle.succeeded();
                    }
                    return Some(self.finish(meta.index, meta.attempts, Ok(value)));
                }
                Err(error) => (task, Cause::Error(error)),
            },
            Ok((task, None)) => (task, Cause::Timeout),
            // A panic is a bug, not a transient fault: never retried.
            Err(panic) => (None, Cause::Panic(panic_message(&*panic))),
        };
        // Whether the failure is worth a retry, and whether the throttle allows one.
        let retryable = match &cause {
            Cause::Error(error) => self.hooks.retry_if(error),
            Cause::Timeout => true,
            Cause::Panic(_) | Cause::Cancelled => false,
        };
        let throttled = retryable && self.throttle.as_mut().is_some_and(|t| !t.failed());
        let attempts_left = meta.attempts < self.policy.max_attempts;
        match task {
            Some(task) if attempts_left && retryable && !throttled => {
                trace::retrying(meta, cause.name());
                let hint = match &cause {
                    Cause::Error(error) => self.hooks.retry_after(error),
                    _ => None,
                };
                let delay = hint.or_else(|| {
                    let backoff = self.policy.backoff?;
                    Some(backoff.delay_with(meta.attempts, &mut self.rng))
                });
                let job = Job {
                    task,
                    index: meta.index,
                    attempts: meta.attempts,
                };
                self.queue.retry(job, delay);
                None
            }
            task => {
                let mut failure = Failure::new(meta.index, meta.attempts, cause);
                if attempts_left && task.is_some() {
                    if !retryable {
                        failure = failure.not_retried(NotRetried::Permanent);
                    } else if throttled {
                        self.counters.throttled();
                        failure = failure.not_retried(NotRetried::Throttled);
                    }
                }
                Some(self.finish(meta.index, meta.attempts, Err(failure)))
            }
        }
    }
}

impl<S: Source, R: TaskResult> fmt::Debug for Engine<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("queue", &self.queue)
            .field("policy", &self.policy)
            .field("hooks", &self.hooks)
            .field("rate", &self.rate)
            .field("throttle", &self.throttle)
            .finish()
    }
}
