//! A second floor for the in-place rows: the least a bounded, completion-ordered stream can
//! do while keeping the two rules of the in-place flavour that cost something on every
//! task, and none of its features.
//!
//! `c` slots, each one pinned allocation and one waker made once; a wake sets the slot's
//! bit in its group's word (64 slots a group), the first wake of a group sets the group's
//! bit in a word of groups, and the first of those wakes the consumer. A poll spends tokio's cooperative budget (as the pool does, so that always
//! ready tasks cannot starve their neighbours) and polls every woken slot before it returns
//! anything, refilling each slot whose future ended at once, and keeps the outcomes it
//! could not return yet in a queue (as the pool does, so that a busy consumer leaves no
//! slot idle). No retry, timeout, panic isolation, counters, hooks or cancellation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::Stream;
use futures::task::AtomicWaker;

/// Slots per group: the bits of a word.
const GROUP: usize = 64;

struct Shared {
    /// Bit `i` of word `g`: slot `g * GROUP + i` was woken since the consumer took the word.
    words: Vec<AtomicU64>,
    /// Bit `i` of word `s`: word `s * GROUP + i` of `words` has a bit set.
    groups: Vec<AtomicU64>,
    consumer: AtomicWaker,
}

struct SlotWaker {
    shared: Arc<Shared>,
    slot: usize,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let shared = &*self.shared;
        let group = self.slot / GROUP;
        if shared.words[group].fetch_or(1 << (self.slot % GROUP), Ordering::AcqRel) == 0
            && shared.groups[group / GROUP].fetch_or(1 << (group % GROUP), Ordering::AcqRel) == 0
        {
            shared.consumer.wake();
        }
    }
}

/// The stream of the outputs of `tasks`' futures, `c` at a time, in completion order.
pub struct BareSlots<I: Iterator<Item: Future>> {
    tasks: I,
    concurrency: usize,
    slots: Vec<Pin<Box<Option<I::Item>>>>,
    wakers: Vec<Waker>,
    shared: Arc<Shared>,
    /// The word of groups being looked at, and its groups with a woken slot not looked at
    /// yet; the group being polled, and its woken slots not polled yet.
    summary: usize,
    groups: u64,
    group: usize,
    bits: u64,
    running: usize,
    outputs: VecDeque<<I::Item as Future>::Output>,
}

impl<I: Iterator<Item: Future>> BareSlots<I> {
    pub fn new(tasks: I, concurrency: usize) -> Self {
        let words = concurrency.div_ceil(GROUP).max(1);
        let shared = Arc::new(Shared {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            groups: (0..words.div_ceil(GROUP))
                .map(|_| AtomicU64::new(0))
                .collect(),
            consumer: AtomicWaker::new(),
        });
        BareSlots {
            tasks,
            concurrency,
            slots: Vec::with_capacity(concurrency),
            wakers: Vec::with_capacity(concurrency),
            shared,
            summary: 0,
            groups: 0,
            group: 0,
            bits: 0,
            running: 0,
            outputs: VecDeque::new(),
        }
    }

    /// Polls slot `slot`; when its future ends, keeps the output and starts the next task
    /// in the slot (polled at once).
    fn poll_slot(&mut self, slot: usize) {
        let mut cx = Context::from_waker(&self.wakers[slot]);
        let mut entry = self.slots[slot].as_mut();
        while let Some(future) = entry.as_mut().as_pin_mut() {
            let Poll::Ready(output) = future.poll(&mut cx) else {
                return;
            };
            self.outputs.push_back(output);
            let next = self.tasks.next();
            if next.is_none() {
                self.running -= 1;
            }
            entry.set(next);
        }
    }

    /// The next woken slot, if any: from the group being polled, else from the next group
    /// with a woken slot.
    fn next_woken(&mut self) -> Option<usize> {
        let summaries = self.shared.groups.len();
        let mut looked = 0;
        loop {
            if self.bits != 0 {
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some(self.group * GROUP + bit);
            }
            if self.groups != 0 {
                let bit = self.groups.trailing_zeros() as usize;
                self.groups &= self.groups - 1;
                self.group = self.summary * GROUP + bit;
                self.bits = self.shared.words[self.group].swap(0, Ordering::AcqRel);
                continue;
            }
            if looked == summaries {
                return None;
            }
            looked += 1;
            self.summary = (self.summary + 1) % summaries;
            self.groups = self.shared.groups[self.summary].swap(0, Ordering::AcqRel);
        }
    }
}

impl<I> Stream for BareSlots<I>
where
    I: Iterator<Item: Future> + Unpin,
    <I::Item as Future>::Output: Unpin,
{
    type Item = <I::Item as Future>::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        // The first poll fills the slots; each is woken once to be polled below.
        while this.slots.len() < this.concurrency {
            let Some(task) = this.tasks.next() else {
                break;
            };
            let slot = this.slots.len();
            this.slots.push(Box::pin(Some(task)));
            this.wakers.push(Waker::from(Arc::new(SlotWaker {
                shared: Arc::clone(&this.shared),
                slot,
            })));
            this.running += 1;
            this.wakers[slot].wake_by_ref();
        }
        loop {
            while let Some(slot) = this.next_woken() {
                this.poll_slot(slot);
            }
            if let Some(output) = this.outputs.pop_front() {
                coop.made_progress();
                return Poll::Ready(Some(output));
            }
            if this.running == 0 {
                return Poll::Ready(None);
            }
            this.shared.consumer.register(cx.waker());
            // A slot woken before the registration is polled now.
            if this
                .shared
                .words
                .iter()
                .all(|w| w.load(Ordering::Acquire) == 0)
            {
                return Poll::Pending;
            }
        }
    }
}
