//! The registry's public face: every hyperparameter of the step and its members, declared once
//! in the member's file and collected here, and every preset's name. The laboratory derives its
//! flags, its `--config`/`hp` keys, its `sweep --vary` axes and the keys of replayed reference
//! trajectories from [`hyperparameters`] and [`base_hyperparameters`].
//!
//! ```
//! use flatmin::{Context, SamConfig, Value, WsamConfig, hyperparameter};
//!
//! let context = Context { lr: 0.1, seed: 0 };
//! let mut config = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 0.0)).unwrap();
//! let gamma = hyperparameter("wsam_gamma").unwrap();
//! assert_eq!(gamma.default_value(&context), Value::Number(0.9)); // WsamConfig's default
//! gamma.set(&mut config, Value::Number(0.8), &context).unwrap();
//! assert_eq!(config.member::<WsamConfig>().unwrap().gamma, 0.8);
//! assert!(gamma.set(&mut config, Value::Number(1.5), &context).is_ok()); // checked by validate
//! assert!(config.validate().is_err());
//! ```

use std::sync::OnceLock;

use crate::base::{ADAM_HYPERPARAMETERS, BaseConfig, SGD_HYPERPARAMETERS};
use crate::config::{CORE, SamConfig};
use crate::error::{ConfigError, SettingError};
use crate::hyperparameter::{Context, Declaration, Declared, Kind, Value};
use crate::member::Room;
use crate::members::{MemberParam, PRESETS as PRESET_SPECS, member_hyperparameters};

/// The `name` field of every entry of a registry table, as a constant array.
macro_rules! names {
    ($table:expr) => {{
        let mut names = [""; $table.len()];
        let mut i = 0;
        while i < names.len() {
            names[i] = $table[i].name;
            i += 1;
        }
        names
    }};
}

/// The names [`SamConfig::preset`] knows.
pub const PRESETS: [&str; PRESET_SPECS.len()] = names!(PRESET_SPECS);

/// One line on what preset `name` sets, if it is one.
pub fn preset_doc(name: &str) -> Option<&'static str> {
    PRESET_SPECS.iter().find(|p| p.name == name).map(|p| p.doc)
}

/// Where a hyperparameter lives.
enum Target {
    Core(&'static Declared<SamConfig>),
    Member(MemberParam),
    Sgd(&'static Declared<crate::base::SgdBaseConfig>),
    Adam(&'static Declared<crate::base::AdamBaseConfig>),
}

/// One hyperparameter: its declaration (its fields, through `Deref`), and how it reads and
/// writes a [`SamConfig`].
pub struct Hyperparameter {
    /// What it is: key, doc, kind, words, range, replay names, whether the laboratory shows it.
    pub decl: Declaration,
    /// The member it belongs to (`"core"` for the step's own, `"sgd"`/`"adam"` for a base's).
    pub member: &'static str,
    /// The room of that member (`None` for the step's and the base's own).
    pub room: Option<Room>,
    target: Target,
}

impl std::fmt::Debug for Hyperparameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hyperparameter({}, {})", self.member, self.key)
    }
}

impl std::ops::Deref for Hyperparameter {
    type Target = Declaration;

    fn deref(&self) -> &Declaration {
        &self.decl
    }
}

impl Hyperparameter {
    fn of_declared<C>(d: &'static Declared<C>, member: &'static str, target: Target) -> Self {
        Self {
            decl: d.decl,
            member,
            room: None,
            target,
        }
    }

    /// Its value in `config`, if the member it belongs to is there.
    pub fn get(&self, config: &SamConfig) -> Option<Value> {
        match &self.target {
            Target::Core(d) => Some((d.get)(config)),
            Target::Member(p) => p.get(&config.members),
            Target::Sgd(d) => match &config.base {
                BaseConfig::Sgd(c) => Some((d.get)(c)),
                _ => None,
            },
            Target::Adam(d) => match &config.base {
                BaseConfig::Adam(c) => Some((d.get)(c)),
                _ => None,
            },
        }
    }

    /// Its default: the member's (or the step's, the base's) own.
    pub fn default_value(&self, context: &Context) -> Value {
        match &self.target {
            Target::Core(d) => (d.get)(&SamConfig::new(SamConfig::sgd_base(0.0, 0.0))),
            Target::Member(p) => p.default(context),
            Target::Sgd(d) => (d.get)(&crate::base::SgdBaseConfig::new()),
            Target::Adam(d) => (d.get)(&crate::base::AdamBaseConfig::new()),
        }
    }

    /// Whether `value` has this hyperparameter's kind: a finite number (or one of its words), a
    /// whole number `>= 0`, or a switch. Its range is checked later, by [`SamConfig::validate`].
    pub fn check_kind(&self, value: Value) -> Result<(), ConfigError> {
        let ok = match (self.kind, value) {
            (_, Value::Word(w)) => self.words.contains(&w),
            (Kind::Switch, Value::Switch(_)) => true,
            (Kind::Switch, Value::Number(v)) => v == 0.0 || v == 1.0,
            (Kind::Number, Value::Number(v)) => v.is_finite(),
            (Kind::Whole, Value::Number(v)) => v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64,
            (_, Value::Switch(_)) => false,
        };
        if ok {
            return Ok(());
        }
        let expected = match self.kind {
            Kind::Switch => "true or false",
            Kind::Whole => self.range.expected,
            Kind::Number if self.words.is_empty() => "a finite number",
            Kind::Number => "a finite number or one of its words",
        };
        Err(ConfigError::new(self.key, value, expected))
    }

    /// Parses a command-line value: a number, one of its words, or (a switch) true/false/1/0.
    pub fn parse(&self, text: &str) -> Result<Value, ConfigError> {
        let text = text.trim();
        let value = if let Some(w) = self.words.iter().find(|w| **w == text) {
            Value::Word(w)
        } else if self.kind == Kind::Switch {
            match text {
                "true" | "1" => Value::Switch(true),
                "false" | "0" => Value::Switch(false),
                _ => return Err(ConfigError::new(self.key, text, "true or false")),
            }
        } else {
            match text.parse::<f64>() {
                Ok(v) => Value::Number(v),
                Err(_) => return Err(ConfigError::new(self.key, text, "a finite number")),
            }
        };
        self.check_kind(value)?;
        Ok(value)
    }

    /// Sets it in `config`: the member is put in with its defaults (in place of whatever
    /// occupied its room) when it is not there. The value's kind is checked here, its range by
    /// [`SamConfig::validate`].
    pub fn set(&self, config: &mut SamConfig, value: Value, context: &Context) -> Result<(), ConfigError> {
        self.check_kind(value)?;
        let value = match (self.kind, value) {
            (Kind::Switch, Value::Number(v)) => Value::Switch(v != 0.0),
            (_, v) => v,
        };
        match &self.target {
            Target::Core(d) => (d.set)(config, value, context),
            Target::Member(p) => p.set(&mut config.members, value, context)?,
            Target::Sgd(d) => match &mut config.base {
                BaseConfig::Sgd(c) => (d.set)(c, value, context),
                _ => {
                    return Err(ConfigError::new(
                        self.key,
                        value,
                        "a setting of SGD: the base optimizer is Adam",
                    ));
                }
            },
            Target::Adam(d) => match &mut config.base {
                BaseConfig::Adam(c) => (d.set)(c, value, context),
                _ => {
                    return Err(ConfigError::new(
                        self.key,
                        value,
                        "a setting of Adam: the base optimizer is SGD",
                    ));
                }
            },
        }
        Ok(())
    }
}

/// Every hyperparameter of the step and its members, the step's own first, then the members'
/// in the registry's order.
pub fn hyperparameters() -> &'static [Hyperparameter] {
    static ALL: OnceLock<Vec<Hyperparameter>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<Hyperparameter> = CORE
            .iter()
            .map(|d| Hyperparameter::of_declared(d, "core", Target::Core(d)))
            .collect();
        for p in member_hyperparameters() {
            all.push(Hyperparameter {
                decl: p.decl,
                member: p.member,
                room: Some(p.room),
                target: Target::Member(p),
            });
        }
        all
    })
}

/// The base optimizers' hyperparameters (SGD's, then Adam's), with the key names of reference
/// trajectories; the laboratory sets the base its own way.
pub fn base_hyperparameters() -> &'static [Hyperparameter] {
    static ALL: OnceLock<Vec<Hyperparameter>> = OnceLock::new();
    ALL.get_or_init(|| {
        let sgd = SGD_HYPERPARAMETERS
            .iter()
            .map(|d| Hyperparameter::of_declared(d, "sgd", Target::Sgd(d)));
        let adam = ADAM_HYPERPARAMETERS
            .iter()
            .map(|d| Hyperparameter::of_declared(d, "adam", Target::Adam(d)));
        sgd.chain(adam).collect()
    })
}

/// The hyperparameter of the step or a member with this key.
pub fn hyperparameter(key: &str) -> Option<&'static Hyperparameter> {
    hyperparameters().iter().find(|h| h.key == key)
}

/// Sets several hyperparameters on `config` in the registry's order (so that a schedule given
/// with LookSAM's settings is the one LookSAM gets). Two that choose different members of one
/// room (two geometries, two schedules, …) are an error naming both.
pub fn apply(
    config: &mut SamConfig,
    settings: &[(&'static Hyperparameter, Value)],
    context: &Context,
) -> Result<(), SettingError> {
    let mut ordered: Vec<&(&Hyperparameter, Value)> = settings.iter().collect();
    let position = |h: &Hyperparameter| {
        hyperparameters()
            .iter()
            .position(|x| std::ptr::eq(x, h))
            .unwrap_or(usize::MAX)
    };
    ordered.sort_by_key(|(h, _)| position(h));
    let mut chosen: Vec<(&Hyperparameter, Room)> = Vec::new();
    for (h, value) in ordered {
        let off_switch = h.kind == Kind::Switch && !value.on();
        if let Some(room) = h.room
            && !off_switch
        {
            if let Some((other, _)) = chosen.iter().find(|(o, r)| *r == room && o.member != h.member) {
                return Err(SettingError::Clash {
                    first: other.key,
                    second: h.key,
                    room: room.name(),
                    members: (other.member, h.member),
                });
            }
            chosen.push((h, room));
        }
        h.set(config, *value, context).map_err(SettingError::Invalid)?;
    }
    Ok(())
}

/// A reference implementation whose recorded trajectories flatmin replays (the `optimizer` of a
/// conformance case): the preset it starts from, and how the case's `hyperparams` keys map onto
/// the registry's hyperparameters (the names each member declares for reference trajectories).
pub struct Reference {
    spec: &'static crate::members::ReferenceSpec,
}

/// The names of the references a replay knows.
pub const REFERENCES: [&str; REFERENCE_SPECS.len()] = names!(REFERENCE_SPECS);

use crate::members::REFERENCES as REFERENCE_SPECS;

/// The reference named `name` (a conformance case's `optimizer`), if flatmin replays it.
pub fn reference(name: &str) -> Option<Reference> {
    REFERENCE_SPECS
        .iter()
        .find(|r| r.name == name)
        .map(|spec| Reference { spec })
}

impl Reference {
    /// The case's `optimizer` name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The preset the replay starts from.
    pub fn preset(&self) -> &'static str {
        self.spec.preset
    }

    /// Case keys that must be present.
    pub fn required(&self) -> &'static [&'static str] {
        self.spec.required
    }

    /// Whether the case chooses a base optimizer (`base`, `lr` and the base's keys); bSAM's
    /// cases do not (it is its own).
    pub fn has_base(&self) -> bool {
        self.spec.base
    }

    /// The starting configuration: the preset on `base`, with the reference's quirks and its
    /// own defaults where they differ from flatmin's.
    pub fn config(&self, base: BaseConfig, context: &Context) -> Result<SamConfig, ConfigError> {
        let mut config = SamConfig::preset(self.spec.preset, base)?;
        if let Some(adjust) = self.spec.adjust {
            adjust(&mut config.members);
        }
        for (key, value) in self.spec.defaults {
            let h = hyperparameter(key).expect("a reference's default names a hyperparameter");
            h.set(&mut config, Value::Number(*value), context)?;
        }
        Ok(config)
    }

    /// The hyperparameter a case key sets: one of the step's own, or of a member of the
    /// preset, or of a member of the rooms the reference also offers (schedules, the adaptive
    /// ball). `None`: the key is not one of this reference's.
    pub fn hyperparameter(&self, case_key: &str) -> Option<&'static Hyperparameter> {
        let preset = SamConfig::preset(self.spec.preset, crate::SamConfig::sgd_base(0.0, 0.0)).ok()?;
        let in_preset = |h: &Hyperparameter| preset.members.iter().any(|m| m.spec().name() == h.member);
        hyperparameters().iter().find(|h| {
            h.replay.contains(&case_key)
                && (h.member == "core" || in_preset(h) || h.room.is_some_and(|r| self.spec.rooms.contains(&r)))
        })
    }
}
