//! The spawned flavour: attempts in lanes (tokio tasks) that keep the pool full, and the
//! same rules as in place (ARCHITECTURE.md, rules 1-12).

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{Pool, Retry};
use support::Probe;

/// Waits (on the paused or real clock) until `done` holds, for at most ten seconds.
async fn until(mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the condition held within ten seconds");
}

/// Rules 1 and 4, on two worker threads: the bound is reached and never exceeded, and
/// every task yields exactly once, retries included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_and_exactly_once_on_worker_threads() {
    for concurrency in [1, 4, 16] {
        let probe = Probe::new();
        let counter = probe.clone();
        let tasks = (0..300usize).map(move |n| {
            let probe = counter.clone();
            let attempts = Arc::new(AtomicUsize::new(0));
            move || {
                let probe = probe.clone();
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    let _in_flight = probe.enter();
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    if attempt <= n % 3 { Err(n) } else { Ok(n) }
                }
            }
        });
        let outcomes: Vec<_> = Pool::new(concurrency)
            .retry(Retry::Lifo)
            .attempts(2)
            .spawn(tasks)
            .collect()
            .await;
        let mut ok: Vec<usize> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .copied()
            .collect();
        let mut failed: Vec<usize> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .map(|f| {
                assert_eq!(f.attempts(), 2);
                f.index()
            })
            .collect();
        ok.sort_unstable();
        failed.sort_unstable();
        assert_eq!(ok, (0..300).filter(|n| n % 3 < 2).collect::<Vec<_>>());
        assert_eq!(failed, (0..300).filter(|n| n % 3 == 2).collect::<Vec<_>>());
        assert_eq!(probe.peak(), concurrency, "concurrency {concurrency}");
        assert_eq!(probe.started(), 100 + 2 * 100 + 2 * 100);
    }
}

/// Rule 3: completion order.
#[tokio::test(start_paused = true)]
async fn outcomes_come_in_completion_order() {
    let tasks = (0..8u64).map(|n| {
        move || async move {
            tokio::time::sleep(Duration::from_millis(80 - 10 * n)).await;
            Ok::<_, ()>(n)
        }
    });
    let order: Vec<u64> = Pool::new(8)
        .spawn(tasks)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(order, (0..8).rev().collect::<Vec<_>>());
}

/// Rule 2: an endless input is pulled lazily, and nothing runs before the first poll.
#[tokio::test(start_paused = true)]
async fn endless_input_and_nothing_before_the_first_poll() {
    let probe = Probe::new();
    let counter = probe.clone();
    let tasks = (0u64..).map(move |n| {
        let probe = counter.clone();
        move || {
            let probe = probe.clone();
            async move {
                let _in_flight = probe.enter();
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, ()>(n)
            }
        }
    });
    let mut stream = Pool::new(3).spawn(tasks);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(probe.started(), 0, "nothing runs before the first poll");
    let first: Vec<_> = stream.by_ref().take(100).collect().await;
    assert_eq!(first.len(), 100);
    assert!(probe.peak() <= 3);
}

/// Rule 8: a panic becomes `is_panic`, and the others carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_ends_only_its_own_task() {
    let tasks = (0..20u32).map(|n| {
        move || async move {
            if n == 7 {
                panic!("task seven is broken");
            }
            Ok::<_, ()>(n)
        }
    });
    let outcomes: Vec<_> = Pool::new(4).retry(Retry::Lifo).spawn(tasks).collect().await;
    assert_eq!(outcomes.len(), 20);
    let failures: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].is_panic());
    assert_eq!(failures[0].index(), 7);
    assert_eq!(failures[0].attempts(), 1);
    assert_eq!(failures[0].panic_message(), Some("task seven is broken"));
}

/// Rule 9: dropping the stream aborts every attempt in flight, and none starts after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_aborts_every_attempt() {
    let probe = Probe::new();
    let counter = probe.clone();
    let tasks = (0..1000).map(move |_| {
        let probe = counter.clone();
        move || {
            let probe = probe.clone();
            async move {
                let _in_flight = probe.enter();
                pending::<()>().await;
                Ok::<(), ()>(())
            }
        }
    });
    let mut stream = Pool::new(6).spawn(tasks);
    assert!(futures::poll!(stream.next()).is_pending());
    until(|| probe.in_flight() == 6).await;
    drop(stream);
    until(|| probe.in_flight() == 0).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(probe.started(), 6, "nothing started after the drop");
}

/// Rule 11: while the consumer is busy, the lanes keep the pool full and buffer
/// finished outcomes, twice `concurrency` of them; past that it waits, losing nothing.
#[tokio::test(start_paused = true)]
async fn the_pool_stays_full_while_the_consumer_is_busy() {
    let probe = Probe::new();
    let counter = probe.clone();
    let tasks = (0..100u64).map(move |n| {
        let probe = counter.clone();
        move || {
            let probe = probe.clone();
            async move {
                let _in_flight = probe.enter();
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, ()>(n)
            }
        }
    });
    let mut stream = Pool::new(4).spawn(tasks);
    // The first four finish at 10ms; the consumer takes one and is busy until 15ms.
    stream.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Meanwhile the lanes refilled all four slots at 10ms, not waiting for the consumer.
    assert_eq!(probe.in_flight(), 4);
    assert_eq!(probe.started(), 8);

    // Busy for a second: the buffer fills with `2 × concurrency` outcomes, then the pool
    // waits for room.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut buffered = 0;
    while let Some(Some(outcome)) = futures::FutureExt::now_or_never(stream.next()) {
        outcome.unwrap();
        buffered += 1;
    }
    // Three taken with the first outcome; then at 30ms the eighth outcome waiting (twice
    // the concurrency) stopped the starts, and the three attempts started just before
    // it ended at 40ms: 3 + 8 + 3, and 4 + 4 + 4 + 3 started.
    assert_eq!(buffered, 3 + 2 * 4 + 3, "outcomes waiting");
    assert_eq!(
        probe.started(),
        15,
        "attempts started while the consumer was away"
    );
    // Nothing was lost while the consumer was away.
    assert_eq!(1 + buffered + stream.count().await, 100);
}

/// Retries go through the same backlog: LIFO order holds with one slot.
#[tokio::test(start_paused = true)]
async fn lifo_retries_run_first() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&log);
    let tasks = (0..4usize).map(move |n| {
        let log = Arc::clone(&record);
        let attempts = Arc::new(AtomicUsize::new(0));
        move || {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            log.lock().unwrap().push((n, attempt));
            async move {
                if n == 1 && attempt == 1 {
                    Err(n)
                } else {
                    Ok(n)
                }
            }
        }
    });
    let done = Pool::new(1).retry(Retry::Lifo).spawn(tasks).count().await;
    assert_eq!(done, 4);
    assert_eq!(
        *log.lock().unwrap(),
        [(0, 1), (1, 1), (1, 2), (2, 1), (3, 1)]
    );
}

/// Timeouts apply to spawned attempts too.
#[tokio::test(start_paused = true)]
async fn timeouts_end_spawned_attempts() {
    let tasks = (0..2u64).map(|n| {
        move || async move {
            if n == 1 {
                pending::<()>().await;
            }
            Ok::<_, ()>(n)
        }
    });
    let outcomes: Vec<_> = Pool::new(2)
        .retry(Retry::Fifo)
        .attempts(2)
        .timeout(Duration::from_millis(100))
        .spawn(tasks)
        .collect()
        .await;
    assert_eq!(*outcomes[0].as_ref().unwrap(), 0);
    let failure = outcomes[1].as_ref().unwrap_err();
    assert!(failure.is_timeout());
    assert_eq!(failure.attempts(), 2);
}

/// Plain futures, once each; the stream is `Send`, `Unpin` and `'static`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_futures_and_a_send_stream() {
    fn assert_send_static<T: Send + Unpin + 'static>(value: T) -> T {
        value
    }
    let futures = (1..=10u64).map(|n| async move { Ok::<_, ()>(n) });
    let stream = assert_send_static(Pool::new(3).spawn_futures(futures));
    let total = tokio::spawn(
        stream
            .map(Result::unwrap)
            .fold(0, |a, b| async move { a + b }),
    )
    .await
    .unwrap();
    assert_eq!(total, 55);
}

/// Rule 12, spawned: the stream spends tokio's budget for every outcome it yields, though
/// it takes every outcome waiting at once: within one poll of its task, a consumer gets at
/// most a budget's worth (128), and the rest on later polls.
#[tokio::test(flavor = "current_thread")]
async fn yielding_outcomes_spends_the_budget() {
    use futures::StreamExt as _;
    let tasks = (0..1000).map(|n| move || async move { Ok::<_, ()>(n) });
    let mut stream = Pool::new(1000).spawn(tasks);
    assert!(
        futures::poll!(stream.next()).is_pending(),
        "started, nothing done yet"
    );
    until(|| retry_pool::PoolStream::stats(&stream).succeeded == 1000).await;
    let mut in_one_poll = 0;
    std::future::poll_fn(|cx| {
        while let std::task::Poll::Ready(Some(outcome)) = stream.poll_next_unpin(cx) {
            outcome.unwrap();
            in_one_poll += 1;
        }
        std::task::Poll::Ready(())
    })
    .await;
    assert!(
        (1..=128).contains(&in_one_poll),
        "{in_one_poll} outcomes in one poll"
    );
    assert_eq!(in_one_poll + stream.count().await, 1000);
}

/// A first poll outside a runtime panics (tokio's message) and starts nothing; polled
/// again within a runtime, the same stream runs every task.
#[test]
fn a_first_poll_outside_a_runtime_panics_and_the_stream_still_works() {
    let tasks = (0..10u64).map(|n| move || async move { Ok::<_, ()>(n) });
    let mut stream = Pool::new(2).spawn(tasks);
    let outside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(stream.next())
    }));
    assert!(outside.is_err(), "no runtime, no start");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcomes: Vec<_> = runtime.block_on(stream.collect());
    assert_eq!(outcomes.len(), 10);
    assert!(outcomes.iter().all(Result::is_ok));
}
