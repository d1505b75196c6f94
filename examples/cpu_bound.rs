//! CPU-bound work: the same tasks in place (all on the consumer's thread) and spawned
//! (each attempt a tokio task on the runtime's worker threads), with both wall times.
//!
//! Run it with `cargo run --release --example cpu_bound`.

use std::time::Instant;

use futures::StreamExt;
use retry_pool::pooled;

/// Counts the primes below `limit` the slow way: real work for a core.
fn count_primes(from: u64, to: u64) -> u64 {
    (from.max(2)..to)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

/// The ranges `[k * width, (k + 1) * width)` for `chunks` values of `k`.
fn ranges(chunks: u64, width: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..chunks).map(move |k| (k * width, (k + 1) * width))
}

/// In place: attempts are polled inside the stream, on the task that polls it.
#[pooled(concurrency = 8)]
async fn in_place(chunks: u64, width: u64) -> Result<u64, std::convert::Infallible> {
    ranges(chunks, width).map(|(from, to)| async move || Ok(count_primes(from, to)))
}

/// Spawned: every attempt is a tokio task, so the work spreads over the worker threads.
#[pooled(concurrency = 8, spawn = true)]
async fn spawned(chunks: u64, width: u64) -> Result<u64, std::convert::Infallible> {
    ranges(chunks, width).map(|(from, to)| async move || Ok(count_primes(from, to)))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let (chunks, width) = (32, 40_000);
    println!(
        "counting primes below {} in {chunks} chunks, 8 at a time",
        chunks * width
    );

    let start = Instant::now();
    let primes: u64 = in_place(chunks, width)
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await
        .iter()
        .sum();
    let in_place_time = start.elapsed();
    println!("in place: {primes} primes in {in_place_time:.2?} (one thread)");

    let start = Instant::now();
    let primes: u64 = spawned(chunks, width)
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await
        .iter()
        .sum();
    let spawned_time = start.elapsed();
    println!("spawned:  {primes} primes in {spawned_time:.2?} ({workers} worker threads)");

    println!(
        "spawned ran {:.2}x as fast as in place",
        in_place_time.as_secs_f64() / spawned_time.as_secs_f64()
    );
}
