//! `flatmin`: the laboratory command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use flatmin_lab::args::{TrainArgs, TrainCommand};
use flatmin_lab::device::{self, DeviceChoice};
use flatmin_lab::outdir::{self, Intent, OutDir};
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
    Train(Box<TrainCommand>),
    /// Time a step and measure its peak memory: the base optimizer and each variant, in one
    /// process, on synthetic batches.
    Bench(BenchArgs),
    /// Replay a conformance case (reference trajectory) and write every step's parameters.
    Replay {
        /// The case file (format: crates/flatmin-cli/tests/fixtures/FORMAT.md).
        case: PathBuf,
        /// Where to write the result JSON.
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists (without it, an existing file is refused).
        #[arg(long)]
        overwrite: bool,
        /// cpu (float64, default), tch (float64), or wgpu or cuda (float32); all but cpu need a build with that feature.
        #[arg(long, default_value = "cpu", value_parser = device::parse_flag)]
        device: DeviceChoice,
    },
    /// The WSAM paper's 2-D toy: which minimum (sharp or flat) each optimizer reaches.
    Toy(flatmin_lab::toy::ToyArgs),
    /// The top Hessian eigenvalue of the training loss at a trained model (a run folder).
    Sharpness(flatmin_lab::sharpness::SharpnessArgs),
    /// A grid of trainings (optimizers × label-noise rates × seeds), resumable, with a table and plots.
    #[command(mut_arg("device", |a| a.hide(true)))]
    Sweep(Box<flatmin_lab::sweep::SweepArgs>),
    /// Does SAM help on my data? Every optimizer on the same splits and seeds of an image folder or
    /// CSV, with paired confidence intervals that hold on new data, costs and a verdict.
    // compare refuses the training flags that resume or add runs; they are not listed in its help.
    // Its own --data PATH takes the place of the training flags' --data NAME|PATH: that flag is
    // only --dataset here (hidden, and refused with a message pointing at --data).
    #[command(
        mut_arg("dataset", |a| a.long("dataset").visible_alias(None).hide(true)),
        mut_arg("resume", |a| a.hide(true)),
        mut_arg("compare_base", |a| a.hide(true)),
        mut_arg("device", |a| a.hide(true))
    )]
    Compare(Box<flatmin_lab::compare::CompareArgs>),
}

/// Counts heap bytes (for `flatmin bench`'s memory figures); otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: flatmin_lab::malloc::CountingAlloc = flatmin_lab::malloc::CountingAlloc;

fn main() -> ExitCode {
    flatmin::keep_freed_memory();
    let no_train_flags = std::env::args().count() == 2;
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => run_bench(&args).map_err(|e| format!("flatmin bench: {e}")),
        Command::Replay {
            case,
            out,
            overwrite,
            device,
        } => run_replay(&case, &out, overwrite, device).map_err(|e| format!("flatmin replay: {e}")),
        Command::Train(args) => {
            run_train(&args.into_train_args(), no_train_flags).map_err(|e| format!("flatmin train: {e}"))
        }
        Command::Toy(args) => flatmin_lab::toy::command(&args).map_err(|e| format!("flatmin toy: {e}")),
        Command::Sweep(args) => flatmin_lab::sweep::command(&args).map_err(|e| format!("flatmin sweep: {e}")),
        Command::Compare(args) => flatmin_lab::compare::command(&args).map_err(|e| format!("flatmin compare: {e}")),
        Command::Sharpness(args) => {
            flatmin_lab::sharpness::command(&args).map_err(|e| format!("flatmin sharpness: {e}"))
        }
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
        // A folder written by another command is refused before its checkpoint is read.
        let mut folder = OutDir::new(dir, "train", Intent::Continue);
        folder.check()?;
        let config = args.resume_config(&train::checkpoint_config(dir)?)?;
        let options = RunOptions {
            out: Some(dir),
            resume: true,
            progress,
            label: config.optimizer.clone(),
            device: args.device(),
        };
        let description = outdir::train_description(&config);
        let settings = serde_json::to_value(&config).unwrap_or_default();
        let summary = train::run_prepared(&config, &options, &mut |_| {
            Ok(folder.claim(&description, settings.clone())?)
        });
        if summary.is_err() {
            folder.abandon();
        }
        println!("{}", train::table(&[summary?]));
        return Ok(());
    }
    // A folder that holds results is refused before anything is computed (crate::outdir).
    let mut top = args.out.as_ref().map(|o| {
        OutDir::new(o, "train", Intent::new_or_overwrite(args.overwrite))
            .with_continue_hint(format!("--resume {}", o.display()))
    });
    if let Some(top) = &top {
        top.check()?;
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
    // With --compare-base, one folder per optimizer inside --out, each a run of its own.
    let (description, settings) = match runs.as_slice() {
        [one] => (
            outdir::train_description(one),
            serde_json::to_value(one).unwrap_or_default(),
        ),
        _ => (
            runs.iter()
                .map(outdir::train_description)
                .collect::<Vec<_>>()
                .join("; "),
            serde_json::json!({ "runs": runs }),
        ),
    };
    for config in &runs {
        let sub_path = args
            .out
            .as_ref()
            .filter(|_| runs.len() > 1)
            .map(|o| o.join(&config.optimizer));
        let mut sub = sub_path.as_ref().map(|p| OutDir::new(p, "train", Intent::New));
        let options = RunOptions {
            out: sub_path.as_deref().or(args.out.as_deref()),
            resume: false,
            progress,
            label: config.optimizer.clone(),
            device: args.device(),
        };
        let mut prepare = |_: &Path| -> Result<(), TrainError> {
            if let Some(top) = top.as_mut().filter(|t| !t.is_claimed()) {
                top.claim(&description, settings.clone())?;
            }
            if let Some(sub) = sub.as_mut() {
                sub.claim(
                    &outdir::train_description(config),
                    serde_json::to_value(config).unwrap_or_default(),
                )?;
            }
            Ok(())
        };
        let summary = train::run_prepared(config, &options, &mut prepare);
        if summary.is_err() {
            sub.iter_mut().chain(top.iter_mut()).for_each(OutDir::abandon);
        }
        summaries.push(summary?);
    }
    println!("{}", train::table(&summaries));
    if let [base, method] = summaries.as_slice() {
        let gain = 100.0 * (method.test_accuracy - base.test_accuracy);
        let cost = method.mean_step_ms / base.mean_step_ms.max(1e-9);
        let passes = match method.second_pass_fraction {
            Some(f) if f < 1.0 => format!(", with the second pass on {:.1} % of its steps", 100.0 * f),
            _ => String::new(),
        };
        println!(
            "{} vs {}: {:+.2} points of test accuracy at {:.2}x the time per step{passes} (one seed, no error bars).",
            method.optimizer, base.optimizer, gain, cost
        );
    }
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Flags of `flatmin bench`.
#[derive(Args)]
struct BenchArgs {
    /// Models, comma-separated: mlp, cnn, resnet (a ResNet block stack).
    #[arg(long, value_delimiter = ',', default_value = "mlp,cnn,resnet")]
    models: Vec<String>,
    /// Optimizers, comma-separated (presets; default: every preset); the base (sgd) is always
    /// measured. The cheaper members (looksam, sam-every-5, rst, ae-sam, msam) report the
    /// fraction of their steps that ran the second pass beside their cost.
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = flatmin_lab::bench::BENCH_OPTIMIZERS.map(String::from)
    )]
    optimizers: Vec<String>,
    /// Timed steps per optimizer (the median is reported).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed warm-up steps per optimizer.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Write the results here as JSON (`{"runs": [...]}`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace --out if it exists (without it, an existing file is refused before the bench runs).
    #[arg(long)]
    overwrite: bool,
    /// cpu (default), wgpu, cuda or tch (builds with that feature).
    #[arg(long, default_value = "cpu", value_parser = device::parse_flag)]
    device: DeviceChoice,
    /// The float type the models are stored and compute in: f32 (default), bf16 or f16 (f32
    /// master weights and optimizer state, as `train --precision`). Compare two runs' peak memory.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
    precision: String,
}

fn run_bench(args: &BenchArgs) -> Result<(), String> {
    use flatmin_lab::bench;
    if let Some(out) = &args.out {
        outdir::check_file(out, args.overwrite)?;
    }
    let config = bench::BenchConfig {
        models: args.models.clone(),
        optimizers: args.optimizers.clone(),
        steps: args.steps,
        warmup: args.warmup,
        batch_size: args.batch_size,
        device: args.device,
        precision: args.precision.clone(),
        ..bench::BenchConfig::default()
    };
    let result = bench::run(&config, |line| eprintln!("{line}")).map_err(|e| e.to_string())?;
    if let Some(out) = &args.out {
        flatmin_lab::fsutil::write_atomic(out, bench::to_json(&result).as_bytes())
            .map_err(|e| format!("{}: {e}", out.display()))?;
    }
    println!("{}", bench::table(&result));
    Ok(())
}

fn run_replay(case_path: &Path, out: &Path, overwrite: bool, device: DeviceChoice) -> Result<(), replay::CaseError> {
    outdir::check_file(out, overwrite).map_err(|e| replay::CaseError(e.0))?;
    let case = replay::Case::load(case_path)?;
    let result = replay::run_on(&case, device)?;
    let json = replay::result_json(&case, &result);
    replay::write_json_atomic(out, &json)?;
    match replay::bar_for(&case, &result) {
        Some((d, bar, what)) => println!(
            "{}: {} steps replayed on {device}; {what} = {d:.3e} ({} {bar:e})",
            case.optimizer,
            result.steps.len(),
            if d <= bar { "within" } else { "ABOVE the bar" }
        ),
        None => println!(
            "{}: {} steps replayed (the case records no parameters to compare)",
            case.optimizer,
            result.steps.len()
        ),
    }
    Ok(())
}
