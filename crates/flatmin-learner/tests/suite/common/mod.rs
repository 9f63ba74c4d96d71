//! A small classifier with BatchNorm, synthetic data, and the two training loops the tests
//! compare: Burn's Learner with `SamLearner`, and flatmin's own `Sam::step`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, Relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::{ClassificationOutput, InferenceStep};
use flatmin_learner::{SamOutput, SamStep};

pub const FEATURES: usize = 4;
pub const CLASSES: usize = 3;

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

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
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

/// A fresh directory under the test target's scratch space.
pub fn scratch(name: &str) -> Scratch {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("flatmin-learner")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir)
}

/// A scratch directory, removed on drop; a failing test keeps it and prints its path.
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("scratch kept: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
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
