//! The method's hyperparameters as the laboratory sets them, defined once: the table
//! [`HYPERPARAMETERS`]. From it come the `hp` keys of a `--config` file (and of the `config` a
//! run records in `summary.json` and `checkpoint.json`), the flags of `flatmin train`, `sweep` and
//! `compare` (`--rho`, `--esam-beta`, … : the key with `-` for `_`), the axes of
//! `flatmin sweep --vary`, and what each one changes in the library's [`SamConfig`] over the
//! preset's defaults.

use std::fmt;

use flatmin::{
    AdaptiveConfig, BaseConfig, BsamConfig, Combination, FriendlyConfig, Geometry, LookSamConfig, PassSchedule,
    RhoSchedule, SamConfig, Selection, SelectionRule, SwpConfig, SwpGranularity,
};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a hyperparameter's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number (`--rho 0.1`, `"rho": 0.1`).
    Number,
    /// A switch (`--adaptive`, `"adaptive": true`; 1 or 0 in `--vary`).
    Switch,
}

/// What a run needs besides the value to set a hyperparameter.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The peak learning rate (ρ's schedule follows it).
    pub lr: f64,
    /// The run's seed (ESAM's masks, the draws of `--sam-probability`).
    pub seed: u64,
}

/// A member of one of the library's rooms that a hyperparameter chooses (`("geometry", "asam")`):
/// two hyperparameters that choose different members of one room cannot be given together.
type Choice = (&'static str, &'static str);

/// One hyperparameter: its key, its help, its kind, and how it changes a [`SamConfig`].
pub struct Hyperparameter {
    /// The key in `hp` and in `--vary`; the flag is this with `-` for `_`.
    pub key: &'static str,
    /// What it is (the flag's help).
    pub help: &'static str,
    /// Number or switch.
    pub kind: Kind,
    /// Sets the value (a switch is 1 or 0) on the preset's configuration; says which member of
    /// which room it chose, if it chose one, or why the value cannot apply to this preset.
    apply: fn(&mut SamConfig, f64, Context) -> Result<Option<Choice>, String>,
}

impl Hyperparameter {
    /// The command-line flag, e.g. `--esam-beta`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }
}

fn swp(c: &mut SamConfig, seed: u64) -> &mut SwpConfig {
    c.swp.get_or_insert_with(|| SwpConfig::new().with_seed(seed))
}

/// WSAM's (γ, decoupled, max-norm): the preset's, or the WSAM preset's (0.9, decoupled, no
/// clipping) when the preset combines the gradients another way.
fn wsam(c: &SamConfig) -> (f64, bool, Option<f64>) {
    match c.combination {
        Combination::Wsam {
            gamma,
            decoupled,
            max_norm,
        } => (gamma, decoupled, max_norm),
        _ => (0.9, true, None),
    }
}

/// AE-SAM's policy: the preset's, or AE-SAM's defaults when the preset schedules its passes
/// another way (its `total_steps` is the run's, filled in by [`SamConfig::for_run`]).
fn adaptive(c: &mut SamConfig) -> &mut AdaptiveConfig {
    if !matches!(c.schedule, Some(PassSchedule::Adaptive(_))) {
        c.schedule = Some(PassSchedule::Adaptive(AdaptiveConfig::new()));
    }
    match c.schedule.as_mut() {
        Some(PassSchedule::Adaptive(a)) => a,
        _ => unreachable!("set just above"),
    }
}

/// LookSAM's reuse: the preset's, or LookSAM's defaults; a preset that runs the second pass on
/// every step then gets LookSAM's k = 5 (a `--sam-every` given with it comes first in the table
/// and is kept).
fn looksam(c: &mut SamConfig) -> &mut LookSamConfig {
    if c.looksam.is_none() && matches!(c.schedule, None | Some(PassSchedule::Always)) {
        c.schedule = Some(PassSchedule::Every { k: 5 });
    }
    c.looksam.get_or_insert_with(LookSamConfig::new)
}

/// bSAM's hyperparameters, which exist only when the preset is bSAM (its own base optimizer).
fn bsam<'a>(c: &'a mut SamConfig, key: &str) -> Result<&'a mut BsamConfig, String> {
    match &mut c.base {
        BaseConfig::Bsam(b) => Ok(b),
        _ => Err(format!(
            "--{}: a hyperparameter of bSAM's own optimizer; it applies to --optimizer bsam only",
            key.replace('_', "-")
        )),
    }
}

/// Every hyperparameter, in the order of the `hp` keys in a run's `config`.
pub const HYPERPARAMETERS: [Hyperparameter; 28] = [
    Hyperparameter {
        key: "rho",
        help: "ρ, the perturbation radius",
        kind: Kind::Number,
        apply: |c, v, _| {
            c.rho = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "rho_min",
        help: "Tie ρ to the learning rate (GSAM): ρ goes from this value at lr 0 to --rho at the peak",
        kind: Kind::Number,
        apply: |c, v, ctx| {
            c.rho_schedule = RhoSchedule::ProportionalToLr {
                rho_min: v,
                lr_max: ctx.lr,
                lr_min: 0.0,
            };
            Ok(None)
        },
    },
    Hyperparameter {
        key: "eps",
        help: "The eps added to the norm",
        kind: Kind::Number,
        apply: |c, v, _| {
            c.eps = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "adaptive",
        help: "The adaptive `w²` form of the perturbation",
        kind: Kind::Switch,
        apply: |c, v, _| {
            Ok((v != 0.0).then(|| {
                c.geometry = Geometry::AdaptiveSquared;
                ("geometry", "adaptive")
            }))
        },
    },
    Hyperparameter {
        key: "asam_eta",
        help: "Official ASAM with this η",
        kind: Kind::Number,
        apply: |c, eta, _| {
            c.geometry = Geometry::Asam { eta };
            Ok(Some(("geometry", "asam")))
        },
    },
    Hyperparameter {
        key: "fisher_eta",
        help: "Fisher-SAM with this η",
        kind: Kind::Number,
        apply: |c, eta, _| {
            c.geometry = Geometry::Fisher { eta };
            Ok(Some(("geometry", "fisher")))
        },
    },
    Hyperparameter {
        key: "fsam_sigma",
        help: "F-SAM's σ",
        kind: Kind::Number,
        apply: |c, v, _| {
            c.friendly.get_or_insert_with(FriendlyConfig::new).sigma = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "fsam_lambda",
        help: "F-SAM's λ",
        kind: Kind::Number,
        apply: |c, v, _| {
            c.friendly.get_or_insert_with(FriendlyConfig::new).lambda = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "esam_beta",
        help: "ESAM's β (fraction of weights perturbed)",
        kind: Kind::Number,
        apply: |c, v, ctx| {
            swp(c, ctx.seed).beta = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "esam_per_element",
        help: "ESAM's mask per weight (paper) instead of per tensor (official code)",
        kind: Kind::Switch,
        apply: |c, v, ctx| {
            swp(c, ctx.seed).granularity = if v != 0.0 {
                SwpGranularity::PerElement
            } else {
                SwpGranularity::PerTensor
            };
            Ok(None)
        },
    },
    Hyperparameter {
        key: "esam_gamma",
        help: "ESAM's γ (fraction of samples in the second pass)",
        kind: Kind::Number,
        apply: |c, gamma, _| {
            c.selection = Selection::SharpnessSensitive {
                gamma,
                rule: SelectionRule::TopK,
            };
            Ok(None)
        },
    },
    Hyperparameter {
        key: "wsam_gamma",
        help: "WSAM's γ",
        kind: Kind::Number,
        apply: |c, gamma, _| {
            let (_, decoupled, max_norm) = wsam(c);
            c.combination = Combination::Wsam {
                gamma,
                decoupled,
                max_norm,
            };
            Ok(Some(("combination", "wsam")))
        },
    },
    Hyperparameter {
        key: "wsam_coupled",
        help: "WSAM coupled (sharpness through the base optimizer's momentum) instead of decoupled",
        kind: Kind::Switch,
        apply: |c, coupled, _| {
            let (gamma, _, max_norm) = wsam(c);
            c.combination = Combination::Wsam {
                gamma,
                decoupled: coupled == 0.0,
                max_norm,
            };
            Ok(Some(("combination", "wsam")))
        },
    },
    Hyperparameter {
        key: "wsam_max_norm",
        help: "WSAM's max-norm clipping of both gradients",
        kind: Kind::Number,
        apply: |c, clip, _| {
            let (gamma, decoupled, _) = wsam(c);
            c.combination = Combination::Wsam {
                gamma,
                decoupled,
                max_norm: Some(clip),
            };
            Ok(Some(("combination", "wsam")))
        },
    },
    Hyperparameter {
        key: "gsam_alpha",
        help: "GSAM's α",
        kind: Kind::Number,
        apply: |c, alpha, _| {
            c.combination = Combination::Gsam { alpha };
            Ok(Some(("combination", "gsam")))
        },
    },
    Hyperparameter {
        key: "sam_every",
        help: "SAM on a schedule, for any member: a SAM step every K steps, base steps between (LookSAM's k)",
        kind: Kind::Number,
        apply: |c, v, _| {
            if !(v.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&v)) {
                return Err(format!(
                    "sam_every = {v}: expected a whole number >= 1 (1: every step is a SAM step)"
                ));
            }
            c.schedule = Some(PassSchedule::Every { k: v as u64 });
            Ok(Some(("schedule", "a SAM step every k steps")))
        },
    },
    Hyperparameter {
        key: "sam_probability",
        help: "Randomized sharpness training, for any member: each step a SAM step with probability P (seeded by --seed)",
        kind: Kind::Number,
        apply: |c, probability, ctx| {
            c.schedule = Some(PassSchedule::Random {
                probability,
                seed: ctx.seed,
            });
            Ok(Some(("schedule", "SAM steps at random")))
        },
    },
    Hyperparameter {
        key: "ae_delta",
        help: "AE-SAM's δ, the decay of the running statistics of ‖g‖² (turns AE-SAM's policy on)",
        kind: Kind::Number,
        apply: |c, v, _| {
            adaptive(c).delta = v;
            Ok(Some(("schedule", "AE-SAM's policy")))
        },
    },
    Hyperparameter {
        key: "ae_c_start",
        help: "AE-SAM's threshold c at the first step (turns AE-SAM's policy on)",
        kind: Kind::Number,
        apply: |c, v, _| {
            adaptive(c).c_start = v;
            Ok(Some(("schedule", "AE-SAM's policy")))
        },
    },
    Hyperparameter {
        key: "ae_c_end",
        help: "AE-SAM's threshold c at the last step (turns AE-SAM's policy on)",
        kind: Kind::Number,
        apply: |c, v, _| {
            adaptive(c).c_end = v;
            Ok(Some(("schedule", "AE-SAM's policy")))
        },
    },
    Hyperparameter {
        key: "looksam_alpha",
        help: "LookSAM's α (turns LookSAM on; its k is --sam-every, 5 unless the preset or that flag says)",
        kind: Kind::Number,
        apply: |c, v, _| {
            looksam(c).alpha = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "looksam_per_tensor",
        help: "LookSAM's layer-wise form: norms and projections per parameter tensor (turns LookSAM on)",
        kind: Kind::Switch,
        apply: |c, v, _| {
            looksam(c).per_tensor = v != 0.0;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "looksam_eps_norm",
        help: "LookSAM's eps added to ‖g_v‖ (turns LookSAM on)",
        kind: Kind::Number,
        apply: |c, v, _| {
            looksam(c).eps_norm = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "bsam_prior_precision",
        help: "bSAM's prior precision (its weight decay is this over the training-set size; --optimizer bsam)",
        kind: Kind::Number,
        apply: |c, v, _| {
            bsam(c, "bsam_prior_precision")?.prior_precision = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "bsam_damping",
        help: "bSAM's damping, added to the precision's update (--optimizer bsam)",
        kind: Kind::Number,
        apply: |c, v, _| {
            bsam(c, "bsam_damping")?.damping = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "bsam_s_init",
        help: "bSAM's initial precision of every weight (--optimizer bsam)",
        kind: Kind::Number,
        apply: |c, v, _| {
            bsam(c, "bsam_s_init")?.s_init = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "bsam_beta1",
        help: "bSAM's β1, the decay of its momentum (--optimizer bsam)",
        kind: Kind::Number,
        apply: |c, v, _| {
            bsam(c, "bsam_beta1")?.beta1 = v;
            Ok(None)
        },
    },
    Hyperparameter {
        key: "bsam_beta2",
        help: "bSAM's β2, the decay of its precision (--optimizer bsam)",
        kind: Kind::Number,
        apply: |c, v, _| {
            bsam(c, "bsam_beta2")?.beta2 = v;
            Ok(None)
        },
    },
];

const COUNT: usize = HYPERPARAMETERS.len();

fn find(key: &str) -> Option<usize> {
    HYPERPARAMETERS.iter().position(|h| h.key == key)
}

fn known_keys() -> String {
    HYPERPARAMETERS.iter().map(|h| h.key).collect::<Vec<_>>().join(", ")
}

/// The hyperparameters a run sets over its preset's defaults (the `hp` of its config); the ones
/// not set keep the preset's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hyperparams {
    /// By position in [`HYPERPARAMETERS`]; a switch is 1 or 0.
    values: [Option<f64>; COUNT],
}

impl Hyperparams {
    /// The value of `key`, if set (a switch is 1 or 0); `None` also for an unknown key.
    pub fn get(&self, key: &str) -> Option<f64> {
        find(key).and_then(|i| self.values[i])
    }

    /// Sets `key` to `value` (a switch: any value but 0 turns it on).
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), String> {
        let i = find(key).ok_or_else(|| format!("unknown hyperparameter `{key}`; expected one of {}", known_keys()))?;
        self.values[i] = Some(match HYPERPARAMETERS[i].kind {
            Kind::Number if !value.is_finite() => return Err(format!("{key} = {value}: expected a finite number")),
            Kind::Number => value,
            Kind::Switch => f64::from(u8::from(value != 0.0)),
        });
        Ok(())
    }

    /// Sets every hyperparameter given here on `config` (a preset's configuration). Two that
    /// choose different members of one room (e.g. `asam_eta` and `fisher_eta`, two geometries)
    /// are an error naming both flags.
    pub fn apply(&self, config: &mut SamConfig, context: Context) -> Result<(), String> {
        let mut chosen: Vec<(Choice, &Hyperparameter)> = Vec::new();
        for (h, value) in HYPERPARAMETERS.iter().zip(&self.values) {
            let Some(value) = *value else { continue };
            if let Some(choice) = (h.apply)(config, value, context)? {
                if let Some((other, by)) = chosen.iter().find(|((room, _), _)| *room == choice.0)
                    && other.1 != choice.1
                {
                    return Err(format!(
                        "{} and {} both choose the {} ({} and {}): give one, not both",
                        by.flag(),
                        h.flag(),
                        choice.0,
                        other.1,
                        choice.1
                    ));
                }
                chosen.push((choice, h));
            }
        }
        Ok(())
    }
}

/// Written as an object with every key of [`HYPERPARAMETERS`] (`null` when not set), the form
/// runs have always recorded.
impl Serialize for Hyperparams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COUNT))?;
        for (h, value) in HYPERPARAMETERS.iter().zip(&self.values) {
            match (h.kind, value) {
                (_, None) => map.serialize_entry(h.key, &None::<f64>)?,
                (Kind::Number, Some(v)) => map.serialize_entry(h.key, v)?,
                (Kind::Switch, Some(v)) => map.serialize_entry(h.key, &(*v != 0.0))?,
            }
        }
        map.end()
    }
}

/// Read from an object with any of the keys (`null` is not set); an unknown key, a repeated
/// one or a value of the wrong kind is an error naming it.
impl<'de> Deserialize<'de> for Hyperparams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HyperparamsVisitor)
    }
}

struct HyperparamsVisitor;

impl<'de> Visitor<'de> for HyperparamsVisitor {
    type Value = Hyperparams;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object of hyperparameters ({})", known_keys())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hyperparams, A::Error> {
        let mut hp = Hyperparams::default();
        let mut seen = [false; COUNT];
        while let Some(key) = map.next_key::<String>()? {
            let i = find(&key).ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown field `{key}` in `hp`, expected one of {}",
                    known_keys()
                ))
            })?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(de::Error::custom(format!("duplicate field `{key}` in `hp`")));
            }
            hp.values[i] = match HYPERPARAMETERS[i].kind {
                Kind::Number => map
                    .next_value::<Option<f64>>()
                    .map_err(|e| de::Error::custom(format!("`hp.{key}`: expected a number or null ({e})")))?,
                Kind::Switch => map
                    .next_value::<Option<bool>>()
                    .map_err(|e| de::Error::custom(format!("`hp.{key}`: expected true, false or null ({e})")))?
                    .map(|on| f64::from(u8::from(on))),
            };
        }
        Ok(hp)
    }
}

/// A flag's number: finite (JSON, where settings are merged and recorded, has no NaN or ∞).
pub fn finite(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("expected a finite number, got `{text}`")),
    }
}

/// The flags: `--KEY VALUE` for a number, `--KEY` for a switch (which turns it on).
impl clap::Args for Hyperparams {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        HYPERPARAMETERS.iter().fold(cmd, |cmd, h| {
            let arg = clap::Arg::new(h.key).long(h.key.replace('_', "-")).help(h.help);
            cmd.arg(match h.kind {
                Kind::Number => arg.value_name(h.key.to_uppercase()).value_parser(finite),
                Kind::Switch => arg.action(clap::ArgAction::SetTrue),
            })
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Hyperparams {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut hp = Self::default();
        hp.update_from_arg_matches(matches)?;
        Ok(hp)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for (h, slot) in HYPERPARAMETERS.iter().zip(&mut self.values) {
            match h.kind {
                Kind::Number => {
                    if let Ok(Some(v)) = matches.try_get_one::<f64>(h.key) {
                        *slot = Some(*v);
                    }
                }
                Kind::Switch => {
                    if let Ok(Some(true)) = matches.try_get_one::<bool>(h.key) {
                        *slot = Some(1.0);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_flags_follow_them() {
        for (i, h) in HYPERPARAMETERS.iter().enumerate() {
            assert_eq!(find(h.key), Some(i), "{} twice", h.key);
            assert!(
                h.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                h.key
            );
        }
        assert_eq!(HYPERPARAMETERS[9].flag(), "--esam-per-element");
    }

    #[test]
    fn json_keeps_every_key_and_reads_nulls_as_unset() {
        let mut hp = Hyperparams::default();
        hp.set("rho", 0.1).unwrap();
        hp.set("wsam_coupled", 1.0).unwrap();
        let json = serde_json::to_value(&hp).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), COUNT);
        assert_eq!(
            (object["rho"].clone(), object["wsam_coupled"].clone()),
            (0.1.into(), true.into())
        );
        assert!(object["esam_beta"].is_null());
        let back: Hyperparams = serde_json::from_value(json).unwrap();
        assert_eq!(back, hp);
        let err = |text: &str| serde_json::from_str::<Hyperparams>(text).unwrap_err().to_string();
        assert!(err(r#"{"rhoo": 1}"#).contains("unknown field `rhoo`"));
        assert!(err(r#"{"rho": true}"#).contains("hp.rho"));
        assert!(err(r#"{"adaptive": 1}"#).contains("hp.adaptive"));
        assert!(err(r#"{"rho": 1, "rho": 2}"#).contains("duplicate"));
        assert!(hp.set("nope", 1.0).unwrap_err().contains("rho, rho_min"));
        assert!(hp.set("rho", f64::NAN).unwrap_err().contains("finite"));
        assert!(finite("inf").is_err() && finite("NaN").is_err() && finite("x").is_err());
        assert_eq!(finite("0.25"), Ok(0.25));
    }

    #[test]
    fn each_hyperparameter_changes_its_field_of_the_library_config() {
        let base = SamConfig::sgd_base(0.9, 0.0);
        let context = Context { lr: 0.2, seed: 7 };
        let with = |key: &str, value: f64| {
            let mut hp = Hyperparams::default();
            hp.set(key, value).unwrap();
            let mut c = SamConfig::preset("sam", base.clone()).unwrap();
            hp.apply(&mut c, context).unwrap();
            c
        };
        assert_eq!(with("rho", 0.3).rho, 0.3);
        assert_eq!(
            with("rho_min", 0.01).rho_schedule,
            RhoSchedule::ProportionalToLr {
                rho_min: 0.01,
                lr_max: 0.2,
                lr_min: 0.0
            }
        );
        assert_eq!(with("adaptive", 0.0).geometry, Geometry::Euclidean);
        assert_eq!(with("adaptive", 1.0).geometry, Geometry::AdaptiveSquared);
        let swp = with("esam_per_element", 1.0).swp.unwrap();
        assert_eq!(
            (swp.granularity, swp.beta, swp.seed),
            (SwpGranularity::PerElement, 0.6, 7)
        );
        assert_eq!(
            with("wsam_coupled", 1.0).combination,
            Combination::Wsam {
                gamma: 0.9,
                decoupled: false,
                max_norm: None
            }
        );
        let mut hp = Hyperparams::default();
        hp.set("asam_eta", 0.1).unwrap();
        hp.set("fisher_eta", 1.0).unwrap();
        let mut c = SamConfig::preset("sam", base).unwrap();
        let e = hp.apply(&mut c, context).unwrap_err();
        assert!(
            e.contains("--asam-eta and --fisher-eta") && e.contains("not both"),
            "{e}"
        );
    }

    #[test]
    fn the_schedule_looksam_and_bsam_flags_reach_the_library_config() {
        let base = SamConfig::sgd_base(0.9, 0.0);
        let context = Context { lr: 0.2, seed: 7 };
        let on = |preset: &str, pairs: &[(&str, f64)]| -> Result<SamConfig, String> {
            let mut hp = Hyperparams::default();
            for (k, v) in pairs {
                hp.set(k, *v)?;
            }
            let mut c = SamConfig::preset(preset, base.clone()).unwrap();
            hp.apply(&mut c, context)?;
            Ok(c)
        };
        assert_eq!(
            on("wsam", &[("sam_every", 3.0)]).unwrap().schedule,
            Some(PassSchedule::Every { k: 3 })
        );
        assert_eq!(
            on("esam", &[("sam_probability", 0.25)]).unwrap().schedule,
            Some(PassSchedule::Random {
                probability: 0.25,
                seed: 7
            })
        );
        let ae = on("sam", &[("ae_delta", 0.5), ("ae_c_start", -2.0), ("ae_c_end", 0.5)]).unwrap();
        assert_eq!(
            ae.schedule,
            Some(PassSchedule::Adaptive(
                AdaptiveConfig::new().with_delta(0.5).with_c_start(-2.0).with_c_end(0.5)
            ))
        );
        // On the ae-sam preset, one field changes and the others keep the preset's values.
        let Some(PassSchedule::Adaptive(a)) = on("ae-sam", &[("ae_c_end", 2.0)]).unwrap().schedule else {
            panic!("ae-sam keeps its policy");
        };
        assert_eq!((a.delta, a.c_start, a.c_end), (0.9, -1.0, 2.0));
        let look = on(
            "sam",
            &[
                ("looksam_alpha", 0.3),
                ("looksam_per_tensor", 1.0),
                ("looksam_eps_norm", 1e-6),
            ],
        )
        .unwrap();
        assert_eq!(
            look.looksam,
            Some(
                LookSamConfig::new()
                    .with_alpha(0.3)
                    .with_per_tensor(true)
                    .with_eps_norm(1e-6)
            )
        );
        assert_eq!(
            look.schedule,
            Some(PassSchedule::Every { k: 5 }),
            "LookSAM's k by default"
        );
        let look = on("looksam", &[("sam_every", 2.0), ("looksam_alpha", 1.0)]).unwrap();
        assert_eq!(
            (look.schedule, look.looksam.unwrap().alpha),
            (Some(PassSchedule::Every { k: 2 }), 1.0)
        );
        let b = on(
            "bsam",
            &[
                ("bsam_prior_precision", 5.0),
                ("bsam_damping", 0.2),
                ("bsam_s_init", 2.0),
                ("bsam_beta1", 0.8),
                ("bsam_beta2", 0.99),
            ],
        )
        .unwrap();
        let BaseConfig::Bsam(b) = b.base else {
            panic!("bsam's base")
        };
        assert_eq!(
            (b.prior_precision, b.damping, b.s_init, b.beta1, b.beta2),
            (5.0, 0.2, 2.0, 0.8, 0.99)
        );
    }

    #[test]
    fn bad_or_clashing_schedule_flags_are_refused_by_name() {
        let base = SamConfig::sgd_base(0.9, 0.0);
        let context = Context { lr: 0.2, seed: 7 };
        let refused = |preset: &str, pairs: &[(&str, f64)]| -> String {
            let mut hp = Hyperparams::default();
            for (k, v) in pairs {
                hp.set(k, *v).unwrap();
            }
            let mut c = SamConfig::preset(preset, base.clone()).unwrap();
            match hp.apply(&mut c, context) {
                Err(e) => e,
                Ok(()) => c.for_run(100, 1000).validate().expect_err("refused").to_string(),
            }
        };
        let e = refused("sam", &[("sam_every", 2.0), ("sam_probability", 0.5)]);
        assert!(
            e.contains("--sam-every and --sam-probability") && e.contains("not both"),
            "{e}"
        );
        let e = refused("sam", &[("sam_probability", 0.5), ("ae_delta", 0.9)]);
        assert!(e.contains("--sam-probability and --ae-delta"), "{e}");
        assert!(refused("sam", &[("sam_every", 2.5)]).contains("sam_every"));
        assert!(refused("sam", &[("sam_every", -1.0)]).contains("sam_every"));
        assert!(refused("sam", &[("sam_every", 0.0)]).contains("sam_every"));
        assert!(refused("sam", &[("sam_probability", 1.5)]).contains("sam_probability"));
        assert!(refused("sam", &[("ae_delta", 1.0)]).contains("ae_delta"));
        assert!(refused("looksam", &[("looksam_alpha", -0.1)]).contains("looksam_alpha"));
        assert!(refused("looksam", &[("looksam_eps_norm", -1.0)]).contains("looksam_eps_norm"));
        assert!(refused("bsam", &[("bsam_s_init", 0.0)]).contains("bsam_s_init"));
        assert!(refused("bsam", &[("bsam_beta2", 1.0)]).contains("bsam_beta2"));
        assert!(refused("bsam", &[("bsam_damping", -1.0)]).contains("bsam_damping"));
        assert!(refused("bsam", &[("bsam_prior_precision", -1.0)]).contains("bsam_prior_precision"));
        let e = refused("sam", &[("bsam_damping", 0.1)]);
        assert!(e.contains("--bsam-damping") && e.contains("--optimizer bsam"), "{e}");
        assert!(refused("bsam", &[("sam_every", 5.0)]).contains("schedule"));
    }
}
