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
use std::sync::Arc;

use burn::config::Config;
use burn::tensor::Tensor;

pub(crate) use adam::HYPERPARAMETERS as ADAM_HYPERPARAMETERS;
pub use adam::{AdamBaseConfig, AdamBaseState};
pub(crate) use sgd::HYPERPARAMETERS as SGD_HYPERPARAMETERS;
pub use sgd::{SgdBaseConfig, SgdBaseState};

use crate::bridge::Layout;
use crate::error::{ConfigError, RecordError};
use crate::member::BaseView;
use crate::record::{RecordIn, RecordOut};
use crate::vector::{ParamVector, Segments};

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

    /// The step count and the buffers (SGD: the momentum; Adam: its two moments), in order.
    fn parts(&self) -> (u64, Vec<Option<&Tensor<1>>>) {
        match self {
            BaseState::Sgd(s) => (s.step, vec![s.momentum.as_ref()]),
            BaseState::Adam(s) => (s.step, vec![s.exp_avg.as_ref(), s.exp_avg_sq.as_ref()]),
        }
    }

    /// A state of this one's kind made of a step count and buffers in [`BaseState::parts`]' order.
    fn with_parts(&self, step: u64, buffers: Vec<Option<Tensor<1>>>) -> Self {
        let mut buffers = buffers.into_iter();
        let mut next = || buffers.next().flatten();
        match self {
            BaseState::Sgd(_) => BaseState::Sgd(Box::new(SgdBaseState { momentum: next(), step })),
            BaseState::Adam(_) => BaseState::Adam(Box::new(AdamBaseState {
                exp_avg: next(),
                exp_avg_sq: next(),
                step,
            })),
        }
    }

    /// The state of the parameter at `start..start + len` of a joined state (views).
    fn view(&self, start: usize, len: usize) -> Self {
        let (step, buffers) = self.parts();
        let cut = buffers
            .into_iter()
            .map(|t| t.map(|t| t.clone().slice(start..start + len)))
            .collect();
        self.with_parts(step, cut)
    }
}

/// The state of every parameter as one buffer per kind, from the last update over joined
/// buffers ([`BaseOptimizer::update_joined`]); the per-parameter states are its views.
#[derive(Clone, Debug)]
struct JoinedState {
    segments: Arc<Segments>,
    state: BaseState,
}

/// A base optimizer with its per-parameter state, keyed by parameter path.
#[derive(Clone, Debug)]
pub(crate) struct BaseOptimizer {
    config: BaseConfig,
    pub(crate) states: HashMap<String, BaseState>,
    /// Set by an update over joined buffers, cleared by any other change of `states`.
    joined: Option<JoinedState>,
}

/// Record names: `base/<parameter path>/<field>`.
pub(crate) const PREFIX: &str = "base/";

impl BaseOptimizer {
    /// A fresh optimizer (no state yet).
    pub(crate) fn new(config: BaseConfig) -> Self {
        Self {
            config,
            states: HashMap::new(),
            joined: None,
        }
    }

    /// Every parameter's update at once, over the buffers of `weights` and `grad` joined alike
    /// ([`ParamVector::joined`]): the same rule as [`BaseOptimizer::update`], applied to the
    /// buffers, with the per-parameter states left as views of the new state's buffers. It
    /// runs when the state can be one buffer too — no parameter on the layout has state yet,
    /// or the state is the one the last joined update left on the same segments — and returns
    /// the new weights, joined; when every parameter has state of its own (a loaded record, a
    /// step that updated them one by one) it is joined first. `None` when none of this can be
    /// (states of different step counts, say), with nothing changed: the caller updates
    /// parameter by parameter.
    pub(crate) fn update_joined(
        &mut self,
        layout: &Layout,
        lr: f64,
        weights: &ParamVector,
        grad: &ParamVector,
    ) -> Option<ParamVector> {
        let (w, segments) = weights.buffer()?;
        let (g, grad_segments) = grad.buffer()?;
        if segments != grad_segments {
            return None;
        }
        let paths: Vec<(usize, &str, (usize, usize))> = layout
            .entries
            .iter()
            .zip(segments.slots())
            .enumerate()
            .filter_map(|(i, (e, seg))| Some((i, e.path.as_str(), (*seg)?)))
            .collect();
        let mut whole = match self.joined.take() {
            Some(kept) if kept.segments == *segments => kept.state,
            kept => {
                self.joined = kept;
                if paths.iter().all(|(_, p, _)| !self.states.contains_key(*p)) {
                    match &self.config {
                        BaseConfig::Sgd(_) => BaseState::Sgd(Box::default()),
                        BaseConfig::Adam(_) => BaseState::Adam(Box::default()),
                    }
                } else {
                    self.join_states(&paths, segments)?
                }
            }
        };
        let new = match (&self.config, &mut whole) {
            (BaseConfig::Sgd(c), BaseState::Sgd(state)) => c.update(lr, w.clone(), g.clone(), None, state),
            (BaseConfig::Adam(c), BaseState::Adam(state)) => c.update(lr, w.clone(), g.clone(), None, state),
            _ => unreachable!("states are created by the configured optimizer"),
        };
        for (_, path, (start, len)) in paths {
            self.states.insert(path.to_string(), whole.view(start, len));
        }
        self.joined = Some(JoinedState {
            segments: segments.clone(),
            state: whole,
        });
        Some(ParamVector::from_buffer(new, segments.clone()))
    }

    /// The per-parameter states of `paths` (slot, path, segment) joined into one state on
    /// `segments` (one copy each; after a record is loaded, or a step updated them one by one),
    /// when every one of them has a state of the same kind, the same buffers and the same step
    /// count.
    fn join_states(&self, paths: &[(usize, &str, (usize, usize))], segments: &Segments) -> Option<BaseState> {
        let states: Vec<&BaseState> = paths
            .iter()
            .map(|(_, p, _)| self.states.get(*p))
            .collect::<Option<_>>()?;
        let join = |buffer: &dyn Fn(&BaseState) -> Option<&Tensor<1>>| -> Option<Option<Tensor<1>>> {
            let present = states.iter().filter(|s| buffer(s).is_some()).count();
            if present == 0 {
                return Some(None);
            }
            if present != states.len() {
                return None;
            }
            let mut slots = vec![None; segments.slots().len()];
            for ((i, _, _), s) in paths.iter().zip(&states) {
                slots[*i] = buffer(s).cloned();
            }
            let joined = ParamVector::new(slots).joined();
            let (t, at) = joined.buffer()?;
            (**at == *segments).then(|| Some(t.clone()))
        };
        let (step, buffers) = states[0].parts();
        let alike =
            |s: &&BaseState| std::mem::discriminant(*s) == std::mem::discriminant(states[0]) && s.parts().0 == step;
        if !states.iter().all(alike) {
            return None;
        }
        let joined = (0..buffers.len())
            .map(|k| join(&|s: &BaseState| s.parts().1[k]))
            .collect::<Option<Vec<_>>>()?;
        Some(states[0].with_parts(step, joined))
    }

    /// Marks the per-parameter states as changed one by one: no longer views of a joined state.
    pub(crate) fn unjoin(&mut self) {
        self.joined = None;
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
        self.joined = None;
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
