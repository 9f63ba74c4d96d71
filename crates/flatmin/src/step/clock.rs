//! Where a one-call step's wall time goes: the passes (the loss closure's calls and the
//! backward passes) and the points where the first pass and the selection forward ended.

use std::time::{Duration, Instant};

use burn::tensor::Device;

use crate::report::StepTimings;

/// The passes' wall time of the step in progress and its phase marks.
#[derive(Default, Debug, Clone)]
pub(crate) struct PassClock {
    total: Duration,
    marks: [Option<Duration>; 2],
    /// The device each timed region waits for at both of its ends ([`Sam::set_synced_timings`](crate::Sam::set_synced_timings)):
    /// on a backend that queues work, what was queued before a pass is then not counted in it,
    /// and the pass's own kernels are.
    synced: Option<Device>,
}

/// A point of the step that ends a phase of the passes.
#[derive(Clone, Copy)]
pub(crate) enum Phase {
    FirstPassEnd,
    SelectionEnd,
}

impl PassClock {
    /// A clock that waits for `device` at both ends of each timed region (`None`: never waits).
    pub(crate) fn synced_on(device: Option<Device>) -> Self {
        Self {
            synced: device,
            ..Self::default()
        }
    }

    /// Runs `f`, adding its wall time to the passes'.
    pub(crate) fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.wait();
        let t = Instant::now();
        let out = f();
        self.wait();
        self.total += t.elapsed();
        out
    }

    /// Waits for the device's queued work, when the clock is synced. A device that cannot be
    /// waited for (it failed) leaves the timings as queued: the step itself reports the failure
    /// at its next read.
    fn wait(&self) {
        if let Some(device) = &self.synced {
            let _ = device.sync();
        }
    }

    /// Marks the end of a phase at the passes' time so far.
    pub(crate) fn mark(&mut self, phase: Phase) {
        self.marks[phase as usize] = Some(self.total);
    }

    /// The step's timings, `total` being its whole wall time. A phase the step did not reach
    /// (it stopped early, or has no selection) takes no time.
    pub(crate) fn timings(&self, total: Duration) -> StepTimings {
        let all = self.total;
        let [first, selected] = self.marks;
        let first = first.unwrap_or(all);
        let selected = selected.unwrap_or(first);
        StepTimings {
            total: total.as_secs_f64(),
            passes: all.as_secs_f64(),
            first_pass: first.as_secs_f64(),
            selection: (selected - first).as_secs_f64(),
            second_pass: (all - selected).as_secs_f64(),
        }
    }
}
