//! The phases of a SAM step, each written once: first pass, perturbation, selection, second
//! pass, combination, base update and report. [`Sam::step`], the two-step API and the Learner
//! adapter of `flatmin-learner` all drive these functions.
//!
//! Nothing in the optimizer changes until a step is committed ([`Sam::update`] or
//! [`Sam::descent`]): a phase that fails leaves the weights and every piece of state as they
//! were, and hands the reason back.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::{Batch, Expect, Sam};
use crate::adaptive::AdaptiveState;
use crate::base::BaseConfig;
use crate::base::bsam;
use crate::bridge::{self, Layout};
use crate::combination::{Combination, Combined, Measures, combine};
use crate::error::{Pass, StepError};
use crate::looksam::LookState;
use crate::masks::{Draws, SwpGranularity, mask_tensor};
use crate::perturbation::friendly::FriendlyState;
use crate::perturbation::{self, Geometry};
use crate::report::StepReport;
use crate::rng::Rng;
use crate::sam::clock::Phase;
use crate::schedule::PassSchedule;
use crate::vector::{self, ParamVector, read};

/// The first pass of a step: its gradients at `w` and what the later phases need of its losses.
pub struct FirstPass {
    /// The gradients of the first pass (at `w`, on the tensors ESAM's mask kept). A data-parallel
    /// driver may replace them with an average over devices before [`Sam::ascend`].
    pub grads: GradientsParams,
    /// `L(w)`: the mean of the losses the closure returned.
    pub loss: f64,
    /// The per-sample losses at `w` (kept only when the selection needs them).
    before: Vec<f64>,
    /// How many losses the closure returned.
    count: usize,
    /// Whether this step runs the second pass (the schedule's choice).
    second_pass: bool,
}

impl FirstPass {
    /// Whether the step goes on to the second pass ([`Sam::ascend`]) or is a base step on `g`
    /// ([`Sam::base_update`], [`Sam::base_descent`]).
    pub fn runs_second_pass(&self) -> bool {
        self.second_pass
    }

    /// The per-sample losses at `w` (empty unless the selection needs them).
    pub fn sample_losses(&self) -> &[f64] {
        &self.before
    }
}

/// The perturbed model of a step in progress, with what the rest of the step needs.
///
/// Run the second pass on [`Ascent::model`], then hand the ascent back to [`Sam::update`] (or
/// [`Sam::descent`]). With ESAM's selection, [`Sam::select`] (or [`Sam::selection_pass`]) first
/// chooses the samples the second pass uses ([`Ascent::selected`]).
pub struct Ascent<M> {
    model: M,
    layout: Layout,
    g: ParamVector,
    g_norm: f64,
    e_norm: f64,
    rho: f64,
    tensor_mask: Option<Vec<bool>>,
    next_friendly: Option<FriendlyState>,
    draws: Draws,
    /// `g` was let go before the second pass (the one-call step, where `e` is a positive
    /// multiple of `g` and nothing but the report's cosine needs `g`): the cosine is measured
    /// on `e = (w + e) − w` instead.
    g_from_e: bool,
    loss: Option<f64>,
    before: Vec<f64>,
    first_count: Option<usize>,
    sharpness: Option<Vec<f64>>,
    selected: Option<Vec<usize>>,
    loss_perturbed: Option<f64>,
    /// AE-SAM's statistics after this step.
    adaptive_next: Option<AdaptiveState>,
    /// bSAM's noise generator after this step's draws.
    noise: Option<Rng>,
}

impl<M> Ascent<M> {
    /// The model at `w + e`, for the second pass. Its BatchNorm running statistics are its own:
    /// the second pass does not change the original model's.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// `‖g‖` of the first pass.
    pub fn grad_norm(&self) -> f64 {
        self.g_norm
    }

    /// `‖e‖`.
    pub fn perturbation_norm(&self) -> f64 {
        self.e_norm
    }

    /// The batch positions the second pass must use, once [`Sam::select`] chose them (`None`:
    /// the whole batch).
    pub fn selected(&self) -> Option<&[usize]> {
        self.selected.as_deref()
    }

    /// The samples the second pass is asked for.
    pub fn request(&self) -> Batch<'_> {
        Batch::of(self.selected.as_deref())
    }

    /// Lets `g` go before the second pass; the report's cosine is then measured on `e`. Only
    /// valid when `e` is a positive multiple of `g` ([`Sam::e_follows_g`]).
    pub(crate) fn release_g(&mut self) {
        self.g = ParamVector::default();
        self.g_from_e = true;
    }
}

/// The second pass's forward: the loss at `w + e` on the selected samples, ready for its
/// backward pass.
pub struct SecondPass {
    /// The mean loss at `w + e`, on the autodiff tape.
    pub loss: Tensor<1>,
    /// Its value.
    pub value: f64,
}

impl SecondPass {
    /// The backward pass: the gradients of `model`'s parameters (the perturbed model the
    /// forward ran on).
    pub fn backward<M: Module>(self, model: &M) -> GradientsParams {
        bridge::backward(self.loss, model)
    }
}

/// What a step hands to a base optimizer that flatmin does not run.
///
/// The base optimizer applies [`Descent::gradient`] to the unperturbed weights; with decoupled
/// WSAM it must then apply `w −= lr · sharpness_weight · sharpness` outside its momentum and
/// moments, as [`Sam::update`] does.
#[derive(Debug, Clone)]
pub struct Descent {
    /// The parameters the vectors below are laid out on.
    pub layout: Layout,
    /// What the base optimizer gets: `g_p`, or the combination's mix of `g` and `g_p`.
    pub gradient: ParamVector,
    /// Decoupled WSAM: `g_p − g`, applied after the base step, outside its state.
    pub sharpness: Option<ParamVector>,
    /// α, the weight of `sharpness`.
    pub sharpness_weight: f64,
    /// The step's measurements.
    pub report: StepReport,
}

/// What the update knows of the two gradients before measuring anything: `‖g‖`, and
/// `(‖g_p‖, g·g_p)` when the caller has them (the base step, where `g_p = g`).
struct Known {
    g_norm: f64,
    gp: Option<(f64, f64)>,
}

/// What a step changes besides the weights and the base optimizer, made permanent together
/// (and, for bSAM's update, the first pass's gradient).
#[derive(Default)]
struct Commit {
    friendly: Option<FriendlyState>,
    draws: Draws,
    adaptive: Option<AdaptiveState>,
    look: Option<LookState>,
    noise: Option<Rng>,
    /// bSAM: `g` at the noisy weights, which its precision update needs.
    first_gradient: Option<ParamVector>,
}

impl Sam {
    // ---- first pass -----------------------------------------------------------------------

    /// The model for the first pass (two-step API). With ESAM's per-tensor mask it draws this
    /// step's mask and returns a view of `model` in which the left-out tensors track no
    /// gradient, so the backward pass skips their weight gradients; otherwise a plain clone.
    ///
    /// When the mask leaves every tensor out, the view tracks every tensor (a backward pass
    /// always has something to differentiate) and the step perturbs nothing: `e = 0`, so the
    /// second pass is taken at `w` and the step is a base step on its gradient.
    ///
    /// With bSAM it draws this step's noise and returns the model at the noisy weights
    /// `w + n/√(N·s)`; it shares `model`'s BatchNorm running statistics, which its forward pass
    /// updates (the first pass's, as for every member).
    pub fn first_pass_model<M: Module>(&mut self, model: &M) -> M {
        if let BaseConfig::Bsam(config) = &self.config.base {
            let layout = Layout::of(model);
            let w = bridge::values(model, &layout);
            let mut pending = None;
            let source = self.noise.source(&mut pending);
            let offsets = w.map(|i, wi| {
                let s = match self.base.precision(&layout.entries[i].path) {
                    Some(s) => s.clone(),
                    None => config.initial_precision(wi),
                };
                bsam::noisy_offset(config, source, &s)
            });
            self.pending_noise = pending;
            // The noisy pass is the step's first pass: it owns BatchNorm's statistics update.
            return bridge::shifted_sharing_statistics(model, &layout, offsets);
        }
        let Some(beta) = self.per_tensor_swp() else {
            return model.clone();
        };
        let layout = Layout::of(model);
        let mut draws = Draws::default();
        let mask = self.masks.draw(&mut draws, |m| m.tensor_mask(layout.len(), beta));
        let view = if mask.iter().any(|&k| k) {
            bridge::with_tracked(model, &layout, &mask)
        } else {
            model.clone()
        };
        self.pending_mask = Some((mask, draws));
        view
    }

    /// The first pass with a loss closure: the losses of `model` (or of `rows` of the batch, for
    /// a driver that splits it) at `w`, checked, and their gradients. `loss_fn(model, batch,
    /// pass)` returns one loss per requested sample, or their mean where the selection needs no
    /// per-sample losses.
    pub fn first_pass<M, F>(
        &mut self,
        model: &M,
        rows: Option<&[usize]>,
        loss_fn: &mut F,
    ) -> Result<FirstPass, StepError>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        let second_pass = self.runs_second_pass();
        let view = if second_pass {
            self.first_pass_model(model)
        } else {
            model.clone()
        };
        let out = self.first_pass_on(&view, rows, second_pass, loss_fn);
        if out.is_err() {
            self.pending_mask = None;
            self.pending_noise = None;
        }
        out
    }

    fn first_pass_on<M, F>(
        &mut self,
        view: &M,
        rows: Option<&[usize]>,
        second_pass: bool,
        loss_fn: &mut F,
    ) -> Result<FirstPass, StepError>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        let per_sample = second_pass && self.needs_sample_losses();
        let losses = self.clock.time(|| loss_fn(view, Batch::of(rows), Pass::First));
        let count = losses.dims()[0];
        Expect {
            pass: Pass::First,
            count: rows.map(<[usize]>::len),
            per_sample,
        }
        .check(count)?;
        let before = if per_sample {
            bridge::to_f64(losses.clone().detach().inner())
        } else {
            Vec::new()
        };
        let loss_tensor = losses.mean();
        let loss = bridge::to_f64(loss_tensor.clone().detach().inner())[0];
        if !loss.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::First,
                what: "loss",
            });
        }
        let grads = self.clock.time(|| bridge::backward(loss_tensor, view));
        self.clock.mark(Phase::FirstPassEnd);
        // AE-SAM decides now, from `‖g‖²`.
        let second_pass = second_pass
            && match self.schedule() {
                PassSchedule::Adaptive(c) => {
                    let squared = squared_norm_of(view, &grads);
                    self.adaptive.decide(c, self.steps, squared).second_pass
                }
                _ => true,
            };
        Ok(FirstPass {
            grads,
            loss,
            before,
            count,
            second_pass,
        })
    }

    // ---- perturbation ---------------------------------------------------------------------

    /// [`Sam::perturb`] from a [`FirstPass`], keeping its losses for the selection and the report.
    pub fn ascend<M: Module>(&mut self, lr: f64, model: &M, first: FirstPass) -> Result<Ascent<M>, StepError> {
        let mut ascent = self.perturb(lr, model, &first.grads)?;
        ascent.loss = Some(first.loss);
        ascent.before = first.before;
        ascent.first_count = Some(first.count);
        Ok(ascent)
    }

    /// Two-step API, first half: makes `e` from the first-pass gradients `grads` of `model` and
    /// returns the model at `w + e`. `lr` is this step's learning rate (ρ may follow it).
    ///
    /// Nothing in the optimizer changes until [`Sam::update`] commits the step; a non-finite
    /// gradient is an error and leaves everything as it was.
    pub fn perturb<M: Module>(&mut self, lr: f64, model: &M, grads: &GradientsParams) -> Result<Ascent<M>, StepError> {
        let layout = Layout::of(model);
        let (tensor_mask, mut draws) = match self.per_tensor_swp() {
            Some(beta) => match self.pending_mask.take() {
                Some((mask, draws)) if mask.len() == layout.len() => (Some(mask), draws),
                _ => {
                    let mut draws = Draws::default();
                    let mask = self.masks.draw(&mut draws, |m| m.tensor_mask(layout.len(), beta));
                    (Some(mask), draws)
                }
            },
            None => (None, Draws::default()),
        };
        let mut g = bridge::gradients(model, &layout, grads);
        if let Some(mask) = &tensor_mask {
            let slots = g
                .into_slots()
                .into_iter()
                .zip(mask)
                .map(|(t, &keep)| if keep { t } else { None });
            g = ParamVector::new(slots.collect());
        }
        if g.is_vacant() && tensor_mask.as_ref().is_none_or(|m| m.iter().any(|&k| k)) {
            return Err(StepError::NoGradients);
        }
        let squared = read(vec![g.squared_norm_lazy()])[0];
        let g_norm = squared.sqrt();
        if !g_norm.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::First,
                what: "gradient",
            });
        }
        let adaptive_next = self.adaptive_after(squared);
        let noise = self.pending_noise.take();
        let rho = self.rho_at(lr);
        if let BaseConfig::Bsam(config) = &self.config.base {
            let e = g.map(|i, gi| match self.base.precision(&layout.entries[i].path) {
                Some(s) => bsam::ascent(rho, gi, s),
                None => bsam::ascent(rho, gi, &config.initial_precision(gi)),
            });
            let e_norm = e.norm();
            let perturbed = bridge::perturbed_by(model, &layout, e);
            return Ok(Ascent {
                adaptive_next,
                noise,
                e_norm,
                ..self.ascent_at(perturbed, layout, g, g_norm, rho, tensor_mask, None, draws)
            });
        }
        let (d, next_friendly) = match &self.config.friendly {
            Some(f) => {
                let (d, next) = self.friendly.direction(f, &layout, &g);
                (d, Some(next))
            }
            None => (g.clone(), None),
        };
        // Without F-SAM's transform the direction is `g`, whose norm is known.
        let d_norm = self.config.friendly.is_none().then_some(g_norm);
        let element_mask = match &self.config.swp {
            Some(s) if s.granularity == SwpGranularity::PerElement => {
                let beta = s.beta;
                let mut bits = Vec::with_capacity(layout.len());
                for (i, entry) in layout.entries.iter().enumerate() {
                    bits.push(match d.get(i) {
                        Some(t) => {
                            let b = self.masks.draw(&mut draws, |m| m.element_mask(entry.numel(), beta));
                            Some(mask_tensor(&b, t))
                        }
                        None => None,
                    });
                }
                Some(ParamVector::new(bits))
            }
            _ => None,
        };
        let beta = self.config.swp.as_ref().map(|s| s.beta).unwrap_or(1.0);
        let w = match self.config.geometry {
            Geometry::Euclidean => ParamVector::default(),
            _ => bridge::values(model, &layout),
        };
        let radius = perturbation::Radius {
            geometry: &self.config.geometry,
            rho,
            eps: self.config.eps,
            beta,
            d_norm,
        };
        let made = perturbation::make(&radius, &d, &w, &layout, element_mask.as_ref());
        drop((d, w, element_mask));
        let perturbed = bridge::perturbed_by(model, &layout, made.e);
        Ok(Ascent {
            e_norm: made.e_norm,
            adaptive_next,
            noise,
            ..self.ascent_at(perturbed, layout, g, g_norm, rho, tensor_mask, next_friendly, draws)
        })
    }

    /// An ascent to `perturbed` with nothing measured after the perturbation yet.
    #[allow(clippy::too_many_arguments)]
    fn ascent_at<M>(
        &self,
        perturbed: M,
        layout: Layout,
        g: ParamVector,
        g_norm: f64,
        rho: f64,
        tensor_mask: Option<Vec<bool>>,
        next_friendly: Option<FriendlyState>,
        draws: Draws,
    ) -> Ascent<M> {
        Ascent {
            model: perturbed,
            layout,
            g,
            g_norm,
            e_norm: 0.0,
            rho,
            tensor_mask,
            next_friendly,
            draws,
            g_from_e: false,
            loss: None,
            before: Vec::new(),
            first_count: None,
            sharpness: None,
            selected: None,
            loss_perturbed: None,
            adaptive_next: None,
            noise: None,
        }
    }

    /// AE-SAM's statistics after a step whose first-pass gradient has `‖g‖² = squared`.
    fn adaptive_after(&self, squared: f64) -> Option<AdaptiveState> {
        match self.schedule() {
            PassSchedule::Adaptive(c) => Some(self.adaptive.decide(c, self.steps, squared).next),
            _ => None,
        }
    }

    /// Whether `e` is a positive multiple of `g` and nothing after the perturbation needs `g`
    /// itself (Euclidean ball, no F-SAM, no per-element mask, plain combination).
    pub(crate) fn e_follows_g(&self) -> bool {
        matches!(self.config.geometry, Geometry::Euclidean)
            && self.config.friendly.is_none()
            && self
                .config
                .swp
                .as_ref()
                .is_none_or(|s| s.granularity == SwpGranularity::PerTensor)
            && matches!(self.config.combination, Combination::Plain)
            && self.config.looksam.is_none()
            && !matches!(self.config.base, BaseConfig::Bsam(_))
    }

    // ---- selection ------------------------------------------------------------------------

    /// ESAM's selection as one piece: from the per-sample losses at `w` (`before`) and at
    /// `w + e` (`after`), the sharpness `after − before` and the sorted positions the second
    /// pass uses (every position when the configured selection needs no losses). Changes
    /// nothing; [`Sam::select`] records the choice in a step.
    pub fn select_samples(&mut self, before: &[f64], after: &[f64]) -> Result<(Vec<f64>, Vec<usize>), StepError> {
        Expect {
            pass: Pass::Selection,
            count: Some(before.len()),
            per_sample: true,
        }
        .check(after.len())?;
        let sharpness: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        if sharpness.iter().any(|v| !v.is_finite()) {
            return Err(StepError::NonFinite {
                pass: Pass::Selection,
                what: "loss",
            });
        }
        let chosen = match self.selector.as_mut() {
            Some(sel) if self.config.selection.needs_losses() => sel.select(&sharpness),
            _ => (0..before.len()).collect(),
        };
        check_selection(&chosen, before.len())?;
        Ok((sharpness, chosen))
    }

    /// Two-step API, ESAM: chooses the samples of the second pass from the per-sample losses at
    /// `w` (`before`, the first pass) and at `w + e` (`after`, a forward pass of
    /// `ascent.model()` without gradients), records the choice in `ascent` and returns it. Run
    /// the second pass on these positions of the batch ([`Ascent::request`]).
    pub fn select<M>(
        &mut self,
        ascent: &mut Ascent<M>,
        before: &[f64],
        after: &[f64],
    ) -> Result<Vec<usize>, StepError> {
        let (sharpness, chosen) = self.select_samples(before, after)?;
        ascent.sharpness = Some(sharpness);
        ascent.selected = Some(chosen.clone());
        Ok(chosen)
    }

    /// The selection forward with a loss closure: the per-sample losses at `w + e` without
    /// gradients (on `rows` of the batch, for a driver that splits it), and [`Sam::select`].
    /// Nothing to do when the selection needs no per-sample losses.
    pub fn selection_pass<M, F>(
        &mut self,
        ascent: &mut Ascent<M>,
        rows: Option<&[usize]>,
        loss_fn: &mut F,
    ) -> Result<(), StepError>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        if !self.needs_sample_losses() {
            return Ok(());
        }
        let view = bridge::untracked(ascent.model());
        let after = self.clock.time(|| loss_fn(&view, Batch::of(rows), Pass::Selection));
        drop(view);
        let after = bridge::to_f64(after.inner());
        let before = std::mem::take(&mut ascent.before);
        let chosen = self.select(ascent, &before, &after)?;
        if let Some(rows) = rows {
            // Positions within the rows, back to positions in the batch.
            ascent.selected = Some(chosen.iter().map(|&i| rows[i]).collect());
        }
        self.clock.mark(Phase::SelectionEnd);
        Ok(())
    }

    // ---- second pass ----------------------------------------------------------------------

    /// The second pass's forward with a loss closure, on `ascent.model()`: the loss at `w + e` on
    /// the selected samples (or on `rows` of the batch), checked.
    pub fn second_pass<M, F>(
        &mut self,
        ascent: &mut Ascent<M>,
        rows: Option<&[usize]>,
        loss_fn: &mut F,
    ) -> Result<SecondPass, StepError>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        self.second_pass_with(ascent, rows, |m| m.clone(), loss_fn)
            .map(|(pass, _)| pass)
    }

    /// [`Sam::second_pass`] on `view(ascent.model())` (e.g. a view that Burn's data-parallel
    /// run does not all-reduce), returning the view for the backward pass.
    pub fn second_pass_with<M, F>(
        &mut self,
        ascent: &mut Ascent<M>,
        rows: Option<&[usize]>,
        view: impl FnOnce(&M) -> M,
        loss_fn: &mut F,
    ) -> Result<(SecondPass, M), StepError>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        if self.needs_sample_losses() && ascent.selected.is_none() {
            return Err(StepError::SelectionMissing);
        }
        let rows: Option<Vec<usize>> = ascent.selected.clone().or_else(|| rows.map(<[usize]>::to_vec));
        let expect = Expect {
            pass: Pass::Second,
            count: rows.as_ref().map(Vec::len).or(ascent.first_count),
            per_sample: self.needs_sample_losses(),
        };
        let on = view(ascent.model());
        let losses = self
            .clock
            .time(|| loss_fn(&on, Batch::of(rows.as_deref()), Pass::Second));
        expect.check(losses.dims()[0])?;
        let loss = losses.mean();
        let value = bridge::to_f64(loss.clone().detach().inner())[0];
        if !value.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::Second,
                what: "loss",
            });
        }
        ascent.loss_perturbed = Some(value);
        Ok((SecondPass { loss, value }, on))
    }

    // ---- combination, base update, commit -------------------------------------------------

    /// Two-step API, second half: combines the first-pass gradient kept in `ascent` with the
    /// second-pass gradients `grads_p` (taken on `ascent.model()`) and applies the base optimizer
    /// to `model` (the unperturbed weights) at learning rate `lr`.
    ///
    /// The model always comes back: updated with the report, or untouched with the reason the
    /// step was skipped (a non-finite second-pass gradient, a selection that was not made).
    pub fn update<M: Module>(
        &mut self,
        lr: f64,
        model: M,
        ascent: Ascent<M>,
        grads_p: &GradientsParams,
    ) -> (M, Result<StepReport, StepError>) {
        match self.conclude(&model, ascent, grads_p) {
            Ok((descent, commit)) => {
                let model = self.apply(lr, model, &descent, commit.first_gradient.as_ref());
                self.commit(commit);
                (model, Ok(descent.report))
            }
            Err(e) => (model, Err(e)),
        }
    }

    /// Two-step API, second half without the base optimizer: combines the first-pass gradient
    /// kept in `ascent` with the second-pass gradients `grads_p` (taken on `ascent.model()`)
    /// and returns what a base optimizer outside flatmin applies to `model`.
    ///
    /// The step is committed as [`Sam::update`] commits it (F-SAM's average, ESAM's mask
    /// generator, the step count), except that flatmin's own base optimizer state is not used
    /// and does not change. A non-finite second-pass gradient is an error and commits nothing.
    pub fn descent<M: Module>(
        &mut self,
        model: &M,
        ascent: Ascent<M>,
        grads_p: &GradientsParams,
    ) -> Result<Descent, StepError> {
        self.refuse_own_update()?;
        let (descent, commit) = self.conclude(model, ascent, grads_p)?;
        self.commit(commit);
        Ok(descent)
    }

    /// The base step of a step without a second pass: the base optimizer on `g` (with LookSAM,
    /// `g` plus the stored sharpness direction).
    pub fn base_update<M: Module>(
        &mut self,
        lr: f64,
        model: M,
        first: FirstPass,
    ) -> (M, Result<StepReport, StepError>) {
        let (model, report) = self.base_step(lr, model, &first.grads);
        (
            model,
            report.map(|mut r| {
                r.loss = Some(first.loss);
                r
            }),
        )
    }

    /// Two-step API: the step without a second pass ([`Sam::wants_second_pass`] said no), from
    /// the first-pass gradients `grads` of `model`. The model always comes back, updated or
    /// untouched with the reason.
    pub fn base_step<M: Module>(
        &mut self,
        lr: f64,
        model: M,
        grads: &GradientsParams,
    ) -> (M, Result<StepReport, StepError>) {
        self.pending_mask = None;
        self.pending_noise = None;
        match self.base_conclude(&model, grads) {
            Ok((descent, commit)) => {
                let model = self.apply(lr, model, &descent, None);
                self.commit(commit);
                (model, Ok(descent.report))
            }
            Err(e) => (model, Err(e)),
        }
    }

    /// The base optimizer's step alone, for a base optimizer outside flatmin: `g` from the
    /// gradients `grads` of one pass on `model`, handed on unchanged.
    pub fn base_descent<M: Module>(&mut self, model: &M, grads: &GradientsParams) -> Result<Descent, StepError> {
        self.refuse_own_update()?;
        let (descent, commit) = self.base_conclude(model, grads)?;
        self.commit(commit);
        Ok(descent)
    }

    /// bSAM's update is its own: an outside base optimizer cannot apply its steps.
    fn refuse_own_update(&self) -> Result<(), StepError> {
        match self.config.base {
            BaseConfig::Bsam(_) => Err(StepError::OwnUpdate),
            _ => Ok(()),
        }
    }

    /// `g` measured and handed on as the descent (`g_p = g`: its norm and `g·g_p` are `g`'s),
    /// or, with LookSAM, `g` plus the stored sharpness direction. Changes nothing.
    fn base_conclude<M: Module>(&self, model: &M, grads: &GradientsParams) -> Result<(Descent, Commit), StepError> {
        let layout = Layout::of(model);
        let g = bridge::gradients(model, &layout, grads);
        let squared = read(vec![g.squared_norm_lazy()])[0];
        let g_norm = squared.sqrt();
        if !g_norm.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::First,
                what: "gradient",
            });
        }
        let mut descent = match &self.config.looksam {
            Some(config) => {
                let reused = self.look.reused(config, &layout, &g);
                self.combined(layout, &g, &reused, Known { g_norm, gp: None })?
            }
            None => {
                let known = Known {
                    g_norm,
                    gp: Some((g_norm, squared)),
                };
                self.combined(layout, &g, &g, known)?
            }
        };
        descent.report.rho = 0.0;
        descent.report.second_pass = false;
        let commit = Commit {
            adaptive: self.adaptive_after(squared),
            ..Commit::default()
        };
        Ok((descent, commit))
    }

    /// The second-pass gradient measured and combined with `g`; the report completed from
    /// the ascent. Changes nothing.
    fn conclude<M: Module>(
        &self,
        model: &M,
        ascent: Ascent<M>,
        grads_p: &GradientsParams,
    ) -> Result<(Descent, Commit), StepError> {
        if self.needs_sample_losses() && ascent.selected.is_none() {
            return Err(StepError::SelectionMissing);
        }
        let gp = bridge::gradients(model, &ascent.layout, grads_p);
        let Ascent {
            model: perturbed,
            layout,
            g,
            g_norm,
            e_norm,
            rho,
            tensor_mask,
            next_friendly,
            draws,
            g_from_e,
            loss,
            sharpness,
            selected,
            loss_perturbed,
            adaptive_next,
            noise,
            ..
        } = ascent;
        let known = if g_from_e {
            cosine_from_e(model, &perturbed, &layout, &gp, g_norm)
        } else {
            Known { g_norm, gp: None }
        };
        // `w + e` is no longer needed: its memory is free before the update allocates.
        drop(perturbed);
        let look = self
            .config
            .looksam
            .as_ref()
            .map(|config| self.look.stored(config, &layout, &g, &gp));
        let mut descent = self.combined(layout, &g, &gp, known)?;
        let first_gradient = matches!(self.config.base, BaseConfig::Bsam(_)).then_some(g);
        let report = &mut descent.report;
        report.second_pass = true;
        report.loss = loss;
        report.loss_perturbed = loss_perturbed;
        report.perturbation_norm = e_norm;
        report.rho = rho;
        report.tensor_mask = tensor_mask;
        report.sample_sharpness = sharpness;
        report.selected = selected;
        Ok((
            descent,
            Commit {
                friendly: next_friendly,
                draws,
                adaptive: adaptive_next,
                look,
                noise,
                first_gradient,
            },
        ))
    }

    /// The combination of `g` and `g_p`, checked, with the measured norms in the report.
    fn combined(&self, layout: Layout, g: &ParamVector, gp: &ParamVector, known: Known) -> Result<Descent, StepError> {
        if gp.is_vacant() {
            return Err(StepError::NoGradients);
        }
        let g_norm = known.g_norm;
        let (gp_norm, dot) = match known.gp {
            Some(known) => known,
            None => {
                let sums = read(vec![gp.squared_norm_lazy(), g.dot_lazy(gp)]);
                (sums[0].sqrt(), sums[1])
            }
        };
        if !gp_norm.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::Second,
                what: "gradient",
            });
        }
        let measures = Measures { g_norm, gp_norm, dot };
        let Combined {
            descent,
            sharpness,
            sharpness_weight,
        } = combine(&self.config.combination, self.config.eps, g, gp, &measures);
        let cosine = if g_norm > 0.0 && gp_norm > 0.0 {
            dot / (g_norm * gp_norm)
        } else {
            0.0
        };
        Ok(Descent {
            layout,
            gradient: descent,
            sharpness,
            sharpness_weight,
            report: StepReport {
                grad_norm: g_norm,
                grad_perturbed_norm: gp_norm,
                cosine,
                ..StepReport::default()
            },
        })
    }

    /// The base optimizer applied to `model` with the descent, then decoupled WSAM's sharpness
    /// step outside its state. Nothing here can fail: the base state is updated in place (its
    /// buffers held only here are written in place) and each weight is handed over to its
    /// update.
    fn apply<M: Module>(&mut self, lr: f64, model: M, descent: &Descent, first: Option<&ParamVector>) -> M {
        let mut states = std::mem::take(&mut self.base.states);
        let base = &self.base;
        let layout = &descent.layout;
        let sharpness_step = lr * descent.sharpness_weight;
        let model = bridge::update(model, layout, &|i| descent.gradient.has(i), &mut |i, w| {
            let d = descent.gradient.get(i).expect("present").clone();
            let g = first.and_then(|f| f.get(i)).cloned();
            let new = base.update(&mut states, &layout.entries[i].path, lr, w, d, g);
            match descent.sharpness.as_ref().and_then(|s| s.get(i)) {
                Some(s) => new - s.clone().mul_scalar(sharpness_step),
                None => new,
            }
        });
        self.base.states = states;
        model
    }

    /// Makes the step permanent: the method states it changed and the step count.
    fn commit(&mut self, commit: Commit) {
        if let Some(friendly) = commit.friendly {
            self.friendly = friendly;
        }
        self.masks.commit(commit.draws);
        if let Some(adaptive) = commit.adaptive {
            self.adaptive = adaptive;
        }
        if let Some(look) = commit.look {
            self.look = look;
        }
        self.noise.commit(commit.noise);
        self.steps += 1;
    }
}

/// cos(g, g_p) = cos(e, g_p) when `e` is a positive multiple of `g`: `g·g_p` scaled from
/// `e·g_p`, with `e` rebuilt one tensor at a time from `w + e` and `w` (a difference of nearby
/// numbers: accurate to about the weights' precision over the perturbation's size, ample for a
/// report).
fn cosine_from_e<M: Module>(model: &M, perturbed: &M, layout: &Layout, gp: &ParamVector, g_norm: f64) -> Known {
    let (w, wp) = (bridge::values(model, layout), bridge::values(perturbed, layout));
    let (mut ee, mut egp) = (Vec::new(), Vec::new());
    for i in 0..layout.len() {
        if let (Some(w), Some(wp), Some(gp)) = (w.get(i), wp.get(i), gp.get(i)) {
            let e = wp.clone() - w.clone();
            ee.push(Some(vector::dot(&e, &e)));
            egp.push(Some(vector::dot(&e, gp)));
        }
    }
    let sums = read(vec![gp.squared_norm_lazy(), vector::sum(ee), vector::sum(egp)]);
    let e_measured = sums[1].sqrt();
    let dot = if e_measured > 0.0 {
        sums[2] * g_norm / e_measured
    } else {
        0.0
    };
    Known {
        g_norm,
        gp: Some((sums[0].sqrt(), dot)),
    }
}

/// `‖g‖²` of the gradients `grads` of `model`'s parameters.
pub(crate) fn squared_norm_of<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    let layout = Layout::of(model);
    read(vec![bridge::gradients(model, &layout, grads).squared_norm_lazy()])[0]
}

fn check_selection(selected: &[usize], batch: usize) -> Result<(), StepError> {
    if selected.is_empty() {
        return Err(StepError::BadSelection("no sample selected".into()));
    }
    if let Some(bad) = selected.iter().find(|&&i| i >= batch) {
        return Err(StepError::BadSelection(format!(
            "position {bad} outside a batch of {batch}"
        )));
    }
    if selected.windows(2).any(|w| w[0] >= w[1]) {
        return Err(StepError::BadSelection("positions must be sorted and distinct".into()));
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::{Combination, SamConfig};

    #[derive(Module, Debug)]
    struct Quad {
        w: Param<Tensor<1>>,
    }

    fn loss(m: &Quad, a: &Tensor<1>) -> Tensor<1> {
        (m.w.val() * a.clone()).sum().square() + m.w.val().square().sum()
    }

    fn values(m: &Quad) -> Vec<f64> {
        m.w.val().into_data().iter::<f64>().collect()
    }

    /// `descent` followed by the base optimizer's rule done by hand gives `update`'s weights,
    /// for SAM, GSAM and decoupled WSAM (whose sharpness step comes after the base step).
    #[test]
    fn descent_then_plain_sgd_is_update() {
        let device = Device::flex().autodiff();
        let a = Tensor::<1>::from_data(TensorData::new(vec![0.5f64, -1.0, 2.0], [3]), &device);
        let start = |d: &Device| Quad {
            w: Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.3f64, 0.1, -0.2], [3]), d)),
        };
        for combination in [
            Combination::Plain,
            Combination::Gsam { alpha: 0.4 },
            Combination::Wsam {
                gamma: 0.9,
                decoupled: true,
                max_norm: None,
            },
        ] {
            let config = SamConfig::new(SamConfig::sgd_base(0.0, 0.0))
                .with_rho(0.1)
                .with_combination(combination.clone());
            let lr = 0.05;
            let mut own = config.init().unwrap();
            let mut outside = config.init().unwrap();
            let (stepped, report) = own.step(lr, start(&device), |m: &Quad, _| loss(m, &a));
            report.unwrap();

            let model = start(&device);
            let first = outside.first_pass_model(&model);
            let grads = GradientsParams::from_grads(loss(&first, &a).backward(), &first);
            let ascent = outside.perturb(lr, &model, &grads).unwrap();
            let grads_p = GradientsParams::from_grads(loss(ascent.model(), &a).backward(), ascent.model());
            let d = outside.descent(&model, ascent, &grads_p).unwrap();
            let mut w = model.w.val().inner() - d.gradient.get(0).unwrap().clone().mul_scalar(lr);
            if let Some(s) = &d.sharpness {
                w = w - s.get(0).unwrap().clone().mul_scalar(lr * d.sharpness_weight);
            }
            let by_hand: Vec<f64> = w.into_data().iter::<f64>().collect();
            assert_eq!(by_hand, values(&stepped), "{combination:?}");
            assert_eq!(outside.steps(), 1);
        }
    }

    /// The selection piece chooses what the one-call step chooses and rejects bad input.
    #[test]
    fn select_samples_follows_the_configured_selection() {
        let base = SamConfig::sgd_base(0.0, 0.0);
        let mut esam = SamConfig::preset("esam", base.clone()).unwrap().init().unwrap();
        let (s, chosen) = esam
            .select_samples(&[1.0, 1.0, 1.0, 1.0], &[1.5, 1.1, 2.0, 0.9])
            .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(chosen, vec![0, 2]);
        assert!(esam.select_samples(&[1.0, 1.0], &[1.0]).is_err());
        assert!(esam.select_samples(&[1.0, 1.0], &[f64::NAN, 1.0]).is_err());
        let mut sam = SamConfig::preset("sam", base).unwrap().init().unwrap();
        assert_eq!(sam.select_samples(&[1.0, 1.0], &[3.0, 0.0]).unwrap().1, vec![0, 1]);
    }
}
