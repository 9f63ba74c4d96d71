//! `flatmin sharpness RUN`: the top Hessian eigenvalue λ_max of the training loss at a trained
//! model (the run folder's last checkpoint), by power iteration with finite-difference
//! Hessian-vector products (`flatmin::hessian`). The model is in inference mode (BatchNorm uses
//! its running statistics, as PyHessian does) and the loss is taken on a fixed set of training
//! images, with the labels the run trained on (label noise included).

use std::path::{Path, PathBuf};

use burn::optim::GradientsParams;
use burn::tensor::Device;
use flatmin::hessian::{EigenEstimate, IterationProgress, PowerIterationConfig, top_hessian_eigenvalue_with_progress};
use serde_json::json;

use crate::fsutil::write_atomic;
use crate::models::{Classifier, InputShape, Mlp, ResNet18, SmallCnn, WideResNet};
use crate::train::{self, Tensors, TrainError};

/// Flags of `flatmin sharpness`.
#[derive(clap::Args, Debug)]
pub struct SharpnessArgs {
    /// A run folder written by `flatmin train --out` (its last checkpoint is measured).
    pub checkpoint: PathBuf,
    /// How many training images the loss is taken on (the first N).
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Most power iterations (each costs two gradient evaluations).
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Relative-change stopping tolerance.
    #[arg(long, default_value_t = 1e-3)]
    pub tol: f64,
    /// Seed of the start vector.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The finite-difference step relative to `max(1, ‖w‖)` (default: 1e-3 in float32).
    #[arg(long)]
    pub relative_step: Option<f64>,
    /// Also write the result as JSON here (an existing file is refused unless --overwrite).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    pub overwrite: bool,
}

/// λ_max of the training loss at the checkpoint in `run`.
pub fn measure(run: &Path, samples: usize, power: &PowerIterationConfig) -> Result<EigenEstimate, TrainError> {
    measure_with_progress(run, samples, power, |_| {})
}

/// [`measure`], calling `progress` after every power iteration.
pub fn measure_with_progress(
    run: &Path,
    samples: usize,
    power: &PowerIterationConfig,
    progress: impl FnMut(&IterationProgress),
) -> Result<EigenEstimate, TrainError> {
    let config = train::checkpoint_config(run)?;
    match config.model.as_str() {
        "mlp" => measure_with(run, samples, power, Mlp::new, progress),
        "cnn" => measure_with(run, samples, power, SmallCnn::new, progress),
        "resnet18" => measure_with(run, samples, power, ResNet18::new, progress),
        "wrn-28-10" => measure_with(run, samples, power, |s, d| WideResNet::new(s, 28, 10, d), progress),
        other => Err(TrainError::Invalid(format!(
            "{}: unknown model `{other}`",
            run.display()
        ))),
    }
}

fn measure_with<M: Classifier>(
    run: &Path,
    samples: usize,
    power: &PowerIterationConfig,
    build: impl Fn(InputShape, &Device) -> M,
    progress: impl FnMut(&IterationProgress),
) -> Result<EigenEstimate, TrainError> {
    if samples == 0 {
        return Err(TrainError::Invalid("--samples must be at least 1".into()));
    }
    let config = train::checkpoint_config(run)?;
    let split = train::load_data(&config)?;
    let (mean, std) = train::channel_stats(&split.train);
    let data = Tensors::new(&split.train, &mean, &std);
    let device = crate::device::DeviceChoice::Cpu.autodiff().map_err(TrainError::from)?;
    let model = build(data.shape(), &device);
    let model = train::load_model_file(model, &train::checkpoint_model_path(run)?)?;
    let model = flatmin::inference_mode_tracked(&model);
    let rows: Vec<usize> = (0..samples.min(data.len())).collect();
    let (x, y) = data.batch(&rows, &device);
    let gradient = |m: &M| {
        let loss = flatmin::per_sample_cross_entropy(m.forward(x.clone()), y.clone()).mean();
        GradientsParams::from_grads(loss.backward(), m)
    };
    top_hessian_eigenvalue_with_progress(&model, gradient, power, progress)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", run.display())))
}

/// `flatmin sharpness`.
pub fn command(args: &SharpnessArgs) -> Result<(), TrainError> {
    // An earlier result is never replaced without the user's word, and the check comes before
    // the measurement, not after minutes of it.
    if let Some(out) = &args.out {
        crate::outdir::check_file(out, args.overwrite).map_err(TrainError::from)?;
    }
    let power = PowerIterationConfig::new()
        .with_max_iterations(args.iterations)
        .with_tolerance(args.tol)
        .with_seed(args.seed)
        .with_relative_step(args.relative_step);
    let est = measure_with_progress(&args.checkpoint, args.samples, &power, |p| {
        eprintln!("{}", progress_line(p, args.tol))
    })?;
    println!(
        "λ_max = {:.6} ({} iterations, {}, scatter of the last estimates ±{:.2e}, finite-difference step {:.2e}{})",
        est.eigenvalue,
        est.iterations,
        match (est.converged, est.plateau) {
            (true, false) => "converged",
            (true, true) => "converged: mean of a plateau",
            (false, _) => "NOT converged: raise --iterations",
        },
        est.spread,
        est.step,
        if est.shifted {
            ", shifted past a dominant negative eigenvalue"
        } else {
            ""
        }
    );
    if let Some(out) = &args.out {
        let value = json!({
            "checkpoint": args.checkpoint,
            "lambda_max": est.eigenvalue,
            "iterations": est.iterations,
            "converged": est.converged,
            "plateau": est.plateau,
            "spread": est.spread,
            "shifted": est.shifted,
            "step": est.step,
            "samples": args.samples,
            "history": est.history,
        });
        let text = serde_json::to_string_pretty(&value).map_err(|e| TrainError::Invalid(e.to_string()))?;
        write_atomic(out, text.as_bytes()).map_err(|e| TrainError::Invalid(format!("{}: {e}", out.display())))?;
    }
    Ok(())
}

/// One line of progress for stderr: the iteration, the estimate and how far the stopping rule is.
fn progress_line(p: &IterationProgress, tolerance: f64) -> String {
    let run = if p.shifted { " (shifted rerun)" } else { "" };
    let change = match p.relative_change {
        Some(c) => format!("relative change {c:.1e} (stops below {tolerance:.0e})"),
        None => "first estimate".to_string(),
    };
    format!(
        "power iteration {}/{}{run}: λ ≈ {:.6}, {change}",
        p.iteration, p.max_iterations, p.eigenvalue
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--out` naming an earlier result is refused before anything is measured, and the file is
    /// left as it was; `--overwrite` lets the command go on (here to the missing run's error).
    #[test]
    fn an_existing_out_file_is_refused_before_the_measurement() {
        let tmp = tempfile::Builder::new()
            .prefix("flatmin-sharpness-out-")
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let out = dir.join("lambda.json");
        std::fs::write(&out, b"{\"lambda_max\": 7.9}").unwrap();
        let args = |overwrite| SharpnessArgs {
            checkpoint: dir.join("no-such-run"),
            samples: 10,
            iterations: 5,
            tol: 1e-3,
            seed: 0,
            relative_step: None,
            out: Some(out.clone()),
            overwrite,
        };
        let refused = command(&args(false)).unwrap_err().to_string();
        assert!(
            refused.contains("already exists") && refused.contains("--overwrite"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"lambda_max\": 7.9}");
        let later = command(&args(true)).unwrap_err().to_string();
        assert!(!later.contains("already exists"), "{later}");
    }
}
