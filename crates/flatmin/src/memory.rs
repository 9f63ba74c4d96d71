//! The C allocator's settings for Burn's CPU backend (Linux with glibc).
//!
//! Burn's `flex` backend allocates a fresh buffer for most operations and frees it soon after.
//! With glibc's defaults, blocks above 128 KiB come from `mmap` and go back to the kernel on
//! `free`, and the top of the heap is trimmed as soon as 128 KiB are free: every training step
//! page-faults its working set in again, and the kernel zeroes every page. On two cores this
//! makes a step of a small CNN 2.8× slower and of an MLP 3.2× (BENCHMARKS.md, "The allocator").

/// Keeps freed memory in the process, so that a training step reuses the previous step's
/// memory instead of faulting it in again from the kernel: blocks up to 32 MiB come from the
/// heap, and the heap is trimmed only when 1 GiB is free at its top. The resident size then
/// stays at the run's peak, which is what a training process wants.
///
/// Call it once, first thing in `main`. It does nothing off Linux/glibc, or when
/// `GLIBC_TUNABLES` or `MALLOC_*` environment variables are set (they choose for themselves);
/// the same settings can be had without code with
/// `GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432`.
/// Returns whether the settings were applied.
///
/// ```
/// // First thing in `main`, before the model and the optimizer allocate anything:
/// let applied = flatmin::keep_freed_memory();
/// # let by_env = std::env::vars().any(|(k, _)| k == "GLIBC_TUNABLES" || k.starts_with("MALLOC_"));
/// # assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")) && !by_env);
/// ```
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_env = std::env::vars_os().any(|(k, _)| {
            let k = k.to_string_lossy();
            k == "GLIBC_TUNABLES" || k.starts_with("MALLOC_")
        });
        if set_by_env {
            return false;
        }
        // The largest mmap threshold glibc accepts on 64-bit targets; mallopt returns 1 on success.
        glibc::mallopt(glibc::M_MMAP_THRESHOLD, 32 << 20) == 1 && glibc::mallopt(glibc::M_TRIM_THRESHOLD, 1 << 30) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    pub const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
    pub const M_MMAP_THRESHOLD: std::ffi::c_int = -3;

    unsafe extern "C" {
        pub safe fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
}
