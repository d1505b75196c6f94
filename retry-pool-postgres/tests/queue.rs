//! The queue against the real PostgreSQL (no mock): order, retries across workers,
//! backoff, attempts, `retry_if` and `retry_after`, reprioritising, cancelling, exactly
//! one outcome, fencing, poison.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::TestDb;
use futures::StreamExt;
use retry_pool_postgres::{
    Backoff, Cancel, Error, Job, Outcome, Retry, TaskId, TaskState, Worker, WorkerStream, sqlx,
};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// The next `n` outcomes of `stream`, failing the test after 10s.
async fn take<T, E>(stream: &mut WorkerStream<T, E>, n: usize) -> Vec<Outcome<T, E>> {
    let mut outcomes = Vec::new();
    while outcomes.len() < n {
        let next = timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an outcome within 10s")
            .expect("the stream goes on");
        outcomes.push(next.expect("no database error"));
    }
    outcomes
}

/// Stops the worker and checks that it yields nothing more.
async fn finish<T, E>(mut stream: WorkerStream<T, E>) {
    stream.stop();
    let rest = timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream ends after stop");
    assert!(rest.is_none(), "no outcome after the expected ones");
}

/// A handler that logs each payload it runs and succeeds with it.
fn logging(
    log: &Log,
) -> impl Fn(Job<String>) -> std::future::Ready<Result<String, String>> + Send + Sync + use<> {
    let log = Arc::clone(log);
    move |job: Job<String>| {
        log.lock().unwrap().push(job.payload.clone());
        std::future::ready(Ok(job.payload))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_by_priority_then_push_order() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    queue.push("q", "low", 5).await.unwrap();
    queue
        .push_many("q", [("a", 1), ("b", 1), ("c", 1)])
        .await
        .unwrap();
    queue.push("q", "urgent", -3).await.unwrap();
    queue.push("other", "elsewhere", -100).await.unwrap();

    let ran = log();
    let mut worker = Worker::new(queue, "q")
        .concurrency(1)
        .run(logging(&ran))
        .unwrap();
    let outcomes = take(&mut worker, 5).await;
    assert!(outcomes.iter().all(|outcome| outcome.result.is_ok()));
    assert_eq!(entries(&ran), ["urgent", "a", "b", "c", "low"]);
    finish(worker).await;
    // Another queue's task is not this worker's.
    let stats = queue.stats("other").await.unwrap();
    assert_eq!((stats.available, stats.succeeded), (1, 0));
    db.finish().await;
}

/// Worker A fails `a` once (while `d`, more urgent, is pushed), and stops; worker B, a
/// different owner, then runs everything: the order B sees is the retry order.
async fn order_after_one_failure(retry: Retry) -> Vec<String> {
    let db = TestDb::new().await;
    let queue = &db.queue;
    queue
        .push_many("q", [("a", 0), ("b", 0), ("c", 0)])
        .await
        .unwrap();
    let (started, mut has_started) = mpsc::unbounded_channel();
    let gate = Arc::new(Notify::new());
    let handler = {
        let gate = Arc::clone(&gate);
        move |job: Job<String>| {
            let (started, gate) = (started.clone(), Arc::clone(&gate));
            async move {
                started.send(job.payload.clone()).unwrap();
                gate.notified().await;
                Err::<(), _>(format!("{} is flaky", job.payload))
            }
        }
    };
    let mut a = Worker::new(queue, "q")
        .concurrency(1)
        .retry(retry)
        .attempts(3)
        .run(handler)
        .unwrap();
    assert_eq!(has_started.recv().await.unwrap(), "a");
    queue.push("q", "d", -10).await.unwrap();
    a.stop();
    gate.notify_one();
    assert!(
        timeout(Duration::from_secs(10), a.next())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(a.stats().retried, 1);
    assert_eq!(db.task(TaskId(1)).await.state, TaskState::Available);

    let ran = log();
    let mut b = Worker::new(queue, "q")
        .concurrency(1)
        .retry(retry)
        .attempts(3)
        .run(logging(&ran))
        .unwrap();
    let outcomes = take(&mut b, 4).await;
    let a_outcome = outcomes.iter().find(|o| o.id == TaskId(1)).unwrap();
    assert_eq!(a_outcome.attempts, 2, "one attempt on A, one on B");
    finish(b).await;
    db.finish().await;
    entries(&ran)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifo_retry_runs_first_on_another_worker_ahead_of_every_priority() {
    assert_eq!(
        order_after_one_failure(Retry::Lifo).await,
        ["a", "d", "b", "c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_retry_goes_behind_its_priority_on_another_worker() {
    assert_eq!(
        order_after_one_failure(Retry::Fifo).await,
        ["d", "b", "c", "a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifo_runs_the_latest_failure_first() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    queue
        .push_many("q", [("a", 0), ("b", 0), ("c", 0)])
        .await
        .unwrap();
    let (started, mut has_started) = mpsc::unbounded_channel();
    let gates: Arc<HashMap<&str, Notify>> =
        Arc::new([("a", Notify::new()), ("b", Notify::new())].into());
    let handler = {
        let gates = Arc::clone(&gates);
        move |job: Job<String>| {
            let (started, gates) = (started.clone(), Arc::clone(&gates));
            async move {
                started.send(()).unwrap();
                gates[job.payload.as_str()].notified().await;
                Err::<(), _>("flaky")
            }
        }
    };
    let mut first = Worker::new(queue, "q")
        .concurrency(2)
        .retry(Retry::Lifo)
        .attempts(3)
        .run(handler)
        .unwrap();
    has_started.recv().await.unwrap();
    has_started.recv().await.unwrap();
    first.stop();
    gates["b"].notify_one(); // b fails first ...
    db.eventually(Duration::from_secs(10), "b's retry", || async {
        first.stats().retried == 1
    })
    .await;
    gates["a"].notify_one(); // ... then a: a is the latest failure
    assert!(
        timeout(Duration::from_secs(10), first.next())
            .await
            .unwrap()
            .is_none()
    );

    let ran = log();
    let mut second = Worker::new(queue, "q")
        .concurrency(1)
        .retry(Retry::Lifo)
        .run(logging(&ran))
        .unwrap();
    take(&mut second, 3).await;
    assert_eq!(entries(&ran), ["a", "b", "c"]);
    finish(second).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_delays_the_retry_and_holds_no_slot() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    queue.push_many("q", [("a", 0), ("b", 0)]).await.unwrap();
    let starts: Arc<Mutex<Vec<(String, u32, Instant)>>> = Arc::default();
    let handler = {
        let starts = Arc::clone(&starts);
        move |job: Job<String>| {
            starts
                .lock()
                .unwrap()
                .push((job.payload.clone(), job.attempt, Instant::now()));
            let failed = job.payload == "a" && job.attempt == 1;
            std::future::ready(if failed { Err("flaky") } else { Ok(()) })
        }
    };
    let backoff = Duration::from_millis(400);
    let mut worker = Worker::new(queue, "q")
        .concurrency(1)
        .retry(Retry::Lifo)
        .attempts(2)
        .backoff(Backoff::fixed(backoff))
        .run(handler)
        .unwrap();
    take(&mut worker, 2).await;
    let starts = starts.lock().unwrap().clone();
    let order: Vec<_> = starts
        .iter()
        .map(|(name, attempt, _)| (name.as_str(), *attempt))
        .collect();
    assert_eq!(
        order,
        [("a", 1), ("b", 1), ("a", 2)],
        "b ran while a backed off"
    );
    let waited = starts[2].2 - starts[0].2;
    assert!(
        waited >= backoff,
        "a waited {waited:?}, less than its backoff"
    );
    assert!(
        waited < backoff + Duration::from_millis(900),
        "a waited {waited:?}: woken late"
    );
    finish(worker).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_timeouts_panics_and_bad_payloads() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let fail = queue.push("q", "fail", 0).await.unwrap();
    let slow = queue.push("q", "slow", 0).await.unwrap();
    let panics = queue.push("q", "panic", 0).await.unwrap();
    let bad = queue.push("q", &42, 0).await.unwrap();
    let handler = |job: Job<String>| async move {
        match job.payload.as_str() {
            "fail" => Err(format!("boom on attempt {}", job.attempt)),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            }
            "panic" => panic!("a bug"),
            _ => Ok(()),
        }
    };
    let mut worker = Worker::new(queue, "q")
        .concurrency(4)
        .retry(Retry::Fifo)
        .attempts(3)
        .timeout(Duration::from_millis(200))
        .run(handler)
        .unwrap();
    let outcomes: HashMap<TaskId, _> = take(&mut worker, 4)
        .await
        .into_iter()
        .map(|outcome| (outcome.id, outcome.result.unwrap_err()))
        .collect();

    assert_eq!(outcomes[&fail].attempts(), 3);
    assert_eq!(outcomes[&fail].error().unwrap(), "boom on attempt 3");
    assert!(outcomes[&slow].is_timeout() && outcomes[&slow].attempts() == 3);
    assert!(
        outcomes[&panics].is_panic() && outcomes[&panics].attempts() == 1,
        "never retried"
    );
    assert_eq!(outcomes[&panics].panic_message(), Some("a bug"));
    assert!(outcomes[&bad].is_json() && outcomes[&bad].attempts() == 1);

    let recorded = db.task(fail).await;
    assert_eq!((recorded.state, recorded.attempts), (TaskState::Failed, 3));
    assert_eq!(recorded.last_error.as_deref(), Some("boom on attempt 3"));
    assert_eq!(
        db.task(slow).await.last_error.as_deref(),
        Some("timed out after 200ms")
    );
    assert_eq!(
        db.task(panics).await.last_error.as_deref(),
        Some("panicked: a bug")
    );
    assert!(
        db.task(bad)
            .await
            .last_error
            .unwrap()
            .contains("payload does not deserialize")
    );
    finish(worker).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_if_ends_a_refused_error_at_once_and_says_it_is_permanent() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let missing = queue.push("q", "missing", 0).await.unwrap();
    let busy = queue.push("q", "busy", 0).await.unwrap();
    let late = queue.push("q", "late", 0).await.unwrap();
    let handler = |job: Job<String>| async move {
        Err::<(), _>(match (job.payload.as_str(), job.attempt) {
            ("missing", _) => "404 missing".to_owned(),
            ("late", 3) => "404 gone by the last attempt".to_owned(),
            (_, attempt) => format!("503 busy on attempt {attempt}"),
        })
    };
    let mut worker = Worker::new(queue, "q")
        .concurrency(3)
        .retry(Retry::Fifo)
        .attempts(3)
        .retry_if(|error: &String| !error.starts_with("404"))
        .run(handler)
        .unwrap();
    let failures: HashMap<TaskId, _> = take(&mut worker, 3)
        .await
        .into_iter()
        .map(|outcome| (outcome.id, outcome.result.unwrap_err()))
        .collect();

    // Refused with attempts left: over at once, and said so on the stream and in the row.
    let refused = &failures[&missing];
    assert!(
        refused.is_permanent() && refused.attempts() == 1,
        "{refused}"
    );
    assert_eq!(refused.error().unwrap(), "404 missing");
    assert!(refused.to_string().contains("not retried"), "{refused}");
    let row = db.task(missing).await;
    assert_eq!(
        (row.state, row.attempts, row.max_attempts, row.permanent),
        (TaskState::Failed, 1, 3, true)
    );
    assert_eq!(row.last_error.as_deref(), Some("404 missing"));
    // A transient error uses its attempts, and is not permanent.
    let transient = &failures[&busy];
    assert!(
        !transient.is_permanent() && transient.attempts() == 3,
        "{transient}"
    );
    let row = db.task(busy).await;
    assert_eq!(
        (row.state, row.attempts, row.permanent),
        (TaskState::Failed, 3, false)
    );
    // Refused on the last attempt, as in the pool: the task used up its attempts.
    assert!(!failures[&late].is_permanent() && failures[&late].attempts() == 3);
    assert!(!db.task(late).await.permanent);
    assert_eq!(
        worker.stats().retried,
        4,
        "busy and late retried twice each"
    );
    finish(worker).await;
    db.finish().await;
}

/// A 429 or a 503, with the server's `Retry-After` when it sent one.
struct Busy {
    retry_after: Option<Duration>,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "busy, retry after {:?}", self.retry_after)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_delays_the_retry_by_the_hint_and_none_takes_the_backoff() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let hinted = queue.push("q", "hinted", 0).await.unwrap();
    let plain = queue.push("q", "plain", 0).await.unwrap();
    let (hint, backoff) = (Duration::from_millis(300), Duration::from_secs(2));
    // Each task's first start, read from its row by the failing attempt itself (the row
    // keeps only the latest start).
    let first_starts: Arc<Mutex<HashMap<TaskId, DateTime<Utc>>>> = Arc::default();
    let handler = {
        let (pool, first_starts) = (queue.pool().clone(), Arc::clone(&first_starts));
        move |job: Job<String>| {
            let (pool, first_starts) = (pool.clone(), Arc::clone(&first_starts));
            async move {
                if job.attempt > 1 {
                    return Ok(());
                }
                let started = sqlx::query_scalar("SELECT started_at FROM rp_tasks WHERE id = $1")
                    .bind(job.id.0)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                first_starts.lock().unwrap().insert(job.id, started);
                Err(Busy {
                    retry_after: (job.payload == "hinted").then_some(hint),
                })
            }
        }
    };
    let mut worker = Worker::new(queue, "q")
        .concurrency(2)
        .retry(Retry::Lifo)
        .attempts(2)
        .backoff(Backoff::fixed(backoff))
        .retry_after(|busy: &Busy| busy.retry_after)
        .run(handler)
        .unwrap();
    let outcomes = take(&mut worker, 2).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok() && o.attempts == 2));
    let first_starts = first_starts.lock().unwrap().clone();
    // From the rows: `run_at` is the failure plus the delay, and the second attempt
    // started once `run_at` passed.
    let waited = async |id: TaskId| {
        let first = first_starts[&id];
        let row = db.task(id).await;
        let second = row.started_at.unwrap();
        assert!(second >= row.run_at, "claimed before its run_at");
        (
            (row.run_at - first).to_std().unwrap(),
            (second - first).to_std().unwrap(),
        )
    };
    let (until_run_at, until_second) = waited(hinted).await;
    assert!(
        until_run_at >= hint,
        "run_at only {until_run_at:?} after the first start"
    );
    assert!(
        until_second >= hint && until_second < backoff - Duration::from_millis(500),
        "the hinted retry started {until_second:?} after the first attempt, not by the hint"
    );
    let (until_run_at, until_second) = waited(plain).await;
    assert!(
        until_run_at >= backoff && until_second >= backoff,
        "no hint: the backoff ({until_run_at:?}, {until_second:?})"
    );
    finish(worker).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_work_are_refused_with_what_to_change() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let noop = |_: Job<()>| std::future::ready(Ok::<_, String>(()));
    let refused = |result: Result<WorkerStream<(), String>, Error>| match result {
        Err(Error::Settings(message)) => message,
        other => panic!("expected a settings error, got {other:?}"),
    };
    let message = refused(Worker::new(queue, "q").concurrency(0).run(noop));
    assert!(message.contains("concurrency"), "{message}");
    let message = refused(Worker::new(queue, "q").attempts(2).run(noop));
    assert!(message.contains("Retry::Lifo"), "{message}");
    let message = refused(
        Worker::new(queue, "q")
            .lease(Duration::from_millis(10))
            .run(noop),
    );
    assert!(message.contains("lease"), "{message}");
    // Like `Pool`, `retry_if` and `retry_after` decide nothing without a retry policy.
    let message = refused(
        Worker::new(queue, "q")
            .retry_if(|_: &String| false)
            .run(noop),
    );
    assert!(
        message.contains("retry_if") && message.contains("Retry::Lifo"),
        "{message}"
    );
    let message = refused(
        Worker::new(queue, "q")
            .attempts(1)
            .retry_after(|_: &String| Some(Duration::from_secs(1)))
            .run(noop),
    );
    assert!(
        message.contains("retry_after") && message.contains("Retry::Lifo"),
        "{message}"
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprioritising_a_waiting_task_changes_its_turn() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let ids = queue
        .push_many("q", [("a", 0), ("b", 0), ("c", 0)])
        .await
        .unwrap();
    assert!(queue.set_priority(ids[2], -1).await.unwrap());
    assert!(queue.set_priority(ids[0], 1).await.unwrap());
    assert_eq!(db.task(ids[2]).await.priority, -1);
    let ran = log();
    let mut worker = Worker::new(queue, "q")
        .concurrency(1)
        .run(logging(&ran))
        .unwrap();
    take(&mut worker, 3).await;
    assert_eq!(entries(&ran), ["c", "b", "a"]);
    assert!(
        !queue.set_priority(ids[0], 5).await.unwrap(),
        "a finished task keeps its priority"
    );
    finish(worker).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiting_task_never_runs() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let ids = queue.push_many("q", [("a", 0), ("b", 0)]).await.unwrap();
    assert_eq!(queue.cancel(ids[0]).await.unwrap(), Cancel::Cancelled);
    assert_eq!(
        queue.cancel(ids[0]).await.unwrap(),
        Cancel::AlreadyFinished(TaskState::Cancelled)
    );
    assert_eq!(
        queue.cancel(TaskId(1 << 40)).await.unwrap(),
        Cancel::NotFound
    );
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.available, stats.cancelled), (1, 1));

    let ran = log();
    let mut worker = Worker::new(queue, "q")
        .concurrency(2)
        .run(logging(&ran))
        .unwrap();
    let outcomes = take(&mut worker, 1).await;
    assert_eq!(outcomes[0].id, ids[1]);
    // Give it a poll to be sure it would not pick up `a`.
    tokio::time::sleep(Duration::from_millis(300)).await;
    finish(worker).await;
    assert_eq!(entries(&ran), ["b"]);
    let a = db.task(ids[0]).await;
    assert_eq!((a.state, a.attempts), (TaskState::Cancelled, 0));
    assert!(a.finished_at.is_some() && a.outcome.is_none());
    let stats = queue.stats("q").await.unwrap();
    assert_eq!(
        (stats.pending(), stats.succeeded, stats.cancelled),
        (0, 1, 1)
    );
    db.finish().await;
}

/// Sets a flag when dropped: tells that a running attempt was dropped.
struct DropFlag(Arc<Mutex<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = true;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_running_task_is_dropped_at_its_next_renewal() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let id = queue.push("q", "long", 0).await.unwrap();
    let dropped = Arc::new(Mutex::new(false));
    let (started, mut has_started) = mpsc::unbounded_channel();
    let handler = {
        let dropped = Arc::clone(&dropped);
        move |_: Job<String>| {
            let guard = DropFlag(Arc::clone(&dropped));
            started.send(()).unwrap();
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok::<_, String>(())
            }
        }
    };
    let lease = Duration::from_millis(300);
    let mut worker = Worker::new(queue, "q")
        .concurrency(1)
        .lease(lease)
        .run(handler)
        .unwrap();
    has_started.recv().await.unwrap();
    let asked = Instant::now();
    assert_eq!(queue.cancel(id).await.unwrap(), Cancel::Requested);
    let outcome = take(&mut worker, 1).await.remove(0);
    assert!(
        asked.elapsed() < lease + Duration::from_millis(500),
        "dropped at a renewal"
    );
    let failure = outcome.result.unwrap_err();
    assert!(failure.is_cancelled(), "{failure}");
    assert!(*dropped.lock().unwrap(), "the attempt was dropped");
    let task = db.task(id).await;
    assert_eq!(task.state, TaskState::Cancelled);
    assert_eq!(task.last_error.as_deref(), Some("cancelled while it ran"));
    assert_eq!(worker.stats().cancelled, 1);
    finish(worker).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_gets_exactly_one_outcome_across_workers() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let numbers: Vec<u64> = (0..300).collect();
    let ids = queue
        .push_many("q", numbers.iter().map(|n| (n, (n % 7) as i32)))
        .await
        .unwrap();
    let handler = |job: Job<u64>| async move {
        // Every third task fails its first attempt.
        if job.payload % 3 == 0 && job.attempt == 1 {
            return Err(format!("{} is flaky", job.payload));
        }
        tokio::time::sleep(Duration::from_millis(job.payload % 5)).await;
        Ok(job.payload * 2)
    };
    let workers: Vec<_> = (0..3)
        .map(|_| {
            Worker::new(queue, "q")
                .concurrency(4)
                .retry(Retry::Lifo)
                .attempts(3)
                .poll_interval(Duration::from_millis(100))
                .run(handler)
                .unwrap()
        })
        .collect();
    let owners: Vec<String> = workers.iter().map(|w| w.owner().to_owned()).collect();
    assert!(
        owners[0] != owners[1] && owners[1] != owners[2],
        "owners are unique"
    );
    let mut all = futures::stream::select_all(workers);
    let mut seen: HashMap<TaskId, u64> = HashMap::new();
    while seen.len() < ids.len() {
        let outcome = timeout(Duration::from_secs(20), all.next())
            .await
            .expect("outcomes keep coming")
            .unwrap()
            .unwrap();
        let value = outcome
            .result
            .expect("every task succeeds within 3 attempts");
        assert!(
            seen.insert(outcome.id, value).is_none(),
            "a second outcome for {}",
            outcome.id
        );
    }
    for worker in all.iter_mut() {
        worker.stop();
    }
    let extra = timeout(Duration::from_secs(10), all.next()).await.unwrap();
    assert!(
        extra.is_none(),
        "an outcome after every task had one: {:?}",
        extra.map(|outcome| outcome.map(|o| o.id))
    );
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.succeeded, stats.pending()), (300, 0));
    for (n, id) in ids.iter().enumerate() {
        let task = db.task(*id).await;
        assert_eq!(task.output::<u64>().unwrap().unwrap(), n as u64 * 2);
        assert_eq!(task.attempts, if n % 3 == 0 { 2 } else { 1 });
        assert_eq!(seen[id], n as u64 * 2);
    }
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_cannot_write() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let id = queue.push("q", "x", 0).await.unwrap();
    let (started, mut has_started) = mpsc::unbounded_channel();
    let gate = Arc::new(Notify::new());
    let stalled = {
        let gate = Arc::clone(&gate);
        move |_: Job<String>| {
            let (started, gate) = (started.clone(), Arc::clone(&gate));
            async move {
                started.send(()).unwrap();
                gate.notified().await; // a long pause: GC, a stalled VM, a partition
                Ok::<_, String>("from A".to_owned())
            }
        }
    };
    // A long lease: A renews every 10s, so it does not learn of the loss before it writes.
    let mut a = Worker::new(queue, "q")
        .concurrency(1)
        .retry(Retry::Lifo)
        .lease(Duration::from_secs(30))
        .run(stalled)
        .unwrap();
    has_started.recv().await.unwrap();
    // A's lease runs out (as if it had not renewed for 30s).
    sqlx_exec(
        &db,
        "UPDATE rp_tasks SET lease_expires_at = now() - interval '1 second'",
    )
    .await;

    let mut b = Worker::new(queue, "q")
        .concurrency(1)
        .retry(Retry::Lifo)
        .poll_interval(Duration::from_millis(50))
        .run(|_: Job<String>| std::future::ready(Ok::<_, String>("from B".to_owned())))
        .unwrap();
    let rescued = take(&mut b, 1).await.remove(0);
    assert_eq!((rescued.id, rescued.attempts), (id, 2));
    assert_eq!(rescued.result.unwrap(), "from B");

    gate.notify_one(); // A wakes up and tries to complete attempt 1
    db.eventually(
        Duration::from_secs(10),
        "A's write to be fenced off",
        || async { a.stats().fenced == 1 },
    )
    .await;
    let task = db.task(id).await;
    assert_eq!(task.state, TaskState::Succeeded);
    assert_eq!(
        task.output::<String>().unwrap().unwrap(),
        "from B",
        "A wrote nothing"
    );
    assert_eq!(task.attempts, 2);
    a.stop();
    assert!(
        timeout(Duration::from_secs(10), a.next())
            .await
            .unwrap()
            .is_none(),
        "A yields no outcome"
    );
    finish(b).await;
    db.finish().await;
}

async fn sqlx_exec(db: &TestDb, sql: &str) {
    retry_pool_postgres::sqlx::query(sql)
        .execute(db.queue.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_task_ends_failed_instead_of_taking_down_every_worker() {
    let db = TestDb::new().await;
    let queue = &db.queue;
    let poison = queue.push("q", "poison", 0).await.unwrap();
    let (poisoned, mut is_poisoned) = mpsc::unbounded_channel();
    let runs = Arc::new(Mutex::new(0));
    let handler = {
        let runs = Arc::clone(&runs);
        move |job: Job<String>| {
            let poisoned = poisoned.clone();
            let runs = Arc::clone(&runs);
            async move {
                if job.payload == "poison" {
                    *runs.lock().unwrap() += 1;
                    poisoned.send(()).unwrap();
                    // It takes its worker down: the test drops the worker, as a crash would.
                    std::future::pending::<()>().await;
                }
                Ok::<_, String>(job.payload)
            }
        }
    };
    let worker = || {
        Worker::new(queue, "q")
            .concurrency(2)
            .retry(Retry::Lifo)
            .attempts(2)
            .lease(Duration::from_millis(300))
            .poll_interval(Duration::from_millis(50))
            .run(handler.clone())
            .unwrap()
    };
    for _ in 0..2 {
        let crashed = worker();
        is_poisoned.recv().await.unwrap();
        drop(crashed); // the worker dies with the poison task in hand
    }
    let ids = queue.push_many("q", [("a", 0), ("b", 0)]).await.unwrap();
    let mut survivor = worker();
    let outcomes = take(&mut survivor, 3).await;
    let failure = outcomes
        .iter()
        .find(|outcome| outcome.id == poison)
        .expect("the rescuing worker yields the poison task's outcome")
        .result
        .as_ref()
        .unwrap_err();
    assert!(
        failure.is_lease_expired() && failure.attempts() == 2,
        "{failure}"
    );
    assert_eq!(*runs.lock().unwrap(), 2, "never a third run");
    let task = db.task(poison).await;
    assert_eq!((task.state, task.attempts), (TaskState::Failed, 2));
    assert!(task.last_error.unwrap().contains("lease expired"));
    for id in ids {
        assert_eq!(db.task(id).await.state, TaskState::Succeeded);
    }
    finish(survivor).await;
    db.finish().await;
}
