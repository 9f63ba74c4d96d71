//! The configuration of a SAM-family optimizer: one step with four choices (perturbation,
//! selection, combination, schedule) and a base optimizer. Every published algorithm is a
//! configuration ([`SamConfig::preset`]), and so is every mixture of them.

use burn::config::Config;

use crate::base::{AdamConfig, BaseConfig, SgdConfig};
use crate::combination::Combination;
use crate::error::{ConfigError, check_range};
use crate::masks::{SwpConfig, SwpGranularity};
use crate::perturbation::{FriendlyConfig, Geometry};
use crate::sam::Sam;
use crate::schedule::{PassSchedule, RhoSchedule};
use crate::selection::{Selection, SelectionRule};

/// Configuration of a [`Sam`] optimizer.
///
/// ```
/// use flatmin::{BaseConfig, Combination, SamConfig, SgdConfig};
///
/// // F-SAM's perturbation with WSAM's decoupled combination, on momentum SGD.
/// let config = SamConfig::new(BaseConfig::Sgd(SgdConfig::new().with_momentum(0.9)))
///     .with_rho(0.1)
///     .with_friendly(Some(flatmin::FriendlyConfig::new()))
///     .with_combination(Combination::Wsam { gamma: 0.9, decoupled: true, max_norm: None });
/// let optimizer = config.init().expect("valid hyperparameters");
/// # let _ = optimizer;
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct SamConfig {
    /// The base optimizer that applies the combined gradient.
    pub base: BaseConfig,
    /// ρ, the perturbation radius (ρ_max under a schedule). ρ = 0 is the base optimizer.
    #[config(default = 0.05)]
    pub rho: f64,
    /// How ρ follows the learning rate.
    #[config(default = "RhoSchedule::Constant")]
    pub rho_schedule: RhoSchedule,
    /// Added to the norm in the perturbation's denominator (never inside the square root), so a
    /// zero gradient gives a zero perturbation.
    #[config(default = 1e-12)]
    pub eps: f64,
    /// The ball the perturbation lives in.
    #[config(default = "Geometry::Euclidean")]
    pub geometry: Geometry,
    /// F-SAM: remove an EMA of past gradients from the direction.
    #[config(default = "None")]
    pub friendly: Option<FriendlyConfig>,
    /// ESAM: perturb a random part of the weights.
    #[config(default = "None")]
    pub swp: Option<SwpConfig>,
    /// Which samples the second pass uses.
    #[config(default = "Selection::All")]
    pub selection: Selection,
    /// How the two gradients become the update.
    #[config(default = "Combination::Plain")]
    pub combination: Combination,
    /// Which steps run the second pass; none is [`PassSchedule::Always`] (every preset so far).
    /// Optional so that configurations saved before the schedule existed still read.
    #[config(default = "None")]
    pub schedule: Option<PassSchedule>,
}

/// The names [`SamConfig::preset`] knows.
pub const PRESETS: [&str; 8] = ["sgd", "sam", "asam", "esam", "fsam", "wsam", "gsam", "fisher-sam"];

impl SamConfig {
    /// Checks every hyperparameter; the first bad one is returned, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.base.validate()?;
        check_range("rho", self.rho, 0.0, true, f64::INFINITY, false, "a finite number >= 0")?;
        self.rho_schedule.validate(self.rho)?;
        check_range("eps", self.eps, 0.0, false, f64::INFINITY, false, "a finite number > 0")?;
        self.geometry.validate()?;
        if let Some(f) = &self.friendly {
            f.validate()?;
        }
        if let Some(s) = &self.swp {
            s.validate()?;
        }
        self.selection.validate()?;
        self.combination.validate()?;
        self.schedule.as_ref().map_or(Ok(()), PassSchedule::validate)
    }

    /// Builds the optimizer, validating every hyperparameter first.
    pub fn init(&self) -> Result<Sam, ConfigError> {
        self.validate()?;
        Ok(Sam::from_config(self.clone()))
    }

    /// The published algorithm `name` (one of [`PRESETS`]) on the given base optimizer, with
    /// its authors' default hyperparameters:
    ///
    /// | name | settings |
    /// |---|---|
    /// | `sgd` | ρ = 0: the base optimizer alone (one pass) |
    /// | `sam` | ρ = 0.05 |
    /// | `asam` | official ASAM, ρ = 0.5, η = 0.01 |
    /// | `esam` | ρ = 0.05, SWP β = 0.6 per tensor, selection γ = 0.5 (top-k), eps 1e-7 |
    /// | `fsam` | ρ = 0.05, σ = 1, λ = 0.9 |
    /// | `wsam` | ρ = 0.05, γ = 0.9, decoupled, no clipping |
    /// | `gsam` | ρ = 0.05, α = 0.4 |
    /// | `fisher-sam` | ρ = 0.1, η = 1 |
    ///
    /// ```
    /// let sgd = flatmin::BaseConfig::Sgd(flatmin::SgdConfig::new().with_momentum(0.9));
    /// let wsam = flatmin::SamConfig::preset("wsam", sgd).unwrap();
    /// assert_eq!(wsam.rho, 0.05);
    /// assert!(flatmin::SamConfig::preset("adamsam", flatmin::BaseConfig::Adam(flatmin::AdamConfig::new())).is_err());
    /// ```
    pub fn preset(name: &str, base: BaseConfig) -> Result<Self, ConfigError> {
        let sam = SamConfig::new(base);
        Ok(match name {
            "sgd" => sam.with_rho(0.0),
            "sam" => sam,
            "asam" => sam.with_rho(0.5).with_geometry(Geometry::Asam { eta: 0.01 }),
            "esam" => sam
                .with_eps(1e-7)
                .with_swp(Some(
                    SwpConfig::new()
                        .with_beta(0.6)
                        .with_granularity(SwpGranularity::PerTensor),
                ))
                .with_selection(Selection::SharpnessSensitive {
                    gamma: 0.5,
                    rule: SelectionRule::TopK,
                }),
            "fsam" => sam.with_friendly(Some(FriendlyConfig::new())),
            "wsam" => sam.with_combination(Combination::Wsam {
                gamma: 0.9,
                decoupled: true,
                max_norm: None,
            }),
            "gsam" => sam.with_combination(Combination::Gsam { alpha: 0.4 }),
            "fisher-sam" => sam.with_rho(0.1).with_geometry(Geometry::Fisher { eta: 1.0 }),
            other => {
                return Err(ConfigError::new(
                    "optimizer",
                    other,
                    "one of sgd, sam, asam, esam, fsam, wsam, gsam, fisher-sam",
                ));
            }
        })
    }

    /// Momentum SGD as PyTorch defines it, a convenience for the common base.
    pub fn sgd_base(momentum: f64, weight_decay: f64) -> BaseConfig {
        BaseConfig::Sgd(SgdConfig::new().with_momentum(momentum).with_weight_decay(weight_decay))
    }

    /// Adam (or AdamW with `decoupled`) as PyTorch defines it.
    pub fn adam_base(weight_decay: f64, decoupled: bool) -> BaseConfig {
        BaseConfig::Adam(
            AdamConfig::new()
                .with_weight_decay(weight_decay)
                .with_decoupled_weight_decay(decoupled),
        )
    }

    /// Whether a step is just the base optimizer (ρ = 0 and nothing that needs `g_p`): the
    /// one-call API then runs a single pass.
    pub fn is_base_only(&self) -> bool {
        self.rho == 0.0 && matches!(self.combination, Combination::Plain) && !self.selection.needs_losses()
    }
}
