//! What a run reports: the metrics of each epoch, the summary, the table of runs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{checkpoint::*, config::*};
use crate::data::Split;
use crate::device::DeviceChoice;

/// One epoch's figures (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean first-pass training loss.
    pub train_loss: f64,
    /// Training accuracy of the first pass (on the possibly noisy labels).
    pub train_accuracy: f64,
    /// Mean `L(w+e) − L(w)` over the epoch (absent for the base optimizer and with selection).
    pub sharpness: Option<f64>,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Steps skipped for a non-finite loss or gradient.
    pub skipped_steps: usize,
    /// Mean wall time of an optimizer step, in ms.
    pub mean_step_ms: f64,
    /// Wall time of the epoch, in seconds.
    pub seconds: f64,
    /// The fraction of the epoch's steps (those not skipped) that ran SAM's second pass: 1 for
    /// SAM, 0 for the base optimizer, 1/k with `--sam-every k`, AE-SAM's and RST's as drawn.
    /// `null` in runs made before it was recorded.
    #[serde(default)]
    pub second_pass_fraction: Option<f64>,
}

/// What a finished run reports (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The optimizer preset.
    pub optimizer: String,
    /// The full library configuration (every hyperparameter).
    pub hyperparams: Value,
    /// The dataset.
    pub dataset: String,
    /// The model.
    pub model: String,
    /// The float type the model was stored and computed in (`--precision`: f32, bf16, f16).
    #[serde(default = "f32_precision")]
    pub precision: String,
    /// Epochs.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// Label noise rate.
    pub label_noise: f64,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Final epoch's mean training loss.
    pub train_loss: f64,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Wall time of training and evaluation, in seconds (over all sessions of a resumed run).
    pub seconds: f64,
    /// Mean wall time of an optimizer step, in ms.
    pub mean_step_ms: f64,
    /// The device of the run's last session (`cpu`, `wgpu`, `cuda` or `tch`; `cpu` in summaries written before
    /// the key existed).
    #[serde(default = "cpu_name")]
    pub device: String,
    /// The fraction of the run's steps (those not skipped) that ran SAM's second pass (see
    /// [`EpochMetrics::second_pass_fraction`]); `null` for runs made before it was recorded.
    #[serde(default)]
    pub second_pass_fraction: Option<f64>,
    /// The run's whole configuration.
    pub config: TrainConfig,
    /// Settings changed when the run was resumed, oldest first.
    #[serde(default)]
    pub changes: Vec<SettingChange>,
    /// Every epoch.
    pub history: Vec<EpochMetrics>,
    /// Whether the final model classifies each test example right, in test-set order (the paired
    /// per-example outcomes `flatmin compare` needs; not written to summary.json).
    #[serde(skip)]
    pub test_correct: Vec<bool>,
    /// Which data the run used: a named dataset, or the user's CSV or image folder with its path
    /// and how it was read (absent in summaries written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataRecord>,
}

/// Which data a run used (`data` in summary.json and checkpoint.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// `named` (a dataset of the laboratory), `csv`, `image-folder`, or `given` (data read by the
    /// calling command, as `flatmin compare` does).
    pub kind: String,
    /// The dataset's name, or the path as given to `--data`.
    pub name: String,
    /// The file or folder read, as an absolute path (none for the embedded dataset).
    pub path: Option<PathBuf>,
    /// How it was read, e.g. "CSV my.csv: 3 classes, 96 training and 24 test rows (…)".
    pub description: String,
    /// Training examples (after --train-limit).
    pub train: usize,
    /// Test examples (after --test-limit).
    pub test: usize,
    /// Classes.
    pub classes: usize,
}

impl DataRecord {
    /// The record of data the caller read itself ([`super::run_on`]).
    pub(crate) fn given(config: &TrainConfig, split: &Split) -> Self {
        Self {
            kind: "given".into(),
            name: config.dataset.clone(),
            path: config.data_dir.clone(),
            description: format!("{} (read by the calling command)", config.dataset),
            train: split.train.len(),
            test: split.test.len(),
            classes: split.train.classes,
        }
    }
}

fn cpu_name() -> String {
    DeviceChoice::Cpu.name().to_string()
}

/// The fraction of a run's steps that ran the second pass, from its epochs' (each weighted by
/// its steps not skipped); `None` when an epoch has no record of it (a run resumed from a
/// checkpoint written before it was recorded).
pub(super) fn run_second_pass_fraction(history: &[EpochMetrics], per_epoch: usize) -> Option<f64> {
    let (mut passes, mut steps) = (0.0, 0.0);
    for m in history {
        let done = per_epoch.saturating_sub(m.skipped_steps) as f64;
        passes += m.second_pass_fraction? * done;
        steps += done;
    }
    Some(if steps > 0.0 { passes / steps } else { 0.0 })
}

/// A table of finished runs, one row each.
pub fn table(summaries: &[Summary]) -> String {
    let mut s = String::from(
        "| optimizer | model | dataset | epochs | test acc | test loss | train loss | ms/step | seconds | second passes |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in summaries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} % | {:.4} | {:.4} | {:.1} | {:.1} | {} |\n",
            r.optimizer,
            r.model,
            r.dataset,
            r.epochs,
            100.0 * r.test_accuracy,
            r.test_loss,
            r.train_loss,
            r.mean_step_ms,
            r.seconds,
            r.second_pass_fraction
                .map_or_else(|| "–".to_string(), |f| format!("{:.1} % of steps", 100.0 * f))
        ));
    }
    s
}

/// The precision of a summary written before `--precision` existed.
fn f32_precision() -> String {
    "f32".into()
}
