//! The integration tests of `flatmin-learner`, one module per subject, built as one
//! binary so that a test build links Burn once for them all.

mod common;
// The data-parallel checks on two CUDA GPUs: `scripts/gpu-check`.
#[cfg(feature = "cuda")]
mod gpu;
mod learner;
mod mixed;
mod parallel;
// The wgpu test set: `cargo test --features wgpu` (README, GPU).
#[cfg(feature = "wgpu")]
mod wgpu;
