//! Unified SAM (Oikonomou & Loizou, "Sharpness-Aware Minimization: General Analysis and
//! Improved Rates", ICLR 2025; code dimitris-oik/unifiedsam, `unifiedsam.py`;
//! the crate's ALGORITHMS.md §14): one family between unnormalized SAM (USAM, `e = ρ·g`) and
//! SAM (`e = ρ·g/‖g‖`):
//!
//! `e = ρ·(1 − λ + λ/(‖g‖ + eps))·g`,
//!
//! with λ a number in [0, 1] (0: USAM, 1: SAM) or a schedule over the steps `t = 1, 2, …`:
//! `1/t` (SAM at the first step, towards USAM) or `1 − 1/t` (USAM at the first step, towards SAM).

use burn::config::Config;

use crate::hyperparameter::{Declaration, Declared, Kind, Range, Value};
use crate::member::{member_config, Made, MemberHooks, Radius, StepInfo};
use crate::vector::ParamVector;

/// λ of Unified SAM: a number or a schedule over the steps.
#[derive(Config, Debug, PartialEq)]
pub enum UnifiedLambda {
    /// The same λ at every step.
    Constant {
        /// λ in [0, 1].
        lambda: f64,
    },
    /// `λ_t = 1/t`: SAM at the first step, towards USAM.
    InverseT,
    /// `λ_t = 1 − 1/t`: USAM at the first step, towards SAM.
    OneMinusInverseT,
}

impl UnifiedLambda {
    /// λ at step `t` (counted from 1).
    pub fn at(&self, t: u64) -> f64 {
        match *self {
            UnifiedLambda::Constant { lambda } => lambda,
            UnifiedLambda::InverseT => 1.0 / t as f64,
            UnifiedLambda::OneMinusInverseT => 1.0 - 1.0 / t as f64,
        }
    }
}

/// Unified SAM's ball.
#[derive(Config, Debug, PartialEq)]
pub struct UnifiedConfig {
    /// λ: how far towards SAM's normalized ascent (1) from USAM's unnormalized one (0).
    #[config(default = "UnifiedLambda::Constant { lambda: 0.5 }")]
    pub lambda: UnifiedLambda,
}

const HYPERPARAMETERS: &[Declared<UnifiedConfig>] = &[Declared {
    decl: Declaration::new("unified_lambda", "Unified SAM's λ in [0, 1] (0: USAM, 1: SAM), or the schedule 1/t or 1-1/t", Kind::Number, Range::PROBABILITY).replay(&["lambda"]).words(&["1/t", "1-1/t"]),
    get: |c| match c.lambda {
        UnifiedLambda::Constant { lambda } => Value::Number(lambda),
        UnifiedLambda::InverseT => Value::Word("1/t"),
        UnifiedLambda::OneMinusInverseT => Value::Word("1-1/t"),
    },
    set: |c, v, _| {
        c.lambda = match v {
            Value::Word("1/t") => UnifiedLambda::InverseT,
            Value::Word(_) => UnifiedLambda::OneMinusInverseT,
            v => UnifiedLambda::Constant {
                lambda: v.number().unwrap_or(f64::NAN),
            },
        }
    },
}];

member_config! {
    impl UnifiedConfig as "unified" in Geometry with HYPERPARAMETERS, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Unified {
            lambda: self.lambda.clone(),
        })
    }
}

#[derive(Clone)]
struct Unified {
    lambda: UnifiedLambda,
}

impl MemberHooks for Unified {

    fn perturbation(&self, info: &StepInfo, radius: &Radius, d: &ParamVector, _: &ParamVector) -> Option<Made> {
        let n = radius.d_norm.unwrap_or_else(|| d.norm());
        let lambda = self.lambda.at(info.step + 1);
        let scale = radius.rho * (1.0 - lambda + lambda / (n + radius.eps)) / radius.beta;
        Some(Made {
            e: d.scaled(scale),
            e_norm: Some(scale.abs() * n),
        })
    }

}
