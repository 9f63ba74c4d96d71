//! F-SAM (Li, Zhou, He, Cheng, Huang, "Friendly Sharpness-Aware Minimization",
//! CVPR 2024; the crate's ALGORITHMS.md §5): the perturbation follows the batch-specific part of the
//! gradient only. An exponential average `m` of past gradients (the "full gradient" estimate) is
//! removed from `g`: `d = g − σ·m`, then `m = λ·m + (1−λ)·g` (the official order; step 0 is SAM
//! and sets `m = g`).

use burn::config::Config;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{member_config, MemberHooks, StepInfo};
use crate::param_map::ParamMap;
use crate::vector::ParamVector;

/// F-SAM's removal of the full-gradient component.
#[derive(Config, Debug, PartialEq)]
pub struct FriendlyConfig {
    /// σ: how much of the EMA is removed (`d = g − σ·m`).
    #[config(default = 1.0)]
    pub sigma: f64,
    /// λ: the EMA's decay (`m = λ·m + (1−λ)·g`).
    #[config(default = 0.9)]
    pub lambda: f64,
    /// Update the EMA before subtracting it (the paper's literal reading) instead of after
    /// (the official code, the default).
    #[config(default = false)]
    pub update_then_subtract: bool,
}

const HYPERPARAMETERS: &[Declared<FriendlyConfig>] = &[
    declare!(number FriendlyConfig, "fsam_sigma", "F-SAM's σ", Range::NON_NEGATIVE, sigma => .replay(&["sigma"])),
    declare!(number FriendlyConfig, "fsam_lambda", "F-SAM's λ", Range::FRACTION, lambda => .replay(&["lmbda"])),
];

member_config! {
    impl FriendlyConfig as "fsam" in Direction with HYPERPARAMETERS, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Friendly {
            config: self.clone(),
            ema: ParamMap::new("ema/", "F-SAM's EMA"),
        })
    }
}

/// F-SAM's state: the EMA of past first-pass gradients, per parameter path (recorded as
/// `ema/<path>`).
#[derive(Clone)]
pub(crate) struct Friendly {
    config: FriendlyConfig,
    ema: ParamMap,
}

impl MemberHooks for Friendly {

    fn direction(&mut self, info: &StepInfo, g: &ParamVector) -> Option<ParamVector> {
        let config = &self.config;
        let mut next = self.ema.tensors.clone();
        let d = g.map(|i, gi| {
            let path = &info.layout.entries[i].path;
            match self.ema.tensors.get(path) {
                None => {
                    next.insert(path.clone(), gi.clone());
                    gi.clone()
                }
                Some(m) => {
                    let updated = m.clone().mul_scalar(config.lambda) + gi.clone().mul_scalar(1.0 - config.lambda);
                    let removed = if config.update_then_subtract {
                        updated.clone()
                    } else {
                        m.clone()
                    };
                    next.insert(path.clone(), updated);
                    gi.clone() - removed.mul_scalar(config.sigma)
                }
            }
        });
        self.ema.tensors = next;
        Some(d)
    }

    fn e_along_g(&self) -> bool {
        false
    }

    fn param_map(&self) -> Option<&ParamMap> {
        Some(&self.ema)
    }

    fn param_map_mut(&mut self) -> Option<&mut ParamMap> {
        Some(&mut self.ema)
    }

}
