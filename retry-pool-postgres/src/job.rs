//! What a handler receives: one attempt of one task.

use crate::task::TaskId;

/// One attempt of a task, as its handler receives it.
#[derive(Clone, Debug)]
pub struct Job<P> {
    /// The task.
    pub id: TaskId,
    /// This attempt's number, from 1, counted across every worker.
    pub attempt: u32,
    /// The attempts the task may have.
    pub max_attempts: u32,
    /// Its priority when it was claimed.
    pub priority: i32,
    /// The payload, as pushed.
    pub payload: P,
}
