//! `torch.optim.Adam` and `torch.optim.AdamW`, with PyTorch's operation order: bias-corrected
//! moments, `eps` added to `sqrt(v̂)`; AdamW first scales `w` by `1 − lr·wd` (or, as MSAM's
//! AdamW does, after the moment step).

use burn::config::Config;
use burn::tensor::Tensor;

use crate::error::{ConfigError, RecordError};
use crate::hyperparameter::{Declared, Range, check_all, declare};
use crate::record::{RecordIn, RecordOut};

/// Adam (L2 weight decay in the gradient) or AdamW (decoupled weight decay), flatmin's base
/// optimizer (not Burn's `AdamConfig`).
#[derive(Config, Debug, PartialEq)]
pub struct AdamBaseConfig {
    /// β1, the first-moment decay.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// β2, the second-moment decay.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// Added to `sqrt(v̂)`.
    #[config(default = 1e-8)]
    pub eps: f64,
    /// Weight decay: added to the gradient (Adam) or applied to the weights (AdamW).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// AdamW: decay the weights directly instead of adding `wd·w` to the gradient.
    #[config(default = false)]
    pub decoupled_weight_decay: bool,
    /// AdamW's decay applied after the moment step, `w ← (w − step)·(1 − lr·wd)`, as the MSAM
    /// authors' AdamW does, instead of before it (PyTorch's order).
    #[config(default = false)]
    pub decay_after_step: bool,
}

/// Adam's hyperparameters, with the key names of reference trajectories (`betas` is read as
/// its two parts).
pub(crate) const HYPERPARAMETERS: &[Declared<AdamBaseConfig>] = &[
    declare!(number AdamBaseConfig, "beta1", "Adam's β1", Range::FRACTION, beta1),
    declare!(number AdamBaseConfig, "beta2", "Adam's β2", Range::FRACTION, beta2),
    declare!(number AdamBaseConfig, "adam_eps", "Added to Adam's sqrt(v̂)", Range::POSITIVE, eps => .replay(&["eps"])),
    declare!(number AdamBaseConfig, "weight_decay", "Adam's weight decay", Range::NON_NEGATIVE, weight_decay => .replay(&["weight_decay"])),
];

impl AdamBaseConfig {
    /// Checks every hyperparameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_all(self, HYPERPARAMETERS)
    }

    /// One update; an L2 weight decay (in the gradient) is taken at `decay_at` when given (MSAM:
    /// the point the gradient was taken at), at `param` otherwise. A decoupled decay scales
    /// `param` itself.
    pub(super) fn update(
        &self,
        lr: f64,
        mut param: Tensor<1>,
        grad: Tensor<1>,
        decay_at: Option<Tensor<1>>,
        state: &mut AdamBaseState,
    ) -> Tensor<1> {
        let mut g = grad;
        let decay_after = self.weight_decay != 0.0 && self.decoupled_weight_decay && self.decay_after_step;
        if self.weight_decay != 0.0 && !decay_after {
            if self.decoupled_weight_decay {
                param = param.mul_scalar(1.0 - lr * self.weight_decay);
            } else {
                g = g + decay_at.unwrap_or_else(|| param.clone()).mul_scalar(self.weight_decay);
            }
        }
        state.step += 1;
        let t = state.step as i32;
        // m ← lerp(m, g, 1 − β1), as PyTorch writes it (weight < 0.5: m + w·(g − m)).
        let weight = 1.0 - self.beta1;
        let m = match state.exp_avg.take() {
            None => g.clone().mul_scalar(weight),
            Some(m) if weight < 0.5 => m.clone() + (g.clone() - m).mul_scalar(weight),
            Some(m) => g.clone() - (g.clone() - m).mul_scalar(1.0 - weight),
        };
        let v = match state.exp_avg_sq.take() {
            None => (g.clone() * g).mul_scalar(1.0 - self.beta2),
            Some(v) => v.mul_scalar(self.beta2) + (g.clone() * g).mul_scalar(1.0 - self.beta2),
        };
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        let step_size = lr / bias1;
        let denom = v.clone().sqrt().div_scalar(bias2_sqrt).add_scalar(self.eps);
        let mut updated = param - (m.clone() / denom).mul_scalar(step_size);
        if decay_after {
            updated = updated.mul_scalar(1.0 - lr * self.weight_decay);
        }
        state.exp_avg = Some(m);
        state.exp_avg_sq = Some(v);
        updated
    }
}

/// Adam's state of one parameter: the two moments and the step count of the bias correction.
#[derive(Clone, Debug, Default)]
pub struct AdamBaseState {
    /// The first moment `m`, flat.
    pub exp_avg: Option<Tensor<1>>,
    /// The second moment `v`, flat.
    pub exp_avg_sq: Option<Tensor<1>>,
    /// How many updates this parameter has had (the bias correction counts them).
    pub step: u64,
}

impl AdamBaseState {
    /// Writes this state under `prefix` (`base/<path>/`).
    pub(crate) fn save(&self, prefix: &str, out: &mut RecordOut) {
        if let Some(t) = &self.exp_avg {
            out.tensor(format!("{prefix}exp_avg"), t);
        }
        if let Some(t) = &self.exp_avg_sq {
            out.tensor(format!("{prefix}exp_avg_sq"), t);
        }
        out.scalar(format!("{prefix}step"), self.step);
    }

    /// Reads the state written under `prefix`.
    pub(crate) fn load(prefix: &str, record: &mut RecordIn) -> Result<Self, RecordError> {
        Ok(Self {
            exp_avg: record.take_tensor(&format!("{prefix}exp_avg")),
            exp_avg_sq: record.take_tensor(&format!("{prefix}exp_avg_sq")),
            step: record.uint(&format!("{prefix}step"))?,
        })
    }
}
