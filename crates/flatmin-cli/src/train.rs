//! `flatmin train`: a training run on real data with any optimizer of the library, with
//! per-epoch evaluation, metrics, atomic checkpoints and exact resumption.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use flatmin::{Batch, Rng, SamConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{self, Split};
use crate::device::DeviceChoice;
use crate::fsutil::write_atomic;
use crate::hyperparams::{self, Hyperparams};
use crate::models::{Classifier, InputShape, Mlp, ResNet18, SmallCnn, WideResNet};

/// Everything that defines a training run. Flags of `flatmin train` and keys of its `--config`
/// file (JSON) are these fields; a run's checkpoint stores them, and `--resume` reuses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `fashion-mnist-subset` (embedded), `fashion-mnist`, `mnist`, `cifar10`, `cifar100`.
    pub dataset: String,
    /// Folder of the dataset files (all but the embedded one).
    pub data_dir: Option<PathBuf>,
    /// `mlp`, `cnn`, `resnet18`, `wrn-28-10`.
    pub model: String,
    /// A preset of the library (`flatmin::PRESETS`).
    pub optimizer: String,
    /// The base optimizer: `sgd` (momentum), `adam`, `adamw`.
    pub base: String,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Peak learning rate (cosine schedule to 0, per iteration).
    pub lr: f64,
    /// Weight decay of the base optimizer.
    pub weight_decay: f64,
    /// Momentum of the SGD base.
    pub momentum: f64,
    /// Seed of the model initialisation, data order, label noise and ESAM masks.
    pub seed: u64,
    /// Symmetric label noise rate on the training set (the test set stays clean).
    pub label_noise: f64,
    /// Use only the first N training images (class order kept), for quick runs.
    pub train_limit: Option<usize>,
    /// Random crops (4-pixel zero padding) and horizontal flips of the training images, the
    /// standard CIFAR augmentation of the papers.
    pub augment: bool,
    /// Label smoothing ε of the cross-entropy (0.1 in the SAM and ASAM CIFAR examples).
    pub label_smoothing: f64,
    /// Use only the first N test images.
    pub test_limit: Option<usize>,
    /// Algorithm hyperparameters over the preset's defaults (keys: [`hyperparams::HYPERPARAMETERS`]).
    pub hp: Hyperparams,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: "fashion-mnist-subset".into(),
            data_dir: None,
            model: "cnn".into(),
            optimizer: "sam".into(),
            base: "sgd".into(),
            epochs: 15,
            batch_size: 64,
            lr: 0.05,
            weight_decay: 5e-4,
            momentum: 0.9,
            seed: 0,
            label_noise: 0.0,
            train_limit: None,
            test_limit: None,
            hp: Hyperparams::default(),
            augment: false,
            label_smoothing: 0.0,
        }
    }
}

/// Why a run could not start or go on.
#[derive(Debug)]
pub struct TrainError(pub String);

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TrainError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, TrainError> {
    Err(TrainError(msg.into()))
}

/// A setting that differs between two configurations: its key and both values (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The key (`lr`, or `rho` for `hp.rho`).
    pub key: String,
    /// The run's value.
    pub run: Value,
    /// The value asked for.
    pub asked: Value,
}

impl Difference {
    /// The flag of the setting, e.g. `--lr`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    /// `--lr: run has 0.05, <source> says 0.1`.
    pub fn describe(&self, source: &str) -> String {
        let hyperparameter = hyperparams::lab_hyperparameters().iter().any(|h| h.key == self.key);
        let show = |v: &Value| match v {
            Value::Null if hyperparameter => "the preset's value".to_string(),
            Value::Null => "none".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!(
            "{}: run has {}, {source} says {}",
            self.flag(),
            show(&self.run),
            show(&self.asked)
        )
    }
}

/// The settings of a configuration (or of a layer over one) as `(key, value)`, the `hp` ones by
/// their own key, in a fixed order.
pub(crate) fn setting_entries(config: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (key, value) in config.as_object().into_iter().flatten() {
        match value {
            Value::Object(hp) if key == "hp" => out.extend(hp.iter().map(|(k, v)| (k.clone(), v.clone()))),
            _ => out.push((key.clone(), value.clone())),
        }
    }
    out
}

fn settings(config: &TrainConfig) -> Vec<(String, Value)> {
    setting_entries(&serde_json::to_value(config).unwrap_or(Value::Null))
}

impl TrainConfig {
    /// Reads a config from JSON text (the content of a `--config` file); unknown keys are errors.
    pub fn from_json(text: &str) -> Result<Self, TrainError> {
        serde_json::from_str(text).map_err(|e| TrainError(e.to_string()))
    }

    /// This configuration with the settings of `layer` over it: a JSON object with any keys of a
    /// `--config` file; `hp` is merged key by key. The one way settings are read: `--config`
    /// files, presets and flags are layers over the defaults, or over a resumed run's settings.
    pub fn overlay(&self, layer: &Value) -> Result<Self, TrainError> {
        let mut merged = serde_json::to_value(self).map_err(|e| TrainError(e.to_string()))?;
        let (Some(target), Some(layer)) = (merged.as_object_mut(), layer.as_object()) else {
            return fail("a configuration is a JSON object");
        };
        for (key, value) in layer {
            match (target.get_mut(key), value) {
                (Some(Value::Object(hp)), Value::Object(values)) if key == "hp" => {
                    hp.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
        serde_json::from_value(merged).map_err(|e| TrainError(e.to_string()))
    }

    /// Every setting whose value differs in `other`, by key (the `hp` keys by their own name).
    pub fn differences(&self, other: &TrainConfig) -> Vec<Difference> {
        let (mine, theirs) = (settings(self), settings(other));
        mine.into_iter()
            .zip(theirs)
            .filter(|((_, a), (_, b))| a != b)
            .map(|((key, run), (_, asked))| Difference { key, run, asked })
            .collect()
    }

    /// The library configuration of these settings when the run's length and data are not known
    /// (for checks and for ρ): [`TrainConfig::sam_config_for_run`] for a run of one step on one
    /// example. A run builds its own with its real figures.
    pub fn sam_config(&self) -> Result<SamConfig, TrainError> {
        self.sam_config_for_run(1, 1)
    }

    /// The library configuration of this run: the preset on the base optimizer, with the
    /// hyperparameters given over it, the run's seed in ESAM's masks and bSAM's noise, and what
    /// a method needs to know of the run ([`SamConfig::for_run`]: AE-SAM's threshold moves over
    /// `total_steps` optimizer steps, bSAM's noise and weight decay scale with `data_size`
    /// training examples).
    pub fn sam_config_for_run(&self, total_steps: u64, data_size: u64) -> Result<SamConfig, TrainError> {
        let base = match self.base.as_str() {
            "sgd" => SamConfig::sgd_base(self.momentum, self.weight_decay),
            "adam" => SamConfig::adam_base(self.weight_decay, false),
            "adamw" => SamConfig::adam_base(self.weight_decay, true),
            other => return fail(format!("--base `{other}`: expected sgd, adam or adamw")),
        };
        if self.optimizer == "bsam" && self.base != "sgd" {
            return fail(format!(
                "--base {}: bSAM is its own base optimizer (an Adam-like update of a per-weight precision); \
                 leave --base at sgd with --optimizer bsam",
                self.base
            ));
        }
        let mut c = SamConfig::preset(&self.optimizer, base).map_err(|e| TrainError(format!("--optimizer: {e}")))?;
        let context = flatmin::Context {
            lr: self.lr,
            seed: self.seed,
        };
        self.hp.apply(&mut c, context).map_err(TrainError)?;
        if let Some(swp) = c.member_mut::<flatmin::SwpConfig>() {
            swp.seed = self.seed;
        }
        if let Some(b) = c.member_mut::<flatmin::BsamConfig>() {
            b.seed = self.seed;
        }
        let c = c.for_run(total_steps, data_size);
        c.validate().map_err(|e| TrainError(e.to_string()))?;
        Ok(c)
    }

    /// The checks a run makes before it starts: every setting in range, and the library
    /// configuration valid.
    pub fn check(&self) -> Result<(), TrainError> {
        if self.epochs == 0 {
            return fail("--epochs must be at least 1");
        }
        if self.batch_size < 2 {
            return fail("--batch-size must be at least 2");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return fail(format!("--lr {}: expected a finite number > 0", self.lr));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return fail(format!(
                "--label-smoothing {}: expected a number in [0, 1)",
                self.label_smoothing
            ));
        }
        if !(0.0..=1.0).contains(&self.label_noise) {
            return fail(format!("--label-noise {}: expected a rate in [0, 1]", self.label_noise));
        }
        if !crate::models::MODELS.contains(&self.model.as_str()) {
            return fail(format!(
                "--model `{}`: expected one of {}",
                self.model,
                crate::models::MODELS.join(", ")
            ));
        }
        self.sam_config().map(|_| ())
    }
}

/// Mixed into the seed for the augmentation draws.
const AUGMENT_STREAM: u64 = 0x4155_474d_0000_0001;

/// Cross-entropy per sample with label smoothing `eps`: `(1 − ε)·(−log p_y) + ε·mean_c(−log p_c)`.
pub fn per_sample_loss(logits: Tensor<2>, targets: Tensor<1, Int>, eps: f64) -> Tensor<1> {
    if eps == 0.0 {
        return flatmin::per_sample_cross_entropy(logits, targets);
    }
    let [n, _] = logits.dims();
    let uniform = burn::tensor::activation::log_softmax(logits.clone(), 1)
        .mean_dim(1)
        .reshape([n])
        .neg();
    flatmin::per_sample_cross_entropy(logits, targets).mul_scalar(1.0 - eps) + uniform.mul_scalar(eps)
}

/// Mixed into the seed for label noise, so the noise is independent of the other seeded draws.
const LABEL_NOISE_STREAM: u64 = 0x4e4f_4953_4500_0001;

/// The names `--dataset` accepts.
pub const DATASETS: [&str; 5] = ["fashion-mnist-subset", "fashion-mnist", "mnist", "cifar10", "cifar100"];

/// Loads the run's data, with label noise applied to the training labels.
pub fn load_data(config: &TrainConfig) -> Result<Split, TrainError> {
    let dir = || {
        config.data_dir.clone().ok_or_else(|| {
            TrainError(format!(
                "--dataset {} needs --data-dir (see scripts/fetch-data)",
                config.dataset
            ))
        })
    };
    let to_err = |e: data::DataError| TrainError(e.to_string());
    let mut split = match config.dataset.as_str() {
        "fashion-mnist-subset" => data::embedded::fashion_mnist_subset().map_err(to_err)?,
        "fashion-mnist" => data::idx::load_fashion_mnist(&dir()?).map_err(to_err)?,
        "mnist" => data::idx::load_mnist(&dir()?).map_err(to_err)?,
        "cifar10" => data::cifar::load_cifar10(&dir()?).map_err(to_err)?,
        "cifar100" => data::cifar::load_cifar100(&dir()?).map_err(to_err)?,
        other => return fail(format!("--dataset `{other}`: expected one of {}", DATASETS.join(", "))),
    };
    limit_and_noise(config, &mut split)?;
    Ok(split)
}

/// Applies the run's `--train-limit`, `--test-limit` and `--label-noise` to data already read
/// (what [`load_data`] does after reading; `flatmin compare` reads the user's data itself).
pub fn limit_and_noise(config: &TrainConfig, split: &mut Split) -> Result<(), TrainError> {
    limit(&mut split.train, config.train_limit);
    limit(&mut split.test, config.test_limit);
    if config.label_noise > 0.0 {
        let classes = split.train.classes;
        data::noise::symmetric_label_noise(
            &mut split.train.labels,
            classes,
            config.label_noise,
            config.seed ^ LABEL_NOISE_STREAM,
        )
        .map_err(|e| TrainError(e.to_string()))?;
    }
    Ok(())
}

fn limit(set: &mut data::Dataset, n: Option<usize>) {
    if let Some(n) = n.filter(|&n| n < set.len()) {
        let per = set.image_len();
        set.images.truncate(n * per);
        if let Some(f) = set.features.as_mut() {
            f.0.truncate(n * per);
        }
        set.labels.truncate(n);
    }
}

/// A dataset as normalised `f32` images, ready to batch.
pub(crate) struct Tensors {
    /// A black pixel of each channel, normalised (the padding of random crops).
    black: Vec<f32>,
    pixels: Vec<f32>,
    labels: Vec<i64>,
    shape: InputShape,
}

impl Tensors {
    pub(crate) fn new(set: &data::Dataset, mean: &[f64], std: &[f64]) -> Self {
        let plane = set.height * set.width;
        let pixels = match &set.features {
            // Features are standardised in f64, then rounded once (see data::csv).
            Some(f) => {
                f.0.iter()
                    .enumerate()
                    .map(|(i, &v)| ((v - mean[i % set.channels]) / std[i % set.channels]) as f32)
                    .collect()
            }
            None => set
                .images
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let c = (i / plane) % set.channels;
                    (p as f32 / 255.0 - mean[c] as f32) / std[c] as f32
                })
                .collect(),
        };
        Self {
            black: mean.iter().zip(std).map(|(&m, &s)| -(m as f32) / s as f32).collect(),
            pixels,
            labels: set.labels.iter().map(|&l| l as i64).collect(),
            shape: InputShape {
                channels: set.channels,
                height: set.height,
                width: set.width,
                classes: set.classes,
            },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    pub(crate) fn shape(&self) -> InputShape {
        self.shape
    }

    pub(crate) fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        self.batch_with(rows, device, None)
    }

    /// A batch, randomly cropped (4-pixel zero padding) and flipped when `augment` holds a
    /// generator: the draws come from it alone, so a resumed run repeats them exactly.
    pub(crate) fn batch_with(
        &self,
        rows: &[usize],
        device: &Device,
        mut augment: Option<&mut Rng>,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let per = self.shape.channels * self.shape.height * self.shape.width;
        let mut x = Vec::with_capacity(rows.len() * per);
        for &r in rows {
            let image = &self.pixels[r * per..(r + 1) * per];
            match augment.as_deref_mut() {
                None => x.extend_from_slice(image),
                Some(rng) => self.crop_flip(image, rng, &mut x),
            }
        }
        let s = self.shape;
        let images = Tensor::from_data(TensorData::new(x, [rows.len(), s.channels, s.height, s.width]), device);
        let labels = rows.iter().map(|&r| self.labels[r]).collect::<Vec<_>>();
        let labels = Tensor::from_data(TensorData::new(labels, [rows.len()]), device);
        (images, labels)
    }
}

impl Tensors {
    /// Appends `image` shifted by up to 4 pixels each way (what falls outside is the zero
    /// padding: black, normalised) and mirrored with probability ½.
    fn crop_flip(&self, image: &[f32], rng: &mut Rng, out: &mut Vec<f32>) {
        let InputShape {
            channels,
            height,
            width,
            ..
        } = self.shape;
        let dy = (rng.next_u64() % 9) as isize - 4;
        let dx = (rng.next_u64() % 9) as isize - 4;
        let flip = rng.bernoulli(0.5);
        for c in 0..channels {
            for y in 0..height {
                for x in 0..width {
                    let sx = if flip { width - 1 - x } else { x } as isize + dx;
                    let sy = y as isize + dy;
                    let inside = sx >= 0 && sy >= 0 && (sx as usize) < width && (sy as usize) < height;
                    out.push(if inside {
                        image[c * height * width + sy as usize * width + sx as usize]
                    } else {
                        self.black[c]
                    });
                }
            }
        }
    }
}

/// Per-channel mean and standard deviation of the training images (in [0, 1] units), or of each
/// feature of a feature dataset (two passes in f64; a constant feature gets a deviation of 1).
pub(crate) fn channel_stats(set: &data::Dataset) -> (Vec<f64>, Vec<f64>) {
    if let Some(f) = &set.features {
        let (k, n) = (set.channels, set.len().max(1) as f64);
        let mut mean = vec![0f64; k];
        f.0.iter().enumerate().for_each(|(i, v)| mean[i % k] += v / n);
        let mut var = vec![0f64; k];
        f.0.iter()
            .enumerate()
            .for_each(|(i, v)| var[i % k] += (v - mean[i % k]).powi(2) / n);
        let std = var.iter().map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 }).collect();
        return (mean, std);
    }
    let plane = set.height * set.width;
    let mut sum = vec![0f64; set.channels];
    let mut sq = vec![0f64; set.channels];
    for (i, &p) in set.images.iter().enumerate() {
        let c = (i / plane) % set.channels;
        let v = p as f64 / 255.0;
        sum[c] += v;
        sq[c] += v * v;
    }
    let n = (set.len() * plane).max(1) as f64;
    // Rounded to f32 as they always were, so that image runs stay bitwise what they were.
    let mean: Vec<f64> = sum.iter().map(|s| (s / n) as f32 as f64).collect();
    let std: Vec<f64> = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| ((q / n - (s / n).powi(2)).max(1e-12).sqrt()) as f32 as f64)
        .collect();
    (mean, std)
}

/// The order of the training set in `epoch`: a seeded shuffle that depends only on the seed and
/// the epoch, so a resumed run sees exactly the batches the uninterrupted run saw.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = Rng::seeded(seed.wrapping_mul(0x9E37_79B9).wrapping_add(epoch as u64 + 1));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Cosine decay from `lr` to 0 over `total` steps, evaluated at step `t`.
pub fn cosine_lr(lr: f64, t: usize, total: usize) -> f64 {
    lr * 0.5 * (1.0 + (std::f64::consts::PI * t as f64 / total.max(1) as f64).cos())
}

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
}

fn cpu_name() -> String {
    DeviceChoice::Cpu.name().to_string()
}

/// A setting changed when a run was resumed (only those in [`RESUMABLE`] may change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChange {
    /// Epochs done when it changed.
    pub after_epoch: usize,
    /// The setting's key (`epochs`).
    pub setting: String,
    /// Its value before.
    pub from: Value,
    /// Its value after.
    pub to: Value,
}

/// The settings a resumed run may change: `epochs`, to extend it. The cosine schedule then runs
/// over the new total from the step reached (a finished run's learning rate rises again).
pub const RESUMABLE: [&str; 1] = ["epochs"];

/// A checkpoint: which files hold the model and the optimizer after `epoch`.
///
/// Format 2 added `format`, `sam` and `changes`. A checkpoint written before (format 1, none of
/// them) is the same run: its `config` means what it meant then, and it resumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    #[serde(default = "first_format")]
    format: u64,
    config: TrainConfig,
    /// The library configuration the run was made with ([`crate::config_record`]); a resume that
    /// would build another one (a flatmin whose presets changed) is refused.
    #[serde(default)]
    sam: Option<Value>,
    /// Settings changed on resume, oldest first.
    #[serde(default)]
    changes: Vec<SettingChange>,
    epoch: usize,
    steps: usize,
    seconds: f64,
    step_ms_total: f64,
    model_file: String,
    optimizer_file: String,
    history: Vec<EpochMetrics>,
}

const CHECKPOINT: &str = "checkpoint.json";

/// The format of the checkpoints this version writes; it reads this one and every older one.
/// Format 3 records the library configuration with its list of members (`sam.members`).
const CHECKPOINT_FORMAT: u64 = 3;

fn first_format() -> u64 {
    1
}

/// How a run shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A live bar on a terminal, one line per epoch otherwise.
    Auto,
    /// Nothing.
    Quiet,
}

/// Options of one run beyond its config.
pub struct RunOptions<'a> {
    /// Where metrics, summary and checkpoints go.
    pub out: Option<&'a Path>,
    /// Continue the checkpoint in `out`.
    pub resume: bool,
    /// Progress display.
    pub progress: Progress,
    /// A label for the progress line.
    pub label: String,
    /// Where the run computes.
    pub device: DeviceChoice,
}

/// Trains as `config` says. With `options.out`, writes `metrics.jsonl`, `summary.json` and a
/// checkpoint after every epoch; with `options.resume`, continues from that checkpoint.
pub fn run(config: &TrainConfig, options: &RunOptions) -> Result<Summary, TrainError> {
    run_split(config, options, None, &mut prepare_out)
}

/// [`run`], with `prepare` called on `options.out` in place of creating it, once every check
/// that can fail has passed (settings, data, sizes), just before the first write: `flatmin
/// train` claims its folder there (crate::outdir), so that a run refused by a late check leaves
/// no folder behind.
pub fn run_prepared(
    config: &TrainConfig,
    options: &RunOptions,
    prepare: &mut dyn FnMut(&Path) -> Result<(), TrainError>,
) -> Result<Summary, TrainError> {
    run_split(config, options, None, prepare)
}

/// The checks of a run that need its data, without training: reads the data as [`run`] would
/// and checks its sizes against the settings. `flatmin sweep` calls it before creating its
/// folder.
pub fn check_data(config: &TrainConfig) -> Result<(), TrainError> {
    config.check()?;
    let split = load_data(config)?;
    check_sizes(config, split.train.len(), split.test.len()).map(|_| ())
}

/// The sizes of a run checked against its data: returns the steps per epoch and in all.
fn check_sizes(config: &TrainConfig, train: usize, test: usize) -> Result<(usize, usize), TrainError> {
    if config.train_limit == Some(0) {
        return fail("--train-limit 0: expected at least 1 training image");
    }
    if config.test_limit == Some(0) {
        return fail("--test-limit 0: expected at least 1 test image");
    }
    if test == 0 {
        return fail("the test set is empty");
    }
    if train < config.batch_size {
        return fail(format!(
            "--batch-size {} is larger than the training set ({train} images)",
            config.batch_size
        ));
    }
    let per_epoch = train / config.batch_size;
    let total = per_epoch
        .checked_mul(config.epochs)
        .ok_or_else(|| TrainError(format!("--epochs {}: too many steps to count", config.epochs)))?;
    Ok((per_epoch, total))
}

/// [`run`] on data already read (`config.dataset` only names it): `flatmin compare` trains on
/// the user's folder or CSV this way. Limits and label noise are the caller's (see
/// [`limit_and_noise`]).
pub fn run_on(config: &TrainConfig, options: &RunOptions, split: Split) -> Result<Summary, TrainError> {
    run_split(config, options, Some(split), &mut prepare_out)
}

fn run_split(
    config: &TrainConfig,
    options: &RunOptions,
    split: Option<Split>,
    prepare: &mut dyn FnMut(&Path) -> Result<(), TrainError>,
) -> Result<Summary, TrainError> {
    config.check()?;
    let split = match split {
        Some(split) => split,
        None => load_data(config)?,
    };
    match config.model.as_str() {
        "mlp" => run_with(config, options, split, prepare, Mlp::new),
        "cnn" => run_with(config, options, split, prepare, SmallCnn::new),
        "resnet18" => run_with(config, options, split, prepare, ResNet18::new),
        _ => run_with(config, options, split, prepare, |s, d| WideResNet::new(s, 28, 10, d)),
    }
}

/// Creates `out` and proves it writable (what a run's folder needs when no command claims
/// it: the runs of a sweep, inside the sweep's folder).
fn prepare_out(out: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(out)
        .map_err(|e| TrainError(format!("--out {}: cannot create the folder: {e}", out.display())))?;
    // A run killed in the middle of a write leaves its temporary file; a new run clears them.
    crate::fsutil::remove_temporaries(out);
    let probe = out.join(".write-probe");
    write_atomic(&probe, b"ok").map_err(|e| TrainError(format!("--out {}: not writable: {e}", out.display())))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// Proves `out` has room for the checkpoints before any training starts: writes (and removes) a
/// file as large as two checkpoints (the previous one stays until the next is complete), or one
/// when resuming next to an existing checkpoint. A full disk is then an error here, not after
/// the first epoch.
fn check_space<M: Module>(out: &Path, model: &M, sam: &SamConfig, resume: bool) -> Result<(), TrainError> {
    let model = model_bytes(model)?.len() as u64;
    // bSAM keeps its momentum and precision in place of the base optimizer's buffers.
    let base_buffers = if sam.member::<flatmin::BsamConfig>().is_some() {
        2
    } else {
        sam.base.buffers_per_parameter()
    };
    let buffers = base_buffers + sam.record_schema().maps.len() as u64;
    let checkpoint = model * (1 + buffers) + (1 << 20);
    let needed = if resume { checkpoint } else { 2 * checkpoint };
    crate::fsutil::probe_space(out, needed).map_err(|e| {
        TrainError(format!(
            "--out {}: no room for the checkpoints (about {:.1} MB needed): {e}",
            out.display(),
            needed as f64 / 1e6
        ))
    })
}

fn model_bytes<M: Module>(model: &M) -> Result<Vec<u8>, TrainError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError(format!("saving the model: {e}")))?;
    Ok(bytes.to_vec())
}

fn run_with<M: Classifier>(
    config: &TrainConfig,
    options: &RunOptions,
    split: Split,
    prepare: &mut dyn FnMut(&Path) -> Result<(), TrainError>,
    build: impl Fn(InputShape, &Device) -> M,
) -> Result<Summary, TrainError> {
    let (per_epoch, total) = check_sizes(config, split.train.len(), split.test.len())?;
    let (mean, std) = channel_stats(&split.train);
    let train = Tensors::new(&split.train, &mean, &std);
    let test = Tensors::new(&split.test, &mean, &std);
    let device = options.device.autodiff().map_err(|e| TrainError(e.0))?;
    device.seed(config.seed);
    let mut model = build(train.shape, &device);
    let sam = config.sam_config_for_run(total as u64, train.len() as u64)?;
    let mut optim = sam.init().map_err(|e| TrainError(e.to_string()))?;
    // Hidden fault injection for the robustness tests (crate::fault); empty in a normal run.
    let faults = crate::fault::Faults::from_env().map_err(TrainError)?;
    let second_call = if sam.needs_sample_losses() { 3 } else { 2 };
    // Every check that can fail has passed: only now is the output folder made.
    if let Some(out) = options.out {
        prepare(out)?;
    }

    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut changes: Vec<SettingChange> = Vec::new();
    let (mut start_epoch, mut steps, mut seconds, mut step_ms_total) = (0, 0, 0.0, 0.0);
    if options.resume {
        let out = options
            .out
            .ok_or_else(|| TrainError("--resume needs the run's folder".into()))?;
        let ckpt = read_checkpoint(out)?;
        changes = resume_changes(&ckpt, config, &sam, &out.join(CHECKPOINT))?;
        if changes.len() > ckpt.changes.len() && options.progress == Progress::Auto {
            for c in &changes[ckpt.changes.len()..] {
                eprintln!(
                    "{}: {} changed from {} to {} after epoch {} (recorded in {CHECKPOINT} and summary.json)",
                    options.label, c.setting, c.from, c.to, c.after_epoch
                );
            }
        }
        model = load_model_file(model, &out.join(&ckpt.model_file))?;
        let optim_path = out.join(&ckpt.optimizer_file);
        optim = flatmin::SamRecord::load(&optim_path, &device)
            .and_then(|record| optim.load_record(record, &model))
            .map_err(|e| TrainError(format!("{}: {e}", optim_path.display())))?;
        start_epoch = ckpt.epoch;
        steps = ckpt.steps;
        seconds = ckpt.seconds;
        step_ms_total = ckpt.step_ms_total;
        history = ckpt.history;
        // A run killed after its last checkpoint may have left metrics.jsonl a line short, and
        // an interrupted write its temporary or superseded files.
        write_metrics(out, &history)?;
        crate::fsutil::remove_stale(out, &[&ckpt.model_file, &ckpt.optimizer_file]);
    }
    if let Some(out) = options.out {
        check_space(out, &model, &sam, options.resume)?;
    }

    let live = options.progress == Progress::Auto && std::io::stderr().is_terminal();
    // Whether the method skips second passes on some steps (the progress lines then say how often).
    let scheduled = sam.is_scheduled();
    let mut test_correct = Vec::new();
    for epoch in start_epoch..config.epochs {
        let started = Instant::now();
        let order = epoch_order(train.len(), config.seed, epoch);
        let (mut loss_sum, mut correct, mut seen, mut sharp_sum, mut sharp_n, mut skipped) =
            (0.0, 0usize, 0usize, 0.0, 0usize, 0);
        let mut epoch_step_ms = 0.0;
        let mut second_passes = 0usize;
        let mut lr = config.lr;
        for b in 0..per_epoch {
            let rows = &order[b * config.batch_size..(b + 1) * config.batch_size];
            let mut augment = config.augment.then(|| {
                Rng::seeded(config.seed ^ AUGMENT_STREAM ^ (steps as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            });
            let (x, y) = train.batch_with(rows, &device, augment.as_mut());
            lr = cosine_lr(config.lr, steps, total);
            let mut first_logits: Option<Tensor<2>> = None;
            let (fault, mut calls) = (faults.at(steps + 1), 0);
            let t0 = Instant::now();
            let (next, report) = optim.step(lr, model, |m: &M, batch: Batch| {
                let logits = m.forward(batch.rows(x.clone()));
                if first_logits.is_none() {
                    first_logits = Some(logits.clone().detach());
                }
                let losses = per_sample_loss(logits, batch.rows_int(y.clone()), config.label_smoothing);
                calls += 1;
                match fault {
                    Some(f) => f.apply(losses, calls, second_call),
                    None => losses,
                }
            });
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            model = next;
            steps += 1;
            epoch_step_ms += ms;
            match report {
                Ok(r) => {
                    second_passes += usize::from(r.second_pass);
                    loss_sum += r.loss.unwrap_or(f64::NAN);
                    if let Some(s) = r.sharpness() {
                        sharp_sum += s;
                        sharp_n += 1;
                    }
                    if let Some(logits) = first_logits {
                        correct += count_correct(logits, y.clone());
                    }
                    seen += rows.len();
                }
                Err(e) => {
                    skipped += 1;
                    if live {
                        eprintln!();
                    }
                    eprintln!("{}: epoch {} step {}: {e}", options.label, epoch + 1, b + 1);
                }
            }
            if live {
                let done = b + 1;
                let bar = "#".repeat(done * 20 / per_epoch) + &".".repeat(20 - done * 20 / per_epoch);
                let ok = (done - skipped).max(1) as f64;
                let sharp = if sharp_n > 0 {
                    format!(" sharpness {:.4}", sharp_sum / sharp_n as f64)
                } else {
                    String::new()
                };
                eprint!(
                    "\r{} epoch {}/{} [{bar}] {done}/{per_epoch} loss {:.4} acc {:.1}%{sharp}   ",
                    options.label,
                    epoch + 1,
                    config.epochs,
                    loss_sum / ok,
                    100.0 * correct as f64 / seen.max(1) as f64
                );
                std::io::stderr().flush().ok();
            }
        }
        let (test_loss, test_accuracy, correct_now) = evaluate(&model, &test, &device);
        test_correct = correct_now;
        let ok = (per_epoch - skipped).max(1) as f64;
        let elapsed = started.elapsed().as_secs_f64();
        seconds += elapsed;
        step_ms_total += epoch_step_ms;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / ok,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            sharpness: (sharp_n > 0).then(|| sharp_sum / sharp_n as f64),
            test_loss,
            test_accuracy,
            lr,
            skipped_steps: skipped,
            mean_step_ms: epoch_step_ms / per_epoch.max(1) as f64,
            seconds: elapsed,
            second_pass_fraction: Some(second_passes as f64 / (per_epoch - skipped).max(1) as f64),
        };
        if options.progress == Progress::Auto {
            if live {
                eprint!("\r");
            }
            eprintln!(
                "{} epoch {}/{}: train loss {:.4} acc {:.1}% | test loss {:.4} acc {:.2}%{}{} | {:.1} s",
                options.label,
                epoch + 1,
                config.epochs,
                metrics.train_loss,
                100.0 * metrics.train_accuracy,
                metrics.test_loss,
                100.0 * metrics.test_accuracy,
                metrics
                    .sharpness
                    .map(|s| format!(" | sharpness {s:.4}"))
                    .unwrap_or_default(),
                metrics
                    .second_pass_fraction
                    .filter(|_| scheduled)
                    .map(|f| format!(" | second pass on {:.0} % of steps", 100.0 * f))
                    .unwrap_or_default(),
                elapsed
            );
        }
        history.push(metrics);
        if let Some(out) = options.out {
            let ckpt = Checkpoint {
                format: CHECKPOINT_FORMAT,
                config: config.clone(),
                sam: Some(crate::config_record::config_json(&sam)),
                changes: changes.clone(),
                epoch: epoch + 1,
                steps,
                seconds,
                step_ms_total,
                model_file: format!("model-e{}.bpk", epoch + 1),
                optimizer_file: format!("optimizer-e{}.bpk", epoch + 1),
                history: history.clone(),
            };
            write_checkpoint(out, &ckpt, &model, &optim)?;
            write_metrics(out, &history)?;
            crate::fault::pause_point("checkpoint:metrics");
        }
    }
    let last = history
        .last()
        .cloned()
        .ok_or_else(|| TrainError("no epoch was run".into()))?;
    let summary = Summary {
        optimizer: config.optimizer.clone(),
        hyperparams: crate::config_record::config_json(&sam),
        dataset: config.dataset.clone(),
        model: config.model.clone(),
        epochs: config.epochs,
        seed: config.seed,
        label_noise: config.label_noise,
        test_accuracy: last.test_accuracy,
        test_loss: last.test_loss,
        train_loss: last.train_loss,
        steps,
        seconds,
        mean_step_ms: step_ms_total / steps.max(1) as f64,
        device: options.device.name().to_string(),
        second_pass_fraction: run_second_pass_fraction(&history, per_epoch),
        config: config.clone(),
        changes,
        history,
        test_correct,
    };
    if let Some(out) = options.out {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| TrainError(e.to_string()))?;
        write_atomic(&out.join("summary.json"), text.as_bytes())
            .map_err(|e| TrainError(format!("{}: {e}", out.join("summary.json").display())))?;
    }
    Ok(summary)
}

/// The fraction of a run's steps that ran the second pass, from its epochs' (each weighted by
/// its steps not skipped); `None` when an epoch has no record of it (a run resumed from a
/// checkpoint written before it was recorded).
fn run_second_pass_fraction(history: &[EpochMetrics], per_epoch: usize) -> Option<f64> {
    let (mut passes, mut steps) = (0.0, 0.0);
    for m in history {
        let done = per_epoch.saturating_sub(m.skipped_steps) as f64;
        passes += m.second_pass_fraction? * done;
        steps += done;
    }
    Some(if steps > 0.0 { passes / steps } else { 0.0 })
}

fn count_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    let [n, _] = logits.dims();
    let predicted = logits.argmax(1).reshape([n]);
    predicted.equal(labels).int().sum().into_scalar::<i64>() as usize
}

/// Whether each row's prediction is its label.
fn row_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> Vec<bool> {
    let [n, _] = logits.dims();
    let predicted = logits.argmax(1).reshape([n]);
    let hits = predicted.equal(labels).int().into_data();
    hits.iter::<i64>().map(|h| h != 0).collect()
}

/// Test loss, accuracy and per-example correctness, in inference mode (BatchNorm uses running
/// statistics).
fn evaluate<M: Classifier>(model: &M, test: &Tensors, device: &Device) -> (f64, f64, Vec<bool>) {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let mut loss = 0.0;
    let mut correct = Vec::with_capacity(test.len());
    let rows: Vec<usize> = (0..test.len()).collect();
    for chunk in rows.chunks(500) {
        let (x, y) = test.batch(chunk, &device);
        let logits = model.forward(x);
        let losses = flatmin::per_sample_cross_entropy(logits.clone(), y.clone());
        loss += losses.sum().into_scalar::<f64>();
        correct.extend(row_correct(logits, y));
    }
    let n = test.len().max(1) as f64;
    let hits = correct.iter().filter(|&&c| c).count();
    (loss / n, hits as f64 / n, correct)
}

fn write_checkpoint<M: Module>(
    out: &Path,
    ckpt: &Checkpoint,
    model: &M,
    optim: &flatmin::Sam,
) -> Result<(), TrainError> {
    let io = |p: &Path, e: std::io::Error| TrainError(format!("{}: {e}", p.display()));
    let model_path = out.join(&ckpt.model_file);
    write_atomic(&model_path, &model_bytes(model)?).map_err(|e| io(&model_path, e))?;
    crate::fault::pause_point("checkpoint:model");
    let optim_path = out.join(&ckpt.optimizer_file);
    optim
        .record()
        .save(&optim_path)
        .map_err(|e| TrainError(e.to_string()))?;
    crate::fault::pause_point("checkpoint:optimizer");
    // Both files are synced (by their writers); their names in the folder must be durable too
    // before checkpoint.json points at them, or a power loss could leave it naming files that
    // are not there.
    crate::fsutil::sync_dir(out).map_err(|e| io(out, e))?;
    let text = serde_json::to_string_pretty(ckpt).map_err(|e| TrainError(e.to_string()))?;
    let ckpt_path = out.join(CHECKPOINT);
    write_atomic(&ckpt_path, text.as_bytes()).map_err(|e| io(&ckpt_path, e))?;
    crate::fault::pause_point("checkpoint:json");
    // Only now, with the new checkpoint in place, are the older files no longer needed.
    if ckpt.epoch > 1 {
        std::fs::remove_file(out.join(format!("model-e{}.bpk", ckpt.epoch - 1))).ok();
        std::fs::remove_file(out.join(format!("optimizer-e{}.bpk", ckpt.epoch - 1))).ok();
    }
    Ok(())
}

/// Loads weights saved by a checkpoint into `model` (built with the same architecture).
pub(crate) fn load_model_file<M: Module>(model: M, path: &Path) -> Result<M, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError(format!("{}: {e}", path.display())))?;
    load_model_bytes(model, bytes).map_err(|e| TrainError(format!("{}: {e}", path.display())))
}

/// Loads weights from the bytes of a checkpoint's model file into `model`.
#[doc(hidden)]
pub fn load_model_bytes<M: Module>(model: M, bytes: Vec<u8>) -> Result<M, String> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| e.to_string())?;
    model.try_load_record(record).map_err(|e| e.to_string())
}

/// The model file of the checkpoint in `out`.
pub(crate) fn checkpoint_model_path(out: &Path) -> Result<PathBuf, TrainError> {
    Ok(out.join(read_checkpoint(out)?.model_file))
}

fn read_checkpoint(out: &Path) -> Result<Checkpoint, TrainError> {
    let path = out.join(CHECKPOINT);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError(format!("{}: no checkpoint to resume: {e}", path.display())))?;
    parse_checkpoint(&text).map_err(|e| TrainError(format!("{}: {e}", path.display())))
}

/// A checkpoint.json's text, read and checked for what resuming relies on: a format this flatmin
/// reads, the files it names
/// are plain names in its own folder (never a path elsewhere), its history has one line per
/// epoch, its epoch is within the run, its times are ≥ 0.
fn parse_checkpoint(text: &str) -> Result<Checkpoint, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let ckpt: Checkpoint = match value.get("format").map_or(Some(1), Value::as_u64) {
        Some(1..=CHECKPOINT_FORMAT) => serde_json::from_str(text).map_err(|e| e.to_string())?,
        Some(n) => {
            return Err(format!(
                "checkpoint format {n}; this flatmin reads formats 1 to {CHECKPOINT_FORMAT} (was it written by a newer one?)"
            ));
        }
        None => return Err("`format` must be a whole number".into()),
    };
    for (key, name) in [
        ("model_file", &ckpt.model_file),
        ("optimizer_file", &ckpt.optimizer_file),
    ] {
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        if !plain {
            return Err(format!("`{key}` {name:?}: expected a file name in the run's folder"));
        }
    }
    if ckpt.history.len() != ckpt.epoch || ckpt.epoch > ckpt.config.epochs {
        return Err(format!(
            "`epoch` {} with {} lines of history in a run of {} epochs: expected one line per epoch done",
            ckpt.epoch,
            ckpt.history.len(),
            ckpt.config.epochs
        ));
    }
    if !(ckpt.seconds >= 0.0 && ckpt.step_ms_total >= 0.0) {
        return Err(format!(
            "`seconds` {} and `step_ms_total` {}: expected times ≥ 0",
            ckpt.seconds, ckpt.step_ms_total
        ));
    }
    Ok(ckpt)
}

/// Reads a checkpoint.json's text as [`read_checkpoint`] does (for the fuzz target): the
/// configuration and the two file names.
#[doc(hidden)]
pub fn checkpoint_files_from_text(text: &str) -> Result<(TrainConfig, String, String), String> {
    parse_checkpoint(text).map(|c| (c.config, c.model_file, c.optimizer_file))
}

/// Checks that `config` (with its library configuration `sam`) continues the run of `ckpt`:
/// settings other than [`RESUMABLE`] ones must be the run's, `epochs` can only grow, and the
/// library configuration must be the one the run was made with. Returns the run's changes, this
/// resume's appended.
fn resume_changes(
    ckpt: &Checkpoint,
    config: &TrainConfig,
    sam: &SamConfig,
    path: &Path,
) -> Result<Vec<SettingChange>, TrainError> {
    let differences = ckpt.config.differences(config);
    let refused: Vec<String> = differences
        .iter()
        .filter(|d| !RESUMABLE.contains(&d.key.as_str()))
        .map(|d| format!("  {}", d.describe("this resume")))
        .collect();
    if !refused.is_empty() {
        return fail(format!(
            "{}: a resumed run keeps its settings (only --epochs may change, to extend it):\n{}",
            path.display(),
            refused.join("\n")
        ));
    }
    if config.epochs < ckpt.epoch {
        return fail(format!(
            "--epochs {}: the run has already done {} epochs; resuming can only extend it",
            config.epochs, ckpt.epoch
        ));
    }
    let now = crate::config_record::config_json(sam);
    if let Some(made_with) = &ckpt.sam
        && !crate::config_record::same_method(made_with, &now)
    {
        return fail(format!(
            "{}: the run was made with the library configuration {}, but its settings now give {} \
             (a flatmin whose presets changed?): resume it with the flatmin that made it",
            path.display(),
            made_with,
            now
        ));
    }
    let mut changes = ckpt.changes.clone();
    changes.extend(differences.into_iter().map(|d| SettingChange {
        after_epoch: ckpt.epoch,
        setting: d.key,
        from: d.run,
        to: d.asked,
    }));
    Ok(changes)
}

/// Reads the configuration a checkpoint in `out` was made with (for `--resume`).
pub fn checkpoint_config(out: &Path) -> Result<TrainConfig, TrainError> {
    read_checkpoint(out).map(|c| c.config)
}

fn write_metrics(out: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let mut text = String::new();
    for m in history {
        text.push_str(&serde_json::to_string(m).map_err(|e| TrainError(e.to_string()))?);
        text.push('\n');
    }
    let path = out.join("metrics.jsonl");
    write_atomic(&path, text.as_bytes()).map_err(|e| TrainError(format!("{}: {e}", path.display())))
}

/// The weights of a run's last checkpoint, by parameter path (raw little-endian bytes), for
/// comparing runs: parameter ids, which differ between processes, are left out.
pub fn checkpoint_weights(out: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>, TrainError> {
    let ckpt = read_checkpoint(out)?;
    let path = out.join(ckpt.model_file);
    let err = |e: burn_pack::Error| TrainError(format!("{}: {e}", path.display()));
    let reader = burn_pack::Reader::from_file(&path).map_err(err)?;
    let mut weights = std::collections::BTreeMap::new();
    for tensor in reader.into_tensors().map_err(err)? {
        let (name, _, _, _, bytes) = tensor.into_parts().map_err(err)?;
        weights.insert(name, bytes.to_vec());
    }
    Ok(weights)
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
