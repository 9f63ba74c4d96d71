//! AE-SAM (Jiang, Yang, Zhang, Kwok, "An Adaptive Policy to Employ Sharpness-Aware
//! Minimization", ICLR 2023; the crate's ALGORITHMS.md §13.3): a SAM step only where the loss surface
//! looks sharp, judged by the squared norm of the first-pass gradient against its running
//! statistics.
//!
//! Each step, with `q = ‖g‖²`:
//! `μ ← δ·μ + (1−δ)·q`, `σ² ← δ·σ² + (1−δ)·(q − μ)²` (from `μ = σ² = 0`), then a SAM step iff
//! `q ≥ μ + c_t·σ`, where the threshold moves linearly over the `T` steps of training from
//! `c_start` to `c_end` (and stays at `c_end` after them). Two independent secondary sources (a
//! re-implementation and a documented formula sheet) write the paper's schedule as
//! `c_t = (t/T)·λ₁ + (1 − t/T)·λ₂`, and the paper's experiments use `λ₁ = −1`, `λ₂ = 1` (as
//! recalled, not checked here): the threshold falls from 1 to −1, so SAM steps are rare early and
//! frequent late, and the defaults here are `c_start = λ₂ = 1`, `c_end = λ₁ = −1`. The paper's
//! Algorithm 1 itself could not be read where this was written (crate's ALGORITHMS.md §13.3).
//! Before 2026-12-05 flatmin's defaults ran the other way, from −1 to 1.

use burn::config::Config;

use crate::error::RecordError;
use crate::hyperparameter::{Declared, Range, RunFigure, declare};
use crate::member::{MemberHooks, Schema, member_config};
use crate::record::{RecordIn, RecordOut};

/// AE-SAM's policy.
#[derive(Config, Debug, PartialEq)]
pub struct AeSamConfig {
    /// δ, the decay of the running mean and variance of `‖g‖²`.
    #[config(default = 0.9)]
    pub delta: f64,
    /// The threshold `c` at the first step (the paper's λ₂).
    #[config(default = 1.0)]
    pub c_start: f64,
    /// The threshold `c` at the last step (the paper's λ₁).
    #[config(default = -1.0)]
    pub c_end: f64,
    /// T, the number of steps of the training run, over which `c` moves (required, ≥ 1;
    /// [`crate::SamConfig::for_run`] fills it in).
    #[config(default = 0)]
    pub total_steps: u64,
}

const HYPERPARAMETERS: &[Declared<AeSamConfig>] = &[
    declare!(
        number AeSamConfig, "ae_delta", "AE-SAM's δ, the decay of the running statistics of ‖g‖² (turns AE-SAM's policy on)",
        Range::FRACTION, delta => .replay(&["delta"])),
    declare!(
        number AeSamConfig, "ae_c_start", "AE-SAM's threshold c at the first step (turns AE-SAM's policy on)",
        Range::FINITE, c_start => .replay(&["c_start"])),
    declare!(
        number AeSamConfig, "ae_c_end", "AE-SAM's threshold c at the last step (turns AE-SAM's policy on)",
        Range::FINITE, c_end => .replay(&["c_end"])),
    declare!(
        whole AeSamConfig, "ae_total_steps", "AE-SAM's run length T, over which its threshold moves",
        Range::WHOLE, total_steps => .replay(&["total_steps"]).from_run(RunFigure::TotalSteps)),
];

impl AeSamConfig {
    /// The threshold `c_t` at step `step`.
    pub fn threshold(&self, step: u64) -> f64 {
        let fraction = (step as f64 / self.total_steps.max(1) as f64).min(1.0);
        self.c_start + (self.c_end - self.c_start) * fraction
    }
}

member_config! {
    impl AeSamConfig as "ae-sam" in Schedule with HYPERPARAMETERS, fresh(_) = Self::new();

    fn decides_after_first_pass(&self) -> bool {
        true
    }

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(AeSam {
            config: self.clone(),
            mean: 0.0,
            var: 0.0,
        })
    }
}

/// AE-SAM's running mean and variance of `‖g‖²`.
#[derive(Clone)]
pub(crate) struct AeSam {
    config: AeSamConfig,
    pub(crate) mean: f64,
    pub(crate) var: f64,
}

/// Record names of the statistics (their `f64` bit patterns).
const MEAN: &str = "ae/mean";
const VAR: &str = "ae/var";

impl MemberHooks for AeSam {

    fn decide(&mut self, step: u64, squared_norm: f64) -> bool {
        let d = self.config.delta;
        self.mean = d * self.mean + (1.0 - d) * squared_norm;
        self.var = d * self.var + (1.0 - d) * (squared_norm - self.mean).powi(2);
        squared_norm >= self.mean + self.config.threshold(step) * self.var.sqrt()
    }

    fn save(&self, out: &mut RecordOut) {
        out.scalar(MEAN.into(), self.mean.to_bits());
        out.scalar(VAR.into(), self.var.to_bits());
    }

    fn load(&mut self, record: &mut RecordIn) -> Result<(), RecordError> {
        self.mean = f64::from_bits(record.uint(MEAN)?);
        self.var = f64::from_bits(record.uint(VAR)?);
        Ok(())
    }

    fn schema(&self) -> Schema {
        Schema {
            maps: Vec::new(),
            scalars: vec![MEAN.into(), VAR.into()],
        }
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberConfig;

    fn config() -> AeSamConfig {
        AeSamConfig::new().with_total_steps(100)
    }

    fn state(config: &AeSamConfig) -> AeSam {
        AeSam {
            config: config.clone(),
            mean: 0.0,
            var: 0.0,
        }
    }

    #[test]
    fn threshold_falls_linearly_from_lambda2_to_lambda1_and_stops_at_the_end() {
        let c = config();
        assert_eq!(c.threshold(0), 1.0);
        assert_eq!(c.threshold(50), 0.0);
        assert_eq!(c.threshold(100), -1.0);
        assert_eq!(c.threshold(1000), -1.0);
    }

    #[test]
    fn a_spike_in_the_gradient_norm_is_a_sam_step_and_a_calm_one_is_not() {
        let c = config().with_c_start(1.0);
        let mut s = state(&c);
        for _ in 0..50 {
            s.decide(10, 1.0);
        }
        assert!(!s.clone().decide(10, 0.5));
        assert!(s.clone().decide(10, 5.0));
        // The statistics follow their definition.
        let before = s.clone();
        let mut after = s.clone();
        after.decide(10, 5.0);
        let mean = 0.9 * before.mean + (1.0 - 0.9) * 5.0;
        assert_eq!(after.mean, mean);
        assert_eq!(after.var, 0.9 * before.var + (1.0 - 0.9) * (5.0 - mean).powi(2));
    }

    #[test]
    fn the_limits_of_the_threshold_are_sam_and_the_base_optimizer() {
        let mut sam = state(&config().with_c_start(-1e300).with_c_end(-1e300));
        let mut erm = state(&config().with_c_start(1e300).with_c_end(1e300));
        for (t, q) in [3.0, 1.0, 0.2, 7.0, 0.1].into_iter().enumerate() {
            assert!(sam.decide(t as u64, q));
            assert!(!erm.decide(t as u64, q));
        }
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(AeSamConfig::new().validate().unwrap_err().field, "ae_total_steps");
        assert_eq!(config().with_delta(1.0).validate().unwrap_err().field, "ae_delta");
        assert_eq!(config().with_c_end(f64::NAN).validate().unwrap_err().field, "ae_c_end");
    }
}
