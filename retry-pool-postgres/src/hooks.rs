//! What a worker asks of a failed attempt's error, with the runtime's own settings
//! (`retry_pool::hooks`): whether it is worth a retry
//! ([`Worker::retry_if`](crate::Worker::retry_if)), and whether it says how long to wait
//! ([`Worker::retry_after`](crate::Worker::retry_after)).
//!
//! The worker's local pool retries nothing (PostgreSQL decides retries), so the worker
//! asks these itself at the end of each failed attempt.

use std::time::Duration;

use retry_pool::hooks::Hooks;

/// Whether a handler's error may be retried, and after how long if it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Worth a retry (if attempts are left): after the hint, or the backoff on `None`.
    Retry(Option<Duration>),
    /// `retry_if` refused it: the task ends at this error.
    Refused,
}

/// What the hooks say of a failed attempt's `error`.
pub(crate) fn verdict<E>(hooks: &Hooks<E>, error: &E) -> Verdict {
    if !hooks.retry_if(error) {
        return Verdict::Refused;
    }
    Verdict::Retry(hooks.retry_after(error))
}

/// The settings given, by name: they need a retry policy.
pub(crate) fn given<E>(hooks: &Hooks<E>) -> Vec<&'static str> {
    let given = [
        hooks.has_retry_if().then_some("retry_if"),
        hooks.has_retry_after().then_some("retry_after"),
    ];
    given.into_iter().flatten().collect()
}
