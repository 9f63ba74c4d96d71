//! Where a one-call step's wall time goes: the passes (the loss closure's calls and the
//! backward passes) and the points where the first pass and the selection forward ended.

use std::time::{Duration, Instant};

use crate::report::StepTimings;

/// The passes' wall time of the step in progress and its phase marks.
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct PassClock {
    total: Duration,
    marks: [Option<Duration>; 2],
}

/// A point of the step that ends a phase of the passes.
#[derive(Clone, Copy)]
pub(crate) enum Phase {
    FirstPassEnd,
    SelectionEnd,
}

impl PassClock {
    /// Runs `f`, adding its wall time to the passes'.
    pub(crate) fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.total += t.elapsed();
        out
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
