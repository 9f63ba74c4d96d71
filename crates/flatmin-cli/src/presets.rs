//! Paper-scale training presets (`flatmin train --preset NAME`): the papers' CIFAR settings,
//! for users with a GPU (build with `--features cuda` or `--features wgpu`). On two CPU cores one
//! of these runs takes days: they exist to be run elsewhere, and are documented with the papers'
//! reported numbers beside them.

use crate::train::{Hyper, TrainConfig};

/// A preset: its name, what it reproduces, the paper's figure, and the configuration.
pub struct Preset {
    /// `--preset` name.
    pub name: &'static str,
    /// The setting it follows.
    pub source: &'static str,
    /// What the paper reports (test accuracy, %), for comparison.
    pub reported: &'static str,
    /// Builds the configuration (CIFAR data still needs `--data-dir`).
    pub config: fn() -> TrainConfig,
}

fn cifar(dataset: &str, model: &str, optimizer: &str, lr: f64, weight_decay: f64, hp: Hyper) -> TrainConfig {
    TrainConfig {
        dataset: dataset.into(),
        model: model.into(),
        optimizer: optimizer.into(),
        base: "sgd".into(),
        epochs: 200,
        batch_size: 128,
        lr,
        weight_decay,
        momentum: 0.9,
        augment: true,
        hp,
        ..TrainConfig::default()
    }
}

fn rho(rho: f64) -> Hyper {
    Hyper {
        rho: Some(rho),
        ..Hyper::default()
    }
}

/// Every preset.
pub const PRESETS: [Preset; 9] = [
    Preset {
        name: "sam-wrn28-10-cifar10",
        source: "SAM (Foret et al. 2021): WRN-28-10, 200 epochs, lr 0.1, wd 5e-4, ρ 0.05, label smoothing 0.1 (davda54 example)",
        reported: "SGD 96.5 → SAM 97.3 (error 3.5 → 2.7)",
        config: || TrainConfig {
            label_smoothing: 0.1,
            ..cifar("cifar10", "wrn-28-10", "sam", 0.1, 5e-4, rho(0.05))
        },
    },
    Preset {
        name: "sam-wrn28-10-cifar100",
        source: "SAM: WRN-28-10 on CIFAR-100, ρ 0.1",
        reported: "SGD 81.2 → SAM 83.5 (error 18.8 → 16.5)",
        config: || TrainConfig {
            label_smoothing: 0.1,
            ..cifar("cifar100", "wrn-28-10", "sam", 0.1, 5e-4, rho(0.1))
        },
    },
    Preset {
        name: "asam-wrn28-10-cifar10",
        source: "ASAM (Kwon et al. 2021): WRN-28-10, lr 0.1, wd 5e-4, ρ 0.5, η 0.01, label smoothing 0.1",
        reported: "SGD 96.34, SAM 96.98, ASAM 97.28",
        config: || TrainConfig {
            label_smoothing: 0.1,
            ..cifar(
                "cifar10",
                "wrn-28-10",
                "asam",
                0.1,
                5e-4,
                Hyper {
                    rho: Some(0.5),
                    asam_eta: Some(0.01),
                    ..Hyper::default()
                },
            )
        },
    },
    Preset {
        name: "asam-wrn28-10-cifar100",
        source: "ASAM: WRN-28-10 on CIFAR-100, ρ 1.0",
        reported: "SGD 81.56, SAM 83.42, ASAM 83.68",
        config: || TrainConfig {
            label_smoothing: 0.1,
            ..cifar(
                "cifar100",
                "wrn-28-10",
                "asam",
                0.1,
                5e-4,
                Hyper {
                    rho: Some(1.0),
                    asam_eta: Some(0.01),
                    ..Hyper::default()
                },
            )
        },
    },
    Preset {
        name: "esam-resnet18-cifar10",
        source: "ESAM (Du et al. 2022): ResNet-18, lr 0.05, wd 1e-3, ρ 0.05, β 0.6, γ 0.5 (run.sh)",
        reported: "SGD 95.41, SAM 96.52, ESAM 96.56; ESAM ≈ 1.4× SGD time",
        config: || {
            cifar(
                "cifar10",
                "resnet18",
                "esam",
                0.05,
                1e-3,
                Hyper {
                    rho: Some(0.05),
                    esam_beta: Some(0.6),
                    esam_gamma: Some(0.5),
                    ..Hyper::default()
                },
            )
        },
    },
    Preset {
        name: "esam-resnet18-cifar100",
        source: "ESAM: ResNet-18 on CIFAR-100, same settings",
        reported: "SGD 78.17, SAM 80.17, ESAM 80.41",
        config: || {
            cifar(
                "cifar100",
                "resnet18",
                "esam",
                0.05,
                1e-3,
                Hyper {
                    rho: Some(0.05),
                    esam_beta: Some(0.6),
                    esam_gamma: Some(0.5),
                    ..Hyper::default()
                },
            )
        },
    },
    Preset {
        name: "fsam-resnet18-cifar100",
        source: "F-SAM (Li et al. 2024): ResNet-18, lr 0.05, wd 1e-3, ρ 0.2, σ 1, λ 0.6 (run.sh; the repository adds cutout, not implemented here)",
        reported: "SAM 80.78, F-SAM 81.19 (repository logs, one seed)",
        config: || {
            cifar(
                "cifar100",
                "resnet18",
                "fsam",
                0.05,
                1e-3,
                Hyper {
                    rho: Some(0.2),
                    fsam_sigma: Some(1.0),
                    fsam_lambda: Some(0.6),
                    ..Hyper::default()
                },
            )
        },
    },
    Preset {
        name: "wsam-resnet18-cifar10",
        source: "WSAM (Yue et al. 2023): ResNet-18, lr 0.1, wd 5e-4, ρ 0.2, γ 0.9, decoupled (train_wsam_entry.sh)",
        reported: "WSAM ≥ SAM by ≈0.1–0.4 points (Table 2; exact cells not verified)",
        config: || {
            cifar(
                "cifar10",
                "resnet18",
                "wsam",
                0.1,
                5e-4,
                Hyper {
                    rho: Some(0.2),
                    wsam_gamma: Some(0.9),
                    ..Hyper::default()
                },
            )
        },
    },
    Preset {
        name: "gsam-wrn28-10-cifar10",
        source: "GSAM (Zhuang et al. 2022) PyTorch CIFAR example: WRN, adaptive, ρ 2.0, α 0.4, wd 5e-4, cosine lr",
        reported: "the paper reports ImageNet/ViT numbers only (e.g. ViT-B/16 79.9 → 81.0)",
        config: || {
            cifar(
                "cifar10",
                "wrn-28-10",
                "gsam",
                0.1,
                5e-4,
                Hyper {
                    rho: Some(2.0),
                    adaptive: Some(true),
                    gsam_alpha: Some(0.4),
                    ..Hyper::default()
                },
            )
        },
    },
];

/// The configuration of preset `name`.
pub fn preset(name: &str) -> Result<TrainConfig, String> {
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .map(|p| (p.config)())
        .ok_or_else(|| {
            format!(
                "--preset `{name}`: expected one of {}",
                PRESETS.map(|p| p.name).join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_a_valid_configuration() {
        for p in &PRESETS {
            let c = (p.config)();
            c.check().unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(c.augment && c.epochs == 200, "{}", p.name);
        }
        assert!(preset("nope").is_err());
        assert_eq!(preset("esam-resnet18-cifar10").unwrap().hp.esam_beta, Some(0.6));
    }
}
