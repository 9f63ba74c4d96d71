//! Randomized sharpness training (RST / SS-SAM; Zhao, Zhang, Hu, "Randomized Sharpness-Aware
//! Training for Boosting Computational Efficiency in Deep Learning", arXiv 2203.09962): each step
//! is a SAM step with probability `p`, the others base steps on `g`. The draw of step `t` is the
//! `t`-th output of a SplitMix64 stream seeded with `seed` ([`uniform_at`]), so it needs no state
//! and a replay or a resumed run draws the same steps.

use burn::config::Config;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{member_config, MemberHooks};

/// SAM steps at random.
#[derive(Config, Debug, PartialEq)]
pub struct RandomConfig {
    /// The probability of a SAM step, in [0, 1].
    #[config(default = 0.5)]
    pub probability: f64,
    /// The seed of the draws.
    #[config(default = 0)]
    pub seed: u64,
}

const HYPERPARAMETERS: &[Declared<RandomConfig>] = &[
    declare!(
        number RandomConfig, "sam_probability",
        "Randomized sharpness training, for any member: each step a SAM step with probability P (seeded by --seed)",
        Range::PROBABILITY, probability => .replay(&["sam_probability"])),
    declare!(whole RandomConfig, "sam_seed", "The seed of the random SAM steps", Range::WHOLE, seed => .replay(&["sam_seed"]).hidden()),
];

member_config! {
    impl RandomConfig as "rst" in Schedule with HYPERPARAMETERS, fresh(context) = Self::new().with_seed(context.seed);

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Random {
            probability: self.probability,
            seed: self.seed,
        })
    }
}

/// The `index`-th output of the SplitMix64 stream seeded with `seed`, as a uniform number in
/// [0, 1) (53 bits).
pub fn uniform_at(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[derive(Clone)]
struct Random {
    probability: f64,
    seed: u64,
}

impl MemberHooks for Random {

    fn plan(&self, step: u64) -> Option<bool> {
        Some(uniform_at(self.seed, step) < self.probability)
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberConfig;

    fn runs(probability: f64, seed: u64, steps: u64) -> Vec<bool> {
        let m = RandomConfig::new().with_probability(probability).with_seed(seed).build();
        (0..steps).map(|t| m.plan(t).unwrap()).collect()
    }

    #[test]
    fn random_draws_follow_p_and_the_limits_are_exact() {
        let half = runs(0.5, 3, 10_000).into_iter().filter(|&r| r).count();
        assert!((half as f64 / 10_000.0 - 0.5).abs() < 0.02, "{half}");
        assert!(runs(1.0, 3, 1000).into_iter().all(|r| r));
        assert!(runs(0.0, 3, 1000).into_iter().all(|r| !r));
        assert_ne!(runs(0.5, 3, 64), runs(0.5, 4, 64));
        assert!(RandomConfig::new().with_probability(1.5).validate().is_err());
        assert!(RandomConfig::new().with_probability(f64::NAN).validate().is_err());
    }

    #[test]
    fn splitmix_stream_matches_its_definition() {
        // SplitMix64 seeded with 0: first output 0xE220A8397B1DCDAF.
        let expected = (0xE220_A839_7B1D_CDAFu64 >> 11) as f64 / (1u64 << 53) as f64;
        assert_eq!(uniform_at(0, 0), expected);
    }
}
