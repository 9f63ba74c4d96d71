//! The registry: every hyperparameter once, with its member's `Config` default; `set` and `get`
//! round-trip; two members of one room are a clash; a whole-step member's settings need its
//! preset; every preset is listed.

use std::collections::HashSet;

use flatmin::{
    AdamBaseConfig, AeSamConfig, AsamConfig, BaseConfig, BsamConfig, Context, EveryConfig, FisherConfig,
    FriendlyConfig, GsamConfig, Kind, LookSamConfig, Member, MsamConfig, PRESETS, RandomConfig, SamConfig,
    SelectionConfig, SettingError, SgdBaseConfig, SquaredAsamConfig, SwpConfig, UnifiedConfig, Value, WsamConfig,
    apply, base_hyperparameters, hyperparameter, hyperparameters, preset_doc,
};

const CONTEXT: Context = Context { lr: 0.1, seed: 0 };

/// The member named `name` with its `Config` defaults: "turned on", nothing set.
fn member_on(name: &str) -> Member {
    match name {
        "adaptive" => SquaredAsamConfig::new().into(),
        "asam" => AsamConfig::new().into(),
        "fisher" => FisherConfig::new().into(),
        "fsam" => FriendlyConfig::new().into(),
        "esam" => SwpConfig::new().into(),
        "esam-selection" => SelectionConfig::new().into(),
        "wsam" => WsamConfig::new().into(),
        "gsam" => GsamConfig::new().into(),
        "every" => EveryConfig::new().into(),
        "rst" => RandomConfig::new().into(),
        "ae-sam" => AeSamConfig::new().into(),
        "looksam" => LookSamConfig::new().into(),
        "bsam" => BsamConfig::new().into(),
        "unified" => UnifiedConfig::new().into(),
        "msam" => MsamConfig::new().into(),
        other => panic!("a member this test does not know: {other} (add it here)"),
    }
}

fn sam() -> SamConfig {
    SamConfig::preset("sam", SamConfig::sgd_base(0.9, 0.0)).unwrap()
}

#[test]
fn every_key_is_unique_and_listed_in_registry_order() {
    let keys: Vec<&str> = hyperparameters().iter().map(|h| h.key).collect();
    let unique: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "{keys:?}");
    assert_eq!(
        keys,
        [
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
            "esam_seed",
            "esam_gamma",
            "wsam_gamma",
            "wsam_coupled",
            "wsam_decoupled",
            "wsam_max_norm",
            "gsam_alpha",
            "sam_every",
            "sam_probability",
            "sam_seed",
            "ae_delta",
            "ae_c_start",
            "ae_c_end",
            "ae_total_steps",
            "looksam_alpha",
            "looksam_per_tensor",
            "looksam_eps_norm",
            "bsam_prior_precision",
            "bsam_damping",
            "bsam_s_init",
            "bsam_beta1",
            "bsam_beta2",
            "bsam_data_size",
            "bsam_seed",
            "unified_lambda",
        ]
    );
    let filled_by_the_run: HashSet<&str> = hyperparameters().iter().filter(|h| !h.lab).map(|h| h.key).collect();
    assert_eq!(
        filled_by_the_run,
        HashSet::from([
            "esam_seed",
            "wsam_decoupled",
            "sam_seed",
            "ae_total_steps",
            "bsam_data_size",
            "bsam_seed"
        ])
    );
    for h in hyperparameters() {
        assert_eq!(h.room.is_none(), h.member == "core", "{h:?}");
        assert!(!h.doc.is_empty(), "{h:?}");
        assert!(std::ptr::eq(hyperparameter(h.key).unwrap(), h));
    }
    assert!(hyperparameter("no_such_key").is_none());
    for base in ["sgd", "adam"] {
        let keys: Vec<&str> = base_hyperparameters()
            .iter()
            .filter(|h| h.member == base)
            .map(|h| h.key)
            .collect();
        let unique: HashSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len(), "{base}: {keys:?}");
    }
}

/// Each hyperparameter's default is what `get` reads from a configuration in which its member
/// is merely turned on (the member's `Config` default), or from a fresh `SamConfig` and base.
#[test]
fn defaults_are_the_members_config_defaults() {
    for h in hyperparameters() {
        let config = match h.member {
            "core" => SamConfig::new(SamConfig::sgd_base(0.0, 0.0)),
            member => SamConfig::new(SamConfig::sgd_base(0.9, 0.0)).with_member(member_on(member)),
        };
        assert_eq!(h.get(&config), Some(h.default_value(&CONTEXT)), "{}", h.key);
        if h.member != "core" {
            assert_eq!(h.get(&sam()), None, "{}: its member is off in SAM", h.key);
        }
    }
    for h in base_hyperparameters() {
        let base = match h.member {
            "sgd" => BaseConfig::Sgd(SgdBaseConfig::new()),
            _ => BaseConfig::Adam(AdamBaseConfig::new()),
        };
        assert_eq!(
            h.get(&SamConfig::new(base)),
            Some(h.default_value(&CONTEXT)),
            "{}",
            h.key
        );
    }
    // The seeds are the run's: a member a hyperparameter turns on draws from the run's seed.
    let seeded = Context { lr: 0.1, seed: 7 };
    for h in hyperparameters() {
        let differs = h.default_value(&seeded) != h.default_value(&CONTEXT);
        assert_eq!(differs, h.key.ends_with("_seed"), "{}", h.key);
    }
}

/// A value of the right kind other than the default, valid in `config` (whose member the key
/// turns on, for the run filled in).
fn other_value(h: &flatmin::Hyperparameter, config: &SamConfig) -> Value {
    let default = h.default_value(&CONTEXT);
    let candidates: Vec<Value> = match h.kind {
        Kind::Switch => vec![Value::Switch(true), Value::Switch(false)],
        Kind::Whole => vec![Value::Number(3.0), Value::Number(7.0)],
        Kind::Number => [0.3, 0.7, 0.02, 2.0, 5.0].into_iter().map(Value::Number).collect(),
    };
    candidates
        .into_iter()
        .find(|&v| {
            let mut c = config.clone();
            v != default
                && h.set(&mut c, v, &CONTEXT).is_ok()
                && c.for_run(100, 1000).validate().is_ok()
                && (h.kind == Kind::Switch || h.range.contains(v.number().unwrap()))
        })
        .unwrap_or_else(|| panic!("{}: no valid value other than {default}", h.key))
}

#[test]
fn set_then_get_round_trips() {
    for h in hyperparameters() {
        let start = match h.member {
            "bsam" => SamConfig::preset("bsam", SamConfig::sgd_base(0.9, 0.0)).unwrap(),
            _ => sam(),
        };
        // The switch that is a member's presence reads `true` while the member is in.
        let mut values = if h.key == "adaptive" {
            vec![Value::Switch(true)]
        } else {
            vec![other_value(h, &start)]
        };
        values.extend(h.words.iter().map(|&w| Value::Word(w)));
        for value in values {
            let mut config = start.clone();
            h.set(&mut config, value, &CONTEXT)
                .unwrap_or_else(|e| panic!("{}: {e}", h.key));
            assert_eq!(h.get(&config), Some(value), "{} = {value}", h.key);
            assert!(
                config.clone().for_run(100, 1000).validate().is_ok(),
                "{} = {value}",
                h.key
            );
            assert_eq!(
                h.parse(&value.to_string()).ok(),
                Some(value),
                "{}: parse {value}",
                h.key
            );
            // The member came in with its defaults: its other settings read them (but the two
            // spellings of WSAM's coupling, which are one setting).
            for other in hyperparameters()
                .iter()
                .filter(|o| o.member == h.member && o.key != h.key)
            {
                if h.member == "core"
                    || (h.key.starts_with("wsam_") && other.key.starts_with("wsam_") && other.kind == Kind::Switch)
                {
                    continue;
                }
                assert_eq!(
                    other.get(&config),
                    Some(other.default_value(&CONTEXT)),
                    "{} after {}",
                    other.key,
                    h.key
                );
            }
        }
    }
    // A switch that is a member's only setting is the member: off leaves it out.
    let adaptive = hyperparameter("adaptive").unwrap();
    let mut config = sam().with_member(SquaredAsamConfig::new());
    adaptive.set(&mut config, Value::Switch(false), &CONTEXT).unwrap();
    assert!(config.member::<SquaredAsamConfig>().is_none());
    assert_eq!(adaptive.get(&config), None);
    // LookSAM's settings bring a schedule along (a SAM step every 5 steps).
    let mut config = sam();
    hyperparameter("looksam_alpha")
        .unwrap()
        .set(&mut config, Value::Number(0.5), &CONTEXT)
        .unwrap();
    assert_eq!(config.member::<EveryConfig>(), Some(&EveryConfig::new()));
    // A value of the wrong kind is refused; a number out of range is left to `validate`.
    let gamma = hyperparameter("wsam_gamma").unwrap();
    assert!(gamma.set(&mut sam(), Value::Switch(true), &CONTEXT).is_err());
    assert!(gamma.set(&mut sam(), Value::Word("1/t"), &CONTEXT).is_err());
    let mut config = sam();
    gamma.set(&mut config, Value::Number(1.5), &CONTEXT).unwrap();
    assert_eq!(config.validate().unwrap_err().field, "wsam_gamma");
}

#[test]
fn two_members_of_one_room_clash() {
    let key = |k: &str| hyperparameter(k).unwrap();
    for (a, b, room, members) in [
        ("asam_eta", "fisher_eta", "geometry", ("asam", "fisher")),
        ("adaptive", "unified_lambda", "geometry", ("adaptive", "unified")),
        ("sam_every", "sam_probability", "schedule", ("every", "rst")),
        ("sam_probability", "ae_delta", "schedule", ("rst", "ae-sam")),
        ("wsam_gamma", "gsam_alpha", "combination", ("wsam", "gsam")),
    ] {
        let values = |k: &str| match key(k).kind {
            Kind::Switch => Value::Switch(true),
            Kind::Whole => Value::Number(3.0),
            Kind::Number => Value::Number(0.5),
        };
        // In either order given: the registry's order names them.
        for settings in [
            [(key(a), values(a)), (key(b), values(b))],
            [(key(b), values(b)), (key(a), values(a))],
        ] {
            let mut config = sam();
            let err = apply(&mut config, &settings, &CONTEXT).unwrap_err();
            assert_eq!(
                err,
                SettingError::Clash {
                    first: a,
                    second: b,
                    room,
                    members
                }
            );
            assert!(err.to_string().contains(a) && err.to_string().contains(b), "{err}");
        }
    }
    // Two settings of one member, and a switch turned off, are no clash.
    let mut config = sam();
    apply(
        &mut config,
        &[
            (key("wsam_gamma"), Value::Number(0.8)),
            (key("wsam_max_norm"), Value::Number(2.0)),
        ],
        &CONTEXT,
    )
    .unwrap();
    assert_eq!(
        config.member::<WsamConfig>(),
        Some(&WsamConfig::new().with_gamma(0.8).with_max_norm(Some(2.0)))
    );
    let mut config = sam();
    apply(
        &mut config,
        &[
            (key("adaptive"), Value::Switch(false)),
            (key("asam_eta"), Value::Number(0.1)),
        ],
        &CONTEXT,
    )
    .unwrap();
    assert_eq!(config.member::<AsamConfig>(), Some(&AsamConfig::new().with_eta(0.1)));
}

/// bSAM (a whole step of its own) is chosen by its preset only: its settings on SAM are an error
/// and leave the configuration as it was; on the bsam preset they apply.
#[test]
fn bsam_settings_need_the_bsam_preset() {
    for h in hyperparameters().iter().filter(|h| h.member == "bsam") {
        let mut config = sam();
        let value = Value::Number(3.0);
        let err = h.set(&mut config, value, &CONTEXT).unwrap_err();
        assert_eq!(err.field, h.key);
        assert_eq!(config, sam());
        assert!(matches!(
            apply(&mut config, &[(h, value)], &CONTEXT),
            Err(SettingError::Invalid(_))
        ));
        let mut bsam = SamConfig::preset("bsam", SamConfig::sgd_base(0.9, 0.0)).unwrap();
        let value = if h.kind == Kind::Whole {
            Value::Number(3.0)
        } else {
            Value::Number(0.5)
        };
        h.set(&mut bsam, value, &CONTEXT)
            .unwrap_or_else(|e| panic!("{}: {e}", h.key));
        assert_eq!(h.get(&bsam), Some(value));
    }
    // A base optimizer's setting on the other base is an error too.
    let momentum = base_hyperparameters().iter().find(|h| h.key == "momentum").unwrap();
    let mut adam = SamConfig::new(SamConfig::adam_base(0.0, false));
    assert!(momentum.set(&mut adam, Value::Number(0.5), &CONTEXT).is_err());
}

#[test]
fn sixteen_presets_are_listed() {
    assert_eq!(PRESETS.len(), 16);
    assert_eq!(
        PRESETS,
        [
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
            "msam",
            "usam",
            "unified-sam",
        ]
    );
    for name in PRESETS {
        let config = SamConfig::preset(name, SamConfig::sgd_base(0.9, 0.0)).unwrap();
        config
            .for_run(100, 1000)
            .init()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(preset_doc(name).is_some_and(|d| !d.is_empty()), "{name}");
        // The error for an unknown name lists every preset.
        let err = SamConfig::preset("no-such-preset", SamConfig::sgd_base(0.9, 0.0)).unwrap_err();
        assert!(
            err.expected
                .split(", ")
                .any(|n| n.trim_start_matches("one of ") == name),
            "{name}: {err}"
        );
    }
    assert!(preset_doc("no-such-preset").is_none());
}
