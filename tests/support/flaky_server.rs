//! A flaky HTTP server on 127.0.0.1, for the crawl example and its test.
//!
//! It serves pages `/page/{n}` and fails a share of the requests, chosen by a seeded plan
//! so that a run can be repeated: some get a `500`, some have their connection closed
//! without a response, and some are answered only after [`Config::slow`], past the
//! client's timeout. It counts what it sees: requests in flight (and the most at once),
//! requests per page, and pages served, where a page counts as served only once its
//! response was handed over whole.
//!
//! A request is in flight from its arrival until its response is handed over whole, or
//! until its client hangs up. hyper notices a hang-up when it next reads the connection,
//! which may come after a new request on another connection is read; so whenever a request
//! arrives, the server first looks at the connections of the requests in flight, and no
//! longer counts those whose client has closed. A client that gives up on a request and
//! closes its connection before it sends the next one is then never seen with more
//! requests in flight than it has.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tower_service::Service;

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
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in `[0, 1)` from 53 bits of `bits`.
fn unit(bits: u64) -> f64 {
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
    abandoned: AtomicU64,
    /// Requests in flight, by number, with their connection.
    open: Mutex<Open>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Default)]
struct Open {
    requests: HashMap<u64, Arc<Connection>>,
    next: u64,
}

/// A running flaky server. Dropping it stops the server and closes every connection.
pub struct FlakyServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FlakyServer {
    /// Starts a server on `127.0.0.1`, on a port the system picks.
    pub fn start(config: Config) -> io::Result<Self> {
        assert!(
            (0.0..=1.0).contains(&config.failure_rate),
            "failure_rate is a share, from 0.0 to 1.0, got {}",
            config.failure_rate
        );
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            requests: (0..config.pages).map(|_| AtomicU64::new(0)).collect(),
            served: (0..config.pages).map(|_| AtomicU64::new(0)).collect(),
            status_500: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            open: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let app = Router::new()
            .route("/page/{n}", get(page))
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("flaky-server".into())
            .spawn(move || {
                // Dropping the runtime at the end drops every connection still open.
                runtime.block_on(serve(listener, app, stopped));
            })?;
        Ok(FlakyServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of page `n`.
    pub fn url(&self, n: usize) -> String {
        format!("http://{}/page/{n}", self.addr)
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
        self.shared.in_flight.load(SeqCst)
    }

    /// The most requests ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak.load(SeqCst)
    }

    /// Waits until no request is in flight, for at most `within`: whether none is. A
    /// client that gave up on a request closes its connection, and the server drops the
    /// request when it reads that close, a moment later.
    pub async fn idle(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.in_flight() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
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
            abandoned: shared.abandoned.load(SeqCst),
            in_flight: self.in_flight(),
            peak_in_flight: self.peak_in_flight(),
        }
    }
}

impl Drop for FlakyServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for FlakyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlakyServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .field("report", &self.report())
            .finish()
    }
}

/// A client's connection, as the handlers of its requests see it.
struct Connection {
    /// Wakes the task serving the connection to drop it: closes it without a response.
    hangup: Notify,
    /// The same socket, to look for the client's close without taking what it sent.
    probe: StdStream,
}

impl Connection {
    /// Whether the client has closed the connection (or reset it).
    fn client_left(&self) -> bool {
        match self.probe.peek(&mut [0]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => error.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// Accepts connections until told to stop. Each connection is served by hyper, with the
/// router as its service, and can be hung up on by its handlers.
async fn serve(listener: StdListener, app: Router, mut stop: oneshot::Receiver<()>) {
    let listener = TcpListener::from_std(listener).expect("inside a runtime with I/O enabled");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted.and_then(|(stream, _)| with_probe(stream)),
            _ = &mut stop => return,
        };
        let Ok((stream, probe)) = stream else {
            // Out of file descriptors, say: wait a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let connection = Arc::new(Connection {
            hangup: Notify::new(),
            probe,
        });
        let service = {
            let (app, connection) = (app.clone(), Arc::clone(&connection));
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(Arc::clone(&connection));
                app.clone().call(request)
            })
        };
        tokio::spawn(async move {
            // hyper drops the handler when it reads the client's close, even while the
            // handler is busy: a slow response given up on by its client ends then.
            let served = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = served => {}
                // Dropping the connection, and then the probe, closes the socket.
                () = connection.hangup.notified() => {}
            }
        });
    }
}

/// The stream, and a second handle on its socket.
fn with_probe(stream: TcpStream) -> io::Result<(TcpStream, StdStream)> {
    stream.set_nodelay(true)?;
    let stream = stream.into_std()?;
    let probe = stream.try_clone()?;
    Ok((TcpStream::from_std(stream)?, probe))
}

async fn page(
    State(shared): State<Arc<Shared>>,
    Extension(connection): Extension<Arc<Connection>>,
    Path(n): Path<usize>,
) -> Response {
    if n >= shared.config.pages {
        return StatusCode::NOT_FOUND.into_response();
    }
    let in_flight = InFlight::enter(&shared, n, &connection);
    let nth = shared.requests[n].fetch_add(1, SeqCst);
    let config = &shared.config;
    match config.fault(n, nth) {
        None => {
            tokio::time::sleep(config.work_time(n, nth)).await;
            in_flight.respond(StatusCode::OK, page_body(n), true)
        }
        Some(Fault::Status500) => {
            shared.status_500.fetch_add(1, SeqCst);
            in_flight.respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "try again\n".into(),
                false,
            )
        }
        Some(Fault::Dropped) => {
            shared.dropped.fetch_add(1, SeqCst);
            let mut in_flight = in_flight;
            in_flight.done = true; // over, with nothing served, once the connection is gone
            connection.hangup.notify_one();
            // Never answers: the connection, and this handler with it, is dropped first.
            std::future::pending().await
        }
        Some(Fault::Slow) => {
            shared.slow.fetch_add(1, SeqCst);
            tokio::time::sleep(config.slow).await;
            in_flight.respond(StatusCode::OK, page_body(n), true)
        }
    }
}

fn page_body(n: usize) -> String {
    let links: String = (1..=3)
        .map(|step| format!("<a href=\"/page/{}\">next</a>\n", n * 7 + step))
        .collect();
    format!("<h1>page {n}</h1>\n{links}")
}

/// A request from its arrival until its response is handed over whole, or its client
/// goes away.
struct InFlight {
    shared: Arc<Shared>,
    /// Its number among the requests in flight.
    id: u64,
    page: usize,
    /// Counted as served when the body is handed over whole.
    served: bool,
    done: bool,
}

impl InFlight {
    fn enter(shared: &Arc<Shared>, page: usize, connection: &Arc<Connection>) -> Self {
        let mut open = shared.open.lock().unwrap();
        // Requests whose client has left are over, whether hyper has noticed yet or not.
        open.requests.retain(|_, connection| {
            let left = connection.client_left();
            if left {
                shared.abandoned.fetch_add(1, SeqCst);
                shared.in_flight.fetch_sub(1, SeqCst);
            }
            !left
        });
        let id = open.next;
        open.next += 1;
        open.requests.insert(id, Arc::clone(connection));
        let now = shared.in_flight.fetch_add(1, SeqCst) + 1;
        shared.peak.fetch_max(now, SeqCst);
        InFlight {
            shared: Arc::clone(shared),
            id,
            page,
            served: false,
            done: false,
        }
    }

    /// A response whose body ends the request when hyper has taken all of it.
    fn respond(mut self, status: StatusCode, body: String, served: bool) -> Response {
        self.served = served;
        let body = Tracked {
            data: Some(Bytes::from(body)),
            in_flight: Some(self),
        };
        (status, axum::body::Body::new(body)).into_response()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let shared = &self.shared;
        let mut open = shared.open.lock().unwrap();
        if open.requests.remove(&self.id).is_none() {
            return; // found abandoned by a later request, and counted then
        }
        if !self.done {
            shared.abandoned.fetch_add(1, SeqCst);
        } else if self.served {
            shared.served[self.page].fetch_add(1, SeqCst);
        }
        shared.in_flight.fetch_sub(1, SeqCst);
    }
}

/// A body that knows when hyper has taken all of it. The request ends when it has: hyper
/// takes a body of known length until the length is reached, and may drop it then without
/// asking for its end.
struct Tracked {
    data: Option<Bytes>,
    in_flight: Option<InFlight>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let data = self.data.take();
        if let Some(mut in_flight) = self.in_flight.take() {
            in_flight.done = true;
        }
        Poll::Ready(data.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |data| data.len() as u64))
    }
}
