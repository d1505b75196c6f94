//! What every completion stream is: a [`Stream`] of outcomes that can say how its pool is
//! doing.

use futures_core::Stream;

use crate::stats::Stats;

/// A completion stream of a pool: [`Completions`](crate::Completions) (in place),
/// [`Spawned`](crate::Spawned), a scheduler's [`Scheduled`](crate::Scheduled), and the
/// stream a `#[pooled]` function returns (`impl PoolStream<Item = Result<T, Failure<E>>>`).
///
/// `Unpin`, so `next()` works on it as it is.
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{PoolStream, pooled};
///
/// #[pooled(concurrency = 2, retry = "lifo", attempts = 2)]
/// async fn halves(numbers: Vec<u32>) -> Result<u32, String> {
///     numbers.into_iter().map(|n| {
///         let mut tried = false;
///         async move || match n % 2 {
///             1 if !std::mem::replace(&mut tried, true) => Err(format!("{n} is odd")),
///             _ => Ok(n / 2),
///         }
///     })
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut done = halves(vec![2, 3, 4]);
/// while let Some(outcome) = done.next().await {
///     outcome.unwrap();
/// }
/// let stats = done.stats();
/// assert_eq!((stats.succeeded, stats.retried, stats.running), (3, 1, 0));
/// # }
/// ```
pub trait PoolStream: Stream + Unpin {
    /// What the pool is doing, and has done: see [`Stats`]. Cheap: a few loads.
    fn stats(&self) -> Stats;
}
