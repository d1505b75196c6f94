//! What a worker's tasks (claims, heartbeat, settling) share.

use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore, watch};

use crate::completer::Completions;
use crate::held::Held;
use crate::settings::Settings;
use crate::worker_stats::Counters;

/// The state one worker's background tasks share.
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) queue: String,
    /// Process-unique: host, process id and a random part.
    pub(crate) owner: String,
    pub(crate) settings: Settings,
    /// One permit per free slot: a claim takes only as many tasks as there are permits,
    /// and an attempt's permit comes back once its result is written.
    pub(crate) slots: Semaphore,
    /// Wakes the claim loop: a push announced, a slot freed, a backoff over.
    pub(crate) wake: Notify,
    pub(crate) held: Held,
    /// Batches the writes of successful attempts.
    pub(crate) completions: Completions,
    pub(crate) counters: Counters,
    /// Set to stop claiming (a graceful stop).
    pub(crate) stopping: watch::Sender<bool>,
}
