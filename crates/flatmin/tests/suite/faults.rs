//! Zero and non-finite gradients, and hyperparameters out of range.

use crate::common::*;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use flatmin::{
    BaseConfig, Batch, Combination, ConfigError, FriendlyConfig, Geometry, Pass, RhoSchedule, SamConfig, Selection,
    SelectionRule, SgdConfig, StepError, SwpConfig,
};

fn sgdm() -> BaseConfig {
    BaseConfig::Sgd(SgdConfig::new().with_momentum(0.9).with_weight_decay(0.1))
}

fn every_perturbation() -> Vec<SamConfig> {
    vec![
        SamConfig::new(sgdm()),
        SamConfig::new(sgdm()).with_geometry(Geometry::AdaptiveSquared),
        SamConfig::new(sgdm()).with_geometry(Geometry::Asam { eta: 0.01 }),
        SamConfig::new(sgdm()).with_geometry(Geometry::Fisher { eta: 1.0 }),
        SamConfig::new(sgdm()).with_friendly(Some(FriendlyConfig::new())),
        SamConfig::preset("esam", sgdm()).unwrap(),
        SamConfig::preset("gsam", sgdm()).unwrap(),
        SamConfig::preset("wsam", sgdm()).unwrap(),
    ]
}

#[test]
fn zero_gradient_gives_zero_perturbation_and_the_base_step() {
    for config in every_perturbation() {
        // The quadratic's loss is not per sample: ESAM's selection is left out.
        let config = config.with_selection(flatmin::Selection::All);
        let device = device();
        // At w = 0 the quadratic's gradient is exactly zero.
        let model = Quadratic::new(&[0.0, 0.0, 0.0], &device);
        let mut optim = config.clone().init().unwrap();
        let grads = GradientsParams::from_grads(model.loss(&[1.0, 2.0, 3.0]).backward(), &model);
        let ascent = optim.perturb(0.1, &model, &grads).unwrap();
        assert_eq!(ascent.perturbation_norm(), 0.0, "{config:?}");
        assert_eq!(ascent.model().values(), vec![0.0, 0.0, 0.0]);
        let grads_p = GradientsParams::from_grads(ascent.model().loss(&[1.0, 2.0, 3.0]).backward(), ascent.model());
        let (model, report) = optim.update(0.1, model, ascent, &grads_p);
        let report = report.unwrap();
        assert_eq!(model.values(), vec![0.0, 0.0, 0.0]);
        assert_eq!(report.cosine, 0.0);
        assert!(report.grad_norm == 0.0 && report.grad_perturbed_norm == 0.0);
    }
}

fn nan_in_pass(pass: usize) -> impl FnMut(&Mlp, Batch) -> Tensor<1> {
    let device = device();
    let data = Data::new(1, &device);
    let mut calls = 0;
    move |m: &Mlp, b: Batch| {
        calls += 1;
        let losses = data.losses(m, b);
        if calls == pass {
            losses.mul_scalar(f64::NAN)
        } else {
            losses
        }
    }
}

#[test]
fn non_finite_first_pass_skips_the_step_and_keeps_state() {
    for config in every_perturbation() {
        let device = device();
        let data = Data::new(1, &device);
        let mut optim = config.clone().init().unwrap();
        let (model, _, _) = train(&mut optim, Mlp::new(2, &device), &data, 2, 0.1);
        let before = model.flat();
        let state = optim.to_bytes().unwrap();
        let (model, result) = optim.step(0.1, model, nan_in_pass(1));
        assert!(
            matches!(result, Err(StepError::NonFinite { pass: Pass::First, .. })),
            "{config:?}: {result:?}"
        );
        assert_eq!(model.flat(), before, "weights must be untouched");
        assert_eq!(optim.to_bytes().unwrap(), state, "state must be untouched");
        assert_eq!(optim.steps(), 2);
    }
}

#[test]
fn non_finite_second_pass_skips_the_step_and_keeps_state() {
    for config in every_perturbation() {
        let device = device();
        let data = Data::new(1, &device);
        let mut optim = config.clone().init().unwrap();
        let (model, _, _) = train(&mut optim, Mlp::new(2, &device), &data, 2, 0.1);
        let before = model.flat();
        let state = optim.to_bytes().unwrap();
        // The last call of the step is always the second pass.
        let passes = if config.selection.needs_losses() { 3 } else { 2 };
        let (model, result) = optim.step(0.1, model, nan_in_pass(passes));
        assert!(
            matches!(result, Err(StepError::NonFinite { pass: Pass::Second, .. })),
            "{config:?}: {result:?}"
        );
        assert_eq!(model.flat(), before);
        assert_eq!(optim.to_bytes().unwrap(), state);
        // Training goes on from where it was: the next finite step matches an optimizer that
        // never saw the faulty batch.
        let mut twin = config.clone().init().unwrap();
        let (twin_model, _, _) = train(&mut twin, Mlp::new(2, &device), &data, 2, 0.1);
        let (a, _, _) = train(&mut optim, model, &data, 1, 0.1);
        let (b, _, _) = train(&mut twin, twin_model, &data, 1, 0.1);
        assert_eq!(a.flat(), b.flat());
    }
}

#[test]
fn non_finite_gradient_in_the_two_step_api_is_an_error() {
    let device = device();
    let model = Quadratic::new(&[1.0, f64::INFINITY], &device);
    let mut optim = SamConfig::new(sgdm()).init().unwrap();
    let grads = GradientsParams::from_grads(model.loss(&[1.0, 1.0]).backward(), &model);
    let err = optim.perturb(0.1, &model, &grads).err().unwrap();
    assert_eq!(
        err,
        StepError::NonFinite {
            pass: Pass::First,
            what: "gradient"
        }
    );
    assert!(err.to_string().contains("first pass"));
}

#[test]
fn selection_needs_per_sample_losses() {
    let device = device();
    let data = Data::new(1, &device);
    let mut optim = SamConfig::preset("esam", sgdm()).unwrap().init().unwrap();
    let (_, result) = optim.step(0.1, Mlp::new(2, &device), |m: &Mlp, b: Batch| data.losses(m, b).mean());
    assert_eq!(
        result,
        Err(StepError::LossCount {
            pass: Pass::First,
            expected: 2,
            at_least: true,
            mean_allowed: false,
            got: 1
        })
    );
}

#[test]
fn esam_keeps_exactly_round_gamma_b_samples() {
    let device = device();
    let data = Data::new(1, &device);
    let config = SamConfig::preset("esam", sgdm())
        .unwrap()
        .with_selection(Selection::SharpnessSensitive {
            gamma: 0.3,
            rule: SelectionRule::TopK,
        });
    let mut optim = config.init().unwrap();
    let (_, _, reports) = train(&mut optim, Mlp::new(2, &device), &data, 3, 0.1);
    for r in reports {
        let selected = r.selected.unwrap();
        assert_eq!(selected.len(), 7); // round(0.3 · 24)
        let s = r.sample_sharpness.unwrap();
        let weakest_kept = selected.iter().map(|&i| s[i]).fold(f64::INFINITY, f64::min);
        let strongest_left = (0..24)
            .filter(|i| !selected.contains(i))
            .map(|i| s[i])
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(weakest_kept >= strongest_left);
    }
}

fn expect_error(config: SamConfig, field: &str) {
    let err: ConfigError = config
        .init()
        .err()
        .unwrap_or_else(|| panic!("{field} should be rejected"));
    assert_eq!(err.field, field, "{err}");
    assert!(err.to_string().contains(field));
}

#[test]
fn every_hyperparameter_is_validated() {
    let base = || SamConfig::new(sgdm());
    expect_error(base().with_rho(-0.1), "rho");
    expect_error(base().with_rho(f64::NAN), "rho");
    expect_error(base().with_eps(0.0), "eps");
    expect_error(base().with_geometry(Geometry::Asam { eta: -1.0 }), "eta");
    expect_error(base().with_geometry(Geometry::Fisher { eta: f64::INFINITY }), "eta");
    expect_error(
        base().with_friendly(Some(FriendlyConfig::new().with_lambda(1.0))),
        "lambda",
    );
    expect_error(
        base().with_friendly(Some(FriendlyConfig::new().with_sigma(-1.0))),
        "sigma",
    );
    expect_error(base().with_swp(Some(SwpConfig::new().with_beta(0.0))), "beta");
    expect_error(base().with_swp(Some(SwpConfig::new().with_beta(1.5))), "beta");
    expect_error(
        base().with_selection(Selection::SharpnessSensitive {
            gamma: 0.0,
            rule: SelectionRule::TopK,
        }),
        "selection.gamma",
    );
    expect_error(
        base().with_combination(Combination::Wsam {
            gamma: 1.0,
            decoupled: true,
            max_norm: None,
        }),
        "wsam.gamma",
    );
    expect_error(
        base().with_combination(Combination::Wsam {
            gamma: 0.9,
            decoupled: true,
            max_norm: Some(0.0),
        }),
        "wsam.max_norm",
    );
    expect_error(base().with_combination(Combination::Gsam { alpha: -0.1 }), "gsam.alpha");
    expect_error(
        base().with_rho_schedule(RhoSchedule::ProportionalToLr {
            rho_min: 0.1,
            lr_max: 1.0,
            lr_min: 0.0,
        }),
        "rho_min",
    );
    expect_error(
        SamConfig::new(BaseConfig::Sgd(SgdConfig::new().with_momentum(1.0))),
        "momentum",
    );
    expect_error(
        SamConfig::new(BaseConfig::Sgd(SgdConfig::new().with_weight_decay(-1.0))),
        "weight_decay",
    );
    expect_error(
        SamConfig::new(BaseConfig::Sgd(SgdConfig::new().with_nesterov(true))),
        "nesterov",
    );
    expect_error(
        SamConfig::new(BaseConfig::Adam(flatmin::AdamConfig::new().with_beta2(1.0))),
        "beta2",
    );
    assert!(SamConfig::preset("not-a-method", sgdm()).is_err());
    for name in flatmin::PRESETS {
        let preset = SamConfig::preset(name, sgdm()).unwrap();
        if name == "ae-sam" || name == "bsam" {
            // What these need of the run is named until it is given.
            let e = preset.clone().validate().unwrap_err();
            assert!(
                e.field == "ae_total_steps" || e.field == "bsam_data_size",
                "{name}: {e}"
            );
        }
        preset.for_run(100, 1000).init().unwrap();
    }
}
