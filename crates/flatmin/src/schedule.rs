//! What changes from step to step: the perturbation radius ρ (constant, or tied to the learning
//! rate as in GSAM) and whether a step runs the second pass at all.

use burn::config::Config;

use crate::error::{ConfigError, check_range};

/// How ρ follows the learning rate.
#[derive(Config, Debug, PartialEq)]
pub enum RhoSchedule {
    /// ρ is the configured `rho` at every step.
    Constant,
    /// GSAM's `ProportionScheduler`: `ρ_t = ρ_min + (ρ − ρ_min)·(lr_t − lr_min)/(lr_max − lr_min)`,
    /// with the configured `rho` as ρ_max. With `lr_max == lr_min`, ρ_t is `rho`.
    ProportionalToLr {
        /// ρ at the smallest learning rate.
        rho_min: f64,
        /// The largest learning rate of the schedule.
        lr_max: f64,
        /// The smallest learning rate of the schedule.
        lr_min: f64,
    },
}

impl RhoSchedule {
    /// ρ at learning rate `lr`, given ρ_max = `rho`.
    pub fn rho_at(&self, rho: f64, lr: f64) -> f64 {
        match *self {
            RhoSchedule::Constant => rho,
            RhoSchedule::ProportionalToLr {
                rho_min,
                lr_max,
                lr_min,
            } => {
                if lr_max == lr_min {
                    rho
                } else {
                    rho_min + (rho - rho_min) * (lr - lr_min) / (lr_max - lr_min)
                }
            }
        }
    }

    /// Checks the schedule against ρ_max = `rho`.
    pub fn validate(&self, rho: f64) -> Result<(), ConfigError> {
        if let RhoSchedule::ProportionalToLr {
            rho_min,
            lr_max,
            lr_min,
        } = *self
        {
            check_range("rho_min", rho_min, 0.0, true, rho, true, "a number in [0, rho]")?;
            check_range(
                "lr_min",
                lr_min,
                0.0,
                true,
                f64::INFINITY,
                false,
                "a finite number >= 0",
            )?;
            check_range(
                "lr_max",
                lr_max,
                lr_min,
                true,
                f64::INFINITY,
                false,
                "a finite number >= lr_min",
            )?;
            if lr_max == lr_min && rho_min != rho {
                return Err(ConfigError::new(
                    "rho_min",
                    rho_min,
                    "equal to rho when lr_max == lr_min (both ranges degenerate, as GSAM requires)",
                ));
            }
        }
        Ok(())
    }
}

/// Whether a step runs SAM's second pass (the ascent to `w + e` and the gradient there) or is a
/// base step on the first-pass gradient `g` alone. The room where methods that save passes
/// (SAM every k steps, randomized sharpness training, AE-SAM, LookSAM) decide.
#[derive(Config, Debug, PartialEq)]
pub enum PassSchedule {
    /// Every step is a SAM step (every published member of the family so far).
    Always,
}

impl PassSchedule {
    /// Checks the schedule's hyperparameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            PassSchedule::Always => Ok(()),
        }
    }

    /// Whether step `step` (counted from 0, skipped steps not counted) runs the second pass.
    pub(crate) fn runs_second_pass(&self, _step: u64) -> bool {
        match self {
            PassSchedule::Always => true,
        }
    }
}
