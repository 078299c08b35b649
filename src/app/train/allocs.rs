//! Counting heap allocations, to see what a training step or an inference batch allocates in
//! its steady state. A binary opts in by wrapping its allocator:
//!
//! ```
//! use netcalc::app::train::allocs::{CountingAlloc, allocations};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);
//!
//! fn main() {
//!     let before = allocations().expect("this binary counts");
//!     let v = vec![0u8; 1000];
//!     let grown = allocations().unwrap().since(before);
//!     assert!(grown.count >= 1 && grown.bytes >= 1000);
//!     drop(v);
//! }
//! ```
//!
//! Two relaxed atomic additions per allocation: nothing that a benchmark of milliseconds per
//! step could see.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static COUNT: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A global allocator that counts the allocations (and reallocations) made through `A`, and
/// their bytes. Install it with `#[global_allocator]`; read the totals with [`allocations`].
pub struct CountingAlloc<A> {
    inner: A,
}

impl<A> CountingAlloc<A> {
    /// Counts the allocations made through `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

fn count(bytes: usize) {
    COUNT.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
    if !INSTALLED.load(Relaxed) {
        INSTALLED.store(true, Relaxed);
    }
}

// SAFETY: every method forwards to `inner` with the same arguments, so `inner`'s guarantees
// hold; the counting touches only atomics and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received (see the impl).
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as received (see the impl).
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded as received (see the impl).
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received (see the impl).
        unsafe { self.inner.dealloc(ptr, layout) }
    }
}

/// Allocations so far (or between two readings, with [`AllocCount::since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AllocCount {
    /// Allocations and reallocations.
    pub count: u64,
    /// Bytes they asked for.
    pub bytes: u64,
}

impl AllocCount {
    /// What was allocated after `earlier`.
    pub fn since(self, earlier: AllocCount) -> AllocCount {
        AllocCount {
            count: self.count.saturating_sub(earlier.count),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

impl std::ops::Div<u64> for AllocCount {
    type Output = AllocCount;

    /// The mean of `n` steps (rounded down); `n = 0` counts as 1.
    fn div(self, n: u64) -> AllocCount {
        let n = n.max(1);
        AllocCount {
            count: self.count / n,
            bytes: self.bytes / n,
        }
    }
}

/// The process's allocations so far, or `None` when its global allocator is not a
/// [`CountingAlloc`] (nothing has been counted).
pub fn allocations() -> Option<AllocCount> {
    INSTALLED.load(Relaxed).then(|| AllocCount {
        count: COUNT.load(Relaxed),
        bytes: BYTES.load(Relaxed),
    })
}
