//! The rate limit: never more than `n` attempt starts in any window `[t, t + per)`, and
//! no slower than that.
//!
//! It keeps the times of the last `n` starts: a start may happen once the oldest of them
//! is `per` behind, so any such window holds at most `n` starts, and a start is held back
//! only as long as that requires.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pub(crate) struct RateLimit {
    max: usize,
    per: Duration,
    /// The last `max` starts, oldest first.
    starts: VecDeque<Instant>,
    /// Wakes the pool when the next start may happen; made once, reset after.
    timer: Option<Pin<Box<Sleep>>>,
}

impl RateLimit {
    /// At most `max` starts (at least 1) in any window of length `per`.
    pub(crate) fn new(max: u32, per: Duration) -> Self {
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        RateLimit {
            max,
            per,
            starts: VecDeque::new(),
            timer: None,
        }
    }

    /// Whether an attempt may start now; if not, `cx` is woken when one may.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.starts.len() < self.max {
            return Poll::Ready(());
        }
        let oldest = self.starts[0];
        // Past the far future, no start may happen again: wait for ever.
        let Some(next) = oldest.checked_add(self.per) else {
            return Poll::Pending;
        };
        if Instant::now() >= next {
            return Poll::Ready(());
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(next)));
        if timer.deadline() != next {
            timer.as_mut().reset(next);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Counts an attempt that starts now.
    pub(crate) fn started(&mut self) {
        let now = Instant::now();
        // Starts a window behind no longer count: dropped, so that a generous limit keeps
        // only the starts of the last window, not the last `max` of all time.
        while self.starts.len() == self.max
            || self
                .starts
                .front()
                .is_some_and(|&start| start.checked_add(self.per).is_some_and(|end| end <= now))
        {
            self.starts.pop_front();
        }
        self.starts.push_back(now);
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("max", &self.max)
            .field("per", &self.per)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generous limit keeps only the starts of the last window, not one entry per start
    /// ever made.
    #[tokio::test(start_paused = true)]
    async fn only_the_last_window_is_kept() {
        let mut rate = RateLimit::new(u32::MAX, Duration::from_secs(1));
        for _ in 0..100 {
            for _ in 0..10 {
                rate.started();
            }
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        // Ten starts every 100ms: the last second holds 100 of the 1,000.
        assert_eq!(rate.starts.len(), 100);
    }
}
