//! The long-running scheduler (rules 4, 5 and 9 of ARCHITECTURE.md): priorities, reprioritising, cancelling,
//! closing, backpressure, and many submitters, in place and spawned.

use std::future::pending;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{BoxTask, Pool, Retry, Stats, SubmitError, TaskId, boxed};
use support::Probe;
use tokio::sync::Notify;

type Log = Arc<Mutex<Vec<&'static str>>>;

/// A task that logs each start under `name`, and fails its first `failures` attempts.
fn logged(log: &Log, name: &'static str, failures: u32) -> BoxTask<&'static str, &'static str> {
    let log = Arc::clone(log);
    let attempts = Arc::new(AtomicU32::new(0));
    boxed(move || {
        let log = Arc::clone(&log);
        let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            log.lock().unwrap().push(name);
            tokio::task::yield_now().await;
            if attempt <= failures {
                Err(name)
            } else {
                Ok(name)
            }
        }
    })
}

/// A task that holds its slot until `gate` is notified.
fn blocker(gate: &Arc<Notify>) -> BoxTask<&'static str, &'static str> {
    let gate = Arc::clone(gate);
    boxed(move || {
        let gate = Arc::clone(&gate);
        async move {
            gate.notified().await;
            Ok("blocker")
        }
    })
}

fn names(log: &Log) -> Vec<&'static str> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn priorities_are_honoured_when_the_pool_is_saturated() {
    let (log, gate) = (Log::default(), Arc::new(Notify::new()));
    let (handle, mut done) = Pool::new(1).scheduler();
    handle.try_submit(blocker(&gate), 0).unwrap();
    // Let the blocker take the only slot.
    assert!(futures::poll!(done.next()).is_pending());
    for (name, priority) in [("e", 5), ("b", 1), ("d", 3), ("c", 1), ("a", -1)] {
        handle.try_submit(logged(&log, name, 0), priority).unwrap();
    }
    handle.close();
    gate.notify_one();
    let finished: Vec<_> = done.map(|(_, outcome)| outcome.unwrap()).collect().await;
    assert_eq!(finished, ["blocker", "a", "b", "c", "d", "e"]);
    assert_eq!(names(&log), ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn a_reprioritised_task_jumps_the_queue() {
    let (log, gate) = (Log::default(), Arc::new(Notify::new()));
    let (handle, mut done) = Pool::new(1).scheduler();
    let running = handle.try_submit(blocker(&gate), 0).unwrap();
    assert!(futures::poll!(done.next()).is_pending());
    let _a = handle.try_submit(logged(&log, "a", 0), 5).unwrap();
    let b = handle.try_submit(logged(&log, "b", 0), 5).unwrap();
    let c = handle.try_submit(logged(&log, "c", 0), 5).unwrap();
    assert!(handle.set_priority(c, 0), "c was waiting");
    // Same priority as the others now, but behind them.
    assert!(handle.set_priority(b, 5));
    assert!(
        !handle.set_priority(running, 9),
        "the blocker is not waiting"
    );
    handle.close();
    gate.notify_one();
    done.count().await;
    assert_eq!(names(&log), ["c", "a", "b"]);
}

#[tokio::test]
async fn a_cancelled_waiting_task_never_runs() {
    let (log, gate) = (Log::default(), Arc::new(Notify::new()));
    let (handle, mut done) = Pool::new(1).scheduler();
    handle.try_submit(blocker(&gate), 0).unwrap();
    assert!(futures::poll!(done.next()).is_pending());
    let doomed = handle.try_submit(logged(&log, "doomed", 0), 0).unwrap();
    let kept = handle.try_submit(logged(&log, "kept", 0), 0).unwrap();
    assert!(handle.cancel(doomed));
    assert!(!handle.cancel(doomed), "cancelled once");
    // Reported at once, before the blocker is done.
    let (id, outcome) = done.next().await.unwrap();
    let failure = outcome.unwrap_err();
    assert_eq!(id, doomed);
    assert!(failure.is_cancelled());
    assert_eq!((failure.index(), failure.attempts()), (doomed.get(), 0));
    assert_eq!(
        failure.to_string(),
        "task #1 was cancelled after 0 attempts"
    );
    handle.close();
    gate.notify_one();
    let rest: Vec<TaskId> = done.map(|(id, _)| id).collect().await;
    assert_eq!(rest, [TaskId::clone(&rest[0]), kept]);
    assert_eq!(names(&log), ["kept"]);
}

#[tokio::test]
async fn a_cancelled_running_task_is_dropped_at_once() {
    let probe = Probe::new();
    let forever = {
        let probe = probe.clone();
        boxed(move || {
            let probe = probe.clone();
            async move {
                let _in_flight = probe.enter();
                pending::<()>().await;
                Ok::<u32, ()>(0)
            }
        })
    };
    let (handle, mut done) = Pool::new(2).retry(Retry::Lifo).scheduler();
    let stuck = handle.try_submit(forever, 0).unwrap();
    let quick = handle.try_submit(boxed(|| async { Ok(7) }), 0).unwrap();
    assert_eq!(done.next().await.unwrap(), (quick, Ok(7)));
    assert_eq!(probe.in_flight(), 1);
    assert!(handle.cancel(stuck));
    let (id, outcome) = done.next().await.unwrap();
    assert_eq!(id, stuck);
    let failure = outcome.unwrap_err();
    assert!(failure.is_cancelled() && failure.attempts() == 1);
    assert_eq!(probe.in_flight(), 0, "the attempt was dropped");
    assert!(!handle.cancel(stuck), "already finished");
    assert_eq!(handle.stats().cancelled, 1);
    drop(handle);
    assert!(done.next().await.is_none());
}

#[tokio::test]
async fn close_drains_everything_and_refuses_new_tasks() {
    let log = Log::default();
    let (handle, done) = Pool::new(3).retry(Retry::Fifo).scheduler();
    let mut ids = Vec::new();
    for (n, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .into_iter()
        .enumerate()
    {
        ids.push(
            handle
                .try_submit(logged(&log, name, (n % 2) as u32), n as i32 % 3)
                .unwrap(),
        );
    }
    handle.close();
    assert!(handle.is_closed());
    let refused = handle.try_submit(logged(&log, "late", 0), 0);
    assert!(matches!(refused, Err(SubmitError::Closed(_))));
    let back = refused.unwrap_err().into_task();
    drop(back);
    assert!(matches!(
        handle.submit(logged(&log, "late", 0), 0).await,
        Err(SubmitError::Closed(_))
    ));
    let mut finished: Vec<TaskId> = done
        .map(|(id, outcome)| {
            assert!(outcome.is_ok());
            id
        })
        .collect()
        .await;
    finished.sort();
    assert_eq!(finished, ids);
    assert_eq!(
        log.lock().unwrap().len(),
        8 + 4,
        "four tasks failed once and ran again"
    );
}

#[tokio::test]
async fn dropping_every_handle_closes_the_scheduler() {
    let (handle, done) = Pool::new(2).scheduler();
    let other = handle.clone();
    handle
        .try_submit(boxed(|| async { Ok::<_, ()>(1) }), 0)
        .unwrap();
    other.try_submit(boxed(|| async { Ok(2) }), 0).unwrap();
    drop(handle);
    drop(other);
    let total: i32 = done
        .map(|(_, outcome)| outcome.unwrap())
        .collect::<Vec<_>>()
        .await
        .iter()
        .sum();
    assert_eq!(total, 3);
}

#[tokio::test]
async fn lifo_retries_go_ahead_of_all_and_fifo_behind_their_priority() {
    for (retry, expected) in [
        (Retry::Lifo, ["a", "a", "b", "c"]),
        (Retry::Fifo, ["a", "b", "a", "c"]),
    ] {
        let (log, gate) = (Log::default(), Arc::new(Notify::new()));
        let (handle, mut done) = Pool::new(1).retry(retry).scheduler();
        handle.try_submit(blocker(&gate), 0).unwrap();
        assert!(futures::poll!(done.next()).is_pending());
        handle.try_submit(logged(&log, "a", 1), 1).unwrap();
        handle.try_submit(logged(&log, "b", 0), 1).unwrap();
        handle.try_submit(logged(&log, "c", 0), 2).unwrap();
        handle.close();
        gate.notify_one();
        done.count().await;
        assert_eq!(names(&log), expected, "{retry:?}");
    }
}

#[tokio::test]
async fn backpressure_blocks_submit_and_resumes() {
    let (log, gate) = (Log::default(), Arc::new(Notify::new()));
    let (handle, mut done) = Pool::new(1).max_waiting(2).scheduler();
    handle.try_submit(blocker(&gate), 0).unwrap();
    assert!(futures::poll!(done.next()).is_pending());
    handle.try_submit(logged(&log, "a", 0), 0).unwrap();
    handle.try_submit(logged(&log, "b", 0), 0).unwrap();
    let full = handle.try_submit(logged(&log, "c", 0), 0);
    assert!(matches!(full, Err(SubmitError::Full(_))));
    assert_eq!(handle.stats().waiting, 2);

    let waiting_submit = handle.submit(logged(&log, "c", 0), 0);
    let mut waiting_submit = std::pin::pin!(waiting_submit);
    assert!(
        futures::poll!(waiting_submit.as_mut()).is_pending(),
        "the line is full"
    );
    // The blocker ends and "a" takes the slot: room for one.
    gate.notify_one();
    assert_eq!(done.next().await.unwrap().1, Ok("blocker"));
    let c = waiting_submit.await.unwrap();

    assert_eq!(c.get(), 3);
    handle.close();
    done.count().await;
    assert_eq!(names(&log), ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_submitters_lose_nothing() {
    let (handle, done) = Pool::new(8)
        .retry(Retry::Fifo)
        .attempts(2)
        .max_waiting(64)
        .spawn_scheduler();
    let producers: Vec<_> = (0..8)
        .map(|producer| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..500u64 {
                    let task = boxed(move || async move {
                        tokio::task::yield_now().await;
                        if n % 7 == 0 { Err(n) } else { Ok(n) }
                    });
                    let priority = ((producer * 31 + n) % 5) as i32;
                    ids.push(handle.submit(task, priority).await.unwrap());
                }
                ids
            })
        })
        .collect();
    drop(handle);
    let consumer = tokio::spawn(done.collect::<Vec<_>>());
    let mut submitted = Vec::new();
    for producer in producers {
        submitted.extend(producer.await.unwrap());
    }
    let outcomes = consumer.await.unwrap();
    assert_eq!(outcomes.len(), 4000);
    let mut finished: Vec<TaskId> = outcomes.iter().map(|(id, _)| *id).collect();
    finished.sort();
    submitted.sort();
    assert_eq!(finished, submitted);
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    assert_eq!(failed, 8 * (500usize.div_ceil(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_scheduler_aborts_a_cancelled_attempt() {
    let probe = Probe::new();
    let (handle, mut done) = Pool::new(2).spawn_scheduler();
    let stuck = {
        let probe = probe.clone();
        handle
            .try_submit(
                boxed(move || {
                    let probe = probe.clone();
                    async move {
                        let _in_flight = probe.enter();
                        pending::<()>().await;
                        Ok::<u32, ()>(0)
                    }
                }),
                0,
            )
            .unwrap()
    };
    assert!(futures::poll!(done.next()).is_pending());
    tokio::time::timeout(Duration::from_secs(10), async {
        while probe.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    assert!(handle.cancel(stuck));
    let (id, outcome) = done.next().await.unwrap();
    assert_eq!(id, stuck);
    assert!(outcome.unwrap_err().is_cancelled());
    assert_eq!(probe.in_flight(), 0);
    handle.close();
    assert!(done.next().await.is_none());
}

#[tokio::test]
async fn stats_follow_the_work() {
    let (log, gate) = (Log::default(), Arc::new(Notify::new()));
    let (handle, mut done) = Pool::new(1).retry(Retry::Lifo).attempts(2).scheduler();
    handle.try_submit(blocker(&gate), 0).unwrap();
    assert!(futures::poll!(done.next()).is_pending());
    handle.try_submit(logged(&log, "flaky", 1), 0).unwrap();
    handle.try_submit(logged(&log, "broken", 5), 0).unwrap();
    let doomed = handle.try_submit(logged(&log, "doomed", 0), 0).unwrap();
    let mut expected = Stats::default();
    expected.waiting = 3;
    expected.running = 1;
    assert_eq!(handle.stats(), expected);
    handle.cancel(doomed);
    handle.close();
    gate.notify_one();
    done.count().await;
    let mut expected = Stats::default();
    expected.succeeded = 2;
    expected.failed = 1;
    expected.retried = 2;
    expected.cancelled = 1;
    assert_eq!(handle.stats(), expected);
}
