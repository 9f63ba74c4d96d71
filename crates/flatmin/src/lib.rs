//! # flatmin: the sharpness-aware minimization family for Burn
//!
//! SAM finds flat minima: each step takes the gradient `g` at the weights `w`, moves to `w + e`
//! in the direction that raises the loss most within a radius ρ, takes the gradient `g_p`
//! there, and updates `w` with it. flatmin implements the family — SAM, ASAM (both adaptive
//! forms), ESAM, F-SAM, WSAM, GSAM, Fisher-SAM — as one step with three choices:
//!
//! * a **perturbation** ([`Geometry`], optional [`FriendlyConfig`] and [`SwpConfig`]),
//! * a **selection** of the samples the second pass uses ([`Selection`]),
//! * a **combination** of `g` and `g_p` ([`Combination`]),
//!
//! applied by a **base optimizer** with PyTorch's semantics ([`BaseConfig`]). Every mixture is a
//! valid configuration; [`SamConfig::preset`] names the published ones.
//!
//! ## One call per step
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use flatmin::{Batch, SamConfig};
//!
//! let device = Device::flex().autodiff();
//! let mut model: Linear = LinearConfig::new(4, 3).init(&device);
//! let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; 32], [8, 4]), &device);
//! let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0, 1, 2, 0, 1], [8]), &device);
//!
//! let mut optim = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 5e-4)).unwrap().init().unwrap();
//! let (next, report) = optim.step(0.1, model, |m: &Linear, batch: Batch| {
//!     let logits = m.forward(batch.rows(x.clone()));
//!     let targets = batch.rows_int(y.clone());
//!     flatmin::per_sample_cross_entropy(logits, targets)
//! });
//! model = next;
//! let report = report.expect("finite step");
//! assert!(report.perturbation_norm > 0.0);
//! # let _ = model;
//! ```
//!
//! ## Two steps, passes run by the caller
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::GradientsParams;
//! use burn::tensor::{Device, Tensor, TensorData};
//! use flatmin::SamConfig;
//!
//! let device = Device::flex().autodiff();
//! let model: Linear = LinearConfig::new(4, 1).init(&device);
//! let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 16], [4, 4]), &device);
//! let loss = |m: &Linear| m.forward(x.clone()).square().mean();
//!
//! let mut optim = SamConfig::preset("gsam", SamConfig::sgd_base(0.0, 0.0)).unwrap().init().unwrap();
//! let first = optim.first_pass_model(&model);
//! let grads = GradientsParams::from_grads(loss(&first).backward(), &first);
//! let ascent = optim.perturb(0.05, &model, &grads).expect("finite gradient");
//! let grads_p = GradientsParams::from_grads(loss(ascent.model()).backward(), ascent.model());
//! let (model, report) = optim.update(0.05, model, ascent, &grads_p);
//! assert!(report.is_ok());
//! # let _ = model;
//! ```
//!
//! BatchNorm running statistics are updated by the first pass only; the perturbed model of the
//! second pass has its own. A non-finite gradient in either pass skips the step and leaves the
//! weights and the optimizer state as they were; the caller gets the reason.
//!
//! On Linux, call [`keep_freed_memory`] first thing in `main`: with glibc's default allocator
//! settings, Burn's CPU backend page-faults its memory in again at every step (2.7 – 3.3× slower
//! steps on two cores).

#![warn(missing_docs)]

mod base;
mod bridge;
mod combination;
mod config;
mod error;
pub mod hessian;
mod loss;
mod memory;
mod perturbation;
mod record;
mod report;
mod rng;
mod sam;
mod schedule;
mod selection;
mod vector;

pub use base::{AdamConfig, BaseConfig, BaseOptimizer, BaseState, SgdConfig};
pub use bridge::{Layout, ParamEntry, inference_mode_tracked};
pub use combination::Combination;
pub use config::{PRESETS, SamConfig};
pub use error::{ConfigError, Pass, RecordError, StepError};
pub use loss::per_sample_cross_entropy;
pub use memory::keep_freed_memory;
pub use perturbation::{FriendlyConfig, Geometry, SwpConfig, SwpGranularity};
pub use report::{StepReport, StepTimings};
pub use rng::Rng;
pub use sam::Descent;
pub use sam::{Ascent, Batch, MaskSource, Sam};
pub use schedule::RhoSchedule;
pub use selection::{SampleSelector, Selection, SelectionRule, SharpestSamples, select_sharpest};
pub use vector::ParamVector;

/// Burn, re-exported at the version flatmin is built against.
pub use burn;
