//! A global allocator that passes every call on to `System` and tells a [`Record`] the
//! size of each allocation and reallocation, for tests that count what the pool allocates.
//! A test binary installs it with its own recorder:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: support::counting::Counting<MyRecord> = support::counting::Counting::new();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::marker::PhantomData;

/// What a test does with each allocation: it must not allocate itself (other than through
/// a guard of its own against recursion), since it runs inside the allocator.
pub trait Record {
    /// An allocation or reallocation of `size` bytes was made.
    fn record(size: usize);
}

/// The allocator: `System`, reporting to `R`.
pub struct Counting<R>(PhantomData<fn() -> R>);

impl<R> Counting<R> {
    /// The allocator, for a `#[global_allocator]` static.
    pub const fn new() -> Self {
        Counting(PhantomData)
    }
}

impl<R> Default for Counting<R> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is passed on unchanged to `System`, which upholds the contract of
// `GlobalAlloc`; `R::record` only observes sizes (see `Record`).
unsafe impl<R: Record> GlobalAlloc for Counting<R> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        R::record(layout.size());
        // SAFETY: the caller's guarantees for `alloc` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        R::record(layout.size());
        // SAFETY: the caller's guarantees for `alloc_zeroed` are passed on as they are.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        R::record(new_size);
        // SAFETY: the caller's guarantees for `realloc` are passed on as they are.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for `dealloc` are passed on as they are.
        unsafe { System.dealloc(ptr, layout) }
    }
}
