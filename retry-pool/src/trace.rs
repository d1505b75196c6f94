//! What a pool tells `tracing`, behind the `tracing` feature: a span per attempt, and
//! events when a task is retried or gives up. Without the feature, nothing at all.

use crate::job::Meta;

/// The span an attempt runs in: `attempt{task=3 attempt=2}`.
#[cfg(feature = "tracing")]
pub(crate) type AttemptSpan = tracing::Span;

/// Without the `tracing` feature, an attempt has no span.
#[cfg(not(feature = "tracing"))]
pub(crate) type AttemptSpan = ();

#[cfg(feature = "tracing")]
pub(crate) fn attempt_span(meta: Meta) -> AttemptSpan {
    tracing::debug_span!("attempt", task = meta.index, attempt = meta.attempts)
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
pub(crate) fn attempt_span(_: Meta) -> AttemptSpan {}

/// A failed attempt that will run again; `cause` is "error" or "timeout".
#[inline(always)]
pub(crate) fn retrying(meta: Meta, cause: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        task = meta.index,
        attempt = meta.attempts,
        cause,
        "retrying"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (meta, cause);
}

/// A task that ended without success; `cause` is "error", "timeout", "panic" or
/// "cancelled".
#[inline(always)]
pub(crate) fn gave_up(meta: Meta, cause: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        task = meta.index,
        attempts = meta.attempts,
        cause,
        "gave up"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (meta, cause);
}
