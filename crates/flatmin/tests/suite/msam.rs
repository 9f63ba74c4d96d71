//! MSAM (momentum-SAM): one pass per step at `w̃ = w − ρ·v/(‖v‖ + eps)`, `v` the base optimizer's
//! momentum; the model holds the unperturbed weights between steps; the step cannot be handed to
//! an outside optimizer; the AdamW form decays the weights after the moment step.

use crate::common::*;
use burn::optim::GradientsParams;
use flatmin::{BaseConfig, Batch, MsamConfig, Next, SamConfig, StepError};

const A: [f64; 4] = [2.0, 0.5, 1.0, 3.0];
const W0: [f64; 4] = [0.3, -0.2, 0.1, 0.4];
const LR: f64 = 0.1;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// The point MSAM's pass runs at: `w − ρ·v/(‖v‖ + eps)`, `w` itself without a momentum.
fn along(w: &[f64], v: Option<&Vec<f64>>, rho: f64, eps: f64) -> Vec<f64> {
    match v {
        None => w.to_vec(),
        Some(v) => {
            let n = norm(v);
            w.iter().zip(v).map(|(w, v)| w - rho * v / (n + eps)).collect()
        }
    }
}

/// The SGD form on `L = ½ Σ a_i w_i²`, against the rule by hand in f64: `w̃ = w − ρ·v/(‖v‖+eps)`
/// (`w̃ = w` while `v = 0`), `g = ∇L(w̃)`, `d = g + wd·w̃`, `v = μv + d`, `w −= lr·v`. After every
/// finished step the model holds `w`, not `w̃` (which is ρ away from it); the report says one
/// pass, ρ and `‖w̃ − w‖`.
#[test]
fn msam_sgd_step_follows_its_rule_and_the_model_holds_w() {
    let (mu, wd) = (0.9, 0.01);
    let config = SamConfig::preset("msam", SamConfig::sgd_base(mu, wd)).unwrap();
    let (rho, eps) = (config.rho, config.eps);
    assert_eq!((rho, eps), (0.3, 1e-12));
    assert!(config.member::<MsamConfig>().is_some());
    assert!(config.is_scheduled() && config.needs_own_update());
    let device = device();
    let mut optim = config.init().unwrap();
    let mut model = Quadratic::new(&W0, &device);

    let mut w = W0.to_vec();
    let mut v: Option<Vec<f64>> = None;
    for step in 0..5 {
        let (next, report) = optim.step(LR, model, |m: &Quadratic, _| m.loss(&A));
        model = next;
        let report = report.unwrap();

        let w_tilde = along(&w, v.as_ref(), rho, eps);
        let d: Vec<f64> = w_tilde.iter().zip(&A).map(|(w, a)| a * w + wd * w).collect();
        let new_v: Vec<f64> = match &v {
            None => d,
            Some(v) => v.iter().zip(&d).map(|(v, d)| mu * v + d).collect(),
        };
        w = w.iter().zip(&new_v).map(|(w, v)| w - LR * v).collect();
        v = Some(new_v);

        let got = model.values();
        assert!(max_abs(&got, &w) <= 1e-14, "step {step}: {got:?} vs {w:?}");
        // The next step's point is ρ from `w`: the model is not left there.
        let next_point = along(&w, v.as_ref(), rho, eps);
        assert!(max_abs(&got, &next_point) > 0.05, "step {step}");

        assert!(!report.second_pass, "step {step}: one pass");
        if step == 0 {
            // No momentum yet: the pass runs at `w`, and the report says no ascent (ρ 0).
            assert_eq!((report.rho, report.perturbation_norm), (0.0, 0.0), "w̃ = w");
        } else {
            assert_eq!(report.rho, rho);
            assert!(
                (report.perturbation_norm - rho).abs() < 1e-9,
                "step {step}: {}",
                report.perturbation_norm
            );
        }
    }
    // Plain momentum SGD goes elsewhere: the check discriminates.
    let mut sgd = SamConfig::preset("sgd", SamConfig::sgd_base(mu, wd))
        .unwrap()
        .init()
        .unwrap();
    let mut plain = Quadratic::new(&W0, &device);
    for _ in 0..5 {
        let (next, report) = sgd.step(LR, plain, |m: &Quadratic, _| m.loss(&A));
        report.unwrap();
        plain = next;
    }
    assert!(max_abs(&plain.values(), &w) > 1e-3);
}

/// One forward-backward pass per step, in both APIs: the loss closure is called once a step, and
/// `ascend` gives the update itself.
#[test]
fn msam_runs_one_pass_per_step() {
    let device = device();
    let data = Data::new(8, &device);
    let config = SamConfig::preset("msam", SamConfig::sgd_base(0.9, 5e-4)).unwrap();
    let mut optim = config.init().unwrap();
    let mut model = Mlp::new(8, &device);
    let mut calls = 0;
    for _ in 0..6 {
        let (next, report) = optim.step(0.05, model, |m: &Mlp, b: Batch| {
            calls += 1;
            data.losses(m, b)
        });
        assert!(!report.unwrap().second_pass);
        model = next;
    }
    assert_eq!(calls, 6);
    for _ in 0..3 {
        let first = optim.begin(0.05, &model);
        assert_eq!(first.second_pass(), Some(false));
        let at_w = data.losses(first.model(), Batch::All);
        let Next::Update(update) = optim.ascend(&model, first, at_w).unwrap() else {
            panic!("MSAM has no second pass");
        };
        let (next, report) = optim.finish(model, update);
        assert!(!report.unwrap().second_pass);
        model = next;
    }
    assert_eq!(optim.steps(), 9);
}

/// MSAM steps along flatmin's own base optimizer's momentum: `Sam::descent` (an outside base
/// optimizer) refuses it, and nothing changes.
#[test]
fn msam_refuses_an_outside_base_optimizer() {
    let device = device();
    let data = Data::new(8, &device);
    let config = SamConfig::preset("msam", SamConfig::sgd_base(0.9, 5e-4)).unwrap();
    assert!(!config.clone().with_rho(0.0).needs_own_update(), "ρ = 0 is plain SGD");
    let mut optim = config.init().unwrap();
    let (model, _, _) = train(&mut optim, Mlp::new(8, &device), &data, 2, 0.05);
    let state = optim.record().to_bytes().unwrap();
    let first = optim.begin(0.05, &model);
    let at_w = data.losses(first.model(), Batch::All);
    let update = optim.ascend(&model, first, at_w).unwrap();
    let Next::Update(update) = update else {
        panic!("MSAM has no second pass");
    };
    assert_eq!(optim.descent(update).err(), Some(StepError::OwnUpdate));
    assert_eq!(optim.steps(), 2);
    assert_eq!(optim.record().to_bytes().unwrap(), state);
    // The gradients form is refused the same way.
    let first = optim.begin(0.05, &model);
    let grads = GradientsParams::from_grads(data.losses(first.model(), Batch::All).mean().backward(), first.model());
    let update = optim.ascend(&model, first, grads).unwrap();
    let Next::Update(update) = update else {
        panic!("MSAM has no second pass");
    };
    assert!(matches!(optim.descent(update), Err(StepError::OwnUpdate)));
}

/// The AdamW form: the preset on a decoupled Adam base decays after the moment step,
/// `w ← (w − step)·(1 − lr·wd)`, and MSAM's point follows Adam's first moment `m` (no bias
/// correction). Two steps by hand (the first at `w`, the second at `w − ρ·m/(‖m‖ + eps)`).
#[test]
fn msam_adamw_decays_after_the_step() {
    let (wd, b1, b2, adam_eps) = (0.01, 0.9, 0.999, 1e-8);
    let config = SamConfig::preset("msam", SamConfig::adam_base(wd, true)).unwrap();
    let BaseConfig::Adam(adam) = &config.base else {
        panic!("an Adam base");
    };
    assert!(adam.decoupled_weight_decay && adam.decay_after_step);
    assert_eq!((adam.beta1, adam.beta2, adam.eps), (b1, b2, adam_eps));
    // Other presets keep PyTorch's order, and so does MSAM on plain Adam (no decoupled decay).
    let BaseConfig::Adam(sam_adam) = SamConfig::preset("sam", SamConfig::adam_base(wd, true)).unwrap().base else {
        panic!("an Adam base");
    };
    assert!(!sam_adam.decay_after_step);
    let BaseConfig::Adam(l2) = SamConfig::preset("msam", SamConfig::adam_base(wd, false)).unwrap().base else {
        panic!("an Adam base");
    };
    assert!(!l2.decay_after_step);

    let (rho, eps) = (config.rho, config.eps);
    let device = device();
    let mut optim = config.init().unwrap();
    let mut model = Quadratic::new(&W0, &device);
    let (mut w, mut m, mut v) = (W0.to_vec(), vec![0.0; 4], vec![0.0; 4]);
    let mut before_order = Vec::new();
    for t in 1..=2 {
        let (next, report) = optim.step(LR, model, |q: &Quadratic, _| q.loss(&A));
        report.unwrap();
        model = next;
        let point = along(&w, (t > 1).then_some(&m), rho, eps);
        let g: Vec<f64> = point.iter().zip(&A).map(|(w, a)| a * w).collect();
        for i in 0..4 {
            m[i] = if t == 1 {
                g[i] * (1.0 - b1)
            } else {
                m[i] + (g[i] - m[i]) * (1.0 - b1)
            };
            v[i] = if t == 1 {
                g[i] * g[i] * (1.0 - b2)
            } else {
                v[i] * b2 + g[i] * g[i] * (1.0 - b2)
            };
        }
        let (bias1, bias2_sqrt) = (1.0 - b1.powi(t), (1.0 - b2.powi(t)).sqrt());
        let step: Vec<f64> = (0..4)
            .map(|i| m[i] / (v[i].sqrt() / bias2_sqrt + adam_eps) * (LR / bias1))
            .collect();
        before_order = (0..4).map(|i| w[i] * (1.0 - LR * wd) - step[i]).collect();
        w = (0..4).map(|i| (w[i] - step[i]) * (1.0 - LR * wd)).collect();
        let got = model.values();
        assert!(max_abs(&got, &w) <= 1e-14, "step {t}: {got:?} vs {w:?}");
    }
    // PyTorch's order (decay first) gives other weights: the check discriminates.
    assert!(max_abs(&before_order, &w) > 1e-6, "{before_order:?} vs {w:?}");
}
