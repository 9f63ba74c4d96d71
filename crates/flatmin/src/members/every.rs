//! SAM on a schedule: steps 0, k, 2k, … run the second pass, the others are base steps on the
//! first-pass gradient alone (one forward-backward pass). LookSAM's `k`.

use burn::config::Config;

use crate::hyperparameter::{Declared, Range, declare};
use crate::member::{MemberHooks, member_config};

/// A SAM step every `k` steps.
#[derive(Config, Debug, PartialEq)]
pub struct EveryConfig {
    /// The period, ≥ 1 (1 is SAM at every step).
    #[config(default = 5)]
    pub k: u64,
}

const HYPERPARAMETERS: &[Declared<EveryConfig>] = &[declare!(
    whole EveryConfig, "sam_every", "SAM on a schedule, for any member: a SAM step every K steps, base steps between (LookSAM's k)",
    Range::COUNT, k => .replay(&["sam_every", "k"]))];

member_config! {
    impl EveryConfig as "every" in Schedule with HYPERPARAMETERS, fresh(_) = Self::new();

    fn build(&self) -> Box<dyn MemberHooks> {
        Box::new(Every { k: self.k.max(1) })
    }
}

#[derive(Clone)]
struct Every {
    k: u64,
}

impl MemberHooks for Every {

    fn plan(&self, step: u64) -> Option<bool> {
        Some(step.is_multiple_of(self.k))
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberConfig;

    #[test]
    fn every_k_runs_steps_0_k_2k() {
        let s = EveryConfig::new().with_k(3).build();
        let runs: Vec<bool> = (0..7).map(|t| s.plan(t).unwrap()).collect();
        assert_eq!(runs, [true, false, false, true, false, false, true]);
        assert_eq!(EveryConfig::new().with_k(0).validate().unwrap_err().field, "sam_every");
    }
}
