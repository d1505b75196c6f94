//! Soak: worker processes over many tasks, some of them SIGKILLed and restarted while they
//! run; checks that every task has exactly one outcome.
//!
//! ```sh
//! cargo run --release -p retry-pool-postgres --example soak -- --workers 4 --tasks 20000 --kills 3
//! ```
//!
//! The parent makes a database of its own (`rp_soak_*`, dropped at the end unless
//! `--keep`), pushes the tasks (a fifth fail their first attempt, one in 25 their first
//! two), starts the workers (this same program, `worker` as first argument), kills one
//! with SIGKILL at each of `--kills` points (restarting it), and waits for every task to
//! finish. A trigger logs every state change of every task, and each attempt logs its
//! start, so that the counts come from the database rather than from the workers:
//!
//! - outcomes: tasks in a final state; lost: tasks without one;
//! - duplicate outcomes: writes of a final state beyond the first, per task;
//! - extra executions: attempts that started but whose result no worker wrote (cut short
//!   by a kill), at most the attempts in flight on the killed workers;
//! - max recovery: from a kill to the moment each task the killed worker held runs
//!   again, at most the lease plus one poll (and a claim).
//!
//! Exits non-zero unless every task has exactly one outcome, and the bounds hold.

use std::process::{ExitCode, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use retry_pool_postgres::database_url;
use retry_pool_postgres::sqlx::postgres::PgConnectOptions;
use retry_pool_postgres::sqlx::{self, Connection, Executor, PgConnection, PgPool, Row};
use retry_pool_postgres::{Backoff, Job, Queue, Retry, Worker};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

const QUEUE: &str = "soak";
const LEASE: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(250);
const CONCURRENCY: usize = 8;

#[derive(Serialize, Deserialize)]
struct Task {
    n: u64,
    /// Attempts that fail before one succeeds.
    fails: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("worker") {
        worker(&args[1]).await.map(|()| true)
    } else {
        parent(&args).await
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One worker process: prints its owner id, then progress, and exits once the queue has
/// nothing left to do.
async fn worker(database: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(&database_url())?.database(database);
    let queue = Queue::connect_with(options).await?;
    let pool = queue.pool().clone();
    let pid = std::process::id() as i32;
    let handler = move |job: Job<Task>| {
        let pool = pool.clone();
        async move {
            // The attempt's start, durable before any work: a kill after this line is an
            // execution whose result nobody writes.
            sqlx::query("INSERT INTO soak_runs (task_id, attempt, pid) VALUES ($1, $2, $3)")
                .bind(job.id.0)
                .bind(job.attempt as i32)
                .bind(pid)
                .execute(&pool)
                .await
                .map_err(|error| error.to_string())?;
            sleep(Duration::from_micros(job.payload.n % 2000)).await;
            if job.attempt <= job.payload.fails {
                return Err(format!(
                    "task {} fails attempt {}",
                    job.payload.n, job.attempt
                ));
            }
            Ok(job.payload.n * 2)
        }
    };
    let mut outcomes = Worker::new(&queue, QUEUE)
        .concurrency(CONCURRENCY)
        .retry(Retry::Lifo)
        .attempts(10)
        .backoff(Backoff::exponential(
            Duration::from_millis(10),
            Duration::from_millis(200),
        ))
        .timeout(Duration::from_secs(10))
        .lease(LEASE)
        .poll_interval(POLL)
        .run(handler)?;
    println!("owner {}", outcomes.owner());
    let mut report = tokio::time::interval(Duration::from_millis(300));
    let mut idle_checks = 0;
    loop {
        tokio::select! {
            outcome = outcomes.next() => match outcome {
                Some(Ok(_)) => {}
                Some(Err(error)) => eprintln!("worker {pid}: {error}"),
                None => break,
            },
            _ = report.tick() => {
                println!("done {}", outcomes.stats().succeeded);
                if queue.stats(QUEUE).await?.pending() == 0 {
                    idle_checks += 1;
                    if idle_checks == 2 {
                        outcomes.stop();
                    }
                } else {
                    idle_checks = 0;
                }
            }
        }
    }
    println!("done {}", outcomes.stats().succeeded);
    Ok(())
}

struct Flags {
    workers: usize,
    tasks: u64,
    kills: usize,
    keep: bool,
}

fn flags(args: &[String]) -> anyhow::Result<Flags> {
    let mut flags = Flags {
        workers: 4,
        tasks: 20_000,
        kills: 3,
        keep: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().context(format!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" => flags.workers = value()?.parse()?,
            "--tasks" => flags.tasks = value()?.parse()?,
            "--kills" => flags.kills = value()?.parse()?,
            "--keep" => flags.keep = true,
            other => bail!("unknown flag {other}: use --workers N --tasks N --kills N [--keep]"),
        }
    }
    if flags.workers < 2 {
        bail!("--workers must be at least 2: one is killed while the others go on");
    }
    Ok(flags)
}

/// A worker process and what it printed.
struct Running {
    child: Child,
    owner: Arc<Mutex<Option<String>>>,
    done: Arc<Mutex<u64>>,
}

fn spawn_worker(database: &str) -> anyhow::Result<Running> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["worker", database])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("the worker's stdout")?;
    let owner = Arc::new(Mutex::new(None));
    let done = Arc::new(Mutex::new(0));
    let (o, d) = (Arc::clone(&owner), Arc::clone(&done));
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(id) = line.strip_prefix("owner ") {
                *o.lock().unwrap() = Some(id.to_owned());
            } else if let Some(n) = line.strip_prefix("done ") {
                *d.lock().unwrap() = n.parse().unwrap_or(0);
            }
        }
    });
    Ok(Running { child, owner, done })
}

async fn parent(args: &[String]) -> anyhow::Result<bool> {
    let flags = flags(args)?;
    let database = format!("rp_soak_{:012x}", fastrand::u64(..1 << 48));
    let mut admin = PgConnection::connect(&database_url())
        .await
        .context("PostgreSQL is not reachable at DATABASE_URL")?;
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await?;
    let options = PgConnectOptions::from_str(&database_url())?.database(&database);
    let queue = Queue::connect_with(options).await?;
    let pool = queue.pool().clone();
    let ok = soak(&flags, &database, &queue, &pool).await;
    pool.close().await;
    if flags.keep {
        println!("kept database {database}");
    } else {
        admin
            .execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
            .await?;
    }
    ok
}

async fn soak(flags: &Flags, database: &str, queue: &Queue, pool: &PgPool) -> anyhow::Result<bool> {
    pool.execute(
        "CREATE TABLE soak_runs (task_id bigint, attempt int, pid int,
                                 started_at timestamptz NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE soak_transitions (task_id bigint, old_state text, new_state text,
                                        old_owner text, old_attempt int, rescue boolean,
                                        at timestamptz);
         CREATE FUNCTION soak_log() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO soak_transitions VALUES (NEW.id, OLD.state, NEW.state,
                 OLD.lease_owner, OLD.attempt,
                 OLD.state = 'running' AND NEW.state <> 'succeeded'
                     AND coalesce(NEW.last_error LIKE 'lease expired:%', false),
                 clock_timestamp());
             RETURN NULL;
         END $$;
         CREATE TRIGGER soak_log AFTER UPDATE ON rp_tasks FOR EACH ROW
             WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION soak_log();",
    )
    .await?;

    let tasks: Vec<Task> = (0..flags.tasks)
        .map(|n| Task {
            n,
            fails: if n % 25 == 0 {
                2
            } else if n % 5 == 0 {
                1
            } else {
                0
            },
        })
        .collect();
    for chunk in tasks.chunks(1000) {
        queue
            .push_many(QUEUE, chunk.iter().map(|task| (task, (task.n % 3) as i32)))
            .await?;
    }
    println!(
        "soak: {} tasks ({} fail at least once), {} workers x {CONCURRENCY}, lease {LEASE:?}, poll {POLL:?}",
        flags.tasks,
        tasks.iter().filter(|task| task.fails > 0).count(),
        flags.workers
    );

    let started = Instant::now();
    let mut workers = (0..flags.workers)
        .map(|_| spawn_worker(database))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Kills at evenly spread points of the run, each on the next worker in turn.
    let mut kill_points: Vec<u64> = (1..=flags.kills as u64)
        .map(|k| flags.tasks * k / (flags.kills as u64 + 1))
        .collect();
    kill_points.reverse();
    let mut kills: Vec<(String, chrono::DateTime<chrono::Utc>)> = Vec::new();
    let deadline = started + Duration::from_secs(600);
    let mut last_print = Instant::now();
    loop {
        let stats = queue.stats(QUEUE).await?;
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let per_worker: Vec<String> = workers
                .iter()
                .enumerate()
                .map(|(i, w)| format!("w{i}: {}", w.done.lock().unwrap()))
                .collect();
            println!(
                "{:>5.1}s  finished {:>6}/{}  running {:>3}  waiting {:>6}  [{}]",
                started.elapsed().as_secs_f64(),
                stats.finished(),
                flags.tasks,
                stats.running,
                stats.available + stats.delayed,
                per_worker.join("  ")
            );
        }
        if stats.pending() == 0 {
            break;
        }
        if Instant::now() > deadline {
            println!("soak: gave up waiting after 600s");
            break;
        }
        if let Some(&point) = kill_points.last()
            && stats.finished() >= point
        {
            kill_points.pop();
            let victim = kills.len() % workers.len();
            let owner = workers[victim].owner.lock().unwrap().clone();
            let Some(owner) = owner else {
                kill_points.push(point); // not started yet: try again shortly
                sleep(Duration::from_millis(20)).await;
                continue;
            };
            workers[victim].child.start_kill()?; // SIGKILL
            workers[victim].child.wait().await?;
            let at: chrono::DateTime<chrono::Utc> = sqlx::query("SELECT clock_timestamp()")
                .fetch_one(pool)
                .await?
                .get(0);
            println!(
                "{:>5.1}s  SIGKILL worker w{victim} ({owner}); restarting it",
                started.elapsed().as_secs_f64(),
            );
            kills.push((owner, at));
            workers[victim] = spawn_worker(database)?;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    for worker in &mut workers {
        if tokio::time::timeout(Duration::from_secs(20), worker.child.wait())
            .await
            .is_err()
        {
            worker.child.start_kill()?;
        }
    }

    // The counts, from the database.
    let count = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_one(pool)
            .await
            .map(|row| row.get::<i64, _>(0))
    };
    let outcomes =
        count("SELECT count(*) FROM rp_tasks WHERE state IN ('succeeded', 'failed', 'cancelled')")
            .await?;
    let wrong = count(
        "SELECT count(*) FROM rp_tasks
         WHERE state <> 'succeeded' OR outcome <> to_jsonb((payload->>'n')::bigint * 2)",
    )
    .await?;
    let duplicates = count(
        "SELECT coalesce(sum(n - 1), 0)::bigint FROM (
             SELECT count(*) AS n FROM soak_transitions
             WHERE new_state IN ('succeeded', 'failed', 'cancelled') GROUP BY task_id) AS finals",
    )
    .await?;
    let runs = count("SELECT count(*) FROM soak_runs").await?;
    let written =
        count("SELECT count(*) FROM soak_transitions WHERE old_state = 'running' AND NOT rescue")
            .await?;
    // The outcome came from an attempt that ran (and was logged), on any worker.
    let unrun = count(
        "SELECT count(*) FROM rp_tasks t WHERE NOT EXISTS
             (SELECT 1 FROM soak_runs r WHERE r.task_id = t.id AND r.attempt = t.attempt)",
    )
    .await?;
    let lost = flags.tasks as i64 - outcomes;
    let extra = runs - written;
    // What each killed worker held: the attempts rescued from it (a claim in flight at
    // the kill commits after it, so the moment of the kill alone would miss some).
    let mut in_flight_killed = 0;
    let mut max_recovery_ms = 0i64;
    let mut never_rerun = 0;
    for (owner, at) in &kills {
        let held = sqlx::query(
            "SELECT s.task_id, (SELECT min(r.started_at) FROM soak_runs r
                                WHERE r.task_id = s.task_id AND r.attempt > s.old_attempt)
             FROM soak_transitions s WHERE s.rescue AND s.old_owner = $1",
        )
        .bind(owner)
        .fetch_all(pool)
        .await?;
        in_flight_killed += held.len();
        for row in held {
            match row.get::<Option<chrono::DateTime<chrono::Utc>>, _>(1) {
                Some(again) => {
                    max_recovery_ms = max_recovery_ms.max((again - *at).num_milliseconds())
                }
                None => never_rerun += 1,
            }
        }
    }
    let rescued_alive = count("SELECT count(*) FROM soak_transitions WHERE rescue").await? as usize
        - in_flight_killed;
    println!(
        "soak: {:.1}s, {:.0} tasks/s; {runs} executions, {written} results written, {wrong} tasks wrong, {unrun} outcomes from no logged run; the killed workers held {in_flight_killed} attempts, live workers lost {rescued_alive} leases",
        elapsed.as_secs_f64(),
        flags.tasks as f64 / elapsed.as_secs_f64(),
    );
    let bound = (LEASE + POLL + Duration::from_millis(500)).as_millis() as i64;
    let ok = lost == 0
        && duplicates == 0
        && wrong == 0
        && unrun == 0
        && never_rerun == 0
        && kills.len() == flags.kills
        && extra >= 0
        && extra as usize <= in_flight_killed
        && max_recovery_ms <= bound;
    if !ok {
        println!(
            "soak: FAILED (kills done {}, held by killed workers {in_flight_killed}, never run again {never_rerun}, recovery bound {bound} ms, leases lost by live workers {rescued_alive})",
            kills.len()
        );
    }
    println!(
        "soak: tasks {}, outcomes {outcomes}, lost {lost}, duplicate outcomes {duplicates}, extra executions {extra}, max recovery {max_recovery_ms} ms",
        flags.tasks
    );
    Ok(ok)
}
