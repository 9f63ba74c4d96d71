//! `flatmin replay` end to end, through the real binary: the result file's contract, and a clear
//! non-zero exit on malformed cases.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::Scratch;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flatmin"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn scratch(name: &str) -> Scratch {
    let dir = crate::common::scratch("flatmin-cli-replay", name);
    std::fs::create_dir_all(&*dir).unwrap();
    dir
}

#[test]
fn replay_writes_every_step_with_nested_params() {
    let dir = scratch("gsam");
    let out = dir.join("gsam-result.json");
    let status = bin()
        .arg("replay")
        .arg(fixture("gsam.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(String::from_utf8_lossy(&status.stdout).contains("within 1e-9"));
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let case: Value = serde_json::from_str(&std::fs::read_to_string(fixture("gsam.json")).unwrap()).unwrap();
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps.len(), case["steps"].as_array().unwrap().len());
    for (k, step) in steps.iter().enumerate() {
        assert_eq!(step["step"].as_u64(), Some(k as u64));
        assert!(step["loss"].as_f64().unwrap().is_finite());
        let w = &step["params"]["0.weight"];
        assert_eq!(w.as_array().unwrap().len(), 16);
        assert_eq!(w[0].as_array().unwrap().len(), 8);
        assert_eq!(step["params"]["2.bias"].as_array().unwrap().len(), 3);
        let reference = case["steps"][k]["params"]["2.weight"][1][5].as_f64().unwrap();
        let ours = step["params"]["2.weight"][1][5].as_f64().unwrap();
        assert!((reference - ours).abs() < 1e-9);
    }
    assert!(result["max_abs_diff"].as_f64().unwrap() <= 1e-9);
}

fn expect_failure(dir: &Path, case: &Value, needle: &str) {
    let path = dir.join(format!(
        "bad-{}.json",
        needle.replace(|c: char| !c.is_alphanumeric(), "_")
    ));
    std::fs::write(&path, serde_json::to_string(case).unwrap()).unwrap();
    expect_failure_file(dir, &path, needle);
}

fn expect_failure_file(dir: &Path, path: &Path, needle: &str) {
    let out = dir.join("never-written.json");
    let run = bin().arg("replay").arg(path).arg("--out").arg(&out).output().unwrap();
    assert!(!run.status.success(), "{needle}: should fail");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!out.exists(), "no result may be written for a bad case");
}

fn sam_case() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sam.json")).unwrap()).unwrap()
}

#[test]
fn malformed_cases_fail_with_a_clear_message() {
    let dir = scratch("malformed");
    let mut c = sam_case();
    c["optimizer"] = Value::from("AdaSAM");
    expect_failure(&dir, &c, "unknown optimizer `AdaSAM`");

    let mut c = sam_case();
    c["hyperparams"]["rho_typo"] = Value::from(0.1);
    expect_failure(&dir, &c, "unknown hyperparameter `rho_typo`");

    let mut c = sam_case();
    c["hyperparams"]["rho"] = Value::from(-1.0);
    expect_failure(&dir, &c, "rho");

    let mut c = sam_case();
    c["hyperparams"]["base"] = Value::from("torch.optim.RMSprop");
    expect_failure(&dir, &c, "torch.optim.RMSprop");

    let mut c = sam_case();
    c.as_object_mut().unwrap().remove("init_params");
    expect_failure(&dir, &c, "`init_params` is missing");

    let mut c = sam_case();
    c["init_params"]["0.bias"] = Value::from(vec![0.0; 3]);
    expect_failure(&dir, &c, "init_params.0.bias");

    let mut c = sam_case();
    c["data"]["y"][0] = Value::from(7);
    expect_failure(&dir, &c, "data.y");

    // The keys of the members that save passes, and bSAM.
    let mut c = sam_case();
    c["hyperparams"]["sam_probability"] = Value::from(0.5);
    expect_failure(&dir, &c, "`hyperparams.sam_seed` is missing");

    let mut c = sam_case();
    c["hyperparams"]["sam_every"] = Value::from(0);
    expect_failure(&dir, &c, "sam_every");

    let mut c = sam_case();
    c["hyperparams"]["sam_every"] = Value::from(2.5);
    expect_failure(&dir, &c, "`hyperparams.sam_every`: expected a whole number");

    let mut c = sam_case();
    c["optimizer"] = Value::from("LookSAM");
    c["hyperparams"].as_object_mut().unwrap().remove("adaptive");
    c["hyperparams"]["sam_every"] = Value::from(3);
    expect_failure(&dir, &c, "`hyperparams.sam_every` is `hyperparams.k` for LookSAM");

    let mut c = sam_case();
    c["optimizer"] = Value::from("LookSAM");
    c["hyperparams"].as_object_mut().unwrap().remove("adaptive");
    c["hyperparams"]["k"] = Value::from(0);
    expect_failure(&dir, &c, "`hyperparams.k` = 0");

    let mut c = sam_case();
    c["optimizer"] = Value::from("AE-SAM");
    c["hyperparams"].as_object_mut().unwrap().remove("adaptive");
    expect_failure(&dir, &c, "`hyperparams.total_steps` is missing");

    let mut c = sam_case();
    c["optimizer"] = Value::from("BSAM");
    c["hyperparams"].as_object_mut().unwrap().remove("adaptive");
    c["hyperparams"]["data_size"] = Value::from(64);
    expect_failure(&dir, &c, "BSAM is its own base optimizer");

    let mut c = sam_case();
    c["steps"][0]["extra"]["noise"] = c["init_params"].clone();
    expect_failure(&dir, &c, "only a BSAM case draws noise");

    let bad = dir.join("not-json.json");
    std::fs::write(&bad, "{\"optimizer\": ").unwrap();
    expect_failure_file(&dir, &bad, "not valid JSON");
    expect_failure_file(&dir, &dir.join("missing-case.json"), "missing-case.json");
}
