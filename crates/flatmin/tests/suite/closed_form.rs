//! crates/flatmin/ALGORITHMS.md §12.1: single steps on `L = ½(w₁² + 10 w₂²)` from `w = (1, 1)`, plain SGD,
//! lr 0.1, ρ 0.1, eps 1e-12, against the spec's independently computed values.

use crate::common::*;
use burn::module::Param;
use burn::optim::GradientsParams;
use flatmin::{
    AsamConfig, BaseConfig, FisherConfig, GsamConfig, Next, SamConfig, SgdBaseConfig, SquaredAsamConfig, WsamConfig,
};

const A: [f64; 2] = [1.0, 10.0];

fn plain_sgd() -> BaseConfig {
    BaseConfig::Sgd(SgdBaseConfig::new())
}

/// One step through the two-step API, the passes handed in as gradients: `e` (`None` on a step
/// without a second pass) and the weights after it.
fn one_step(config: SamConfig, w0: &[f64]) -> (Option<Vec<f64>>, Vec<f64>) {
    let device = device();
    let model = Quadratic::new(w0, &device);
    let mut optim = config.init().unwrap();
    let first = optim.begin(0.1, &model);
    let grads = GradientsParams::from_grads(first.model().loss(&A).backward(), first.model());
    let (e, update) = match optim.ascend(&model, first, grads).unwrap() {
        Next::Ascent(ascent) => {
            let perturbed = ascent.model().values();
            let e: Vec<f64> = perturbed.iter().zip(w0).map(|(p, w)| p - w).collect();
            let grads_p = GradientsParams::from_grads(ascent.model().loss(&A).backward(), ascent.model());
            (Some(e), ascent.second_pass(grads_p).unwrap())
        }
        Next::Update(update) => (None, update),
    };
    let (model, report) = optim.finish(model, update);
    report.unwrap();
    (e, model.values())
}

fn close(got: &[f64], want: &[f64], tol: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "got {got:?}, want {want:?}");
    }
}

#[test]
fn sgd_step() {
    // ρ = 0 is the base optimizer: one pass, no ascent (e = 0).
    let (e, w1) = one_step(SamConfig::new(plain_sgd()).with_rho(0.0), &[1.0, 1.0]);
    assert_eq!(e, None);
    close(&w1, &[0.9, 0.0], 1e-15);
}

#[test]
fn sam_step() {
    let (e, w1) = one_step(SamConfig::new(plain_sgd()).with_rho(0.1), &[1.0, 1.0]);
    close(&e.unwrap(), &[0.009950371902098902, 0.09950371902098902], 1e-15);
    close(&w1, &[0.8990049628097901, -0.09950371902098909], 1e-14);
}

#[test]
fn gsam_step() {
    let config = SamConfig::new(plain_sgd())
        .with_rho(0.1)
        .with_member(GsamConfig::new().with_alpha(0.5));
    let (_, w1) = one_step(config, &[1.0, 1.0]);
    close(&w1, &[0.9030433336443344, -0.09987466402600509], 1e-14);
}

#[test]
fn coupled_wsam_step() {
    let wsam = WsamConfig::new()
        .with_gamma(0.9)
        .with_decoupled(false)
        .with_max_norm(None);
    let (_, w1) = one_step(SamConfig::new(plain_sgd()).with_rho(0.1).with_member(wsam), &[1.0, 1.0]);
    close(&w1, &[0.8910446652881111, -0.8955334711889009], 1e-13);
}

#[test]
fn fisher_sam_perturbation_lies_on_the_ellipsoid() {
    let config = SamConfig::new(plain_sgd())
        .with_rho(0.1)
        .with_member(FisherConfig::new().with_eta(1.0));
    let e = one_step(config, &[1.0, 1.0]).0.unwrap();
    close(&e, &[0.04096023515294592, 0.008110937654048696], 1e-15);
    // eᵀ diag(1 + η g²) e = γ² (up to the 1e-12 eps added to the norm), with g = (1, 10).
    let quad = e[0] * e[0] * 2.0 + e[1] * e[1] * 101.0;
    assert!((quad - 0.01).abs() < 1e-13, "{quad}");
}

#[test]
fn adaptive_squared_uses_w_squared() {
    // w = (2, 1): g = (2, 10); |w|⊙g = (4, 10); e = ρ·w²⊙g/‖|w|⊙g‖ = 0.1·(8, 10)/sqrt(116).
    let config = SamConfig::new(plain_sgd())
        .with_rho(0.1)
        .with_member(SquaredAsamConfig::new());
    let e = one_step(config, &[2.0, 1.0]).0.unwrap();
    let n = 116f64.sqrt() + 1e-12;
    close(&e, &[0.8 / n, 1.0 / n], 1e-15);
}

#[test]
fn official_asam_scales_weight_tensors_only() {
    // A parameter whose path has no "weight" in it: T = 1, so ASAM is SAM (with its eps); E11.
    let asam = SamConfig::new(plain_sgd())
        .with_rho(0.1)
        .with_member(AsamConfig::new().with_eta(0.01));
    let sam = SamConfig::new(plain_sgd()).with_rho(0.1);
    let (e_asam, w_asam) = one_step(asam, &[2.0, 1.0]);
    let (e_sam, w_sam) = one_step(sam, &[2.0, 1.0]);
    assert!(e_sam.is_some());
    assert_eq!(e_asam, e_sam);
    assert_eq!(w_asam, w_sam);
}

#[test]
fn norm_is_global_over_all_tensors() {
    // crates/flatmin/ALGORITHMS.md §1.3, §12.1: g₁ = 3, g₂ = 4, ρ = 1 → e = (0.6, 0.8), not (1, 1).
    let device = device();
    let model = TwoTensors {
        u: Param::from_tensor(vec1(&[0.0], &device)),
        v: Param::from_tensor(vec1(&[0.0], &device)),
    };
    let loss = (model.u.val().mul_scalar(3.0) + model.v.val().mul_scalar(4.0)).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let optim = SamConfig::new(plain_sgd()).with_rho(1.0).init().unwrap();
    let first = optim.begin(0.1, &model);
    let ascent = optim
        .ascend(&model, first, grads)
        .unwrap()
        .ascent()
        .expect("SAM ascends");
    let u = read(ascent.model().u.val())[0];
    let v = read(ascent.model().v.val())[0];
    close(&[u, v], &[0.6, 0.8], 1e-12);
    assert!((ascent.perturbation_norm() - 1.0).abs() < 1e-12);
    assert!((ascent.grad_norm() - 5.0).abs() < 1e-12);
}
