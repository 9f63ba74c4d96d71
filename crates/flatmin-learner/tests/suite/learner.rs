//! Burn's Learner with `SamLearner` against flatmin's own loop (`Sam::step`): same initial
//! weights, same batches in the same order, same hyperparameters.
//!
//! The Learner's base optimizer is Burn's SGD (momentum 0.9 with dampening 0, weight decay
//! 5e-4), flatmin's loop uses flatmin's PyTorch-semantics SGD with the same settings. In float32
//! both do the same operations in an order that gives the same bits (Burn keeps its momentum
//! and penalty as f32, flatmin's f64 coefficients are rounded to f32 when they meet an f32
//! tensor; `a + b` and `b + a` round alike), so the weights are compared bit for bit (the
//! trainable ones after a Learner run; BatchNorm statistics in the direct-step test below).

use crate::common::*;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::tensor::Device;
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining};
use flatmin_learner::{SamLearner, SamLearnerConfig};

/// The presets the adapter accepts: all but those that need flatmin's own base optimizer.
fn accepted() -> Vec<&'static str> {
    let accepted: Vec<&str> = flatmin::PRESETS
        .into_iter()
        .filter(|p| !config(p).needs_own_update())
        .collect();
    assert_eq!(accepted.len(), flatmin::PRESETS.len() - 2, "all but bsam and msam");
    assert!(!accepted.contains(&"bsam") && !accepted.contains(&"msam"));
    accepted
}

#[test]
fn learner_gives_the_weights_of_flatmins_own_loop_for_every_preset() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    for preset in accepted() {
        // 2 epochs of 4 batches of 8.
        let sam = config(preset).for_run(8, 32);
        let (trained, stats) = with_learner(|| learner(&initial, sam.clone(), burn_sgd()), 2, preset);
        let own = with_flatmin(&initial, &sam, 2, &device, || LR);
        assert_eq!(stats.steps, 8, "{preset}");
        assert_eq!(stats.skipped, 0, "{preset}");
        let (a, b) = (trainable(&trained), trainable(&own));
        assert!(a == b, "{preset}: max |Δ| = {}", max_abs_diff(&a, &b));
    }
}

/// A method that needs flatmin's own base optimizer: the adapter, which hands the gradient to
/// Burn's optimizer, refuses it by name rather than train it wrongly, saying why; so does
/// `MSharpness`, whose caller applies the gradient too.
fn refused(preset: &str, why: &str) {
    let device = Device::flex().autodiff();
    let sam = config(preset).for_run(8, 32);
    let Err(e) = SamLearner::new(Net::new(&device), SamLearnerConfig::new(sam.clone())) else {
        panic!("{preset} accepted by the adapter");
    };
    assert_eq!((e.field, e.value.as_str()), ("optimizer", preset));
    assert!(e.expected.contains(why), "{e}");
    let Err(e) = flatmin_learner::MSharpness::new(&sam, 4, flatmin_learner::AscentSync::PerDevice) else {
        panic!("{preset} accepted by MSharpness");
    };
    assert_eq!(e.value, preset);
}

/// bSAM is its own base optimizer.
#[test]
fn the_adapter_refuses_bsam() {
    refused("bsam", "bSAM is its own base optimizer");
}

/// MSAM steps along the momentum of flatmin's own base optimizer, which the Learner's optimizer
/// does not share.
#[test]
fn the_adapter_refuses_msam() {
    refused("msam", "momentum of flatmin's own base optimizer");
}

#[test]
fn decoupled_wsam_follows_the_learners_learning_rate_schedule() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    let sam = config("wsam");
    let schedule = || LinearLrSchedulerConfig::new(0.2, 0.02, 8).init().unwrap();
    let build = || {
        let model = SamLearner::new(initial.deep_copy(), SamLearnerConfig::new(sam.clone())).unwrap();
        Learner::new(model, burn_sgd(), schedule())
    };
    let (trained, _) = with_learner(build, 2, "wsam-schedule");
    let mut own_schedule = schedule();
    let own = with_flatmin(&initial, &sam, 2, &device, || own_schedule.step().base());
    let (a, b) = (trainable(&trained), trainable(&own));
    assert!(a == b, "max |Δ| = {}", max_abs_diff(&a, &b));
}

/// 3 epochs of 4 steps straight, against 1 epoch, Burn's checkpoint, and a fresh Learner resumed
/// from it for epochs 2 and 3: the same trainable weights and the same flatmin state (every
/// tensor and scalar, the step count included), bit for bit. For the presets with a schedule,
/// the resumed part has steps of both kinds (on a net with fixed weights: AE-SAM's decisions
/// depend on them).
fn resumes(preset: &str) {
    let device = Device::flex().autodiff();
    let initial = Net::fixed(&device);
    // AE-SAM's threshold falls over 16 steps: 3 of the 8 resumed steps run the second pass.
    let sam = config(preset).for_run(16, 32);
    let run = |dir: &std::path::Path, epochs, resume| checkpointed_run(&initial, &sam, dir, epochs, resume);
    let (whole, whole_state, _) = run(&scratch(&format!("resume-whole-{preset}")), 3, None);
    let dir = scratch(&format!("resume-parts-{preset}"));
    run(&dir, 1, None);
    assert!(dir.join("checkpoint").join("model-1.bpk").exists());
    assert!(dir.join("checkpoint").join("optim-1.bpk").exists());
    let (resumed, resumed_state, stats) = run(&dir, 3, Some(1));
    assert_eq!(stats.steps, 8, "{preset}: the resumed Learner ran epochs 2 and 3");
    if config(preset).is_scheduled() {
        assert!(
            0 < stats.second_passes && stats.second_passes < stats.steps,
            "{preset}: the resumed part should have steps with and without the second pass ({} of {})",
            stats.second_passes,
            stats.steps
        );
    }
    assert!(
        whole_state == resumed_state,
        "{preset}: the flatmin state differs after the resume:\n{:?}\nvs\n{:?}",
        whole_state.1,
        resumed_state.1
    );
    assert!(
        whole == resumed,
        "{preset}: max |Δ| = {}",
        max_abs_diff(&whole, &resumed)
    );
}

/// One test per preset the adapter accepts (the module is the test's name, the function the
/// preset's).
macro_rules! resume_tests {
    ($($name:ident => $preset:literal),+ $(,)?) => {
        mod a_resumed_learner_ends_where_an_uninterrupted_one_does {
            /// The presets these tests cover.
            pub(super) const PRESETS: &[&str] = &[$($preset),+];

            $(
                #[test]
                fn $name() {
                    super::resumes($preset);
                }
            )+
        }
    };
}

resume_tests! {
    sgd => "sgd",
    sam => "sam",
    asam => "asam",
    esam => "esam",
    fsam => "fsam",
    wsam => "wsam",
    gsam => "gsam",
    fisher_sam => "fisher-sam",
    looksam => "looksam",
    sam_every_5 => "sam-every-5",
    rst => "rst",
    ae_sam => "ae-sam",
    usam => "usam",
    unified_sam => "unified-sam",
}

#[test]
fn every_accepted_preset_has_a_resume_test() {
    assert_eq!(
        a_resumed_learner_ends_where_an_uninterrupted_one_does::PRESETS,
        accepted().as_slice()
    );
}

/// The SAM state is in the model record under `sam_state`, in slots that a fresh learner has
/// too (same paths, same shapes), and it comes back from the record bit for bit; the slots are
/// not counted as parameters.
#[test]
fn the_model_record_carries_the_sam_state_in_fixed_slots() {
    use burn::module::Module;
    use burn::train::TrainStep;
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    for preset in ["fsam", "looksam", "esam", "ae-sam"] {
        let sam = config(preset).for_run(12, 32);
        let fresh = || SamLearner::new(initial.deep_copy(), SamLearnerConfig::new(sam.clone())).unwrap();
        let layout = |m: &SamLearner<Net>| {
            let record = m.clone().into_record();
            let bytes = record.into_bytes().unwrap();
            let back = burn::store::ModuleRecord::from_bytes(bytes).unwrap();
            // The record's paths and shapes, through a load into a fresh learner.
            let _ = fresh().load_record(back);
            flatmin::Layout::of(m)
                .entries
                .into_iter()
                .map(|e| (e.path, e.shape))
                .collect::<Vec<_>>()
        };
        let mut wrapped = fresh();
        let before = layout(&wrapped);
        assert!(
            before.iter().any(|(p, _)| p.starts_with("sam_state.")) == (preset != "esam" && preset != "ae-sam"),
            "{preset}: {before:?}"
        );
        assert_eq!(Module::num_params(&wrapped), Module::num_params(&initial), "{preset}");
        let mut optim = burn_sgd();
        for chunk in samples(24, 4).chunks(BATCH) {
            let item = make_item(chunk, &device);
            let out = TrainStep::step(&wrapped, item);
            wrapped = TrainStep::optimize(wrapped, &mut optim, LR.into(), out.grads);
        }
        assert_eq!(layout(&wrapped), before, "{preset}: the same slots after training");
        let saved = state_bits(&wrapped.sam_record(0).unwrap());
        assert_eq!(
            saved.1.iter().find(|(k, _)| k == "steps").map(|(_, v)| *v),
            Some(3),
            "{preset}"
        );
        let loaded = fresh().load_record(wrapped.clone().into_record());
        assert!(
            state_bits(&loaded.sam_record(0).unwrap()) == saved,
            "{preset}: the state comes back"
        );
        // The optimizer step and validation copies leave the state as it is.
        let again = TrainStep::optimize(
            loaded.valid().train(),
            &mut optim,
            LR.into(),
            burn::optim::GradientsParams::new(),
        );
        assert!(
            state_bits(&again.sam_record(0).unwrap()) == saved,
            "{preset}: unchanged by a mapping"
        );
    }
}

#[test]
fn the_learners_training_loss_metric_is_the_first_pass_loss() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    let sam = config("sam");
    let dir = scratch("metrics");
    let result = SupervisedTraining::new(&dir, loader(samples(32, 0), BATCH), loader(samples(16, 9), BATCH))
        .num_epochs(1)
        .metrics((LossMetric::new(),))
        .with_application_logger(None)
        .launch(learner(&initial, sam.clone(), burn_sgd()));
    assert!(result.error.is_none());
    // flatmin's loop reports L(w) of every step.
    let mut optim = sam.init().unwrap();
    let mut model = initial.deep_copy();
    let mut losses = Vec::new();
    for chunk in samples(32, 0).chunks(BATCH) {
        let item = make_item(chunk, &device);
        let (next, report) = optim.step(LR, model, flatmin_loss(&item));
        losses.push(report.unwrap().loss.unwrap());
        model = next;
    }
    let log =
        std::fs::read_to_string(dir.join("train").join("epoch-1").join("Loss.log")).expect("the Learner's loss log");
    // One `value,count` line per batch, then the epoch's `value,final`.
    let logged: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split_once(','))
        .filter(|(_, count)| count.trim() != "final")
        .filter_map(|(value, _)| value.trim().parse().ok())
        .collect();
    assert_eq!(logged.len(), losses.len(), "{log}");
    for (l, f) in logged.iter().zip(&losses) {
        assert!((l - f).abs() < 1e-5, "logged {l}, flatmin {f}");
    }
}

/// BatchNorm's running statistics come from the first pass only, as in `Sam::step`: the adapter's
/// `step` and `optimize` called directly (one thread, so Burn's lazily merged running state is
/// read at the same point in both runs), three steps, every float compared, statistics included.
#[test]
fn batchnorm_statistics_come_from_the_first_pass_only() {
    let device = Device::flex().autodiff();
    let initial = Net::new(&device);
    for preset in ["sam", "esam", "wsam"] {
        let (a, b) = direct_steps(&initial, &config(preset), &device);
        assert!(a == b, "{preset}: max |Δ| = {}", max_abs_diff(&a, &b));
    }
}
