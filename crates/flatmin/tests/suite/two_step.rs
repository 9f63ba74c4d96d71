//! The two-step API and the loss-closure contract: every documented sequence runs for every
//! preset and any ESAM mask seed without a panic, the two-step API takes the same steps as the
//! one-call API, and a closure that returns another number of losses than it was asked for is
//! refused with an error that names the pass and both counts.

use crate::common::{Data, Mlp, device, max_diff};
use burn::tensor::Tensor;
use flatmin::{Batch, PRESETS, Pass, SamConfig, StepError, SwpConfig, bridge};

fn sgdm() -> flatmin::BaseConfig {
    SamConfig::sgd_base(0.9, 5e-4)
}

fn values(t: Tensor<1>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// One step through the documented two-step sequence (docs of `flatmin`): first-pass model,
/// backward, the schedule's decision (a base step, or:) perturb, the selection when the config
/// needs it, second pass, update.
fn two_step(
    optim: &mut flatmin::Sam,
    model: Mlp,
    data: &Data,
    lr: f64,
) -> (Mlp, Result<flatmin::StepReport, StepError>) {
    let first = optim.first_pass_model(&model);
    let before = data.losses(&first, Batch::All);
    let before_values = values(before.clone().detach());
    let grads = bridge::backward(before.mean(), &first);
    drop(first);
    if !optim.wants_second_pass(&model, &grads) {
        return optim.base_step(lr, model, &grads);
    }
    let mut ascent = match optim.perturb(lr, &model, &grads) {
        Ok(a) => a,
        Err(e) => return (model, Err(e)),
    };
    if optim.needs_sample_losses() {
        let after = values(data.losses(&bridge::untracked(ascent.model()), Batch::All));
        if let Err(e) = optim.select(&mut ascent, &before_values, &after) {
            return (model, Err(e));
        }
    }
    let loss_p = data.losses(ascent.model(), ascent.request()).mean();
    let grads_p = bridge::backward(loss_p, ascent.model());
    optim.update(lr, model, ascent, &grads_p)
}

/// ESAM with its per-tensor mask: for 40 mask seeds × 20 steps no step panics or fails, and the
/// case that used to panic (every tensor left out of the first pass) is among them.
#[test]
fn two_step_esam_never_panics_for_any_mask_seed() {
    let device = device();
    let data = Data::new(3, &device);
    let mut all_masked = 0;
    for seed in 0..40 {
        let mut config = SamConfig::preset("esam", sgdm()).unwrap();
        // β = 0.3 on 4 tensors: every tensor is left out in about 24 % of the steps.
        config.swp = Some(SwpConfig::new().with_beta(0.3).with_seed(seed));
        let mut optim = config.init().unwrap();
        let mut model = Mlp::new(seed, &device);
        for _ in 0..20 {
            let (next, report) = two_step(&mut optim, model, &data, 0.05);
            let report = report.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let mask = report.tensor_mask.expect("per-tensor mask reported");
            if mask.iter().all(|&k| !k) {
                all_masked += 1;
                assert_eq!(report.perturbation_norm, 0.0, "nothing is perturbed");
            }
            assert_eq!(report.selected.expect("selection made").len(), 12);
            model = next;
        }
        assert_eq!(optim.steps(), 20);
    }
    assert!(
        all_masked > 10,
        "the all-masked case must be exercised ({all_masked} steps)"
    );
}

/// The two-step sequence takes exactly the one-call API's steps, for every preset (ESAM
/// included: same masks, same selection).
#[test]
fn two_step_equals_one_call_for_every_preset() {
    let device = device();
    let data = Data::new(5, &device);
    for name in PRESETS {
        let config = SamConfig::preset(name, sgdm()).unwrap().for_run(6, 36);
        let (mut one, mut two) = (config.init().unwrap(), config.init().unwrap());
        let (mut a, mut b) = (Mlp::new(1, &device), Mlp::new(1, &device));
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        for _ in 0..6 {
            let (next, report) = one.step(0.05, a, |m: &Mlp, batch: Batch| data.losses(m, batch));
            report.unwrap_or_else(|e| panic!("{name} one-call: {e}"));
            a = next;
            let (next, report) = two_step(&mut two, b, &data, 0.05);
            report.unwrap_or_else(|e| panic!("{name} two-step: {e}"));
            b = next;
            pa.push(a.flat());
            pb.push(b.flat());
        }
        assert_eq!(max_diff(&pa, &pb), 0.0, "{name}");
    }
}

/// ESAM's two-step update without the selection is refused, and changes nothing.
#[test]
fn esam_update_without_selection_is_refused() {
    let device = device();
    let data = Data::new(2, &device);
    let mut optim = SamConfig::preset("esam", sgdm()).unwrap().init().unwrap();
    let model = Mlp::new(2, &device);
    let start = model.flat();
    let first = optim.first_pass_model(&model);
    let grads = bridge::backward(data.losses(&first, Batch::All).mean(), &first);
    let ascent = optim.perturb(0.05, &model, &grads).unwrap();
    let grads_p = bridge::backward(data.losses(ascent.model(), Batch::All).mean(), ascent.model());
    let (model, report) = optim.update(0.05, model, ascent, &grads_p);
    assert_eq!(report, Err(StepError::SelectionMissing));
    assert!(report.unwrap_err().to_string().contains("Sam::select"));
    assert_eq!(model.flat(), start);
    assert_eq!(optim.steps(), 0);
}

/// A closure that ignores the subset it is asked for (ESAM's second pass on 12 of 24 samples)
/// is refused, naming the pass and both counts; the weights stay.
#[test]
fn closure_ignoring_its_samples_is_refused() {
    let device = device();
    let data = Data::new(4, &device);
    let mut optim = SamConfig::preset("esam", sgdm()).unwrap().init().unwrap();
    let model = Mlp::new(4, &device);
    let start = model.flat();
    let (model, result) = optim.step(0.05, model, |m: &Mlp, _ignored: Batch| data.losses(m, Batch::All));
    let err = result.unwrap_err();
    assert_eq!(
        err,
        StepError::LossCount {
            pass: Pass::Second,
            expected: 12,
            at_least: false,
            mean_allowed: false,
            got: 24
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("second pass") && text.contains("12") && text.contains("24"),
        "{text}"
    );
    assert_eq!(model.flat(), start);
    assert_eq!(optim.steps(), 0);
}

/// A mean where ESAM needs per-sample losses: refused in the first pass with what was expected.
#[test]
fn esam_needs_per_sample_losses_in_every_pass() {
    let device = device();
    let data = Data::new(4, &device);
    let mut optim = SamConfig::preset("esam", sgdm()).unwrap().init().unwrap();
    let (_, result) = optim.step(0.05, Mlp::new(4, &device), |m: &Mlp, b: Batch| data.losses(m, b).mean());
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            StepError::LossCount {
                pass: Pass::First,
                got: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("at least 2"), "{err}");

    // Per-sample in the first pass, a mean in the selection forward.
    let mut calls = 0;
    let (_, result) = optim.step(0.05, Mlp::new(4, &device), |m: &Mlp, b: Batch| {
        calls += 1;
        let losses = data.losses(m, b);
        if calls == 2 { losses.mean() } else { losses }
    });
    assert!(
        matches!(
            result,
            Err(StepError::LossCount {
                pass: Pass::Selection,
                expected: 24,
                got: 1,
                ..
            })
        ),
        "{result:?}"
    );
}

/// Without a selection, a mean is allowed in every pass, and so are per-sample losses; a count
/// that is neither is refused.
#[test]
fn sam_accepts_means_or_per_sample_losses_but_nothing_else() {
    let device = device();
    let data = Data::new(6, &device);
    let mut optim = SamConfig::preset("sam", sgdm()).unwrap().init().unwrap();
    let (model, mean) = optim.step(0.05, Mlp::new(6, &device), |m: &Mlp, b: Batch| data.losses(m, b).mean());
    mean.unwrap();
    let (model, per_sample) = optim.step(0.05, model, |m: &Mlp, b: Batch| data.losses(m, b));
    per_sample.unwrap();
    let mut calls = 0;
    let (_, wrong) = optim.step(0.05, model, |m: &Mlp, b: Batch| {
        calls += 1;
        let losses = data.losses(m, b);
        if calls == 2 { losses.narrow(0, 0, 5) } else { losses }
    });
    assert_eq!(
        wrong,
        Err(StepError::LossCount {
            pass: Pass::Second,
            expected: 24,
            at_least: false,
            mean_allowed: true,
            got: 5
        })
    );
    assert_eq!(optim.steps(), 2);
}
