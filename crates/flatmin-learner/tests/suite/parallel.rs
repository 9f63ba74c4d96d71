//! Data-parallel SAM on the CPU: Burn's `MultiDevice` strategy with the `flex` device listed
//! twice (two worker threads, each running the whole SAM step on its own shard), against
//! m-sharpness on one device (`MSharpness`, one chunk per device); and what the CPU backend
//! allows of the distributed flag.

use crate::common::*;
use burn::module::Module;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use burn::train::metric::LossMetric;
use burn::train::{ExecutionStrategy, Learner, ModuleSharder, MultiDeviceOptim, SupervisedTraining};
use flatmin::{Layout, SamConfig};
use flatmin_learner::{
    AscentSync, DataParallel, MSharpness, SamLearner, SamLearnerConfig, distributed_flags, is_distributed, local_view,
};

/// Two "devices" (the same flex device twice) with Burn's MultiDevice strategy, 4 samples per
/// device and step, 2 epochs.
fn multi_device(initial: &Net, sam: SamConfig, ascent: AscentSync, name: &str) -> Net {
    let devices = vec![Device::flex(), Device::flex()];
    let workers = devices.iter().map(|d| d.clone().autodiff()).collect();
    let config = SamLearnerConfig::new(sam).with_parallel(DataParallel::new(workers, ascent));
    let model = SamLearner::new(initial.deep_copy(), config).unwrap();
    let learner = Learner::new(model, burn_sgd(), ConstantLr::new(LR));
    let dir = scratch(name);
    let result = SupervisedTraining::new(&dir, loader(samples(32, 0), 4), loader(samples(8, 9), 4))
        .num_epochs(2)
        .metrics((LossMetric::new(),))
        .with_application_logger(None)
        .with_training_strategy(ExecutionStrategy::MultiDevice(devices, MultiDeviceOptim::OptimMainDevice).into())
        .launch(learner);
    assert!(result.error.is_none(), "{:?}", result.error);
    let stats = result.model.stats();
    assert_eq!((stats.steps, stats.skipped), (16, 0), "two workers, 4 steps, 2 epochs");
    result.model.into_inner()
}

/// The same steps on one device: each step's batch is device 0's 4 samples followed by device
/// 1's (Burn gives device `d` the `d`-th contiguous half of the dataset), in chunks of m = 4.
fn chunked(initial: &Net, sam: &SamConfig, ascent: AscentSync) -> Net {
    let device = Device::flex().autodiff();
    let data = samples(32, 0);
    let (first, second) = data.split_at(16);
    let mut msam = MSharpness::new(sam, 4, ascent).unwrap();
    let mut optim = burn_sgd();
    let mut model = initial.deep_copy();
    for _ in 0..2 {
        for (a, b) in first.chunks(4).zip(second.chunks(4)) {
            let batch: Vec<Sample> = a.iter().chain(b).cloned().collect();
            let item = make_item(&batch, &device);
            let step = msam
                .descent(LR, &model, batch.len(), flatmin_loss(&item))
                .expect("finite step");
            assert_eq!(step.reports.len(), 2);
            model = step.apply(&mut optim, LR, model);
        }
    }
    model
}

#[test]
fn two_workers_compute_per_device_m_sharpness() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    for preset in ["sam", "gsam", "wsam"] {
        let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 5e-4)).unwrap();
        let parallel = multi_device(&initial, sam.clone(), AscentSync::PerDevice, &format!("multi-{preset}"));
        let one_device = chunked(&initial, &sam, AscentSync::PerDevice);
        let (a, b) = (trainable(&parallel), trainable(&one_device));
        assert!(a == b, "{preset}: max |Δ| = {}", max_abs_diff(&a, &b));
        // Per-device ascent is not SAM on the whole batch of 8.
        let whole = chunked(&initial, &sam, AscentSync::Synchronized);
        assert!(
            trainable(&whole) != a,
            "{preset}: m-sharpness should differ from the synchronized ascent"
        );
    }
}

#[test]
fn two_workers_share_the_ascent_when_synchronized() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    let sam = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 5e-4)).unwrap();
    let parallel = multi_device(&initial, sam.clone(), AscentSync::Synchronized, "multi-sync");
    let one_device = chunked(&initial, &sam, AscentSync::Synchronized);
    let (a, b) = (trainable(&parallel), trainable(&one_device));
    assert!(a == b, "max |Δ| = {}", max_abs_diff(&a, &b));
    let grouped = multi_device(&initial, sam.clone(), AscentSync::Groups(2), "multi-groups");
    assert!(
        trainable(&grouped) == a,
        "groups of 2 on 2 devices is the synchronized ascent"
    );
}

/// m-sharpness by hand: each chunk's own SAM step (two-step API on that chunk alone), the
/// second-pass gradients averaged.
#[test]
fn chunks_are_independent_sam_steps_averaged() {
    let device = Device::flex().autodiff();
    let model = Net::new(&device);
    let data = samples(12, 3);
    let item = make_item(&data, &device);
    let sam = SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0)).unwrap();
    let mut msam = MSharpness::new(&sam, 4, AscentSync::PerDevice).unwrap();
    let step = msam.descent(LR, &model, 12, flatmin_loss(&item)).unwrap();
    assert_eq!(step.reports.len(), 3);

    let layout = Layout::of(&model);
    let mut sum: Option<Vec<Vec<f32>>> = None;
    for chunk in data.chunks(4) {
        let part = make_item(chunk, &device);
        let mut optim = sam.init().unwrap();
        let loss = |m: &Net| flatmin::per_sample_cross_entropy(m.forward(part.x.clone()), part.y.clone()).mean();
        let update = update_from_gradients(&optim, LR, &model, loss);
        let d = optim.descent(update).unwrap();
        let flat: Vec<Vec<f32>> = (0..layout.len())
            .map(|i| d.gradient.get(i).unwrap().clone().into_data().iter::<f32>().collect())
            .collect();
        sum = Some(match sum {
            None => flat.iter().map(|t| t.iter().map(|v| v / 3.0).collect()).collect(),
            Some(s) => s
                .iter()
                .zip(&flat)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + y / 3.0).collect())
                .collect(),
        });
    }
    let by_hand = sum.unwrap();
    let entries = &layout.entries;
    for (i, entry) in entries.iter().enumerate() {
        let got = match entry.shape.len() {
            1 => step
                .grads
                .get::<1>(entry.id)
                .unwrap()
                .into_data()
                .iter::<f32>()
                .collect::<Vec<_>>(),
            _ => step
                .grads
                .get::<2>(entry.id)
                .unwrap()
                .into_data()
                .iter::<f32>()
                .collect::<Vec<_>>(),
        };
        for (g, h) in got.iter().zip(&by_hand[i]) {
            assert!((g - h).abs() < 1e-6, "{}: {g} vs {h}", entry.path);
        }
    }
}

#[test]
fn one_chunk_is_flatmins_step() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    for preset in ["sam", "esam", "wsam", "gsam"] {
        let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.0, 0.0)).unwrap();
        let mut msam = MSharpness::new(&sam, 64, AscentSync::PerDevice).unwrap();
        let mut own = sam.init().unwrap();
        let mut optim: ModuleOptimizer = SgdConfig::new().init();
        let (mut a, mut b) = (initial.deep_copy(), initial.deep_copy());
        for chunk in samples(32, 1).chunks(8) {
            let item = make_item(chunk, &device);
            let step = msam.descent(LR, &a, 8, flatmin_loss(&item)).unwrap();
            a = step.apply(&mut optim, LR, a);
            let (next, report) = own.step(LR, b, flatmin_loss(&item));
            report.unwrap();
            b = next;
        }
        let (wa, wb) = (weights(&a), weights(&b));
        assert!(wa == wb, "{preset}: max |Δ| = {}", max_abs_diff(&wa, &wb));
    }
}

/// Burn 0.22.1 marks a parameter distributed only on its CubeCL backends (CUDA, wgpu, …) and
/// remote devices: on the CPU backend the mark itself is refused. This is why the DDP path is
/// tested here only in simulation (the crate's unit tests); the mark is checked on wgpu
/// (`wgpu.rs`, `--features wgpu`) and the all-reduce on two CUDA GPUs (`gpu.rs`,
/// `scripts/gpu-check`).
#[test]
fn the_cpu_backend_refuses_the_distributed_mark() {
    let device = Device::flex().autodiff();
    let model = Net::new(&device);
    let marked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.clone().map(&mut ModuleSharder)));
    assert!(
        marked.is_err(),
        "flex now accepts the distributed mark: run the checks of tests/suite/gpu.rs on the CPU too"
    );
}

/// Without the mark, the local view is the model itself: same ids, paths, shapes, tracking.
#[test]
fn local_view_of_an_unmarked_model_is_the_model() {
    let device = Device::flex().autodiff();
    let model = Net::new(&device);
    let flags = distributed_flags(&model);
    assert_eq!(
        flags.len(),
        Layout::of(&model).len(),
        "running statistics are not parameters"
    );
    assert!(flags.values().all(|&d| !d));
    assert!(!is_distributed(&model));
    let local = local_view(&model);
    assert_eq!(Layout::of(&local), Layout::of(&model));
    assert_eq!(weights(&local), weights(&model));
    let item = make_item(&samples(8, 0), &device);
    let loss = flatmin::per_sample_cross_entropy(local.forward(item.x.clone()), item.y.clone()).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &local);
    assert_eq!(
        grads.len(),
        Layout::of(&model).len(),
        "every parameter still tracks its gradient"
    );
}
