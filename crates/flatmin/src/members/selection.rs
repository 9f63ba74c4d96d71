//! ESAM's sharpness-sensitive data selection (the crate's ALGORITHMS.md §6.2): the second pass
//! uses the samples whose loss rises most from `w` to `w + e`.


use burn::config::Config;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{inject_into, Injection, MemberHooks, Shared, member_config};

/// How many of the sharpest samples are kept.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum SelectionRule {
    /// Exactly `k = max(1, round(γ·B))` samples, the sharpest (ties: lower position first).
    TopK,
    /// The official ESAM rule, for parity: `k = floor(γ·B)`, keep the samples strictly above the
    /// k-th largest sharpness (so `k − 1` without ties); γ ≥ 0.99 keeps all. Where that would
    /// keep none, the single sharpest sample is kept (the reference would produce NaN).
    OfficialStrict,
}

/// ESAM's sharpness-sensitive selection of the second pass's samples.
#[derive(Config, Debug, PartialEq)]
pub struct SelectionConfig {
    /// γ, the fraction of the batch kept (1: every sample, no selection).
    #[config(default = 0.5)]
    pub gamma: f64,
    /// How `k` is derived from γ.
    #[config(default = "SelectionRule::TopK")]
    pub rule: SelectionRule,
}

const HYPERPARAMETERS: &[Declared<SelectionConfig>] = &[declare!(
    number SelectionConfig, "esam_gamma", "ESAM's γ (fraction of samples in the second pass)", Range::SHARE, gamma => .replay(&["gamma"]))];

member_config! {
    impl SelectionConfig as "esam-selection" in Selection with HYPERPARAMETERS, fresh(_) = Self::new();

    fn needs_sample_losses(&self) -> bool {
        self.gamma < 1.0
    }

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Selector {
            active: self.needs_sample_losses(),
            chooser: Chooser::Rule(SharpestSamples {
                gamma: self.gamma,
                rule: self.rule,
            }),
        })
    }
}

/// Chooses the second-pass samples from the per-sample sharpness `ℓ_i(w+e) − ℓ_i(w)`.
///
/// The built-in rules come from [`SelectionConfig`]; a replay injects the recorded choices
/// ([`Injection::selector`]).
pub trait SampleSelector: Send {
    /// Sorted positions in the batch to keep.
    fn select(&mut self, sharpness: &[f64]) -> Vec<usize>;
}

impl Injection {
    /// Recorded choices in place of ESAM's selection rule.
    pub fn selector(source: Box<dyn SampleSelector>) -> Self {
        Injection::new(source, "the selection of samples")
    }
}

/// The selector a [`SelectionConfig`] builds.
#[derive(Debug, Clone, Copy)]
pub struct SharpestSamples {
    /// γ.
    pub gamma: f64,
    /// The rule.
    pub rule: SelectionRule,
}

impl SampleSelector for SharpestSamples {
    fn select(&mut self, sharpness: &[f64]) -> Vec<usize> {
        select_sharpest(sharpness, self.gamma, self.rule)
    }
}

/// The positions the rule keeps, sorted.
pub fn select_sharpest(sharpness: &[f64], gamma: f64, rule: SelectionRule) -> Vec<usize> {
    let b = sharpness.len();
    if b == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..b).collect();
    // Sharpest first; NaN (never produced by a finite step) sorts last; ties by position.
    order.sort_by(|&i, &j| {
        sharpness[j]
            .partial_cmp(&sharpness[i])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(i.cmp(&j))
    });
    let mut kept = match rule {
        SelectionRule::TopK => {
            let k = ((gamma * b as f64).round() as usize).clamp(1, b);
            order[..k].to_vec()
        }
        SelectionRule::OfficialStrict => {
            if gamma >= 0.99 {
                (0..b).collect()
            } else {
                let k = ((b as f64 * gamma).floor() as usize).clamp(1, b);
                let cutoff = sharpness[order[k - 1]];
                let kept: Vec<usize> = (0..b).filter(|&i| sharpness[i] > cutoff).collect();
                if kept.is_empty() { vec![order[0]] } else { kept }
            }
        }
    };
    kept.sort_unstable();
    kept
}

#[derive(Clone)]
enum Chooser {
    Rule(SharpestSamples),
    Custom(Shared<dyn SampleSelector>),
}

#[derive(Clone)]
struct Selector {
    /// γ < 1: the selection runs (γ = 1 keeps every sample, and needs no per-sample losses).
    active: bool,
    chooser: Chooser,
}

impl MemberHooks for Selector {

    fn selects(&self) -> bool {
        self.active
    }

    fn select(&mut self, sharpness: &[f64]) -> Option<Vec<usize>> {
        if !self.active {
            return None;
        }
        Some(match &mut self.chooser {
            Chooser::Rule(rule) => rule.select(sharpness),
            Chooser::Custom(shared) => shared.lock().expect("selector lock").select(sharpness),
        })
    }

    fn inject(&mut self, source: Injection) -> Option<Injection> {
        inject_into::<dyn SampleSelector>(source, |shared| self.chooser = Chooser::Custom(shared))
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_exactly_round_gamma_b() {
        let s = [0.1, 0.5, -0.2, 0.3, 0.9, 0.0];
        assert_eq!(select_sharpest(&s, 0.5, SelectionRule::TopK), vec![1, 3, 4]);
        assert_eq!(select_sharpest(&s, 0.01, SelectionRule::TopK), vec![4]);
        assert_eq!(select_sharpest(&s, 1.0, SelectionRule::TopK), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn official_rule_keeps_k_minus_one_and_all_above_099() {
        let s = [0.1, 0.5, -0.2, 0.3, 0.9, 0.0];
        // k = 3, cutoff = 0.3, strictly above: 0.5 and 0.9.
        assert_eq!(select_sharpest(&s, 0.5, SelectionRule::OfficialStrict), vec![1, 4]);
        assert_eq!(select_sharpest(&s, 0.995, SelectionRule::OfficialStrict).len(), 6);
        // All equal: strict keeps none, the sharpest one is kept instead of an empty batch.
        assert_eq!(select_sharpest(&[1.0; 4], 0.5, SelectionRule::OfficialStrict), vec![0]);
    }
}
