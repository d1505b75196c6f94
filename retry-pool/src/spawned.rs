//! The spawned flavour: attempts run as tokio tasks on the runtime's workers, started by a
//! driver task that keeps the pool full while the consumer is busy.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinError, JoinHandle, JoinSet};

use crate::engine::{Engine, Stop};
use crate::job::Meta;
use crate::pool_stream::PoolStream;
use crate::source::{Cancel, Source};
use crate::stats::{Counters, Stats};
use crate::task::{Attempt, Handback, Limits, Outcome, TaskResult};

/// The most outcomes buffered for a slow consumer, whatever the concurrency.
const MAX_BUFFER: usize = 1 << 16;

/// The completion stream of a spawned pool: like [`Completions`](crate::Completions), but
/// every attempt runs as a tokio task, so CPU-heavy tasks use every worker thread.
///
/// Made by [`Pool::spawn`](crate::Pool::spawn),
/// [`Pool::spawn_futures`](crate::Pool::spawn_futures) and `#[pooled(spawn = true)]`. On
/// its first poll it spawns a driver task that starts attempts whenever a slot is free,
/// even while the consumer is busy: finished outcomes wait in a buffer of `concurrency`
/// entries (at most 65,536). It must be polled within a tokio runtime.
///
/// Dropping the stream aborts the driver and every attempt in flight; none starts after.
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{Pool, PoolStream, Retry};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
/// let tasks = (0..8u64).map(|n| move || async move {
///     tokio::time::sleep(Duration::from_millis(5)).await;
///     if n % 4 == 0 { Err("unlucky") } else { Ok(n) }
/// });
/// let mut done = Pool::new(4).retry(Retry::Lifo).attempts(2).spawn(tasks);
/// let first = done.next().await.unwrap();
/// // While the consumer is busy, the driver keeps the slots full; outcomes wait for it.
/// tokio::time::sleep(Duration::from_millis(50)).await;
/// let mut outcomes = vec![first];
/// outcomes.extend(done.by_ref().collect::<Vec<_>>().await);
/// assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 6);
/// let stats = done.stats(); // see `PoolStream`
/// assert_eq!((stats.succeeded, stats.failed, stats.retried), (6, 2, 2));
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Spawned<R: TaskResult> {
    state: State<R>,
    counters: Arc<Counters>,
    /// Set when the stream is dropped: an attempt spawned but not started yet never starts.
    closed: Arc<AtomicBool>,
}

type Received<R> = mpsc::Receiver<(usize, Outcome<R>)>;

enum State<R: TaskResult> {
    /// Not polled yet: the driver, and the receiving end of its outcomes.
    Idle(Pin<Box<dyn Future<Output = ()> + Send>>, Received<R>),
    Running(JoinHandle<()>, Received<R>),
    Done,
}

impl<R: TaskResult> Spawned<R>
where
    R: Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
{
    pub(crate) fn new<S, A>(
        engine: Engine<S, R>,
        attempt: fn(A::Task, Limits) -> A,
        limits: Limits,
        concurrency: usize,
    ) -> Self
    where
        S: Source<Task = A::Task> + Send + 'static,
        A: Attempt<Result = R> + Send + 'static,
        A::Task: Send + 'static,
    {
        let (outcomes, received) = mpsc::channel(concurrency.min(MAX_BUFFER));
        let counters = Arc::clone(engine.counters());
        let closed = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            engine,
            attempt,
            limits,
            concurrency,
            running: JoinSet::new(),
            running_attempts: HashMap::new(),
            outcomes,
            closed: Arc::clone(&closed),
        };
        Spawned {
            state: State::Idle(Box::pin(driver.run()), received),
            counters,
            closed,
        }
    }
}

// The driver is boxed and the rest is handles: nothing is pinned in place.
impl<R: TaskResult> Unpin for Spawned<R> {}

impl<R: TaskResult> Spawned<R> {
    /// The next outcome with its task's index.
    pub(crate) fn poll_indexed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<R>)>> {
        self.state = match std::mem::replace(&mut self.state, State::Done) {
            State::Idle(driver, received) => State::Running(tokio::spawn(driver), received),
            state => state,
        };
        let State::Running(driver, received) = &mut self.state else {
            return Poll::Ready(None);
        };
        if let Some(outcome) = std::task::ready!(received.poll_recv(cx)) {
            return Poll::Ready(Some(outcome));
        }
        // The driver has finished and dropped its sender. If it panicked (a bug in a
        // source or in retry-pool itself), say so rather than end quietly.
        let ended = std::task::ready!(Pin::new(driver).poll(cx));
        self.state = State::Done;
        if let Err(error) = ended {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        Poll::Ready(None)
    }
}

impl<R: TaskResult> Stream for Spawned<R> {
    type Item = Outcome<R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_indexed(cx)
            .map(|next| next.map(|(_, outcome)| outcome))
    }
}

impl<R: TaskResult> PoolStream for Spawned<R> {
    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl<R: TaskResult> FusedStream for Spawned<R> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl<R: TaskResult> Drop for Spawned<R> {
    fn drop(&mut self) {
        // Dropping the driver drops its `JoinSet`, which aborts every attempt; the driver
        // also sees the closed channel before it would start another. The abort takes
        // effect later: meanwhile, attempts spawned and not yet started see `closed`.
        self.closed.store(true, Ordering::Release);
        if let State::Running(driver, _) = &self.state {
            driver.abort();
        }
    }
}

impl<R: TaskResult> fmt::Debug for Spawned<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle(..) => "idle",
            State::Running(..) => "running",
            State::Done => "done",
        };
        f.debug_struct("Spawned").field("state", &state).finish()
    }
}

struct Driver<S: Source, A: Attempt> {
    engine: Engine<S, A::Result>,
    attempt: fn(A::Task, Limits) -> A,
    limits: Limits,
    concurrency: usize,
    running: JoinSet<Handback<A::Task, A::Result>>,
    /// The attempt each running tokio task is (to report a panic or an abort against its
    /// task), and its handle (to abort it on cancellation).
    running_attempts: HashMap<tokio::task::Id, Running>,
    outcomes: mpsc::Sender<(usize, Outcome<A::Result>)>,
    /// Set when the stream is dropped.
    closed: Arc<AtomicBool>,
}

impl<S, A> Driver<S, A>
where
    S: Source<Task = A::Task>,
    A: Attempt + Send + 'static,
    A::Task: Send + 'static,
    A::Result: Send + 'static,
{
    async fn run(mut self) {
        // Set when the engine said nothing waits and its source has ended: only a
        // settled attempt can give it work again.
        let mut idle = false;
        let mut cancels = Vec::new();
        let mut batch = Vec::new();
        loop {
            if self.running.is_empty() && self.engine.is_exhausted() {
                return;
            }
            let room = self.running.len() < self.concurrency;
            let engine = &mut self.engine;
            let next = poll_fn(|cx| {
                if S::CANCELS {
                    engine.poll_cancellations(cx, &mut cancels);
                }
                if !cancels.is_empty() {
                    return Poll::Ready(Next::Cancel);
                }
                match room && !idle {
                    true => engine.poll_next(cx).map(Next::Start),
                    false => Poll::Pending,
                }
            });
            tokio::select! {
                biased;
                () = self.outcomes.closed() => return,
                next = next => match next {
                    Next::Cancel => {
                        for cancel in cancels.drain(..) {
                            if let Some(outcome) = self.cancel(cancel) {
                                if self.outcomes.send(outcome).await.is_err() {
                                    return;
                                }
                            }
                        }
                        continue;
                    }
                    Next::Start(None) => {
                        idle = true;
                        continue;
                    }
                    Next::Start(Some(job)) => {
                        // The consumer may have gone while this task was not looking.
                        if self.outcomes.is_closed() {
                            return;
                        }
                        let meta = job.next_attempt();
                        let attempt = (self.attempt)(job.task, self.limits);
                        #[cfg(feature = "tracing")]
                        let attempt =
                            tracing::Instrument::instrument(attempt, crate::trace::attempt_span(meta));
                        let closed = Arc::clone(&self.closed);
                        let handle = self.running.spawn(async move {
                            // Spawned before the stream was dropped but not started then:
                            // it never starts, and the driver's drop aborts it.
                            if closed.load(Ordering::Acquire) {
                                return std::future::pending().await;
                            }
                            attempt.await
                        });
                        let running = Running {
                            meta,
                            handle,
                            cancelled: false,
                        };
                        self.running_attempts.insert(running.handle.id(), running);
                        continue;
                    }
                },
                Some(joined) = self.running.join_next_with_id() => {
                    idle = false;
                    // Settle every attempt that has finished by now, then send them all:
                    // the consumer is woken once for the lot instead of once for each.
                    batch.extend(self.settle(joined));
                    while let Some(joined) = self.running.try_join_next_with_id() {
                        batch.extend(self.settle(joined));
                    }
                }
            }
            for outcome in batch.drain(..) {
                if self.outcomes.send(outcome).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Settles an attempt that ended: its outcome, or `None` when it will run again.
    fn settle(
        &mut self,
        joined: Joined<A::Task, A::Result>,
    ) -> Option<(usize, Outcome<A::Result>)> {
        let (id, ended) = match joined {
            Ok((id, handback)) => (id, Ok(handback)),
            Err(error) if error.is_panic() => (error.id(), Err(error.into_panic())),
            // Aborted by a cancellation through a scheduler's handle.
            Err(error) => {
                let meta = self.forget(error.id()).meta;
                return Some(self.engine.aborted(meta));
            }
        };
        // An attempt that had ended before its abort could land: the cancel still holds.
        let Running {
            meta, cancelled, ..
        } = self.forget(id);
        self.engine.settle(meta, ended, cancelled)
    }

    /// An attempt that ended, no longer tracked.
    fn forget(&mut self, id: tokio::task::Id) -> Running {
        self.running_attempts
            .remove(&id)
            .expect("every attempt is recorded")
    }

    /// Carries out a cancellation. A running attempt is aborted, and reported when the
    /// `JoinSet` hands it back.
    fn cancel(&mut self, cancel: Cancel) -> Option<(usize, Outcome<A::Result>)> {
        let running_attempts = &mut self.running_attempts;
        self.engine.cancel(cancel, |index| {
            // Linear in the attempts running: cancellations are rare.
            let running = running_attempts
                .values_mut()
                .find(|running| running.meta.index == index);
            match running {
                Some(running) => {
                    running.cancelled = true;
                    running.handle.abort();
                    Stop::Stopping
                }
                None => Stop::NotRunning,
            }
        })
    }
}

/// An attempt as the `JoinSet` hands it back: its task and result, or why it has none.
type Joined<F, R> = Result<(tokio::task::Id, Handback<F, R>), JoinError>;

/// An attempt running as a tokio task.
struct Running {
    meta: Meta,
    handle: AbortHandle,
    /// Aborted for a cancellation: if it ended first, it still ends its task as cancelled.
    cancelled: bool,
}

/// What the driver does next, besides settling attempts.
enum Next<J> {
    /// Carry out the cancellations taken from the source.
    Cancel,
    /// Start this task; `None`: nothing waits, and the source has ended.
    Start(Option<J>),
}
