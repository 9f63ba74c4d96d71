//! docs/ALGORITHMS.md §12.2: the exact equivalences between members of the family, on a tanh MLP in
//! float64 over several steps with momentum SGD and Adam bases. "Bitwise" cases compare with
//! `==`; "up to rounding" cases with a 1e-12 bound.

use crate::common::*;
use flatmin::{
    BaseConfig, Combination, FriendlyConfig, Geometry, RhoSchedule, SamConfig, Selection, SelectionRule, SgdConfig,
    SwpConfig, SwpGranularity,
};

const STEPS: usize = 6;
const LR: f64 = 0.1;

fn sgdm() -> BaseConfig {
    BaseConfig::Sgd(SgdConfig::new().with_momentum(0.9).with_weight_decay(5e-4))
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

#[test]
fn rho_zero_is_the_base_optimizer() {
    for base in bases() {
        // One pass (the `sgd` preset short-circuits) and two passes with ρ = 0 agree bitwise.
        let one_pass = trajectory(SamConfig::new(base.clone()).with_rho(0.0));
        let two_pass = trajectory(
            SamConfig::new(base)
                .with_rho(0.0)
                .with_combination(Combination::Gsam { alpha: 0.0 }),
        );
        assert_eq!(one_pass, two_pass);
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
        let fsam = trajectory(
            SamConfig::new(base).with_friendly(Some(FriendlyConfig::new().with_sigma(0.0).with_lambda(0.6))),
        );
        assert_eq!(sam, fsam);
    }
}

#[test]
fn fsam_first_step_is_sam_and_later_steps_are_not() {
    let sam = trajectory(SamConfig::new(sgdm()));
    let fsam = trajectory(SamConfig::new(sgdm()).with_friendly(Some(FriendlyConfig::new())));
    assert_eq!(sam[0], fsam[0]);
    assert!(max_diff(&sam[1..], &fsam[1..]) > 1e-8);
}

#[test]
fn wsam_half_coupled_is_sam_for_any_base() {
    for base in bases() {
        let sam = trajectory(SamConfig::new(base.clone()));
        let wsam = trajectory(SamConfig::new(base).with_combination(Combination::Wsam {
            gamma: 0.5,
            decoupled: false,
            max_norm: None,
        }));
        assert_eq!(sam, wsam);
    }
}

#[test]
fn wsam_half_decoupled_is_sam_only_for_plain_sgd() {
    let plain = BaseConfig::Sgd(SgdConfig::new().with_weight_decay(5e-4));
    let decoupled = Combination::Wsam {
        gamma: 0.5,
        decoupled: true,
        max_norm: None,
    };
    let sam = trajectory(SamConfig::new(plain.clone()));
    let wsam = trajectory(SamConfig::new(plain).with_combination(decoupled.clone()));
    assert!(max_diff(&sam, &wsam) < 1e-12, "{}", max_diff(&sam, &wsam));
    // With momentum, the buffer accumulates g instead of g_p: not equivalent (E4, E6).
    let sam_m = trajectory(SamConfig::new(sgdm()));
    let wsam_m = trajectory(SamConfig::new(sgdm()).with_combination(decoupled));
    assert!(max_diff(&sam_m, &wsam_m) > 1e-6);
}

#[test]
fn wsam_gamma_zero_is_the_base_optimizer() {
    for base in bases() {
        let erm = trajectory(SamConfig::new(base.clone()).with_rho(0.0));
        for decoupled in [false, true] {
            let wsam = trajectory(SamConfig::new(base.clone()).with_combination(Combination::Wsam {
                gamma: 0.0,
                decoupled,
                max_norm: None,
            }));
            assert_eq!(erm, wsam, "decoupled = {decoupled}");
        }
    }
}

#[test]
fn wsam_coupled_and_decoupled_differ_with_momentum() {
    let coupled = trajectory(SamConfig::new(sgdm()).with_combination(Combination::Wsam {
        gamma: 0.9,
        decoupled: false,
        max_norm: None,
    }));
    let decoupled = trajectory(SamConfig::new(sgdm()).with_combination(Combination::Wsam {
        gamma: 0.9,
        decoupled: true,
        max_norm: None,
    }));
    assert!(max_diff(&coupled, &decoupled) > 1e-6);
}

#[test]
fn gsam_alpha_zero_is_sam() {
    for base in bases() {
        let sam = trajectory(SamConfig::new(base.clone()));
        let gsam = trajectory(SamConfig::new(base).with_combination(Combination::Gsam { alpha: 0.0 }));
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
    assert!((optim.rho_at(0.1) - 0.06).abs() < 1e-15);
    assert!((optim.rho_at(0.2) - 0.1).abs() < 1e-15);
    assert!((optim.rho_at(0.0) - 0.02).abs() < 1e-15);
}

fn esam(beta: f64, gamma: f64, granularity: SwpGranularity) -> SamConfig {
    SamConfig::new(sgdm())
        .with_swp(Some(
            SwpConfig::new()
                .with_beta(beta)
                .with_granularity(granularity)
                .with_seed(5),
        ))
        .with_selection(Selection::SharpnessSensitive {
            gamma,
            rule: SelectionRule::TopK,
        })
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
                .with_geometry(Geometry::Fisher { eta: 0.0 }),
        );
        assert!(max_diff(&sam, &fisher) < 1e-12, "{}", max_diff(&sam, &fisher));
    }
}

#[test]
fn presets_are_distinct_algorithms() {
    let mut seen: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for name in flatmin::PRESETS {
        let t = trajectory(SamConfig::preset(name, sgdm()).unwrap().for_run(STEPS as u64, 100));
        for (other, t2) in &seen {
            assert!(max_diff(&t, t2) > 1e-9, "{name} and {other} gave the same trajectory");
        }
        seen.push((name.to_string(), t));
    }
}
