//! How the perturbation `e` is made from the first-pass gradient `g` (docs/ALGORITHMS.md §2–§6).
//!
//! Three independent pieces: an optional *direction* transform (F-SAM removes an EMA of past
//! gradients), a *geometry* that normalizes the direction into a ball of radius ρ (Euclidean,
//! the two adaptive forms, the Fisher ellipsoid), and an optional *stochastic mask* (ESAM's SWP)
//! that keeps a random part of `e` and scales it by 1/β.

use burn::config::Config;
use burn::tensor::Tensor;

use crate::bridge::Layout;
use crate::error::{ConfigError, check_range};
use crate::vector::{ParamVector, read};

/// The ball the perturbation lives in.
#[derive(Config, Debug, PartialEq)]
pub enum Geometry {
    /// SAM: `e = ρ·d / (‖d‖ + eps)`.
    Euclidean,
    /// The adaptive form of the common PyTorch SAM (davda54, also GSAM/ESAM/WSAM/F-SAM code):
    /// `e = ρ·w²⊙d / (‖|w|⊙d‖ + eps)` on every tensor.
    AdaptiveSquared,
    /// The official ASAM: `T = |w| + eta` on weight tensors (path contains `weight`, or Burn's
    /// norm scale `gamma`), `T = 1` elsewhere; `e = ρ·T²⊙d / (‖T⊙d‖ + eps)`.
    Asam {
        /// The offset η added to `|w|`.
        eta: f64,
    },
    /// Fisher-SAM with the diagonal Fisher `f = 1 + η·g²`:
    /// `e = ρ·(d/f) / (sqrt(Σ d²/f) + eps)` (the ellipsoid `eᵀ diag(f) e = ρ²`).
    Fisher {
        /// The Fisher strength η (depends on the gradient's scale).
        eta: f64,
    },
}

/// F-SAM's removal of the full-gradient component.
#[derive(Config, Debug, PartialEq)]
pub struct FriendlyConfig {
    /// σ: how much of the EMA is removed (`d = g − σ·m`).
    #[config(default = 1.0)]
    pub sigma: f64,
    /// λ: the EMA's decay (`m = λ·m + (1−λ)·g`).
    #[config(default = 0.9)]
    pub lambda: f64,
    /// Update the EMA before subtracting it (the paper's literal reading) instead of after
    /// (the official code, the default).
    #[config(default = false)]
    pub update_then_subtract: bool,
}

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

impl Geometry {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Geometry::Asam { eta } => check_range("eta", eta, 0.0, true, f64::INFINITY, false, "a finite number >= 0"),
            Geometry::Fisher { eta } => {
                check_range("eta", eta, 0.0, true, f64::INFINITY, false, "a finite number >= 0")
            }
            _ => Ok(()),
        }
    }
}

impl FriendlyConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "sigma",
            self.sigma,
            0.0,
            true,
            f64::INFINITY,
            false,
            "a finite number >= 0",
        )?;
        check_range("lambda", self.lambda, 0.0, true, 1.0, false, "a number in [0, 1)")
    }
}

impl SwpConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_range("beta", self.beta, 0.0, false, 1.0, true, "a number in (0, 1]")
    }
}

/// Whether the official ASAM scales this tensor (`weight` in its PyTorch name; Burn calls a
/// norm layer's scale `gamma` where PyTorch says `weight`).
pub(crate) fn asam_scales(path: &str) -> bool {
    path.contains("weight") || path.rsplit('.').next() == Some("gamma")
}

/// The perturbation of one step and the numbers the report needs.
pub(crate) struct Made {
    pub e: ParamVector,
    pub e_norm: f64,
}

/// The scalars of one step's perturbation.
pub(crate) struct Radius<'a> {
    pub geometry: &'a Geometry,
    /// ρ at this step.
    pub rho: f64,
    /// Added to the norm.
    pub eps: f64,
    /// ESAM's β (1 without SWP): `e` is divided by it.
    pub beta: f64,
    /// `‖d‖`, when the caller has measured it (the Euclidean ball needs nothing else).
    pub d_norm: Option<f64>,
}

/// Makes `e` from the direction `d` (already masked per tensor, and friendly-transformed).
/// `mask` is the per-element 0/1 mask when SWP works per element.
pub(crate) fn make(
    radius: &Radius,
    d: &ParamVector,
    w: &ParamVector,
    layout: &Layout,
    mask: Option<&ParamVector>,
) -> Made {
    let Radius {
        geometry,
        rho,
        eps,
        beta,
        d_norm,
    } = *radius;
    // `‖e‖` where it follows from the scalars (a uniform scaling of `d`, no mask): `|s|·‖d‖`.
    let mut e_norm = None;
    let e = match *geometry {
        Geometry::Euclidean => {
            let n = d_norm.unwrap_or_else(|| d.norm());
            let scale = rho / (n + eps) / beta;
            e_norm = Some(scale.abs() * n);
            d.scaled(scale)
        }
        Geometry::AdaptiveSquared => {
            let wd = d.zip_map(w, |d, w| d.clone() * w.expect("param").clone().abs());
            let n = wd.norm();
            let scale = rho / (n + eps) / beta;
            d.zip_map(w, |d, w| {
                let w = w.expect("param");
                (w.clone() * w.clone() * d.clone()).mul_scalar(scale)
            })
        }
        Geometry::Asam { eta } => {
            let t: ParamVector = d.map(|i, d| {
                if asam_scales(&layout.entries[i].path) {
                    w.get(i).expect("param").clone().abs().add_scalar(eta)
                } else {
                    d.ones_like()
                }
            });
            let td = d.zip_map(&t, |d, t| d.clone() * t.expect("t").clone());
            let n = td.norm() + eps;
            td.zip_map(&t, |td, t| {
                (td.clone() * t.expect("t").clone()).mul_scalar(rho / n / beta)
            })
        }
        Geometry::Fisher { eta } => {
            let u = d.map(|_, d| d.clone() / (d.clone() * d.clone()).mul_scalar(eta).add_scalar(1.0));
            let quad = read(vec![d.dot_lazy(&u)])[0];
            let scale = rho / (quad.max(0.0).sqrt() + eps) / beta;
            u.scaled(scale)
        }
    };
    let e = match mask {
        Some(mask) => {
            e_norm = None;
            e.zip_map(mask, |e, m| match m {
                Some(m) => e.clone() * m.clone(),
                None => e.clone(),
            })
        }
        None => e,
    };
    let e_norm = e_norm.unwrap_or_else(|| e.norm());
    Made { e, e_norm }
}

/// A 0/1 tensor like `like` from host booleans.
pub(crate) fn mask_tensor(bits: &[bool], like: &Tensor<1>) -> Tensor<1> {
    let values: Vec<f64> = bits.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    let data = burn::tensor::TensorData::new(values, [bits.len()]);
    Tensor::from_data(data, (&like.device(), like.dtype()))
}
