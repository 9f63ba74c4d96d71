//! # flatmin: the sharpness-aware minimization family for Burn
//!
//! SAM finds flat minima: each step takes the gradient `g` at the weights `w`, moves to `w + e`
//! in the direction that raises the loss most within a radius ρ, takes the gradient `g_p`
//! there, and updates `w` with it. flatmin implements the family — SAM, ASAM (both adaptive
//! forms), ESAM, F-SAM, WSAM, GSAM, Fisher-SAM, the members that save passes (SAM every k
//! steps, randomized sharpness training, AE-SAM, LookSAM) and Bayesian SAM — as one step with
//! four choices:
//!
//! * a **perturbation** ([`Geometry`], optional [`FriendlyConfig`] and [`SwpConfig`]),
//! * a **selection** of the samples the second pass uses ([`Selection`]),
//! * a **combination** of `g` and `g_p` ([`Combination`]),
//! * a **schedule** of the steps that run the second pass at all ([`PassSchedule`]),
//!
//! applied by a **base optimizer** with PyTorch's semantics ([`BaseConfig`]). Every mixture is a
//! valid configuration; [`SamConfig::preset`] names the published ones. The formulas, their
//! papers and reference code are in the repository's `docs/ALGORITHMS.md`.
//!
//! The step's phases (first pass, perturbation, selection, second pass, combination, base
//! update, report) are each written once, as methods of [`Sam`]; the one-call API, the two-step
//! API and the `flatmin-learner` adapter for Burn's `Learner` all drive them. [`bridge`] is the
//! one layer over Burn's module API.
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
//! use burn::tensor::{Device, Tensor, TensorData};
//! use flatmin::{SamConfig, bridge};
//!
//! let device = Device::flex().autodiff();
//! let model: Linear = LinearConfig::new(4, 1).init(&device);
//! let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 16], [4, 4]), &device);
//! let loss = |m: &Linear| m.forward(x.clone()).square().mean();
//!
//! let mut optim = SamConfig::preset("gsam", SamConfig::sgd_base(0.0, 0.0)).unwrap().init().unwrap();
//! let first = optim.first_pass_model(&model);
//! let grads = bridge::backward(loss(&first), &first);
//! let ascent = optim.perturb(0.05, &model, &grads).expect("finite gradient");
//! let grads_p = bridge::backward(loss(ascent.model()), ascent.model());
//! let (model, report) = optim.update(0.05, model, ascent, &grads_p);
//! assert!(report.is_ok());
//! # let _ = model;
//! ```
//!
//! ESAM adds two things to the two-step API: the first pass's model may leave some tensors out
//! (use [`Sam::first_pass_model`], and [`bridge::backward`], which accepts a model that tracks
//! nothing), and the second pass runs on the samples [`Sam::select`] chooses from the per-sample
//! losses at `w` and at `w + e`. [`Sam::update`] refuses a step whose selection was not made.
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use flatmin::{Batch, SamConfig, SwpConfig, bridge};
//!
//! let device = Device::flex().autodiff();
//! let x = Tensor::<2>::from_data(TensorData::new((0..64).map(|i| (i % 7) as f32 / 7.0).collect(), [16, 4]), &device);
//! let y = Tensor::<1, Int>::from_data(TensorData::new((0..16).map(|i| i % 3).collect::<Vec<i64>>(), [16]), &device);
//! // Per-sample losses of the requested samples.
//! let losses = |m: &Linear, batch: Batch| flatmin::per_sample_cross_entropy(m.forward(batch.rows(x.clone())), batch.rows_int(y.clone()));
//! let to_vec = |t: Tensor<1>| t.into_data().iter::<f64>().collect::<Vec<f64>>();
//!
//! for seed in 0..8 {
//!     let mut config = SamConfig::preset("esam", SamConfig::sgd_base(0.9, 0.0)).unwrap();
//!     config.swp = Some(SwpConfig::new().with_seed(seed));
//!     let mut optim = config.init().unwrap();
//!     let mut model: Linear = LinearConfig::new(4, 3).init(&device);
//!     for _ in 0..5 {
//!         // First pass at w (ESAM's mask may leave tensors out of it).
//!         let first = optim.first_pass_model(&model);
//!         let before = losses(&first, Batch::All);
//!         let before_values = to_vec(before.clone().detach());
//!         let grads = bridge::backward(before.mean(), &first);
//!         let mut ascent = optim.perturb(0.1, &model, &grads).expect("finite gradient");
//!         // Selection: per-sample losses at w + e, no gradient, then the sharpest samples.
//!         let after = to_vec(losses(&bridge::untracked(ascent.model()), Batch::All));
//!         let chosen = optim.select(&mut ascent, &before_values, &after).unwrap();
//!         assert_eq!(chosen.len(), 8);
//!         // Second pass at w + e on the chosen samples.
//!         let loss_p = losses(ascent.model(), ascent.request()).mean();
//!         let grads_p = bridge::backward(loss_p, ascent.model());
//!         let (next, report) = optim.update(0.1, model, ascent, &grads_p);
//!         assert_eq!(report.unwrap().selected.unwrap().len(), 8);
//!         model = next;
//!     }
//! }
//! ```
//!
//! With a schedule that skips the second pass on some steps (SAM every k, RST, AE-SAM, LookSAM),
//! ask [`Sam::wants_second_pass`] after the first pass, and finish a step without it with
//! [`Sam::base_step`] (with LookSAM, the base optimizer then gets `g` plus the stored direction):
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Tensor, TensorData};
//! use flatmin::{SamConfig, bridge};
//!
//! let device = Device::flex().autodiff();
//! let mut model: Linear = LinearConfig::new(4, 1).init(&device);
//! let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 16], [4, 4]), &device);
//! let loss = |m: &Linear| m.forward(x.clone()).square().mean();
//!
//! let mut optim = SamConfig::preset("looksam", SamConfig::sgd_base(0.9, 0.0)).unwrap().init().unwrap();
//! let mut second_passes = 0;
//! for _ in 0..10 {
//!     let first = optim.first_pass_model(&model);
//!     let grads = bridge::backward(loss(&first), &first);
//!     let (next, report) = if optim.wants_second_pass(&model, &grads) {
//!         second_passes += 1;
//!         let ascent = optim.perturb(0.05, &model, &grads).expect("finite gradient");
//!         let grads_p = bridge::backward(loss(ascent.model()), ascent.model());
//!         optim.update(0.05, model, ascent, &grads_p)
//!     } else {
//!         optim.base_step(0.05, model, &grads)
//!     };
//!     assert_eq!(report.unwrap().second_pass, optim.steps() % 5 == 1);
//!     model = next;
//! }
//! assert_eq!(second_passes, 2); // steps 0 and 5 of k = 5
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

mod adaptive;
mod base;
pub mod bridge;
mod combination;
mod config;
mod error;
pub mod hessian;
mod looksam;
mod loss;
mod masks;
mod memory;
mod perturbation;
mod record;
mod report;
mod rng;
mod sam;
mod schedule;
mod selection;
mod vector;

pub use adaptive::AdaptiveConfig;
pub use base::{
    AdamConfig, AdamState, BaseConfig, BaseOptimizer, BaseState, BsamConfig, BsamState, NoiseSource, SgdConfig,
    SgdState,
};
pub use bridge::{Layout, ParamEntry, ParamFlags, inference_mode_tracked};
pub use combination::Combination;
pub use config::{PRESETS, SamConfig};
pub use error::{ConfigError, Pass, RecordError, StepError};
pub use looksam::LookSamConfig;
pub use loss::per_sample_cross_entropy;
pub use masks::{MaskSource, SwpConfig, SwpGranularity};
pub use memory::keep_freed_memory;
pub use perturbation::{FriendlyConfig, Geometry};
pub use report::{StepReport, StepTimings};
pub use rng::Rng;
pub use sam::{Ascent, Batch, Descent, FirstPass, Sam, SecondPass};
pub use schedule::{PassSchedule, RhoSchedule, uniform_at};
pub use selection::{SampleSelector, Selection, SelectionRule, SharpestSamples, select_sharpest};
pub use vector::ParamVector;

/// Burn, re-exported at the version flatmin is built against.
pub use burn;
