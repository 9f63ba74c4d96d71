//! `--device`, in every build: unknown names are refused with the list, `sweep` and `compare`
//! refuse any device but the CPU, and a build without the `wgpu` (`cuda`) feature refuses
//! `--device wgpu` (`cuda`) naming the flag, the value and how to build with it, before anything
//! is written.

use crate::common::{bin, scratch_path};

fn case() -> String {
    format!("{}/tests/fixtures/sgd.json", env!("CARGO_MANIFEST_DIR"))
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let run = bin().args(args).output().unwrap();
    assert!(!run.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&run.stderr);
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: expected `{needle}` in: {stderr}");
    }
}

#[test]
fn an_unknown_device_is_refused_with_the_names() {
    let out = scratch_path("unknown");
    let out = out.to_str().unwrap();
    fails_with(
        &["replay", &case(), "--out", out, "--device", "tpu"],
        &["--device tpu", "cpu, wgpu, cuda"],
    );
    fails_with(
        &["train", "--device", "gpu", "--out", out],
        &["--device gpu", "cpu, wgpu, cuda"],
    );
    assert!(!std::path::Path::new(out).exists(), "nothing is written");
}

#[test]
fn sweep_and_compare_run_on_the_cpu_only() {
    let out = scratch_path("sweep");
    let out = out.to_str().unwrap();
    // In a build without wgpu the flag's parser refuses first; with it, the command does.
    fails_with(&["sweep", "--device", "wgpu", "--out", out], &["--device wgpu"]);
    fails_with(
        &["compare", "--device", "wgpu", "--data", out, "--out", out],
        &["--device wgpu"],
    );
    assert!(!std::path::Path::new(out).exists(), "nothing is written");
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_without_the_feature_is_refused_with_how_to_build_it() {
    let out = scratch_path("no-wgpu");
    let path = out.to_str().unwrap();
    let needles = ["--device wgpu", "without the wgpu backend", "--features wgpu"];
    fails_with(&["replay", &case(), "--out", path, "--device", "wgpu"], &needles);
    fails_with(&["train", "--device", "wgpu", "--out", path], &needles);
    fails_with(&["bench", "--device", "wgpu", "--out", path], &needles);
    assert!(!out.exists(), "nothing is written");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_refused_with_how_to_build_it() {
    let out = scratch_path("no-cuda");
    let path = out.to_str().unwrap();
    let needles = ["--device cuda", "without the cuda backend", "--features cuda"];
    fails_with(&["train", "--device", "cuda", "--out", path], &needles);
    assert!(!out.exists(), "nothing is written");
}
