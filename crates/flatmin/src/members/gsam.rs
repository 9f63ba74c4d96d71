//! GSAM (Zhuang, Gong, Yuan, Cui, Adam, Dvornek, Tatikonda, Duncan, Liu, "Surrogate Gap Guided
//! Sharpness-Aware Minimization", ICLR 2022; the crate's ALGORITHMS.md §7): the base optimizer gets
//! `g_p − α·g_⊥`, `g_⊥` the part of `g` orthogonal to `g_p` (a descent on the surrogate gap that
//! leaves the perturbed loss unchanged). Its ρ schedule proportional to the learning rate is the
//! step's own ([`crate::RhoSchedule`]).

use burn::config::Config;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{member_config, Combined, Measures, MemberHooks};
use crate::vector::ParamVector;

/// GSAM's combination.
#[derive(Config, Debug, PartialEq)]
pub struct GsamConfig {
    /// α, the weight of the surrogate-gap descent.
    #[config(default = 0.4)]
    pub alpha: f64,
}

const HYPERPARAMETERS: &[Declared<GsamConfig>] =
    &[declare!(number GsamConfig, "gsam_alpha", "GSAM's α", Range::NON_NEGATIVE, alpha => .replay(&["gsam_alpha"]))];

member_config! {
    impl GsamConfig as "gsam" in Combination with HYPERPARAMETERS, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Gsam { alpha: self.alpha })
    }
}

#[derive(Clone)]
struct Gsam {
    alpha: f64,
}

impl MemberHooks for Gsam {

    fn needs_g_later(&self) -> bool {
        true
    }

    fn needs_dot(&self) -> bool {
        true
    }

    /// A tensor that got no first-pass gradient (left out by ESAM's mask) uses `g_p` alone.
    fn combine(&self, eps: f64, g: &ParamVector, gp: &ParamVector, m: &Measures) -> Option<Combined> {
        let g_or_gp = gp.zip_map(g, |gp, g| g.cloned().unwrap_or_else(|| gp.clone()));
        let dot = m.dot.expect("GSAM asks for g·g_p");
        let cosine = dot / (m.gp_norm * m.g_norm + eps);
        let along = cosine * m.g_norm / (m.gp_norm + eps);
        let alpha = self.alpha;
        let descent = gp.zip_map(&g_or_gp, |gp, g| {
            let g = g.expect("filled").clone();
            let vertical = g - gp.clone().mul_scalar(along);
            gp.clone() - vertical.mul_scalar(alpha)
        });
        Some(Combined {
            descent,
            sharpness: None,
            sharpness_weight: 0.0,
        })
    }

}
