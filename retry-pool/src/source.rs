//! Where a pool's tasks come from: pulled one at a time, only when a slot is free.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::job::Job;

/// A source of tasks, pulled only when the pool has room for one. (`pub` only so that the
/// stream types can be generic over it; not exported.)
///
/// `Poll::Ready(None)` means the source has ended and will not be polled again. Beyond
/// pulling, a scheduler's line numbers its own tasks, takes back FIFO retries and cancels
/// tasks; the other sources keep the defaults.
pub trait Source {
    /// The tasks it yields.
    type Task;

    /// The next task, if one is ready.
    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::Task>>;

    /// The next task with its index; by default, tasks are numbered in the order pulled.
    fn poll_job(
        &mut self,
        cx: &mut Context<'_>,
        next_index: &mut usize,
    ) -> Poll<Option<Job<Self::Task>>> {
        self.poll_task(cx).map(|task| {
            let index = *next_index;
            *next_index += 1;
            task.map(|task| Job {
                task,
                index,
                attempts: 0,
            })
        })
    }

    /// Takes a failed task back to run again behind the others; by default, declines.
    fn requeue(&mut self, job: Job<Self::Task>) -> Option<Job<Self::Task>> {
        Some(job)
    }

    /// Whether tasks can be cancelled through this source, which then keeps track of its
    /// tasks to the end: if not, the pool never asks about cancels, nor says when a task
    /// is settled.
    const CANCELS: bool = false;

    /// Moves the cancellations asked since the last call into `into`, and registers `cx`
    /// to be woken by the next one; by default, there are none.
    fn poll_cancellations(&mut self, _cx: &mut Context<'_>, _into: &mut Vec<Cancel>) {}

    /// Takes back a pending cancel of the running task `index`, if one was asked: its
    /// attempt failed before the cancel reached it, and it must not run again.
    fn take_cancel(&mut self, _index: usize) -> bool {
        false
    }

    /// Says that the task `index` has its outcome; `true` when a cancel of it came after
    /// its attempt ended and before now (taken back: the task ends cancelled, as `cancel`
    /// promised when it returned `true`).
    fn settled(&mut self, _index: usize) -> bool {
        false
    }
}

/// A cancellation asked of a scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The task was waiting in the scheduler's line, after `attempts` attempts, and is
    /// gone from it.
    Waiting {
        /// The task.
        index: usize,
        /// Attempts it had made.
        attempts: u32,
    },
    /// The task had left the line: stop it wherever it is (running, or waiting to be
    /// retried).
    Started {
        /// The task.
        index: usize,
    },
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

/// What a future makes first, before it is used: the body of a `#[pooled]` function, which
/// may `.await` before it returns its tasks. Both flavours go through it: in place, the
/// tasks are pulled from it; spawned, by the pool's core once listed.
pub(crate) enum Listing<B, T> {
    /// Boxed, so that what holds it is `Unpin` whatever the body is.
    Body(Pin<Box<B>>),
    Listed(T),
}

impl<B: Future, T> Listing<B, T> {
    pub(crate) fn new(body: B) -> Self {
        Listing::Body(Box::pin(body))
    }

    /// What the body listed, made into a `T` by `make` once it is ready.
    pub(crate) fn poll_listed(
        &mut self,
        cx: &mut Context<'_>,
        make: impl FnOnce(B::Output) -> T,
    ) -> Poll<&mut T> {
        if let Listing::Body(body) = self {
            let listed = std::task::ready!(body.as_mut().poll(cx));
            *self = Listing::Listed(make(listed));
        }
        match self {
            Listing::Listed(listed) => Poll::Ready(listed),
            Listing::Body(_) => unreachable!("listed just above"),
        }
    }
}

/// What the body of a `#[pooled]` function may evaluate to: an iterator of tasks
/// (`M` = [`ViaIter`]) or a [`Stream`] of them (`M` = [`ViaStream`]), told apart by the
/// marker, which is inferred. (`pub` only for the expansion's bounds; not exported.)
pub trait IntoSource<M> {
    /// The source it becomes.
    type Source: Source;

    /// The source of its tasks.
    fn into_source(self) -> Self::Source;
}

/// Marks a body that evaluates to an iterator of tasks.
#[derive(Debug)]
pub enum ViaIter {}

/// Marks a body that evaluates to a stream of tasks.
#[derive(Debug)]
pub enum ViaStream {}

impl<I: IntoIterator> IntoSource<ViaIter> for I {
    type Source = IterSource<I::IntoIter>;

    fn into_source(self) -> Self::Source {
        IterSource::new(self)
    }
}

impl<S: Stream> IntoSource<ViaStream> for S {
    type Source = StreamSource<S>;

    fn into_source(self) -> Self::Source {
        StreamSource::new(self)
    }
}

/// Tasks from the body of a `#[pooled]` function: listed first, then pulled from the
/// source `X` the body's value becomes.
pub struct BodySource<B, X, M> {
    tasks: Listing<B, X>,
    /// Which kind of value the body evaluates to.
    kind: PhantomData<fn() -> M>,
}

impl<B: Future, X, M> BodySource<B, X, M> {
    /// Lists the tasks with `body` when first polled.
    pub(crate) fn new(body: B) -> Self {
        BodySource {
            tasks: Listing::new(body),
            kind: PhantomData,
        }
    }
}

impl<B, X, M> Source for BodySource<B, X, M>
where
    B: Future,
    B::Output: IntoSource<M, Source = X>,
    X: Source,
{
    type Task = X::Task;

    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<Option<X::Task>> {
        let tasks = std::task::ready!(self.tasks.poll_listed(cx, IntoSource::into_source));
        tasks.poll_task(cx)
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

impl<B, X, M> fmt::Debug for BodySource<B, X, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.tasks {
            Listing::Body(_) => "listing",
            Listing::Listed(_) => "pulling",
        };
        f.debug_struct("BodySource").field("state", &state).finish()
    }
}
