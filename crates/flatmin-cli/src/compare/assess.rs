//! A run's comparisons decided together: every optimizer against the base (and against SAM on
//! the frontier) scored, one family under Holm's procedure ([`assess`]), each with its verdict,
//! costs and time to the base's accuracy ([`VersusBase`]).

use serde::Serialize;

use super::text::times;
use super::verdict::{Outcome, PairedDifference, Scored, score_runs, to_settle, verdict_in_family};
use super::{OptimizerResult, SplitDesign};
use crate::frontier::{self, Entry, FrontierPoint, Interval};
use crate::stats::{self, Discordance, Estimate};

/// When an accuracy curve first reaches `target`: the cumulative training time (optimizer steps
/// only, in seconds) at the end of that epoch, or `None`.
pub fn time_to_reach(curve: &[f64], seconds: &[f64], target: f64) -> Option<f64> {
    curve
        .iter()
        .zip(seconds)
        .find(|(acc, _)| **acc >= target - 1e-12)
        .map(|(_, s)| *s)
}

/// An optimizer against the base.
#[derive(Debug, Clone, Serialize)]
pub struct VersusBase {
    /// The optimizer.
    pub optimizer: String,
    /// Differences of test accuracy in points, paired by seed, with the reported interval's `t`
    /// and half-width.
    pub difference_points: PairedDifference,
    /// The reported interval in full: method, standard error and its parts (seeds; test examples
    /// or split), df, the smallest difference this run could detect (`None` without an interval).
    pub estimate: Option<Estimate>,
    /// The plain t-interval over seeds alone (the method before; for comparison, not for verdicts).
    pub plain_t_points: PairedDifference,
    /// Per-run differences (points): one per seed, or with cv2 one per fold (in the order of
    /// `test_accuracy`; a repetition's two folds side by side).
    pub per_seed_points: Vec<f64>,
    /// With cv2: the difference per repetition, the mean of its two folds (points).
    pub per_repetition_points: Option<Vec<f64>>,
    /// The interval's ends (points), if any.
    pub interval_points: Option<(f64, f64)>,
    /// What the interval says.
    pub outcome: Outcome,
    /// The comparison's p-value: the larger of the interval's and the exact sign test's (`None`
    /// without an interval).
    pub p_value: Option<f64>,
    /// Holm's decision over the run's family of comparisons (`None` without an interval).
    pub holm: Option<stats::Decision>,
    /// With full agreement on every example: the largest difference the rule of three still
    /// allows (points).
    pub rule_of_three_points: Option<f64>,
    /// Why there is no verdict, when `outcome` is `not_scored`.
    pub not_scored: Option<String>,
    /// The smallest true difference this run finds 80 % of the time (points).
    pub detectable_points: Option<f64>,
    /// Without a verdict: about how many seeds or how much data would settle the observed difference.
    pub to_settle: Option<String>,
    /// ms/step of the optimizer over that of the base.
    pub step_cost_ratio: f64,
    /// The optimizer's mean training time of a run (optimizer steps) over the base's.
    pub training_time_ratio: f64,
    /// The fraction of the optimizer's steps that ran the second pass.
    pub second_pass_fraction: Option<f64>,
    /// The base's final mean test accuracy (the target).
    pub target_accuracy: f64,
    /// Training time for the optimizer's mean curve to reach the target (s), or `None`.
    pub seconds_to_target: Option<f64>,
    /// The same for the base.
    pub base_seconds_to_target: f64,
    /// seconds_to_target / base_seconds_to_target, or `None` when not reached.
    pub reach_cost_ratio: Option<f64>,
    /// The sentence.
    pub verdict: String,
}

/// An interval as the frontier shows it.
fn frontier_interval(scored: &Scored) -> Interval {
    match scored {
        Scored::Estimated(e) => Interval {
            mean: e.mean,
            half_width: Some(e.half_width),
            method: Some(e.method),
        },
        other => Interval {
            mean: other.mean(),
            half_width: None,
            method: None,
        },
    }
}

/// Every verdict of a comparison's results (the base first): each optimizer against the base,
/// and, when SAM is among them with at least one other, each other against SAM (the frontier's
/// "Δ vs SAM"). One family: Holm's procedure decides them together at 5 % family-wise, and each
/// interval is shown at the level Holm used for it. Returns the comparisons with the base, the
/// frontier and the family's size.
pub fn assess(
    results: &[OptimizerResult],
    design: &SplitDesign,
    n_train: usize,
) -> (Vec<VersusBase>, Vec<FrontierPoint>, usize) {
    let sam = results.iter().position(|r| r.optimizer == "sam").filter(|&s| s > 0);
    let mut pairs: Vec<(usize, usize)> = (1..results.len()).map(|j| (0, j)).collect();
    if let Some(s) = sam.filter(|_| results.len() > 2) {
        pairs.extend((1..results.len()).filter(|&j| j != s).map(|j| (s, j)));
    }
    let scored: Vec<Scored> = pairs
        .iter()
        .map(|&(i, j)| score_pair(&results[i], &results[j], design, n_train))
        .collect();
    let members: Vec<usize> = (0..scored.len())
        .filter(|&k| matches!(scored[k], Scored::Estimated(_)))
        .collect();
    let estimates: Vec<&Estimate> = members
        .iter()
        .filter_map(|&k| match &scored[k] {
            Scored::Estimated(e) => Some(e),
            _ => None,
        })
        .collect();
    let decisions = stats::holm(&estimates, stats::ALPHA);
    let family = estimates.len();
    let mut decided: Vec<Option<stats::Decision>> = vec![None; scored.len()];
    for (&k, d) in members.iter().zip(&decisions) {
        decided[k] = Some(*d);
    }
    let adjusted: Vec<Scored> = scored
        .iter()
        .zip(&decided)
        .map(|(sc, d)| match (sc, d) {
            (Scored::Estimated(e), Some(d)) => Scored::Estimated(e.at_level(d.alpha)),
            (other, _) => other.clone(),
        })
        .collect();
    let find = |i: usize, j: usize| pairs.iter().position(|&p| p == (i, j));
    let versus = (1..results.len())
        .map(|j| {
            let k = find(0, j).expect("every optimizer is compared with the base");
            versus_from(
                &results[0],
                &results[j],
                design,
                adjusted[k].clone(),
                decided[k],
                family,
            )
        })
        .collect();
    let entries: Vec<Entry> = results
        .iter()
        .map(|r| Entry {
            label: r.label.clone(),
            ms_per_step: r.ms_per_step,
            training_seconds: r.training_seconds,
            second_pass_fraction: r.second_pass_fraction,
        })
        .collect();
    let interval = |i: usize, j: usize| {
        find(i, j).map_or(
            Interval {
                mean: f64::NAN,
                half_width: None,
                method: None,
            },
            |k| frontier_interval(&adjusted[k]),
        )
    };
    // The share of SAM's gain: shown only when SAM is called better than the base; Fieller's 95 %
    // interval from the three paired estimates (the covariance of the two gains by Var(a − b)).
    let share = |j: usize, s: usize| {
        let (a, b, ab) = (find(0, j)?, find(0, s)?, find(s, j)?);
        let sam_better = decided[b].is_some_and(|d| d.rejected) && scored[b].mean() > 0.0;
        if !sam_better {
            return None;
        }
        let (Scored::Estimated(ea), Scored::Estimated(eb), Scored::Estimated(eab)) =
            (&scored[a], &scored[b], &scored[ab])
        else {
            return None;
        };
        let (va, vb, vab) = (
            ea.standard_error.powi(2),
            eb.standard_error.powi(2),
            eab.standard_error.powi(2),
        );
        let critical = (eb.half_width_at(stats::ALPHA) - eb.continuity) / eb.standard_error;
        Some(frontier::Share {
            ratio: ea.mean / eb.mean,
            interval: stats::fieller(ea.mean, eb.mean, va, vb, (va + vb - vab) / 2.0, critical),
        })
    };
    let frontier = frontier::build_with(&entries, interval, sam, share);
    (versus, frontier, family)
}

/// The frontier of a comparison's results (the base first), with SAM as the reference when it
/// is among them: the frontier of [`assess`].
pub fn frontier_of(results: &[OptimizerResult], design: &SplitDesign, n_train: usize) -> Vec<FrontierPoint> {
    assess(results, design, n_train).1
}

/// The paired per-example outcomes of `method` against `base` scored under `design` (a family
/// of one, 95 %), or why not.
fn score_pair(base: &OptimizerResult, method: &OptimizerResult, design: &SplitDesign, n_train: usize) -> Scored {
    let outcomes: Vec<Discordance> = base
        .test_correct
        .iter()
        .zip(&method.test_correct)
        .map(|(b, m)| stats::discordance(b, m))
        .collect();
    match base.degenerate().or_else(|| method.degenerate()) {
        Some(why) => {
            let mean = 100.0 * (method.accuracy_mean - base.accuracy_mean);
            Scored::NotScored(why, mean)
        }
        None => score_runs(design, &outcomes, &base.test_examples, n_train),
    }
}

/// The comparison of `method` with `base` (results over the same seeds and splits), under
/// `design`, with `n_train` training examples per run, alone (a family of one; [`assess`]
/// decides a run's comparisons together).
pub fn versus_base(
    base: &OptimizerResult,
    method: &OptimizerResult,
    design: &SplitDesign,
    n_train: usize,
) -> VersusBase {
    let scored = score_pair(base, method, design, n_train);
    let decision = match &scored {
        Scored::Estimated(e) => Some(stats::holm(&[e], stats::ALPHA)[0]),
        _ => None,
    };
    versus_from(base, method, design, scored, decision, 1)
}

/// The comparison of `method` with `base` from its score (its interval at Holm's level).
fn versus_from(
    base: &OptimizerResult,
    method: &OptimizerResult,
    design: &SplitDesign,
    scored: Scored,
    decision: Option<stats::Decision>,
    family: usize,
) -> VersusBase {
    let per_seed_points: Vec<f64> = base
        .test_accuracy
        .iter()
        .zip(&method.test_accuracy)
        .map(|(b, m)| 100.0 * (m - b))
        .collect();
    let plain = PairedDifference::new(
        &base.test_accuracy.iter().map(|a| 100.0 * a).collect::<Vec<_>>(),
        &method.test_accuracy.iter().map(|a| 100.0 * a).collect::<Vec<_>>(),
    );
    let estimate = match &scored {
        Scored::Estimated(e) => Some(e.clone()),
        _ => None,
    };
    let step_cost_ratio = method.ms_per_step / base.ms_per_step;
    let target = base.accuracy_mean;
    let base_seconds = time_to_reach(&base.curve, &base.curve_seconds, target).unwrap_or(f64::NAN);
    let seconds = time_to_reach(&method.curve, &method.curve_seconds, target);
    let reach_cost_ratio = seconds.map(|s| s / base_seconds);
    let mut sentence = verdict_in_family(&method.name, &scored, design, step_cost_ratio, family);
    if !matches!(scored, Scored::NotScored(..)) {
        sentence.push_str(&match reach_cost_ratio {
            Some(r) => format!(
                "; it reaches {}'s final test accuracy ({:.2} %) at {} {}'s training time",
                base.name,
                100.0 * target,
                times(r),
                base.name
            ),
            None => format!(
                "; its mean test accuracy never reaches {}'s final {:.2} %",
                base.name,
                100.0 * target
            ),
        });
    }
    let difference_points = match &estimate {
        Some(e) => PairedDifference::from_estimate(&per_seed_points, e),
        None => PairedDifference {
            t: None,
            half_width: None,
            ..plain.clone()
        },
    };
    VersusBase {
        optimizer: method.optimizer.clone(),
        per_repetition_points: matches!(design, SplitDesign::TwoFold { .. })
            .then(|| per_seed_points.chunks(2).map(stats::mean).collect()),
        per_seed_points,
        interval_points: estimate.as_ref().map(|e| e.interval()),
        outcome: scored.outcome(),
        p_value: estimate.as_ref().map(|e| e.p_value()),
        holm: decision,
        rule_of_three_points: estimate.as_ref().and_then(|e| e.rule_of_three()),
        not_scored: match &scored {
            Scored::NotScored(why, _) => Some(why.clone()),
            _ => None,
        },
        detectable_points: estimate.as_ref().map(|e| e.detectable),
        to_settle: estimate
            .as_ref()
            .filter(|e| !e.significant() && e.mean != 0.0)
            .map(|e| to_settle(e, design, e.mean)),
        estimate,
        plain_t_points: plain,
        difference_points,
        step_cost_ratio,
        training_time_ratio: method.training_seconds / base.training_seconds,
        second_pass_fraction: method.second_pass_fraction,
        target_accuracy: target,
        seconds_to_target: seconds,
        base_seconds_to_target: base_seconds,
        reach_cost_ratio,
        verdict: sentence,
    }
}
