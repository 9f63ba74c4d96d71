//! The runs of `flatmin compare`: the ρ searches (if asked), then every optimizer on every run of
//! the design ([`run`]), each optimizer's runs summarised ([`OptimizerResult`]).

use std::time::Instant;

use serde::Serialize;

use super::assess::{VersusBase, assess};
use super::plan::validation_split;
use super::text::{display_name, row_label};
use super::{CompareError, Plan, RunSpec, SplitDesign};
use crate::data::{Split, split};
use crate::frontier::FrontierPoint;
use crate::stats::{mean, mean_std};
use crate::train::{self, Progress, RunOptions, Summary, TrainConfig, TrainError};

/// A test set smaller than this gets a warning: one example is more than 2 points.
pub const SMALL_TEST_SET: usize = 50;

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

/// One training run of `config` on `split` (after --train-limit, --test-limit and label noise),
/// quietly: its summary and its numbers of training and test examples.
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
pub fn run(plan: &Plan, loaded: &Split) -> Result<Comparison, CompareError> {
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
                let (s, ..) =
                    run_one(&config, &search_split, format!("{o} ρ={rho}")).map_err(|source| CompareError::Search {
                        optimizer: o.to_string(),
                        rho,
                        source,
                    })?;
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

/// One optimizer's results from the summaries of its runs (`runs`, never empty, in the order of
/// `seeds`): the accuracy's mean and spread, the mean curves, costs and skipped steps.
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
        curve_seconds.push(mean(&elapsed));
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
        ms_per_step: mean(&runs.iter().map(|s| s.mean_step_ms).collect::<Vec<_>>()),
        curve,
        curve_std,
        curve_seconds,
        steps: runs.iter().map(|s| s.steps).sum(),
        skipped_steps: runs
            .iter()
            .flat_map(|s| s.history.iter().map(|h| h.skipped_steps))
            .sum(),
        training_seconds: mean(
            &runs
                .iter()
                .map(|s| s.steps as f64 * s.mean_step_ms / 1e3)
                .collect::<Vec<_>>(),
        ),
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
