//! A crawl that follows links: it starts from one page of a web served on 127.0.0.1 and
//! finds the rest as it goes, through a long-running scheduler (priority = depth) that
//! retries only what is worth it (`retry_if`: a 404 is final; 5xx, 429, timeouts and
//! dropped connections are not), waits as long as a 429's `Retry-After` says
//! (`retry_after`), keeps under a rate limit (`rate_limit`), and knows it has finished at
//! the scheduler's idle point (`idle`).
//!
//! ```sh
//! cargo run --example link_crawl
//! cargo run --example link_crawl -- --concurrency 16 --rate 100/s --pages 300 --seed 7
//! ```
//!
//! At the end it checks the crawl against the server's own counts, and exits with 1 if
//! any check fails.

use std::process::ExitCode;
use std::time::Duration;

use retry_pool::Backoff;
use support::link_graph::{Config, LinkServer, MAX_FAILURES};

#[path = "../tests/support/link_crawl.rs"]
mod link_crawl;

use link_crawl::Settings;

// One thread is plenty: the scheduler runs every attempt in place, inside its stream, and
// the attempts mostly wait on the network.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    let server = LinkServer::start(Config {
        pages: flags.pages,
        seed: flags.seed,
        ..Config::default() // 429s say `Retry-After: 1`; slow pages take 3s
    })?;
    let settings = Settings {
        concurrency: flags.concurrency,
        rate: flags.rate,
        attempts: MAX_FAILURES as u32 + 2, // one to spare: every page gets fetched
        timeout: Duration::from_millis(300),
        backoff: Backoff::exponential(Duration::from_millis(20), Duration::from_millis(200)),
        max_urls: 100_000,
    };
    println!(
        "crawling from {}: concurrency {}, at most {} requests per {:?}, {} attempts of {:?}",
        server.start_url(),
        settings.concurrency,
        settings.rate.0,
        settings.rate.1,
        settings.attempts,
        settings.timeout
    );

    let start = server.start_url();
    let crawled = link_crawl::crawl(&start, settings, |progress| {
        println!("  {progress}");
    });
    let Ok(crawl) = tokio::time::timeout(Duration::from_secs(120), crawled).await else {
        println!("FAILED: the crawl did not end within 120s");
        return Ok(ExitCode::FAILURE);
    };

    // Let the server see the last abandoned requests go before it reports.
    server.idle(Duration::from_secs(1)).await;
    let report = server.report();
    let reach = server.config().reachable();
    println!(
        "crawled {} pages in {:.2?}: {} dead links, {} retries ({} × 429 waited out), deepest page at depth {}",
        crawl.fetched.len(),
        crawl.elapsed,
        crawl.dead.len(),
        crawl.stats.retried,
        crawl.too_many,
        crawl.fetched.values().max().unwrap_or(&0),
    );
    println!("  server  {report}");
    println!(
        "  web     {} pages, {} reachable from the first, {} dead links among them",
        flags.pages,
        reach.pages.len(),
        reach.dead.len()
    );
    let checks = link_crawl::check(&crawl, &report, &reach, &settings);
    for check in &checks {
        println!("  check   {check}");
    }
    Ok(if checks.iter().all(|check| check.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

const USAGE: &str = "\
usage: cargo run --example link_crawl -- [--concurrency N] [--rate N/PER] [--pages N] [--seed N]

  --concurrency N  requests in flight at most (default 8)
  --rate N/PER     at most N requests per PER: 50/s, 10/100ms (default 50/s)
  --pages N        pages in the web (default 80)
  --seed N         the links and the faults (default 1)";

struct Flags {
    concurrency: usize,
    rate: (u32, Duration),
    pages: usize,
    seed: u64,
}

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags {
            concurrency: 8,
            rate: (50, Duration::from_secs(1)),
            pages: 80,
            seed: 1,
        };
        let known = ["--concurrency", "--rate", "--pages", "--seed"];
        for (name, value) in support::flags::parse(args, &known, USAGE)? {
            let invalid = || support::flags::invalid(&name, &value);
            match name.as_str() {
                "--concurrency" => flags.concurrency = value.parse().map_err(|_| invalid())?,
                "--rate" => flags.rate = parse_rate(&value).ok_or_else(invalid)?,
                "--pages" => flags.pages = value.parse().map_err(|_| invalid())?,
                "--seed" => flags.seed = value.parse().map_err(|_| invalid())?,
                _ => unreachable!("checked by flags::parse"),
            }
        }
        if flags.concurrency == 0 || flags.pages == 0 {
            return Err("--concurrency and --pages must be at least 1".into());
        }
        Ok(flags)
    }
}

/// `50/s`, `10/100ms`, `600/1m`: a count above 0 and a window, as `#[pooled(rate = ..)]`
/// takes them.
fn parse_rate(rate: &str) -> Option<(u32, Duration)> {
    let (count, window) = rate.split_once('/')?;
    let count = count.trim().parse().ok().filter(|&count| count > 0)?;
    let window = window.trim();
    let unit_at = window
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(window.len());
    let amount = match &window[..unit_at] {
        "" => 1,
        digits => digits.parse().ok()?,
    };
    let window = match &window[unit_at..] {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount.checked_mul(60)?),
        _ => return None,
    };
    (!window.is_zero()).then_some((count, window))
}
