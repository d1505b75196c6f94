//! The builder: how many attempts run at once, what happens to a failed one, and which
//! flavour runs them. Every stream of the crate is made here.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use futures_core::FusedStream;

use crate::backoff::Backoff;
use crate::engine::Engine;
use crate::failure::Failure;
use crate::handle::SchedulerHandle;
use crate::hooks::{EveryError, Hooks, NoHint, RetryAfter, RetryAfterFn, RetryIf, RetryIfFn};
use crate::in_place::Completions;
use crate::line::LineSource;
use crate::policy::{self, Retry, RetryPolicy, Settings};
use crate::pool_stream::PoolStream;
use crate::scheduled::Scheduled;
use crate::source::{IterSource, Source, StreamSource};
use crate::spawned::Spawned;
use crate::stats::Counters;
use crate::task::{self, Attempt, Limits, TaskResult};

/// A bounded, completion-ordered pool: the builder of completion streams.
///
/// `Pool::new(n)` runs at most `n` attempts at once. [`run`](Pool::run) takes tasks that
/// can be started again (async closures, or closures returning a future) and retries them
/// per [`retry`](Pool::retry); [`run_futures`](Pool::run_futures) takes plain futures, each
/// attempted once. Both return a completion stream ([`Completions`], as an `impl
/// PoolStream`) that yields every task's outcome the moment it is ready.
///
/// ```
/// use futures::StreamExt;
/// use retry_pool::{Pool, Retry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tasks = (0..10u64).map(|n| async move || {
///     tokio::time::sleep(std::time::Duration::from_millis(10 - n)).await;
///     Ok::<_, std::io::Error>(n * n)
/// });
/// let squares: Vec<u64> = Pool::new(4)
///     .retry(Retry::Lifo)
///     .attempts(3)
///     .run(tasks)
///     .map(|outcome| outcome.unwrap())
///     .collect()
///     .await;
/// assert_eq!(squares.len(), 10);
/// # }
/// ```
///
/// # Settings that go together
///
/// One rule set, kept by the builder and by `#[pooled]` alike. The attribute reports a
/// mistake as a compile error on the offending key; the builder panics with the same
/// reason where the stream is made ([`run`](Pool::run), [`spawn`](Pool::spawn),
/// [`scheduler`](Pool::scheduler), ...) or, for a single bad value, at the setter.
///
/// | refused | attribute | builder |
/// |---|---|---|
/// | no slot | `concurrency = 0` | `Pool::new(0)` |
/// | no attempt | `attempts = 0` | `.attempts(0)` |
/// | more than one attempt without a retry policy | `attempts = 3` without `retry` | `.attempts(3)` without `.retry(..)` |
/// | a backoff without a retry policy | `backoff = "50ms"` without `retry` | `.backoff(..)` without `.retry(..)` |
/// | plain futures with a retry policy (a future cannot be started again) | a body listing futures under `retry = "lifo"` | `.run_futures(..)`, `.spawn_futures(..)` on a retrying pool |
///
/// Defaults are the runtime's alone (the attribute writes only the keys it is given): no
/// retry; 3 attempts per task once a retry policy is set, 1 without; no backoff; no
/// timeout. The attribute also refuses literal values that can only be mistakes, which the
/// builder, taking values computed at run time, documents instead: a zero timeout (every
/// attempt times out at its first pause) and an exponential backoff whose maximum is below
/// its first delay (the first delay is then the maximum).
///
/// ```should_panic
/// use retry_pool::Pool;
///
/// // More attempts need a retry policy: add `.retry(Retry::Lifo)` or `.retry(Retry::Fifo)`.
/// let tasks = [async || Ok::<_, ()>(())];
/// let _ = Pool::new(4).attempts(3).run(tasks);
/// ```
///
/// `If` and `After` are the [`retry_if`](Pool::retry_if) and
/// [`retry_after`](Pool::retry_after) settings, typed as they were given.
#[derive(Clone, Copy)]
pub struct Pool<If = EveryError, After = NoHint> {
    concurrency: usize,
    settings: Settings,
    timeout: Option<Duration>,
    max_waiting: Option<usize>,
    retry_if: If,
    retry_after: After,
}

impl Pool {
    /// A pool that runs at most `concurrency` attempts at once, without retry.
    ///
    /// # Panics
    ///
    /// When `concurrency` is 0: such a pool could never run anything.
    #[track_caller]
    pub fn new(concurrency: usize) -> Self {
        assert!(
            concurrency > 0,
            "retry-pool: concurrency must be at least 1, got 0 (a pool of 0 slots would never run a task)"
        );
        Pool {
            concurrency,
            settings: Settings::default(),
            timeout: None,
            max_waiting: None,
            retry_if: EveryError,
            retry_after: NoHint,
        }
    }
}

impl<If, After> Pool<If, After> {
    /// Sets where failed tasks go: see [`Retry`]. Retrying tasks get 3 attempts unless
    /// [`attempts`](Pool::attempts) says otherwise.
    ///
    /// Settings that need a retry policy ([`attempts`](Pool::attempts) above 1,
    /// [`backoff`](Pool::backoff)) are refused without one: see "Settings that go
    /// together" on [`Pool`].
    pub fn retry(mut self, retry: Retry) -> Self {
        self.settings.retry = retry;
        self
    }

    /// Sets the total number of attempts per task, the first one included. More than one
    /// needs a [`retry`](Pool::retry) policy.
    ///
    /// # Panics
    ///
    /// When `attempts` is 0: every task gets at least one attempt.
    #[track_caller]
    pub fn attempts(mut self, attempts: u32) -> Self {
        assert!(
            attempts > 0,
            "retry-pool: attempts must be at least 1 (the first attempt counts), got 0"
        );
        self.settings.attempts = Some(attempts);
        self
    }

    /// Sets a timeout per attempt: an attempt still running after `timeout` is dropped and
    /// counts as a failed attempt ([`Failure::is_timeout`](crate::Failure::is_timeout)
    /// when it was the last). Timeouts need a tokio runtime with its clock enabled.
    ///
    /// An attempt is dropped between two of its polls: code that blocks without `.await`
    /// is not cut short.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let hangs = async || {
    ///     tokio::time::sleep(Duration::from_secs(60)).await;
    ///     Ok::<_, std::io::Error>("too late")
    /// };
    /// let start = tokio::time::Instant::now();
    /// let mut done = Pool::new(1)
    ///     .retry(Retry::Lifo)
    ///     .attempts(2)
    ///     .timeout(Duration::from_secs(1))
    ///     .run([hangs]);
    /// let failure = done.next().await.unwrap().unwrap_err();
    /// assert!(failure.is_timeout() && failure.error().is_none());
    /// assert_eq!(failure.attempts(), 2);
    /// assert_eq!(start.elapsed(), Duration::from_secs(2)); // two attempts of 1s each
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the delay before a failed task may run again (see [`Backoff`]). A task
    /// waiting out its backoff holds no slot. Once its backoff is over it runs before the
    /// input not yet pulled, under [`Retry::Fifo`] too, so FIFO with a backoff suits an
    /// endless input. Backoffs need a tokio runtime with its clock enabled.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Backoff, Pool, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let mut calls = 0;
    /// let flaky = async move || {
    ///     calls += 1;
    ///     if calls < 3 { Err("busy") } else { Ok(calls) }
    /// };
    /// let start = tokio::time::Instant::now();
    /// let mut done = Pool::new(1)
    ///     .retry(Retry::Lifo)
    ///     .backoff(Backoff::fixed(Duration::from_millis(100)))
    ///     .run([flaky]);
    /// assert_eq!(done.next().await.unwrap().unwrap(), 3);
    /// assert_eq!(start.elapsed(), Duration::from_millis(200));
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = Some(backoff);
        self
    }

    /// Retries only the errors for which `pred` returns `true`: an error for which it
    /// returns `false` (a 404, a refused login) ends its task at once, with that error and
    /// the attempts made so far, and [`Failure::is_permanent`](crate::Failure::is_permanent)
    /// tells it apart from a task that used up its attempts. Timeouts are always retried,
    /// panics never. Needs a [`retry`](Pool::retry) policy.
    ///
    /// `pred` takes the tasks' error type: write it as a function, or annotate the
    /// closure's argument (`|error: &io::Error| ...`). It runs in the pool, not in a task:
    /// a panic in it is not isolated like a task's, and reaches the stream's consumer.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, Retry};
    ///
    /// #[derive(Debug)]
    /// enum Fetch { NotFound, Unavailable }
    ///
    /// fn transient(error: &Fetch) -> bool {
    ///     matches!(error, Fetch::Unavailable)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let tasks = [Fetch::NotFound, Fetch::Unavailable].map(|error| {
    ///     let error = std::sync::Arc::new(error);
    ///     async move || Err::<(), _>(match *error { Fetch::NotFound => Fetch::NotFound, _ => Fetch::Unavailable })
    /// });
    /// let pool = Pool::new(2).retry(Retry::Lifo).attempts(3).retry_if(transient);
    /// let failures: Vec<_> = pool.run(tasks).map(Result::unwrap_err).collect().await;
    /// let missing = failures.iter().find(|f| f.index() == 0).unwrap();
    /// assert!(missing.is_permanent() && missing.attempts() == 1);
    /// let busy = failures.iter().find(|f| f.index() == 1).unwrap();
    /// assert!(!busy.is_permanent() && busy.attempts() == 3);
    /// # }
    /// ```
    pub fn retry_if<E, P>(self, pred: P) -> Pool<RetryIfFn<E>, After>
    where
        P: Fn(&E) -> bool + Send + Sync + 'static,
    {
        Pool {
            concurrency: self.concurrency,
            settings: Settings {
                retry_if: true,
                ..self.settings
            },
            timeout: self.timeout,
            max_waiting: self.max_waiting,
            retry_if: RetryIfFn::new(pred),
            retry_after: self.retry_after,
        }
    }

    /// Lets an error say how long to wait before the retry, as a server's `Retry-After`
    /// does: when `hint` returns `Some(delay)`, the failed task waits `delay` (holding no
    /// slot) instead of the [`backoff`](Pool::backoff); on `None`, the backoff as usual.
    /// Needs a [`retry`](Pool::retry) policy.
    ///
    /// `hint` takes the tasks' error type: write it as a function, or annotate the
    /// closure's argument. As with `retry_if`, a panic in it reaches the stream's consumer.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, Retry};
    /// use std::time::Duration;
    ///
    /// struct TooManyRequests { retry_after: Duration }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let mut calls = 0;
    /// let rate_limited = async move || {
    ///     calls += 1;
    ///     if calls == 1 { Err(TooManyRequests { retry_after: Duration::from_secs(3) }) } else { Ok(calls) }
    /// };
    /// let start = tokio::time::Instant::now();
    /// let mut done = Pool::new(1)
    ///     .retry(Retry::Lifo)
    ///     .retry_after(|error: &TooManyRequests| Some(error.retry_after))
    ///     .run([rate_limited]);
    /// assert_eq!(done.next().await.unwrap().ok(), Some(2));
    /// assert_eq!(start.elapsed(), Duration::from_secs(3));
    /// # }
    /// ```
    pub fn retry_after<E, H>(self, hint: H) -> Pool<If, RetryAfterFn<E>>
    where
        H: Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    {
        Pool {
            concurrency: self.concurrency,
            settings: Settings {
                retry_after: true,
                ..self.settings
            },
            timeout: self.timeout,
            max_waiting: self.max_waiting,
            retry_if: self.retry_if,
            retry_after: RetryAfterFn::new(hint),
        }
    }

    /// Starts at most `n` attempts (first attempts and retries alike) in any window
    /// `[t, t + per)`, and no fewer than that allows. A task waiting for its turn is not in
    /// flight: it holds no slot. Needs a tokio runtime with its clock enabled.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::Pool;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let tasks = (0..5).map(|n| async move || Ok::<_, ()>(n));
    /// let done: Vec<_> = Pool::new(8).rate_limit(2, Duration::from_secs(1)).run(tasks).collect().await;
    /// assert_eq!(done.len(), 5);
    /// // Two at 0s, two at 1s, the fifth at 2s.
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When `n` is 0 (nothing could ever start) or `per` is zero (no limit at all: leave
    /// the rate limit out instead).
    #[track_caller]
    pub fn rate_limit(mut self, n: u32, per: Duration) -> Self {
        assert!(
            n > 0,
            "retry-pool: rate_limit(0, ..) would never start a task; allow at least 1 start per window"
        );
        assert!(
            !per.is_zero(),
            "retry-pool: rate_limit(.., 0s) has an empty window, which limits nothing; give it a length, or leave the rate limit out"
        );
        self.settings.rate = Some((n, per));
        self
    }

    /// Throttles retries as gRPC does, so that a dependency failing for everyone is not
    /// hit by a storm of retries on top: a bucket of `max_tokens` tokens; each failed
    /// attempt that would be retried takes one (not below zero), each successful attempt
    /// gives back `token_ratio` (up to `max_tokens`), and a failed task is retried only
    /// while more than `max_tokens / 2` tokens are left after its failure. Otherwise it
    /// gives up at once ([`Failure::is_throttled`](crate::Failure::is_throttled), counted
    /// in [`Stats::throttled`](crate::Stats::throttled)). Needs a [`retry`](Pool::retry)
    /// policy.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, PoolStream, Retry};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // Everything fails: with 10 tokens, the first 4 failures are retried (9, 8, 7, 6
    /// // tokens left), and from the fifth (5 left, not above 10 / 2) no more.
    /// let tasks = (0..20).map(|_| async || Err::<(), _>("down"));
    /// let mut done = Pool::new(1).retry(Retry::Lifo).attempts(2).retry_throttle(10, 0.1).run(tasks);
    /// while done.next().await.is_some() {}
    /// assert_eq!(done.stats().throttled, 20 - 2);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When `max_tokens` is 0, or `token_ratio` is not a positive, finite number.
    #[track_caller]
    pub fn retry_throttle(mut self, max_tokens: u32, token_ratio: f64) -> Self {
        assert!(
            max_tokens > 0,
            "retry-pool: retry_throttle(0, ..) has no tokens, so it would refuse every retry; give it at least 1 (gRPC's default is 10)"
        );
        assert!(
            token_ratio.is_finite() && token_ratio > 0.0,
            "retry-pool: retry_throttle(.., {token_ratio}) needs a positive token ratio, the share of a token a success gives back (such as 0.1)"
        );
        self.settings.throttle = Some((max_tokens, token_ratio));
        self
    }

    /// The most attempts in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Total attempts per task, the first one included: as set, or 3 when retrying, or 1.
    pub fn max_attempts(&self) -> u32 {
        policy::max_attempts(self.settings.retry, self.settings.attempts)
    }

    /// The retry policy, once the settings are found to agree.
    ///
    /// # Panics
    ///
    /// When they do not: see "Settings that go together" on [`Pool`].
    #[track_caller]
    pub(crate) fn policy(&self) -> RetryPolicy {
        match RetryPolicy::new(self.settings) {
            Ok(policy) => policy,
            Err(conflict) => panic!("retry-pool: {conflict}"),
        }
    }

    /// Panics when this pool retries: `entry` runs plain futures, which cannot be started
    /// again; `instead` is the entry point that takes closures.
    #[track_caller]
    fn refuse_retry(&self, entry: &str, instead: &str) {
        assert!(
            !self.settings.retry.retries(),
            "retry-pool: `{entry}` runs plain futures, which cannot be started again, but this pool retries ({:?}); pass closures (`async move || ...`) to `{instead}` instead",
            self.settings.retry
        );
    }

    /// What both flavours run on: the tasks of `source`, retried by this pool's policy.
    #[track_caller]
    fn engine<S, R>(self, source: S, counters: Arc<Counters>) -> Engine<S, R>
    where
        S: Source,
        R: TaskResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        let policy = self.policy();
        let hooks = Hooks::new(self.retry_if, self.retry_after);
        Engine::new(policy, hooks, source, counters)
    }

    /// The in-place stream of `source`'s tasks, each attempt run by `attempt`, counted in
    /// `counters` (a scheduler's, which its handles read too, or the stream's own).
    #[track_caller]
    pub(crate) fn run_with<S, A, M>(
        self,
        source: S,
        attempt: M,
        counters: Arc<Counters>,
    ) -> Completions<S, A, M>
    where
        S: Source<Task = A::Task>,
        A: Attempt,
        M: Fn(A::Task, Limits) -> A + Copy,
        If: RetryIf<<A::Result as TaskResult>::Err>,
        After: RetryAfter<<A::Result as TaskResult>::Err>,
    {
        let (timeout, concurrency) = (self.timeout, self.concurrency);
        let engine = self.engine(source, counters);
        Completions::new(engine, attempt, timeout, concurrency)
    }

    /// The spawned stream of `source`'s tasks, each attempt a tokio task run by `attempt`,
    /// counted in `counters`.
    #[track_caller]
    pub(crate) fn spawn_with<S, A>(
        self,
        source: S,
        attempt: fn(A::Task, Limits) -> A,
        counters: Arc<Counters>,
    ) -> Spawned<A::Result>
    where
        S: Source<Task = A::Task> + Send + 'static,
        A: Attempt + Send + 'static,
        A::Task: Send + 'static,
        A::Result: Send + 'static,
        <A::Result as TaskResult>::Ok: Send + 'static,
        <A::Result as TaskResult>::Err: Send + 'static,
        If: RetryIf<<A::Result as TaskResult>::Err>,
        After: RetryAfter<<A::Result as TaskResult>::Err>,
    {
        let (timeout, concurrency) = (self.timeout, self.concurrency);
        let engine = self.engine(source, counters);
        Spawned::new(engine, attempt, timeout, concurrency)
    }

    /// Runs `tasks` in this pool, in place: attempts are polled inside the returned
    /// stream, on the task that polls it, so tasks need be neither `Send` nor `'static`.
    ///
    /// Each task is something that can be started again for every attempt: an async
    /// closure (`async move || ...`) or a closure returning a future
    /// (`move || async move { ... }`), whose output is a `Result`. The input is pulled
    /// only when a slot is free, so it may be endless. (A function that makes tasks should
    /// return `impl AsyncFnMut() -> R`: behind an opaque `impl FnMut() -> Fut`, the
    /// compiler does not see an `AsyncFnMut`.)
    ///
    /// Nothing runs until the stream is first polled; dropping it drops every attempt in
    /// flight.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, Retry};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// // Fails twice, then succeeds: the third attempt wins.
    /// let calls = AtomicU32::new(0);
    /// let flaky = async || match calls.fetch_add(1, Ordering::Relaxed) {
    ///     0 | 1 => Err("not yet"),
    ///     n => Ok(n),
    /// };
    /// let mut done = Pool::new(1).retry(Retry::Lifo).attempts(3).run([flaky]);
    /// assert_eq!(done.next().await.unwrap().unwrap(), 2);
    /// assert!(done.next().await.is_none());
    /// # }
    /// ```
    #[track_caller]
    pub fn run<I, F, R>(
        self,
        tasks: I,
    ) -> impl PoolStream<Item = Result<R::Ok, Failure<R::Err>>> + FusedStream + fmt::Debug
    where
        I: IntoIterator<Item = F>,
        F: AsyncFnMut() -> R,
        R: TaskResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        self.run_with(
            IterSource::new(tasks),
            task::attempt_closure::<F, R>,
            Arc::default(),
        )
    }

    /// Like [`run`](Pool::run), for a [`Stream`](futures_core::Stream) of tasks: a task is
    /// pulled only when a slot is free. The stream may be endless, such as tasks made from
    /// the messages of a channel.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use futures::channel::mpsc;
    /// use retry_pool::Pool;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (jobs, received) = mpsc::unbounded::<u32>();
    /// let tasks = received.map(|n| async move || Ok::<_, std::io::Error>(n * 2));
    /// let mut done = Pool::new(4).run_stream(tasks);
    ///
    /// jobs.unbounded_send(21).unwrap();
    /// assert_eq!(done.next().await.unwrap().unwrap(), 42);
    /// drop(jobs); // the stream of tasks ends, and so does the pool's
    /// assert!(done.next().await.is_none());
    /// # }
    /// ```
    #[track_caller]
    pub fn run_stream<S, F, R>(
        self,
        tasks: S,
    ) -> impl PoolStream<Item = Result<R::Ok, Failure<R::Err>>> + FusedStream + fmt::Debug
    where
        S: futures_core::Stream<Item = F>,
        F: AsyncFnMut() -> R,
        R: TaskResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        self.run_with(
            StreamSource::new(tasks),
            task::attempt_closure::<F, R>,
            Arc::default(),
        )
    }

    /// Runs plain futures in this pool, in place, each attempted once.
    ///
    /// A future cannot be started again, so it cannot be retried: to retry, pass closures
    /// to [`run`](Pool::run).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::Pool;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let jobs = (1..=3).map(|n| async move { Ok::<_, std::io::Error>(n * 10) });
    /// let mut total = 0;
    /// let mut done = Pool::new(2).run_futures(jobs);
    /// while let Some(outcome) = done.next().await {
    ///     total += outcome.unwrap();
    /// }
    /// assert_eq!(total, 60);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the pool has a retry policy (other than [`Retry::None`]): a future cannot be
    /// started again.
    #[track_caller]
    pub fn run_futures<I, R>(
        self,
        futures: I,
    ) -> impl PoolStream<Item = Result<R::Ok, Failure<R::Err>>> + FusedStream + fmt::Debug
    where
        I: IntoIterator,
        I::Item: IntoFuture<Output = R>,
        R: TaskResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        self.refuse_retry("run_futures", "run");
        self.run_with(
            IterSource::new(futures),
            task::attempt_future,
            Arc::default(),
        )
    }

    /// Runs `tasks` in this pool, each attempt as a tokio task on the runtime's workers, so
    /// CPU-heavy tasks use every core. Tasks must be `Send + 'static`, and so must the
    /// futures they return. See [`Spawned`] for how the stream behaves.
    ///
    /// Tasks here are closures returning a future (`move || async move { ... }`), whose
    /// `Send` can be checked in generic code. For async closures (`async move || ...`),
    /// use `#[pooled(spawn = true)]`, which checks them where their type is known.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, Retry};
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// let tasks = (0..8u64).map(|n| move || async move {
    ///     // Heavy work runs on tokio's worker threads, several at once.
    ///     let sum: u64 = (0..100_000 * n).sum();
    ///     Ok::<_, std::convert::Infallible>(sum)
    /// });
    /// let sums: Vec<u64> = Pool::new(4).spawn(tasks).map(Result::unwrap).collect().await;
    /// assert_eq!(sums.len(), 8);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<I, F, Fut, R>(self, tasks: I) -> Spawned<R>
    where
        I: IntoIterator<Item = F>,
        I::IntoIter: Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: TaskResult + Send + 'static,
        R::Ok: Send + 'static,
        R::Err: Send + 'static,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        self.spawn_with(
            IterSource::new(tasks),
            task::attempt_fn_mut::<F, Fut>,
            Arc::default(),
        )
    }

    /// Runs plain futures in this pool, each attempted once as a tokio task.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::Pool;
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// let jobs = (1..=4u64).map(|n| async move { Ok::<_, std::io::Error>(n * n) });
    /// let mut total = 0;
    /// let mut done = Pool::new(2).spawn_futures(jobs);
    /// while let Some(outcome) = done.next().await {
    ///     total += outcome.unwrap();
    /// }
    /// assert_eq!(total, 30);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the pool was set to retry: plain futures cannot be started again.
    #[track_caller]
    pub fn spawn_futures<I, R>(self, futures: I) -> Spawned<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: IntoFuture<Output = R> + Send + 'static,
        <I::Item as IntoFuture>::IntoFuture: Send,
        R: TaskResult + Send + 'static,
        R::Ok: Send + 'static,
        R::Err: Send + 'static,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        self.refuse_retry("spawn_futures", "spawn");
        self.spawn_with(
            IterSource::new(futures),
            task::attempt_future,
            Arc::default(),
        )
    }

    /// Bounds a scheduler's line: with `max_waiting` tasks waiting,
    /// [`submit`](SchedulerHandle::submit) waits for room and
    /// [`try_submit`](SchedulerHandle::try_submit) hands the task back. Unbounded by
    /// default. FIFO retries re-enter the line whatever its bound.
    ///
    /// ```
    /// use retry_pool::{Pool, SubmitError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (handle, _done) = Pool::new(1).max_waiting(2).scheduler();
    /// let job = || async { Ok::<_, ()>(()) };
    /// handle.try_submit(job, 0).unwrap();
    /// handle.try_submit(job, 0).unwrap();
    /// // Nothing has taken a task from the line yet (the stream was not polled): it is full.
    /// assert!(matches!(handle.try_submit(job, 0), Err(SubmitError::Full(_))));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When `max_waiting` is 0: nothing could ever be submitted.
    #[track_caller]
    pub fn max_waiting(mut self, max_waiting: usize) -> Self {
        assert!(
            max_waiting > 0,
            "retry-pool: max_waiting must be at least 1, got 0 (no task could ever be submitted)"
        );
        self.max_waiting = Some(max_waiting);
        self
    }

    /// Starts a long-running scheduler, in place: a handle to submit tasks with a
    /// priority, and the stream of their outcomes, each with its task's id.
    ///
    /// Smaller priorities run first, equal ones in submission order; a LIFO retry runs
    /// ahead of everything, a FIFO retry behind the tasks of its priority. The stream ends
    /// once the handle side is closed (or every handle dropped) and every task submitted
    /// has its outcome. Attempts run inside the stream, as with [`run`](Pool::run); to
    /// run them on tokio's workers, see [`spawn_scheduler`](Pool::spawn_scheduler).
    ///
    /// Tasks are closures returning a future. One scheduler takes one task type: for tasks
    /// of different kinds, box them with [`boxed`](crate::boxed).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{Pool, Retry, boxed};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (handle, mut done) = Pool::new(1).retry(Retry::Lifo).scheduler();
    /// let background = handle.try_submit(boxed(|| async { Ok::<_, ()>("report") }), 10).unwrap();
    /// let urgent = handle.try_submit(boxed(|| async { Ok("page") }), 0).unwrap();
    /// handle.close();
    ///
    /// // The urgent task ran first, though submitted second.
    /// assert_eq!(done.next().await.unwrap(), (urgent, Ok("page")));
    /// assert_eq!(done.next().await.unwrap(), (background, Ok("report")));
    /// assert!(done.next().await.is_none());
    /// # }
    /// ```
    #[allow(
        clippy::type_complexity,
        reason = "the attempt's type has no name: it can only be written out as `impl Future`"
    )]
    #[track_caller]
    pub fn scheduler<F, Fut, R>(
        self,
    ) -> (
        SchedulerHandle<F>,
        Scheduled<Completions<LineSource<F>, impl Future<Output = (Option<F>, Option<R>)>>>,
    )
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = R>,
        R: TaskResult,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        let counters = Arc::new(Counters::default());
        let (handle, source, unfinished) =
            SchedulerHandle::new(self.max_waiting, Arc::clone(&counters));
        let attempt = task::attempt_fn_mut::<F, Fut> as fn(F, Limits) -> _;
        let stream = self.run_with(source, attempt, counters);
        (handle, Scheduled::new(stream, unfinished))
    }

    /// Starts a long-running scheduler whose attempts run as tokio tasks: as
    /// [`scheduler`](Pool::scheduler), with the behaviour of [`spawn`](Pool::spawn).
    /// Handles can be sent to other tasks and threads, one per producer.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use retry_pool::{BoxTask, Pool, Retry, boxed};
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// let pool = Pool::new(4).retry(Retry::Lifo);
    /// let (handle, mut done) = pool.spawn_scheduler::<BoxTask<u64, String>, _, _>();
    /// let producers: Vec<_> = (0..3u64)
    ///     .map(|producer| {
    ///         let handle = handle.clone();
    ///         tokio::spawn(async move {
    ///             for n in 0..10 {
    ///                 let job = boxed(move || async move { Ok((0..1_000 * n).sum::<u64>()) });
    ///                 handle.submit(job, producer as i32).await.unwrap();
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// drop(handle); // the scheduler closes when the producers' handles are gone too
    /// for producer in producers {
    ///     producer.await.unwrap();
    /// }
    /// let mut finished = 0;
    /// while let Some((_id, outcome)) = done.next().await {
    ///     outcome.unwrap();
    ///     finished += 1;
    /// }
    /// assert_eq!(finished, 30);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_scheduler<F, Fut, R>(self) -> (SchedulerHandle<F>, Scheduled<Spawned<R>>)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: TaskResult + Send + 'static,
        R::Ok: Send + 'static,
        R::Err: Send + 'static,
        If: RetryIf<R::Err>,
        After: RetryAfter<R::Err>,
    {
        let counters = Arc::new(Counters::default());
        let (handle, source, unfinished) =
            SchedulerHandle::new(self.max_waiting, Arc::clone(&counters));
        let attempt = task::attempt_fn_mut::<F, Fut>;
        let stream = self.spawn_with(source, attempt, counters);
        (handle, Scheduled::new(stream, unfinished))
    }
}

impl<If, After> fmt::Debug for Pool<If, After> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.settings;
        f.debug_struct("Pool")
            .field("concurrency", &self.concurrency)
            .field("retry", &settings.retry)
            .field("attempts", &self.max_attempts())
            .field("timeout", &self.timeout)
            .field("backoff", &settings.backoff)
            .field("retry_if", &settings.retry_if)
            .field("retry_after", &settings.retry_after)
            .field("rate_limit", &settings.rate)
            .field("retry_throttle", &settings.throttle)
            .field("max_waiting", &self.max_waiting)
            .finish()
    }
}
