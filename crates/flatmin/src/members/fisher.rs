//! Fisher-SAM (Kim, Li, Hu, Hospedales, "Fisher SAM: Information Geometry and Sharpness Aware
//! Minimisation", ICML 2022; the crate's ALGORITHMS.md §4): the ball is the ellipsoid
//! `eᵀ diag(f) e = ρ²` of the diagonal Fisher `f = 1 + η·g²`, so
//! `e = ρ·(d/f) / (sqrt(Σ d²/f) + eps)`.

use burn::config::Config;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{member_config, Made, MemberHooks, Radius, StepInfo};
use crate::vector::{ParamVector, read};

/// Fisher-SAM's ellipsoid.
#[derive(Config, Debug, PartialEq)]
pub struct FisherConfig {
    /// The Fisher strength η (depends on the gradient's scale).
    #[config(default = 1.0)]
    pub eta: f64,
}

const HYPERPARAMETERS: &[Declared<FisherConfig>] =
    &[declare!(number FisherConfig, "fisher_eta", "Fisher-SAM with this η", Range::NON_NEGATIVE, eta)];

member_config! {
    impl FisherConfig as "fisher" in Geometry with HYPERPARAMETERS, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Fisher { eta: self.eta })
    }
}

#[derive(Clone)]
struct Fisher {
    eta: f64,
}

impl MemberHooks for Fisher {

    fn perturbation(&self, _: &StepInfo, radius: &Radius, d: &ParamVector, _: &ParamVector) -> Option<Made> {
        let eta = self.eta;
        let u = d.map(|_, d| d.clone() / (d.clone() * d.clone()).mul_scalar(eta).add_scalar(1.0));
        let quad = read(vec![d.dot_lazy(&u)])[0];
        let scale = radius.rho / (quad.max(0.0).sqrt() + radius.eps) / radius.beta;
        Some(Made {
            e: u.scaled(scale),
            e_norm: None,
        })
    }

    fn e_along_g(&self) -> bool {
        false
    }

}
