//! The crawl that follows links, and its checks against the server's own counts: shared
//! by `examples/link_crawl.rs` and `tests/link_crawl.rs`, which include this file with
//! `#[path]`. It is not a module of the `support` library because it needs `reqwest`, a
//! dev-dependency, which the library cannot use.
//!
//! The crawl is a long-running scheduler, in place: it starts from one URL, and every page
//! fetched submits the links it has not seen yet, at the page's depth plus one as their
//! priority (the shallowest pages first). The crawl is over at the scheduler's idle point:
//! nothing waiting, running, or due to run again.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::RETRY_AFTER;
use reqwest::{Client, StatusCode, Url};
use retry_pool::{Backoff, Pool, PoolStream, Retry, Stats, TaskId};
use support::link_graph::{Reach, Report};

/// How the crawl runs.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// At most `rate.0` requests start in any window of `rate.1`.
    pub rate: (u32, Duration),
    /// Attempts per page, the first one included.
    pub attempts: u32,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// The wait before a failed page is fetched again, unless the server says how long.
    pub backoff: Backoff,
    /// The most URLs the crawl takes on, so that a web without end cannot keep it going.
    pub max_urls: usize,
}

/// Why one attempt failed (a timeout is the pool's to tell).
#[derive(Debug)]
pub enum FetchError {
    /// The server answered, but not with a page.
    Status {
        status: StatusCode,
        /// What `Retry-After` said, when it gave a number of seconds.
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed or was closed.
    Transport(reqwest::Error),
}

impl FetchError {
    /// What is worth a retry: a `5xx` or a `429` may not happen again, nor may a dropped
    /// connection; a `404` (or any other `4xx`) will. Timeouts are always retried by the
    /// pool.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            FetchError::Transport(_) => true,
        }
    }

    /// How long the server asked to wait before the retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            FetchError::Transport(_) => None,
        }
    }
}

/// A page fetched.
struct Page {
    /// The links on it, as absolute URLs.
    links: Vec<Url>,
}

/// What the crawl did, as the crawler saw it.
#[derive(Debug)]
pub struct Crawl {
    /// Pages fetched, by path, with the depth they were found at.
    pub fetched: BTreeMap<String, u32>,
    /// Paths that answered `404`: given up on at once.
    pub dead: BTreeSet<String>,
    /// Pages given up on for any other reason, with why.
    pub given_up: Vec<(String, String)>,
    /// URLs submitted to the scheduler, the first one included.
    pub submitted: usize,
    /// Links found that were submitted already.
    pub duplicates: usize,
    /// `429`s received.
    pub too_many: u64,
    /// Whether the crawl found more URLs than [`Settings::max_urls`], and left some out.
    pub truncated: bool,
    /// Times `idle()` resolved with an outcome not taken yet (the crawl then took it and
    /// went on, so that no link is lost).
    pub early_idles: u32,
    /// Outcomes that came after the idle point, once the scheduler was closed.
    pub after_idle: usize,
    /// The scheduler's counts at the idle point.
    pub stats: Stats,
    /// From the start to the idle point.
    pub elapsed: Duration,
}

/// How far the crawl is, every half second.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub elapsed: Duration,
    pub fetched: usize,
    pub dead: usize,
    pub deepest: u32,
    pub stats: Stats,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>5.2}s  {:>3} pages fetched (depth {:>2}), {:>2} dead links, {:>3} waiting, {} running, {:>2} retries",
            self.elapsed.as_secs_f64(),
            self.fetched,
            self.deepest,
            self.dead,
            self.stats.waiting,
            self.stats.running,
            self.stats.retried,
        )
    }
}

/// Crawls from `start`, following links on its host, as `settings` say; `progress` is told
/// how far it is every half second. Returns at the scheduler's idle point.
pub async fn crawl(start: &str, settings: Settings, mut progress: impl FnMut(Progress)) -> Crawl {
    let start = Url::parse(start).expect("the start is a URL");
    let client = Client::builder()
        .no_proxy() // loopback only, whatever the environment says
        .retry(reqwest::retry::never()) // the pool retries, not the client
        .build()
        .expect("a client without TLS builds");
    let too_many = Cell::new(0);
    let (n, per) = settings.rate;
    let (handle, mut outcomes) = Pool::new(settings.concurrency)
        .retry(Retry::Lifo)
        .attempts(settings.attempts)
        .backoff(settings.backoff)
        .timeout(settings.timeout)
        .retry_if(FetchError::is_transient)
        .retry_after(FetchError::retry_after)
        .rate_limit(n, per)
        .scheduler();

    let began = Instant::now();
    let mut crawl = Crawl {
        fetched: BTreeMap::new(),
        dead: BTreeSet::new(),
        given_up: Vec::new(),
        submitted: 0,
        duplicates: 0,
        too_many: 0,
        truncated: false,
        early_idles: 0,
        after_idle: 0,
        stats: Stats::default(),
        elapsed: Duration::ZERO,
    };
    // Every URL ever submitted; and the tasks without an outcome taken yet, with their URL
    // and depth.
    let mut seen = HashSet::from([start.clone()]);
    let mut tasks: HashMap<TaskId, (Url, u32)> = HashMap::new();
    // The shallowest pages first: priority = depth.
    let submit = |url: &Url, depth: u32| {
        // The task: the pool calls it again for every attempt.
        let (client, url, too_many) = (&client, url.clone(), &too_many);
        let task = move || fetch(client, url.clone(), too_many);
        let priority = i32::try_from(depth).unwrap_or(i32::MAX);
        handle
            .try_submit(task, priority)
            .expect("the scheduler is open and unbounded")
    };
    tasks.insert(submit(&start, 0), (start.clone(), 0));
    crawl.submitted += 1;

    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    ticks.reset(); // the first report after half a second, not at once
    loop {
        // Outcomes first: idle() is only asked while none is ready.
        let (id, outcome) = tokio::select! {
            biased;
            Some(next) = outcomes.next() => next,
            () = handle.idle() => {
                if tasks.is_empty() {
                    break;
                }
                // Idle, with an outcome settled but not taken yet: take it, as it may have
                // links to follow.
                crawl.early_idles += 1;
                outcomes.next().await.expect("the scheduler is open")
            }
            _ = ticks.tick() => {
                progress(Progress {
                    elapsed: began.elapsed(),
                    fetched: crawl.fetched.len(),
                    dead: crawl.dead.len(),
                    deepest: crawl.fetched.values().copied().max().unwrap_or(0),
                    stats: outcomes.stats(),
                });
                continue;
            }
        };
        let (url, depth) = tasks
            .remove(&id)
            .expect("every outcome is of a task submitted");
        match outcome {
            Ok(page) => {
                crawl.fetched.insert(url.path().to_owned(), depth);
                for link in page.links {
                    // Only this site: the crawl stays on the server it was given.
                    if link.origin() != start.origin() {
                        continue;
                    }
                    if seen.contains(&link) {
                        crawl.duplicates += 1;
                        continue;
                    }
                    if seen.len() == settings.max_urls {
                        crawl.truncated = true;
                        continue;
                    }
                    seen.insert(link.clone());
                    tasks.insert(submit(&link, depth + 1), (link, depth + 1));
                    crawl.submitted += 1;
                }
            }
            Err(failure) if failure.is_permanent() => {
                crawl.dead.insert(url.path().to_owned());
            }
            Err(failure) => crawl
                .given_up
                .push((url.path().to_owned(), failure.to_string())),
        }
    }
    crawl.elapsed = began.elapsed();
    crawl.stats = outcomes.stats();
    crawl.too_many = too_many.get();
    // Idle and every outcome taken: nothing may come after.
    handle.close();
    while outcomes.next().await.is_some() {
        crawl.after_idle += 1;
    }
    crawl
}

/// One attempt at `url`; counts the `429`s in `too_many`.
async fn fetch(client: &Client, url: Url, too_many: &Cell<u64>) -> Result<Page, FetchError> {
    let response = client.get(url.clone()).send().await?;
    let status = response.status();
    if !status.is_success() {
        too_many.set(too_many.get() + u64::from(status == StatusCode::TOO_MANY_REQUESTS));
        // Seconds only: an HTTP date gives no hint, and the backoff applies.
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs);
        return Err(FetchError::Status {
            status,
            retry_after,
        });
    }
    let html = response.text().await?;
    Ok(Page {
        links: links(&url, &html),
    })
}

/// The targets of the `href="..."` attributes of `html`, resolved against `base`.
fn links(base: &Url, html: &str) -> Vec<Url> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| {
            let mut link = base.join(rest.split('"').next()?).ok()?;
            link.set_fragment(None);
            Some(link)
        })
        .collect()
}

/// One check of the crawl against the server's own counts.
#[derive(Debug)]
pub struct Check {
    /// What is checked.
    pub what: &'static str,
    /// What was found: the figures, or what went wrong.
    pub found: String,
    pub ok: bool,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok    " } else { "FAILED" };
        write!(f, "{mark} {}: {}", self.what, self.found)
    }
}

/// The share of a rate window allowed for the delay between the start of an attempt and
/// its arrival at the server. The pool spaces the starts; the server sees each a little
/// later, by a delay that varies (a new connection, a busy thread), so two arrivals `n`
/// apart may be that much closer than the window. Without the limit, every request would
/// come within a fraction of it.
pub const ARRIVAL_SLACK: f64 = 0.1;

/// Checks `crawl` against `report`, the server's counts, and `reach`, what the web holds.
pub fn check(crawl: &Crawl, report: &Report, reach: &Reach, settings: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    let log = |path: &str| report.paths.get(path).cloned().unwrap_or_default();

    // Every reachable page fetched, each served exactly once, and nothing else requested.
    let fetched: BTreeSet<String> = crawl.fetched.keys().cloned().collect();
    let twice: Vec<_> = reach.pages.iter().filter(|p| log(p).served != 1).collect();
    let strangers: Vec<_> = report
        .paths
        .keys()
        .filter(|path| !reach.pages.contains(*path) && !reach.dead.contains(*path))
        .collect();
    let ok = fetched == reach.pages && twice.is_empty() && strangers.is_empty();
    checks.push(Check {
        what: "every reachable page fetched exactly once",
        ok,
        found: if ok {
            format!(
                "{} pages, each served once ({} links to pages already seen skipped)",
                fetched.len(),
                crawl.duplicates
            )
        } else {
            format!(
                "fetched {} of {} reachable; not served exactly once: {twice:?}; unreachable paths requested: {strangers:?}",
                fetched.len(),
                reach.pages.len()
            )
        },
    });

    // Every dead link found, each requested once: a 404 is never retried.
    let retried_404: Vec<_> = reach
        .dead
        .iter()
        .filter(|path| log(path).requests.len() != 1 || log(path).not_found != 1)
        .collect();
    let ok = crawl.dead == reach.dead && retried_404.is_empty();
    checks.push(Check {
        what: "no 404 retried",
        ok,
        found: if ok {
            format!("{} dead links, each requested once", crawl.dead.len())
        } else {
            format!(
                "dead links found {:?}, reachable {:?}; requested more than once: {retried_404:?}",
                crawl.dead, reach.dead
            )
        },
    });

    // Every failure the server made was retried once, and nothing else was.
    let failures =
        report.total(|log| log.status_500 + log.dropped + log.slow + log.too_many.len() as u64);
    let ok = crawl.stats.retried == failures && crawl.given_up.is_empty();
    checks.push(Check {
        what: "every transient failure retried",
        ok,
        found: match crawl.given_up.as_slice() {
            [] => format!(
                "{} retries for {failures} failed requests (500, dropped, slow, 429), none given up",
                crawl.stats.retried
            ),
            given_up => format!(
                "{} retries for {failures} failed requests; given up: {given_up:?}",
                crawl.stats.retried
            ),
        },
    });

    // Every 429 followed by a request for the same page no earlier than Retry-After.
    let waits = report.waits();
    let early: Vec<_> = waits
        .iter()
        .filter(|wait| wait.waited.is_none_or(|waited| waited < report.retry_after))
        .collect();
    let shortest = waits.iter().filter_map(|wait| wait.waited).min();
    checks.push(Check {
        what: "every Retry-After honoured",
        ok: early.is_empty() && waits.len() as u64 == crawl.too_many,
        found: match shortest {
            Some(shortest) if early.is_empty() => format!(
                "{} × 429 (Retry-After: {}), the next request came {:.2?} later at the soonest",
                waits.len(),
                report.retry_after.as_secs(),
                shortest
            ),
            _ => format!(
                "{} × 429 received, {} answered; too soon or never: {early:?}",
                crawl.too_many,
                waits.len()
            ),
        },
    });

    // The rate limit, as the server saw the requests arrive.
    let (n, per) = settings.rate;
    let window = per.mul_f64(1.0 - ARRIVAL_SLACK);
    let most = report.most_in_window(window);
    checks.push(Check {
        what: "rate never exceeded",
        ok: most <= n as usize,
        found: format!(
            "at most {most} requests arrived in any {window:?} (limit {n} per {per:?}), {} in all",
            report.requests()
        ),
    });

    // The concurrency bound, as the server saw it.
    checks.push(Check {
        what: "concurrency bound",
        ok: report.peak_in_flight <= settings.concurrency,
        found: format!(
            "at most {} requests in flight at the server (limit {})",
            report.peak_in_flight, settings.concurrency
        ),
    });

    // The idle point came once everything above was done, and nothing after it.
    let stats = crawl.stats;
    let ok = stats.waiting == 0 && stats.running == 0 && crawl.after_idle == 0 && !crawl.truncated;
    checks.push(Check {
        what: "finished at the idle point",
        ok,
        found: format!(
            "idle after {:.2?}: {} tasks, {} waiting, {} running, {} outcomes after ({} idle before its last outcome was taken){}",
            crawl.elapsed,
            crawl.submitted,
            stats.waiting,
            stats.running,
            crawl.after_idle,
            crawl.early_idles,
            if crawl.truncated {
                ", URLs left out"
            } else {
                ""
            }
        ),
    });
    checks
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status { status, .. } => write!(f, "HTTP {status}"),
            // reqwest says which request failed; its innermost cause says why.
            FetchError::Transport(error) => write!(f, "{}", support::innermost_cause(error)),
        }
    }
}

impl Error for FetchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FetchError::Status { .. } => None,
            FetchError::Transport(error) => Some(error),
        }
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        FetchError::Transport(error)
    }
}
