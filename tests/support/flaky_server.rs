//! A flaky HTTP server on 127.0.0.1, for the crawl example and its test.
//!
//! It serves pages `/page/{n}` and fails a share of the requests, chosen by a seeded plan
//! so that a run can be repeated: some get a `500`, some have their connection closed
//! without a response, and some are answered only after [`Config::slow`], past the
//! client's timeout. It counts what it sees: requests in flight (and the most at once),
//! requests per page, and pages served, where a page counts as served only once its
//! response was handed over whole.
//!
//! Requests in flight are counted as `serving.rs` says: a request whose client gave up on it
//! is no longer in flight once its client has closed the connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::serving::{Connection, Gauge, ServerThread};

/// What the server serves and how often it fails.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Pages `/page/0` to `/page/{pages - 1}`; any other path is a 404.
    pub pages: usize,
    /// The share of requests that fail, from 0.0 to 1.0, split evenly between a `500`, a
    /// dropped connection and a slow response.
    pub failure_rate: f64,
    /// Seeds the plan of which requests fail ([`Config::fault`]).
    pub seed: u64,
    /// How long a slow response takes: set it past the client's timeout.
    pub slow: Duration,
    /// The most a good page takes to serve (each takes a planned share of it), so that
    /// requests overlap as real ones do.
    pub work: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pages: 300,
            failure_rate: 0.3,
            seed: 1,
            slow: Duration::from_secs(3),
            work: Duration::from_millis(20),
        }
    }
}

/// How a request fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A `500 Internal Server Error`.
    Status500,
    /// The connection is closed without a response.
    Dropped,
    /// The response comes after [`Config::slow`].
    Slow,
}

impl Config {
    /// The plan: how the `nth` request (from 0) for `page` fails, if it does. A pure
    /// function of the seed, so a test can tell what every attempt will meet.
    pub fn fault(&self, page: usize, nth: u64) -> Option<Fault> {
        let draw = self.draw(page, nth);
        if unit(draw) >= self.failure_rate {
            return None;
        }
        Some(match mix(draw) % 3 {
            0 => Fault::Status500,
            1 => Fault::Dropped,
            _ => Fault::Slow,
        })
    }

    /// How long the `nth` request for `page` takes when it does not fail.
    pub fn work_time(&self, page: usize, nth: u64) -> Duration {
        self.work.mul_f64(unit(mix(mix(self.draw(page, nth)))))
    }

    fn draw(&self, page: usize, nth: u64) -> u64 {
        mix(self.seed ^ mix(page as u64 ^ mix(nth.wrapping_add(0x5eed))))
    }
}

/// splitmix64's finaliser: a good spread of bits from any input.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in `[0, 1)` from 53 bits of `bits`.
pub(crate) fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Counts of what the server saw, taken at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Requests received for pages, good or not.
    pub requests: u64,
    /// Pages served: good responses handed over whole.
    pub served: u64,
    /// Requests answered with a `500`.
    pub status_500: u64,
    /// Connections closed without a response.
    pub dropped: u64,
    /// Requests planned to be slow.
    pub slow: u64,
    /// Requests whose client went away before the response was handed over.
    pub abandoned: u64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// The most requests ever in flight at once.
    pub peak_in_flight: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests: {} pages served, {} × 500, {} dropped, {} slow ({} abandoned by the client); peak {} in flight",
            self.requests,
            self.served,
            self.status_500,
            self.dropped,
            self.slow,
            self.abandoned,
            self.peak_in_flight
        )
    }
}

/// What the handlers share, and the server's owner reads.
struct Shared {
    config: Config,
    /// Requests per page: also the `nth` of the next one, for the plan.
    requests: Vec<AtomicU64>,
    /// Pages served per page.
    served: Vec<AtomicU64>,
    status_500: AtomicU64,
    dropped: AtomicU64,
    slow: AtomicU64,
    gauge: Arc<Gauge>,
}

/// A running flaky server. Dropping it stops the server and closes every connection.
pub struct FlakyServer {
    shared: Arc<Shared>,
    thread: ServerThread,
}

impl FlakyServer {
    /// Starts a server on `127.0.0.1`, on a port the system picks.
    pub fn start(config: Config) -> io::Result<Self> {
        assert!(
            (0.0..=1.0).contains(&config.failure_rate),
            "failure_rate is a share, from 0.0 to 1.0, got {}",
            config.failure_rate
        );
        let shared = Arc::new(Shared {
            config,
            requests: (0..config.pages).map(|_| AtomicU64::new(0)).collect(),
            served: (0..config.pages).map(|_| AtomicU64::new(0)).collect(),
            status_500: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            gauge: Arc::default(),
        });
        let app = Router::new()
            .route("/page/{n}", get(page))
            .with_state(Arc::clone(&shared));
        let thread = ServerThread::start("flaky-server", app)?;
        Ok(FlakyServer { shared, thread })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.thread.addr()
    }

    /// The address of page `n`.
    pub fn url(&self, n: usize) -> String {
        format!("http://{}/page/{n}", self.addr())
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// How many times page `n` was served: its good response handed over whole.
    pub fn served(&self, n: usize) -> u64 {
        self.shared.served[n].load(SeqCst)
    }

    /// How many requests page `n` received.
    pub fn requests(&self, n: usize) -> u64 {
        self.shared.requests[n].load(SeqCst)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.shared.gauge.in_flight()
    }

    /// The most requests ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.gauge.peak()
    }

    /// Waits until no request is in flight, for at most `within`: whether none is. A
    /// client that gave up on a request closes its connection, and the server drops the
    /// request when it reads that close, a moment later.
    pub async fn idle(&self, within: Duration) -> bool {
        self.shared.gauge.idle(within).await
    }

    /// Everything counted so far.
    pub fn report(&self) -> Report {
        let shared = &self.shared;
        let sum = |counts: &[AtomicU64]| counts.iter().map(|c| c.load(SeqCst)).sum();
        Report {
            requests: sum(&shared.requests),
            served: sum(&shared.served),
            status_500: shared.status_500.load(SeqCst),
            dropped: shared.dropped.load(SeqCst),
            slow: shared.slow.load(SeqCst),
            abandoned: shared.gauge.abandoned(),
            in_flight: self.in_flight(),
            peak_in_flight: self.peak_in_flight(),
        }
    }
}

impl fmt::Debug for FlakyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlakyServer")
            .field("addr", &self.addr())
            .field("config", &self.shared.config)
            .field("report", &self.report())
            .finish()
    }
}

async fn page(
    State(shared): State<Arc<Shared>>,
    Extension(connection): Extension<Arc<Connection>>,
    Path(n): Path<usize>,
) -> Response {
    if n >= shared.config.pages {
        return StatusCode::NOT_FOUND.into_response();
    }
    let in_flight = shared.gauge.enter(&connection);
    let nth = shared.requests[n].fetch_add(1, SeqCst);
    let config = &shared.config;
    match config.fault(n, nth) {
        None => {
            tokio::time::sleep(config.work_time(n, nth)).await;
            in_flight.serve(page_body(n), served(&shared, n))
        }
        Some(Fault::Status500) => {
            shared.status_500.fetch_add(1, SeqCst);
            in_flight.respond(StatusCode::INTERNAL_SERVER_ERROR, "try again\n".into())
        }
        Some(Fault::Dropped) => {
            shared.dropped.fetch_add(1, SeqCst);
            in_flight.hang_up().await
        }
        Some(Fault::Slow) => {
            shared.slow.fetch_add(1, SeqCst);
            tokio::time::sleep(config.slow).await;
            in_flight.serve(page_body(n), served(&shared, n))
        }
    }
}

/// Counts page `n` as served.
fn served(shared: &Arc<Shared>, n: usize) -> impl FnOnce() + Send + 'static {
    let shared = Arc::clone(shared);
    move || {
        shared.served[n].fetch_add(1, SeqCst);
    }
}

fn page_body(n: usize) -> String {
    let links: String = (1..=3)
        .map(|step| format!("<a href=\"/page/{}\">next</a>\n", n * 7 + step))
        .collect();
    format!("<h1>page {n}</h1>\n{links}")
}
