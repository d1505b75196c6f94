//! A scheduler's completion stream: either flavour's stream, each outcome with its task's
//! id.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};

use crate::handle::TaskId;
use crate::idle::Unfinished;
use crate::in_place::Completions;
use crate::pool_stream::PoolStream;
use crate::source::Source;
use crate::spawned::Spawned;
use crate::stats::Stats;
use crate::task::{Attempt, Outcome, TaskResult};

/// A scheduler's completion stream: each task's id with its outcome, in completion order.
/// It ends once the scheduler is closed (or every handle dropped) and every task
/// submitted has its outcome.
///
/// `C` is the stream that runs the tasks: [`Completions`] in place, [`Spawned`] spawned.
#[must_use = "streams do nothing unless polled"]
pub struct Scheduled<C> {
    inner: C,
    /// Told of every outcome yielded: the handles' idle point.
    unfinished: Arc<Unfinished>,
}

impl<C> Scheduled<C> {
    pub(crate) fn new(inner: C, unfinished: Arc<Unfinished>) -> Self {
        Scheduled { inner, unfinished }
    }
}

impl<C> Drop for Scheduled<C> {
    fn drop(&mut self) {
        self.unfinished.abandon();
    }
}

/// A flavour's stream, whose outcomes carry their task's index. (`pub` only so that
/// [`Scheduled`] can be generic over it; not exported.)
pub trait Indexed: PoolStream {
    /// What one attempt returns.
    type Result: TaskResult;

    /// The next outcome with its task's index.
    fn poll_indexed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<Self::Result>)>>;
}

impl<S, A> Indexed for Completions<S, A>
where
    S: Source<Task = A::Task>,
    A: Attempt,
{
    type Result = A::Result;

    fn poll_indexed(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Outcome<A::Result>)>> {
        Completions::poll_indexed(self, cx)
    }
}

impl<R: TaskResult> Indexed for Spawned<R> {
    type Result = R;

    fn poll_indexed(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Outcome<R>)>> {
        Spawned::poll_indexed(self, cx)
    }
}

impl<C: Indexed> Stream for Scheduled<C> {
    type Item = (TaskId, Outcome<C::Result>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = std::task::ready!(this.inner.poll_indexed(cx));
        Poll::Ready(next.map(|(index, outcome)| {
            this.unfinished.delivered();
            (TaskId(index), outcome)
        }))
    }
}

impl<C: Indexed> PoolStream for Scheduled<C> {
    fn stats(&self) -> Stats {
        self.inner.stats()
    }
}

impl<C: Indexed + FusedStream> FusedStream for Scheduled<C> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<C: fmt::Debug> fmt::Debug for Scheduled<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scheduled").field(&self.inner).finish()
    }
}
