//! The training loop: options, the checks before a run, one epoch after another, evaluation.

use std::path::Path;
use std::time::Instant;

use burn::tensor::{DType, Device, Int, Tensor};
use flatmin::{Batch, Rng, SamConfig};

use super::progress::EpochBar;
use super::{checkpoint::*, config::*, data::*, error::*, report::*};
use crate::data::Split;
use crate::device::DeviceChoice;
use crate::fsutil::write_atomic;
use crate::models::{Classifier, InputShape, Mlp, ResNet18, SmallCnn, WideResNet};

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
        .ok_or_else(|| TrainError::Invalid(format!("--epochs {}: too many steps to count", config.epochs)))?;
    Ok((per_epoch, total))
}

/// The model and augmentation checked against the data's shape: a CSV's features train the MLP
/// only (they are not images), and the convolutional models need images of 4×4 pixels or more.
fn check_model_fits(config: &TrainConfig, train: &crate::data::Dataset) -> Result<(), TrainError> {
    if config.model == "mlp" {
        return Ok(());
    }
    if train.features.is_some() {
        return fail(format!(
            "--model {}: a CSV's features train an MLP (--model mlp, the default with a CSV)",
            config.model
        ));
    }
    if train.height < 4 || train.width < 4 {
        return fail(format!(
            "--model {}: the images are {}×{} pixels, expected at least 4×4 (--image-size, or --model mlp)",
            config.model, train.height, train.width
        ));
    }
    Ok(())
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
    let (split, data) = match split {
        Some(split) => {
            let record = DataRecord::given(config, &split);
            (split, record)
        }
        None => load_data_recorded(config)?,
    };
    match config.model.as_str() {
        "mlp" => run_with(config, options, split, data, prepare, Mlp::new),
        "cnn" => run_with(config, options, split, data, prepare, SmallCnn::new),
        "resnet18" => run_with(config, options, split, data, prepare, ResNet18::new),
        _ => run_with(config, options, split, data, prepare, |s, d| {
            WideResNet::new(s, 28, 10, d)
        }),
    }
}

/// What a run carries from one epoch to the next (and what a checkpoint restores).
struct RunState {
    optim: flatmin::Sam,
    history: Vec<EpochMetrics>,
    changes: Vec<SettingChange>,
    start_epoch: usize,
    steps: usize,
    seconds: f64,
    step_ms_total: f64,
}

/// What does not change during a run: its data as tensors, sizes, device, library configuration.
struct Fixed<'a> {
    config: &'a TrainConfig,
    options: &'a RunOptions<'a>,
    train: Tensors,
    test: Tensors,
    device: Device,
    sam: SamConfig,
    /// The float type of the model and its input batches (`--precision`).
    dtype: DType,
    faults: crate::fault::Faults,
    /// Which call of the loss closure is the second pass (fault injection).
    second_call: usize,
    per_epoch: usize,
    total: usize,
    data: DataRecord,
}

/// The sums of one epoch's steps.
#[derive(Default)]
struct EpochTotals {
    loss_sum: f64,
    correct: usize,
    seen: usize,
    sharp_sum: f64,
    sharp_n: usize,
    skipped: usize,
    step_ms: f64,
    second_passes: usize,
    lr: f64,
}

fn run_with<M: Classifier>(
    config: &TrainConfig,
    options: &RunOptions,
    split: Split,
    data: DataRecord,
    prepare: &mut dyn FnMut(&Path) -> Result<(), TrainError>,
    build: impl Fn(InputShape, &Device) -> M,
) -> Result<Summary, TrainError> {
    let (fixed, model, optim) = set_up(config, options, split, data, build)?;
    // Every check that can fail has passed: only now is the output folder made.
    if let Some(out) = options.out {
        prepare(out)?;
    }
    let mut model = model;
    let mut state = RunState {
        optim,
        history: Vec::new(),
        changes: Vec::new(),
        start_epoch: 0,
        steps: 0,
        seconds: 0.0,
        step_ms_total: 0.0,
    };
    if options.resume {
        model = resume_state(&fixed, &mut state, model)?;
    }
    if let Some(out) = options.out {
        check_space(out, &model, &fixed.sam, options.resume)?;
    }
    let mut test_correct = Vec::new();
    for epoch in state.start_epoch..config.epochs {
        (model, test_correct) = run_epoch(&fixed, &mut state, model, epoch)?;
    }
    finish(&fixed, state, test_correct)
}

/// Step 1: the data as tensors, the sizes checked, the model built, the optimizer made.
fn set_up<'a, M: Classifier>(
    config: &'a TrainConfig,
    options: &'a RunOptions<'a>,
    split: Split,
    data: DataRecord,
    build: impl Fn(InputShape, &Device) -> M,
) -> Result<(Fixed<'a>, M, flatmin::Sam), TrainError> {
    check_model_fits(config, &split.train)?;
    let (per_epoch, total) = check_sizes(config, split.train.len(), split.test.len())?;
    let (mean, std) = channel_stats(&split.train);
    let train = Tensors::new(&split.train, &mean, &std);
    let test = Tensors::new(&split.test, &mean, &std);
    let device = options.device.autodiff().map_err(TrainError::from)?;
    device.seed(config.seed);
    let dtype = config.model_dtype()?;
    // Built in f32 (the initializers' type), then stored in the run's precision.
    let model = flatmin::bridge::cast_floats(build(train.shape(), &device), dtype);
    let sam = config.sam_config_for_run(total as u64, train.len() as u64)?;
    let optim = sam.init().map_err(|e| TrainError::Invalid(e.to_string()))?;
    // Hidden fault injection for the robustness tests (crate::fault); empty in a normal run.
    let faults = crate::fault::Faults::from_env().map_err(TrainError::Invalid)?;
    let second_call = if sam.needs_sample_losses() { 3 } else { 2 };
    let fixed = Fixed {
        config,
        options,
        train,
        test,
        device,
        sam,
        dtype,
        faults,
        second_call,
        per_epoch,
        total,
        data,
    };
    Ok((fixed, model, optim))
}

/// Step 2 (with `--resume`): the model, optimizer, history and counters of the checkpoint.
fn resume_state<M: Classifier>(fixed: &Fixed, state: &mut RunState, model: M) -> Result<M, TrainError> {
    let options = fixed.options;
    let out = options
        .out
        .ok_or_else(|| TrainError::Invalid("--resume needs the run's folder".into()))?;
    let ckpt = read_checkpoint(out)?;
    check_same_data(&ckpt, &fixed.data, &out.join(CHECKPOINT))?;
    state.changes = resume_changes(&ckpt, fixed.config, &fixed.sam, &out.join(CHECKPOINT))?;
    if state.changes.len() > ckpt.changes.len() && options.progress == Progress::Auto {
        for c in &state.changes[ckpt.changes.len()..] {
            eprintln!(
                "{}: {} changed from {} to {} after epoch {} (recorded in {CHECKPOINT} and summary.json)",
                options.label, c.setting, c.from, c.to, c.after_epoch
            );
        }
    }
    let model = load_model_file(model, &out.join(&ckpt.model_file))?;
    let optim_path = out.join(&ckpt.optimizer_file);
    let optim = std::mem::replace(
        &mut state.optim,
        fixed.sam.init().map_err(|e| TrainError::Invalid(e.to_string()))?,
    );
    state.optim = flatmin::SamRecord::load(&optim_path, &fixed.device)
        .and_then(|record| optim.load_record(record, &model))
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", optim_path.display())))?;
    state.start_epoch = ckpt.epoch;
    state.steps = ckpt.steps;
    state.seconds = ckpt.seconds;
    state.step_ms_total = ckpt.step_ms_total;
    state.history = ckpt.history;
    // A run killed after its last checkpoint may have left metrics.jsonl a line short, and
    // an interrupted write its temporary or superseded files.
    write_metrics(out, &state.history)?;
    crate::fsutil::remove_stale(out, &[&ckpt.model_file, &ckpt.optimizer_file]);
    Ok(model)
}

/// Step 3, once per epoch: train, evaluate, report, checkpoint. Returns the model and whether it
/// now classifies each test example right.
fn run_epoch<M: Classifier>(
    fixed: &Fixed,
    state: &mut RunState,
    model: M,
    epoch: usize,
) -> Result<(M, Vec<bool>), TrainError> {
    let started = Instant::now();
    let bar = EpochBar::new(fixed.options, epoch, fixed.config.epochs, fixed.per_epoch);
    let (model, totals) = train_epoch(fixed, state, model, epoch, &bar);
    bar.finish();
    let (test_loss, test_accuracy, test_correct) = evaluate(&model, &fixed.test, &fixed.device, fixed.dtype);
    let elapsed = started.elapsed().as_secs_f64();
    state.seconds += elapsed;
    state.step_ms_total += totals.step_ms;
    let done = (fixed.per_epoch - totals.skipped).max(1) as f64;
    let metrics = EpochMetrics {
        epoch: epoch + 1,
        train_loss: totals.loss_sum / done,
        train_accuracy: totals.correct as f64 / totals.seen.max(1) as f64,
        sharpness: (totals.sharp_n > 0).then(|| totals.sharp_sum / totals.sharp_n as f64),
        test_loss,
        test_accuracy,
        lr: totals.lr,
        skipped_steps: totals.skipped,
        mean_step_ms: totals.step_ms / fixed.per_epoch.max(1) as f64,
        seconds: elapsed,
        second_pass_fraction: Some(totals.second_passes as f64 / done),
    };
    if fixed.options.progress == Progress::Auto {
        eprintln!("{}", epoch_line(fixed, &metrics));
    }
    state.history.push(metrics);
    if let Some(out) = fixed.options.out {
        save_epoch(fixed, state, &model, out, epoch)?;
    }
    Ok((model, test_correct))
}

/// The steps of one epoch, in the seeded order of [`epoch_order`].
fn train_epoch<M: Classifier>(
    fixed: &Fixed,
    state: &mut RunState,
    mut model: M,
    epoch: usize,
    bar: &EpochBar,
) -> (M, EpochTotals) {
    let config = fixed.config;
    let order = epoch_order(fixed.train.len(), config.seed, epoch);
    let mut t = EpochTotals {
        lr: config.lr,
        ..EpochTotals::default()
    };
    for b in 0..fixed.per_epoch {
        let rows = &order[b * config.batch_size..(b + 1) * config.batch_size];
        let mut augment = config.augment.then(|| {
            Rng::seeded(config.seed ^ AUGMENT_STREAM ^ (state.steps as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        });
        let (x, y) = fixed.train.batch_with(rows, &fixed.device, augment.as_mut());
        let x = x.cast(fixed.dtype);
        t.lr = cosine_lr(config.lr, state.steps, fixed.total);
        let mut first_logits: Option<Tensor<2>> = None;
        let (fault, mut calls) = (fixed.faults.at(state.steps + 1), 0);
        let t0 = Instant::now();
        let (next, report) = state.optim.step(t.lr, model, |m: &M, batch: Batch| {
            // The loss in f32 whatever the model's type (a no-op for an f32 model).
            let logits = m.forward(batch.rows(x.clone())).cast(DType::F32);
            if first_logits.is_none() {
                first_logits = Some(logits.clone().detach());
            }
            let losses = per_sample_loss(logits, batch.rows_int(y.clone()), config.label_smoothing);
            calls += 1;
            match fault {
                Some(f) => f.apply(losses, calls, fixed.second_call),
                None => losses,
            }
        });
        t.step_ms += t0.elapsed().as_secs_f64() * 1e3;
        model = next;
        state.steps += 1;
        match report {
            Ok(r) => {
                t.second_passes += usize::from(r.second_pass);
                t.loss_sum += r.loss.unwrap_or(f64::NAN);
                if let Some(s) = r.sharpness() {
                    t.sharp_sum += s;
                    t.sharp_n += 1;
                }
                if let Some(logits) = first_logits {
                    t.correct += count_correct(logits, y.clone());
                }
                t.seen += rows.len();
            }
            Err(e) => {
                t.skipped += 1;
                bar.println(&format!(
                    "{}: epoch {} step {}: {e}",
                    fixed.options.label,
                    epoch + 1,
                    b + 1
                ));
            }
        }
        let done = (b + 1 - t.skipped).max(1) as f64;
        bar.step(
            t.loss_sum / done,
            t.correct as f64 / t.seen.max(1) as f64,
            (t.sharp_n > 0).then(|| t.sharp_sum / t.sharp_n as f64),
        );
    }
    (model, t)
}

/// The line an epoch ends with on stderr.
fn epoch_line(fixed: &Fixed, m: &EpochMetrics) -> String {
    format!(
        "{} epoch {}/{}: train loss {:.4} acc {:.1}% | test loss {:.4} acc {:.2}%{}{} | {:.1} s",
        fixed.options.label,
        m.epoch,
        fixed.config.epochs,
        m.train_loss,
        100.0 * m.train_accuracy,
        m.test_loss,
        100.0 * m.test_accuracy,
        m.sharpness.map(|s| format!(" | sharpness {s:.4}")).unwrap_or_default(),
        m.second_pass_fraction
            // Only a method that skips second passes on some steps says how often it ran them.
            .filter(|_| fixed.sam.is_scheduled())
            .map(|f| format!(" | second pass on {:.0} % of steps", 100.0 * f))
            .unwrap_or_default(),
        m.seconds
    )
}

/// Step 4, after each epoch with an output folder: the checkpoint and metrics.jsonl.
fn save_epoch<M: Classifier>(
    fixed: &Fixed,
    state: &RunState,
    model: &M,
    out: &Path,
    epoch: usize,
) -> Result<(), TrainError> {
    let ckpt = Checkpoint {
        format: CHECKPOINT_FORMAT,
        config: fixed.config.clone(),
        sam: Some(crate::config_record::config_json(&fixed.sam)),
        changes: state.changes.clone(),
        epoch: epoch + 1,
        steps: state.steps,
        seconds: state.seconds,
        step_ms_total: state.step_ms_total,
        model_file: format!("model-e{}.bpk", epoch + 1),
        optimizer_file: format!("optimizer-e{}.bpk", epoch + 1),
        history: state.history.clone(),
        data: Some(fixed.data.clone()),
    };
    write_checkpoint(out, &ckpt, model, &state.optim)?;
    write_metrics(out, &state.history)?;
    crate::fault::pause_point("checkpoint:metrics");
    Ok(())
}

/// Step 5: the summary of the run, written to summary.json with an output folder.
fn finish(fixed: &Fixed, state: RunState, test_correct: Vec<bool>) -> Result<Summary, TrainError> {
    let config = fixed.config;
    let last = state
        .history
        .last()
        .cloned()
        .ok_or_else(|| TrainError::Invalid("no epoch was run".into()))?;
    let summary = Summary {
        optimizer: config.optimizer.clone(),
        hyperparams: crate::config_record::config_json(&fixed.sam),
        dataset: config.dataset.clone(),
        model: config.model.clone(),
        epochs: config.epochs,
        seed: config.seed,
        label_noise: config.label_noise,
        test_accuracy: last.test_accuracy,
        test_loss: last.test_loss,
        train_loss: last.train_loss,
        steps: state.steps,
        seconds: state.seconds,
        mean_step_ms: state.step_ms_total / state.steps.max(1) as f64,
        device: fixed.options.device.name().to_string(),
        second_pass_fraction: run_second_pass_fraction(&state.history, fixed.per_epoch),
        precision: config.precision.clone(),
        config: config.clone(),
        changes: state.changes,
        history: state.history,
        test_correct,
        data: Some(fixed.data.clone()),
    };
    if let Some(out) = fixed.options.out {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| TrainError::Invalid(e.to_string()))?;
        write_atomic(&out.join("summary.json"), text.as_bytes())
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", out.join("summary.json").display())))?;
    }
    Ok(summary)
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
fn evaluate<M: Classifier>(model: &M, test: &Tensors, device: &Device, dtype: DType) -> (f64, f64, Vec<bool>) {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let mut loss = 0.0;
    let mut correct = Vec::with_capacity(test.len());
    let rows: Vec<usize> = (0..test.len()).collect();
    for chunk in rows.chunks(500) {
        let (x, y) = test.batch(chunk, &device);
        let logits = model.forward(x.cast(dtype)).cast(DType::F32);
        let losses = flatmin::per_sample_cross_entropy(logits.clone(), y.clone());
        loss += losses.sum().into_scalar::<f64>();
        correct.extend(row_correct(logits, y));
    }
    let n = test.len().max(1) as f64;
    let hits = correct.iter().filter(|&&c| c).count();
    (loss / n, hits as f64 / n, correct)
}
