//! `torch.optim.SGD`: `d = g + wd·w`; `buf = d` on the first step, then
//! `buf = μ·buf + (1−dampening)·d`; `d = buf` (Nesterov: `d + μ·buf`); `w −= lr·d`.

use burn::config::Config;
use burn::tensor::Tensor;

use crate::error::{ConfigError, RecordError};
use crate::hyperparameter::{Declared, Range, check_all, declare};
use crate::record::{RecordIn, RecordOut};

/// Stochastic gradient descent with PyTorch's momentum convention (flatmin's base optimizer;
/// not Burn's `SgdConfig`, whose momentum differs).
#[derive(Config, Debug, PartialEq)]
pub struct SgdBaseConfig {
    /// Momentum factor μ (0 disables the buffer).
    #[config(default = 0.0)]
    pub momentum: f64,
    /// Dampening of the gradient added to the buffer (PyTorch's default 0).
    #[config(default = 0.0)]
    pub dampening: f64,
    /// Nesterov momentum.
    #[config(default = false)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient (`g + wd·w`).
    #[config(default = 0.0)]
    pub weight_decay: f64,
}

/// SGD's hyperparameters, with the key names of reference trajectories (`torch.optim.SGD`'s).
pub(crate) const HYPERPARAMETERS: &[Declared<SgdBaseConfig>] = &[
    declare!(number SgdBaseConfig, "momentum", "SGD's momentum factor", Range::FRACTION, momentum => .replay(&["momentum"])),
    declare!(number SgdBaseConfig, "dampening", "SGD's dampening", Range::PROBABILITY, dampening => .replay(&["dampening"])),
    declare!(switch SgdBaseConfig, "nesterov", "Nesterov momentum", nesterov => .replay(&["nesterov"])),
    declare!(number SgdBaseConfig, "weight_decay", "L2 weight decay added to the gradient", Range::NON_NEGATIVE, weight_decay => .replay(&["weight_decay"])),
];

impl SgdBaseConfig {
    /// Checks every hyperparameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_all(self, HYPERPARAMETERS)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(ConfigError::new(
                "nesterov",
                true,
                "momentum > 0 and dampening = 0 (PyTorch's rule for Nesterov momentum)",
            ));
        }
        Ok(())
    }

    /// One update; the weight decay is taken at `decay_at` when given (MSAM: the point the
    /// gradient was taken at), at `param` otherwise.
    pub(super) fn update(
        &self,
        lr: f64,
        param: Tensor<1>,
        grad: Tensor<1>,
        decay_at: Option<Tensor<1>>,
        state: &mut SgdBaseState,
    ) -> Tensor<1> {
        let mut d = grad;
        if self.weight_decay != 0.0 {
            d = d + decay_at.unwrap_or_else(|| param.clone()).mul_scalar(self.weight_decay);
        }
        if self.momentum != 0.0 {
            let buf = match state.momentum.take() {
                None => d.clone(),
                // `d·1` is `d` exactly: without dampening the product is skipped.
                Some(buf) if self.dampening == 0.0 => buf.mul_scalar(self.momentum) + d.clone(),
                Some(buf) => buf.mul_scalar(self.momentum) + d.clone().mul_scalar(1.0 - self.dampening),
            };
            d = if self.nesterov {
                d + buf.clone().mul_scalar(self.momentum)
            } else {
                buf.clone()
            };
            state.momentum = Some(buf);
        }
        state.step += 1;
        param - d.mul_scalar(lr)
    }
}

/// SGD's state of one parameter: the momentum buffer (none without momentum, or before the first
/// step) and the number of updates.
#[derive(Clone, Debug, Default)]
pub struct SgdBaseState {
    /// The momentum buffer `buf`, flat.
    pub momentum: Option<Tensor<1>>,
    /// How many updates this parameter has had.
    pub step: u64,
}

impl SgdBaseState {
    /// Writes this state under `prefix` (`base/<path>/`).
    pub(crate) fn save(&self, prefix: &str, out: &mut RecordOut) {
        if let Some(t) = &self.momentum {
            out.tensor(format!("{prefix}momentum"), t);
        }
        out.scalar(format!("{prefix}step"), self.step);
    }

    /// Reads the state written under `prefix`.
    pub(crate) fn load(prefix: &str, record: &mut RecordIn) -> Result<Self, RecordError> {
        Ok(Self {
            momentum: record.take_tensor(&format!("{prefix}momentum")),
            step: record.uint(&format!("{prefix}step"))?,
        })
    }
}
