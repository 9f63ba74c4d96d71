//! AE-SAM (Jiang, Yang, Zhang, Kwok, "An Adaptive Policy to Employ Sharpness-Aware
//! Minimization", ICLR 2023): a SAM step only where the loss surface looks sharp, judged by the
//! squared norm of the first-pass gradient against its running statistics
//! (docs/ALGORITHMS.md, AE-SAM).
//!
//! Each step, with `q = ‖g‖²`:
//! `μ ← δ·μ + (1−δ)·q`, `σ² ← δ·σ² + (1−δ)·(q − μ)²` (from `μ = σ² = 0`), then a SAM step iff
//! `q ≥ μ + c_t·σ`, where the threshold `c_t = c_start + (c_end − c_start)·t/T` moves linearly
//! over the `T` steps of training (and stays at `c_end` after them). A low `c_start` makes SAM
//! frequent early, a high `c_end` rare late.

use burn::config::Config;

use crate::error::{ConfigError, check_finite, check_range};

/// AE-SAM's policy.
#[derive(Config, Debug, PartialEq)]
pub struct AdaptiveConfig {
    /// δ, the decay of the running mean and variance of `‖g‖²`.
    #[config(default = 0.9)]
    pub delta: f64,
    /// λ₁, the threshold `c` at the first step.
    #[config(default = -1.0)]
    pub c_start: f64,
    /// λ₂, the threshold `c` at the last step.
    #[config(default = 1.0)]
    pub c_end: f64,
    /// T, the number of steps of the training run, over which `c` moves (required, ≥ 1).
    #[config(default = 0)]
    pub total_steps: u64,
}

impl AdaptiveConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_range("ae_delta", self.delta, 0.0, true, 1.0, false, "a number in [0, 1)")?;
        check_finite("ae_c_start", self.c_start)?;
        check_finite("ae_c_end", self.c_end)?;
        if self.total_steps == 0 {
            return Err(ConfigError::new(
                "ae_total_steps",
                self.total_steps,
                "the number of steps of the training run (>= 1), over which AE-SAM's threshold moves",
            ));
        }
        Ok(())
    }

    /// The threshold `c_t` at step `step`.
    pub fn threshold(&self, step: u64) -> f64 {
        let fraction = (step as f64 / self.total_steps.max(1) as f64).min(1.0);
        self.c_start + (self.c_end - self.c_start) * fraction
    }
}

/// The running mean and variance of `‖g‖²`, committed with each step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct AdaptiveState {
    pub(crate) mean: f64,
    pub(crate) var: f64,
}

/// AE-SAM's decision at one step: whether to run the second pass and the statistics after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decision {
    pub(crate) second_pass: bool,
    pub(crate) next: AdaptiveState,
}

impl AdaptiveState {
    /// The statistics updated with `squared_norm = ‖g‖²` and the decision at step `step`.
    pub(crate) fn decide(&self, config: &AdaptiveConfig, step: u64, squared_norm: f64) -> Decision {
        let d = config.delta;
        let mean = d * self.mean + (1.0 - d) * squared_norm;
        let var = d * self.var + (1.0 - d) * (squared_norm - mean).powi(2);
        let next = AdaptiveState { mean, var };
        Decision {
            second_pass: squared_norm >= mean + config.threshold(step) * var.sqrt(),
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdaptiveConfig {
        AdaptiveConfig::new().with_total_steps(100)
    }

    #[test]
    fn threshold_moves_linearly_and_stops_at_the_end() {
        let c = config();
        assert_eq!(c.threshold(0), -1.0);
        assert_eq!(c.threshold(50), 0.0);
        assert_eq!(c.threshold(100), 1.0);
        assert_eq!(c.threshold(1000), 1.0);
    }

    #[test]
    fn a_spike_in_the_gradient_norm_is_a_sam_step_and_a_calm_one_is_not() {
        let c = config().with_c_start(1.0);
        let mut state = AdaptiveState::default();
        for _ in 0..50 {
            state = state.decide(&c, 10, 1.0).next;
        }
        assert!(!state.decide(&c, 10, 0.5).second_pass);
        assert!(state.decide(&c, 10, 5.0).second_pass);
        // The statistics follow their definition.
        let d = state.decide(&c, 10, 5.0).next;
        let mean = 0.9 * state.mean + (1.0 - 0.9) * 5.0;
        assert_eq!(d.mean, mean);
        assert_eq!(d.var, 0.9 * state.var + (1.0 - 0.9) * (5.0 - mean).powi(2));
    }

    #[test]
    fn the_limits_of_the_threshold_are_sam_and_the_base_optimizer() {
        let sam = config().with_c_start(-1e300).with_c_end(-1e300);
        let erm = config().with_c_start(1e300).with_c_end(1e300);
        let mut s = AdaptiveState::default();
        let mut e = AdaptiveState::default();
        for (t, q) in [3.0, 1.0, 0.2, 7.0, 0.1].into_iter().enumerate() {
            let ds = s.decide(&sam, t as u64, q);
            let de = e.decide(&erm, t as u64, q);
            assert!(ds.second_pass);
            assert!(!de.second_pass);
            (s, e) = (ds.next, de.next);
        }
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(AdaptiveConfig::new().validate().unwrap_err().field, "ae_total_steps");
        assert_eq!(config().with_delta(1.0).validate().unwrap_err().field, "ae_delta");
        assert_eq!(config().with_c_end(f64::NAN).validate().unwrap_err().field, "ae_c_end");
    }
}
