//! The data-parallel checks that need two CUDA GPUs (Burn 0.22.1's all-reduce exists only on
//! CUDA): built only with the `cuda` feature, run by `scripts/gpu-check` (one command, prints
//! PASS or FAIL). Not run on this project's machines, which have no GPU. The distributed mark
//! itself (check 1 of the crate's README) is also checked on wgpu in every CI run
//! (`wgpu::the_distributed_mark_survives_every_perturbation_and_local_view_clears_it`).
//!
//! 1. A model marked by `ModuleSharder` keeps the mark on every parameter of the perturbed
//!    model, for every preset; `local_view` clears it.
//! 2. Burn's DDP on two GPUs with `AscentSync::PerDevice` ends at the weights of `MSharpness`
//!    with m = the per-device batch on one GPU, for `sam` (the distributed second pass) and
//!    `gsam`, `wsam` (the sync round), and with `Synchronized` at the synchronized ascent's: to
//!    float tolerance, as the all-reduce sums in its own order.
//! 3. No stall: a few hundred DDP steps with uneven per-step times (one device's loader slowed)
//!    finish.

use std::time::{Duration, Instant};

use crate::common::*;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::metric::LossMetric;
use burn::train::{ExecutionStrategy, Learner, SupervisedTraining};
use flatmin::SamConfig;
use flatmin_learner::{AscentSync, DataParallel, MSharpness, SamLearner, SamLearnerConfig};

/// Samples per device and step.
const M: usize = 4;
/// Float32 tolerance of the DDP runs against one device (the all-reduce sums in its own order).
const TOLERANCE: f32 = 1e-5;

fn gpus() -> Vec<Device> {
    vec![Device::cuda(0), Device::cuda(1)]
}

/// Burn's DDP on the two GPUs, `M` samples per device and step, over `data`.
fn ddp(
    initial: &Net,
    sam: SamConfig,
    ascent: AscentSync,
    train: std::sync::Arc<dyn DataLoader<Item>>,
    epochs: usize,
    name: &str,
) -> (Net, u64) {
    let devices = gpus();
    let workers = devices.iter().map(|d| d.clone().autodiff()).collect();
    let config = SamLearnerConfig::new(sam).with_parallel(DataParallel::new(workers, ascent));
    let model = SamLearner::new(initial.deep_copy(), config).unwrap();
    let learner = Learner::new(model, burn_sgd(), ConstantLr::new(LR));
    let dir = scratch(name);
    let strategy = ExecutionStrategy::ddp(
        devices,
        DistributedConfig {
            all_reduce_op: ReduceOperation::Mean,
        },
    );
    let result = SupervisedTraining::new(&dir, train, loader(samples(8, 9), M))
        .num_epochs(epochs)
        .metrics((LossMetric::new(),))
        .with_application_logger(None)
        .with_training_strategy(strategy.into())
        .launch(learner);
    assert!(result.error.is_none(), "{name}: {:?}", result.error);
    let stats = result.model.stats();
    assert_eq!(stats.skipped, 0, "{name}");
    (result.model.into_inner(), stats.steps)
}

/// The same steps on GPU 0: each step's batch is device 0's `M` samples followed by device 1's
/// (Burn gives device `d` the `d`-th contiguous half of the dataset), in chunks of `M`.
fn one_gpu(initial: &Net, sam: &SamConfig, ascent: AscentSync) -> Net {
    let device = Device::cuda(0).autodiff();
    let data = samples(32, 0);
    let (first, second) = data.split_at(16);
    let mut msam = MSharpness::new(sam, M, ascent).unwrap();
    let mut optim = burn_sgd();
    let mut model = initial.deep_copy();
    for _ in 0..2 {
        for (a, b) in first.chunks(M).zip(second.chunks(M)) {
            let batch: Vec<Sample> = a.iter().chain(b).cloned().collect();
            let item = make_item(&batch, &device);
            let step = msam
                .descent(LR, &model, batch.len(), flatmin_loss(&item))
                .expect("finite step");
            model = step.apply(&mut optim, LR, model);
        }
    }
    model
}

#[test]
fn check_1_the_distributed_mark_survives_every_perturbation() {
    assert_the_distributed_mark_survives(&Device::cuda(0).autodiff());
}

#[test]
fn check_2_ddp_on_two_gpus_is_per_device_m_sharpness() {
    let device = Device::cuda(0).autodiff();
    let initial = Net::new(&device);
    let runs = [
        ("sam", AscentSync::PerDevice),
        ("gsam", AscentSync::PerDevice),
        ("wsam", AscentSync::PerDevice),
        ("sam", AscentSync::Synchronized),
    ];
    for (preset, ascent) in runs {
        let sam = config(preset);
        let name = format!("ddp-{preset}-{ascent:?}");
        let (parallel, steps) = ddp(&initial, sam.clone(), ascent, loader(samples(32, 0), M), 2, &name);
        assert_eq!(steps, 8, "{name}: 4 steps per epoch per device, 2 epochs");
        let reference = one_gpu(&initial, &sam, ascent);
        let diff = max_abs_diff(&trainable(&parallel), &trainable(&reference));
        println!("{name:<28} max |DDP - one GPU| = {diff:e}");
        assert!(diff <= TOLERANCE, "{name}: max |Δ| = {diff}");
    }
}

/// Items as usual, each batch delayed by 0 to 18 ms depending on its samples: the two devices'
/// loaders take different times at every step.
#[derive(Clone)]
struct SlowBatcher;

impl Batcher<Sample, Item> for SlowBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> Item {
        let salt = items.first().map_or(0, |s| u64::from(s.x[0].to_bits() % 7));
        std::thread::sleep(Duration::from_millis(3 * salt));
        make_item(&items, device)
    }
}

#[test]
fn check_3_ddp_does_not_stall_over_hundreds_of_uneven_steps() {
    let device = Device::cuda(0).autodiff();
    let initial = Net::new(&device);
    let train = DataLoaderBuilder::new(SlowBatcher)
        .batch_size(M)
        .build(InMemDataset::new(samples(800, 2)));
    let started = Instant::now();
    let (_, steps) = ddp(&initial, config("sam"), AscentSync::PerDevice, train, 3, "ddp-uneven");
    println!("{steps} DDP steps in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(steps, 300, "100 steps per epoch per device, 3 epochs");
    assert!(started.elapsed() < Duration::from_secs(600), "no stall");
}
