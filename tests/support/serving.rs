//! What the test servers on 127.0.0.1 share: a server thread that stops when dropped, the
//! connections of the requests, and a count of requests in flight as the server sees them.
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
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tower_service::Service;

/// A server thread on `127.0.0.1`, on a port the system picks. Dropping it stops the
/// server and closes every connection.
pub(crate) struct ServerThread {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Serves `app` on a thread named `name`, each request with its [`Connection`] as an
    /// extension.
    pub(crate) fn start(name: &str, app: Router) -> io::Result<Self> {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Dropping the runtime at the end drops every connection still open.
                runtime.block_on(serve(listener, app, stopped));
            })?;
        Ok(ServerThread {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where the server listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client's connection, as the handlers of its requests see it.
pub(crate) struct Connection {
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

/// Requests in flight, and the most at once, as the server sees them.
#[derive(Default)]
pub(crate) struct Gauge {
    /// Requests in flight, by number, with their connection.
    open: Mutex<Open>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    abandoned: AtomicU64,
}

#[derive(Default)]
struct Open {
    requests: HashMap<u64, Arc<Connection>>,
    next: u64,
}

impl Gauge {
    /// A request arrives on `connection`: in flight until the guard ends it.
    pub(crate) fn enter(self: &Arc<Self>, connection: &Arc<Connection>) -> InFlight {
        let mut open = self.open.lock().unwrap();
        // Requests whose client has left are over, whether hyper has noticed yet or not.
        open.requests.retain(|_, connection| {
            let left = connection.client_left();
            if left {
                self.abandoned.fetch_add(1, SeqCst);
                self.in_flight.fetch_sub(1, SeqCst);
            }
            !left
        });
        let id = open.next;
        open.next += 1;
        open.requests.insert(id, Arc::clone(connection));
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        InFlight {
            gauge: Arc::clone(self),
            id,
            connection: Arc::clone(connection),
            on_served: None,
            done: false,
        }
    }

    /// Requests in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    /// The most requests ever in flight at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(SeqCst)
    }

    /// Requests whose client went away before the response was handed over.
    pub(crate) fn abandoned(&self) -> u64 {
        self.abandoned.load(SeqCst)
    }

    /// Waits until no request is in flight, for at most `within`: whether none is. A
    /// client that gave up on a request closes its connection, and the server drops the
    /// request when it reads that close, a moment later.
    pub(crate) async fn idle(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.in_flight() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }
}

/// A request from its arrival until its response is handed over whole, or its client
/// goes away.
pub(crate) struct InFlight {
    gauge: Arc<Gauge>,
    /// Its number among the requests in flight.
    id: u64,
    connection: Arc<Connection>,
    /// Called when a good response was handed over whole.
    on_served: Option<Box<dyn FnOnce() + Send>>,
    done: bool,
}

impl InFlight {
    /// A response whose body ends the request when hyper has taken all of it.
    pub(crate) fn respond(self, status: StatusCode, body: String) -> Response {
        let body = Tracked {
            data: Some(Bytes::from(body)),
            in_flight: Some(self),
        };
        (status, axum::body::Body::new(body)).into_response()
    }

    /// A good response: `served` is called once it was handed over whole, never if its
    /// client went away first.
    pub(crate) fn serve(
        mut self,
        body: String,
        served: impl FnOnce() + Send + 'static,
    ) -> Response {
        self.on_served = Some(Box::new(served));
        self.respond(StatusCode::OK, body)
    }

    /// Closes the connection without a response, and never returns: the connection, and
    /// the handler awaiting this with it, is dropped first.
    pub(crate) async fn hang_up(mut self) -> Response {
        self.done = true; // over, with nothing served, once the connection is gone
        self.connection.hangup.notify_one();
        std::future::pending().await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let gauge = &self.gauge;
        let mut open = gauge.open.lock().unwrap();
        if open.requests.remove(&self.id).is_none() {
            return; // found abandoned by a later request, and counted then
        }
        if !self.done {
            gauge.abandoned.fetch_add(1, SeqCst);
        } else if let Some(served) = self.on_served.take() {
            served();
        }
        gauge.in_flight.fetch_sub(1, SeqCst);
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
