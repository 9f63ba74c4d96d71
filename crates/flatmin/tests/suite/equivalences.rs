//! crates/flatmin/ALGORITHMS.md §12.2: the exact equivalences between members of the family, on a tanh MLP in
//! float64 over several steps with momentum SGD and Adam bases. "Bitwise" cases compare with
//! `==`; "up to rounding" cases with a 1e-12 bound.

use crate::common::*;
use flatmin::{
    BaseConfig, FisherConfig, FriendlyConfig, GsamConfig, RhoSchedule, SamConfig, SelectionConfig, SelectionRule,
    SgdBaseConfig, SwpConfig, SwpGranularity, WsamConfig,
};

const STEPS: usize = 6;
const LR: f64 = 0.1;

fn sgdm() -> BaseConfig {
    BaseConfig::Sgd(SgdBaseConfig::new().with_momentum(0.9).with_weight_decay(5e-4))
}

fn adam() -> BaseConfig {
    SamConfig::adam_base(1e-3, false)
}

fn trajectory(config: SamConfig) -> Vec<Vec<f64>> {
    let device = device();
    let data = Data::new(11, &device);
    let mut optim = config.init().unwrap();
    train(&mut optim, Mlp::new(3, &device), &data, STEPS, LR).1
}

fn bases() -> [BaseConfig; 2] {
    [sgdm(), adam()]
}

/// ρ = 0 is now always one pass (`is_base_only`), whatever the members, so the two-pass form of
/// E1 is reached through the ρ schedule: ρ_max = 0.05 with ρ_min = 0 at lr_min = LR gives ρ_t = 0
/// at every step, and the step runs both passes with `e = 0`.
fn two_passes_at_rho_zero(base: BaseConfig) -> SamConfig {
    SamConfig::new(base)
        .with_rho(0.05)
        .with_rho_schedule(RhoSchedule::ProportionalToLr {
            rho_min: 0.0,
            lr_max: 2.0 * LR,
            lr_min: LR,
        })
}

#[test]
fn rho_zero_is_the_base_optimizer() {
    for base in bases() {
        // One pass (ρ = 0 short-circuits) and two passes with ρ_t = 0 agree bitwise.
        let one_pass_config = SamConfig::new(base.clone()).with_rho(0.0);
        assert!(one_pass_config.is_base_only());
        let one_pass = trajectory(one_pass_config);
        let two_pass = two_passes_at_rho_zero(base).with_member(GsamConfig::new().with_alpha(0.0));
        assert!(!two_pass.is_base_only());
        let device = device();
        let data = Data::new(11, &device);
        let mut optim = two_pass.init().unwrap();
        let (_, params, reports) = train(&mut optim, Mlp::new(3, &device), &data, STEPS, LR);
        assert!(
            reports
                .iter()
                .all(|r| r.second_pass && r.rho == 0.0 && r.perturbation_norm == 0.0)
        );
        assert_eq!(bits(&one_pass), bits(&params));
    }
}

#[test]
fn rho_zero_differs_from_sam() {
    let base = trajectory(SamConfig::new(sgdm()).with_rho(0.0));
    let sam = trajectory(SamConfig::new(sgdm()).with_rho(0.05));
    assert!(max_diff(&base, &sam) > 1e-6);
}

#[test]
fn fsam_sigma_zero_is_sam() {
    for base in bases() {
        let sam = trajectory(SamConfig::new(base.clone()));
        let fsam = trajectory(SamConfig::new(base).with_member(FriendlyConfig::new().with_sigma(0.0).with_lambda(0.6)));
        assert_eq!(sam, fsam);
    }
}

#[test]
fn fsam_first_step_is_sam_and_later_steps_are_not() {
    let sam = trajectory(SamConfig::new(sgdm()));
    let fsam = trajectory(SamConfig::new(sgdm()).with_member(FriendlyConfig::new()));
    assert_eq!(sam[0], fsam[0]);
    assert!(max_diff(&sam[1..], &fsam[1..]) > 1e-8);
}

#[test]
fn wsam_half_coupled_is_sam_for_any_base() {
    for base in bases() {
        let sam = trajectory(SamConfig::new(base.clone()));
        let wsam = trajectory(SamConfig::new(base).with_member(wsam(0.5, false)));
        assert_eq!(sam, wsam);
    }
}

#[test]
fn wsam_half_decoupled_is_sam_only_for_plain_sgd() {
    let plain = BaseConfig::Sgd(SgdBaseConfig::new().with_weight_decay(5e-4));
    let decoupled = wsam(0.5, true);
    let sam = trajectory(SamConfig::new(plain.clone()));
    let wsam = trajectory(SamConfig::new(plain).with_member(decoupled.clone()));
    assert!(max_diff(&sam, &wsam) < 1e-12, "{}", max_diff(&sam, &wsam));
    // With momentum, the buffer accumulates g instead of g_p: not equivalent (E4, E6).
    let sam_m = trajectory(SamConfig::new(sgdm()));
    let wsam_m = trajectory(SamConfig::new(sgdm()).with_member(decoupled));
    assert!(max_diff(&sam_m, &wsam_m) > 1e-6);
}

#[test]
fn wsam_gamma_zero_is_the_base_optimizer() {
    for base in bases() {
        let erm = trajectory(SamConfig::new(base.clone()).with_rho(0.0));
        for decoupled in [false, true] {
            let wsam = trajectory(SamConfig::new(base.clone()).with_member(wsam(0.0, decoupled)));
            assert_eq!(erm, wsam, "decoupled = {decoupled}");
        }
    }
}

#[test]
fn wsam_coupled_and_decoupled_differ_with_momentum() {
    let coupled = trajectory(SamConfig::new(sgdm()).with_member(wsam(0.9, false)));
    let decoupled = trajectory(SamConfig::new(sgdm()).with_member(wsam(0.9, true)));
    assert!(max_diff(&coupled, &decoupled) > 1e-6);
}

#[test]
fn gsam_alpha_zero_is_sam() {
    for base in bases() {
        let sam = trajectory(SamConfig::new(base.clone()));
        let gsam = trajectory(SamConfig::new(base).with_member(GsamConfig::new().with_alpha(0.0)));
        assert_eq!(sam, gsam);
    }
}

#[test]
fn proportional_rho_with_a_flat_lr_range_is_constant_rho() {
    let sam = trajectory(SamConfig::new(sgdm()).with_rho(0.07));
    let scheduled = trajectory(SamConfig::new(sgdm()).with_rho(0.07).with_rho_schedule(
        RhoSchedule::ProportionalToLr {
            rho_min: 0.07,
            lr_max: LR,
            lr_min: LR,
        },
    ));
    assert_eq!(sam, scheduled);
}

#[test]
fn proportional_rho_follows_the_learning_rate() {
    let config = SamConfig::new(sgdm())
        .with_rho(0.1)
        .with_rho_schedule(RhoSchedule::ProportionalToLr {
            rho_min: 0.02,
            lr_max: 0.2,
            lr_min: 0.0,
        });
    let optim = config.init().unwrap();
    assert!((optim.config().rho_at(0.1) - 0.06).abs() < 1e-15);
    assert!((optim.config().rho_at(0.2) - 0.1).abs() < 1e-15);
    assert!((optim.config().rho_at(0.0) - 0.02).abs() < 1e-15);
    // The step uses it: ρ at the step's learning rate is in the report.
    let device = device();
    let data = Data::new(11, &device);
    let mut optim = config.init().unwrap();
    let (_, _, reports) = train(&mut optim, Mlp::new(3, &device), &data, 1, 0.1);
    assert!((reports[0].rho - 0.06).abs() < 1e-15, "{}", reports[0].rho);
}

fn esam(beta: f64, gamma: f64, granularity: SwpGranularity) -> SamConfig {
    SamConfig::new(sgdm())
        .with_member(
            SwpConfig::new()
                .with_beta(beta)
                .with_granularity(granularity)
                .with_seed(5),
        )
        .with_member(SelectionConfig::new().with_gamma(gamma).with_rule(SelectionRule::TopK))
}

fn wsam(gamma: f64, decoupled: bool) -> WsamConfig {
    WsamConfig::new()
        .with_gamma(gamma)
        .with_decoupled(decoupled)
        .with_max_norm(None)
}

#[test]
fn esam_beta_one_gamma_one_is_sam() {
    let sam = trajectory(SamConfig::new(sgdm()));
    for granularity in [SwpGranularity::PerTensor, SwpGranularity::PerElement] {
        assert_eq!(sam, trajectory(esam(1.0, 1.0, granularity)), "{granularity:?}");
    }
}

#[test]
fn esam_differs_from_sam_when_it_masks_and_selects() {
    let sam = trajectory(SamConfig::new(sgdm()));
    assert!(max_diff(&sam, &trajectory(esam(0.5, 1.0, SwpGranularity::PerTensor))) > 1e-8);
    assert!(max_diff(&sam, &trajectory(esam(1.0, 0.5, SwpGranularity::PerTensor))) > 1e-8);
    assert!(max_diff(&sam, &trajectory(esam(0.5, 1.0, SwpGranularity::PerElement))) > 1e-8);
}

#[test]
fn fisher_eta_zero_is_sam() {
    for base in bases() {
        let sam = trajectory(SamConfig::new(base.clone()).with_rho(0.05));
        let fisher = trajectory(
            SamConfig::new(base)
                .with_rho(0.05)
                .with_member(FisherConfig::new().with_eta(0.0)),
        );
        assert!(max_diff(&sam, &fisher) < 1e-12, "{}", max_diff(&sam, &fisher));
    }
}

#[test]
fn presets_are_distinct_algorithms() {
    let mut seen: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for name in flatmin::PRESETS {
        // AE-SAM as the first steps of a 100-step run: its threshold falls from 1 to -1 over the
        // run, and over a run of STEPS steps every step would be a SAM step (its statistics
        // start from 0): SAM's trajectory.
        let t = trajectory(SamConfig::preset(name, sgdm()).unwrap().for_run(100, 100));
        for (other, t2) in &seen {
            assert!(max_diff(&t, t2) > 1e-9, "{name} and {other} gave the same trajectory");
        }
        seen.push((name.to_string(), t));
    }
}

/// Every preset with a ρ, at ρ = 0, is the base optimizer bit for bit: 10 steps on a fixed
/// batch sequence end where the `sgd` preset on the same base (momentum 0.9, weight decay 5e-4)
/// ends, through the one-call API and through the two-step API. bSAM is its own base optimizer:
/// ρ = 0 does not make it SGD. The check discriminates: at ρ = 0.05 every preset leaves SGD's
/// trajectory.
#[test]
fn rho_zero_is_the_base_optimizer_bit_for_bit() {
    const N: usize = 10;
    let base = SamConfig::sgd_base(0.9, 5e-4);
    let device = device();
    let batches = Batches::new(7, 3, &device);
    let run = |config: &SamConfig, two_steps: bool| {
        let mut optim = config.init().unwrap();
        let model = Mlp::new(5, &device);
        if two_steps {
            train_two_step(&mut optim, model, &batches, N, LR)
        } else {
            train_on(&mut optim, model, &batches, 0, N, LR)
        }
    };
    let sgd = SamConfig::preset("sgd", base.clone()).unwrap();
    assert!(sgd.is_base_only());
    let (_, reference, _) = run(&sgd, false);
    let mut checked = 0;
    let mut differing = Vec::new();
    for name in flatmin::PRESETS.into_iter().filter(|&n| n != "sgd") {
        let preset = SamConfig::preset(name, base.clone()).unwrap().for_run(N as u64, 72);
        assert!(preset.rho > 0.0, "{name} has a ρ");
        let zero = preset.clone().with_rho(0.0);
        if name == "bsam" {
            assert!(!zero.is_base_only(), "bSAM is its own base optimizer");
            let (_, own, reports) = run(&zero, false);
            assert!(reports.iter().all(|r| r.second_pass), "bSAM runs both passes at ρ = 0");
            assert!(max_diff(&own, &reference) > 1e-9, "bSAM at ρ = 0 is not SGD");
            continue;
        }
        assert!(zero.is_base_only(), "{name} at ρ = 0");
        for two_steps in [false, true] {
            let (_, params, reports) = run(&zero, two_steps);
            assert!(
                reports.iter().all(|r| !r.second_pass && r.rho == 0.0),
                "{name}: one pass per step"
            );
            if bits(&params) != bits(&reference) {
                differing.push(format!(
                    "{name} (two-step API: {two_steps}): max |Δw| = {:e}",
                    max_diff(&params, &reference)
                ));
            }
        }
        let (_, params, _) = run(&preset.with_rho(0.05), false);
        assert!(max_diff(&params, &reference) > 1e-9, "{name} at ρ = 0.05 is not SGD");
        checked += 1;
    }
    assert_eq!(checked, flatmin::PRESETS.len() - 2);
    assert!(differing.is_empty(), "not the base optimizer at ρ = 0: {differing:#?}");
}
