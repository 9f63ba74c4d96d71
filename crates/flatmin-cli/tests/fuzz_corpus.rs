//! How fuzzing runs in CI: every input kept under `fuzz/corpus/<target>/` (the seeds and the
//! minimized corpus the fuzzer grew) and `fuzz/regressions/<target>/` (every input that once
//! crashed, hung or allocated too much) goes through the same entry points as the fuzz targets
//! (`flatmin_lab::fuzzing`), under the same allocation cap. A panic or an oversized allocation
//! fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flatmin_lab::data::DataError;
use flatmin_lab::data::idx;
use flatmin_lab::fuzzing::{self, CappedAlloc};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn replay(target: &str) {
    let started = Instant::now();
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    assert!(
        corpus
            .iter()
            .any(|p| p.file_name().unwrap().to_string_lossy().starts_with("seed-")),
        "fuzz/corpus/{target} lost its seeds (fuzz/scripts/make-seeds.py writes them)"
    );
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| assert!(fuzzing::run_target(target, &data)));
        if result.is_err() {
            failed.push(path.display().to_string());
        }
    }
    eprintln!(
        "{target}: {} corpus inputs and {} regressions replayed in {:.2} s",
        corpus.len(),
        regressions.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "{target}: these inputs panic: {failed:#?}");
}

#[test]
fn idx_corpus_and_regressions_replay_without_panic() {
    replay("idx");
}

#[test]
fn cifar_corpus_and_regressions_replay_without_panic() {
    replay("cifar");
}

#[test]
fn replay_case_corpus_and_regressions_replay_without_panic() {
    replay("replay_case");
}

#[test]
fn train_config_corpus_and_regressions_replay_without_panic() {
    replay("train_config");
}

#[test]
fn checkpoint_corpus_and_regressions_replay_without_panic() {
    replay("checkpoint");
}

/// The optimizers whose checkpoints seed the checkpoint target: every kind of state (SGD
/// momentum, Adam's two moments, F-SAM's EMA, ESAM's mask generator).
const CHECKPOINT_SEEDS: [(&str, &str); 5] = [
    ("sgd", "sgd"),
    ("sam", "sgd"),
    ("fsam", "sgd"),
    ("esam", "sgd"),
    ("sam", "adamw"),
];

/// The seeds are whole checkpoints that resume: if the reader or the writer changes so that
/// they do not, this fails (and `write_checkpoint_seeds` writes new ones).
#[test]
fn checkpoint_seeds_are_checkpoints_that_resume() {
    for (optimizer, base) in CHECKPOINT_SEEDS {
        let seed = fuzzing::checkpoint_seed(optimizer, base);
        assert!(fuzzing::checkpoint_resumes(&seed), "{optimizer} on {base}");
        let kept = fuzz_dir()
            .join("corpus/checkpoint")
            .join(format!("seed-{optimizer}-{base}"));
        let kept = std::fs::read(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display()));
        assert!(
            fuzzing::checkpoint_resumes(&kept),
            "the kept seed of {optimizer} on {base}"
        );
    }
    // A truncated optimizer file does not, nor the model file or the optimizer state of
    // another model (before the state was checked against the model, the step panicked).
    let seed = fuzzing::checkpoint_seed("fsam", "sgd");
    assert!(!fuzzing::checkpoint_resumes(&seed[..seed.len() - 9]));
    for (optimizer, base) in CHECKPOINT_SEEDS {
        for (model, state) in [(3, 4), (4, 3), (4, 4)] {
            let input = fuzzing::checkpoint_input(optimizer, base, model, state);
            assert!(
                !fuzzing::checkpoint_resumes(&input),
                "{optimizer} on {base}: {model} and {state} classes"
            );
        }
    }
}

/// Writes the seeds of the checkpoint target into fuzz/corpus/checkpoint (run by hand:
/// `cargo test -p flatmin-cli --test fuzz_corpus -- --ignored write_checkpoint_seeds`).
#[test]
#[ignore]
fn write_checkpoint_seeds() {
    let dir = fuzz_dir().join("corpus/checkpoint");
    std::fs::create_dir_all(&dir).unwrap();
    for (optimizer, base) in CHECKPOINT_SEEDS {
        std::fs::write(
            dir.join(format!("seed-{optimizer}-{base}")),
            fuzzing::checkpoint_seed(optimizer, base),
        )
        .unwrap();
    }
    // What the reader once let through to a panic.
    let regressions = fuzz_dir().join("regressions/checkpoint");
    std::fs::create_dir_all(&regressions).unwrap();
    std::fs::write(
        regressions.join("optimizer-state-of-another-model-panics-in-the-step"),
        fuzzing::checkpoint_input("fsam", "sgd", 3, 4),
    )
    .unwrap();
}

#[test]
fn every_target_has_a_corpus_folder_and_a_fuzz_target() {
    for target in fuzzing::TARGETS {
        assert!(fuzz_dir().join("corpus").join(target).is_dir(), "{target}");
        assert!(
            fuzz_dir().join("fuzz_targets").join(format!("{target}.rs")).is_file(),
            "{target}"
        );
    }
}

/// A gzip file of a few hundred kilobytes whose header announces one 1×1 image but which expands
/// to 512 MiB: decompression stops right after the announced size, so the reader answers with
/// the exact trailing-bytes error without ever holding more than a few bytes (the allocation
/// cap of this test binary is 128 MiB).
#[test]
fn a_gzip_bomb_behind_a_small_header_is_an_error_without_a_large_allocation() {
    let raw = idx::encode_idx_images(1, 1, 1, &[0]);
    let chunk = vec![0u8; 1 << 20];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&raw).unwrap();
    for _ in 0..512 {
        encoder.write_all(&chunk).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    match idx::decode_idx_images(Path::new("bomb.gz"), &bomb) {
        Err(DataError::TrailingBytes { expected, found, .. }) => {
            assert_eq!(expected, 17);
            assert_eq!(found, 17 + (512u64 << 20));
        }
        other => panic!("expected trailing bytes, got {other:?}"),
    }
    // The same holds for a labels file.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&idx::encode_idx_labels(2, &[1, 2])).unwrap();
    for _ in 0..256 {
        encoder.write_all(&chunk).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(matches!(
        idx::decode_idx_labels(Path::new("bomb.gz"), &bomb),
        Err(DataError::TrailingBytes { .. })
    ));
}
