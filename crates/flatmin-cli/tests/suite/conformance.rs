//! Every conformance case in `tests/fixtures` (recorded from the official implementations) and
//! `tests/fixtures/oracle` (an independent float64 implementation of the spec, for flags the
//! recorded cases do not cover) is replayed through the library: parameters after every step
//! within 1e-9 of the reference, and the recorded per-step extras reproduced.

use std::path::{Path, PathBuf};

use flatmin::SelectionRule;
use flatmin_lab::replay::{self, Case};
use serde_json::Value;

use crate::common::{fixtures, json_files, selected_positions};

const BAR: f64 = 1e-9;

fn check(path: &Path) -> f64 {
    let case = Case::load(path).unwrap_or_else(|e| panic!("{e}"));
    let result = replay::run(&case).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let diff = replay::max_abs_diff(&case, &result).expect("case records parameters");
    assert!(diff <= BAR, "{}: max |param - reference| = {diff:e}", path.display());

    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let gamma = raw["hyperparams"]["gamma"].as_f64();
    for (k, (step, rec)) in result.steps.iter().zip(raw["steps"].as_array().unwrap()).enumerate() {
        if let Some(loss) = rec["loss"].as_f64() {
            assert!(
                (step.loss - loss).abs() <= BAR,
                "{}: step {k} loss {} vs {loss}",
                path.display(),
                step.loss
            );
        }
        if let Some(full) = rec["full_loss_after"].as_f64() {
            assert!(
                (step.full_loss_after - full).abs() <= BAR,
                "{}: step {k} full loss",
                path.display()
            );
        }
        if let Some(rho) = rec["extra"]["rho_t"].as_f64() {
            assert!(
                (step.rho - rho).abs() <= 1e-15,
                "{}: step {k} rho_t {} vs {rho}",
                path.display(),
                step.rho
            );
        }
        if let Some(recorded) = rec["extra"]["instance_sharpness"].as_array() {
            // With γ = 1 every sample is kept: the library skips the selection forward pass that
            // the reference runs anyway, so there is nothing to compare.
            let Some(ours) = step.sample_sharpness.as_ref() else {
                assert!(
                    gamma.unwrap() >= 1.0,
                    "{}: step {k}: ESAM reports per-sample sharpness",
                    path.display()
                );
                continue;
            };
            for (a, b) in ours.iter().zip(recorded) {
                assert!(
                    (a - b.as_f64().unwrap()).abs() <= BAR,
                    "{}: step {k} sharpness",
                    path.display()
                );
            }
            // The official selection rule, applied to our own sharpness, picks what the
            // reference picked: the replay needs the recorded choice only for its RNG-free twin.
            let picked = selected_positions(rec);
            let own = flatmin::select_sharpest(ours, gamma.unwrap(), SelectionRule::OfficialStrict);
            assert_eq!(own, picked, "{}: step {k} selection", path.display());
            assert_eq!(step.selected.as_ref(), Some(&picked));
        }
        if let Some(recorded) = rec["extra"]["second_pass"].as_bool() {
            assert_eq!(step.second_pass, recorded, "{}: step {k} second pass", path.display());
        }
    }
    diff
}

/// [`check`] on each of `files`, printing its largest parameter difference.
fn check_all(files: Vec<PathBuf>) {
    for path in files {
        let diff = check(&path);
        println!(
            "{:<40} max |Δparam| = {diff:.3e}",
            path.file_name().unwrap().to_string_lossy()
        );
    }
}

#[test]
fn recorded_reference_trajectories_replay_within_1e9() {
    let files = json_files(&fixtures());
    assert!(files.len() >= 8, "the eight shipped cases are in tests/fixtures");
    check_all(files);
}

#[test]
fn spec_oracle_trajectories_replay_within_1e9() {
    let files = json_files(&fixtures().join("oracle"));
    check_all(files);
}

/// MSAM and Unified SAM, recorded from the authors' code (`scripts/record_msam_unified.py`,
/// fixtures/reference/README.md).
#[test]
fn msam_and_unified_sam_reference_trajectories_replay_within_1e9() {
    let files = json_files(&fixtures().join("reference"));
    let optimizers: Vec<String> = files
        .iter()
        .map(|p| load(p)["optimizer"].as_str().unwrap().to_string())
        .collect();
    assert!(
        optimizers.iter().filter(|o| *o == "MSAM").count() >= 3,
        "{optimizers:?}"
    );
    assert!(
        optimizers.iter().filter(|o| *o == "UnifiedSAM").count() >= 5,
        "{optimizers:?}"
    );
    check_all(files);
}

#[test]
fn every_optimizer_name_of_the_format_is_understood() {
    let sam = std::fs::read_to_string(fixtures().join("sam.json")).unwrap();
    let base: Value = serde_json::from_str(&sam).unwrap();
    let extra_keys: [(&str, &[(&str, Value)]); 16] = [
        ("SGD", &[]),
        (
            "SAM",
            &[
                ("rho", Value::from(0.05)),
                ("adaptive", Value::from(false)),
                ("eps_norm", Value::from(1e-12)),
            ],
        ),
        (
            "SAM(adaptive)",
            &[
                ("rho", Value::from(0.5)),
                ("adaptive", Value::from(true)),
                ("eps_norm", Value::from(1e-12)),
            ],
        ),
        (
            "SamsungLabs.SAM",
            &[
                ("rho", Value::from(0.05)),
                ("eps_norm", Value::from(1e-16)),
                ("eta", Value::Null),
            ],
        ),
        (
            "SamsungLabs.ASAM",
            &[
                ("rho", Value::from(0.5)),
                ("eta", Value::from(0.0)),
                ("eps_norm", Value::from(1e-16)),
            ],
        ),
        (
            "FriendlySAM",
            &[
                ("rho", Value::from(0.05)),
                ("sigma", Value::from(1.0)),
                ("lmbda", Value::from(0.6)),
                ("eps_norm", Value::from(1e-12)),
            ],
        ),
        (
            "GSAM",
            &[
                ("rho", Value::from(0.05)),
                ("gsam_alpha", Value::from(0.1)),
                ("perturb_eps", Value::from(1e-12)),
                ("rho_schedule", Value::from("constant")),
            ],
        ),
        (
            "WSAM",
            &[
                ("rho", Value::from(0.05)),
                ("gamma", Value::from(0.9)),
                ("alpha", Value::from(9.0)),
                ("sam_eps", Value::from(1e-12)),
                ("decouple", Value::from(false)),
                ("max_norm", Value::from(1.0)),
            ],
        ),
        (
            "ESAM",
            &[
                ("rho", Value::from(0.05)),
                ("beta", Value::from(0.5)),
                ("gamma", Value::from(0.5)),
                ("eps_norm", Value::from(1e-7)),
                ("python_random_seed", Value::from(3)),
            ],
        ),
        (
            "LookSAM",
            &[
                ("rho", Value::from(0.05)),
                ("k", Value::from(2)),
                ("alpha", Value::from(0.7)),
                ("eps_norm", Value::from(1e-12)),
                ("gv_eps", Value::from(1e-8)),
                ("per_tensor", Value::from(true)),
            ],
        ),
        (
            "LookSAM",
            &[
                ("rho", Value::from(0.05)),
                ("sam_probability", Value::from(0.5)),
                ("sam_seed", Value::from(1)),
            ],
        ),
        (
            "AE-SAM",
            &[
                ("rho", Value::from(0.05)),
                ("delta", Value::from(0.9)),
                ("c_start", Value::from(-1.0)),
                ("c_end", Value::from(1.0)),
                ("total_steps", Value::from(3)),
                ("eps_norm", Value::from(1e-12)),
            ],
        ),
        (
            "GSAM",
            &[
                ("rho", Value::from(0.05)),
                ("gsam_alpha", Value::from(0.1)),
                ("sam_every", Value::from(2)),
            ],
        ),
        ("MSAM", &[("rho", Value::from(0.3)), ("eps_norm", Value::from(1e-12))]),
        (
            "UnifiedSAM",
            &[
                ("rho", Value::from(0.05)),
                ("lambda", Value::from("1-1/t")),
                ("eps_norm", Value::from(1e-12)),
            ],
        ),
        (
            "UnifiedSAM",
            &[("rho", Value::from(0.05)), ("lambda", Value::from(0.25))],
        ),
    ];
    // Every name a replay knows is exercised here (BSAM below).
    for name in replay::OPTIMIZERS {
        assert!(
            name == "BSAM" || extra_keys.iter().any(|(n, _)| *n == name),
            "{name} is not exercised"
        );
    }
    for (name, keys) in extra_keys {
        let mut case = base.clone();
        case["optimizer"] = Value::from(name);
        let hp = case["hyperparams"].as_object_mut().unwrap();
        for k in ["rho", "adaptive", "eps_norm"] {
            hp.remove(k);
        }
        for (k, v) in keys {
            hp.insert(k.to_string(), v.clone());
        }
        case["steps"] = Value::Array(case["steps"].as_array().unwrap()[..3].to_vec());
        let parsed = Case::parse(&case).unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = replay::run(&parsed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(result.steps.len(), 3);
        assert!(
            result
                .steps
                .iter()
                .all(|s| s.params.iter().flatten().all(|v| v.is_finite())),
            "{name}"
        );
    }
    // BSAM is its own base optimizer: no `base`, no SGD keys; without recorded noise it draws
    // from its seeded generator.
    let mut case = base.clone();
    case["optimizer"] = Value::from("BSAM");
    case["hyperparams"] = serde_json::json!({
        "lr": 0.1, "rho": 0.05, "beta1": 0.9, "beta2": 0.999, "prior_precision": 1.0,
        "data_size": 64, "damping": 0.1, "s_init": 1.0, "seed": 3
    });
    case["steps"] = Value::Array(case["steps"].as_array().unwrap()[..3].to_vec());
    let parsed = Case::parse(&case).unwrap_or_else(|e| panic!("BSAM: {e}"));
    let result = replay::run(&parsed).unwrap();
    assert!(
        result
            .steps
            .iter()
            .all(|s| s.second_pass && s.params.iter().flatten().all(|v| v.is_finite()))
    );
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Issue 14: LookSAM with k = 1 is SAM; replayed on the official davda54 SAM recording.
#[test]
fn looksam_with_k1_replays_the_recorded_sam_trajectory_within_1e9() {
    let mut case = load(&fixtures().join("sam.json"));
    assert_eq!(case["optimizer"], "SAM");
    case["optimizer"] = Value::from("LookSAM");
    let hp = case["hyperparams"].as_object_mut().unwrap();
    assert_eq!(hp.remove("adaptive"), Some(Value::from(false)));
    hp.insert("k".into(), Value::from(1));
    hp.insert("alpha".into(), Value::from(0.7));
    let parsed = Case::parse(&case).unwrap();
    let result = replay::run(&parsed).unwrap();
    assert!(result.steps.iter().all(|s| s.second_pass));
    let diff = replay::max_abs_diff(&parsed, &result).unwrap();
    println!("LookSAM k = 1 against sam.json: max |Δparam| = {diff:.3e}");
    assert!(diff <= BAR, "{diff:e}");

    // The same case with k = 2 leaves SAM's trajectory: the check can fail.
    case["hyperparams"]["k"] = Value::from(2);
    let parsed = Case::parse(&case).unwrap();
    let result = replay::run(&parsed).unwrap();
    let diff = replay::max_abs_diff(&parsed, &result).unwrap();
    assert!(diff > 1e-3, "k = 2 should differ from SAM: {diff:e}");
}

/// bSAM's replay runs on the case's recorded noise: change one draw and the trajectory moves.
#[test]
fn bsam_replays_the_recorded_noise() {
    let path = fixtures().join("oracle/bsam.json");
    let mut case = load(&path);
    let exact = replay::run(&Case::parse(&case).unwrap()).unwrap();
    let parsed = Case::parse(&case).unwrap();
    assert!(replay::max_abs_diff(&parsed, &exact).unwrap() <= BAR);
    let draw = &mut case["steps"][4]["extra"]["noise"]["2.weight"][1][3];
    *draw = Value::from(draw.as_f64().unwrap() + 1.0);
    let parsed = Case::parse(&case).unwrap();
    let moved = replay::run(&parsed).unwrap();
    // Steps 0-3 are untouched, step 4 on differs.
    let before: f64 = (0..4)
        .flat_map(|k| {
            exact.steps[k]
                .params
                .iter()
                .flatten()
                .zip(moved.steps[k].params.iter().flatten())
        })
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert_eq!(before, 0.0);
    let diff = replay::max_abs_diff(&parsed, &moved).unwrap();
    assert!(diff > 1e-6, "one changed draw should move the trajectory: {diff:e}");

    // A case that records the noise of some steps only is refused, naming the step.
    let mut partial = load(&path);
    partial["steps"][6]["extra"].as_object_mut().unwrap().remove("noise");
    let e = Case::parse(&partial).err().expect("partial noise is refused").0;
    assert!(e.contains("steps[6].extra.noise"), "{e}");
}

/// A step whose recorded `extra.second_pass` the replay does not match is an error naming it.
#[test]
fn a_wrong_second_pass_record_is_an_error() {
    for (file, step) in [("oracle/sam_every3.json", 1), ("oracle/ae_sam.json", 7)] {
        let mut case = load(&fixtures().join(file));
        let recorded = case["steps"][step]["extra"]["second_pass"].as_bool().unwrap();
        case["steps"][step]["extra"]["second_pass"] = Value::from(!recorded);
        let e = replay::run(&Case::parse(&case).unwrap()).err().expect("mismatch").0;
        assert!(
            e.contains(&format!("step {step}:")) && e.contains("second_pass"),
            "{file}: {e}"
        );
    }
}

/// pytorch_optimizer's LookSAM (per tensor, k = 3, α = 0.7, on torch SGD), recorded by
/// `scripts/record_peer_cases.py`. As shipped it accumulates the perturbation's global norm in
/// float32: e then carries a relative error of a few float32 ulps, which moves its trajectory by
/// 6.9e-11 here (the same run with that norm in float64 is the second case). So the shipped case
/// can only be held to the 1e-9 bar, while the float64-norm case is held to 1e-12.
#[test]
fn peer_looksam_replays_within_its_bar() {
    let peer = fixtures().join("peer");
    let shipped = check_within(&peer.join("looksam_pto_k3_per_tensor.json"), BAR);
    let f64_norm = check_within(&peer.join("looksam_pto_k3_per_tensor_f64norm.json"), 1e-12);
    println!("pytorch_optimizer LookSAM as shipped: {shipped:.3e}; with a float64 norm: {f64_norm:.3e}");
    // The float32 norm is visible: a float64 replay is further from it than from the float64 run.
    assert!(shipped > 10.0 * f64_norm, "{shipped:e} vs {f64_norm:e}");
}

/// pytorch_optimizer's BSAM is not the authors' update (fixtures/peer/README.md lists the
/// differences); flatmin follows the authors, so on the peer's own recorded noise the two part.
#[test]
fn peer_bsam_differs_from_the_authors_rule() {
    let path = fixtures().join("peer/bsam_pto.json");
    let case = Case::load(&path).unwrap();
    let result = replay::run(&case).unwrap();
    let diff = replay::max_abs_diff(&case, &result).unwrap();
    println!("pytorch_optimizer BSAM vs flatmin on the same noise: max |Δparam| = {diff:.3e}");
    assert!(diff > 1e-2, "{diff:e}");
}

fn check_within(path: &Path, bar: f64) -> f64 {
    let case = Case::load(path).unwrap_or_else(|e| panic!("{e}"));
    let result = replay::run(&case).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let diff = replay::max_abs_diff(&case, &result).expect("case records parameters");
    assert!(
        diff <= bar,
        "{}: max |param - reference| = {diff:e} > {bar:e}",
        path.display()
    );
    diff
}
