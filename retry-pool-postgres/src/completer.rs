//! Writes a worker's successful attempts in batches: one statement for every result that
//! ended while the previous statement ran.
//!
//! No delay is added: a lone result is written at once, alone; under load, results queue
//! up while a write is in flight and go together in the next one, which takes the commit
//! (and its WAL flush) and the round trip once for all of them. Each row keeps its own
//! guard (task, attempt, owner, `running`), so fencing and the one outcome per task are
//! those of [`lease::complete`].

use sqlx::PgPool;
use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use crate::lease;
use crate::task::{TaskId, TaskState};

/// The most results one statement writes.
const MAX_BATCH: usize = 1000;

type Answer = Result<Option<TaskState>, sqlx::Error>;

/// A result waiting to be written, and who waits for the answer.
#[derive(Debug)]
pub(crate) struct Request {
    id: TaskId,
    attempt: u32,
    outcome: String,
    reply: oneshot::Sender<Answer>,
}

/// The settling side: hands a result to the writer and waits for its answer.
#[derive(Debug)]
pub(crate) struct Completions {
    requests: mpsc::UnboundedSender<Request>,
}

impl Completions {
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<Request>) {
        let (requests, receiver) = mpsc::unbounded_channel();
        (Completions { requests }, receiver)
    }

    /// Writes a successful attempt with its `outcome`, as [`lease::complete`] does: the
    /// task's final state, or `None` when fenced off.
    pub(crate) async fn complete(&self, id: TaskId, attempt: u32, outcome: String) -> Answer {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            id,
            attempt,
            outcome,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Err(sqlx::Error::PoolClosed); // the worker is going away
        }
        answer.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

/// Writes batches until aborted (with the worker's other background tasks, once every
/// attempt is settled).
/// `pool` and `owner` are the worker's: the writer needs nothing else of it.
pub(crate) async fn run(
    pool: PgPool,
    owner: String,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut batch = Vec::new();
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        write(&pool, &owner, std::mem::take(&mut batch)).await;
    }
}

async fn write(pool: &PgPool, owner: &str, batch: Vec<Request>) {
    let rows: Vec<(TaskId, u32, &str)> = batch
        .iter()
        .map(|request| (request.id, request.attempt, request.outcome.as_str()))
        .collect();
    match lease::complete_many(pool, owner, &rows).await {
        Ok(written) => {
            let written: HashMap<(TaskId, u32), TaskState> = written
                .into_iter()
                .map(|(id, attempt, state)| ((id, attempt), state))
                .collect();
            for request in batch {
                let state = written.get(&(request.id, request.attempt)).copied();
                let _ = request.reply.send(Ok(state));
            }
        }
        Err(_) if batch.len() > 1 => {
            // One bad row (an outcome PostgreSQL's jsonb refuses) must not fail the
            // others, and each waiter needs an error of its own: write them one by one.
            let writes = batch.into_iter().map(|request| async move {
                let answer =
                    lease::complete(pool, request.id, request.attempt, owner, &request.outcome)
                        .await;
                let _ = request.reply.send(answer);
            });
            futures::future::join_all(writes).await;
        }
        Err(error) => {
            if let Some(request) = batch.into_iter().next() {
                let _ = request.reply.send(Err(error));
            }
        }
    }
}
