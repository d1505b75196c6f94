//! Rule 6: a task waiting out its backoff holds no slot, and comes back when it is over;
//! in place, and spawned (where every lane may have ended meanwhile).
//! On tokio's paused clock, so every time below is exact.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{Backoff, BoxTask, Failure, Pool, Retry, boxed};
use tokio::time::Instant;

/// Starts of attempts: (task, attempt, milliseconds since the test began).
type Log = Arc<Mutex<Vec<(usize, u32, u128)>>>;

/// Attempt `attempt` of task `n`, started now: logged, then it takes `millis` and fails
/// while `attempt <= failures[n]`.
fn attempt(
    n: usize,
    attempt: u32,
    (failures, millis): (&'static [u32], u64),
    log: &Log,
    start: Instant,
) -> impl Future<Output = Result<usize, usize>> + Send + 'static + use<> {
    let now = start.elapsed().as_millis();
    log.lock().unwrap().push((n, attempt, now));
    async move {
        if millis > 0 {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        if attempt <= failures[n] {
            Err(n)
        } else {
            Ok(n)
        }
    }
}

/// Tasks that take `millis` each and fail their first `failures[n]` attempts.
fn tasks(
    failures: &'static [u32],
    millis: u64,
    log: &Log,
    start: Instant,
) -> impl Iterator<Item = impl AsyncFnMut() -> Result<usize, usize>> {
    (0..failures.len()).map(move |n| {
        let log = Arc::clone(log);
        let mut attempts = 0;
        async move || {
            attempts += 1;
            attempt(n, attempts, (failures, millis), &log, start).await
        }
    })
}

/// Spawned too: there, every lane has ended for want of work by the time the retry is
/// due, and it still starts the moment its backoff is over.
#[tokio::test(start_paused = true)]
async fn a_task_in_backoff_holds_no_slot() {
    for spawn in [false, true] {
        let log = Log::default();
        let start = Instant::now();
        // One slot. Task 0 fails at 10ms; while it waits 100ms, tasks 1..3 use the slot.
        let pool = Pool::new(1)
            .retry(Retry::Lifo)
            .backoff(Backoff::fixed(Duration::from_millis(100)));
        let outcomes = outcomes(pool, spawn, (&[1, 0, 0, 0], 10), &log, start).await;
        let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(outcomes, [1, 2, 3, 0], "spawn {spawn}");
        let log = log.lock().unwrap().clone();
        // The retry of task 0 is due at 110ms, while task 3 (started at 30ms) is long
        // done; the slot sat free from 40ms to 110ms because nothing else was waiting.
        assert_eq!(
            log,
            [(0, 1, 0), (1, 1, 10), (2, 1, 20), (3, 1, 30), (0, 2, 110)],
            "spawn {spawn}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn lifo_runs_a_due_retry_before_the_input() {
    let log = Log::default();
    let start = Instant::now();
    // Task 0 fails at 10ms and is due at 35ms: it runs then, ahead of tasks 4 and 5.
    let done = Pool::new(1)
        .retry(Retry::Lifo)
        .backoff(Backoff::fixed(Duration::from_millis(25)))
        .run(tasks(&[1, 0, 0, 0, 0, 0], 10, &log, start))
        .count()
        .await;
    assert_eq!(done, 6);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            (0, 1, 0),
            (1, 1, 10),
            (2, 1, 20),
            (3, 1, 30),
            (0, 2, 40),
            (4, 1, 50),
            (5, 1, 60)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_doubles_up_to_its_cap() {
    let log = Log::default();
    let start = Instant::now();
    let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(300))
        .without_jitter();
    let outcome = Pool::new(1)
        .retry(Retry::Lifo)
        .attempts(5)
        .backoff(backoff)
        .run(tasks(&[10], 0, &log, start))
        .next()
        .await
        .unwrap();
    assert_eq!(outcome.unwrap_err().attempts(), 5);
    let starts: Vec<u128> = log.lock().unwrap().iter().map(|&(_, _, t)| t).collect();
    // Waits of 100, 200, then 300 (capped), 300.
    assert_eq!(starts, [0, 100, 300, 600, 900]);
}

#[tokio::test(start_paused = true)]
async fn jitter_keeps_each_delay_between_half_and_all_of_it() {
    for _ in 0..20 {
        let log = Log::default();
        let start = Instant::now();
        let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10));
        Pool::new(1)
            .retry(Retry::Lifo)
            .attempts(4)
            .backoff(backoff)
            .run(tasks(&[10], 0, &log, start))
            .count()
            .await;
        let starts: Vec<u128> = log.lock().unwrap().iter().map(|&(_, _, t)| t).collect();
        let waits: Vec<u128> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        for (wait, nominal) in waits.iter().zip([100, 200, 400]) {
            assert!(
                (nominal / 2..=nominal).contains(wait),
                "waited {wait}ms where {nominal}ms was due: {waits:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn fifo_with_a_backoff_serves_an_endless_input() {
    let start = Instant::now();
    let log = Log::default();
    let record = Arc::clone(&log);
    // Every tenth task fails once; the input never ends.
    let endless = (0usize..).map(move |n| {
        let log = Arc::clone(&record);
        let mut attempt = 0;
        async move || {
            attempt += 1;
            log.lock()
                .unwrap()
                .push((n, attempt, start.elapsed().as_millis()));
            tokio::time::sleep(Duration::from_millis(1)).await;
            if n % 10 == 0 && attempt == 1 {
                Err(n)
            } else {
                Ok(n)
            }
        }
    });
    let mut stream = Pool::new(2)
        .retry(Retry::Fifo)
        .backoff(Backoff::fixed(Duration::from_millis(5)))
        .run(endless);
    let mut retried = Vec::new();
    let five_retries = async {
        while retried.len() < 5 {
            let n = stream.next().await.unwrap().unwrap();
            if n % 10 == 0 {
                retried.push(n);
            }
        }
    };
    // Were retries to wait for the end of the input, they would never run.
    tokio::time::timeout(Duration::from_secs(10), five_retries)
        .await
        .expect("retries ran while the input went on");
    assert_eq!(retried, [0, 10, 20, 30, 40]);
    let log = log.lock().unwrap();
    let (_, _, retry_of_0) = log.iter().find(|&&(n, a, _)| (n, a) == (0, 2)).unwrap();
    assert_eq!(*retry_of_0, 6, "failed at 1ms, due 5ms later");
}

#[test]
fn nominal_delays_saturate_at_the_cap() {
    let backoff = Backoff::exponential(Duration::from_millis(50), Duration::from_secs(5));
    assert_eq!(backoff.nominal_delay(1), Duration::from_millis(50));
    assert_eq!(backoff.nominal_delay(4), Duration::from_millis(400));
    assert_eq!(backoff.nominal_delay(8), Duration::from_secs(5));
    assert_eq!(backoff.nominal_delay(u32::MAX), Duration::from_secs(5));
    let huge = Backoff::exponential(Duration::MAX, Duration::MAX);
    assert_eq!(huge.nominal_delay(u32::MAX), Duration::MAX);
}

/// In place and spawned.
#[tokio::test(start_paused = true)]
async fn the_stream_ends_only_after_the_last_retry() {
    for spawn in [false, true] {
        let log = Log::default();
        let start = Instant::now();
        let pool = Pool::new(4)
            .retry(Retry::Fifo)
            .attempts(2)
            .backoff(Backoff::fixed(Duration::from_secs(60)));
        let outcomes = outcomes(pool, spawn, (&[1, 1], 0), &log, start).await;
        assert_eq!(outcomes.len(), 2, "spawn {spawn}");
        assert!(outcomes.iter().all(Result::is_ok), "spawn {spawn}");
        assert_eq!(start.elapsed(), Duration::from_secs(60), "spawn {spawn}");
    }
}

/// The tasks of [`tasks`] as closures returning futures, for the spawned flavour.
fn spawned_tasks(
    failures: &'static [u32],
    millis: u64,
    log: &Log,
    start: Instant,
) -> impl Iterator<Item = BoxTask<usize, usize>> + use<> {
    let log = Arc::clone(log);
    (0..failures.len()).map(move |n| {
        let log = Arc::clone(&log);
        let mut attempts = 0;
        boxed(move || {
            attempts += 1;
            attempt(n, attempts, (failures, millis), &log, start)
        })
    })
}

/// Every outcome of the tasks `(failures, millis)` through `pool`: in place, or spawned.
async fn outcomes(
    pool: Pool,
    spawn: bool,
    (failures, millis): (&'static [u32], u64),
    log: &Log,
    start: Instant,
) -> Vec<Result<usize, Failure<usize>>> {
    match spawn {
        true => {
            let tasks = spawned_tasks(failures, millis, log, start);
            pool.spawn(tasks).collect().await
        }
        false => {
            pool.run(tasks(failures, millis, log, start))
                .collect()
                .await
        }
    }
}
