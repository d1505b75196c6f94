//! The `#[pooled]` attribute of [retry-pool](https://docs.rs/retry-pool).
//!
//! Use it through the runtime crate, as `retry_pool::pooled`: the code it expands to names
//! `retry_pool`'s items. The attribute is documented on [`pooled`].
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod args;
mod errors;
mod expand;
mod fallback;
mod item;
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
///   `impl Stream<Item = Result<T, Failure<E>>> + Unpin`, which borrows what the arguments
///   borrow, is `Send` whenever the tasks are (tasks that borrow the arguments included),
///   and does nothing until first polled.
/// - Free functions, inherent methods (`&self`, `&mut self`, `self`), generic functions
///   and `where` clauses all work; visibility, doc comments and other attributes are kept.
///
/// # Keys
///
/// | key | value | default |
/// |---|---|---|
/// | `concurrency` | integer literal ≥ 1, or any expression | required |
/// | `retry` | `"lifo"`, `"fifo"` or `"none"` | `"none"` |
/// | `attempts` | integer literal ≥ 1 | 3 when retrying, 1 otherwise |
/// | `crate` | path of the runtime crate, as a string | `"::retry_pool"` |
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
/// // expands to, in short:
/// fn fetch(&self, urls: Vec<String>) -> impl Stream<...> + Unpin {
///     let concurrency = retry_pool::__private::concurrency(self.limit);
///     let pool = retry_pool::Pool::new(concurrency);
///     ...
/// }
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
/// ## `crate = "my_reexport"`
///
/// The path the expansion names the runtime by, for code that re-exports it:
/// `crate = "my_reexport"` makes every generated path `my_reexport::...` instead of
/// `::retry_pool::...`.
///
/// ## Reserved: `backoff`, `timeout`, `spawn`
///
/// Not supported yet: each is a compile error, never silently ignored.
///
/// # What this expands to
///
/// ```ignore
/// #[pooled(concurrency = 8, retry = "lifo", attempts = 4)]
/// pub async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<Page, FetchError> {
///     urls.into_iter().map(move |url| async move || client.get(&url).await)
/// }
/// // becomes
/// pub fn fetch_all(client: &Client, urls: Vec<String>)
///     -> impl ::retry_pool::__private::Stream<Item = ::retry_pool::Outcome<Result<Page, FetchError>>>
///         + ::core::marker::Unpin
/// {
///     let concurrency = ::retry_pool::__private::concurrency(8);
///     let pool = ::retry_pool::Pool::new(concurrency)
///         .retry(::retry_pool::Retry::Lifo)
///         .attempts(4);
///     ::retry_pool::__private::pooled(
///         pool,
///         // The body, listing the tasks when the stream is first polled.
///         async move { urls.into_iter().map(move |url| async move || client.get(&url).await) },
///         // One attempt: written here, where the task's type is known, so that the stream
///         // is `Send` even when the tasks borrow the arguments. It captures nothing, and is
///         // passed as a `fn` pointer.
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
/// `|task, limits| async move { (None, limits.apply(Task::start(task)).await) }`, where
/// `Task::start` awaits a future or calls a closure once.
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
