//! The perturbation radius ρ at each step: constant, or tied to the learning rate (GSAM).

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
