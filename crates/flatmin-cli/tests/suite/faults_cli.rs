//! Faults tried on purpose through the real `flatmin` binary (RELIABILITY.md):
//!
//! * non-finite losses injected mid-training (`FLATMIN_INJECT_NAN_STEP`) are skipped, reported,
//!   and training goes on;
//! * `kill -9` at random moments, and at every stage of a checkpoint write
//!   (`FLATMIN_PAUSE_AT`), then `--resume`, ends with the weights of an uninterrupted run, and
//!   the checkpoint on disk is whole after every kill;
//! * a full disk, a read-only or an uncreatable `--out` is a clear error before training starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use flatmin_lab::train::{checkpoint_config, checkpoint_weights};
use serde_json::Value;

use crate::common::{
    MLP_320, MLP_640, Scratch, Tmpfs, bin, files_under, fill, json, json_lines, run_ok, scratch_path, spawn_paused,
};

/// The run every kill test interrupts: F-SAM (momentum buffers and the EMA in the optimizer
/// state) on the MLP, 10 steps an epoch.
const EPOCHS: usize = 24;

fn run_args(epochs: usize) -> Vec<String> {
    run_args_with(epochs, "fsam")
}

fn run_args_with(epochs: usize, optimizer: &str) -> Vec<String> {
    let mut args = vec!["train"];
    args.extend(MLP_640);
    args.extend(["--optimizer", optimizer, "--seed", "5", "--quiet", "--epochs"]);
    args.iter().map(|s| s.to_string()).chain([epochs.to_string()]).collect()
}

/// The uninterrupted run, made once and shared by the kill tests, and how long it took.
static REFERENCE: OnceLock<(Scratch, Duration)> = OnceLock::new();

fn reference_run() -> &'static (Scratch, Duration) {
    REFERENCE.get_or_init(|| {
        let dir = scratch_path("reference");
        let started = Instant::now();
        run_ok(bin().args(run_args(EPOCHS)).arg("--out").arg(&dir));
        // A static is never dropped: its folder goes when the test process exits.
        atexit(remove_reference);
        (dir, started.elapsed())
    })
}

extern "C" fn remove_reference() {
    if let Some((dir, _)) = REFERENCE.get() {
        let _ = std::fs::remove_dir_all(dir.root());
    }
}

unsafe extern "C" {
    /// The C library's `atexit`: `f` is called when the process exits.
    safe fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
}

fn reference() -> &'static Path {
    &reference_run().0
}

/// The figures of each epoch that do not depend on timing.
fn learning_curve(dir: &Path) -> Vec<[Value; 4]> {
    json_lines(&dir.join("metrics.jsonl"))
        .into_iter()
        .map(|m| {
            [
                m["epoch"].clone(),
                m["train_loss"].clone(),
                m["test_loss"].clone(),
                m["sharpness"].clone(),
            ]
        })
        .collect()
}

/// After a kill: the checkpoint on disk (if any) is whole — checkpoint.json parses, the model
/// and optimizer files it names load, its history has one line per epoch — and nothing but
/// temporary files was left half-written. Returns the checkpoint's epoch.
fn assert_checkpoint_whole(dir: &Path) -> Option<u64> {
    let path = dir.join("checkpoint.json");
    if !path.exists() {
        return None;
    }
    let ckpt = json(&path);
    let epoch = ckpt["epoch"].as_u64().expect("epoch");
    assert_eq!(ckpt["history"].as_array().unwrap().len() as u64, epoch);
    let weights = checkpoint_weights(dir).unwrap_or_else(|e| panic!("model file of epoch {epoch}: {e}"));
    assert!(!weights.is_empty());
    let config = checkpoint_config(dir).unwrap();
    let optimizer = dir.join(ckpt["optimizer_file"].as_str().unwrap());
    assert!(config.sam_config().unwrap().init().is_ok());
    flatmin::SamRecord::load(&optimizer, &Device::flex())
        .unwrap_or_else(|e| panic!("optimizer file of epoch {epoch}: {e}"));
    Some(epoch)
}

/// Files of the folder other than the finished run's own.
fn leftovers(dir: &Path) -> Vec<String> {
    let ckpt = json(&dir.join("checkpoint.json"));
    let keep = [
        "flatmin-run.json",
        "checkpoint.json",
        "metrics.jsonl",
        "summary.json",
        ckpt["model_file"].as_str().unwrap(),
        ckpt["optimizer_file"].as_str().unwrap(),
    ];
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// The resumed (or restarted) run has finished: same weights, same learning curve, same
/// summary figures as the uninterrupted run, and nothing left behind.
fn assert_same_as_reference(dir: &Path) {
    let reference = reference();
    assert_eq!(
        checkpoint_weights(dir).unwrap(),
        checkpoint_weights(reference).unwrap(),
        "weights differ from the uninterrupted run"
    );
    assert_eq!(learning_curve(dir), learning_curve(reference));
    let (a, b) = (json(&dir.join("summary.json")), json(&reference.join("summary.json")));
    for key in ["test_loss", "test_accuracy", "train_loss", "steps"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(leftovers(dir), Vec::<String>::new(), "files left behind");
}

/// Kills the child, which must still be running.
fn kill(child: Child) {
    assert!(kill_unless_finished(child), "the run had finished before the kill");
}

/// Kills the child unless it finished on its own first (it may exit between a check and the
/// kill: a SIGKILL to an exited child changes nothing). Returns whether the kill landed.
fn kill_unless_finished(mut child: Child) -> bool {
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    !status.success()
}

fn resume(dir: &Path) -> Command {
    let mut c = bin();
    c.arg("train").arg("--resume").arg(dir).arg("--quiet");
    c
}

/// A small deterministic generator (splitmix64) for the kill moments; FLATMIN_KILL_SEED picks
/// another sequence.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn kill_9_at_random_moments_then_resume_ends_with_the_uninterrupted_weights() {
    let seed = std::env::var("FLATMIN_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_251_122u64);
    let mut draws = Draws(seed);
    // How long an uninterrupted run takes here, to spread the kills over it. On a busy machine
    // that measure can be long against the runs being killed, and a run may finish after too
    // few kills: it then starts over in a fresh folder with the kills twice as early.
    let mut span = reference_run().1.max(Duration::from_millis(500));
    let mut rounds = Vec::new();
    for round in 0..4 {
        let dir = scratch_path(&format!("random-{round}"));
        let kills = kill_at_random(&dir, &mut draws, span);
        eprintln!("seed {seed}, round {round}: kills (ms after start, checkpoint epoch on disk): {kills:?}");
        // Every round, whatever its kills, ends with the uninterrupted weights.
        assert_same_as_reference(&dir);
        rounds.push(kills.len());
        if kills.len() >= 3 {
            return;
        }
        span /= 2;
    }
    panic!("too few kills landed mid-run in any round: {rounds:?}");
}

/// Runs a training in `dir`, killing it with SIGKILL after random delays (up to a third of
/// `span`) and resuming it, until it finishes; returns the kills that landed.
fn kill_at_random(dir: &Path, draws: &mut Draws, span: Duration) -> Vec<(u128, Option<u64>)> {
    let mut kills = Vec::new();
    for attempt in 0..20 {
        let mut cmd = if dir.join("checkpoint.json").exists() {
            resume(dir)
        } else {
            let mut c = bin();
            c.args(run_args(EPOCHS)).arg("--out").arg(dir);
            c
        };
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        if kills.len() >= 8 || attempt >= 16 {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return kills;
        }
        // Up to a third of a whole run: most kills land mid-run, a few before the first
        // checkpoint or during one.
        let delay = Duration::from_millis(50 + draws.next() % (span.as_millis() as u64 / 3).max(1));
        std::thread::sleep(delay);
        if let Some(status) = child.try_wait().unwrap() {
            // It ended before the kill: it must have finished the run, not failed.
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "a run ended on its own with a failure after kills {kills:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return kills;
        }
        if !kill_unless_finished(child) {
            // It finished between the check and the kill: the run is complete.
            return kills;
        }
        let epoch = assert_checkpoint_whole(dir);
        kills.push((delay.as_millis(), epoch));
    }
    panic!("the run did not finish in 20 attempts");
}

/// Starts a run that stops for good at `point`, and kills it there once it says so.
fn kill_at(dir: &Path, point: &str) {
    kill(spawn_paused(bin().args(run_args(EPOCHS)).arg("--out").arg(dir), point));
}

/// A run killed in the middle of its first checkpoint (model and optimizer files written, no
/// `checkpoint.json` yet) has nothing to resume: running it again in the same folder is not
/// refused, clears the orphaned files and ends with the uninterrupted run's weights.
#[test]
fn a_run_killed_inside_its_first_checkpoint_can_be_run_again_in_its_folder() {
    for point in ["checkpoint:model@1", "checkpoint:optimizer@1"] {
        let dir = scratch_path(&format!("first-{}", point.replace([':', '@'], "-")));
        kill_at(&dir, point);
        assert!(dir.join("model-e1.bpk").exists() && !dir.join("checkpoint.json").exists());
        let out = bin().args(run_args(EPOCHS)).arg("--out").arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same_as_reference(&dir);
    }
}

#[test]
fn kill_9_at_every_stage_of_a_checkpoint_write_then_resume() {
    // (pause point, epoch of the checkpoint that must be on disk after the kill)
    let points = [
        ("write-half:model-e3.bpk", 2),
        ("checkpoint:model@3", 2),
        ("checkpoint:optimizer@3", 2),
        ("write-half:checkpoint.json@3", 2),
        ("checkpoint:json@3", 3),
        ("write-half:metrics.jsonl@3", 3),
        ("checkpoint:metrics@3", 3),
        ("checkpoint:json@1", 1),
        (&*format!("checkpoint:metrics@{EPOCHS}"), EPOCHS as u64),
    ];
    for (point, epoch) in points {
        let dir = scratch_path(&format!("stage-{}", point.replace([':', '@', '.'], "-")));
        kill_at(&dir, point);
        assert_eq!(assert_checkpoint_whole(&dir), Some(epoch), "{point}");
        if point.starts_with("write-half:") {
            // The interrupted write left only its temporary file: the real one is the old one.
            let tmp = std::fs::read_dir(&dir)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
                .count();
            assert_eq!(tmp, 1, "{point}: the half-written temporary file");
        }
        run_ok(&mut resume(&dir));
        assert_same_as_reference(&dir);
    }
}

#[test]
fn injected_non_finite_losses_are_skipped_reported_and_training_goes_on() {
    // SAM (two passes) and ESAM (three calls of the loss: the second pass is the third).
    for optimizer in ["sam", "esam"] {
        let dir = scratch_path(&format!("nan-{optimizer}"));
        let run = run_ok(
            bin()
                .args(run_args_with(2, optimizer))
                .arg("--out")
                .arg(&dir)
                .env("FLATMIN_INJECT_NAN_STEP", "3,7:inf,12:nan2,20:inf2"),
        );
        let stderr = String::from_utf8_lossy(&run.stderr);
        let reported: Vec<&str> = stderr.lines().filter(|l| l.contains("step skipped")).collect();
        assert_eq!(reported.len(), 4, "{optimizer}: {stderr}");
        for (line, (at, what)) in reported.iter().zip([
            ("epoch 1 step 3", "loss in the first pass"),
            ("epoch 1 step 7", "loss in the first pass"),
            ("epoch 2 step 2", "second pass"),
            ("epoch 2 step 10", "second pass"),
        ]) {
            assert!(line.contains(at) && line.contains(what), "{optimizer}: {line}");
        }
        let metrics = json_lines(&dir.join("metrics.jsonl"));
        assert_eq!(metrics.len(), 2);
        for m in &metrics {
            assert_eq!(m["skipped_steps"], 2, "{m}");
            for key in ["train_loss", "test_loss", "test_accuracy"] {
                assert!(m[key].as_f64().is_some_and(f64::is_finite), "{key}: {m}");
            }
        }
        let summary = json(&dir.join("summary.json"));
        assert_eq!(summary["steps"], 20);
        assert!(summary["test_accuracy"].as_f64().unwrap() > 0.3, "it still learns");
        for (name, bytes) in checkpoint_weights(&dir).unwrap() {
            assert!(
                bytes
                    .chunks_exact(4)
                    .all(|b| f32::from_le_bytes(b.try_into().unwrap()).is_finite()),
                "{name} holds a non-finite weight"
            );
        }
    }
    // A bad specification is an error before training.
    let run = bin()
        .args(run_args(1))
        .env("FLATMIN_INJECT_NAN_STEP", "3:maybe")
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("FLATMIN_INJECT_NAN_STEP"));
}

fn fails_before_training(args: &[String], out: &Path, needle: &str) {
    let run = bin().args(args).arg("--out").arg(out).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "should fail: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(stderr.contains("--out"), "the error names --out: {stderr}");
    assert!(!out.join("metrics.jsonl").exists(), "training must not start");
}

#[test]
fn a_full_disk_or_an_unwritable_out_is_a_clear_error_before_training() {
    let args = run_args(2);
    // A folder that cannot be created (a file stands where its parent should be), and one
    // under /proc, which nobody, root included, can create.
    let file = scratch_path("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    fails_before_training(&args, &file.join("run"), "cannot create the folder");
    fails_before_training(&args, Path::new("/proc/flatmin-run"), "cannot create the folder");

    let Some(disk) = Tmpfs::mount("tmpfs-full", "1m") else {
        return;
    };
    // A disk with no byte left.
    fill(&disk.0, "filler", 0);
    fails_before_training(&args, &disk.0.join("run"), "No space left on device");
    // A disk with room for the folder and a probe, not for the checkpoints (the MLP's take
    // about 7 MB).
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    drop(disk);
    let small = Tmpfs::mount("tmpfs-small", "2m").expect("mounted once already");
    fails_before_training(&args, &small.0.join("run"), "no room for the checkpoints");
    // A read-only filesystem: the folder exists but nothing can be written in it.
    std::fs::create_dir_all(small.0.join("run")).unwrap();
    assert!(small.remount_read_only());
    fails_before_training(&args, &small.0.join("run"), "Read-only file system");
}

#[test]
fn a_disk_that_fills_up_between_kill_and_resume_is_a_clear_error_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount("tmpfs-resume", "16m") else {
        return;
    };
    let dir = disk.0.join("run");
    kill_at(&dir, "checkpoint:metrics@2");
    let before: BTreeMap<String, Vec<u8>> = checkpoint_weights(&dir).unwrap();
    // 1 MB left: enough to start, not for the next checkpoint.
    fill(&disk.0, "filler", 1 << 20);
    let run = resume(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("no room for the checkpoints"), "{stderr}");
    assert_eq!(assert_checkpoint_whole(&dir), Some(2), "the checkpoint is untouched");
    assert_eq!(checkpoint_weights(&dir).unwrap(), before);
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    run_ok(&mut resume(&dir));
    assert_same_as_reference(&dir);
}

/// A small sweep: 2 optimizers × 2 noise rates × 2 seeds of the MLP, 3 epochs each.
fn sweep_args(out: &Path) -> Vec<String> {
    let mut args = vec!["sweep", "--optimizers", "sgd,fsam", "--noise", "0,0.4", "--seeds", "2"];
    args.extend(MLP_320);
    args.extend(["--epochs", "3", "--quiet", "--out"]);
    args.iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
}

/// The folders under `dir` that hold a run (a checkpoint.json), relative to `dir`.
fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|n| n == "checkpoint.json"))
        .map(|path| path.parent().unwrap().to_path_buf())
        .collect();
    out.sort();
    out
}

#[test]
fn kill_9_at_random_moments_of_a_sweep_then_running_it_again_ends_with_the_same_runs() {
    let straight = scratch_path("sweep-straight");
    let started = Instant::now();
    run_ok(bin().args(sweep_args(&straight)));
    let span = started.elapsed().max(Duration::from_millis(500));
    let runs = run_dirs(&straight);
    assert_eq!(runs.len(), 8, "{runs:?}");

    let dir = scratch_path("sweep-killed");
    let mut draws = Draws(7);
    let mut kills = 0;
    for _ in 0..12 {
        let mut child = bin()
            .args(sweep_args(&dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(50 + draws.next() % (span.as_millis() as u64 / 3).max(1));
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            break;
        }
        kill(child);
        kills += 1;
        for run in run_dirs(&dir) {
            assert_checkpoint_whole(&dir.join(run));
        }
    }
    // Whatever is left, the same sweep run again finishes it.
    run_ok(bin().args(sweep_args(&dir)));
    eprintln!("sweep: {kills} kills");
    assert!(kills >= 3, "too few kills landed mid-sweep");
    assert_eq!(run_dirs(&dir), runs);
    for run in &runs {
        assert_eq!(
            checkpoint_weights(&dir.join(run)).unwrap(),
            checkpoint_weights(&straight.join(run)).unwrap(),
            "{}",
            run.display()
        );
    }
    let accuracies = |d: &Path| {
        let r = json(&d.join("results.json"));
        r["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["variant"].clone(),
                    c["noise"].clone(),
                    c["runs"].as_array().unwrap().len(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(accuracies(&dir), accuracies(&straight));
    assert_eq!(
        std::fs::read_to_string(dir.join("results.md"))
            .map(|s| s.lines().count())
            .ok(),
        std::fs::read_to_string(straight.join("results.md"))
            .map(|s| s.lines().count())
            .ok()
    );
}
