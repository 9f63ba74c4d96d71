//! Which samples the second pass uses: all of them, or ESAM's sharpness-sensitive subset
//! (docs/ALGORITHMS.md §6.2): the samples whose loss rises most from `w` to `w + e`.

use burn::config::Config;

use crate::error::{ConfigError, check_range};

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

/// The second pass's samples.
#[derive(Config, Debug, PartialEq)]
pub enum Selection {
    /// Every sample of the batch.
    All,
    /// ESAM's sharpness-sensitive data selection.
    SharpnessSensitive {
        /// γ, the fraction of the batch kept.
        gamma: f64,
        /// How `k` is derived from γ.
        rule: SelectionRule,
    },
}

impl Selection {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Selection::All => Ok(()),
            Selection::SharpnessSensitive { gamma, .. } => {
                check_range("selection.gamma", gamma, 0.0, false, 1.0, true, "a number in (0, 1]")
            }
        }
    }

    /// Whether this selection needs per-sample losses at `w` and `w + e`.
    pub fn needs_losses(&self) -> bool {
        matches!(self, Selection::SharpnessSensitive { gamma, .. } if *gamma < 1.0)
    }
}

/// Chooses the second-pass samples from the per-sample sharpness `ℓ_i(w+e) − ℓ_i(w)`.
///
/// The built-in rules come from [`Selection`]; a replay injects the recorded choices.
pub trait SampleSelector: Send {
    /// Sorted positions in the batch to keep.
    fn select(&mut self, sharpness: &[f64]) -> Vec<usize>;
}

/// The selector a [`Selection::SharpnessSensitive`] config builds.
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
