//! The adapter on Burn's wgpu backend (built only with the `wgpu` feature; on a machine without
//! a GPU it runs on Mesa's software Vulkan driver, lavapipe), in float32: Burn's Learner with
//! `SamLearner` trains every preset on the wgpu device to the weights of flatmin's own loop
//! there, and the adapter's direct steps keep BatchNorm's statistics to the first pass.

use crate::common::*;
use burn::tensor::{Device, DeviceKind};

fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice).autodiff()
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
        let build = || learner(&initial, sam.clone(), burn_sgd());
        let (trained, stats) = with_learner(build, 2, &format!("wgpu-{preset}"));
        assert_eq!((stats.steps, stats.skipped), (8, 0), "{preset}");
        let own = with_flatmin(&initial, &sam, 2, &device, || LR);
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
        let (a, b) = direct_steps(&initial, &config(preset), &device);
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
    assert_the_distributed_mark_survives(&wgpu());
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
        let run = |dir: &std::path::Path, epochs, resume| checkpointed_run(&initial, &sam, dir, epochs, resume);
        let whole = run(&scratch(&format!("wgpu-resume-whole-{preset}")), 3, None);
        let dir = scratch(&format!("wgpu-resume-parts-{preset}"));
        run(&dir, 1, None);
        let resumed = run(&dir, 3, Some(1));
        assert_eq!(whole.1.1, resumed.1.1, "{preset}: the scalars");
        assert!(whole.1.0 == resumed.1.0, "{preset}: the state's tensors");
        assert!(
            whole.0 == resumed.0,
            "{preset}: max |Δ| = {}",
            max_abs_diff(&whole.0, &resumed.0)
        );
    }
}

/// Mixed precision on the wgpu device with the half type its adapter offers (lavapipe: f16,
/// not bf16): two epochs of the Learner with half passes on the f32 model take every step, keep
/// the model in f32 and lower the loss, and give the master weights of flatmin's own loop on a
/// model stored in that type.
#[test]
fn the_learner_trains_with_half_passes_on_wgpu() {
    use burn::tensor::DType;
    use flatmin::bridge;
    if !wgpu_here() {
        return;
    }
    let device = wgpu();
    let Some(dtype) = [DType::BF16, DType::F16]
        .into_iter()
        .find(|d| device.supports_dtype(*d))
    else {
        println!("the wgpu adapter offers no half type: skipped");
        return;
    };
    // f32 weights that are values of the half type, so that both loops start alike.
    let initial = bridge::cast_floats(bridge::cast_floats(Net::new(&device), dtype), DType::F32);
    let before = training_loss(&initial, &device);
    // An initial scale of 1024, not PyTorch's 65536: f16 gradients of the scaled loss overflow
    // at 65536 on this net, and skipped steps are the f16 test's matter (`mixed.rs`).
    let sam = config("sam").with_precision(flatmin::Precision::Mixed {
        init_scale: 1024.0,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2000,
    });
    let build = || {
        let config = flatmin_learner::SamLearnerConfig::new(sam.clone()).with_mixed_precision(dtype);
        let model = flatmin_learner::SamLearner::new(initial.deep_copy(), config).unwrap();
        burn::train::Learner::new(
            model,
            burn_sgd(),
            burn::optim::lr_scheduler::constant::ConstantLr::new(LR),
        )
    };
    let (trained, stats) = with_learner(build, 2, &format!("wgpu-mixed-{dtype:?}"));
    assert_eq!((stats.steps, stats.skipped), (8, 0), "{:?}", stats.last_skip);
    let layout = flatmin::Layout::of(&trained);
    assert_eq!(bridge::float_dtype(&trained, &layout), Some(DType::F32));
    let after = training_loss(&trained, &device);
    let mut own = sam.init().unwrap();
    own_loop(
        &mut own,
        bridge::cast_floats(initial.deep_copy(), dtype),
        2,
        &device,
        || LR,
    );
    let master = master_bits(&own);
    let a = trainable(&trained);
    let diff = max_abs_diff(&a, &master);
    println!("{dtype:?} passes on wgpu: Learner vs own loop max |Δ| = {diff:e}; loss {before:.4} -> {after:.4}");
    assert!(a == master, "max |Δ| = {diff}");
    assert!(after < before, "loss {before} -> {after}");
}
