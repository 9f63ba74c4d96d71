//! The step's own copy of the weights, written once for every driver: the f32 master weights of
//! a mixed-precision step, the dynamic loss scale of an f16 model, and the gradients read back
//! in f32 and unscaled; and, on a fused GPU, the weights of any model kept joined in one buffer
//! between steps, so that `w + e` and the update are one operation each
//! ([`ParamVector::joined`]). The phases compute from [`Mixed::weights`] and write the model's
//! float type back through the bridge; the members never see the difference.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};

use crate::bridge::{self, Layout};
use crate::config::Precision;
use crate::vector::ParamVector;

/// The step's own weights: f32 master weights of a half-precision model (and the loss scale of
/// its passes), or the weights of a model on a fused GPU kept joined between steps.
#[derive(Clone, Debug)]
pub(crate) struct Mixed {
    /// `w` (in f32 when `half`), slot by slot on the step's layout.
    pub weights: ParamVector,
    /// The model is in half precision and these are its f32 master weights; otherwise they are
    /// the model's own values in its own type, held joined (nothing is cast).
    pub half: bool,
    /// The loss scale of an f16 model's passes (`None`: bf16, unscaled).
    pub loss_scale: Option<f64>,
    /// The master weights are the caller's (an f32 model the step was begun with, see
    /// [`Sam::begin_with_master`](crate::Sam::begin_with_master)): an optimizer outside flatmin
    /// applies the update to them, so [`Sam::descent`](crate::Sam::descent) may hand it over.
    pub external: bool,
}

impl Mixed {
    /// `w + offset` in f32, where `offset` is present (the other slots left out).
    pub fn shifted(&self, offset: &ParamVector) -> ParamVector {
        self.weights.plus(offset)
    }

    /// How the passes of this step treat their losses.
    pub fn pass(&self) -> PassPrecision {
        PassPrecision {
            to_f32: self.half,
            loss_scale: self.loss_scale,
        }
    }
}

/// How a pass treats its loss before the backward pass: taken to f32 (a mixed-precision step),
/// and multiplied by the loss scale (f16).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct PassPrecision {
    pub to_f32: bool,
    pub loss_scale: Option<f64>,
}

impl PassPrecision {
    /// The precision of a step's passes (`None`: native, nothing done).
    pub fn of(mixed: Option<&Mixed>) -> Self {
        mixed.map(Mixed::pass).unwrap_or_default()
    }

    /// The mean of the losses: as stored natively, in f32 in a mixed-precision step.
    pub fn mean(&self, losses: Tensor<1>) -> Tensor<1> {
        if self.to_f32 {
            losses.cast(DType::F32).mean()
        } else {
            losses.mean()
        }
    }

    /// The mean loss the backward pass starts from: multiplied by the loss scale, if any.
    pub fn scaled(&self, mean: Tensor<1>) -> Tensor<1> {
        match self.loss_scale {
            Some(scale) => mean.mul_scalar(scale),
            None => mean,
        }
    }
}

/// The weights kept between steps, on the layout they were read on: taken up again while the
/// model holds the tensors the last step wrote (`identities`, where the backend has them).
#[derive(Clone, Debug)]
pub(crate) struct MasterWeights {
    pub layout: Layout,
    pub weights: ParamVector,
    /// f32 master weights of a half-precision model (saved in records); otherwise the model's
    /// own values, joined.
    pub half: bool,
    /// The identities of the model's parameter tensors the step left ([`bridge::identities`]).
    pub identities: Option<Vec<String>>,
}

impl MasterWeights {
    /// Whether these are still the weights of `model` on `layout`: the same parameters, and,
    /// where tensors have identities, the very tensors the last step wrote.
    pub fn fit<M: Module>(&self, model: &M, layout: &Layout) -> bool {
        self.layout == *layout
            && match &self.identities {
                Some(ids) => bridge::identities(model, layout).as_ref() == Some(ids),
                None => self.half,
            }
    }
}

/// The dynamic loss scale of an f16 model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LossScaler {
    pub scale: f64,
    /// Good steps in a row since the scale last changed.
    pub good_steps: u64,
}

impl LossScaler {
    /// The scale a configuration starts with (1 where it scales nothing).
    pub fn new(precision: &Precision) -> Self {
        let scale = match *precision {
            Precision::Mixed { init_scale, .. } => init_scale,
            Precision::Native => 1.0,
        };
        Self { scale, good_steps: 0 }
    }

    /// A step taken: after `growth_interval` of them in a row the scale grows.
    pub fn good_step(&mut self, precision: &Precision) {
        if let Precision::Mixed {
            growth_factor,
            growth_interval,
            ..
        } = *precision
        {
            self.good_steps += 1;
            if self.good_steps >= growth_interval {
                let grown = self.scale * growth_factor;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.good_steps = 0;
            }
        }
    }

    /// A step skipped for a non-finite gradient: the scale backs off.
    pub fn back_off(&mut self, precision: &Precision) {
        if let Precision::Mixed { backoff_factor, .. } = *precision {
            let smaller = self.scale * backoff_factor;
            if smaller > 0.0 {
                self.scale = smaller;
            }
            self.good_steps = 0;
        }
    }
}

/// Whether a model of float type `dtype` gets master weights under `precision`.
pub(crate) fn is_half(dtype: Option<DType>) -> bool {
    matches!(dtype, Some(DType::F16 | DType::BF16))
}

/// The gradients of `model` on `layout`: as stored natively; in f32 and divided by the scale the
/// loss was multiplied by in a mixed-precision step (`half`). Joined on a fused GPU
/// ([`ParamVector::joined`]): their norms and what is made of them are then one operation each.
pub(crate) fn gradients<M: Module>(
    model: &M,
    layout: &Layout,
    grads: &GradientsParams,
    half: bool,
    scaled_by: Option<f64>,
) -> ParamVector {
    let g = bridge::gradients(model, layout, grads);
    if !half {
        return g.joined();
    }
    g.map(|_, t| {
        let t = t.clone().cast(DType::F32);
        match scaled_by {
            Some(scale) if scale != 1.0 => t.div_scalar(scale),
            _ => t,
        }
    })
    .joined()
}

/// Every present slot of `values` in f32.
pub(crate) fn to_f32(values: &ParamVector) -> ParamVector {
    values.map(|_, t| t.clone().cast(DType::F32))
}
