//! Locks that stay usable whatever panicked while they were held.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, poisoned or not: what the crate keeps under its locks stays consistent
/// whatever panics (the one lock under which user code runs, the spawned pool's core,
/// catches its panics before it is released).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
