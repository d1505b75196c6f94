//! The producer's side: connect, push, reprioritise, cancel, read a task, count a queue.

use std::str::FromStr;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use crate::Error;
use crate::schema::{self, CHANNEL};
use crate::task::{Cancel, QueueStats, TaskId, TaskInfo, parse_state};

/// A handle on the queue's database: producers push through it, workers are built from
/// it. Cheap to clone (it shares one connection pool).
///
/// ```no_run
/// use retry_pool_postgres::Queue;
///
/// # async fn demo() -> Result<(), retry_pool_postgres::Error> {
/// let queue = Queue::connect("postgres://postgres@127.0.0.1:5432/test").await?;
/// let id = queue.push("crawl", &"https://example.com/", 0).await?;
/// queue.set_priority(id, -5).await?; // more urgent, while it waits
/// println!("{:?}", queue.task(id).await?.map(|task| task.state));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Queue {
    pool: PgPool,
}

impl Queue {
    /// Connects to `url` (such as `postgres://postgres@127.0.0.1:5432/test`) with a pool of
    /// up to 16 connections, and applies the schema.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Like [`connect`](Queue::connect), with options built in code.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A database that went away fails a call within seconds, never hangs it.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Self::from_pool(pool).await
    }

    /// Uses a pool you built (its size bounds the queue's connections), and applies the
    /// schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, Error> {
        schema::migrate(&pool).await?;
        Ok(Queue { pool })
    }

    /// The connection pool, for your own queries (the table is `rp_tasks`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Pushes one task to `queue` with a `priority` (smaller runs first, equal ones in
    /// push order), and wakes that queue's workers.
    pub async fn push<P: Serialize + ?Sized>(
        &self,
        queue: &str,
        payload: &P,
        priority: i32,
    ) -> Result<TaskId, Error> {
        let ids = self.push_many(queue, [(payload, priority)]).await?;
        Ok(ids[0])
    }

    /// Pushes many tasks in one statement, in the order given (which is also their order
    /// among equal priorities), and returns their ids in that order.
    pub async fn push_many<'a, P, I>(&self, queue: &str, tasks: I) -> Result<Vec<TaskId>, Error>
    where
        P: Serialize + ?Sized + 'a,
        I: IntoIterator<Item = (&'a P, i32)>,
    {
        let mut payloads = Vec::new();
        let mut priorities = Vec::new();
        for (payload, priority) in tasks {
            payloads.push(serde_json::to_string(payload)?);
            priorities.push(priority);
        }
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        // `WITH ORDINALITY` keeps the given order for the default `order_key`; the notify
        // is evaluated once and sent at commit, with the rows.
        let rows = sqlx::query(
            "WITH ins AS (
                 INSERT INTO rp_tasks (queue, payload, priority)
                 SELECT $1, p.payload::jsonb, p.priority
                 FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS p(payload, priority, n)
                 ORDER BY p.n
                 RETURNING id
             )
             SELECT ins.id FROM ins CROSS JOIN (SELECT pg_notify($4, $1)) AS wake
             ORDER BY ins.id",
        )
        .bind(queue)
        .bind(&payloads)
        .bind(&priorities)
        .bind(CHANNEL)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| TaskId(row.get(0))).collect())
    }

    /// Changes the priority of a task that waits; returns whether it was waiting (a
    /// running or finished task keeps its priority).
    pub async fn set_priority(&self, id: TaskId, priority: i32) -> Result<bool, Error> {
        let done =
            sqlx::query("UPDATE rp_tasks SET priority = $2 WHERE id = $1 AND state = 'available'")
                .bind(id.0)
                .bind(priority)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a task: a waiting one never runs; a running one is dropped by its worker at
    /// its next lease renewal, and recorded cancelled.
    pub async fn cancel(&self, id: TaskId) -> Result<Cancel, Error> {
        let row = sqlx::query(
            "UPDATE rp_tasks SET
                 cancel_requested = true,
                 state = CASE WHEN state = 'available' THEN 'cancelled' ELSE state END,
                 last_error = CASE WHEN state = 'available' THEN 'cancelled before it ran' ELSE last_error END,
                 finished_at = CASE WHEN state = 'available' THEN now() ELSE finished_at END
             WHERE id = $1 AND state IN ('available', 'running')
             RETURNING state",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(match row.get::<&str, _>(0) {
                "cancelled" => Cancel::Cancelled,
                _ => Cancel::Requested,
            });
        }
        let state = sqlx::query("SELECT state FROM rp_tasks WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        match state {
            Some(row) => Ok(Cancel::AlreadyFinished(parse_state(row.get(0))?)),
            None => Ok(Cancel::NotFound),
        }
    }

    /// Reads a task's record: state, attempts, error, outcome; `None` for an unknown id.
    pub async fn task(&self, id: TaskId) -> Result<Option<TaskInfo>, Error> {
        let row = sqlx::query(
            "SELECT id, queue, payload, priority, state, attempt, max_attempts, run_at,
                    lease_owner, lease_expires_at, cancel_requested, last_error, permanent, outcome,
                    created_at, started_at, finished_at
             FROM rp_tasks WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TaskInfo {
            id: TaskId(row.try_get("id")?),
            queue: row.try_get("queue")?,
            payload: row.try_get("payload")?,
            priority: row.try_get("priority")?,
            state: parse_state(row.try_get("state")?)?,
            attempts: row.try_get::<i32, _>("attempt")?.max(0) as u32,
            max_attempts: row.try_get::<i32, _>("max_attempts")?.max(0) as u32,
            run_at: row.try_get("run_at")?,
            lease_owner: row.try_get("lease_owner")?,
            lease_expires_at: row.try_get("lease_expires_at")?,
            cancel_requested: row.try_get("cancel_requested")?,
            last_error: row.try_get("last_error")?,
            permanent: row.try_get("permanent")?,
            outcome: row.try_get("outcome")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }))
    }

    /// Counts `queue`'s tasks by state.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats, Error> {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE state = 'available' AND run_at <= now()),
                    count(*) FILTER (WHERE state = 'available' AND run_at > now()),
                    count(*) FILTER (WHERE state = 'running'),
                    count(*) FILTER (WHERE state = 'succeeded'),
                    count(*) FILTER (WHERE state = 'failed'),
                    count(*) FILTER (WHERE state = 'cancelled')
             FROM rp_tasks WHERE queue = $1",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await?;
        let count = |i: usize| row.get::<i64, _>(i).max(0) as u64;
        Ok(QueueStats {
            available: count(0),
            delayed: count(1),
            running: count(2),
            succeeded: count(3),
            failed: count(4),
            cancelled: count(5),
        })
    }
}
