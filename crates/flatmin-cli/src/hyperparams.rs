//! The method's hyperparameters as the laboratory sets them, derived from the library's registry
//! ([`flatmin::hyperparameters`], those the laboratory shows): the `hp` keys of a `--config` file
//! (and of the `config` a run records in `summary.json` and `checkpoint.json`), the flags of
//! `flatmin train`, `sweep` and `compare` (`--rho`, `--esam-beta`, … : the key with `-` for `_`),
//! the axes of `flatmin sweep --vary`, and what each one changes in the library's [`SamConfig`]
//! over the preset's defaults. Nothing here names a hyperparameter: a member added to the
//! library shows up here by itself.

use std::fmt;
use std::sync::OnceLock;

use flatmin::{Context, Hyperparameter, Kind, SamConfig, SettingError, Value};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The hyperparameters the laboratory shows, in the registry's order.
pub fn lab_hyperparameters() -> &'static [&'static Hyperparameter] {
    static LAB: OnceLock<Vec<&'static Hyperparameter>> = OnceLock::new();
    LAB.get_or_init(|| flatmin::hyperparameters().iter().filter(|h| h.lab).collect())
}

/// The command-line flag of a key, e.g. `--esam-beta`.
pub fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

fn find(key: &str) -> Option<usize> {
    lab_hyperparameters().iter().position(|h| h.key == key)
}

fn known_keys() -> String {
    lab_hyperparameters()
        .iter()
        .map(|h| h.key)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The hyperparameters a run sets over its preset's defaults (the `hp` of its config); the ones
/// not set keep the preset's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyperparams {
    /// By position in [`lab_hyperparameters`].
    values: Vec<Option<Value>>,
}

impl Default for Hyperparams {
    fn default() -> Self {
        Self {
            values: vec![None; lab_hyperparameters().len()],
        }
    }
}

impl Hyperparams {
    /// The value of `key` as a number (a switch is 1 or 0), if set; `None` also for an unknown
    /// key and for a word.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.value(key).and_then(|v| v.number())
    }

    /// The value of `key`, if set.
    pub fn value(&self, key: &str) -> Option<Value> {
        find(key).and_then(|i| self.values[i])
    }

    /// Sets `key` to the number `value` (a switch: any value but 0 turns it on).
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), String> {
        let i = find(key).ok_or_else(|| format!("unknown hyperparameter `{key}`; expected one of {}", known_keys()))?;
        let h = lab_hyperparameters()[i];
        let value = match h.kind {
            Kind::Switch => Value::Switch(value != 0.0),
            _ => Value::Number(value),
        };
        self.set_value(key, value)
    }

    /// Sets `key` to `value`, checked against its kind (a finite number, a whole number, a
    /// switch, or one of its words).
    pub fn set_value(&mut self, key: &str, value: Value) -> Result<(), String> {
        let i = find(key).ok_or_else(|| format!("unknown hyperparameter `{key}`; expected one of {}", known_keys()))?;
        let h = lab_hyperparameters()[i];
        h.check_kind(value)
            .map_err(|e| format!("{key} = {value}: expected {}", e.expected))?;
        self.values[i] = Some(value);
        Ok(())
    }

    /// Sets every hyperparameter given here on `config` (a preset's configuration). Two that
    /// choose different members of one room (e.g. `asam_eta` and `fisher_eta`, two geometries)
    /// are an error naming both flags.
    pub fn apply(&self, config: &mut SamConfig, context: Context) -> Result<(), String> {
        let settings: Vec<(&'static Hyperparameter, Value)> = lab_hyperparameters()
            .iter()
            .zip(&self.values)
            .filter_map(|(h, v)| v.map(|v| (*h, v)))
            .collect();
        flatmin::apply(config, &settings, &context).map_err(|e| match e {
            SettingError::Clash {
                first,
                second,
                room,
                members,
            } => format!(
                "{} and {} both choose the {room} ({} and {}): give one, not both",
                flag(first),
                flag(second),
                members.0,
                members.1
            ),
            SettingError::Invalid(e) => {
                format!("{}: {} = {}: expected {}", flag(e.field), e.field, e.value, e.expected)
            }
        })
    }
}

fn to_json(h: &Hyperparameter, v: &Value) -> serde_json::Value {
    match (h.kind, v) {
        (_, Value::Word(w)) => serde_json::Value::from(*w),
        (Kind::Switch, v) => serde_json::Value::from(v.on()),
        (_, Value::Number(n)) => serde_json::Value::from(*n),
        (_, Value::Switch(on)) => serde_json::Value::from(*on),
    }
}

/// Written as an object with every key (`null` when not set), the form runs have always
/// recorded.
impl Serialize for Hyperparams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (h, value) in lab_hyperparameters().iter().zip(&self.values) {
            match value {
                None => map.serialize_entry(h.key, &None::<f64>)?,
                Some(v) => map.serialize_entry(h.key, &to_json(h, v))?,
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
        let mut seen = vec![false; hp.values.len()];
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
            let h = lab_hyperparameters()[i];
            let value = match h.kind {
                Kind::Switch => map
                    .next_value::<Option<bool>>()
                    .map_err(|e| de::Error::custom(format!("`hp.{key}`: expected true, false or null ({e})")))?
                    .map(Value::Switch),
                _ => match map
                    .next_value::<Option<serde_json::Value>>()
                    .map_err(|e| de::Error::custom(format!("`hp.{key}`: expected a number or null ({e})")))?
                {
                    None => None,
                    Some(serde_json::Value::Number(n)) => Some(Value::Number(n.as_f64().unwrap_or(f64::NAN))),
                    Some(serde_json::Value::String(s)) => match h.words.iter().find(|w| **w == s) {
                        Some(w) => Some(Value::Word(w)),
                        None => {
                            return Err(de::Error::custom(format!(
                                "`hp.{key}`: expected a number{} or null, found \"{s}\"",
                                if h.words.is_empty() {
                                    String::new()
                                } else {
                                    format!(", {}", h.words.join(", "))
                                }
                            )));
                        }
                    },
                    Some(other) => {
                        return Err(de::Error::custom(format!(
                            "`hp.{key}`: expected a number or null, found {other}"
                        )));
                    }
                },
            };
            if let Some(v) = value {
                h.check_kind(v)
                    .map_err(|e| de::Error::custom(format!("`hp.{key}`: expected {}", e.expected)))?;
            }
            hp.values[i] = value;
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

/// The flags: `--KEY VALUE` for a number (negative numbers too: `--ae-c-end -1`) or one of its
/// words, `--KEY` for a switch (which turns it on).
impl clap::Args for Hyperparams {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        lab_hyperparameters().iter().fold(cmd, |cmd, h| {
            let arg = clap::Arg::new(h.key).long(h.key.replace('_', "-")).help(h.doc);
            cmd.arg(match h.kind {
                Kind::Switch => arg.action(clap::ArgAction::SetTrue),
                _ => {
                    let h: &'static Hyperparameter = h;
                    arg.value_name(h.key.to_uppercase())
                        .allow_negative_numbers(true)
                        .value_parser(move |text: &str| -> Result<Value, String> {
                            h.parse(text)
                                .map_err(|e| format!("{}: expected {}, got `{text}`", h.key, e.expected))
                        })
                }
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
        for (h, slot) in lab_hyperparameters().iter().zip(&mut self.values) {
            match h.kind {
                Kind::Switch => {
                    if let Ok(Some(true)) = matches.try_get_one::<bool>(h.key) {
                        *slot = Some(Value::Switch(true));
                    }
                }
                _ => {
                    if let Ok(Some(v)) = matches.try_get_one::<Value>(h.key) {
                        *slot = Some(*v);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use flatmin::{
        AeSamConfig, AsamConfig, BsamConfig, EveryConfig, LookSamConfig, RandomConfig, RhoSchedule, SquaredAsamConfig,
        SwpConfig, SwpGranularity, UnifiedConfig, UnifiedLambda, WsamConfig,
    };

    use super::*;

    #[test]
    fn keys_are_unique_and_flags_follow_them() {
        for (i, h) in lab_hyperparameters().iter().enumerate() {
            assert_eq!(find(h.key), Some(i), "{} twice", h.key);
            assert!(
                h.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                h.key
            );
        }
        assert_eq!(flag("esam_per_element"), "--esam-per-element");
        // The keys runs have always recorded are all still there, in their order.
        let keys: Vec<&str> = lab_hyperparameters().iter().map(|h| h.key).collect();
        let recorded = [
            "rho",
            "rho_min",
            "eps",
            "adaptive",
            "asam_eta",
            "fisher_eta",
            "fsam_sigma",
            "fsam_lambda",
            "esam_beta",
            "esam_per_element",
            "esam_gamma",
            "wsam_gamma",
            "wsam_coupled",
            "wsam_max_norm",
            "gsam_alpha",
            "sam_every",
            "sam_probability",
            "ae_delta",
            "ae_c_start",
            "ae_c_end",
            "looksam_alpha",
            "looksam_per_tensor",
            "looksam_eps_norm",
            "bsam_prior_precision",
            "bsam_damping",
            "bsam_s_init",
            "bsam_beta1",
            "bsam_beta2",
        ];
        assert_eq!(&keys[..recorded.len()], &recorded[..]);
    }

    #[test]
    fn json_keeps_every_key_and_reads_nulls_as_unset() {
        let mut hp = Hyperparams::default();
        hp.set("rho", 0.1).unwrap();
        hp.set("wsam_coupled", 1.0).unwrap();
        hp.set_value("unified_lambda", Value::Word("1/t")).unwrap();
        let json = serde_json::to_value(&hp).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), lab_hyperparameters().len());
        assert_eq!(
            (
                object["rho"].clone(),
                object["wsam_coupled"].clone(),
                object["unified_lambda"].clone()
            ),
            (0.1.into(), true.into(), "1/t".into())
        );
        assert!(object["esam_beta"].is_null());
        let back: Hyperparams = serde_json::from_value(json).unwrap();
        assert_eq!(back, hp);
        let err = |text: &str| serde_json::from_str::<Hyperparams>(text).unwrap_err().to_string();
        assert!(err(r#"{"rhoo": 1}"#).contains("unknown field `rhoo`"));
        assert!(err(r#"{"rho": true}"#).contains("hp.rho"));
        assert!(err(r#"{"adaptive": 1}"#).contains("hp.adaptive"));
        assert!(err(r#"{"rho": 1, "rho": 2}"#).contains("duplicate"));
        assert!(err(r#"{"unified_lambda": "1/x"}"#).contains("1-1/t"));
        assert!(err(r#"{"sam_every": 2.5}"#).contains("whole number"));
        assert!(hp.set("nope", 1.0).unwrap_err().contains("rho, rho_min"));
        assert!(hp.set("rho", f64::NAN).unwrap_err().contains("finite"));
        assert!(finite("inf").is_err() && finite("NaN").is_err() && finite("x").is_err());
        assert_eq!(finite("0.25"), Ok(0.25));
    }

    fn on(preset: &str, pairs: &[(&str, f64)]) -> Result<SamConfig, String> {
        let context = Context { lr: 0.2, seed: 7 };
        let mut hp = Hyperparams::default();
        for (k, v) in pairs {
            hp.set(k, *v)?;
        }
        let mut c = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 0.0)).unwrap();
        hp.apply(&mut c, context)?;
        Ok(c)
    }

    #[test]
    fn each_hyperparameter_changes_its_field_of_the_library_config() {
        assert_eq!(on("sam", &[("rho", 0.3)]).unwrap().rho, 0.3);
        assert_eq!(
            on("sam", &[("rho_min", 0.01)]).unwrap().rho_schedule,
            RhoSchedule::ProportionalToLr {
                rho_min: 0.01,
                lr_max: 0.2,
                lr_min: 0.0
            }
        );
        assert!(on("sam", &[("adaptive", 0.0)]).unwrap().members.is_empty());
        assert!(
            on("sam", &[("adaptive", 1.0)])
                .unwrap()
                .member::<SquaredAsamConfig>()
                .is_some()
        );
        let c = on("sam", &[("esam_per_element", 1.0)]).unwrap();
        let swp = c.member::<SwpConfig>().unwrap();
        assert_eq!(
            (swp.granularity, swp.beta, swp.seed),
            (SwpGranularity::PerElement, 0.6, 7)
        );
        let c = on("sam", &[("wsam_coupled", 1.0)]).unwrap();
        assert_eq!(c.member::<WsamConfig>(), Some(&WsamConfig::new().with_decoupled(false)));
        let e = on("sam", &[("asam_eta", 0.1), ("fisher_eta", 1.0)]).unwrap_err();
        assert!(
            e.contains("--asam-eta and --fisher-eta") && e.contains("not both"),
            "{e}"
        );
        // A flag replaces the preset's member of its room.
        let c = on("fisher-sam", &[("asam_eta", 0.1)]).unwrap();
        assert_eq!(c.members.len(), 1);
        assert_eq!(c.member::<AsamConfig>().unwrap().eta, 0.1);
        let mut hp = Hyperparams::default();
        hp.set_value("unified_lambda", Value::Word("1-1/t")).unwrap();
        let mut c = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 0.0)).unwrap();
        hp.apply(&mut c, Context { lr: 0.1, seed: 0 }).unwrap();
        assert_eq!(
            c.member::<UnifiedConfig>().unwrap().lambda,
            UnifiedLambda::OneMinusInverseT
        );
    }

    #[test]
    fn the_schedule_looksam_and_bsam_flags_reach_the_library_config() {
        assert_eq!(
            on("wsam", &[("sam_every", 3.0)])
                .unwrap()
                .member::<EveryConfig>()
                .unwrap()
                .k,
            3
        );
        let c = on("esam", &[("sam_probability", 0.25)]).unwrap();
        assert_eq!(
            c.member::<RandomConfig>(),
            Some(&RandomConfig::new().with_probability(0.25).with_seed(7))
        );
        let ae = on("sam", &[("ae_delta", 0.5), ("ae_c_start", -2.0), ("ae_c_end", 0.5)]).unwrap();
        assert_eq!(
            ae.member::<AeSamConfig>(),
            Some(&AeSamConfig::new().with_delta(0.5).with_c_start(-2.0).with_c_end(0.5))
        );
        // On the ae-sam preset, one field changes and the others keep the preset's values.
        let a = on("ae-sam", &[("ae_c_end", 2.0)])
            .unwrap()
            .member::<AeSamConfig>()
            .unwrap()
            .clone();
        assert_eq!((a.delta, a.c_start, a.c_end), (0.9, AeSamConfig::new().c_start, 2.0));
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
            look.member::<LookSamConfig>(),
            Some(
                &LookSamConfig::new()
                    .with_alpha(0.3)
                    .with_per_tensor(true)
                    .with_eps_norm(1e-6)
            )
        );
        assert_eq!(
            look.member::<EveryConfig>(),
            Some(&EveryConfig::new()),
            "LookSAM's k by default"
        );
        let look = on("looksam", &[("sam_every", 2.0), ("looksam_alpha", 1.0)]).unwrap();
        assert_eq!(
            (
                look.member::<EveryConfig>().unwrap().k,
                look.member::<LookSamConfig>().unwrap().alpha
            ),
            (2, 1.0)
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
        let b = b.member::<BsamConfig>().unwrap();
        assert_eq!(
            (b.prior_precision, b.damping, b.s_init, b.beta1, b.beta2),
            (5.0, 0.2, 2.0, 0.8, 0.99)
        );
    }

    #[test]
    fn bad_or_clashing_schedule_flags_are_refused_by_name() {
        let refused = |preset: &str, pairs: &[(&str, f64)]| -> String {
            match on(preset, pairs) {
                Err(e) => e,
                Ok(c) => c.for_run(100, 1000).validate().expect_err("refused").to_string(),
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
