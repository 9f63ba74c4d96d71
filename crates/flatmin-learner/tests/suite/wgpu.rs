//! The adapter on Burn's wgpu backend (built only with the `wgpu` feature; on a machine without
//! a GPU it runs on Mesa's software Vulkan driver, lavapipe), in float32: Burn's Learner with
//! `SamLearner` trains every preset on the wgpu device to the weights of flatmin's own loop
//! there, and the adapter's direct steps keep BatchNorm's statistics to the first pass.

use crate::common::*;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, DeviceKind};
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining, TrainStep};
use flatmin::SamConfig;
use flatmin_learner::{SamLearner, SamLearnerConfig};

/// Whether the wgpu tests run here: a machine without an adapter skips them, unless
/// `FLATMIN_REQUIRE_WGPU` is set (CI), where that fails.
fn wgpu_here() -> bool {
    let here = flatmin::bridge::wgpu_adapter_available();
    assert!(
        here || std::env::var_os("FLATMIN_REQUIRE_WGPU").is_none(),
        "FLATMIN_REQUIRE_WGPU is set, but wgpu finds no adapter"
    );
    here
}

const LR: f64 = 0.1;
const BATCH: usize = 8;

fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice).autodiff()
}

fn burn_sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}

fn config(preset: &str) -> SamConfig {
    SamConfig::preset(preset, SamConfig::sgd_base(0.9, 5e-4)).unwrap()
}

/// The mean loss of `model` on the training samples (batch statistics, on a copy).
fn training_loss(model: &Net, device: &Device) -> f64 {
    let item = make_item(&samples(32, 0), device);
    let copy = model.deep_copy();
    let loss = flatmin::per_sample_cross_entropy(copy.forward(item.x), item.y).mean();
    loss.into_data().iter::<f64>().next().unwrap()
}

/// Two epochs (8 steps) of the Learner on the wgpu device against flatmin's own loop there, for
/// every preset: the same trainable weights, no step skipped, and the loss falls.
#[test]
fn the_learner_trains_every_preset_on_wgpu_as_flatmins_own_loop() {
    if !wgpu_here() {
        return;
    }
    let device = wgpu();
    let initial = Net::new(&device);
    let before = training_loss(&initial, &device);
    // bSAM and MSAM need flatmin's own base optimizer, which the adapter refuses
    // (`learner::the_adapter_refuses_bsam`, `learner::the_adapter_refuses_msam`).
    for preset in flatmin::PRESETS.into_iter().filter(|p| !config(p).needs_own_update()) {
        // 2 epochs of 4 batches of 8.
        let sam = config(preset).for_run(8, 32);
        let dir = scratch(&format!("wgpu-{preset}"));
        let model = SamLearner::new(initial.deep_copy(), SamLearnerConfig::new(sam.clone())).unwrap();
        let result = SupervisedTraining::new(&dir, loader(samples(32, 0), BATCH), loader(samples(16, 9), BATCH))
            .num_epochs(2)
            .metrics((LossMetric::new(),))
            .with_application_logger(None)
            .launch(Learner::new(model, burn_sgd(), ConstantLr::new(LR)));
        assert!(result.error.is_none(), "{preset}: {:?}", result.error);
        let stats = result.model.stats();
        assert_eq!((stats.steps, stats.skipped), (8, 0), "{preset}");
        let trained = result.model.into_inner();

        let mut optim = sam.init().unwrap();
        let mut own = initial.deep_copy();
        for _ in 0..2 {
            for chunk in samples(32, 0).chunks(BATCH) {
                let item = make_item(chunk, &device);
                let (next, report) = optim.step(LR, own, flatmin_loss(&item));
                report.unwrap_or_else(|e| panic!("{preset}: {e}"));
                own = next;
            }
        }
        let (a, b) = (trainable(&trained), trainable(&own));
        let diff = max_abs_diff(&a, &b);
        let after = training_loss(&trained, &device);
        println!("{preset:<12} Learner vs own loop max |Δ| = {diff:e}; loss {before:.4} -> {after:.4}");
        assert!(a == b, "{preset}: max |Δ| = {diff}");
        assert!(after < before, "{preset}: loss {before} -> {after}");
    }
}

/// The adapter's `step` and `optimize` called directly on the wgpu device, three steps: every
/// float equals `Sam::step`'s, BatchNorm's running statistics included.
#[test]
fn the_adapter_keeps_batchnorm_statistics_to_the_first_pass_on_wgpu() {
    if !wgpu_here() {
        return;
    }
    let device = wgpu();
    let initial = Net::new(&device);
    for preset in ["sam", "esam", "wsam"] {
        let sam = config(preset);
        let mut wrapped = SamLearner::new(initial.deep_copy(), SamLearnerConfig::new(sam.clone())).unwrap();
        let mut optim = burn_sgd();
        let mut own = sam.init().unwrap();
        let mut model = initial.deep_copy();
        for chunk in samples(24, 4).chunks(BATCH) {
            let item = make_item(chunk, &device);
            let out = TrainStep::step(&wrapped, item.clone());
            wrapped = TrainStep::optimize(wrapped, &mut optim, LR.into(), out.grads);
            let (next, report) = own.step(LR, model, flatmin_loss(&item));
            report.unwrap();
            model = next;
        }
        let (a, b) = (weights(&wrapped.model), weights(&model));
        assert!(a == b, "{preset}: max |Δ| = {}", max_abs_diff(&a, &b));
    }
}

/// Burn marks parameters distributed on its CubeCL backends — wgpu among them, unlike the CPU
/// backend (`parallel::the_cpu_backend_refuses_the_distributed_mark`) — so the first of the GPU
/// checks runs here: a model marked by Burn's `ModuleSharder` (what DDP does) keeps the mark on
/// every parameter of flatmin's perturbed model, for every preset's perturbation, and
/// `local_view` (where the adapter runs the first pass) clears it. Burn's all-reduce itself
/// exists only on CUDA (`scripts/gpu-check`).
#[test]
fn the_distributed_mark_survives_every_perturbation_and_local_view_clears_it() {
    if !wgpu_here() {
        return;
    }
    use burn::module::Module;
    use burn::train::ModuleSharder;
    use flatmin_learner::{distributed_flags, is_distributed, local_view};

    let device = wgpu();
    let marked = Net::new(&device).map(&mut ModuleSharder);
    let flags = distributed_flags(&marked);
    assert!(
        !flags.is_empty() && flags.values().all(|&d| d),
        "ModuleSharder marks every parameter"
    );
    let item = make_item(&samples(8, 0), &device);
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

/// The SAM state in Burn's checkpoints on wgpu: 3 epochs
/// straight against 1 epoch, the checkpoint and a fresh Learner resumed for epochs 2 and 3 —
/// the same trainable weights and the same flatmin state, bit for bit. F-SAM's average (float
/// slots) and AE-SAM's statistics (`u64` scalars in integer slots).
#[test]
fn a_resumed_learner_ends_where_an_uninterrupted_one_does_on_wgpu() {
    if !wgpu_here() {
        return;
    }
    let device = wgpu();
    let initial = Net::new(&device);
    for preset in ["fsam", "ae-sam"] {
        let sam = config(preset).for_run(16, 32);
        let run = |dir: &std::path::Path, epochs: usize, resume: Option<usize>| {
            let model = SamLearner::new(initial.deep_copy(), SamLearnerConfig::new(sam.clone())).unwrap();
            let mut training =
                SupervisedTraining::new(dir, loader(samples(32, 0), BATCH), loader(samples(8, 9), BATCH))
                    .num_epochs(epochs)
                    .metrics((LossMetric::new(),))
                    .with_default_checkpointers()
                    .with_application_logger(None);
            if let Some(epoch) = resume {
                training = training.checkpoint(epoch);
            }
            let result = training.launch(Learner::new(model, burn_sgd(), ConstantLr::new(LR)));
            assert!(result.error.is_none(), "{preset}: {:?}", result.error);
            let record = result.model.sam_record(0).expect("rank 0");
            let tensors: Vec<(String, Vec<u32>)> = record
                .tensors
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        t.clone().into_data().iter::<f32>().map(f32::to_bits).collect(),
                    )
                })
                .collect();
            (trainable(&result.model.into_inner()), tensors, record.scalars)
        };
        let whole = run(&scratch(&format!("wgpu-resume-whole-{preset}")), 3, None);
        let dir = scratch(&format!("wgpu-resume-parts-{preset}"));
        run(&dir, 1, None);
        let resumed = run(&dir, 3, Some(1));
        assert_eq!(whole.2, resumed.2, "{preset}: the scalars");
        assert!(whole.1 == resumed.1, "{preset}: the state's tensors");
        assert!(
            whole.0 == resumed.0,
            "{preset}: max |Δ| = {}",
            max_abs_diff(&whole.0, &resumed.0)
        );
    }
}
