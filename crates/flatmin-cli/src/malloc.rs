//! The allocator settings of the `flatmin` command (Linux with glibc).
//!
//! Burn's `flex` CPU backend allocates a fresh buffer for most operations and frees it soon
//! after. With glibc's defaults, buffers above 128 KiB come from `mmap` and go back to the
//! kernel on `free`, and the top of the heap is trimmed as soon as 128 KiB are free: every
//! training step then page-faults its whole working set in again (about 500 000 minor faults
//! for 160 steps of the small CNN and the MLP, measured with `/usr/bin/time`), and the kernel
//! zeroes every page. Keeping freed memory in the process removes most of that cost: on two
//! cores the MLP's step went from 2.1 to 1.3 ms and the small CNN's from 96 to 82 ms
//! (BENCHMARKS.md). The resident size stays at the run's peak instead of shrinking between
//! steps, which is what a training process wants.
//!
//! The same can be had without this code through the environment, e.g.
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432`.

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
