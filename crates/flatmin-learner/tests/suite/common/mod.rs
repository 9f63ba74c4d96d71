//! A small classifier with BatchNorm, synthetic data, and the two training loops the tests
//! compare: Burn's Learner with `SamLearner`, and flatmin's own `Sam::step`.
#![allow(dead_code)]

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, Relu};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::LossMetric;
use burn::train::{ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainStep};
use flatmin::SamConfig;
use flatmin_learner::{SamLearner, SamLearnerConfig, SamOutput, SamStep};

#[path = "../../../../flatmin/tests/suite/common/shared.rs"]
mod shared;
pub use shared::*;

pub const FEATURES: usize = 4;
pub const CLASSES: usize = 3;
/// The learning rate of every run.
pub const LR: f64 = 0.1;
/// Samples per step of the one-device runs.
pub const BATCH: usize = 8;

/// The Learner's base optimizer: Burn's SGD, momentum 0.9 with dampening 0, weight decay 5e-4.
pub fn burn_sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}

/// `preset` on flatmin's SGD with the settings of [`burn_sgd`].
pub fn config(preset: &str) -> SamConfig {
    SamConfig::preset(preset, SamConfig::sgd_base(0.9, 5e-4)).unwrap()
}

/// A Learner of `SamLearner` on a copy of `initial`, with `optim` at the constant rate [`LR`];
/// a mixed-precision `sam` runs its passes in f16.
pub fn learner(initial: &Net, sam: SamConfig, optim: ModuleOptimizer) -> Learner<SamLearner<Net>> {
    let mut config = SamLearnerConfig::new(sam);
    if config.sam.precision.is_mixed() {
        config = config.with_mixed_precision(burn::tensor::DType::F16);
    }
    let model = SamLearner::new(initial.deep_copy(), config).unwrap();
    Learner::new(model, optim, ConstantLr::new(LR))
}

/// Trains with the Learner `build` makes for `epochs` epochs on `samples(32, 0)` in batches of
/// [`BATCH`]; returns the trained model and the adapter's statistics.
pub fn with_learner(
    build: impl FnOnce() -> Learner<SamLearner<Net>>,
    epochs: usize,
    name: &str,
) -> (Net, flatmin_learner::SamLearnerStats) {
    let dir = scratch(name);
    let result = SupervisedTraining::new(&dir, loader(samples(32, 0), BATCH), loader(samples(16, 9), BATCH))
        .num_epochs(epochs)
        .metrics((LossMetric::new(),))
        .with_application_logger(None)
        .launch(build());
    assert!(result.error.is_none(), "{name}: {:?}", result.error);
    let stats = result.model.stats();
    (result.model.into_inner(), stats)
}

/// flatmin's own loop (`Sam::step`) over the batches of [`with_learner`], on `device`, at the
/// learning rate `lr` gives at each step.
pub fn with_flatmin(initial: &Net, sam: &SamConfig, epochs: usize, device: &Device, lr: impl FnMut() -> f64) -> Net {
    own_loop(&mut sam.init().unwrap(), initial.deep_copy(), epochs, device, lr)
}

/// [`with_flatmin`] with the optimizer given (so that its state can be read afterwards) and the
/// model taken as it is (a model stored in bf16, say).
pub fn own_loop(
    optim: &mut flatmin::Sam,
    mut model: Net,
    epochs: usize,
    device: &Device,
    mut lr: impl FnMut() -> f64,
) -> Net {
    let data = samples(32, 0);
    for _ in 0..epochs {
        for chunk in data.chunks(BATCH) {
            let item = make_item(chunk, device);
            let (next, report) = optim.step(lr(), model, flatmin_loss(&item));
            report.unwrap_or_else(|e| panic!("a finite step: {e}"));
            model = next;
        }
    }
    model
}

/// The f32 master weights of a mixed-precision optimizer, as bits, one list per parameter.
pub fn master_bits(optim: &flatmin::Sam) -> Vec<Vec<u32>> {
    optim
        .master_weights()
        .expect("a model stored in half precision keeps master weights")
        .slots()
        .iter()
        .flatten()
        .map(|t| t.clone().into_data().iter::<f32>().map(f32::to_bits).collect())
        .collect()
}

/// Three steps of the adapter's `step` and `optimize` called directly (Burn's SGD) and of
/// `Sam::step` (flatmin's SGD), from copies of `initial`, on `device`: every float of both
/// models after them ([`weights`], BatchNorm's running statistics included).
pub fn direct_steps(initial: &Net, sam: &SamConfig, device: &Device) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let mut wrapped = SamLearner::new(initial.deep_copy(), SamLearnerConfig::new(sam.clone())).unwrap();
    let mut optim = burn_sgd();
    let mut own = sam.init().unwrap();
    let mut model = initial.deep_copy();
    for chunk in samples(24, 4).chunks(BATCH) {
        let item = make_item(chunk, device);
        let out = TrainStep::step(&wrapped, item.clone());
        wrapped = TrainStep::optimize(wrapped, &mut optim, LR.into(), out.grads);
        let (next, report) = own.step(LR, model, flatmin_loss(&item));
        report.unwrap();
        model = next;
    }
    (weights(&wrapped.model), weights(&model))
}

#[derive(Module, Debug)]
pub struct Net {
    pub l1: Linear,
    pub bn: BatchNorm,
    pub relu: Relu,
    pub l2: Linear,
}

impl Net {
    pub fn new(device: &Device) -> Self {
        Self {
            l1: LinearConfig::new(FEATURES, 8).init(device),
            bn: BatchNormConfig::new(8).init(device),
            relu: Relu::new(),
            l2: LinearConfig::new(8, CLASSES).init(device),
        }
    }

    /// The logits of `x`, taken to the net's float type first (a half-precision copy's passes
    /// get the batch in f32).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let dtype = self.l1.weight.val().dtype();
        let x = if x.dtype() == dtype { x } else { x.cast(dtype) };
        self.l2.forward(self.relu.forward(self.bn.forward(self.l1.forward(x))))
    }

    /// A net whose linear layers hold fixed weights, the same in every run: `Net::new` draws
    /// them from Burn's generator, which the tests running in parallel share, so its weights
    /// depend on their order. For the tests whose outcome (AE-SAM's decisions) must not.
    pub fn fixed(device: &Device) -> Self {
        use burn::module::{ModuleMapper, Param};
        struct Fixed {
            path: Vec<String>,
            tensors: usize,
        }
        impl ModuleMapper for Fixed {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                if !matches!(self.path.first().map(String::as_str), Some("l1" | "l2")) {
                    return param;
                }
                let k = self.tensors;
                self.tensors += 1;
                param.map(|t| {
                    let shape = t.shape();
                    let values: Vec<f32> = (0..shape.num_elements())
                        .map(|i| (((i * 7 + k * 5) % 17) as f32 / 16.0 - 0.5) * 0.8)
                        .collect();
                    let tracked = t.is_require_grad();
                    Tensor::from_data(TensorData::new(values, shape), &t.device()).set_require_grad(tracked)
                })
            }
        }
        Self::new(device).map(&mut Fixed {
            path: Vec::new(),
            tensors: 0,
        })
    }

    /// A copy that owns its BatchNorm running statistics (Burn's clones share them).
    pub fn deep_copy(&self) -> Self {
        self.clone().valid().train()
    }
}

#[derive(Clone, Debug)]
pub struct Sample {
    pub x: [f32; FEATURES],
    pub y: i64,
}

#[derive(Clone, Debug)]
pub struct Item {
    pub x: Tensor<2>,
    pub y: Tensor<1, Int>,
}

#[derive(Clone)]
pub struct SampleBatcher;

impl Batcher<Sample, Item> for SampleBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> Item {
        make_item(&items, device)
    }
}

pub fn make_item(items: &[Sample], device: &Device) -> Item {
    let n = items.len();
    let x: Vec<f32> = items.iter().flat_map(|s| s.x).collect();
    let y: Vec<i64> = items.iter().map(|s| s.y).collect();
    Item {
        x: Tensor::from_data(TensorData::new(x, [n, FEATURES]), device),
        y: Tensor::from_data(TensorData::new(y, [n]), device),
    }
}

/// `n` samples of three noisy, overlapping classes, the same every time.
pub fn samples(n: usize, salt: u64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let y = (i % CLASSES) as i64;
            let mut x = [0f32; FEATURES];
            for (k, v) in x.iter_mut().enumerate() {
                let t = (i as f64 + 1.0) * (k as f64 + 1.7) + salt as f64 * 0.37;
                *v = (t.sin() * 0.9 + if k as i64 == y { 0.8 } else { -0.2 }) as f32;
            }
            Sample { x, y }
        })
        .collect()
}

pub fn loader(data: Vec<Sample>, batch: usize) -> Arc<dyn DataLoader<Item>> {
    DataLoaderBuilder::new(SampleBatcher)
        .batch_size(batch)
        .build(InMemDataset::new(data))
}

impl SamStep for Net {
    type Input = Item;
    type Output = ClassificationOutput;

    fn sam_forward(&self, item: &Item, batch: flatmin::Batch<'_>) -> SamOutput<ClassificationOutput> {
        let x = batch.rows(item.x.clone());
        let y = batch.rows_int(item.y.clone());
        let logits = self.forward(x);
        let losses = flatmin::per_sample_cross_entropy(logits.clone(), y.clone());
        let output = ClassificationOutput::new(losses.clone().mean(), logits, y);
        SamOutput { losses, output }
    }
}

impl InferenceStep for Net {
    type Input = Item;
    type Output = ClassificationOutput;

    fn step(&self, item: Item) -> ClassificationOutput {
        let logits = self.forward(item.x);
        let loss = flatmin::per_sample_cross_entropy(logits.clone(), item.y.clone()).mean();
        ClassificationOutput::new(loss, logits, item.y)
    }
}

/// The loss closure flatmin's own loop uses: the same forward pass as `sam_forward`.
pub fn flatmin_loss(item: &Item) -> impl FnMut(&Net, flatmin::Batch<'_>) -> Tensor<1> + '_ {
    move |m: &Net, batch| {
        let logits = m.forward(batch.rows(item.x.clone()));
        flatmin::per_sample_cross_entropy(logits, batch.rows_int(item.y.clone()))
    }
}

/// Every float of the model (weights, biases, BatchNorm's running statistics), as f32 bits.
pub fn weights<M: Module>(model: &M) -> Vec<Vec<u32>> {
    flatmin::bridge::all_floats(model).into_iter().map(bits).collect()
}

fn bits(t: Tensor<1>) -> Vec<u32> {
    t.into_data().iter::<f32>().map(f32::to_bits).collect()
}

/// The largest absolute difference between two models' floats.
pub fn max_abs_diff(a: &[Vec<u32>], b: &[Vec<u32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (f32::from_bits(*p) - f32::from_bits(*q)).abs())
        })
        .fold(0.0, f32::max)
}

/// The trainable parameters only, as f32 bits. BatchNorm's running statistics are left out:
/// Burn's `RunningState` keeps each thread's last update pending and folds it in lazily, so
/// when they are read depends on which threads touched them (the Learner's workers, the async
/// checkpointer), not on the step; they are checked in the adapter's own test.
pub fn trainable(model: &Net) -> Vec<Vec<u32>> {
    let layout = flatmin::Layout::of(model);
    let values = flatmin::bridge::values(model, &layout);
    values.into_slots().into_iter().flatten().map(bits).collect()
}

/// `preset` (on momentum SGD) with every step a SAM step — its schedule taken out, since the
/// perturbation does not depend on it — for the checks of the perturbed model; `None` for a
/// preset without an ascent (ρ = 0, MSAM's single pass).
pub fn ascending(preset: &str) -> Option<flatmin::SamConfig> {
    use flatmin::Member;
    let mut config = flatmin::SamConfig::preset(preset, flatmin::SamConfig::sgd_base(0.9, 5e-4))
        .unwrap()
        .for_run(1, 8);
    config.members.retain(|m| {
        !matches!(
            m,
            Member::Every(_) | Member::Random(_) | Member::AeSam(_) | Member::LookSam(_)
        )
    });
    (!config.is_base_only() && !config.is_scheduled()).then_some(config)
}

/// The perturbed model of one step begun on `local` (a view of `model`) and ascended from
/// `model`, for a configuration that ascends at every step.
pub fn perturbed_model(config: &flatmin::SamConfig, model: &Net, local: &Net, item: &Item, lr: f64) -> Net {
    let optim = config.init().unwrap();
    let first = optim.begin(lr, local);
    let loss = flatmin::per_sample_cross_entropy(first.model().forward(item.x.clone()), item.y.clone()).mean();
    let grads = flatmin::bridge::backward(loss, first.model());
    let ascent = optim.ascend(model, first, grads).unwrap().ascent().expect("a SAM step");
    ascent.model().clone()
}

/// Check 1 of the crate's README, on `device`: a model marked by Burn's `ModuleSharder` (what
/// DDP does) keeps the mark on every parameter of flatmin's perturbed model, for every preset's
/// perturbation, and `local_view` (where the adapter runs the first pass) clears it; the
/// Learner's optimizer (Burn's SGD) keeps it too.
pub fn assert_the_distributed_mark_survives(device: &Device) {
    use burn::train::ModuleSharder;
    use flatmin_learner::{distributed_flags, is_distributed, local_view};

    let marked = Net::new(device).map(&mut ModuleSharder);
    let flags = distributed_flags(&marked);
    assert!(
        !flags.is_empty() && flags.values().all(|&d| d),
        "ModuleSharder marks every parameter"
    );
    let item = make_item(&samples(8, 0), device);
    // ESAM included: its perturbed model once dropped the mark on the tensors its mask left out.
    // Every preset with an ascent (ρ = 0 and MSAM's single pass have none), its schedule taken
    // out: the perturbation does not depend on it.
    for preset in flatmin::PRESETS {
        let Some(config) = ascending(preset) else {
            continue;
        };
        let local = local_view(&marked);
        assert!(!is_distributed(&local), "{preset}: local_view clears the mark");
        let perturbed = distributed_flags(&perturbed_model(&config, &marked, &local, &item, LR));
        assert_eq!(perturbed.len(), flags.len(), "{preset}");
        assert!(
            perturbed.values().all(|&d| d),
            "{preset}: the perturbed model keeps every parameter's mark"
        );
        assert!(is_distributed(&marked), "{preset}: the model keeps its mark");
    }
    // The Learner's optimizer (Burn's SGD) keeps the mark too.
    let local = local_view(&marked);
    let loss = flatmin::per_sample_cross_entropy(local.forward(item.x.clone()), item.y.clone()).mean();
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &local);
    let stepped = burn_sgd().step(LR, marked.clone(), grads);
    assert!(
        distributed_flags(&stepped).values().all(|&d| d),
        "the optimizer keeps the mark"
    );
}

/// Every tensor of a flatmin optimizer's state as bits, and every scalar, by name.
pub type StateBits = (Vec<(String, Vec<u32>)>, Vec<(String, u64)>);

/// Every tensor and scalar of a flatmin optimizer's state, as bits.
pub fn state_bits(record: &flatmin::SamRecord) -> StateBits {
    let tensors = record
        .tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.clone().into_data().iter::<f32>().map(f32::to_bits).collect(),
            )
        })
        .collect();
    (tensors, record.scalars.clone().into_iter().collect())
}

/// A Learner run with Burn's checkpoints in `dir`, `epochs` epochs of 4 steps of [`BATCH`] from
/// a copy of `initial`, resumed from the checkpoint of epoch `resume` if given: the trainable
/// weights ([`trainable`]), the flatmin state ([`state_bits`]) and the adapter's statistics
/// after it; no step skipped.
pub fn checkpointed_run(
    initial: &Net,
    sam: &SamConfig,
    dir: &std::path::Path,
    epochs: usize,
    resume: Option<usize>,
) -> (Vec<Vec<u32>>, StateBits, flatmin_learner::SamLearnerStats) {
    let mut training = SupervisedTraining::new(dir, loader(samples(32, 0), BATCH), loader(samples(8, 9), BATCH))
        .num_epochs(epochs)
        .metrics((LossMetric::new(),))
        .with_default_checkpointers()
        .with_application_logger(None);
    if let Some(epoch) = resume {
        training = training.checkpoint(epoch);
    }
    let result = training.launch(learner(initial, sam.clone(), burn_sgd()));
    assert!(result.error.is_none(), "{sam:?}: {:?}", result.error);
    let stats = result.model.stats();
    assert_eq!(stats.skipped, 0, "{sam:?}");
    let state = state_bits(&result.model.sam_record(0).expect("rank 0"));
    (trainable(&result.model.into_inner()), state, stats)
}
