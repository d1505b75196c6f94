//! The rules of ARCHITECTURE.md for the in-place flavour, one test (or more) each.

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use futures::future::poll_fn;
use retry_pool::{Pool, Retry};
use support::Probe;

/// A task body that yields to the executor `n` times.
async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// Rule 1: never more than `concurrency` attempts in flight, and exactly that many under
/// enough work.
#[tokio::test]
async fn bound_is_reached_and_never_exceeded() {
    for concurrency in [1, 3, 8, 64] {
        let probe = Probe::new();
        let tasks = (0..500).map(|n| {
            let probe = probe.clone();
            async move || {
                let _in_flight = probe.enter();
                yields(1 + n % 7).await;
                Ok::<_, ()>(n)
            }
        });
        let done = Pool::new(concurrency).run(tasks).count().await;
        assert_eq!(done, 500);
        assert_eq!(probe.peak(), concurrency, "concurrency {concurrency}");
        assert_eq!(probe.in_flight(), 0);
    }
}

/// Rule 1 with retries: a retry takes a slot like any attempt.
#[tokio::test]
async fn bound_holds_while_retrying() {
    let probe = Probe::new();
    let tasks = (0..300).map(|n| {
        let probe = probe.clone();
        let mut failures_left = n % 3;
        async move || {
            let _in_flight = probe.enter();
            yields(1 + n % 4).await;
            if failures_left > 0 {
                failures_left -= 1;
                Err("again")
            } else {
                Ok(n)
            }
        }
    });
    let outcomes: Vec<_> = Pool::new(6)
        .retry(Retry::Lifo)
        .attempts(3)
        .run(tasks)
        .collect()
        .await;
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(probe.peak(), 6);
    assert_eq!(probe.started(), 300 + 100 + 2 * 100);
}

/// Rule 2: the input is pulled only when a slot is free, so an endless input works.
#[tokio::test]
async fn endless_input_is_pulled_lazily() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let tasks = (0usize..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let tasks = tasks.map(|n| {
        async move || {
            yields(2).await;
            Ok::<_, ()>(n)
        }
    });
    let mut stream = Pool::new(4).run(tasks);
    let first: Vec<_> = stream.by_ref().take(100).collect().await;
    assert_eq!(first.len(), 100);
    // 100 finished, and at most the 4 slots refilled behind them.
    let pulled_now = pulled.load(Ordering::SeqCst);
    assert!(
        (100..=104).contains(&pulled_now),
        "pulled {pulled_now} tasks to finish 100 with 4 slots"
    );
}

/// Rule 2: under LIFO, the input is not pulled while a retry is waiting.
#[tokio::test]
async fn lifo_runs_retries_before_pulling_input() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let pulls = Arc::clone(&log);
    let tasks = (0..3).inspect(move |&n| pulls.lock().unwrap().push(("pull", n)));
    let attempts = Arc::clone(&log);
    let tasks = tasks.map(move |n| {
        let log = Arc::clone(&attempts);
        async move || {
            log.lock().unwrap().push(("attempt", n));
            if n == 0 { Err(n) } else { Ok(n) }
        }
    });
    let outcomes: Vec<_> = Pool::new(1)
        .retry(Retry::Lifo)
        .attempts(3)
        .run(tasks)
        .collect()
        .await;
    let first = outcomes[0].as_ref().unwrap_err();
    assert_eq!((first.index(), first.attempts()), (0, 3));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            ("pull", 0),
            ("attempt", 0),
            ("attempt", 0),
            ("attempt", 0),
            ("pull", 1),
            ("attempt", 1),
            ("pull", 2),
            ("attempt", 2)
        ]
    );
}

/// Rule 3: outcomes come in completion order, not input order.
#[tokio::test(start_paused = true)]
async fn outcomes_come_in_completion_order() {
    let tasks = (0..10u64).map(|n| {
        async move || {
            tokio::time::sleep(Duration::from_millis(100 - 10 * n)).await;
            Ok::<_, ()>(n)
        }
    });
    let order: Vec<u64> = Pool::new(10).run(tasks).map(Result::unwrap).collect().await;
    assert_eq!(order, (0..10).rev().collect::<Vec<_>>());
}

/// Rule 3: a slow task does not hold back the ones behind it.
#[tokio::test(start_paused = true)]
async fn no_task_waits_on_another() {
    let start = tokio::time::Instant::now();
    let tasks = (0..20u64).map(|n| {
        async move || {
            let millis = if n == 0 { 1000 } else { 10 };
            tokio::time::sleep(Duration::from_millis(millis)).await;
            Ok::<_, ()>(n)
        }
    });
    let mut stream = Pool::new(2).run(tasks);
    for expected in 1..20 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    // Nineteen short tasks ran through one slot while the long one held the other.
    assert_eq!(start.elapsed(), Duration::from_millis(190));
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    assert!(stream.next().await.is_none());
}

/// Rule 4: every task yields exactly one item, whatever its fate.
#[tokio::test]
async fn every_task_yields_exactly_once() {
    let tasks = (0..200).map(|n| {
        let mut attempt = 0;
        async move || {
            attempt += 1;
            yields(n % 3).await;
            if n % 5 == 0 {
                panic!("task {n} is broken");
            }
            if attempt <= n % 4 { Err(n) } else { Ok(n) }
        }
    });
    let outcomes: Vec<_> = Pool::new(7)
        .retry(Retry::Fifo)
        .attempts(3)
        .run(tasks)
        .collect()
        .await;
    let mut seen: Vec<usize> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(n) => *n,
            Err(failure) => failure.index(),
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    for outcome in &outcomes {
        match outcome {
            Ok(n) => assert!(n % 5 != 0 && n % 4 < 3),
            Err(failure) if failure.is_panic() => assert_eq!(failure.index() % 5, 0),
            Err(failure) => {
                assert_eq!(failure.index() % 4, 3);
                assert_eq!(failure.attempts(), 3);
                assert_eq!(failure.error(), Some(&failure.index()));
            }
        }
    }
}

/// Records the order in which attempts start, as (task, attempt) pairs.
fn logged_tasks(
    count: usize,
    fail_once: &'static [usize],
    log: &Arc<Mutex<Vec<(usize, u32)>>>,
) -> impl Iterator<Item = impl AsyncFnMut() -> Result<usize, usize>> {
    (0..count).map(move |n| {
        let log = Arc::clone(log);
        let mut attempt = 0;
        async move || {
            attempt += 1;
            log.lock().unwrap().push((n, attempt));
            yields(1).await;
            if attempt == 1 && fail_once.contains(&n) {
                Err(n)
            } else {
                Ok(n)
            }
        }
    })
}

/// The (task, attempt) start order of five tasks on one slot, `fail_once` failing once.
async fn start_order(retry: Retry, fail_once: &'static [usize]) -> Vec<(usize, u32)> {
    let log = Arc::default();
    let succeeded = Pool::new(1)
        .retry(retry)
        .run(logged_tasks(5, fail_once, &log))
        .filter(|o| std::future::ready(o.is_ok()))
        .count()
        .await;
    assert_eq!(succeeded, 5);
    log.lock().unwrap().clone()
}

/// Rule 5: under LIFO, a failed task runs again before anything else that is waiting.
#[tokio::test]
async fn lifo_retries_run_first() {
    assert_eq!(
        start_order(Retry::Lifo, &[1, 3]).await,
        [(0, 1), (1, 1), (1, 2), (2, 1), (3, 1), (3, 2), (4, 1)]
    );
}

/// Rule 5: under FIFO, a failed task goes behind the rest of the input, in the order of
/// failure.
#[tokio::test]
async fn fifo_retries_go_to_the_back() {
    assert_eq!(
        start_order(Retry::Fifo, &[3, 1]).await,
        [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (1, 2), (3, 2)]
    );
}

/// Rule 5, FIFO: retries queue in the order the failures happened, not the input order.
#[tokio::test(start_paused = true)]
async fn fifo_retries_follow_failure_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    // Task 1 fails at 10ms, task 0 at 20ms, task 2 runs on until 40ms.
    let tasks = (0..3u64).map(|n| {
        let log = Arc::clone(&log);
        let mut attempt = 0;
        async move || {
            attempt += 1;
            log.lock().unwrap().push((n, attempt));
            if attempt > 1 {
                return Ok(n);
            }
            let millis = [20, 10, 30][n as usize];
            tokio::time::sleep(Duration::from_millis(millis)).await;
            if n == 2 { Ok(n) } else { Err(n) }
        }
    });
    let done: Vec<u64> = Pool::new(2)
        .retry(Retry::Fifo)
        .run(tasks)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(done, [1, 0, 2]);
    let log = log.lock().unwrap().clone();
    assert_eq!(log, [(0, 1), (1, 1), (2, 1), (1, 2), (0, 2)]);
}

/// Rule 8: a panicking attempt ends its task with `is_panic`, is not retried, and every
/// other task carries on.
#[tokio::test]
async fn a_panic_ends_only_its_own_task() {
    let probe = Probe::new();
    let tasks = (0..10).map(|n| {
        let probe = probe.clone();
        async move || {
            let _in_flight = probe.enter();
            yields(1).await;
            if n == 4 {
                panic!("task four is broken");
            }
            Err::<(), _>(n)
        }
    });
    let outcomes: Vec<_> = Pool::new(3)
        .retry(Retry::Lifo)
        .attempts(2)
        .run(tasks)
        .collect()
        .await;
    assert_eq!(outcomes.len(), 10);
    let panicked: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .filter(|f| f.is_panic())
        .collect();
    assert_eq!(panicked.len(), 1);
    assert_eq!(panicked[0].index(), 4);
    assert_eq!(panicked[0].attempts(), 1, "a panic is not retried");
    assert_eq!(panicked[0].panic_message(), Some("task four is broken"));
    assert!(panicked[0].error().is_none());
    // The nine others used both of their attempts.
    assert_eq!(probe.started(), 9 * 2 + 1);
    assert_eq!(probe.in_flight(), 0, "the panicked attempt was dropped");
}

/// Rule 9: dropping the stream drops every attempt in flight at once, and nothing starts
/// after.
#[tokio::test]
async fn dropping_the_stream_drops_every_attempt() {
    let probe = Probe::new();
    let tasks = (0..100).map(|_| {
        let probe = probe.clone();
        async move || {
            let _in_flight = probe.enter();
            pending::<()>().await;
            Ok::<(), ()>(())
        }
    });
    let mut stream = Pool::new(5).run(tasks);
    assert!(futures::poll!(stream.next()).is_pending());
    assert_eq!(probe.in_flight(), 5);
    drop(stream);
    assert_eq!(probe.in_flight(), 0);
    assert_eq!(probe.started(), 5);
}

/// Rule 10: every poll refills free slots before it returns an outcome, so attempts keep
/// running while the consumer is busy with what it got.
#[tokio::test(start_paused = true)]
async fn slots_are_refilled_before_an_outcome_is_returned() {
    for concurrency in [1, 3] {
        let probe = Probe::new();
        let tasks = (0..10u64).map(|n| {
            let probe = probe.clone();
            async move || {
                let _in_flight = probe.enter();
                tokio::time::sleep(Duration::from_millis(10 * (n + 1))).await;
                Ok::<_, ()>(n)
            }
        });
        let mut stream = Pool::new(concurrency).run(tasks);
        for n in 0..10 - concurrency {
            assert_eq!(stream.next().await.unwrap().unwrap(), n as u64);
            // The consumer is busy with task n: its slot already runs task n + concurrency.
            assert_eq!(probe.in_flight(), concurrency);
            assert_eq!(probe.started(), n + concurrency + 1);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Rule 10: a pool of 0 slots is refused at once, with a message that says why.
#[test]
#[should_panic(expected = "concurrency must be at least 1")]
fn zero_concurrency_is_refused() {
    let _ = Pool::new(0);
}

/// Rule 12: a pool of always-ready tasks spends tokio's budget, so a task beside it on a
/// single-threaded runtime still runs.
#[tokio::test(flavor = "current_thread")]
async fn always_ready_tasks_do_not_starve_a_neighbour() {
    let neighbour_turns = Arc::new(AtomicUsize::new(0));
    let turns = Arc::clone(&neighbour_turns);
    let neighbour = tokio::spawn(async move {
        loop {
            turns.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    });
    let tasks = (0..20_000).map(|n| async move || Ok::<_, ()>(n));
    let mut stream = Pool::new(16).run(tasks);
    let mut done = 0;
    while let Some(outcome) = stream.next().await {
        outcome.unwrap();
        done += 1;
    }
    // Read before this task yields again: only turns taken during the drain count.
    let turns = neighbour_turns.load(Ordering::SeqCst);
    neighbour.abort();
    assert_eq!(done, 20_000);
    assert!(turns >= 20_000 / 128 / 2, "the neighbour ran {turns} times");
}

/// Rule 12: a poll does a bounded amount of work, even when tasks wake themselves forever.
#[tokio::test]
async fn a_poll_returns_when_tasks_wake_themselves_forever() {
    let busy = || {
        poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::<Result<(), ()>>::Pending
        })
    };
    let tasks = (0..4).map(|_| move || busy());
    let mut stream = Pool::new(4).run(tasks);
    for _ in 0..3 {
        assert!(futures::poll!(stream.next()).is_pending());
    }
}

/// Send and Unpin: the stream of `Send` tasks can move to another thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_of_send_tasks_is_send() {
    fn assert_send_unpin<T: Send + Unpin>(value: T) -> T {
        value
    }
    let tasks = (0..50u32).map(|n| {
        async move || {
            yields(1).await;
            Ok::<_, ()>(n)
        }
    });
    let stream = assert_send_unpin(Pool::new(4).run(tasks));
    let sum = tokio::spawn(
        stream
            .map(Result::unwrap)
            .fold(0, |a, b| async move { a + b }),
    )
    .await
    .unwrap();
    assert_eq!(sum, (0..50).sum::<u32>());
}

/// Nothing runs until the stream is first polled.
#[tokio::test]
async fn nothing_runs_before_the_first_poll() {
    let probe = Probe::new();
    let tasks = (0..3).map(|n| {
        let probe = probe.clone();
        async move || {
            let _in_flight = probe.enter();
            Ok::<_, ()>(n)
        }
    });
    let stream = Pool::new(2).run(tasks);
    assert_eq!(probe.started(), 0);
    assert_eq!(stream.count().await, 3);
    assert_eq!(probe.started(), 3);
}

/// Plain futures run once each; an empty input ends at once.
#[tokio::test]
async fn plain_futures_and_empty_inputs() {
    let futures = (0..5).map(|n| async move { Ok::<_, ()>(n) });
    let mut got: Vec<i32> = Pool::new(2)
        .run_futures(futures)
        .map(Result::unwrap)
        .collect()
        .await;
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4]);

    type Task = fn() -> std::future::Ready<Result<(), ()>>;
    assert_eq!(Pool::new(3).run(Vec::<Task>::new()).count().await, 0);
}

/// A pool that retries refuses plain futures instead of giving them one silent attempt.
#[test]
#[should_panic(expected = "cannot be started again")]
fn plain_futures_are_refused_by_a_retrying_pool() {
    let futures = (0..5).map(|n| async move { Ok::<_, ()>(n) });
    let _ = Pool::new(2).retry(Retry::Lifo).run_futures(futures);
}

/// Tasks from a stream are pulled as slots free up, and may arrive late.
#[tokio::test(start_paused = true)]
async fn tasks_from_a_stream() {
    let tasks = futures::stream::iter(0..6u64).then(|n| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        move || async move { Ok::<_, ()>(n * 2) }
    });
    let got: Vec<u64> = Pool::new(2)
        .run_stream(tasks)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(got, [0, 2, 4, 6, 8, 10]);
}

/// A timeout drops the attempt, counts it as failed, and retries it.
#[tokio::test(start_paused = true)]
async fn timed_out_attempts_are_retried() {
    let tasks = (0..3u64).map(|n| {
        let mut attempt = 0;
        async move || {
            attempt += 1;
            if n == 1 && attempt < 3 || n == 2 {
                pending::<()>().await;
            }
            Ok::<_, ()>(n)
        }
    });
    let outcomes: Vec<_> = Pool::new(3)
        .retry(Retry::Lifo)
        .attempts(3)
        .timeout(Duration::from_secs(1))
        .run(tasks)
        .collect()
        .await;
    assert_eq!(outcomes[0].as_ref().unwrap(), &0);
    assert_eq!(outcomes[1].as_ref().unwrap(), &1);
    let failure = outcomes[2].as_ref().unwrap_err();
    assert!(failure.is_timeout());
    assert_eq!((failure.index(), failure.attempts()), (2, 3));
}

/// In place, tasks need be neither `Send` nor `'static`: they may borrow and use `Rc`.
#[tokio::test]
async fn tasks_may_borrow_and_be_local() {
    let data = [1u32, 2, 3, 4];
    let shared = std::rc::Rc::new(10u32);
    let tasks = data.iter().map(|n| {
        let shared = std::rc::Rc::clone(&shared);
        async move || {
            yields(1).await;
            Ok::<_, ()>(n * *shared)
        }
    });
    let sum = Pool::new(2)
        .run(tasks)
        .map(Result::unwrap)
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(sum, 100);
}

/// A task made by a function returning `impl AsyncFnMut`: what `run` takes.
fn opaque_task(n: u32) -> impl AsyncFnMut() -> Result<u32, ()> {
    async move || Ok(n * 2)
}

#[tokio::test]
async fn tasks_may_come_from_functions_returning_impl_async_fn_mut() {
    let total: u32 = Pool::new(2)
        .run((1..=3).map(opaque_task))
        .map(Result::unwrap)
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(total, 12);
}
