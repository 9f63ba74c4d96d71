//! WSAM (Yue, Jiang, Ye, Gao, Liu, Zhang, "Sharpness-Aware Minimization Revisited: Weighted
//! Sharpness as a Regularization Term", KDD 2023; the crate's ALGORITHMS.md §8): sharpness as a
//! regularizer of weight `α = γ/(1−γ)`. Coupled, the base optimizer takes `α·g_p + (1−α)·g`;
//! decoupled, it takes `g`, then `w −= lr·α·(g_p − g)` outside its momentum and moments.
//! Optionally `g` and `g_p` are each clipped to a global norm first, as WSAM's code does.

use burn::config::Config;

use crate::hyperparameter::{Declaration, Declared, Kind, Range, Value, declare};
use crate::member::{member_config, Combined, Measures, MemberHooks};
use crate::vector::ParamVector;

/// WSAM's combination.
#[derive(Config, Debug, PartialEq)]
pub struct WsamConfig {
    /// γ in [0, 1); γ = 1/2 is SAM, γ = 0 the base optimizer.
    #[config(default = 0.9)]
    pub gamma: f64,
    /// Decoupled: the sharpness term is applied outside the base optimizer's state.
    #[config(default = true)]
    pub decoupled: bool,
    /// Clip `g` and `g_p` each to this global norm (after `e` is made), or none.
    #[config(default = "None")]
    pub max_norm: Option<f64>,
}

/// The valid clipping norms.
const MAX_NORM: Range = Range::new(0.0, false, f64::INFINITY, false, "a finite number > 0, or none");

const HYPERPARAMETERS: &[Declared<WsamConfig>] = &[
    declare!(number WsamConfig, "wsam_gamma", "WSAM's γ", Range::FRACTION, gamma => .replay(&["gamma"])),
    Declared {
        decl: Declaration::new("wsam_coupled", "WSAM coupled (sharpness through the base optimizer's momentum) instead of decoupled", Kind::Switch, Range::FINITE),
        get: |c| Value::Switch(!c.decoupled),
        set: |c, v, _| c.decoupled = !v.on(),
    },
    declare!(switch WsamConfig, "wsam_decoupled", "WSAM decoupled (reference trajectories' spelling)", decoupled => .replay(&["decouple"]).hidden()),
    Declared {
        decl: Declaration::new("wsam_max_norm", "WSAM's max-norm clipping of both gradients", Kind::Number, MAX_NORM).replay(&["max_norm"]).words(&["none"]),
        get: |c| c.max_norm.map_or(Value::Word("none"), Value::Number),
        set: |c, v, _| c.max_norm = v.number(),
    },
];

member_config! {
    impl WsamConfig as "wsam" in Combination with HYPERPARAMETERS, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Wsam { config: self.clone() })
    }
}

#[derive(Clone)]
struct Wsam {
    config: WsamConfig,
}

/// `torch.nn.utils.clip_grad_norm_`'s factor: `min(1, max_norm / (norm + 1e-6))`.
fn clip_factor(max_norm: f64, norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

impl MemberHooks for Wsam {

    fn needs_g_later(&self) -> bool {
        true
    }

    fn needs_gp_norm(&self) -> bool {
        self.config.max_norm.is_some()
    }

    /// A tensor that got no first-pass gradient (left out by ESAM's mask) uses `g_p` alone: its
    /// sharpness term is zero.
    fn combine(&self, _eps: f64, g: &ParamVector, gp: &ParamVector, m: &Measures) -> Option<Combined> {
        let WsamConfig {
            gamma,
            decoupled,
            max_norm,
        } = self.config;
        let g_or_gp = gp.zip_map(g, |gp, g| g.cloned().unwrap_or_else(|| gp.clone()));
        let alpha = gamma / (1.0 - gamma);
        let (cg, cgp) = match max_norm {
            Some(max) => (clip_factor(max, m.g_norm), clip_factor(max, m.gp_norm)),
            None => (1.0, 1.0),
        };
        let g_c = if cg == 1.0 { g_or_gp } else { g_or_gp.scaled(cg) };
        let gp_c = if cgp == 1.0 { gp.clone() } else { gp.scaled(cgp) };
        Some(if decoupled {
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
        })
    }

}
