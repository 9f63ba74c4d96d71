//! `flatmin bench` end to end on a tiny setting: it runs, prints its table and writes the JSON
//! with the contract keys. No timing is asserted (CI machines differ).

use crate::common::{bin, json, run_ok, scratch};

#[test]
fn bench_writes_the_json_contract_and_a_table() {
    let dir = scratch("bench-json");
    let out = dir.join("bench.json");
    let run = run_ok(
        bin()
            .args(["bench", "--steps", "2", "--warmup", "1", "--batch-size", "16"])
            .args(["--models", "mlp", "--optimizers", "sgd,sam,esam"])
            .arg("--out")
            .arg(&out),
    );
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| mlp | sam |"), "{table}");

    let json = json(&out);
    let runs = json["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs.iter().map(|r| r["optimizer"].as_str().unwrap()).collect();
    assert_eq!(names, ["sgd", "sam", "esam"]);
    for r in runs {
        assert_eq!(r["model"], "mlp");
        for key in ["median_step_ms", "ratio_to_base", "peak_rss_mb"] {
            let v = r[key].as_f64().unwrap_or_else(|| panic!("{key} in {r}"));
            // Peak memory is read from /proc: Linux only (0 elsewhere).
            let positive = key != "peak_rss_mb" || cfg!(target_os = "linux");
            assert!(v.is_finite() && (v > 0.0 || !positive && v == 0.0), "{key} = {v}");
        }
        assert!(r["median_optimizer_ms"].as_f64().unwrap() >= 0.0);
        // The passes split into phases: ESAM alone has a selection forward, the base no
        // second pass.
        let phase = |key: &str| r[key].as_f64().unwrap_or_else(|| panic!("{key} in {r}"));
        assert!(phase("median_first_pass_ms") > 0.0, "{r}");
        let (selection, second) = (phase("median_selection_ms"), phase("median_second_pass_ms"));
        match r["optimizer"].as_str().unwrap() {
            "sgd" => assert!(selection == 0.0 && second == 0.0, "{r}"),
            "sam" => assert!(selection == 0.0 && second > 0.0, "{r}"),
            _ => assert!(selection > 0.0 && second > 0.0, "{r}"),
        }
        assert!(phase("mean_step_ms") > 0.0, "{r}");
        // The flatmin command counts heap bytes: a step's working memory is never zero.
        assert!(phase("step_heap_mb") > 0.0, "{r}");
        // The CPU backend's allocator reports no device memory: the keys are there, null.
        assert!(
            r["device_in_use_mb"].is_null() && r["extra_device_mb_over_base"].is_null(),
            "{r}"
        );
    }
    // The CPU runs synchronously: no pass waits for a device.
    assert_eq!(json["synced_passes"].as_bool(), Some(false));
    assert!(json["models"][0]["device_reserved_mb"].is_null());
    assert!(!table.contains("Device memory"), "{table}");
    assert!(table.contains("selection forward"), "{table}");
    assert_eq!(runs[0]["ratio_to_base"].as_f64(), Some(1.0));
}

#[test]
fn bench_rejects_unknown_names() {
    let run = bin()
        .args(["bench", "--steps", "1", "--models", "vgg"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("vgg") && err.contains("mlp, cnn, resnet"), "{err}");
}

#[test]
fn bench_reports_the_second_passes_and_the_cost_of_the_cheaper_members() {
    let dir = scratch("bench-cheaper");
    let out = dir.join("bench.json");
    // No warm-up and 5 timed steps: SAM every 5 steps runs its second pass on the first only.
    let run = run_ok(
        bin()
            .args([
                "bench",
                "--steps",
                "5",
                "--warmup",
                "0",
                "--batch-size",
                "16",
                "--models",
                "mlp",
            ])
            .args(["--optimizers", "sam,looksam,sam-every-5,rst,ae-sam,bsam"])
            .arg("--out")
            .arg(&out),
    );
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| second passes | cost ratio to base |"), "{table}");
    let json = json(&out);
    let runs = json["runs"].as_array().unwrap();
    let fraction = |name: &str| -> f64 {
        let r = runs
            .iter()
            .find(|r| r["optimizer"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        let cost = r["cost_ratio_to_base"].as_f64().unwrap();
        assert!(cost.is_finite() && cost > 0.0, "{r}");
        r["second_pass_fraction"].as_f64().unwrap()
    };
    assert_eq!(fraction("sgd"), 0.0);
    assert_eq!(fraction("sam"), 1.0);
    assert_eq!(fraction("bsam"), 1.0);
    assert_eq!(fraction("sam-every-5"), 0.2);
    assert_eq!(fraction("looksam"), 0.2);
    let rst = fraction("rst");
    assert!((0.0..=1.0).contains(&rst));
    assert!((0.0..=1.0).contains(&fraction("ae-sam")));
    // A method whose steps all run both passes costs its median step.
    let sam = runs.iter().find(|r| r["optimizer"] == "sam").unwrap();
    assert_eq!(sam["cost_ratio_to_base"], sam["ratio_to_base"]);
    assert!(sam["median_one_pass_step_ms"].is_null());
}

#[test]
fn bench_runs_a_half_precision_model_and_names_its_precision() {
    let dir = scratch("bench-bf16");
    let out = dir.join("bench.json");
    let run = run_ok(
        bin()
            .args(["bench", "--steps", "2", "--warmup", "1", "--batch-size", "16"])
            .args(["--models", "cnn", "--optimizers", "sam", "--precision", "bf16"])
            .arg("--out")
            .arg(&out),
    );
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("precision bf16,"), "{table}");
    let json = json(&out);
    assert_eq!(json["precision"], "bf16");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for r in runs {
        for key in ["median_step_ms", "step_heap_mb"] {
            let v = r[key].as_f64().unwrap_or_else(|| panic!("{key} in {r}"));
            assert!(v.is_finite() && v > 0.0, "{key} = {v}");
        }
    }
    let refused = bin()
        .args(["bench", "--steps", "1", "--precision", "fp8"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("fp8") && err.contains("bf16"), "{err}");
}
