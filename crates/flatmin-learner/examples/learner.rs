//! A Burn user's training loop, switched to SAM with a few lines.
//!
//! A small MLP with BatchNorm learns three noisy classes from synthetic data, with Burn's
//! `Learner`: its SGD, a cosine learning-rate schedule, loss and accuracy metrics on both
//! splits, and checkpoints after every epoch. The SAM-specific lines are marked `// SAM:`.
//!
//!     cargo run -p flatmin-learner --example learner -- [preset] [epochs]
//!
//! `preset` is any flatmin preset the adapter accepts (`sam` by default; `sgd` trains without
//! SAM; `bsam` and `msam`, which need flatmin's own base optimizer, are refused with the reason).
//! The checkpoints carry the SAM state (F-SAM's average, LookSAM's stored direction, the step
//! count, …) next to the weights. Add `--devices 2` to run Burn's MultiDevice strategy with the
//! CPU device listed twice (two worker threads, each with its own ascent: m-sharpness).

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, Relu};
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation, MetricsRendererTraining,
};
use burn::train::{
    ClassificationOutput, ExecutionStrategy, InferenceStep, Learner, MultiDeviceOptim, SupervisedTraining,
};
use flatmin::{Batch, SamConfig};
use flatmin_learner::{AscentSync, DataParallel, SamLearner, SamLearnerConfig, SamOutput, SamStep};

const FEATURES: usize = 8;
const CLASSES: usize = 3;
/// The share of training labels flipped to another class; validation labels stay clean.
const TRAIN_LABEL_NOISE: f32 = 0.2;

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    bn: BatchNorm,
    relu: Relu,
    l2: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Self {
            l1: LinearConfig::new(FEATURES, 32).init(device),
            bn: BatchNormConfig::new(32).init(device),
            relu: Relu::new(),
            l2: LinearConfig::new(32, CLASSES).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.l2.forward(self.relu.forward(self.bn.forward(self.l1.forward(x))))
    }
}

#[derive(Clone, Debug)]
struct Sample {
    x: [f32; FEATURES],
    y: i64,
}

#[derive(Clone, Debug)]
struct Points {
    x: Tensor<2>,
    y: Tensor<1, Int>,
}

#[derive(Clone)]
struct PointBatcher;

impl Batcher<Sample, Points> for PointBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> Points {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|s| s.x).collect();
        let y: Vec<i64> = items.iter().map(|s| s.y).collect();
        Points {
            x: Tensor::from_data(TensorData::new(x, [n, FEATURES]), device),
            y: Tensor::from_data(TensorData::new(y, [n]), device),
        }
    }
}

/// Three classes around three centres, with [`TRAIN_LABEL_NOISE`] of the training labels flipped.
fn dataset(n: usize, salt: u32, noisy: bool) -> Vec<Sample> {
    let mut state = 0x9E37_79B9u32 ^ salt.wrapping_mul(0x85EB_CA6B);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32
    };
    (0..n)
        .map(|i| {
            let class = (i % CLASSES) as i64;
            let mut x = [0f32; FEATURES];
            for (k, v) in x.iter_mut().enumerate() {
                let centre = if k % CLASSES == class as usize { 1.0 } else { 0.0 };
                *v = centre + 1.2 * (next() + next() + next() - 1.5);
            }
            let y = if noisy && next() < TRAIN_LABEL_NOISE {
                (class + 1 + (next() * 2.0) as i64) % CLASSES as i64
            } else {
                class
            };
            Sample { x, y }
        })
        .collect()
}

fn loader(data: Vec<Sample>, batch: usize, shuffle: Option<u64>) -> Arc<dyn DataLoader<Points>> {
    let builder = DataLoaderBuilder::new(PointBatcher).batch_size(batch);
    let builder = match shuffle {
        Some(seed) => builder.shuffle(seed),
        None => builder,
    };
    builder.build(InMemDataset::new(data))
}

// SAM: instead of `TrainStep::step`, one forward pass on the samples SAM asks for.
impl SamStep for Mlp {
    type Input = Points;
    type Output = ClassificationOutput;

    fn sam_forward(&self, item: &Points, batch: Batch<'_>) -> SamOutput<ClassificationOutput> {
        let x = batch.rows(item.x.clone());
        let y = batch.rows_int(item.y.clone());
        let logits = self.forward(x);
        let losses = flatmin::per_sample_cross_entropy(logits.clone(), y.clone());
        let output = ClassificationOutput::new(losses.clone().mean(), logits, y);
        SamOutput { losses, output }
    }
}

impl InferenceStep for Mlp {
    type Input = Points;
    type Output = ClassificationOutput;

    fn step(&self, item: Points) -> ClassificationOutput {
        let logits = self.forward(item.x);
        let loss = flatmin::per_sample_cross_entropy(logits.clone(), item.y.clone()).mean();
        ClassificationOutput::new(loss, logits, item.y)
    }
}

/// Quiet during training (Burn's plain CLI renderer prints a line per batch); the Learner's
/// summary table is printed at the end.
struct Quiet;

impl MetricsRendererTraining for Quiet {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for Quiet {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for Quiet {
    fn start(&mut self, _epochs: usize, _starting: usize, _items: Option<usize>, _label: Option<&str>) {}
    fn update_epoch(&mut self, _epoch: usize) {}
    fn start_split(&mut self, _split: &str, _items: usize) {}
    fn update_split(&mut self, _processed: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for Quiet {
    fn start_global_progress(&mut self, _total: usize) {}
    fn start_test(&mut self, _name: &str, _items: usize) {}
    fn update_test_progress(&mut self, _processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for Quiet {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Burn's CPU backend on glibc: keep freed memory, or every step faults it in again.
    flatmin::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let devices_flag = args.iter().position(|a| a == "--devices");
    let workers: usize = devices_flag.and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(1);
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| devices_flag.is_none_or(|d| *i != d && *i != d + 1))
        .map(|(_, a)| a)
        .collect();
    let preset = positional.first().map(|s| s.as_str()).unwrap_or("sam");
    let epochs: usize = positional.get(1).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let dir = std::env::temp_dir().join(format!("flatmin-learner-example-{preset}-{workers}"));
    let _ = std::fs::remove_dir_all(&dir);

    let device = Device::flex().autodiff();
    let train = dataset(1200, 1, true);
    let valid = dataset(600, 2, false);
    let batch = 64 / workers;
    let steps = epochs * train.len().div_ceil(64);

    // SAM: the wrapper; the Learner's optimizer below is the base optimizer.
    let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 5e-4))?;
    let devices: Vec<Device> = vec![Device::flex(); workers];
    let parallel = DataParallel::new(
        devices.iter().map(|d| d.clone().autodiff()).collect(),
        AscentSync::PerDevice,
    );
    let model = SamLearner::new(Mlp::new(&device), SamLearnerConfig::new(sam).with_parallel(parallel))?;

    let optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init();
    let schedule = CosineAnnealingLrSchedulerConfig::new(0.05, steps).init()?;
    let learner = Learner::new(model, optim, schedule);

    let mut training = SupervisedTraining::new(&dir, loader(train, batch, Some(7)), loader(valid, 200, None))
        .metrics((LossMetric::new(), AccuracyMetric::new()))
        .num_epochs(epochs)
        .with_default_checkpointers()
        .with_application_logger(None)
        .summary()
        .renderer(Box::new(Quiet));
    if workers > 1 {
        training = training
            .with_training_strategy(ExecutionStrategy::MultiDevice(devices, MultiDeviceOptim::OptimMainDevice).into());
    }
    println!(
        "{preset} on {workers} device(s), batch {} per device, {epochs} epochs; output in {}",
        batch,
        dir.display()
    );
    let started = std::time::Instant::now();
    let result = training.launch(learner);
    if let Some(error) = result.error {
        return Err(format!("training failed: {error}").into());
    }
    let stats = result.model.stats();
    let report = stats.last_report.clone().unwrap_or_default();
    let shown = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "{} steps ({} skipped) in {:.1} s; last step: L(w) {}, L(w+e) {}, |e| {:.4}",
        stats.steps,
        stats.skipped,
        started.elapsed().as_secs_f64(),
        shown(report.loss),
        shown(report.loss_perturbed),
        report.perturbation_norm,
    );
    println!(
        "train accuracy is below valid accuracy by design: {:.0} % of the training labels are flipped \
         to a wrong class (validation labels are clean), so a model that learned the true classes \
         scores at most about {:.0} % on the training labels",
        TRAIN_LABEL_NOISE * 100.0,
        (1.0 - TRAIN_LABEL_NOISE) * 100.0,
    );
    let checkpoints = dir.join("checkpoint");
    println!("checkpoints: {}", checkpoints.display());
    Ok(())
}
