//! The flags of `flatmin train`, shared by `flatmin sweep` (which runs many trainings).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::device::DeviceChoice;
use crate::hyperparams::{Hyperparams, finite};
use crate::train::{DataSource, RESUMABLE, TrainConfig, TrainError, resolve_data, setting_entries};

/// Flags of `flatmin train`; each overrides the `--config` file, which overrides the defaults.
/// The fields that are settings carry the names of the `--config` keys (and serialize as them).
#[derive(Args, Debug, Default, Clone, Serialize)]
pub struct TrainArgs {
    /// Start from a paper-scale preset (e.g. sam-wrn28-10-cifar10; a GPU is needed in practice).
    #[arg(long)]
    #[serde(skip)]
    pub preset: Option<String>,
    /// A JSON file with any of the run's settings (the keys of summary.json's `config`).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The data: a named dataset, fashion-mnist-subset (embedded, default), fashion-mnist, mnist,
    /// cifar10, cifar100; or the path of your CSV file (numeric features and a label column) or
    /// image folder (one subfolder per class), read as `flatmin compare` reads it. A name of the
    /// list is that dataset (write ./NAME for a folder of the same name).
    #[arg(long = "data", visible_alias = "dataset", value_name = "NAME|PATH")]
    pub dataset: Option<String>,
    /// Folder of the named dataset's files (scripts/fetch-data downloads MNIST and Fashion-MNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// mlp, cnn (default), resnet18, wrn-28-10.
    #[arg(long)]
    pub model: Option<String>,
    /// sgd, sam (default), asam, esam, fsam, wsam, gsam, fisher-sam, usam, unified-sam; the
    /// cheaper ones looksam, sam-every-5, rst, ae-sam, msam (one pass along the base's momentum);
    /// bsam (Bayesian SAM, its own base optimizer: --base stays sgd).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// The base optimizer: sgd (default, with --momentum), adam, adamw.
    #[arg(long)]
    pub base: Option<String>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate; a cosine schedule takes it to 0 over the run, per iteration.
    #[arg(long, value_parser = finite)]
    pub lr: Option<f64>,
    /// Weight decay.
    #[arg(long, value_parser = finite)]
    pub weight_decay: Option<f64>,
    /// Momentum of the SGD base.
    #[arg(long, value_parser = finite)]
    pub momentum: Option<f64>,
    /// Seed (model initialisation, data order, label noise, ESAM masks).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Symmetric label noise rate on the training set, e.g. 0.4 (the test set stays clean).
    #[arg(long, value_parser = finite)]
    pub label_noise: Option<f64>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// The method's hyperparameters over the preset's (`--rho`, `--esam-beta`, …): one flag
    /// per key of the config's `hp` (crate::hyperparams).
    #[command(flatten)]
    pub hp: Hyperparams,
    /// Random crops and horizontal flips of the training images (the papers' CIFAR augmentation).
    #[arg(long)]
    pub augment: bool,
    /// Label smoothing of the cross-entropy.
    #[arg(long, value_parser = finite)]
    pub label_smoothing: Option<f64>,
    /// The float type the model is stored and computes in: f32 (default), bf16 or f16. bf16
    /// and f16 train with f32 master weights and optimizer state (f16 with dynamic loss
    /// scaling); the checkpoint holds them.
    #[arg(long, value_parser = ["f32", "bf16", "f16"])]
    pub precision: Option<String>,
    /// Write metrics.jsonl, summary.json and checkpoints here.
    #[arg(long)]
    #[serde(skip)]
    pub out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in this folder, with its settings. Only --epochs may
    /// be given (higher, to extend the run: the cosine schedule then spans the new total, and the
    /// change is recorded in checkpoint.json and summary.json); any other setting that differs
    /// from the run's is refused.
    #[arg(long, conflicts_with = "out")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Replace the results already in --out: they are set aside and removed only once the new
    /// results are complete, so that nothing mixes and nothing is lost (without it, a folder
    /// that holds results is refused).
    #[arg(long, conflicts_with = "resume")]
    #[serde(skip)]
    pub overwrite: bool,
    /// Also train the base optimizer alone (same seed and data) and print both in a table.
    #[arg(long)]
    #[serde(skip)]
    pub compare_base: bool,
    /// No progress output.
    #[arg(long)]
    #[serde(skip)]
    pub quiet: bool,
    /// cpu (Burn's flex backend, default), wgpu, cuda or tch (builds with that feature). Where the run
    /// computes, not a setting of the run: a resumed run may continue on another device.
    #[arg(long, value_parser = crate::device::parse_flag)]
    #[serde(skip)]
    pub device: Option<DeviceChoice>,
    /// How `flatmin train` reads the user's data: flags of the `train` command only
    /// ([`TrainCommand`]), since `flatmin compare` has flags of its own for the same.
    #[arg(skip)]
    #[serde(flatten)]
    pub input: ReadingArgs,
}

/// The flags of `flatmin train` that say how to read the user's data (`--data PATH`): the same
/// flags, meanings and defaults as `flatmin compare`'s. Each is a setting of the run (a key of
/// `--config` and of summary.json's `config`), recorded only when given.
#[derive(Args, Debug, Default, Clone, Serialize)]
pub struct ReadingArgs {
    /// The CSV's label column: a header name or an index from 0 (default: the last column).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Image channels: 1 (grey) or 3 (RGB); default 3 when any image has colour.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Resize images to N×N or WIDTHxHEIGHT (default: their own size when all agree, else 28×28
    /// grey or 32×32 colour).
    #[arg(long)]
    pub image_size: Option<String>,
    /// The fraction of each class held out for testing when the data has no train/ and test/
    /// folders (default 0.2).
    #[arg(long, value_parser = finite)]
    pub test_fraction: Option<f64>,
    /// The seed of that split (default 0, whatever --seed is: runs of several seeds test on the
    /// same examples).
    #[arg(long)]
    pub split_seed: Option<u64>,
}

/// Flags of the `flatmin train` command: the training flags and how to read user data.
#[derive(Args, Debug, Default)]
pub struct TrainCommand {
    /// The training flags (shared with sweep and compare).
    #[command(flatten)]
    pub train: TrainArgs,
    /// How to read `--data PATH`.
    #[command(flatten)]
    pub input: ReadingArgs,
}

impl TrainCommand {
    /// The training flags with the reading flags in them.
    pub fn into_train_args(self) -> TrainArgs {
        TrainArgs {
            input: self.input,
            ..self.train
        }
    }
}

/// Settings from one source, over the defaults or over a resumed run's settings.
struct Layer {
    /// Where they come from, for messages: `command line`, `--config FILE`, `--preset NAME`.
    source: String,
    /// A JSON object with keys of a `--config` file.
    settings: Value,
}

impl TrainArgs {
    /// The device of `--device` (the CPU when not given).
    pub fn device(&self) -> DeviceChoice {
        self.device.unwrap_or_default()
    }

    /// Refuses `--device` other than cpu for a command that runs on the CPU only (`command`:
    /// `sweep`, `compare`).
    pub fn cpu_only(&self, command: &str) -> Result<(), TrainError> {
        match self.device() {
            DeviceChoice::Cpu => Ok(()),
            other => Err(TrainError::Invalid(format!(
                "--device {other}: flatmin {command} runs on the cpu only (--device applies to train, replay and bench)"
            ))),
        }
    }

    /// The settings this command gives, in order: the preset or the `--config` file, then the
    /// flags. Each file is checked on its own first, so that an error names it.
    fn layers(&self) -> Result<Vec<Layer>, TrainError> {
        let file = |source: String, text: &str| -> Result<Layer, TrainError> {
            TrainConfig::from_json(text).map_err(|e| TrainError::Invalid(format!("{source}: {e}")))?;
            let settings = serde_json::from_str(text).map_err(|e| TrainError::Invalid(format!("{source}: {e}")))?;
            Ok(Layer { source, settings })
        };
        let mut layers = Vec::new();
        match (&self.config, &self.preset) {
            (Some(_), Some(_)) => return Err(TrainError::Invalid("give --config or --preset, not both".into())),
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
                layers.push(file(path.display().to_string(), &text)?);
            }
            (None, Some(name)) => layers.push(file(format!("--preset {name}"), crate::presets::preset_text(name)?)?),
            (None, None) => {}
        }
        layers.push(Layer {
            source: "command line".into(),
            settings: self.given_flags()?,
        });
        Ok(layers)
    }

    /// The settings given as flags, with the keys of a `--config` file: a flag's name is its key
    /// (`-` for `_`), so the fields serialize as they are, less the flags not given.
    fn given_flags(&self) -> Result<Value, TrainError> {
        fn given(value: &mut Value) {
            if let Value::Object(map) = value {
                map.retain(|_, v| !(v.is_null() || *v == Value::Bool(false)));
                map.values_mut().for_each(given);
            }
        }
        let mut flags = serde_json::to_value(self).map_err(|e| TrainError::Invalid(e.to_string()))?;
        given(&mut flags);
        Ok(flags)
    }

    /// The run's configuration: defaults, then the `--config` file or the preset, then the flags.
    /// With a CSV file as `--data` and no model chosen (no `--model`, `--config` or `--preset`),
    /// the model is the MLP: a CSV's features are not images.
    pub fn config(&self) -> Result<TrainConfig, TrainError> {
        let mut config = TrainConfig::default();
        for layer in self.layers()? {
            config = config
                .overlay(&layer.settings)
                .map_err(|e| TrainError::Invalid(format!("{}: {e}", layer.source)))?;
        }
        let chosen = self.model.is_some() || self.config.is_some() || self.preset.is_some();
        if !chosen
            && self.dataset.is_some()
            && let Ok(DataSource::User(path)) = resolve_data(&config.dataset)
            && path.is_file()
        {
            config.model = "mlp".into();
        }
        Ok(config)
    }

    /// The configuration of `--resume`: the run's own (`run`, from its checkpoint), with what this
    /// command gives over it. Only settings in [`crate::train::RESUMABLE`] may differ (`--epochs`,
    /// to extend the run); any other difference is an error listing each one with both values.
    pub fn resume_config(&self, run: &TrainConfig) -> Result<TrainConfig, TrainError> {
        if self.compare_base {
            return Err(TrainError::Invalid(
                "--compare-base starts two new runs; it does not apply to --resume".into(),
            ));
        }
        let mut asked = run.clone();
        let mut source: BTreeMap<String, String> = BTreeMap::new();
        for layer in self.layers()? {
            asked = asked
                .overlay(&layer.settings)
                .map_err(|e| TrainError::Invalid(format!("{}: {e}", layer.source)))?;
            for (key, _) in setting_entries(&layer.settings) {
                source.insert(key, layer.source.clone());
            }
        }
        let refused: Vec<String> = run
            .differences(&asked)
            .iter()
            .filter(|d| !RESUMABLE.contains(&d.key.as_str()))
            .map(|d| {
                format!(
                    "  {}",
                    d.describe(source.get(&d.key).map_or("this command", String::as_str))
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(TrainError::Invalid(format!(
                "--resume: a resumed run keeps its settings; only --epochs may change (to extend it). \
                 Refused, as this would mix two runs in one folder:\n{}",
                refused.join("\n")
            )));
        }
        Ok(asked)
    }
}
