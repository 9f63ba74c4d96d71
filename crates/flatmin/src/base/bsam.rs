//! Bayesian SAM (bSAM; Möllenhoff & Khan, "SAM as an Optimal Relaxation of Bayes", ICLR 2023),
//! as the authors' `optim.py` writes it (docs/ALGORITHMS.md, bSAM). It is its own base
//! optimizer, with a per-weight precision `s` that also shapes the two passes:
//!
//! 1. the first pass runs at a noisy weight `w̃ = w + n/√(N·s)`, `n ~ N(0, I)`, `N` the
//!    number of training examples ([`noisy_offset`]);
//! 2. the ascent is element-wise and unnormalized, from the mean `w`: `e = ρ·g/s` ([`ascent`]);
//! 3. the update, with `g` from the noisy pass and `g_p` from `w + e`, `δ = prior_precision/N`:
//!    `m ← β1·m + (1−β1)·(g_p + δ·w)`, `w ← w − lr·m/s`,
//!    `s ← β2·s + (1−β2)·(√s·|g| + damping + δ)` ([`BsamConfig::update`]).
//!
//! The noise comes from a seeded generator saved in the optimizer's record, or from an injected
//! [`NoiseSource`] (a replay of recorded noise), so a run can be replayed exactly. The authors'
//! m-sharpness (independent noise and ascent on sub-batches, averaged) is not implemented: one
//! noise draw and one ascent per batch.

use burn::config::Config;
use burn::tensor::{Tensor, TensorData};

use crate::error::{ConfigError, check_non_negative, check_positive, check_range};
use crate::record::{RecordIn, RecordOut};
use crate::rng::Rng;

/// bSAM's hyperparameters (the authors' names in brackets).
#[derive(Config, Debug, PartialEq)]
pub struct BsamConfig {
    /// β1, the decay of the momentum `m` [`beta1`].
    #[config(default = 0.9)]
    pub beta1: f64,
    /// β2, the decay of the precision `s` [`beta2`].
    #[config(default = 0.999)]
    pub beta2: f64,
    /// The prior precision; the weight decay is `δ = prior_precision / data_size` [`priorprec`].
    #[config(default = 10.0)]
    pub prior_precision: f64,
    /// N, the number of training examples (the authors multiply it by a data-augmentation
    /// factor, `dafactor`); it scales the noise and the weight decay. Required.
    #[config(default = 0)]
    pub data_size: u64,
    /// Added to the precision's update [`damping`].
    #[config(default = 0.1)]
    pub damping: f64,
    /// The precision every weight starts with [`custominit`].
    #[config(default = 1.0)]
    pub s_init: f64,
    /// Seed of the noise generator.
    #[config(default = 0)]
    pub seed: u64,
}

impl BsamConfig {
    /// Checks every hyperparameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("bsam_beta1", self.beta1, 0.0, true, 1.0, false, "a number in [0, 1)")?;
        check_range("bsam_beta2", self.beta2, 0.0, true, 1.0, false, "a number in [0, 1)")?;
        check_non_negative("bsam_prior_precision", self.prior_precision)?;
        check_non_negative("bsam_damping", self.damping)?;
        check_positive("bsam_s_init", self.s_init)?;
        if self.data_size == 0 {
            return Err(ConfigError::new(
                "bsam_data_size",
                self.data_size,
                "the number of training examples (>= 1), which scales bSAM's noise and weight decay",
            ));
        }
        Ok(())
    }

    /// δ, the weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.prior_precision / self.data_size as f64
    }

    /// The precision of a parameter that has no state yet.
    pub(crate) fn initial_precision(&self, like: &Tensor<1>) -> Tensor<1> {
        like.zeros_like().add_scalar(self.s_init)
    }

    /// One update of a parameter: `grad` is `g_p` (at `w + e`), `noisy` is `g` (at `w̃`).
    pub(super) fn update(
        &self,
        lr: f64,
        param: Tensor<1>,
        grad: Tensor<1>,
        noisy: Tensor<1>,
        state: &mut BsamState,
    ) -> Tensor<1> {
        let delta = self.weight_decay();
        let s = state.precision.take().unwrap_or_else(|| self.initial_precision(&param));
        let pulled = grad + param.clone().mul_scalar(delta);
        let m = match state.momentum.take() {
            None => pulled.mul_scalar(1.0 - self.beta1),
            Some(m) => m.mul_scalar(self.beta1) + pulled.mul_scalar(1.0 - self.beta1),
        };
        let updated = param - (m.clone() / s.clone()).mul_scalar(lr);
        let gs = s.clone().sqrt() * noisy.abs();
        let s = s.mul_scalar(self.beta2) + gs.add_scalar(self.damping + delta).mul_scalar(1.0 - self.beta2);
        state.momentum = Some(m);
        state.precision = Some(s);
        state.step += 1;
        updated
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

impl BsamState {
    /// Writes this state under `prefix` (`base/<path>/`).
    pub(crate) fn save(&self, prefix: &str, out: &mut RecordOut) {
        if let Some(t) = &self.momentum {
            out.tensor(format!("{prefix}momentum"), t);
        }
        if let Some(t) = &self.precision {
            out.tensor(format!("{prefix}precision"), t);
        }
        out.scalar(format!("{prefix}step"), self.step);
    }

    /// Reads the state written under `prefix`.
    pub(crate) fn load(prefix: &str, record: &mut RecordIn) -> Result<Self, crate::RecordError> {
        Ok(Self {
            momentum: record.take_tensor(&format!("{prefix}momentum")),
            precision: record.take_tensor(&format!("{prefix}precision")),
            step: record.uint(&format!("{prefix}step"))?,
        })
    }
}

/// Where bSAM's Gaussian noise comes from. The default draws it from a seeded generator; a replay
/// of a recorded run injects the recorded noise.
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

/// The noise of one tensor: `n/√(N·s)` with `n` from `source`.
pub(crate) fn noisy_offset(config: &BsamConfig, source: &mut dyn NoiseSource, precision: &Tensor<1>) -> Tensor<1> {
    let numel = precision.dims()[0];
    let n = source.normals(numel);
    let n = Tensor::<1>::from_data(TensorData::new(n, [numel]), (&precision.device(), precision.dtype()));
    n / precision.clone().mul_scalar(config.data_size as f64).sqrt()
}

/// The ascent of one tensor: `ρ·g/s`.
pub(crate) fn ascent(rho: f64, g: &Tensor<1>, precision: &Tensor<1>) -> Tensor<1> {
    g.clone().mul_scalar(rho) / precision.clone()
}

/// bSAM's noise of one optimizer: a seeded generator (committed step by step, saved in the
/// optimizer's record) or an injected source.
pub(crate) enum Noise {
    Seeded(Rng),
    Custom(Box<dyn NoiseSource>),
}

impl Noise {
    pub(crate) fn seeded(seed: u64) -> Self {
        Noise::Seeded(Rng::seeded(seed))
    }

    /// The source this step draws from: a copy of the seeded generator (kept in `pending`, so
    /// that nothing changes until the step is committed) or the injected source.
    pub(crate) fn source<'a>(&'a mut self, pending: &'a mut Option<Rng>) -> &'a mut dyn NoiseSource {
        match self {
            Noise::Seeded(rng) => pending.get_or_insert_with(|| rng.clone()),
            Noise::Custom(source) => source.as_mut(),
        }
    }

    /// Makes a step's draws permanent.
    pub(crate) fn commit(&mut self, pending: Option<Rng>) {
        if let (Some(rng), Noise::Seeded(seeded)) = (pending, self) {
            *seeded = rng;
        }
    }

    /// The seeded generator, for the record (an injected source has none).
    pub(crate) fn rng(&self) -> Option<&Rng> {
        match self {
            Noise::Seeded(rng) => Some(rng),
            Noise::Custom(_) => None,
        }
    }

    /// The seeded generator, to restore from a record.
    pub(crate) fn rng_mut(&mut self) -> Option<&mut Rng> {
        match self {
            Noise::Seeded(rng) => Some(rng),
            Noise::Custom(_) => None,
        }
    }
}
