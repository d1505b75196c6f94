//! The in-place flavour's slots: where running attempts live, and how they say they are
//! ready to be polled again.
//!
//! Each slot is one pinned allocation made the first time it is needed and reused for
//! every later attempt, and each slot's waker is made once with it. Waking a slot puts its
//! number on a shared list (once, however often it is woken) and wakes the consumer. So in
//! steady state an attempt costs no allocation beyond what the task itself allocates.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;

use crate::job::Meta;
use crate::lock::lock;
use crate::task::Panic;
use crate::trace::{self, AttemptSpan};

pub(crate) struct Slots<A> {
    slots: Vec<Slot<A>>,
    /// Numbers of the slots that hold no attempt.
    free: Vec<usize>,
    woken: Arc<Woken>,
    /// Slots taken from `woken`, polled in turn; `batch[next..]` are still to be polled.
    batch: Vec<usize>,
    next: usize,
}

struct Slot<A> {
    attempt: Pin<Box<Option<A>>>,
    meta: Meta,
    span: AttemptSpan,
    waker: Waker,
    handle: Arc<SlotWaker>,
}

/// The slots woken since they were last polled, and the consumer to tell.
#[derive(Default)]
struct Woken {
    slots: Mutex<Vec<usize>>,
    /// Set (under the lock) when the list becomes non-empty, cleared when it is taken: lets
    /// the consumer skip the lock when nothing was woken.
    listed: AtomicBool,
    consumer: AtomicWaker,
}

struct SlotWaker {
    slot: usize,
    /// Set while the slot is on the woken list, so that it is listed once.
    queued: AtomicBool,
    woken: Arc<Woken>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            let mut woken = lock(&self.woken.slots);
            woken.push(self.slot);
            // The consumer takes the whole list at once: only the first slot on it needs
            // to tell. (Before it waits, the consumer registers, then looks at the list.)
            if woken.len() == 1 {
                self.woken.listed.store(true, Ordering::Release);
                drop(woken);
                self.woken.consumer.wake();
            }
        }
    }
}

fn reserve_for(list: &mut Vec<usize>, slots: usize) {
    list.reserve(slots.saturating_sub(list.len()));
}

impl<A: Future> Slots<A> {
    pub(crate) fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
            woken: Arc::default(),
            batch: Vec::new(),
            next: 0,
        }
    }

    /// Attempts in flight.
    pub(crate) fn running(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Registers `waker` to be woken when a slot is, and says whether one already was:
    /// the consumer calls it just before it would wait, and waits only on `false`.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        self.woken.consumer.register(waker);
        self.next < self.batch.len() || !lock(&self.woken.slots).is_empty()
    }

    /// Puts `attempt` in a free slot (making one if none is free) and returns its number.
    /// The attempt has not been polled: poll it with [`poll`](Slots::poll).
    pub(crate) fn start(&mut self, meta: Meta, attempt: A) -> usize {
        match self.free.pop() {
            Some(slot) => {
                let entry = &mut self.slots[slot];
                entry.attempt.set(Some(attempt));
                entry.meta = meta;
                entry.span = trace::attempt_span(meta);
                slot
            }
            None => {
                let slot = self.slots.len();
                let handle = Arc::new(SlotWaker {
                    slot,
                    queued: AtomicBool::new(false),
                    woken: Arc::clone(&self.woken),
                });
                self.slots.push(Slot {
                    attempt: Box::pin(Some(attempt)),
                    meta,
                    span: trace::attempt_span(meta),
                    waker: Waker::from(Arc::clone(&handle)),
                    handle,
                });
                // Room for every slot on each list, made now rather than when the lists
                // fill up in steady state.
                let slots = self.slots.len();
                reserve_for(&mut self.free, slots);
                reserve_for(&mut self.batch, slots);
                reserve_for(&mut lock(&self.woken.slots), slots);
                slot
            }
        }
    }

    /// The next woken slot to poll, if any.
    pub(crate) fn next_woken(&mut self) -> Option<usize> {
        if self.next == self.batch.len() {
            // Nothing listed: no lock. (A slot listed just now is seen by `register`.)
            if !self.woken.listed.load(Ordering::Acquire) {
                return None;
            }
            self.batch.clear();
            self.next = 0;
            let mut woken = lock(&self.woken.slots);
            // Swapped, not taken, so that both lists keep their capacity.
            std::mem::swap(&mut self.batch, &mut *woken);
            self.woken.listed.store(false, Ordering::Release);
        }
        let slot = *self.batch.get(self.next)?;
        self.next += 1;
        Some(slot)
    }

    /// Drops the attempt of task `index`, if one is running, and frees its slot. Linear in
    /// the number of slots: for cancellations.
    pub(crate) fn cancel(&mut self, index: usize) -> Option<Meta> {
        let slot = (0..self.slots.len()).find(|&slot| {
            let entry = &self.slots[slot];
            entry.meta.index == index && entry.attempt.is_some()
        })?;
        Some(self.release(slot))
    }

    /// Drops the attempt in `slot` and frees it.
    #[inline]
    fn release(&mut self, slot: usize) -> Meta {
        let entry = &mut self.slots[slot];
        // An attempt that panicked may panic again as it is dropped; that one is lost too.
        let _ = catch_unwind(AssertUnwindSafe(|| entry.attempt.set(None)));
        self.free.push(slot);
        entry.meta
    }

    /// Polls the attempt in `slot`. When it ends (or panics), the slot is freed and its
    /// output returned with the attempt's meta. A slot woken after its attempt ended is
    /// not polled.
    pub(crate) fn poll(&mut self, slot: usize) -> Poll<(Meta, Result<A::Output, Panic>)> {
        let entry = &mut self.slots[slot];
        // Cleared before the poll, so that a wake during the poll lists the slot again;
        // acquire, to see what a waker that found the slot already listed had written.
        entry.handle.queued.swap(false, Ordering::AcqRel);
        let Some(attempt) = entry.attempt.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        let mut cx = Context::from_waker(&entry.waker);
        let polled = {
            #[cfg(feature = "tracing")]
            let _entered = entry.span.enter();
            catch_unwind(AssertUnwindSafe(|| attempt.poll(&mut cx)))
        };
        let output = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(panic) => Err(panic),
        };
        Poll::Ready((self.release(slot), output))
    }
}

impl<A> fmt::Debug for Slots<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slots")
            .field("slots", &self.slots.len())
            .field("free", &self.free.len())
            .finish()
    }
}
