//! Mixed precision in the Learner: the passes run on a bf16 or f16 copy of the f32 model, which
//! stays the master weights that Burn's optimizer updates. Against flatmin's own loop on a model
//! stored in bf16 (master weights kept by flatmin), the same steps give the same bits; an f16
//! overflow skips the step and halves the loss scale; and the settings that cannot work are
//! refused by name.

use crate::common::*;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::tensor::{DType, Device};
use burn::train::{Learner, TrainStep};
use flatmin::{Precision, SamConfig, bridge};
use flatmin_learner::{SamLearner, SamLearnerConfig};

/// A net whose f32 weights are bf16 values: flatmin's own loop on a bf16 model starts its master
/// weights from the bf16 model, the Learner from its f32 model; so both start alike.
fn bf16_exact(device: &Device) -> Net {
    bridge::cast_floats(bridge::cast_floats(Net::new(device), DType::BF16), DType::F32)
}

/// `steps` steps of the adapter's `step` and `optimize` called directly (Burn's SGD on the f32
/// model, passes in `dtype`) and of `Sam::step` on a copy of `initial` stored in `dtype`
/// (flatmin's SGD on its own master weights): the Learner's model (every float, BatchNorm's
/// statistics included) and flatmin's master weights and model, cast to f32, as bits.
fn direct_mixed_steps(initial: &Net, sam: &SamConfig, dtype: DType, device: &Device) -> DirectMixed {
    let config = SamLearnerConfig::new(sam.clone()).with_mixed_precision(dtype);
    let mut wrapped = SamLearner::new(initial.deep_copy(), config).unwrap();
    let mut optim = burn_sgd();
    let mut own = config_of(&wrapped).init().unwrap();
    let mut model = bridge::cast_floats(initial.deep_copy(), dtype);
    for chunk in samples(24, 4).chunks(BATCH) {
        let item = make_item(chunk, device);
        let out = TrainStep::step(&wrapped, item.clone());
        wrapped = TrainStep::optimize(wrapped, &mut optim, LR.into(), out.grads);
        let (next, report) = own.step(LR, model, flatmin_loss(&item));
        report.unwrap();
        model = next;
    }
    let master = master_bits(&own);
    let stats = wrapped.stats();
    let own_model = weights(&bridge::cast_floats(model, DType::F32));
    (weights(&wrapped.model), own_model, master, stats)
}

/// What [`direct_mixed_steps`] returns: the Learner's model, flatmin's model and master weights
/// (all as f32 bits, one list per tensor) and the adapter's statistics.
type DirectMixed = (
    Vec<Vec<u32>>,
    Vec<Vec<u32>>,
    Vec<Vec<u32>>,
    flatmin_learner::SamLearnerStats,
);

fn config_of(wrapped: &SamLearner<Net>) -> SamConfig {
    wrapped.config().sam.clone()
}

/// The Learner's f32 model after bf16 passes is flatmin's own master copy, bit for bit: the
/// perturbation from the f32 weights, the gradients read back in f32, Burn's SGD on the f32
/// model as flatmin's SGD on its master weights. Its BatchNorm statistics are those the bf16
/// passes left (flatmin's bf16 model's, in f32), and the model is in f32 still.
#[test]
fn bf16_passes_give_the_master_weights_of_flatmins_own_loop() {
    let device = Device::flex().autodiff();
    let initial = bf16_exact(&device);
    for preset in ["sam", "esam", "wsam", "gsam", "fsam"] {
        let (learner, own_model, master, stats) = direct_mixed_steps(&initial, &config(preset), DType::BF16, &device);
        assert_eq!((stats.steps, stats.skipped), (3, 0), "{preset}: {:?}", stats.last_skip);
        let layout = flatmin::Layout::of(&initial);
        // `weights` lists every float in visiting order: l1 (2), bn (γ, β, then the running
        // mean and variance), l2 (2); the master weights are the 6 trainable ones in order.
        let trainable_of = |all: &[Vec<u32>]| -> Vec<Vec<u32>> {
            let mut t = all.to_vec();
            t.drain(4..6);
            t
        };
        assert_eq!(layout.len(), master.len());
        let a = trainable_of(&learner);
        assert!(a == master, "{preset}: max |Δ| = {}", max_abs_diff(&a, &master));
        let (stats_a, stats_b) = (&learner[4..6], &own_model[4..6]);
        assert!(
            stats_a == stats_b,
            "{preset}: BatchNorm statistics, max |Δ| = {}",
            max_abs_diff(stats_a, stats_b)
        );
        assert_ne!(
            learner[4],
            weights(&initial)[4],
            "{preset}: the passes moved the running mean"
        );
    }
}

/// The same through Burn's Learner (two epochs, validation in f32): every step taken, the model
/// still in f32, and its weights those of flatmin's own loop on a bf16 model.
#[test]
fn the_learner_trains_with_bf16_passes() {
    let device = Device::flex().autodiff();
    let initial = bf16_exact(&device);
    let sam = config("sam").with_precision(Precision::mixed());
    let build = || {
        let config = SamLearnerConfig::new(sam.clone()).with_mixed_precision(DType::BF16);
        Learner::new(
            SamLearner::new(initial.deep_copy(), config).unwrap(),
            burn_sgd(),
            ConstantLr::new(LR),
        )
    };
    let (trained, stats) = with_learner(build, 2, "mixed-bf16");
    assert_eq!((stats.steps, stats.skipped), (8, 0), "{:?}", stats.last_skip);
    let layout = flatmin::Layout::of(&trained);
    assert_eq!(bridge::float_dtype(&trained, &layout), Some(DType::F32));
    let mut own = sam.init().unwrap();
    own_loop(
        &mut own,
        bridge::cast_floats(initial.deep_copy(), DType::BF16),
        2,
        &device,
        || LR,
    );
    let master = master_bits(&own);
    let a = trainable(&trained);
    assert!(a == master, "max |Δ| = {}", max_abs_diff(&a, &master));
}

/// f16 passes with a loss scale of 1e12: the first steps overflow, are skipped (the Learner's
/// optimizer gets no gradient, the model is untouched) and halve the scale, which the record
/// (and so the checkpoint) carries; once it fits, steps are taken and the model moves, in f32.
#[test]
fn an_f16_overflow_skips_the_step_and_halves_the_scale() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    let sam = config("sam").with_precision(Precision::Mixed {
        init_scale: 1e12,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2000,
    });
    let config = SamLearnerConfig::new(sam).with_mixed_precision(DType::F16);
    let mut wrapped = SamLearner::new(initial.deep_copy(), config).unwrap();
    let mut optim = burn_sgd();
    let before = trainable(&wrapped.model);
    let scale = |w: &SamLearner<Net>| f64::from_bits(w.sam_record(0).unwrap().scalars["loss_scale/bits"]);
    let item = make_item(&samples(8, 1), &device);
    let out = TrainStep::step(&wrapped, item.clone());
    assert!(
        out.grads.is_empty(),
        "an overflowed step hands the optimizer no gradient"
    );
    wrapped = TrainStep::optimize(wrapped, &mut optim, LR.into(), out.grads);
    let stats = wrapped.stats();
    assert_eq!((stats.steps, stats.skipped), (0, 1));
    assert!(
        stats.last_skip.as_deref().unwrap().contains("non-finite gradient"),
        "{stats:?}"
    );
    assert_eq!(scale(&wrapped), 5e11);
    assert_eq!(
        trainable(&wrapped.model),
        before,
        "a skipped step leaves the model untouched"
    );
    let mut skipped = 1;
    while wrapped.stats().steps == 0 {
        let out = TrainStep::step(&wrapped, item.clone());
        wrapped = TrainStep::optimize(wrapped, &mut optim, LR.into(), out.grads);
        skipped = wrapped.stats().skipped;
        assert!(skipped < 40, "the scale never came down");
    }
    assert_eq!(scale(&wrapped), 1e12 / 2f64.powi(skipped as i32));
    assert_ne!(trainable(&wrapped.model), before);
    let layout = flatmin::Layout::of(&wrapped.model);
    assert_eq!(bridge::float_dtype(&wrapped.model, &layout), Some(DType::F32));
}

/// The settings that cannot work are refused by name: mixed precision without a half pass type
/// (Burn's optimizer would update the model in its own type), a pass type that is not half, a
/// pass type without mixed precision, a model stored in half precision (it is the master
/// weights), and mixed precision in `MSharpness`.
#[test]
fn the_precision_settings_that_cannot_work_are_refused_by_name() {
    let device = Device::flex().autodiff();
    let mixed = config("sam").with_precision(Precision::mixed());
    let refused = |model: Net, config: SamLearnerConfig| match SamLearner::new(model, config) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    let e = refused(Net::new(&device), SamLearnerConfig::new(mixed.clone()));
    assert_eq!(e.field, "pass_dtype");
    assert!(e.expected.contains("with_mixed_precision"), "{e}");
    let e = refused(
        Net::new(&device),
        SamLearnerConfig::new(mixed.clone()).with_mixed_precision(DType::F32),
    );
    assert_eq!((e.field, e.value.as_str()), ("pass_dtype", "F32"));
    let mut native_with_dtype = SamLearnerConfig::new(config("sam"));
    native_with_dtype.pass_dtype = Some(DType::BF16);
    let e = refused(Net::new(&device), native_with_dtype);
    assert_eq!(e.field, "precision");
    let half = bridge::cast_floats(Net::new(&device), DType::BF16);
    let e = refused(
        half,
        SamLearnerConfig::new(mixed.clone()).with_mixed_precision(DType::BF16),
    );
    assert_eq!((e.field, e.value.as_str()), ("model", "BF16"));
    assert!(e.expected.contains("master weights"), "{e}");
    let Err(e) = flatmin_learner::MSharpness::new(&mixed, 4, flatmin_learner::AscentSync::PerDevice) else {
        panic!("mixed precision accepted by MSharpness");
    };
    assert_eq!(e.field, "precision");
}

/// Three epochs of f16 passes straight, against one epoch, Burn's checkpoint and a resumed
/// Learner: the same f32 weights and the same flatmin state, the loss scale and its count of
/// good steps included (the scale grows every 3 steps here, so it changes across the resume).
/// The checkpoint has no slots for master weights: the model is them.
#[test]
fn a_resumed_learner_keeps_the_loss_scale() {
    let device = Device::flex().autodiff();
    let initial = Net::fixed(&device);
    let sam = config("sam").with_precision(Precision::Mixed {
        init_scale: 1024.0,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 3,
    });
    let run = |dir: &std::path::Path, epochs, resume| checkpointed_run(&initial, &sam, dir, epochs, resume);
    let (whole, whole_state, _) = run(&scratch("mixed-resume-whole"), 3, None);
    let dir = scratch("mixed-resume-parts");
    run(&dir, 1, None);
    let (resumed, resumed_state, stats) = run(&dir, 3, Some(1));
    assert_eq!(stats.steps, 8, "the resumed Learner ran epochs 2 and 3");
    let scalar = |name: &str| whole_state.1.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    // 12 steps, growth every 3: 1024 · 2⁴.
    assert_eq!(scalar("loss_scale/bits").map(f64::from_bits), Some(16384.0));
    assert_eq!(scalar("loss_scale/good_steps"), Some(0));
    assert!(
        !whole_state.0.iter().any(|(k, _)| k.starts_with("master/")),
        "no master weights in the state"
    );
    assert!(
        whole_state == resumed_state,
        "{:?}\nvs\n{:?}",
        whole_state.1,
        resumed_state.1
    );
    assert!(whole == resumed, "max |Δ| = {}", max_abs_diff(&whole, &resumed));
    let wrapped = SamLearner::new(
        initial.deep_copy(),
        SamLearnerConfig::new(sam.clone()).with_mixed_precision(DType::F16),
    )
    .unwrap();
    let paths: Vec<String> = flatmin::Layout::of(&wrapped)
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(!paths.iter().any(|p| p.contains("master")), "{paths:?}");
}
