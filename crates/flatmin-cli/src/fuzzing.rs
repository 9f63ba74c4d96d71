//! The entry points of the fuzz targets (`fuzz/`, run with `cargo fuzz`) and of their corpus
//! replay (`tests/fuzz_corpus.rs`, part of `cargo test`): each takes arbitrary bytes, hands them
//! to one reader of untrusted input, and checks what a success promises. A malformed input must
//! come back as a typed error; a panic here, in the fuzzer or in the replay, is a bug.
//!
//! Not part of the laboratory's interface: kept public only so that the fuzz crate and the tests
//! run exactly the same code.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;

use serde_json::Value;

use crate::data::idx::{self, IdxFile, IdxSplitFiles};
use crate::data::{Split, cifar};
use crate::models::{Classifier, InputShape, Mlp};
use crate::replay;
use crate::train::{self, TrainConfig};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use flatmin::Batch;

/// The largest single allocation the fuzz targets and the corpus replay allow: fuzz inputs are a
/// few kilobytes, so anything near this size was sized by an untrusted header or length.
pub const ALLOCATION_CAP: usize = 128 << 20;

/// The system allocator, refusing any single allocation above [`ALLOCATION_CAP`] (the process
/// then aborts with "memory allocation of N bytes failed", which libFuzzer reports as a crash).
/// Install it with `#[global_allocator]` in a fuzz target or test binary.
pub struct CappedAlloc;

// SAFETY: every call is forwarded unchanged to `System`, except that an oversized request
// returns null, which `GlobalAlloc` allows for any failed allocation.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The names of the fuzz targets, one folder each under `fuzz/corpus/` and `fuzz/regressions/`.
pub const TARGETS: [&str; 5] = ["idx", "cifar", "replay_case", "train_config", "checkpoint"];

/// Runs the entry point of target `name` on `data`; `false` for an unknown name.
pub fn run_target(name: &str, data: &[u8]) -> bool {
    match name {
        "idx" => idx(data),
        "cifar" => cifar(data),
        "replay_case" => replay_case(data),
        "train_config" => train_config(data),
        "checkpoint" => checkpoint(data),
        _ => return false,
    }
    true
}

/// Splits `data` into `N` parts: every part but the last is a little-endian `u16` length and
/// that many bytes (cut short at the end of the data); the last part is the rest.
fn parts<const N: usize>(mut data: &[u8]) -> [&[u8]; N] {
    let mut out = [&[][..]; N];
    for (i, part) in out.iter_mut().enumerate() {
        if i == N - 1 {
            *part = data;
            break;
        }
        let len = match data {
            [a, b, rest @ ..] => {
                data = rest;
                usize::from(u16::from_le_bytes([*a, *b]))
            }
            _ => {
                data = &[];
                0
            }
        };
        let (head, tail) = data.split_at(len.min(data.len()));
        *part = head;
        data = tail;
    }
    out
}

fn check_split(split: &Split, classes: usize) {
    for set in [&split.train, &split.test] {
        assert!(!set.is_empty(), "a split never holds an empty set");
        assert_eq!(set.images.len(), set.len() * set.image_len(), "pixels match the count");
        assert!(set.labels.iter().all(|&l| usize::from(l) < classes), "labels in range");
        assert_eq!(set.class_names.len(), classes);
    }
    assert_eq!(
        [split.train.channels, split.train.height, split.train.width],
        [split.test.channels, split.test.height, split.test.width]
    );
}

/// The IDX reader: the whole input as an images file, as a labels file and as (maybe) gzip,
/// then split into four files (see [`parts`]) for a whole training/test split.
pub fn idx(data: &[u8]) {
    let path = Path::new("fuzz.idx");
    if let Ok(images) = idx::decode_idx_images(path, data) {
        assert!(images.count > 0 && images.rows > 0 && images.cols > 0);
        assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
    }
    if let Ok(labels) = idx::decode_idx_labels(path, data) {
        assert!(!labels.is_empty());
    }
    if let Ok(raw) = idx::decompress_if_gzip(path, data)
        && !data.starts_with(&[0x1f, 0x8b])
    {
        assert_eq!(&raw[..], data, "non-gzip input is passed through");
    }
    let [a, b, c, d] = parts::<4>(data);
    let file = |bytes| IdxFile { path, bytes };
    let files = IdxSplitFiles {
        train_images: file(a),
        train_labels: file(b),
        test_images: file(c),
        test_labels: file(d),
    };
    if let Ok(split) = idx::split_from_idx_bytes(files, &idx::MNIST_CLASS_NAMES) {
        check_split(&split, 10);
    }
}

/// The CIFAR readers: the input as one CIFAR-10 file and as one CIFAR-100 file.
pub fn cifar(data: &[u8]) {
    let path = Path::new("fuzz.bin");
    for (result, record_len, classes) in [
        (cifar::decode_cifar10(path, data), cifar::CIFAR10_RECORD_LEN, 10),
        (cifar::decode_cifar100(path, data), cifar::CIFAR100_RECORD_LEN, 100),
    ] {
        if let Ok((images, labels)) = result {
            assert_eq!(labels.len(), data.len() / record_len);
            assert_eq!(images.len(), labels.len() * cifar::CIFAR_IMAGE_LEN);
            assert!(labels.iter().all(|&l| usize::from(l) < classes));
        }
    }
}

/// Cases this small are also replayed (and their result written out as JSON), so that what
/// parses is also known to run.
const REPLAY_MAX_WEIGHTS: usize = 256;
const REPLAY_MAX_ROWS: usize = 64;
const REPLAY_MAX_STEPS: usize = 4;

/// The conformance-case reader: the input as JSON, parsed as a case (which maps the
/// hyperparameters onto a library configuration and validates it), and, when it parses, the
/// hyperparameter mapping again on its own; a small valid case is also replayed.
pub fn replay_case(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let (Some(optimizer), Some(hyper)) = (
        value.get("optimizer").and_then(Value::as_str),
        value.get("hyperparams").and_then(Value::as_object),
    ) && let Ok((config, lr)) = replay::config_for(optimizer, hyper)
    {
        assert!(config.validate().is_ok(), "a mapped configuration is valid");
        assert!(lr.is_finite() && lr >= 0.0, "a mapped learning rate is usable");
        assert!(config.init().is_ok());
    }
    let Ok(case) = replay::Case::parse(&value) else {
        return;
    };
    let weights: usize = case.shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    if weights > REPLAY_MAX_WEIGHTS || case.rows() > REPLAY_MAX_ROWS || case.steps().len() > REPLAY_MAX_STEPS {
        return;
    }
    if let Ok(result) = replay::run(&case) {
        assert_eq!(result.steps.len(), case.steps().len());
        let json = replay::result_json(&case, &result);
        assert!(json["steps"].is_array());
    }
}

/// The config-file reader: the input as a `--config` file, then the checks a run makes before
/// it starts (which map the settings onto a library configuration).
pub fn train_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = TrainConfig::from_json(text) else {
        return;
    };
    if config.check().is_ok() {
        let sam = config.sam_config().expect("a checked config maps");
        assert!(sam.init().is_ok(), "a checked config builds its optimizer");
        // What a checkpoint stores must read back as the same run.
        let text = serde_json::to_string(&config).expect("a config serializes");
        let back = TrainConfig::from_json(&text).expect("a written config reads back");
        assert_eq!(
            serde_json::to_value(&back).ok(),
            serde_json::to_value(&config).ok(),
            "config round trip"
        );
    }
}

/// The shape of the model the checkpoint target loads into: an MLP on 2×2 one-channel images,
/// 3 classes (about 8 kB of weights, so that a whole checkpoint fits a fuzz input).
const CHECKPOINT_SHAPE: InputShape = InputShape {
    channels: 1,
    height: 2,
    width: 2,
    classes: 3,
};

/// The checkpoint reader of `--resume`: the input is three parts (see [`parts`]), the text of a
/// `checkpoint.json`, a model file and an optimizer file (burnpack). The checkpoint's config
/// (when it reads and checks) or F-SAM's (momentum and EMA buffers) builds the optimizer; the
/// model is [`CHECKPOINT_SHAPE`]'s MLP. What a success promises: the run can go on, one
/// training step runs (it may report a non-finite loss, never panic) and the state saves again.
pub fn checkpoint(data: &[u8]) {
    checkpoint_resumes(data);
}

/// [`checkpoint`]; `true` when all three parts loaded and the step ran.
pub fn checkpoint_resumes(data: &[u8]) -> bool {
    let [json, model, optimizer] = parts::<3>(data);
    let fallback = || TrainConfig {
        optimizer: "fsam".into(),
        ..TrainConfig::default()
    };
    let config = std::str::from_utf8(json)
        .ok()
        .and_then(|text| train::checkpoint_files_from_text(text).ok())
        .map(|(config, model_file, optimizer_file)| {
            for name in [&model_file, &optimizer_file] {
                assert!(
                    !name.contains('/') && !name.starts_with('.') && !name.is_empty(),
                    "a checkpoint names files in its own folder only: {name:?}"
                );
            }
            config
        })
        .filter(|c| c.check().is_ok())
        .unwrap_or_else(fallback);
    let device = Device::flex().autodiff();
    let Ok(model) = train::load_model_bytes(Mlp::new(CHECKPOINT_SHAPE, &device), model.to_vec()) else {
        return false;
    };
    let sam = config.sam_config().expect("a checked config maps");
    // As `--resume` reads it: loaded, then checked against the model it will train.
    let optim = sam.init().expect("a checked config builds");
    let Ok(mut optim) =
        flatmin::SamRecord::from_bytes(optimizer.to_vec(), &device).and_then(|r| optim.load_record(r, &model))
    else {
        return false;
    };
    let (x, y) = checkpoint_batch(&device);
    let (model, _report) = optim.step(0.01, model, |m: &Mlp, batch: Batch| {
        flatmin::per_sample_cross_entropy(m.forward(batch.rows(x.clone())), batch.rows_int(y.clone()))
    });
    assert!(optim.record().to_bytes().is_ok(), "a loaded state saves again");
    let [n, classes] = model.forward(x).dims();
    assert_eq!([n, classes], [4, CHECKPOINT_SHAPE.classes]);
    true
}

fn checkpoint_batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let pixels: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Tensor::from_data(TensorData::new(pixels, [4, 1, 2, 2]), device);
    let y = Tensor::from_data(TensorData::new(vec![0i64, 1, 2, 1], [4]), device);
    (x, y)
}

/// A whole, valid input of the checkpoint target (a seed of its corpus): the checkpoint of a
/// run of `optimizer` on `base` after two steps of [`CHECKPOINT_SHAPE`]'s MLP.
pub fn checkpoint_seed(optimizer: &str, base: &str) -> Vec<u8> {
    checkpoint_input(optimizer, base, CHECKPOINT_SHAPE.classes, CHECKPOINT_SHAPE.classes)
}

/// [`checkpoint_seed`], with the model file and the optimizer state taken from runs of the
/// same MLP with `model_classes` and `optimizer_classes` outputs (other than 3: the files of
/// another model).
pub fn checkpoint_input(optimizer: &str, base: &str, model_classes: usize, optimizer_classes: usize) -> Vec<u8> {
    let model_bytes = checkpoint_parts(optimizer, base, model_classes).1;
    let (ckpt, _, optim_bytes) = checkpoint_parts(optimizer, base, optimizer_classes);
    let mut out = Vec::new();
    for part in [ckpt, model_bytes] {
        out.extend_from_slice(&u16::try_from(part.len()).expect("a part under 64 kB").to_le_bytes());
        out.extend_from_slice(&part);
    }
    out.extend_from_slice(&optim_bytes);
    out
}

/// The checkpoint.json, model file and optimizer file of two steps of `optimizer` on the MLP
/// with `classes` outputs.
fn checkpoint_parts(optimizer: &str, base: &str, classes: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let config = TrainConfig {
        optimizer: optimizer.into(),
        base: base.into(),
        epochs: 1,
        ..TrainConfig::default()
    };
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut model = Mlp::new(
        InputShape {
            classes,
            ..CHECKPOINT_SHAPE
        },
        &device,
    );
    let mut optim = config.sam_config().unwrap().init().unwrap();
    let (x, y) = checkpoint_batch(&device);
    for _ in 0..2 {
        let (next, report) = optim.step(0.01, model, |m: &Mlp, batch: Batch| {
            flatmin::per_sample_cross_entropy(m.forward(batch.rows(x.clone())), batch.rows_int(y.clone()))
        });
        report.expect("a finite step");
        model = next;
    }
    let history = serde_json::json!({
        "epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "sharpness": null, "test_loss": 1.0,
        "test_accuracy": 0.5, "lr": 0.01, "skipped_steps": 0, "mean_step_ms": 1.0, "seconds": 0.1
    });
    let ckpt = serde_json::json!({
        "config": config, "epoch": 1, "steps": 2, "seconds": 0.1, "step_ms_total": 2.0,
        "model_file": "model-e1.bpk", "optimizer_file": "optimizer-e1.bpk", "history": [history],
    });
    let model_bytes = model.into_record().into_bytes().expect("a model saves").to_vec();
    let optim_bytes = optim.record().to_bytes().expect("a state saves");
    (serde_json::to_vec(&ckpt).unwrap(), model_bytes, optim_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_by_length_prefixes() {
        let data = [2, 0, b'a', b'b', 1, 0, b'c', 9, 9, b'x', b'y', b'z'];
        assert_eq!(parts::<4>(&data), [&b"ab"[..], &b"c"[..], &b"xyz"[..], &b""[..]]);
        assert_eq!(parts::<3>(&[5]), [&b""[..], &b""[..], &b""[..]]);
        assert!(!run_target("nope", b""));
    }
}
