//! The wgpu test set of the command (built only with the `wgpu` feature; on a machine without a
//! GPU it runs on Mesa's software Vulkan driver, lavapipe): every conformance case (recorded,
//! oracle, and pytorch_optimizer's LookSAM) replayed on
//! the wgpu device in float32 against its reference within the fixtures' float32 bar (1e-5
//! relative, FORMAT.md), and `train`, `replay` and `bench` with `--device wgpu`.

use std::path::Path;

use burn::tensor::DType;
use flatmin::SelectionRule;
use flatmin_lab::device::DeviceChoice;
use flatmin_lab::replay::{self, Case};
use serde_json::Value;

use crate::common::{bin, conformance_cases, fixtures, json, run_ok, scratch, selected_positions, wgpu_here};

/// The float32 bar of FORMAT.md: per step and tensor, max |Δ| / max |reference| <= 1e-5.
const BAR: f64 = 1e-5;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

/// Cases that float32 itself cannot hold to the bar, on any backend: LookSAM per tensor
/// normalizes each tensor's `g_v`, the part of `g_s` orthogonal to `g`, and where a small tensor's
/// `g_s` is nearly parallel to its `g` the float32 rounding of both gradients is magnified by
/// `|g_s| / |g_v|`. The same case replayed on the CPU (flex) in float32 misses the bar too
/// (1.8e-5 relative, against 1.4e-5 on wgpu). These are held to what float32 allows: no worse
/// than twice the CPU's float32 replay, and within 5e-5.
const FLOAT32_ILL_CONDITIONED: [&str; 3] = [
    "looksam_k3_a0.7_per_tensor.json",
    "looksam_pto_k3_per_tensor.json",
    "looksam_pto_k3_per_tensor_f64norm.json",
];

/// Replays `path` on wgpu and checks it against the recorded case; returns the max absolute
/// and relative parameter differences on wgpu, and the relative one of the CPU in float32.
fn check(path: &Path) -> (f64, f64, f64) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let case = Case::load(path).unwrap_or_else(|e| panic!("{e}"));
    let result = replay::run_on(&case, DeviceChoice::Wgpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(result.steps.len(), case.steps().len(), "{name}");
    let abs = replay::max_abs_diff(&case, &result).expect("case records parameters");
    let rel_diff = replay::max_rel_diff(&case, &result).expect("case records parameters");
    let cpu = replay::run_in(&case, DeviceChoice::Cpu, DType::F32).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cpu_rel = replay::max_rel_diff(&case, &cpu).expect("case records parameters");
    if FLOAT32_ILL_CONDITIONED.contains(&name.as_str()) {
        assert!(
            cpu_rel > BAR,
            "{name}: float32 on the CPU now meets the bar ({cpu_rel:e}): hold it to the bar"
        );
        assert!(
            rel_diff <= (2.0 * cpu_rel).min(5.0 * BAR),
            "{name}: max relative |Δparam| = {rel_diff:e} (CPU float32: {cpu_rel:e})"
        );
    } else {
        assert!(
            rel_diff <= BAR,
            "{name}: max relative |Δparam| = {rel_diff:e} (CPU float32: {cpu_rel:e})"
        );
    }

    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let gamma = raw["hyperparams"]["gamma"].as_f64();
    for (k, (step, rec)) in result.steps.iter().zip(raw["steps"].as_array().unwrap()).enumerate() {
        if let Some(loss) = rec["loss"].as_f64() {
            assert!(
                rel(step.loss, loss) <= BAR,
                "{name}: step {k} loss {} vs {loss}",
                step.loss
            );
        }
        if let Some(full) = rec["full_loss_after"].as_f64() {
            assert!(
                rel(step.full_loss_after, full) <= BAR,
                "{name}: step {k} full loss {} vs {full}",
                step.full_loss_after
            );
        }
        if let Some(rho) = rec["extra"]["rho_t"].as_f64() {
            assert!(rel(step.rho, rho) <= 1e-12, "{name}: step {k} rho_t");
        }
        if let (Some(recorded), Some(ours)) = (rec["extra"]["instance_sharpness"].as_array(), &step.sample_sharpness) {
            // Sharpness is a difference of two losses: its float32 error is the losses' error,
            // so it is held to the bar relative to the loss, not to itself.
            let scale = rec["loss"].as_f64().unwrap_or(1.0).abs().max(1.0);
            for (a, b) in ours.iter().zip(recorded) {
                let b = b.as_f64().unwrap();
                assert!((a - b).abs() <= BAR * scale, "{name}: step {k} sharpness {a} vs {b}");
            }
            let picked = selected_positions(rec);
            let own = flatmin::select_sharpest(ours, gamma.unwrap(), SelectionRule::OfficialStrict);
            assert_eq!(
                own, picked,
                "{name}: step {k}: the float32 sharpness picks the reference's samples"
            );
        }
    }
    (abs, rel_diff, cpu_rel)
}

#[test]
fn every_conformance_case_replays_on_wgpu_in_float32_within_1e5_relative() {
    if !wgpu_here() {
        return;
    }
    let files = conformance_cases();
    assert!(
        files.len() >= 9 + 24 + 2,
        "the recorded, the oracle and pytorch_optimizer's LookSAM cases"
    );
    for path in files {
        let (abs, rel_diff, cpu_rel) = check(&path);
        println!(
            "{:<45} wgpu: max |Δparam| = {abs:.3e}, relative {rel_diff:.3e}; CPU float32: relative {cpu_rel:.3e}",
            path.strip_prefix(fixtures()).unwrap().display()
        );
    }
}

#[test]
fn replay_on_wgpu_writes_the_result_file_of_the_cpu() {
    if !wgpu_here() {
        return;
    }
    let dir = scratch("replay");
    let case = fixtures().join("esam.json");
    let (cpu, gpu) = (dir.join("cpu.json"), dir.join("wgpu.json"));
    let run = |out: &Path, device: &str| {
        let run = run_ok(
            bin()
                .arg("replay")
                .arg(&case)
                .args(["--out", out.to_str().unwrap(), "--device", device]),
        );
        String::from_utf8_lossy(&run.stdout).to_string()
    };
    assert!(run(&cpu, "cpu").contains("within 1e-9"));
    let stdout = run(&gpu, "wgpu");
    assert!(stdout.contains("on wgpu") && stdout.contains("within 1e-5"), "{stdout}");
    let (a, b) = (json(&cpu), json(&gpu));
    assert_eq!(
        (a["device"].as_str(), a["dtype"].as_str()),
        (Some("cpu"), Some("float64"))
    );
    assert_eq!(
        (b["device"].as_str(), b["dtype"].as_str()),
        (Some("wgpu"), Some("float32"))
    );
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    let (sa, sb) = (a["steps"].as_array().unwrap(), b["steps"].as_array().unwrap());
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(sb) {
        assert_eq!(keys(x), keys(y));
        assert_eq!(keys(&x["params"]), keys(&y["params"]));
        assert_eq!(x["selected"], y["selected"]);
    }
    assert!(b["max_rel_diff"].as_f64().unwrap() <= BAR);
}

#[test]
fn train_on_wgpu_learns_and_records_the_device() {
    if !wgpu_here() {
        return;
    }
    let dir = scratch("train");
    let out = dir.join("run");
    run_ok(
        bin()
            .arg("train")
            .args([
                "--device",
                "wgpu",
                "--model",
                "mlp",
                "--optimizer",
                "sam",
                "--epochs",
                "2",
            ])
            .args([
                "--train-limit",
                "256",
                "--test-limit",
                "100",
                "--batch-size",
                "32",
                "--quiet",
            ])
            .args(["--out", out.to_str().unwrap()]),
    );
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["device"].as_str(), Some("wgpu"));
    let history = summary["history"].as_array().unwrap();
    let loss = |e: usize| history[e]["train_loss"].as_f64().unwrap();
    assert!(loss(1) < loss(0), "training loss falls: {} then {}", loss(0), loss(1));
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.3,
        "above chance (10 classes)"
    );
    assert!(out.join("checkpoint.json").exists());
}

#[test]
fn bench_on_wgpu_writes_its_json() {
    if !wgpu_here() {
        return;
    }
    let dir = scratch("bench");
    let out = dir.join("bench.json");
    let run = run_ok(
        bin()
            .args([
                "bench",
                "--device",
                "wgpu",
                "--models",
                "mlp",
                "--optimizers",
                "sam,esam",
            ])
            .args(["--steps", "2", "--warmup", "1", "--batch-size", "16"])
            .args(["--out", out.to_str().unwrap()]),
    );
    let result = json(&out);
    assert_eq!(result["device"].as_str(), Some("wgpu"));
    let runs = result["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "sgd, sam, esam");
    assert!(runs.iter().all(|r| r["median_step_ms"].as_f64().unwrap() > 0.0));
    // Each pass waits for the device, so that the passes' kernels are timed in the passes: the
    // base step's pass takes at least half of what the pass anatomy (which waits for the
    // device) measures for a forward alone. Queued and not waited for, the pass would take a
    // small fraction of it (0.2 ms against 6.8 ms in the committed wgpu run of an earlier bench).
    assert_eq!(result["synced_passes"].as_bool(), Some(true));
    let forward = result["models"][0]["anatomy"]["forward_ms"].as_f64().unwrap();
    let sgd = &runs[0];
    assert_eq!(sgd["optimizer"].as_str(), Some("sgd"));
    let first_pass = sgd["median_first_pass_ms"].as_f64().unwrap();
    assert!(
        first_pass >= 0.5 * forward,
        "first pass {first_pass} ms, forward alone {forward} ms"
    );
    // The device's memory is read from its allocator: every variant's weights and state are
    // on the device, and SAM holds a perturbed copy of the weights beside them during its
    // second pass, so it holds more than the base step at its most.
    let param_mb = result["models"][0]["param_mb"].as_f64().unwrap();
    let before = result["models"][0]["device_in_use_before_mb"].as_f64().unwrap();
    assert!(before >= 3.0 * param_mb, "three variants' weights: {before} MB");
    for r in runs {
        let in_use = r["device_in_use_mb"].as_f64().unwrap();
        assert!(in_use >= before, "{r}");
    }
    let sam_extra = runs[1]["extra_device_mb_over_base"].as_f64().unwrap();
    assert!(
        sam_extra >= 0.5 * param_mb,
        "SAM's extra device memory {sam_extra} MB, weights {param_mb} MB"
    );
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("on wgpu, each pass waited for the device"), "{table}");
    assert!(table.contains("| mlp | sam |"), "{table}");
    assert!(table.contains("Device memory"), "{table}");
}
