//! Where a pool's tasks come from: pulled one at a time, only when a slot is free.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

/// A source of tasks, pulled only when the pool has room for one.
///
/// `Poll::Ready(None)` means the source has ended and will not be polled again.
pub trait Source {
    /// The tasks it yields.
    type Task;

    /// The next task, if one is ready.
    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::Task>>;
}

/// Tasks from an iterator: always ready.
pub struct IterSource<I> {
    tasks: I,
}

impl<I: Iterator> IterSource<I> {
    pub(crate) fn new(tasks: impl IntoIterator<IntoIter = I>) -> Self {
        IterSource {
            tasks: tasks.into_iter(),
        }
    }
}

impl<I: Iterator> Source for IterSource<I> {
    type Task = I::Item;

    fn poll_task(&mut self, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.tasks.next())
    }
}

/// Tasks from a stream.
pub struct StreamSource<S> {
    // Boxed once, so that the pool's stream is `Unpin` whatever `S` is.
    tasks: Pin<Box<S>>,
}

impl<S: Stream> StreamSource<S> {
    pub(crate) fn new(tasks: S) -> Self {
        StreamSource {
            tasks: Box::pin(tasks),
        }
    }
}

impl<S: Stream> Source for StreamSource<S> {
    type Task = S::Item;

    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.tasks.as_mut().poll_next(cx)
    }
}

/// Tasks from a future that lists them first: the body of a `#[pooled]` function, which
/// may `.await` before it returns its iterator.
pub struct BodySource<B, I> {
    state: BodyState<B, I>,
}

enum BodyState<B, I> {
    Listing(Pin<Box<B>>),
    Pulling(I),
}

impl<B, I> BodySource<B, I>
where
    B: Future,
    B::Output: IntoIterator<IntoIter = I>,
{
    /// Lists the tasks with `body` when first polled.
    pub fn new(body: B) -> Self {
        BodySource {
            state: BodyState::Listing(Box::pin(body)),
        }
    }
}

impl<B, I> Source for BodySource<B, I>
where
    B: Future,
    B::Output: IntoIterator<IntoIter = I>,
    I: Iterator,
{
    type Task = I::Item;

    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        loop {
            match &mut self.state {
                BodyState::Listing(body) => {
                    let tasks = std::task::ready!(body.as_mut().poll(cx));
                    self.state = BodyState::Pulling(tasks.into_iter());
                }
                BodyState::Pulling(tasks) => return Poll::Ready(tasks.next()),
            }
        }
    }
}

impl<I> fmt::Debug for IterSource<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IterSource")
    }
}

impl<S> fmt::Debug for StreamSource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamSource")
    }
}

impl<B, I> fmt::Debug for BodySource<B, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            BodyState::Listing(_) => "listing",
            BodyState::Pulling(_) => "pulling",
        };
        f.debug_struct("BodySource").field("state", &state).finish()
    }
}
