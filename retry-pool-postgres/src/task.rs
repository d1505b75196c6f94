//! What the queue says about a task and a queue: ids, states, a task's record, counts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

/// A task's id in the queue, unique across queues (the row's `id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a task is in its life. The last three are final: the task has its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting in line (possibly out its backoff, until `run_at`).
    Available,
    /// Claimed by a worker, under its lease.
    Running,
    /// An attempt succeeded; the outcome holds its value.
    Succeeded,
    /// The last attempt failed (or panicked, timed out, or its lease expired); `last_error`
    /// says why.
    Failed,
    /// Cancelled: before it ran, or while it ran.
    Cancelled,
}

impl TaskState {
    /// Whether the task has its outcome.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }

    /// The name stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Available => "available",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "available" => TaskState::Available,
            "running" => TaskState::Running,
            "succeeded" => TaskState::Succeeded,
            "failed" => TaskState::Failed,
            "cancelled" => TaskState::Cancelled,
            other => return Err(format!("unknown task state `{other}` in rp_tasks")),
        })
    }
}

/// Reads a state column; the table's check constraint allows only the five names.
pub(crate) fn parse_state(s: &str) -> Result<TaskState, sqlx::Error> {
    s.parse()
        .map_err(|message: String| sqlx::Error::Decode(message.into()))
}

/// A task's record, as [`Queue::task`](crate::Queue::task) reads it.
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// The queue it was pushed to.
    pub queue: String,
    /// Its payload, as pushed.
    pub payload: serde_json::Value,
    /// Its priority: smaller runs first.
    pub priority: i32,
    /// Where it is in its life.
    pub state: TaskState,
    /// Attempts started so far (the running one included).
    pub attempts: u32,
    /// The attempts it may have, as set by the worker that last claimed it.
    pub max_attempts: u32,
    /// Not claimed before this moment (its backoff).
    pub run_at: DateTime<Utc>,
    /// The worker holding its lease while it runs.
    pub lease_owner: Option<String>,
    /// When that lease runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Whether a cancel was asked while it ran.
    pub cancel_requested: bool,
    /// Why the latest failed attempt failed.
    pub last_error: Option<String>,
    /// Whether it ended `failed` with attempts left because the worker's `retry_if`
    /// refused its error (see [`TaskFailure::is_permanent`](crate::TaskFailure::is_permanent)).
    pub permanent: bool,
    /// The value of the attempt that succeeded, when it did.
    pub outcome: Option<serde_json::Value>,
    /// When it was pushed.
    pub created_at: DateTime<Utc>,
    /// When its latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it got its outcome.
    pub finished_at: Option<DateTime<Utc>>,
}

impl TaskInfo {
    /// The succeeded task's value, read back as `T`; `None` before it succeeded.
    pub fn output<T: DeserializeOwned>(&self) -> Option<Result<T, serde_json::Error>> {
        self.outcome.clone().map(serde_json::from_value)
    }
}

/// What [`Queue::cancel`](crate::Queue::cancel) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The task was waiting: it is cancelled and will never run.
    Cancelled,
    /// The task is running: its worker drops the attempt at its next lease renewal and
    /// records it cancelled (an attempt that ends first is recorded cancelled too).
    Requested,
    /// The task already had its outcome, in this state.
    AlreadyFinished(TaskState),
    /// No task has this id.
    NotFound,
}

/// Counts of one queue's tasks by state, taken in one statement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Waiting and ready to be claimed now.
    pub available: u64,
    /// Waiting out a backoff (`run_at` in the future).
    pub delayed: u64,
    /// Claimed by a worker.
    pub running: u64,
    /// Ended with a value.
    pub succeeded: u64,
    /// Ended with an error.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl QueueStats {
    /// Tasks without their outcome yet.
    pub fn pending(&self) -> u64 {
        self.available + self.delayed + self.running
    }

    /// Tasks with their outcome.
    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed + self.cancelled
    }
}
