//! A long-running service on a priority scheduler: three producers submit urgent, normal
//! and background jobs while it runs; half-way through, the background batch still
//! waiting is demoted behind everything else, and one of its jobs is cancelled. At the
//! end, the latency from submission to outcome for each class.
//!
//! Run it with `cargo run --example priority_service`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use retry_pool::{BoxTask, Pool, Priority, Retry, SchedulerHandle, TaskId, boxed};

const URGENT: Priority = 0;
const NORMAL: Priority = 5;
const BACKGROUND: Priority = 10;
const DEMOTED: Priority = 20;

/// What a job hands back: its class, and when it was submitted.
struct Done {
    class: &'static str,
    submitted: Instant,
}

type Job = BoxTask<Done, String>;

/// A simulated job of `millis` that fails its first attempt when `flaky`.
fn job(class: &'static str, millis: u64, flaky: bool) -> Job {
    let submitted = Instant::now();
    let mut attempt = 0;
    boxed(move || {
        attempt += 1;
        let fail = flaky && attempt == 1;
        async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            match fail {
                true => Err(format!("{class} job hit a transient error")),
                false => Ok(Done { class, submitted }),
            }
        }
    })
}

/// Submits `count` jobs of `class` at `priority`, one every `every`.
async fn produce(
    handle: SchedulerHandle<Job>,
    class: &'static str,
    priority: Priority,
    count: u64,
    every: Duration,
) {
    for n in 0..count {
        let task = job(class, 4 + n % 5, n % 10 == 3);
        handle
            .submit(task, priority)
            .await
            .expect("the scheduler is open");
        tokio::time::sleep(every).await;
    }
}

/// The `p`-th percentile of sorted latencies.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let (handle, mut outcomes) = Pool::new(4)
        .retry(Retry::Lifo)
        .attempts(3)
        .spawn_scheduler();

    // A background batch arrives all at once, ahead of the live traffic.
    let batch: Vec<TaskId> = (0..120)
        .map(|n| handle.try_submit(job("background", 6, n % 10 == 3), BACKGROUND))
        .collect::<Result<_, _>>()
        .expect("the line is unbounded");

    let producers = [
        tokio::spawn(produce(
            handle.clone(),
            "urgent",
            URGENT,
            40,
            Duration::from_millis(5),
        )),
        tokio::spawn(produce(
            handle.clone(),
            "normal",
            NORMAL,
            60,
            Duration::from_millis(3),
        )),
    ];

    // Half-way through, the background batch still waiting goes behind everything else,
    // and one of its jobs is no longer wanted.
    let steer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let demoted = batch
                .iter()
                .filter(|&&id| handle.set_priority(id, DEMOTED))
                .count();
            let cancelled = *batch.last().expect("a batch");
            let was_waiting = handle.cancel(cancelled);
            println!(
                "at 60ms: demoted {demoted} waiting background jobs; cancelled job {cancelled} (still pending: {was_waiting})"
            );
            println!("          {:?}", handle.stats());
        })
    };

    // The consumer: outcomes in completion order, with each job's latency.
    let consumer = tokio::spawn(async move {
        let mut latencies: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
        let mut failed = Vec::new();
        while let Some((id, outcome)) = outcomes.next().await {
            match outcome {
                Ok(done) => latencies
                    .entry(done.class)
                    .or_default()
                    .push(done.submitted.elapsed()),
                Err(failure) => failed.push((id, failure.to_string())),
            }
        }
        (latencies, failed)
    });

    for producer in producers {
        producer.await.expect("a producer");
    }
    steer.await.expect("the steering task");
    let stats = handle.stats();
    drop(handle); // the last handle: the scheduler closes, and drains what is left
    let (latencies, failed) = consumer.await.expect("the consumer");

    println!("\nlatency from submission to outcome, by class:");
    println!(
        "{:<12}{:>6}{:>10}{:>10}{:>10}",
        "class", "jobs", "p50", "p95", "max"
    );
    for (class, mut times) in latencies {
        times.sort();
        println!(
            "{class:<12}{:>6}{:>10.1?}{:>10.1?}{:>10.1?}",
            times.len(),
            percentile(&times, 50),
            percentile(&times, 95),
            times.last().expect("at least one"),
        );
    }
    for (id, failure) in &failed {
        println!("not done: {id}: {failure}");
    }
    println!("\nwhen the producers finished: {stats:?}");
}
