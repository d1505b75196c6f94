//! A crawl shared by three worker processes through PostgreSQL, one of which is killed
//! with SIGKILL half-way: its pages are rescued by the others once its leases expire.
//!
//! ```sh
//! cargo run -p retry-pool-postgres --example distributed_crawl
//! ```
//!
//! The parent starts a flaky HTTP server on 127.0.0.1 (a share of first requests get a
//! 500, another share answer after the workers' timeout), pushes the pages to a queue in
//! a database of its own (dropped at the end), and starts three workers: this program
//! again, with `worker` as its first argument. Each worker crawls with `reqwest` through
//! `Worker::new(..).concurrency(4).retry(Retry::Lifo).attempts(5).backoff(..).timeout(..)`
//! and prints its progress; the parent shows it per worker, kills one, and checks the
//! result against the server's own counts. Flags: `--pages N` (default 300).

use std::collections::HashMap;
use std::process::{ExitCode, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use futures::StreamExt;
use retry_pool_postgres::database_url;
use retry_pool_postgres::sqlx::postgres::PgConnectOptions;
use retry_pool_postgres::sqlx::{Connection, Executor, PgConnection};
use retry_pool_postgres::{Backoff, Job, Queue, Retry, TaskState, Worker};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

const QUEUE: &str = "crawl";

#[derive(Serialize, Deserialize)]
struct Page {
    n: u64,
    url: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") if args.len() == 3 => worker(&args[1], &args[2]).await.map(|()| true),
        _ => parent(&args).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("distributed_crawl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One worker process: crawls until the queue has nothing left, printing its progress.
async fn worker(database: &str, name: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(&database_url())?.database(database);
    let queue = Queue::connect_with(options).await?;
    let client = reqwest::Client::new();
    let fetch = move |job: Job<Page>| {
        let client = client.clone();
        async move {
            let response = client.get(&job.payload.url).send().await?;
            let body = response.error_for_status()?.text().await?;
            Ok::<_, reqwest::Error>(body.len())
        }
    };
    let mut pages = Worker::new(&queue, QUEUE)
        .concurrency(4)
        .retry(Retry::Lifo)
        .attempts(5)
        .backoff(Backoff::exponential(
            Duration::from_millis(25),
            Duration::from_millis(400),
        ))
        .timeout(Duration::from_millis(500))
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(250))
        .run(fetch)?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut idle = 0;
    loop {
        tokio::select! {
            outcome = pages.next() => match outcome {
                Some(Ok(outcome)) => {
                    if let Err(failure) = outcome.result {
                        println!("gave up {failure}");
                    }
                }
                Some(Err(error)) => eprintln!("{name}: {error}"),
                None => break,
            },
            _ = tick.tick() => {
                let stats = pages.stats();
                println!("progress {} {} {}", stats.succeeded, stats.retried, stats.rescued);
                idle = if queue.stats(QUEUE).await?.pending() == 0 { idle + 1 } else { 0 };
                if idle == 2 {
                    pages.stop();
                }
            }
        }
    }
    let stats = pages.stats();
    println!(
        "progress {} {} {}",
        stats.succeeded, stats.retried, stats.rescued
    );
    Ok(())
}

/// The server's counts, per page.
#[derive(Default)]
struct Counts {
    requests: Vec<AtomicU64>,
    served: Vec<AtomicU64>,
}

async fn page(State(counts): State<Arc<Counts>>, Path(n): Path<usize>) -> (StatusCode, String) {
    let Some(requests) = counts.requests.get(n) else {
        return (StatusCode::NOT_FOUND, String::new());
    };
    let nth = requests.fetch_add(1, Ordering::Relaxed);
    // First requests: one page in five gets a 500, one in seven answers too late.
    if nth == 0 && n % 5 == 0 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "try again".into());
    }
    if nth == 0 && n % 7 == 0 {
        sleep(Duration::from_secs(2)).await;
    }
    sleep(Duration::from_millis(10 + n as u64 % 20)).await;
    counts.served[n].fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, format!("<html>page {n}</html>"))
}

/// A worker process and its latest progress line.
struct Running {
    child: Child,
    progress: Arc<Mutex<(u64, u64, u64)>>,
    killed: bool,
}

fn spawn_worker(database: &str, name: &str) -> anyhow::Result<Running> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["worker", database, name])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("the worker's stdout")?;
    let progress = Arc::new(Mutex::new((0, 0, 0)));
    let (seen, name) = (Arc::clone(&progress), name.to_owned());
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let numbers: Vec<u64> = line
                .strip_prefix("progress ")
                .map(|rest| rest.split(' ').filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default();
            if let [done, retried, rescued] = numbers[..] {
                *seen.lock().unwrap() = (done, retried, rescued);
            } else {
                println!("  {name}: {line}");
            }
        }
    });
    Ok(Running {
        child,
        progress,
        killed: false,
    })
}

async fn parent(args: &[String]) -> anyhow::Result<bool> {
    let pages: usize = match args {
        [] => 300,
        [flag, n] if flag == "--pages" => n.parse().context("--pages takes a number")?,
        _ => bail!("usage: distributed_crawl [--pages N]"),
    };
    let counts = Arc::new(Counts {
        requests: (0..pages).map(|_| AtomicU64::new(0)).collect(),
        served: (0..pages).map(|_| AtomicU64::new(0)).collect(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/page/{n}", get(page))
        .with_state(Arc::clone(&counts));
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("flaky server on {base}");

    let database = format!("rp_crawl_{:012x}", fastrand::u64(..1 << 48));
    let mut admin = PgConnection::connect(&database_url())
        .await
        .context("PostgreSQL is not reachable at DATABASE_URL (see the README)")?;
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await?;
    let result = crawl(pages, &base, &database, &counts).await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
        .await?;
    result
}

async fn crawl(pages: usize, base: &str, database: &str, counts: &Counts) -> anyhow::Result<bool> {
    let options = PgConnectOptions::from_str(&database_url())?.database(database);
    let queue = Queue::connect_with(options).await?;
    let list: Vec<Page> = (0..pages as u64)
        .map(|n| Page {
            n,
            url: format!("{base}/page/{n}"),
        })
        .collect();
    let ids = queue
        .push_many(QUEUE, list.iter().map(|page| (page, 0)))
        .await?;
    println!("pushed {pages} pages to queue `{QUEUE}` in database {database}");

    let names = ["worker-1", "worker-2", "worker-3"];
    let mut workers = names
        .iter()
        .map(|name| spawn_worker(database, name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    loop {
        sleep(Duration::from_millis(500)).await;
        let stats = queue.stats(QUEUE).await?;
        let line: Vec<String> = workers
            .iter()
            .zip(names)
            .map(|(worker, name)| {
                let (done, retried, rescued) = *worker.progress.lock().unwrap();
                let status = if worker.killed { " (killed)" } else { "" };
                format!("{name}: {done:>3} done, {retried} retried, {rescued} rescued{status}")
            })
            .collect();
        println!(
            "{:>4.1}s {:>3}/{pages} | {}",
            started.elapsed().as_secs_f64(),
            stats.finished(),
            line.join(" | ")
        );
        if !workers[1].killed && stats.finished() >= pages as u64 / 2 {
            workers[1].child.start_kill()?; // SIGKILL
            workers[1].killed = true;
            println!(
                "      SIGKILL worker-2: its pages come back to the others when its leases expire (2s)"
            );
        }
        if stats.pending() == 0 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    for worker in &mut workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), worker.child.wait()).await;
    }

    // The check: every page crawled once in the queue's records, against the server.
    let mut succeeded = 0;
    let mut attempts = 0;
    let mut by_state: HashMap<TaskState, usize> = HashMap::new();
    for (n, id) in ids.iter().enumerate() {
        let task = queue.task(*id).await?.context("every pushed task exists")?;
        *by_state.entry(task.state).or_default() += 1;
        attempts += u64::from(task.attempts);
        let expected = format!("<html>page {n}</html>").len();
        if task.state == TaskState::Succeeded
            && task.output::<usize>().transpose()? == Some(expected)
        {
            succeeded += 1;
        }
    }
    let served_all = counts
        .served
        .iter()
        .all(|served| served.load(Ordering::Relaxed) >= 1);
    let requests: u64 = counts
        .requests
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .sum();
    let served: u64 = counts
        .served
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .sum();
    println!("\nstates: {by_state:?}");
    println!(
        "server: {requests} requests, {served} pages served ({} served more than once: a late answer after a timeout, or the kill)",
        served - pages as u64
    );
    println!(
        "queue:  {succeeded}/{pages} pages succeeded with the right body, in {attempts} attempts"
    );
    let ok = succeeded == pages && served_all && requests <= attempts;
    println!(
        "check:  {}",
        if ok {
            "ok: every page has one outcome, the server served each, and no request came without an attempt"
        } else {
            "FAILED"
        }
    );
    Ok(ok)
}
