//! Base optimizers with PyTorch's semantics, the last stage of every SAM step.
//!
//! They are written here rather than taken from `burn-optim` because the reference trajectories
//! depend on PyTorch's exact rules (momentum buffer seeded with the first gradient, dampening 0,
//! coefficients kept in `f64`), which Burn's optimizers differ from in small but measurable ways.

mod adam;
mod sgd;

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::Tensor;

pub use adam::AdamConfig;
pub use sgd::SgdConfig;

use crate::error::ConfigError;

/// Which base optimizer applies the combined gradient.
#[derive(Config, Debug, PartialEq)]
pub enum BaseConfig {
    /// `torch.optim.SGD`: momentum, dampening, Nesterov, L2 weight decay.
    Sgd(SgdConfig),
    /// `torch.optim.Adam`, or `torch.optim.AdamW` with decoupled weight decay.
    Adam(AdamConfig),
}

impl BaseConfig {
    /// Checks every hyperparameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BaseConfig::Sgd(c) => c.validate(),
            BaseConfig::Adam(c) => c.validate(),
        }
    }
}

/// Per-parameter state of the base optimizer (flat tensors, shaped like the parameter).
#[derive(Clone, Debug, Default)]
pub struct BaseState {
    /// SGD's momentum buffer.
    pub momentum: Option<Tensor<1>>,
    /// Adam's first moment.
    pub exp_avg: Option<Tensor<1>>,
    /// Adam's second moment.
    pub exp_avg_sq: Option<Tensor<1>>,
    /// How many updates this parameter has had (Adam's bias correction counts them).
    pub step: u64,
}

/// A base optimizer with its per-parameter state, keyed by parameter path.
#[derive(Clone, Debug)]
pub struct BaseOptimizer {
    config: BaseConfig,
    pub(crate) states: HashMap<String, BaseState>,
}

impl BaseOptimizer {
    /// A fresh optimizer (no state yet).
    pub fn new(config: BaseConfig) -> Self {
        Self {
            config,
            states: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BaseConfig {
        &self.config
    }

    /// One update of the parameter at `path` with gradient `grad`; the state is changed in
    /// `next` (the caller's, so that a step can be committed or dropped whole). A state buffer
    /// held only by `next` is updated in place.
    pub(crate) fn update(
        &self,
        next: &mut HashMap<String, BaseState>,
        path: &str,
        lr: f64,
        param: Tensor<1>,
        grad: Tensor<1>,
    ) -> Tensor<1> {
        if !next.contains_key(path) {
            next.insert(path.to_string(), BaseState::default());
        }
        let state = next.get_mut(path).expect("inserted");
        match &self.config {
            BaseConfig::Sgd(c) => c.update(lr, param, grad, state),
            BaseConfig::Adam(c) => c.update(lr, param, grad, state),
        }
    }
}
