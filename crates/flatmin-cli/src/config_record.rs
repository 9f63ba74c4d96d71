//! How a run records the library configuration it was made with (`summary.json`'s `hyperparams`,
//! `checkpoint.json`'s `sam`), and how a resume compares it with the configuration its settings
//! give now.
//!
//! The record keeps the keys runs have always written — one per room of the step (`geometry`,
//! `friendly`, `swp`, `selection`, `combination`, `schedule`, `looksam`) and `base` (`Bsam` for
//! bSAM) — and adds `members`, the library's own list, where every member appears (Unified SAM
//! and MSAM only there), and `measure`.

use flatmin::{
    AeSamConfig, AsamConfig, BsamConfig, EveryConfig, FisherConfig, FriendlyConfig, GsamConfig, LookSamConfig,
    RandomConfig, SamConfig, SelectionConfig, SquaredAsamConfig, SwpConfig, WsamConfig,
};
use serde::Serialize;
use serde_json::{Value, json};

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn tagged<T: Serialize>(tag: &str, t: &T) -> Value {
    json!({ tag: to_value(t) })
}

/// The record of `sam`: the keys of every room as runs have always written them, and the
/// library's list of members.
pub fn config_json(sam: &SamConfig) -> Value {
    let base = match sam.member::<BsamConfig>() {
        Some(b) => tagged("Bsam", b),
        None => to_value(&sam.base),
    };
    let geometry = if sam.member::<SquaredAsamConfig>().is_some() {
        json!("AdaptiveSquared")
    } else if let Some(a) = sam.member::<AsamConfig>() {
        tagged("Asam", a)
    } else if let Some(f) = sam.member::<FisherConfig>() {
        tagged("Fisher", f)
    } else {
        json!("Euclidean")
    };
    let selection = match sam.member::<SelectionConfig>() {
        Some(s) => tagged("SharpnessSensitive", s),
        None => json!("All"),
    };
    let combination = if let Some(w) = sam.member::<WsamConfig>() {
        tagged("Wsam", w)
    } else if let Some(g) = sam.member::<GsamConfig>() {
        tagged("Gsam", g)
    } else {
        json!("Plain")
    };
    let schedule = if let Some(e) = sam.member::<EveryConfig>() {
        tagged("Every", e)
    } else if let Some(r) = sam.member::<RandomConfig>() {
        tagged("Random", r)
    } else if let Some(a) = sam.member::<AeSamConfig>() {
        tagged("Adaptive", a)
    } else {
        Value::Null
    };
    json!({
        "base": base,
        "rho": sam.rho,
        "rho_schedule": to_value(&sam.rho_schedule),
        "eps": sam.eps,
        "geometry": geometry,
        "friendly": sam.member::<FriendlyConfig>().map_or(Value::Null, to_value),
        "swp": sam.member::<SwpConfig>().map_or(Value::Null, to_value),
        "selection": selection,
        "combination": combination,
        "schedule": schedule,
        "looksam": sam.member::<LookSamConfig>().map_or(Value::Null, to_value),
        "members": to_value(&sam.members),
        "measure": sam.measure,
    })
}

/// Whether a run recorded as `made_with` continues with the configuration recorded as `now`: the
/// same, but for AE-SAM's `total_steps`, which follows the run's length as the cosine schedule
/// does (an extended run's threshold then moves over the new total). A record written before
/// the member registry (checkpoint format 2) has no `members`: the rooms are compared.
pub fn same_method(made_with: &Value, now: &Value) -> bool {
    let mut made_with = made_with.clone();
    let mut now = now.clone();
    if made_with.get("members").is_none() {
        for v in [&mut made_with, &mut now] {
            if let Some(o) = v.as_object_mut() {
                o.remove("members");
                o.remove("measure");
            }
            // Adam's `decay_after_step` came with MSAM; off, it is what every Adam did before.
            if let Some(adam) = v.pointer_mut("/base/Adam").and_then(Value::as_object_mut)
                && adam.get("decay_after_step") == Some(&Value::Bool(false))
            {
                adam.remove("decay_after_step");
            }
        }
    }
    let total = |v: &Value| v.pointer("/schedule/Adaptive/total_steps").cloned();
    if let (Some(_), Some(t)) = (total(&made_with), total(&now)) {
        if let Some(slot) = made_with.pointer_mut("/schedule/Adaptive/total_steps") {
            *slot = t.clone();
        }
        if let Some(members) = made_with.get_mut("members").and_then(Value::as_array_mut) {
            for m in members {
                if let Some(slot) = m.pointer_mut("/AeSam/total_steps") {
                    *slot = t.clone();
                }
            }
        }
    }
    made_with == now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rooms_are_recorded_as_runs_always_wrote_them() {
        let wsam = config_json(&SamConfig::preset("wsam", SamConfig::sgd_base(0.9, 0.0)).unwrap());
        assert_eq!(wsam["combination"]["Wsam"]["gamma"], 0.9);
        assert_eq!(wsam["geometry"], "Euclidean");
        assert!(wsam["schedule"].is_null());
        assert_eq!(wsam["members"].as_array().unwrap().len(), 1);
        let bsam = config_json(&SamConfig::preset("bsam", SamConfig::sgd_base(0.9, 0.0)).unwrap());
        assert_eq!(bsam["base"]["Bsam"]["beta2"], 0.999);
        let msam = config_json(&SamConfig::preset("msam", SamConfig::sgd_base(0.9, 0.0)).unwrap());
        assert_eq!(msam["members"][0], json!({"Msam": {}}));
    }

    #[test]
    fn a_resume_compares_all_but_ae_sams_run_length() {
        let ae = |steps: u64| {
            config_json(
                &SamConfig::preset("ae-sam", SamConfig::sgd_base(0.9, 0.0))
                    .unwrap()
                    .for_run(steps, 10),
            )
        };
        assert!(same_method(&ae(100), &ae(200)));
        let sam = config_json(&SamConfig::preset("sam", SamConfig::sgd_base(0.9, 0.0)).unwrap());
        assert!(!same_method(&sam, &ae(100)));
        // A record of format 2 (no `members`) compares the rooms; AE-SAM's old defaults differ.
        let mut old = ae(100);
        old.as_object_mut().unwrap().remove("members");
        assert!(same_method(&old, &ae(300)));
        old["schedule"]["Adaptive"]["c_start"] = json!(-1.0);
        assert!(!same_method(&old, &ae(300)));
    }
}
