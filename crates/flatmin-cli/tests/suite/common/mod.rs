//! What the command-line tests share: the `flatmin` binary and its outputs, scratch folders that
//! do not outlive a passing test, the conformance fixtures, the small runs, a small disk.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

#[path = "../../../../flatmin/tests/suite/common/shared.rs"]
mod shared;
pub use shared::*;

/// The `flatmin` binary, without the fault switches (`FLATMIN_INJECT_NAN_STEP`,
/// `FLATMIN_PAUSE_AT`) of the environment: a test that wants one sets it.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flatmin"));
    c.env_remove("FLATMIN_INJECT_NAN_STEP").env_remove("FLATMIN_PAUSE_AT");
    c
}

/// A command's standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `out`, once it is checked that the command succeeded (its standard error otherwise).
pub fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// Runs `cmd` and checks that it succeeded ([`ok`]).
pub fn run_ok(cmd: &mut Command) -> Output {
    ok(cmd.output().unwrap())
}

/// The JSON file at `path`; a missing or malformed file panics naming it.
pub fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Starts `cmd` with the fault-injection pause point `point` (`FLATMIN_PAUSE_AT`; the test build
/// of the binary has them) and waits until the run says it stopped there for good: the child,
/// paused. A run that ends without reaching it fails the test, with what it wrote.
pub fn spawn_paused(cmd: &mut Command, point: &str) -> Child {
    let mut child = cmd
        .env("FLATMIN_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `point@k` pauses at the k-th visit of `point`, and says `point`.
    let wanted = format!(
        "flatmin: paused at {}",
        point.rsplit_once('@').map_or(point, |(p, _)| p)
    );
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap_or_else(|e| panic!("{point}: {e}"));
        if line == wanted {
            return child;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the run ended without reaching the pause point {point}: {}",
        seen.join("\n")
    );
}

/// Every line of the JSON-lines file at `path` (a run's `metrics.jsonl`), parsed.
pub fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Every file under `dir` and its subfolders, relative to `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// The MLP on part of the embedded subset: 320 training images, 100 test images.
pub const MLP_320: [&str; 6] = ["--model", "mlp", "--train-limit", "320", "--test-limit", "100"];

/// The MLP on 640 training images (10 steps an epoch of 64) and 200 test images, at lr 0.05.
pub const MLP_640: [&str; 10] = [
    "--model",
    "mlp",
    "--train-limit",
    "640",
    "--test-limit",
    "200",
    "--batch-size",
    "64",
    "--lr",
    "0.05",
];

/// `tests/fixtures`: the conformance cases (FORMAT.md).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The JSON files directly in `dir`, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// The conformance cases another backend replays: the recorded ones (`tests/fixtures`), the
/// oracle's and pytorch_optimizer's (`peer`), sorted. Not pytorch_optimizer's BSAM, which is not
/// the authors' rule: flatmin departs from it on purpose
/// (`conformance::peer_bsam_differs_from_the_authors_rule`).
pub fn conformance_cases() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [fixtures(), fixtures().join("oracle"), fixtures().join("peer")]
        .iter()
        .flat_map(|dir| json_files(dir))
        .filter(|path| !path.ends_with("peer/bsam_pto.json"))
        .collect();
    files.sort();
    files
}

/// The batch positions ESAM's selection picked at a recorded step (`extra`).
pub fn selected_positions(step: &Value) -> Vec<usize> {
    step["extra"]["selected_batch_positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// A small tmpfs in a scratch folder, unmounted (and the folder removed) when dropped.
pub struct Tmpfs(pub Scratch);

impl Tmpfs {
    /// `None` where mounting is not allowed (not root): the test says it skips.
    pub fn mount(name: &str, size: &str) -> Option<Self> {
        let dir = scratch(name);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        }
        mounted.then(|| Self(dir))
    }

    pub fn remount_read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with a file `name` until only `spare` bytes are left.
pub fn fill(dir: &Path, name: &str, spare: u64) {
    let mut file = std::fs::File::create(dir.join(name)).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    while file.write_all(&chunk[..1]).is_ok() {}
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(spare)).unwrap();
}
