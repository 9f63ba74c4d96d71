//! Unified SAM, `e = ρ·(1 − λ + λ/(‖g‖ + eps))·g`: λ = 1 is SAM, λ = 0 (USAM) is `e = ρ·g`, and
//! the schedules 1/t and 1 − 1/t count the steps from 1.

use crate::common::*;
use burn::optim::GradientsParams;
use flatmin::{Context, SamConfig, UnifiedConfig, UnifiedLambda, Value, hyperparameter};

const LR: f64 = 0.05;

fn unified(lambda: UnifiedLambda) -> SamConfig {
    SamConfig::new(SamConfig::sgd_base(0.9, 5e-4)).with_member(UnifiedConfig::new().with_lambda(lambda))
}

fn run(config: &SamConfig, steps: usize) -> (Vec<Vec<f64>>, Vec<flatmin::StepReport>) {
    let device = device();
    let batches = Batches::new(4, 3, &device);
    let mut optim = config.init().unwrap();
    let (_, params, reports) = train_on(&mut optim, Mlp::new(6, &device), &batches, 0, steps, LR);
    (params, reports)
}

/// λ = 1 is SAM: `ρ·(0 + 1/(‖g‖ + eps))` against SAM's `ρ/(‖g‖ + eps)` — two roundings against
/// one, so not bit for bit in general; within 1e-15 over 10 steps.
#[test]
fn lambda_one_is_sam_within_1e_15() {
    let (sam, sam_reports) = run(&SamConfig::new(SamConfig::sgd_base(0.9, 5e-4)), 10);
    let (one, one_reports) = run(&unified(UnifiedLambda::Constant { lambda: 1.0 }), 10);
    let diff = max_diff(&sam, &one);
    println!(
        "Unified SAM λ = 1 vs SAM: max |Δw| = {diff:e} (bitwise: {})",
        bits(&sam) == bits(&one)
    );
    assert!(diff <= 1e-15, "{diff:e}");
    for (a, b) in sam_reports.iter().zip(&one_reports) {
        assert!((a.perturbation_norm - b.perturbation_norm).abs() <= 1e-15 * a.perturbation_norm);
    }
    // USAM is another algorithm: the comparison discriminates.
    let (usam, _) = run(&SamConfig::preset("usam", SamConfig::sgd_base(0.9, 5e-4)).unwrap(), 10);
    assert!(max_diff(&sam, &usam) > 1e-9);
}

/// λ = 0 (the `usam` preset): `e = ρ·g`, unnormalized — its norm is `ρ·‖g‖` at every step, and
/// on a quadratic each component of `e` is `ρ·a_i·w_i`.
#[test]
fn lambda_zero_is_rho_times_g() {
    let config = SamConfig::preset("usam", SamConfig::sgd_base(0.9, 5e-4)).unwrap();
    assert_eq!(
        config.member::<UnifiedConfig>().unwrap().lambda,
        UnifiedLambda::Constant { lambda: 0.0 }
    );
    let rho = config.rho;
    let (_, reports) = run(&config, 6);
    for (k, r) in reports.iter().enumerate() {
        let want = rho * r.grad_norm;
        assert!(
            (r.perturbation_norm - want).abs() <= 1e-12 * want,
            "step {k}: ‖e‖ = {} vs ρ‖g‖ = {want}",
            r.perturbation_norm
        );
        assert!(r.grad_norm > 1e-3, "a gradient worth measuring");
    }

    let device = device();
    let (a, w0) = ([1.0, 10.0, 0.5], [1.0, 1.0, -2.0]);
    let model = Quadratic::new(&w0, &device);
    let optim = config.clone().with_rho(0.1).init().unwrap();
    let first = optim.begin(0.1, &model);
    let grads = GradientsParams::from_grads(first.model().loss(&a).backward(), first.model());
    let ascent = optim.ascend(&model, first, grads).unwrap().ascent().unwrap();
    let e: Vec<f64> = ascent.model().values().iter().zip(&w0).map(|(p, w)| p - w).collect();
    for i in 0..3 {
        let want = 0.1 * a[i] * w0[i];
        assert!((e[i] - want).abs() <= 1e-15, "e = {e:?}");
    }
}

/// The schedules: `λ_t = 1/t` and `1 − 1/t` at t = 1, 2, 3, and a run's first steps use them
/// (t counted from 1: step 1 of 1/t is SAM, of 1 − 1/t is USAM).
#[test]
fn lambda_schedules_count_steps_from_one() {
    let cases = [
        (UnifiedLambda::InverseT, [1.0, 0.5, 1.0 / 3.0]),
        (UnifiedLambda::OneMinusInverseT, [0.0, 0.5, 2.0 / 3.0]),
        (UnifiedLambda::Constant { lambda: 0.3 }, [0.3, 0.3, 0.3]),
    ];
    for (lambda, want) in &cases {
        for (t, w) in (1..=3).zip(want) {
            assert!(
                (lambda.at(t) - w).abs() <= 1e-15,
                "{lambda:?} at t = {t}: {}",
                lambda.at(t)
            );
        }
    }
    assert_eq!(UnifiedLambda::InverseT.at(1), 1.0);
    assert_eq!(UnifiedLambda::OneMinusInverseT.at(1), 0.0);

    let rho = 0.05;
    for (lambda, want) in cases {
        let (_, reports) = run(&unified(lambda.clone()), 3);
        for (r, l) in reports.iter().zip(want) {
            let n = r.grad_norm;
            let e = rho * (1.0 - l + l / (n + 1e-12)) * n;
            assert!(
                (r.perturbation_norm - e).abs() <= 1e-12 * e,
                "{lambda:?}: ‖e‖ = {} vs {e}",
                r.perturbation_norm
            );
        }
    }

    // The registry's words for the schedules.
    let key = hyperparameter("unified_lambda").unwrap();
    let context = Context { lr: 0.1, seed: 0 };
    for (word, lambda) in [
        ("1/t", UnifiedLambda::InverseT),
        ("1-1/t", UnifiedLambda::OneMinusInverseT),
    ] {
        let mut config = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 0.0)).unwrap();
        let value = key.parse(word).unwrap();
        key.set(&mut config, value, &context).unwrap();
        assert_eq!(config.member::<UnifiedConfig>().unwrap().lambda, lambda);
        assert_eq!(key.get(&config), Some(value));
    }
    assert_eq!(key.parse("0.25").unwrap(), Value::Number(0.25));
    assert!(key.parse("1/t²").is_err());
}
