//! The members that save passes (SAM every k steps, randomized sharpness training, AE-SAM,
//! LookSAM) and Bayesian SAM: their limits are the algorithms they reduce to (bitwise), they run
//! the second pass on the steps they say, their state survives a record, and bSAM's step is the
//! authors' formula.

use crate::common::*;
use flatmin::{AdaptiveConfig, BaseConfig, BaseState, BsamConfig, LookSamConfig, NoiseSource, PassSchedule, SamConfig};

const STEPS: usize = 10;
const LR: f64 = 0.05;

fn sgdm() -> BaseConfig {
    SamConfig::sgd_base(0.9, 5e-4)
}

fn run(config: SamConfig) -> (Vec<Vec<f64>>, Vec<flatmin::StepReport>) {
    let device = device();
    let data = Data::new(11, &device);
    let mut optim = config.init().unwrap();
    let (_, params, reports) = train(&mut optim, Mlp::new(3, &device), &data, STEPS, LR);
    (params, reports)
}

fn second_passes(reports: &[flatmin::StepReport]) -> Vec<bool> {
    reports.iter().map(|r| r.second_pass).collect()
}

fn sam() -> SamConfig {
    SamConfig::new(sgdm())
}

fn base() -> SamConfig {
    SamConfig::new(sgdm()).with_rho(0.0)
}

#[test]
fn every_step_schedules_are_sam_and_never_schedules_are_the_base_optimizer() {
    let (sam_t, sam_r) = run(sam());
    assert!(second_passes(&sam_r).iter().all(|&p| p));
    let (base_t, base_r) = run(base());
    assert!(second_passes(&base_r).iter().all(|&p| !p));
    let every_1 = sam().with_schedule(Some(PassSchedule::Every { k: 1 }));
    let certain = sam().with_schedule(Some(PassSchedule::Random {
        probability: 1.0,
        seed: 5,
    }));
    let never = sam().with_schedule(Some(PassSchedule::Random {
        probability: 0.0,
        seed: 5,
    }));
    let always_ae = sam().with_schedule(Some(PassSchedule::Adaptive(
        AdaptiveConfig::new()
            .with_c_start(-1e300)
            .with_c_end(-1e300)
            .with_total_steps(STEPS as u64),
    )));
    let never_ae = sam().with_schedule(Some(PassSchedule::Adaptive(
        AdaptiveConfig::new()
            .with_c_start(1e300)
            .with_c_end(1e300)
            .with_total_steps(STEPS as u64),
    )));
    let looksam_1 = every_1.clone().with_looksam(Some(LookSamConfig::new()));
    for (name, config) in [
        ("every 1", every_1),
        ("p = 1", certain),
        ("AE c = -inf", always_ae),
        ("LookSAM k = 1", looksam_1),
    ] {
        assert_eq!(run(config).0, sam_t, "{name} is SAM");
    }
    for (name, config) in [("p = 0", never), ("AE c = +inf", never_ae)] {
        let (t, r) = run(config);
        assert_eq!(t, base_t, "{name} is the base optimizer");
        assert!(second_passes(&r).iter().all(|&p| !p));
    }
}

#[test]
fn schedules_run_the_second_pass_on_the_steps_they_say() {
    let (_, r) = run(SamConfig::preset("sam-every-5", sgdm()).unwrap());
    let expected: Vec<bool> = (0..STEPS).map(|t| t % 5 == 0).collect();
    assert_eq!(second_passes(&r), expected);
    let (_, r) = run(SamConfig::preset("looksam", sgdm()).unwrap());
    assert_eq!(second_passes(&r), expected);
    // RST: the draws of the schedule, step by step.
    let (_, r) = run(SamConfig::preset("rst", sgdm()).unwrap());
    let drawn: Vec<bool> = (0..STEPS as u64).map(|t| flatmin::uniform_at(0, t) < 0.5).collect();
    assert_eq!(second_passes(&r), drawn);
    assert!(drawn.iter().any(|&d| d) && drawn.iter().any(|&d| !d));
    // AE-SAM: some steps of each kind over a run whose threshold rises from -1 to 1.
    let (_, r) = run(SamConfig::preset("ae-sam", sgdm()).unwrap().for_run(STEPS as u64, 24));
    let passes = second_passes(&r);
    assert!(passes[0], "the first step is a SAM step (q ≥ μ − σ)");
    assert!(passes.iter().any(|&p| !p), "{passes:?}");
}

#[test]
fn looksam_reuses_the_stored_direction_and_alpha_zero_is_sam_every_k() {
    let every_5 = SamConfig::preset("sam-every-5", sgdm()).unwrap();
    let (plain, _) = run(every_5.clone());
    let (zero, _) = run(every_5.clone().with_looksam(Some(LookSamConfig::new().with_alpha(0.0))));
    assert_eq!(zero, plain, "α = 0 adds nothing");
    let (look, reports) = run(SamConfig::preset("looksam", sgdm()).unwrap());
    let (per_tensor, _) = run(every_5.with_looksam(Some(LookSamConfig::new().with_per_tensor(true))));
    assert_eq!(look[0], plain[0], "step 0 is a SAM step in both");
    assert!(max_diff(&look[1..2], &plain[1..2]) > 1e-9, "step 1 reuses g_v");
    assert!(
        max_diff(&per_tensor[1..2], &look[1..2]) > 1e-12,
        "layer-wise differs from global"
    );
    // At a reuse step the base optimizer gets g + α‖g‖/‖g_v‖·g_v: larger than g, and not along it.
    let r = &reports[1];
    assert!(!r.second_pass);
    assert!(r.grad_perturbed_norm > r.grad_norm && r.cosine < 1.0 - 1e-9, "{r:?}");
}

/// LookSAM's reuse step against its formula, on a quadratic where both passes are known in
/// closed form: `L = ½ Σ a_i w_i²`, `g = a ⊙ w`.
#[test]
fn looksam_reuse_step_follows_its_formula() {
    let device = device();
    let a = [2.0, 0.5, 1.0];
    let w0 = [0.3, -0.2, 0.1];
    let (rho, alpha, lr) = (0.1, 0.7, 0.1);
    let config = SamConfig::new(SamConfig::sgd_base(0.0, 0.0))
        .with_rho(rho)
        .with_schedule(Some(PassSchedule::Every { k: 2 }))
        .with_looksam(Some(LookSamConfig::new().with_alpha(alpha).with_eps_norm(0.0)));
    let mut optim = config.init().unwrap();
    let mut model = Quadratic::new(&w0, &device);
    for _ in 0..2 {
        let (next, report) = optim.step(lr, model, |m: &Quadratic, _| m.loss(&a));
        report.unwrap();
        model = next;
    }
    // By hand.
    let grad = |w: &[f64]| -> Vec<f64> { w.iter().zip(&a).map(|(w, a)| w * a).collect() };
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let g = grad(&w0);
    let e: Vec<f64> = g.iter().map(|x| rho * x / (norm(&g) + 1e-12)).collect();
    let gp = grad(&w0.iter().zip(&e).map(|(w, e)| w + e).collect::<Vec<_>>());
    let c = g.iter().zip(&gp).map(|(x, y)| x * y).sum::<f64>() / norm(&g).powi(2);
    let gv: Vec<f64> = gp.iter().zip(&g).map(|(p, x)| p - c * x).collect();
    let w1: Vec<f64> = w0.iter().zip(&gp).map(|(w, d)| w - lr * d).collect();
    let g1 = grad(&w1);
    let scale = alpha * norm(&g1) / norm(&gv);
    let w2: Vec<f64> = w1
        .iter()
        .zip(g1.iter().zip(&gv))
        .map(|(w, (x, v))| w - lr * (x + scale * v))
        .collect();
    let got = model.values();
    for (x, y) in got.iter().zip(&w2) {
        assert!((x - y).abs() < 1e-15, "{got:?} vs {w2:?}");
    }
}

/// Injected noise, for a closed-form check.
struct Zeros;

impl NoiseSource for Zeros {
    fn normals(&mut self, numel: usize) -> Vec<f64> {
        vec![0.0; numel]
    }
}

#[test]
fn bsam_step_is_the_authors_update() {
    let device = device();
    let a = [2.0, 0.5, 1.0];
    let w0 = [0.3, -0.2, 0.1];
    let (rho, lr) = (0.05, 0.5);
    let b = BsamConfig::new().with_data_size(50).with_s_init(2.0);
    let delta = b.prior_precision / 50.0;
    let config = SamConfig::new(BaseConfig::Bsam(b.clone())).with_rho(rho);
    let mut optim = config.init().unwrap().with_noise_source(Box::new(Zeros));
    let (model, report) = optim.step(lr, Quadratic::new(&w0, &device), |m: &Quadratic, _| m.loss(&a));
    report.unwrap();
    let g: Vec<f64> = w0.iter().zip(&a).map(|(w, a)| w * a).collect();
    let s = b.s_init;
    let wp: Vec<f64> = w0.iter().zip(&g).map(|(w, g)| w + rho * g / s).collect();
    let gp: Vec<f64> = wp.iter().zip(&a).map(|(w, a)| w * a).collect();
    for i in 0..3 {
        let m = (1.0 - b.beta1) * (gp[i] + delta * w0[i]);
        let w = w0[i] - lr * m / s;
        assert!((model.values()[i] - w).abs() < 1e-15, "w[{i}]");
    }
    let Some(BaseState::Bsam(state)) = optim.base().state("w") else {
        panic!("bSAM state for `w`");
    };
    let s1 = read(state.precision.clone().unwrap());
    for i in 0..3 {
        let expected = b.beta2 * s + (1.0 - b.beta2) * (s.sqrt() * g[i].abs() + b.damping + delta);
        assert!((s1[i] - expected).abs() < 1e-15, "s[{i}]");
    }
}

#[test]
fn bsam_noise_is_seeded_and_moves_the_first_pass() {
    let bsam = |seed: u64| {
        let b = BsamConfig::new().with_data_size(24).with_seed(seed);
        SamConfig::new(BaseConfig::Bsam(b)).with_rho(0.01)
    };
    let (a, r) = run(bsam(1));
    let (b, _) = run(bsam(1));
    let (c, _) = run(bsam(2));
    assert_eq!(a, b, "same seed, same run");
    assert!(max_diff(&a, &c) > 1e-9, "another seed draws other noise");
    assert!(r.iter().all(|r| r.second_pass && r.perturbation_norm > 0.0));
    let preset = SamConfig::preset("bsam", sgdm()).unwrap();
    assert_eq!(preset.validate().unwrap_err().field, "bsam_data_size");
    let mixed = bsam(1).with_looksam(Some(LookSamConfig::new()));
    assert_eq!(mixed.validate().unwrap_err().field, "looksam");
}

#[test]
fn state_of_the_new_members_survives_a_record() {
    let dir = scratch("cheaper-records");
    let configs = [
        SamConfig::preset("looksam", sgdm()).unwrap(),
        SamConfig::preset("ae-sam", sgdm()).unwrap().for_run(6, 24),
        SamConfig::preset("rst", sgdm()).unwrap(),
        SamConfig::preset("bsam", sgdm()).unwrap().for_run(6, 24),
        SamConfig::preset("looksam", sgdm())
            .unwrap()
            .with_looksam(Some(LookSamConfig::new().with_per_tensor(true))),
    ];
    for (n, config) in configs.into_iter().enumerate() {
        let device = device();
        let data = Data::new(4, &device);
        let mut straight = config.clone().init().unwrap();
        let (_, full, _) = train(&mut straight, Mlp::new(1, &device), &data, 6, LR);
        let mut first = config.clone().init().unwrap();
        let (model, _, _) = train(&mut first, Mlp::new(1, &device), &data, 3, LR);
        let path = dir.join(format!("{n}.bpk"));
        first.save(&path).unwrap();
        let mut resumed = config.clone().init().unwrap().load(&path, &device).unwrap();
        resumed.check_fits(&model).unwrap();
        let (_, rest, _) = train(&mut resumed, model, &data, 3, LR);
        assert_eq!(full[3..].to_vec(), rest, "{config:?}");
    }
}

#[test]
fn bad_settings_of_the_new_members_are_named() {
    let cases = [
        (sam().with_schedule(Some(PassSchedule::Every { k: 0 })), "sam_every"),
        (
            sam().with_schedule(Some(PassSchedule::Random {
                probability: -0.1,
                seed: 0,
            })),
            "sam_probability",
        ),
        (
            sam().with_looksam(Some(LookSamConfig::new().with_alpha(f64::NAN))),
            "looksam_alpha",
        ),
        (
            SamConfig::preset("esam", sgdm())
                .unwrap()
                .with_schedule(Some(PassSchedule::Adaptive(AdaptiveConfig::new().with_total_steps(5)))),
            "swp.granularity",
        ),
        (
            SamConfig::new(BaseConfig::Bsam(BsamConfig::new().with_data_size(10).with_beta2(1.0))),
            "bsam_beta2",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(config.validate().unwrap_err().field, field);
    }
}

/// bSAM's update is its own: handing its step to an outside base optimizer is refused, and
/// nothing changes.
#[test]
fn bsam_refuses_an_outside_base_optimizer() {
    let device = device();
    let data = Data::new(2, &device);
    let config = SamConfig::preset("bsam", sgdm()).unwrap().for_run(5, 24);
    let mut optim = config.init().unwrap();
    let model = Mlp::new(2, &device);
    let first = optim.first_pass_model(&model);
    let grads = flatmin::bridge::backward(data.losses(&first, flatmin::Batch::All).mean(), &first);
    let ascent = optim.perturb(0.5, &model, &grads).unwrap();
    let loss_p = data.losses(ascent.model(), ascent.request()).mean();
    let grads_p = flatmin::bridge::backward(loss_p, ascent.model());
    let err = optim.descent(&model, ascent, &grads_p).unwrap_err();
    assert!(matches!(err, flatmin::StepError::OwnUpdate), "{err}");
    assert!(matches!(
        optim.base_descent(&model, &grads),
        Err(flatmin::StepError::OwnUpdate)
    ));
    assert_eq!(optim.steps(), 0);
}
