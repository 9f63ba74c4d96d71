//! `flatmin train --data PATH`: the user's CSV file or image folder, read as `flatmin compare`
//! reads it, beside the named datasets (`--data NAME`, and `--dataset` as an alias); what a run
//! records of its data; the errors of a path that is not there and of a malformed file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flatmin_lab::train::{DATASETS, DataSource, resolve_data};
use serde_json::Value;
use tempfile::TempDir;

/// A scratch folder, removed with the value; derefs to its path.
struct Scratch(TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

/// A new empty scratch folder.
fn scratch(name: &str) -> Scratch {
    Scratch(tempfile::Builder::new().prefix(name).tempdir().unwrap())
}

/// A path that does not exist yet, in a new scratch folder (for `--out`): the folder and the path.
fn scratch_path(name: &str) -> (Scratch, PathBuf) {
    let dir = scratch(name);
    let path = dir.join(name);
    (dir, path)
}

/// The `flatmin` binary, without the fault switches of the environment.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flatmin"));
    c.env_remove("FLATMIN_INJECT_NAN_STEP").env_remove("FLATMIN_PAUSE_AT");
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A tiny quick run: the MLP, batches of 8, one epoch, no progress lines.
const QUICK: [&str; 7] = ["--model", "mlp", "--batch-size", "8", "--epochs", "1", "--quiet"];

/// `flatmin train` with `args`.
fn train(args: &[&str]) -> Output {
    bin().arg("train").args(args).output().unwrap()
}

/// `text` written as `data.csv` in a scratch folder (the folder, and the file's path).
fn csv(name: &str, text: &str) -> (Scratch, String) {
    let dir = scratch(name);
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

/// 40 rows of two well-separated classes over three features, with a header.
fn separable_csv() -> String {
    let mut text = String::from("x,y,z,species\n");
    for i in 0..40 {
        let (base, class) = if i % 2 == 0 {
            (0.0, "setosa")
        } else {
            (5.0, "virginica")
        };
        let j = f64::from(i) * 0.01;
        text.push_str(&format!("{},{},{},{class}\n", base + j, base - j, base + 2.0 * j));
    }
    text
}

fn failed_with(run: &Output, needles: &[&str]) -> String {
    let err = stderr(run);
    assert!(!run.status.success(), "expected a failure: {err}");
    for needle in needles {
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
    assert!(!err.contains("epoch 1/"), "training must not start: {err}");
    err
}

#[test]
fn a_csv_trains_writes_its_results_and_records_its_data() {
    let (_dir, data) = csv("train-csv", &separable_csv());
    let (_out_dir, out) = scratch_path("train-csv-out");
    let o = out.to_str().unwrap();
    let run = train(&[&["--data", &data, "--out", o][..], &QUICK].concat());
    assert!(run.status.success(), "{}", stderr(&run));
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| sam | mlp |"), "{table}");

    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["dataset"], Value::from(data.as_str()));
    assert_eq!(summary["data"]["kind"], "csv");
    assert_eq!(summary["data"]["classes"], 2);
    // The default split: 20 % of each class held out.
    assert_eq!(summary["data"]["train"], 32);
    assert_eq!(summary["data"]["test"], 8);
    let recorded = summary["data"]["path"].as_str().unwrap();
    assert!(
        Path::new(recorded).is_absolute() && recorded.ends_with("data.csv"),
        "{recorded}"
    );
    assert!(
        summary["data"]["description"].as_str().unwrap().contains("2 classes"),
        "{summary}"
    );
    // Reading options not given are not settings of the run.
    assert!(summary["config"].get("label_column").is_none(), "{summary}");
    assert_eq!(summary["history"].as_array().unwrap().len(), 1);
    assert!(out.join("metrics.jsonl").is_file());
    let checkpoint = json(&out.join("checkpoint.json"));
    assert_eq!(checkpoint["data"], summary["data"]);

    // The run resumes on the same file (its data is checked against the checkpoint's record).
    let resumed = train(&["--resume", o, "--epochs", "2", "--quiet"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(json(&out.join("summary.json"))["history"].as_array().unwrap().len(), 2);

    // Another file at the same path is refused.
    let mut fewer = separable_csv();
    fewer.push_str("9,9,9,setosa\n9,9,9,virginica\n9,9,9,setosa\n9,9,9,virginica\n9,9,9,setosa\n");
    std::fs::write(&data, fewer).unwrap();
    let changed = train(&["--resume", o, "--epochs", "3", "--quiet"]);
    failed_with(&changed, &["resume it with the data it was made with"]);
}

#[test]
fn reading_flags_are_settings_of_the_run() {
    // The label in the first column, by index, and a split seed.
    let mut text = String::new();
    for i in 0..30 {
        let class = ["a", "b", "c"][i % 3];
        text.push_str(&format!("{class},{},{}\n", i % 3, (i % 3) * 2));
    }
    let (_dir, data) = csv("train-csv-flags", &text);
    let (_out_dir, out) = scratch_path("train-csv-flags-out");
    let o = out.to_str().unwrap();
    let flags = ["--label-column", "0", "--split-seed", "3", "--test-fraction", "0.3"];
    // No --model: a CSV trains the MLP.
    let quick = ["--batch-size", "8", "--epochs", "1", "--quiet"];
    let run = train(&[&["--data", &data, "--out", o][..], &flags, &quick].concat());
    assert!(run.status.success(), "{}", stderr(&run));
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["model"], "mlp");
    assert_eq!(summary["config"]["label_column"], "0");
    assert_eq!(summary["config"]["split_seed"], 3);
    assert_eq!(summary["config"]["test_fraction"], 0.3);
    assert_eq!(summary["data"]["classes"], 3);
    assert_eq!(summary["data"]["test"], 9, "30 % of each class of 10: {summary}");
}

#[test]
fn an_image_folder_trains() {
    let data = scratch("train-images");
    flatmin_lab::data::shapes::write(&data, 8, 12, 1).unwrap();
    let (_out_dir, out) = scratch_path("train-images-out");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let flags = ["--image-size", "10", "--channels", "1"];
    let run = train(&[&["--data", d, "--out", o][..], &flags, &QUICK].concat());
    assert!(run.status.success(), "{}", stderr(&run));
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["data"]["kind"], "image-folder");
    assert_eq!(summary["config"]["image_size"], "10");
    assert_eq!(summary["config"]["channels"], 1);
    let description = summary["data"]["description"].as_str().unwrap();
    assert!(
        description.contains("10×10") || description.contains("10x10"),
        "{description}"
    );
    assert!(summary["test_accuracy"].as_f64().unwrap() >= 0.0);
}

#[test]
fn named_datasets_by_data_and_by_the_dataset_alias() {
    let limits = ["--train-limit", "64", "--test-limit", "32"];
    for flag in ["--data", "--dataset"] {
        let (_out_dir, out) = scratch_path("train-named-out");
        let o = out.to_str().unwrap();
        let run = train(&[&[flag, "fashion-mnist-subset", "--out", o][..], &limits, &QUICK].concat());
        assert!(run.status.success(), "{flag}: {}", stderr(&run));
        let summary = json(&out.join("summary.json"));
        assert_eq!(summary["dataset"], "fashion-mnist-subset", "{flag}");
        assert_eq!(summary["data"]["kind"], "named", "{flag}");
        assert_eq!(summary["data"]["train"], 64, "{flag}");
    }
    // A name of the list is the dataset; anything else a path.
    assert_eq!(resolve_data("mnist").unwrap(), DataSource::Named("mnist"));
    for name in DATASETS {
        assert!(matches!(resolve_data(name), Ok(DataSource::Named(_))), "{name}");
    }
}

#[test]
fn a_missing_path_or_an_unknown_name_is_a_clear_error() {
    let missing = train(&[&["--data", "/nonexistent/flatmin/my.csv"][..], &QUICK].concat());
    failed_with(
        &missing,
        &["flatmin train: --data /nonexistent/flatmin/my.csv: no such file or folder"],
    );
    let unknown = train(&[&["--dataset", "imagenet"][..], &QUICK].concat());
    let err = failed_with(
        &unknown,
        &["--data `imagenet`: not a named dataset", "no file or folder"],
    );
    for name in DATASETS {
        assert!(err.contains(name), "{name} not listed: {err}");
    }
    // The reading flags belong to user data, --data-dir to the named datasets.
    let named = train(&[&["--data", "mnist", "--label-column", "0"][..], &QUICK].concat());
    failed_with(&named, &["--label-column: applies to the user's data"]);
    let (_dir, data) = csv("train-csv-datadir", &separable_csv());
    let with_dir = train(&[&["--data", &data, "--data-dir", "/tmp"][..], &QUICK].concat());
    failed_with(&with_dir, &["--data-dir /tmp: applies to the named datasets"]);
    // A CSV's features are not images; images must be large enough for the convolutions.
    let cnn = train(&["--data", &data, "--model", "cnn", "--batch-size", "8", "--quiet"]);
    failed_with(&cnn, &["--model cnn: a CSV's features train an MLP"]);
    let images = scratch("train-tiny-images");
    flatmin_lab::data::shapes::write(&images, 4, 8, 1).unwrap();
    let tiny = train(&[
        "--data",
        images.to_str().unwrap(),
        "--image-size",
        "3",
        "--model",
        "cnn",
        "--quiet",
    ]);
    failed_with(
        &tiny,
        &["--model cnn: the images are 3×3 pixels, expected at least 4×4"],
    );
    let bad_fraction = train(&[&["--data", &data, "--test-fraction", "1.5"][..], &QUICK].concat());
    failed_with(
        &bad_fraction,
        &["--test-fraction 1.5: expected a fraction strictly between 0 and 1"],
    );
}

#[test]
fn a_malformed_csv_is_the_same_error_as_in_compare() {
    let (_dir, data) = csv("train-csv-ragged", "a,b,c\n1,2,x\n3,4,y\n5,6\n7,8,x\n");
    let needle = "data.csv:4: ragged row: 2 cells, but the first row has 3";
    let trained = train(&[&["--data", &data][..], &QUICK].concat());
    let train_err = failed_with(&trained, &["flatmin train: ", needle]);
    let compared = bin()
        .args(["compare", "--data", &data, "--epochs", "1", "--quiet"])
        .output()
        .unwrap();
    let compare_err = failed_with(&compared, &["flatmin compare: ", needle]);
    let message = |err: &str| err.split_once(": ").map(|(_, m)| m.trim().to_string()).unwrap();
    assert_eq!(message(&train_err), message(&compare_err));
}

#[test]
fn a_sweep_reads_the_users_data_with_the_same_flags() {
    // The label in the first column: without --label-column the last (numeric) column would be
    // read as the label, so the flag must reach the sweep's runs.
    let mut text = String::from("species,x,y\n");
    for i in 0..24 {
        let (class, base) = if i % 2 == 0 { ("a", 0.0) } else { ("b", 4.0) };
        text.push_str(&format!("{class},{},{}\n", base + f64::from(i) * 0.01, base));
    }
    let (_dir, data) = csv("sweep-csv", &text);
    let (_out_dir, out) = scratch_path("sweep-csv-out");
    let run = bin()
        .args(["sweep", "--optimizers", "sgd", "--seeds", "1", "--data", &data])
        .args(["--label-column", "species", "--test-fraction", "0.25"])
        .args(["--batch-size", "8", "--epochs", "1", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let spec = json(&out.join("sweep.json"));
    assert_eq!(spec["base"]["dataset"], Value::from(data.as_str()), "{spec}");
    assert_eq!(spec["base"]["label_column"], "species", "{spec}");
    assert_eq!(spec["base"]["test_fraction"], 0.25, "{spec}");
    assert_eq!(spec["base"]["model"], "mlp", "a CSV trains the MLP: {spec}");
    // The one run read two classes and held out a quarter of each.
    let summaries: Vec<Value> = walk(&out)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "summary.json"))
        .map(|p| json(&p))
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(summaries[0]["data"]["classes"], 2, "{}", summaries[0]);
    assert_eq!(summaries[0]["data"]["test"], 6, "{}", summaries[0]);
    // A reading flag with a named dataset is refused by the sweep as by train.
    let named = bin()
        .args(["sweep", "--optimizers", "sgd", "--data", "mnist", "--label-column", "0"])
        .args(["--out", "/nonexistent/flatmin/sweep"])
        .output()
        .unwrap();
    let err = stderr(&named);
    assert!(
        !named.status.success() && err.contains("--label-column: applies to the user's data"),
        "{err}"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
