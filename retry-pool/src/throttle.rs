//! Retry throttling, as gRPC does it: a bucket of tokens that failing attempts drain and
//! successful ones refill, so that a dependency that fails for every caller is not hit by
//! a storm of retries on top.
//!
//! Tokens start at `max`. Each failed attempt that would be retried takes one (not below
//! zero); each successful attempt gives back `ratio` (up to `max`). A failed task is
//! retried only while more than `max / 2` tokens are left after its failure.

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Throttle {
    tokens: f64,
    max: f64,
    ratio: f64,
}

impl Throttle {
    pub(crate) fn new(max_tokens: u32, ratio: f64) -> Self {
        let max = f64::from(max_tokens);
        Throttle {
            tokens: max,
            max,
            ratio,
        }
    }

    /// A successful attempt.
    pub(crate) fn succeeded(&mut self) {
        self.tokens = (self.tokens + self.ratio).min(self.max);
    }

    /// A failed attempt that would be retried: whether it may be.
    pub(crate) fn failed(&mut self) -> bool {
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.tokens > self.max / 2.0
    }
}
