//! The crawl of `examples/link_crawl.rs`, against the same web on 127.0.0.1, checked
//! against the server's own counts: every reachable page fetched exactly once, after as
//! many requests as the seeded plan of faults says; no 404 retried; every `Retry-After`
//! honoured; the rate limit and the concurrency bound kept, as the server saw the
//! requests; and the crawl over at the scheduler's idle point, with nothing after it.
//!
//! What is exact is checked exactly: a slow response (5s) is far past the client's timeout
//! (1s), whose client has long closed the connection, so a page counts as served once or
//! not at all; a retry after a `429` cannot reach the server before `Retry-After` is over.
//! The one thing assumed is that a good response (at most 30ms of work) comes back within
//! 1s. Arrival times at the server lag the starts the pool spaces out by a varying delay:
//! the rate is checked over a window 10% shorter than the limit's (`ARRIVAL_SLACK`).

use std::collections::HashSet;
use std::time::Duration;

use retry_pool::Backoff;
use support::link_graph::{Config, Fault, LinkServer, MAX_FAILURES};

#[path = "support/link_crawl.rs"]
mod link_crawl;

use link_crawl::Settings;

fn settings() -> Settings {
    Settings {
        concurrency: 8,
        rate: (50, Duration::from_secs(1)),
        attempts: MAX_FAILURES as u32 + 2, // one to spare: every page gets fetched
        timeout: Duration::from_secs(1),
        backoff: Backoff::exponential(Duration::from_millis(10), Duration::from_millis(80)),
        max_urls: 10_000,
    }
}

// A current-thread runtime, as in the example: the client closes the connection of an
// attempt it gave up on before it sends the next request, so the server counts in flight
// exactly what the pool has in flight.
#[tokio::test]
async fn every_reachable_page_once_within_the_limits_until_idle() {
    let server = LinkServer::start(Config {
        seed: 3,
        slow: Duration::from_secs(5),
        ..Config::default()
    })
    .expect("the server starts on 127.0.0.1");
    let config = *server.config();
    let reach = config.reachable();
    let settings = settings();

    let crawl = tokio::time::timeout(
        Duration::from_secs(60),
        link_crawl::crawl(&server.start_url(), settings, |_| {}),
    )
    .await
    .expect("the crawl ends within 60s");
    let report = server.report();

    // The checks the example prints, each on its own.
    for check in link_crawl::check(&crawl, &report, &reach, &settings) {
        assert!(check.ok, "{check}\nserver: {report}");
    }

    // Each reachable page requested exactly as often as its plan says: once per planned
    // fault, then once more to be served. No retry more, none fewer.
    for path in &reach.pages {
        let n: usize = path["/page/".len()..].parse().unwrap();
        let faults = (0..)
            .take_while(|&nth| config.fault(n, nth).is_some())
            .count();
        let requests = report.paths[path].requests.len();
        assert_eq!(requests, faults + 1, "{path}: requests");
    }

    // The bound was reached, not only kept.
    assert_eq!(report.peak_in_flight, settings.concurrency, "{report}");

    // The rate limit held the crawl back: the last of `r` requests cannot start before
    // (r - 1) / n windows have passed, and the idle point comes after it.
    let (n, per) = settings.rate;
    let windows = (report.requests() as u32 - 1) / n;
    assert!(windows >= 1, "the limit matters: {report}");
    assert!(
        crawl.elapsed >= per * windows,
        "{} requests in {:?}",
        report.requests(),
        crawl.elapsed
    );

    // The run went through every path: each kind of fault, a 429, dead links, pages
    // linked to again (cycles), and a dead page linked from more than one page.
    let faults: HashSet<Fault> = reach
        .pages
        .iter()
        .flat_map(|path| {
            let n: usize = path["/page/".len()..].parse().unwrap();
            (0..MAX_FAILURES).filter_map(move |nth| config.fault(n, nth))
        })
        .collect();
    assert_eq!(faults.len(), 4, "every kind of fault is met: {faults:?}");
    assert!(crawl.too_many > 0 && !crawl.dead.is_empty(), "{report}");
    assert!(crawl.duplicates > 0, "links to pages already seen");
    let dead_links = reach
        .pages
        .iter()
        .flat_map(|path| {
            let n: usize = path["/page/".len()..].parse().unwrap();
            config.links(n)
        })
        .filter(|link| reach.dead.contains(link))
        .count();
    assert!(
        dead_links > reach.dead.len(),
        "some dead page is linked from more than one page"
    );

    // Every slow response was given up on by the client, and the server let it go.
    assert!(
        server.idle(Duration::from_secs(2)).await,
        "requests still in flight after the crawl: {report}"
    );
    let report = server.report();
    assert_eq!(report.abandoned, report.total(|log| log.slow), "{report}");
}
