//! # flatmin-learner: the SAM family where Burn users already train
//!
//! * [`SamLearner`] wraps a model so that Burn's `Learner` (burn-train 0.22.1) trains it with
//!   any flatmin optimizer whose update Burn's optimizer can apply (every preset but bSAM and
//!   MSAM): both passes and ESAM's selection run in `TrainStep::step`, the Learner's own
//!   `ModuleOptimizer` applies the combined gradient as the base optimizer, and its
//!   learning-rate scheduler, metrics, checkpoints and early stopping work unchanged. The
//!   checkpoints carry the SAM state too (F-SAM's average, ESAM's mask generator, LookSAM's
//!   stored direction, AE-SAM's statistics, the step count): a resumed Learner ends where an
//!   uninterrupted one does. The model implements [`SamStep`] (one forward pass on the
//!   requested samples) instead of `TrainStep`.
//! * Data-parallel SAM on Burn's `MultiDevice` and DDP execution strategies ([`DataParallel`]):
//!   by default each device perturbs with its own first-pass gradient (m-sharpness with `m` the
//!   per-device batch) and only the update is averaged; [`AscentSync`] offers the synchronized
//!   ascent and groups of devices.
//! * [`MSharpness`]: the same m-sharpness on one device, the batch split into chunks of `m`.
//! * Mixed precision ([`SamLearnerConfig::with_mixed_precision`]): the passes in bf16 or f16 on
//!   a copy of the f32 model, which stays the master weights Burn's optimizer updates; norms and
//!   perturbation in f32, dynamic loss scaling for f16.
//!
//! See the crate's README for the Learner example, mixed precision, several GPUs, and how
//! m-sharpness bears on the batch size and ρ.

#![warn(missing_docs)]

mod adapter;
mod chunked;
mod engine;
mod parallel;
mod state;
mod step;

pub use adapter::{SamHandle, SamLearner, SamLearnerConfig, SamLearnerStats, SamState};
pub use chunked::MSharpness;
pub use engine::{SamGradients, SkipReason, apply_sharpness};
pub use flatmin::bridge::{distributed_flags, is_distributed, local_view};
pub use parallel::{AscentSync, DataParallel};
pub use step::{SamOutput, SamStep};
