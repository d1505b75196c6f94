//! The `#[pooled]` attribute of [retry-pool](https://docs.rs/retry-pool).
//!
//! Use it through the runtime crate, as `retry_pool::pooled`: the code it expands to names
//! `retry_pool`'s items. The attribute is documented on [`pooled`].
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod args;
mod duration;
mod errors;
mod expand;
mod fallback;
mod item;
// The parser's property test: in `tests/`, out of the production files, but compiled into
// this crate's unit tests (a proc-macro crate exports nothing else for a test to call).
#[cfg(test)]
#[path = "../tests/never_panics.rs"]
mod never_panics;
mod signature;
mod suggest;
mod validate;

use proc_macro::TokenStream;

/// Turns an `async fn` whose body lists tasks into a function returning their completion
/// stream: at most `concurrency` attempts in flight, each outcome yielded the moment it is
/// ready, failed tasks retried per `retry`.
///
/// ```ignore
/// use futures::StreamExt;
/// use retry_pool::pooled;
///
/// #[pooled(concurrency = 8, retry = "lifo", attempts = 4)]
/// async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<Page, FetchError> {
///     // The body evaluates to the tasks; it may `.await` first (to list the work).
///     urls.into_iter().map(move |url| async move || client.get(&url).await)
/// }
///
/// let mut pages = fetch_all(&client, urls); // nothing runs until polled
/// while let Some(done) = pages.next().await {  // completion order
///     match done {
///         Ok(page) => save(page),
///         Err(failure) => eprintln!("gave up on #{}: {failure}", failure.index()),
///     }
/// }
/// ```
///
/// (The examples here are not compiled: this crate cannot name `retry_pool`. The same code
/// runs in retry-pool's documentation and in its `tests/pooled.rs`.)
///
/// # The function
///
/// - The declared return type `R` is what **one attempt** returns, and must be a `Result`
///   (aliases such as `io::Result<T>` or `anyhow::Result<T>` included).
/// - The body evaluates to an `IntoIterator` of tasks, pulled one at a time when a slot is
///   free. With `retry = "lifo"` or `"fifo"`, a task is something that can be started again
///   for every attempt: an async closure (`async move || ...`) or a closure returning a
///   future (`move || async move { ... }`). Without retry, a task may also be a plain future.
/// - The rewritten function is **not** `async`: it returns at once
///   `impl PoolStream<Item = Result<T, Failure<E>>>` (a `Stream + Unpin` with `stats()`),
///   which borrows what the arguments borrow, is `Send` whenever the tasks are (tasks that
///   borrow the arguments included), and does nothing until first polled.
/// - Free functions, inherent methods (`&self`, `&mut self`, `self`), generic functions
///   and `where` clauses all work; visibility, doc comments and other attributes are kept.
///
/// # Keys
///
/// | key | value | default (the runtime's) | builder call |
/// |---|---|---|---|
/// | `concurrency` | integer literal ≥ 1, or any expression | required | `Pool::new(8)` |
/// | `retry` | `"lifo"`, `"fifo"` or `"none"` | `"none"` | `.retry(Retry::Lifo)` |
/// | `attempts` | integer literal ≥ 1 | 3 when retrying, 1 otherwise | `.attempts(4)` |
/// | `backoff` | duration string: `"50ms"` (fixed) or `"50ms..5s"` (exponential) | none | `.backoff(Backoff::fixed(..))` |
/// | `timeout` | duration string, above 0, per attempt | none | `.timeout(..)` |
/// | `spawn` | `true` or `false` | `false` | `Pool::spawn` |
/// | `retry_if` | path of a `fn(&E) -> bool` | every error retried | `.retry_if(is_transient)` |
/// | `retry_after` | path of a `fn(&E) -> Option<Duration>` | the backoff | `.retry_after(hint)` |
/// | `rate` | `"100/s"`, `"5/10s"`: starts per window (`ms`, `s`, `m`, `h`, or a duration) | unlimited | `.rate_limit(100, Duration::from_secs(1))` |
/// | `retry_throttle` | `(max_tokens, token_ratio)`, such as `(10, 0.1)` | none | `.retry_throttle(10, 0.1)` |
/// | `crate` | path of the runtime crate, as a string | `"::retry_pool"` | |
///
/// Only the keys written reach the expansion: the defaults are the runtime's, and the
/// attribute refuses exactly the settings the builder refuses (a compile error on the key
/// here, a panic at the call there): see "Settings that go together" on `Pool`.
///
/// ## `concurrency = 8`
///
/// The most attempts in flight at once. Any integer expression works too, such as
/// `concurrency = self.limit` or `concurrency = width` (an argument): it is evaluated when
/// the function is called, before the body takes the arguments, with any receiver. A
/// literal `0` is a compile error; an expression that evaluates to 0 panics at the call.
///
/// ```ignore
/// #[pooled(concurrency = self.limit)]
/// async fn fetch(&self, urls: Vec<String>) -> Result<Page, FetchError> { ... }
/// // the pool: Pool::new(self.limit), the limit checked at the call
/// ```
///
/// ## `retry = "lifo"`, `"fifo"` or `"none"`
///
/// Where a failed task goes while it has attempts left: `"lifo"` runs it again before
/// anything else that is waiting; `"fifo"` puts it at the back of the line, behind the rest
/// of the input (so an endless input wants `"lifo"`); `"none"` runs each task once. Equivalent
/// to `Pool::retry(Retry::Lifo)` and so on.
///
/// Under `"lifo"` and `"fifo"` the tasks must be closures; plain futures are a compile error
/// saying that retrying needs a task that can be started again.
///
/// ## `attempts = 4`
///
/// Total attempts per task, the first one included: `Pool::attempts(4)`. More than one
/// needs a `retry` policy: `attempts = 3` alone (or with `retry = "none"`) is an error.
///
/// ## `retry_if = is_transient`, `retry_after = retry_after_header`
///
/// Paths of functions of the tasks' error type `E`: `retry_if` (`fn(&E) -> bool`) says
/// which errors are worth a retry, and an error it refuses ends its task at once
/// (`Failure::is_permanent`); `retry_after` (`fn(&E) -> Option<Duration>`) lets an error
/// say how long to wait before its retry (a server's `Retry-After`), instead of the
/// backoff. Both need a `retry` policy. A function of the wrong type, or of another error
/// type, is a compile error on the path.
///
/// ```ignore
/// fn transient(error: &FetchError) -> bool { !error.is_not_found() }
/// fn server_says(error: &FetchError) -> Option<Duration> { error.retry_after() }
///
/// #[pooled(concurrency = 8, retry = "lifo", retry_if = transient, retry_after = server_says)]
/// async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<Page, FetchError> { ... }
/// ```
///
/// ## `rate = "100/s"`
///
/// At most 100 attempt starts (first attempts and retries alike) in any second, and no
/// fewer than that allows: `Pool::rate_limit`. The window is a unit (`ms`, `s`, `m`, `h`)
/// or a duration (`"5/10s"`). A task waiting for its turn holds no slot. `"0/s"` and
/// unknown units are compile errors on the string.
///
/// ## `retry_throttle = (10, 0.1)`
///
/// gRPC's retry throttling, `Pool::retry_throttle(10, 0.1)`: 10 tokens; each failed
/// attempt that would be retried takes one, each success gives back 0.1, and a failed task
/// is retried only while more than half the tokens are left, else it ends at once
/// (`Failure::is_throttled`). Needs a `retry` policy.
///
/// ## `crate = "my_reexport"`
///
/// The path the expansion names the runtime by, for code that re-exports it:
/// `crate = "my_reexport"` makes every generated path `my_reexport::...` instead of
/// `::retry_pool::...`.
///
/// ## Durations
///
/// `backoff` and `timeout` take durations as strings, checked at compile time: a whole or
/// decimal number followed by a unit, with no space.
///
/// | unit | | examples |
/// |---|---|---|
/// | `ns` | nanoseconds | `"500ns"` |
/// | `us` | microseconds | `"250us"` |
/// | `ms` | milliseconds | `"50ms"`, `"1_500ms"` |
/// | `s` | seconds | `"2s"`, `"1.5s"` |
/// | `m` | minutes | `"1m"`, `"0.5m"` |
/// | `h` | hours | `"1h"` |
///
/// `_` may separate digits, as in Rust. A decimal must come to a whole number of
/// nanoseconds (`"0.5ns"` is an error), and a duration must be under about 584 years (64
/// bits of nanoseconds). Anything else (`"2 seconds"`, `"fast"`, `"-1s"`, `"10"` without a
/// unit) is one compile error on the string, saying the accepted forms and, when it can
/// tell, what was meant (`did you mean "2s"?`). A duration written without its quotes
/// (`timeout = 2s`) is an error saying to quote it.
///
/// ## `timeout = "2s"`
///
/// The longest one attempt may run: an attempt still running then is dropped (a future is
/// dropped between two polls: code that blocks without `.await` is not cut short) and
/// counts as a failed attempt, retried as any other failure; when it was the last attempt,
/// the task's `Failure` says `is_timeout()`. `"0ms"` is an error, as every
/// attempt would time out. Needs a tokio runtime with its clock enabled.
///
/// ```ignore
/// #[pooled(concurrency = 8, retry = "lifo", timeout = "2s")]
/// // adds to the pool:
/// .timeout(::core::time::Duration::from_secs(2))
/// ```
///
/// The duration is written with the coarsest exact constructor: `"1.5s"` is
/// `Duration::from_millis(1500)`, `"250us"` is `Duration::from_micros(250)`. The timeout is
/// applied inside each attempt (`limits.apply(..)` below), so that a timed-out attempt
/// hands its task back for the retry.
///
/// ## `backoff = "50ms"` or `backoff = "50ms..5s"`
///
/// How long a failed task waits before it may run again. A task waiting out its backoff
/// holds no slot: other tasks run meanwhile. Once the wait is over, it runs before the
/// input not yet pulled (under `"fifo"` too, so FIFO with a backoff suits an endless
/// input).
///
/// - `"50ms"`: the same delay after every failure, `Backoff::fixed`.
/// - `"50ms..5s"`: exponential, 50ms after the first failure, doubling after each further
///   one up to 5s, each delay drawn between half of it and all of it (jitter), so that tasks
///   that failed together do not all come back at once: `Backoff::exponential`. The
///   maximum must be at least the first delay (`"5s..50ms"` is an error), and the first
///   delay above 0.
///
/// A backoff needs retrying: `backoff` without `retry = "lifo"` or `"fifo"` is an error on
/// `backoff`.
///
/// ```ignore
/// #[pooled(concurrency = 8, retry = "lifo", backoff = "50ms..5s")]
/// // adds to the pool:
/// .backoff(::retry_pool::Backoff::exponential(
///     ::core::time::Duration::from_millis(50),
///     ::core::time::Duration::from_secs(5),
/// ))
/// // and `backoff = "50ms"`:
/// .backoff(::retry_pool::Backoff::fixed(::core::time::Duration::from_millis(50)))
/// ```
///
/// ## `spawn = true`
///
/// Runs every attempt as a tokio task on the runtime's worker threads, so that CPU-heavy
/// tasks use every core (`Pool::spawn`, for tasks whose types are only known here). The
/// stream must be polled within a tokio runtime. What changes:
///
/// - The body still runs in place, on the stream's first polls: it may borrow the
///   arguments (`&self` included) to list the work. What it returns crosses to the worker
///   threads, so the iterator, its tasks, the future of each attempt and the `Result` they
///   return must be `Send + 'static`: tasks own what they use, such as an `Arc` cloned out
///   of `self`. A driver task then keeps the pool full while the consumer is busy, with up
///   to `concurrency` finished outcomes waiting for it.
/// - The return type is unchanged: `impl PoolStream<Item = Result<T, Failure<E>>>`, which
///   still borrows what the arguments borrow, and is `Send` whenever the body is.
/// - A panicking attempt ends its task with `is_panic()`; dropping the stream aborts every
///   attempt in flight.
///
/// ```ignore
/// impl Service {
///     #[pooled(concurrency = self.limit, retry = "lifo", spawn = true)]
///     async fn render(&self, pages: Vec<Page>) -> Result<Html, RenderError> {
///         let templates = Arc::clone(&self.templates); // owned by the tasks, not borrowed
///         pages.into_iter().map(move |page| {
///             let templates = Arc::clone(&templates);
///             async move || templates.render(&page)
///         })
///     }
/// }
/// ```
///
/// Mistakes are compile errors at the user's code: a task that is not `Send` (an `Rc`
/// captured, a `RefCell` borrow held across an `.await`) reads "spawned pools need
/// `Send + 'static` tasks, but `{async closure@..}` is not `Send`", under the body's tasks;
/// a `Result` that is not `Send` reads "spawned pools need a `Send + 'static` result", on
/// the declared return type. A task that borrows an argument or a local is reported by
/// rustc's borrow checker, which takes no custom message, as that borrow escaping the
/// function ("borrowed data escapes outside of function", "`x` does not live long
/// enough"), pointing at the borrowed argument and at the tasks.
///
/// # What this expands to
///
/// ```ignore
/// #[pooled(concurrency = 8, retry = "lifo", attempts = 4, backoff = "50ms", timeout = "2s")]
/// pub async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<Page, FetchError> {
///     urls.into_iter().map(move |url| async move || client.get(&url).await)
/// }
/// // becomes
/// pub fn fetch_all(client: &Client, urls: Vec<String>)
///     -> impl ::retry_pool::PoolStream<Item = ::retry_pool::__private::Outcome<Result<Page, FetchError>>>
/// {
///     let concurrency = ::retry_pool::__private::concurrency(8);
///     let pool = ::retry_pool::Pool::new(concurrency)
///         .retry(::retry_pool::Retry::Lifo)
///         .attempts(4)
///         .backoff(::retry_pool::Backoff::fixed(::core::time::Duration::from_millis(50)))
///         .timeout(::core::time::Duration::from_secs(2));
///     ::retry_pool::__private::pooled(
///         pool,
///         // The body, listing the tasks when the stream is first polled.
///         async move { urls.into_iter().map(move |url| async move || client.get(&url).await) },
///         // One attempt: written here, where the task's type is known, so that the stream
///         // is `Send` even when the tasks borrow the arguments. It captures nothing; in place
///         // the stream keeps it as it is (with `spawn = true`, as a `fn` pointer).
///         |task, limits| {
///             let mut task = ::retry_pool::__private::restartable(task);
///             async move {
///                 let result = limits.apply(task()).await;
///                 (::core::option::Option::Some(task), result)
///             }
///         },
///     )
/// }
/// ```
///
/// Without retry, the attempt is
/// `|task, limits| __private::once(task, limits, |task| Task::start(task))`, where `Task::start`
/// awaits a future or calls a closure once, and `once` hands back no task (with
/// `spawn = true`, `|task, limits| async move { (None, limits.apply(Task::start(task)).await) }`,
/// so that the task starts on the worker that runs it).
///
/// With `spawn = true`, the call is instead (the pool as above):
///
/// ```ignore
/// let checked = ::retry_pool::__private::spawnable(
///     // The body, in place; `static_tasks` is the `'static` check of its tasks.
///     async move {
///         let tasks = { urls.into_iter().map(..) };
///         ::retry_pool::__private::static_tasks(tasks)
///     },
///     // The attempt, as without `spawn`; its result is taken apart into `Ok` and `Err`.
///     |task, limits| { .. ::retry_pool::__private::into_result(limits.apply(task()).await) .. },
///     // Where the `Result` is checked (located on the declared return type).
///     ::core::marker::PhantomData,
/// );
/// ::retry_pool::__private::spawn_pooled(pool, checked)
/// ```
///
/// `spawnable` checks the `Send` bounds (with the messages above) where the task types are
/// concrete, and keeps a function that spawns them; `spawn_pooled` builds the stream, which
/// runs the body on its first polls and hands the tasks to `Pool::spawn`'s driver.
///
/// The generated locals are hygienic (`Span::mixed_site()`, prefixed `__retry_pool_`) and
/// every path is absolute, so the function's own names and modules named `core` or
/// `retry_pool` do not interfere.
///
/// # Errors
///
/// Each mistake is one compile error on the offending token, and every mistake of the
/// attribute is reported in one build. On error, the function is still rewritten (returning
/// an empty stream of the same type), so its callers see no errors of their own.
#[proc_macro_attribute]
pub fn pooled(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::pooled(args.into(), item.into()).into()
}
