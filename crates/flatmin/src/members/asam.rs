//! Adaptive SAM, both forms (Kwon, Kim, Park, Choi, "ASAM: Adaptive Sharpness-Aware
//! Minimization for Scale-Invariant Learning of Deep Neural Networks", ICML 2021;
//! the crate's ALGORITHMS.md §3): the ball is stretched by the weights' size, so the perturbation
//! does not depend on how the network's layers are scaled.
//!
//! * [`AsamConfig`], the official code (SamsungLabs/ASAM): `T = |w| + η` on weight tensors
//!   (path contains `weight`, or Burn's norm scale `gamma`), `T = 1` elsewhere;
//!   `e = ρ·T²⊙d / (‖T⊙d‖ + eps)`.
//! * [`SquaredAsamConfig`], the adaptive form of the common PyTorch SAM (davda54/sam, also the
//!   GSAM, ESAM, WSAM and F-SAM code): `e = ρ·w²⊙d / (‖|w|⊙d‖ + eps)` on every tensor.

use burn::config::Config;

use crate::hyperparameter::{Declaration, Declared, Kind, Range, Value, declare};
use crate::member::{member_config, Made, MemberHooks, Radius, StepInfo};
use crate::vector::ParamVector;

/// The official ASAM's ball.
#[derive(Config, Debug, PartialEq)]
pub struct AsamConfig {
    /// η, added to `|w|`.
    #[config(default = 0.01)]
    pub eta: f64,
}

/// The adaptive `w²` ball of the common PyTorch SAM (`adaptive=True`).
#[derive(Config, Debug, PartialEq)]
pub struct SquaredAsamConfig {}

const ASAM: &[Declared<AsamConfig>] = &[declare!(number AsamConfig, "asam_eta", "Official ASAM with this η", Range::NON_NEGATIVE, eta => .replay(&["eta"]))];

const SQUARED: &[Declared<SquaredAsamConfig>] = &[Declared {
    decl: Declaration::new("adaptive", "The adaptive `w²` form of the perturbation", Kind::Switch, Range::FINITE).replay(&["adaptive"]),
    get: |_| Value::Switch(true),
    set: |_, _, _| {},
}];

member_config! {
    impl AsamConfig as "asam" in Geometry with ASAM, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Asam { eta: self.eta })
    }
}

member_config! {
    impl SquaredAsamConfig as "adaptive" in Geometry with SQUARED, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Squared)
    }
}

/// Whether the official ASAM scales this tensor (`weight` in its PyTorch name; Burn calls a
/// norm layer's scale `gamma` where PyTorch says `weight`).
pub(crate) fn asam_scales(path: &str) -> bool {
    path.contains("weight") || path.rsplit('.').next() == Some("gamma")
}

#[derive(Clone)]
struct Asam {
    eta: f64,
}

impl MemberHooks for Asam {

    fn needs_weights(&self) -> bool {
        true
    }

    fn perturbation(&self, info: &StepInfo, radius: &Radius, d: &ParamVector, w: &ParamVector) -> Option<Made> {
        let t: ParamVector = d.map(|i, d| {
            if asam_scales(&info.layout.entries[i].path) {
                w.get(i).expect("param").clone().abs().add_scalar(self.eta)
            } else {
                d.ones_like()
            }
        });
        let td = d.zip_map(&t, |d, t| d.clone() * t.expect("t").clone());
        let n = td.norm() + radius.eps;
        let e = td.zip_map(&t, |td, t| {
            (td.clone() * t.expect("t").clone()).mul_scalar(radius.rho / n / radius.beta)
        });
        Some(Made { e, e_norm: None })
    }

    fn e_along_g(&self) -> bool {
        false
    }

}

#[derive(Clone)]
struct Squared;

impl MemberHooks for Squared {

    fn needs_weights(&self) -> bool {
        true
    }

    fn perturbation(&self, _: &StepInfo, radius: &Radius, d: &ParamVector, w: &ParamVector) -> Option<Made> {
        let wd = d.zip_map(w, |d, w| d.clone() * w.expect("param").clone().abs());
        let n = wd.norm();
        let scale = radius.rho / (n + radius.eps) / radius.beta;
        let e = d.zip_map(w, |d, w| {
            let w = w.expect("param");
            (w.clone() * w.clone() * d.clone()).mul_scalar(scale)
        });
        Some(Made { e, e_norm: None })
    }

    fn e_along_g(&self) -> bool {
        false
    }

}
