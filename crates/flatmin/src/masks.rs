//! ESAM's stochastic weight perturbation (SWP): which parameter tensors, or which single weights,
//! take part in a step (docs/ALGORITHMS.md, ESAM). The masks and their generator live here; the
//! step asks for a mask, and commits the generator only when the step is taken.

use burn::config::Config;
use burn::tensor::Tensor;

use crate::error::{ConfigError, check_range};
use crate::rng::Rng;

/// Whether ESAM's stochastic weight perturbation masks whole tensors or single weights.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum SwpGranularity {
    /// One draw per tensor (the official code); left-out tensors skip their weight gradients in
    /// the first pass, which is where the saving comes from. The norm is over kept tensors.
    PerTensor,
    /// One draw per weight (the paper); the norm is over the whole gradient. No compute saving.
    PerElement,
}

/// ESAM's stochastic weight perturbation.
#[derive(Config, Debug, PartialEq)]
pub struct SwpConfig {
    /// β, the probability that a tensor (or weight) takes part; `e` is scaled by 1/β.
    #[config(default = 0.6)]
    pub beta: f64,
    /// Per tensor (official code) or per element (paper).
    #[config(default = "SwpGranularity::PerTensor")]
    pub granularity: SwpGranularity,
    /// Seed of the mask generator.
    #[config(default = 0)]
    pub seed: u64,
}

impl SwpConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_range("beta", self.beta, 0.0, false, 1.0, true, "a number in (0, 1]")
    }
}

/// Where ESAM's stochastic masks come from. The default draws them from a seeded generator; a
/// replay of a recorded run injects the recorded masks.
pub trait MaskSource: Send {
    /// Which of `count` parameter tensors take part in this step (true = perturbed).
    fn tensor_mask(&mut self, count: usize, beta: f64) -> Vec<bool>;
    /// Which of `numel` weights of one tensor take part in this step.
    fn element_mask(&mut self, numel: usize, beta: f64) -> Vec<bool>;
}

impl MaskSource for Rng {
    fn tensor_mask(&mut self, count: usize, beta: f64) -> Vec<bool> {
        (0..count).map(|_| self.bernoulli(beta)).collect()
    }

    fn element_mask(&mut self, numel: usize, beta: f64) -> Vec<bool> {
        (0..numel).map(|_| self.bernoulli(beta)).collect()
    }
}

/// The masks of one optimizer: a seeded generator (committed step by step, saved in the
/// optimizer's record) or an injected source.
pub(crate) enum Masks {
    Seeded(Rng),
    Custom(Box<dyn MaskSource>),
}

/// The draws of one step in progress: from a copy of the seeded generator, so that nothing
/// changes until the step is committed.
#[derive(Default)]
pub(crate) struct Draws {
    copy: Option<Rng>,
}

impl Masks {
    pub(crate) fn seeded(seed: u64) -> Self {
        Masks::Seeded(Rng::seeded(seed))
    }

    /// Draws with `f` from this step's copy of the generator (or from the injected source).
    pub(crate) fn draw<T>(&mut self, draws: &mut Draws, f: impl FnOnce(&mut dyn MaskSource) -> T) -> T {
        match self {
            Masks::Seeded(seeded) => f(draws.copy.get_or_insert_with(|| seeded.clone())),
            Masks::Custom(source) => f(source.as_mut()),
        }
    }

    /// Makes this step's draws permanent.
    pub(crate) fn commit(&mut self, draws: Draws) {
        if let (Some(rng), Masks::Seeded(seeded)) = (draws.copy, self) {
            *seeded = rng;
        }
    }

    /// The seeded generator, for the record (an injected source has none).
    pub(crate) fn rng_mut(&mut self) -> Option<&mut Rng> {
        match self {
            Masks::Seeded(rng) => Some(rng),
            Masks::Custom(_) => None,
        }
    }

    /// The seeded generator's state, for the record.
    pub(crate) fn rng(&self) -> Option<&Rng> {
        match self {
            Masks::Seeded(rng) => Some(rng),
            Masks::Custom(_) => None,
        }
    }
}

/// A 0/1 tensor like `like` from host booleans.
pub(crate) fn mask_tensor(bits: &[bool], like: &Tensor<1>) -> Tensor<1> {
    let values: Vec<f64> = bits.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    let data = burn::tensor::TensorData::new(values, [bits.len()]);
    Tensor::from_data(data, (&like.device(), like.dtype()))
}
