//! One rule set for the attribute and the builder ("Settings that go together" on `Pool`,
//! rule 13 of ARCHITECTURE.md): each combination the attribute refuses at compile time (`tests/ui/`), the
//! builder refuses with a panic that says the same, at the call that makes the stream;
//! and the defaults are the runtime's alone.
//!
//! | refused | attribute (`tests/ui/`) | builder (here) |
//! |---|---|---|
//! | no slot | `concurrency-zero.rs` | `scheduling.rs`: `zero_concurrency_is_refused` |
//! | no attempt | `attempts-zero.rs` | `zero_attempts_are_refused` |
//! | attempts without a retry policy | `attempts-without-retry.rs`, `attempts-with-retry-none.rs` | `attempts_need_a_retry_policy` |
//! | a backoff without a retry policy | `backoff-without-retry.rs`, `backoff-with-retry-none.rs` | `a_backoff_needs_a_retry_policy` |
//! | plain futures with a retry policy | `plain-futures-lifo.rs`, `plain-futures-fifo.rs` | `plain_futures_are_refused_by_a_retrying_pool` |

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{Backoff, BoxTask, Pool, Retry, pooled};

/// The message of the panic `make` raises, or `None` when it does not panic.
fn panic_of(make: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(make)).err()?;
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

/// Makes a stream with `pool` at every entry point that takes closures, and returns what
/// each one panicked with (`None` for an entry point that made its stream).
fn at_every_entry(pool: Pool) -> Vec<Option<String>> {
    let closure = || async { Ok::<_, ()>(()) };
    vec![
        panic_of(|| drop(pool.run([async || Ok::<_, ()>(())]))),
        panic_of(|| drop(pool.run_stream(futures::stream::iter([async || Ok::<_, ()>(())])))),
        panic_of(|| drop(pool.spawn([closure]))),
        panic_of(|| drop(pool.scheduler::<BoxTask<(), ()>, _, _>())),
        panic_of(|| drop(pool.spawn_scheduler::<BoxTask<(), ()>, _, _>())),
    ]
}

#[test]
#[should_panic(expected = "attempts must be at least 1 (the first attempt counts), got 0")]
fn zero_attempts_are_refused() {
    let _ = Pool::new(1).retry(Retry::Lifo).attempts(0);
}

#[test]
fn attempts_need_a_retry_policy() {
    for pool in [
        Pool::new(2).attempts(3),
        Pool::new(2).retry(Retry::None).attempts(3),
    ] {
        for panicked in at_every_entry(pool) {
            let message = panicked.expect("the pool was made");
            assert_eq!(
                message,
                "retry-pool: `attempts(3)` needs a retry policy, but the pool has none (`Retry::None`, the default, runs each task once); add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`"
            );
        }
    }
    // One attempt needs no retry policy, and the order of the calls does not matter.
    assert!(
        at_every_entry(Pool::new(2).attempts(1))
            .iter()
            .all(Option::is_none)
    );
    let later = Pool::new(2).attempts(3).retry(Retry::Fifo);
    assert!(at_every_entry(later).iter().all(Option::is_none));
}

#[test]
fn a_backoff_needs_a_retry_policy() {
    let backoff = Backoff::fixed(Duration::from_millis(50));
    for pool in [
        Pool::new(2).backoff(backoff),
        Pool::new(2).retry(Retry::None).backoff(backoff),
    ] {
        for panicked in at_every_entry(pool) {
            let message = panicked.expect("the pool was made");
            assert!(
                message.starts_with("retry-pool: `backoff` is the delay before a failed task runs again, but the pool has no retry policy"),
                "{message}"
            );
        }
    }
    let retrying = Pool::new(2).retry(Retry::Lifo).backoff(backoff);
    assert!(at_every_entry(retrying).iter().all(Option::is_none));
}

#[test]
fn plain_futures_are_refused_by_a_retrying_pool() {
    for retry in [Retry::Lifo, Retry::Fifo] {
        let pool = Pool::new(2).retry(retry);
        let futures = || [async { Ok::<_, ()>(()) }];
        for panicked in [
            panic_of(|| drop(pool.run_futures(futures()))),
            panic_of(|| drop(pool.spawn_futures(futures()))),
        ] {
            let message = panicked.expect("the pool was made");
            assert!(message.contains("cannot be started again"), "{message}");
        }
    }
}

/// The settings are checked where the stream is made, as for the builder: a `#[pooled]`
/// function whose settings cannot hold never gets that far (they are compile errors), and
/// the one setting known only at run time, `concurrency`, is checked at the call
/// (`pooled.rs`: `a_limit_of_zero_panics_at_the_call`).
#[pooled(concurrency = 2, retry = "lifo")]
async fn always_failing(calls: Arc<AtomicU32>) -> Result<(), ()> {
    [move || {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err(()) }
    }]
}

/// Defaults are the runtime's alone: the attribute writes only the keys it is given, and
/// a task of a retrying `#[pooled]` function without `attempts` gets as many as the
/// builder's default.
#[tokio::test]
async fn the_attribute_leaves_the_defaults_to_the_runtime() {
    let default = Pool::new(2).retry(Retry::Lifo).max_attempts();
    assert_eq!(default, 3);

    let calls = Arc::new(AtomicU32::new(0));
    let outcomes: Vec<_> = always_failing(Arc::clone(&calls)).collect().await;
    let failure = outcomes[0].as_ref().unwrap_err();
    assert_eq!(
        (failure.attempts(), calls.load(Ordering::SeqCst)),
        (default, default)
    );

    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let task = move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), ()>(()) }
    };
    let outcomes: Vec<_> = Pool::new(2).retry(Retry::Lifo).run([task]).collect().await;
    let failure = outcomes[0].as_ref().unwrap_err();
    assert_eq!(
        (failure.attempts(), calls.load(Ordering::SeqCst)),
        (default, default)
    );
}
