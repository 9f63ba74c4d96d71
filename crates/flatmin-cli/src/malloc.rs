//! Heap accounting for `flatmin bench`.
//!
//! The allocator *settings* that make Burn's CPU backend fast on glibc (freed memory kept in
//! the process: 2.7 – 3.3× faster steps, BENCHMARKS.md) are the library's
//! [`flatmin::keep_freed_memory`], which the `flatmin` command calls at start-up. Here:
//! [`CountingAlloc`], which counts the heap bytes held, for the benchmark's exact memory figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// A global allocator that, while [`set_heap_counting`] has it on, counts the bytes allocated
/// minus those freed through Rust's allocator and their high-water mark: exact, page-free
/// figures of a step's working memory (peak RSS moves by whole pages and with the C
/// allocator's arenas). Install it with
/// `#[global_allocator] static A: flatmin_lab::malloc::CountingAlloc = flatmin_lab::malloc::CountingAlloc;`
/// (the `flatmin` command and the step benchmark do). Counting off, it costs one relaxed load
/// per call: the shared counters, updated from every thread, would slow a training
/// step by about 5 % on two cores (small CNN, three alternating pairs of runs), so `flatmin bench` turns them on for
/// its untimed memory rounds alone.
///
/// ```
/// use flatmin_lab::malloc;
/// malloc::set_heap_counting(true);
/// malloc::reset_heap_peak();
/// // ... the work to measure ...
/// let grown: usize = malloc::heap_peak_growth();
/// malloc::set_heap_counting(false);
/// assert_eq!(grown, 0); // not the global allocator in this doc test: nothing is counted
/// ```
pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed since counting started (negative when more was freed of
/// what was allocated before).
static HEAP_NET: AtomicIsize = AtomicIsize::new(0);
/// The highest `HEAP_NET` since the last reset.
static HEAP_PEAK: AtomicIsize = AtomicIsize::new(0);
/// `HEAP_NET` at the last reset.
static HEAP_BASE: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let bytes = bytes as isize;
        let now = HEAP_NET.fetch_add(bytes, Ordering::Relaxed) + bytes;
        HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn shrank(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        HEAP_NET.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
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

/// Turns the counting of [`CountingAlloc`] on or off (off at start).
pub fn set_heap_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// Starts a new high-water mark at the bytes held now.
pub fn reset_heap_peak() {
    let now = HEAP_NET.load(Ordering::Relaxed);
    HEAP_BASE.store(now, Ordering::Relaxed);
    HEAP_PEAK.store(now, Ordering::Relaxed);
}

/// The most bytes held at once since the last [`reset_heap_peak`], over those held at the
/// reset: the working memory of what ran in between (0 when nothing is counted).
pub fn heap_peak_growth() -> usize {
    let growth = HEAP_PEAK.load(Ordering::Relaxed) - HEAP_BASE.load(Ordering::Relaxed);
    growth.max(0) as usize
}
