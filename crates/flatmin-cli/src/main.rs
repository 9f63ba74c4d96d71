//! `flatmin`: the laboratory command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use flatmin_lab::replay;
use flatmin_lab::train::{self, Progress, RunOptions, TrainConfig, TrainError};

/// The sharpness-aware minimization family for Burn: train, replay, measure.
#[derive(Parser)]
#[command(name = "flatmin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on real data. With no arguments: SAM against its base optimizer on the
    /// embedded Fashion-MNIST subset, with a table of the results.
    Train(Box<TrainArgs>),
    /// Replay a conformance case (reference trajectory) and write every step's parameters.
    Replay {
        /// The case file (format: crates/flatmin-cli/tests/fixtures/FORMAT.md).
        case: PathBuf,
        /// Where to write the result JSON.
        #[arg(long)]
        out: PathBuf,
    },
    /// The WSAM paper's 2-D toy: which minimum (sharp or flat) each optimizer reaches.
    Toy(flatmin_lab::toy::ToyArgs),
}

/// Flags of `flatmin train`; each overrides the `--config` file, which overrides the defaults.
#[derive(Args, Default)]
struct TrainArgs {
    /// A JSON file with any of the run's settings (the keys of summary.json's `config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// fashion-mnist-subset (embedded, default), fashion-mnist, mnist, cifar10, cifar100.
    #[arg(long)]
    dataset: Option<String>,
    /// Folder of the dataset files (scripts/fetch-data downloads MNIST and Fashion-MNIST).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// mlp, cnn (default), resnet18, wrn-28-10.
    #[arg(long)]
    model: Option<String>,
    /// sgd, sam (default), asam, esam, fsam, wsam, gsam, fisher-sam.
    #[arg(long)]
    optimizer: Option<String>,
    /// The base optimizer: sgd (default, with --momentum), adam, adamw.
    #[arg(long)]
    base: Option<String>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate; a cosine schedule takes it to 0 over the run, per iteration.
    #[arg(long)]
    lr: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Momentum of the SGD base.
    #[arg(long)]
    momentum: Option<f64>,
    /// Seed (model initialisation, data order, label noise, ESAM masks).
    #[arg(long)]
    seed: Option<u64>,
    /// Symmetric label noise rate on the training set, e.g. 0.4 (the test set stays clean).
    #[arg(long)]
    label_noise: Option<f64>,
    /// Train on the first N training images only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// ρ, the perturbation radius.
    #[arg(long)]
    rho: Option<f64>,
    /// Tie ρ to the learning rate (GSAM): ρ goes from this value at lr 0 to --rho at the peak.
    #[arg(long)]
    rho_min: Option<f64>,
    /// The eps added to the norm.
    #[arg(long)]
    eps: Option<f64>,
    /// The adaptive `w²` form of the perturbation.
    #[arg(long)]
    adaptive: bool,
    /// Official ASAM with this η.
    #[arg(long)]
    asam_eta: Option<f64>,
    /// Fisher-SAM with this η.
    #[arg(long)]
    fisher_eta: Option<f64>,
    /// F-SAM's σ.
    #[arg(long)]
    fsam_sigma: Option<f64>,
    /// F-SAM's λ.
    #[arg(long)]
    fsam_lambda: Option<f64>,
    /// ESAM's β (fraction of weights perturbed).
    #[arg(long)]
    esam_beta: Option<f64>,
    /// ESAM's mask per weight (paper) instead of per tensor (official code).
    #[arg(long)]
    esam_per_element: bool,
    /// ESAM's γ (fraction of samples in the second pass).
    #[arg(long)]
    esam_gamma: Option<f64>,
    /// WSAM's γ.
    #[arg(long)]
    wsam_gamma: Option<f64>,
    /// WSAM coupled (sharpness through the base optimizer's momentum) instead of decoupled.
    #[arg(long)]
    wsam_coupled: bool,
    /// WSAM's max-norm clipping of both gradients.
    #[arg(long)]
    wsam_max_norm: Option<f64>,
    /// GSAM's α.
    #[arg(long)]
    gsam_alpha: Option<f64>,
    /// Write metrics.jsonl, summary.json and checkpoints here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in this folder (its settings are reused).
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Also train the base optimizer alone (same seed and data) and print both in a table.
    #[arg(long)]
    compare_base: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig, TrainError> {
        let mut c = match &self.config {
            Some(path) => TrainConfig::from_file(path)?,
            None => TrainConfig::default(),
        };
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

fn main() -> ExitCode {
    let no_train_flags = std::env::args().count() == 2;
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay { case, out } => run_replay(&case, &out).map_err(|e| format!("flatmin replay: {e}")),
        Command::Train(args) => run_train(&args, no_train_flags).map_err(|e| format!("flatmin train: {e}")),
        Command::Toy(args) => flatmin_lab::toy::command(&args).map_err(|e| format!("flatmin toy: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run_train(args: &TrainArgs, default_job: bool) -> Result<(), TrainError> {
    let progress = if args.quiet { Progress::Quiet } else { Progress::Auto };
    if let Some(dir) = &args.resume {
        let config = train::checkpoint_config(dir)?;
        let options = RunOptions {
            out: Some(dir),
            resume: true,
            progress,
            label: config.optimizer.clone(),
        };
        let summary = train::run(&config, &options)?;
        println!("{}", train::table(&[summary]));
        return Ok(());
    }
    let config = args.config()?;
    let started = Instant::now();
    let compare = default_job || args.compare_base;
    let mut runs = Vec::new();
    if compare && config.optimizer != "sgd" {
        // The base optimizer alone: the same data, model, seed and base settings, none of the
        // method's hyperparameters.
        let base = TrainConfig {
            optimizer: "sgd".into(),
            hp: Default::default(),
            ..config.clone()
        };
        runs.push(base);
    }
    runs.push(config);
    if default_job {
        eprintln!(
            "flatmin: SAM against its base optimizer on the embedded Fashion-MNIST subset ({} epochs, {} model); \
             `flatmin train --help` lists every setting",
            runs[0].epochs, runs[0].model
        );
    }
    let mut summaries = Vec::new();
    for config in &runs {
        let out_dir = args.out.as_ref().map(|o| {
            if runs.len() > 1 {
                o.join(&config.optimizer)
            } else {
                o.clone()
            }
        });
        let options = RunOptions {
            out: out_dir.as_deref(),
            resume: false,
            progress,
            label: config.optimizer.clone(),
        };
        summaries.push(train::run(config, &options)?);
    }
    println!("{}", train::table(&summaries));
    if let [base, method] = summaries.as_slice() {
        let gain = 100.0 * (method.test_accuracy - base.test_accuracy);
        let cost = method.mean_step_ms / base.mean_step_ms.max(1e-9);
        println!(
            "{} vs {}: {:+.2} points of test accuracy at {:.2}x the time per step (one seed, no error bars).",
            method.optimizer, base.optimizer, gain, cost
        );
    }
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn run_replay(case_path: &Path, out: &Path) -> Result<(), replay::CaseError> {
    let case = replay::Case::load(case_path)?;
    let result = replay::run(&case)?;
    let json = replay::result_json(&case, &result);
    replay::write_json_atomic(out, &json)?;
    match replay::max_abs_diff(&case, &result) {
        Some(d) => println!(
            "{}: {} steps replayed; max |param - reference| = {d:.3e} ({})",
            case.optimizer,
            result.steps.len(),
            if d <= 1e-9 { "within 1e-9" } else { "ABOVE the 1e-9 bar" }
        ),
        None => println!(
            "{}: {} steps replayed (the case records no parameters to compare)",
            case.optimizer,
            result.steps.len()
        ),
    }
    Ok(())
}
