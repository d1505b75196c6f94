//! A durable task queue on PostgreSQL for [`retry_pool`]: many worker processes on many
//! machines share one line of tasks, with the pool's retry order (LIFO: a failed task runs
//! again before anything else waiting; FIFO: behind the tasks of its priority), attempts,
//! backoff, per-attempt timeouts, priorities that change while a task waits, and
//! cancellation.
//!
//! PostgreSQL holds what must survive a process: the line, priorities, attempts, the
//! retry order, backoff times, leases, cancellations and outcomes, in one table
//! (`rp_tasks`, created by embedded migrations on connect). Each worker process runs what
//! the local pool does best: a [`retry_pool::Pool`] gives it its concurrency, per-attempt
//! timeouts, panic isolation and completion order.
//!
//! ```no_run
//! use futures::StreamExt;
//! use retry_pool_postgres::{Job, Queue, Retry, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Page { url: String }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Queue::connect(&retry_pool_postgres::database_url()).await?;
//!
//! // A producer (any process): push, reprioritise, cancel, read.
//! let pages = [Page { url: "https://example.com/a".into() }, Page { url: "https://example.com/b".into() }];
//! let ids = queue.push_many("crawl", pages.iter().map(|page| (page, 0))).await?;
//! queue.set_priority(ids[1], -1).await?; // b first
//!
//! // A worker (as many processes as you like): 8 at once, LIFO retries, 4 attempts.
//! let mut outcomes = Worker::new(&queue, "crawl")
//!     .concurrency(8)
//!     .retry(Retry::Lifo)
//!     .attempts(4)
//!     .run(|job: Job<Page>| async move { Ok::<_, std::io::Error>(job.payload.url.len()) })?;
//! while let Some(outcome) = outcomes.next().await {
//!     let outcome = outcome?;
//!     println!("{}: {:?}", outcome.id, outcome.result.map_err(|failure| failure.to_string()));
//! }
//! # Ok(()) }
//! ```
//!
//! # How a task moves
//!
//! `available` → (claimed) `running` → `succeeded` | `failed` | `cancelled`, or back to
//! `available` when an attempt fails with attempts left (after its backoff, at the front
//! for LIFO, behind its priority for FIFO).
//!
//! - **Claims** take only as many tasks as the worker has free slots, with
//!   `FOR UPDATE SKIP LOCKED` inside a `MATERIALIZED` CTE limited to that number, in the
//!   order: LIFO retries (latest failure first), then priority (smaller first), then push
//!   order (and FIFO retries, behind their priority).
//! - **Leases**: a claimed task belongs to its worker until `lease_expires_at`, renewed by
//!   a heartbeat every third of [`Worker::lease`]. Every write of a worker (complete,
//!   fail, renew) is guarded by (task, attempt, owner), so a worker that lost its lease
//!   writes nothing: its result is dropped, and counted in [`WorkerStats::fenced`].
//! - **Rescue**: any worker, while it claims (at most once per poll interval), puts tasks
//!   whose lease expired back in line, counting the expired attempt as failed; a task with
//!   no attempts left ends `failed`, so a task that kills its workers cannot kill them all
//!   in turn. No leader.
//! - **Outcomes** are written in the same `UPDATE` as the final state, once.
//! - **Wake-ups**: pushes `NOTIFY`; workers `LISTEN` as a hint only, and poll anyway.
//! - **Cancellation**: [`Queue::cancel`] ends a waiting task at once; a running one is
//!   dropped by its worker at its next lease renewal and ends `cancelled`.
//!
//! Delivery is at least once: an attempt cut short by a crash runs again elsewhere (it
//! counts as an attempt). Each task gets exactly one outcome.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod claimer;
mod completer;
mod database_url;
mod error;
mod heartbeat;
mod held;
mod hooks;
mod job;
mod lease;
mod outcome;
mod queue;
mod schema;
mod settings;
mod settle;
mod shared;
mod task;
mod wakeup;
mod worker;
mod worker_stats;

pub use database_url::{DEFAULT_DATABASE_URL, database_url};
pub use error::Error;
pub use job::Job;
pub use outcome::{Outcome, TaskFailure};
pub use queue::Queue;
pub use retry_pool::{Backoff, Retry};
/// The sqlx this crate is built on, for [`Queue::from_pool`] and your own queries.
pub use sqlx;
pub use task::{Cancel, QueueStats, TaskId, TaskInfo, TaskState};
pub use worker::{Worker, WorkerStream};
pub use worker_stats::WorkerStats;
