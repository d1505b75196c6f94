//! The in-place flavour's slots: where running attempts live, and how they say they are
//! ready to be polled again.
//!
//! Each slot is one pinned allocation made the first time it is needed and reused for
//! every later attempt, and each slot's waker (and the allocation of its timer, when the
//! pool has a timeout) is made once with it. So in steady state an attempt costs no
//! allocation beyond what the task itself allocates. The slot freed last is taken first,
//! so an attempt that ends and the next one, started at once, share a slot (and its timer,
//! reset); a slot still free when the consumer waits gives its timer back to the runtime.
//!
//! Waking a slot sets its bit in the word of its group (64 slots a group): one atomic
//! `fetch_or`, which also says whether the slot was already listed. Only the wake that
//! finds its group's word empty puts the group on a shared list (under a lock, once per
//! group and batch rather than once per wake), and only the first group listed wakes the
//! consumer. The consumer takes the list, then each listed group's word with one `swap`,
//! and polls the slots whose bits were set.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;

use crate::job::Meta;
use crate::lock::lock;
use crate::task::{Deadline, Limits, Panic, limits, poll_attempt};
use crate::trace::{self, AttemptSpan};

/// Slots per group: the bits of a word.
const GROUP: usize = u64::BITS as usize;

pub(crate) struct Slots<A> {
    slots: Vec<Slot<A>>,
    /// Each attempt's, from its first poll.
    timeout: Option<Duration>,
    /// Numbers of the slots that hold no attempt.
    free: Vec<usize>,
    /// Slots freed since the consumer last waited whose timer may still be registered:
    /// taken out if they are still free when it waits ([`Slots::idle`]).
    freed_with_timer: Vec<usize>,
    /// One per `GROUP` slots, made with the first of them.
    groups: Vec<Arc<Group>>,
    woken: Arc<Woken>,
    /// Groups taken from `woken`; `batch[next..]` are still to be looked at.
    batch: Vec<usize>,
    next: usize,
    /// The woken slots of the group being polled: bit `i` is slot `base + i`.
    bits: u64,
    base: usize,
}

struct Slot<A> {
    attempt: Pin<Box<Option<A>>>,
    /// The timer of its attempts, when the pool has a timeout.
    deadline: Option<Deadline>,
    meta: Meta,
    span: AttemptSpan,
    waker: Waker,
}

/// The groups with a slot woken since they were last taken, and the consumer to tell.
#[derive(Default)]
struct Woken {
    groups: Mutex<Vec<usize>>,
    /// Set (under the lock) when the list becomes non-empty, cleared when it is taken: lets
    /// the consumer skip the lock when nothing was woken.
    listed: AtomicBool,
    consumer: AtomicWaker,
}

/// `GROUP` slots' woken bits.
struct Group {
    /// Bit `i`: slot `index * GROUP + i` was woken since the consumer last took the word.
    bits: AtomicU64,
    index: usize,
    woken: Arc<Woken>,
}

struct SlotWaker {
    group: Arc<Group>,
    /// The slot's bit in its group's word.
    mask: u64,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    #[inline]
    fn wake_by_ref(self: &Arc<Self>) {
        let group = &*self.group;
        // Only the wake that finds the word empty lists the group: the others find it
        // listed (or being taken, which reads their bit too).
        if group.bits.fetch_or(self.mask, Ordering::AcqRel) == 0 {
            group.list();
        }
    }
}

impl Group {
    /// Puts the group on the woken list: once per group and batch, so kept out of line.
    #[cold]
    #[inline(never)]
    fn list(&self) {
        let mut groups = lock(&self.woken.groups);
        groups.push(self.index);
        // The consumer takes the whole list at once: only the first group on it needs
        // to tell. (Before it waits, the consumer registers, then looks at the list.)
        if groups.len() == 1 {
            self.woken.listed.store(true, Ordering::Release);
            drop(groups);
            self.woken.consumer.wake();
        }
    }
}

fn reserve_for(list: &mut Vec<usize>, len: usize) {
    list.reserve(len.saturating_sub(list.len()));
}

impl<A: Future> Slots<A> {
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Slots {
            slots: Vec::new(),
            timeout,
            free: Vec::new(),
            freed_with_timer: Vec::new(),
            groups: Vec::new(),
            woken: Arc::default(),
            batch: Vec::new(),
            next: 0,
            bits: 0,
            base: 0,
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
        self.bits != 0 || self.next < self.batch.len() || !lock(&self.woken.groups).is_empty()
    }

    /// Puts the attempt that `make` makes within the slot's limits in a free slot (making
    /// one if none is free) and returns its number. The attempt has not been polled: poll
    /// it with [`poll`](Slots::poll). The slot freed last is taken first: an attempt that
    /// ended and the next one, started at once, share a slot.
    #[inline]
    pub(crate) fn start(&mut self, meta: Meta, make: impl FnOnce(Limits) -> A) -> usize {
        match self.free.pop() {
            Some(slot) => {
                let entry = &mut self.slots[slot];
                entry
                    .attempt
                    .set(Some(make(limits(entry.deadline.as_mut()))));
                entry.meta = meta;
                entry.span = trace::attempt_span(meta);
                slot
            }
            None => self.make(meta, make),
        }
    }

    #[cold]
    #[inline(never)]
    fn make(&mut self, meta: Meta, make: impl FnOnce(Limits) -> A) -> usize {
        let slot = self.slots.len();
        if slot % GROUP == 0 {
            self.groups.push(Arc::new(Group {
                bits: AtomicU64::new(0),
                index: self.groups.len(),
                woken: Arc::clone(&self.woken),
            }));
            // Room for every group on each list, made now rather than when the lists fill
            // up in steady state.
            let groups = self.groups.len();
            reserve_for(&mut self.batch, groups);
            reserve_for(&mut lock(&self.woken.groups), groups);
        }
        let handle = Arc::new(SlotWaker {
            group: Arc::clone(&self.groups[slot / GROUP]),
            mask: 1 << (slot % GROUP),
        });
        let mut deadline = self.timeout.map(Deadline::new);
        let attempt = make(limits(deadline.as_mut()));
        self.slots.push(Slot {
            attempt: Box::pin(Some(attempt)),
            deadline,
            meta,
            span: trace::attempt_span(meta),
            waker: Waker::from(handle),
        });
        let slots = self.slots.len();
        reserve_for(&mut self.free, slots);
        if self.timeout.is_some() {
            reserve_for(&mut self.freed_with_timer, slots);
        }
        slot
    }

    /// The next woken slot to poll, if any.
    #[inline]
    pub(crate) fn next_woken(&mut self) -> Option<usize> {
        loop {
            if self.bits != 0 {
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some(self.base + bit);
            }
            if self.next == self.batch.len() && !self.take_woken() {
                return None;
            }
            let group = self.batch[self.next];
            self.next += 1;
            // Taken, not read: a slot woken from now on is listed again.
            self.bits = self.groups[group].bits.swap(0, Ordering::AcqRel);
            self.base = group * GROUP;
        }
    }

    /// Takes the listed groups into `batch`; `false` when there were none.
    fn take_woken(&mut self) -> bool {
        // Nothing listed: no lock. (A group listed just now is seen by `register`.)
        if !self.woken.listed.load(Ordering::Acquire) {
            return false;
        }
        self.batch.clear();
        self.next = 0;
        let mut woken = lock(&self.woken.groups);
        // Swapped, not taken, so that both lists keep their capacity.
        std::mem::swap(&mut self.batch, &mut *woken);
        self.woken.listed.store(false, Ordering::Release);
        !self.batch.is_empty()
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

    /// Takes the timers of the slots freed since the last call, and still free, out of the
    /// runtime: for a consumer about to wait (or done), so that no timer of an attempt that
    /// ended wakes it for nothing. (A slot that starts another attempt at once resets its
    /// timer instead.)
    pub(crate) fn idle(&mut self) {
        for slot in self.freed_with_timer.drain(..) {
            let entry = &mut self.slots[slot];
            // One that started another attempt since keeps its timer.
            if entry.attempt.is_none() {
                if let Some(deadline) = &mut entry.deadline {
                    deadline.idle();
                }
            }
        }
    }

    /// Frees `slot`, whose attempt was dropped.
    #[inline]
    fn free(&mut self, slot: usize) {
        self.free.push(slot);
        if self.timeout.is_some() {
            self.freed_timed(slot);
        }
    }

    /// Notes free `slot` for [`idle`](Slots::idle) if its timer may be registered. (Kept
    /// out of line: an untimed pool's path to the next attempt stays short.)
    #[cold]
    fn freed_timed(&mut self, slot: usize) {
        if self.slots[slot]
            .deadline
            .as_ref()
            .is_some_and(Deadline::is_registered)
        {
            self.freed_with_timer.push(slot);
        }
    }

    /// Drops the attempt in `slot` and frees it.
    #[inline]
    fn release(&mut self, slot: usize) -> Meta {
        let entry = &mut self.slots[slot];
        // An attempt that panicked may panic again as it is dropped; that one is lost too.
        let _ = catch_unwind(AssertUnwindSafe(|| entry.attempt.set(None)));
        let meta = entry.meta;
        self.free(slot);
        meta
    }

    /// Polls the attempt in `slot`. When it ends (or panics), the slot is freed, `ended`
    /// is given its output with the attempt's meta, and `true` returned. A slot woken
    /// after its attempt ended is not polled.
    #[inline]
    pub(crate) fn poll(
        &mut self,
        slot: usize,
        ended: impl FnOnce(Meta, Result<A::Output, Panic>),
    ) -> bool {
        let entry = &mut self.slots[slot];
        // (Its woken bit was cleared when its group's word was taken, before this poll: a
        // wake during the poll lists it again.)
        let Some(attempt) = entry.attempt.as_mut().as_pin_mut() else {
            return false;
        };
        let mut cx = Context::from_waker(&entry.waker);
        let deadline = entry.deadline.as_mut();
        let polled = {
            #[cfg(feature = "tracing")]
            let _entered = entry.span.enter();
            catch_unwind(AssertUnwindSafe(|| {
                poll_attempt(attempt, deadline, &mut cx)
            }))
        };
        let output = match polled {
            Ok(Poll::Pending) => return false,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(panic) => Err(panic),
        };
        // Freed before the task is settled: a hook or the source may panic from there.
        let meta = match output {
            // An attempt that ended has dropped what it held, within its poll.
            Ok(_) => {
                entry.attempt.set(None);
                let meta = entry.meta;
                self.free(slot);
                meta
            }
            Err(_) => self.release(slot),
        };
        ended(meta, output);
        true
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
