//! LookSAM (Liu, Mai, Chen, Hsieh, You, "Towards Efficient and Scalable Sharpness-Aware
//! Minimization", CVPR 2022; the crate's ALGORITHMS.md §13.4): the SAM steps of a schedule store the
//! part of `g_p` that is orthogonal to `g`, and the steps without a second pass reuse it.
//!
//! At a SAM step, `g_v = g_p − (g·g_p / ‖g‖²)·g` (equal to the paper's
//! `g_s − ‖g_s‖·cos(g, g_s)·g/‖g‖`). At a step without a second pass the base optimizer gets
//! `g + α·(‖g‖ / (‖g_v‖ + eps_norm))·g_v`: one forward-backward pass. Which steps are SAM steps is
//! the schedule's choice (every `k` steps in the paper, [`crate::EveryConfig`]); with every step a
//! SAM step LookSAM is SAM.
//!
//! The vectors are global (the paper) or taken tensor by tensor (`per_tensor`, the layer-wise
//! form, as pytorch_optimizer's `LookSAM` does).

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::Tensor;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{member_config, MemberHooks, Room, StepInfo};
use crate::param_map::ParamMap;
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

const HYPERPARAMETERS: &[Declared<LookSamConfig>] = &[
    declare!(
        number LookSamConfig, "looksam_alpha",
        "LookSAM's α (turns LookSAM on; its k is --sam-every, 5 unless the preset or that flag says)",
        Range::NON_NEGATIVE, alpha => .replay(&["alpha"])),
    declare!(
        switch LookSamConfig, "looksam_per_tensor",
        "LookSAM's layer-wise form: norms and projections per parameter tensor (turns LookSAM on)", per_tensor => .replay(&["per_tensor"])),
    declare!(
        number LookSamConfig, "looksam_eps_norm", "LookSAM's eps added to ‖g_v‖ (turns LookSAM on)",
        Range::NON_NEGATIVE, eps_norm => .replay(&["gv_eps"])),
];

member_config! {
    impl LookSamConfig as "looksam" in Reuse with HYPERPARAMETERS, fresh(_) = Self::new();

    const REQUIRES: Option<(Room, &'static str)> = Some((
        Room::Schedule,
        "a member: LookSAM reuses its direction on the steps a schedule leaves without a second pass",
    ));
    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(LookSam {
            config: self.clone(),
            gv: ParamMap::new("looksam/", "LookSAM's g_v"),
        })
    }
}

/// LookSAM's stored `g_v` of the last SAM step, per parameter path (recorded as
/// `looksam/<path>`).
#[derive(Clone)]
pub(crate) struct LookSam {
    config: LookSamConfig,
    gv: ParamMap,
}

impl MemberHooks for LookSam {

    fn needs_g_later(&self) -> bool {
        true
    }

    /// `g` plus the reused component (`g` alone before the first SAM step stored one).
    fn base_gradient(&self, info: &StepInfo, g: &ParamVector) -> Option<ParamVector> {
        let config = &self.config;
        let layout = info.layout;
        let gv: Vec<Option<&Tensor<1>>> = (0..layout.len())
            .map(|i| {
                if g.has(i) {
                    self.gv.tensors.get(&layout.entries[i].path)
                } else {
                    None
                }
            })
            .collect();
        let present: Vec<usize> = (0..layout.len()).filter(|&i| gv[i].is_some()).collect();
        if present.is_empty() {
            return None;
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
        Some(g.map(|i, gi| match (gv[i], scales.get(&i)) {
            (Some(v), Some(&s)) => gi.clone() + v.clone().mul_scalar(s),
            _ => gi.clone(),
        }))
    }

    /// Stores `g_v` from a SAM step's `g` and `g_p`. Tensors `g` lacks (ESAM's mask) keep their
    /// stored `g_v`.
    fn after_second_pass(&mut self, info: &StepInfo, g: &ParamVector, gp: &ParamVector) {
        let layout = info.layout;
        let pairs: Vec<(usize, &Tensor<1>, &Tensor<1>)> = (0..layout.len())
            .filter_map(|i| Some((i, g.get(i)?, gp.get(i)?)))
            .collect();
        let coefficients: Vec<f64> = if self.config.per_tensor {
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
            self.gv
                .tensors
                .insert(layout.entries[i].path.clone(), gpi.clone() - gi.clone().mul_scalar(c));
        }
    }

    fn param_map(&self) -> Option<&ParamMap> {
        Some(&self.gv)
    }

    fn param_map_mut(&mut self) -> Option<&mut ParamMap> {
        Some(&mut self.gv)
    }

}
