//! Crawls a flaky web server: a real HTTP server on 127.0.0.1 that fails a share of its
//! requests (500s, dropped connections, responses too slow to wait for), fetched with a real
//! HTTP client through a `#[pooled]` function that retries failed pages first (LIFO), after
//! a backoff, with a timeout per attempt.
//!
//! ```sh
//! cargo run --example crawl
//! cargo run --example crawl -- --concurrency 32 --failure-rate 0.5 --pages 1000
//! ```
//!
//! A progress bar shows pages done, retries, pages given up and requests in flight; a
//! summary at the end gives the latency of every attempt (p50, p90, p99, max), and checks
//! with the server's own counts that every page was served once, or reported as failed.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Client, StatusCode};
use retry_pool::{Failure, pooled};
use support::flaky_server::{Config, FlakyServer};

/// A page fetched.
#[derive(Debug)]
struct Page {
    /// Its number: `/page/{n}`.
    n: usize,
    /// Links found on it.
    links: usize,
}

/// Why one attempt failed (a timeout is the pool's to tell: [`Failure::is_timeout`]).
#[derive(Debug)]
enum FetchError {
    /// The server answered, but not with a page.
    Status(StatusCode),
    /// No answer: the connection failed or was closed.
    Transport(reqwest::Error),
}

/// Fetches every page of `server`, at most `concurrency` at once. A page that failed is
/// fetched again before any page not yet started (LIFO), after a backoff of 25ms doubling
/// up to 400ms; each attempt may take 250ms; a page gets 4 attempts in all.
#[pooled(
    concurrency = concurrency,
    retry = "lifo",
    attempts = 4,
    backoff = "25ms..400ms",
    timeout = "250ms"
)]
async fn crawl(
    client: &Client,
    server: &FlakyServer,
    concurrency: usize,
    log: &AttemptLog,
) -> Result<Page, FetchError> {
    (0..server.config().pages).map(move |n| {
        let url = server.url(n);
        let mut attempt = 0;
        // An async closure: the pool calls it again for every attempt.
        async move || {
            attempt += 1;
            log.time(attempt, fetch(client, n, &url)).await
        }
    })
}

async fn fetch(client: &Client, n: usize, url: &str) -> Result<Page, FetchError> {
    let response = client.get(url).send().await?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    let html = response.text().await?;
    Ok(Page {
        n,
        links: html.matches("<a ").count(),
    })
}

// One thread is plenty: the pool runs every attempt in place, inside the stream, and the
// attempts mostly wait on the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let server = FlakyServer::start(Config {
        pages: flags.pages,
        failure_rate: flags.failure_rate,
        seed: flags.seed,
        slow: Duration::from_secs(3), // far past the 250ms timeout
        ..Config::default()
    })?;
    let client = Client::builder()
        .no_proxy() // loopback only, whatever the environment says
        .retry(reqwest::retry::never()) // the pool retries, not the client
        .build()?;

    let bar = ProgressBar::new(flags.pages as u64).with_style(
        ProgressStyle::with_template("{spinner} {elapsed:>3} [{bar:32}] {pos}/{len} pages  {msg}")?
            .progress_chars("=> "),
    );
    let log = AttemptLog::default();
    let (mut fetched, mut failures) = (Vec::new(), Vec::new());
    let started = Instant::now();

    let mut outcomes = crawl(&client, &server, flags.concurrency, &log);
    let mut redraw = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            outcome = outcomes.next() => match outcome {
                Some(Ok(page)) => fetched.push(page),
                Some(Err(failure)) => {
                    // Printed even when the bar is hidden (output not a terminal).
                    bar.suspend(|| println!("gave up on /page/{}: {failure}", failure.index()));
                    failures.push(failure);
                }
                None => break,
            },
            // Refreshes the counts while no page completes (all waiting on slow responses).
            _ = redraw.tick() => {}
        }
        bar.set_position((fetched.len() + failures.len()) as u64);
        bar.set_message(format!(
            "retried {} · failed {} · in flight {}",
            log.retried.load(Relaxed),
            failures.len(),
            log.in_flight.load(Relaxed),
        ));
    }
    drop(outcomes);
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    // Let the server see the last abandoned requests go before it reports.
    server.idle(Duration::from_secs(1)).await;
    summary(&flags, &server, &log, &fetched, &failures, elapsed);
    Ok(())
}

fn summary(
    flags: &Flags,
    server: &FlakyServer,
    log: &AttemptLog,
    fetched: &[Page],
    failures: &[Failure<FetchError>],
    elapsed: Duration,
) {
    let links: usize = fetched.iter().map(|page| page.links).sum();
    println!(
        "crawled {} pages from http://{} in {elapsed:.2?}: concurrency {}, {:.0}% of requests failing",
        flags.pages,
        server.addr(),
        flags.concurrency,
        flags.failure_rate * 100.0
    );
    println!(
        "  pages     {} fetched ({links} links), {} given up",
        fetched.len(),
        failures.len()
    );
    println!(
        "  attempts  {} ({} retries): {} ok, {} HTTP 500, {} connection errors, {} timed out",
        log.started.load(Relaxed),
        log.retried.load(Relaxed),
        log.ok.load(Relaxed),
        log.status.load(Relaxed),
        log.transport.load(Relaxed),
        log.timed_out.load(Relaxed),
    );
    let mut latencies = log.latencies.lock().unwrap().clone();
    latencies.sort();
    let at = |percent: usize| latencies[(latencies.len() * percent).div_ceil(100).max(1) - 1];
    if !latencies.is_empty() {
        println!(
            "  latency   per attempt: p50 {:.1?}  p90 {:.1?}  p99 {:.1?}  max {:.1?}",
            at(50),
            at(90),
            at(99),
            latencies[latencies.len() - 1]
        );
    }
    println!("  server    {}", server.report());

    // The server's own counts: every page fetched was served exactly once, and no page
    // given up on was served at all.
    let mut wrong = Vec::new();
    for page in fetched {
        if server.served(page.n) != 1 {
            wrong.push(format!(
                "/page/{} served {} times",
                page.n,
                server.served(page.n)
            ));
        }
    }
    for failure in failures {
        if server.served(failure.index()) != 0 {
            wrong.push(format!("/page/{} given up on, but served", failure.index()));
        }
    }
    let peak = server.peak_in_flight();
    if peak > flags.concurrency {
        wrong.push(format!(
            "{peak} requests in flight, over {}",
            flags.concurrency
        ));
    }
    if wrong.is_empty() {
        println!(
            "  check     every page fetched was served once, none given up on was served, at most {peak} requests in flight (limit {})",
            flags.concurrency
        );
    } else {
        println!("  check     FAILED: {}", wrong.join("; "));
    }
}

/// What every attempt did, counted as it goes: for the progress bar and the summary.
#[derive(Default)]
struct AttemptLog {
    in_flight: AtomicUsize,
    started: AtomicU64,
    retried: AtomicU64,
    ok: AtomicU64,
    status: AtomicU64,
    transport: AtomicU64,
    timed_out: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

impl AttemptLog {
    /// Runs attempt number `attempt` (from 1) of a page, and counts it.
    async fn time<T>(
        &self,
        attempt: u32,
        fetch: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        self.in_flight.fetch_add(1, Relaxed);
        self.started.fetch_add(1, Relaxed);
        if attempt > 1 {
            self.retried.fetch_add(1, Relaxed);
        }
        let mut timing = Timing {
            log: self,
            start: Instant::now(),
            ended: false,
        };
        let result = fetch.await;
        timing.ended = true;
        match &result {
            Ok(_) => &self.ok,
            Err(FetchError::Status(_)) => &self.status,
            Err(FetchError::Transport(_)) => &self.transport,
        }
        .fetch_add(1, Relaxed);
        result
    }
}

/// An attempt under way. The pool drops an attempt past its timeout: dropped before it
/// ended, it counts as timed out.
struct Timing<'a> {
    log: &'a AttemptLog,
    start: Instant,
    ended: bool,
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        let log = self.log;
        log.latencies.lock().unwrap().push(self.start.elapsed());
        if !self.ended {
            log.timed_out.fetch_add(1, Relaxed);
        }
        log.in_flight.fetch_sub(1, Relaxed);
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status(status) => write!(f, "HTTP {status}"),
            // reqwest says which request failed; its innermost cause says why.
            FetchError::Transport(error) => write!(f, "{}", support::innermost_cause(error)),
        }
    }
}

impl Error for FetchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FetchError::Status(_) => None,
            FetchError::Transport(error) => Some(error),
        }
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        FetchError::Transport(error)
    }
}

const USAGE: &str = "\
usage: cargo run --example crawl -- [--concurrency N] [--failure-rate R] [--pages N] [--seed N]

  --concurrency N   requests in flight at most (default 16)
  --failure-rate R  share of requests that fail, 0 to 1 or a percentage (default 0.3)
  --pages N         pages to crawl (default 300)
  --seed N          which requests fail (default 1)";

struct Flags {
    concurrency: usize,
    failure_rate: f64,
    pages: usize,
    seed: u64,
}

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags {
            concurrency: 16,
            failure_rate: 0.3,
            pages: 300,
            seed: 1,
        };
        let known = ["--concurrency", "--pages", "--seed", "--failure-rate"];
        for (name, value) in support::flags::parse(args, &known, USAGE)? {
            let invalid = || support::flags::invalid(&name, &value);
            match name.as_str() {
                "--concurrency" => flags.concurrency = value.parse().map_err(|_| invalid())?,
                "--pages" => flags.pages = value.parse().map_err(|_| invalid())?,
                "--seed" => flags.seed = value.parse().map_err(|_| invalid())?,
                "--failure-rate" => {
                    flags.failure_rate = match value.strip_suffix('%') {
                        Some(percent) => percent.parse::<f64>().map(|p| p / 100.0),
                        None => value.parse(),
                    }
                    .map_err(|_| invalid())?;
                }
                _ => unreachable!("checked by flags::parse"),
            }
        }
        if flags.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&flags.failure_rate) {
            return Err("--failure-rate must be between 0 and 1 (or 0% and 100%)".into());
        }
        Ok(flags)
    }
}
