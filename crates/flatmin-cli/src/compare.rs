//! `flatmin compare`: does SAM (or any member of the family) help on *my* data? Every optimizer is
//! trained on the same split with the same seeds; the answer is the test-accuracy difference to
//! the base optimizer with a 95 % confidence interval paired over seeds, what it costs, and a
//! verdict in words that says "better" or "worse" only when the interval excludes 0.
//!
//! With `--rho-search`, each optimizer's ρ is first chosen by mean validation accuracy on a
//! validation split carved (seeded, stratified) from the training data; the test set is touched
//! only by the final runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::args::TrainArgs;
use crate::data::input::{self, InputOptions, Loaded};
use crate::data::{Split, split};
use crate::fsutil::write_atomic;
use crate::plot::{LineChart, Series};
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
    /// the differences are paired by seed.
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
    /// The fraction of each class held out for testing when the data has no test part.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Seed of the test and validation splits (the same for every optimizer and run).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
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

/// Mixed into the split seed for the validation split, so it is independent of the test split.
const VALIDATION_STREAM: u64 = 0x5641_4c49_4400_0001;

// ---------------------------------------------------------------------------------------------
// Statistics

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-14).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz).
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < tiny { tiny } else { d };
    let mut f = d;
    for m in 1..=500 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = 1.0 / if d.abs() < tiny { tiny } else { d };
            c = 1.0 + numerator / c;
            if c.abs() < tiny {
                c = tiny;
            }
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * f / a
}

/// The cumulative distribution function of Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (`df` > 0, 0 < `p` < 1): the
/// inverse of [`t_cdf`] by bisection, to about 1e-12 relative.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    if p == 0.5 {
        return 0.0;
    }
    let mut hi = 1.0;
    while t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The difference of a method to the base over paired seeds (in accuracy points), with its
/// two-sided 95 % t-interval when there are two seeds or more.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDifference {
    /// Seeds (pairs).
    pub n: usize,
    /// Mean of the per-seed differences, method − base.
    pub mean: f64,
    /// Sample standard deviation of the per-seed differences (0 with one seed).
    pub std: f64,
    /// The 0.975 quantile of t with n − 1 degrees of freedom (`None` with one seed).
    pub t: Option<f64>,
    /// t · std / √n: the interval is mean ± this (`None` with one seed).
    pub half_width: Option<f64>,
}

impl PairedDifference {
    /// Pairs `method[i]` with `base[i]` (the same seed) and takes the differences.
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
    /// The whole 95 % interval is above 0.
    Better,
    /// The whole 95 % interval is below 0.
    Worse,
    /// The interval contains 0.
    NoDifference,
    /// One seed: no interval, no verdict.
    OneSeed,
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

/// The plain-language verdict on `name` (e.g. "SAM") against the base, at `step_cost` times the
/// base's time per step: "SAM is better by 1.2 ± 0.4 points at 2.0× the cost per step", "SAM:
/// no difference detectable with 3 seeds (−0.3 ± 0.9 points) at 2.0× the cost per step", "SAM is
/// worse by …", or, with one seed, the difference and that there is no interval.
pub fn verdict(name: &str, diff: &PairedDifference, step_cost: f64) -> String {
    let cost = format!("at {} the cost per step", times(step_cost));
    let seeds = if diff.n == 1 {
        "1 seed".to_string()
    } else {
        format!("{} seeds", diff.n)
    };
    match (diff.outcome(), diff.half_width) {
        (Outcome::Better | Outcome::Worse, Some(h)) => {
            let k = decimals(diff.mean, h);
            let word = if diff.outcome() == Outcome::Better {
                "better"
            } else {
                "worse"
            };
            format!(
                "{name} is {word} by {} ± {:.*} points {cost} (95 % CI over {seeds})",
                signed(diff.mean.abs(), k, false),
                k,
                h
            )
        }
        (Outcome::NoDifference, Some(h)) => {
            let k = decimals(diff.mean, h);
            format!(
                "{name}: no difference detectable with {seeds} ({} ± {:.*} points) {cost}",
                signed(diff.mean, k, true),
                k,
                h
            )
        }
        _ => format!(
            "{name}: {} points with 1 seed, which gives no confidence interval: run --seeds 3 or more to \
             tell an effect from seed noise ({cost})",
            signed(diff.mean, decimals(diff.mean, 0.0), true)
        ),
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
    /// ρ used in the final runs (`None` for the base alone).
    pub rho: Option<f64>,
    /// Where ρ came from: "search", "flag" or "preset".
    pub rho_from: Option<String>,
    /// The run seeds.
    pub seeds: Vec<u64>,
    /// Final test accuracy per seed (fraction).
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
}

/// An optimizer against the base.
#[derive(Debug, Clone, Serialize)]
pub struct VersusBase {
    /// The optimizer.
    pub optimizer: String,
    /// Differences of test accuracy in points, paired by seed.
    pub difference_points: PairedDifference,
    /// Per-seed differences (points).
    pub per_seed_points: Vec<f64>,
    /// The interval's ends (points), if any.
    pub interval_points: Option<(f64, f64)>,
    /// What the interval says.
    pub outcome: Outcome,
    /// ms/step of the optimizer over that of the base.
    pub step_cost_ratio: f64,
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
    /// (ρ, mean validation accuracy, its std, per-seed accuracies).
    pub tried: Vec<(f64, f64, f64, Vec<f64>)>,
    /// The chosen ρ.
    pub chosen: f64,
}

/// The display name of a preset: upper case, and the base optimizer's name for `sgd` (the base
/// alone).
pub fn display_name(optimizer: &str, base: &str) -> String {
    match (optimizer, base) {
        ("sgd", "adam") => "Adam".into(),
        ("sgd", "adamw") => "AdamW".into(),
        ("sgd", _) => "SGD".into(),
        ("fisher-sam", _) => "Fisher-SAM".into(),
        (o, _) => o.to_uppercase(),
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
    /// Where the reports go.
    pub out: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
}

impl CompareArgs {
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
            t.rho.is_some() && !self.rho_search.is_empty(),
            "give --rho or --rho-search, not both",
        )?;
        if self.optimizers.is_empty() || self.seeds == 0 {
            return Err(TrainError("compare needs at least one optimizer and one seed".into()));
        }
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
            test_fraction: self.test_fraction,
            seed: self.split_seed,
        };
        let loaded = input::load(&self.data, &options).map_err(|e| TrainError(e.to_string()))?;
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
            split_seed: self.split_seed,
            out: t.out.clone(),
            quiet: t.quiet,
        };
        for o in &plan.optimizers {
            plan.config(o, None, 0)?.check()?;
        }
        Ok((plan, loaded))
    }
}

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
            c.hp.rho = Some(rho);
        }
        Ok(c)
    }

    fn has_rho(&self, optimizer: &str) -> bool {
        optimizer != "sgd"
    }
}

fn run_one(config: &TrainConfig, split: &Split, label: String) -> Result<Summary, TrainError> {
    let mut split = split.clone();
    train::limit_and_noise(config, &mut split)?;
    let options = RunOptions {
        out: None,
        resume: false,
        progress: Progress::Quiet,
        label,
    };
    train::run_on(config, &options, split)
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
    /// Wall time of everything, in seconds.
    pub seconds: f64,
}

/// Runs the comparison: the ρ searches (if asked), then every optimizer on every seed.
pub fn run(plan: &Plan, split: &Split) -> Result<Comparison, TrainError> {
    let started = Instant::now();
    let searched: Vec<&String> = if plan.rho_search.is_empty() {
        Vec::new()
    } else {
        plan.optimizers.iter().filter(|o| plan.has_rho(o)).collect()
    };
    let total =
        searched.len() * plan.rho_search.len() * plan.search_seeds.len() + plan.optimizers.len() * plan.seeds.len();
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
    if !searched.is_empty() {
        let (fit, val) = {
            let (kept, held) = split::stratified_indices(
                &split.train.labels,
                split.train.classes,
                plan.val_fraction,
                plan.split_seed ^ VALIDATION_STREAM,
            );
            (split::subset(&split.train, &kept), split::subset(&split.train, &held))
        };
        if val.is_empty() {
            return Err(TrainError(
                "the training data is too small to hold out a validation set for --rho-search".into(),
            ));
        }
        let search_split = Split { train: fit, test: val };
        for o in &searched {
            let mut tried = Vec::new();
            for &rho in &plan.rho_search {
                let mut accs = Vec::new();
                for &seed in &plan.search_seeds {
                    let config = plan.config(o, Some(rho), seed)?;
                    let t0 = Instant::now();
                    let s = run_one(&config, &search_split, format!("{o} ρ={rho}"))
                        .map_err(|e| TrainError(format!("ρ search ({o}, ρ = {rho}, on the training part): {e}")))?;
                    progress(format!("ρ search: {o} ρ={rho} seed {seed}"), &s, t0, "validation acc");
                    accs.push(s.test_accuracy);
                }
                let (m, sd) = mean_std(&accs);
                tried.push((rho, m, sd, accs));
            }
            // The best mean validation accuracy; ties go to the value listed first.
            let chosen = tried
                .iter()
                .fold(None::<&(f64, f64, f64, Vec<f64>)>, |best, t| match best {
                    Some(b) if b.1 >= t.1 => Some(b),
                    _ => Some(t),
                })
                .map(|t| t.0)
                .unwrap_or(f64::NAN);
            searches.push(RhoSearch {
                optimizer: o.to_string(),
                tried,
                chosen,
            });
        }
    }

    let mut results = Vec::new();
    for o in &plan.optimizers {
        let chosen = searches.iter().find(|s| &s.optimizer == o).map(|s| s.chosen);
        let mut summaries = Vec::new();
        for &seed in &plan.seeds {
            let config = plan.config(o, chosen, seed)?;
            let t0 = Instant::now();
            let s = run_one(&config, split, o.clone())?;
            progress(format!("{o} seed {seed}"), &s, t0, "test acc");
            summaries.push(s);
        }
        let config = plan.config(o, chosen, plan.seeds[0])?;
        let rho = plan
            .has_rho(o)
            .then(|| config.sam_config().map(|c| c.rho))
            .transpose()?;
        let rho_from = plan.has_rho(o).then(|| {
            if chosen.is_some() {
                "search"
            } else if plan.base.hp.rho.is_some() {
                "flag"
            } else {
                "preset"
            }
            .to_string()
        });
        results.push(summarise(
            o,
            display_name(o, &plan.base.base),
            rho,
            rho_from,
            &plan.seeds,
            &summaries,
        ));
    }
    let versus = results[1..].iter().map(|r| versus_base(&results[0], r)).collect();
    Ok(Comparison {
        results,
        versus,
        searches,
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
    }
}

/// The comparison of `method` with `base` (results over the same seeds).
pub fn versus_base(base: &OptimizerResult, method: &OptimizerResult) -> VersusBase {
    let points = |v: &[f64]| v.iter().map(|a| 100.0 * a).collect::<Vec<f64>>();
    let difference = PairedDifference::new(&points(&base.test_accuracy), &points(&method.test_accuracy));
    let step_cost_ratio = method.ms_per_step / base.ms_per_step;
    let target = base.accuracy_mean;
    let base_seconds = time_to_reach(&base.curve, &base.curve_seconds, target).unwrap_or(f64::NAN);
    let seconds = time_to_reach(&method.curve, &method.curve_seconds, target);
    let reach_cost_ratio = seconds.map(|s| s / base_seconds);
    let mut sentence = verdict(&method.name, &difference, step_cost_ratio);
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
    VersusBase {
        optimizer: method.optimizer.clone(),
        per_seed_points: base
            .test_accuracy
            .iter()
            .zip(&method.test_accuracy)
            .map(|(b, m)| 100.0 * (m - b))
            .collect(),
        interval_points: difference.interval(),
        outcome: difference.outcome(),
        difference_points: difference,
        step_cost_ratio,
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
        "| optimizer | ρ | test acc (mean ± std) | Δ vs {b} (95 % CI), points | ms/step | cost per step | time to {b}'s accuracy |\n\
         |---|---|---|---|---|---|---|\n",
        b = base.name
    );
    s.push_str(&format!(
        "| {} | {} | {:.2} ± {:.2} % | – | {:.1} | 1.0× | 1.0× |\n",
        base.optimizer,
        rho_cell(base),
        100.0 * base.accuracy_mean,
        100.0 * base.accuracy_std,
        base.ms_per_step
    ));
    for (r, v) in c.results[1..].iter().zip(&c.versus) {
        let d = &v.difference_points;
        let delta = match (d.half_width, v.interval_points) {
            (Some(h), Some((lo, hi))) => {
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
            _ => format!("{} (1 seed: no CI)", signed(d.mean, 2, true)),
        };
        s.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} % | {delta} | {:.1} | {} | {} |\n",
            r.optimizer,
            rho_cell(r),
            100.0 * r.accuracy_mean,
            100.0 * r.accuracy_std,
            r.ms_per_step,
            times(v.step_cost_ratio),
            v.reach_cost_ratio.map(times).unwrap_or_else(|| "not reached".into())
        ));
    }
    s
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
        "# Does it help on {}?\n\nData: {}.\n\nModel {}, {} epochs, batch {}, lr {} (cosine), base {}; seeds {}; \
         {:.1} s in all.\n\n",
        b.dataset,
        loaded.description,
        b.model,
        b.epochs,
        b.batch_size,
        b.lr,
        b.base,
        plan.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        c.seconds
    );
    if !c.searches.is_empty() {
        s.push_str(&format!(
            "ρ search: mean validation accuracy ± std over seeds {} on {:.0} % of each class of the training data \
             (seeded, stratified), the best ρ kept:\n\n{}\n",
            plan.search_seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * plan.val_fraction,
            search_table(&c.searches)
        ));
    }
    s.push_str(&table(c));
    s.push_str(&format!(
        "\nΔ: the mean of the per-seed differences of test accuracy to {base} (paired by seed) ± the half-width \
         of its 95 % t-interval, [low, high]. Cost per step: ms/step over {base}'s. Time to {base}'s accuracy: \
         training time (optimizer steps) until the mean accuracy curve first reaches {base}'s final mean test \
         accuracy, over {base}'s time for the same (accuracy is measured once per epoch).\n\n",
        base = c.results[0].name
    ));
    s.push_str(&verdicts(c));
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
        },
        "model": plan.base.model,
        "epochs": plan.base.epochs,
        "seeds": plan.seeds,
        "base": c.results[0].optimizer,
        "config": plan.base,
        "rho_search": if c.searches.is_empty() { Value::Null } else { json!({
            "values": plan.rho_search,
            "val_fraction": plan.val_fraction,
            "seeds": plan.search_seeds,
            "results": c.searches,
        }) },
        "optimizers": c.results,
        "versus_base": c.versus,
        "verdicts": c.versus.iter().map(|v| v.verdict.clone()).collect::<Vec<_>>(),
        "seconds": c.seconds,
    })
}

fn charts(c: &Comparison, plan: &Plan) -> Vec<(&'static str, LineChart)> {
    let seeds = plan.seeds.len();
    let accuracy = LineChart {
        title: format!("Test accuracy, mean ± std over {seeds} seeds"),
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
        title: format!("Difference to {} with its 95 % interval (points)", c.results[0].name),
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
        title: format!("Test accuracy against training time (mean ± std over {seeds} seeds)"),
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
    Ok(())
}

/// `flatmin compare`.
pub fn command(args: &CompareArgs) -> Result<(), TrainError> {
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
            "model {}, {} epochs; {} × {} seeds{}",
            plan.base.model,
            plan.base.epochs,
            plan.optimizers.join(", "),
            plan.seeds.len(),
            if plan.rho_search.is_empty() {
                String::new()
            } else {
                format!(", after a ρ search over {:?}", plan.rho_search)
            }
        );
    }
    let comparison = run(&plan, &loaded.split)?;
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
        });
        let description = format!(
            "{} on {}, {} model, {} epochs, {} seeds",
            plan.optimizers.join(", "),
            plan.base.dataset,
            plan.base.model,
            plan.base.epochs,
            plan.seeds.len()
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
                ", compare_difference.svg"
            }
        );
    }
    Ok(())
}
