//! Chaos soak (rules 1, 4, 8 and 9 of ARCHITECTURE.md): hundreds of thousands of tasks
//! through the in-place flavour, the spawned flavour and both schedulers, with a seeded mix
//! of faults: errors, panics, attempts that hang past their timeout (forever, or asleep
//! well past it), slow attempts, backoffs, cancellations of waiting, running and retrying
//! tasks, reprioritising, a slow consumer, and the consumer dropping the stream at random
//! points.
//!
//! What is checked, for every task of every round:
//!
//! - **exactly once**: every task not cancelled or dropped yields exactly one outcome, and
//!   no task yields two;
//! - **attempts follow the policy**: every attempt but the last ended in a failure that may
//!   be retried (an error, or a timeout); the last one is the outcome (`Ok` at the first
//!   success, `is_panic` at once on a panic, the error or `is_timeout` after exactly the
//!   allowed attempts); `Failure::attempts` is the number of attempts started; on the
//!   paused clock, only attempts planned to hang time out;
//! - **the bound**: never more than `concurrency` attempts in flight;
//! - **nothing starts after a drop**, and every attempt future is dropped in the end;
//! - **cancellation** (scheduler, in place): a `cancel` that returns `true` ends its task
//!   with `is_cancelled` and no attempt starts after it; one that returns `false` leaves
//!   the outcome as it is.
//!
//! Every count of faults is printed (`cargo test --test chaos -- --nocapture`). The seed
//! is printed too, and `CHAOS_SEED=<n>` replays a run; `CHAOS_SCALE=<x>` multiplies the
//! number of tasks (1 by default: a couple of minutes at most in a debug build).

use std::collections::HashMap;
use std::fmt;
use std::future::pending;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures::{Stream, StreamExt};
use retry_pool::{Backoff, Failure, Pool, Retry, Scheduled, SchedulerHandle, TaskId};
use support::Probe;

// What the tasks do.

/// What an attempt does before it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delay {
    None,
    Yields(u8),
    /// Sleeps this many microseconds.
    Sleep(u64),
    /// Pending forever (without keeping its waker): only a timeout, a cancel or a drop
    /// ends it.
    Forever,
}

/// How an attempt ends, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    Err,
    Panic,
}

#[derive(Clone, Copy, Debug)]
struct Act {
    delay: Delay,
    end: End,
    /// Runs past the pool's timeout: the attempt must time out.
    hangs: bool,
}

/// What became of an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Log {
    Running,
    Ended(End),
    /// Dropped before it ended: timed out, cancelled, or its stream dropped.
    Dropped,
}

/// The faults injected and met, over a whole test.
#[derive(Default)]
struct Faults {
    rounds: AtomicU64,
    tasks: AtomicU64,
    attempts: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    hangs_forever: AtomicU64,
    hangs_asleep: AtomicU64,
    slow: AtomicU64,
    yielding: AtomicU64,
    timeouts: AtomicU64,
    retries: AtomicU64,
    retries_after_backoff: AtomicU64,
    outcomes: AtomicU64,
    stream_drops: AtomicU64,
    dropped_in_flight: AtomicU64,
    slow_consumer: AtomicU64,
    cancels_waiting: AtomicU64,
    cancels_running: AtomicU64,
    cancels_retrying: AtomicU64,
    cancels_refused: AtomicU64,
    cancels_lost: AtomicU64,
    reprioritised: AtomicU64,
    backpressure: AtomicU64,
    late_starts: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("rounds", &self.rounds),
            ("tasks", &self.tasks),
            ("attempts started", &self.attempts),
            ("attempts ok", &self.ok),
            ("errors injected", &self.errors),
            ("panics injected", &self.panics),
            ("hangs past the timeout (forever)", &self.hangs_forever),
            ("hangs past the timeout (asleep)", &self.hangs_asleep),
            ("slow attempts (asleep, within the timeout)", &self.slow),
            ("yielding attempts", &self.yielding),
            (
                "timeouts (attempts dropped at their deadline)",
                &self.timeouts,
            ),
            ("retries", &self.retries),
            ("  of which after a backoff", &self.retries_after_backoff),
            ("outcomes taken", &self.outcomes),
            ("streams dropped early", &self.stream_drops),
            (
                "  attempts in flight dropped with them",
                &self.dropped_in_flight,
            ),
            ("slow consumer pauses", &self.slow_consumer),
            ("cancels of waiting tasks", &self.cancels_waiting),
            ("cancels of running tasks", &self.cancels_running),
            ("cancels of tasks between attempts", &self.cancels_retrying),
            ("cancels refused (already finished)", &self.cancels_refused),
            ("cancels lost", &self.cancels_lost),
            ("priorities changed", &self.reprioritised),
            ("submissions refused by backpressure", &self.backpressure),
            ("attempts started after a drop", &self.late_starts),
        ];
        for (name, count) in rows {
            writeln!(f, "  {name:<48} {:>9}", count.load(Relaxed))?;
        }
        Ok(())
    }
}

/// One round: its tasks' plans and what became of their attempts.
struct Round {
    plans: Vec<Vec<Act>>,
    logs: Vec<Mutex<Vec<Log>>>,
    probe: Probe,
    /// Set right after the stream is dropped.
    dropped: AtomicBool,
    late_starts: AtomicUsize,
    faults: Arc<Faults>,
}

/// Marks its attempt dropped unless it ended.
struct Record<'a> {
    round: &'a Round,
    index: usize,
    attempt: usize,
    ended: bool,
}

impl Record<'_> {
    fn end(&mut self, end: End) {
        self.round.logs[self.index].lock().unwrap()[self.attempt] = Log::Ended(end);
        self.ended = true;
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let mut log = self.round.logs[self.index]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            log[self.attempt] = Log::Dropped;
        }
    }
}

/// One attempt of task `index`: does what its plan says for this attempt.
async fn attempt(round: Arc<Round>, index: usize) -> Result<usize, usize> {
    if round.dropped.load(SeqCst) {
        round.late_starts.fetch_add(1, SeqCst);
    }
    let number = {
        let mut log = round.logs[index].lock().unwrap();
        log.push(Log::Running);
        log.len() - 1
    };
    let faults = &round.faults;
    add(&faults.attempts, 1);
    // Past the plan only when the pool breaks its policy, which the checks report.
    let act = round.plans[index].get(number).copied().unwrap_or(Act {
        delay: Delay::None,
        end: End::Ok,
        hangs: false,
    });
    let _in_flight = round.probe.enter();
    let mut record = Record {
        round: &round,
        index,
        attempt: number,
        ended: false,
    };
    match act.delay {
        Delay::None => {}
        Delay::Yields(n) => {
            add(&faults.yielding, 1);
            for _ in 0..n {
                support::yield_once().await;
            }
        }
        Delay::Sleep(micros) => {
            add(
                if act.hangs {
                    &faults.hangs_asleep
                } else {
                    &faults.slow
                },
                1,
            );
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
        Delay::Forever => {
            add(&faults.hangs_forever, 1);
            pending::<()>().await;
        }
    }
    record.end(act.end);
    match act.end {
        End::Ok => {
            add(&faults.ok, 1);
            Ok(index)
        }
        End::Err => {
            add(&faults.errors, 1);
            Err(index)
        }
        End::Panic => {
            add(&faults.panics, 1);
            panic!("chaos panic in task {index}")
        }
    }
}

// The configuration of a round.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// tokio's paused clock, on one thread: every time exact, every round reproducible.
    Paused,
    /// The real clock, on worker threads.
    Real,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    concurrency: usize,
    retry: Retry,
    attempts: u32,
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    tasks: usize,
    /// Drop the stream after this many outcomes.
    drop_after: Option<usize>,
    clock: Clock,
}

impl Config {
    fn random(rng: &mut fastrand::Rng, clock: Clock, tasks: usize) -> Self {
        let concurrency = [1, 2, 3, 4, 7, 8, 16, 32, 64, 128][rng.usize(0..10)];
        let retry = [Retry::None, Retry::Lifo, Retry::Fifo][rng.usize(0..3)];
        let timeout = rng.bool().then(|| match clock {
            Clock::Paused => Duration::from_millis(10),
            Clock::Real => Duration::from_millis(40),
        });
        let backoff = match rng.u8(0..4) {
            0 => Some(Backoff::fixed(Duration::from_millis(rng.u64(1..4)))),
            1 => Some(Backoff::exponential(
                Duration::from_millis(1),
                Duration::from_millis(8),
            )),
            _ => None,
        };
        // More attempts and a backoff need a retry policy ("Settings that go together" on
        // `Pool`).
        let attempts = if retry == Retry::None {
            1
        } else {
            rng.u32(1..=4)
        };
        Config {
            concurrency,
            retry,
            attempts,
            timeout,
            backoff: backoff.filter(|_| retry != Retry::None),
            tasks,
            drop_after: (rng.u8(0..4) == 0).then(|| rng.usize(0..=tasks)),
            clock,
        }
    }

    fn pool(&self) -> Pool {
        let mut pool = Pool::new(self.concurrency)
            .retry(self.retry)
            .attempts(self.attempts);
        if let Some(timeout) = self.timeout {
            pool = pool.timeout(timeout);
        }
        if let Some(backoff) = self.backoff {
            pool = pool.backoff(backoff);
        }
        pool
    }

    /// What one attempt does.
    fn act(&self, rng: &mut fastrand::Rng) -> Act {
        let end = match rng.u8(0..100) {
            0..70 => End::Ok,
            70..97 => End::Err,
            _ => End::Panic,
        };
        let (delay, hangs) = match (rng.u8(0..100), self.timeout, self.clock) {
            (0..40, ..) => (Delay::None, false),
            (40..70, ..) => (Delay::Yields(rng.u8(1..4)), false),
            // Well within the timeout: 0-4ms paused, up to 1ms real.
            (70..90, _, Clock::Paused) => (Delay::Sleep(rng.u64(0..4_000)), false),
            (70..90, _, Clock::Real) => (Delay::Sleep(rng.u64(0..1_000)), false),
            (90..95, Some(_), _) => (Delay::Forever, true),
            // Well past it on the paused clock: 25-60ms. (On the real clock, hangs cost
            // real time: fewer of them.)
            (95.., Some(_), Clock::Paused) => (Delay::Sleep(rng.u64(25_000..60_000)), true),
            _ => (Delay::Yields(1), false),
        };
        Act { delay, end, hangs }
    }

    fn round(&self, rng: &mut fastrand::Rng, faults: &Arc<Faults>) -> Arc<Round> {
        let attempts = self.attempts as usize;
        add(&faults.rounds, 1);
        add(&faults.tasks, self.tasks as u64);
        Arc::new(Round {
            plans: (0..self.tasks)
                .map(|_| (0..attempts).map(|_| self.act(rng)).collect())
                .collect(),
            logs: (0..self.tasks).map(|_| Mutex::default()).collect(),
            probe: Probe::new(),
            dropped: AtomicBool::new(false),
            late_starts: AtomicUsize::new(0),
            faults: Arc::clone(faults),
        })
    }
}

// The checks.

/// How a scheduler's task was cancelled, if it was.
#[derive(Clone, Copy, Debug)]
struct Cancelled {
    /// What `cancel` returned.
    accepted: bool,
    /// Attempts started when it was cancelled.
    attempts: usize,
}

type Outcome = Result<usize, Failure<usize>>;

/// Checks what became of task `index`, given its outcome (if the stream yielded one).
fn check_task(
    round: &Round,
    config: &Config,
    index: usize,
    outcome: Option<&Outcome>,
    cancelled: Option<Cancelled>,
    strict_cancel: bool,
) -> Result<(), String> {
    let log = round.logs[index].lock().unwrap().clone();
    let plan = &round.plans[index];
    let max = config.attempts as usize;
    let deterministic = config.clock == Clock::Paused;
    if log.contains(&Log::Running) {
        return Err(format!("an attempt was never dropped: {log:?}"));
    }
    if log.len() > max {
        return Err(format!("{} attempts, more than {max}: {log:?}", log.len()));
    }
    // Every attempt but the last failed in a way that is retried.
    let retried = log.len().saturating_sub(1);
    for (n, entry) in log[..retried].iter().enumerate() {
        match entry {
            Log::Ended(End::Err) => {}
            Log::Dropped if !deterministic || plan[n].hangs => {}
            other => {
                return Err(format!(
                    "attempt {} was {other:?}, then retried: {log:?}",
                    n + 1
                ));
            }
        }
    }
    let Some(outcome) = outcome else {
        // Dropped with its stream, or before its outcome was taken.
        return Ok(());
    };
    let last = log.last().copied();
    let lost_cancel =
        cancelled.is_some_and(|c| c.accepted) && !outcome.as_ref().is_err_and(|f| f.is_cancelled());
    if lost_cancel {
        add(&round.faults.cancels_lost, 1);
        return Err(format!("cancelled, but ended {outcome:?}: {log:?}"));
    }
    match outcome {
        Ok(value) => {
            if *value != index || last != Some(Log::Ended(End::Ok)) {
                return Err(format!("Ok({value}) for {log:?}"));
            }
        }
        Err(failure) => {
            if failure.index() != index {
                return Err(format!("failure of task {} for {index}", failure.index()));
            }
            let attempts = failure.attempts() as usize;
            if failure.is_cancelled() {
                let Some(cancel) = cancelled.filter(|c| c.accepted) else {
                    return Err(format!("cancelled, though not asked: {failure:?}"));
                };
                if strict_cancel && (attempts != log.len() || log.len() != cancel.attempts) {
                    return Err(format!(
                        "cancelled after {} attempts, {attempts} reported, {} started: {log:?}",
                        cancel.attempts,
                        log.len()
                    ));
                }
                // A spawned attempt aborted before its first poll counts without starting.
                if !(log.len()..=log.len() + 1).contains(&attempts) {
                    return Err(format!("cancelled: {failure:?} for {log:?}"));
                }
                return Ok(());
            }
            if attempts != log.len() {
                return Err(format!("{failure:?} for {} attempts: {log:?}", log.len()));
            }
            let ok = if failure.is_panic() {
                last == Some(Log::Ended(End::Panic))
                    && failure
                        .panic_message()
                        .is_some_and(|m| m.starts_with("chaos panic"))
            } else if failure.is_timeout() {
                last == Some(Log::Dropped)
                    && attempts == max
                    && (!deterministic || plan[attempts - 1].hangs)
            } else {
                failure.error() == Some(&index)
                    && last == Some(Log::Ended(End::Err))
                    && attempts == max
            };
            if !ok {
                return Err(format!("{failure:?} for {log:?} (max {max})"));
            }
            add(&round.faults.timeouts, u64::from(failure.is_timeout()));
        }
    }
    Ok(())
}

/// Counts what the logs say about timeouts and retries, once a round is over.
fn count_round(round: &Round, config: &Config) {
    let faults = &round.faults;
    for log in &round.logs {
        let log = log.lock().unwrap();
        let retried = log.len().saturating_sub(1) as u64;
        add(&faults.retries, retried);
        if config.backoff.is_some() {
            add(&faults.retries_after_backoff, retried);
        }
        let timeouts = log[..log.len().saturating_sub(1)]
            .iter()
            .enumerate()
            .filter(|&(_, entry)| *entry == Log::Dropped)
            .count();
        add(&faults.timeouts, timeouts as u64);
    }
}

/// Fails the test with the first few problems, and what it takes to replay them.
#[track_caller]
fn report(problems: &[String], config: &Config, seed: u64, round: usize) {
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(8).collect();
        panic!(
            "{} problems in round {round} of seed {seed} ({config:?}):\n{shown:#?}",
            problems.len()
        );
    }
}

/// Waits (a bounded while) until no attempt is in flight: a spawned attempt is dropped by
/// its worker once the abort reaches it.
async fn quiesce(round: &Round) {
    for _ in 0..10_000 {
        if round.probe.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// The batch flavours: a pool over an iterator, in place or spawned.

type Outcomes = Pin<Box<dyn Stream<Item = Outcome>>>;

fn in_place(config: &Config, round: &Arc<Round>) -> Outcomes {
    let round = Arc::clone(round);
    let tasks = (0..config.tasks).map(move |index| {
        let round = Arc::clone(&round);
        move || attempt(Arc::clone(&round), index)
    });
    Box::pin(config.pool().run(tasks))
}

fn spawned(config: &Config, round: &Arc<Round>) -> Outcomes {
    let round = Arc::clone(round);
    let tasks = (0..config.tasks).map(move |index| {
        let round = Arc::clone(&round);
        move || attempt(Arc::clone(&round), index)
    });
    Box::pin(config.pool().spawn(tasks))
}

/// Runs one round of a batch flavour and checks it.
async fn batch_round(
    make: fn(&Config, &Arc<Round>) -> Outcomes,
    config: Config,
    rng: &mut fastrand::Rng,
    faults: &Arc<Faults>,
    seed: u64,
    number: usize,
) {
    let round = config.round(rng, faults);
    let mut stream = make(&config, &round);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; config.tasks];
    let mut problems = Vec::new();
    let mut taken = 0;
    let patience = match config.clock {
        Clock::Paused => Duration::from_secs(3600),
        Clock::Real => Duration::from_secs(60),
    };
    loop {
        if config.drop_after == Some(taken) {
            let in_flight = round.probe.in_flight();
            drop(stream);
            round.dropped.store(true, SeqCst);
            add(&faults.stream_drops, 1);
            add(&faults.dropped_in_flight, in_flight as u64);
            break;
        }
        let next = match tokio::time::timeout(patience, stream.next()).await {
            Ok(next) => next,
            Err(_) => panic!("round {number} of seed {seed} hung ({config:?})"),
        };
        let Some(outcome) = next else { break };
        taken += 1;
        let index = match &outcome {
            Ok(value) => *value,
            Err(failure) => failure.index(),
        };
        match outcomes.get_mut(index) {
            Some(slot @ None) => *slot = Some(outcome),
            Some(Some(first)) => problems.push(format!(
                "task {index} yielded twice: {first:?}, then {outcome:?}"
            )),
            None => problems.push(format!("an outcome for no task: {outcome:?}")),
        }
        if rng.u8(0..50) == 0 {
            add(&faults.slow_consumer, 1);
            tokio::time::sleep(Duration::from_micros(rng.u64(0..2_000))).await;
        }
        let peak = round.probe.peak();
        if peak > config.concurrency {
            problems.push(format!(
                "{peak} attempts in flight, above {}",
                config.concurrency
            ));
            break;
        }
    }
    add(&faults.outcomes, taken as u64);
    let dropped = round.dropped.load(SeqCst);
    if dropped {
        quiesce(&round).await;
        // Long enough for any backoff or late spawn to show.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if round.probe.peak() > config.concurrency {
        problems.push(format!(
            "{} attempts in flight, above {}",
            round.probe.peak(),
            config.concurrency
        ));
    }
    let late = round.late_starts.load(SeqCst);
    add(&faults.late_starts, late as u64);
    // On worker threads an attempt may start while the stream is being dropped: counted.
    if late > 0 && config.clock == Clock::Paused {
        problems.push(format!(
            "{late} attempts started after the stream was dropped"
        ));
    }
    for (index, outcome) in outcomes.iter().enumerate() {
        if outcome.is_none() && !dropped {
            problems.push(format!("task {index} yielded nothing"));
        }
        if let Err(problem) = check_task(&round, &config, index, outcome.as_ref(), None, true) {
            problems.push(format!("task {index}: {problem}"));
        }
    }
    count_round(&round, &config);
    report(&problems, &config, seed, number);
}

// The schedulers.

type Task = Box<
    dyn FnMut() -> Pin<Box<dyn std::future::Future<Output = Result<usize, usize>> + Send>> + Send,
>;

fn scheduler_task(round: &Arc<Round>, index: usize) -> Task {
    let round = Arc::clone(round);
    Box::new(move || Box::pin(attempt(Arc::clone(&round), index)))
}

/// One round of a scheduler: tasks submitted in bursts at random priorities while
/// outcomes are taken, some reprioritised, some cancelled (waiting, running or between
/// attempts), then closed and drained, or the stream dropped at a random point.
async fn scheduler_round<C>(
    (handle, stream): (SchedulerHandle<Task>, Scheduled<C>),
    config: Config,
    strict_cancel: bool,
    rng: &mut fastrand::Rng,
    faults: &Arc<Faults>,
    seed: u64,
    number: usize,
) where
    Scheduled<C>: Stream<Item = (TaskId, Outcome)> + Unpin,
{
    let round = config.round(rng, faults);
    let mut stream = Some(stream);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; config.tasks];
    let mut cancels: HashMap<usize, Cancelled> = HashMap::new();
    let mut ids: Vec<TaskId> = Vec::with_capacity(config.tasks);
    let mut problems = Vec::new();
    let (mut submitted, mut taken) = (0usize, 0usize);
    let patience = match config.clock {
        Clock::Paused => Duration::from_secs(3600),
        Clock::Real => Duration::from_secs(60),
    };
    while let Some(done) = stream.as_mut() {
        if config.drop_after.is_some_and(|after| taken >= after) {
            let in_flight = round.probe.in_flight();
            stream = None;
            round.dropped.store(true, SeqCst);
            add(&faults.stream_drops, 1);
            add(&faults.dropped_in_flight, in_flight as u64);
            break;
        }
        let outstanding = submitted - taken;
        let step = rng.u8(0..100);
        if submitted < config.tasks && (step < 35 || outstanding == 0) {
            for _ in 0..rng.usize(1..16).min(config.tasks - submitted) {
                match handle.try_submit(scheduler_task(&round, submitted), rng.i32(-3..=3)) {
                    Ok(id) => {
                        assert_eq!(id.get(), submitted, "ids are given in order");
                        ids.push(id);
                        submitted += 1;
                    }
                    Err(refused) => {
                        assert!(matches!(refused, retry_pool::SubmitError::Full(_)));
                        add(&faults.backpressure, 1);
                        break;
                    }
                }
            }
            if submitted == config.tasks {
                handle.close();
            }
            continue;
        }
        if submitted > 0 && step < 42 {
            let index = rng.usize(0..submitted);
            if cancels.contains_key(&index) {
                continue;
            }
            let log = round.logs[index].lock().unwrap().clone();
            let accepted = handle.cancel(ids[index]);
            let counter = match log.last() {
                _ if !accepted => &faults.cancels_refused,
                None => &faults.cancels_waiting,
                Some(Log::Running) => &faults.cancels_running,
                Some(_) => &faults.cancels_retrying,
            };
            add(counter, 1);
            cancels.insert(
                index,
                Cancelled {
                    accepted,
                    attempts: log.len(),
                },
            );
            continue;
        }
        if submitted > 0 && step < 46 {
            let index = rng.usize(0..submitted);
            handle.set_priority(ids[index], rng.i32(-3..=3));
            add(&faults.reprioritised, 1);
            continue;
        }
        if outstanding == 0 {
            if submitted == config.tasks {
                // Closed and drained: the stream must end.
                match tokio::time::timeout(patience, done.next()).await {
                    Ok(None) => break,
                    other => panic!("round {number}: after every outcome, {other:?}"),
                }
            }
            continue;
        }
        let next = match tokio::time::timeout(patience, done.next()).await {
            Ok(next) => next,
            Err(_) => panic!("round {number} of seed {seed} hung ({config:?})"),
        };
        let Some((id, outcome)) = next else {
            problems.push(format!(
                "the stream ended with {outstanding} tasks outstanding"
            ));
            break;
        };
        taken += 1;
        let index = id.get();
        match &outcome {
            Ok(value) if *value != index => problems.push(format!("{id}: Ok({value})")),
            Err(failure) if failure.index() != index => {
                problems.push(format!("{id}: {failure:?}"));
            }
            _ => {}
        }
        match outcomes.get_mut(index) {
            Some(slot @ None) => *slot = Some(outcome),
            Some(Some(first)) => problems.push(format!(
                "task {index} yielded twice: {first:?}, then {outcome:?}"
            )),
            None => problems.push(format!("an outcome for no task: {outcome:?}")),
        }
        if rng.u8(0..50) == 0 {
            add(&faults.slow_consumer, 1);
            tokio::time::sleep(Duration::from_micros(rng.u64(0..2_000))).await;
        }
    }
    add(&faults.outcomes, taken as u64);
    let dropped = round.dropped.load(SeqCst);
    drop(stream);
    drop(handle);
    if dropped {
        quiesce(&round).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if round.probe.peak() > config.concurrency {
        problems.push(format!(
            "{} attempts in flight, above {}",
            round.probe.peak(),
            config.concurrency
        ));
    }
    let late = round.late_starts.load(SeqCst);
    add(&faults.late_starts, late as u64);
    if late > 0 && strict_cancel {
        problems.push(format!(
            "{late} attempts started after the stream was dropped"
        ));
    }
    for (index, outcome) in outcomes.iter().enumerate().take(submitted) {
        if outcome.is_none() && !dropped {
            problems.push(format!("task {index} yielded nothing"));
        }
        let cancel = cancels.get(&index).copied();
        if let Err(problem) = check_task(
            &round,
            &config,
            index,
            outcome.as_ref(),
            cancel,
            strict_cancel,
        ) {
            problems.push(format!("task {index}: {problem} ({cancel:?})"));
        }
        if cancel.is_some_and(|c| !c.accepted)
            && outcome
                .as_ref()
                .is_some_and(|o| o.as_ref().is_err_and(|f| f.is_cancelled()))
        {
            problems.push(format!("task {index}: cancel refused, yet cancelled"));
        }
    }
    count_round(&round, &config);
    report(&problems, &config, seed, number);
}

// The soaks.

static QUIET: Once = Once::new();

fn setup(name: &str) -> (u64, f64) {
    QUIET.call_once(|| support::quiet_panics("chaos panic"));
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_c4a0_5000);
    let scale = std::env::var("CHAOS_SCALE")
        .ok()
        .and_then(|scale| scale.parse().ok())
        .unwrap_or(1.0);
    println!("chaos {name}: seed {seed} (CHAOS_SEED), scale {scale} (CHAOS_SCALE)");
    (seed, scale)
}

fn scaled(tasks: usize, scale: f64) -> usize {
    ((tasks as f64 * scale) as usize).max(1)
}

fn finish(name: &str, faults: &Faults, started: std::time::Instant) {
    println!("chaos {name}: done in {:.1?}\n{faults}", started.elapsed());
}

/// Runs batch rounds until `total` tasks have gone through.
async fn batch_soak(
    name: &str,
    make: fn(&Config, &Arc<Round>) -> Outcomes,
    clock: Clock,
    total: usize,
    per_round: std::ops::Range<usize>,
) {
    let (seed, scale) = setup(name);
    let started = std::time::Instant::now();
    let mut rng = fastrand::Rng::with_seed(seed ^ fxhash(name));
    let faults = Arc::new(Faults::default());
    let (mut done, mut number) = (0, 0);
    while done < scaled(total, scale) {
        let tasks = rng.usize(per_round.clone());
        let config = Config::random(&mut rng, clock, tasks);
        batch_round(make, config, &mut rng, &faults, seed, number).await;
        done += tasks;
        number += 1;
    }
    finish(name, &faults, started);
}

/// Runs scheduler rounds until `total` tasks have gone through.
async fn scheduler_soak(
    name: &str,
    spawn: bool,
    clock: Clock,
    total: usize,
    per_round: std::ops::Range<usize>,
) {
    let (seed, scale) = setup(name);
    let started = std::time::Instant::now();
    let mut rng = fastrand::Rng::with_seed(seed ^ fxhash(name));
    let faults = Arc::new(Faults::default());
    let (mut done, mut number) = (0, 0);
    while done < scaled(total, scale) {
        let tasks = rng.usize(per_round.clone());
        let config = Config::random(&mut rng, clock, tasks);
        let mut pool = config.pool();
        if rng.u8(0..3) == 0 {
            pool = pool.max_waiting(rng.usize(4..64));
        }
        if spawn {
            // Spawned, an abort lands later: a cancelled attempt may still start (and be
            // counted), so attempt counts are not checked strictly; a cancel that returned
            // `true` must still end its task cancelled (see
            // `a_cancel_racing_a_failing_attempt_is_not_lost` in `tests/hostile.rs`).
            scheduler_round(
                pool.spawn_scheduler(),
                config,
                false,
                &mut rng,
                &faults,
                seed,
                number,
            )
            .await;
        } else {
            scheduler_round(
                pool.scheduler(),
                config,
                true,
                &mut rng,
                &faults,
                seed,
                number,
            )
            .await;
        }
        done += tasks;
        number += 1;
    }
    finish(name, &faults, started);
}

/// A small stable hash, so that each soak draws its own numbers from the one seed.
fn fxhash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

// Five soaks, run side by side; about 900,000 tasks in all.

#[tokio::test(start_paused = true)]
async fn soak_in_place() {
    batch_soak("in place", in_place, Clock::Paused, 400_000, 100..3_000).await;
}

#[tokio::test(start_paused = true)]
async fn soak_spawned() {
    batch_soak("spawned", spawned, Clock::Paused, 200_000, 100..2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_spawned_on_worker_threads() {
    let name = "spawned, worker threads";
    batch_soak(name, spawned, Clock::Real, 30_000, 100..2_000).await;
}

#[tokio::test(start_paused = true)]
async fn soak_scheduler_in_place() {
    let name = "scheduler in place";
    scheduler_soak(name, false, Clock::Paused, 150_000, 50..1_500).await;
}

#[tokio::test(start_paused = true)]
async fn soak_scheduler_spawned() {
    let name = "scheduler spawned";
    scheduler_soak(name, true, Clock::Paused, 100_000, 50..1_500).await;
}

/// Regression (found by the soak): an attempt that needs a few more polls is polled
/// while tasks that finish at once keep outcomes coming. It used to wait for every one
/// of them, outcome 1,000 of 1,000, and behind a consumer taking 1ms per outcome, to time
/// out after 10ms though it needed three polls.
#[tokio::test(start_paused = true)]
async fn a_woken_attempt_is_polled_while_outcomes_wait() {
    for slow_consumer in [false, true] {
        let tasks = (0..1000usize).map(|n| {
            async move || {
                if n == 0 {
                    for _ in 0..3 {
                        support::yield_once().await;
                    }
                }
                Ok::<_, ()>(n)
            }
        });
        let mut done = Pool::new(4).timeout(Duration::from_millis(10)).run(tasks);
        let (mut taken, mut position) = (0, None);
        while let Some(outcome) = done.next().await {
            match outcome {
                Ok(0) => position = Some(taken),
                Ok(_) => {}
                Err(failure) => panic!("slow consumer {slow_consumer}: {failure:?}"),
            }
            taken += 1;
            if slow_consumer {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let position = position.expect("task 0 has its outcome");
        assert!(
            position < 10,
            "slow consumer {slow_consumer}: outcome {position}"
        );
    }
}
