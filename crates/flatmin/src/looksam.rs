//! LookSAM (Liu, Mai, Chen, Hsieh, You, "Towards Efficient and Scalable Sharpness-Aware
//! Minimization", CVPR 2022): the SAM steps of a schedule store the part of `g_p` that is
//! orthogonal to `g`, and the steps without a second pass reuse it (docs/ALGORITHMS.md, LookSAM).
//!
//! At a SAM step, `g_v = g_p − (g·g_p / ‖g‖²)·g` (equal to the paper's
//! `g_s − ‖g_s‖·cos(g, g_s)·g/‖g‖`). At a step without a second pass the base optimizer gets
//! `g + α·(‖g‖ / (‖g_v‖ + eps_norm))·g_v`: one forward-backward pass. Which steps are SAM steps is
//! the schedule's choice (every `k` steps in the paper, [`crate::PassSchedule::Every`]); with
//! every step a SAM step LookSAM is SAM.
//!
//! The vectors are global (the paper) or taken tensor by tensor (`per_tensor`, the layer-wise
//! form, as pytorch_optimizer's `LookSAM` does).

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::Tensor;

use crate::bridge::Layout;
use crate::error::{ConfigError, check_non_negative};
use crate::vector::{self, ParamVector, read};

/// LookSAM's reuse of the sharpness direction on the steps without a second pass.
#[derive(Config, Debug, PartialEq)]
pub struct LookSamConfig {
    /// α, the weight of the reused component.
    #[config(default = 0.7)]
    pub alpha: f64,
    /// Norms and projections per parameter tensor instead of over the whole gradient.
    #[config(default = false)]
    pub per_tensor: bool,
    /// Added to `‖g_v‖` in the denominator (pytorch_optimizer's 1e-8).
    #[config(default = 1e-8)]
    pub eps_norm: f64,
}

impl LookSamConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_non_negative("looksam_alpha", self.alpha)?;
        check_non_negative("looksam_eps_norm", self.eps_norm)
    }
}

/// The stored `g_v` of the last SAM step, per parameter path.
#[derive(Clone, Debug, Default)]
pub(crate) struct LookState {
    pub(crate) gv: HashMap<String, Tensor<1>>,
}

/// Record names of `g_v`'s tensors.
const PREFIX: &str = "looksam/";

impl LookState {
    /// The state after a SAM step with first-pass gradient `g` and second-pass gradient `gp`.
    /// Tensors `g` lacks (ESAM's mask) keep their stored `g_v`.
    pub(crate) fn stored(&self, config: &LookSamConfig, layout: &Layout, g: &ParamVector, gp: &ParamVector) -> Self {
        let mut next = self.gv.clone();
        let pairs: Vec<(usize, &Tensor<1>, &Tensor<1>)> = (0..layout.len())
            .filter_map(|i| Some((i, g.get(i)?, gp.get(i)?)))
            .collect();
        let coefficients: Vec<f64> = if config.per_tensor {
            let mut sums = Vec::new();
            for (_, gi, gpi) in &pairs {
                sums.push(Some(vector::dot(gi, gpi)));
                sums.push(Some(vector::dot(gi, gi)));
            }
            read(sums)
                .chunks(2)
                .map(|c| if c[1] > 0.0 { c[0] / c[1] } else { 0.0 })
                .collect()
        } else {
            let sums = read(vec![g.dot_lazy(gp), g.squared_norm_lazy()]);
            let c = if sums[1] > 0.0 { sums[0] / sums[1] } else { 0.0 };
            vec![c; pairs.len()]
        };
        for ((i, gi, gpi), c) in pairs.into_iter().zip(coefficients) {
            next.insert(layout.entries[i].path.clone(), gpi.clone() - gi.clone().mul_scalar(c));
        }
        Self { gv: next }
    }

    /// What the base optimizer gets at a step without a second pass: `g` plus the reused
    /// component (`g` alone before the first SAM step stored one).
    pub(crate) fn reused(&self, config: &LookSamConfig, layout: &Layout, g: &ParamVector) -> ParamVector {
        let gv: Vec<Option<&Tensor<1>>> = (0..layout.len())
            .map(|i| {
                if g.has(i) {
                    self.gv.get(&layout.entries[i].path)
                } else {
                    None
                }
            })
            .collect();
        let present: Vec<usize> = (0..layout.len()).filter(|&i| gv[i].is_some()).collect();
        if present.is_empty() {
            return g.clone();
        }
        let scales: HashMap<usize, f64> = if config.per_tensor {
            let mut sums = Vec::new();
            for &i in &present {
                let (gi, vi) = (g.get(i).expect("present"), gv[i].expect("present"));
                sums.push(Some(vector::dot(gi, gi)));
                sums.push(Some(vector::dot(vi, vi)));
            }
            let values = read(sums);
            present
                .iter()
                .zip(values.chunks(2))
                .map(|(&i, c)| (i, config.alpha * c[0].sqrt() / (c[1].sqrt() + config.eps_norm)))
                .collect()
        } else {
            let g_sq = g.squared_norm_lazy();
            let v_sq = vector::sum(present.iter().map(|&i| gv[i].map(|v| vector::dot(v, v))).collect());
            let values = read(vec![g_sq, v_sq]);
            let scale = config.alpha * values[0].sqrt() / (values[1].sqrt() + config.eps_norm);
            present.iter().map(|&i| (i, scale)).collect()
        };
        g.map(|i, gi| match (gv[i], scales.get(&i)) {
            (Some(v), Some(&s)) => gi.clone() + v.clone().mul_scalar(s),
            _ => gi.clone(),
        })
    }

    /// The tensors of the record, sorted by path.
    pub(crate) fn record(&self) -> Vec<(String, &Tensor<1>)> {
        crate::record::path_entries(PREFIX, &self.gv)
    }

    /// Takes a record tensor if it belongs to this state; gives it back otherwise.
    pub(crate) fn load(&mut self, name: &str, value: Tensor<1>) -> Option<Tensor<1>> {
        crate::record::take_path_entry(PREFIX, &mut self.gv, name, value)
    }
}
