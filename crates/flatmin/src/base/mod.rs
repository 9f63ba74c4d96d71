//! Base optimizers with PyTorch's semantics, the last stage of every SAM step. One file per
//! optimizer, each with its per-parameter state and that state's part of the record.
//!
//! They are written here rather than taken from `burn-optim` because the reference trajectories
//! depend on PyTorch's exact rules (momentum buffer seeded with the first gradient, dampening 0,
//! coefficients kept in `f64`), which Burn's optimizers differ from in small but measurable ways.
//! (A member that is its own base optimizer, bSAM, keeps its rule in its own file.)

mod adam;
mod sgd;

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::Tensor;

pub(crate) use adam::HYPERPARAMETERS as ADAM_HYPERPARAMETERS;
pub use adam::{AdamBaseConfig, AdamBaseState};
pub(crate) use sgd::HYPERPARAMETERS as SGD_HYPERPARAMETERS;
pub use sgd::{SgdBaseConfig, SgdBaseState};

use crate::error::{ConfigError, RecordError};
use crate::member::BaseView;
use crate::record::{RecordIn, RecordOut};

/// Which base optimizer applies the combined gradient.
#[derive(Config, Debug, PartialEq)]
pub enum BaseConfig {
    /// `torch.optim.SGD`: momentum, dampening, Nesterov, L2 weight decay.
    Sgd(SgdBaseConfig),
    /// `torch.optim.Adam`, or `torch.optim.AdamW` with decoupled weight decay.
    Adam(AdamBaseConfig),
}

impl BaseConfig {
    /// Checks every hyperparameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BaseConfig::Sgd(c) => c.validate(),
            BaseConfig::Adam(c) => c.validate(),
        }
    }

    /// How many buffers of each parameter's size the optimizer keeps (for memory estimates).
    pub fn buffers_per_parameter(&self) -> u64 {
        match self {
            BaseConfig::Sgd(s) => u64::from(s.momentum != 0.0),
            BaseConfig::Adam(_) => 2,
        }
    }
}

/// Per-parameter state of the base optimizer, the configured optimizer's own.
#[derive(Clone, Debug)]
pub enum BaseState {
    /// SGD's momentum buffer and step count (boxed, as Adam's: a Burn tensor handle is large).
    Sgd(Box<SgdBaseState>),
    /// Adam's moments and step count.
    Adam(Box<AdamBaseState>),
}

impl BaseState {
    /// The state's tensors, named (a check that they fit the model reads them).
    pub fn buffers(&self) -> Vec<(&'static str, &Tensor<1>)> {
        let named = match self {
            BaseState::Sgd(s) => vec![("momentum", &s.momentum)],
            BaseState::Adam(s) => vec![("exp_avg", &s.exp_avg), ("exp_avg_sq", &s.exp_avg_sq)],
        };
        named
            .into_iter()
            .filter_map(|(n, t)| t.as_ref().map(|t| (n, t)))
            .collect()
    }
}

/// A base optimizer with its per-parameter state, keyed by parameter path.
#[derive(Clone, Debug)]
pub(crate) struct BaseOptimizer {
    config: BaseConfig,
    pub(crate) states: HashMap<String, BaseState>,
}

/// Record names: `base/<parameter path>/<field>`.
pub(crate) const PREFIX: &str = "base/";

impl BaseOptimizer {
    /// A fresh optimizer (no state yet).
    pub(crate) fn new(config: BaseConfig) -> Self {
        Self {
            config,
            states: HashMap::new(),
        }
    }

    /// One update of the parameter at `path` with gradient `grad` (an L2 weight decay taken at
    /// `decay_at` when given); the state is changed in
    /// `next` (the caller's, so that a step can be committed or dropped whole). A state buffer
    /// held only by `next` is updated in place.
    pub(crate) fn update(
        &self,
        next: &mut HashMap<String, BaseState>,
        path: &str,
        lr: f64,
        param: Tensor<1>,
        grad: Tensor<1>,
        decay_at: Option<Tensor<1>>,
    ) -> Tensor<1> {
        if !next.contains_key(path) {
            let fresh = match &self.config {
                BaseConfig::Sgd(_) => BaseState::Sgd(Box::default()),
                BaseConfig::Adam(_) => BaseState::Adam(Box::default()),
            };
            next.insert(path.to_string(), fresh);
        }
        match (&self.config, next.get_mut(path).expect("inserted")) {
            (BaseConfig::Sgd(c), BaseState::Sgd(state)) => c.update(lr, param, grad, decay_at, state),
            (BaseConfig::Adam(c), BaseState::Adam(state)) => c.update(lr, param, grad, decay_at, state),
            _ => unreachable!("states are created by the configured optimizer"),
        }
    }

    /// Writes every parameter's state, sorted by path.
    pub(crate) fn save(&self, out: &mut RecordOut) {
        let mut paths: Vec<&String> = self.states.keys().collect();
        paths.sort();
        for path in paths {
            let prefix = format!("{PREFIX}{path}/");
            match &self.states[path] {
                BaseState::Sgd(s) => s.save(&prefix, out),
                BaseState::Adam(s) => s.save(&prefix, out),
            }
        }
    }

    /// Reads the state of every parameter the record holds (each has a `step`), as the
    /// configured optimizer's.
    pub(crate) fn load(&mut self, record: &mut RecordIn) -> Result<(), RecordError> {
        let mut states = HashMap::new();
        for path in record.scalar_groups(PREFIX, "/step") {
            let prefix = format!("{PREFIX}{path}/");
            let state = match &self.config {
                BaseConfig::Sgd(_) => BaseState::Sgd(Box::new(SgdBaseState::load(&prefix, record)?)),
                BaseConfig::Adam(_) => BaseState::Adam(Box::new(AdamBaseState::load(&prefix, record)?)),
            };
            states.insert(path, state);
        }
        self.states = states;
        Ok(())
    }
}

impl BaseView for BaseOptimizer {
    fn first_moment(&self, path: &str) -> Option<&Tensor<1>> {
        match self.states.get(path)? {
            BaseState::Sgd(s) => s.momentum.as_ref(),
            BaseState::Adam(s) => s.exp_avg.as_ref(),
        }
    }

    fn gradient_weight_decay(&self) -> f64 {
        match &self.config {
            BaseConfig::Sgd(s) => s.weight_decay,
            BaseConfig::Adam(a) if !a.decoupled_weight_decay => a.weight_decay,
            BaseConfig::Adam(_) => 0.0,
        }
    }
}
