//! The configuration of a SAM-family optimizer: the step's own settings (ρ, its schedule, eps),
//! the base optimizer, and the members that make it one algorithm or another (at most one per
//! room of the step). Every published algorithm is a configuration ([`SamConfig::preset`]), and
//! so is every mixture of them.

use burn::config::Config;

use crate::base::{AdamBaseConfig, BaseConfig, SgdBaseConfig};
use crate::error::ConfigError;
use crate::hyperparameter::{Declaration, Declared, Range, Value, check_all, declare};
use crate::members::{Member, PRESETS, Registered, insert};

/// How ρ follows the learning rate.
#[derive(Config, Debug, PartialEq)]
pub enum RhoSchedule {
    /// ρ is the configured `rho` at every step.
    Constant,
    /// GSAM's `ProportionScheduler`: `ρ_t = ρ_min + (ρ − ρ_min)·(lr_t − lr_min)/(lr_max − lr_min)`,
    /// with the configured `rho` as ρ_max. With `lr_max == lr_min`, ρ_t is `rho`.
    ProportionalToLr {
        /// ρ at the smallest learning rate.
        rho_min: f64,
        /// The largest learning rate of the schedule.
        lr_max: f64,
        /// The smallest learning rate of the schedule.
        lr_min: f64,
    },
}

impl RhoSchedule {
    /// ρ at learning rate `lr`, given ρ_max = `rho`.
    pub fn rho_at(&self, rho: f64, lr: f64) -> f64 {
        match *self {
            RhoSchedule::Constant => rho,
            RhoSchedule::ProportionalToLr {
                rho_min,
                lr_max,
                lr_min,
            } => {
                if lr_max == lr_min {
                    rho
                } else {
                    rho_min + (rho - rho_min) * (lr - lr_min) / (lr_max - lr_min)
                }
            }
        }
    }

    /// Checks the schedule against ρ_max = `rho`.
    pub fn validate(&self, rho: f64) -> Result<(), ConfigError> {
        if let RhoSchedule::ProportionalToLr {
            rho_min,
            lr_max,
            lr_min,
        } = *self
        {
            Range::new(0.0, true, rho, true, "a number in [0, rho]").check("rho_min", rho_min)?;
            Range::NON_NEGATIVE.check("lr_min", lr_min)?;
            Range::new(lr_min, true, f64::INFINITY, false, "a finite number >= lr_min").check("lr_max", lr_max)?;
            if lr_max == lr_min && rho_min != rho {
                return Err(ConfigError::new(
                    "rho_min",
                    rho_min,
                    "equal to rho when lr_max == lr_min (both ranges degenerate, as GSAM requires)",
                ));
            }
        }
        Ok(())
    }
}

/// How a step treats a model whose weights are stored in a half-precision float type (bf16 or
/// f16). Burn alone trains such a model in that type, without a master copy or loss scaling;
/// [`Precision::Mixed`] adds both.
///
/// ```
/// use flatmin::{Precision, SamConfig};
///
/// let config = SamConfig::new(SamConfig::sgd_base(0.9, 0.0)).with_precision(Precision::mixed());
/// assert!(config.init().is_ok());
/// let bad = SamConfig::new(SamConfig::sgd_base(0.9, 0.0)).with_precision(Precision::Mixed {
///     init_scale: 65536.0,
///     growth_factor: 1.0, // must grow
///     backoff_factor: 0.5,
///     growth_interval: 2000,
/// });
/// assert_eq!(bad.init().err().unwrap().field, "precision.growth_factor");
/// ```
#[derive(Config, Debug, PartialEq)]
pub enum Precision {
    /// Every step computes in the model's own float type: no copy, no cast, no scaling (the
    /// default, and what every flatmin so far did).
    Native,
    /// Mixed precision with master weights, for a model stored in bf16 or f16: the optimizer
    /// keeps the weights and its state in f32, computes the perturbation, the norms and the
    /// update there, and writes the perturbed and updated models back in the model's type.
    /// An f16 model's loss is also multiplied by a dynamic scale before each backward pass
    /// (f16 gradients underflow without it) and the gradients divided by it in f32: a step with
    /// a non-finite gradient is skipped and the scale multiplied by `backoff_factor`; after
    /// `growth_interval` good steps in a row it is multiplied by `growth_factor`. An f32 or f64
    /// model is trained as with [`Precision::Native`].
    Mixed {
        /// The scale of the first step (PyTorch's `GradScaler`: 2^16).
        init_scale: f64,
        /// What the scale is multiplied by after `growth_interval` good steps (> 1).
        growth_factor: f64,
        /// What the scale is multiplied by after a step with a non-finite gradient (in (0, 1)).
        backoff_factor: f64,
        /// How many good steps in a row make the scale grow (>= 1).
        growth_interval: u64,
    },
}

impl Precision {
    /// Mixed precision with PyTorch's `GradScaler` defaults: scale 65536, growth 2, backoff
    /// 0.5, interval 2000.
    pub fn mixed() -> Self {
        Precision::Mixed {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }

    /// Whether a model stored in a half-precision type gets master weights.
    pub fn is_mixed(&self) -> bool {
        matches!(self, Precision::Mixed { .. })
    }

    /// Checks the loss scaling's settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Precision::Mixed {
            init_scale,
            growth_factor,
            backoff_factor,
            growth_interval,
        } = *self
        {
            Range::POSITIVE.check("precision.init_scale", init_scale)?;
            Range::new(1.0, false, f64::INFINITY, false, "a finite number > 1")
                .check("precision.growth_factor", growth_factor)?;
            Range::new(0.0, false, 1.0, false, "a number in (0, 1)")
                .check("precision.backoff_factor", backoff_factor)?;
            if growth_interval == 0 {
                return Err(ConfigError::new("precision.growth_interval", 0, "an integer >= 1"));
            }
        }
        Ok(())
    }
}

/// Configuration of a [`Sam`](crate::Sam) optimizer.
///
/// ```
/// use flatmin::{FriendlyConfig, SamConfig, WsamConfig};
///
/// // F-SAM's perturbation with WSAM's decoupled combination, on momentum SGD.
/// let config = SamConfig::new(SamConfig::sgd_base(0.9, 0.0))
///     .with_rho(0.1)
///     .with_member(FriendlyConfig::new())
///     .with_member(WsamConfig::new().with_gamma(0.9));
/// assert_eq!(config.member::<WsamConfig>().unwrap().gamma, 0.9);
/// let optimizer = config.init().expect("valid hyperparameters");
/// # let _ = optimizer;
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct SamConfig {
    /// The base optimizer that applies the combined gradient.
    pub base: BaseConfig,
    /// ρ, the perturbation radius (ρ_max under a schedule). ρ = 0 is the base optimizer, but for
    /// bSAM, which is its own.
    #[config(default = 0.05)]
    pub rho: f64,
    /// How ρ follows the learning rate.
    #[config(default = "RhoSchedule::Constant")]
    pub rho_schedule: RhoSchedule,
    /// Added to the norm in the perturbation's denominator (never inside the square root), so a
    /// zero gradient gives a zero perturbation.
    #[config(default = 1e-12)]
    pub eps: f64,
    /// The members, at most one per room of the step (none: SAM).
    #[config(default = "Vec::new()")]
    pub members: Vec<Member>,
    /// Whether the report measures what only it needs (`cos(g, g_p)`): one to three operations
    /// per parameter tensor and a read back to the host. Off by default.
    #[config(default = false)]
    pub measure: bool,
    /// How a model stored in bf16 or f16 is trained: in its own type (the default), or with f32
    /// master weights and, for f16, dynamic loss scaling.
    #[config(default = "Precision::Native")]
    pub precision: Precision,
}

/// The step's own hyperparameters, with the key names of reference trajectories.
pub(crate) const CORE: &[Declared<SamConfig>] = &[
    declare!(number SamConfig, "rho", "ρ, the perturbation radius", Range::NON_NEGATIVE, rho => .replay(&["rho"])),
    Declared {
        decl: Declaration::new(
            "rho_min",
            "Tie ρ to the learning rate (GSAM): ρ goes from this value at lr 0 to --rho at the peak",
            crate::hyperparameter::Kind::Number,
            Range::NON_NEGATIVE,
        ),
        get: |c| match c.rho_schedule {
            RhoSchedule::ProportionalToLr { rho_min, .. } => Value::Number(rho_min),
            RhoSchedule::Constant => Value::Number(c.rho),
        },
        set: |c, v, context| {
            c.rho_schedule = RhoSchedule::ProportionalToLr {
                rho_min: v.number().unwrap_or(f64::NAN),
                lr_max: context.lr,
                lr_min: 0.0,
            }
        },
    },
    declare!(number SamConfig, "eps", "The eps added to the norm", Range::POSITIVE, eps => .replay(&["eps_norm", "perturb_eps", "sam_eps"])),
];

impl SamConfig {
    /// Checks every hyperparameter and that the members go together; the first problem is
    /// returned, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.base.validate()?;
        check_all(self, CORE)?;
        self.rho_schedule.validate(self.rho)?;
        self.precision.validate()?;
        for m in &self.members {
            m.spec().validate()?;
        }
        self.validate_mixture()
    }

    /// The mixtures that have no meaning, named.
    fn validate_mixture(&self) -> Result<(), ConfigError> {
        for (i, a) in self.members.iter().enumerate() {
            let a = a.spec();
            for b in self.members[i + 1..].iter().map(Member::spec) {
                if a.room() == b.room() {
                    return Err(ConfigError::new(
                        a.room().name(),
                        format!("{} and {}", a.name(), b.name()),
                        "one member per room of the step",
                    ));
                }
                for (whole, other) in [(a, b), (b, a)] {
                    if let Some((reason, _)) = whole.alone() {
                        return Err(ConfigError::new(other.room().name(), other.name(), reason));
                    }
                }
            }
            if let Some((room, reason)) = a.requires()
                && !self.members.iter().any(|m| m.spec().room() == room)
            {
                return Err(ConfigError::new(room.name(), "none", reason));
            }
        }
        let decides_after = self.members.iter().any(|m| m.spec().decides_after_first_pass());
        if decides_after && self.members.iter().any(|m| m.spec().draws_before_first_pass()) {
            return Err(ConfigError::new(
                "esam_per_element",
                "false (a mask drawn before the first pass)",
                "true with a member that decides after the first pass whether to run the second \
                 (AE-SAM): ESAM's per-tensor mask is drawn before it",
            ));
        }
        Ok(())
    }

    /// The member of type `C`, if configured.
    pub fn member<C: Registered>(&self) -> Option<&C> {
        self.members.iter().find_map(C::of)
    }

    /// The member of type `C` to change, if configured.
    pub fn member_mut<C: Registered>(&mut self) -> Option<&mut C> {
        self.members.iter_mut().find_map(C::of_mut)
    }

    /// With `member`, in place of whatever occupied its room.
    pub fn with_member(mut self, member: impl Into<Member>) -> Self {
        insert(&mut self.members, member.into());
        self
    }

    /// Fills in what a member needs to know of the training run when it was left unset (0):
    /// AE-SAM's `total_steps` and bSAM's `data_size` (the number of training examples).
    ///
    /// ```
    /// let base = flatmin::SamConfig::sgd_base(0.9, 0.0);
    /// let ae = flatmin::SamConfig::preset("ae-sam", base).unwrap();
    /// assert!(ae.init().is_err()); // AE-SAM's threshold needs the run's length
    /// assert!(ae.for_run(1000, 50_000).init().is_ok());
    /// ```
    pub fn for_run(mut self, total_steps: u64, data_size: u64) -> Self {
        for m in &mut self.members {
            m.spec_mut().for_run(total_steps, data_size);
        }
        self
    }

    /// The published algorithm `name` (one of [`PRESETS`](crate::PRESETS)) on the given base
    /// optimizer, with its authors' default hyperparameters:
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
    /// | `ae-sam` | ρ = 0.05, δ = 0.9, threshold c falling from 1 to −1 (needs [`SamConfig::for_run`]) |
    /// | `bsam` | ρ = 0.01 on bSAM's own base optimizer (needs [`SamConfig::for_run`]); the given base is not used |
    /// | `msam` | ρ = 0.3, one pass along the base optimizer's momentum |
    /// | `usam` | ρ = 0.05, unnormalized `e = ρ·g` (Unified SAM, λ = 0) |
    /// | `unified-sam` | ρ = 0.05, Unified SAM with λ = 0.5 |
    ///
    /// ```
    /// let sgd = flatmin::SamConfig::sgd_base(0.9, 0.0);
    /// let wsam = flatmin::SamConfig::preset("wsam", sgd).unwrap();
    /// assert_eq!(wsam.rho, 0.05);
    /// assert!(flatmin::SamConfig::preset("adamsam", flatmin::SamConfig::adam_base(0.0, false)).is_err());
    /// ```
    pub fn preset(name: &str, base: BaseConfig) -> Result<Self, ConfigError> {
        let Some(preset) = PRESETS.iter().find(|p| p.name == name) else {
            static NAMES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let names = NAMES.get_or_init(|| {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
                format!("one of {}", names.join(", "))
            });
            return Err(ConfigError::new("optimizer", name, names.as_str()));
        };
        let mut base = base;
        if let Some(adjust) = preset.base {
            adjust(&mut base);
        }
        let mut config = SamConfig::new(base);
        if let Some(rho) = preset.rho {
            config.rho = rho;
        }
        if let Some(eps) = preset.eps {
            config.eps = eps;
        }
        config.members = (preset.members)();
        Ok(config)
    }

    /// Momentum SGD as PyTorch defines it, a convenience for the common base.
    pub fn sgd_base(momentum: f64, weight_decay: f64) -> BaseConfig {
        BaseConfig::Sgd(
            SgdBaseConfig::new()
                .with_momentum(momentum)
                .with_weight_decay(weight_decay),
        )
    }

    /// Adam (or AdamW with `decoupled`) as PyTorch defines it.
    pub fn adam_base(weight_decay: f64, decoupled: bool) -> BaseConfig {
        BaseConfig::Adam(
            AdamBaseConfig::new()
                .with_weight_decay(weight_decay)
                .with_decoupled_weight_decay(decoupled),
        )
    }

    /// Whether a step is just the base optimizer: ρ = 0, unless a member is its own base
    /// optimizer (bSAM). The one-call API then runs a single pass.
    pub fn is_base_only(&self) -> bool {
        self.rho == 0.0 && !self.members.iter().any(|m| m.spec().replaces_base())
    }

    /// ρ at learning rate `lr`.
    pub fn rho_at(&self, lr: f64) -> f64 {
        self.rho_schedule.rho_at(self.rho, lr)
    }

    /// Whether the step needs the per-sample losses at `w` and `w + e` (ESAM's selection).
    pub fn needs_sample_losses(&self) -> bool {
        !self.is_base_only() && self.members.iter().any(|m| m.spec().needs_sample_losses())
    }

    /// Whether a step needs flatmin's own base optimizer (bSAM is its own; MSAM reads the base
    /// optimizer's momentum): such a step cannot be finished by an optimizer outside flatmin.
    pub fn needs_own_update(&self) -> bool {
        !self.is_base_only() && self.members.iter().any(|m| m.spec().own_update())
    }

    /// Whether some steps run no second pass (a schedule, MSAM).
    pub fn is_scheduled(&self) -> bool {
        !self.is_base_only() && self.members.iter().any(|m| m.spec().skips_second_passes())
    }
}
