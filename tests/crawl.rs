//! The crawl of `examples/crawl.rs`, against the same flaky server on 127.0.0.1, with a
//! real HTTP client: every page ends exactly once (fetched, or reported as failed), each
//! as the server's seeded plan of failures says, and the server never sees more than
//! `concurrency` requests at once.
//!
//! The server counts a page as served only when its response was handed over whole, and a
//! slow response (5s) is far past the client's timeout (400ms), whose client has long
//! closed the connection: so "served once" is exact, not a guess about timing. The one
//! thing assumed is that a good response (at most 5ms of work) comes back within 400ms.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use futures::StreamExt;
use reqwest::Client;
use retry_pool::{Failure, pooled};
use support::flaky_server::{Config, Fault, FlakyServer};

const PAGES: usize = 200;
const CONCURRENCY: usize = 8;
const ATTEMPTS: u32 = 3; // as in the attribute below

#[derive(Debug)]
enum FetchError {
    Status(u16),
    Transport(#[allow(dead_code, reason = "shown in failure messages")] reqwest::Error),
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        FetchError::Transport(error)
    }
}

/// Attempts made per page, counted by the tasks.
struct AttemptCounts(Vec<AtomicU32>);

#[pooled(
    concurrency = concurrency,
    retry = "lifo",
    attempts = 3,
    backoff = "10ms..40ms",
    timeout = "400ms"
)]
async fn crawl(
    client: &Client,
    server: &FlakyServer,
    concurrency: usize,
    counts: &AttemptCounts,
) -> Result<usize, FetchError> {
    (0..server.config().pages).map(move |n| {
        let url = server.url(n);
        async move || {
            counts.0[n].fetch_add(1, SeqCst);
            let response = client.get(&url).send().await?;
            if !response.status().is_success() {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            response.text().await?;
            Ok(n)
        }
    })
}

/// How a page ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Fetched,
    Status500,
    ConnectionError,
    TimedOut,
}

fn end_of(failure: &Failure<FetchError>) -> End {
    match failure.error() {
        Some(FetchError::Status(500)) => End::Status500,
        Some(FetchError::Transport(_)) => End::ConnectionError,
        None if failure.is_timeout() => End::TimedOut,
        _ => panic!("unexpected failure: {failure:?}"),
    }
}

/// What the plan says: how page `n` ends, and after how many attempts.
fn planned(config: &Config, n: usize) -> (End, u32) {
    let mut last = None;
    for nth in 0..ATTEMPTS {
        match config.fault(n, nth.into()) {
            None => return (End::Fetched, nth + 1),
            fault => last = fault,
        }
    }
    let end = match last.expect("every attempt failed") {
        Fault::Status500 => End::Status500,
        Fault::Dropped => End::ConnectionError,
        Fault::Slow => End::TimedOut,
    };
    (end, ATTEMPTS)
}

// A current-thread runtime, as in the example: the client closes the connection of an
// attempt it gave up on before it sends the next request, so the server counts in flight
// exactly what the pool has in flight.
#[tokio::test]
async fn every_page_ends_once_as_planned_within_the_bound() {
    let server = FlakyServer::start(Config {
        pages: PAGES,
        failure_rate: 0.3,
        seed: 11,
        slow: Duration::from_secs(5),
        work: Duration::from_millis(5),
    })
    .expect("the server starts on 127.0.0.1");
    let client = Client::builder()
        .no_proxy()
        .retry(reqwest::retry::never())
        .build()
        .unwrap();
    let counts = AttemptCounts((0..PAGES).map(|_| AtomicU32::new(0)).collect());

    let mut ends: Vec<Option<End>> = vec![None; PAGES];
    let crawled = async {
        let mut outcomes = crawl(&client, &server, CONCURRENCY, &counts);
        while let Some(outcome) = outcomes.next().await {
            let (n, end) = match &outcome {
                Ok(n) => (*n, End::Fetched),
                Err(failure) => (failure.index(), end_of(failure)),
            };
            assert!(ends[n].is_none(), "page {n} ended twice: {outcome:?}");
            ends[n] = Some(end);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), crawled)
        .await
        .expect("the crawl ends within 30s");

    // Exactly one outcome per page, as the seeded plan says.
    let config = *server.config();
    for (n, end) in ends.iter().enumerate() {
        let end = end.unwrap_or_else(|| panic!("page {n} never ended"));
        let made = counts.0[n].load(SeqCst);
        assert_eq!(
            (end, made),
            planned(&config, n),
            "page {n}: (end, attempts)"
        );
        // The server's side: one request per attempt, and a page served once if fetched,
        // never if given up on.
        assert_eq!(server.requests(n), u64::from(made), "page {n}: requests");
        let served = u64::from(end == End::Fetched);
        assert_eq!(server.served(n), served, "page {n}: times served");
    }

    // The bound, as the server saw it: reached, never exceeded.
    assert_eq!(
        server.peak_in_flight(),
        CONCURRENCY,
        "peak requests in flight"
    );

    // Every slow response was given up on by the client, and the server let it go.
    assert!(
        server.idle(Duration::from_secs(2)).await,
        "requests still in flight after the crawl: {}",
        server.report()
    );
    let report = server.report();
    assert_eq!(report.abandoned, report.slow, "{report}");

    // The run went through every path: retries, each kind of fault, pages given up on.
    let failed = |end| ends.iter().filter(|e| **e == Some(end)).count();
    assert!(
        report.requests > PAGES as u64,
        "some pages were retried: {report}"
    );
    assert!(
        report.status_500 > 0 && report.dropped > 0 && report.slow > 0,
        "{report}"
    );
    assert!(
        failed(End::Status500) + failed(End::ConnectionError) + failed(End::TimedOut) > 0,
        "some pages were given up on"
    );
}
