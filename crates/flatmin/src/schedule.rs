//! What changes from step to step: the perturbation radius ρ (constant, or tied to the learning
//! rate as in GSAM) and whether a step runs the second pass at all.

use burn::config::Config;

use crate::adaptive::AdaptiveConfig;
use crate::error::{ConfigError, check_non_negative, check_range};

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
            check_non_negative("lr_min", lr_min)?;
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
/// base step on the first-pass gradient `g` alone (with LookSAM, `g` plus the reused component).
/// The room where the methods that save passes decide: SAM every k steps (and LookSAM's k),
/// randomized sharpness training (RST / SS-SAM) and AE-SAM.
#[derive(Config, Debug, PartialEq)]
pub enum PassSchedule {
    /// Every step is a SAM step.
    Always,
    /// Steps 0, k, 2k, … are SAM steps, the others base steps (LookSAM's `k`; "SAM every k").
    Every {
        /// The period, ≥ 1 (1 is SAM).
        k: u64,
    },
    /// Randomized sharpness training (Zhao et al., 2022): each step is a SAM step with
    /// probability `p`. The draw of step `t` is the `t`-th output of a SplitMix64 stream seeded
    /// with `seed`, so it needs no state and a replay or a resumed run draws the same steps.
    Random {
        /// The probability of a SAM step, in [0, 1].
        probability: f64,
        /// The seed of the draws.
        seed: u64,
    },
    /// AE-SAM (Jiang et al., ICLR 2023): a SAM step when `‖g‖²` is large against its running
    /// statistics (see [`AdaptiveConfig`]). Decided after the first pass.
    Adaptive(AdaptiveConfig),
}

impl PassSchedule {
    /// Checks the schedule's hyperparameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            PassSchedule::Always => Ok(()),
            PassSchedule::Every { k } => {
                if *k == 0 {
                    Err(ConfigError::new(
                        "sam_every",
                        k,
                        "a whole number >= 1 (1: every step is a SAM step)",
                    ))
                } else {
                    Ok(())
                }
            }
            PassSchedule::Random { probability, .. } => check_range(
                "sam_probability",
                *probability,
                0.0,
                true,
                1.0,
                true,
                "a probability in [0, 1]",
            ),
            PassSchedule::Adaptive(c) => c.validate(),
        }
    }

    /// Whether step `step` (counted from 0, skipped steps not counted) runs the second pass,
    /// when that is known before the first pass; `None` when the schedule decides from the
    /// first-pass gradient (AE-SAM).
    pub(crate) fn decided_before(&self, step: u64) -> Option<bool> {
        match self {
            PassSchedule::Always => Some(true),
            PassSchedule::Every { k } => Some(step.is_multiple_of(*k)),
            PassSchedule::Random { probability, seed } => Some(uniform_at(*seed, step) < *probability),
            PassSchedule::Adaptive(_) => None,
        }
    }
}

/// The `index`-th output of the SplitMix64 stream seeded with `seed`, as a uniform number in
/// [0, 1) (53 bits).
pub fn uniform_at(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_k_runs_steps_0_k_2k() {
        let s = PassSchedule::Every { k: 3 };
        let runs: Vec<bool> = (0..7).map(|t| s.decided_before(t).unwrap()).collect();
        assert_eq!(runs, [true, false, false, true, false, false, true]);
        assert!(PassSchedule::Every { k: 0 }.validate().is_err());
    }

    #[test]
    fn random_draws_follow_p_and_the_limits_are_exact() {
        let half = PassSchedule::Random {
            probability: 0.5,
            seed: 3,
        };
        let runs = (0..10_000).filter(|&t| half.decided_before(t).unwrap()).count();
        assert!((runs as f64 / 10_000.0 - 0.5).abs() < 0.02, "{runs}");
        let always = PassSchedule::Random {
            probability: 1.0,
            seed: 3,
        };
        let never = PassSchedule::Random {
            probability: 0.0,
            seed: 3,
        };
        assert!((0..1000).all(|t| always.decided_before(t) == Some(true)));
        assert!((0..1000).all(|t| never.decided_before(t) == Some(false)));
        let other = PassSchedule::Random {
            probability: 0.5,
            seed: 4,
        };
        assert!((0..64).any(|t| half.decided_before(t) != other.decided_before(t)));
        assert!(
            PassSchedule::Random {
                probability: 1.5,
                seed: 0
            }
            .validate()
            .is_err()
        );
        assert!(
            PassSchedule::Random {
                probability: f64::NAN,
                seed: 0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn splitmix_stream_matches_its_definition() {
        // SplitMix64 seeded with 0: first output 0xE220A8397B1DCDAF.
        let expected = (0xE220_A839_7B1D_CDAFu64 >> 11) as f64 / (1u64 << 53) as f64;
        assert_eq!(uniform_at(0, 0), expected);
    }
}
