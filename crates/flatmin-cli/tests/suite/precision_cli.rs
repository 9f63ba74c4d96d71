//! `flatmin train --precision bf16|f16|f32`: a half-precision model trained with f32 master
//! weights follows the f32 run, the summary says which precision ran, and a resumed run keeps
//! it (its checkpoint holds the master weights and the loss scale).

use serde_json::Value;

use crate::common::{MLP_640, bin, json, scratch_path};

fn train(out: &std::path::Path, args: &[&str]) -> Value {
    let run = bin()
        .arg("train")
        .arg("--quiet")
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    json(&out.join("summary.json"))
}

fn train_losses(summary: &Value) -> Vec<f64> {
    summary["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["train_loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn half_precision_runs_record_their_precision_and_resume_in_it() {
    for precision in ["bf16", "f16"] {
        let out = scratch_path(&format!("precision-{precision}"));
        let args = [MLP_640.as_slice(), &["--epochs", "1", "--precision", precision]].concat();
        let summary = train(&out, &args);
        assert_eq!(summary["precision"], precision);
        assert_eq!(summary["config"]["precision"], precision);
        assert_eq!(summary["history"][0]["skipped_steps"], 0, "{precision}");
        let optimizer = std::fs::read(out.join("optimizer-e1.bpk")).unwrap();
        let holds = |name: &str| optimizer.windows(name.len()).any(|w| w == name.as_bytes());
        assert!(
            holds("master/") && holds("loss_scale/bits"),
            "{precision}: no master weights or scale"
        );

        let resumed = bin()
            .arg("train")
            .args(["--quiet", "--epochs", "2", "--resume", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        let summary = json(&out.join("summary.json"));
        assert_eq!(summary["precision"], precision);
        assert_eq!(summary["steps"], 20);
        let losses = train_losses(&summary);
        assert!(losses[1] < losses[0], "{precision}: {losses:?}");

        let changed = bin()
            .arg("train")
            .args([
                "--quiet",
                "--epochs",
                "3",
                "--precision",
                "f32",
                "--resume",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!changed.status.success());
        assert!(String::from_utf8_lossy(&changed.stderr).contains("--precision: run has"));
    }
}

#[test]
fn an_unknown_precision_is_refused() {
    let run = bin()
        .arg("train")
        .args(MLP_640)
        .args(["--quiet", "--precision", "f8"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("f8") && err.contains("bf16"), "{err}");
}

/// The main job's model (the small CNN on the embedded Fashion-MNIST subset), 200 steps of 64
/// (3200 images, 4 epochs) at the default settings, in f32 and in bf16 with f32 master weights:
/// every epoch's training loss within 3 % of the f32 run's, the test loss within 3 % and the
/// test accuracy within 0.5 points. About 35 s in the test profile (dependencies optimized), so
/// it runs with the rest.
#[test]
fn bf16_cnn_follows_the_f32_run_over_200_steps() {
    let common = ["--train-limit", "3200", "--epochs", "4", "--test-limit", "2000"];
    let f32_run = train(
        &scratch_path("cnn-f32"),
        &[common.as_slice(), &["--precision", "f32"]].concat(),
    );
    let bf16_run = train(
        &scratch_path("cnn-bf16"),
        &[common.as_slice(), &["--precision", "bf16"]].concat(),
    );
    assert_eq!(bf16_run["steps"], 200);
    let (a, b) = (train_losses(&f32_run), train_losses(&bf16_run));
    let acc = |s: &Value| 100.0 * s["test_accuracy"].as_f64().unwrap();
    let test_loss = |s: &Value| s["test_loss"].as_f64().unwrap();
    eprintln!(
        "train loss f32 {a:?} bf16 {b:?}; test loss {} vs {}; test accuracy {:.2} vs {:.2}",
        test_loss(&f32_run),
        test_loss(&bf16_run),
        acc(&f32_run),
        acc(&bf16_run)
    );
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 0.03 * x, "train loss {y} against {x}");
    }
    assert!((test_loss(&f32_run) - test_loss(&bf16_run)).abs() <= 0.03 * test_loss(&f32_run));
    assert!(
        (acc(&f32_run) - acc(&bf16_run)).abs() <= 0.5,
        "{} vs {}",
        acc(&bf16_run),
        acc(&f32_run)
    );
}
