//! The integration tests of `flatmin-cli`, one module per subject, built as one
//! binary so that a test build links Burn once for them all.

mod bench_cli;
mod cli_replay;
mod common;
mod compare;
mod compare_grid;
mod conformance;
mod device_cli;
mod doc_counts;
mod experiments_cli;
mod faults_cli;
mod outdir_cli;
mod precision_cli;
mod reproduction_page;
mod result_pages;
mod train_cli;
mod train_data;
mod train_user_data;
mod user_data;
// The wgpu test set: `cargo test --features wgpu` (README, GPU).
#[cfg(feature = "wgpu")]
mod wgpu;
// The LibTorch test set: `cargo test --features tch` with PyTorch 2.9.0 (BENCHMARKS.md); not in CI.
#[cfg(feature = "tch")]
mod tch;

// `tests/fuzz_corpus.rs` stays a binary of its own: it installs a capped global allocator.
