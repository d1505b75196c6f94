//! Side-by-side throughput and peak memory of retry-pool against the anchors of
//! ARCHITECTURE.md (its performance figures). One command runs everything and prints the tables of
//! `benches/RESULTS.md`:
//!
//! ```text
//! cargo bench --bench throughput
//! ```
//!
//! Options (after `--`): `--runs N` timed runs per row (default 9; the median is reported),
//! `--tasks N` tasks per run (default 1,000,000), `--only TEXT` rows whose name contains
//! TEXT (and the anchors, unless `--solo` too; with `--exact`, the row named TEXT alone),
//! `--concurrency 8,64` the concurrencies,
//! `--no-memory` / `--memory-only`, and `--quick` (100,000 tasks, 3 runs, for
//! development). The whole default run takes about four and a half minutes on 2 cores.
//!
//! `--charts` draws the two charts of the README instead (`benches/throughput.svg`: time
//! per task against concurrency, 8 to 65,536, for every row; `benches/memory.svg`: peak
//! memory against the number of tasks, 10³ to 10⁷, for every memory case), from the medians
//! of `--runs` runs of `--tasks` tasks (give `--runs 3 --tasks 200000` for a run of a few
//! minutes); `--concurrency` replaces the chart's concurrencies.
//!
//! Every task is a no-op that awaits `tokio::task::yield_now()` once and returns its
//! index. Rows run on a tokio current-thread runtime (`enable_all`, as
//! `#[tokio::main(flavor = "current_thread")]` builds it) unless their name says
//! otherwise. The rows of one round run one after another and the rounds are repeated, so
//! that the machine's slow moments spread over every row instead of landing on one.
//! Throughput is tasks per second; each ratio is a median over the median of the anchor
//! row of the same concurrency (`buffer_unordered`, or `buffer_unordered` with in-future
//! retries for the rows with failures). Some rows also have an anchor of their own, the row
//! they are meant to match or beat (`#[pooled]` against `Pool::run`, the spawned pool
//! against the multi-thread `JoinSet` loop): a second table compares each with it, as the
//! ratio of the medians and the range of the ratios round by round (both rows ran in the
//! same round, one right after the other, so a slow moment of the machine affects both).
//!
//! Peak memory is measured in a child process per case (this binary, run again with
//! `--memory-child`), which reads its peak resident set (`VmHWM` of /proc/self/status)
//! after pulling every task.

mod bare_slots;

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::stream::{self, FuturesUnordered, StreamExt};
use retry_pool::{Pool, Retry};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// One no-op task: yields to the executor once, then returns its index.
async fn noop(index: u64) -> Result<u64, u64> {
    tokio::task::yield_now().await;
    Ok(index)
}

/// The same as a task that can be started again.
fn noop_task(index: u64) -> impl AsyncFnMut() -> Result<u64, u64> {
    async move || noop(index).await
}

/// Whether task `index` fails its first attempt: every ninth task does, so that one
/// attempt in ten fails (`n/9` failures among `n + n/9` attempts).
fn fails_first(index: u64) -> bool {
    index % 9 == 0
}

/// A task whose first attempt fails when [`fails_first`] says so.
fn flaky_task(index: u64) -> impl AsyncFnMut() -> Result<u64, u64> {
    let mut fail = fails_first(index);
    async move || {
        tokio::task::yield_now().await;
        if std::mem::take(&mut fail) {
            Err(index)
        } else {
            Ok(index)
        }
    }
}

/// Attempts per task when retrying.
const ATTEMPTS: u32 = 3;

/// The same task as one future that retries inside itself, up to [`ATTEMPTS`] attempts.
async fn flaky_retrying(index: u64) -> Result<u64, u64> {
    let mut task = flaky_task(index);
    let mut attempt = 1;
    loop {
        match task().await {
            Err(_) if attempt < ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

/// Adds up the `Ok` items of a stream: what every row hands back, to be checked.
async fn sum_ok<S: futures::Stream<Item = Result<u64, E>> + Unpin, E>(mut outcomes: S) -> u64 {
    let mut sum = 0;
    while let Some(outcome) = outcomes.next().await {
        if let Ok(value) = outcome {
            sum += value;
        }
    }
    sum
}

// ---------------------------------------------------------------------------------------
// The rows. Each runs `n` tasks at concurrency `c` and returns the sum of their values.
// ---------------------------------------------------------------------------------------

async fn buffer_unordered(n: u64, c: usize) -> u64 {
    sum_ok(stream::iter((0..n).map(noop)).buffer_unordered(c)).await
}

async fn futures_unordered_loop(n: u64, c: usize) -> u64 {
    let mut tasks = (0..n).map(noop);
    let mut running: FuturesUnordered<_> = tasks.by_ref().take(c).collect();
    let mut sum = 0;
    while let Some(outcome) = running.next().await {
        if let Ok(value) = outcome {
            sum += value;
        }
        if let Some(task) = tasks.next() {
            running.push(task);
        }
    }
    sum
}

/// A `JoinSet` refilled by hand: at most `c` spawned tasks at once.
async fn join_set_loop(n: u64, c: usize) -> u64 {
    let mut tasks = (0..n).map(noop);
    let mut running = JoinSet::new();
    for task in tasks.by_ref().take(c) {
        running.spawn(task);
    }
    let mut sum = 0;
    while let Some(joined) = running.join_next().await {
        if let Ok(value) = joined.expect("a no-op task does not panic") {
            sum += value;
        }
        if let Some(task) = tasks.next() {
            running.spawn(task);
        }
    }
    sum
}

async fn pool_run(n: u64, c: usize) -> u64 {
    sum_ok(Pool::new(c).run((0..n).map(noop_task))).await
}

async fn pool_run_futures(n: u64, c: usize) -> u64 {
    sum_ok(Pool::new(c).run_futures((0..n).map(noop))).await
}

/// The spawned flavour: every attempt a tokio task, started by the pool's driver task.
/// Its tasks are closures returning a future (`Pool::spawn` takes `FnMut() -> Fut`).
async fn pool_spawn(n: u64, c: usize) -> u64 {
    sum_ok(Pool::new(c).spawn((0..n).map(|index| move || noop(index)))).await
}

/// `Pool::run` through the attribute: the same tasks, listed by the body.
#[retry_pool::pooled(concurrency = c)]
async fn pooled_noops(n: u64, c: usize) -> Result<u64, u64> {
    (0..n).map(noop_task)
}

async fn pooled_run(n: u64, c: usize) -> u64 {
    sum_ok(pooled_noops(n, c)).await
}

/// `Pool::run_futures` through the attribute: a body listing plain futures (no retry).
#[retry_pool::pooled(concurrency = c)]
async fn pooled_noop_futures(n: u64, c: usize) -> Result<u64, u64> {
    (0..n).map(noop)
}

async fn pooled_futures(n: u64, c: usize) -> u64 {
    sum_ok(pooled_noop_futures(n, c)).await
}

/// The floor: `c` fixed lanes, lane `k` awaiting tasks `k`, `k + c`, `k + 2c`, ... one
/// after another. No scheduler bookkeeping beyond `join_all` itself.
async fn lanes(n: u64, c: usize) -> u64 {
    let lanes = (0..c as u64).map(|lane| async move {
        let mut sum = 0;
        let mut index = lane;
        while index < n {
            if let Ok(value) = noop(index).await {
                sum += value;
            }
            index += c as u64;
        }
        sum
    });
    futures::future::join_all(lanes).await.into_iter().sum()
}

/// The second floor: a stream of `c` bare slots (see `bare_slots.rs`), with the two rules
/// of the in-place flavour that cost on every task (tokio's budget, outcomes taken in
/// batches) and none of its features: what any in-place pool pays at least.
async fn bare_slots(n: u64, c: usize) -> u64 {
    sum_ok(bare_slots::BareSlots::new((0..n).map(noop), c)).await
}

async fn buffer_unordered_retrying(n: u64, c: usize) -> u64 {
    sum_ok(stream::iter((0..n).map(flaky_retrying)).buffer_unordered(c)).await
}

async fn pool_lifo(n: u64, c: usize) -> u64 {
    let tasks = (0..n).map(flaky_task);
    sum_ok(
        Pool::new(c)
            .retry(Retry::Lifo)
            .attempts(ATTEMPTS)
            .run(tasks),
    )
    .await
}

/// The LIFO row through the attribute (`attempts` takes a literal: [`ATTEMPTS`]).
#[retry_pool::pooled(concurrency = c, retry = "lifo", attempts = 3)]
async fn pooled_flaky(n: u64, c: usize) -> Result<u64, u64> {
    (0..n).map(flaky_task)
}

async fn pooled_lifo(n: u64, c: usize) -> u64 {
    sum_ok(pooled_flaky(n, c)).await
}

// ---------------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiThread2,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    /// No failures; anchor `buffer_unordered`.
    NoOp,
    /// 10% of attempts fail; anchor `buffer_unordered` with in-future retries.
    Failing,
}

/// Starts a row's run of `n` tasks at concurrency `c`.
type RunFn = fn(u64, usize) -> std::pin::Pin<Box<dyn Future<Output = u64>>>;

#[derive(Clone, Copy)]
struct Row {
    name: &'static str,
    group: Group,
    runtime: Flavor,
    /// Whether the other rows of its group are compared with it.
    anchor: bool,
    /// The row this one is meant to match or beat, compared in a table of its own.
    versus: Option<&'static str>,
    run: RunFn,
}

macro_rules! row {
    ($name:expr, $group:ident, $runtime:ident, $anchor:expr, $f:ident) => {
        row!($name, $group, $runtime, $anchor, $f, None)
    };
    ($name:expr, $group:ident, $runtime:ident, $anchor:expr, $f:ident, $versus:expr) => {
        Row {
            name: $name,
            group: Group::$group,
            runtime: Flavor::$runtime,
            anchor: $anchor,
            versus: $versus,
            // Boxed once per run, outside the tasks: one allocation per million tasks.
            run: |n, c| Box::pin($f(n, c)),
        }
    };
}

fn rows() -> Vec<Row> {
    vec![
        row!(
            "buffer_unordered",
            NoOp,
            CurrentThread,
            true,
            buffer_unordered
        ),
        row!(
            "FuturesUnordered refill loop",
            NoOp,
            CurrentThread,
            false,
            futures_unordered_loop
        ),
        row!(
            "JoinSet refill loop",
            NoOp,
            CurrentThread,
            false,
            join_set_loop
        ),
        row!(JOIN_SET_MT, NoOp, MultiThread2, false, join_set_loop),
        row!(
            "retry-pool spawned, multi-thread (2 workers)",
            NoOp,
            MultiThread2,
            false,
            pool_spawn,
            Some(JOIN_SET_MT)
        ),
        row!(
            "retry-pool in-place `run` (async closures)",
            NoOp,
            CurrentThread,
            false,
            pool_run
        ),
        row!(
            "`#[pooled]` in-place",
            NoOp,
            CurrentThread,
            false,
            pooled_run,
            Some(POOL_RUN)
        ),
        row!(
            POOL_RUN_FUTURES,
            NoOp,
            CurrentThread,
            false,
            pool_run_futures
        ),
        row!(
            "`#[pooled]` in-place, plain futures",
            NoOp,
            CurrentThread,
            false,
            pooled_futures,
            Some(POOL_RUN_FUTURES)
        ),
        row!(
            "floor: c fixed lanes (join_all)",
            NoOp,
            CurrentThread,
            false,
            lanes
        ),
        row!(
            "floor: c bare slots (a stream, no features)",
            NoOp,
            CurrentThread,
            false,
            bare_slots
        ),
        row!(
            "buffer_unordered, retries inside each future",
            Failing,
            CurrentThread,
            true,
            buffer_unordered_retrying
        ),
        row!(POOL_LIFO, Failing, CurrentThread, false, pool_lifo),
        row!(
            "`#[pooled]` LIFO, attempts 3",
            Failing,
            CurrentThread,
            false,
            pooled_lifo,
            Some(POOL_LIFO)
        ),
    ]
}

/// The names of the rows that others are compared with.
const JOIN_SET_MT: &str = "JoinSet refill loop, multi-thread (2 workers)";
const POOL_RUN: &str = "retry-pool in-place `run` (async closures)";
const POOL_RUN_FUTURES: &str = "retry-pool in-place `run_futures`";
const POOL_LIFO: &str = "retry-pool in-place LIFO, attempts 3";

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// Runs one row once; the time covers the tasks and nothing else.
fn measure(runtimes: &(Runtime, Runtime), row: &Row, n: u64, c: usize) -> Duration {
    let runtime = match row.runtime {
        Flavor::CurrentThread => &runtimes.0,
        Flavor::MultiThread2 => &runtimes.1,
    };
    let future = (row.run)(n, c);
    let (elapsed, sum) = runtime.block_on(async move {
        let start = Instant::now();
        let sum = future.await;
        (start.elapsed(), sum)
    });
    assert_eq!(
        sum,
        n * (n - 1) / 2,
        "{} at {c}: some task is missing",
        row.name
    );
    elapsed
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2
    }
}

struct Options {
    runs: usize,
    tasks: u64,
    only: Option<String>,
    /// With `--only`: leave the anchors out too (for profiling one row).
    solo: bool,
    /// With `--only`: the row whose name is exactly TEXT, not every row containing it.
    exact: bool,
    concurrency: Vec<usize>,
    throughput: bool,
    memory: bool,
    /// `--charts`: the SVG charts of `benches/` instead of the tables.
    charts: bool,
}

fn options(args: &[String]) -> Options {
    let mut options = Options {
        runs: 9,
        tasks: 1_000_000,
        only: None,
        solo: false,
        exact: false,
        concurrency: vec![8, 64, 1024],
        throughput: true,
        memory: true,
        charts: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--runs" => options.runs = value().parse().expect("--runs N"),
            "--tasks" => options.tasks = value().parse().expect("--tasks N"),
            "--only" => options.only = Some(value()),
            "--solo" => options.solo = true,
            "--exact" => options.exact = true,
            "--concurrency" => {
                options.concurrency = value()
                    .split(',')
                    .map(|c| c.parse().expect("--concurrency 8,64"))
                    .collect()
            }
            "--quick" => {
                options.runs = 3;
                options.tasks = 100_000;
            }
            "--no-memory" => options.memory = false,
            "--memory-only" => options.throughput = false,
            "--charts" => options.charts = true,
            // `cargo bench` passes `--bench`; anything else is ignored too.
            _ => {}
        }
    }
    options
}

/// The machine and the moment, for the results file.
fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map_or("unknown", |rest| rest.trim_start_matches([' ', '\t', ':']));
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    println!("- date: {}", output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    println!("- machine: {cpus} CPUs (`nproc`), {model}");
    println!("- {}", output("rustc", &["--version"]));
    let dirty = output("git", &["status", "--porcelain", "--", "retry-pool/src"]);
    println!(
        "- retry-pool at commit {}{}",
        output("git", &["rev-parse", "--short", "HEAD"]),
        if dirty.is_empty() {
            ""
        } else {
            " (with uncommitted changes in retry-pool/src)"
        }
    );
    println!("- load average before the run: {}", load_average());
}

fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn throughput_tables(options: &Options) {
    let all = rows();
    let chosen = |row: &Row| {
        options
            .only
            .as_ref()
            .is_none_or(|only| match options.exact {
                true => row.name == only.as_str(),
                false => row.name.contains(only.as_str()),
            })
    };
    // With `--only`, the anchors come along (unless `--solo`), and so does the row that a
    // chosen row is compared with.
    let rows: Vec<Row> = all
        .iter()
        .filter(|row| {
            chosen(row)
                || (!options.solo
                    && (row.anchor
                        || all
                            .iter()
                            .any(|other| chosen(other) && other.versus == Some(row.name))))
        })
        .copied()
        .collect();
    let runtimes = (current_thread(), multi_thread());
    let n = options.tasks;

    // A short warm-up of every row: page in the code, grow the runtimes' buffers.
    for &c in &options.concurrency {
        for row in &rows {
            measure(&runtimes, row, (n / 10).max(c as u64), c);
        }
    }

    // times[c][row] over the rounds.
    let mut times = vec![vec![Vec::new(); rows.len()]; options.concurrency.len()];
    let started = Instant::now();
    for round in 0..options.runs {
        for (ci, &c) in options.concurrency.iter().enumerate() {
            for (ri, row) in rows.iter().enumerate() {
                times[ci][ri].push(measure(&runtimes, row, n, c));
            }
        }
        eprintln!(
            "round {}/{} done after {:.1?}",
            round + 1,
            options.runs,
            started.elapsed()
        );
    }

    println!("- load average after the run: {}", load_average());
    println!(
        "\n{n} tasks per run; the median of {} runs per row. Throughput in millions of tasks \
         per second, and in brackets its ratio to the anchor's (the first row of the table) \
         at the same concurrency.\n",
        options.runs
    );
    // In the order of the rounds, for the pairs compared; `median` sorts `times`.
    let by_round = times.clone();
    let medians: Vec<Vec<Duration>> = times
        .iter_mut()
        .map(|per_row| per_row.iter_mut().map(|t| median(t)).collect())
        .collect();
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    for group in [Group::NoOp, Group::Failing] {
        match group {
            Group::NoOp => println!("### No-op tasks (one `yield_now` each)\n"),
            Group::Failing => println!(
                "### 10% of attempts failing (every 9th task fails its first attempt: {} attempts \
                 per run)\n",
                n + n.div_ceil(9)
            ),
        }
        print!("| row |");
        for c in &options.concurrency {
            print!(" c = {c} |");
        }
        println!();
        println!("|---|{}", "---:|".repeat(options.concurrency.len()));
        let anchor = rows.iter().position(|r| r.group == group && r.anchor);
        for (ri, row) in rows.iter().enumerate().filter(|(_, r)| r.group == group) {
            print!("| {} |", row.name);
            for per_row in &medians {
                let m = per_row[ri];
                let ratio = anchor.map_or(f64::NAN, |a| per_row[a].as_secs_f64() / m.as_secs_f64());
                print!(" {:.2} ({ratio:.2}×) |", rate(m));
            }
            println!();
        }
        println!();
    }

    // The rows with an anchor of their own, against it.
    let versus: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .filter_map(|(ri, row)| {
            let anchor = rows.iter().position(|r| Some(r.name) == row.versus)?;
            Some((ri, anchor))
        })
        .collect();
    if !versus.is_empty() {
        println!(
            "### Against their own anchors\n\nThroughput ratio of the medians, and in brackets \
             the range of the ratios round by round.\n"
        );
        print!("| row | against |");
        for c in &options.concurrency {
            print!(" c = {c} |");
        }
        println!();
        println!("|---|---|{}", "---:|".repeat(options.concurrency.len()));
        for &(ri, anchor) in &versus {
            print!("| {} | {} |", rows[ri].name, rows[anchor].name);
            for ci in 0..options.concurrency.len() {
                let ratio = medians[ci][anchor].as_secs_f64() / medians[ci][ri].as_secs_f64();
                let rounds: Vec<f64> = by_round[ci][anchor]
                    .iter()
                    .zip(&by_round[ci][ri])
                    .map(|(a, r)| a.as_secs_f64() / r.as_secs_f64())
                    .collect();
                let min = rounds.iter().copied().fold(f64::INFINITY, f64::min);
                let max = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                print!(" {ratio:.2}× [{min:.2}–{max:.2}] |");
            }
            println!();
        }
        println!();
    }

    // The scheduling cost of the in-place pool above each floor, against
    // `buffer_unordered`'s: (pool − floor) ÷ (buffer_unordered − floor), in time.
    let find = |name: &str| rows.iter().position(|r| r.name.starts_with(name));
    if let (Some(pool), Some(anchor)) =
        (find("retry-pool in-place `run`"), find("buffer_unordered"))
    {
        for floor in rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.name.starts_with("floor"))
        {
            print!(
                "Scheduling cost above \"{}\", `run` ÷ `buffer_unordered`:",
                floor.1.name
            );
            for (ci, c) in options.concurrency.iter().enumerate() {
                let above =
                    |ri: usize| medians[ci][ri].as_secs_f64() - medians[ci][floor.0].as_secs_f64();
                print!(" {:.2} (c = {c})", above(pool) / above(anchor));
            }
            println!(".");
        }
        println!();
    }

    println!("Milliseconds per run: median [min–max].\n");
    print!("| row |");
    for c in &options.concurrency {
        print!(" c = {c} |");
    }
    println!();
    println!("|---|{}", "---:|".repeat(options.concurrency.len()));
    for (ri, row) in rows.iter().enumerate() {
        print!("| {} |", row.name);
        for ci in 0..options.concurrency.len() {
            let sorted = &times[ci][ri];
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            print!(
                " {:.1} [{:.1}–{:.1}] |",
                ms(medians[ci][ri]),
                ms(sorted[0]),
                ms(sorted[sorted.len() - 1])
            );
        }
        println!();
    }
    println!();
}

// ---------------------------------------------------------------------------------------
// Peak memory, one child process per case.
// ---------------------------------------------------------------------------------------

const MEMORY_CASES: &[&str] = &[
    "retry-pool run",
    "retry-pool LIFO",
    MEMORY_SPAWNED,
    "buffer_unordered",
];
const MEMORY_SPAWNED: &str = "retry-pool spawned, multi-thread (2 workers)";
const MEMORY_CONCURRENCY: usize = 1024;

/// In the child: runs one case over `n` lazily pulled tasks, then prints its peak RSS.
fn memory_child(case: &str, n: u64) {
    let runtime = match case {
        MEMORY_SPAWNED => multi_thread(),
        _ => current_thread(),
    };
    let c = MEMORY_CONCURRENCY;
    let sum = runtime.block_on(async move {
        match case {
            "retry-pool run" => pool_run(n, c).await,
            "retry-pool LIFO" => pool_lifo(n, c).await,
            MEMORY_SPAWNED => pool_spawn(n, c).await,
            "buffer_unordered" => buffer_unordered(n, c).await,
            _ => panic!("no memory case {case:?}"),
        }
    });
    assert_eq!(sum, n * (n - 1) / 2);
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    println!("{kib}");
}

fn peak_kib(case: &str, n: u64) -> (u64, Duration) {
    let start = Instant::now();
    let output = Command::new(std::env::current_exe().expect("this binary"))
        .args(["--memory-child", case, &n.to_string()])
        .output()
        .expect("the memory child runs");
    assert!(
        output.status.success(),
        "memory child {case} {n}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kib = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the child prints its VmHWM in KiB");
    (kib, start.elapsed())
}

fn memory_table() {
    let (small, large) = (10_000, 10_000_000);
    println!(
        "### Peak memory (VmHWM of a child process per case; concurrency {MEMORY_CONCURRENCY}, current-thread unless the case says otherwise, tasks pulled lazily from a range)\n"
    );
    println!("| case | 10,000 tasks: MiB | 10,000,000 tasks: MiB | difference: MiB |");
    println!("|---|---:|---:|---:|");
    for case in MEMORY_CASES {
        let (a, _) = peak_kib(case, small);
        let (b, took) = peak_kib(case, large);
        eprintln!("memory {case}: 10M tasks took {took:.1?}");
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "| {case} | {:.2} | {:.2} | {:+.2} |",
            mib(a),
            mib(b),
            mib(b) - mib(a)
        );
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--memory-child") {
        let case = &args[at + 1];
        let n = args[at + 2].parse().expect("--memory-child CASE N");
        memory_child(case, n);
        return;
    }
    let options = options(&args);
    print_machine();
    if options.charts {
        charts(&options);
        return;
    }
    if options.throughput {
        throughput_tables(&options);
    }
    if options.memory {
        memory_table();
    }
}

// ---------------------------------------------------------------------------------------
// The charts of the README (`--charts`).
// ---------------------------------------------------------------------------------------

/// The concurrencies of the throughput chart, unless `--concurrency` says otherwise.
const CHART_CONCURRENCY: &[usize] = &[8, 64, 512, 4096, 32768, 65536];

/// Input sizes of the memory chart.
const CHART_SIZES: &[u64] = &[1_000, 10_000, 100_000, 1_000_000, 10_000_000];

fn charts(options: &Options) {
    let concurrency = match options.concurrency.as_slice() {
        [8, 64, 1024] => CHART_CONCURRENCY.to_vec(),
        chosen => chosen.to_vec(),
    };
    let all = rows();
    let runtimes = (current_thread(), multi_thread());
    let n = options.tasks;
    // ns per task, per row and concurrency: medians over the rounds, rows interleaved.
    let mut times = vec![vec![Vec::new(); concurrency.len()]; all.len()];
    for round in 0..options.runs {
        for (ci, &c) in concurrency.iter().enumerate() {
            for (ri, row) in all.iter().enumerate() {
                if round == 0 {
                    measure(&runtimes, row, (n / 10).max(c as u64), c);
                }
                times[ri][ci].push(measure(&runtimes, row, n, c));
            }
        }
        eprintln!("charts: round {}/{} done", round + 1, options.runs);
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = all
        .iter()
        .zip(&mut times)
        .map(|(row, per_c)| {
            let points = concurrency
                .iter()
                .zip(per_c.iter_mut())
                .map(|(&c, t)| (c as f64, median(t).as_secs_f64() * 1e9 / n as f64))
                .collect();
            (row.name.replace('`', ""), points)
        })
        .collect();
    for (name, points) in &series {
        let line: Vec<String> = points
            .iter()
            .map(|(c, ns)| format!("c = {c}: {ns:.0} ns"))
            .collect();
        println!("- {name}: {}", line.join(", "));
    }
    draw(
        "benches/throughput.svg",
        &format!(
            "Time per task ({n} no-op tasks, median of {} runs)",
            options.runs
        ),
        "concurrency",
        "ns per task",
        &series,
    );

    let mut memory = Vec::new();
    for case in MEMORY_CASES {
        let points: Vec<(f64, f64)> = CHART_SIZES
            .iter()
            .map(|&size| (size as f64, peak_kib(case, size).0 as f64 / 1024.0))
            .collect();
        let line: Vec<String> = points
            .iter()
            .map(|(size, mib)| format!("{size}: {mib:.2} MiB"))
            .collect();
        println!("- memory, {case}: {}", line.join(", "));
        memory.push((case.to_string(), points));
    }
    draw(
        "benches/memory.svg",
        &format!("Peak memory (VmHWM), concurrency {MEMORY_CONCURRENCY}, tasks pulled lazily"),
        "tasks",
        "MiB",
        &memory,
    );
}

/// One log-log chart of `series` (name, points), as an SVG file at `path`.
fn draw(path: &str, title: &str, x_desc: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)]) {
    use plotters::prelude::*;
    let points = series.iter().flat_map(|(_, points)| points);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).expect("an SVG");
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (y0 * 0.8..y1 * 1.25).log_scale())
        .expect("a chart");
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .expect("a mesh");
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .expect("a line")
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .expect("points");
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .expect("a legend");
    root.present().expect("the SVG written");
    println!("- wrote {path}");
}
