//! `flatmin sweep`, `flatmin sharpness` and `flatmin toy` end to end through the real binary, on
//! grids small enough for CI.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{MLP_320, bin, json, run_ok, scratch_path};

/// A small grid, of runs of [`MLP_320`].
const GRID: [&str; 10] = [
    "sweep",
    "--optimizers",
    "sgd,sam",
    "--noise",
    "0,0.5",
    "--seeds",
    "2",
    "--epochs",
    "2",
    "--quiet",
];

fn accuracies(results: &Value) -> Vec<(String, f64, Vec<f64>)> {
    results["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let runs = c["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["test_accuracy"].as_f64().unwrap())
                .collect();
            (
                c["variant"].as_str().unwrap().to_string(),
                c["noise"].as_f64().unwrap(),
                runs,
            )
        })
        .collect()
}

#[test]
fn a_sweep_writes_its_table_results_and_plots() {
    let out = scratch_path("grid");
    let run = bin()
        .args(GRID)
        .args(MLP_320)
        .args([
            "--sharpness",
            "--sharpness-samples",
            "100",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("| optimizer | noise 0 % | noise 50 % | λ_max (noise 0 %) | ms/step |"),
        "{md}"
    );
    assert!(md.contains("| sgd |") && md.contains("| sam |"));
    let results = json(&out.join("results.json"));
    let cells = accuracies(&results);
    assert_eq!(cells.len(), 4);
    for (variant, noise, runs) in &cells {
        assert_eq!(runs.len(), 2, "{variant} {noise}");
        assert!(runs.iter().all(|a| (0.0..=1.0).contains(a)));
    }
    for cell in results["cells"].as_array().unwrap() {
        if cell["noise"] == 0.0 {
            assert!(cell["lambda_mean"].as_f64().unwrap() > 0.0, "λ_max measured at noise 0");
        }
    }
    for svg in ["accuracy_vs_noise.svg", "curves_noise0.svg", "curves_noise0.5.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("polyline"), "{svg}");
    }
    // A second run of the same sweep finds everything done and changes nothing.
    let again = bin()
        .args(GRID)
        .args(MLP_320)
        .args([
            "--sharpness",
            "--sharpness-samples",
            "100",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(accuracies(&json(&out.join("results.json"))), cells);
}

#[test]
fn a_killed_sweep_resumes_to_the_same_results() {
    let straight = scratch_path("straight");
    let run = bin()
        .args(GRID)
        .args(MLP_320)
        .args(["--out", straight.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let killed = scratch_path("killed");
    let mut child = bin()
        .args(GRID)
        .args(MLP_320)
        .args(["--out", killed.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the first run has finished, while later ones are still to come.
    let first = killed.join("runs/sgd/noise-0/seed-0/summary.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !first.exists() {
        assert!(Instant::now() < deadline, "the sweep never finished a run");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed mid-sweep");
    assert!(!killed.join("results.json").exists(), "the sweep had not finished");

    let resumed = bin()
        .args(GRID)
        .args(MLP_320)
        .args(["--out", killed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(
        accuracies(&json(&killed.join("results.json"))),
        accuracies(&json(&straight.join("results.json")))
    );
}

#[test]
fn sweep_settings_are_checked_before_anything_runs() {
    let out = scratch_path("bad");
    let fails = |args: &[&str], needle: &str| {
        let run = bin().args(args).output().unwrap();
        assert!(!run.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(needle), "expected `{needle}` in {stderr}");
    };
    fails(
        &[
            "sweep",
            "--optimizers",
            "sam",
            "--vary",
            "rhoo=0.1",
            "--out",
            out.to_str().unwrap(),
        ],
        "unknown hyperparameter",
    );
    fails(
        &[
            "sweep",
            "--optimizers",
            "sam",
            "--vary",
            "rho=x",
            "--out",
            out.to_str().unwrap(),
        ],
        "not a number",
    );
    fails(
        &["sweep", "--optimizers", "samm", "--out", out.to_str().unwrap()],
        "one of sgd",
    );
    fails(&["sweep", "--optimizers", "sam"], "--out DIR is required");
    fails(
        &[
            "sweep",
            "--optimizers",
            "sam",
            "--noise=1.5",
            "--out",
            out.to_str().unwrap(),
        ],
        "--label-noise 1.5",
    );
    assert!(!out.join("runs").exists(), "nothing may run before the checks");
    // The same folder cannot hold two different sweeps.
    let first = bin()
        .args([
            "sweep",
            "--optimizers",
            "sgd",
            "--seeds",
            "1",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--train-limit",
            "128",
            "--test-limit",
            "50",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    fails(
        &[
            "sweep",
            "--optimizers",
            "sam",
            "--seeds",
            "1",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        "holds another sweep",
    );
}

#[test]
fn sharpness_of_a_trained_run() {
    let run_dir = scratch_path("sharp-run");
    run_ok(
        bin()
            .arg("train")
            .args(MLP_320)
            .args(["--epochs", "2", "--quiet", "--out"])
            .arg(&*run_dir),
    );
    let out = run_dir.join("lambda.json");
    let run = bin()
        .args([
            "sharpness",
            run_dir.to_str().unwrap(),
            "--samples",
            "200",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("λ_max ="));
    let result = json(&out);
    let lambda = result["lambda_max"].as_f64().unwrap();
    assert!(lambda.is_finite() && lambda > 0.0, "{result}");
    assert!(result["converged"].as_bool().unwrap());

    let missing = bin().args(["sharpness", "/nonexistent/run"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no checkpoint"));
}

#[test]
fn toy_writes_json_and_plot_with_the_papers_basins() {
    let out = scratch_path("toy");
    let run = bin().args(["toy", "--out", out.to_str().unwrap()]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let toy = json(&out.join("toy.json"));
    let runs = toy["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for r in runs {
        for key in ["optimizer", "gamma", "coupled", "final", "final_loss", "basin"] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
        let flat = r["optimizer"] == "wsam" && r["gamma"] == 0.95 && r["coupled"] == true;
        assert_eq!(r["basin"], if flat { "flat" } else { "sharp" }, "{r}");
    }
    assert!(
        std::fs::read_to_string(out.join("toy.svg"))
            .unwrap()
            .contains("polyline")
    );
    let custom = bin()
        .args([
            "toy",
            "--optimizers",
            "fsam,wsam:0.9:coupled",
            "--overwrite",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(custom.status.success(), "{}", String::from_utf8_lossy(&custom.stderr));
    assert_eq!(json(&out.join("toy.json"))["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_sweep_draws_the_frontier_and_varies_the_schedule() {
    let out = scratch_path("frontier");
    let run = bin()
        .args([
            "sweep",
            "--optimizers",
            "sgd,sam,sam-every-5",
            "--noise",
            "0.4",
            "--seeds",
            "2",
        ])
        .args(MLP_320)
        .args(["--epochs", "1", "--quiet", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let results = json(&out.join("results.json"));
    let frontier = &results["frontier"][0];
    assert_eq!(
        (frontier["noise"].as_f64(), frontier["base"].as_str()),
        (Some(0.4), Some("sgd"))
    );
    let points = frontier["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    // 320 images in batches of 64: 5 steps, the first a SAM step.
    let fractions: Vec<f64> = points
        .iter()
        .map(|p| p["second_pass_fraction"].as_f64().unwrap())
        .collect();
    assert_eq!(fractions, [0.0, 1.0, 0.2]);
    for p in &points[1..] {
        // The interval pairs the seeds' per-example outcomes on the fixed test set.
        assert_eq!(p["difference_points"]["method"], "seeds_and_test_examples", "{p}");
        assert!(p["difference_points"]["half_width"].as_f64().unwrap() >= 0.0);
        assert!(p["step_cost_ratio"].as_f64().unwrap() > 0.0 && p["training_seconds"].as_f64().unwrap() > 0.0);
    }
    assert!(points[2]["difference_to_sam_points"]["mean"].is_number());
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("Gain against cost at label noise 40 %") && md.contains("| sam-every-5 |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("frontier_noise0.4.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("sam-every-5"));
    assert!(out.join("frontier_time_noise0.4.svg").exists());
    assert!(out.join("runs/sam/noise-0.4/seed-1/test_correct.txt").exists());

    // --vary sam_every: the schedule follows the axis.
    let out = scratch_path("vary-every");
    let run = bin()
        .args([
            "sweep",
            "--optimizers",
            "sam",
            "--vary",
            "sam_every=1,5",
            "--noise",
            "0",
            "--seeds",
            "1",
        ])
        .args([
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--train-limit",
            "320",
            "--test-limit",
            "50",
            "--quiet",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let cells = json(&out.join("results.json"))["cells"].clone();
    let by_label: Vec<(&str, f64)> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["variant"].as_str().unwrap(),
                c["second_pass_fraction"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_label, [("sam sam_every=1", 1.0), ("sam sam_every=5", 0.2)]);
}
