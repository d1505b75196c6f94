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
//! # Choosing a way in
//!
//! | you have | use |
//! |---|---|
//! | a function that lists a batch of work | [`#[pooled]`](pooled): the keys are the pool's settings, the body lists the tasks |
//! | an iterator or a [`Stream`](futures_core::Stream) of tasks built at run time | [`Pool::run`], [`Pool::run_stream`]; plain futures (one attempt each): [`Pool::run_futures`] |
//! | CPU-heavy tasks, or work that must go on while the consumer is busy | the spawned flavour: `#[pooled(spawn = true)]`, [`Pool::spawn`] |
//! | work that keeps arriving, of different urgency, that you may reprioritise or cancel | the scheduler: [`Pool::scheduler`], [`Pool::spawn_scheduler`] |
//!
//! **In place** (the default: [`Completions`]) polls every attempt inside the stream, on
//! the task that polls it. Nothing is spawned, and tasks need be neither `Send` nor
//! `'static`: they may borrow the caller's data, or use `Rc`. It suits I/O-bound work,
//! which is most work. Attempts only make progress while the stream is polled, so a
//! consumer that does slow work between two outcomes holds them up; every poll refills
//! the free slots first, so none stays idle longer than that.
//!
//! **Spawned** ([`Spawned`]) runs attempts on the runtime's worker threads, in up to
//! `concurrency` tokio tasks that each run one attempt after another, so that CPU-heavy
//! attempts use every worker; the pool stays full while the consumer is busy, with up to
//! twice `concurrency` finished outcomes waiting for it. Tasks must be
//! `Send + 'static`.
//!
//! Each task is something that can be started again for every attempt: an async closure
//! (`async move || ...`) or a closure returning a future (`move || async move { ... }`).
//! An attempt returns a `Result`: `Ok` ends the task, `Err` retries it or, after its last
//! attempt, ends it with a [`Failure`].
//!
//! # How retries are ordered
//!
//! A failed task with attempts left goes back in line, and [`Retry`] says where:
//!
//! - [`Retry::Lifo`] puts it **first**: it runs again before anything else that is
//!   waiting, and no new task is pulled from the input while a retry waits. A flaky task
//!   is finished while its context is fresh (its connection warm, its caller waiting), and
//!   the number of tasks started but not finished stays small.
//! - [`Retry::Fifo`] puts it **last**, behind the rest of the input, in the order of
//!   failure. Every task gets its first attempt before any gets its second: fair, but a
//!   retry waits for the input to end, so an endless input wants `Lifo`, or a backoff.
//! - [`Retry::None`] (the default) gives every task one attempt.
//!
//! With one slot and a task `a` that fails once:
//!
//! ```
//! use futures::StreamExt;
//! use retry_pool::{Pool, Retry};
//! use std::cell::RefCell;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! for (retry, order) in [(Retry::Lifo, "a a b c"), (Retry::Fifo, "a b c a")] {
//!     let started = RefCell::new(Vec::new());
//!     let tasks = ["a", "b", "c"].map(|name| {
//!         let (started, mut failed) = (&started, false);
//!         async move || {
//!             started.borrow_mut().push(name);
//!             if name == "a" && !failed {
//!                 failed = true;
//!                 return Err("flaky");
//!             }
//!             Ok(name)
//!         }
//!     });
//!     let outcomes: Vec<_> = Pool::new(1).retry(retry).run(tasks).collect().await;
//!     assert!(outcomes.iter().all(Result::is_ok));
//!     assert_eq!(started.into_inner().join(" "), order);
//! }
//! # }
//! ```
//!
//! A panic is a bug, not a transient fault: a panicking attempt ends its task at once
//! ([`Failure::is_panic`]), never retried, and the other tasks carry on.
//!
//! # Backoff and timeouts
//!
//! A [`Backoff`] is the wait before a failed task may run again: [`Backoff::fixed`], or
//! [`Backoff::exponential`], doubling from a first delay up to a cap, with jitter so that
//! tasks that failed together do not all come back together. A task waiting out its
//! backoff **holds no slot**: other tasks run meanwhile (a retry inside the future, as
//! retry crates do it, sleeps in its slot). When its wait is over it runs before any task
//! not yet pulled from the input, under `Fifo` too.
//!
//! A timeout ([`Pool::timeout`]) bounds each attempt: an attempt still running then is
//! dropped, and counts as a failed attempt, retried like any other;
//! [`Failure::is_timeout`] says when the last one timed out. Both need a tokio runtime with
//! its clock enabled. In the attribute: `backoff = "50ms"`, `backoff = "50ms..5s"`,
//! `timeout = "2s"`.
//!
//! # Which errors retry, and how fast
//!
//! - [`Pool::retry_if`] says which errors are worth a retry: a 404 ends its task at once
//!   ([`Failure::is_permanent`]), a timeout or a 503 is retried.
//! - [`Pool::retry_after`] lets an error say how long to wait (a server's `Retry-After`),
//!   instead of the backoff.
//! - [`Pool::rate_limit`] keeps attempt starts under `n` in any window of `per`, as an
//!   API's terms ask.
//! - [`Pool::retry_throttle`] is gRPC's retry throttling: while too many attempts fail,
//!   failed tasks give up instead of piling retries onto a dependency that is down.
//!
//! The types of these settings (to name a configured `Pool`, or to ask them in code that
//! decides retries of its own) are in [`hooks`]. In the attribute: `retry_if = path`,
//! `retry_after = path`, `rate = "100/s"`,
//! `retry_throttle = (10, 0.1)`. A `#[pooled]` body may evaluate to a
//! [`Stream`](futures_core::Stream) of tasks, so work discovered while the pool runs (the
//! links of a crawled page) can be fed back through a channel.
//!
//! # The scheduler
//!
//! [`Pool::scheduler`] starts a pool that runs for as long as you feed it: a
//! [`SchedulerHandle`] (cheap to clone, one per producer) submits tasks with a
//! [`Priority`] (smaller runs first, equal ones in submission order), changes the priority
//! of a waiting task, cancels a waiting or running one, and closes the scheduler. The
//! completion stream ([`Scheduled`]) yields each task's [`TaskId`] with its outcome, and
//! ends once the scheduler is closed and every task has its outcome. LIFO retries run
//! ahead of every priority; FIFO retries go behind the tasks of their own priority.
//! [`Pool::max_waiting`] bounds the line, so that [`submit`](SchedulerHandle::submit)
//! waits for room (backpressure), and [`idle`](SchedulerHandle::idle) resolves once
//! everything submitted so far has its outcome. Tasks of different kinds share one type
//! through [`boxed`].
//!
//! # Watching it run
//!
//! Every completion stream is a [`PoolStream`], whose [`stats`](PoolStream::stats) (and
//! [`SchedulerHandle::stats`]) give a cheap [`Stats`] snapshot: tasks waiting, attempts
//! running, tasks succeeded and failed, retries. A `#[pooled]` function returns
//! `impl PoolStream<Item = ...>`, so `fetch_all(&client, urls).stats()` works as well. With
//! the `tracing` feature, every attempt runs in an
//! `attempt` span with its task's index and attempt number, and retries and give-ups are
//! logged as events.
//!
//! # Compared with what you may use now
//!
//! - [`buffer_unordered`](https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html#method.buffer_unordered)
//!   bounds the futures in flight and yields in completion order, but it starts new
//!   futures only when polled for the next item, so a busy consumer leaves slots idle; it
//!   cannot start a future again, so retries live inside each future, holding a slot while
//!   they back off, with no say in where the retry goes in line; a panic in one future
//!   reaches the consumer; and a failure carries no task index or attempt count.
//! - [`JoinSet`](tokio::task::JoinSet) with a semaphore or a counter runs on every core
//!   and isolates panics, but the bound, the refill loop, the retry queue and the
//!   bookkeeping of which task failed are all yours to write, and every task must be
//!   `Send + 'static`. The spawned flavour is that loop, written once (and, running
//!   attempts one after another in reused tasks, faster than the loop written by hand:
//!   see the README's performance section).
//! - Retry crates (`backon`, `tokio-retry`, `backoff`) retry one future: combined with
//!   either of the above, the retry sleeps in its slot, and order and bounds are again
//!   yours to manage.
//! - `retry-pool` makes the retry part of the scheduling: a failed task leaves its slot,
//!   waits out its backoff holding none, and comes back first (LIFO) or last (FIFO); every
//!   task ends exactly once, as a value or a [`Failure`] that says which task, after how
//!   many attempts, and why.
//!
//! # Examples
//!
//! The repository's `examples/` run as they are, with `cargo run --example NAME`:
//!
//! - `quickstart`: a batch of flaky jobs, in completion order, with LIFO retries and a
//!   give-up.
//! - `crawl`: a real HTTP server on 127.0.0.1 that fails a share of its requests (500s,
//!   dropped connections, responses past the timeout), crawled with `reqwest` through a
//!   `#[pooled(retry = "lifo", backoff = .., timeout = ..)]` function, with a progress bar
//!   and per-attempt latency percentiles.
//! - `cpu_bound` (with `--release`): spawned against in place, on every core.
//! - `priority_service`: producers feeding one scheduler, with reprioritising and
//!   cancelling.
//!
//! # What always holds
//!
//! The rules every flavour keeps, numbered as in the repository's `ARCHITECTURE.md` (which
//! also draws the stack of modules and one task's path through it):
//!
//! 1. **Bound**: never more than `concurrency` attempts in flight, and exactly that many
//!    while there is work.
//! 2. **Lazy**: the input is pulled only when a slot is free (and, under
//!    [`Retry::Lifo`], no retry is waiting), so an endless iterator works.
//! 3. **Completion order**: an outcome is yielded as soon as its task finishes.
//! 4. **Exactly once**: every task yields one item: `Ok` at its first success, or
//!    `Err(`[`Failure`]`)` after its last attempt.
//! 5. **Retry order**: [`Retry::Lifo`] runs a failed task again before anything else that
//!    is waiting; [`Retry::Fifo`] puts it behind the rest of the input.
//! 6. **Backoff**: a task waiting out its backoff holds no slot.
//! 7. **Timeout**: an attempt past its timeout is dropped and counts as a failed attempt.
//! 8. **Panic isolation**: a panicking attempt ends its task with
//!    [`Failure::is_panic`], never retried; every other task carries on.
//! 9. **Cancellation**: dropping the stream drops every attempt in flight, and nothing
//!    starts after.
//! 10. **Refill before returning**: every poll starts attempts in free slots before it
//!     returns an outcome, so a busy consumer leaves no slot idle.
//! 11. **Slow consumers**: spawned, the pool stays full while the consumer is busy.
//! 12. **Fair**: a poll does a bounded amount of work and spends tokio's cooperative budget.
//! 13. **One rule set**: the builder and the attribute refuse the same settings (see
//!     "Settings that go together" on [`Pool`]), and the defaults are the runtime's.
//! 14. **Retry control**: an error [`Pool::retry_if`] refuses ends its task at once; the
//!     retry throttle refuses retries while too many attempts fail; under a rate limit,
//!     never more than `n` attempt starts in any window `[t, t + per)`.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod backoff;
mod engine;
mod failure;
mod handle;
pub mod hooks;
mod idle;
mod in_place;
mod job;
mod line;
mod lock;
mod policy;
mod pool;
mod pool_stream;
mod queue;
mod rate;
mod scheduled;
mod slots;
mod source;
mod spawned;
mod stats;
mod task;
mod throttle;
mod trace;

#[doc(hidden)]
pub mod __private;

pub use backoff::Backoff;
pub use failure::Failure;
pub use handle::{SchedulerHandle, SubmitError, TaskId};
pub use in_place::Completions;
pub use line::Priority;
pub use policy::Retry;
pub use pool::Pool;
pub use pool_stream::PoolStream;
#[doc(inline)]
pub use retry_pool_macros::pooled;
pub use scheduled::Scheduled;
pub use spawned::Spawned;
pub use stats::Stats;
pub use task::{BoxTask, boxed};
