//! The two-step API and the loss-closure contract: every documented sequence runs for every
//! preset and any ESAM mask seed without a panic, the two-step API takes the same steps as the
//! one-call API, and a closure that returns another number of losses than it was asked for is
//! refused with an error that names the pass and both counts.

use crate::common::{self, Batches, Data, Mlp, bits, device, train_on, train_two_step};
use burn::optim::GradientsParams;
use flatmin::{Batch, Next, PRESETS, Pass, PassInput, SamConfig, StepError, SwpConfig, bridge};

fn sgdm() -> flatmin::BaseConfig {
    SamConfig::sgd_base(0.9, 5e-4)
}

/// One step through the generic loop of the crate docs (`common::two_step`) on the MLP.
fn two_step(
    optim: &mut flatmin::Sam,
    model: Mlp,
    data: &Data,
    lr: f64,
) -> (Mlp, Result<flatmin::StepReport, StepError>) {
    common::two_step(optim, model, lr, |m: &Mlp, b: Batch| data.losses(m, b))
}

/// ESAM with its per-tensor mask: for 40 mask seeds × 20 steps no step panics or fails, and the
/// case that used to panic (every tensor left out of the first pass) is among them.
#[test]
fn two_step_esam_never_panics_for_any_mask_seed() {
    let device = device();
    let data = Data::new(3, &device);
    let mut all_masked = 0;
    for seed in 0..40 {
        // β = 0.3 on 4 tensors: every tensor is left out in about 24 % of the steps.
        let config = SamConfig::preset("esam", sgdm())
            .unwrap()
            .with_member(SwpConfig::new().with_beta(0.3).with_seed(seed));
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

/// The generic two-step loop takes exactly the one-call API's steps, bit for bit, for every
/// preset (ESAM: same masks, same selection; AE-SAM: same decisions; bSAM: same noise; MSAM:
/// same point along the momentum), over 10 steps of a fixed batch sequence; the reports agree.
#[test]
fn two_step_equals_one_call_for_every_preset() {
    const N: usize = 10;
    let device = device();
    let batches = Batches::new(5, 3, &device);
    for name in PRESETS {
        let config = SamConfig::preset(name, sgdm()).unwrap().for_run(N as u64, 72);
        let (mut one, mut two) = (config.init().unwrap(), config.init().unwrap());
        let (_, pa, ra) = train_on(&mut one, Mlp::new(1, &device), &batches, 0, N, 0.05);
        let (_, pb, rb) = train_two_step(&mut two, Mlp::new(1, &device), &batches, N, 0.05);
        assert_eq!(bits(&pa), bits(&pb), "{name}");
        assert_eq!(ra, rb, "{name}: the reports");
        assert_eq!((one.steps(), two.steps()), (N as u64, N as u64));
        assert_eq!(
            one.record().to_bytes().unwrap(),
            two.record().to_bytes().unwrap(),
            "{name}: the optimizer state"
        );
    }
}

/// The passes handed in as gradients (`PassInput::with_losses` for ESAM's first pass) take the
/// steps of the passes handed in as losses, for every preset.
#[test]
fn gradients_in_take_the_steps_of_losses_in() {
    const N: usize = 6;
    let device = device();
    let batches = Batches::new(6, 2, &device);
    for name in PRESETS {
        let config = SamConfig::preset(name, sgdm()).unwrap().for_run(N as u64, 48);
        let mut by_losses = config.init().unwrap();
        let (_, expected, _) = train_two_step(&mut by_losses, Mlp::new(2, &device), &batches, N, 0.05);
        let mut optim = config.init().unwrap();
        let mut model = Mlp::new(2, &device);
        let mut got = Vec::new();
        for k in 0..N {
            let data = batches.at(k);
            let first = optim.begin(0.05, &model);
            let losses = data.losses(first.model(), Batch::All);
            let values: Vec<f64> = losses.clone().detach().into_data().iter::<f64>().collect();
            let grads = bridge::backward(losses.mean(), first.model());
            let input = if first.needs_sample_losses() {
                PassInput::with_losses(grads, values)
            } else {
                PassInput::from(grads)
            };
            let update = match optim.ascend(&model, first, input).unwrap() {
                Next::Update(update) => update,
                Next::Ascent(ascent) => {
                    let ascent = if ascent.needs_selection() {
                        let probe = ascent.probe();
                        let after = data.losses(&probe, Batch::All);
                        ascent.select(after).unwrap()
                    } else {
                        ascent
                    };
                    let loss = data.losses(ascent.model(), ascent.request()).mean();
                    let grads_p: GradientsParams = bridge::backward(loss, ascent.model());
                    ascent.second_pass(grads_p).unwrap()
                }
            };
            let (next, report) = optim.finish(model, update);
            report.unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
            model = next;
            got.push(model.flat());
        }
        assert_eq!(bits(&got), bits(&expected), "{name}");
    }
}

/// Two steps interleaved: a stage of a step begun before another step was finished is refused
/// (`StepError::Stale`), and the optimizer is as the finished step left it.
#[test]
fn a_stale_stage_is_refused() {
    let device = device();
    let data = Data::new(3, &device);
    let mut optim = SamConfig::preset("sam", sgdm()).unwrap().init().unwrap();
    let model = Mlp::new(3, &device);
    let stale = optim.begin(0.05, &model);
    let at_w = data.losses(stale.model(), Batch::All);
    let stale_update = optim.ascend(&model, stale, at_w).unwrap().ascent().unwrap();
    let at_w_plus_e = data.losses(stale_update.model(), Batch::All);
    let stale_update = stale_update.second_pass(at_w_plus_e).unwrap();
    let stale_first = optim.begin(0.05, &model);
    let (model, report) = two_step(&mut optim, model, &data, 0.05);
    report.unwrap();
    let after = model.flat();
    let (model, report) = optim.finish(model, stale_update);
    assert_eq!(report, Err(StepError::Stale { begun: 0, now: 1 }));
    let at_w = data.losses(stale_first.model(), Batch::All);
    assert!(matches!(
        optim.ascend(&model, stale_first, at_w),
        Err(StepError::Stale { begun: 0, now: 1 })
    ));
    assert_eq!(model.flat(), after);
    assert_eq!(optim.steps(), 1);
}

/// ESAM's two-step update without the selection is refused, and changes nothing.
#[test]
fn esam_update_without_selection_is_refused() {
    let device = device();
    let data = Data::new(2, &device);
    let optim = SamConfig::preset("esam", sgdm()).unwrap().init().unwrap();
    let model = Mlp::new(2, &device);
    let start = model.flat();
    let first = optim.begin(0.05, &model);
    let at_w = data.losses(first.model(), Batch::All);
    let ascent = optim
        .ascend(&model, first, at_w)
        .unwrap()
        .ascent()
        .expect("ESAM ascends");
    assert!(ascent.needs_selection());
    let grads_p = bridge::backward(data.losses(ascent.model(), Batch::All).mean(), ascent.model());
    let err = ascent.second_pass(grads_p).err().unwrap();
    assert_eq!(err, StepError::SelectionMissing);
    assert!(err.to_string().contains("Ascent::select"), "{err}");
    assert_eq!(model.flat(), start);
    assert_eq!(optim.steps(), 0);
    // The first pass handed in as gradients without its per-sample losses: refused too.
    let first = optim.begin(0.05, &model);
    assert!(first.needs_sample_losses());
    let grads = bridge::backward(data.losses(first.model(), Batch::All).mean(), first.model());
    let missing = optim.ascend(&model, first, grads).and_then(|next| {
        next.ascent()
            .expect("ESAM ascends")
            .select(data.losses(&model, Batch::All))
    });
    assert!(matches!(missing, Err(StepError::SampleLossesMissing)));
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
