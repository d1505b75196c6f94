//! Run many async tasks with a fixed concurrency limit, get each result the moment it is
//! ready, and retry failures at once at the highest priority.
//!
//! Two ways in, one runtime:
//!
//! - [`#[pooled]`](pooled) turns an async function whose body lists tasks into a function
//!   returning their completion stream.
//! - [`Pool`] is the builder the attribute expands to: `Pool::new(8).retry(Retry::Lifo)
//!   .attempts(4).run(tasks)`.
//!
//! ```
//! use futures::StreamExt;
//! use retry_pool::pooled;
//!
//! #[pooled(concurrency = 4, retry = "lifo", attempts = 3)]
//! async fn squares(numbers: &[u64]) -> Result<u64, std::io::Error> {
//!     numbers.iter().map(|&n| async move || Ok(n * n))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let numbers = [1, 2, 3, 4, 5];
//! let mut total = 0;
//! let mut done = squares(&numbers); // nothing runs until polled
//! while let Some(outcome) = done.next().await {
//!     total += outcome.unwrap(); // in completion order
//! }
//! assert_eq!(total, 55);
//! # }
//! ```
//!
//! # What always holds
//!
//! - **Bound**: never more than `concurrency` attempts in flight, and exactly that many
//!   while there is work.
//! - **Lazy**: the input is pulled only when a slot is free (and, under
//!   [`Retry::Lifo`], no retry is waiting), so an endless iterator works.
//! - **Completion order**: an outcome is yielded as soon as its task finishes.
//! - **Exactly once**: every task yields one item: `Ok` at its first success, or
//!   `Err(`[`Failure`]`)` after its last attempt.
//! - **Retry order**: [`Retry::Lifo`] runs a failed task again before anything else that
//!   is waiting; [`Retry::Fifo`] puts it behind the rest of the input.
//! - **Panic isolation**: a panicking attempt ends its task with
//!   [`Failure::is_panic`], never retried; every other task carries on.
//! - **Cancellation**: dropping the stream drops every attempt in flight.
//! - **Refill before returning**: every poll starts attempts in free slots before it
//!   returns an outcome, so a busy consumer leaves no slot idle.
//! - **Fair**: a poll does a bounded amount of work and spends tokio's cooperative budget.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod backlog;
mod backoff;
mod completions;
mod failure;
mod pool;
mod scheduler;
mod slots;
mod source;
mod spawned;
mod stats;
mod task;
mod trace;

#[doc(hidden)]
pub mod __private;

pub use backoff::Backoff;
pub use completions::Completions;
pub use failure::Failure;
pub use pool::{DEFAULT_RETRY_ATTEMPTS, FutureCompletions, LineCompletions, Pool, Retry};
#[doc(inline)]
pub use retry_pool_macros::pooled;
pub use scheduler::{LineSource, Priority, Scheduled, SchedulerHandle, SubmitError, TaskId};
pub use source::{BodySource, IterSource, Source, StreamSource};
pub use spawned::Spawned;
pub use stats::Stats;
pub use task::{BoxAttempt, BoxTask, Outcome, TaskResult, boxed};
