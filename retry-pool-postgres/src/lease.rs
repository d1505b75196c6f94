//! The worker's side of the table: claim, rescue, renew, complete, fail.
//!
//! Every write of a worker is guarded by the triple (task, attempt, owner) and the
//! `running` state, so that a worker that lost its lease (it was rescued by another, or
//! the task was cancelled and finished) writes nothing: the statement matches no row, and
//! the caller learns it was fenced off. A final state and its outcome are written by one
//! `UPDATE`, so a task gets its outcome exactly once.

use std::time::Duration;

use sqlx::{PgPool, Row};

use crate::task::{TaskId, TaskState, parse_state};

/// A claimed attempt: the lease's key and what the handler needs.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) priority: i32,
    pub(crate) payload: String,
}

/// A task whose lease had expired, put back in line or given its outcome by a rescue.
#[derive(Debug)]
pub(crate) struct Rescued {
    pub(crate) id: TaskId,
    pub(crate) state: TaskState,
    pub(crate) attempts: u32,
    pub(crate) error: String,
}

/// Where a failed attempt goes next.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Next {
    /// Back in line if it has attempts left (and no cancel was asked): `lifo` says where,
    /// `backoff` how long it waits first.
    Retry { lifo: bool, backoff: Duration },
    /// Nowhere: the failure is final (a panic, a payload that does not deserialize).
    Final,
    /// Nowhere, even with attempts left: `retry_if` refused the error. With attempts left,
    /// the row says so in `permanent`.
    Refused,
}

fn millis(duration: Duration) -> f64 {
    // PostgreSQL's intervals end near 178 million years; a longer wait (a backoff or a
    // `retry_after` of `Duration::MAX`) means "never", which a century says as well.
    const CENTURY_MS: f64 = 100.0 * 365.25 * 86_400_000.0;
    (duration.as_secs_f64() * 1000.0).min(CENTURY_MS)
}

/// Claims up to `limit` tasks of `queue`, in claim order, for `owner`.
///
/// The `MATERIALIZED` CTE picks the rows once, under `FOR UPDATE SKIP LOCKED`, so that
/// concurrent workers take disjoint rows without waiting on one another, and the planner
/// cannot re-run the `LIMIT`ed scan for the join (which could update more rows than
/// `limit`).
pub(crate) async fn claim(
    pool: &PgPool,
    queue: &str,
    owner: &str,
    limit: usize,
    max_attempts: u32,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    // The claim must walk `rp_tasks_available` in claim order and stop after `limit`
    // rows. Without statistics (a table filled since its last ANALYZE: every fresh queue
    // for its first minute) the planner guesses one waiting row and prefers to fetch and
    // sort every waiting task instead: 20-70 ms per claim with 30,000 waiting, against
    // under 1 ms. Sorting off for this transaction leaves it the ordered index scan.
    //
    // The claim's commit does not wait for its WAL flush (`synchronous_commit = off`):
    // a claim lost by a crash of the server only puts its tasks back in line, as they
    // were (their attempts then write nothing: fenced off, or the server is down), and
    // the flush of any later write of the worker (a result, a failure) covers the claim,
    // which precedes it in the WAL. The writes of outcomes still wait for their flush.
    let mut tx = pool.begin().await?;
    let conn: &mut sqlx::PgConnection = &mut tx;
    sqlx::Executor::execute(
        &mut *conn,
        "SET LOCAL enable_sort = off; SET LOCAL synchronous_commit = off",
    )
    .await?;
    let rows = sqlx::query(
        "WITH picked AS MATERIALIZED (
             SELECT id FROM rp_tasks
             WHERE queue = $1 AND state = 'available' AND run_at <= now()
             ORDER BY lane, priority, order_key
             LIMIT $2
             FOR UPDATE SKIP LOCKED
         )
         UPDATE rp_tasks t SET
             state = 'running',
             attempt = t.attempt + 1,
             max_attempts = $3,
             lease_owner = $4,
             lease_expires_at = now() + $5 * interval '1 millisecond',
             started_at = now()
         FROM picked WHERE t.id = picked.id
         RETURNING t.id, t.attempt, t.max_attempts, t.priority, t.payload::text, t.lane, t.order_key",
    )
    .bind(queue)
    .bind(limit.min(i64::MAX as usize) as i64)
    .bind(max_attempts.min(i32::MAX as u32) as i32)
    .bind(owner)
    .bind(millis(lease))
    .fetch_all(&mut *conn)
    .await?;
    tx.commit().await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let key: (i16, i32, i64) = (row.try_get(5)?, row.try_get(3)?, row.try_get(6)?);
        claimed.push((
            key,
            Claimed {
                id: TaskId(row.try_get(0)?),
                attempt: row.try_get::<i32, _>(1)?.max(0) as u32,
                max_attempts: row.try_get::<i32, _>(2)?.max(0) as u32,
                priority: row.try_get(3)?,
                payload: row.try_get(4)?,
            },
        ));
    }
    // RETURNING has no order: start them in claim order.
    claimed.sort_by_key(|(key, _)| *key);
    Ok(claimed.into_iter().map(|(_, claimed)| claimed).collect())
}

/// Rescues `queue`'s tasks whose lease expired (their worker died or stalled): a task
/// with attempts left goes back in line (where `lifo` says), one whose attempts are used
/// up ends failed, so that a task that kills its workers cannot kill them all in turn; a
/// task whose cancel was asked ends cancelled. The expired attempt counts as failed.
///
/// Any worker does this during its claims: there is no leader. `SKIP LOCKED` and the
/// re-checked `lease_expires_at` mean that an owner renewing at the same moment either
/// wins (the row is no longer expired) or is fenced off (its renewal matches no row).
pub(crate) async fn rescue(
    pool: &PgPool,
    queue: &str,
    lifo: bool,
) -> Result<Vec<Rescued>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH expired AS MATERIALIZED (
             SELECT id FROM rp_tasks
             WHERE queue = $1 AND state = 'running' AND lease_expires_at < now()
             ORDER BY lease_expires_at
             LIMIT 1000
             FOR UPDATE SKIP LOCKED
         )
         UPDATE rp_tasks t SET
             state = CASE WHEN t.cancel_requested THEN 'cancelled'
                          WHEN t.attempt >= t.max_attempts THEN 'failed'
                          ELSE 'available' END,
             lane = CASE WHEN $2 THEN 0 ELSE 1 END,
             order_key = CASE WHEN $2 THEN nextval('rp_order_lifo') ELSE nextval('rp_order_fifo') END,
             run_at = now(),
             last_error = 'lease expired: worker ' || t.lease_owner || ' stopped renewing attempt '
                          || t.attempt || ' of ' || t.max_attempts,
             lease_owner = NULL,
             lease_expires_at = NULL,
             finished_at = CASE WHEN t.cancel_requested OR t.attempt >= t.max_attempts
                                THEN now() END
         FROM expired WHERE t.id = expired.id
         RETURNING t.id, t.state, t.attempt, t.last_error",
    )
    .bind(queue)
    .bind(lifo)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Rescued {
                id: TaskId(row.try_get(0)?),
                state: parse_state(row.try_get(1)?)?,
                attempts: row.try_get::<i32, _>(2)?.max(0) as u32,
                error: row.try_get(3)?,
            })
        })
        .collect()
}

/// Renews the leases of the attempts `held` by `owner`; returns those still held, each
/// with whether a cancel was asked. An attempt missing from the answer lost its lease.
pub(crate) async fn renew(
    pool: &PgPool,
    owner: &str,
    held: &[(TaskId, u32)],
    lease: Duration,
) -> Result<Vec<(TaskId, bool)>, sqlx::Error> {
    let ids: Vec<i64> = held.iter().map(|(id, _)| id.0).collect();
    let attempts: Vec<i32> = held.iter().map(|(_, attempt)| *attempt as i32).collect();
    // The rows are locked in id order, as `complete_many` locks them: the two run
    // concurrently on overlapping rows, and must not deadlock.
    let rows = sqlx::query(
        "WITH locked AS MATERIALIZED (
             SELECT t.id FROM rp_tasks t
             JOIN unnest($1::bigint[], $2::int[]) AS held(id, attempt)
               ON t.id = held.id AND t.attempt = held.attempt
             WHERE t.lease_owner = $4 AND t.state = 'running'
             ORDER BY t.id
             FOR UPDATE OF t
         )
         UPDATE rp_tasks t SET lease_expires_at = now() + $3 * interval '1 millisecond'
         FROM locked WHERE t.id = locked.id
         RETURNING t.id, t.cancel_requested",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(millis(lease))
    .bind(owner)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((TaskId(row.try_get(0)?), row.try_get(1)?)))
        .collect()
}

/// Records a successful attempt with its `outcome`, in the same `UPDATE` as the final
/// state. A cancel asked meanwhile wins: the task ends cancelled. `None` when fenced off.
pub(crate) async fn complete(
    pool: &PgPool,
    id: TaskId,
    attempt: u32,
    owner: &str,
    outcome: &str,
) -> Result<Option<TaskState>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE rp_tasks SET
             state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'succeeded' END,
             outcome = CASE WHEN cancel_requested THEN NULL ELSE $4::jsonb END,
             last_error = CASE WHEN cancel_requested THEN 'cancelled while it ran' ELSE last_error END,
             lease_owner = NULL,
             lease_expires_at = NULL,
             finished_at = now()
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'
         RETURNING state",
    )
    .bind(id.0)
    .bind(attempt as i32)
    .bind(owner)
    .bind(outcome)
    .fetch_optional(pool)
    .await?;
    row.map(|row| parse_state(row.get(0))).transpose()
}

/// Records many successful attempts of `owner`, each `(task, attempt, outcome)`, in one
/// statement: each row as [`complete`] writes it, with the same guard. Returns the rows
/// written, with their final state; an attempt missing from the answer was fenced off.
///
/// The rows are locked in id order (as [`renew`] locks them), so that the two, which
/// the same worker runs concurrently on overlapping rows, cannot deadlock.
pub(crate) async fn complete_many(
    pool: &PgPool,
    owner: &str,
    done: &[(TaskId, u32, &str)],
) -> Result<Vec<(TaskId, u32, TaskState)>, sqlx::Error> {
    let ids: Vec<i64> = done.iter().map(|(id, _, _)| id.0).collect();
    let attempts: Vec<i32> = done.iter().map(|(_, attempt, _)| *attempt as i32).collect();
    let outcomes: Vec<&str> = done.iter().map(|(_, _, outcome)| *outcome).collect();
    let rows = sqlx::query(
        "WITH locked AS MATERIALIZED (
             SELECT t.id, t.attempt, done.outcome FROM rp_tasks t
             JOIN unnest($1::bigint[], $2::int[], $3::text[]) AS done(id, attempt, outcome)
               ON t.id = done.id AND t.attempt = done.attempt
             WHERE t.lease_owner = $4 AND t.state = 'running'
             ORDER BY t.id
             FOR UPDATE OF t
         )
         UPDATE rp_tasks t SET
             state = CASE WHEN t.cancel_requested THEN 'cancelled' ELSE 'succeeded' END,
             outcome = CASE WHEN t.cancel_requested THEN NULL ELSE locked.outcome::jsonb END,
             last_error = CASE WHEN t.cancel_requested THEN 'cancelled while it ran' ELSE t.last_error END,
             lease_owner = NULL,
             lease_expires_at = NULL,
             finished_at = now()
         FROM locked
         WHERE t.id = locked.id AND t.attempt = locked.attempt
           AND t.lease_owner = $4 AND t.state = 'running'
         RETURNING t.id, t.attempt, t.state",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&outcomes)
    .bind(owner)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                TaskId(row.try_get(0)?),
                row.try_get::<i32, _>(1)?.max(0) as u32,
                parse_state(row.try_get(2)?)?,
            ))
        })
        .collect()
}

/// Records a failed attempt: back in line (LIFO: ahead of everything, latest failure
/// first; FIFO: behind its priority) after its backoff, or, with no attempts left or its
/// error refused by `retry_if`, a final failure with `error` (marked `permanent` when
/// refused with attempts left). A cancel asked meanwhile ends it cancelled. `None` when
/// fenced off.
pub(crate) async fn fail(
    pool: &PgPool,
    id: TaskId,
    attempt: u32,
    owner: &str,
    error: &str,
    next: Next,
) -> Result<Option<TaskState>, sqlx::Error> {
    let (retry, lifo, backoff) = match next {
        Next::Retry { lifo, backoff } => (true, lifo, backoff),
        Next::Final | Next::Refused => (false, false, Duration::ZERO),
    };
    let refused = matches!(next, Next::Refused);
    let row = sqlx::query(
        "UPDATE rp_tasks SET
             state = CASE WHEN cancel_requested THEN 'cancelled'
                          WHEN $5 AND attempt < max_attempts THEN 'available'
                          ELSE 'failed' END,
             lane = CASE WHEN $6 THEN 0 ELSE 1 END,
             order_key = CASE WHEN $5 AND $6 THEN nextval('rp_order_lifo')
                              WHEN $5 THEN nextval('rp_order_fifo')
                              ELSE order_key END,
             run_at = now() + $7 * interval '1 millisecond',
             last_error = $4,
             permanent = NOT cancel_requested AND $8 AND attempt < max_attempts,
             lease_owner = NULL,
             lease_expires_at = NULL,
             finished_at = CASE WHEN cancel_requested OR NOT ($5 AND attempt < max_attempts)
                                THEN now() END
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'
         RETURNING state",
    )
    .bind(id.0)
    .bind(attempt as i32)
    .bind(owner)
    .bind(error)
    .bind(retry)
    .bind(lifo)
    .bind(millis(backoff))
    .bind(refused)
    .fetch_optional(pool)
    .await?;
    row.map(|row| parse_state(row.get(0))).transpose()
}
