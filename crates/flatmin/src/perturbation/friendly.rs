//! F-SAM: the perturbation follows the batch-specific part of the gradient only. An exponential
//! average `m` of past gradients (the "full gradient" estimate) is removed from `g`:
//! `d = g − σ·m` (docs/ALGORITHMS.md, F-SAM). The average is this method's state and lives here,
//! with its part of the optimizer's record.

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::Tensor;

use crate::bridge::Layout;
use crate::error::{ConfigError, check_non_negative, check_range};
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

impl FriendlyConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("sigma", self.sigma)?;
        check_range("lambda", self.lambda, 0.0, true, 1.0, false, "a number in [0, 1)")
    }
}

/// The EMA of past first-pass gradients, per parameter path.
#[derive(Clone, Debug, Default)]
pub(crate) struct FriendlyState {
    pub(crate) ema: HashMap<String, Tensor<1>>,
}

/// Record names of the EMA's tensors.
const PREFIX: &str = "ema/";

impl FriendlyState {
    /// The direction `g − σ·m` and the average after this step (committed with the step).
    pub(crate) fn direction(&self, config: &FriendlyConfig, layout: &Layout, g: &ParamVector) -> (ParamVector, Self) {
        let mut next = self.ema.clone();
        let d = g.map(|i, gi| {
            let path = &layout.entries[i].path;
            match self.ema.get(path) {
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
        (d, Self { ema: next })
    }

    /// The tensors of the record, sorted by path.
    pub(crate) fn record(&self) -> Vec<(String, &Tensor<1>)> {
        crate::record::path_entries(PREFIX, &self.ema)
    }

    /// Takes a record tensor if it belongs to this state; gives it back otherwise.
    pub(crate) fn load(&mut self, name: &str, value: Tensor<1>) -> Option<Tensor<1>> {
        crate::record::take_path_entry(PREFIX, &mut self.ema, name, value)
    }
}
