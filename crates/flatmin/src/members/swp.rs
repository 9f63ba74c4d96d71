//! ESAM's stochastic weight perturbation (Du, Yan, Feng, Zhou, Zhen, Goh, Tan, "Efficient
//! Sharpness-aware Minimization for Improved Training of Neural Networks", ICLR 2022;
//! the crate's ALGORITHMS.md §6.1): which parameter tensors, or which single weights, take part in a
//! step. `e` is scaled by 1/β. Per tensor (the official code), the left-out tensors also skip
//! their weight gradients in the first pass, which is where the saving comes from. The masks
//! come from a seeded generator, saved in the record, or from an injected [`MaskSource`].


use burn::config::Config;
use burn::tensor::Tensor;

use crate::error::RecordError;
use crate::hyperparameter::{Declaration, Declared, Kind, Range, Value, declare};
use crate::member::{inject_into, member_config, Injection, MemberHooks, Schema, Shared, StepInfo};
use crate::record::{RecordIn, RecordOut};
use crate::rng::Rng;
use crate::vector::ParamVector;

/// Whether ESAM's stochastic weight perturbation masks whole tensors or single weights.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum SwpGranularity {
    /// One draw per tensor (the official code); left-out tensors skip their weight gradients in
    /// the first pass. The norm is over kept tensors.
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

const HYPERPARAMETERS: &[Declared<SwpConfig>] = &[
    declare!(number SwpConfig, "esam_beta", "ESAM's β (fraction of weights perturbed)", Range::SHARE, beta => .replay(&["beta"])),
    Declared {
        decl: Declaration::new("esam_per_element", "ESAM's mask per weight (paper) instead of per tensor (official code)", Kind::Switch, Range::FINITE),
        get: |c| Value::Switch(c.granularity == SwpGranularity::PerElement),
        set: |c, v, _| {
            c.granularity = if v.on() {
                SwpGranularity::PerElement
            } else {
                SwpGranularity::PerTensor
            }
        },
    },
    declare!(whole SwpConfig, "esam_seed", "Seed of ESAM's masks", Range::WHOLE, seed => .hidden()),
];

member_config! {
    impl SwpConfig as "esam" in Mask with HYPERPARAMETERS, fresh(context) = Self::new().with_seed(context.seed);

    fn draws_before_first_pass(&self) -> bool {
        self.granularity == SwpGranularity::PerTensor
    }

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Swp {
            beta: self.beta,
            granularity: self.granularity,
            masks: Masks::Seeded(Rng::seeded(self.seed)),
        })
    }
}

/// Where ESAM's stochastic masks come from. The default draws them from a seeded generator; a
/// replay of a recorded run injects the recorded masks ([`Injection::masks`]).
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

impl Injection {
    /// Recorded masks in place of ESAM's generator.
    pub fn masks(source: Box<dyn MaskSource>) -> Self {
        Injection::new(source, "ESAM's masks")
    }
}

/// The masks: a seeded generator (copied with the step, saved in the record) or an injected
/// source (shared, drawn from directly).
#[derive(Clone)]
enum Masks {
    Seeded(Rng),
    Custom(Shared<dyn MaskSource>),
}

impl Masks {
    fn source(&mut self) -> MaskDraw<'_> {
        match self {
            Masks::Seeded(rng) => MaskDraw::Own(rng),
            Masks::Custom(shared) => MaskDraw::Shared(shared.lock().expect("mask source lock")),
        }
    }
}

enum MaskDraw<'a> {
    Own(&'a mut Rng),
    Shared(std::sync::MutexGuard<'a, Box<dyn MaskSource>>),
}

impl MaskDraw<'_> {
    fn get(&mut self) -> &mut dyn MaskSource {
        match self {
            MaskDraw::Own(rng) => *rng,
            MaskDraw::Shared(guard) => guard.as_mut(),
        }
    }
}

/// ESAM's masks and their generator.
#[derive(Clone)]
struct Swp {
    beta: f64,
    granularity: SwpGranularity,
    masks: Masks,
}

/// Record names of the generator's words.
const RNG: &str = "rng";

/// A 0/1 tensor like `like` from host booleans.
fn mask_tensor(bits: &[bool], like: &Tensor<1>) -> Tensor<1> {
    let values: Vec<f64> = bits.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    let data = burn::tensor::TensorData::new(values, [bits.len()]);
    Tensor::from_data(data, (&like.device(), like.dtype()))
}

impl MemberHooks for Swp {

    fn tensor_mask(&mut self, count: usize) -> Option<Vec<bool>> {
        (self.granularity == SwpGranularity::PerTensor).then(|| self.masks.source().get().tensor_mask(count, self.beta))
    }

    fn element_mask(&mut self, info: &StepInfo, d: &ParamVector) -> Option<ParamVector> {
        if self.granularity != SwpGranularity::PerElement {
            return None;
        }
        let beta = self.beta;
        let mut draw = self.masks.source();
        let mut bits = Vec::with_capacity(info.layout.len());
        for (i, entry) in info.layout.entries.iter().enumerate() {
            bits.push(d.get(i).map(|t| mask_tensor(&draw.get().element_mask(entry.numel(), beta), t)));
        }
        Some(ParamVector::new(bits))
    }

    fn beta(&self) -> Option<f64> {
        Some(self.beta)
    }

    fn e_along_g(&self) -> bool {
        self.granularity == SwpGranularity::PerTensor
    }

    fn save(&self, out: &mut RecordOut) {
        if let Masks::Seeded(rng) = &self.masks {
            out.rng(RNG, rng);
        }
    }

    fn load(&mut self, record: &mut RecordIn) -> Result<(), RecordError> {
        if let Masks::Seeded(rng) = &mut self.masks {
            *rng = record.rng(RNG)?;
        }
        Ok(())
    }

    fn schema(&self) -> Schema {
        Schema {
            maps: Vec::new(),
            scalars: (0..4).map(|i| format!("{RNG}/{i}")).collect(),
        }
    }

    fn inject(&mut self, source: Injection) -> Option<Injection> {
        inject_into::<dyn MaskSource>(source, |shared| self.masks = Masks::Custom(shared))
    }

}
