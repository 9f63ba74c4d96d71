//! The integration tests of `flatmin`, one module per subject, built as one
//! binary so that a test build links Burn once for them all.

mod batchnorm;
mod cheaper;
mod closed_form;
mod common;
mod equivalences;
mod faults;
mod hessian;
mod lean_step;
mod mixed_precision;
mod msam;
mod properties;
mod records;
mod registry;
mod report;
mod timings;
mod two_step;
mod unified;
// The wgpu test set: `cargo test --features wgpu` (README, GPU).
#[cfg(feature = "wgpu")]
mod launches;
#[cfg(feature = "wgpu")]
mod wgpu;
