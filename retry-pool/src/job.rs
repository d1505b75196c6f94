//! A task on its way through the pool: waiting for a slot (a [`Job`]), running as an
//! attempt ([`Meta`] says which), and how that attempt ended ([`Ended`]).

use crate::task::{Handback, Panic};

/// Which task an attempt belongs to, and which attempt it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The task's 0-based position in the input (a scheduler's task id).
    pub(crate) index: usize,
    /// Attempts started so far, this one included.
    pub(crate) attempts: u32,
}

/// A task waiting for a slot. (`pub` only so that the crate's task sources can name it; it
/// is not exported.)
#[derive(Debug)]
pub struct Job<F> {
    pub(crate) task: F,
    pub(crate) index: usize,
    /// Attempts already made.
    pub(crate) attempts: u32,
}

impl<F> Job<F> {
    /// The meta of the attempt this job is about to start.
    pub(crate) fn next_attempt(&self) -> Meta {
        Meta {
            index: self.index,
            attempts: self.attempts + 1,
        }
    }
}

/// How an attempt ended, as either flavour saw it: it handed its task back with its result,
/// or it panicked.
pub(crate) type Ended<F, R> = Result<Handback<F, R>, Panic>;
