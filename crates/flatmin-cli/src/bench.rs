//! `flatmin bench`: the step time and peak memory of the base optimizer and each SAM variant,
//! measured in one process on synthetic batches.
//!
//! For each model, every variant gets its own copy of the same initial weights and its own
//! optimizer. After warm-up rounds, each round times one step of every variant, in an order
//! rotated from round to round, so that a slow patch of a shared machine biases no variant; the
//! figures are medians over the rounds and the ratios compare medians of the same run.
//!
//! Memory, in untimed rounds after the timed ones: before each step the allocator returns its free memory to the system
//! (`malloc_trim`) and the kernel's peak-RSS mark is reset (`5` written to
//! `/proc/self/clear_refs`); after the step `VmHWM` in `/proc/self/status` is that step's peak.
//! All variants' weights and optimizer states stay resident throughout, so the peaks share one
//! baseline: the difference between two variants' peaks is the difference of their steps' needs.
//! Peak RSS moves by pages and with the C allocator's arenas; where the counting allocator
//! ([`crate::malloc::CountingAlloc`]) is installed, the step's heap working memory is also
//! counted exactly, in bytes.
//!
//! The optimizer's own work (everything but the passes) is read from [`flatmin::Sam::last_timings`].

use std::fmt::Write as _;
use std::time::Instant;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use flatmin::{Batch, Rng, Sam};
use serde::Serialize;

use crate::device::DeviceChoice;
use crate::models::{Classifier, InputShape, Mlp, ResNetStack, SmallCnn};
use crate::train::TrainConfig;

/// The models `--models` accepts.
pub const BENCH_MODELS: [&str; 3] = ["mlp", "cnn", "resnet"];

/// The optimizers `--optimizers` accepts (the library's presets; all of them by default).
pub const BENCH_OPTIMIZERS: [&str; flatmin::PRESETS.len()] = flatmin::PRESETS;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Models, from [`BENCH_MODELS`].
    pub models: Vec<String>,
    /// Optimizer presets; the base (`sgd`) is always measured, first.
    pub optimizers: Vec<String>,
    /// Timed steps per variant.
    pub steps: usize,
    /// Untimed warm-up steps per variant.
    pub warmup: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate of every step.
    pub lr: f64,
    /// Seed of the weights and the synthetic batch.
    pub seed: u64,
    /// Where the steps run. On wgpu and CUDA each pass waits for the device at both ends
    /// ([`Sam::set_synced_timings`]), so that the optimizer's own work is split off as on the
    /// CPU, and the device's own memory is measured beside the process's.
    pub device: DeviceChoice,
    /// The float type the models are stored and compute in: `f32`, or `bf16` / `f16` with f32
    /// master weights and optimizer state, exactly as `flatmin train --precision` runs them.
    pub precision: String,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            models: BENCH_MODELS.iter().map(|s| s.to_string()).collect(),
            optimizers: BENCH_OPTIMIZERS.iter().map(|s| s.to_string()).collect(),
            steps: 20,
            warmup: 3,
            batch_size: 128,
            lr: 0.01,
            seed: 0,
            device: DeviceChoice::Cpu,
            precision: "f32".into(),
        }
    }
}

/// One variant on one model.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRun {
    /// `mlp`, `cnn` or `resnet`.
    pub model: String,
    /// The optimizer preset.
    pub optimizer: String,
    /// Median wall time of a step, in ms.
    pub median_step_ms: f64,
    /// `median_step_ms` over the base optimizer's, same model, same run. For a method that
    /// skips the second pass on some steps the median is that of its cheap or of its dear steps;
    /// `cost_ratio_to_base` is its cost.
    pub ratio_to_base: f64,
    /// The fraction of the timed steps that ran SAM's second pass (1 for SAM, 0 for the base).
    pub second_pass_fraction: f64,
    /// Median wall time of the timed steps that ran one pass, in ms (`null` if none did).
    pub median_one_pass_step_ms: Option<f64>,
    /// Median wall time of the timed steps that ran the second pass, in ms (`null` if none did).
    pub median_two_pass_step_ms: Option<f64>,
    /// The cost of a step over the base optimizer's median step: the medians of the one-pass and
    /// the two-pass steps, weighted by how often each ran (`second_pass_fraction`). Equal to
    /// `ratio_to_base` for a method whose steps all run the same passes.
    pub cost_ratio_to_base: f64,
    /// Peak resident memory of the process during this variant's steps, in MB (MiB).
    pub peak_rss_mb: f64,
    /// `peak_rss_mb` minus the base optimizer's, in MB.
    pub extra_rss_mb_over_base: f64,
    /// The step's working memory, exactly: the most heap bytes held at once during the step
    /// minus those held before it, in MB (counted by the allocator; 0 where it is not
    /// installed). Persistent optimizer state is held before the step and is not in it.
    pub step_heap_mb: f64,
    /// `step_heap_mb` minus the base optimizer's, in MB.
    pub extra_heap_mb_over_base: f64,
    /// The device's memory in use, the most seen during a step, in MB (MiB): read from the
    /// device's allocator (Burn's `memory_pool_usage`), the device's queue drained each time,
    /// after each pass's forward (its activations held for the backward, beside the step's
    /// weights, perturbed copy and gradients) and when the step has ended. Every variant's
    /// weights and state are held throughout, as for `peak_rss_mb`; the backward's own
    /// temporaries are not seen. `null` on a device whose allocator does not report (the CPU
    /// backends).
    pub device_in_use_mb: Option<f64>,
    /// `device_in_use_mb` minus the base optimizer's, in MB.
    pub extra_device_mb_over_base: Option<f64>,
    /// Fastest step, in ms.
    pub min_step_ms: f64,
    /// Median CPU time of a step over all the process's threads, in ms: the work, whatever
    /// else the machine runs (wall times stretch when other processes take the cores).
    pub median_step_cpu_ms: f64,
    /// `median_step_cpu_ms` over the base optimizer's.
    pub cpu_ratio_to_base: f64,
    /// Median CPU time of a step on the calling thread alone, in ms; the rest ran on the
    /// backend's worker threads.
    pub median_main_thread_cpu_ms: f64,
    /// Median time of the step's passes (forward and backward, Burn's work), in ms.
    pub median_pass_ms: f64,
    /// Median time of the first pass (forward and backward at `w`), in ms.
    pub median_first_pass_ms: f64,
    /// Median time of ESAM's selection forward (no autodiff), in ms; 0 for the others.
    pub median_selection_ms: f64,
    /// Median time of the second pass (at `w + e`, on the selected samples), in ms.
    pub median_second_pass_ms: f64,
    /// Mean wall time of a step, in ms (ESAM's steps vary with the tensors its mask draws).
    pub mean_step_ms: f64,
    /// `mean_step_ms` over the base optimizer's.
    pub mean_ratio_to_base: f64,
    /// Median time of the optimizer's own work in a step (the step minus its passes), in ms.
    pub median_optimizer_ms: f64,
    /// `median_optimizer_ms` as a percentage of the base optimizer's median step.
    pub optimizer_pct_of_base_step: f64,
    /// Timed steps.
    pub steps: usize,
}

/// One model's size.
#[derive(Debug, Clone, Serialize)]
pub struct BenchModel {
    /// The model's name.
    pub model: String,
    /// Number of parameters (floats the optimizer updates).
    pub params: usize,
    /// Size of one parameter-sized buffer (f32), in MB (MiB).
    pub param_mb: f64,
    /// Resident memory before the memory rounds (every variant's weights and state), in MB.
    pub rss_before_mb: f64,
    /// The device's memory in use before the memory rounds (every variant's weights and
    /// state), in MB; `null` where the device's allocator does not report.
    pub device_in_use_before_mb: Option<f64>,
    /// The device's memory reserved by its allocator after the memory rounds (what is in use
    /// and the pages it keeps for reuse), in MB; `null` where it does not report.
    pub device_reserved_mb: Option<f64>,
    /// What a pass of this model is made of, and ESAM's compute floor from it.
    pub anatomy: PassAnatomy,
}

/// What a pass of a model is made of on this backend, timed on the initial weights (medians
/// over as many rounds as timed steps). ESAM's cost model (a backward of two forwards, half of
/// it weight gradients: `(3 + β + 3γ)/3`) is an assumption about the hardware and framework;
/// these are the figures it rests on here.
#[derive(Debug, Clone, Serialize)]
pub struct PassAnatomy {
    /// Forward and loss alone, no autodiff (what ESAM's selection forward costs), in ms.
    pub forward_ms: f64,
    /// Forward and backward with only the one-dimensional parameters (biases, normalization
    /// scales) tracking a gradient: the activation gradients down to the first layer, with
    /// weight gradients only for those cheap tensors, in ms.
    pub activation_gradient_pass_ms: f64,
    /// Forward and backward with every parameter tracking a gradient (the base step's pass), in ms.
    pub full_pass_ms: f64,
    /// The backward's cost in forwards: `(full − forward) / forward` (the cost model assumes 2).
    pub backward_over_forward: f64,
    /// The share of the backward spent on the weight gradients of the matrices and kernels:
    /// `(full − activation) / (full − forward)` (the cost model assumes one half).
    pub weight_gradient_share: f64,
    /// ESAM's β (the fraction of tensors perturbed, whose weight gradients pass 1 computes).
    pub esam_beta: f64,
    /// ESAM's γ (the fraction of the batch in the second pass).
    pub esam_gamma: f64,
    /// ESAM's compute floor over the base step, from these figures:
    /// `(activation + β·(full − activation) + forward + γ·full) / full`.
    pub esam_floor_ratio: f64,
}

/// The result of a benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Every variant on every model.
    pub runs: Vec<BenchRun>,
    /// The models' sizes.
    pub models: Vec<BenchModel>,
    /// Batch size.
    pub batch_size: usize,
    /// Warm-up steps per variant.
    pub warmup: usize,
    /// Rayon's thread count (the CPU backend's parallelism).
    pub threads: usize,
    /// Whether peak memory could be reset per step (Linux); otherwise peaks are the process's.
    pub peak_reset: bool,
    /// The machine's 1-minute load average when the benchmark started and ended (Linux): above
    /// the core count, other processes competed for the cores and wall times are stretched.
    pub load_average: [f64; 2],
    /// The device the steps ran on (`cpu`, `wgpu`, `cuda` or `tch`).
    pub device: String,
    /// The float type the models were stored and computed in (`f32`, `bf16` or `f16`).
    pub precision: String,
    /// Whether each pass waited for the device at both ends ([`Sam::set_synced_timings`]):
    /// on wgpu and CUDA, where the host otherwise only queues the passes.
    pub synced_passes: bool,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

impl BenchConfig {
    /// Checks the settings; unknown names are errors naming what is accepted.
    pub fn check(&self) -> Result<(), BenchError> {
        if self.models.is_empty() || self.optimizers.is_empty() {
            return Err(BenchError(
                "--models and --optimizers need at least one name each".into(),
            ));
        }
        for m in &self.models {
            if !BENCH_MODELS.contains(&m.as_str()) {
                return Err(BenchError(format!(
                    "--models: unknown model `{m}` (expected {})",
                    BENCH_MODELS.join(", ")
                )));
            }
        }
        for o in &self.optimizers {
            if !BENCH_OPTIMIZERS.contains(&o.as_str()) {
                return Err(BenchError(format!(
                    "--optimizers: unknown optimizer `{o}` (expected {})",
                    BENCH_OPTIMIZERS.join(", ")
                )));
            }
        }
        if self.steps == 0 {
            return Err(BenchError("--steps must be at least 1".into()));
        }
        if self.batch_size < 2 {
            return Err(BenchError("--batch-size must be at least 2".into()));
        }
        self.dtype()?;
        Ok(())
    }

    /// The float type of `precision`.
    fn dtype(&self) -> Result<DType, BenchError> {
        self.train_config("sgd", 0)
            .model_dtype()
            .map_err(|e| BenchError(e.to_string()))
    }

    /// The `flatmin train` configuration a variant is built from: the preset and the precision.
    fn train_config(&self, optimizer: &str, seed: u64) -> TrainConfig {
        TrainConfig {
            optimizer: optimizer.to_string(),
            seed,
            precision: self.precision.clone(),
            ..TrainConfig::default()
        }
    }

    /// The optimizers in measuring order: the base first, then the others as given, once each.
    fn variants(&self) -> Vec<String> {
        let mut out = vec!["sgd".to_string()];
        for o in &self.optimizers {
            if !out.contains(o) {
                out.push(o.clone());
            }
        }
        out
    }
}

/// The training-set size the variants are built for (bSAM's noise and weight decay scale with
/// it; it does not change the cost of a step): CIFAR's 50,000.
pub const BENCH_DATA_SIZE: u64 = 50_000;

/// The library configuration of a variant: the preset on momentum SGD (0.9, weight decay 5e-4),
/// exactly as `flatmin train --optimizer NAME` builds it (ESAM: β = 0.6, γ = 0.5), for a run of
/// 1000 steps ([`variant_for_run`] names the length).
pub fn variant(name: &str, seed: u64) -> Result<Sam, BenchError> {
    variant_for_run(name, seed, 1000)
}

/// [`variant`] for a run of `total_steps` steps (AE-SAM's threshold moves over them) on
/// [`BENCH_DATA_SIZE`] examples.
pub fn variant_for_run(name: &str, seed: u64, total_steps: u64) -> Result<Sam, BenchError> {
    built(&BenchConfig::default().train_config(name, seed), total_steps)
}

/// The optimizer of `config` for a run of `total_steps` steps on [`BENCH_DATA_SIZE`] examples.
fn built(config: &TrainConfig, total_steps: u64) -> Result<Sam, BenchError> {
    let sam = config
        .sam_config_for_run(total_steps, BENCH_DATA_SIZE)
        .map_err(|e| BenchError(e.to_string()))?;
    sam.init().map_err(|e| BenchError(e.to_string()))
}

/// Runs the benchmark. `progress` receives a line per model and phase.
pub fn run(config: &BenchConfig, mut progress: impl FnMut(&str)) -> Result<BenchResult, BenchError> {
    config.check()?;
    let mut result = BenchResult {
        runs: Vec::new(),
        models: Vec::new(),
        batch_size: config.batch_size,
        warmup: config.warmup,
        threads: rayon_threads(),
        peak_reset: memory::reset_peak(),
        load_average: [load_average(), f64::NAN],
        device: config.device.name().to_string(),
        precision: config.precision.clone(),
        synced_passes: config.device.queues_work(),
    };
    for model in &config.models {
        let (runs, size) = match model.as_str() {
            "mlp" => bench_model(config, model, mnist_shape(), Mlp::new, &mut progress)?,
            "cnn" => bench_model(config, model, mnist_shape(), SmallCnn::new, &mut progress)?,
            _ => bench_model(config, model, cifar_shape(), ResNetStack::new, &mut progress)?,
        };
        result.runs.extend(runs);
        result.models.push(size);
    }
    result.load_average[1] = load_average();
    Ok(result)
}

/// The 1-minute load average (NaN where unknown).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn mnist_shape() -> InputShape {
    InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    }
}

fn cifar_shape() -> InputShape {
    InputShape {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    }
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// A synthetic batch: standard-normal-ish images (sum of uniforms) and uniform labels.
fn synthetic_batch(shape: InputShape, n: usize, seed: u64, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut rng = Rng::seeded(seed ^ 0x0b47_c4ed);
    let per = shape.channels * shape.height * shape.width;
    let pixels: Vec<f32> = (0..n * per)
        .map(|_| ((rng.uniform() + rng.uniform() + rng.uniform() - 1.5) * 2.0) as f32)
        .collect();
    let labels: Vec<i64> = (0..n).map(|_| (rng.next_u64() % shape.classes as u64) as i64).collect();
    let x = Tensor::from_data(
        TensorData::new(pixels, [n, shape.channels, shape.height, shape.width]),
        device,
    );
    let y = Tensor::from_data(TensorData::new(labels, [n]), device);
    (x, y)
}

struct Variant<M> {
    name: String,
    optim: Sam,
    model: Option<M>,
    step_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    thread_cpu_ms: Vec<f64>,
    pass_ms: Vec<f64>,
    phase_ms: [Vec<f64>; 3],
    optimizer_ms: Vec<f64>,
    /// Per timed step, whether it ran the second pass.
    second_pass: Vec<bool>,
    peak_kb: u64,
    heap_bytes: usize,
    /// The most device bytes in use seen during the memory rounds' steps.
    device_bytes: Option<u64>,
    failures: usize,
}

/// Untimed rounds in which each variant's peak memory is measured.
const MEMORY_ROUNDS: usize = 2;

/// One step of a variant on the batch `(x, y)`; whether it ran the second pass. `after_forward`
/// is called when each pass's forward has been queued, its activations held for the backward.
fn step<M: Classifier>(
    v: &mut Variant<M>,
    lr: f64,
    x: &Tensor<4>,
    y: &Tensor<1, Int>,
    mut after_forward: impl FnMut(),
) -> bool {
    let model = v.model.take().expect("model");
    let (next, report) = v.optim.step(lr, model, |m: &M, batch: Batch| {
        // The loss in f32 whatever the model's type, as `flatmin train` computes it.
        let logits = m.forward(batch.rows(x.clone())).cast(DType::F32);
        let losses = flatmin::per_sample_cross_entropy(logits, batch.rows_int(y.clone()));
        after_forward();
        losses
    });
    v.model = Some(next);
    match report {
        Ok(r) => r.second_pass,
        Err(_) => {
            v.failures += 1;
            false
        }
    }
}

fn bench_model<M: Classifier>(
    config: &BenchConfig,
    name: &str,
    shape: InputShape,
    build: impl Fn(InputShape, &Device) -> M,
    progress: &mut impl FnMut(&str),
) -> Result<(Vec<BenchRun>, BenchModel), BenchError> {
    let device = config.device.autodiff().map_err(|e| BenchError(e.0))?;
    // Every variant starts from the same weights, each with its own model: a built model, not a
    // clone, so that BatchNorm running statistics (shared by clones) are not shared.
    // Built in f32 (the initializers' type), then stored in the run's precision.
    let dtype = config.dtype()?;
    let fresh = || {
        device.seed(config.seed);
        flatmin::bridge::cast_floats(build(shape, &device), dtype)
    };
    let params = fresh().num_params();
    let (x, y) = synthetic_batch(shape, config.batch_size, config.seed, &device);
    let x = x.cast(dtype);
    let mut variants = Vec::new();
    for v in config.variants() {
        variants.push(Variant {
            optim: {
                let mut optim = built(
                    &config.train_config(&v, config.seed),
                    (config.warmup + config.steps + MEMORY_ROUNDS) as u64,
                )?;
                optim.set_synced_timings(config.device.queues_work());
                optim
            },
            name: v,
            model: Some(fresh()),
            step_ms: Vec::new(),
            cpu_ms: Vec::new(),
            thread_cpu_ms: Vec::new(),
            pass_ms: Vec::new(),
            phase_ms: Default::default(),
            optimizer_ms: Vec::new(),
            second_pass: Vec::new(),
            peak_kb: 0,
            heap_bytes: 0,
            device_bytes: None,
            failures: 0,
        });
    }
    let count = variants.len();
    progress(&format!(
        "{name}: {params} parameters, batch {}, {count} optimizers, {} warm-up + {} timed steps each",
        config.batch_size, config.warmup, config.steps
    ));
    for round in 0..config.warmup + config.steps {
        let timed = round >= config.warmup;
        for k in 0..count {
            // Rotate the order each round: no variant always runs first (or after another).
            let v = &mut variants[(k + round) % count];
            let (cpu0, thread0) = (cpu::process_ms(), cpu::thread_ms());
            let t0 = Instant::now();
            let second_pass = step(v, config.lr, &x, &y, || {});
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if timed {
                v.second_pass.push(second_pass);
                let timings = v.optim.last_timings();
                v.step_ms.push(ms);
                v.cpu_ms.push(cpu::process_ms() - cpu0);
                v.thread_cpu_ms.push(cpu::thread_ms() - thread0);
                v.pass_ms.push(timings.passes * 1e3);
                v.phase_ms[0].push(timings.first_pass * 1e3);
                v.phase_ms[1].push(timings.selection * 1e3);
                v.phase_ms[2].push(timings.second_pass * 1e3);
                v.optimizer_ms.push(timings.optimizer() * 1e3);
            }
        }
    }
    // Memory rounds, untimed (returning memory to the system and resetting the peak mark would
    // cost the timed steps page faults they do not have in training).
    memory::trim();
    let rss_before_kb = memory::status_kb("VmRSS").unwrap_or(0);
    let device_before = device_memory::in_use(&device);
    // Heap counting only here: its shared counters would slow the timed steps.
    crate::malloc::set_heap_counting(true);
    for round in 0..MEMORY_ROUNDS {
        for k in 0..count {
            let v = &mut variants[(k + round) % count];
            memory::trim();
            memory::reset_peak();
            crate::malloc::reset_heap_peak();
            let mut device_peak = device_memory::in_use(&device);
            step(v, config.lr, &x, &y, || {
                device_peak = device_peak.max(device_memory::in_use(&device));
            });
            device_peak = device_peak.max(device_memory::in_use(&device));
            v.device_bytes = v.device_bytes.max(device_peak);
            v.peak_kb = v.peak_kb.max(memory::status_kb("VmHWM").unwrap_or(0));
            v.heap_bytes = v.heap_bytes.max(crate::malloc::heap_peak_growth());
        }
    }
    crate::malloc::set_heap_counting(false);
    if let Some(v) = variants.iter().find(|v| v.failures > 0) {
        return Err(BenchError(format!(
            "{name}: {} skipped {} of its steps (non-finite loss or gradient)",
            v.name, v.failures
        )));
    }
    let anatomy = pass_anatomy(&fresh(), &x, &y, config.steps)?;
    let base_ms = median(&variants[0].step_ms);
    let base_cpu_ms = median(&variants[0].cpu_ms);
    let base_mean_ms = mean(&variants[0].step_ms);
    let base_peak = variants[0].peak_kb as f64 / 1024.0;
    let mb = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
    let base_heap = mb(variants[0].heap_bytes);
    let device_mb = |bytes: Option<u64>| bytes.map(|b| mb(b as usize));
    let base_device = device_mb(variants[0].device_bytes);
    let runs = variants
        .iter()
        .map(|v| {
            let median_step_ms = median(&v.step_ms);
            let median_optimizer_ms = median(&v.optimizer_ms);
            let peak_rss_mb = v.peak_kb as f64 / 1024.0;
            let passes = PassSplit::of(&v.step_ms, &v.second_pass);
            BenchRun {
                model: name.to_string(),
                optimizer: v.name.clone(),
                median_step_ms,
                ratio_to_base: median_step_ms / base_ms,
                second_pass_fraction: passes.fraction,
                median_one_pass_step_ms: passes.one,
                median_two_pass_step_ms: passes.two,
                cost_ratio_to_base: passes.cost_ms() / base_ms,
                peak_rss_mb,
                extra_rss_mb_over_base: peak_rss_mb - base_peak,
                step_heap_mb: mb(v.heap_bytes),
                extra_heap_mb_over_base: mb(v.heap_bytes) - base_heap,
                device_in_use_mb: device_mb(v.device_bytes),
                extra_device_mb_over_base: device_mb(v.device_bytes).zip(base_device).map(|(a, b)| a - b),
                min_step_ms: v.step_ms.iter().copied().fold(f64::INFINITY, f64::min),
                median_step_cpu_ms: median(&v.cpu_ms),
                cpu_ratio_to_base: median(&v.cpu_ms) / base_cpu_ms,
                median_main_thread_cpu_ms: median(&v.thread_cpu_ms),
                median_pass_ms: median(&v.pass_ms),
                median_first_pass_ms: median(&v.phase_ms[0]),
                median_selection_ms: median(&v.phase_ms[1]),
                median_second_pass_ms: median(&v.phase_ms[2]),
                mean_step_ms: mean(&v.step_ms),
                mean_ratio_to_base: mean(&v.step_ms) / base_mean_ms,
                median_optimizer_ms,
                optimizer_pct_of_base_step: 100.0 * median_optimizer_ms / base_ms,
                steps: v.step_ms.len(),
            }
        })
        .collect();
    let size = BenchModel {
        model: name.to_string(),
        params,
        param_mb: params as f64 * 4.0 / (1024.0 * 1024.0),
        rss_before_mb: rss_before_kb as f64 / 1024.0,
        device_in_use_before_mb: device_mb(device_before),
        device_reserved_mb: device_mb(device_memory::reserved(&device)),
        anatomy,
    };
    Ok((runs, size))
}

/// Times a model's forward alone, its pass with activation gradients only and its full pass,
/// interleaved round by round, and derives ESAM's compute floor with the `esam` preset's β, γ.
fn pass_anatomy<M: Classifier>(
    model: &M,
    x: &Tensor<4>,
    y: &Tensor<1, Int>,
    rounds: usize,
) -> Result<PassAnatomy, BenchError> {
    let esam = variant("esam", 0)?;
    let beta = esam.config().member::<flatmin::SwpConfig>().map_or(1.0, |s| s.beta);
    let gamma = esam
        .config()
        .member::<flatmin::SelectionConfig>()
        .map_or(1.0, |s| s.gamma);
    let loss = |m: &M, x: Tensor<4>| flatmin::per_sample_cross_entropy(m.forward(x).cast(DType::F32), y.clone()).mean();
    // A pass first: Burn initializes parameters lazily, and a clone of a model that never ran
    // shares its initializer, so `no_grad` on the clone would leave the original untracked too.
    let _ = loss(model, x.clone()).backward();
    let frozen = model.clone().no_grad();
    // Only the one-dimensional parameters (biases, normalization scales) keep a gradient.
    let layout = flatmin::Layout::of(model);
    let keep: Vec<bool> = layout.entries.iter().map(|e| e.shape.len() == 1).collect();
    let vectors_only = flatmin::bridge::with_tracked(model, &layout, &keep);
    // A GPU queues the work: the timer stops once the device has done it (a no-op on the CPU).
    let device = x.device();
    let timed = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        let _ = device.sync();
        t.elapsed().as_secs_f64() * 1e3
    };
    let (mut forward, mut activation, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        let f = timed(&|| {
            loss(&frozen, x.clone()).into_data();
        });
        let a = timed(&|| {
            let _ = loss(&vectors_only, x.clone()).backward();
        });
        let p = timed(&|| {
            let _ = loss(model, x.clone()).backward();
        });
        // The first round warms the allocator and the caches.
        if round > 0 {
            forward.push(f);
            activation.push(a);
            full.push(p);
        }
    }
    let (forward, activation, full) = (median(&forward), median(&activation), median(&full));
    Ok(PassAnatomy {
        forward_ms: forward,
        activation_gradient_pass_ms: activation,
        full_pass_ms: full,
        backward_over_forward: (full - forward) / forward,
        weight_gradient_share: (full - activation) / (full - forward),
        esam_beta: beta,
        esam_gamma: gamma,
        esam_floor_ratio: (activation + beta * (full - activation) + forward + gamma * full) / full,
    })
}

/// A variant's timed steps split by whether they ran the second pass.
struct PassSplit {
    fraction: f64,
    one: Option<f64>,
    two: Option<f64>,
}

impl PassSplit {
    fn of(step_ms: &[f64], second_pass: &[bool]) -> Self {
        let pick = |wanted: bool| -> Vec<f64> {
            step_ms
                .iter()
                .zip(second_pass)
                .filter(|(_, s)| **s == wanted)
                .map(|(ms, _)| *ms)
                .collect()
        };
        let (one, two) = (pick(false), pick(true));
        Self {
            fraction: two.len() as f64 / step_ms.len().max(1) as f64,
            one: (!one.is_empty()).then(|| median(&one)),
            two: (!two.is_empty()).then(|| median(&two)),
        }
    }

    /// The expected step time: each kind's median weighted by its share of the steps.
    fn cost_ms(&self) -> f64 {
        (1.0 - self.fraction) * self.one.unwrap_or(0.0) + self.fraction * self.two.unwrap_or(0.0)
    }
}

// The laboratory's one mean (crate::stats).
use crate::stats::mean;

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The result as JSON: `{"runs": [...], "models": [...], ...}`.
pub fn to_json(result: &BenchResult) -> String {
    serde_json::to_string_pretty(result).expect("serializable")
}

/// The result as a Markdown table, with the models' sizes.
pub fn table(result: &BenchResult) -> String {
    let mut s = String::from(
        "| model | optimizer | median step ms | ratio to base | second passes | cost ratio to base | mean step ms (ratio) | CPU ms (ratio) | optimizer ms (% of base step) | peak RSS MB | extra over base MB | step heap MB (extra over base) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &result.runs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.3} | {:.0} % | {:.3} | {:.2} ({:.3}) | {:.2} ({:.3}) | {:.3} ({:.2} %) | {:.1} | {:+.2} | {:.2} ({:+.3}) |",
            r.model,
            r.optimizer,
            r.median_step_ms,
            r.ratio_to_base,
            100.0 * r.second_pass_fraction,
            r.cost_ratio_to_base,
            r.mean_step_ms,
            r.mean_ratio_to_base,
            r.median_step_cpu_ms,
            r.cpu_ratio_to_base,
            r.median_optimizer_ms,
            r.optimizer_pct_of_base_step,
            r.peak_rss_mb,
            r.extra_rss_mb_over_base,
            r.step_heap_mb,
            r.extra_heap_mb_over_base
        );
    }
    // The passes, each in units of the base optimizer's pass on the same model: where a
    // variant's time goes, and how far ESAM's passes are from their compute floor.
    s.push_str(
        "\nPasses, in ms and in base passes (the base step's forward and backward = 1):\n\n\
         | model | optimizer | first pass | selection forward | second pass | all passes |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut base_pass = f64::NAN;
    for r in &result.runs {
        if r.optimizer == "sgd" {
            base_pass = r.median_first_pass_ms;
        }
        let cell = |ms: f64| format!("{ms:.2} ({:.3})", ms / base_pass);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.model,
            r.optimizer,
            cell(r.median_first_pass_ms),
            cell(r.median_selection_ms),
            cell(r.median_second_pass_ms),
            cell(r.median_pass_ms)
        );
    }
    for m in &result.models {
        let a = &m.anatomy;
        let _ = writeln!(
            s,
            "\n{}: {} parameters (one parameter-sized f32 buffer = {:.2} MB); resident between steps {:.1} MB\n\
             {}: forward alone {:.2} ms, pass with activation gradients only {:.2} ms, full pass {:.2} ms: \
             backward = {:.2} forwards, {:.0} % of it weight gradients; ESAM (β = {}, γ = {}) floor from these: {:.3} of the base step",
            m.model,
            m.params,
            m.param_mb,
            m.rss_before_mb,
            m.model,
            a.forward_ms,
            a.activation_gradient_pass_ms,
            a.full_pass_ms,
            a.backward_over_forward,
            100.0 * a.weight_gradient_share,
            a.esam_beta,
            a.esam_gamma,
            a.esam_floor_ratio
        );
    }
    let _ = write!(
        s,
        "\nprecision {}, batch {}, {} warm-up steps, {} threads; peak memory reset per step: {}; load average {:.2} at the start, {:.2} at the end",
        result.precision,
        result.batch_size,
        result.warmup,
        result.threads,
        if result.peak_reset { "yes" } else { "no (process peaks)" },
        result.load_average[0],
        result.load_average[1]
    );
    if result.synced_passes {
        let _ = write!(
            s,
            "\non {}, each pass waited for the device at both ends: the passes' kernels are timed in \
             the pass columns and the optimizer's queued work in its own (the waits add a round trip \
             per pass to every variant's step)",
            result.device
        );
    }
    if result.runs.iter().any(|r| r.device_in_use_mb.is_some()) {
        s.push_str(
            "\n\nDevice memory (the allocator's bytes in use, the most seen after each pass's forward and at \
             the step's end; every variant's weights and state held throughout):\n\n\
             | model | optimizer | device MB in use | extra over base MB |\n\
             |---|---|---|---|\n",
        );
        let cell = |v: Option<f64>, signed: bool| match v {
            Some(v) if signed => format!("{v:+.2}"),
            Some(v) => format!("{v:.2}"),
            None => "–".into(),
        };
        for r in &result.runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                r.model,
                r.optimizer,
                cell(r.device_in_use_mb, false),
                cell(r.extra_device_mb_over_base, true)
            );
        }
        for m in &result.models {
            let _ = write!(
                s,
                "\n{}: device memory in use before the memory rounds {} MB, reserved by the allocator after them {} MB",
                m.model,
                cell(m.device_in_use_before_mb, false),
                cell(m.device_reserved_mb, false)
            );
        }
    }
    s
}

/// CPU time of the process and of the calling thread (Linux; NaN elsewhere), in ms.
mod cpu {
    use crate::cputime::{Clock, cpu_ms};

    /// CPU time of every thread of the process, in ms.
    pub fn process_ms() -> f64 {
        cpu_ms(Clock::Process)
    }

    /// CPU time of the calling thread, in ms.
    pub fn thread_ms() -> f64 {
        cpu_ms(Clock::Thread)
    }
}

/// The device's own memory, as its allocator reports it (wgpu, CUDA; `None` on the CPU backends).
mod device_memory {
    use burn::tensor::Device;

    /// Bytes of the device's live allocations, after its queue has drained.
    pub fn in_use(device: &Device) -> Option<u64> {
        device.memory_pool_usage().map(|u| u.bytes_in_use)
    }

    /// Bytes the device's allocator holds: in use, and kept for reuse.
    pub fn reserved(device: &Device) -> Option<u64> {
        device.memory_pool_usage().map(|u| u.bytes_reserved)
    }
}

/// Peak resident memory of this process, per step (Linux).
mod memory {
    /// Resets the kernel's peak-RSS mark to the current RSS; false where that is not possible.
    pub fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    /// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`).
    pub fn status_kb(key: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe extern "C" {
        safe fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }

    /// Returns the allocator's free memory to the system, so that memory freed by an earlier
    /// step does not hide (or inflate) the next step's peak.
    pub fn trim() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn unknown_names_are_errors() {
        let c = BenchConfig {
            models: vec!["vgg".into()],
            ..BenchConfig::default()
        };
        assert!(c.check().unwrap_err().0.contains("vgg"));
        let c = BenchConfig {
            optimizers: vec!["adamsam".into()],
            ..BenchConfig::default()
        };
        assert!(c.check().unwrap_err().0.contains("adamsam"));
        let c = BenchConfig {
            precision: "fp8".into(),
            ..BenchConfig::default()
        };
        assert!(c.check().unwrap_err().0.contains("fp8"));
    }

    #[test]
    fn the_cost_weighs_the_one_and_two_pass_steps_by_their_share() {
        // Every 5th step a SAM step at 20 ms, the others 10 ms: 0.8·10 + 0.2·20 = 12.
        let ms = [20.0, 10.0, 11.0, 9.0, 10.0, 21.0, 10.0, 10.0, 10.0, 10.0];
        let second: Vec<bool> = (0..10).map(|i| i % 5 == 0).collect();
        let split = PassSplit::of(&ms, &second);
        assert_eq!((split.fraction, split.one, split.two), (0.2, Some(10.0), Some(20.5)));
        assert!((split.cost_ms() - (0.8 * 10.0 + 0.2 * 20.5)).abs() < 1e-12);
        let all = PassSplit::of(&ms[..3], &[true; 3]);
        assert_eq!((all.fraction, all.one, all.cost_ms()), (1.0, None, 11.0));
    }

    #[test]
    fn the_base_is_measured_first_once() {
        let c = BenchConfig {
            optimizers: vec!["sam".into(), "sgd".into(), "sam".into()],
            ..BenchConfig::default()
        };
        assert_eq!(c.variants(), vec!["sgd".to_string(), "sam".to_string()]);
    }

    #[test]
    fn status_fields_are_read() {
        if cfg!(target_os = "linux") {
            assert!(memory::status_kb("VmRSS").unwrap() > 0);
        }
    }
}
