//! Output folders through the real `flatmin` binary (issue "never lose or mix a result"): a
//! second run pointed at a used folder leaves the first run's files byte-identical, `--overwrite`
//! replaces them cleanly, a folder written by another command is refused (even with `--resume`),
//! and a run that fails early, or a comparison that is killed, leaves no folder. And the
//! checkpoint's files and folder are synced before `checkpoint.json` is renamed into place (the
//! system calls, seen through `strace` where it is installed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{MLP_320, Tmpfs, bin, files_under, fill, json, ok, scratch_path, spawn_paused, stderr};

/// A quick training on part of the embedded subset; `extra` comes last.
fn train(extra: &[&str]) -> Output {
    train_bare(&[&["--train-limit", "320", "--test-limit", "100"], extra].concat())
}

/// `flatmin train --model mlp --quiet` and `args`.
fn train_bare(args: &[&str]) -> Output {
    bin()
        .args(["train", "--model", "mlp", "--quiet"])
        .args(args)
        .output()
        .unwrap()
}

/// A small comparison on a CSV of two well-separated classes; `extra` comes last.
fn compare(data: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("compare")
        .arg("--data")
        .arg(data)
        .args(["--epochs", "2", "--batch-size", "8", "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

fn csv(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::from("a,b,c,label\n");
    for i in 0..60 {
        let class = i % 2;
        let x = i as f64 * 0.1;
        text.push_str(&format!(
            "{},{},{},{}\n",
            x.sin() + 2.0 * class as f64,
            x.cos(),
            class as f64 - x * 0.01,
            ["yes", "no"][class]
        ));
    }
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Refused, with every `needle` in the message; returns the message.
fn refused(out: Output, needles: &[&str]) -> String {
    let text = stderr(&out);
    assert!(!out.status.success(), "should be refused: {text}");
    for needle in needles {
        assert!(text.contains(needle), "expected `{needle}` in: {text}");
    }
    text
}

/// Every file under `dir`, by relative path, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = snapshot(dir).keys().map(|p| p.display().to_string()).collect();
    names.sort();
    names
}

#[test]
fn a_second_train_into_a_used_folder_is_refused_and_overwrite_replaces_it_cleanly() {
    let dir = scratch_path("train");
    let out = dir.to_str().unwrap();
    ok(train(&["--optimizer", "sam", "--epochs", "2", "--out", out]));
    let marker = json(&dir.join("flatmin-run.json"));
    assert_eq!(marker["command"], "train");
    assert_eq!(marker["settings"]["optimizer"], "sam");
    assert_eq!(marker["settings"]["epochs"], 2);
    assert!(marker["flatmin_version"].is_string() && marker["created"].as_str().unwrap().ends_with('Z'));
    let first = snapshot(&dir);

    // The case: another run into the same folder, without a word.
    let text = refused(
        train(&["--optimizer", "sgd", "--epochs", "1", "--out", out]),
        &[
            out,
            "already holds",
            "`flatmin train`",
            "sam (base sgd)",
            "summary.json",
            "--resume",
            "--overwrite",
        ],
    );
    assert!(text.contains("Nothing was written"), "{text}");
    assert_eq!(snapshot(&dir), first, "the first run's files are byte-identical");
    // The same settings again are refused too, and so is --overwrite when a check fails: the old
    // results are removed only once the new run is sure to start.
    refused(
        train(&["--optimizer", "sam", "--epochs", "2", "--out", out]),
        &["already holds"],
    );
    refused(
        train(&[
            "--optimizer",
            "sgd",
            "--batch-size",
            "100000",
            "--overwrite",
            "--out",
            out,
        ]),
        &["larger than the training set"],
    );
    refused(
        train_bare(&["--train-limit", "0", "--overwrite", "--out", out]),
        &["--train-limit 0"],
    );
    assert_eq!(snapshot(&dir), first);
    // --resume and --overwrite contradict each other.
    refused(train(&["--resume", out, "--overwrite"]), &["--overwrite"]);
    assert_eq!(snapshot(&dir), first);

    // --overwrite: the old run is gone (its epoch-2 files too), only the new one is there.
    let replaced = ok(train(&[
        "--optimizer",
        "sgd",
        "--epochs",
        "1",
        "--overwrite",
        "--out",
        out,
    ]));
    assert!(
        stderr(&replaced).contains("removed the earlier results"),
        "{}",
        stderr(&replaced)
    );
    assert_eq!(
        names(&dir),
        [
            "checkpoint.json",
            "flatmin-run.json",
            "metrics.jsonl",
            "model-e1.bpk",
            "optimizer-e1.bpk",
            "summary.json"
        ]
    );
    assert_eq!(json(&dir.join("summary.json"))["optimizer"], "sgd");
    assert_eq!(json(&dir.join("flatmin-run.json"))["settings"]["optimizer"], "sgd");
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    // A file flatmin does not write stops --overwrite before anything is removed.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let before = snapshot(&dir);
    refused(
        train(&["--epochs", "1", "--overwrite", "--out", out]),
        &["notes.txt", "nothing was removed"],
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn compare_folders_are_never_overwritten_or_mixed_with_train_folders() {
    let dir = scratch_path("compare");
    let data = csv(&dir.join("data"));
    let cres = dir.join("cres");
    let c = cres.to_str().unwrap();
    ok(compare(&data, &["--optimizers", "sgd,sam", "--seeds", "2", "--out", c]));
    assert_eq!(json(&cres.join("flatmin-run.json"))["command"], "compare");
    let first = snapshot(&cres);
    assert!(first.contains_key(Path::new("compare.json")));

    // Another comparison into the same folder.
    refused(
        compare(&data, &["--optimizers", "sgd,sam", "--seeds", "3", "--out", c]),
        &[c, "already holds", "`flatmin compare`", "compare.json", "--overwrite"],
    );
    // The compare folder given to train, as a new run and as one to resume.
    let text = refused(train(&["--epochs", "1", "--out", c]), &[c, "`flatmin compare`"]);
    assert!(
        !text.contains("--resume"),
        "a compare folder is not resumed by train: {text}"
    );
    refused(
        train(&["--resume", c]),
        &[c, "written by `flatmin compare`", "not by `flatmin train`"],
    );
    assert_eq!(snapshot(&cres), first, "the comparison's files are byte-identical");

    // A train folder given to compare.
    let run = dir.join("run");
    ok(train(&["--epochs", "1", "--out", run.to_str().unwrap()]));
    let trained = snapshot(&run);
    refused(
        compare(
            &data,
            &[
                "--optimizers",
                "sgd,sam",
                "--seeds",
                "2",
                "--out",
                run.to_str().unwrap(),
            ],
        ),
        &["`flatmin train`", "checkpoint.json"],
    );
    assert_eq!(snapshot(&run), trained);

    // --overwrite replaces the comparison whole.
    ok(compare(
        &data,
        &["--optimizers", "sgd,sam", "--seeds", "3", "--overwrite", "--out", c],
    ));
    assert_eq!(json(&cres.join("compare.json"))["seeds"], serde_json::json!([0, 1, 2]));
    assert_eq!(
        json(&cres.join("flatmin-run.json"))["settings"]["seeds"],
        serde_json::json!([0, 1, 2])
    );
}

#[test]
fn runs_that_fail_early_leave_no_folder() {
    let dir = scratch_path("early");
    let data = csv(&dir.join("data"));
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let fails = |output: Output, needle: &str| {
        refused(output, &[needle]);
        assert!(!out.exists(), "`{needle}`: the failed run left {}", out.display());
    };
    fails(
        train(&["--batch-size", "100000", "--out", o]),
        "larger than the training set",
    );
    fails(train_bare(&["--train-limit", "0", "--out", o]), "--train-limit 0");
    fails(train_bare(&["--test-limit", "0", "--out", o]), "--test-limit 0");
    fails(
        train(&["--dataset", "mnist", "--data-dir", "/nonexistent/flatmin", "--out", o]),
        "/nonexistent/flatmin",
    );
    fails(train(&["--optimizer", "adamsam", "--out", o]), "--optimizer");
    fails(
        train(&[
            "--optimizer",
            "sam",
            "--compare-base",
            "--batch-size",
            "100000",
            "--out",
            o,
        ]),
        "larger than the training set",
    );
    fails(compare(&data, &["--val-fraction", "2", "--out", o]), "--val-fraction");
    fails(
        bin()
            .arg("compare")
            .arg("--data")
            .arg(&data)
            .args(["--batch-size", "1000", "--out", o])
            .output()
            .unwrap(),
        "larger than the training set",
    );
    fails(compare(&dir.join("missing.csv"), &["--out", o]), "missing.csv");
    fails(
        bin()
            .args(["sweep", "--optimizers", "sgd", "--train-limit", "0", "--out", o])
            .output()
            .unwrap(),
        "--train-limit 0",
    );
    fails(
        bin()
            .args(["sweep", "--optimizers", "sgd", "--batch-size", "100000", "--out", o])
            .output()
            .unwrap(),
        "larger than the training set",
    );
    fails(
        bin()
            .args(["toy", "--optimizers", "wsam:x:coupled", "--out", o])
            .output()
            .unwrap(),
        "not a number",
    );
}

#[test]
fn a_killed_comparison_leaves_no_folder() {
    let dir = scratch_path("killed");
    let data = csv(&dir.join("data"));
    let out = dir.join("out");
    let mut child = bin()
        .arg("compare")
        .arg("--data")
        .arg(&data)
        .args([
            "--epochs",
            "30",
            "--batch-size",
            "8",
            "--optimizers",
            "sgd,sam",
            "--seeds",
            "5",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill once the first run has reported, mid-comparison.
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("[1/") => break,
            Some(Ok(_)) => assert!(Instant::now() < deadline, "no run reported"),
            _ => panic!("the comparison ended before its first run"),
        }
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed mid-comparison");
    assert!(!out.exists(), "a killed comparison leaves no folder");
}

#[test]
fn toy_bench_and_replay_refuse_to_replace_a_result_without_overwrite() {
    let dir = scratch_path("files");
    let toy = dir.join("toy");
    let t = toy.to_str().unwrap();
    ok(bin()
        .args(["toy", "--optimizers", "sgd,sam", "--steps", "20", "--out", t])
        .output()
        .unwrap());
    let first = snapshot(&toy);
    refused(
        bin()
            .args(["toy", "--optimizers", "fsam", "--out", t])
            .output()
            .unwrap(),
        &[t, "`flatmin toy`", "toy.json", "--overwrite"],
    );
    assert_eq!(snapshot(&toy), first);
    ok(bin()
        .args([
            "toy",
            "--optimizers",
            "fsam",
            "--steps",
            "20",
            "--overwrite",
            "--out",
            t,
        ])
        .output()
        .unwrap());
    assert_eq!(json(&toy.join("toy.json"))["runs"].as_array().unwrap().len(), 1);

    // One-file outputs: refused before the work starts, the file untouched.
    let file = dir.join("result.json");
    std::fs::write(&file, "earlier result").unwrap();
    let f = file.to_str().unwrap();
    refused(
        bin()
            .args([
                "bench",
                "--steps",
                "1",
                "--models",
                "mlp",
                "--optimizers",
                "sgd",
                "--out",
                f,
            ])
            .output()
            .unwrap(),
        &[f, "already exists (14 bytes", "--overwrite"],
    );
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sam.json");
    refused(
        bin().arg("replay").arg(&case).args(["--out", f]).output().unwrap(),
        &[f, "already exists"],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "earlier result");
    ok(bin()
        .arg("replay")
        .arg(&case)
        .args(["--overwrite", "--out", f])
        .output()
        .unwrap());
    assert!(json(&file)["steps"].is_array());
}

/// One system call of a traced run: `fsync` of a path, or `rename` to a path.
#[derive(Debug, PartialEq)]
enum Call {
    Fsync(String),
    Rename(String),
}

/// The fsync and rename calls of the process's main thread (where the checkpoints are
/// written), in order, from `strace -y` output.
fn calls(log: &str) -> Vec<Call> {
    log.lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("fsync(") {
                let path = rest.split_once('<')?.1.split_once('>')?.0;
                Some(Call::Fsync(path.to_string()))
            } else if let Some(rest) = line.strip_prefix("rename(") {
                let to = rest.split("\", \"").nth(1)?.split('"').next()?;
                Some(Call::Rename(to.to_string()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn checkpoint_files_and_their_folder_are_synced_before_checkpoint_json_is_renamed() {
    let dir = scratch_path("fsync");
    // Beside the run's folder, in its scratch folder.
    let log = dir.with_extension("strace");
    let traced = Command::new("strace")
        .args(["-e", "trace=fsync,rename", "-y", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_flatmin"))
        .arg("train")
        .args(MLP_320)
        .args(["--epochs", "3", "--quiet"])
        .arg("--out")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !traced.is_ok_and(|s| s.success()) || !log.exists() {
        // CI installs strace and sets FLATMIN_REQUIRE_STRACE, so there a skip is a failure.
        assert!(
            std::env::var_os("FLATMIN_REQUIRE_STRACE").is_none(),
            "FLATMIN_REQUIRE_STRACE is set but `strace` could not trace the run"
        );
        eprintln!("SKIPPED: strace is not available here");
        return;
    }
    let folder = std::fs::canonicalize(&dir).unwrap().display().to_string();
    let calls = calls(&std::fs::read_to_string(&log).unwrap());
    let renamed = |i: usize, name: &dyn Fn(&str) -> bool| matches!(&calls[i], Call::Rename(to) if name(to.rsplit('/').next().unwrap()));
    let synced_folder = |i: usize| calls[i] == Call::Fsync(folder.clone());
    let mut checkpoints = 0;
    for k in 0..calls.len() {
        if !renamed(k, &|n| n == "checkpoint.json") {
            continue;
        }
        checkpoints += 1;
        // The model and optimizer files of this checkpoint: each synced, then renamed, then
        // the folder synced, all before checkpoint.json (itself synced) is renamed.
        let mut files_done = k;
        for prefix in ["model-e", "optimizer-e"] {
            let r = (0..k)
                .rev()
                .find(|&i| renamed(i, &|n| n.starts_with(prefix)))
                .expect(prefix);
            assert!(
                (0..r)
                    .rev()
                    .take(3)
                    .any(|i| matches!(&calls[i], Call::Fsync(p) if p.contains(prefix))),
                "{prefix}: its file is synced before it is renamed: {calls:?}"
            );
            files_done = files_done.min(r);
        }
        let last_file = (0..k).rev().find(|&i| renamed(i, &|n| n.ends_with(".bpk"))).unwrap();
        assert!(files_done <= last_file);
        assert!(
            (last_file + 1..k).any(synced_folder),
            "the folder is synced between the checkpoint files and checkpoint.json: {:?}",
            &calls[last_file..=k]
        );
        assert!(
            matches!(&calls[k - 1], Call::Fsync(p) if p.contains("checkpoint.json")),
            "checkpoint.json's new content is synced before its rename: {:?}",
            &calls[last_file..=k]
        );
        assert!(synced_folder(k + 1), "and the folder after it: {:?}", &calls[k..]);
    }
    assert_eq!(checkpoints, 3, "one checkpoint per epoch: {calls:?}");
}

/// `--overwrite` never removes the old results before the new ones exist: a run stopped after it
/// has written its first new checkpoint file, before any new result is complete, and then killed
/// (`kill -9`), leaves every file of the old run byte for byte in the folder (set aside in a
/// hidden subfolder, which the next run names). Removing the old results at the claim, as
/// `--overwrite` once did, fails this test.
#[test]
fn overwrite_removes_nothing_old_before_the_new_results_are_complete() {
    let dir = scratch_path("overwrite-kill");
    let out = dir.to_str().unwrap();
    ok(train(&["--optimizer", "sam", "--epochs", "1", "--out", out]));
    let old = snapshot(&dir);
    assert!(old.keys().any(|p| p.ends_with("model-e1.bpk")), "{:?}", old.keys());
    // Every old file is somewhere under the folder, with its bytes.
    let all_old_kept = |now: &BTreeMap<PathBuf, Vec<u8>>| {
        old.iter()
            .all(|(rel, bytes)| now.iter().any(|(p, b)| p.ends_with(rel) && b == bytes))
    };

    let mut run = bin();
    run.args(["train", "--quiet"]).args(MLP_320).args([
        "--optimizer",
        "sgd",
        "--epochs",
        "2",
        "--overwrite",
        "--out",
        out,
    ]);
    // Killed however the test ends: a failed assertion must not leave it paused for good.
    let child = KillOnDrop(spawn_paused(&mut run, "checkpoint:model"));
    // The new run is under way: its first model file is written, nothing of it is complete.
    let during = snapshot(&dir);
    assert!(during.contains_key(Path::new("model-e1.bpk")), "{:?}", during.keys());
    assert!(
        !during.contains_key(Path::new("checkpoint.json")),
        "{:?}",
        during.keys()
    );
    assert!(
        all_old_kept(&during),
        "old results removed before the new ones exist: {:?}",
        during.keys()
    );
    drop(child);
    let after = snapshot(&dir);
    assert!(all_old_kept(&after), "{:?}", after.keys());

    // The next run in the folder says where the old results are, and leaves them alone.
    let next = ok(train(&["--epochs", "1", "--overwrite", "--out", out]));
    assert!(
        stderr(&next).contains("holds the results an earlier --overwrite was replacing"),
        "{}",
        stderr(&next)
    );
    assert!(all_old_kept(&snapshot(&dir)));
}

/// A child process, killed (`kill -9`) and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// On a disk too small to hold the new results beside the old ones, `--overwrite` loses
/// nothing: refused up front when the free space is below the old results' size (the estimate),
/// and, when the estimate passes but the training's own room check then fails, the old results
/// are put back. (Removing the old results first, as `--overwrite` once did, left the folder
/// without any result in both cases.)
#[test]
fn overwrite_on_a_disk_too_small_for_the_new_results_loses_nothing() {
    let Some(disk) = Tmpfs::mount("overwrite-tmpfs", "24m") else {
        return;
    };
    let dir = disk.0.join("run");
    let out = dir.to_str().unwrap();
    ok(train(&["--optimizer", "sam", "--epochs", "1", "--out", out]));
    let old = snapshot(&dir);
    let old_bytes: u64 = old.values().map(|b| b.len() as u64).sum();
    // Fills the disk with a file until only `spare` bytes are left.
    let overwrite = || train(&["--optimizer", "sgd", "--epochs", "1", "--overwrite", "--out", out]);

    // Half the old results' size free: refused before anything moves.
    fill(&disk.0, "filler", old_bytes / 2);
    refused(overwrite(), &["MB free", "nothing was removed"]);
    assert_eq!(snapshot(&dir), old);

    // Room for one more copy of the old results, not for the two checkpoints the training
    // proves room for: the training refuses, the old results are back in place.
    fill(&disk.0, "filler", old_bytes + (1 << 20));
    refused(overwrite(), &["no room for the checkpoints"]);
    assert_eq!(snapshot(&dir), old);
}
