//! A worker: claims one queue's tasks into a local [`Pool`], and yields their outcomes in
//! completion order.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use retry_pool::{Backoff, Pool, Retry};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::claimer::{self, Item};
use crate::held::{Held, Stop, StopSignal};
use crate::hooks;
use crate::job::Job;
use crate::lease::Claimed;
use crate::outcome::Outcome;
use crate::queue::Queue;
use crate::settings::Settings;
use crate::settle::{AttemptEnd, settle};
use crate::shared::Shared;
use crate::worker_stats::{Counters, WorkerStats};
use crate::{Error, completer, heartbeat, wakeup};
use retry_pool::hooks::{EveryError, Hooks, NoHint, RetryAfter, RetryAfterFn, RetryIf, RetryIfFn};

/// A worker's settings for one queue: a builder, like [`Pool`]'s, ended by
/// [`run`](Worker::run).
///
/// ```no_run
/// use std::time::Duration;
/// use futures::StreamExt;
/// use retry_pool_postgres::{Backoff, Job, Queue, Retry, Worker};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::connect("postgres://postgres@127.0.0.1:5432/test").await?;
/// let mut outcomes = Worker::new(&queue, "crawl")
///     .concurrency(8)
///     .retry(Retry::Lifo)
///     .attempts(4)
///     .backoff(Backoff::exponential(Duration::from_millis(50), Duration::from_secs(2)))
///     .timeout(Duration::from_secs(2))
///     .run(|job: Job<String>| async move {
///         Ok::<_, std::io::Error>(job.payload.len()) // fetch the page here
///     })?;
/// while let Some(outcome) = outcomes.next().await {
///     let outcome = outcome?; // Err: the database is away (the worker keeps trying)
///     match outcome.result {
///         Ok(length) => println!("{}: {length} bytes", outcome.id),
///         Err(failure) => eprintln!("{failure}"),
///     }
/// }
/// # Ok(()) }
/// ```
///
/// `If` and `After` are the [`retry_if`](Worker::retry_if) and
/// [`retry_after`](Worker::retry_after) settings, typed as they were given.
#[derive(Clone, Debug)]
pub struct Worker<If = EveryError, After = NoHint> {
    queue: Queue,
    name: String,
    concurrency: usize,
    retry: Retry,
    attempts: Option<u32>,
    backoff: Option<Backoff>,
    timeout: Option<Duration>,
    lease: Duration,
    poll: Duration,
    retry_if: If,
    retry_after: After,
}

impl Worker {
    /// A worker for the queue named `name`, with one slot, no retry, a 30s lease and a 1s
    /// fallback poll.
    pub fn new(queue: &Queue, name: impl Into<String>) -> Self {
        Worker {
            queue: queue.clone(),
            name: name.into(),
            concurrency: 1,
            retry: Retry::None,
            attempts: None,
            backoff: None,
            timeout: None,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            retry_if: EveryError,
            retry_after: NoHint,
        }
    }
}

impl<If, After> Worker<If, After> {
    /// Attempts in flight at once in this process (1 to 10,000): a claim takes only as many
    /// tasks as there are free slots.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Where a failed task goes: [`Retry::Lifo`] ahead of every waiting task of the
    /// queue (latest failure first), [`Retry::Fifo`] behind the tasks of its priority,
    /// [`Retry::None`] nowhere (the default).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Total attempts per task, the first included, counted across every worker (3 by
    /// default with a retry policy, 1 without).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// The wait before a failed task may be claimed again (by any worker); it holds no
    /// slot meanwhile.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Bounds each attempt: one still running then is dropped and counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long a claimed task stays this worker's without a renewal (30s by default;
    /// renewed every third of it). A worker that dies loses its tasks to the others after
    /// at most this, plus one poll; a shorter lease recovers faster and writes more.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often the worker claims without being woken, and rescues expired leases (1s by
    /// default). Pushes wake workers at once through LISTEN/NOTIFY; the poll is the
    /// fallback, and the pace of rescues.
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Retries only the errors for which `pred` returns `true`: an error for which it
    /// returns `false` (a 404, a refused login) ends its task `failed` at once, with that
    /// error (in `last_error`) and the attempts made so far, and
    /// [`TaskFailure::is_permanent`](crate::TaskFailure::is_permanent) (on the stream) and
    /// [`TaskInfo::permanent`](crate::TaskInfo::permanent) (in the row) tell it apart from
    /// a task that used up its attempts. Timeouts are always retried, panics never, as in
    /// [`Pool::retry_if`]. Needs a [`retry`](Worker::retry) policy.
    ///
    /// `pred` takes the handler's error type: write it as a function, or annotate the
    /// closure's argument. It runs in the attempt, after the handler's error: a panic in
    /// it ends the task as the handler's panic would.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use retry_pool_postgres::{Job, Queue, Retry, Worker};
    ///
    /// #[derive(Debug)]
    /// enum Fetch { NotFound, Unavailable }
    ///
    /// impl std::fmt::Display for Fetch {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         std::fmt::Debug::fmt(self, f)
    ///     }
    /// }
    ///
    /// fn transient(error: &Fetch) -> bool {
    ///     matches!(error, Fetch::Unavailable)
    /// }
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::connect("postgres://postgres@127.0.0.1:5432/test").await?;
    /// let mut outcomes = Worker::new(&queue, "crawl")
    ///     .retry(Retry::Lifo)
    ///     .attempts(4)
    ///     .retry_if(transient) // a 404 is not worth three more tries
    ///     .run(|job: Job<String>| async move {
    ///         if job.payload.ends_with("/missing") { Err(Fetch::NotFound) } else { Ok(()) }
    ///     })?;
    /// while let Some(outcome) = outcomes.next().await {
    ///     if let Err(failure) = outcome?.result {
    ///         assert!(failure.is_permanent() && failure.attempts() == 1);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn retry_if<E, P>(self, pred: P) -> Worker<RetryIfFn<E>, After>
    where
        P: Fn(&E) -> bool + Send + Sync + 'static,
    {
        Worker {
            queue: self.queue,
            name: self.name,
            concurrency: self.concurrency,
            retry: self.retry,
            attempts: self.attempts,
            backoff: self.backoff,
            timeout: self.timeout,
            lease: self.lease,
            poll: self.poll,
            retry_if: RetryIfFn::new(pred),
            retry_after: self.retry_after,
        }
    }

    /// Lets an error say how long to wait before the retry, as a server's `Retry-After`
    /// does: when `hint` returns `Some(delay)`, the failed task is claimable again (by any
    /// worker) `delay` after its failure (`run_at`), instead of after the
    /// [`backoff`](Worker::backoff), holding no slot meanwhile and keeping its place in
    /// the retry order; on `None`, the backoff as usual. Timeouts take the backoff. Needs
    /// a [`retry`](Worker::retry) policy.
    ///
    /// `hint` takes the handler's error type, and runs in the attempt, as
    /// [`retry_if`](Worker::retry_if) does.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use retry_pool_postgres::{Backoff, Job, Queue, Retry, Worker};
    ///
    /// struct TooManyRequests { retry_after: Option<Duration> }
    ///
    /// impl std::fmt::Display for TooManyRequests {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("429 Too Many Requests")
    ///     }
    /// }
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::connect("postgres://postgres@127.0.0.1:5432/test").await?;
    /// let outcomes = Worker::new(&queue, "crawl")
    ///     .retry(Retry::Fifo)
    ///     .backoff(Backoff::fixed(Duration::from_millis(100))) // when the server says nothing
    ///     .retry_after(|error: &TooManyRequests| error.retry_after)
    ///     .run(|_: Job<String>| async move {
    ///         Err::<(), _>(TooManyRequests { retry_after: Some(Duration::from_secs(3)) })
    ///     })?;
    /// # drop(outcomes); Ok(()) }
    /// ```
    pub fn retry_after<E, H>(self, hint: H) -> Worker<If, RetryAfterFn<E>>
    where
        H: Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    {
        Worker {
            queue: self.queue,
            name: self.name,
            concurrency: self.concurrency,
            retry: self.retry,
            attempts: self.attempts,
            backoff: self.backoff,
            timeout: self.timeout,
            lease: self.lease,
            poll: self.poll,
            retry_if: self.retry_if,
            retry_after: RetryAfterFn::new(hint),
        }
    }

    /// Starts the worker on the current tokio runtime: `handler` runs each claimed
    /// attempt with the task's payload deserialized as `P`, and the returned stream yields
    /// the outcome of every task this worker finishes, in completion order.
    ///
    /// Refuses settings that cannot work (what to change is in the error), and a call
    /// outside a tokio runtime.
    pub fn run<P, T, E, H, Fut>(self, handler: H) -> Result<WorkerStream<T, E>, Error>
    where
        P: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        E: Display + Send + 'static,
        H: Fn(Job<P>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        If: RetryIf<E>,
        After: RetryAfter<E>,
    {
        let hooks = Hooks::new(self.retry_if, self.retry_after);
        let settings = Settings::check(
            self.concurrency,
            self.retry,
            self.attempts,
            self.backoff,
            self.timeout,
            self.lease,
            self.poll,
            &hooks::given(&hooks),
        )?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Settings("Worker::run needs a tokio runtime: call it from async code".into())
        })?;
        let (completions, requests) = completer::Completions::new();
        let shared = Arc::new(Shared {
            pool: self.queue.pool().clone(),
            queue: self.name,
            owner: owner_id(),
            slots: Semaphore::new(settings.concurrency),
            wake: Notify::new(),
            held: Held::default(),
            completions,
            counters: Counters::default(),
            stopping: watch::Sender::new(false),
            settings,
        });
        let (out, outcomes) = mpsc::channel(shared.settings.concurrency);
        let (attempts, claimed) = mpsc::unbounded_channel();

        let report = {
            let out = out.clone();
            // Heartbeat errors are reported if the stream has room; the next tick retries.
            move |error| {
                let _ = out.try_send(Err(error));
            }
        };
        let heartbeat = runtime.spawn(heartbeat::run(Arc::clone(&shared), report));
        let listener = runtime.spawn(wakeup::run(Arc::clone(&shared)));
        let completer = runtime.spawn(completer::run(
            shared.pool.clone(),
            shared.owner.clone(),
            requests,
        ));
        let claims = runtime.spawn(claimer::run(Arc::clone(&shared), attempts, out.clone()));
        let background = [
            heartbeat.abort_handle(),
            listener.abort_handle(),
            completer.abort_handle(),
        ];
        let driver = runtime.spawn(drive(
            Arc::clone(&shared),
            claimed,
            Arc::new(handler),
            Arc::new(hooks),
            out,
            background.clone(),
        ));
        let mut tasks = background.to_vec();
        tasks.extend([claims.abort_handle(), driver.abort_handle()]);
        Ok(WorkerStream {
            outcomes,
            shared,
            tasks,
        })
    }
}

/// Host, process and a random part: unique to this worker even when a process runs many.
fn owner_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}/{}/{:016x}", std::process::id(), fastrand::u64(..))
}

/// Runs claimed attempts through a local [`Pool`] (concurrency, per-attempt timeouts,
/// panic isolation, completion order) with no local retry: PostgreSQL decides retries and
/// their order, so that any worker may take the next attempt. Each ended attempt is
/// settled concurrently; the driver ends when the claims end and every attempt is
/// settled, and then stops the heartbeat, the listener and the completer.
async fn drive<P, T, E, H, Fut>(
    shared: Arc<Shared>,
    mut claimed: mpsc::UnboundedReceiver<(Arc<Claimed>, StopSignal)>,
    handler: Arc<H>,
    hooks: Arc<Hooks<E>>,
    out: mpsc::Sender<Item<T, E>>,
    background: [AbortHandle; 3],
) where
    P: DeserializeOwned + Send + 'static,
    T: Serialize + Send + 'static,
    E: Display + Send + 'static,
    H: Fn(Job<P>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    // The pool numbers tasks in the order it pulls them, which is the order of `index`.
    let tasks_by_index = Arc::new(Mutex::new(HashMap::new()));
    let mut next_index = 0usize;
    let by_index = Arc::clone(&tasks_by_index);
    let tasks = futures::stream::poll_fn(move |cx| claimed.poll_recv(cx)).map(
        move |(task, signal): (Arc<Claimed>, StopSignal)| {
            let index = next_index;
            next_index += 1;
            by_index
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, Arc::clone(&task));
            let (handler, hooks) = (Arc::clone(&handler), Arc::clone(&hooks));
            move || {
                attempt(
                    index,
                    Arc::clone(&task),
                    Arc::clone(&handler),
                    Arc::clone(&hooks),
                    signal.clone(),
                )
            }
        },
    );
    let mut pool = Pool::new(shared.settings.concurrency);
    if let Some(timeout) = shared.settings.timeout {
        pool = pool.timeout(timeout);
    }
    let mut done = pool.run_stream(tasks);
    let mut settling = JoinSet::new();
    loop {
        tokio::select! {
            outcome = done.next() => {
                let Some(outcome) = outcome else { break };
                let index = match &outcome {
                    Ok((index, _)) => *index,
                    Err(failure) => failure.index(),
                };
                let task = tasks_by_index
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&index);
                if let Some(task) = task {
                    let result = outcome.map(|(_, value)| value);
                    settling.spawn(settle(Arc::clone(&shared), task, result, out.clone()));
                }
            }
            Some(_) = settling.join_next(), if !settling.is_empty() => {}
        }
    }
    while settling.join_next().await.is_some() {}
    for task in background {
        task.abort();
    }
}

/// One attempt: deserialize the payload, run the handler, and drop it if the heartbeat
/// says so (cancelled, or the lease lost). A handler's error is judged here by the hooks,
/// inside the pool's panic isolation: a panic in `retry_if` or `retry_after` then ends
/// the task as a panicking handler would, and never leaves an attempt unsettled.
async fn attempt<P, T, E, H, Fut>(
    index: usize,
    task: Arc<Claimed>,
    handler: Arc<H>,
    hooks: Arc<Hooks<E>>,
    mut signal: StopSignal,
) -> Result<(usize, T), AttemptEnd<E>>
where
    P: DeserializeOwned,
    H: Fn(Job<P>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let payload = serde_json::from_str(&task.payload)
        .map_err(|error| AttemptEnd::Json(format!("the payload does not deserialize: {error}")))?;
    let work = handler(Job {
        id: task.id,
        attempt: task.attempt,
        max_attempts: task.max_attempts,
        priority: task.priority,
        payload,
    });
    let stopped = async {
        // Copy the reason out at once: the guard must not live across an await.
        let stop = signal
            .wait_for(Option::is_some)
            .await
            .map(|stop| stop.unwrap_or(Stop::LeaseLost));
        match stop {
            Ok(stop) => stop,
            // The worker is going away: the attempt goes on until it is dropped.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        stop = stopped => Err(AttemptEnd::Stopped(stop)),
        result = work => result.map(|value| (index, value)).map_err(|error| {
            let verdict = hooks::verdict(&hooks, &error);
            AttemptEnd::Failed(error, verdict)
        }),
    }
}

/// The outcomes of the tasks a worker finishes, in completion order; an `Err` item says
/// the database could not be reached or refused a write (the worker keeps trying, and
/// a task whose result was not written is rescued once its lease expires).
///
/// Ends after [`stop`](WorkerStream::stop), once every attempt in flight is settled.
/// Dropping it drops every attempt in flight at once: their leases expire and other
/// workers rescue them, as after a crash.
pub struct WorkerStream<T, E> {
    outcomes: mpsc::Receiver<Item<T, E>>,
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
}

impl<T, E> WorkerStream<T, E> {
    /// Stops claiming; attempts in flight finish and are settled, then the stream ends.
    pub fn stop(&self) {
        self.shared.stopping.send_replace(true);
    }

    /// A snapshot of this worker's counters.
    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }

    /// The owner id written on this worker's leases (host/pid/random).
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// The queue this worker claims from.
    pub fn queue(&self) -> &str {
        &self.shared.queue
    }
}

impl<T, E> Stream for WorkerStream<T, E> {
    type Item = Result<Outcome<T, E>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.outcomes.poll_recv(cx)
    }
}

impl<T, E> Drop for WorkerStream<T, E> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<T, E> fmt::Debug for WorkerStream<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerStream")
            .field("queue", &self.shared.queue)
            .field("owner", &self.shared.owner)
            .field("stats", &self.stats())
            .finish()
    }
}
