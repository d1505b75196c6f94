//! Locks that stay usable whatever panicked while they were held.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, poisoned or not: what the crate keeps under its locks stays consistent
/// whatever panics (under the one lock where the user's source and hooks run, the spawned
/// pool's core, a panic of theirs is caught and stops the pool before the lock goes).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
