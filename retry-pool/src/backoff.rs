//! How long a failed task waits before it may run again, and where it waits meanwhile.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The delay before a failed task is eligible to run again. A task waiting out its
/// backoff holds no slot: other tasks run meanwhile.
///
/// ```
/// use retry_pool::Backoff;
/// use std::time::Duration;
///
/// // 50ms after every failure.
/// let fixed = Backoff::fixed(Duration::from_millis(50));
/// // 50ms, 100ms, 200ms, ... up to 5s, each with jitter (between half and all of it).
/// let exponential = Backoff::exponential(Duration::from_millis(50), Duration::from_secs(5));
/// assert_ne!(fixed, exponential);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    jitter: bool,
}

impl Backoff {
    /// The same delay after every failure, without jitter.
    pub fn fixed(delay: Duration) -> Self {
        Backoff {
            first: delay,
            max: delay,
            jitter: false,
        }
    }

    /// `first` after the first failure, doubling after each further one up to `max`, with
    /// "equal jitter": each delay is drawn between half of it and all of it, so that tasks
    /// that failed together do not all come back at once. `max` below `first` is `first`.
    /// The doubling stops after 31 failures (at `first` × 2³¹), whatever `max` allows.
    pub fn exponential(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
            jitter: true,
        }
    }

    /// The same backoff without jitter: every delay exactly as computed. Jitter spreads
    /// out tasks that failed together; without it, runs are easier to reason about, and
    /// tests with a paused clock can assert exact times.
    pub fn without_jitter(self) -> Self {
        Backoff {
            jitter: false,
            ..self
        }
    }

    /// The delay after a task's `failures`-th failure (1 for the first), before jitter.
    ///
    /// ```
    /// use retry_pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::exponential(ms(50), ms(1_000));
    /// let delays: Vec<_> = (1..=6).map(|failures| backoff.nominal_delay(failures)).collect();
    /// assert_eq!(delays, [ms(50), ms(100), ms(200), ms(400), ms(800), ms(1_000)]);
    /// assert_eq!(Backoff::fixed(ms(50)).nominal_delay(6), ms(50));
    /// ```
    pub fn nominal_delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay after a task's `failures`-th failure, with its jitter drawn: what a pool
    /// waits. For code that schedules retries of its own (a durable queue, say) by the
    /// same rule.
    ///
    /// ```
    /// use retry_pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::exponential(ms(100), ms(1_000));
    /// let third = backoff.delay(3); // 400ms nominal, drawn from 200ms to 400ms
    /// assert!(ms(200) <= third && third <= ms(400));
    /// assert_eq!(backoff.without_jitter().delay(3), ms(400));
    /// ```
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_with(failures, &mut fastrand::Rng::new())
    }

    /// [`delay`](Backoff::delay), drawing the jitter from `rng`.
    pub(crate) fn delay_with(&self, failures: u32, rng: &mut fastrand::Rng) -> Duration {
        let nominal = self.nominal_delay(failures);
        if !self.jitter {
            return nominal;
        }
        let half = nominal / 2;
        let spread = (nominal - half).as_nanos().min(u64::MAX as u128) as u64;
        half + Duration::from_nanos(rng.u64(0..=spread))
    }
}

/// Tasks waiting out their backoff, earliest first, behind one reusable timer.
pub(crate) struct Delayed<J> {
    waiting: BinaryHeap<Reverse<Entry<J>>>,
    /// Made with the first delayed task and reset for every later deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// Breaks ties between equal deadlines in the order the tasks failed.
    next_seq: u64,
}

struct Entry<J> {
    due: Instant,
    seq: u64,
    job: J,
}

impl<J> PartialEq for Entry<J> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<J> Eq for Entry<J> {}

impl<J> PartialOrd for Entry<J> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<J> Ord for Entry<J> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl<J> Delayed<J> {
    pub(crate) fn new() -> Self {
        Delayed {
            waiting: BinaryHeap::new(),
            timer: None,
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    pub(crate) fn push(&mut self, job: J, delay: Duration) {
        let due = Instant::now().checked_add(delay).unwrap_or_else(far_future);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.waiting.push(Reverse(Entry { due, seq, job }));
    }

    /// Takes out the first waiting task that `which` picks. Linear: for cancellations.
    pub(crate) fn remove(&mut self, mut which: impl FnMut(&J) -> bool) -> Option<J> {
        let mut entries = std::mem::take(&mut self.waiting).into_vec();
        let taken = entries
            .iter()
            .position(|Reverse(entry)| which(&entry.job))
            .map(|at| entries.swap_remove(at).0.job);
        self.waiting = BinaryHeap::from(entries);
        taken
    }

    /// The next task whose backoff is over. When none is, the timer is set to wake `cx`
    /// at the next deadline.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<J> {
        let Some(Reverse(next)) = self.waiting.peek() else {
            return Poll::Pending;
        };
        let due = next.due;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        if timer.as_mut().poll(cx).is_pending() && Instant::now() < due {
            return Poll::Pending;
        }
        let Reverse(entry) = self.waiting.pop().expect("peeked above");
        Poll::Ready(entry.job)
    }
}

/// About 30 years from now: a deadline that will not come, for delays too long to add.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

impl<J> fmt::Debug for Delayed<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delayed")
            .field("waiting", &self.waiting.len())
            .finish()
    }
}
