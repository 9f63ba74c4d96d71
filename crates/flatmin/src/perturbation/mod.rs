//! How the perturbation `e` is made from the first-pass gradient `g` (docs/ALGORITHMS.md §2–§6).
//!
//! Three independent pieces: an optional *direction* transform (F-SAM removes an EMA of past
//! gradients, [`friendly`]), a *geometry* that normalizes the direction into a ball of radius ρ
//! (Euclidean, the two adaptive forms, the Fisher ellipsoid, here), and an optional
//! *stochastic mask* (ESAM's SWP, in [`crate::masks`]) that keeps a random part of `e` and scales
//! it by 1/β.

pub(crate) mod friendly;

pub use friendly::FriendlyConfig;

use burn::config::Config;

use crate::bridge::Layout;
use crate::error::{ConfigError, check_non_negative};
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

impl Geometry {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Geometry::Asam { eta } => check_non_negative("eta", eta),
            Geometry::Fisher { eta } => check_non_negative("eta", eta),
            _ => Ok(()),
        }
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
