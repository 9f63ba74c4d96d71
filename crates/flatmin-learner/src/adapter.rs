//! [`SamLearner`]: a model wrapped so that Burn's `Learner` trains it with any flatmin optimizer
//! whose update Burn's optimizer can apply.
//!
//! How Burn 0.22.1's Learner drives a model (burn-train `learner/supervised/strategies`): per
//! batch, `TrainStep::step(&model, item)` returns gradients and the metrics' item; the Learner
//! then steps its learning-rate scheduler and calls `TrainStep::optimize(model, optim, lr,
//! grads)` (`optimize_multi` for sharded multi-device optimization), which by default is
//! `optim.step(lr, model, grads)` with the Learner's `ModuleOptimizer`. With gradient
//! accumulation, the gradients of several steps are summed first; with several devices, each
//! worker runs `step` on its own copy and the gradients are summed on the main device
//! (`MultiDevice`) or all-reduced during backward (DDP). Checkpoints hold the model record, the
//! `ModuleOptimizer` record and the scheduler record.
//!
//! [`SamLearner`] runs the whole SAM step in `step` — through flatmin's typed stages:
//! [`Sam::begin`](flatmin::Sam::begin), [`FirstPass::run`](flatmin::FirstPass::run), the
//! devices' exchange of `g` ([`PassInput::gradients_mut`](flatmin::PassInput::gradients_mut)),
//! AE-SAM's decision ([`FirstPass::decide`](flatmin::FirstPass::decide)),
//! [`Sam::ascend`](flatmin::Sam::ascend), ESAM's selection, the second pass and
//! [`Sam::descent`](flatmin::Sam::descent) — and returns the combined gradient, so the
//! Learner's own optimizer is the base optimizer, its scheduler sets the learning rate and its
//! checkpoints, metrics and early stopping work unchanged. Decoupled WSAM's extra step (outside
//! the base optimizer's momentum) is applied in `optimize`.
//!
//! A method that needs flatmin's own base optimizer ([`SamConfig::needs_own_update`]) is
//! refused: bSAM is its own base optimizer, and MSAM takes its step along the momentum of
//! flatmin's base optimizer, which the Learner's optimizer does not share.
//!
//! # Mixed precision
//!
//! With [`SamLearnerConfig::with_mixed_precision`] the wrapped model stays in f32 and is the
//! master weights: Burn's optimizer updates it in its own type. `step` casts it to the pass type
//! ([`bridge::autocast_copy`]: BatchNorm's running statistics in their own copy), runs the SAM
//! step on the copy with the f32 model as master ([`Sam::begin_with_master`]), returns the f32
//! gradient that [`Sam::descent`] hands over (divided by the f16 loss scale), and copies the
//! copy's BatchNorm statistics back ([`bridge::copy_running_statistics`]). Every skipped step
//! backs the f16 scale off ([`Sam::overflowed`]). The checkpoint has no master-weight slots (the
//! model is the master) and holds the scale among the scalars.
//!
//! # Checkpoints
//!
//! The Learner checkpoints a model by visiting its parameters (`Module::into_record` collects
//! every float, int and bool parameter by path) and resumes by mapping them
//! (`self.model.clone().load_record(record)`: each parameter is looked up by path; a missing or
//! unused tensor, or a shape mismatch, fails the load). So that the SAM state — F-SAM's average,
//! ESAM's mask generator, LookSAM's stored `g_v`, AE-SAM's statistics, the step count that the
//! schedules read, and the learning rate a ρ schedule proportional to it reads — is in the
//! checkpoints, a `SamLearner` shows it to Burn as parameters under `sam_state`, next to
//! `model`:
//!
//! | path | kind, shape | holds |
//! |---|---|---|
//! | `sam_state.learner` | int `[4]` | a nonce and the learning rate's bits |
//! | `sam_state.rank<r>.scalars` | int `[2·S]` | rank `r`'s scalars of [`SamConfig::record_schema_for_descent`] (`steps`, `rng/0`…, `ae/mean`, …; under mixed precision `loss_scale/bits`, `loss_scale/good_steps`) |
//! | `sam_state.rank<r>.present.<map>` | int `[P]` | 0/1: whether rank `r` holds an entry of the map for each of the model's `P` parameters |
//! | `sam_state.rank<r>.maps.<map>.<parameter path>` | float `[numel]` | that entry, flattened (zeros while absent) |
//!
//! (`<map>` is a map prefix of the schema without its slash: `ema`, `looksam`; every `u64`
//! scalar is stored as two `u32` halves bit-cast to `i32`, which every backend's integer
//! tensors hold.) The slots depend only on the configuration, the wrapped model's parameters
//! and the number of device ranks, so a fresh `SamLearner` and a trained one have the same
//! paths and shapes, and the Learner's resume loads the state like any parameter.
//!
//! `SamLearner` implements [`Module`] by hand — `model` first, then `sam_state` — rather than
//! deriving it around a state field: loading the state needs the model as the same mapper left
//! it ([`Sam::load_record`](flatmin::Sam::load_record) checks the state against it).
//!
//! A visit shows each rank's [`SamRecord`](flatmin::SamRecord) as of its last commit (a copy
//! kept apart from the optimizer, so that no visit or mapping ever waits for a step in progress
//! on another device; its tensors are handles, not copies). The slots are on each rank's device,
//! with autodiff when the model has it (Burn's DDP mark needs it), never requiring a gradient.
//! A mapping passes the slots through the mapper, then reads the integer scalars back (a few
//! integers to the host): the mappers that run during training (the Learner's optimizer step,
//! which has no gradient for them; Burn's DDP mark; `valid`, `fork`, `to_device`, which do not
//! map) leave them as they were, and the state is kept as it is; a loaded record changes them
//! (its step count, or at least its nonce, differs), and every rank's optimizer is rebuilt from
//! the slots with [`Sam::load_record`](flatmin::Sam::load_record), which checks that the state
//! fits the model (the same number of elements and float type for every entry); the nonce is
//! then drawn anew. A mapper that changes float slots only (a quantizer, say) does not reach
//! the state.
//!
//! The slots are visited: `flatmin::Layout::of(&sam_learner)` and any visitor of the whole
//! learner see the float slots as parameters. They never get a gradient, so Burn's optimizer
//! leaves them alone and flatmin's functions skip them (they act only on parameters with a
//! gradient); [`Module::num_params`] counts the model's parameters only. The adapter itself
//! works on the wrapped model. Consequences: a checkpoint resumes on the same number of device
//! ranks and the same method; a checkpoint written before the state was checkpointed has no
//! `sam_state` and loads only with `ModuleRecord::allow_partial` (the state then starts afresh).
//! `fork` and `to_device` move the model, not the optimizers' state, which stays on the devices
//! it was made on.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::module::{Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{DType, Device, Tensor};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use flatmin::bridge::{self, is_distributed};
use flatmin::{
    Batch, BsamConfig, ConfigError, Descent, Layout, ParamVector, Pass, PassInput, Sam, SamConfig, StepReport, Update,
};

use crate::engine::{
    SkipReason, Votes, all_reduce_through_backward, apply_sharpness, base_step, first_gradient, first_pass, group_mean,
    is_plain, prepare,
};
use crate::parallel::{DataParallel, Rendezvous};
use crate::state::Checkpointed;
use crate::step::SamStep;

/// How a [`SamLearner`] trains.
#[derive(Debug, Clone)]
pub struct SamLearnerConfig {
    /// The SAM-family method. Its `base` is **not** used: the Learner's `ModuleOptimizer` is the
    /// base optimizer. (For PyTorch's SGD semantics with Burn's `SgdConfig`, set the momentum's
    /// `dampening` to 0: Burn's default is 0.1.) A method that needs flatmin's own base optimizer
    /// (bSAM, MSAM) is refused.
    pub sam: SamConfig,
    /// The devices of a data-parallel run and how they share the first-pass gradient.
    pub parallel: DataParallel,
    /// Under Burn's `MultiDevice` strategy, which sums the workers' gradients, scale each
    /// worker's gradient by `1 / devices` so that the sum is their mean — the average of the
    /// per-device SAM gradients that m-sharpness defines, and what DDP with
    /// `ReduceOperation::Mean` computes. Default true. (Not applied under DDP, which averages
    /// itself.)
    pub average_devices: bool,
    /// The learning rate a ρ schedule proportional to the learning rate (GSAM) reads before the
    /// Learner's first optimizer step. Afterwards it reads the learning rate of the Learner's
    /// previous optimizer step: the Learner sets this step's only after `TrainStep::step`.
    pub initial_lr: f64,
    /// Mixed precision (autocast): the float type (bf16 or f16) the passes run in, on a copy of
    /// the model cast each step. The Learner's model stays in f32 and is the master weights: the
    /// perturbation and norms are computed from it in f32, the combined gradient comes back in
    /// f32 (unscaled) and the Learner's optimizer updates the model with f32 state. Needs
    /// `sam.precision` to be [`Precision::Mixed`](flatmin::Precision::Mixed), whose loss
    /// scaling applies to an f16 pass. `None` (the default): the passes run in the model's type.
    /// Set both with [`SamLearnerConfig::with_mixed_precision`].
    pub pass_dtype: Option<DType>,
}

impl SamLearnerConfig {
    /// `sam` on one device.
    pub fn new(sam: SamConfig) -> Self {
        Self {
            sam,
            parallel: DataParallel::single(),
            average_devices: true,
            initial_lr: 0.0,
            pass_dtype: None,
        }
    }

    /// With mixed precision: the passes in `dtype` (bf16 or f16) on a copy of the f32 model,
    /// which stays the master weights that the Learner's optimizer updates; `sam.precision`
    /// becomes [`Precision::mixed`](flatmin::Precision::mixed) (PyTorch's `GradScaler`
    /// defaults) unless it is mixed already.
    ///
    /// ```
    /// use burn::tensor::DType;
    /// use flatmin::SamConfig;
    /// use flatmin_learner::SamLearnerConfig;
    ///
    /// let sam = SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0))?;
    /// let config = SamLearnerConfig::new(sam).with_mixed_precision(DType::BF16);
    /// assert!(config.sam.precision.is_mixed());
    /// assert_eq!(config.pass_dtype, Some(DType::BF16));
    /// # Ok::<(), flatmin::ConfigError>(())
    /// ```
    pub fn with_mixed_precision(mut self, dtype: DType) -> Self {
        if !self.sam.precision.is_mixed() {
            self.sam.precision = flatmin::Precision::mixed();
        }
        self.pass_dtype = Some(dtype);
        self
    }

    /// With these data-parallel settings.
    pub fn with_parallel(mut self, parallel: DataParallel) -> Self {
        self.parallel = parallel;
        self
    }

    /// With `average_devices` set.
    pub fn with_average_devices(mut self, average: bool) -> Self {
        self.average_devices = average;
        self
    }

    /// With `initial_lr` set.
    pub fn with_initial_lr(mut self, lr: f64) -> Self {
        self.initial_lr = lr;
        self
    }
}

/// What a [`SamLearner`] has done so far, over all devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamLearnerStats {
    /// Steps taken (per worker: a step on two devices counts twice).
    pub steps: u64,
    /// Of those, the steps that ran the second pass (the others are a schedule's base steps).
    pub second_passes: u64,
    /// Steps skipped (non-finite loss or gradient, …): the Learner's optimizer got no gradient.
    pub skipped: u64,
    /// Why the last skipped step was skipped.
    pub last_skip: Option<String>,
    /// The report of the last step taken.
    pub last_report: Option<StepReport>,
}

/// The refusal of mixed precision where the step's f32 master weights have no home: in
/// [`MSharpness`](crate::MSharpness), whose caller applies the result.
pub(crate) fn refuse_mixed(sam: &SamConfig) -> Result<(), ConfigError> {
    if !sam.precision.is_mixed() {
        return Ok(());
    }
    Err(ConfigError {
        field: "precision",
        value: "Mixed".into(),
        expected: "Precision::Native with MSharpness: train with mixed precision in a SamLearner \
                   (SamLearnerConfig::with_mixed_precision) or in flatmin's own loop (Sam::step)",
    })
}

/// The precision settings of a [`SamLearner`] for a model stored in `model_dtype`: the Learner's
/// model must hold f32 master weights when the passes run in half precision, and mixed
/// precision needs a half-precision pass type.
fn check_precision(config: &SamLearnerConfig, model_dtype: Option<DType>) -> Result<(), ConfigError> {
    let mixed = config.sam.precision.is_mixed();
    match config.pass_dtype {
        Some(dtype) if !matches!(dtype, DType::BF16 | DType::F16) => Err(ConfigError {
            field: "pass_dtype",
            value: format!("{dtype:?}"),
            expected: "BF16 or F16: the float type the passes run in under mixed precision",
        }),
        Some(dtype) if !mixed => Err(ConfigError {
            field: "precision",
            value: format!("Native with pass_dtype {dtype:?}"),
            expected: "Precision::Mixed when the passes run in half precision \
                       (SamLearnerConfig::with_mixed_precision sets both)",
        }),
        Some(_) if model_dtype.is_some_and(|d| d != DType::F32) => Err(ConfigError {
            field: "model",
            value: format!("{:?}", model_dtype.expect("checked")),
            expected: "a model stored in F32 under mixed precision: it holds the master weights that the \
                       Learner's optimizer updates, and the passes run on a copy in pass_dtype",
        }),
        None if mixed => Err(ConfigError {
            field: "pass_dtype",
            value: "None".into(),
            expected: "BF16 or F16 with Precision::Mixed: the Learner's optimizer updates the model in \
                       its own type, so the model stays in f32 and the passes run on a half-precision \
                       copy (SamLearnerConfig::with_mixed_precision)",
        }),
        _ => Ok(()),
    }
}

/// The refusal of a method that needs flatmin's own base optimizer, which an optimizer outside
/// flatmin (the Learner's) cannot stand in for: bSAM and MSAM.
pub(crate) fn refuse_own_update(sam: &SamConfig) -> Result<(), ConfigError> {
    if !sam.needs_own_update() {
        return Ok(());
    }
    Err(if sam.member::<BsamConfig>().is_some() {
        ConfigError {
            field: "optimizer",
            value: "bsam".into(),
            expected: "a method whose update Burn's optimizer applies: bSAM is its own base optimizer (its \
                       update replaces the base optimizer's), so train it with flatmin's own loop (Sam::step)",
        }
    } else {
        ConfigError {
            field: "optimizer",
            value: "msam".into(),
            expected: "a method whose update Burn's optimizer applies: MSAM steps along the momentum of \
                       flatmin's own base optimizer, which the Learner's optimizer does not share, so train \
                       it with flatmin's own loop (Sam::step)",
        }
    })
}

struct State {
    config: SamLearnerConfig,
    /// One flatmin optimizer per device rank, and what of them the checkpoints carry.
    checkpointed: Checkpointed,
    tickets: AtomicUsize,
    exchange: Option<Rendezvous<Option<ParamVector>>>,
    votes: Rendezvous<bool>,
    /// Decoupled WSAM's sharpness terms waiting for `optimize`: (rank, term, α).
    pending: Mutex<Vec<(usize, GradientsParams, f64)>>,
    stats: Mutex<SamLearnerStats>,
    /// Tests only: run the DDP code path on parameters that are not marked distributed (the CPU
    /// backend refuses the mark, and has no collective to average with).
    simulate_ddp: bool,
}

/// The flatmin side of a [`SamLearner`] — every device rank's optimizer and the slots that show
/// their state to Burn's checkpoints (see the module documentation of the adapter) — shared by
/// the copies Burn makes of the model (one per device worker, one per validation).
#[derive(Clone)]
pub struct SamState(Arc<State>);

/// The former name of [`SamState`].
pub type SamHandle = SamState;

impl fmt::Debug for SamState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.0.config;
        f.debug_struct("SamState")
            .field("rho", &config.sam.rho)
            .field("members", &config.sam.members)
            .field("devices", &config.parallel.parties())
            .field("ascent", &config.parallel.ascent)
            .field("checkpointed", &self.0.checkpointed)
            .finish()
    }
}

/// A model trained by Burn's `Learner` with a flatmin optimizer.
///
/// ```ignore
/// let config = SamLearnerConfig::new(SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0))?);
/// let model = SamLearner::new(model, config)?;           // was: model
/// let learner = Learner::new(model, SgdConfig::new().with_momentum(..).init(), lr_scheduler);
/// let result = SupervisedTraining::new(dir, train, valid).metrics((LossMetric::new(),)).launch(learner);
/// let trained = result.model.model;                        // the wrapped model
/// ```
///
/// The model implements [`SamStep`] (one forward pass on the requested samples) instead of
/// `TrainStep`, and `InferenceStep` as before for validation.
///
/// As a [`Module`], a `SamLearner` is its `model` (path `model`) and the SAM state (path
/// `sam_state`, int and float tensors that never get a gradient): the Learner's checkpoints
/// carry both, and a resumed Learner ends where an uninterrupted one does. See the adapter's
/// module documentation for the layout of the state.
#[derive(Debug)]
pub struct SamLearner<M: Module> {
    /// The model being trained.
    pub model: M,
    state: SamState,
}

impl<M: SamStep> SamLearner<M> {
    /// Wraps `model`; the SAM configuration is validated here, and a method that needs
    /// flatmin's own base optimizer (bSAM, MSAM: [`SamConfig::needs_own_update`]) is refused.
    /// Under mixed precision ([`SamLearnerConfig::with_mixed_precision`]) the model must be
    /// stored in f32 (it is the master weights).
    pub fn new(model: M, config: SamLearnerConfig) -> Result<Self, ConfigError> {
        config.sam.validate()?;
        refuse_own_update(&config.sam)?;
        check_precision(&config, bridge::float_dtype(&model, &Layout::of(&model)))?;
        let parties = config.parallel.parties();
        let checkpointed = Checkpointed::new(
            &config.sam,
            Layout::of(&model),
            parties,
            config.parallel.devices.clone(),
            config.initial_lr,
        )?;
        let timeout = config.parallel.timeout;
        let exchange = config
            .parallel
            .ascent
            .exchanges(parties)
            .then(|| Rendezvous::new(parties, timeout));
        let state = State {
            checkpointed,
            tickets: AtomicUsize::new(0),
            exchange,
            votes: Rendezvous::new(parties, timeout),
            pending: Mutex::new(Vec::new()),
            stats: Mutex::new(SamLearnerStats::default()),
            simulate_ddp: false,
            config,
        };
        Ok(Self {
            model,
            state: SamState(Arc::new(state)),
        })
    }

    /// What the optimizer has done so far.
    pub fn stats(&self) -> SamLearnerStats {
        self.state.0.stats.lock().expect("stats lock").clone()
    }

    /// The configuration.
    pub fn config(&self) -> &SamLearnerConfig {
        &self.state.0.config
    }

    /// The flatmin side: the optimizers and their checkpointed state.
    pub fn sam_state(&self) -> &SamState {
        &self.state
    }

    /// The state of the flatmin optimizer of device rank `rank` (0 on one device), as
    /// [`Sam::record`] gives it: what the checkpoints carry of it.
    pub fn sam_record(&self, rank: usize) -> Option<flatmin::SamRecord> {
        let rank = self.state.0.checkpointed.ranks.get(rank)?;
        Some(rank.sam.lock().expect("flatmin optimizer lock").record())
    }

    /// The wrapped model.
    pub fn into_inner(self) -> M {
        self.model
    }
}

impl<M: Module> Clone for SamLearner<M> {
    fn clone(&self) -> Self {
        Self {
            model: self.model.clone(),
            state: self.state.clone(),
        }
    }
}

/// The device the slots of the state are shown on: the model's.
fn model_device<M: Module>(model: &M) -> Device {
    model.devices().into_iter().next().unwrap_or_default()
}

impl<M: Module> Module for SamLearner<M> {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.model.collect_devices(devices)
    }

    fn fork(self, device: &Device) -> Self {
        Self {
            model: self.model.fork(device),
            state: self.state,
        }
    }

    fn to_device(self, device: &Device) -> Self {
        Self {
            model: self.model.to_device(device),
            state: self.state,
        }
    }

    fn train(self) -> Self {
        Self {
            model: self.model.train(),
            state: self.state,
        }
    }

    fn valid(&self) -> Self {
        Self {
            model: self.model.valid(),
            state: self.state.clone(),
        }
    }

    fn materialize(self) -> Self {
        Self {
            model: self.model.materialize(),
            state: self.state,
        }
    }

    /// The model's parameters: the state's slots are not trained.
    fn num_params(&self) -> usize {
        self.model.num_params()
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        visitor.enter_module("model", "Struct:SamLearner");
        self.model.visit(visitor);
        visitor.exit_module("model", "Struct:SamLearner");
        visitor.enter_module("sam_state", "Struct:SamLearner");
        self.state.0.checkpointed.visit(&model_device(&self.model), visitor);
        visitor.exit_module("sam_state", "Struct:SamLearner");
    }

    fn map<Mp: ModuleMapper>(self, mapper: &mut Mp) -> Self {
        let device = model_device(&self.model);
        mapper.enter_module("model", "Struct:SamLearner");
        let model = self.model.map(mapper);
        mapper.exit_module("model", "Struct:SamLearner");
        mapper.enter_module("sam_state", "Struct:SamLearner");
        self.state.0.checkpointed.map(&device, mapper, &model);
        mapper.exit_module("sam_state", "Struct:SamLearner");
        Self {
            model,
            state: self.state,
        }
    }
}

impl<M: Module + ModuleDisplay> ModuleDisplayDefault for SamLearner<M> {
    fn content(&self, content: Content) -> Option<Content> {
        let config = &self.state.0.config;
        content
            .set_top_level_type("SamLearner")
            .add("model", &self.model)
            .add_debug_attribute("members", &config.sam.members)
            .add_debug_attribute("rho", &config.sam.rho)
            .add_debug_attribute("devices", &config.parallel.parties())
            .optional()
    }

    fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

impl<M: Module + ModuleDisplay> ModuleDisplay for SamLearner<M> {}

impl<M: Module + ModuleDisplay> fmt::Display for SamLearner<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", ModuleDisplay::format(self, Default::default()))
    }
}

impl State {
    /// The worker's rank: its device's position among the configured devices, or (a device
    /// listed more than once, the CPU stand-in) its turn among the step's workers.
    fn rank(&self, device: Option<&Device>) -> usize {
        let parties = self.config.parallel.parties();
        if parties == 1 {
            return 0;
        }
        device
            .and_then(|d| self.config.parallel.rank_of(d))
            .unwrap_or_else(|| self.tickets.fetch_add(1, Ordering::Relaxed) % parties)
    }

    fn parties(&self) -> usize {
        self.config.parallel.parties()
    }

    /// Averages the first-pass gradients within the worker's group.
    fn share<M: Module>(
        &self,
        exchange: &Rendezvous<Option<ParamVector>>,
        rank: usize,
        model: &M,
        input: Result<PassInput, SkipReason>,
    ) -> Result<PassInput, SkipReason> {
        let layout = Layout::of(model);
        let flat = input.as_ref().ok().and_then(|i| first_gradient(model, &layout, i));
        let (me, all) = exchange.meet(Some(rank), flat);
        let mut input = input?;
        let group = self.config.parallel.ascent.group(me, self.parties());
        let members: Vec<&ParamVector> = all
            .iter()
            .filter(|(r, _)| group.contains(r))
            .filter_map(|(_, v)| v.as_ref())
            .collect();
        if members.len() != group.len() {
            return Err(SkipReason::OtherDevice);
        }
        let own = all
            .iter()
            .find(|(r, _)| *r == me)
            .and_then(|(_, v)| v.as_ref())
            .expect("own gradient");
        let shared = bridge::to_gradients(model, &layout, &group_mean(&members, own));
        *input.gradients_mut().expect("the first pass ran its backward") = shared;
        Ok(input)
    }
}

/// One worker's SAM step: the combined gradient, or why the step was skipped. The optimizer
/// `sam` is committed only when the step is taken (under DDP: on every device).
fn run<M, F>(
    state: &State,
    sam: &mut Sam,
    rank: usize,
    model: &M,
    master: Option<&M>,
    loss_fn: &mut F,
) -> Result<Descent, SkipReason>
where
    M: Module,
    F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
{
    let lr = *state.checkpointed.lr.lock().expect("lr lock");
    let ddp = is_distributed(model) || state.simulate_ddp;
    let votes = (ddp && state.parties() > 1).then_some(Votes {
        meeting: &state.votes,
        rank: Some(rank),
    });
    // The first pass never synchronizes: under DDP it runs on a view without the distributed
    // mark, so each device keeps its own gradient (m-sharpness) unless the exchange shares it.
    let (mut first, input) = first_pass(sam, lr, model, master, None, ddp, loss_fn);
    // The decision: known before the pass, or (AE-SAM) made now from this device's own `g`,
    // before any exchange. Under DDP, such a step is a SAM step only where every device's policy
    // asks for one, so the devices never disagree on whether a second pass (and its all-reduce)
    // happens.
    let decides_after = first.second_pass().is_none();
    let (input, wants) = match input {
        Ok(mut input) => match first.decide(model, &mut input) {
            Ok(wants) => (Ok(input), wants),
            Err(e) => (Err(e), true),
        },
        Err(e) => (Err(e), first.second_pass().unwrap_or(true)),
    };
    let input = input.map_err(SkipReason::from);
    let input = match &state.exchange {
        Some(exchange) => state.share(exchange, rank, model, input),
        None => input,
    };
    let second_pass = match &votes {
        Some(v) if decides_after => v.agree(wants),
        _ => wants,
    };
    let sam_ref: &Sam = sam;
    if !second_pass {
        let local = input.and_then(|i| base_step(sam_ref, model, first, i).map_err(SkipReason::from));
        return match &votes {
            Some(v) => synchronize(sam, model, local, v, !state.simulate_ddp),
            None => commit(sam, local),
        };
    }
    match &votes {
        // SAM's own combination: the second pass runs on the perturbed model, which keeps every
        // parameter's distributed mark, so Burn's DDP averages g_p during its backward.
        Some(v) if is_plain(sam.config()) => {
            let prepared =
                input.and_then(|i| prepare(sam_ref, model, first, i, None, false, loss_fn).map_err(SkipReason::from));
            if !v.agree(prepared.is_ok()) {
                return Err(prepared.err().unwrap_or(SkipReason::OtherDevice));
            }
            let update = prepared.expect("every device agreed").conclude();
            v.agree(true);
            commit(sam, update.map_err(SkipReason::from))
        }
        // Combinations that mix g into the update: both passes local, the combined gradient
        // averaged afterwards (as GSAM's reference code does under DDP).
        _ => {
            let local = input.and_then(|i| {
                let prepared = prepare(sam_ref, model, first, i, None, ddp, loss_fn)?;
                Ok(prepared.conclude()?)
            });
            match &votes {
                Some(v) => synchronize(sam, model, local, v, !state.simulate_ddp),
                None => commit(sam, local),
            }
        }
    }
}

/// Commits a worker's update: the members' state and the step count become the optimizer's.
fn commit(sam: &mut Sam, update: Result<Update, SkipReason>) -> Result<Descent, SkipReason> {
    Ok(sam.descent(update?)?)
}

/// Commits a worker's update and averages its combined gradient (and WSAM's sharpness) over the
/// DDP devices — all devices going on, and committing, only if every one of them has a step to
/// average.
fn synchronize<M: Module>(
    sam: &mut Sam,
    model: &M,
    local: Result<Update, SkipReason>,
    votes: &Votes<'_>,
    mark: bool,
) -> Result<Descent, SkipReason> {
    if !votes.agree(local.is_ok()) {
        return Err(local.err().unwrap_or(SkipReason::OtherDevice));
    }
    // The update was made by this optimizer for its current step, and the adapter refuses the
    // methods whose update it cannot hand over: committing it cannot fail.
    let mut d = sam
        .descent(local.expect("every device agreed"))
        .expect("an update of this step, of a method the adapter accepts");
    let device = model.devices().into_iter().next().expect("a model with parameters");
    let mut vectors = vec![&d.gradient];
    if let Some(s) = &d.sharpness {
        vectors.push(s);
    }
    let mut reduced = all_reduce_through_backward(&d.layout, &vectors, &device, mark).into_iter();
    votes.agree(true);
    d.gradient = reduced.next().expect("gradient");
    if d.sharpness.is_some() {
        d.sharpness = reduced.next();
    }
    Ok(d)
}

impl<M: SamStep> TrainStep for SamLearner<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn step(&self, item: Self::Input) -> TrainOutput<Self::Output> {
        let state = &self.state.0;
        let device = self.model.devices().into_iter().next();
        let rank = state.rank(device.as_ref());
        let mut output = None;
        let result = {
            let slot = &state.checkpointed.ranks[rank];
            let mut sam = slot.sam.lock().expect("flatmin optimizer lock");
            let steps = sam.steps();
            let mut loss_fn = |m: &M, batch: Batch<'_>, pass: Pass| {
                let out = m.sam_forward(&item, batch);
                if pass == Pass::First {
                    output = Some(out.output);
                }
                out.losses
            };
            // Mixed precision: the passes run on a half-precision copy; the model is the master.
            let half = state
                .config
                .pass_dtype
                .map(|dtype| bridge::autocast_copy(&self.model, dtype));
            let result = match &half {
                Some(half) => run(state, &mut sam, rank, half, Some(&self.model), &mut loss_fn),
                None => run(state, &mut sam, rank, &self.model, None, &mut loss_fn),
            };
            let mut changed = sam.steps() != steps;
            if let Some(half) = &half {
                // The first pass updated the copy's BatchNorm statistics: they are the model's.
                bridge::copy_running_statistics(half, &self.model);
                if result.is_err() {
                    // Every skip backs the f16 loss scale off, another device's too, so that the
                    // devices' scales (and the first-pass gradients they exchange) stay alike.
                    sam.overflowed(half);
                    changed = true;
                }
            }
            if changed {
                slot.committed(&sam);
            }
            result
        };
        let output = output.expect("the first pass ran");
        let mut stats = state.stats.lock().expect("stats lock");
        match result {
            Ok(d) => {
                let ddp = is_distributed(&self.model) || state.simulate_ddp;
                let scale = if state.config.average_devices && state.parties() > 1 && !ddp {
                    1.0 / state.parties() as f64
                } else {
                    1.0
                };
                let scaled = |v: &ParamVector| if scale == 1.0 { v.clone() } else { v.scaled(scale) };
                let grads = bridge::to_gradients(&self.model, &d.layout, &scaled(&d.gradient));
                if let Some(s) = &d.sharpness {
                    let term = bridge::to_gradients(&self.model, &d.layout, &scaled(s));
                    state
                        .pending
                        .lock()
                        .expect("pending lock")
                        .push((rank, term, d.sharpness_weight));
                }
                stats.steps += 1;
                stats.second_passes += u64::from(d.report.second_pass);
                stats.last_report = Some(d.report);
                TrainOutput { grads, item: output }
            }
            Err(reason) => {
                stats.skipped += 1;
                stats.last_skip = Some(reason.to_string());
                TrainOutput {
                    grads: GradientsParams::new(),
                    item: output,
                }
            }
        }
    }

    fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
        let pending = self.before_optimize(&lr);
        let model = optim.step(lr.clone(), self, grads);
        model.after_optimize(&lr, pending)
    }

    fn optimize_multi(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: MultiGradientsParams) -> Self {
        let pending = self.before_optimize(&lr);
        let model = optim.step_multi(lr.clone(), self, grads);
        model.after_optimize(&lr, pending)
    }
}

impl<M: SamStep> SamLearner<M> {
    /// Records the learning rate (for ρ ∝ lr) and takes the decoupled WSAM terms this update
    /// applies: under DDP this device's own (already averaged), otherwise every worker's,
    /// summed as Burn sums their gradients.
    fn before_optimize(&self, lr: &ModuleLearningRate) -> Option<(GradientsParams, f64)> {
        let state = &self.state.0;
        *state.checkpointed.lr.lock().expect("lr lock") = lr.base();
        let own = if is_distributed(&self.model) && state.parties() > 1 {
            let device = self.model.devices().into_iter().next();
            device.and_then(|d| state.config.parallel.rank_of(&d))
        } else {
            None
        };
        let mut pending = state.pending.lock().expect("pending lock");
        let (mine, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(r, _, _)| own.is_none_or(|o| o == *r));
        *pending = rest;
        let weight = mine.first()?.2;
        Some((
            sum_gradients(&self.model, mine.into_iter().map(|(_, g, _)| g).collect()),
            weight,
        ))
    }

    /// Decoupled WSAM's step, on the wrapped model.
    fn after_optimize(self, lr: &ModuleLearningRate, pending: Option<(GradientsParams, f64)>) -> Self {
        match pending {
            Some((sharpness, weight)) => Self {
                model: apply_sharpness(self.model, lr, &sharpness, weight),
                state: self.state,
            },
            None => self,
        }
    }
}

/// The sum of several gradients of `model`'s parameters, in the order given.
fn sum_gradients<M: Module>(model: &M, parts: Vec<GradientsParams>) -> GradientsParams {
    let layout = Layout::of(model);
    let flats: Vec<ParamVector> = parts.iter().map(|p| bridge::gradients(model, &layout, p)).collect();
    let terms: Vec<(&ParamVector, f64)> = flats.iter().map(|v| (v, 1.0)).collect();
    bridge::to_gradients(model, &layout, &bridge::weighted_sum(&terms))
}

impl<M: SamStep + InferenceStep> InferenceStep for SamLearner<M> {
    type Input = <M as InferenceStep>::Input;
    type Output = <M as InferenceStep>::Output;

    fn step(&self, item: Self::Input) -> Self::Output {
        InferenceStep::step(&self.model, item)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Int, TensorData};
    use burn::train::ClassificationOutput;

    use super::*;
    use crate::{AscentSync, SamOutput};

    #[derive(Module, Debug)]
    struct Tiny {
        l: Linear,
    }

    #[derive(Clone, Debug)]
    struct Xy {
        x: Tensor<2>,
        y: Tensor<1, Int>,
    }

    impl SamStep for Tiny {
        type Input = Xy;
        type Output = ClassificationOutput;

        fn sam_forward(&self, item: &Xy, batch: Batch<'_>) -> SamOutput<ClassificationOutput> {
            let (x, y) = (batch.rows(item.x.clone()), batch.rows_int(item.y.clone()));
            let logits = self.l.forward(x);
            let losses = flatmin::per_sample_cross_entropy(logits.clone(), y.clone());
            SamOutput {
                output: ClassificationOutput::new(losses.clone().mean(), logits, y),
                losses,
            }
        }
    }

    fn shard(j: usize, poisoned: bool, device: &Device) -> Xy {
        let x: Vec<f32> = (0..12)
            .map(|i| {
                if poisoned && i == 0 {
                    f32::NAN
                } else {
                    ((i * 7 + j * 5) % 11) as f32 / 11.0 - 0.4
                }
            })
            .collect();
        let y: Vec<i64> = (0..4).map(|i| ((i + j) % 2) as i64).collect();
        Xy {
            x: Tensor::from_data(TensorData::new(x, [4, 3]), device),
            y: Tensor::from_data(TensorData::new(y, [4]), device),
        }
    }

    fn bits(model: &Tiny, grads: &GradientsParams) -> Vec<Vec<u32>> {
        let w: Vec<u32> = match grads.get::<2>(model.l.weight.id) {
            Some(g) => g.into_data().iter::<f32>().map(f32::to_bits).collect(),
            None => Vec::new(),
        };
        let b: Vec<u32> = match model.l.bias.as_ref().and_then(|b| grads.get::<1>(b.id)) {
            Some(g) => g.into_data().iter::<f32>().map(f32::to_bits).collect(),
            None => Vec::new(),
        };
        vec![w, b]
    }

    /// A two-device DDP run simulated on the CPU (the backend refuses the distributed mark and
    /// has no all-reduce, so the "average" is each device's own value): both workers go through
    /// the DDP path — first pass on the local view, votes and barriers around the distributed
    /// backward passes, the second pass (SAM) or the surrogate sync round (GSAM, WSAM, ρ = 0) —
    /// and must neither hang nor change what they compute.
    fn simulated_learner(sam: &SamConfig, model: &Tiny) -> SamLearner<Tiny> {
        let device = Device::flex().autodiff();
        let mut parallel = DataParallel::new(vec![device.clone(), device.clone()], AscentSync::PerDevice);
        // A worker that fails fails the test within seconds, not after the default 10 minutes.
        parallel.timeout = std::time::Duration::from_secs(30);
        let mut wrapped = SamLearner::new(
            model.clone(),
            SamLearnerConfig::new(sam.clone()).with_parallel(parallel),
        )
        .unwrap();
        Arc::get_mut(&mut wrapped.state.0).expect("not shared yet").simulate_ddp = true;
        wrapped
    }

    /// One step of the simulated run: device `j` gets shard `j + salt`. Each device's gradients.
    fn simulated_step(wrapped: &SamLearner<Tiny>, poisoned: Option<usize>, salt: usize) -> Vec<Vec<Vec<u32>>> {
        let workers: Vec<_> = (0..2)
            .map(|j| {
                let w = wrapped.clone();
                std::thread::spawn(move || {
                    let d = Device::flex().autodiff();
                    // Each worker forks the model, as Burn's multi-device strategies do: two
                    // threads' passes on the very same parameter tensors share autodiff graph
                    // nodes, and one thread's backward may consume the other's tape.
                    let w = w.fork(&d);
                    let out = TrainStep::step(&w, shard(j + salt, poisoned == Some(j), &d));
                    (j, bits(&w.model, &out.grads))
                })
            })
            .collect();
        let mut got = vec![Vec::new(); 2];
        for h in workers {
            let (j, b) = h.join().expect("a worker panicked");
            got[j] = b;
        }
        got
    }

    /// Each rank's step count.
    fn rank_steps(wrapped: &SamLearner<Tiny>) -> Vec<u64> {
        (0..2)
            .map(|r| wrapped.sam_record(r).expect("two ranks").scalars["steps"])
            .collect()
    }

    fn simulated(
        sam: &SamConfig,
        model: &Tiny,
        poisoned: Option<usize>,
    ) -> (Vec<Vec<Vec<u32>>>, SamLearnerStats, Vec<u64>) {
        let wrapped = simulated_learner(sam, model);
        let got = simulated_step(&wrapped, poisoned, 0);
        (got, wrapped.stats(), rank_steps(&wrapped))
    }

    /// AE-SAM decides from each device's own `g`; under DDP the devices vote, so that every step
    /// is a SAM step on both devices or on neither (and both commit it). (Its threshold stays
    /// near its start over the run: some steps are SAM steps, some not; which device gets which
    /// rank varies, the CPU device being listed twice.)
    #[test]
    fn simulated_ddp_agrees_on_ae_sams_decision() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        let sam = SamConfig::preset("ae-sam", SamConfig::sgd_base(0.9, 0.0))
            .unwrap()
            .for_run(1000, 64);
        let wrapped = simulated_learner(&sam, &model);
        for round in 0..12 {
            let before = wrapped.stats().second_passes;
            simulated_step(&wrapped, None, 2 * round);
            let ran = wrapped.stats().second_passes - before;
            assert!(
                ran == 0 || ran == 2,
                "step {round}: {ran} of 2 devices ran the second pass"
            );
            assert_eq!(rank_steps(&wrapped), [round as u64 + 1; 2]);
        }
        assert_eq!(wrapped.stats().skipped, 0);
    }

    #[test]
    fn simulated_ddp_gives_each_device_its_own_sam_gradient() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        for preset in ["sam", "gsam", "wsam", "sgd"] {
            let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 0.0)).unwrap();
            let (got, stats, steps) = simulated(&sam, &model, None);
            assert_eq!((stats.steps, stats.skipped), (2, 0), "{preset}");
            assert_eq!(steps, [1, 1], "{preset}: both optimizers committed the step");
            for (j, g) in got.iter().enumerate() {
                let single = SamLearner::new(model.clone(), SamLearnerConfig::new(sam.clone())).unwrap();
                let out = TrainStep::step(&single, shard(j, false, &device));
                assert_eq!(g, &bits(&single.model, &out.grads), "{preset}, device {j}");
                assert!(!g[0].is_empty(), "{preset}");
            }
        }
    }

    #[test]
    fn simulated_ddp_skips_on_every_device_when_one_fails() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        for preset in ["sam", "gsam"] {
            let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 0.0)).unwrap();
            let (got, stats, steps) = simulated(&sam, &model, Some(0));
            assert_eq!((stats.steps, stats.skipped), (0, 2), "{preset}");
            assert_eq!(steps, [0, 0], "{preset}: neither optimizer committed the step");
            assert!(
                got.iter().all(|g| g.iter().all(Vec::is_empty)),
                "{preset}: no gradient anywhere"
            );
            let reason = stats.last_skip.unwrap();
            assert!(
                reason.contains("non-finite") || reason.contains("another device"),
                "{reason}"
            );
        }
    }

    /// The surrogate backward hands each vector back exactly (gradient of ⟨leaf, v⟩ is v).
    #[test]
    fn the_sync_rounds_surrogate_returns_its_vectors() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        let layout = flatmin::Layout::of(&model);
        let inner = device.clone().inner();
        let v = |s: f32| {
            ParamVector::new(
                layout
                    .entries
                    .iter()
                    .map(|e| {
                        let n = e.numel();
                        let data: Vec<f32> = (0..n).map(|i| s * (i as f32 + 0.25)).collect();
                        Some(Tensor::<1>::from_data(TensorData::new(data, [n]), &inner))
                    })
                    .collect(),
            )
        };
        let (a, b) = (v(1.5), v(-3.0));
        let out = all_reduce_through_backward(&layout, &[&a, &b], &device, false);
        for (x, y) in [(&a, &out[0]), (&b, &out[1])] {
            for i in 0..layout.len() {
                let p: Vec<f32> = x.get(i).unwrap().clone().into_data().iter().collect();
                let q: Vec<f32> = y.get(i).unwrap().clone().into_data().iter().collect();
                assert_eq!(p, q);
            }
        }
    }
}
