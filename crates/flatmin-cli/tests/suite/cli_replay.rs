//! `flatmin replay` end to end, through the real binary: the result file's contract, and a clear
//! non-zero exit on malformed cases.

use std::path::{Path, PathBuf};
use std::process::Command;

use flatmin_lab::replay::{Case, CaseFileError, ConfigError, FieldError, ParseError, Problem};
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
    crate::common::scratch(&format!("cli-replay-{name}"))
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

/// Writes `case` to `dir/name` and reads it back through the typed reader.
fn read_typed(dir: &Path, name: &str, case: &Value) -> (PathBuf, CaseFileError) {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(case).unwrap()).unwrap();
    let e = Case::read(&path)
        .err()
        .unwrap_or_else(|| panic!("{name}: should not be read"));
    (path, e)
}

/// The field error of a case that failed at reading, with its file.
fn field_error(e: &CaseFileError) -> (&Path, &FieldError) {
    match e {
        CaseFileError::Case {
            file,
            source: ParseError::Field(f),
        } => (file, f),
        other => panic!("expected a field error, found: {other}"),
    }
}

/// Issue 22: a case is read into typed fields; a missing field, a value of the wrong type and a
/// field the format does not have are each a typed error naming the file and the field's path,
/// through the library and through the binary.
#[test]
fn case_fields_are_read_typed_and_errors_name_the_file_and_the_field() {
    let dir = scratch("typed");

    // A missing field, nested: `data.X`.
    let mut c = sam_case();
    c["data"].as_object_mut().unwrap().remove("X");
    let (path, e) = read_typed(&dir, "missing-x.json", &c);
    let (file, f) = field_error(&e);
    assert_eq!(file, path);
    assert_eq!(f.problem, Problem::Missing { field: "X".into() });
    assert_eq!(f.field(), "data.X");
    assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
    assert!(e.to_string().ends_with("`data.X` is missing"), "{e}");
    expect_failure_file(&dir, &path, "missing-x.json: `data.X` is missing");

    // A missing step field the replay needs: a step's parameter tensor.
    let mut c = sam_case();
    c["steps"][3]["params"].as_object_mut().unwrap().remove("2.bias");
    expect_failure(&dir, &c, "`steps[3].params.2.bias` is missing");

    // A value of the wrong type, deep in a step: the path goes down to the element.
    let mut c = sam_case();
    c["steps"][3]["params"]["0.weight"][1][2] = Value::from("x");
    let (path, e) = read_typed(&dir, "wrong-type.json", &c);
    let (_, f) = field_error(&e);
    assert_eq!(f.path_text(), "steps[3].params.0.weight[1][2]");
    assert!(
        matches!(&f.problem, Problem::WrongType { found, .. } if found == "string \"x\""),
        "{f:?}"
    );
    expect_failure_file(
        &dir,
        &path,
        "wrong-type.json: `steps[3].params.0.weight[1][2]`: expected a number or a nested list of numbers, found string \"x\"",
    );

    // Wrong types of the top-level fields, each named.
    for (field, value, needle) in [
        (
            "batch_size",
            Value::from("16"),
            "`batch_size`: expected a whole number >= 0, found string \"16\"",
        ),
        (
            "optimizer",
            Value::from(3),
            "`optimizer`: expected a string, found integer `3`",
        ),
        (
            "hyperparams",
            Value::from(vec![1]),
            "`hyperparams`: expected an object, found a list",
        ),
        ("steps", Value::from(2), "`steps`: expected a list, found integer `2`"),
    ] {
        let mut c = sam_case();
        c[field] = value;
        let (_, e) = read_typed(&dir, &format!("wrong-{field}.json"), &c);
        assert_eq!(field_error(&e).1.path_text(), field);
        assert!(e.to_string().ends_with(needle), "expected `{needle}` in: {e}");
        expect_failure(&dir, &c, needle);
    }
    let mut c = sam_case();
    c["steps"][2]["extra"]["second_pass"] = Value::from("yes");
    expect_failure(
        &dir,
        &c,
        "`steps[2].extra.second_pass`: expected true or false, found string \"yes\"",
    );
    let mut c = sam_case();
    c["param_shapes"][0][0] = Value::from(-16);
    expect_failure(&dir, &c, "`param_shapes[0][0]`: expected a whole number >= 0");

    // A field the format does not have, at the top, in `data` and in a step.
    let mut c = sam_case();
    c["optimiser"] = Value::from("SAM");
    let (path, e) = read_typed(&dir, "unknown-top.json", &c);
    let (_, f) = field_error(&e);
    assert!(
        matches!(&f.problem, Problem::Unknown { field, expected } if field == "optimiser" && expected.iter().any(|e| e == "optimizer")),
        "{f:?}"
    );
    assert_eq!(f.field(), "optimiser");
    expect_failure_file(
        &dir,
        &path,
        "unknown-top.json: `optimiser`: unknown field (expected one of `optimizer`",
    );
    let mut c = sam_case();
    c["data"]["Y"] = c["data"]["y"].clone();
    expect_failure(&dir, &c, "`data.Y`: unknown field");
    let mut c = sam_case();
    c["steps"][4]["param"] = c["steps"][4]["params"].clone();
    expect_failure(&dir, &c, "`steps[4].param`: unknown field");
    // `extra` holds per-algorithm records: a record the replay does not read is not an error.
    let mut c = sam_case();
    c["steps"][4]["extra"]["my_diagnostic"] = Value::from(1.5);
    assert!(Case::parse(&c).is_ok());

    // A hyperparameter key no member of the library declares, and a hyperparameter of the wrong
    // type: typed errors of the registry mapping, naming the file and the key.
    let mut c = sam_case();
    c["hyperparams"]["rho_typo"] = Value::from(0.1);
    let (path, e) = read_typed(&dir, "unknown-hyperparameter.json", &c);
    match &e {
        CaseFileError::Case {
            file,
            source: ParseError::Config(ConfigError::UnknownKey { key, optimizer }),
        } => {
            assert_eq!(file, &path);
            assert_eq!((key.as_str(), optimizer.as_str()), ("rho_typo", "SAM"));
        }
        other => panic!("expected an unknown hyperparameter, found: {other}"),
    }
    expect_failure_file(
        &dir,
        &path,
        "unknown-hyperparameter.json: unknown hyperparameter `rho_typo` for optimizer `SAM`",
    );
    let mut c: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("oracle/gsam_proportional.json")).unwrap()).unwrap();
    c["hyperparams"]["rho_schedule"] = Value::from(5);
    let (path, e) = read_typed(&dir, "wrong-schedule.json", &c);
    assert!(
        matches!(&e, CaseFileError::Case { source: ParseError::Config(ConfigError::WrongType { key, .. }), .. } if key == "rho_schedule"),
        "{e}"
    );
    expect_failure_file(
        &dir,
        &path,
        "wrong-schedule.json: `hyperparams.rho_schedule`: expected constant or proportional, found 5",
    );

    // The document itself must be an object.
    let bad = dir.join("top-list.json");
    std::fs::write(&bad, "[1, 2]").unwrap();
    expect_failure_file(&dir, &bad, "top-list.json: the case: expected an object, found a list");
}

/// The typed reading keeps what a case means: every shipped fixture reads, and the parsed case
/// equals the recording field by field where the replay uses it.
#[test]
fn typed_reading_keeps_the_recorded_values() {
    let c = sam_case();
    let case = Case::load(&fixture("sam.json")).unwrap();
    assert_eq!(case.names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(case.shapes, vec![vec![16, 8], vec![16], vec![3, 16], vec![3]]);
    assert_eq!(case.rows(), 64);
    for (k, step) in case.steps().iter().enumerate() {
        let rec = &c["steps"][k];
        assert_eq!(step.step as u64, rec["step"].as_u64().unwrap());
        assert_eq!(step.loss, rec["loss"].as_f64());
        let w = step.params.as_ref().unwrap();
        assert_eq!(w[2][16 + 5], rec["params"]["2.weight"][1][5].as_f64().unwrap());
        let batch: Vec<usize> = rec["batch_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(step.batch, batch);
    }
}
