//! Bench: retry-pool-postgres against graphile-worker, side by side on the same
//! PostgreSQL server, with no-op tasks.
//!
//! ```sh
//! cargo build --release -p retry-pool-postgres --example bench
//! flock /tmp/bench.lock cargo run --release -p retry-pool-postgres --example bench -- \
//!     [--tasks 20000] [--workers 1,2,4] [--runs 3] [--only retry-pool|graphile]
//! ```
//!
//! For each system and each worker count, on a database of its own per run (`rp_bench_*`,
//! dropped at the end):
//!
//! - **tasks/s**: the workers (this program re-executed with `worker` as first argument,
//!   or `node worker.js run` for graphile-worker) start and say `ready`; then `--tasks`
//!   no-op tasks are pushed in one statement; the time runs from the first handler start
//!   to the moment the parent sees no task left (polled every 20 ms), the median of
//!   `--runs` runs;
//! - **claim latency**: on the first run, once the bulk is done, `--latency-tasks` tasks are
//!   pushed one by one at `--rate` per second while the workers idle, each carrying its
//!   push time; each handler records its start minus that time (p50, p99);
//! - **recovery after SIGKILL**: a fresh database, half of `--tasks`; when a third of
//!   them are done one worker is SIGKILLed (with one worker, a replacement starts at
//!   once); the time from the kill (the database's clock) to the latest restart
//!   (`started_at`) of a task it held, from the rows. graphile-worker's jobs held by a dead
//!   worker stay locked until its lock timeout of 4 hours (hard-coded in its
//!   `resetLockedAt`, no setting), so the bench checks that they are still locked once
//!   the rest is done and reports that.
//! - **pushes/s**: one statement for the whole bulk, and one by one from one connection
//!   (graphile-worker: `add_jobs` and `add_job`).
//!
//! graphile-worker (pinned in `benches/graphile/package.json`) is installed with npm into
//! `target/graphile-bench/` on first use; it runs as is ("graphile-worker") and with its
//! batching on ("graphile-worker batched": local queue of concurrency + 1 and batched
//! completions, as its performance docs describe). Both systems run with the same
//! concurrency per process and the same pool size.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures::StreamExt;
use retry_pool_postgres::database_url;
use retry_pool_postgres::sqlx::postgres::PgConnectOptions;
use retry_pool_postgres::sqlx::{self, Connection, Executor, PgConnection, PgPool, Row};
use retry_pool_postgres::{Job, Queue, Retry, Worker};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

const QUEUE: &str = "bench";
const LEASE: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(500);
const DONE_POLL: Duration = Duration::from_millis(20);

/// A no-op task; `p` is the push time in µs since the epoch for latency tasks, 0 otherwise.
#[derive(Serialize, Deserialize)]
struct Noop {
    #[serde(default)]
    p: i64,
}

/// `url` with its database replaced by `database` (for node, which takes a URL).
fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let host_end = base[authority..]
        .find('/')
        .map_or(base.len(), |at| authority + at);
    format!("{}/{database}{query}", &base[..host_end])
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        let database = args.get(1).context("worker <database> <concurrency>")?;
        let concurrency = args.get(2).context("worker <database> <concurrency>")?;
        return worker(database, concurrency.parse()?).await;
    }
    parent(&args).await
}

/// One retry-pool-postgres worker process: says `ready`, runs no-op tasks until its stdin
/// closes, then stops gracefully and prints `first <µs>` and `lat <µs,...>`.
async fn worker(database: &str, concurrency: usize) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(&database_url())?.database(database);
    let queue = Queue::connect_with(options).await?;
    let record = Arc::new(Mutex::new((i64::MAX, Vec::new())));
    let recording = Arc::clone(&record);
    let handler = move |job: Job<Noop>| {
        let start = now_us();
        let mut record = recording.lock().unwrap();
        if job.payload.p > 0 {
            record.1.push(start - job.payload.p);
        } else {
            record.0 = record.0.min(start);
        }
        std::future::ready(Ok::<(), Infallible>(()))
    };
    // Retries on, so that a killed worker's tasks run again (without, their lease expiry
    // is their final failure, as for a poison task); no-op tasks never fail otherwise.
    let mut outcomes = Worker::new(&queue, QUEUE)
        .concurrency(concurrency)
        .retry(Retry::Lifo)
        .attempts(3)
        .lease(LEASE)
        .poll_interval(POLL)
        .run(handler)?;
    println!("owner {}", outcomes.owner());
    println!("ready");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let mut open = true;
    loop {
        tokio::select! {
            outcome = outcomes.next() => match outcome {
                Some(Ok(_)) => {}
                Some(Err(error)) => eprintln!("bench worker {}: {error}", std::process::id()),
                None => break,
            },
            read = stdin.read(&mut buf), if open => {
                if matches!(read, Ok(0) | Err(_)) {
                    open = false;
                    outcomes.stop();
                }
            }
        }
    }
    let record = record.lock().unwrap();
    let first = if record.0 == i64::MAX { 0 } else { record.0 };
    let lat: Vec<String> = record.1.iter().map(i64::to_string).collect();
    println!("first {first}\nlat {}", lat.join(","));
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum System {
    RetryPool,
    Graphile,
    GraphileBatched,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::RetryPool => "retry-pool-postgres",
            System::Graphile => "graphile-worker",
            System::GraphileBatched => "graphile-worker batched",
        }
    }

    fn graphile(self) -> bool {
        self != System::RetryPool
    }
}

struct Flags {
    tasks: u64,
    workers: Vec<usize>,
    systems: Vec<System>,
    runs: usize,
    concurrency: usize,
    rate: u64,
    latency_tasks: u64,
    single_pushes: u64,
    recovery: bool,
}

fn flags(args: &[String]) -> anyhow::Result<Flags> {
    let mut flags = Flags {
        tasks: 20_000,
        workers: vec![1, 2, 4],
        systems: vec![System::RetryPool, System::Graphile, System::GraphileBatched],
        runs: 3,
        concurrency: 16,
        rate: 500,
        latency_tasks: 1500,
        single_pushes: 2000,
        recovery: true,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().context(format!("{flag} needs a value"));
        match flag.as_str() {
            "--tasks" => flags.tasks = value()?.parse()?,
            "--workers" => {
                flags.workers = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--only" => {
                flags.systems = match value()?.as_str() {
                    "retry-pool" => vec![System::RetryPool],
                    "graphile" => vec![System::Graphile, System::GraphileBatched],
                    "graphile-plain" => vec![System::Graphile],
                    "graphile-batched" => vec![System::GraphileBatched],
                    other => bail!(
                        "--only {other}: use retry-pool, graphile, graphile-plain or graphile-batched"
                    ),
                }
            }
            "--runs" => flags.runs = value()?.parse()?,
            "--concurrency" => flags.concurrency = value()?.parse()?,
            "--rate" => flags.rate = value()?.parse()?,
            "--latency-tasks" => flags.latency_tasks = value()?.parse()?,
            "--single-pushes" => flags.single_pushes = value()?.parse()?,
            "--no-recovery" => flags.recovery = false,
            other => bail!(
                "unknown flag {other}: use --tasks N --workers 1,2,4 --runs N --only retry-pool|graphile \
                 --concurrency N --rate N --latency-tasks N --single-pushes N --no-recovery"
            ),
        }
    }
    if flags.runs == 0 || flags.tasks < 3 || flags.workers.contains(&0) || flags.rate == 0 {
        bail!("--runs, --rate and worker counts must be positive, --tasks at least 3");
    }
    Ok(flags)
}

/// A database of its own for one run, dropped at the end.
struct Db {
    name: String,
    pool: PgPool,
    queue: Option<Queue>,
}

async fn create_db(system: System, node: &Path) -> anyhow::Result<Db> {
    let name = format!("rp_bench_{:012x}", fastrand::u64(..1 << 48));
    let mut admin = PgConnection::connect(&database_url())
        .await
        .context("PostgreSQL is not reachable at DATABASE_URL")?;
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    admin.close().await?;
    let options = PgConnectOptions::from_str(&database_url())?.database(&name);
    if system.graphile() {
        let status = Command::new("node")
            .arg(node.join("worker.js"))
            .args(["migrate", &url_with_database(&database_url(), &name)])
            .status()
            .await?;
        if !status.success() {
            bail!("graphile-worker's migration failed");
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Db {
            name,
            pool,
            queue: None,
        })
    } else {
        let queue = Queue::connect_with(options).await?;
        Ok(Db {
            name,
            pool: queue.pool().clone(),
            queue: Some(queue),
        })
    }
}

async fn drop_db(db: Db) -> anyhow::Result<()> {
    db.pool.close().await;
    let mut admin = PgConnection::connect(&database_url()).await?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name).as_str())
        .await?;
    Ok(())
}

/// Pushes `n` no-op tasks in one statement; returns the seconds it took.
async fn push_bulk(system: System, db: &Db, n: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    if let Some(queue) = &db.queue {
        let tasks: Vec<Noop> = (0..n).map(|_| Noop { p: 0 }).collect();
        queue
            .push_many(QUEUE, tasks.iter().map(|task| (task, 0)))
            .await?;
    } else {
        debug_assert!(system.graphile());
        let payloads: Vec<String> = (0..n).map(|_| r#"{"p":0}"#.to_owned()).collect();
        let added: i64 = sqlx::query(
            "SELECT count(*) FROM graphile_worker.add_jobs(array(
                 SELECT ROW('noop', p::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
                 FROM unnest($1::text[]) AS p))",
        )
        .bind(&payloads)
        .fetch_one(&db.pool)
        .await?
        .get(0);
        if added != n as i64 {
            bail!("add_jobs added {added} jobs of {n}");
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Pushes one task carrying its push time (or 0).
async fn push_one(db: &Db, p: i64) -> anyhow::Result<()> {
    if let Some(queue) = &db.queue {
        queue.push(QUEUE, &Noop { p }, 0).await?;
    } else {
        sqlx::query("SELECT id FROM graphile_worker.add_job('noop', $1::json)")
            .bind(format!(r#"{{"p":{p}}}"#))
            .fetch_one(&db.pool)
            .await?;
    }
    Ok(())
}

/// Tasks not finished yet, cheaply (partial indexes for retry-pool-postgres).
async fn left(db: &Db) -> anyhow::Result<bool> {
    let sql = if db.queue.is_some() {
        "SELECT EXISTS (SELECT 1 FROM rp_tasks WHERE state = 'available')
             OR EXISTS (SELECT 1 FROM rp_tasks WHERE state = 'running')"
    } else {
        "SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs)"
    };
    Ok(sqlx::query(sql).fetch_one(&db.pool).await?.get(0))
}

/// Waits until no task is left; returns the wall clock (µs) when that was seen.
async fn wait_done(db: &Db, limit: Duration) -> anyhow::Result<i64> {
    let deadline = Instant::now() + limit;
    loop {
        if !left(db).await? {
            return Ok(now_us());
        }
        if Instant::now() > deadline {
            bail!("tasks left after {limit:?}");
        }
        sleep(DONE_POLL).await;
    }
}

/// A worker process and what it printed.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

fn spawn(system: System, node: &Path, db: &Db, concurrency: usize) -> anyhow::Result<Proc> {
    let mut command = if system.graphile() {
        let mut command = Command::new("node");
        command.arg(node.join("worker.js")).args([
            "run".to_owned(),
            url_with_database(&database_url(), &db.name),
            if system == System::GraphileBatched {
                "batched"
            } else {
                "plain"
            }
            .to_owned(),
            concurrency.to_string(),
            POLL.as_millis().to_string(),
        ]);
        command
    } else {
        let mut command = Command::new(std::env::current_exe()?);
        command.args([
            "worker".to_owned(),
            db.name.clone(),
            concurrency.to_string(),
        ]);
        command
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("the worker's stdout")?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let reader = tokio::spawn(async move {
        let mut stdout = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = stdout.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    Ok(Proc {
        child,
        lines,
        reader,
    })
}

async fn wait_ready(procs: &[Proc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !procs.iter().all(|proc| {
        proc.lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line == "ready")
    }) {
        if Instant::now() > deadline {
            bail!("workers not ready after 60s");
        }
        sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Closes the workers' stdin, waits for them, and returns the earliest first start (µs)
/// and every latency (µs) they recorded.
async fn finish(procs: Vec<Proc>) -> anyhow::Result<(i64, Vec<i64>)> {
    let mut first = i64::MAX;
    let mut lat = Vec::new();
    for mut proc in procs {
        drop(proc.child.stdin.take());
        match timeout(Duration::from_secs(30), proc.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                proc.child.start_kill()?;
                bail!("a worker did not stop within 30s");
            }
        }
        proc.reader.await?;
        for line in proc.lines.lock().unwrap().iter() {
            if let Some(us) = line.strip_prefix("first ") {
                let us: i64 = us.parse()?;
                if us > 0 {
                    first = first.min(us);
                }
            } else if let Some(list) = line.strip_prefix("lat ") {
                for us in list.split(',').filter(|us| !us.is_empty()) {
                    lat.push(us.parse()?);
                }
            }
        }
    }
    Ok((first, lat))
}

/// One run's figures.
struct Run {
    tasks_per_s: f64,
    push_per_s: f64,
    latency_ms: Option<(f64, f64)>,
}

fn percentile(sorted: &[i64], q: f64) -> f64 {
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at] as f64 / 1000.0
}

async fn run_once(
    flags: &Flags,
    system: System,
    node: &Path,
    workers: usize,
    latency: bool,
) -> anyhow::Result<Run> {
    let db = create_db(system, node).await?;
    let result = async {
        let procs = (0..workers)
            .map(|_| spawn(system, node, &db, flags.concurrency))
            .collect::<anyhow::Result<Vec<_>>>()?;
        wait_ready(&procs).await?;
        let push_s = push_bulk(system, &db, flags.tasks).await?;
        let end = wait_done(&db, Duration::from_secs(600)).await?;
        if latency {
            let period = Duration::from_secs_f64(1.0 / flags.rate as f64);
            let mut ticks = tokio::time::interval(period);
            for _ in 0..flags.latency_tasks {
                ticks.tick().await;
                push_one(&db, now_us()).await?;
            }
            wait_done(&db, Duration::from_secs(120)).await?;
        }
        let (first, mut lat) = finish(procs).await?;
        if first == i64::MAX {
            bail!("no worker recorded a start");
        }
        lat.sort_unstable();
        let latency_ms =
            (latency && !lat.is_empty()).then(|| (percentile(&lat, 0.5), percentile(&lat, 0.99)));
        if latency && lat.len() as u64 != flags.latency_tasks {
            eprintln!(
                "bench: {} latency tasks recorded of {}",
                lat.len(),
                flags.latency_tasks
            );
        }
        Ok(Run {
            tasks_per_s: flags.tasks as f64 / ((end - first) as f64 / 1e6),
            push_per_s: flags.tasks as f64 / push_s,
            latency_ms,
        })
    }
    .await;
    drop_db(db).await?;
    result
}

/// One-by-one pushes from one connection, as fast as they go: pushes per second.
async fn single_pushes(flags: &Flags, system: System, node: &Path) -> anyhow::Result<f64> {
    let db = create_db(system, node).await?;
    let result = async {
        let started = Instant::now();
        for _ in 0..flags.single_pushes {
            push_one(&db, 0).await?;
        }
        Ok(flags.single_pushes as f64 / started.elapsed().as_secs_f64())
    }
    .await;
    drop_db(db).await?;
    result
}

/// What a SIGKILL did to the killed worker's tasks.
enum Recovery {
    /// Every task it held ran again, the last one this long after the kill.
    Measured { ms: f64, held: i64 },
    /// Its jobs were still locked this long after the rest was done.
    StillLocked { held: i64, after_s: f64 },
    /// It held nothing at the kill.
    NothingHeld,
}

impl Recovery {
    fn cell(&self) -> String {
        match self {
            Recovery::Measured { ms, held } => format!("{:.2} s ({held} tasks)", ms / 1000.0),
            Recovery::StillLocked { held, after_s } => {
                format!("none in {after_s:.0} s ({held} jobs locked; 4 h timeout)")
            }
            Recovery::NothingHeld => "nothing in flight".to_owned(),
        }
    }
}

async fn db_clock_ms(db: &Db) -> anyhow::Result<f64> {
    Ok(
        sqlx::query("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8")
            .fetch_one(&db.pool)
            .await?
            .get(0),
    )
}

/// Tasks done so far, of `pushed`.
async fn done(db: &Db, pushed: u64) -> anyhow::Result<i64> {
    let query = if db.queue.is_some() {
        sqlx::query("SELECT count(*) FROM rp_tasks WHERE state = 'succeeded'")
    } else {
        // graphile-worker deletes a job once it is done.
        sqlx::query("SELECT $1::bigint - count(*) FROM graphile_worker._private_jobs")
            .bind(pushed as i64)
    };
    Ok(query.fetch_one(&db.pool).await?.get(0))
}

async fn recovery(
    flags: &Flags,
    system: System,
    node: &Path,
    workers: usize,
) -> anyhow::Result<Recovery> {
    let db = create_db(system, node).await?;
    let result = async {
        let tasks = flags.tasks / 2;
        let mut procs = (0..workers)
            .map(|_| spawn(system, node, &db, flags.concurrency))
            .collect::<anyhow::Result<Vec<_>>>()?;
        wait_ready(&procs).await?;
        push_bulk(system, &db, tasks).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if done(&db, tasks).await? >= tasks as i64 / 3 {
                break;
            }
            if Instant::now() > deadline {
                bail!("a third of the tasks not done after 120s");
            }
            sleep(Duration::from_millis(5)).await;
        }
        let mut victim = procs.remove(0);
        victim.child.start_kill()?; // SIGKILL
        victim.child.wait().await?;
        let killed_at = db_clock_ms(&db).await?;
        if workers == 1 {
            let replacement = spawn(system, node, &db, flags.concurrency)?;
            procs.push(replacement);
        }
        let recovery = if system.graphile() {
            // The rest is done when only locked jobs are left and that stays so.
            let mut stable_since: Option<(i64, Instant)> = None;
            loop {
                let row = sqlx::query(
                    "SELECT count(*), count(*) FILTER (WHERE locked_at IS NULL)
                     FROM graphile_worker._private_jobs",
                )
                .fetch_one(&db.pool)
                .await?;
                let (left, unlocked): (i64, i64) = (row.get(0), row.get(1));
                if left == 0 {
                    break Recovery::NothingHeld;
                }
                match stable_since {
                    Some((held, since)) if held == left && unlocked == 0 => {
                        if since.elapsed() >= Duration::from_secs(5) {
                            let after_s = (db_clock_ms(&db).await? - killed_at) / 1000.0;
                            break Recovery::StillLocked { held, after_s };
                        }
                    }
                    _ => stable_since = Some((left, Instant::now())),
                }
                if Instant::now() > deadline + Duration::from_secs(60) {
                    bail!("graphile-worker's live workers did not finish");
                }
                sleep(Duration::from_millis(50)).await;
            }
        } else {
            wait_done(&db, Duration::from_secs(120)).await?;
            let row = sqlx::query(
                "SELECT count(*), (extract(epoch FROM max(started_at)) * 1000)::float8
                 FROM rp_tasks WHERE attempt >= 2",
            )
            .fetch_one(&db.pool)
            .await?;
            let held: i64 = row.get(0);
            match row.get::<Option<f64>, _>(1) {
                Some(again) if held > 0 => Recovery::Measured {
                    ms: again - killed_at,
                    held,
                },
                _ => Recovery::NothingHeld,
            }
        };
        for proc in &mut procs {
            proc.child.start_kill()?;
            proc.child.wait().await?;
        }
        Ok(recovery)
    }
    .await;
    drop_db(db).await?;
    result
}

/// Copies the graphile-worker side into `target/graphile-bench/` and installs it with
/// npm when it is missing or its pinned version changed.
async fn install_graphile() -> anyhow::Result<PathBuf> {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/graphile");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("graphile-bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(sources.join("worker.js"), dir.join("worker.js"))?;
    let manifest = std::fs::read_to_string(sources.join("package.json"))?;
    let installed = std::fs::read_to_string(dir.join("package.json")).unwrap_or_default();
    if manifest != installed
        || !dir
            .join("node_modules/graphile-worker/package.json")
            .exists()
    {
        std::fs::write(dir.join("package.json"), &manifest)?;
        println!("bench: npm install in {}", dir.display());
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
            .current_dir(&dir)
            .status()
            .await
            .context("npm (Node 20 or newer) is needed for graphile-worker")?;
        if !status.success() {
            bail!("npm install failed in {}", dir.display());
        }
    }
    Ok(dir)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[derive(Default)]
struct SystemFigures {
    tasks_per_s: Vec<(usize, Vec<f64>)>,
    latency: Vec<(usize, Option<(f64, f64)>)>,
    recovery: Vec<(usize, Recovery)>,
    bulk_push: Vec<f64>,
    single_push: f64,
}

async fn parent(args: &[String]) -> anyhow::Result<()> {
    let flags = flags(args)?;
    let node = if flags.systems.iter().any(|system| system.graphile()) {
        install_graphile().await?
    } else {
        PathBuf::new()
    };
    println!(
        "bench: {} no-op tasks, workers {:?}, {} per process, {} runs; latency: {} tasks at {}/s; lease {LEASE:?}, poll {POLL:?}",
        flags.tasks, flags.workers, flags.concurrency, flags.runs, flags.latency_tasks, flags.rate
    );
    let mut rows = Vec::new();
    for &system in &flags.systems {
        let mut row = SystemFigures {
            single_push: single_pushes(&flags, system, &node).await?,
            ..SystemFigures::default()
        };
        println!(
            "{}: {:.0} one-by-one pushes/s",
            system.label(),
            row.single_push
        );
        for &workers in &flags.workers {
            let mut rates = Vec::new();
            for run in 0..flags.runs {
                let figures = run_once(&flags, system, &node, workers, run == 0).await?;
                println!(
                    "{}: {workers} workers, run {}: {:.0} tasks/s, bulk push {:.0}/s{}",
                    system.label(),
                    run + 1,
                    figures.tasks_per_s,
                    figures.push_per_s,
                    figures
                        .latency_ms
                        .map(|(p50, p99)| format!(
                            ", claim latency p50 {p50:.2} ms p99 {p99:.2} ms"
                        ))
                        .unwrap_or_default()
                );
                rates.push(figures.tasks_per_s);
                row.bulk_push.push(figures.push_per_s);
                if run == 0 {
                    row.latency.push((workers, figures.latency_ms));
                }
            }
            row.tasks_per_s.push((workers, rates));
            if flags.recovery {
                let recovered = recovery(&flags, system, &node, workers).await?;
                println!(
                    "{}: {workers} workers, recovery after SIGKILL: {}",
                    system.label(),
                    recovered.cell()
                );
                row.recovery.push((workers, recovered));
            }
        }
        rows.push((system, row));
    }

    // The table, in Markdown.
    let counts: Vec<String> = flags.workers.iter().map(usize::to_string).collect();
    println!();
    println!(
        "| system | {} | claim latency p50 / p99 (ms), {} workers | recovery after SIGKILL, {} workers | push: bulk / one by one (tasks/s) |",
        flags
            .workers
            .iter()
            .map(|w| format!("{w} worker{} (tasks/s)", if *w == 1 { "" } else { "s" }))
            .collect::<Vec<_>>()
            .join(" | "),
        counts.join(" / "),
        counts.join(" / "),
    );
    println!("|---|{}---|---|---|", "---:|".repeat(flags.workers.len()));
    for (system, row) in &rows {
        let rates: Vec<String> = row
            .tasks_per_s
            .iter()
            .map(|(_, rates)| format!("{:.0}", median(rates.clone())))
            .collect();
        let latency: Vec<String> = row
            .latency
            .iter()
            .map(|(_, latency)| match latency {
                Some((p50, p99)) => format!("{p50:.1} / {p99:.1}"),
                None => "-".to_owned(),
            })
            .collect();
        let recovery: Vec<String> = row.recovery.iter().map(|(_, r)| r.cell()).collect();
        println!(
            "| {} | {} | {} | {} | {:.0} / {:.0} |",
            system.label(),
            rates.join(" | "),
            latency.join(" · "),
            if recovery.is_empty() {
                "-".to_owned()
            } else {
                recovery.join(" · ")
            },
            median(row.bulk_push.clone()),
            row.single_push,
        );
    }
    println!(
        "\n(tasks/s: median of {} runs of {} tasks; {} per process)",
        flags.runs, flags.tasks, flags.concurrency
    );
    Ok(())
}
