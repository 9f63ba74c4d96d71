//! The allocator settings of the `flatmin` command (Linux with glibc).
//!
//! Burn's `flex` CPU backend allocates a fresh buffer for most operations and frees it soon
//! after. With glibc's defaults, buffers above 128 KiB come from `mmap` and go back to the
//! kernel on `free`, and the top of the heap is trimmed as soon as 128 KiB are free: every
//! training step then page-faults its whole working set in again (about 500 000 minor faults
//! for 160 steps of the small CNN and the MLP, measured with `/usr/bin/time`), and the kernel
//! zeroes every page. Keeping freed memory in the process removes most of that cost: on two
//! cores the MLP's step went from 2.71 to 0.84 ms and the small CNN's from 82 to 30 ms
//! (BENCHMARKS.md, "The allocator"). The resident size stays at the run's peak instead of shrinking between
//! steps, which is what a training process wants.
//!
//! The same can be had without this code through the environment, e.g.
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432`.
//!
//! [`CountingAlloc`] counts the heap bytes held, for the benchmark's memory figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keeps freed memory in the process: blocks up to 32 MiB come from the heap, and the heap is
/// trimmed only when 1 GiB is free at its top. No effect off Linux/glibc, or when
/// `GLIBC_TUNABLES` or `MALLOC_*` environment variables already choose these settings.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_env = std::env::vars_os().any(|(k, _)| {
            let k = k.to_string_lossy();
            k == "GLIBC_TUNABLES" || k.starts_with("MALLOC_")
        });
        if !set_by_env {
            // The largest mmap threshold glibc accepts on 64-bit targets.
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_MMAP_THRESHOLD: std::ffi::c_int = -3;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    safe fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
}

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
