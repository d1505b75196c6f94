//! Quickstart: a batch of flaky jobs through a `#[pooled]` function.
//!
//! Three slots, eight jobs of different lengths. Some fail and are retried at once, ahead
//! of the jobs still waiting (LIFO); one never succeeds and gives up after three attempts.
//! Each outcome is printed the moment it lands, in completion order.
//!
//! Run it with `cargo run --example quickstart`.

use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use retry_pool::pooled;

/// A simulated remote job.
struct Job {
    name: &'static str,
    /// How long each attempt takes.
    millis: u64,
    /// How many attempts fail before one succeeds.
    failures: u32,
}

#[derive(Debug)]
struct JobError(String);

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JobError {}

/// Prints a line with the time since the start.
struct Clock(Instant);

impl Clock {
    fn say(&self, what: fmt::Arguments<'_>) {
        println!("{:>5} ms  {what}", self.0.elapsed().as_millis());
    }
}

/// Runs every job with at most three at once, retrying failures at once (LIFO), three
/// attempts each. The tasks borrow `jobs` and `clock`: nothing needs to be `'static`.
#[pooled(concurrency = 3, retry = "lifo", attempts = 3)]
async fn run_jobs(jobs: &[Job], clock: &Clock) -> Result<String, JobError> {
    jobs.iter().map(move |job| {
        let mut attempt = 0;
        async move || {
            attempt += 1;
            if attempt == 1 {
                clock.say(format_args!("start  {}", job.name));
            } else {
                clock.say(format_args!("retry  {} (attempt {attempt})", job.name));
            }
            tokio::time::sleep(Duration::from_millis(job.millis)).await;
            if attempt <= job.failures {
                Err(JobError(format!("{} hit a transient error", job.name)))
            } else {
                Ok(format!("{} finished", job.name))
            }
        }
    })
}

#[tokio::main]
async fn main() {
    let jobs = [
        Job {
            name: "resize-avatar",
            millis: 120,
            failures: 0,
        },
        Job {
            name: "send-invoice",
            millis: 40,
            failures: 1,
        },
        Job {
            name: "sync-crm",
            millis: 90,
            failures: 0,
        },
        Job {
            name: "geocode",
            millis: 30,
            failures: 2,
        },
        Job {
            name: "scan-upload",
            millis: 60,
            failures: 0,
        },
        Job {
            name: "charge-card",
            millis: 50,
            failures: u32::MAX,
        },
        Job {
            name: "warm-cache",
            millis: 20,
            failures: 0,
        },
        Job {
            name: "email-digest",
            millis: 70,
            failures: 0,
        },
    ];
    let clock = Clock(Instant::now());
    println!("{} jobs, 3 at a time, up to 3 attempts each\n", jobs.len());

    let (mut done, mut gave_up) = (0, 0);
    let mut outcomes = run_jobs(&jobs, &clock);
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok(message) => {
                done += 1;
                clock.say(format_args!("done   {message}"));
            }
            Err(failure) => {
                gave_up += 1;
                let name = jobs[failure.index()].name;
                clock.say(format_args!("FAILED {name}: {failure}"));
            }
        }
    }
    println!("\n{done} done, {gave_up} gave up");
}
