//! `flatmin compare`: does SAM (or any member of the family) help on *my* data? Every optimizer is
//! trained with the same seeds on the same splits (by default J repetitions of stratified 2-fold
//! cross-validation, `--design cv2`; or a split per seed, or one fixed test set); the answer is the test-accuracy difference to the base optimizer with an interval that holds on
//! new data from the same source ([`crate::stats`]), what it costs, what the run could have
//! detected, and a verdict in words that says "better" or "worse" only when the interval excludes 0
//! and McNemar's exact sign test agrees. All the verdicts of one run (against the base, and against
//! SAM on the frontier) are one family, decided by Holm's procedure at 5 % family-wise
//! ([`assess`]). Degenerate runs (most steps skipped) get a reason instead of a verdict.
//!
//! With `--rho-search`, each optimizer's ρ is chosen by validation accuracy on a validation split
//! carved (seeded, stratified) from the training data — each fold's own training half with cv2,
//! each seed's own training part with a split per seed —; the test sets are touched only by the
//! final runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::args::TrainArgs;
use crate::data::input::{self, InputOptions, Loaded};
use crate::data::{Dataset, Split, split};
use crate::frontier::{self, Entry, FrontierPoint, Interval};
use crate::fsutil::write_atomic;
use crate::plot::{LineChart, Series};
use crate::stats::{self, Discordance, Estimate};
use crate::sweep::mean_std;
use crate::train::{self, Progress, RunOptions, Summary, TrainConfig, TrainError};

/// Flags of `flatmin compare` (plus every training flag of `flatmin train`).
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// An image folder (one subfolder per class, PNG/JPEG; optionally inside train/ and test/
    /// folders) or a CSV file of numeric features with a label column.
    #[arg(long)]
    pub data: PathBuf,
    /// Optimizer presets, comma-separated; the first is the base the others are compared with.
    #[arg(long, value_delimiter = ',', default_value = "sgd,sam")]
    pub optimizers: Vec<String>,
    /// Seeds per optimizer (--seed, --seed + 1, …); every optimizer runs with the same seeds and
    /// the differences are paired by seed. With the default design (cv2) each seed is one
    /// repetition of 2-fold cross-validation: two trainings per optimizer, each on half the data.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Choose ρ per optimizer among these values (e.g. 0.02,0.05,0.1,0.2) by mean accuracy on a
    /// validation split of the training data.
    #[arg(long, value_delimiter = ',')]
    pub rho_search: Vec<f64>,
    /// The fraction of each class of the training data that the ρ search validates on.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Seeds per ρ in the search (default: --seeds).
    #[arg(long)]
    pub search_seeds: Option<u64>,
    /// The fraction of each class held out for testing when the data has no test part, with a
    /// split per seed or a fixed split (default 0.2). Giving it without --design or --split-seed
    /// selects a split per seed (--design splits).
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Fix one test split with this seed for every seed and optimizer (the interval then counts
    /// the test set's sampling error; --design fixed).
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// How the data is used when it has no train/ and test/ folders: `cv2` (the default unless
    /// --test-fraction or --split-seed is given), each seed a repetition of stratified 2-fold
    /// cross-validation, every optimizer trained on each half and tested on the other; `splits`,
    /// each seed its own stratified split (--test-fraction held out), shared by every optimizer
    /// at that seed; `fixed`, one split for every seed (--split-seed, default 0). Data with its
    /// own train/ and test/ folders is always `fixed`.
    #[arg(long, value_enum)]
    pub design: Option<DesignChoice>,
    /// Resize images to N×N or WIDTHxHEIGHT (default: their own size when all agree, else 28×28
    /// grey or 32×32 colour).
    #[arg(long)]
    pub image_size: Option<String>,
    /// Image channels: 1 (grey) or 3 (RGB); default 3 when any image has colour.
    #[arg(long)]
    pub channels: Option<usize>,
    /// The CSV's label column: a header name or an index from 0 (default: the last column).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Training settings shared by every run; `--out DIR` receives compare.md, compare.json and
    /// the plots.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The values of `--design`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesignChoice {
    /// Repeated stratified 2-fold cross-validation (the default).
    Cv2,
    /// A random stratified split per seed.
    Splits,
    /// One split for every seed.
    Fixed,
}

/// The fraction of each class held out for testing when `--test-fraction` is not given.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// Mixed into the split seed for the validation split, so it is independent of the test split.
const VALIDATION_STREAM: u64 = 0x5641_4c49_4400_0001;

// ---------------------------------------------------------------------------------------------
// Statistics (the formulas live in crate::stats)

pub use crate::stats::{t_cdf, t_quantile};

/// Most seeds `--seeds` (and `--search-seeds`) accept: far beyond any useful comparison, and small
/// enough that every list the run keeps stays small.
pub const MAX_SEEDS: u64 = 1000;
/// Most values `--rho-search` accepts.
pub const MAX_RHO_VALUES: usize = 64;
/// A test set smaller than this gets a warning: one example is more than 2 points.
pub const SMALL_TEST_SET: usize = 50;

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

/// How the test sets were drawn, which decides the interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitDesign {
    /// J repetitions of stratified 2-fold cross-validation: each seed splits every class in
    /// halves A and B; every optimizer trains on A and is tested on B, and trains on B and is
    /// tested on A (the same halves for every optimizer at that seed).
    TwoFold {
        /// Repetitions (the seeds).
        repetitions: usize,
    },
    /// Each seed its own stratified split, shared by every optimizer at that seed.
    PerSeed {
        /// The fraction of each class held out for testing.
        test_fraction: f64,
    },
    /// One test set for every seed: the user's `test/` folder, or `--split-seed`.
    Fixed {
        /// Why it is fixed, for the report.
        why: String,
    },
}

impl SplitDesign {
    /// The design's name, as `--design` takes it: "cv2", "splits" or "fixed".
    pub fn name(&self) -> &'static str {
        match self {
            Self::TwoFold { .. } => "cv2",
            Self::PerSeed { .. } => "splits",
            Self::Fixed { .. } => "fixed",
        }
    }

    /// Whether every seed draws its own split of the whole data (cv2 and splits).
    pub fn resamples(&self) -> bool {
        !matches!(self, Self::Fixed { .. })
    }
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
    let mean = per_seed.iter().sum::<f64>() / per_seed.len().max(1) as f64;
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

/// A number with a real minus sign: "−0.3", "+1.2" with `sign`.
fn signed(x: f64, decimals: usize, sign: bool) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let zero = s.chars().all(|c| c == '0' || c == '.');
    match (x < 0.0 && !zero, sign) {
        (true, _) => format!("−{s}"),
        (false, true) => format!("+{s}"),
        (false, false) => s,
    }
}

/// Decimals that show both numbers: 1, or 2 when one of them is below 0.1 (and not 0).
fn decimals(a: f64, b: f64) -> usize {
    let small = |x: f64| x != 0.0 && x.abs() < 0.1;
    if small(a) || small(b) { 2 } else { 1 }
}

/// "2.0×".
fn times(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.1}×")
    } else {
        "–".into()
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

/// When an accuracy curve first reaches `target`: the cumulative training time (optimizer steps
/// only, in seconds) at the end of that epoch, or `None`.
pub fn time_to_reach(curve: &[f64], seconds: &[f64], target: f64) -> Option<f64> {
    curve
        .iter()
        .zip(seconds)
        .find(|(acc, _)| **acc >= target - 1e-12)
        .map(|(_, s)| *s)
}

// ---------------------------------------------------------------------------------------------
// The runs

/// One optimizer's results over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizerResult {
    /// The preset.
    pub optimizer: String,
    /// Its display name ("SAM", or "SGD" / "Adam" / "AdamW" for the base alone).
    pub name: String,
    /// The row label, with the base optimizer actually used: "sgd", "adam" (the base alone),
    /// "sam", "sam (base adam)".
    pub label: String,
    /// ρ used in the final runs (`None` for the base alone; the most frequent choice when each
    /// seed searched its own).
    pub rho: Option<f64>,
    /// Where ρ came from: "search", "flag" or "preset".
    pub rho_from: Option<String>,
    /// The training seed of every run: one per seed, or with cv2 one per fold (repetition seed
    /// s trains its folds with 2s and 2s + 1).
    pub seeds: Vec<u64>,
    /// Final test accuracy per run (fraction): per seed, or with cv2 per fold (repetition 1's
    /// fold A→B, its fold B→A, repetition 2's, …).
    pub test_accuracy: Vec<f64>,
    /// Mean and sample std of the test accuracy (fractions).
    pub accuracy_mean: f64,
    /// Sample standard deviation.
    pub accuracy_std: f64,
    /// Mean ms per optimizer step over all runs.
    pub ms_per_step: f64,
    /// Mean test accuracy per epoch over the seeds.
    pub curve: Vec<f64>,
    /// Its standard deviation per epoch.
    pub curve_std: Vec<f64>,
    /// Mean cumulative training time (optimizer steps) at the end of each epoch, in seconds.
    pub curve_seconds: Vec<f64>,
    /// Optimizer steps over all seeds.
    pub steps: usize,
    /// Of those, the steps skipped for a non-finite loss or gradient.
    pub skipped_steps: usize,
    /// Mean training time of a run (its optimizer steps), in seconds.
    pub training_seconds: f64,
    /// The fraction of its steps (over all seeds) that ran SAM's second pass.
    pub second_pass_fraction: Option<f64>,
    /// Per run, whether each test example was classified right (not written to compare.json).
    #[serde(skip)]
    pub test_correct: Vec<Vec<bool>>,
    /// Per run, the data-set index of each test example (cv2 pairs them across repetitions;
    /// empty for the other designs; not written to compare.json).
    #[serde(skip)]
    pub test_examples: Vec<Vec<usize>>,
}

impl OptimizerResult {
    /// Why this optimizer's runs cannot be scored, if they cannot: most of its steps skipped.
    pub fn degenerate(&self) -> Option<String> {
        (self.steps > 0 && 2 * self.skipped_steps > self.steps).then(|| {
            format!(
                "{} skipped {} of its {} steps (non-finite loss or gradient): its accuracy is that of a barely \
                 trained model",
                self.label, self.skipped_steps, self.steps
            )
        })
    }
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

/// The ρ search's result for one optimizer.
#[derive(Debug, Clone, Serialize)]
pub struct RhoSearch {
    /// The optimizer.
    pub optimizer: String,
    /// (ρ, mean validation accuracy, its std, per-run accuracies: per seed, or with cv2 per
    /// fold).
    pub tried: Vec<(f64, f64, f64, Vec<f64>)>,
    /// The chosen ρ (with a split per seed or cv2: the most frequent of the per-run choices).
    pub chosen: f64,
    /// With a split per seed, the ρ each seed chose on its own training part; with cv2, the ρ
    /// each fold chose on a validation part of its training half (in the order of the runs);
    /// empty with a fixed split.
    pub chosen_per_seed: Vec<f64>,
}

/// The display name of a preset: upper case, and the base optimizer's name for `sgd` (the base
/// alone).
pub fn display_name(optimizer: &str, base: &str) -> String {
    match (optimizer, base) {
        ("sgd", "adam") => "Adam".into(),
        ("sgd", "adamw") => "AdamW".into(),
        ("sgd", _) => "SGD".into(),
        ("fisher-sam", _) => "Fisher-SAM".into(),
        ("looksam", _) => "LookSAM".into(),
        ("sam-every-5", _) => "SAM every 5 steps".into(),
        ("bsam", _) => "bSAM".into(),
        (o, _) => o.to_uppercase(),
    }
}

/// The row label of a preset with the base optimizer actually used: the base alone is named by
/// it ("sgd", "adam"), a method on a base other than SGD says so ("sam (base adam)").
pub fn row_label(optimizer: &str, base: &str) -> String {
    match (optimizer, base) {
        ("sgd", b) => b.to_string(),
        (o, "sgd") => o.to_string(),
        (o, b) => format!("{o} (base {b})"),
    }
}

/// What `flatmin compare` is asked to do, resolved and checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The training configuration shared by every run (dataset, model, epochs, …).
    pub base: TrainConfig,
    /// Optimizers, the base first.
    pub optimizers: Vec<String>,
    /// Run seeds.
    pub seeds: Vec<u64>,
    /// ρ values to search.
    pub rho_search: Vec<f64>,
    /// Seeds of the search.
    pub search_seeds: Vec<u64>,
    /// Validation fraction.
    pub val_fraction: f64,
    /// Split seed.
    pub split_seed: u64,
    /// How the test sets are drawn.
    pub design: SplitDesign,
    /// Where the reports go.
    pub out: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
}

impl CompareArgs {
    /// Checks the counts and ranges that need no data, before anything is read or allocated.
    fn check_limits(&self) -> Result<(), TrainError> {
        if self.optimizers.is_empty() || self.seeds == 0 {
            return Err(TrainError("compare needs at least one optimizer and one seed".into()));
        }
        if self.seeds > MAX_SEEDS {
            return Err(TrainError(format!(
                "--seeds {}: at most {MAX_SEEDS} (each seed is one training per optimizer)",
                self.seeds
            )));
        }
        if let Some(s) = self.search_seeds
            && !(1..=self.seeds).contains(&s)
        {
            return Err(TrainError(format!(
                "--search-seeds {s}: expected 1 to --seeds ({})",
                self.seeds
            )));
        }
        if self.rho_search.len() > MAX_RHO_VALUES {
            return Err(TrainError(format!(
                "--rho-search: {} values, at most {MAX_RHO_VALUES}",
                self.rho_search.len()
            )));
        }
        if self.train.test_limit == Some(0) {
            return Err(TrainError(
                "--test-limit 0 leaves no test example: there would be nothing to score".into(),
            ));
        }
        if self.train.train_limit == Some(0) {
            return Err(TrainError("--train-limit 0 leaves nothing to train on".into()));
        }
        Ok(())
    }

    /// Reads the data and resolves every setting; errors before any training.
    pub fn plan(&self) -> Result<(Plan, Loaded), TrainError> {
        let t = &self.train;
        let refuse = |given: bool, msg: &str| if given { Err(TrainError(msg.into())) } else { Ok(()) };
        refuse(
            t.dataset.is_some() || t.data_dir.is_some(),
            "give the data with --data PATH (not --dataset or --data-dir)",
        )?;
        refuse(
            t.optimizer.is_some(),
            "use --optimizers (a list, the base first), not --optimizer",
        )?;
        refuse(
            t.resume.is_some() || t.compare_base,
            "--resume and --compare-base are not flags of compare",
        )?;
        refuse(
            t.hp.get("rho").is_some() && !self.rho_search.is_empty(),
            "give --rho or --rho-search, not both",
        )?;
        self.check_limits()?;
        for (i, o) in self.optimizers.iter().enumerate() {
            if self.optimizers[..i].contains(o) {
                return Err(TrainError(format!("--optimizers lists `{o}` twice")));
            }
        }
        if let Some(bad) = self.rho_search.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return Err(TrainError(format!("--rho-search {bad}: expected finite values > 0")));
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return Err(TrainError(format!(
                "--val-fraction {}: expected a fraction strictly between 0 and 1",
                self.val_fraction
            )));
        }
        let options = InputOptions {
            image_size: self
                .image_size
                .as_deref()
                .map(input::parse_image_size)
                .transpose()
                .map_err(|e| TrainError(e.to_string()))?,
            channels: self.channels,
            label_column: self.label_column.clone(),
            test_fraction: self.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION),
            seed: self.split_seed.unwrap_or(0),
        };
        // Flags that contradict the design asked for, before the data is read.
        match (self.design, self.split_seed, self.test_fraction) {
            (Some(DesignChoice::Cv2), Some(_), _) | (Some(DesignChoice::Splits), Some(_), _) => {
                return Err(TrainError(format!(
                    "--split-seed fixes one test split: it is --design fixed, not --design {}",
                    if self.design == Some(DesignChoice::Cv2) {
                        "cv2"
                    } else {
                        "splits"
                    }
                )));
            }
            (Some(DesignChoice::Cv2), _, Some(f)) => {
                return Err(TrainError(format!(
                    "--test-fraction {f}: --design cv2 tests on halves (every example once per repetition); give \
                     --design splits to hold out a fraction per seed"
                )));
            }
            _ => {}
        }
        let mut loaded = input::load(&self.data, &options).map_err(|e| TrainError(e.to_string()))?;
        let test_fraction = options.test_fraction;
        let design = match (loaded.came_split, self.design, self.split_seed, self.test_fraction) {
            (true, Some(DesignChoice::Cv2 | DesignChoice::Splits), ..) => {
                return Err(TrainError(format!(
                    "--design {}: {} has its own train/ and test/ folders, so its test set is fixed (--design \
                     fixed); to resample, put every class's images in one folder",
                    self.design
                        .map_or("", |d| if d == DesignChoice::Cv2 { "cv2" } else { "splits" }),
                    self.data.display()
                )));
            }
            (true, ..) => SplitDesign::Fixed {
                why: "the data's own train/ and test/ folders".into(),
            },
            (false, Some(DesignChoice::Fixed), None, _) => SplitDesign::Fixed {
                why: "--design fixed, split seed 0".into(),
            },
            (false, Some(DesignChoice::Fixed) | None, Some(seed), _) => SplitDesign::Fixed {
                why: format!("--split-seed {seed}"),
            },
            (false, Some(DesignChoice::Splits), ..) | (false, None, None, Some(_)) => {
                SplitDesign::PerSeed { test_fraction }
            }
            (false, Some(DesignChoice::Cv2), ..) | (false, None, None, None) => SplitDesign::TwoFold {
                repetitions: self.seeds as usize,
            },
        };
        match design {
            SplitDesign::PerSeed { .. } => {
                // The loader made one split; the runs draw their own, of the same sizes.
                loaded.description = loaded
                    .description
                    .replace("(a seeded stratified split,", "(a new stratified split per seed,");
            }
            SplitDesign::TwoFold { .. } => {
                // The loader made one split; every repetition splits the whole data in halves.
                let noun = if loaded.split.train.features.is_some() {
                    "rows"
                } else {
                    "images"
                };
                let was = input::split_account(&loaded.split, noun, Some(test_fraction));
                let now = format!(
                    "{} classes, {} {noun} (each repetition splits every class in halves)",
                    loaded.split.train.classes,
                    loaded.split.train.len() + loaded.split.test.len()
                );
                loaded.description = loaded.description.replace(&was, &now);
            }
            SplitDesign::Fixed { .. } => {}
        }
        if design.resamples() && self.search_seeds.is_some() {
            return Err(TrainError(format!(
                "--search-seeds applies to a fixed split (--split-seed, or train/ and test/ folders): with {}, each \
                 {} searches ρ on its own training part",
                if matches!(design, SplitDesign::TwoFold { .. }) {
                    "2-fold cross-validation"
                } else {
                    "a split per seed"
                },
                if matches!(design, SplitDesign::TwoFold { .. }) {
                    "fold"
                } else {
                    "seed"
                }
            )));
        }
        let mut base = t.config()?;
        let set = &loaded.split.train;
        let features = set.features.is_some();
        let explicit_model = t.model.is_some() || t.config.is_some() || t.preset.is_some();
        if !explicit_model {
            base.model = if features || set.height < 4 || set.width < 4 {
                "mlp"
            } else {
                "cnn"
            }
            .into();
        }
        if features && base.model != "mlp" {
            return Err(TrainError(format!(
                "--model {}: a CSV's features train an MLP (--model mlp)",
                base.model
            )));
        }
        if features && base.augment {
            return Err(TrainError(
                "--augment crops and flips images: it does not apply to CSV features".into(),
            ));
        }
        base.dataset = self
            .data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.data.display().to_string());
        base.data_dir = Some(self.data.clone());
        let first = base.seed;
        let seeds: Vec<u64> = (0..self.seeds).map(|i| first.wrapping_add(i)).collect();
        let search_seeds = seeds[..self.search_seeds.unwrap_or(self.seeds).clamp(1, self.seeds) as usize].to_vec();
        let plan = Plan {
            base,
            optimizers: self.optimizers.clone(),
            seeds,
            rho_search: self.rho_search.clone(),
            search_seeds,
            val_fraction: self.val_fraction,
            split_seed: self.split_seed.unwrap_or(0),
            design,
            out: t.out.clone(),
            quiet: t.quiet,
        };
        for o in &plan.optimizers {
            plan.config(o, None, 0)?.check()?;
        }
        Ok((plan, loaded))
    }
}

/// Mixed with a run seed to draw that seed's split, so splits and training seeds stay independent.
const SPLIT_STREAM: u64 = 0x5350_4c49_5400_0002;

impl Plan {
    /// The configuration of one run: `optimizer` (the base alone keeps none of the method flags),
    /// with ρ = `rho` if given, at `seed`.
    pub fn config(&self, optimizer: &str, rho: Option<f64>, seed: u64) -> Result<TrainConfig, TrainError> {
        let mut c = self.base.clone();
        c.optimizer = optimizer.to_string();
        c.seed = seed;
        if optimizer == "sgd" {
            c.hp = Default::default();
        } else if let Some(rho) = rho {
            c.hp.set("rho", rho).map_err(TrainError)?;
        }
        Ok(c)
    }

    fn has_rho(&self, optimizer: &str) -> bool {
        optimizer != "sgd"
    }

    /// The train/test split of run seed `seed`: its own stratified split of the whole data with a
    /// split per seed, else the one fixed split (with cv2: [`Plan::split_of`]); then
    /// `--train-limit`/`--test-limit`.
    pub fn split_for(&self, loaded: &Split, pool: Option<&Dataset>, seed: u64) -> Split {
        match (&self.design, pool) {
            (SplitDesign::PerSeed { test_fraction }, Some(pool)) => split::stratified(
                pool,
                *test_fraction,
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ SPLIT_STREAM,
            ),
            _ => loaded.clone(),
        }
    }

    /// Every training run of one optimizer, in order: one per seed, or with cv2 two per seed
    /// (its repetition's fold A→B, then B→A, with training seeds 2s and 2s + 1).
    pub fn runs(&self) -> Vec<RunSpec> {
        match self.design {
            SplitDesign::TwoFold { .. } => self
                .seeds
                .iter()
                .flat_map(|&seed| {
                    (0..2u8).map(move |fold| RunSpec {
                        seed,
                        training_seed: seed.wrapping_mul(2).wrapping_add(u64::from(fold)),
                        fold: Some(fold),
                    })
                })
                .collect(),
            _ => self
                .seeds
                .iter()
                .map(|&seed| RunSpec {
                    seed,
                    training_seed: seed,
                    fold: None,
                })
                .collect(),
        }
    }

    /// The split of `run` and, with cv2, the data-set (`pool`) index of each of its test
    /// examples, in order (empty otherwise). With cv2 the run's seed splits every class of the
    /// whole data in halves A and B (stratified, seeded); fold 0 trains on A and tests on B,
    /// fold 1 the other way round.
    pub fn split_of(&self, loaded: &Split, pool: Option<&Dataset>, run: RunSpec) -> (Split, Vec<usize>) {
        match (&self.design, pool, run.fold) {
            (SplitDesign::TwoFold { .. }, Some(pool), Some(fold)) => {
                let stream = run.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ HALVES_STREAM;
                let (a, b) = split::stratified_indices(&pool.labels, pool.classes, 0.5, stream);
                let (train, test) = if fold == 0 { (a, b) } else { (b, a) };
                (
                    Split {
                        train: split::subset(pool, &train),
                        test: split::subset(pool, &test),
                    },
                    test,
                )
            }
            _ => (self.split_for(loaded, pool, run.seed), Vec::new()),
        }
    }
}

/// One training run of the design, the same for every optimizer: which split and which
/// training seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpec {
    /// The seed of the run's split (with cv2, its repetition's); one of `--seeds`.
    pub seed: u64,
    /// The seed of the model's initialization and batch order.
    pub training_seed: u64,
    /// With cv2: 0 trains on half A and tests on half B, 1 the other way round.
    pub fold: Option<u8>,
}

impl RunSpec {
    /// "seed 3", "seed 3, fold B→A".
    pub fn describe(&self) -> String {
        match self.fold {
            Some(0) => format!("seed {}, fold A→B", self.seed),
            Some(_) => format!("seed {}, fold B→A", self.seed),
            None => format!("seed {}", self.seed),
        }
    }
}

/// Mixed with a repetition's seed to draw its halves (cv2).
const HALVES_STREAM: u64 = 0x4841_4c56_4500_0003;

/// The training part of `split` cut into a fitting and a validation part (for the ρ search);
/// `seed` is the run's training seed.
fn validation_split(plan: &Plan, split: &Split, seed: u64) -> Result<Split, TrainError> {
    let stream = match plan.design {
        SplitDesign::PerSeed { .. } | SplitDesign::TwoFold { .. } => {
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ VALIDATION_STREAM
        }
        SplitDesign::Fixed { .. } => plan.split_seed ^ VALIDATION_STREAM,
    };
    let (kept, held) = split::stratified_indices(&split.train.labels, split.train.classes, plan.val_fraction, stream);
    let (fit, val) = (split::subset(&split.train, &kept), split::subset(&split.train, &held));
    if val.is_empty() {
        return Err(TrainError(
            "the training data is too small to hold out a validation set for --rho-search".into(),
        ));
    }
    Ok(Split { train: fit, test: val })
}

fn run_one(config: &TrainConfig, split: &Split, label: String) -> Result<(Summary, usize, usize), TrainError> {
    let mut split = split.clone();
    train::limit_and_noise(config, &mut split)?;
    let (n_train, n_test) = (split.train.len(), split.test.len());
    let options = RunOptions {
        out: None,
        resume: false,
        progress: Progress::Quiet,
        label,
        device: crate::device::DeviceChoice::Cpu,
    };
    Ok((train::run_on(config, &options, split)?, n_train, n_test))
}

/// Everything `flatmin compare` found.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Per optimizer, the base first.
    pub results: Vec<OptimizerResult>,
    /// Per optimizer after the base.
    pub versus: Vec<VersusBase>,
    /// The ρ searches (empty without --rho-search).
    pub searches: Vec<RhoSearch>,
    /// How the test sets were drawn.
    pub design: SplitDesign,
    /// Training examples per run (after --train-limit).
    pub n_train: usize,
    /// Test examples per run (after --test-limit).
    pub n_test: usize,
    /// What makes the run weaker than it looks: missing classes, a tiny test set, skipped steps.
    pub warnings: Vec<String>,
    /// Wall time of everything, in seconds.
    pub seconds: f64,
    /// Every optimizer's gain against its cost (crate::frontier), the base first.
    pub frontier: Vec<FrontierPoint>,
    /// Comparisons in the run's family of verdicts (against the base, and against SAM).
    pub family: usize,
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

/// Warnings about one final run's split: a class absent from its test set.
fn split_warnings(split: &Split, config: &TrainConfig, run: &RunSpec, warnings: &mut Vec<String>) {
    let mut limited = split.clone();
    if train::limit_and_noise(config, &mut limited).is_err() {
        return;
    }
    let missing = split::missing_classes(&limited.test);
    if !missing.is_empty() {
        let w = format!(
            "{}: no test example of class {} (the accuracy says nothing about it{})",
            run.describe(),
            missing.join(", "),
            if config.test_limit.is_some() {
                "; --test-limit keeps the first test examples, which may be few classes"
            } else {
                ""
            }
        );
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
}

/// Runs the comparison: the ρ searches (if asked), then every optimizer on every run of the
/// design (every seed, or with cv2 every fold of every repetition).
pub fn run(plan: &Plan, loaded: &Split) -> Result<Comparison, TrainError> {
    let started = Instant::now();
    let pool = plan
        .design
        .resamples()
        .then(|| split::join(&loaded.train, &loaded.test));
    let runs = plan.runs();
    // The ρ search's units: with a resampling design every run searches on its own training
    // part; with a fixed split, the search seeds share the one training part.
    let per_run_search = plan.design.resamples();
    let search_runs: Vec<RunSpec> = if per_run_search {
        runs.clone()
    } else {
        plan.search_seeds
            .iter()
            .map(|&seed| RunSpec {
                seed,
                training_seed: seed,
                fold: None,
            })
            .collect()
    };
    let searched: Vec<&String> = if plan.rho_search.is_empty() {
        Vec::new()
    } else {
        plan.optimizers.iter().filter(|o| plan.has_rho(o)).collect()
    };
    let total = searched.len() * plan.rho_search.len() * search_runs.len() + plan.optimizers.len() * runs.len();
    let mut done = 0;
    let mut progress = |what: String, s: &Summary, t0: Instant, metric: &str| {
        done += 1;
        if !plan.quiet {
            eprintln!(
                "[{done}/{total}] {what}: {metric} {:.2} % ({:.1} s)",
                100.0 * s.test_accuracy,
                t0.elapsed().as_secs_f64()
            );
        }
    };

    let mut searches = Vec::new();
    for o in &searched {
        let mut accs_by_rho = vec![Vec::new(); plan.rho_search.len()];
        for run in &search_runs {
            let (split, _) = plan.split_of(loaded, pool.as_ref(), *run);
            let search_split = validation_split(plan, &split, run.training_seed)?;
            for (k, &rho) in plan.rho_search.iter().enumerate() {
                let config = plan.config(o, Some(rho), run.training_seed)?;
                let t0 = Instant::now();
                let (s, ..) = run_one(&config, &search_split, format!("{o} ρ={rho}"))
                    .map_err(|e| TrainError(format!("ρ search ({o}, ρ = {rho}, on the training part): {e}")))?;
                progress(
                    format!("ρ search: {o} ρ={rho} {}", run.describe()),
                    &s,
                    t0,
                    "validation acc",
                );
                accs_by_rho[k].push(s.test_accuracy);
            }
        }
        let tried: Vec<(f64, f64, f64, Vec<f64>)> = plan
            .rho_search
            .iter()
            .zip(accs_by_rho)
            .map(|(&rho, accs)| {
                let (m, sd) = mean_std(&accs);
                (rho, m, sd, accs)
            })
            .collect();
        // The best mean validation accuracy; ties go to the value listed first.
        let best =
            |score: &dyn Fn(usize) -> f64| (0..tried.len()).fold(0, |b, k| if score(k) > score(b) { k } else { b });
        let chosen_per_seed: Vec<f64> = if per_run_search {
            (0..search_runs.len())
                .map(|i| tried[best(&|k| tried[k].3[i])].0)
                .collect()
        } else {
            Vec::new()
        };
        let chosen = if per_run_search {
            tried[best(&|k| chosen_per_seed.iter().filter(|&&r| r == tried[k].0).count() as f64)].0
        } else {
            tried[best(&|k| tried[k].1)].0
        };
        searches.push(RhoSearch {
            optimizer: o.to_string(),
            tried,
            chosen,
            chosen_per_seed,
        });
    }

    let mut results = Vec::new();
    let mut warnings = Vec::new();
    let (mut n_train, mut n_test) = (0, 0);
    for o in &plan.optimizers {
        let search = searches.iter().find(|s| &s.optimizer == o);
        let mut summaries = Vec::new();
        let mut test_examples = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let chosen = search.map(|s| s.chosen_per_seed.get(i).copied().unwrap_or(s.chosen));
            let config = plan.config(o, chosen, run.training_seed)?;
            let (split, examples) = plan.split_of(loaded, pool.as_ref(), *run);
            if o == &plan.optimizers[0] && (pool.is_some() || i == 0) {
                split_warnings(&split, &config, run, &mut warnings);
            }
            let t0 = Instant::now();
            let (s, train_len, test_len) = run_one(&config, &split, o.clone())?;
            (n_train, n_test) = (train_len, test_len);
            progress(format!("{o} {}", run.describe()), &s, t0, "test acc");
            summaries.push(s);
            if !examples.is_empty() {
                // --test-limit keeps the first test examples.
                test_examples.push(examples[..test_len.min(examples.len())].to_vec());
            }
        }
        let chosen = search.map(|s| s.chosen);
        let config = plan.config(o, chosen, runs[0].training_seed)?;
        let rho = plan
            .has_rho(o)
            .then(|| config.sam_config().map(|c| c.rho))
            .transpose()?;
        let rho_from = plan.has_rho(o).then(|| {
            if chosen.is_some() {
                "search"
            } else if plan.base.hp.get("rho").is_some() {
                "flag"
            } else {
                "preset"
            }
            .to_string()
        });
        let training_seeds: Vec<u64> = runs.iter().map(|r| r.training_seed).collect();
        let mut r = summarise(
            o,
            display_name(o, &plan.base.base),
            rho,
            rho_from,
            &training_seeds,
            &summaries,
        );
        r.label = row_label(o, &plan.base.base);
        r.test_examples = test_examples;
        if let Some(why) = r.degenerate() {
            warnings.push(why);
        } else if r.skipped_steps > 0 {
            warnings.push(format!(
                "{} skipped {} of its {} steps (non-finite loss or gradient)",
                r.label, r.skipped_steps, r.steps
            ));
        }
        results.push(r);
    }
    if n_test < SMALL_TEST_SET {
        warnings.push(format!(
            "a test set of {n_test} examples: one example is {:.1} points, so only large differences can show",
            100.0 / n_test.max(1) as f64
        ));
    }
    let (versus, frontier, family) = assess(&results, &plan.design, n_train);
    Ok(Comparison {
        frontier,
        family,
        results,
        versus,
        searches,
        design: plan.design.clone(),
        n_train,
        n_test,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn summarise(
    optimizer: &str,
    name: String,
    rho: Option<f64>,
    rho_from: Option<String>,
    seeds: &[u64],
    runs: &[Summary],
) -> OptimizerResult {
    let accs: Vec<f64> = runs.iter().map(|s| s.test_accuracy).collect();
    let (accuracy_mean, accuracy_std) = mean_std(&accs);
    let epochs = runs.iter().map(|s| s.history.len()).min().unwrap_or(0);
    let (mut curve, mut curve_std, mut curve_seconds) = (Vec::new(), Vec::new(), Vec::new());
    let mut elapsed = vec![0.0; runs.len()];
    for e in 0..epochs {
        let (m, sd) = mean_std(&runs.iter().map(|s| s.history[e].test_accuracy).collect::<Vec<_>>());
        curve.push(m);
        curve_std.push(sd);
        for (t, s) in elapsed.iter_mut().zip(runs) {
            let per_epoch = s.steps as f64 / s.epochs.max(1) as f64;
            *t += s.history[e].mean_step_ms * per_epoch / 1e3;
        }
        curve_seconds.push(elapsed.iter().sum::<f64>() / runs.len().max(1) as f64);
    }
    OptimizerResult {
        optimizer: optimizer.to_string(),
        label: optimizer.to_string(),
        name,
        rho,
        rho_from,
        seeds: seeds.to_vec(),
        test_accuracy: accs,
        accuracy_mean,
        accuracy_std,
        ms_per_step: runs.iter().map(|s| s.mean_step_ms).sum::<f64>() / runs.len().max(1) as f64,
        curve,
        curve_std,
        curve_seconds,
        steps: runs.iter().map(|s| s.steps).sum(),
        skipped_steps: runs
            .iter()
            .flat_map(|s| s.history.iter().map(|h| h.skipped_steps))
            .sum(),
        training_seconds: runs.iter().map(|s| s.steps as f64 * s.mean_step_ms / 1e3).sum::<f64>()
            / runs.len().max(1) as f64,
        second_pass_fraction: second_pass_fraction(runs),
        test_correct: runs.iter().map(|s| s.test_correct.clone()).collect(),
        test_examples: Vec::new(),
    }
}

/// The fraction of the steps of `runs` that ran the second pass, each run weighted by its steps;
/// `None` when a run did not record it.
pub fn second_pass_fraction(runs: &[Summary]) -> Option<f64> {
    let (mut passes, mut steps) = (0.0, 0.0);
    for s in runs {
        passes += s.second_pass_fraction? * s.steps as f64;
        steps += s.steps as f64;
    }
    Some(if steps > 0.0 { passes / steps } else { 0.0 })
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
        per_repetition_points: matches!(design, SplitDesign::TwoFold { .. }).then(|| {
            per_seed_points
                .chunks(2)
                .map(|p| p.iter().sum::<f64>() / p.len() as f64)
                .collect()
        }),
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

// ---------------------------------------------------------------------------------------------
// Reports

fn rho_cell(r: &OptimizerResult) -> String {
    match (r.rho, r.rho_from.as_deref()) {
        (Some(rho), Some("search")) => format!("{rho} (searched)"),
        (Some(rho), _) => format!("{rho}"),
        _ => "–".into(),
    }
}

/// The results table (Markdown).
pub fn table(c: &Comparison) -> String {
    let base = &c.results[0];
    let mut s = format!(
        "| optimizer | ρ | test acc (mean ± std) | Δ vs {b} ({ci}), points | ms/step | cost per step | time to {b}'s accuracy | skipped steps |\n\
         |---|---|---|---|---|---|---|---|\n",
        b = base.name,
        ci = if c.family > 1 { "CI at Holm's level" } else { "95 % CI" }
    );
    let skipped = |r: &OptimizerResult| {
        if r.skipped_steps == 0 {
            "0".to_string()
        } else {
            format!("{} of {}", r.skipped_steps, r.steps)
        }
    };
    s.push_str(&format!(
        "| {} | {} | {:.2} ± {:.2} % | – | {:.1} | 1.0× | 1.0× | {} |\n",
        base.label,
        rho_cell(base),
        100.0 * base.accuracy_mean,
        100.0 * base.accuracy_std,
        base.ms_per_step,
        skipped(base)
    ));
    for (r, v) in c.results[1..].iter().zip(&c.versus) {
        let d = &v.difference_points;
        let delta = match (d.half_width, v.interval_points, v.outcome) {
            (Some(h), Some((lo, hi)), _) => {
                let k = decimals(d.mean, h).max(2);
                format!(
                    "{} ± {:.*} [{}, {}]",
                    signed(d.mean, k, true),
                    k,
                    h,
                    signed(lo, k, true),
                    signed(hi, k, true)
                )
            }
            (_, _, Outcome::NotScored) => format!("{} (not scored)", signed(d.mean, 2, true)),
            _ => format!("{} (1 seed: no CI)", signed(d.mean, 2, true)),
        };
        s.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} % | {delta} | {:.1} | {} | {} | {} |\n",
            r.label,
            rho_cell(r),
            100.0 * r.accuracy_mean,
            100.0 * r.accuracy_std,
            r.ms_per_step,
            times(v.step_cost_ratio),
            v.reach_cost_ratio.map(times).unwrap_or_else(|| "not reached".into()),
            skipped(r)
        ));
    }
    s
}

/// How the interval was made, in a paragraph for compare.md.
pub fn method_note(c: &Comparison) -> String {
    let base = &c.results[0].name;
    let how = match &c.design {
        SplitDesign::TwoFold { repetitions } => format!(
            "Design: cv2, {repetitions} repetition{} of stratified 2-fold cross-validation: each repetition split every \
             class in halves A and B ({} and {} examples); every optimizer trained on A and was tested on B, and \
             trained on B and was tested on A, each fold with its own training seed ({} trainings per optimizer, each \
             on half the data), the same halves for every optimizer at a repetition. Δ is the mean of the fold \
             differences of test accuracy to {base} ± the half-width of its interval. The two folds of a repetition \
             trained on disjoint halves and were tested on disjoint halves, so the difference between them carries \
             the test sampling, the seeds' noise and how the difference depends on the training set, but not what \
             every repetition of this one data set shares, which averaging over repetitions cannot remove: the \
             variance of Δ is half the mean squared difference between a repetition's two folds, whatever the number \
             of repetitions (more repetitions firm up the estimate, not the data), with Student's t on J degrees of \
             freedom (exact when the difference depends additively on the training and the test examples and an \
             example's two parts are unrelated, conservative when seed noise dominates), and never narrower than the interval of independent paired \
             outcomes over all the examples (McNemar's). Dietterich's (1998) 5×2cv t is weaker, and Alpaydin's (1999) \
             combined F and a t over the folds as if independent are liberal (README, \"How the verdicts are \
             made\"). Its limits: the results are for models trained on half the data; and when what an example does \
             in training and how it is classified at test go together, no design on one data set can see it (Bengio \
             & Grandvalet 2004) and the interval is too narrow (--design splits covers that case, at the price of \
             power).",
            if *repetitions == 1 { "" } else { "s" },
            c.n_train,
            c.n_test,
            2 * repetitions
        ),
        SplitDesign::PerSeed { test_fraction } => format!(
            "Design: splits. Each seed drew its own stratified split ({:.0} % of each class for testing: {} training and {} test \
             examples), the same for every optimizer at that seed. Δ is the mean of the per-seed differences of test \
             accuracy to {base} ± the half-width of its interval. The seeds' differences mix the test set's sampling \
             error, the seeds' own noise and how the difference depends on the training set; two random test sets \
             share n_test/N of their examples but two random training sets share n_train/N, and the part every split \
             of this one data set shares never shows in the seeds' spread. So the test-sampling variance (from the \
             per-example outcomes) keeps Nadeau & Bengio's (2003) correction, 1/J + n_test/n_train, and the spread \
             beyond it gets the training-set one, 1/J + n_train/n_test, with J − 1 degrees of freedom: valid when the \
             difference depends on the training set, conservative (wider than needed) when the spread is seed noise, \
             which one data set cannot tell apart. (The corrected resampled t alone is liberal when the difference \
             depends on the training set.)",
            100.0 * test_fraction,
            c.n_train,
            c.n_test
        ),
        SplitDesign::Fixed { why } => format!(
            "Design: fixed. Every seed was tested on the same {} examples ({why}). Δ is the mean difference of test accuracy to {base} \
             ± the half-width of an interval that counts both the seeds and the test set's own sampling error, from \
             the paired per-example outcomes: examples and seeds as two random effects, each variance component \
             counted once, combined by Banerjee's (1960) rule √(t²(n−1)·A + t²(J−1)·B), which never covers less than \
             its level (Satterthwaite's degrees of freedom are liberal at 2–3 seeds when the seeds dominate). It is \
             conditional on the one training set: it says nothing about how the difference would change with another \
             training set from the same source.",
            c.n_test
        ),
    };
    let family = if c.family > 1 {
        format!(
            " The run's {} verdicts (every optimizer against {base}, and against SAM in \"Gain against cost\") are one \
             family: Holm's (1979) step-down procedure keeps the chance of any false \"better\" or \"worse\" among \
             them at 5 %, and each interval is shown at the level Holm used for it (between 95 % and {}).",
            c.family,
            level_text(1.0 - stats::ALPHA / c.family as f64)
        )
    } else {
        " One comparison: a 95 % interval.".to_string()
    };
    format!(
        "{how} A verdict needs the interval to exclude 0 and McNemar's exact sign test on the discordant outcomes \
         (the examples' net discordance over the seeds with a fixed test set or over the repetitions with cv2, every \
         discordant pair with random splits) to agree, so a handful of discordant examples cannot carry one; the \
         half-width includes Edwards' continuity correction (half a step of the mean), and the variance is never \
         below that of independent paired outcomes, so an interval has zero width only when the two optimizers \
         agree on every test example of every run (the rule of three then says how large a difference the data \
         still allow).{family} \"Could detect\": the true \
         difference this design finds 80 % of the time at 95 %, from the noncentral t; \"to settle\" projections \
         carry the 90 % range their variance estimate allows. Cost per step: ms/step over {base}'s. Time to \
         {base}'s accuracy: training time (optimizer steps) until the mean accuracy curve first reaches {base}'s \
         final mean test accuracy, over {base}'s time for the same (accuracy is measured once per epoch). Skipped \
         steps: steps with a non-finite loss or gradient, over all runs.\n\n"
    )
}

fn search_table(searches: &[RhoSearch]) -> String {
    let Some(first) = searches.first() else {
        return String::new();
    };
    let mut s = String::from("| optimizer |");
    for (rho, ..) in &first.tried {
        s.push_str(&format!(" ρ = {rho} |"));
    }
    s.push_str(" chosen |\n|---|");
    for _ in &first.tried {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for search in searches {
        s.push_str(&format!("| {} |", search.optimizer));
        for (_, m, sd, _) in &search.tried {
            s.push_str(&format!(" {:.2} ± {:.2} % |", 100.0 * m, 100.0 * sd));
        }
        s.push_str(&format!(" {} |\n", search.chosen));
    }
    s
}

/// The verdict lines, one per optimizer after the base.
pub fn verdicts(c: &Comparison) -> String {
    c.versus.iter().map(|v| format!("- {}.\n", v.verdict)).collect()
}

/// compare.md.
pub fn markdown(plan: &Plan, loaded: &Loaded, c: &Comparison) -> String {
    let b = &plan.base;
    let mut s = format!(
        "# Does it help on {}?\n\nData: {}.\n\nModel {}, {} epochs, batch {}, lr {} (cosine), base {}; design {}; seeds \
         {}{}; {:.1} s in all.\n\n",
        b.dataset,
        loaded.description,
        b.model,
        b.epochs,
        b.batch_size,
        b.lr,
        b.base,
        c.design.name(),
        plan.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        if matches!(c.design, SplitDesign::TwoFold { .. }) {
            format!(
                " (one repetition of 2-fold cross-validation each: {} trainings per optimizer on half the data)",
                2 * plan.seeds.len()
            )
        } else {
            String::new()
        },
        c.seconds
    );
    if !c.searches.is_empty() {
        let over = match c.design {
            SplitDesign::TwoFold { .. } => format!(
                "each fold on {:.0} % of each class of its own training half (seeded, stratified), that fold's best ρ \
                 kept (the column shows the mean ± std over folds; \"chosen\" the most frequent choice)",
                100.0 * plan.val_fraction
            ),
            SplitDesign::PerSeed { .. } => format!(
                "each seed on {:.0} % of each class of its own training part (seeded, stratified), that seed's best ρ \
                 kept (the column shows the mean ± std over seeds; \"chosen\" the most frequent choice)",
                100.0 * plan.val_fraction
            ),
            SplitDesign::Fixed { .. } => format!(
                "mean validation accuracy ± std over seeds {} on {:.0} % of each class of the training data (seeded, \
                 stratified), the best ρ kept",
                plan.search_seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                100.0 * plan.val_fraction
            ),
        };
        s.push_str(&format!("ρ search: {over}:\n\n{}\n", search_table(&c.searches)));
    }
    s.push_str(&table(c));
    s.push('\n');
    s.push_str(&method_note(c));
    s.push_str(&verdicts(c));
    if c.frontier.len() > 1 {
        s.push_str(&format!(
            "\n## Gain against cost\n\nEvery optimizer's difference to {b} with its interval (as above), against its time \
             per step over {b}'s and its training time (the optimizer steps of one run, mean over runs); second passes: \
             the share of its steps that ran SAM's second pass.{}\n\n{}\n![gain against cost per step](frontier.svg)\n",
            if c.frontier.iter().any(|p| p.difference_to_sam_points.is_some()) {
                " Share of SAM's gain: its difference over SAM's, a ratio of means with Fieller's 95 % interval, shown \
                 only when SAM itself is called better than the base; Δ vs SAM: its difference to SAM, paired and with \
                 its interval the same way (part of the family of verdicts)."
            } else {
                ""
            },
            frontier::markdown(&c.frontier, &c.results[0].name),
            b = c.results[0].name
        ));
    }
    if !c.warnings.is_empty() {
        s.push_str("\nWarnings:\n\n");
        for w in &c.warnings {
            s.push_str(&format!("- {w}.\n"));
        }
    }
    s
}

fn json_report(plan: &Plan, loaded: &Loaded, c: &Comparison) -> Value {
    let set = &loaded.split.train;
    json!({
        "data": {
            "path": plan.base.data_dir,
            "description": loaded.description,
            "kind": if set.features.is_some() { "features" } else { "images" },
            "classes": set.class_names,
            "shape": [set.channels, set.height, set.width],
            "train": set.len(),
            "test": loaded.split.test.len(),
            "examples": set.len() + loaded.split.test.len(),
        },
        "model": plan.base.model,
        "epochs": plan.base.epochs,
        "seeds": plan.seeds,
        "base": c.results[0].optimizer,
        "base_optimizer": plan.base.base,
        "design": c.design.name(),
        "split": c.design,
        "runs": { "train": c.n_train, "test": c.n_test },
        "trainings": plan.runs().iter().map(|r| json!({
            "seed": r.seed,
            "training_seed": r.training_seed,
            "fold": r.fold.map(|f| if f == 0 { "A→B" } else { "B→A" }),
        })).collect::<Vec<_>>(),
        "config": plan.base,
        "rho_search": if c.searches.is_empty() { Value::Null } else { json!({
            "values": plan.rho_search,
            "val_fraction": plan.val_fraction,
            "seeds": plan.search_seeds,
            "results": c.searches,
        }) },
        "optimizers": c.results,
        "versus_base": c.versus,
        "family": { "comparisons": c.family, "procedure": "holm", "alpha": stats::ALPHA },
        "verdicts": c.versus.iter().map(|v| v.verdict.clone()).collect::<Vec<_>>(),
        "frontier": c.frontier,
        "warnings": c.warnings,
        "seconds": c.seconds,
    })
}

fn charts(c: &Comparison, plan: &Plan) -> Vec<(&'static str, LineChart)> {
    let runs = match c.design {
        SplitDesign::TwoFold { .. } => format!("{} folds", 2 * plan.seeds.len()),
        _ => format!("{} seeds", plan.seeds.len()),
    };
    let accuracy = LineChart {
        title: format!("Test accuracy, mean ± std over {runs}"),
        x_label: c
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{} = {}", i + 1, r.optimizer))
            .collect::<Vec<_>>()
            .join(", "),
        y_label: "test accuracy (%)".into(),
        series: c
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                label: r.optimizer.clone(),
                points: vec![((i + 1) as f64, 100.0 * r.accuracy_mean, Some(100.0 * r.accuracy_std))],
            })
            .collect(),
    };
    let n = c.versus.len() as f64;
    let mut difference = LineChart {
        title: format!(
            "Difference to {} with its interval (points; at Holm's level in a family)",
            c.results[0].name
        ),
        x_label: c
            .versus
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{} = {}", i + 1, v.optimizer))
            .collect::<Vec<_>>()
            .join(", "),
        y_label: format!("test accuracy − {}'s (points)", c.results[0].name),
        series: vec![Series {
            label: "no difference".into(),
            points: vec![(0.5, 0.0, None), (n + 0.5, 0.0, None)],
        }],
    };
    difference
        .series
        .extend(c.versus.iter().enumerate().map(|(i, v)| Series {
            label: v.optimizer.clone(),
            points: vec![((i + 1) as f64, v.difference_points.mean, v.difference_points.half_width)],
        }));
    let curves = LineChart {
        title: format!("Test accuracy against training time (mean ± std over {runs})"),
        x_label: "training time, optimizer steps only (s)".into(),
        y_label: "test accuracy (%)".into(),
        series: c
            .results
            .iter()
            .map(|r| Series {
                label: r.optimizer.clone(),
                points: r
                    .curve_seconds
                    .iter()
                    .zip(r.curve.iter().zip(&r.curve_std))
                    .map(|(t, (m, sd))| (*t, 100.0 * m, Some(100.0 * sd)))
                    .collect(),
            })
            .collect(),
    };
    let mut out = vec![("compare_accuracy.svg", accuracy), ("compare_curves.svg", curves)];
    if !c.versus.is_empty() {
        out.push(("compare_difference.svg", difference));
    }
    out
}

/// Writes compare.md, compare.json and the plots into `out`.
pub fn write_reports(out: &Path, plan: &Plan, loaded: &Loaded, c: &Comparison) -> Result<(), TrainError> {
    std::fs::create_dir_all(out).map_err(|e| TrainError(format!("--out {}: {e}", out.display())))?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes()).map_err(|e| TrainError(format!("{}: {e}", path.display())))
    };
    write("compare.md", &markdown(plan, loaded, c))?;
    let json = serde_json::to_string_pretty(&json_report(plan, loaded, c)).map_err(|e| TrainError(e.to_string()))?;
    write("compare.json", &json)?;
    for (name, chart) in charts(c, plan) {
        write(name, &chart.to_svg())?;
    }
    if c.frontier.len() > 1 {
        let what = match c.design {
            SplitDesign::TwoFold { .. } => format!(" ({} repetitions of 2-fold cross-validation)", plan.seeds.len()),
            _ => format!(" ({} seeds)", plan.seeds.len()),
        };
        let [per_step, total] = frontier::charts(&c.frontier, &c.results[0].name, &what);
        write("frontier.svg", &per_step.to_svg())?;
        write("frontier_time.svg", &total.to_svg())?;
    }
    Ok(())
}

/// `flatmin compare`.
pub fn command(args: &CompareArgs) -> Result<(), TrainError> {
    args.train.cpu_only("compare")?;
    // A folder that holds results is refused before the data is read (crate::outdir).
    let intent = crate::outdir::Intent::new_or_overwrite(args.train.overwrite);
    let mut folder = args
        .train
        .out
        .as_ref()
        .map(|out| crate::outdir::OutDir::new(out, "compare", intent));
    if let Some(folder) = &folder {
        folder.check()?;
    }
    let (plan, loaded) = args.plan()?;
    if let Some(folder) = &folder {
        // Proves the folder writable before the runs, not after them; it is made only when
        // the reports are written, so that a failed or killed comparison leaves none.
        folder.probe()?;
    }
    if !plan.quiet {
        eprintln!("flatmin compare: {}", loaded.description);
        eprintln!(
            "model {}, {} epochs; {} × {}{}",
            plan.base.model,
            plan.base.epochs,
            plan.optimizers.join(", "),
            match plan.design {
                SplitDesign::TwoFold { .. } => format!(
                    "{} repetitions of 2-fold cross-validation ({} trainings each, on half the data)",
                    plan.seeds.len(),
                    2 * plan.seeds.len()
                ),
                _ => format!("{} seeds", plan.seeds.len()),
            },
            if plan.rho_search.is_empty() {
                String::new()
            } else {
                format!(", after a ρ search over {:?}", plan.rho_search)
            }
        );
    }
    let comparison = run(&plan, &loaded.split)?;
    for w in &comparison.warnings {
        eprintln!("warning: {w}");
    }
    let md = markdown(&plan, &loaded, &comparison);
    println!("{md}");
    if let (Some(out), Some(folder)) = (&plan.out, folder.as_mut()) {
        let settings = serde_json::json!({
            "data": plan.base.data_dir,
            "base": plan.base,
            "optimizers": plan.optimizers,
            "seeds": plan.seeds,
            "rho_search": plan.rho_search,
            "search_seeds": plan.search_seeds,
            "val_fraction": plan.val_fraction,
            "split_seed": plan.split_seed,
            "design": plan.design.name(),
        });
        let description = format!(
            "{} on {}, {} model, {} epochs, {} seeds, design {}",
            plan.optimizers.join(", "),
            plan.base.dataset,
            plan.base.model,
            plan.base.epochs,
            plan.seeds.len(),
            plan.design.name()
        );
        folder.claim(&description, settings)?;
        if let Err(e) = write_reports(out, &plan, &loaded, &comparison) {
            // A half-written report is no result: nothing of it stays.
            folder.discard();
            return Err(e);
        }
        println!(
            "wrote {}/compare.md, compare.json, compare_accuracy.svg, compare_curves.svg{}",
            out.display(),
            if comparison.versus.is_empty() {
                ""
            } else {
                ", compare_difference.svg, frontier.svg, frontier_time.svg"
            }
        );
    }
    Ok(())
}
