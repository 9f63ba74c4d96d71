//! `flatmin replay`: runs one conformance case (the format of
//! `crates/flatmin-cli/tests/fixtures/FORMAT.md`) through the library and records every step.
//!
//! The case gives the model (a tanh MLP of linear layers, weights `[out, in]`), the data, the
//! initial weights and the hyperparameters of a reference implementation; the replay maps them
//! onto a [`SamConfig`](flatmin::SamConfig) and trains in float64 on the flex backend, or in
//! float32 on another device ([`run_on`]). ESAM's random choices come from the recorded masks and
//! selections, bSAM's noise from the recorded draws; a step whose recorded `extra.second_pass`
//! the replay does not match is an error.
//!
//! One room per concern:
//! - [`field`]: typed reading of JSON with the path of every field in its errors;
//! - [`case`]: the case file's serde types and the checks that make a [`Case`];
//! - [`config`]: the hyperparameters as a library configuration, through the registry;
//! - [`model`]: the MLP;
//! - [`run`](mod@run): the replay itself, with the recorded randomness injected;
//! - [`diff`]: the differences to the recording, the bars, the result file.

pub mod case;
pub mod config;
pub mod diff;
pub mod field;
pub mod model;
pub mod run;

pub use case::{Case, CaseFile, CaseFileError, Nested, ParseError, RecordedStep};
pub use config::{ConfigError, OPTIMIZERS, config_for};
pub use diff::{bar_for, max_abs_diff, max_rel_diff, result_json, write_json_atomic};
pub use field::{FieldError, Problem, Segment};
pub use model::{Layer, Mlp};
pub use run::{Replay, ReplayedStep, run, run_in, run_on};

/// A case that cannot be replayed, with the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CaseError(pub String);
