//! The LibTorch test set of the command (built only with the `tch` feature, which needs PyTorch
//! 2.9.0's libtorch: BENCHMARKS.md, "The LibTorch backend"; not run in CI): every conformance case
//! replayed on `--device tch` in float64 within the fixtures' float64 bar and next to the flex
//! replay, and `replay --device tch` writing its result file.

use burn::tensor::DType;
use flatmin_lab::device::DeviceChoice;
use flatmin_lab::replay::{self, Case};

use crate::common::{bin, conformance_cases, fixtures, json, run_ok, scratch};

#[test]
fn every_conformance_case_replays_on_tch_in_float64_like_flex() {
    let files = conformance_cases();
    assert!(files.len() >= 30, "only {} cases found", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let case = Case::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let tch = replay::run_on(&case, DeviceChoice::Tch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tch.dtype, DType::F64, "{name}");
        assert_eq!(tch.steps.len(), case.steps().len(), "{name}");
        let (diff, bar, what) = replay::bar_for(&case, &tch).expect("case records parameters");
        assert!(diff <= bar, "{name} on tch: {what} = {diff:e} > {bar:e}");
        // Different kernels, same float64 arithmetic up to the order of sums.
        let flex = replay::run(&case).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, (a, b)) in tch.steps.iter().zip(&flex.steps).enumerate() {
            for (ta, tb) in a.params.iter().zip(&b.params) {
                for (x, y) in ta.iter().zip(tb) {
                    assert!((x - y).abs() <= 1e-12, "{name}: step {k}: tch {x} vs flex {y}");
                }
            }
        }
    }
}

#[test]
fn replay_on_tch_writes_the_device_and_float64() {
    let dir = scratch("tch-replay");
    let out = dir.join("sam.json");
    run_ok(bin().arg("replay").arg(fixtures().join("sam.json")).args([
        "--out",
        out.to_str().unwrap(),
        "--device",
        "tch",
    ]));
    let result = json(&out);
    assert_eq!(result["device"], "tch");
    assert_eq!(result["dtype"], "float64");
    assert!(
        result["max_abs_diff"].as_f64().unwrap() <= 1e-9,
        "{}",
        result["max_abs_diff"]
    );
}
