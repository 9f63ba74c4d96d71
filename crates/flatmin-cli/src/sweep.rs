//! `flatmin sweep`: a grid of training runs — optimizer variants × label-noise rates × seeds —
//! that can be interrupted and resumed, summarised as a Markdown table (mean ± std over seeds)
//! and pictured (accuracy against noise rate, training curves).
//!
//! Every run lives in its own folder under `OUT/runs/`, written by the same code as
//! `flatmin train --out`: a finished run (its `summary.json`) is reused, an interrupted one is
//! resumed from its checkpoint, so running the same sweep again after a kill only does what is
//! left, and ends with the same numbers as an uninterrupted sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flatmin::hessian::PowerIterationConfig;
use serde::{Deserialize, Serialize};

use crate::args::{ReadingArgs, TrainArgs};
use crate::frontier::{self, Entry, FrontierPoint, Interval};
use crate::fsutil::write_atomic;
use crate::outdir::{Intent, OutDir};
use crate::plot::{LineChart, Series};
use crate::train::{self, Progress, RunOptions, Summary, TrainConfig, TrainError};

/// Flags of `flatmin sweep` (plus every training flag of `flatmin train`).
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Optimizer presets, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sgd,sam")]
    pub optimizers: Vec<String>,
    /// A hyperparameter axis, `KEY=V1,V2,…` with KEY a field of the config's `hp` (rho, wsam_gamma,
    /// esam_beta, esam_gamma, fsam_lambda, gsam_alpha, sam_every, sam_probability, looksam_alpha,
    /// ae_c_end, bsam_damping, …); repeat for a grid.
    #[arg(long = "vary")]
    pub vary: Vec<String>,
    /// Label-noise rates, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub noise: Vec<f64>,
    /// Seeds per cell (0, 1, … N−1).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Also measure λ_max (top Hessian eigenvalue) of every trained model.
    #[arg(long)]
    pub sharpness: bool,
    /// Training images the λ_max loss is taken on.
    #[arg(long, default_value_t = 1000)]
    pub sharpness_samples: usize,
    /// Training settings shared by every run (`--out` is the sweep's folder).
    #[command(flatten)]
    pub train: TrainArgs,
    /// How to read `--data PATH`: the same flags as `flatmin train` and `flatmin compare`.
    #[command(flatten)]
    pub input: ReadingArgs,
}

/// What defines a sweep; stored as `sweep.json` so that a re-run can check it is the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// The shared training configuration.
    pub base: TrainConfig,
    /// Optimizer presets.
    pub optimizers: Vec<String>,
    /// Hyperparameter axes.
    pub vary: Vec<(String, Vec<f64>)>,
    /// Noise rates.
    pub noise: Vec<f64>,
    /// Seeds per cell.
    pub seeds: u64,
    /// Whether λ_max is measured.
    pub sharpness: bool,
    /// Samples for λ_max.
    pub sharpness_samples: usize,
}

/// One optimizer variant: a preset and hyperparameter values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Label for tables and legends.
    pub label: String,
    /// Folder-safe name.
    pub slug: String,
    /// The preset.
    pub optimizer: String,
    /// `(key, value)` overrides.
    pub values: Vec<(String, f64)>,
}

/// One run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Seed.
    pub seed: u64,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Final train loss.
    pub train_loss: f64,
    /// ms per step.
    pub mean_step_ms: f64,
    /// λ_max, if measured.
    pub lambda_max: Option<f64>,
    /// Test accuracy per epoch.
    pub curve: Vec<f64>,
    /// Optimizer steps taken.
    pub steps: usize,
    /// The fraction of the steps that ran SAM's second pass (`null` for runs made before it
    /// was recorded).
    pub second_pass_fraction: Option<f64>,
    /// Whether the final model classifies each test example right (from the run folder's
    /// `test_correct.txt`; `None` for runs made before it was written). In results.json as a
    /// string of `0` and `1`, one per test example, so that the intervals can be made again
    /// from the results alone (REPRODUCTION.md's tables are).
    #[serde(serialize_with = "outcomes_as_digits", skip_serializing_if = "Option::is_none")]
    pub test_correct: Option<Vec<bool>>,
}

/// A cell: a variant at a noise rate, over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The variant's label.
    pub variant: String,
    /// The noise rate.
    pub noise: f64,
    /// Every seed's run.
    pub runs: Vec<RunResult>,
    /// Mean test accuracy.
    pub accuracy_mean: f64,
    /// Sample standard deviation of the test accuracy.
    pub accuracy_std: f64,
    /// Mean λ_max.
    pub lambda_mean: Option<f64>,
    /// Standard deviation of λ_max.
    pub lambda_std: Option<f64>,
    /// Mean ms per step.
    pub step_ms: f64,
    /// Mean training time of a run (its optimizer steps), in seconds.
    pub training_seconds: f64,
    /// The fraction of the cell's steps that ran SAM's second pass.
    pub second_pass_fraction: Option<f64>,
}

/// The frontier at one noise rate: every variant against the first (the base).
#[derive(Debug, Clone, Serialize)]
pub struct NoiseFrontier {
    /// The noise rate.
    pub noise: f64,
    /// The base variant's label.
    pub base: String,
    /// Every variant, the base first (crate::frontier).
    pub points: Vec<FrontierPoint>,
}

/// Per test example of a run, right (`1`) or wrong (`0`): what the sweep's intervals pair.
const TEST_CORRECT: &str = "test_correct.txt";

fn write_test_correct(dir: &Path, correct: &[bool]) -> Result<(), TrainError> {
    let path = dir.join(TEST_CORRECT);
    write_atomic(&path, digits(correct).as_bytes()).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}

fn read_test_correct(dir: &Path) -> Option<Vec<bool>> {
    outcomes_from_digits(&std::fs::read_to_string(dir.join(TEST_CORRECT)).ok()?)
}

/// Per-example outcomes as `0`/`1` digits (`test_correct.txt`, results.json).
fn digits(correct: &[bool]) -> String {
    correct.iter().map(|&c| if c { '1' } else { '0' }).collect()
}

/// [`digits`] for results.json.
fn outcomes_as_digits<S: serde::Serializer>(correct: &Option<Vec<bool>>, s: S) -> Result<S::Ok, S::Error> {
    match correct {
        Some(c) => s.serialize_str(&digits(c)),
        None => s.serialize_none(),
    }
}

/// The outcomes of a string of `0`/`1` digits; `None` if any other character is in it.
pub fn outcomes_from_digits(text: &str) -> Option<Vec<bool>> {
    text.trim()
        .chars()
        .map(|c| match c {
            '1' => Some(true),
            '0' => Some(false),
            _ => None,
        })
        .collect()
}

/// The difference of cell `method` to cell `base` (same noise rate, runs paired by seed) in
/// points, with its 95 % interval: on the paired per-example outcomes of the fixed test set
/// (seeds and test examples, [`crate::stats::seeds_and_test_examples`]) when every run recorded
/// them, else the plain t over seeds; none with one seed.
pub fn cell_difference(base: &Cell, method: &Cell) -> Interval {
    let pairs: Vec<(&RunResult, &RunResult)> = base
        .runs
        .iter()
        .filter_map(|b| method.runs.iter().find(|m| m.seed == b.seed).map(|m| (b, m)))
        .collect();
    let per_seed: Vec<f64> = pairs
        .iter()
        .map(|(b, m)| 100.0 * (m.test_accuracy - b.test_accuracy))
        .collect();
    let (mean, _) = mean_std(&per_seed);
    let outcomes: Option<Vec<crate::stats::Discordance>> = pairs
        .iter()
        .map(|(b, m)| match (&b.test_correct, &m.test_correct) {
            (Some(b), Some(m)) if b.len() == m.len() => Some(crate::stats::discordance(b, m)),
            _ => None,
        })
        .collect();
    let estimate = match outcomes {
        Some(o) => crate::stats::seeds_and_test_examples(&o),
        None => crate::stats::plain_t(&per_seed, f64::NAN),
    };
    match estimate {
        Some(e) => Interval {
            mean: e.mean,
            half_width: Some(e.half_width),
            method: Some(e.method),
        },
        None => Interval {
            mean,
            half_width: None,
            method: None,
        },
    }
}

/// The frontier at every noise rate: each variant against the first, with SAM (the `sam`
/// preset without varied values) as the reference when it is there.
pub fn frontiers(spec: &SweepSpec, variants: &[Variant], cells: &[Cell]) -> Vec<NoiseFrontier> {
    let sam = variants
        .iter()
        .position(|v| v.optimizer == "sam" && v.values.is_empty());
    spec.noise
        .iter()
        .filter_map(|&noise| {
            let row: Vec<&Cell> = variants
                .iter()
                .map(|v| cells.iter().find(|c| c.variant == v.label && c.noise == noise))
                .collect::<Option<_>>()?;
            let entries: Vec<Entry> = row
                .iter()
                .map(|c| Entry {
                    label: c.variant.clone(),
                    ms_per_step: c.step_ms,
                    training_seconds: c.training_seconds,
                    second_pass_fraction: c.second_pass_fraction,
                })
                .collect();
            Some(NoiseFrontier {
                noise,
                base: row.first()?.variant.clone(),
                points: frontier::build(&entries, |i, j| cell_difference(row[i], row[j]), sam),
            })
        })
        .collect()
}

/// The frontiers as Markdown, one table per noise rate.
pub fn frontier_markdown(frontiers: &[NoiseFrontier]) -> String {
    let mut s = String::new();
    for f in frontiers.iter().filter(|f| f.points.len() > 1) {
        s.push_str(&format!(
            "\nGain against cost at label noise {:.0} % (Δ: difference to {} paired by seed, with the 95 % interval over \
             seeds and the test set's examples):\n\n{}",
            100.0 * f.noise,
            f.base,
            frontier::markdown(&f.points, &f.base)
        ));
    }
    s
}

// Mean and sample standard deviation: the laboratory's one (crate::stats), kept at this path.
pub use crate::stats::mean_std;

fn fmt_value(v: f64) -> String {
    let s = format!("{v}");
    if s.len() > 8 { format!("{v:.4}") } else { s }
}

/// Every variant of the spec: presets × the cartesian product of the axes.
pub fn variants(spec: &SweepSpec) -> Vec<Variant> {
    let mut combos: Vec<Vec<(String, f64)>> = vec![Vec::new()];
    for (key, values) in &spec.vary {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), *v));
                    c
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for opt in &spec.optimizers {
        for combo in &combos {
            let extra: Vec<String> = combo.iter().map(|(k, v)| format!("{k}={}", fmt_value(*v))).collect();
            let label = if extra.is_empty() {
                opt.clone()
            } else {
                format!("{opt} {}", extra.join(" "))
            };
            let slug: String = label
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            out.push(Variant {
                label,
                slug,
                optimizer: opt.clone(),
                values: combo.clone(),
            });
        }
    }
    out
}

/// Sets hyperparameter `key` of `config` (a key of one of
/// [`crate::hyperparams::lab_hyperparameters`]; a switch is on for any value but 0).
pub fn set_hyper(config: &mut TrainConfig, key: &str, value: f64) -> Result<(), TrainError> {
    config
        .hp
        .set(key, value)
        .map_err(|e| TrainError::Invalid(format!("--vary {key}: {e}")))
}

/// The configuration of one run of the grid.
pub fn run_config(spec: &SweepSpec, variant: &Variant, noise: f64, seed: u64) -> Result<TrainConfig, TrainError> {
    let mut c = spec.base.clone();
    c.optimizer = variant.optimizer.clone();
    c.label_noise = noise;
    c.seed = seed;
    for (k, v) in &variant.values {
        set_hyper(&mut c, k, *v)?;
    }
    c.check()?;
    Ok(c)
}

fn parse_axis(text: &str) -> Result<(String, Vec<f64>), TrainError> {
    let (key, values) = text
        .split_once('=')
        .ok_or_else(|| TrainError::Invalid(format!("--vary `{text}`: expected KEY=V1,V2,…")))?;
    let values = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| TrainError::Invalid(format!("--vary `{text}`: `{v}` is not a number")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() {
        return Err(TrainError::Invalid(format!("--vary `{text}`: no values")));
    }
    Ok((key.trim().to_string(), values))
}

impl SweepArgs {
    /// The sweep's folder and spec.
    pub fn spec(&self) -> Result<(PathBuf, SweepSpec), TrainError> {
        let out = self
            .train
            .out
            .clone()
            .ok_or_else(|| TrainError::Invalid("--out DIR is required".into()))?;
        if self.train.optimizer.is_some() {
            return Err(TrainError::Invalid(
                "use --optimizers (a list) in a sweep, not --optimizer".into(),
            ));
        }
        if self.train.resume.is_some() || self.train.compare_base {
            return Err(TrainError::Invalid(
                "--resume and --compare-base are not sweep flags: run the same sweep again to resume it".into(),
            ));
        }
        if self.seeds == 0 || self.noise.is_empty() || self.optimizers.is_empty() {
            return Err(TrainError::Invalid(
                "a sweep needs at least one optimizer, one noise rate and one seed".into(),
            ));
        }
        let spec = SweepSpec {
            base: TrainArgs {
                input: self.input.clone(),
                ..self.train.clone()
            }
            .config()?,
            optimizers: self.optimizers.clone(),
            vary: self.vary.iter().map(|v| parse_axis(v)).collect::<Result<_, _>>()?,
            noise: self.noise.clone(),
            seeds: self.seeds,
            sharpness: self.sharpness,
            sharpness_samples: self.sharpness_samples,
        };
        // Every run's configuration is checked before anything starts.
        for v in variants(&spec) {
            for &p in &spec.noise {
                run_config(&spec, &v, p, 0)?;
            }
        }
        Ok((out, spec))
    }
}

fn run_dir(out: &Path, variant: &Variant, noise: f64, seed: u64) -> PathBuf {
    out.join("runs")
        .join(&variant.slug)
        .join(format!("noise-{noise}"))
        .join(format!("seed-{seed}"))
}

fn read_summary(dir: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Runs (or finishes) the sweep in `out` and writes its reports. `log` receives progress lines.
pub fn run(out: &Path, spec: &SweepSpec, quiet: bool) -> Result<Vec<Cell>, TrainError> {
    std::fs::create_dir_all(out).map_err(|e| TrainError::Invalid(format!("--out {}: {e}", out.display())))?;
    let spec_path = out.join("sweep.json");
    if let Ok(text) = std::fs::read_to_string(&spec_path) {
        let old: SweepSpec =
            serde_json::from_str(&text).map_err(|e| TrainError::Invalid(format!("{}: {e}", spec_path.display())))?;
        if &old != spec {
            return Err(TrainError::Invalid(format!(
                "{} holds another sweep; use a new --out folder (or delete it)",
                spec_path.display()
            )));
        }
    } else {
        let text = serde_json::to_string_pretty(spec).map_err(|e| TrainError::Invalid(e.to_string()))?;
        write_atomic(&spec_path, text.as_bytes())
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", spec_path.display())))?;
    }
    let variants = variants(spec);
    let total = variants.len() * spec.noise.len() * spec.seeds as usize;
    let mut done = 0;
    let mut cells = Vec::new();
    for variant in &variants {
        for &noise in &spec.noise {
            let mut runs = Vec::new();
            for seed in 0..spec.seeds {
                done += 1;
                let config = run_config(spec, variant, noise, seed)?;
                let dir = run_dir(out, variant, noise, seed);
                let (summary, test_correct) = match read_summary(&dir).filter(|s| s.config == config) {
                    Some(s) => (s, read_test_correct(&dir)),
                    None => {
                        let resume = dir.join("checkpoint.json").exists()
                            && train::checkpoint_config(&dir).is_ok_and(|c| c == config);
                        if !quiet {
                            eprintln!(
                                "[{done}/{total}] {} noise {noise} seed {seed}{}",
                                variant.label,
                                if resume { " (resuming)" } else { "" }
                            );
                        }
                        let options = RunOptions {
                            out: Some(&dir),
                            resume,
                            progress: Progress::Quiet,
                            label: variant.label.clone(),
                            device: crate::device::DeviceChoice::Cpu,
                        };
                        let summary = train::run(&config, &options)?;
                        write_test_correct(&dir, &summary.test_correct)?;
                        let correct = summary.test_correct.clone();
                        (summary, Some(correct))
                    }
                };
                let lambda_max = if spec.sharpness {
                    Some(sharpness(&dir, spec)?)
                } else {
                    None
                };
                runs.push(RunResult {
                    seed,
                    test_accuracy: summary.test_accuracy,
                    test_loss: summary.test_loss,
                    train_loss: summary.train_loss,
                    mean_step_ms: summary.mean_step_ms,
                    lambda_max,
                    curve: summary.history.iter().map(|m| m.test_accuracy).collect(),
                    steps: summary.steps,
                    second_pass_fraction: summary.second_pass_fraction,
                    test_correct,
                });
            }
            let (accuracy_mean, accuracy_std) = mean_std(&runs.iter().map(|r| r.test_accuracy).collect::<Vec<_>>());
            let lambdas: Vec<f64> = runs.iter().filter_map(|r| r.lambda_max).collect();
            let (lm, ls) = mean_std(&lambdas);
            cells.push(Cell {
                variant: variant.label.clone(),
                noise,
                accuracy_mean,
                accuracy_std,
                lambda_mean: (!lambdas.is_empty()).then_some(lm),
                lambda_std: (!lambdas.is_empty()).then_some(ls),
                step_ms: crate::stats::mean(&runs.iter().map(|r| r.mean_step_ms).collect::<Vec<_>>()),
                training_seconds: crate::stats::mean(
                    &runs
                        .iter()
                        .map(|r| r.steps as f64 * r.mean_step_ms / 1e3)
                        .collect::<Vec<_>>(),
                ),
                second_pass_fraction: runs
                    .iter()
                    .map(|r| r.second_pass_fraction.map(|f| f * r.steps as f64))
                    .sum::<Option<f64>>()
                    .map(|passes| passes / runs.iter().map(|r| r.steps).sum::<usize>().max(1) as f64),
                runs,
            });
        }
    }
    write_reports(out, spec, &variants, &cells)?;
    Ok(cells)
}

/// λ_max of a finished run, cached in its folder as `sharpness.json`.
fn sharpness(dir: &Path, spec: &SweepSpec) -> Result<f64, TrainError> {
    let path = dir.join("sharpness.json");
    if let Some(v) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["lambda_max"].as_f64())
    {
        return Ok(v);
    }
    let est = crate::sharpness::measure(dir, spec.sharpness_samples, &PowerIterationConfig::new())?;
    let value = serde_json::json!({"lambda_max": est.eigenvalue, "iterations": est.iterations, "converged": est.converged,
            "plateau": est.plateau, "spread": est.spread});
    write_atomic(&path, value.to_string().as_bytes())
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
    Ok(est.eigenvalue)
}

/// The Markdown table: one row per variant, one column per noise rate (test accuracy mean ± std
/// over seeds, in %), then λ_max and ms per step.
pub fn markdown(spec: &SweepSpec, variants: &[Variant], cells: &[Cell]) -> String {
    let mut s = String::new();
    s.push_str("| optimizer |");
    for p in &spec.noise {
        s.push_str(&format!(" noise {:.0} % |", p * 100.0));
    }
    if spec.sharpness {
        s.push_str(&format!(" λ_max (noise {:.0} %) |", spec.noise[0] * 100.0));
    }
    s.push_str(" ms/step |\n|---|");
    for _ in &spec.noise {
        s.push_str("---|");
    }
    if spec.sharpness {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for v in variants {
        let row: Vec<&Cell> = cells.iter().filter(|c| c.variant == v.label).collect();
        s.push_str(&format!("| {} |", v.label));
        for c in &row {
            s.push_str(&format!(
                " {:.2} ± {:.2} |",
                100.0 * c.accuracy_mean,
                100.0 * c.accuracy_std
            ));
        }
        if spec.sharpness {
            match (
                row.first().and_then(|c| c.lambda_mean),
                row.first().and_then(|c| c.lambda_std),
            ) {
                (Some(m), Some(sd)) => s.push_str(&format!(" {m:.2} ± {sd:.2} |")),
                _ => s.push_str(" – |"),
            }
        }
        let ms = row.iter().map(|c| c.step_ms).sum::<f64>() / row.len().max(1) as f64;
        s.push_str(&format!(" {ms:.1} |\n"));
    }
    s
}

fn write_reports(out: &Path, spec: &SweepSpec, variants: &[Variant], cells: &[Cell]) -> Result<(), TrainError> {
    let write = |name: &str, text: &str| {
        write_atomic(&out.join(name), text.as_bytes())
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", out.join(name).display())))
    };
    let frontiers = frontiers(spec, variants, cells);
    let md = format!(
        "# Sweep: {} on {} ({} epochs, {} seeds)\n\nTest accuracy, mean ± std over seeds (%).\n\n{}{}",
        spec.base.model,
        spec.base.dataset,
        spec.base.epochs,
        spec.seeds,
        markdown(spec, variants, cells),
        frontier_markdown(&frontiers)
    );
    write("results.md", &md)?;
    for f in frontiers.iter().filter(|f| f.points.len() > 1) {
        let what = format!(", label noise {:.0} % ({} seeds)", 100.0 * f.noise, spec.seeds);
        let [per_step, total] = frontier::charts(&f.points, &f.base, &what);
        write(&format!("frontier_noise{}.svg", f.noise), &per_step.to_svg())?;
        write(&format!("frontier_time_noise{}.svg", f.noise), &total.to_svg())?;
    }
    let json = serde_json::json!({"spec": spec, "variants": variants, "cells": cells, "frontier": frontiers});
    write(
        "results.json",
        &serde_json::to_string_pretty(&json).map_err(|e| TrainError::Invalid(e.to_string()))?,
    )?;
    if spec.noise.len() > 1 {
        let chart = LineChart {
            title: format!(
                "Test accuracy vs label noise ({}, {} seeds)",
                spec.base.model, spec.seeds
            ),
            x_label: "symmetric label noise rate".into(),
            y_label: "test accuracy (%)".into(),
            series: variants
                .iter()
                .map(|v| Series {
                    label: v.label.clone(),
                    points: cells
                        .iter()
                        .filter(|c| c.variant == v.label)
                        .map(|c| (c.noise, 100.0 * c.accuracy_mean, Some(100.0 * c.accuracy_std)))
                        .collect(),
                })
                .collect(),
        };
        write("accuracy_vs_noise.svg", &chart.to_svg())?;
    }
    let mut by_noise: BTreeMap<String, Vec<&Cell>> = BTreeMap::new();
    for c in cells {
        by_noise.entry(format!("{}", c.noise)).or_default().push(c);
    }
    for (noise, group) in by_noise {
        let chart = LineChart {
            title: format!("Test accuracy per epoch, label noise {noise} (mean over seeds)"),
            x_label: "epoch".into(),
            y_label: "test accuracy (%)".into(),
            series: group
                .iter()
                .map(|c| {
                    let epochs = c.runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
                    Series {
                        label: c.variant.clone(),
                        points: (0..epochs)
                            .map(|e| {
                                let at: Vec<f64> = c.runs.iter().map(|r| 100.0 * r.curve[e]).collect();
                                let (m, sd) = mean_std(&at);
                                ((e + 1) as f64, m, Some(sd))
                            })
                            .collect(),
                    }
                })
                .collect(),
        };
        write(&format!("curves_noise{noise}.svg"), &chart.to_svg())?;
    }
    Ok(())
}

/// `flatmin sweep`.
pub fn command(args: &SweepArgs) -> Result<(), TrainError> {
    args.train.cpu_only("sweep")?;
    let (out, spec) = args.spec()?;
    // The same sweep again continues it; another one is refused unless --overwrite replaces it.
    let spec_path = out.join("sweep.json");
    let same = match std::fs::read_to_string(&spec_path) {
        Ok(text) => {
            let old: Option<SweepSpec> = serde_json::from_str(&text).ok();
            if old.as_ref() != Some(&spec) && !args.train.overwrite {
                return Err(TrainError::Invalid(format!(
                    "{} holds another sweep{}: nothing was written; give --overwrite to replace it, \
                     or a new --out folder",
                    spec_path.display(),
                    if old.is_none() { " (or an unreadable one)" } else { "" }
                )));
            }
            old.as_ref() == Some(&spec)
        }
        Err(_) => false,
    };
    let intent = match (args.train.overwrite, same) {
        (true, _) => Intent::Overwrite,
        (false, true) => Intent::Continue,
        (false, false) => Intent::New,
    };
    let mut folder = OutDir::new(&out, "sweep", intent);
    folder.check()?;
    // The data is read and checked against the settings before the folder is made.
    if let (Some(variant), Some(&noise)) = (variants(&spec).first(), spec.noise.first()) {
        train::check_data(&run_config(&spec, variant, noise, 0)?)?;
    }
    let description = format!(
        "{} × noise {:?} × {} seeds, {} model, {} epochs, on {}",
        spec.optimizers.join(", "),
        spec.noise,
        spec.seeds,
        spec.base.model,
        spec.base.epochs,
        spec.base.dataset
    );
    folder.claim(&description, serde_json::to_value(&spec).unwrap_or_default())?;
    let cells = run(&out, &spec, args.train.quiet).inspect_err(|_| folder.abandon())?;
    let all = variants(&spec);
    println!("{}", markdown(&spec, &all, &cells));
    print!("{}", frontier_markdown(&frontiers(&spec, &all, &cells)));
    println!("wrote {}/results.md, results.json and plots", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12 && (s - 1.2909944487358056).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn variants_are_the_cartesian_product_of_the_axes() {
        let spec = SweepSpec {
            base: TrainConfig::default(),
            optimizers: vec!["sgd".into(), "esam".into()],
            vary: vec![
                ("esam_beta".into(), vec![0.4, 0.6]),
                ("esam_gamma".into(), vec![0.5, 0.7, 0.9]),
            ],
            noise: vec![0.0],
            seeds: 1,
            sharpness: false,
            sharpness_samples: 10,
        };
        let v = variants(&spec);
        assert_eq!(v.len(), 12);
        assert_eq!(v[0].label, "sgd esam_beta=0.4 esam_gamma=0.5");
        assert_eq!(v[11].label, "esam esam_beta=0.6 esam_gamma=0.9");
        let c = run_config(&spec, &v[11], 0.2, 3).unwrap();
        assert_eq!(
            (c.hp.get("esam_beta"), c.hp.get("esam_gamma"), c.label_noise, c.seed),
            (Some(0.6), Some(0.9), 0.2, 3)
        );
        let mut bad = TrainConfig::default();
        assert!(set_hyper(&mut bad, "not_a_key", 1.0).is_err());
        set_hyper(&mut bad, "wsam_coupled", 1.0).unwrap();
        assert_eq!(bad.hp.get("wsam_coupled"), Some(1.0));
    }
}
