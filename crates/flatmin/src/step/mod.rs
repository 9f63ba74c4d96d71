//! The SAM step: the optimizer ([`Sam`]), its one-call driver ([`Sam::step`]) and the stages of
//! the two-step API ([`Sam::begin`], [`Sam::ascend`], [`Ascent::select`],
//! [`Ascent::second_pass`], [`Sam::finish`]). The phases are written once, in
//! [`phases`](self::phases) and the stage types; every driver — these two APIs and the
//! `flatmin-learner` adapter for Burn's `Learner` — runs them, and the members answer through
//! their hooks.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::base::BaseOptimizer;
use crate::bridge::{self, Layout};
use crate::config::SamConfig;
use crate::error::{ConfigError, Pass, RecordError, StepError};
use crate::member::{BaseView, Injection, MemberHooks, Schema, StepInfo};
use crate::record::{RecordOut, SamRecord};
use crate::report::{StepReport, StepTimings};
use crate::vector::ParamVector;

mod batch;
mod clock;
mod phases;
mod precision;
mod stages;

pub use batch::Batch;
use clock::PassClock;
pub use phases::{Descent, Update};
use precision::{LossScaler, MasterWeights, Mixed};
pub use stages::{Ascent, FirstPass, Next, PassInput, SecondForward};

/// A SAM-family optimizer, built by [`SamConfig::init`].
///
/// One call per step: [`Sam::step`], with a loss closure. Two steps, the caller running the
/// passes: [`Sam::begin`] → first pass on [`FirstPass::model`] → [`Sam::ascend`] → second pass
/// on [`Ascent::model`] → [`Ascent::second_pass`] → [`Sam::finish`] (or [`Sam::descent`] for a
/// base optimizer outside flatmin).
pub struct Sam {
    config: SamConfig,
    base: BaseOptimizer,
    members: Vec<Box<dyn MemberHooks>>,
    steps: u64,
    timings: StepTimings,
    /// Whether [`Sam::step`] waits for the device around each pass ([`Sam::set_synced_timings`]).
    synced_timings: bool,
    /// The f32 master weights of a half-precision model under [`Precision::Mixed`](crate::Precision::Mixed),
    /// taken from the model on the first step and kept by every step since.
    master: Option<MasterWeights>,
    /// The loss scale of an f16 model under [`Precision::Mixed`](crate::Precision::Mixed).
    scaler: LossScaler,
}

impl SamConfig {
    /// Builds the optimizer, validating every hyperparameter first.
    pub fn init(&self) -> Result<Sam, ConfigError> {
        self.validate()?;
        Ok(Sam {
            base: BaseOptimizer::new(self.base.clone()),
            members: self.members.iter().map(|m| m.spec().build()).collect(),
            config: self.clone(),
            steps: 0,
            timings: StepTimings::default(),
            synced_timings: false,
            master: None,
            scaler: LossScaler::new(&self.precision),
        })
    }
}

impl Sam {
    /// The configuration.
    pub fn config(&self) -> &SamConfig {
        &self.config
    }

    /// How many steps were taken (skipped steps do not count).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Where the wall time of the last one-call [`Sam::step`] went (passes and optimizer work).
    pub fn last_timings(&self) -> StepTimings {
        self.timings
    }

    /// Makes [`Sam::last_timings`] split the step truthfully on a backend that queues its work
    /// (wgpu, CUDA): [`Sam::step`] then waits for the model's device before and after each pass,
    /// so that a pass's time holds its own kernels and the optimizer's queued work is counted as
    /// the optimizer's. Without it the host only queues the passes, and their kernels run at the
    /// step's next read-back, inside what the timings call the optimizer's work.
    ///
    /// Off by default: each wait is a round trip to the device (four in a SAM step) that stops
    /// the host from running ahead of it. The CPU backends run synchronously and need no waits.
    ///
    /// ```
    /// use flatmin::SamConfig;
    ///
    /// let mut sam = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 5e-4)).unwrap().init().unwrap();
    /// sam.set_synced_timings(true);
    /// assert!(sam.synced_timings());
    /// ```
    pub fn set_synced_timings(&mut self, synced: bool) {
        self.synced_timings = synced;
    }

    /// Whether [`Sam::step`] waits for the device around each pass ([`Sam::set_synced_timings`]).
    pub fn synced_timings(&self) -> bool {
        self.synced_timings
    }

    /// The f32 master weights a mixed-precision run keeps of a bf16 or f16 model, one flat
    /// tensor per parameter in visiting order (`None` before its first step, and for a model
    /// trained in its own float type).
    pub fn master_weights(&self) -> Option<&ParamVector> {
        self.master.as_ref().filter(|m| m.half).map(|m| &m.weights)
    }

    /// The loss scale an f16 model's passes are multiplied by under
    /// [`Precision::Mixed`](crate::Precision::Mixed) (`None` under
    /// [`Precision::Native`](crate::Precision::Native); bf16, f32 and f64 models do not use it).
    /// A caller that runs its own backward pass multiplies its loss by it and says so with
    /// [`PassInput::scaled_by`].
    pub fn loss_scale(&self) -> Option<f64> {
        self.config.precision.is_mixed().then_some(self.scaler.scale)
    }

    /// Tells the optimizer that a step of the two-step API on `model` ended with `error`: under
    /// mixed precision, a non-finite gradient of an f16 model makes the loss scale back off (the
    /// step itself changed nothing). [`Sam::step`] does this itself.
    pub fn skipped<M: Module>(&mut self, model: &M, error: &StepError) {
        if matches!(error, StepError::NonFinite { what: "gradient", .. }) {
            self.overflowed(model);
        }
    }

    /// Tells the optimizer that a step on `model` was skipped for an overflow, here or where it
    /// cannot see (another device's step, which every device skips with): under mixed
    /// precision, the loss scale of an f16 model backs off, so that the devices' scales stay
    /// equal. Otherwise nothing changes.
    pub fn overflowed<M: Module>(&mut self, model: &M) {
        if self.config.precision.is_mixed()
            && bridge::float_dtype(model, &Layout::of(model)) == Some(burn::tensor::DType::F16)
        {
            self.scaler.back_off(&self.config.precision);
        }
    }

    /// The step's own weights: under [`Precision::Mixed`](crate::Precision::Mixed), for a bf16
    /// or f16 model, its f32 master weights and loss scale — the kept copy, or the model's
    /// weights in f32 on the first step (or when the model's parameters are no longer those the
    /// copy was taken of); with `master`, that model's (the caller's f32 copy of `model`).
    /// Otherwise, on a fused GPU (where tensors have identities), the model's weights joined in
    /// one buffer — kept from the last step while the model holds the tensors it wrote, read
    /// and joined again when it does not — so that `w + e` and the update are one operation
    /// each. `None` elsewhere: the CPU backend, LibTorch.
    fn mixed_for<M: Module>(&self, model: &M, layout: &Layout, master: Option<&M>) -> Option<Mixed> {
        let dtype = bridge::float_dtype(model, layout);
        if !(self.config.precision.is_mixed() && precision::is_half(dtype)) {
            return self.held_for(model, layout, master.is_some());
        }
        let weights = match (master, &self.master) {
            (Some(master), _) => precision::to_f32(&bridge::values(master, layout)).joined(),
            (None, Some(kept)) if kept.half && kept.fit(model, layout) => kept.weights.clone(),
            (None, _) => precision::to_f32(&bridge::values(model, layout)).joined(),
        };
        let loss_scale = (dtype == Some(burn::tensor::DType::F16)).then_some(self.scaler.scale);
        Some(Mixed {
            weights,
            half: true,
            loss_scale,
            external: master.is_some(),
        })
    }

    /// The joined weights of a model on a fused GPU ([`Sam::mixed_for`]); none for a step whose
    /// weights an outside optimizer updates (`external`), nor for a member that is its own base
    /// optimizer or decays at another point (bSAM, MSAM), whose update goes tensor by tensor.
    fn held_for<M: Module>(&self, model: &M, layout: &Layout, external: bool) -> Option<Mixed> {
        if external || self.config.needs_own_update() || !bridge::has_identities(model) {
            return None;
        }
        let weights = match &self.master {
            Some(kept) if !kept.half && kept.fit(model, layout) => kept.weights.clone(),
            _ => bridge::values(model, layout).joined(),
        };
        Some(Mixed {
            weights,
            half: false,
            loss_scale: None,
            external: false,
        })
    }

    /// Puts a recorded source in place of a member's own draws or choices (ESAM's masks and
    /// selection, bSAM's noise), for a replay of a recorded run.
    pub fn inject(mut self, source: Injection) -> Result<Self, ConfigError> {
        let what = source.what;
        let mut source = Some(source);
        for m in &mut self.members {
            source = m.inject(source.take().expect("still held"));
            if source.is_none() {
                return Ok(self);
            }
        }
        Err(ConfigError::new(
            "inject",
            what,
            "a member that draws it (no member of this configuration does)",
        ))
    }

    // ---- the two-step API --------------------------------------------------------------------

    /// Begins a step at learning rate `lr` (ρ may follow it): the model the first pass runs on,
    /// with what this step drew before it (ESAM's per-tensor mask, bSAM's noise, MSAM's point).
    /// Nothing in the optimizer changes until the step is finished.
    pub fn begin<M: Module>(&self, lr: f64, model: &M) -> FirstPass<M> {
        self.begin_inner(lr, model, None)
    }

    /// Begins a mixed-precision step whose f32 master weights are the caller's: `model` is a
    /// bf16 or f16 copy of `master` (the same parameters, as [`bridge::autocast_copy`] makes it)
    /// that the passes run on, and `master` holds the weights in f32. The perturbation is
    /// computed from `master` in f32 and written to a copy of `model`; the gradients are read
    /// back in f32 (unscaled for f16) and [`Sam::descent`] hands the combined gradient over for
    /// an optimizer outside flatmin (Burn's, in a `Learner`) to apply to `master`, in f32 with
    /// f32 state: PyTorch's autocast, for the SAM step. flatmin keeps no master copy of its own;
    /// the loss scale is its own, as in [`Sam::step`]. Under [`Precision::Native`], or when
    /// `model` is not in half precision, this is [`Sam::begin`] on `model`.
    ///
    /// [`Precision::Native`]: crate::Precision::Native
    ///
    /// ```
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::tensor::{DType, Device, Tensor};
    /// use flatmin::{Precision, Sam, SamConfig, bridge};
    ///
    /// let device = Device::flex().autodiff();
    /// let master = LinearConfig::new(4, 1).init(&device);        // f32: what the outside optimizer updates
    /// let config = SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0))?.with_precision(Precision::mixed());
    /// let mut sam = config.init()?;
    /// let x = Tensor::<2>::ones([8, 4], &device);
    /// let half = bridge::autocast_copy(&master, DType::BF16);   // the passes run in bf16
    /// let loss = |m: &Linear, _: flatmin::Batch<'_>| m.forward(x.clone().cast(DType::BF16)).powi_scalar(2).mean();
    /// let first = sam.begin_with_master(0.1, &half, &master);
    /// let input = first.run(None, |m: &Linear, b, _| loss(m, b))?;
    /// let flatmin::Next::Ascent(ascent) = sam.ascend(&half, first, input)? else { unreachable!() };
    /// let second = ascent.second_forward(None, |m: &Linear| m.clone(), |m: &Linear, b, _| loss(m, b))?;
    /// let update = ascent.second_pass(second.backward())?;
    /// let descent = sam.descent(update)?;                         // g_p in f32, for master's optimizer
    /// assert_eq!(descent.gradient.get(0).unwrap().dtype(), DType::F32);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn begin_with_master<M: Module>(&self, lr: f64, model: &M, master: &M) -> FirstPass<M> {
        self.begin_inner(lr, model, Some(master))
    }

    fn begin_inner<M: Module>(&self, lr: f64, model: &M, master: Option<&M>) -> FirstPass<M> {
        let mut work: Vec<Box<dyn MemberHooks>> = self.members.iter().map(|m| m.clone_box()).collect();
        let base_only = self.config.is_base_only();
        let decides_after = self.config.members.iter().any(|m| m.spec().decides_after_first_pass());
        let plan = if base_only {
            Some(false)
        } else {
            let planned = work.iter().find_map(|m| m.plan(self.steps));
            match planned {
                Some(p) => Some(p),
                None if decides_after => None,
                None => Some(true),
            }
        };
        let per_sample = plan != Some(false) && self.config.needs_sample_losses();
        let mut first = FirstPass {
            view: model.clone(),
            lr,
            step: self.steps,
            plan,
            decided: false,
            work: Vec::new(),
            tensor_mask: None,
            offset: None,
            per_sample,
            layout: None,
            mixed: None,
        };
        if base_only && !self.config.precision.is_mixed() && !bridge::has_identities(model) {
            first.work = work;
            return first;
        }
        let layout = Layout::of(model);
        first.mixed = self.mixed_for(model, &layout, master);
        if base_only {
            first.work = work;
            first.layout = Some(layout);
            return first;
        }
        let info = StepInfo {
            layout: &layout,
            step: self.steps,
            rho: self.config.rho_at(lr),
            eps: self.config.eps,
            base: &self.base,
        };
        // The point of the first pass (bSAM's noise, MSAM's step along the momentum): it shares
        // the model's BatchNorm statistics, which the first pass updates.
        let offset = if self.config.needs_own_update() {
            let w = if work.iter().any(|m| m.offset_reads_weights()) {
                match &first.mixed {
                    Some(mixed) => mixed.weights.clone(),
                    None => bridge::values(model, &layout),
                }
            } else {
                Default::default()
            };
            work.iter_mut().find_map(|m| m.first_pass_offset(&info, &w))
        } else {
            None
        };
        if let Some((offset, _)) = &offset {
            first.view = match &first.mixed {
                Some(mixed) => bridge::moved_sharing_statistics(model, &layout, mixed.shifted(offset)),
                None => bridge::shifted_sharing_statistics(model, &layout, offset.clone()),
            };
        } else if plan != Some(false)
            && let Some(mask) = work.iter_mut().find_map(|m| m.tensor_mask(layout.len()))
        {
            // ESAM: the left-out tensors track no gradient in the first pass. When the mask
            // leaves every tensor out, the view tracks every tensor (a backward pass always has
            // something to differentiate) and the step perturbs nothing: `e = 0`.
            if mask.iter().any(|&k| k) {
                first.view = bridge::with_tracked(model, &layout, &mask);
            }
            first.tensor_mask = Some(mask);
        }
        first.offset = offset;
        first.work = work;
        first.layout = Some(layout);
        first
    }

    /// The first pass's result (its losses, or gradients: see [`PassInput`]) taken in: the
    /// step's decision, and either the perturbed model for the second pass or, on a step without
    /// one, the update. `model` is the model the step was begun with (the weights `w`).
    /// Nothing changes in the optimizer; a non-finite loss or gradient is an error.
    pub fn ascend<M: Module>(
        &self,
        model: &M,
        first: FirstPass<M>,
        input: impl Into<PassInput>,
    ) -> Result<Next<M>, StepError> {
        let expect = first.expect(None);
        let precision = first.precision();
        let input = input
            .into()
            .evaluate(&first.view, expect, precision, &mut PassClock::default())?;
        self.ascend_evaluated(model, first, input)
    }

    fn ascend_evaluated<M: Module>(
        &self,
        model: &M,
        first: FirstPass<M>,
        input: PassInput,
    ) -> Result<Next<M>, StepError> {
        if first.step != self.steps {
            return Err(StepError::Stale {
                begun: first.step,
                now: self.steps,
            });
        }
        let FirstPass {
            view,
            lr,
            step,
            plan,
            decided,
            mut work,
            tensor_mask,
            offset,
            layout,
            mixed,
            ..
        } = first;
        let layout = layout.unwrap_or_else(|| Layout::of(model));
        // MSAM: the base optimizer's decay is taken at the first pass's point, the view's weights
        // (in f32 from the master weights in a mixed-precision step).
        let decay_at = (offset.is_some()
            && work.iter().any(|m| m.decays_at_first_pass_point())
            && self.base.gradient_weight_decay() != 0.0)
            .then(|| match (&mixed, &offset) {
                (Some(mixed), Some((offset, _))) => mixed.shifted(offset),
                _ => bridge::values(&view, &layout),
            });
        drop(view);
        let grads = input.grads.as_ref().expect("the first pass was evaluated");
        let half = mixed.as_ref().is_some_and(|m| m.half);
        let g = precision::gradients(model, &layout, grads, half, input.scaled_by);
        let measured = phases::measure_first(g, tensor_mask.as_deref())?;
        let second = if decided {
            plan.unwrap_or(true)
        } else {
            let decision = if self.config.members.iter().any(|m| m.spec().decides_after_first_pass()) {
                stages::decide(&mut work, step, measured.squared)
            } else {
                true
            };
            plan.unwrap_or(decision)
        };
        let info = StepInfo {
            layout: &layout,
            step,
            rho: self.config.rho_at(lr),
            eps: self.config.eps,
            base: &self.base,
        };
        if !second {
            let update = phases::base_step(
                &info,
                layout.clone(),
                work,
                measured,
                offset,
                decay_at,
                input.loss,
                self.config.measure,
                lr,
                mixed,
            )?;
            return Ok(Next::Update(update));
        }
        let g_norm = measured.squared.sqrt();
        let g = measured.g;
        let (perturbed, e_norm) = phases::perturb(&info, model, &mut work, &g, g_norm, mixed.as_ref());
        let rho = info.rho;
        Ok(Next::Ascent(Ascent {
            model: perturbed,
            origin: model.clone(),
            layout,
            g,
            g_norm,
            e_norm,
            rho,
            eps: self.config.eps,
            measure: self.config.measure,
            lr,
            step,
            tensor_mask,
            work,
            g_from_e: false,
            loss: input.loss,
            before: input.values,
            first_count: input.count,
            sharpness: None,
            selected: None,
            mixed,
        }))
    }

    /// Applies the update to `model` (the weights `w`) with the base optimizer (or a member's
    /// own) and makes the step's member state the optimizer's. The model always comes back:
    /// updated with the report, or untouched with the reason (an update of an older step).
    pub fn finish<M: Module>(&mut self, model: M, mut update: Update) -> (M, Result<StepReport, StepError>) {
        if update.step != self.steps {
            return (
                model,
                Err(StepError::Stale {
                    begun: update.step,
                    now: self.steps,
                }),
            );
        }
        let layout = update.descent.layout.clone();
        let scaled = update.mixed.as_ref().is_some_and(|m| m.loss_scale.is_some());
        let half = update.mixed.as_ref().is_some_and(|m| m.half);
        // The step's copy of the weights is then the only one: updated in place.
        self.master = None;
        let (model, master) = phases::apply(&mut self.base, model, &mut update);
        if let Some(weights) = master {
            let identities = bridge::identities(&model, &layout);
            self.master = Some(MasterWeights {
                layout,
                weights,
                half,
                identities,
            });
        }
        if scaled {
            self.scaler.good_step(&self.config.precision);
        }
        self.members = update.work;
        self.steps += 1;
        (model, Ok(update.descent.report))
    }

    /// The update handed to a base optimizer outside flatmin (Burn's, in a `Learner`): the step
    /// is committed as [`Sam::finish`] commits it (the members' state, the step count), but
    /// flatmin's own base optimizer neither runs nor changes. A step that needs flatmin's own
    /// base optimizer (bSAM, MSAM) is refused, as is a mixed-precision step on flatmin's own
    /// master weights; one begun with [`Sam::begin_with_master`] hands over the gradient in f32
    /// (unscaled) for the caller's f32 model, and counts toward the loss scale's growth.
    pub fn descent(&mut self, update: Update) -> Result<Descent, StepError> {
        if update.step != self.steps {
            return Err(StepError::Stale {
                begun: update.step,
                now: self.steps,
            });
        }
        if self.config.needs_own_update() {
            return Err(StepError::OwnUpdate);
        }
        let scaled = match &update.mixed {
            Some(mixed) if mixed.half && !mixed.external => return Err(StepError::MasterWeights),
            Some(mixed) => mixed.loss_scale.is_some(),
            None => false,
        };
        // The outside optimizer changes the model: weights kept joined would be stale.
        if self.master.as_ref().is_some_and(|m| !m.half) {
            self.master = None;
        }
        if scaled {
            self.scaler.good_step(&self.config.precision);
        }
        self.members = update.work;
        self.steps += 1;
        Ok(update.descent)
    }

    // ---- one call per step -------------------------------------------------------------------

    /// One-call API: runs the whole step on `model` at learning rate `lr`.
    ///
    /// `loss_fn(model, batch)` runs a forward pass of `model` on the requested samples of the
    /// current batch and returns their losses, one per sample (shape `[n]`), or their mean
    /// (shape `[1]`) when the configured selection does not need per-sample losses. It is called
    /// for the first pass, for ESAM's selection forward (on a model that tracks no gradient),
    /// and for the second pass; a closure that returns another number of losses than it was
    /// asked for (e.g. ignores the [`Batch`]) gets [`StepError::LossCount`].
    ///
    /// BatchNorm running statistics are updated by the first pass only. The model always comes
    /// back: updated with the step's report, or untouched with the reason it was skipped.
    pub fn step<M, F>(&mut self, lr: f64, model: M, mut loss_fn: F) -> (M, Result<StepReport, StepError>)
    where
        M: Module,
        F: FnMut(&M, Batch<'_>) -> Tensor<1>,
    {
        let started = Instant::now();
        let device = self.synced_timings.then(|| bridge::device(&model)).flatten();
        let mut clock = PassClock::synced_on(device);
        let mut loss_fn = |m: &M, batch: Batch<'_>, _: Pass| loss_fn(m, batch);
        let update = self.run_phases(lr, &model, &mut loss_fn, &mut clock);
        let out = match update {
            Ok(update) => self.finish(model, update),
            Err(e) => {
                self.skipped(&model, &e);
                (model, Err(e))
            }
        };
        self.timings = clock.timings(started.elapsed());
        out
    }

    /// The phases in order, for the one-call API, up to the update.
    fn run_phases<M, F>(&self, lr: f64, model: &M, loss_fn: &mut F, clock: &mut PassClock) -> Result<Update, StepError>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        let first = self.begin(lr, model);
        let input = first.run_timed(None, loss_fn, clock)?;
        let mut ascent = match self.ascend_evaluated(model, first, input)? {
            Next::Update(update) => return Ok(update),
            Next::Ascent(ascent) => ascent,
        };
        if self.releases_g() && ascent.mixed.as_ref().is_none_or(|m| !m.half) {
            // Nothing after the perturbation needs `g` (and the report's cosine, if measured,
            // comes from `e`): its memory is free during the second pass.
            ascent.g = Default::default();
            ascent.g_from_e = true;
        }
        let ascent = ascent.select_timed(None, loss_fn, clock)?;
        let second = ascent.second_forward_timed(None, |m| m.clone(), loss_fn, clock)?;
        let input = second.backward_timed(clock);
        ascent.second_pass_timed(input, clock)
    }

    /// Whether `g` may be let go after the perturbation: no member needs it, and the report's
    /// cosine, if measured, can be had from `e` (which stays along `g`).
    fn releases_g(&self) -> bool {
        !self.members.iter().any(|m| m.needs_g_later())
            && (!self.config.measure || self.members.iter().all(|m| m.e_along_g()))
    }

    // ---- record ------------------------------------------------------------------------------

    /// The optimizer's state: the base optimizer's and every member's, under their names, and the
    /// step count.
    pub fn record(&self) -> SamRecord {
        let mut out = RecordOut::default();
        self.base.save(&mut out);
        for m in &self.members {
            m.save(&mut out);
        }
        out.scalar("steps".into(), self.steps);
        if self.config.precision.is_mixed() {
            if let Some(master) = self.master.as_ref().filter(|m| m.half) {
                for (entry, t) in master.layout.entries.iter().zip(master.weights.slots()) {
                    if let Some(t) = t {
                        out.tensor(format!("{MASTER}{}", entry.path), t);
                    }
                }
            }
            out.scalar(LOSS_SCALE.into(), self.scaler.scale.to_bits());
            out.scalar(GOOD_STEPS.into(), self.scaler.good_steps);
        }
        SamRecord::from_out(out)
    }

    /// Restores state from [`Sam::record`] into this optimizer (built from the same config) and
    /// checks that it fits `model`, the model it will train: every buffer belongs to one of its
    /// parameters and has that parameter's number of elements and float type. A record of
    /// another model, or a damaged one, is then an error here rather than a panic in the next
    /// step.
    pub fn load_record<M: Module>(mut self, record: SamRecord, model: &M) -> Result<Self, RecordError> {
        let mut record = record.into_in();
        // Weights kept from earlier steps belong to the state being replaced.
        self.master = None;
        for m in &mut self.members {
            m.load(&mut record)?;
        }
        self.base.load(&mut record)?;
        if self.config.precision.is_mixed() {
            self.load_precision(&mut record, model)?;
        }
        if let Some(name) = record.tensors.keys().min() {
            return Err(RecordError::Mismatch(format!("unknown tensor `{name}`")));
        }
        self.steps = record.uint("steps")?;
        // Records before the member registry wrote ESAM's generator (`rng/`) for every
        // configuration; any other scalar left over belongs to a member this one lacks.
        if let Some(name) = record.scalars.keys().find(|k| !k.starts_with("rng/")) {
            return Err(RecordError::Mismatch(format!(
                "unknown scalar `{name}`: the record is of a configuration with another member"
            )));
        }
        self.check_fits(model)?;
        Ok(self)
    }

    /// The master weights (`master/<path>`, f32, one per parameter of `model`) and the loss
    /// scale (`loss_scale/bits`, `loss_scale/good_steps`) of a mixed-precision record. A record
    /// without them (taken before the first step, or by a flatmin before mixed precision)
    /// leaves the initial scale, and the master weights are read from the model.
    fn load_precision<M: Module>(
        &mut self,
        record: &mut crate::record::RecordIn,
        model: &M,
    ) -> Result<(), RecordError> {
        let mut master = record.map(MASTER);
        if !master.is_empty() {
            let layout = Layout::of(model);
            let mut slots = Vec::with_capacity(layout.len());
            for entry in &layout.entries {
                let t = master.remove(&entry.path);
                if let Some(t) = &t
                    && (t.dims()[0] != entry.numel() || t.dtype() != burn::tensor::DType::F32)
                {
                    return Err(RecordError::Mismatch(format!(
                        "master weights of `{}`: {} values of {:?}, but the parameter has {} (kept in F32)",
                        entry.path,
                        t.dims()[0],
                        t.dtype(),
                        entry.numel()
                    )));
                }
                slots.push(t);
            }
            if let Some(path) = master.keys().min() {
                return Err(RecordError::Mismatch(format!(
                    "master weights of `{path}`: the model has no such parameter"
                )));
            }
            self.master = Some(MasterWeights {
                layout,
                weights: ParamVector::new(slots),
                half: true,
                identities: None,
            });
        }
        if record.scalars.contains_key(LOSS_SCALE) {
            let scale = f64::from_bits(record.uint(LOSS_SCALE)?);
            if !(scale.is_finite() && scale > 0.0) {
                return Err(RecordError::Mismatch(format!(
                    "scalar `{LOSS_SCALE}`: {scale}, expected a finite loss scale > 0"
                )));
            }
            self.scaler = LossScaler {
                scale,
                good_steps: record.uint(GOOD_STEPS)?,
            };
        }
        Ok(())
    }

    fn check_fits<M: Module>(&self, model: &M) -> Result<(), RecordError> {
        let layout = Layout::of(model);
        // Under mixed precision a half-precision model's optimizer state is kept in f32.
        let kept_in_f32 = self.config.precision.is_mixed() && precision::is_half(bridge::float_dtype(model, &layout));
        let values = bridge::values(model, &layout);
        let params: std::collections::HashMap<&str, (usize, burn::tensor::DType)> = layout
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let dtype = |v: &Tensor<1>| {
                    if kept_in_f32 {
                        burn::tensor::DType::F32
                    } else {
                        v.dtype()
                    }
                };
                values.get(i).map(|v| (e.path.as_str(), (e.numel(), dtype(v))))
            })
            .collect();
        let check = |what: &str, path: &str, t: &Tensor<1>| match params.get(path) {
            None => Err(RecordError::Mismatch(format!(
                "{what} of `{path}`: the model has no such parameter"
            ))),
            Some(&(n, dtype)) if t.dims()[0] != n || t.dtype() != dtype => Err(RecordError::Mismatch(format!(
                "{what} of `{path}`: {} values of {:?}, but the parameter has {n} of {dtype:?}",
                t.dims()[0],
                t.dtype()
            ))),
            Some(_) => Ok(()),
        };
        for (path, state) in &self.base.states {
            for (what, t) in state.buffers() {
                check(what, path, t)?;
            }
        }
        for m in &self.members {
            for (what, path, t) in m.buffers() {
                check(what, path, t)?;
            }
        }
        Ok(())
    }
}

/// The record's prefix of the f32 master weights of a mixed-precision run.
const MASTER: &str = "master/";
/// The record's loss scale (the bits of an `f64`) and its count of good steps in a row.
const LOSS_SCALE: &str = "loss_scale/bits";
const GOOD_STEPS: &str = "loss_scale/good_steps";

impl SamConfig {
    /// The record names this configuration's members may hold, known before any step: what a
    /// checkpoint of fixed layout (the Learner's model record) allocates. The step count
    /// (`steps`) is always there.
    pub fn record_schema(&self) -> Schema {
        let mut schema = Schema {
            maps: Vec::new(),
            scalars: vec!["steps".into()],
        };
        for m in &self.members {
            let s = m.spec().build().schema();
            schema.maps.extend(s.maps);
            schema.scalars.extend(s.scalars);
        }
        if self.precision.is_mixed() {
            schema.maps.push(MASTER);
            schema.scalars.extend([LOSS_SCALE.to_string(), GOOD_STEPS.to_string()]);
        }
        schema
    }

    /// [`SamConfig::record_schema`] of a run whose updates an optimizer outside flatmin applies
    /// ([`Sam::descent`]): without the master weights, which such a run's caller holds (its
    /// f32 model, [`Sam::begin_with_master`]); the loss scale stays.
    pub fn record_schema_for_descent(&self) -> Schema {
        let mut schema = self.record_schema();
        schema.maps.retain(|m| *m != MASTER);
        schema
    }
}
