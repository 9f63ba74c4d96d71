//! The flags of `flatmin train`, shared by `flatmin sweep` (which runs many trainings).

use std::path::PathBuf;

use clap::Args;

use crate::train::{TrainConfig, TrainError};

/// Flags of `flatmin train`; each overrides the `--config` file, which overrides the defaults.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// Start from a paper-scale preset (e.g. sam-wrn28-10-cifar10; a GPU is needed in practice).
    #[arg(long)]
    pub preset: Option<String>,
    /// A JSON file with any of the run's settings (the keys of summary.json's `config`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// fashion-mnist-subset (embedded, default), fashion-mnist, mnist, cifar10, cifar100.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder of the dataset files (scripts/fetch-data downloads MNIST and Fashion-MNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// mlp, cnn (default), resnet18, wrn-28-10.
    #[arg(long)]
    pub model: Option<String>,
    /// sgd, sam (default), asam, esam, fsam, wsam, gsam, fisher-sam.
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
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Momentum of the SGD base.
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Seed (model initialisation, data order, label noise, ESAM masks).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Symmetric label noise rate on the training set, e.g. 0.4 (the test set stays clean).
    #[arg(long)]
    pub label_noise: Option<f64>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// ρ, the perturbation radius.
    #[arg(long)]
    pub rho: Option<f64>,
    /// Tie ρ to the learning rate (GSAM): ρ goes from this value at lr 0 to --rho at the peak.
    #[arg(long)]
    pub rho_min: Option<f64>,
    /// The eps added to the norm.
    #[arg(long)]
    pub eps: Option<f64>,
    /// The adaptive `w²` form of the perturbation.
    #[arg(long)]
    pub adaptive: bool,
    /// Official ASAM with this η.
    #[arg(long)]
    pub asam_eta: Option<f64>,
    /// Fisher-SAM with this η.
    #[arg(long)]
    pub fisher_eta: Option<f64>,
    /// F-SAM's σ.
    #[arg(long)]
    pub fsam_sigma: Option<f64>,
    /// F-SAM's λ.
    #[arg(long)]
    pub fsam_lambda: Option<f64>,
    /// ESAM's β (fraction of weights perturbed).
    #[arg(long)]
    pub esam_beta: Option<f64>,
    /// ESAM's mask per weight (paper) instead of per tensor (official code).
    #[arg(long)]
    pub esam_per_element: bool,
    /// ESAM's γ (fraction of samples in the second pass).
    #[arg(long)]
    pub esam_gamma: Option<f64>,
    /// WSAM's γ.
    #[arg(long)]
    pub wsam_gamma: Option<f64>,
    /// WSAM coupled (sharpness through the base optimizer's momentum) instead of decoupled.
    #[arg(long)]
    pub wsam_coupled: bool,
    /// WSAM's max-norm clipping of both gradients.
    #[arg(long)]
    pub wsam_max_norm: Option<f64>,
    /// GSAM's α.
    #[arg(long)]
    pub gsam_alpha: Option<f64>,
    /// Random crops and horizontal flips of the training images (the papers' CIFAR augmentation).
    #[arg(long)]
    pub augment: bool,
    /// Label smoothing of the cross-entropy.
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Write metrics.jsonl, summary.json and checkpoints here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in this folder (its settings are reused).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Replace the results already in --out: they are removed first, so that nothing mixes
    /// (without it, a folder that holds results is refused).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Also train the base optimizer alone (same seed and data) and print both in a table.
    #[arg(long)]
    pub compare_base: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The run's configuration: defaults, then the `--config` file, then the flags.
    pub fn config(&self) -> Result<TrainConfig, TrainError> {
        let mut c = match (&self.config, &self.preset) {
            (Some(_), Some(_)) => return Err(TrainError("give --config or --preset, not both".into())),
            (Some(path), None) => TrainConfig::from_file(path)?,
            (None, Some(name)) => crate::presets::preset(name).map_err(TrainError)?,
            (None, None) => TrainConfig::default(),
        };
        if self.augment {
            c.augment = true;
        }
        if self.label_smoothing.is_some() {
            c.label_smoothing = self.label_smoothing.unwrap_or(0.0);
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { c.$field = v.clone(); } )* };
        }
        set!(
            dataset,
            model,
            optimizer,
            base,
            epochs,
            batch_size,
            lr,
            weight_decay,
            momentum,
            seed,
            label_noise
        );
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if self.test_limit.is_some() {
            c.test_limit = self.test_limit;
        }
        macro_rules! hp {
            ($($field:ident),*) => { $( if self.$field.is_some() { c.hp.$field = self.$field; } )* };
        }
        hp!(
            rho,
            rho_min,
            eps,
            asam_eta,
            fisher_eta,
            fsam_sigma,
            fsam_lambda,
            esam_beta,
            esam_gamma,
            wsam_gamma,
            wsam_max_norm,
            gsam_alpha
        );
        if self.adaptive {
            c.hp.adaptive = Some(true);
        }
        if self.esam_per_element {
            c.hp.esam_per_element = Some(true);
        }
        if self.wsam_coupled {
            c.hp.wsam_coupled = Some(true);
        }
        Ok(c)
    }
}
