//! A worker's settings, checked once, and what they decide for a failed attempt.

use std::time::Duration;

use retry_pool::{Backoff, Retry};

use crate::Error;
use crate::lease::Next;

/// The most tasks one worker may hold: a claim takes at most this many rows at once.
pub(crate) const MAX_CONCURRENCY: usize = 10_000;

/// Settings of one worker, checked by [`Settings::check`].
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) concurrency: usize,
    pub(crate) retry: Retry,
    pub(crate) attempts: u32,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) lease: Duration,
    pub(crate) poll: Duration,
}

impl Settings {
    /// Checks the settings together, as `Pool` does, but as an error rather than a panic:
    /// a worker's settings often come from a configuration file. `hooks` names the
    /// `retry_if`/`retry_after` settings given, which decide nothing without a retry.
    #[allow(
        clippy::too_many_arguments,
        reason = "each setting of the builder, once"
    )]
    pub(crate) fn check(
        concurrency: usize,
        retry: Retry,
        attempts: Option<u32>,
        backoff: Option<Backoff>,
        timeout: Option<Duration>,
        lease: Duration,
        poll: Duration,
        hooks: &[&str],
    ) -> Result<Self, Error> {
        let settings = |message: &str| Err(Error::Settings(message.to_owned()));
        if concurrency == 0 || concurrency > MAX_CONCURRENCY {
            return settings("concurrency must be between 1 and 10000: set `.concurrency(n)`");
        }
        let attempts = match (retry, attempts) {
            (_, Some(0)) => return settings("attempts must be at least 1 (the first included)"),
            (Retry::None, Some(n)) if n > 1 => {
                return settings(
                    "more than one attempt needs a retry policy: add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`",
                );
            }
            (Retry::None, _) => 1,
            (_, Some(n)) => n.min(i32::MAX as u32),
            (_, None) => 3,
        };
        if backoff.is_some() && retry == Retry::None {
            return settings(
                "a backoff needs a retry policy: add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`",
            );
        }
        if let Some(hook) = hooks.first()
            && retry == Retry::None
        {
            return Err(Error::Settings(format!(
                "`{hook}` needs a retry policy: add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`"
            )));
        }
        if timeout == Some(Duration::ZERO) {
            return settings("a timeout of zero fails every attempt: give a positive one, or none");
        }
        if lease < Duration::from_millis(100) {
            return settings("the lease must be at least 100ms: renewals happen every third of it");
        }
        if poll.is_zero() {
            return settings("the poll interval must be positive");
        }
        Ok(Settings {
            concurrency,
            retry,
            attempts,
            backoff,
            timeout,
            lease,
            poll,
        })
    }

    /// Whether retries go ahead of everything (rather than behind their priority).
    pub(crate) fn lifo(&self) -> bool {
        self.retry == Retry::Lifo
    }

    /// Where an attempt that failed with a retryable error goes: back in line after
    /// `hint` (the error's own `retry_after`) or else the backoff for its `failures`-th
    /// failure, or nowhere without a retry policy.
    pub(crate) fn after_failure(&self, failures: u32, hint: Option<Duration>) -> Next {
        if self.retry == Retry::None {
            return Next::Final;
        }
        // The pool's own rule, jitter included.
        let backoff = hint.unwrap_or_else(|| {
            self.backoff
                .map_or(Duration::ZERO, |backoff| backoff.delay(failures))
        });
        Next::Retry {
            lifo: self.lifo(),
            backoff,
        }
    }
}
