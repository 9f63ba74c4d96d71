//! The settings of a run ([`TrainConfig`]): defaults, layers over them, checks, differences
//! between two runs, and the library configuration they make.

use std::path::PathBuf;

use flatmin::SamConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::*;
use crate::hyperparams::{self, Hyperparams};

/// Everything that defines a training run. Flags of `flatmin train` and keys of its `--config`
/// file (JSON) are these fields; a run's checkpoint stores them, and `--resume` reuses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `fashion-mnist-subset` (embedded), `fashion-mnist`, `mnist`, `cifar10`, `cifar100`, or the
    /// path of the user's CSV file or image folder (`--data`; see [`super::resolve_data`]).
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
    /// The float type the model is stored and computes in: `f32` (default), or `bf16` / `f16`
    /// with f32 master weights and optimizer state (and, for f16, dynamic loss scaling):
    /// [`flatmin::Precision::Mixed`].
    pub precision: String,
    /// Algorithm hyperparameters over the preset's defaults (keys: [`hyperparams::lab_hyperparameters`]).
    pub hp: Hyperparams,
    /// User data only: the CSV's label column, a header name or a 0-based index (the last
    /// column when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// User data only: image channels, 1 (grey) or 3 (RGB) (3 when any image has colour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// User data only: images resized to `N` (N×N) or `WxH` (their own size when all agree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<String>,
    /// User data only: the fraction of each class held out for testing when the data has no
    /// train/ and test/ parts (0.2 when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// User data only: the seed of that split (0 when absent; not `--seed`, so that runs with
    /// several seeds test on the same examples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
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
            precision: "f32".into(),
            hp: Hyperparams::default(),
            augment: false,
            label_smoothing: 0.0,
            label_column: None,
            channels: None,
            image_size: None,
            test_fraction: None,
            split_seed: None,
        }
    }
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
        serde_json::from_str(text).map_err(|e| TrainError::Invalid(e.to_string()))
    }

    /// This configuration with the settings of `layer` over it: a JSON object with any keys of a
    /// `--config` file; `hp` is merged key by key. The one way settings are read: `--config`
    /// files, presets and flags are layers over the defaults, or over a resumed run's settings.
    pub fn overlay(&self, layer: &Value) -> Result<Self, TrainError> {
        let mut merged = serde_json::to_value(self).map_err(|e| TrainError::Invalid(e.to_string()))?;
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
        serde_json::from_value(merged).map_err(|e| TrainError::Invalid(e.to_string()))
    }

    /// Every setting whose value differs in `other`, by key (the `hp` keys by their own name); a
    /// setting one of them leaves out (the reading options of user data) counts as `null`.
    pub fn differences(&self, other: &TrainConfig) -> Vec<Difference> {
        let mine: std::collections::BTreeMap<String, Value> = settings(self).into_iter().collect();
        let mut theirs: std::collections::BTreeMap<String, Value> = settings(other).into_iter().collect();
        let mut out = Vec::new();
        for (key, run) in mine {
            let asked = theirs.remove(&key).unwrap_or(Value::Null);
            if run != asked {
                out.push(Difference { key, run, asked });
            }
        }
        out.extend(
            theirs
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(key, asked)| Difference {
                    key,
                    run: Value::Null,
                    asked,
                }),
        );
        out
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
        let mut c =
            SamConfig::preset(&self.optimizer, base).map_err(|e| TrainError::Invalid(format!("--optimizer: {e}")))?;
        let context = flatmin::Context {
            lr: self.lr,
            seed: self.seed,
        };
        self.hp.apply(&mut c, context).map_err(TrainError::Invalid)?;
        if let Some(swp) = c.member_mut::<flatmin::SwpConfig>() {
            swp.seed = self.seed;
        }
        if let Some(b) = c.member_mut::<flatmin::BsamConfig>() {
            b.seed = self.seed;
        }
        if self.model_dtype()? != burn::tensor::DType::F32 {
            c.precision = flatmin::Precision::mixed();
        }
        let c = c.for_run(total_steps, data_size);
        c.validate().map_err(|e| TrainError::Invalid(e.to_string()))?;
        Ok(c)
    }

    /// The float type of `--precision`: f32, bf16 or f16.
    pub fn model_dtype(&self) -> Result<burn::tensor::DType, TrainError> {
        match self.precision.as_str() {
            "f32" => Ok(burn::tensor::DType::F32),
            "bf16" => Ok(burn::tensor::DType::BF16),
            "f16" => Ok(burn::tensor::DType::F16),
            other => fail(format!("--precision `{other}`: expected f32, bf16 or f16")),
        }
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

/// The settings a resumed run may change: `epochs`, to extend it. The cosine schedule then runs
/// over the new total from the step reached (a finished run's learning rate rises again).
pub const RESUMABLE: [&str; 1] = ["epochs"];
