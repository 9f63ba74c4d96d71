//! Bayesian SAM (bSAM; Möllenhoff & Khan, "SAM as an Optimal Relaxation of Bayes", ICLR 2023),
//! as the authors' `optim.py` writes it (the crate's ALGORITHMS.md §13.5). It is its own base
//! optimizer, with a per-weight precision `s` that also shapes the two passes:
//!
//! 1. the first pass runs at a noisy weight `w̃ = w + n/√(N·s)`, `n ~ N(0, I)`, `N` the
//!    number of training examples;
//! 2. the ascent is element-wise and unnormalized, from the mean `w`: `e = ρ·g/s`;
//! 3. the update, with `g` from the noisy pass and `g_p` from `w + e`, `δ = prior_precision/N`:
//!    `m ← β1·m + (1−β1)·(g_p + δ·w)`, `w ← w − lr·m/s`,
//!    `s ← β2·s + (1−β2)·(√s·|g| + damping + δ)`.
//!
//! The noise comes from a seeded generator saved in the optimizer's record, or from an injected
//! [`NoiseSource`] (a replay of recorded noise), so a run can be replayed exactly. The authors'
//! m-sharpness (independent noise and ascent on sub-batches, averaged) is not implemented: one
//! noise draw and one ascent per batch. bSAM goes with no other member, and the configured base
//! optimizer is not used.

use std::collections::HashMap;

use burn::config::Config;
use burn::tensor::{Tensor, TensorData};

use crate::error::RecordError;
use crate::hyperparameter::{Declared, Range, RunFigure, declare};
use crate::member::{inject_into, member_config, Injection, Made, MemberHooks, Radius, Schema, Shared, StepInfo};
use crate::record::{RecordIn, RecordOut};
use crate::rng::Rng;
use crate::vector::ParamVector;

/// bSAM's hyperparameters (the authors' names in parentheses).
#[derive(Config, Debug, PartialEq)]
pub struct BsamConfig {
    /// β1, the decay of the momentum `m` (`beta1`).
    #[config(default = 0.9)]
    pub beta1: f64,
    /// β2, the decay of the precision `s` (`beta2`).
    #[config(default = 0.999)]
    pub beta2: f64,
    /// The prior precision; the weight decay is `δ = prior_precision / data_size` (`priorprec`).
    #[config(default = 10.0)]
    pub prior_precision: f64,
    /// N, the number of training examples (the authors multiply it by a data-augmentation
    /// factor, `dafactor`); it scales the noise and the weight decay. Required
    /// ([`crate::SamConfig::for_run`] fills it in).
    #[config(default = 0)]
    pub data_size: u64,
    /// Added to the precision's update (`damping`).
    #[config(default = 0.1)]
    pub damping: f64,
    /// The precision every weight starts with (`custominit`).
    #[config(default = 1.0)]
    pub s_init: f64,
    /// Seed of the noise generator.
    #[config(default = 0)]
    pub seed: u64,
}

const HYPERPARAMETERS: &[Declared<BsamConfig>] = &[
    declare!(
        number BsamConfig, "bsam_prior_precision",
        "bSAM's prior precision (its weight decay is this over the training-set size; --optimizer bsam)",
        Range::NON_NEGATIVE, prior_precision => .replay(&["prior_precision"])),
    declare!(
        number BsamConfig, "bsam_damping", "bSAM's damping, added to the precision's update (--optimizer bsam)",
        Range::NON_NEGATIVE, damping => .replay(&["damping"])),
    declare!(
        number BsamConfig, "bsam_s_init", "bSAM's initial precision of every weight (--optimizer bsam)",
        Range::POSITIVE, s_init => .replay(&["s_init"])),
    declare!(
        number BsamConfig, "bsam_beta1", "bSAM's β1, the decay of its momentum (--optimizer bsam)",
        Range::FRACTION, beta1 => .replay(&["beta1"])),
    declare!(
        number BsamConfig, "bsam_beta2", "bSAM's β2, the decay of its precision (--optimizer bsam)",
        Range::FRACTION, beta2 => .replay(&["beta2"])),
    declare!(
        whole BsamConfig, "bsam_data_size", "bSAM's N, the number of training examples",
        Range::WHOLE, data_size => .replay(&["data_size"]).from_run(RunFigure::DataSize)),
    declare!(whole BsamConfig, "bsam_seed", "Seed of bSAM's noise", Range::WHOLE, seed => .replay(&["seed"]).hidden()),
];

impl BsamConfig {
    /// δ, the weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.prior_precision / self.data_size as f64
    }

    /// The precision of a parameter that has no state yet.
    fn initial_precision(&self, like: &Tensor<1>) -> Tensor<1> {
        like.zeros_like().add_scalar(self.s_init)
    }
}

member_config! {
    impl BsamConfig as "bsam" in Whole with HYPERPARAMETERS, fresh(context) = Self::new().with_seed(context.seed);

    const ALONE: Option<(&'static str, &'static str)> = Some((
        "nothing with bSAM: bSAM makes its own noisy first pass, ascent ρ·g/s and update, and runs both passes at every step",
        "a setting of bSAM's own optimizer: it applies to --optimizer bsam only (the bsam preset)",
    ));
    fn own_update(&self) -> bool {
        true
    }

    fn replaces_base(&self) -> bool {
        true
    }

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Bsam {
            config: self.clone(),
            states: HashMap::new(),
            noise: Noise::Seeded(Rng::seeded(self.seed)),
        })
    }
}

/// bSAM's state of one parameter.
#[derive(Clone, Debug, Default)]
pub struct BsamState {
    /// The momentum `m`, flat.
    pub momentum: Option<Tensor<1>>,
    /// The precision `s`, flat (`s_init` everywhere until the first update).
    pub precision: Option<Tensor<1>>,
    /// How many updates this parameter has had.
    pub step: u64,
}

/// Where bSAM's Gaussian noise comes from. The default draws it from a seeded generator; a replay
/// of a recorded run injects the recorded noise ([`Injection::noise`]).
pub trait NoiseSource: Send {
    /// `numel` standard normal numbers for one parameter tensor (tensors are asked for in the
    /// model's parameter order, once per step).
    fn normals(&mut self, numel: usize) -> Vec<f64>;
}

impl NoiseSource for Rng {
    /// Box–Muller, the cosine branch only: `√(−2 ln(1 − u₁))·cos(2π u₂)`.
    fn normals(&mut self, numel: usize) -> Vec<f64> {
        (0..numel)
            .map(|_| {
                let u1 = 1.0 - self.uniform();
                let u2 = self.uniform();
                (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect()
    }
}

impl Injection {
    /// Recorded noise in place of bSAM's generator.
    pub fn noise(source: Box<dyn NoiseSource>) -> Self {
        Injection::new(source, "bSAM's noise")
    }
}

/// bSAM's noise: a seeded generator (copied with the step, saved in the record) or an injected
/// source (shared, drawn from directly).
#[derive(Clone)]
enum Noise {
    Seeded(Rng),
    Custom(Shared<dyn NoiseSource>),
}

/// bSAM's per-parameter state and its noise.
#[derive(Clone)]
struct Bsam {
    config: BsamConfig,
    states: HashMap<String, BsamState>,
    noise: Noise,
}

/// Record names: the state as a base optimizer's (`base/<path>/<field>`, which bSAM records have
/// always used) and the noise generator's words.
const BASE: &str = "base/";
const NOISE: &str = "noise";

impl Bsam {
    fn precision(&self, path: &str, like: &Tensor<1>) -> Tensor<1> {
        match self.states.get(path).and_then(|s| s.precision.as_ref()) {
            Some(s) => s.clone(),
            None => self.config.initial_precision(like),
        }
    }
}

impl MemberHooks for Bsam {

    fn offset_reads_weights(&self) -> bool {
        true
    }

    /// The noise `n/√(N·s)` of every parameter, drawn in the model's parameter order.
    fn first_pass_offset(&mut self, info: &StepInfo, w: &ParamVector) -> Option<(ParamVector, Option<f64>)> {
        let n_data = self.config.data_size as f64;
        let precisions: Vec<Option<Tensor<1>>> = (0..info.layout.len())
            .map(|i| w.get(i).map(|wi| self.precision(&info.layout.entries[i].path, wi)))
            .collect();
        let mut guard;
        let source: &mut dyn NoiseSource = match &mut self.noise {
            Noise::Seeded(rng) => rng,
            Noise::Custom(shared) => {
                guard = shared.lock().expect("noise source lock");
                guard.as_mut()
            }
        };
        let offsets = w.map(|i, _| {
            let s = precisions[i].as_ref().expect("present");
            let numel = s.dims()[0];
            let n = source.normals(numel);
            let n = Tensor::<1>::from_data(TensorData::new(n, [numel]), (&s.device(), s.dtype()));
            n / s.clone().mul_scalar(n_data).sqrt()
        });
        Some((offsets, None))
    }

    fn e_along_g(&self) -> bool {
        false
    }

    fn needs_g_later(&self) -> bool {
        true
    }

    /// The ascent `ρ·g/s`, element-wise and unnormalized.
    fn perturbation(&self, info: &StepInfo, radius: &Radius, d: &ParamVector, _: &ParamVector) -> Option<Made> {
        let e = d.map(|i, gi| {
            let s = self.precision(&info.layout.entries[i].path, gi);
            gi.clone().mul_scalar(radius.rho) / s
        });
        Some(Made { e, e_norm: None })
    }

    fn needs_first_gradient(&self) -> bool {
        true
    }

    fn own_update(&self) -> bool {
        true
    }

    fn update(&mut self, path: &str, lr: f64, param: Tensor<1>, grad: Tensor<1>, first: Option<Tensor<1>>) -> Tensor<1> {
        let config = &self.config;
        let state = self.states.entry(path.to_string()).or_default();
        let noisy = first.unwrap_or_else(|| grad.clone());
        let delta = config.weight_decay();
        let s = state
            .precision
            .take()
            .unwrap_or_else(|| config.initial_precision(&param));
        let pulled = grad + param.clone().mul_scalar(delta);
        let m = match state.momentum.take() {
            None => pulled.mul_scalar(1.0 - config.beta1),
            Some(m) => m.mul_scalar(config.beta1) + pulled.mul_scalar(1.0 - config.beta1),
        };
        let updated = param - (m.clone() / s.clone()).mul_scalar(lr);
        let gs = s.clone().sqrt() * noisy.abs();
        let s = s.mul_scalar(config.beta2) + gs.add_scalar(config.damping + delta).mul_scalar(1.0 - config.beta2);
        state.momentum = Some(m);
        state.precision = Some(s);
        state.step += 1;
        updated
    }

    fn save(&self, out: &mut RecordOut) {
        let mut paths: Vec<&String> = self.states.keys().collect();
        paths.sort();
        for path in paths {
            let state = &self.states[path];
            if let Some(t) = &state.momentum {
                out.tensor(format!("{BASE}{path}/momentum"), t);
            }
            if let Some(t) = &state.precision {
                out.tensor(format!("{BASE}{path}/precision"), t);
            }
            out.scalar(format!("{BASE}{path}/step"), state.step);
        }
        if let Noise::Seeded(rng) = &self.noise {
            out.rng(NOISE, rng);
        }
    }

    fn load(&mut self, record: &mut RecordIn) -> Result<(), RecordError> {
        let mut states = HashMap::new();
        for path in record.scalar_groups(BASE, "/step") {
            let state = BsamState {
                momentum: record.take_tensor(&format!("{BASE}{path}/momentum")),
                precision: record.take_tensor(&format!("{BASE}{path}/precision")),
                step: record.uint(&format!("{BASE}{path}/step"))?,
            };
            states.insert(path, state);
        }
        self.states = states;
        if let Noise::Seeded(rng) = &mut self.noise {
            *rng = record.rng(NOISE)?;
        }
        Ok(())
    }

    fn schema(&self) -> Schema {
        Schema {
            maps: Vec::new(),
            scalars: (0..4).map(|i| format!("{NOISE}/{i}")).collect(),
        }
    }

    fn buffers(&self) -> Vec<(&'static str, &str, &Tensor<1>)> {
        let mut out = Vec::new();
        for (path, s) in &self.states {
            if let Some(t) = &s.momentum {
                out.push(("bSAM's momentum", path.as_str(), t));
            }
            if let Some(t) = &s.precision {
                out.push(("bSAM's precision", path.as_str(), t));
            }
        }
        out
    }

    fn inject(&mut self, source: Injection) -> Option<Injection> {
        inject_into::<dyn NoiseSource>(source, |shared| self.noise = Noise::Custom(shared))
    }

}
