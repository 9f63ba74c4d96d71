//! MSAM, momentum-SAM (Becker, Altrock, Risse, "Momentum-SAM: Sharpness Aware Minimization
//! without Computational Overhead", arXiv 2401.12033, 2024; code MarlonBecker/MSAM,
//! `optimizer/msam.py` and `adamW_msam.py`; the crate's ALGORITHMS.md §13.6): one forward-backward pass
//! per step, taken at a point moved along the base optimizer's momentum instead of along a fresh
//! gradient:
//!
//! `w̃ = w − ρ·v/(‖v‖ + eps)`, `g = ∇L(w̃)`, then the base optimizer's step on `w` with `g`,
//!
//! where `v` is SGD's momentum buffer (the SGD form) or Adam's first moment `m` without bias
//! correction (the AdamW form), and `w̃ = w` before the first step. A weight decay added to the
//! gradient is taken at `w̃`, as the authors' code does (`g + wd·w̃`, the base optimizer's decay
//! at the first pass's point); the AdamW form decays the weights after the moment step (the MSAM preset sets
//! [`AdamBaseConfig::decay_after_step`](crate::AdamBaseConfig::decay_after_step)).
//!
//! Unlike the reference, which keeps `w̃` in the model between steps and asks the user to move
//! back before evaluating, the model always holds `w`: the step computes `w̃` for its pass.

use burn::config::Config;

use crate::member::{member_config, MemberHooks, StepInfo};
use crate::vector::{ParamVector, read};

/// MSAM: the perturbation along the momentum, ρ and eps from the step's own settings.
#[derive(Config, Debug, PartialEq)]
pub struct MsamConfig {}

member_config! {
    impl MsamConfig as "msam" in Whole with &[], fresh(_) = Self::new();

    const ALONE: Option<(&'static str, &'static str)> = Some((
        "nothing with MSAM: MSAM is one pass along the momentum, with no ascent of its own to change",
        "a setting of MSAM's step: it applies with the msam preset only",
    ));
    fn own_update(&self) -> bool {
        true
    }

    fn skips_second_passes(&self) -> bool {
        true
    }

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Msam)
    }
}

#[derive(Clone)]
struct Msam;

impl MemberHooks for Msam {

    /// Every step is one pass.
    fn plan(&self, _step: u64) -> Option<bool> {
        Some(false)
    }

    /// `−ρ·v/(‖v‖ + eps)` over the parameters that have a momentum (none before the first step).
    fn first_pass_offset(&mut self, info: &StepInfo, _: &ParamVector) -> Option<(ParamVector, Option<f64>)> {
        let v = ParamVector::new(
            info.layout
                .entries
                .iter()
                .map(|entry| info.base.first_moment(&entry.path).cloned())
                .collect(),
        );
        if v.is_vacant() {
            return None;
        }
        let norm = read(vec![v.squared_norm_lazy()])[0].sqrt();
        let scale = -info.rho / (norm + info.eps);
        Some((v.scaled(scale), Some(scale.abs() * norm)))
    }

    fn decays_at_first_pass_point(&self) -> bool {
        true
    }

}
