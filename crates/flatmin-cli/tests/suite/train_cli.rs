//! `flatmin train` end to end, through the real binary: the files a run writes, exact resumption
//! after `kill -9`, and clear errors for bad settings before any training starts.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use flatmin_lab::train::checkpoint_weights;
use serde_json::Value;

use crate::common::{MLP_320, MLP_640, Scratch, bin, json, json_lines, run_ok, scratch_path, spawn_paused};

/// A quick run: the MLP on part of the embedded subset ([`MLP_640`]).
fn train(extra: &[&str]) -> std::process::Output {
    bin()
        .arg("train")
        .args(MLP_640)
        .arg("--quiet")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_run_writes_metrics_summary_and_checkpoint() {
    let out = scratch_path("files");
    let run = train(&[
        "--optimizer",
        "wsam",
        "--epochs",
        "2",
        "--seed",
        "3",
        "--label-noise",
        "0.2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines = json_lines(&out.join("metrics.jsonl"));
    assert_eq!(lines.len(), 2);
    for (i, m) in lines.iter().enumerate() {
        assert_eq!(m["epoch"], i + 1);
        for key in [
            "train_loss",
            "train_accuracy",
            "test_loss",
            "test_accuracy",
            "sharpness",
            "lr",
            "mean_step_ms",
        ] {
            assert!(m[key].as_f64().is_some_and(f64::is_finite), "{key} in {m}");
        }
    }
    let summary = json(&out.join("summary.json"));
    for key in [
        "optimizer",
        "hyperparams",
        "dataset",
        "model",
        "epochs",
        "seed",
        "label_noise",
        "test_accuracy",
        "test_loss",
        "train_loss",
        "steps",
        "seconds",
        "mean_step_ms",
    ] {
        assert!(!summary[key].is_null(), "summary.json lacks `{key}`");
    }
    assert_eq!(summary["optimizer"], "wsam");
    assert_eq!(summary["steps"], 20);
    assert_eq!(summary["label_noise"], 0.2);
    assert_eq!(summary["hyperparams"]["combination"]["Wsam"]["gamma"], 0.9);
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.3,
        "the MLP learns something in 2 epochs"
    );
    assert!(out.join("checkpoint.json").exists());
    // Only the newest checkpoint's files are kept.
    assert!(!out.join("model-e1.bpk").exists() && out.join("model-e2.bpk").exists());
}

#[test]
fn resume_after_kill_ends_bitwise_where_an_uninterrupted_run_ends() {
    let args = ["--optimizer", "esam", "--epochs", "20", "--seed", "11"];
    let straight = scratch_path("straight");
    let run = train(&[&args[..], &["--out", straight.to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let killed = scratch_path("killed");
    let mut child = bin()
        .arg("train")
        .args(MLP_640)
        .arg("--quiet")
        .args(args)
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the first checkpoint is there, mid-run.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(text) = std::fs::read_to_string(killed.join("checkpoint.json"))
            && serde_json::from_str::<Value>(&text).is_ok_and(|c| c["epoch"].as_u64() >= Some(1))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let stopped_at = json(&killed.join("checkpoint.json"))["epoch"].as_u64().unwrap();
    assert!(
        !status.success() && stopped_at < 20,
        "the run must really have been killed mid-way"
    );
    // Whatever the kill interrupted, the checkpoint on disk is whole.
    assert!(checkpoint_weights(&killed).is_ok());

    let resumed = bin()
        .arg("train")
        .arg("--resume")
        .arg(&killed)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(
        checkpoint_weights(&killed).unwrap(),
        checkpoint_weights(&straight).unwrap(),
        "weights differ after resume"
    );
    let a = json(&straight.join("summary.json"));
    let b = json(&killed.join("summary.json"));
    assert_eq!(a["test_loss"], b["test_loss"]);
    assert_eq!(a["steps"], b["steps"]);
    assert_eq!(
        std::fs::read_to_string(straight.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        20
    );
    assert_eq!(
        std::fs::read_to_string(killed.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        20
    );
}

fn fails_with(args: &[&str], needle: &str) {
    let run = bin().arg("train").args(args).output().unwrap();
    assert!(!run.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("epoch 1/"), "training must not start: {stderr}");
}

#[test]
fn bad_settings_are_clear_errors_before_training() {
    fails_with(
        &["--optimizer", "adamsam"],
        "one of sgd, sam, asam, esam, fsam, wsam, gsam, fisher-sam",
    );
    fails_with(&["--model", "vgg"], "--model `vgg`");
    fails_with(&["--dataset", "mnist"], "needs --data-dir");
    fails_with(&["--dataset", "imagenet"], "--data `imagenet`: not a named dataset");
    fails_with(&["--label-noise", "1.5"], "--label-noise 1.5");
    fails_with(&["--rho=-1"], "rho");
    fails_with(&["--rho", "NaN"], "expected a finite number");
    fails_with(&["--lr", "inf"], "expected a finite number");
    fails_with(&["--wsam-gamma", "0.9", "--gsam-alpha", "0.1"], "not both");
    fails_with(
        &["--dataset", "mnist", "--data-dir", "/nonexistent/flatmin"],
        "/nonexistent/flatmin",
    );
    // An --out that cannot be created or written.
    let file = scratch_path("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    fails_with(&["--out", file.join("sub").to_str().unwrap()], "--out");
    fails_with(&["--resume", "/nonexistent/run"], "no checkpoint to resume");
}

#[test]
fn config_file_sets_the_run_and_unknown_keys_are_errors() {
    let dir = scratch_path("config");
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"model": "mlp", "epochs": 1, "train_limit": 256, "test_limit": 100, "optimizer": "fsam", "hp": {"fsam_sigma": 0.5}}"#).unwrap();
    let out = dir.join("run");
    let run = bin()
        .arg("train")
        .arg("--config")
        .arg(&good)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["optimizer"], "fsam");
    assert_eq!(summary["epochs"], 1);
    assert_eq!(summary["hyperparams"]["friendly"]["sigma"], 0.5);

    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"model": "mlp", "epochz": 3}"#).unwrap();
    fails_with(&["--config", bad.to_str().unwrap()], "epochz");
}

#[test]
fn compare_base_trains_the_base_without_the_methods_hyperparameters() {
    let out = scratch_path("compare");
    let run = train(&[
        "--optimizer",
        "fsam",
        "--rho",
        "0.2",
        "--fsam-sigma",
        "0.5",
        "--epochs",
        "1",
        "--compare-base",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| sgd |") && table.contains("| fsam |"), "{table}");
    let base = json(&out.join("sgd/summary.json"));
    let method = json(&out.join("fsam/summary.json"));
    assert_eq!(base["hyperparams"]["rho"], 0.0);
    assert!(base["hyperparams"]["friendly"].is_null());
    assert_eq!(method["hyperparams"]["rho"], 0.2);
    assert_eq!(method["hyperparams"]["friendly"]["sigma"], 0.5);
    assert_ne!(base["test_loss"], method["test_loss"]);
}

#[test]
fn augmentation_and_label_smoothing_are_seeded_and_change_the_run() {
    let runs: Vec<Scratch> = (0..3).map(|i| scratch_path(&format!("augment-{i}"))).collect();
    let extra = ["--epochs", "2", "--seed", "4", "--augment", "--label-smoothing", "0.1"];
    for dir in &runs[..2] {
        let run = train(&[&extra[..], &["--out", dir.to_str().unwrap()]].concat());
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let plain = train(&["--epochs", "2", "--seed", "4", "--out", runs[2].to_str().unwrap()]);
    assert!(plain.status.success());
    let weights: Vec<_> = runs.iter().map(|d| checkpoint_weights(d).unwrap()).collect();
    assert_eq!(weights[0], weights[1], "same seed, same augmentation draws");
    assert_ne!(weights[0], weights[2]);
    let summary = json(&runs[0].join("summary.json"));
    assert_eq!(summary["config"]["augment"], true);
    assert_eq!(summary["config"]["label_smoothing"], 0.1);
    fails_with(&["--label-smoothing", "1.0"], "--label-smoothing 1");
    fails_with(
        &["--preset", "sam-wrn28-10-imagenet"],
        "--preset `sam-wrn28-10-imagenet`",
    );
    // A preset needs the CIFAR files it names.
    fails_with(&["--preset", "sam-wrn28-10-cifar10"], "--data-dir");
}

/// Runs `flatmin train ARGS` until it stops at the fault-injection pause point `point` (the test
/// build of the binary has them), then kills it there.
fn run_until_paused(args: &[&str], point: &str) {
    let mut child = spawn_paused(bin().arg("train").args(args), point);
    child.kill().ok();
    child.wait().unwrap();
}

/// The run recorded by the old-format fixture (tests/fixtures/checkpoint-format-1): [`MLP_640`]
/// and these.
const FORMAT_1_RUN: [&str; 13] = [
    "--optimizer",
    "esam",
    "--rho",
    "0.1",
    "--esam-beta",
    "0.5",
    "--esam-per-element",
    "--seed",
    "9",
    "--epochs",
    "2",
    "--quiet",
    "--label-noise=0.1",
];

#[test]
fn a_checkpoint_written_before_format_2_resumes_as_the_same_run() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint-format-1/checkpoint.json");
    let old_text = std::fs::read_to_string(&fixture).unwrap();
    let old: Value = serde_json::from_str(&old_text).unwrap();
    assert!(
        old.get("format").is_none() && old.get("sam").is_none(),
        "the fixture is format 1"
    );
    assert_eq!(old["config"]["hp"]["esam_per_element"], true);

    let straight = scratch_path("format-1-straight");
    run_ok(
        bin()
            .arg("train")
            .args(MLP_640)
            .args(FORMAT_1_RUN)
            .arg("--out")
            .arg(&*straight),
    );

    // The same run stopped after its first epoch, its checkpoint.json replaced by the one the
    // previous format wrote at that point (same run, same files).
    let old_run = scratch_path("format-1-resumed");
    let out = ["--out", old_run.to_str().unwrap()];
    run_until_paused(&[&MLP_640[..], &FORMAT_1_RUN, &out].concat(), "checkpoint:metrics");
    let new: Value = json(&old_run.join("checkpoint.json"));
    assert_eq!((new["format"].as_u64(), new["epoch"].as_u64()), (Some(3), Some(1)));
    // The same settings (a config written now also names the hyperparameters added since, unset).
    let config = |v: &Value| flatmin_lab::train::TrainConfig::from_json(&v["config"].to_string()).unwrap();
    assert_eq!(config(&new), config(&old), "the fixture records the same run");
    std::fs::write(old_run.join("checkpoint.json"), &old_text).unwrap();

    let resumed = bin()
        .arg("train")
        .arg("--resume")
        .arg(&*old_run)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(
        checkpoint_weights(&old_run).unwrap(),
        checkpoint_weights(&straight).unwrap(),
        "resumed from the old checkpoint, the run ends where the uninterrupted one does"
    );
    let summary = json(&old_run.join("summary.json"));
    assert_eq!(
        summary["hyperparams"],
        json(&straight.join("summary.json"))["hyperparams"]
    );
    assert_eq!(summary["hyperparams"]["rho"], 0.1);
    assert_eq!(summary["hyperparams"]["swp"]["granularity"], "PerElement");
    assert_eq!(json(&old_run.join("checkpoint.json"))["format"], 3);

    // A format this flatmin does not know is refused, saying so.
    let mut future = old.clone();
    future["format"] = 4.into();
    std::fs::write(old_run.join("checkpoint.json"), future.to_string()).unwrap();
    fails_with(&["--resume", old_run.to_str().unwrap()], "checkpoint format 4");
}

/// A finished one-epoch run to resume.
fn finished_run(name: &str) -> Scratch {
    let dir = scratch_path(name);
    let run = train(&[
        "--optimizer",
        "sam",
        "--epochs",
        "1",
        "--seed",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    dir
}

fn folder_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn resume_refuses_every_changed_setting_naming_both_values() {
    let dir = finished_run("resume-refused");
    let before = folder_bytes(&dir);
    let resume = ["--resume", dir.to_str().unwrap()];
    let run = bin()
        .arg("train")
        .args(resume)
        .args(["--lr", "0.1", "--rho", "0.2", "--model", "cnn", "--epochs", "3"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    for line in [
        "--lr: run has 0.05, command line says 0.1",
        "--rho: run has the preset's value, command line says 0.2",
        "--model: run has mlp, command line says cnn",
    ] {
        assert!(stderr.contains(line), "expected `{line}` in {stderr}");
    }
    assert!(!stderr.contains("--epochs:"), "--epochs may change: {stderr}");
    // Beside the run's folder, in its scratch folder.
    let config = dir
        .parent()
        .unwrap()
        .join(format!("{}-config.json", dir.file_name().unwrap().to_string_lossy()));
    std::fs::write(&config, r#"{"hp": {"esam_gamma": 0.5}}"#).unwrap();
    fails_with(
        &[&resume[..], &["--config", config.to_str().unwrap()]].concat(),
        &format!(
            "--esam-gamma: run has the preset's value, {} says 0.5",
            config.display()
        ),
    );
    fails_with(&[&resume[..], &["--compare-base"]].concat(), "--compare-base");
    assert_eq!(
        folder_bytes(&dir),
        before,
        "a refused resume leaves the run's folder as it was"
    );
    // A checkpoint whose library configuration is not the one its settings give today (a
    // flatmin whose presets changed) is refused rather than resumed as another optimizer.
    let mut ckpt = json(&dir.join("checkpoint.json"));
    assert_eq!(ckpt["sam"]["rho"], 0.05);
    ckpt["sam"]["rho"] = 0.07.into();
    std::fs::write(dir.join("checkpoint.json"), ckpt.to_string()).unwrap();
    fails_with(&resume, "the run was made with the library configuration");
    ckpt["sam"]["rho"] = 0.05.into();
    std::fs::write(dir.join("checkpoint.json"), ckpt.to_string()).unwrap();
    // The run's own values are no change.
    let same = bin()
        .arg("train")
        .args(resume)
        .args(["--lr", "0.05", "--model", "mlp", "--quiet"])
        .output()
        .unwrap();
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
}

#[test]
fn resume_with_more_epochs_extends_a_finished_run_and_records_it() {
    let dir = finished_run("resume-extended");
    let run = bin()
        .arg("train")
        .args(["--resume", dir.to_str().unwrap(), "--epochs", "2", "--quiet"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary = json(&dir.join("summary.json"));
    assert_eq!(
        (summary["epochs"].as_u64(), summary["steps"].as_u64()),
        (Some(2), Some(20))
    );
    assert_eq!(summary["history"].as_array().unwrap().len(), 2);
    let change = serde_json::json!([{"after_epoch": 1, "setting": "epochs", "from": 1, "to": 2}]);
    assert_eq!(summary["changes"], change);
    assert_eq!(json(&dir.join("checkpoint.json"))["changes"], change);
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    // The cosine schedule spans the new total: epoch 2 ends at step 20 of 20, not 20 of 10.
    let last_lr = 0.05 * 0.5 * (1.0 + (std::f64::consts::PI * 19.0 / 20.0).cos());
    assert!((summary["history"][1]["lr"].as_f64().unwrap() - last_lr).abs() < 1e-12);
    fails_with(
        &["--resume", dir.to_str().unwrap(), "--epochs", "1"],
        "already done 2 epochs",
    );
}

#[test]
fn train_help_lists_every_schedule_looksam_ae_and_bsam_flag() {
    let help = bin().args(["train", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--sam-every",
        "--sam-probability",
        "--looksam-alpha",
        "--looksam-per-tensor",
        "--looksam-eps-norm",
        "--ae-delta",
        "--ae-c-start",
        "--ae-c-end",
        "--bsam-prior-precision",
        "--bsam-damping",
        "--bsam-s-init",
        "--bsam-beta1",
        "--bsam-beta2",
    ] {
        assert!(text.contains(flag), "{flag} missing from train --help:\n{text}");
    }
    for name in ["looksam", "sam-every-5", "rst", "ae-sam", "bsam"] {
        assert!(text.contains(name), "{name} missing from --optimizer's help");
    }
}

/// A run of 5 steps per epoch (320 training images, batch 64): `--sam-every 5` runs the second
/// pass on the first step of each epoch, a fifth of them.
#[test]
fn sam_every_5_records_a_fifth_of_second_passes_per_epoch_and_over_the_run() {
    let out = scratch_path("every-5");
    let run = run_ok(
        bin()
            .arg("train")
            .args(MLP_320)
            .args([
                "--batch-size",
                "64",
                "--optimizer",
                "sam-every-5",
                "--epochs",
                "2",
                "--out",
            ])
            .arg(&*out),
    );
    let lines = json_lines(&out.join("metrics.jsonl"));
    assert_eq!(lines.len(), 2);
    for m in &lines {
        assert_eq!(m["second_pass_fraction"].as_f64(), Some(0.2), "{m}");
    }
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["second_pass_fraction"].as_f64(), Some(0.2));
    assert_eq!(summary["hyperparams"]["schedule"]["Every"]["k"], 5);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("| second passes |") && stdout.contains("| 20.0 % of steps |"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("second pass on 20 % of steps"), "{stderr}");
    // SAM runs it on every step, the base on none.
    for (optimizer, fraction) in [("sam", 1.0), ("sgd", 0.0)] {
        let out = scratch_path(&format!("fraction-{optimizer}"));
        let run = train(&[
            "--optimizer",
            optimizer,
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(
            json(&out.join("summary.json"))["second_pass_fraction"].as_f64(),
            Some(fraction)
        );
    }
}

#[test]
fn the_new_flags_and_config_keys_reach_the_library_configuration() {
    let run_with = |name: &str, args: &[&str]| -> Value {
        let out = scratch_path(name);
        let run = bin()
            .arg("train")
            .args([
                "--model",
                "mlp",
                "--train-limit",
                "128",
                "--test-limit",
                "50",
                "--batch-size",
                "64",
            ])
            .args([
                "--epochs",
                "1",
                "--quiet",
                "--seed",
                "4",
                "--out",
                out.to_str().unwrap(),
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        json(&out.join("summary.json"))["hyperparams"].clone()
    };
    let h = run_with("flags-random", &["--optimizer", "wsam", "--sam-probability", "0.3"]);
    assert_eq!(
        h["schedule"]["Random"],
        serde_json::json!({"probability": 0.3, "seed": 4})
    );
    let h = run_with(
        "flags-looksam",
        &[
            "--optimizer",
            "looksam",
            "--sam-every",
            "3",
            "--looksam-alpha",
            "0.5",
            "--looksam-per-tensor",
            "--looksam-eps-norm",
            "1e-6",
        ],
    );
    assert_eq!(h["schedule"]["Every"]["k"], 3);
    assert_eq!(
        h["looksam"],
        serde_json::json!({"alpha": 0.5, "per_tensor": true, "eps_norm": 1e-6})
    );
    // AE-SAM's threshold moves over the run's 2 steps (128 images, batch 64, 1 epoch).
    let h = run_with(
        "flags-ae",
        &[
            "--optimizer",
            "ae-sam",
            "--ae-delta",
            "0.5",
            // A negative value after a space, as after `=`.
            "--ae-c-start",
            "-2",
            "--ae-c-end",
            "0.5",
        ],
    );
    assert_eq!(
        h["schedule"]["Adaptive"],
        serde_json::json!({"delta": 0.5, "c_start": -2.0, "c_end": 0.5, "total_steps": 2})
    );
    // bSAM's N is the training set's size, its noise seeded by the run's seed.
    let h = run_with(
        "flags-bsam",
        &[
            "--optimizer",
            "bsam",
            "--bsam-prior-precision",
            "5",
            "--bsam-damping",
            "0.2",
            "--bsam-s-init",
            "2",
            "--bsam-beta1",
            "0.8",
            "--bsam-beta2",
            "0.99",
        ],
    );
    assert_eq!(
        h["base"]["Bsam"],
        serde_json::json!({"beta1": 0.8, "beta2": 0.99, "prior_precision": 5.0, "data_size": 128, "damping": 0.2, "s_init": 2.0, "seed": 4})
    );
    // The same keys in a --config file.
    let dir = scratch_path("flags-config");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("every.json");
    std::fs::write(
        &file,
        r#"{"optimizer": "esam", "hp": {"sam_every": 4, "ae_c_end": null}}"#,
    )
    .unwrap();
    let h = run_with("flags-config-run", &["--config", file.to_str().unwrap()]);
    assert_eq!(h["schedule"]["Every"]["k"], 4);
}

#[test]
fn bad_schedule_looksam_ae_and_bsam_values_are_refused_naming_them() {
    // A negative number is the flag's value (refused by its range), not an unknown argument.
    fails_with(&["--looksam-alpha", "-1"], "looksam_alpha");
    fails_with(&["--sam-every", "0"], "sam_every");
    fails_with(&["--sam-every", "2.5"], "sam_every");
    fails_with(&["--sam-probability", "1.5"], "sam_probability");
    fails_with(
        &["--sam-every", "2", "--sam-probability", "0.5"],
        "--sam-every and --sam-probability",
    );
    fails_with(&["--sam-every", "2", "--ae-delta", "0.5"], "--sam-every and --ae-delta");
    fails_with(&["--ae-delta", "1"], "ae_delta");
    fails_with(&["--optimizer", "looksam", "--looksam-alpha=-1"], "looksam_alpha");
    fails_with(&["--optimizer", "looksam", "--looksam-eps-norm=-1"], "looksam_eps_norm");
    fails_with(&["--optimizer", "bsam", "--bsam-s-init", "0"], "bsam_s_init");
    fails_with(&["--optimizer", "bsam", "--bsam-beta1", "1"], "bsam_beta1");
    fails_with(&["--optimizer", "bsam", "--bsam-damping=-0.1"], "bsam_damping");
    fails_with(
        &["--optimizer", "bsam", "--bsam-prior-precision=-1"],
        "bsam_prior_precision",
    );
    fails_with(
        &["--optimizer", "sam", "--bsam-damping", "0.1"],
        "applies to --optimizer bsam only",
    );
    fails_with(&["--optimizer", "bsam", "--sam-every", "5"], "schedule");
    fails_with(
        &["--optimizer", "bsam", "--base", "adam"],
        "bSAM is its own base optimizer",
    );
}
