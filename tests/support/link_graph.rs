//! A web of linked pages on 127.0.0.1, for the crawl that follows links
//! (`examples/link_crawl.rs`) and its test.
//!
//! Pages `/page/0` to `/page/{pages - 1}` link to one another as a seeded plan says: each
//! page to a few pages further on, often one back (so the web has cycles, self-links
//! included), and some to pages that do not exist (`/gone/{k}`, or `/page/{n}` past the
//! last page), which answer `404`. Several pages may link to the same dead page, and not
//! every page is reachable from `/page/0`.
//!
//! Some pages fail on their first one or two requests, then answer: a `500`, a connection
//! closed without a response, or a response only after [`Config::slow`] (past the
//! client's timeout). A few answer their first request with `429 Too Many Requests` and
//! `Retry-After: {Config::retry_after}` (in whole seconds), then answer.
//!
//! The server keeps its own counts ([`LinkServer::report`]): the arrival time of every
//! request, and per path the requests, the pages served (a `200` handed over whole), the
//! `404`s and the other faults, and when each `429` was answered; and the most requests in
//! flight at once, counted as `serving.rs` says.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;

use crate::flaky_server::{mix, unit};
use crate::serving::{Connection, Gauge, ServerThread};

/// The web, and how its pages fail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Pages `/page/0` to `/page/{pages - 1}`.
    pub pages: usize,
    /// Seeds the links and the faults.
    pub seed: u64,
    /// The share of pages with a dead link.
    pub dead_links: f64,
    /// The share of pages that fail their first one or two requests (a `500`, a dropped
    /// connection or a slow response, drawn for each).
    pub failure_rate: f64,
    /// The share of pages that answer their first request with a `429`.
    pub too_many_rate: f64,
    /// What a `429` says in `Retry-After`: whole seconds, as the header has them.
    pub retry_after: Duration,
    /// How long a slow response takes: set it past the client's timeout.
    pub slow: Duration,
    /// The most a good page takes to serve (each takes between half of it and all of it),
    /// so that requests overlap as real ones do.
    pub work: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pages: 80,
            seed: 1,
            dead_links: 0.25,
            failure_rate: 0.25,
            too_many_rate: 0.06,
            retry_after: Duration::from_secs(1),
            slow: Duration::from_secs(3),
            work: Duration::from_millis(30),
        }
    }
}

/// How a request for a page fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A `500 Internal Server Error`.
    Status500,
    /// The connection is closed without a response.
    Dropped,
    /// The response comes after [`Config::slow`].
    Slow,
    /// A `429 Too Many Requests` with `Retry-After`.
    TooMany,
}

/// Pages, and dead pages, reachable from `/page/0`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// Pages that exist: their paths.
    pub pages: BTreeSet<String>,
    /// Paths linked to that answer `404`.
    pub dead: BTreeSet<String>,
}

/// The most requests a page fails before it answers: a crawl with more attempts than this
/// fetches every page it finds.
pub const MAX_FAILURES: u64 = 2;

// Salts, so that the links and the faults of a page are drawn independently.
const LINKS: u64 = 0x11_4c_1b;
const FAULTS: u64 = 0xfa_17;

impl Config {
    /// The path of page `n`.
    pub fn path(n: usize) -> String {
        format!("/page/{n}")
    }

    /// The paths page `n` links to, in the order it lists them: duplicates included.
    pub fn links(&self, n: usize) -> Vec<String> {
        let draw = |k: u64| mix(self.seed ^ mix(n as u64 ^ mix(LINKS ^ k)));
        let mut links = Vec::new();
        for k in 0..2 + draw(0) % 3 {
            let next = n + 1 + (draw(1 + k) % 8) as usize;
            if next < self.pages {
                links.push(Self::path(next));
            }
        }
        if unit(draw(10)) < 0.5 {
            links.push(Self::path((draw(11) % (n as u64 + 1)) as usize));
        }
        if unit(draw(20)) < self.dead_links {
            // Few dead pages, so that several pages share one.
            let k = draw(21) % (self.pages as u64 / 8).max(2);
            links.push(match draw(22) % 2 {
                0 => format!("/gone/{k}"),
                _ => Self::path(self.pages + k as usize),
            });
        }
        links
    }

    /// The plan: how the `nth` request (from 0) for page `n` fails, if it does. A pure
    /// function of the seed, so a test can tell what every request will meet.
    pub fn fault(&self, n: usize, nth: u64) -> Option<Fault> {
        let draw = mix(self.seed ^ mix(n as u64 ^ FAULTS));
        let share = unit(draw);
        if share < self.too_many_rate {
            return (nth == 0).then_some(Fault::TooMany);
        }
        let failures = 1 + mix(draw) % MAX_FAILURES;
        if share >= self.too_many_rate + self.failure_rate || nth >= failures {
            return None;
        }
        Some(match mix(draw ^ mix(nth)) % 3 {
            0 => Fault::Status500,
            1 => Fault::Dropped,
            _ => Fault::Slow,
        })
    }

    /// How long the `nth` request for page `n` takes when it does not fail.
    fn work_time(&self, n: usize, nth: u64) -> Duration {
        let draw = mix(self.seed ^ mix(n as u64 ^ mix(nth ^ 0x3017)));
        self.work.mul_f64(0.5 + unit(draw) / 2.0)
    }

    /// Which page a path names, if it is one that exists.
    fn page(&self, path: &str) -> Option<usize> {
        let n = path.strip_prefix("/page/")?.parse().ok()?;
        (n < self.pages).then_some(n)
    }

    /// What a crawl from `/page/0` can find by following the links.
    pub fn reachable(&self) -> Reach {
        let mut reach = Reach::default();
        let mut found = vec![false; self.pages];
        found[0] = true;
        let mut line = VecDeque::from([0]);
        while let Some(n) = line.pop_front() {
            reach.pages.insert(Self::path(n));
            for link in self.links(n) {
                match self.page(&link) {
                    Some(next) if !found[next] => {
                        found[next] = true;
                        line.push_back(next);
                    }
                    Some(_) => {}
                    None => {
                        reach.dead.insert(link);
                    }
                }
            }
        }
        reach
    }
}

/// What the server saw of one path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathLog {
    /// When each request arrived.
    pub requests: Vec<Instant>,
    /// Good responses handed over whole.
    pub served: u64,
    /// Requests answered `404`.
    pub not_found: u64,
    /// Requests answered `500`.
    pub status_500: u64,
    /// Connections closed without a response.
    pub dropped: u64,
    /// Requests answered late, on purpose.
    pub slow: u64,
    /// When each `429` was answered.
    pub too_many: Vec<Instant>,
}

/// Everything the server counted, taken at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Per path, in path order.
    pub paths: BTreeMap<String, PathLog>,
    /// When every request arrived, in order.
    pub arrivals: Vec<Instant>,
    /// The most requests ever in flight at once.
    pub peak_in_flight: usize,
    /// Requests whose client went away before the response was handed over.
    pub abandoned: u64,
    /// What each `429` asked for.
    pub retry_after: Duration,
}

/// A `429` and the request that followed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    /// The path answered `429`.
    pub path: String,
    /// How long after the `429` the next request for the path came, if one came.
    pub waited: Option<Duration>,
}

impl Report {
    /// Requests received, for every path.
    pub fn requests(&self) -> usize {
        self.arrivals.len()
    }

    /// A count over every path.
    pub fn total(&self, count: impl Fn(&PathLog) -> u64) -> u64 {
        self.paths.values().map(count).sum()
    }

    /// Every `429`, with the wait before the next request for its path.
    pub fn waits(&self) -> Vec<Wait> {
        let mut waits = Vec::new();
        for (path, log) in &self.paths {
            for &answered in &log.too_many {
                let next = log.requests.iter().find(|&&arrived| arrived > answered);
                waits.push(Wait {
                    path: path.clone(),
                    waited: next.map(|&next| next - answered),
                });
            }
        }
        waits
    }

    /// The most requests that arrived within any window of length `window`.
    pub fn most_in_window(&self, window: Duration) -> usize {
        let mut most = 0;
        let mut first = 0;
        for (last, &arrived) in self.arrivals.iter().enumerate() {
            while arrived - self.arrivals[first] >= window {
                first += 1;
            }
            most = most.max(last + 1 - first);
        }
        most
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests for {} paths: {} served, {} × 404, {} × 429, {} × 500, {} dropped, {} slow ({} abandoned by the client); peak {} in flight",
            self.requests(),
            self.paths.len(),
            self.total(|log| log.served),
            self.total(|log| log.not_found),
            self.total(|log| log.too_many.len() as u64),
            self.total(|log| log.status_500),
            self.total(|log| log.dropped),
            self.total(|log| log.slow),
            self.abandoned,
            self.peak_in_flight,
        )
    }
}

/// What the handlers share, and the server's owner reads.
struct Shared {
    config: Config,
    log: Mutex<Log>,
    gauge: Arc<Gauge>,
}

#[derive(Default)]
struct Log {
    paths: BTreeMap<String, PathLog>,
    arrivals: Vec<Instant>,
}

impl Shared {
    /// Counts a request for `path` arriving now; returns its number among the requests for
    /// `path`, from 0.
    fn arrived(&self, path: &str) -> u64 {
        let now = Instant::now();
        let mut log = self.log.lock().unwrap();
        log.arrivals.push(now);
        let requests = &mut log.paths.entry(path.to_owned()).or_default().requests;
        requests.push(now);
        requests.len() as u64 - 1
    }

    /// Counts something about `path`.
    fn count(&self, path: &str, count: impl FnOnce(&mut PathLog)) {
        let mut log = self.log.lock().unwrap();
        count(log.paths.get_mut(path).expect("counted on arrival"));
    }
}

/// A running web of pages. Dropping it stops the server and closes every connection.
pub struct LinkServer {
    shared: Arc<Shared>,
    thread: ServerThread,
}

impl LinkServer {
    /// Starts a server on `127.0.0.1`, on a port the system picks.
    pub fn start(config: Config) -> io::Result<Self> {
        assert!(config.pages > 0, "the web needs a first page");
        for share in [config.dead_links, config.failure_rate, config.too_many_rate] {
            assert!((0.0..=1.0).contains(&share), "a share, 0 to 1: {share}");
        }
        assert!(
            config.retry_after.subsec_nanos() == 0,
            "Retry-After is in whole seconds: {:?}",
            config.retry_after
        );
        let shared = Arc::new(Shared {
            config,
            log: Mutex::default(),
            gauge: Arc::default(),
        });
        let app = Router::new()
            .route("/page/{n}", get(page))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        let thread = ServerThread::start("link-server", app)?;
        Ok(LinkServer { shared, thread })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.thread.addr()
    }

    /// The address of the first page, where a crawl starts.
    pub fn start_url(&self) -> String {
        format!("http://{}{}", self.addr(), Config::path(0))
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Waits until no request is in flight, for at most `within`: whether none is.
    pub async fn idle(&self, within: Duration) -> bool {
        self.shared.gauge.idle(within).await
    }

    /// Everything counted so far.
    pub fn report(&self) -> Report {
        let log = self.shared.log.lock().unwrap();
        Report {
            paths: log.paths.clone(),
            arrivals: log.arrivals.clone(),
            peak_in_flight: self.shared.gauge.peak(),
            abandoned: self.shared.gauge.abandoned(),
            retry_after: self.shared.config.retry_after,
        }
    }
}

impl fmt::Debug for LinkServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkServer")
            .field("addr", &self.addr())
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

async fn page(
    State(shared): State<Arc<Shared>>,
    Extension(connection): Extension<Arc<Connection>>,
    uri: Uri,
) -> Response {
    let path = uri.path();
    let config = &shared.config;
    let Some(n) = config.page(path) else {
        return not_found(State(shared), Extension(connection), uri).await;
    };
    let in_flight = shared.gauge.enter(&connection);
    let nth = shared.arrived(path);
    match config.fault(n, nth) {
        None => {
            tokio::time::sleep(config.work_time(n, nth)).await;
            in_flight.serve(body(config, n), served(&shared, path))
        }
        Some(Fault::Status500) => {
            shared.count(path, |log| log.status_500 += 1);
            in_flight.respond(StatusCode::INTERNAL_SERVER_ERROR, "try again\n".into())
        }
        Some(Fault::Dropped) => {
            shared.count(path, |log| log.dropped += 1);
            in_flight.hang_up().await
        }
        Some(Fault::Slow) => {
            shared.count(path, |log| log.slow += 1);
            tokio::time::sleep(config.slow).await;
            in_flight.serve(body(config, n), served(&shared, path))
        }
        Some(Fault::TooMany) => {
            shared.count(path, |log| log.too_many.push(Instant::now()));
            let mut response =
                in_flight.respond(StatusCode::TOO_MANY_REQUESTS, "slow down\n".into());
            let seconds = HeaderValue::from(config.retry_after.as_secs());
            response.headers_mut().insert(RETRY_AFTER, seconds);
            response
        }
    }
}

/// Any path that is not a page.
async fn not_found(
    State(shared): State<Arc<Shared>>,
    Extension(connection): Extension<Arc<Connection>>,
    uri: Uri,
) -> Response {
    let path = uri.path();
    let in_flight = shared.gauge.enter(&connection);
    shared.arrived(path);
    shared.count(path, |log| log.not_found += 1);
    in_flight.respond(StatusCode::NOT_FOUND, "no such page\n".into())
}

/// Counts `path` as served.
fn served(shared: &Arc<Shared>, path: &str) -> impl FnOnce() + Send + 'static {
    let (shared, path) = (Arc::clone(shared), path.to_owned());
    move || shared.count(&path, |log| log.served += 1)
}

/// Page `n`: a title and its links.
fn body(config: &Config, n: usize) -> String {
    let links: String = config
        .links(n)
        .iter()
        .map(|link| format!("<a href=\"{link}\">{link}</a>\n"))
        .collect();
    format!("<!doctype html>\n<title>page {n}</title>\n{links}")
}
