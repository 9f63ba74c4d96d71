//! How `g` (at `w`) and `g_p` (at `w + e`) become the update (docs/ALGORITHMS.md §7, §8).

use burn::config::Config;

use crate::error::{ConfigError, check_non_negative, check_range};
use crate::vector::ParamVector;

/// The combination of the two gradients.
#[derive(Config, Debug, PartialEq)]
pub enum Combination {
    /// SAM: the base optimizer gets `g_p`.
    Plain,
    /// GSAM: the base optimizer gets `g_p − α·g_⊥`, `g_⊥` the part of `g` orthogonal to `g_p`.
    Gsam {
        /// α, the weight of the surrogate-gap descent.
        alpha: f64,
    },
    /// WSAM: sharpness as a regularizer of weight `γ/(1−γ)`.
    Wsam {
        /// γ in [0, 1); γ = 1/2 is SAM, γ = 0 the base optimizer.
        gamma: f64,
        /// Decoupled: the base step takes `g`, then `w −= lr·α·(g_p − g)` outside its momentum
        /// and moments. Coupled: the base step takes `α·g_p + (1−α)·g`.
        decoupled: bool,
        /// Clip `g` and `g_p` each to this global norm (after `e` is made), as WSAM's code does.
        max_norm: Option<f64>,
    },
}

impl Combination {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Combination::Plain => Ok(()),
            Combination::Gsam { alpha } => check_non_negative("gsam.alpha", alpha),
            Combination::Wsam { gamma, max_norm, .. } => {
                check_range("wsam.gamma", gamma, 0.0, true, 1.0, false, "a number in [0, 1)")?;
                if let Some(m) = max_norm {
                    check_range(
                        "wsam.max_norm",
                        m,
                        0.0,
                        false,
                        f64::INFINITY,
                        false,
                        "a finite number > 0, or none",
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// What the base optimizer gets, and an optional plain step applied after it.
pub(crate) struct Combined {
    /// The gradient handed to the base optimizer.
    pub descent: ParamVector,
    /// WSAM decoupled: `g_p − g`, applied as `w −= (lr·α)·sharpness` after the base step.
    pub sharpness: Option<ParamVector>,
    /// α of the decoupled sharpness step.
    pub sharpness_weight: f64,
}

/// Norms and the inner product the combinations need, measured once per step.
pub(crate) struct Measures {
    pub g_norm: f64,
    pub gp_norm: f64,
    pub dot: f64,
}

/// `torch.nn.utils.clip_grad_norm_`'s factor: `min(1, max_norm / (norm + 1e-6))`.
fn clip_factor(max_norm: f64, norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Combines `g` and `g_p`. A tensor that got no first-pass gradient (left out by ESAM's mask)
/// uses `g_p` alone: its sharpness term is zero.
pub(crate) fn combine(
    combination: &Combination,
    eps: f64,
    g: &ParamVector,
    gp: &ParamVector,
    m: &Measures,
) -> Combined {
    let g_or_gp = gp.zip_map(g, |gp, g| g.cloned().unwrap_or_else(|| gp.clone()));
    match *combination {
        Combination::Plain => Combined {
            descent: gp.clone(),
            sharpness: None,
            sharpness_weight: 0.0,
        },
        Combination::Gsam { alpha } => {
            let cosine = m.dot / (m.gp_norm * m.g_norm + eps);
            let along = cosine * m.g_norm / (m.gp_norm + eps);
            let descent = gp.zip_map(&g_or_gp, |gp, g| {
                let g = g.expect("filled").clone();
                let vertical = g - gp.clone().mul_scalar(along);
                gp.clone() - vertical.mul_scalar(alpha)
            });
            Combined {
                descent,
                sharpness: None,
                sharpness_weight: 0.0,
            }
        }
        Combination::Wsam {
            gamma,
            decoupled,
            max_norm,
        } => {
            let alpha = gamma / (1.0 - gamma);
            let (cg, cgp) = match max_norm {
                Some(max) => (clip_factor(max, m.g_norm), clip_factor(max, m.gp_norm)),
                None => (1.0, 1.0),
            };
            let g_c = if cg == 1.0 { g_or_gp } else { g_or_gp.scaled(cg) };
            let gp_c = if cgp == 1.0 { gp.clone() } else { gp.scaled(cgp) };
            if decoupled {
                let sharpness = gp_c.zip_map(&g_c, |gp, g| gp.clone() - g.expect("filled").clone());
                Combined {
                    descent: g_c,
                    sharpness: Some(sharpness),
                    sharpness_weight: alpha,
                }
            } else {
                let descent = gp_c.zip_map(&g_c, |gp, g| {
                    gp.clone().mul_scalar(alpha) + g.expect("filled").clone().mul_scalar(1.0 - alpha)
                });
                Combined {
                    descent,
                    sharpness: None,
                    sharpness_weight: 0.0,
                }
            }
        }
    }
}
