//! Heap allocations per attempt in steady state, in place and spawned (ARCHITECTURE.md,
//! performance).
//!
//! A counting global allocator counts every allocation and every reallocation (which is
//! how a growing buffer shows up) made on the current thread while counting is switched
//! on; the tests of this binary run side by side, each on its own thread. Each case runs
//! no-op tasks on a current-thread runtime: the first 10,000 warm the pool up (its slots,
//! their wakers, its lists and tokio's own buffers are made then), and what the next 9,000
//! or 90,000 allocate is counted, up to the end of the stream (its drop not included), in
//! two parts: the steady state, while every slot is busy, and the drain at the end of the
//! input (see [`count`]).
//!
//! - **Steady state: nothing**, asserted for every case, for 9,000 and 90,000 tasks.
//! - **Drain: a constant**, the same for 9,000 and 90,000 tasks, asserted to be at most
//!   `5 × (log2(2c) + 1)`: the runtime's lists hold at most one entry per slot (or per poll
//!   of a turn, `2c`), and a list that grows by doubling from empty grows at most that many
//!   times. One allocation per task would be 9,000 and 90,000.
//! - **Nothing after the warm-up, drain included**: the goal. It holds because
//!   `Slots::start` reserves room in the runtime's lists when it makes a slot (`free`, one
//!   entry per slot; `batch` and the woken list, one entry per group of 64 slots), instead
//!   of letting them grow by doubling as the slots drain (which is what these tests
//!   caught: `log2(c) − 2` reallocations of `free`, and up to 2 of the swapped woken
//!   lists).
//!
//! ```text
//! cargo test --test alloc
//! ALLOC_BACKTRACE=1 cargo test --test alloc -- --nocapture --test-threads 1
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use retry_pool::{Failure, Pool, Retry};

/// Counts the allocations of the thread that switched counting on, and nothing else.
struct Tally;

thread_local! {
    /// Whether this thread's allocations are counted now.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations and reallocations counted on this thread.
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// Outcomes taken so far while counting: where a counted allocation happened.
    static TAKEN: Cell<usize> = const { Cell::new(0) };
    /// Set while a backtrace is taken, whose own allocations are not counted.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Whether to print a backtrace for the first counted allocations (`ALLOC_BACKTRACE`),
/// read before counting starts since reading the environment allocates.
static BACKTRACES: AtomicBool = AtomicBool::new(false);
/// How many counted allocations get a backtrace, per count.
const BACKTRACES_SHOWN: u64 = 8;

impl support::counting::Record for Tally {
    fn record(size: usize) {
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if !counting || TRACING.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        let n = COUNT.with(|count| {
            count.set(count.get() + 1);
            count.get()
        });
        if BACKTRACES.load(Ordering::Relaxed) && n <= BACKTRACES_SHOWN {
            TRACING.with(|tracing| tracing.set(true));
            let taken = TAKEN.with(Cell::get);
            let trace = std::backtrace::Backtrace::force_capture();
            eprintln!("counted allocation #{n} ({size} bytes) after {taken} outcomes:\n{trace}\n");
            TRACING.with(|tracing| tracing.set(false));
        }
    }
}

#[global_allocator]
static ALLOCATOR: support::counting::Counting<Tally> = support::counting::Counting::new();

fn start_counting() {
    COUNT.with(|count| count.set(0));
    TAKEN.with(|taken| taken.set(0));
    COUNTING.with(|counting| counting.set(true));
}

/// Stops counting and returns what was counted since [`start_counting`].
fn stop_counting() -> u64 {
    COUNTING.with(|counting| counting.set(false));
    COUNT.with(Cell::get)
}

/// Tasks run before counting starts.
const WARM_UP: usize = 10_000;

/// What a stream of outcomes did after its warm-up.
#[derive(Debug, PartialEq, Eq)]
struct Counted {
    /// Outcomes taken while counting (every one after the warm-up).
    outcomes: usize,
    /// Of which `Ok`.
    succeeded: usize,
    /// Allocations and reallocations while every slot was busy: up to the outcome
    /// `2 × concurrency` before the last.
    steady: u64,
    /// Allocations and reallocations after that, while the slots drain.
    drain: u64,
}

/// Runs `WARM_UP + counted` tasks through the stream `case` makes: takes `WARM_UP`
/// outcomes, then counts the allocations made while the rest are taken, up to the end
/// of the stream.
///
/// The last task is pulled from the input only when every other task has ended or is in
/// a slot (at most `concurrency`; LIFO retries are pulled before the input), and at most
/// `concurrency` ended ones wait in the stream for the consumer: so until the consumer
/// has taken all but `2 × concurrency` outcomes, the input has not ended and every slot
/// is busy. That is the steady state; the rest is the drain. (Spawned, up to twice as
/// many wait and a poll takes them all at once, so the drain may begin before the count
/// calls it so: which only makes "nothing in steady state" stricter.)
fn count<S, T, E>(concurrency: usize, counted: usize, case: fn(usize) -> S) -> Counted
where
    S: Stream<Item = Result<T, E>> + Unpin,
{
    BACKTRACES.store(
        std::env::var_os("ALLOC_BACKTRACE").is_some_and(|v| v != "0"),
        Ordering::Relaxed,
    );
    let steady_until = counted - 2 * concurrency;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async move {
        let mut outcomes = case(WARM_UP + counted);
        for _ in 0..WARM_UP {
            assert!(
                outcomes.next().await.is_some(),
                "more outcomes than the warm-up"
            );
        }
        let mut result = Counted {
            outcomes: 0,
            succeeded: 0,
            steady: 0,
            drain: 0,
        };
        start_counting();
        while let Some(outcome) = outcomes.next().await {
            result.outcomes += 1;
            result.succeeded += usize::from(outcome.is_ok());
            TAKEN.with(|taken| taken.set(result.outcomes));
            if result.outcomes == steady_until {
                result.steady = COUNT.with(Cell::get);
            }
        }
        result.drain = stop_counting() - result.steady;
        drop(outcomes);
        result
    })
}

/// The most allocations a drain may make, however many tasks ran before it: five lists
/// of at most `2 × concurrency` entries, each grown by doubling.
fn bound(concurrency: usize) -> u64 {
    let doublings = u64::from(usize::BITS - (2 * concurrency).leading_zeros());
    5 * doublings
}

/// Nothing allocates in steady state, and the drain allocates no more than a constant
/// that does not depend on the number of tasks; for 9,000 and for 90,000 tasks.
fn assert_steady_state_allocates_nothing<S, T, E>(concurrency: usize, case: fn(usize) -> S)
where
    S: Stream<Item = Result<T, E>> + Unpin,
{
    let bound = bound(concurrency);
    for tasks in [9_000, 90_000] {
        let counted = count(concurrency, tasks, case);
        assert_eq!(
            (counted.outcomes, counted.succeeded, counted.steady),
            (tasks, tasks, 0),
            "{tasks} tasks after the warm-up: {counted:?}; the steady state must not allocate \
             (rerun with ALLOC_BACKTRACE=1 -- --nocapture to see where)"
        );
        assert!(
            counted.drain <= bound,
            "{tasks} tasks after the warm-up: {counted:?}; the drain may allocate at most \
             {bound} times whatever the number of tasks"
        );
    }
}

/// Nothing allocates after the warm-up, the drain included.
fn assert_nothing_allocates<S, T, E>(concurrency: usize, case: fn(usize) -> S)
where
    S: Stream<Item = Result<T, E>> + Unpin,
{
    assert_eq!(
        count(concurrency, 90_000, case),
        Counted {
            outcomes: 90_000,
            succeeded: 90_000,
            steady: 0,
            drain: 0,
        },
        "nothing may allocate after the warm-up (rerun with ALLOC_BACKTRACE=1 -- --nocapture to see where)"
    );
}

// ---------------------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------------------

type Outcomes<E> = Result<usize, Failure<E>>;

/// Async-closure tasks, one `yield_now` each, no retry, at concurrency 64.
fn tasks(n: usize) -> impl Stream<Item = Outcomes<()>> + Unpin {
    let tasks = (0..n).map(|index| {
        async move || {
            tokio::task::yield_now().await;
            Ok::<_, ()>(index)
        }
    });
    Pool::new(64).run(tasks)
}

/// The same with a yield that wakes its waker at once instead of through tokio's
/// deferred list.
fn self_waking_tasks(n: usize) -> impl Stream<Item = Outcomes<()>> + Unpin {
    let tasks = (0..n).map(|index| {
        async move || {
            support::yield_once().await;
            Ok::<_, ()>(index)
        }
    });
    Pool::new(64).run(tasks)
}

/// The same with a timeout that never fires: each slot's timer is reset for every
/// attempt, none is made per attempt.
fn timed_tasks(n: usize) -> impl Stream<Item = Outcomes<()>> + Unpin {
    let tasks = (0..n).map(|index| {
        async move || {
            tokio::task::yield_now().await;
            Ok::<_, ()>(index)
        }
    });
    Pool::new(64).timeout(Duration::from_secs(60)).run(tasks)
}

/// Plain futures through `run_futures`.
fn futures(n: usize) -> impl Stream<Item = Outcomes<()>> + Unpin {
    let futures = (0..n).map(|index| async move {
        tokio::task::yield_now().await;
        Ok::<_, ()>(index)
    });
    Pool::new(64).run_futures(futures)
}

/// LIFO retries with 10% of attempts failing: every ninth task fails its first attempt,
/// so `n` tasks make `n + n/9` attempts of which `n/9` fail. A retry re-uses the task its
/// failed attempt handed back.
fn lifo_retries(n: usize) -> impl Stream<Item = Outcomes<usize>> + Unpin {
    let tasks = (0..n).map(|index| {
        let mut fail_first = index % 9 == 0;
        async move || {
            tokio::task::yield_now().await;
            if std::mem::take(&mut fail_first) {
                Err(index)
            } else {
                Ok(index)
            }
        }
    });
    Pool::new(64).retry(Retry::Lifo).attempts(3).run(tasks)
}

/// LIFO retries at concurrency 1024, far above the 128 polls of a tokio budget, with one
/// task in five failing twice before it succeeds.
fn lifo_retries_1024(n: usize) -> impl Stream<Item = Outcomes<usize>> + Unpin {
    let tasks = (0..n).map(|index| {
        let mut failures = if index % 5 == 0 { 2 } else { 0 };
        async move || {
            tokio::task::yield_now().await;
            if failures > 0 {
                failures -= 1;
                Err(index)
            } else {
                Ok(index)
            }
        }
    });
    Pool::new(1024).retry(Retry::Lifo).attempts(3).run(tasks)
}

/// Spawned: closures returning futures, run by the pool's lanes (tokio tasks that run one
/// attempt after another), here all on the current thread, where they are counted.
fn spawned(n: usize) -> impl Stream<Item = Outcomes<()>> + Unpin {
    let tasks = (0..n).map(|index| {
        move || async move {
            tokio::task::yield_now().await;
            Ok::<_, ()>(index)
        }
    });
    Pool::new(64).spawn(tasks)
}

/// Spawned, with a timeout that never fires: each lane's timer is reset for every
/// attempt.
fn spawned_timed(n: usize) -> impl Stream<Item = Outcomes<()>> + Unpin {
    let tasks = (0..n).map(|index| {
        move || async move {
            tokio::task::yield_now().await;
            Ok::<_, ()>(index)
        }
    });
    Pool::new(64).timeout(Duration::from_secs(60)).spawn(tasks)
}

/// Spawned, with LIFO retries of 10% failing attempts as in [`lifo_retries`].
fn spawned_lifo_retries(n: usize) -> impl Stream<Item = Outcomes<usize>> + Unpin {
    let tasks = (0..n).map(|index| {
        let mut fail_first = index % 9 == 0;
        move || {
            let fail = std::mem::take(&mut fail_first);
            async move {
                tokio::task::yield_now().await;
                if fail { Err(index) } else { Ok(index) }
            }
        }
    });
    Pool::new(64).retry(Retry::Lifo).attempts(3).spawn(tasks)
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// The counter sees what it must: one allocation is one count, a reallocation is one
/// more, and nothing is counted while counting is off or on another thread.
#[test]
fn the_counter_counts() {
    let before = Box::new(1u64);
    start_counting();
    let one = Box::new(2u64);
    let mut grown = Vec::<u64>::with_capacity(1);
    grown.extend([1, 2, 3]);
    let counted = stop_counting();
    let after = Box::new(4u64);
    assert_eq!(*before + *one + *after + grown.len() as u64, 10);
    assert_eq!(counted, 3, "a box, a vector and its reallocation");

    start_counting();
    let other = std::thread::spawn(|| {
        start_counting();
        // (`black_box`: an optimised build would elide an allocation dropped unused.)
        drop(std::hint::black_box(Box::new(3u64)));
        stop_counting()
    });
    let theirs = other.join().unwrap();
    let ours = stop_counting();
    assert_eq!(theirs, 1, "a thread counts its own");
    // Spawning allocates here (the thread's handle and closure), the box there does not.
    assert!((1..100).contains(&ours), "{ours}");
}

#[test]
fn tasks_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, tasks);
}

#[test]
fn tasks_allocate_nothing_after_the_warm_up() {
    assert_nothing_allocates(64, tasks);
}

#[test]
fn self_waking_tasks_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, self_waking_tasks);
}

#[test]
fn self_waking_tasks_allocate_nothing_after_the_warm_up() {
    assert_nothing_allocates(64, self_waking_tasks);
}

#[test]
fn timed_tasks_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, timed_tasks);
}

#[test]
fn timed_tasks_allocate_nothing_after_the_warm_up() {
    assert_nothing_allocates(64, timed_tasks);
}

#[test]
fn futures_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, futures);
}

#[test]
fn futures_allocate_nothing_after_the_warm_up() {
    assert_nothing_allocates(64, futures);
}

#[test]
fn lifo_retries_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, lifo_retries);
}

#[test]
fn lifo_retries_allocate_nothing_after_the_warm_up() {
    assert_nothing_allocates(64, lifo_retries);
}

#[test]
fn lifo_retries_1024_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(1024, lifo_retries_1024);
}

#[test]
fn lifo_retries_1024_allocate_nothing_after_the_warm_up() {
    assert_nothing_allocates(1024, lifo_retries_1024);
}

/// Spawned, an attempt is not a task of its own: nothing allocates per attempt either.
#[test]
fn spawned_attempts_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, spawned);
}

#[test]
fn spawned_timed_attempts_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, spawned_timed);
}

#[test]
fn spawned_lifo_retries_allocate_nothing_in_steady_state() {
    assert_steady_state_allocates_nothing(64, spawned_lifo_retries);
}

/// Contrast, so that the counts above mean something: `buffer_unordered` allocates for
/// every future it runs (`FuturesUnordered` puts each in a task node of its own). The
/// futures pushed before counting started (one per slot) are not counted.
#[test]
fn buffer_unordered_allocates_per_task() {
    let counted = count(64, 90_000, |n| {
        let futures = (0..n).map(|index| async move {
            tokio::task::yield_now().await;
            Ok::<_, ()>(index)
        });
        futures::stream::iter(futures).buffer_unordered(64)
    });
    assert_eq!(counted.outcomes, 90_000);
    assert!(counted.steady + counted.drain >= 90_000 - 64, "{counted:?}");
}
