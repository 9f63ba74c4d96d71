//! Heap accounting for `flatmin bench`.
//!
//! The allocator *settings* that make Burn's CPU backend fast on glibc (freed memory kept in
//! the process: 2.7 – 3.3× faster steps, BENCHMARKS.md) are the library's
//! [`flatmin::keep_freed_memory`], which the `flatmin` command calls at start-up. Here:
//! [`CountingAlloc`], which counts the heap bytes held, for the benchmark's exact memory figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A global allocator that counts the bytes the process holds through Rust's allocator and
/// their high-water mark: exact, page-free figures of a step's working memory (peak RSS moves
/// by whole pages and with the C allocator's arenas). Install it with
/// `#[global_allocator] static A: flatmin_lab::malloc::CountingAlloc = flatmin_lab::malloc::CountingAlloc;`
/// (the `flatmin` command and the step benchmark do); without it the counters stay at zero.
///
/// ```
/// use flatmin_lab::malloc;
/// malloc::reset_heap_peak();
/// // ... the work to measure ...
/// let grown = malloc::heap_peak_bytes().saturating_sub(malloc::heap_live_bytes());
/// assert_eq!(grown, 0); // not installed in this doc test: nothing is counted
/// ```
pub struct CountingAlloc;

static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = HEAP_LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    HEAP_LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Bytes held now through [`CountingAlloc`] (0 when it is not the global allocator).
pub fn heap_live_bytes() -> usize {
    HEAP_LIVE.load(Ordering::Relaxed)
}

/// The most bytes held at once through [`CountingAlloc`] since the last [`reset_heap_peak`].
pub fn heap_peak_bytes() -> usize {
    HEAP_PEAK.load(Ordering::Relaxed)
}

/// Starts a new high-water mark at the bytes held now.
pub fn reset_heap_peak() {
    HEAP_PEAK.store(HEAP_LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}
