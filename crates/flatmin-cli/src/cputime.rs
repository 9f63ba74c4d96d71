//! CPU time of the process or of the calling thread, read with `clock_gettime` (through `libc`):
//! what `flatmin bench` and the profiling examples measure beside wall time, since a busy machine
//! stretches wall time far more than CPU time.

/// Which CPU-time clock to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Every thread of the process (`CLOCK_PROCESS_CPUTIME_ID`).
    Process,
    /// The calling thread alone (`CLOCK_THREAD_CPUTIME_ID`).
    Thread,
}

/// The CPU time `clock` has counted, in seconds, or `None` where it cannot be read (systems
/// other than Linux, or a failed call).
pub fn cpu_time(clock: Clock) -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let id = match clock {
            Clock::Process => libc::CLOCK_PROCESS_CPUTIME_ID,
            Clock::Thread => libc::CLOCK_THREAD_CPUTIME_ID,
        };
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `t` is a valid, writable timespec for the duration of the call.
        let ok = unsafe { libc::clock_gettime(id, &mut t) } == 0;
        ok.then_some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = clock;
        None
    }
}

/// [`cpu_time`] in milliseconds, NaN where it cannot be read.
pub fn cpu_ms(clock: Clock) -> f64 {
    cpu_time(clock).map_or(f64::NAN, |s| s * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both clocks advance while this thread computes, and the thread's never outruns the
    /// process's.
    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_advances_with_work() {
        let (p0, t0) = (cpu_time(Clock::Process).unwrap(), cpu_time(Clock::Thread).unwrap());
        let mut x = 0u64;
        while cpu_time(Clock::Thread).unwrap() - t0 < 0.02 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let (p1, t1) = (cpu_time(Clock::Process).unwrap(), cpu_time(Clock::Thread).unwrap());
        assert!(
            t1 - t0 >= 0.02 && p1 - p0 >= 0.019,
            "thread {t0}→{t1}, process {p0}→{p1}"
        );
        assert!(t1 <= p1 + 1e-3, "thread {t1} s past process {p1} s");
        assert!((cpu_ms(Clock::Thread) - 1e3 * t1).abs() < 1e3);
    }
}
