//! Property test: over random inputs, concurrency, retry policies and failure patterns, the
//! bound, exactly-once and the attempt counts hold together.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Once;

use futures::StreamExt;
use proptest::prelude::*;
use retry_pool::{Pool, Retry};
use support::Probe;

/// What one task does on each attempt: how often it yields, and whether it fails.
#[derive(Clone, Debug)]
struct Plan {
    /// Yields before each attempt ends.
    yields: usize,
    /// Attempts that fail before the first success (`usize::MAX`: never succeeds).
    failures: usize,
    /// Panics on this attempt (1-based), if any.
    panics_on: Option<usize>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        0..4usize,
        prop_oneof![3 => 0..4usize, 1 => Just(usize::MAX)],
        prop_oneof![9 => Just(None), 1 => (1..4usize).prop_map(Some)],
    )
        .prop_map(|(yields, failures, panics_on)| Plan {
            yields,
            failures,
            panics_on,
        })
}

fn retry() -> impl Strategy<Value = Retry> {
    prop_oneof![Just(Retry::None), Just(Retry::Lifo), Just(Retry::Fifo)]
}

/// The attempts a task gets under `max_attempts`, and whether it succeeds or panics.
fn expected(plan: &Plan, max_attempts: usize) -> (usize, Result<(), bool>) {
    for attempt in 1..=max_attempts {
        if plan.panics_on == Some(attempt) {
            return (attempt, Err(true));
        }
        if attempt > plan.failures {
            return (attempt, Ok(()));
        }
    }
    (max_attempts, Err(false))
}

static QUIET: Once = Once::new();

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bound_exactly_once_and_attempts(
        plans in proptest::collection::vec(plan(), 0..80),
        concurrency in 1..10usize,
        retry in retry(),
        attempts in 1..5u32,
    ) {
        QUIET.call_once(|| support::quiet_panics("planned panic"));
        let probe = Probe::new();
        let counts = Rc::new(RefCell::new(vec![0usize; plans.len()]));
        let tasks = plans.iter().cloned().enumerate().map(|(index, plan)| {
            let probe = probe.clone();
            let counts = Rc::clone(&counts);
            async move || {
                let attempt = {
                    let mut counts = counts.borrow_mut();
                    counts[index] += 1;
                    counts[index]
                };
                let _in_flight = probe.enter();
                for _ in 0..plan.yields {
                    support::yield_once().await;
                }
                if plan.panics_on == Some(attempt) {
                    panic!("planned panic");
                }
                if attempt <= plan.failures { Err(index) } else { Ok(index) }
            }
        });
        let pool = match retry {
            Retry::None => Pool::new(concurrency).attempts(1),
            retry => Pool::new(concurrency).retry(retry).attempts(attempts),
        };
        let max_attempts = pool.max_attempts() as usize;
        let outcomes: Vec<_> = futures::executor::block_on(pool.run(tasks).collect());

        // Exactly once: one outcome per task.
        let mut seen = vec![0; plans.len()];
        for outcome in &outcomes {
            let index = match outcome {
                Ok(index) => *index,
                Err(failure) => failure.index(),
            };
            seen[index] += 1;
        }
        prop_assert!(seen.iter().all(|&n| n == 1), "outcomes per task: {:?}", seen);

        // Attempt counts and fates follow the policy.
        for outcome in &outcomes {
            let index = match outcome {
                Ok(index) => *index,
                Err(failure) => failure.index(),
            };
            let (want_attempts, want_fate) = expected(&plans[index], max_attempts);
            prop_assert_eq!(counts.borrow()[index], want_attempts, "task {}", index);
            match (outcome, want_fate) {
                (Ok(_), Ok(())) => {}
                (Err(failure), Err(panicked)) => {
                    prop_assert_eq!(failure.is_panic(), panicked);
                    prop_assert_eq!(failure.attempts() as usize, want_attempts);
                    if !panicked {
                        prop_assert_eq!(failure.error(), Some(&index));
                    }
                }
                (got, want) => prop_assert!(false, "task {}: got {:?}, want {:?}", index, got, want),
            }
        }

        // The bound: never above `concurrency`, and reached when every attempt waits at
        // least once and there are enough tasks to fill the pool.
        prop_assert!(probe.peak() <= concurrency);
        if plans.len() >= concurrency && plans.iter().all(|p| p.yields > 0) {
            prop_assert_eq!(probe.peak(), concurrency);
        }
        prop_assert_eq!(probe.in_flight(), 0);
    }
}
