//! The score of one comparison and its sentence: the paired difference ([`PairedDifference`]),
//! its interval under the run's design ([`score_runs`], [`Scored`]), what it says ([`Outcome`]),
//! the verdict in words ([`verdict_in_family`]) and what would settle an open question
//! ([`to_settle`]).

use serde::Serialize;

use super::SplitDesign;
use super::text::{decimals, signed, times};
use crate::stats::{self, Discordance, Estimate, mean_std, t_quantile};

/// The difference of a method to the base over paired seeds (in accuracy points), with its
/// two-sided 95 % interval when there are two seeds or more. `t` and `half_width` are those of the
/// interval `flatmin compare` reports (see [`crate::stats`]); [`PairedDifference::new`] alone
/// gives the plain t-interval over seeds, which ignores the test set's sampling error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDifference {
    /// Seeds (pairs).
    pub n: usize,
    /// Mean of the per-seed differences, method − base.
    pub mean: f64,
    /// Sample standard deviation of the per-seed differences (0 with one seed).
    pub std: f64,
    /// The 0.975 quantile of t with the interval's degrees of freedom (`None` with one seed).
    pub t: Option<f64>,
    /// The interval is mean ± this (`None` with one seed).
    pub half_width: Option<f64>,
}

impl PairedDifference {
    /// Pairs `method[i]` with `base[i]` (the same seed) and takes the differences: the plain
    /// t-interval over seeds.
    pub fn new(base: &[f64], method: &[f64]) -> Self {
        let d: Vec<f64> = base.iter().zip(method).map(|(b, m)| m - b).collect();
        let n = d.len();
        let (mean, std) = mean_std(&d);
        let t = (n >= 2).then(|| t_quantile(0.975, (n - 1) as f64));
        Self {
            n,
            mean,
            std: if n >= 2 { std } else { 0.0 },
            t,
            half_width: t.map(|t| t * std / (n as f64).sqrt()),
        }
    }

    /// The per-seed differences `per_seed` with the interval of `estimate`.
    pub fn from_estimate(per_seed: &[f64], estimate: &Estimate) -> Self {
        let (_, std) = mean_std(per_seed);
        Self {
            n: per_seed.len(),
            mean: estimate.mean,
            std,
            t: Some(estimate.t),
            half_width: Some(estimate.half_width),
        }
    }

    /// The interval's ends, low and high.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.half_width.map(|h| (self.mean - h, self.mean + h))
    }

    /// What the interval says.
    pub fn outcome(&self) -> Outcome {
        match self.interval() {
            None => Outcome::OneSeed,
            Some((lo, _)) if lo > 0.0 => Outcome::Better,
            Some((_, hi)) if hi < 0.0 => Outcome::Worse,
            Some(_) => Outcome::NoDifference,
        }
    }
}

/// The verdict on a method against the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Significant, above 0: the whole interval (at Holm's level for it) is above 0 and the
    /// exact sign test agrees.
    Better,
    /// Significant, below 0.
    Worse,
    /// Not significant: the interval contains 0, or the sign test does not confirm it.
    NoDifference,
    /// One seed: no interval, no verdict.
    OneSeed,
    /// A degenerate run (most steps skipped, no test example): no verdict, a reason instead.
    NotScored,
}

/// What the statistics of one comparison are built from.
// A run holds a handful of these: the size of the estimate does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Scored {
    /// An interval.
    Estimated(Estimate),
    /// One seed: the mean difference only.
    OneSeed(f64),
    /// No verdict, and why (the mean difference, if there is one).
    NotScored(String, f64),
}

impl Scored {
    /// The outcome the interval (or its absence) gives.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Estimated(e) if e.significant() && e.mean > 0.0 => Outcome::Better,
            Self::Estimated(e) if e.significant() => Outcome::Worse,
            Self::Estimated(_) => Outcome::NoDifference,
            Self::OneSeed(_) => Outcome::OneSeed,
            Self::NotScored(..) => Outcome::NotScored,
        }
    }

    /// The mean difference (points).
    pub fn mean(&self) -> f64 {
        match self {
            Self::Estimated(e) => e.mean,
            Self::OneSeed(m) | Self::NotScored(_, m) => *m,
        }
    }
}

/// The interval of `design` on the paired per-example outcomes (`outcomes[run]`), or why there
/// is none. With cv2 the folds' test examples are needed: [`score_runs`].
pub fn score(design: &SplitDesign, outcomes: &[Discordance], n_train: usize) -> Scored {
    score_runs(design, outcomes, &[], n_train)
}

/// [`score`] with the data-set indices of every run's test examples (`examples[run]`, in the
/// order of its outcomes), which repeated 2-fold cross-validation pairs across repetitions.
pub fn score_runs(design: &SplitDesign, outcomes: &[Discordance], examples: &[Vec<usize>], n_train: usize) -> Scored {
    let per_seed: Vec<f64> = outcomes
        .iter()
        .map(|d| 100.0 * d.iter().map(|&x| f64::from(x)).sum::<f64>() / d.len().max(1) as f64)
        .collect();
    // No run at all: a mean of 0 (one seed's verdict says so).
    let mean = if per_seed.is_empty() {
        0.0
    } else {
        stats::mean(&per_seed)
    };
    if outcomes.iter().any(|d| d.is_empty()) {
        return Scored::NotScored("no test example to score".into(), f64::NAN);
    }
    if outcomes.len() < 2 {
        return Scored::OneSeed(mean);
    }
    let estimate = match design {
        SplitDesign::TwoFold { .. } => {
            if examples.len() != outcomes.len() || examples.iter().zip(outcomes).any(|(e, o)| e.len() != o.len()) {
                return Scored::NotScored("the folds' test examples are not known".into(), mean);
            }
            let folds: Vec<stats::Fold> = outcomes
                .iter()
                .zip(examples)
                .map(|(o, e)| stats::Fold {
                    outcomes: o.clone(),
                    examples: e.clone(),
                })
                .collect();
            stats::two_fold_cv(&folds)
        }
        SplitDesign::PerSeed { .. } => stats::random_splits(outcomes, n_train),
        SplitDesign::Fixed { .. } => stats::seeds_and_test_examples(outcomes),
    };
    match estimate {
        Some(e) => Scored::Estimated(e),
        None => Scored::NotScored("the seeds' test sets do not pair up".into(), mean),
    }
}

/// "about 40 seeds" / "about 3× the test data" advice for a difference of `delta` points, each
/// with the 90 % range its variance estimate allows (it rests on few degrees of freedom).
pub fn to_settle(e: &Estimate, design: &SplitDesign, delta: f64) -> String {
    let data_word = match design {
        SplitDesign::TwoFold { .. } => "data",
        SplitDesign::PerSeed { .. } => "data (same split fractions)",
        SplitDesign::Fixed { .. } => "test examples",
    };
    let seeds_word = match design {
        SplitDesign::TwoFold { .. } => "repetitions",
        _ => "seeds",
    };
    let range = |low: String, high: String| {
        if low == high {
            String::new()
        } else {
            format!(" (90 % range {low} to {high})")
        }
    };
    let seeds = match e.seeds_to_detect(delta) {
        Some(j) => {
            let (low, high) = e.seeds_to_detect_range(delta);
            format!(
                "about {j} {seeds_word}{}",
                range(
                    low.map_or("over 10 000".into(), |l| l.to_string()),
                    high.map_or("over 10 000".into(), |h| h.to_string())
                )
            )
        }
        None => format!(
            "more {seeds_word} alone would not (the {} limits it)",
            match design {
                SplitDesign::TwoFold { .. } => "data set's own sampling, which every repetition shares,",
                SplitDesign::PerSeed { .. } => "part every split of this data set shares",
                SplitDesign::Fixed { .. } => "test set",
            }
        ),
    };
    let data = match e.data_to_detect(delta) {
        Some(f) if f <= 1.0 => "the data as it is".to_string(),
        Some(f) => {
            let (low, high) = e.data_to_detect_range(delta);
            let factor = |x: Option<f64>| x.map_or("over 10 000×".into(), |x| format!("{}×", round_up(x.max(1.0))));
            format!(
                "about {}× the {data_word} at {} {seeds_word}{}",
                round_up(f),
                e.seeds,
                range(factor(low), factor(high))
            )
        }
        None => {
            format!("more {data_word} alone would not (the seeds' own spread, which data does not remove, limits it)")
        }
    };
    if e.seeds_to_detect(delta).is_none() && e.data_to_detect(delta).is_none() {
        // Neither alone: both, scaled together.
        let j = e.seeds as f64;
        return match (1..=40)
            .map(|k| 1.25f64.powi(k))
            .find(|&f| e.detectable_at((j * f).ceil(), f) <= delta.abs())
        {
            Some(f) => format!(
                "both more {seeds_word} and more {data_word}: about {} {seeds_word} and {}× the {data_word}",
                (j * f).ceil(),
                round_up(f)
            ),
            None => format!("far more {seeds_word} and {data_word} than this run (over 7000×)"),
        };
    }
    format!("{seeds}, or {data}")
}

/// A factor rounded up to a readable figure: 1.3, 4, 12, 120.
fn round_up(f: f64) -> String {
    if f < 2.0 {
        format!("{:.1}", (f * 10.0).ceil() / 10.0)
    } else if f < 20.0 {
        format!("{}", f.ceil())
    } else {
        let step = 10f64.powf(f.log10().floor() - 1.0);
        format!("{}", (f / step).ceil() * step)
    }
}

/// What the interval is over, for the verdict: "3 seeds, each on its own split" or "3 seeds and
/// the 113 test examples".
fn over(e: &Estimate) -> String {
    match e.method {
        stats::Method::TwoFoldCv => format!(
            "{} of 2-fold cross-validation of {} examples",
            runs(e.seeds, e.method),
            e.examples_seen.round()
        ),
        stats::Method::RandomSplits => format!("{} seeds, each on its own split", e.seeds),
        stats::Method::SeedsAndTestExamples => {
            format!("{} seeds and the {} test examples", e.seeds, e.test_examples.round())
        }
        stats::Method::PlainT => format!("{} seeds", e.seeds),
    }
}

/// "3 seeds", "1 seed", "3 repetitions" (of 2-fold cross-validation).
fn runs(j: usize, method: stats::Method) -> String {
    let word = if method == stats::Method::TwoFoldCv {
        "repetition"
    } else {
        "seed"
    };
    format!("{j} {word}{}", if j == 1 { "" } else { "s" })
}

/// "95 %", "98.3 %": a confidence level for reports.
pub fn level_text(level: f64) -> String {
    let percent = 100.0 * level;
    if (percent - percent.round()).abs() < 1e-9 {
        format!("{percent:.0} %")
    } else {
        format!("{percent:.1} %")
    }
}

/// The plain-language verdict on `name` (e.g. "SAM") against the base, at `step_cost` times the
/// base's time per step, alone (a family of one): see [`verdict_in_family`].
pub fn verdict(name: &str, scored: &Scored, design: &SplitDesign, step_cost: f64) -> String {
    verdict_in_family(name, scored, design, step_cost, 1)
}

/// The plain-language verdict on `name` against the base, one of `family` verdicts of the run:
/// "SAM is better by 1.2 ± 0.4 points at 2.0× the cost per step (95 % CI over …)", "SAM: no
/// difference detectable with 3 seeds (−0.3 ± 0.9 points) at 2.0× the cost per step; this run
/// could detect about 2.5 points …", "SAM is worse by …"; a significant-looking interval the exact
/// sign test does not confirm says so; full agreement says what the rule of three still allows;
/// with one seed the difference and that there is no interval, and for a degenerate run the
/// reason there is no verdict.
pub fn verdict_in_family(name: &str, scored: &Scored, design: &SplitDesign, step_cost: f64, family: usize) -> String {
    let cost = format!("at {} the cost per step", times(step_cost));
    let holm = if family > 1 {
        format!("; Holm's level for one of the run's {family} comparisons")
    } else {
        String::new()
    };
    let level = |e: &Estimate| {
        if (e.level - stats::CONFIDENCE).abs() < 1e-12 {
            String::new()
        } else {
            format!(", {} CI", level_text(e.level))
        }
    };
    match scored {
        Scored::Estimated(e) if e.significant() => {
            let k = decimals(e.mean, e.half_width);
            let word = if e.mean > 0.0 { "better" } else { "worse" };
            format!(
                "{name} is {word} by {} ± {:.*} points {cost} ({} CI over {}{holm})",
                signed(e.mean.abs(), k, false),
                k,
                e.half_width,
                level_text(e.level),
                over(e)
            )
        }
        Scored::Estimated(e) if e.standard_error == 0.0 => {
            let mut s = format!(
                "{name}: no difference with {} (+0.0 ± 0.0 points: the two agree on every test example of every {}",
                runs(e.seeds, e.method),
                if e.method == stats::Method::TwoFoldCv {
                    "fold"
                } else {
                    "seed"
                }
            );
            if let Some(bound) = e.rule_of_three() {
                s.push_str(&format!(
                    "; with 0 of {} examples discordant, the difference on new data could still be up to about {:.1} \
                     points, by the rule of three",
                    e.examples_seen.round(),
                    bound
                ));
            }
            s.push_str(&format!(") {cost}"));
            s
        }
        Scored::Estimated(e) => {
            let k = decimals(e.mean, e.half_width);
            let mut s = format!(
                "{name}: no difference detectable with {} ({} ± {:.*} points{}) {cost}",
                runs(e.seeds, e.method),
                signed(e.mean, k, true),
                k,
                e.half_width,
                level(e)
            );
            if let (true, Some(test)) = (e.held_back_by_sign_test(), e.sign_test) {
                s.push_str(&format!(
                    ": the interval excludes 0, but only {} test {} disagree ({} for {name}, {} against) and McNemar's \
                     exact sign test gives p = {:.3}",
                    test.positive + test.negative,
                    test.unit,
                    test.positive,
                    test.negative,
                    test.p
                ));
            }
            s.push_str(&format!(
                "; this run could detect about {:.1} points (80 % power at 95 %)",
                e.detectable
            ));
            if e.mean != 0.0 {
                s.push_str(&format!(
                    "; to settle a difference of {} points: {}",
                    signed(e.mean.abs(), k, false),
                    to_settle(e, design, e.mean)
                ));
            }
            s
        }
        Scored::OneSeed(mean) => format!(
            "{name}: {} points with 1 seed, which gives no confidence interval: run --seeds 3 or more to tell an \
             effect from seed noise ({cost})",
            signed(*mean, decimals(*mean, 0.0), true)
        ),
        Scored::NotScored(why, _) => format!("{name}: no verdict: {why}"),
    }
}
