//! The configuration of a SAM-family optimizer: one step with four choices (perturbation,
//! selection, combination, schedule) and a base optimizer. Every published algorithm is a
//! configuration ([`SamConfig::preset`]), and so is every mixture of them.

use burn::config::Config;

use crate::adaptive::AdaptiveConfig;
use crate::base::{AdamConfig, BaseConfig, BsamConfig, SgdConfig};
use crate::combination::Combination;
use crate::error::{ConfigError, check_non_negative, check_positive};
use crate::looksam::LookSamConfig;
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
    /// LookSAM: the steps without a second pass reuse the sharpness direction of the last SAM
    /// step. Optional, as `schedule`, so that older saved configurations still read.
    #[config(default = "None")]
    pub looksam: Option<LookSamConfig>,
}

/// The names [`SamConfig::preset`] knows.
pub const PRESETS: [&str; 13] = [
    "sgd",
    "sam",
    "asam",
    "esam",
    "fsam",
    "wsam",
    "gsam",
    "fisher-sam",
    "looksam",
    "sam-every-5",
    "rst",
    "ae-sam",
    "bsam",
];

impl SamConfig {
    /// Checks every hyperparameter; the first bad one is returned, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.base.validate()?;
        check_non_negative("rho", self.rho)?;
        self.rho_schedule.validate(self.rho)?;
        check_positive("eps", self.eps)?;
        self.geometry.validate()?;
        if let Some(f) = &self.friendly {
            f.validate()?;
        }
        if let Some(s) = &self.swp {
            s.validate()?;
        }
        self.selection.validate()?;
        self.combination.validate()?;
        self.schedule.as_ref().map_or(Ok(()), PassSchedule::validate)?;
        if let Some(l) = &self.looksam {
            l.validate()?;
        }
        self.validate_mixtures()
    }

    /// The mixtures that have no meaning, named.
    fn validate_mixtures(&self) -> Result<(), ConfigError> {
        let adaptive = matches!(self.schedule, Some(PassSchedule::Adaptive(_)));
        let per_tensor_swp = matches!(&self.swp, Some(s) if s.granularity == SwpGranularity::PerTensor);
        if adaptive && per_tensor_swp {
            return Err(ConfigError::new(
                "swp.granularity",
                "PerTensor",
                "PerElement with AE-SAM: AE-SAM decides after the first pass whether to run the second, \
                 and ESAM's per-tensor mask must be drawn before it",
            ));
        }
        if let BaseConfig::Bsam(_) = self.base {
            let alone = |field: &'static str, ok: bool, expected: &'static str| {
                if ok {
                    Ok(())
                } else {
                    Err(ConfigError::new(field, "set", expected))
                }
            };
            let own = "left at its default: bSAM makes its own noisy first pass, ascent ρ·g/s and update";
            alone("geometry", matches!(self.geometry, Geometry::Euclidean), own)?;
            alone("friendly", self.friendly.is_none(), own)?;
            alone("swp", self.swp.is_none(), own)?;
            alone("selection", matches!(self.selection, Selection::All), own)?;
            alone("combination", matches!(self.combination, Combination::Plain), own)?;
            alone("looksam", self.looksam.is_none(), own)?;
            alone(
                "schedule",
                matches!(self.schedule, None | Some(PassSchedule::Always)),
                "Always with bSAM: every bSAM step runs both passes",
            )?;
        }
        Ok(())
    }

    /// Fills in what a method needs to know of the training run when it was left unset (0):
    /// AE-SAM's `total_steps` and bSAM's `data_size` (the number of training examples).
    ///
    /// ```
    /// let base = flatmin::SamConfig::sgd_base(0.9, 0.0);
    /// let ae = flatmin::SamConfig::preset("ae-sam", base).unwrap();
    /// assert!(ae.init().is_err()); // AE-SAM's threshold needs the run's length
    /// assert!(ae.for_run(1000, 50_000).init().is_ok());
    /// ```
    pub fn for_run(mut self, total_steps: u64, data_size: u64) -> Self {
        if let Some(PassSchedule::Adaptive(a)) = &mut self.schedule
            && a.total_steps == 0
        {
            a.total_steps = total_steps;
        }
        if let BaseConfig::Bsam(b) = &mut self.base
            && b.data_size == 0
        {
            b.data_size = data_size;
        }
        self
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
    /// | `looksam` | ρ = 0.05, a SAM step every k = 5 steps, α = 0.7, global vectors |
    /// | `sam-every-5` | ρ = 0.05, a SAM step every 5 steps, base steps between |
    /// | `rst` | ρ = 0.05, each step a SAM step with probability 0.5 (seed 0) |
    /// | `ae-sam` | ρ = 0.05, δ = 0.9, threshold c from −1 to 1 (needs [`SamConfig::for_run`]) |
    /// | `bsam` | ρ = 0.01 on bSAM's own base optimizer (β1 0.9, β2 0.999, prior precision 10, damping 0.1, s_init 1; needs [`SamConfig::for_run`]); the given base is not used |
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
            "looksam" => sam
                .with_schedule(Some(PassSchedule::Every { k: 5 }))
                .with_looksam(Some(LookSamConfig::new())),
            "sam-every-5" => sam.with_schedule(Some(PassSchedule::Every { k: 5 })),
            "rst" => sam.with_schedule(Some(PassSchedule::Random {
                probability: 0.5,
                seed: 0,
            })),
            "ae-sam" => sam.with_schedule(Some(PassSchedule::Adaptive(AdaptiveConfig::new()))),
            "bsam" => SamConfig::new(BaseConfig::Bsam(BsamConfig::new())).with_rho(0.01),
            other => {
                return Err(ConfigError::new(
                    "optimizer",
                    other,
                    "one of sgd, sam, asam, esam, fsam, wsam, gsam, fisher-sam, looksam, sam-every-5, rst, ae-sam, bsam",
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
        self.rho == 0.0
            && matches!(self.combination, Combination::Plain)
            && !self.selection.needs_losses()
            && !matches!(self.base, BaseConfig::Bsam(_))
    }
}
