//! # flatmin: the sharpness-aware minimization family for Burn
//!
//! SAM finds flat minima: each step takes the gradient `g` at the weights `w`, moves to `w + e`
//! in the direction that raises the loss most within a radius ρ, takes the gradient `g_p`
//! there, and updates `w` with it. flatmin implements the family — SAM, ASAM (both adaptive
//! forms), ESAM, F-SAM, WSAM, GSAM, Fisher-SAM, Unified SAM (and USAM), the members that save
//! passes (SAM every k steps, randomized sharpness training, AE-SAM, LookSAM, MSAM) and
//! Bayesian SAM — as one step whose phases are written once, and members that each answer the
//! phases they change:
//!
//! * a **geometry** of the ball (ASAM's two forms, Fisher-SAM, Unified SAM; SAM's Euclidean ball
//!   when none), a **direction** transform (F-SAM) and a **mask** (ESAM's SWP);
//! * a **selection** of the second pass's samples (ESAM);
//! * a **combination** of `g` and `g_p` (GSAM, WSAM; plain `g_p` when none);
//! * a **schedule** of the steps that run the second pass (every k, RST, AE-SAM) and what the
//!   others **reuse** (LookSAM);
//! * **whole steps** of their own (bSAM, MSAM),
//!
//! applied by a **base optimizer** with PyTorch's semantics ([`BaseConfig`]). A member is one
//! file holding its configuration, state, record entries, hyperparameters and validation; the
//! registry lists them and the presets ([`PRESETS`], [`SamConfig::preset`]) and collects their
//! hyperparameters ([`hyperparameters`]). Every mixture is a configuration
//! ([`SamConfig::with_member`]). The formulas, their papers and reference code are in the
//! crate's `ALGORITHMS.md`.
//!
//! The one-call API, the two-step API and the `flatmin-learner` adapter for Burn's `Learner`
//! all drive the same phases. [`bridge`] is the one layer over Burn's module API.
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
//! The stages are types: [`Sam::begin`] gives the [`FirstPass`] (the model the first pass runs
//! on); [`Sam::ascend`] takes its losses (or gradients) and gives what comes [`Next`]: an
//! [`Ascent`], whose model the second pass runs on, or — on a step without a second pass (a
//! schedule's base step, MSAM) — the [`Update`] itself; [`Ascent::second_pass`] gives the update
//! and [`Sam::finish`] applies it. The same loop serves every preset:
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Tensor, TensorData};
//! use flatmin::{Next, SamConfig};
//!
//! let device = Device::flex().autodiff();
//! let mut model: Linear = LinearConfig::new(4, 1).init(&device);
//! let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 16], [4, 4]), &device);
//! let loss = |m: &Linear| m.forward(x.clone()).square().mean();
//!
//! let mut optim = SamConfig::preset("looksam", SamConfig::sgd_base(0.9, 0.0)).unwrap().init().unwrap();
//! for _ in 0..10 {
//!     let first = optim.begin(0.05, &model);
//!     let at_w = loss(first.model());
//!     let update = match optim.ascend(&model, first, at_w).expect("finite first pass") {
//!         Next::Ascent(ascent) => {
//!             let at_w_plus_e = loss(ascent.model());
//!             ascent.second_pass(at_w_plus_e).expect("finite second pass")
//!         }
//!         Next::Update(update) => update, // LookSAM's steps between SAM steps: one pass
//!     };
//!     let (next, report) = optim.finish(model, update);
//!     assert_eq!(report.unwrap().second_pass, (optim.steps() - 1) % 5 == 0);
//!     model = next;
//! }
//! ```
//!
//! ESAM adds one stage: the second pass runs on the samples [`Ascent::select`] chooses from the
//! per-sample losses at `w` and at `w + e` (the latter without gradients, on
//! [`Ascent::probe`]). Five calls a step:
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use flatmin::{Batch, SamConfig};
//!
//! let device = Device::flex().autodiff();
//! let x = Tensor::<2>::from_data(TensorData::new((0..64).map(|i| (i % 7) as f32 / 7.0).collect(), [16, 4]), &device);
//! let y = Tensor::<1, Int>::from_data(TensorData::new((0..16).map(|i| i % 3).collect::<Vec<i64>>(), [16]), &device);
//! // Per-sample losses of the requested samples.
//! let losses = |m: &Linear, batch: Batch| flatmin::per_sample_cross_entropy(m.forward(batch.rows(x.clone())), batch.rows_int(y.clone()));
//!
//! let mut optim = SamConfig::preset("esam", SamConfig::sgd_base(0.9, 0.0)).unwrap().init().unwrap();
//! let mut model: Linear = LinearConfig::new(4, 3).init(&device);
//! for _ in 0..5 {
//!     let first = optim.begin(0.1, &model);                                                 // 1
//!     let at_w = losses(first.model(), Batch::All);
//!     let ascent = optim.ascend(&model, first, at_w).unwrap().ascent().expect("ESAM ascends"); // 2
//!     let at_w_plus_e = losses(&ascent.probe(), Batch::All);
//!     let ascent = ascent.select(at_w_plus_e).unwrap();                                      // 3
//!     let at_w_plus_e = losses(ascent.model(), ascent.request());
//!     let update = ascent.second_pass(at_w_plus_e).unwrap();                                 // 4
//!     let (next, report) = optim.finish(model, update);                                     // 5
//!     assert_eq!(report.unwrap().selected.unwrap().len(), 8);
//!     model = next;
//! }
//! ```
//!
//! BatchNorm running statistics are updated by the first pass only; the perturbed model of the
//! second pass has its own. A non-finite loss or gradient in either pass skips the step and
//! leaves the weights and the optimizer state as they were; the caller gets the reason.
//!
//! On Linux, call [`keep_freed_memory`] first thing in `main`: with glibc's default allocator
//! settings, Burn's CPU backend page-faults its memory in again at every step (2.7 – 3.3× slower
//! steps on two cores).

#![warn(missing_docs)]

mod base;
pub mod bridge;
mod config;
mod error;
pub mod hessian;
mod hyperparameter;
mod loss;
mod member;
mod members;
mod memory;
mod param_map;
mod perturbation;
mod record;
mod registry;
mod report;
mod rng;
mod step;
mod vector;

pub use base::{AdamBaseConfig, AdamBaseState, BaseConfig, BaseState, SgdBaseConfig, SgdBaseState};
pub use bridge::{Layout, ParamEntry, ParamFlags, inference_mode_tracked};
pub use config::{Precision, RhoSchedule, SamConfig};
pub use error::{ConfigError, Pass, RecordError, SettingError, StepError};
pub use hyperparameter::{Context, Declaration, Kind, Range, RunFigure, Value};
pub use loss::per_sample_cross_entropy;
pub use member::{Injection, Room, Schema};
pub use members::{
    AeSamConfig, AsamConfig, BsamConfig, BsamState, EveryConfig, FisherConfig, FriendlyConfig, GsamConfig,
    LookSamConfig, MaskSource, Member, MsamConfig, NoiseSource, RandomConfig, Registered, SampleSelector,
    SelectionConfig, SelectionRule, SharpestSamples, SquaredAsamConfig, SwpConfig, SwpGranularity, UnifiedConfig,
    UnifiedLambda, WsamConfig, select_sharpest, uniform_at,
};
pub use memory::keep_freed_memory;
pub use record::SamRecord;
pub use registry::{
    Hyperparameter, PRESETS, REFERENCES, Reference, apply, base_hyperparameters, hyperparameter, hyperparameters,
    preset_doc, reference,
};
pub use report::{StepReport, StepTimings};
pub use rng::Rng;
pub use step::{Ascent, Batch, Descent, FirstPass, Next, PassInput, Sam, SecondForward, Update};
pub use vector::ParamVector;

/// Burn, re-exported at the version flatmin is built against.
pub use burn;
