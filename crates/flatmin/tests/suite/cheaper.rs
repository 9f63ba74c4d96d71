//! The members that save passes (SAM every k steps, randomized sharpness training, AE-SAM,
//! LookSAM) and Bayesian SAM: their limits are the algorithms they reduce to (bitwise), they run
//! the second pass on the steps they say, their state survives a record, and bSAM's step is the
//! authors' formula. AE-SAM's threshold falls from 1 to −1: SAM steps are rare early and
//! frequent late.

use crate::common::*;
use burn::module::{Module, Param};
use burn::tensor::Tensor;
use flatmin::{
    AeSamConfig, BaseConfig, BsamConfig, EveryConfig, Injection, LookSamConfig, NoiseSource, RandomConfig, Rng,
    SamConfig, SamRecord,
};

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
    let every_1 = sam().with_member(EveryConfig::new().with_k(1));
    let certain = sam().with_member(RandomConfig::new().with_probability(1.0).with_seed(5));
    let never = sam().with_member(RandomConfig::new().with_probability(0.0).with_seed(5));
    let always_ae = sam().with_member(
        AeSamConfig::new()
            .with_c_start(-1e300)
            .with_c_end(-1e300)
            .with_total_steps(STEPS as u64),
    );
    let never_ae = sam().with_member(
        AeSamConfig::new()
            .with_c_start(1e300)
            .with_c_end(1e300)
            .with_total_steps(STEPS as u64),
    );
    let looksam_1 = every_1.clone().with_member(LookSamConfig::new());
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
    // AE-SAM: some steps of each kind in the first steps of a long run, whose threshold is
    // still about 1 (it falls from 1 to -1 over the run). At the first step μ = 0.1·q and
    // σ = 0.9·√0.1·q, so q ≥ μ + σ: a SAM step; the statistics start from 0, so the first few
    // steps are SAM steps whatever the threshold. (With the old defaults, c from -1 to 1, a
    // 10-step run had base steps at its end; with the new ones a 10-step run is all SAM steps.)
    let (_, r) = run(SamConfig::preset("ae-sam", sgdm()).unwrap().for_run(1000, 24));
    let passes = second_passes(&r);
    assert!(passes[0], "the first step is a SAM step (q ≥ μ + σ)");
    assert!(passes.iter().any(|&p| !p), "{passes:?}");
}

#[test]
fn looksam_reuses_the_stored_direction_and_alpha_zero_is_sam_every_k() {
    let every_5 = SamConfig::preset("sam-every-5", sgdm()).unwrap();
    let (plain, _) = run(every_5.clone());
    let (zero, _) = run(every_5.clone().with_member(LookSamConfig::new().with_alpha(0.0)));
    assert_eq!(zero, plain, "α = 0 adds nothing");
    // The report's cosine is measured on request only.
    let (look, reports) = run(SamConfig::preset("looksam", sgdm()).unwrap().with_measure(true));
    let (per_tensor, _) = run(every_5.with_member(LookSamConfig::new().with_per_tensor(true)));
    assert_eq!(look[0], plain[0], "step 0 is a SAM step in both");
    assert!(max_diff(&look[1..2], &plain[1..2]) > 1e-9, "step 1 reuses g_v");
    assert!(
        max_diff(&per_tensor[1..2], &look[1..2]) > 1e-12,
        "layer-wise differs from global"
    );
    // At a reuse step the base optimizer gets g + α‖g‖/‖g_v‖·g_v: larger than g, and not along it.
    let r = &reports[1];
    assert!(!r.second_pass);
    let cosine = r.cosine.expect("measured");
    assert!(r.grad_perturbed_norm > r.grad_norm && cosine < 1.0 - 1e-9, "{r:?}");
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
        .with_member(EveryConfig::new().with_k(2))
        .with_member(LookSamConfig::new().with_alpha(alpha).with_eps_norm(0.0));
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
    // The given base is not used with bSAM.
    let config = SamConfig::new(sgdm()).with_member(b.clone()).with_rho(rho);
    let mut optim = config
        .init()
        .unwrap()
        .inject(Injection::noise(Box::new(Zeros)))
        .unwrap();
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
    // bSAM's state of `w`, as its record holds it.
    let record = optim.record();
    let s1 = read(
        record
            .tensors
            .get("base/w/precision")
            .expect("bSAM's precision of `w`")
            .clone(),
    );
    assert_eq!(record.scalars.get("base/w/step"), Some(&1));
    for i in 0..3 {
        let expected = b.beta2 * s + (1.0 - b.beta2) * (s.sqrt() * g[i].abs() + b.damping + delta);
        assert!((s1[i] - expected).abs() < 1e-15, "s[{i}]");
    }
}

#[test]
fn bsam_noise_is_seeded_and_moves_the_first_pass() {
    let bsam = |seed: u64| {
        let b = BsamConfig::new().with_data_size(24).with_seed(seed);
        SamConfig::new(sgdm()).with_member(b).with_rho(0.01)
    };
    let (a, r) = run(bsam(1));
    let (b, _) = run(bsam(1));
    let (c, _) = run(bsam(2));
    assert_eq!(a, b, "same seed, same run");
    assert!(max_diff(&a, &c) > 1e-9, "another seed draws other noise");
    assert!(r.iter().all(|r| r.second_pass && r.perturbation_norm > 0.0));
    let preset = SamConfig::preset("bsam", sgdm()).unwrap();
    assert_eq!(preset.validate().unwrap_err().field, "bsam_data_size");
    // bSAM goes with no other member: the error names the other member's room and says why.
    let mixed = bsam(1).with_member(LookSamConfig::new());
    let e = mixed.validate().unwrap_err();
    assert_eq!(e.field, "reuse", "{e}");
    assert!(e.value.contains("looksam") && e.expected.contains("bSAM"), "{e}");
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
            .with_member(LookSamConfig::new().with_per_tensor(true)),
    ];
    for (n, config) in configs.into_iter().enumerate() {
        let device = device();
        let data = Data::new(4, &device);
        let mut straight = config.clone().init().unwrap();
        let (_, full, _) = train(&mut straight, Mlp::new(1, &device), &data, 6, LR);
        let mut first = config.clone().init().unwrap();
        let (model, _, _) = train(&mut first, Mlp::new(1, &device), &data, 3, LR);
        let path = dir.join(format!("{n}.bpk"));
        first.record().save(&path).unwrap();
        // Loading checks that the record fits the model it will train.
        let record = SamRecord::load(&path, &device).unwrap();
        let mut resumed = config.clone().init().unwrap().load_record(record, &model).unwrap();
        let (_, rest, _) = train(&mut resumed, model, &data, 3, LR);
        assert_eq!(full[3..].to_vec(), rest, "{config:?}");
    }
}

#[test]
fn bad_settings_of_the_new_members_are_named() {
    let cases = [
        (sam().with_member(EveryConfig::new().with_k(0)), "sam_every"),
        (
            sam().with_member(RandomConfig::new().with_probability(-0.1)),
            "sam_probability",
        ),
        (
            sam().with_member(LookSamConfig::new().with_alpha(f64::NAN)),
            "looksam_alpha",
        ),
        // LookSAM without a schedule: nothing would ever reuse its direction.
        (sam().with_member(LookSamConfig::new()), "schedule"),
        (
            SamConfig::preset("esam", sgdm())
                .unwrap()
                .with_member(AeSamConfig::new().with_total_steps(5)),
            "esam_per_element",
        ),
        (
            SamConfig::new(sgdm()).with_member(BsamConfig::new().with_data_size(10).with_beta2(1.0)),
            "bsam_beta2",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(config.validate().unwrap_err().field, field);
    }
}

/// bSAM's update is its own: handing its step to an outside base optimizer is refused, and
/// nothing changes (the optimizer goes on from where it was, as if the step had not begun).
#[test]
fn bsam_refuses_an_outside_base_optimizer() {
    let device = device();
    let data = Data::new(2, &device);
    let config = SamConfig::preset("bsam", sgdm()).unwrap().for_run(5, 24);
    assert!(config.needs_own_update());
    let mut optim = config.init().unwrap();
    let model = Mlp::new(2, &device);
    let first = optim.begin(0.5, &model);
    let at_w = data.losses(first.model(), flatmin::Batch::All);
    let ascent = optim
        .ascend(&model, first, at_w)
        .unwrap()
        .ascent()
        .expect("bSAM runs both passes");
    let at_w_plus_e = data.losses(ascent.model(), ascent.request());
    let update = ascent.second_pass(at_w_plus_e).unwrap();
    let err = optim.descent(update).unwrap_err();
    assert!(matches!(err, flatmin::StepError::OwnUpdate), "{err}");
    assert_eq!(optim.steps(), 0);
    // The refused step changed nothing: the next step is a fresh optimizer's first.
    let mut twin = config.init().unwrap();
    let (_, a, _) = train(&mut optim, Mlp::new(2, &device), &data, 1, 0.5);
    let (_, b, _) = train(&mut twin, Mlp::new(2, &device), &data, 1, 0.5);
    assert_eq!(bits(&a), bits(&b));
}

/// A linear loss `L = n·w`: its gradient is `n`, whatever the weights.
#[derive(Module, Debug)]
struct Linear {
    w: Param<Tensor<1>>,
}

/// AE-SAM's defaults (c from 1 to −1) on a run whose `‖g‖²` is stationary (a fresh Gaussian
/// gradient each step): SAM steps are rare in the first quarter and frequent in the last, and
/// each step's decision is the rule `q ≥ μ + c_t·σ`, replayed by hand from the gradients.
#[test]
fn ae_sam_threshold_falls_so_sam_steps_are_rare_early_and_frequent_late() {
    const T: usize = 400;
    const DIM: usize = 8;
    let config = SamConfig::preset("ae-sam", sgdm()).unwrap().for_run(T as u64, 0);
    let ae = config.member::<AeSamConfig>().expect("AE-SAM").clone();
    assert_eq!(
        (ae.delta, ae.c_start, ae.c_end, ae.total_steps),
        (0.9, 1.0, -1.0, T as u64)
    );
    assert_eq!((AeSamConfig::new().c_start, AeSamConfig::new().c_end), (1.0, -1.0));
    assert_eq!(ae.threshold(0), 1.0);
    assert_eq!(ae.threshold(T as u64 / 2), 0.0);
    assert_eq!(ae.threshold(T as u64), -1.0);
    assert_eq!(ae.threshold(10 * T as u64), -1.0);

    let device = device();
    let mut rng = Rng::seeded(17);
    let mut normal = || {
        let (u1, u2) = (1.0 - rng.uniform(), rng.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let gradients: Vec<Vec<f64>> = (0..T).map(|_| (0..DIM).map(|_| normal()).collect()).collect();

    let mut optim = config.init().unwrap();
    let mut model = Linear {
        w: Param::from_tensor(vec1(&[0.1; DIM], &device)),
    };
    let mut passes = Vec::with_capacity(T);
    for n in &gradients {
        let n = vec1(n, &device);
        let (next, report) = optim.step(0.01, model, |m: &Linear, _| (m.w.val() * n.clone()).sum());
        model = next;
        passes.push(report.unwrap().second_pass);
    }

    // The rule by hand: μ ← δμ + (1−δ)q, σ² ← δσ² + (1−δ)(q − μ)², a SAM step iff
    // q ≥ μ + c_t·σ with c_t = 1 − 2·t/T.
    let (mut mean, mut var) = (0.0f64, 0.0f64);
    let expected: Vec<bool> = gradients
        .iter()
        .enumerate()
        .map(|(t, n)| {
            let q: f64 = n.iter().map(|v| v * v).sum();
            mean = 0.9 * mean + (1.0 - 0.9) * q;
            var = 0.9 * var + (1.0 - 0.9) * (q - mean).powi(2);
            let c = 1.0 + (-1.0 - 1.0) * (t as f64 / T as f64).min(1.0);
            q >= mean + c * var.sqrt()
        })
        .collect();
    let differing = passes.iter().zip(&expected).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} decisions differ from the rule");

    let share = |steps: &[bool]| steps.iter().filter(|&&p| p).count() as f64 / steps.len() as f64;
    let (early, late) = (share(&passes[..T / 4]), share(&passes[3 * T / 4..]));
    println!("AE-SAM: SAM steps {early:.2} of the first quarter, {late:.2} of the last");
    assert!(early < 0.35 && late > 0.65 && early + 0.3 < late, "{early} vs {late}");
}
