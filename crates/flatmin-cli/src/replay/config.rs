//! A case's hyperparameters as a library configuration: the case names a reference
//! (`flatmin::reference`), which gives the preset the case starts from, and each key is a name
//! that a member of the library declares for one of its hyperparameters (the `replay` names of
//! `flatmin::hyperparameters()` and `flatmin::base_hyperparameters()`). The few keys that are the
//! case's own — the base optimizer and `lr`, GSAM's ρ schedule, WSAM's derived `alpha`, ESAM's
//! Python seed — are read here; any other key is an unknown hyperparameter.
//!
//! The hyperparameters stay JSON values: which kind each key holds (a number, a switch, a word)
//! is the registry's declaration, not this file's.

use flatmin::{
    AdamBaseConfig, BaseConfig, Context, Hyperparameter, RhoSchedule, SamConfig, SettingError, SgdBaseConfig,
    Value as HpValue,
};
use serde_json::{Map, Value};

use super::CaseError;

/// Hyperparameters that do not map onto the library: each error names the key (as the case
/// spells it, under `hyperparams`) and what was expected there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `optimizer` is none of [`OPTIMIZERS`].
    #[error("unknown optimizer `{name}`: expected one of {}", OPTIMIZERS.join(", "))]
    UnknownOptimizer {
        /// The name as written.
        name: String,
    },
    /// A key that neither the optimizer's members nor the case itself read.
    #[error("unknown hyperparameter `{key}` for optimizer `{optimizer}`")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The case's optimizer.
        optimizer: String,
    },
    /// A required key is absent (or null).
    #[error("`hyperparams.{key}` is missing")]
    Missing {
        /// The key.
        key: String,
    },
    /// A value of the wrong kind.
    #[error("`hyperparams.{key}`: expected {expected}, found {found}")]
    WrongType {
        /// The key (with an index for an element, `betas[0]`).
        key: String,
        /// What the key takes.
        expected: String,
        /// The value found, as JSON.
        found: String,
    },
    /// A value of the right kind that the key does not allow.
    #[error("`hyperparams.{key}` = {value}: expected {expected}")]
    Rejected {
        /// The key.
        key: String,
        /// The value found.
        value: String,
        /// What the key allows.
        expected: String,
    },
    /// Two keys that exclude each other.
    #[error("`hyperparams.{first}` and `hyperparams.{second}` exclude each other")]
    Clash {
        /// One key, as the case spells it.
        first: String,
        /// The other.
        second: String,
    },
    /// The library refuses the configuration the keys make.
    #[error("hyperparams: {0}")]
    Library(String),
    /// A rule of the reference implementations (a key another optimizer takes, a value its code
    /// does not support), in words.
    #[error("{0}")]
    Unsupported(String),
}

impl From<ConfigError> for CaseError {
    fn from(e: ConfigError) -> Self {
        CaseError(e.to_string())
    }
}

fn unsupported<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::Unsupported(msg.into()))
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn rejected(key: &str, value: impl ToString, expected: &str) -> ConfigError {
    ConfigError::Rejected {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// The number at `key` (the key without `hyperparams.`).
fn num(v: &Value, key: &str) -> Result<f64, ConfigError> {
    v.as_f64().ok_or_else(|| wrong_type(key, "a number", v))
}

/// A learning rate: finite and not negative.
fn check_lr(lr: f64) -> Result<f64, ConfigError> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(lr)
    } else {
        Err(rejected("lr", lr, "a finite number >= 0"))
    }
}

/// Hyperparameters, each read once; what is never read is an unknown key.
struct Keys<'a> {
    map: &'a Map<String, Value>,
    used: Vec<String>,
}

impl<'a> Keys<'a> {
    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.push(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn num(&mut self, key: &str) -> Result<f64, ConfigError> {
        match self.get(key) {
            Some(v) => num(v, key),
            None => Err(ConfigError::Missing { key: key.to_string() }),
        }
    }

    fn num_or(&mut self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.get(key) {
            Some(v) => num(v, key),
            None => Ok(default),
        }
    }

    fn present(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    fn finish(&self, optimizer: &str) -> Result<(), ConfigError> {
        let mut unknown: Vec<&String> = self.map.keys().filter(|k| !self.used.contains(k)).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(ConfigError::UnknownKey {
                key: k.to_string(),
                optimizer: optimizer.to_string(),
            }),
        }
    }
}

/// The names of the `optimizer` field a replay understands: the library's references.
pub const OPTIMIZERS: [&str; flatmin::REFERENCES.len()] = flatmin::REFERENCES;

/// A case value as a hyperparameter's value.
fn hp_value(h: &Hyperparameter, v: &Value, key: &str) -> Result<HpValue, ConfigError> {
    let value = match v {
        Value::Bool(b) => HpValue::Switch(*b),
        Value::Number(n) => HpValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => match h.words.iter().find(|w| **w == s.as_str()) {
            Some(w) => HpValue::Word(w),
            None => return Err(rejected(key, format!("\"{s}\""), "a number")),
        },
        other => return Err(wrong_type(key, "a number or true/false", other)),
    };
    h.check_kind(value).map_err(|e| wrong_type(key, e.expected, v))?;
    if let HpValue::Number(n) = value
        && h.kind != flatmin::Kind::Switch
        && !h.range.contains(n)
    {
        return Err(rejected(key, v, h.range.expected));
    }
    Ok(value)
}

/// The base optimizer a case names (`base`, with `lr` and the base's keys, mapped through the
/// library's declarations of the base optimizers' hyperparameters).
fn base_config(keys: &mut Keys, optimizer: &str) -> Result<(BaseConfig, f64), ConfigError> {
    let base = match keys.get("base") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type("base", "a string", other)),
        // MSAM's SGD form is its own class, with no base to name.
        None if optimizer == "MSAM" => "torch.optim.SGD".to_string(),
        None => return Err(ConfigError::Missing { key: "base".into() }),
    };
    let lr = check_lr(keys.num("lr")?)?;
    let name = base.strip_prefix("torch.optim.").unwrap_or(&base);
    let mut config = match name {
        "SGD" => BaseConfig::Sgd(SgdBaseConfig::new()),
        "Adam" | "AdamW" => {
            let mut adam = AdamBaseConfig::new().with_decoupled_weight_decay(name == "AdamW");
            if let Some(b) = keys.get("betas") {
                match b {
                    Value::Array(b) if b.len() == 2 => {
                        adam.beta1 = num(&b[0], "betas[0]")?;
                        adam.beta2 = num(&b[1], "betas[1]")?;
                    }
                    other => return Err(wrong_type("betas", "[beta1, beta2]", other)),
                }
            }
            match keys.get("amsgrad") {
                None | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) => {
                    return unsupported("`hyperparams.amsgrad` = true is not supported (only amsgrad = false)");
                }
                Some(other) => return Err(wrong_type("amsgrad", "true or false", other)),
            }
            // torch.optim.AdamW's own default weight decay.
            if name == "AdamW" && !keys.present("weight_decay") {
                adam.weight_decay = 0.01;
            }
            BaseConfig::Adam(adam)
        }
        _ => {
            return Err(rejected(
                "base",
                format!("`{base}`"),
                "torch.optim.SGD, torch.optim.Adam or torch.optim.AdamW",
            ));
        }
    };
    // The base's keys, by the names its declarations give reference trajectories.
    let member = if matches!(config, BaseConfig::Sgd(_)) {
        "sgd"
    } else {
        "adam"
    };
    let mut probe = SamConfig::new(config.clone());
    for h in flatmin::base_hyperparameters().iter().filter(|h| h.member == member) {
        for key in h.replay {
            if let Some(v) = keys.get(key) {
                let value = hp_value(h, v, key)?;
                h.set(&mut probe, value, &Context { lr, seed: 0 })
                    .map_err(|e| ConfigError::Library(e.to_string()))?;
            }
        }
    }
    config = probe.base;
    Ok((config, lr))
}

/// bSAM, its own base optimizer: `lr`; `base` is absent (or `BSAM`).
fn bsam_base(keys: &mut Keys) -> Result<(BaseConfig, f64), ConfigError> {
    match keys.get("base") {
        None => {}
        Some(Value::String(s)) if s == "BSAM" => {}
        Some(other) => {
            return unsupported(format!(
                "`hyperparams.base` = {other}: BSAM is its own base optimizer (leave `base` out)"
            ));
        }
    }
    let lr = check_lr(keys.num("lr")?)?;
    Ok((SamConfig::sgd_base(0.0, 0.0), lr))
}

/// Maps the case's optimizer and hyperparameters onto a library configuration, through the
/// library's registry ([`flatmin::reference`]): the case starts from the reference's preset,
/// and each key is a name a member declares for one of its hyperparameters. The few keys that
/// are the case's own — the base optimizer and `lr`, GSAM's ρ schedule, WSAM's derived `alpha`,
/// ESAM's Python seed — are read here.
pub fn config_for(optimizer: &str, hyperparams: &Map<String, Value>) -> Result<(SamConfig, f64), ConfigError> {
    let Some(reference) = flatmin::reference(optimizer) else {
        return Err(ConfigError::UnknownOptimizer {
            name: optimizer.to_string(),
        });
    };
    let mut keys = Keys {
        map: hyperparams,
        used: Vec::new(),
    };
    for key in reference.required() {
        if !keys.present(key) {
            return Err(ConfigError::Missing { key: key.to_string() });
        }
    }
    let (base, lr) = if reference.has_base() {
        base_config(&mut keys, optimizer)?
    } else {
        bsam_base(&mut keys)?
    };
    let context = Context { lr, seed: 0 };
    let mut config = reference
        .config(base, &context)
        .map_err(|e| ConfigError::Library(e.to_string()))?;
    // The keys that are the case's own.
    match optimizer {
        "SamsungLabs.SAM" if keys.get("eta").is_some() => {
            return unsupported("`SamsungLabs.SAM` takes `hyperparams.eta` = null (use SamsungLabs.ASAM for eta)");
        }
        "SAM(adaptive)" if keys.map.get("adaptive").and_then(Value::as_bool) != Some(true) => {
            return unsupported("`SAM(adaptive)` needs `hyperparams.adaptive` = true");
        }
        "WSAM" => {
            // `alpha` is γ/(1−γ), recorded for reference; the library derives it from γ.
            if let Some(alpha) = keys.get("alpha") {
                let alpha = num(alpha, "alpha")?;
                let gamma = num(keys.map.get("gamma").unwrap_or(&Value::Null), "gamma")?;
                let derived = gamma / (1.0 - gamma);
                if (alpha - derived).abs() > 1e-9 * derived.abs().max(1.0) {
                    return unsupported(format!(
                        "`hyperparams.alpha` = {alpha} is not gamma/(1-gamma) = {derived}"
                    ));
                }
            }
        }
        "ESAM" => {
            // Python's generator: the replay takes the recorded choices instead.
            keys.get("python_random_seed");
        }
        "LookSAM" if keys.present("sam_every") => {
            return unsupported("`hyperparams.sam_every` is `hyperparams.k` for LookSAM");
        }
        "AE-SAM" | "BSAM" => {
            if let Some(key) = ["sam_every", "sam_probability", "sam_seed"]
                .into_iter()
                .find(|k| keys.present(k))
            {
                return unsupported(match optimizer {
                    "AE-SAM" => format!(
                        "`hyperparams.{key}`: AE-SAM's schedule is its own policy (delta, c_start, c_end, total_steps)"
                    ),
                    _ => format!("`hyperparams.{key}`: bSAM runs both passes at every step"),
                });
            }
        }
        _ => {}
    }
    match (keys.present("sam_probability"), keys.present("sam_seed")) {
        (true, false) => {
            return unsupported("`hyperparams.sam_seed` is missing: a random schedule is replayed from its seed");
        }
        (false, true) => {
            return unsupported("`hyperparams.sam_seed` belongs to `hyperparams.sam_probability`, which is missing");
        }
        _ => {}
    }
    let gsam_schedule = optimizer == "GSAM";
    let gsam_keys = ["rho_schedule", "rho_min", "lr_max", "lr_min", "rho_max"];
    // Every other key, by the names the members declare.
    let mut settings: Vec<(&'static Hyperparameter, HpValue)> = Vec::new();
    let mut spelled: Vec<(&'static str, String)> = Vec::new();
    let mut names: Vec<&String> = hyperparams.keys().collect();
    names.sort();
    for key in names {
        if keys.used.contains(key) || (gsam_schedule && gsam_keys.contains(&key.as_str())) {
            continue;
        }
        let Some(h) = reference.hyperparameter(key) else {
            continue;
        };
        keys.used.push(key.clone());
        let Some(v) = hyperparams.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        settings.push((h, hp_value(h, v, key)?));
        spelled.push((h.key, key.clone()));
    }
    let case_key = |hp: &str| {
        spelled
            .iter()
            .find(|(k, _)| *k == hp)
            .map_or_else(|| hp.to_string(), |(_, c)| c.clone())
    };
    flatmin::apply(&mut config, &settings, &context).map_err(|e| match e {
        SettingError::Clash { first, second, .. } => ConfigError::Clash {
            first: case_key(first),
            second: case_key(second),
        },
        SettingError::Invalid(e) => ConfigError::Library(e.to_string()),
    })?;
    if gsam_schedule {
        let rho = config.rho;
        let schedule = match keys.get("rho_schedule") {
            None => "constant",
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(wrong_type("rho_schedule", "constant or proportional", other)),
        };
        let schedule = match schedule {
            "constant" => RhoSchedule::Constant,
            "proportional" | "proportion" | "ProportionScheduler" => RhoSchedule::ProportionalToLr {
                rho_min: keys.num_or("rho_min", rho)?,
                lr_max: keys.num_or("lr_max", lr)?,
                lr_min: keys.num_or("lr_min", lr)?,
            },
            other => {
                return Err(rejected(
                    "rho_schedule",
                    format!("`{other}`"),
                    "constant or proportional",
                ));
            }
        };
        config.rho = keys.num_or("rho_max", rho)?;
        config.rho_schedule = schedule;
    }
    keys.finish(optimizer)?;
    config.validate().map_err(|e| ConfigError::Library(e.to_string()))?;
    Ok((config, lr))
}
