//! The stages of a step, as types: [`Sam::begin`](crate::Sam::begin) gives a [`FirstPass`];
//! [`Sam::ascend`](crate::Sam::ascend) takes its result and gives what comes next ([`Next`]): an
//! [`Ascent`] to run the second pass on, or, on a step without one (a schedule's base step,
//! MSAM), the [`Update`] itself; [`Ascent::select`] (ESAM) and [`Ascent::second_pass`] lead to
//! the [`Update`], which [`Sam::finish`](crate::Sam::finish) applies (or
//! [`Sam::descent`](crate::Sam::descent) hands to a base optimizer outside flatmin). Each stage
//! owns what the next needs, so the order lives in the types and a stage dropped halfway
//! changes nothing.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::batch::{Batch, Expect};
use super::clock::{PassClock, Phase};
use super::phases::{self, Update};
use super::precision::{self, Mixed, PassPrecision};
use crate::bridge::{self, Layout};
use crate::error::{Pass, StepError};
use crate::member::{MemberHooks, StepInfo};

use crate::vector::ParamVector;

/// A pass's result handed to a stage: its losses (flatmin runs the backward pass on the
/// stage's model), or gradients the caller computed, with the per-sample losses where ESAM's
/// selection needs them.
///
/// `Tensor<1>` and `GradientsParams` convert into it, so a stage takes either.
pub struct PassInput {
    pub(crate) losses: Option<Tensor<1>>,
    pub(crate) grads: Option<GradientsParams>,
    /// The mean loss, once known.
    pub(crate) loss: Option<f64>,
    /// Per-sample losses, when the step needs them.
    pub(crate) values: Vec<f64>,
    /// How many losses the pass returned, once known.
    pub(crate) count: Option<usize>,
    /// The factor the loss was multiplied by before the backward pass (mixed precision's loss
    /// scale): the gradients are divided by it.
    pub(crate) scaled_by: Option<f64>,
}

impl PassInput {
    /// Gradients computed by the caller, with the per-sample losses of the first pass (ESAM's
    /// selection needs them).
    pub fn with_losses(grads: GradientsParams, losses: Vec<f64>) -> Self {
        let loss = (!losses.is_empty()).then(|| losses.iter().sum::<f64>() / losses.len() as f64);
        Self {
            losses: None,
            count: Some(losses.len()),
            grads: Some(grads),
            loss,
            values: losses,
            scaled_by: None,
        }
    }

    /// Says that the gradients handed in came from a loss multiplied by `scale` (a caller that
    /// runs its own backward pass on an f16 model with [`Sam::loss_scale`](crate::Sam::loss_scale)):
    /// the step divides them by it in f32. Gradients handed in without it are taken as they
    /// are, unscaled — correct, but an f16 gradient may have underflowed.
    pub fn scaled_by(mut self, scale: f64) -> Self {
        self.scaled_by = Some(scale);
        self
    }

    /// The gradients, once the backward pass has run (to average them over devices, say).
    pub fn gradients_mut(&mut self) -> Option<&mut GradientsParams> {
        self.grads.as_mut()
    }

    /// The gradients, once the backward pass has run.
    pub fn gradients(&self) -> Option<&GradientsParams> {
        self.grads.as_ref()
    }

    /// The pass's mean loss, when known.
    pub fn loss(&self) -> Option<f64> {
        self.loss
    }

    /// Runs the backward pass on `model` if the losses were handed in, checking them against
    /// `expect`; keeps the per-sample values when `per_sample`.
    pub(crate) fn evaluate<M: Module>(
        mut self,
        model: &M,
        expect: Expect,
        precision: PassPrecision,
        clock: &mut PassClock,
    ) -> Result<Self, StepError> {
        let Some(losses) = self.losses.take() else {
            if let (Some(count), true) = (self.count, expect.per_sample) {
                expect.check(count)?;
            }
            return Ok(self);
        };
        let count = losses.dims()[0];
        expect.check(count)?;
        if expect.per_sample {
            self.values = bridge::to_f64(losses.clone().detach().inner());
        }
        let mean = precision.mean(losses);
        let loss = bridge::to_f64(mean.clone().detach().inner())[0];
        if !loss.is_finite() {
            return Err(StepError::NonFinite {
                pass: expect.pass,
                what: "loss",
            });
        }
        let scaled = precision.scaled(mean);
        self.grads = Some(clock.time(|| bridge::backward(scaled, model)));
        self.scaled_by = precision.loss_scale;
        self.loss = Some(loss);
        self.count = Some(count);
        Ok(self)
    }
}

impl From<Tensor<1>> for PassInput {
    /// The pass's losses, one per sample or their mean, on the autodiff tape.
    fn from(losses: Tensor<1>) -> Self {
        Self {
            losses: Some(losses),
            grads: None,
            loss: None,
            values: Vec::new(),
            count: None,
            scaled_by: None,
        }
    }
}

impl From<GradientsParams> for PassInput {
    /// Gradients computed by the caller (no per-sample losses).
    fn from(grads: GradientsParams) -> Self {
        Self {
            losses: None,
            grads: Some(grads),
            loss: None,
            values: Vec::new(),
            count: None,
            scaled_by: None,
        }
    }
}

/// A step begun: the model the first pass runs on ([`FirstPass::model`]). It is `w` itself, a
/// view of it in which ESAM's mask leaves tensors out of the backward pass, or the point bSAM's
/// noise or MSAM's momentum moves it to; its BatchNorm running statistics are the model's, which
/// the first pass updates.
pub struct FirstPass<M> {
    pub(crate) view: M,
    pub(crate) lr: f64,
    pub(crate) step: u64,
    /// Whether the step runs the second pass: known before the first pass, or `None` (AE-SAM).
    pub(crate) plan: Option<bool>,
    /// A member's decision after the first pass has been made (its statistics updated).
    pub(crate) decided: bool,
    pub(crate) work: Vec<Box<dyn MemberHooks>>,
    pub(crate) tensor_mask: Option<Vec<bool>>,
    pub(crate) offset: Option<(ParamVector, Option<f64>)>,
    pub(crate) per_sample: bool,
    /// The model's parameters, when `begin` read them.
    pub(crate) layout: Option<Layout>,
    /// The step's own weights: f32 master weights and loss scale of a mixed-precision step,
    /// or a fused GPU's joined weights ([`Mixed`]).
    pub(crate) mixed: Option<Mixed>,
}

impl<M: Module> FirstPass<M> {
    /// The model to run the first pass on.
    pub fn model(&self) -> &M {
        &self.view
    }

    /// Whether the step runs the second pass, when that is known before the first pass (`None`:
    /// AE-SAM decides from the first pass's gradient, in [`Sam::ascend`](crate::Sam::ascend) or
    /// [`FirstPass::decide`]).
    pub fn second_pass(&self) -> Option<bool> {
        self.plan
    }

    /// Whether the first pass must give one loss per sample (ESAM's selection).
    pub fn needs_sample_losses(&self) -> bool {
        self.per_sample
    }

    /// The first pass with a loss closure: `loss_fn(model, batch, pass)` on the first pass's
    /// model for `rows` of the batch (`None`: all of it), checked, and its backward pass.
    pub fn run<F>(&self, rows: Option<&[usize]>, mut loss_fn: F) -> Result<PassInput, StepError>
    where
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        self.run_timed(rows, &mut loss_fn, &mut PassClock::default())
    }

    pub(crate) fn run_timed<F>(
        &self,
        rows: Option<&[usize]>,
        loss_fn: &mut F,
        clock: &mut PassClock,
    ) -> Result<PassInput, StepError>
    where
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        let losses = clock.time(|| loss_fn(&self.view, Batch::of(rows), Pass::First));
        let expect = self.expect(rows.map(<[usize]>::len));
        let input = PassInput::from(losses).evaluate(&self.view, expect, self.precision(), clock)?;
        clock.mark(Phase::FirstPassEnd);
        Ok(input)
    }

    /// How this step's passes treat their losses (mixed precision).
    pub(crate) fn precision(&self) -> PassPrecision {
        PassPrecision::of(self.mixed.as_ref())
    }

    pub(crate) fn expect(&self, count: Option<usize>) -> Expect {
        Expect {
            pass: Pass::First,
            count,
            per_sample: self.per_sample,
        }
    }

    /// Makes the decision a member takes after the first pass (AE-SAM, from `‖g‖²` of `input`'s
    /// gradients), before [`Sam::ascend`](crate::Sam::ascend) — what a data-parallel driver
    /// needs to agree on it across devices. Returns whether the step runs the second pass.
    pub fn decide(&mut self, model: &M, input: &mut PassInput) -> Result<bool, StepError> {
        if self.decided || self.plan.is_some() {
            return Ok(self.plan.unwrap_or(true));
        }
        let owned = std::mem::replace(input, PassInput::from(GradientsParams::new()));
        let evaluated = owned.evaluate(
            &self.view,
            self.expect(None),
            self.precision(),
            &mut PassClock::default(),
        )?;
        *input = evaluated;
        let layout = Layout::of(model);
        let grads = input.grads.as_ref().expect("evaluated");
        let half = self.mixed.as_ref().is_some_and(|m| m.half);
        let g = precision::gradients(model, &layout, grads, half, input.scaled_by);
        let squared = crate::vector::read(vec![g.squared_norm_lazy()])[0];
        let run = decide(&mut self.work, self.step, squared);
        self.decided = true;
        self.plan = Some(run);
        Ok(run)
    }

    /// Makes this a step without a second pass, whatever was planned: what devices that must
    /// agree do when another device's policy said no.
    pub fn skip_second_pass(&mut self) {
        self.plan = Some(false);
    }
}

/// The decision of the members that decide after the first pass: all of them must want the
/// second pass. Each updates its statistics in the working copy.
pub(crate) fn decide(work: &mut [Box<dyn MemberHooks>], step: u64, g_squared: f64) -> bool {
    let mut run = true;
    for m in work.iter_mut() {
        run &= m.decide(step, g_squared);
    }
    run
}

/// What comes after the first pass.
pub enum Next<M> {
    /// The perturbed model: run the second pass on [`Ascent::model`] (after [`Ascent::select`]
    /// where [`Ascent::needs_selection`]), then [`Ascent::second_pass`].
    Ascent(Ascent<M>),
    /// A step without a second pass (a schedule's base step, MSAM): the update itself.
    Update(Update),
}

impl<M> Next<M> {
    /// The ascent, when the step runs the second pass.
    pub fn ascent(self) -> Option<Ascent<M>> {
        match self {
            Next::Ascent(a) => Some(a),
            Next::Update(_) => None,
        }
    }
}

/// The perturbed model of a step in progress, with what the rest of the step needs.
pub struct Ascent<M> {
    pub(crate) model: M,
    /// The unperturbed model (a clone sharing its weights), for the report's measures.
    pub(crate) origin: M,
    pub(crate) layout: Layout,
    pub(crate) g: ParamVector,
    pub(crate) g_norm: f64,
    pub(crate) e_norm: f64,
    pub(crate) rho: f64,
    pub(crate) eps: f64,
    pub(crate) measure: bool,
    pub(crate) lr: f64,
    pub(crate) step: u64,
    pub(crate) tensor_mask: Option<Vec<bool>>,
    pub(crate) work: Vec<Box<dyn MemberHooks>>,
    /// `g` was let go before the second pass (nothing after the perturbation needs it); the
    /// report's cosine, if measured, comes from `e = (w + e) − w`.
    pub(crate) g_from_e: bool,
    pub(crate) loss: Option<f64>,
    pub(crate) before: Vec<f64>,
    pub(crate) first_count: Option<usize>,
    pub(crate) sharpness: Option<Vec<f64>>,
    pub(crate) selected: Option<Vec<usize>>,
    /// The step's own weights: f32 master weights and loss scale of a mixed-precision step,
    /// or a fused GPU's joined weights ([`Mixed`]).
    pub(crate) mixed: Option<Mixed>,
}

impl<M: Module> Ascent<M> {
    /// The model at `w + e`, for the second pass. Its BatchNorm running statistics are its own:
    /// the second pass does not change the original model's.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// A view of the model at `w + e` that tracks no gradient, for ESAM's selection forward.
    pub fn probe(&self) -> M {
        bridge::untracked(&self.model)
    }

    /// `‖g‖` of the first pass.
    pub fn grad_norm(&self) -> f64 {
        self.g_norm
    }

    /// `‖e‖`.
    pub fn perturbation_norm(&self) -> f64 {
        self.e_norm
    }

    /// Whether the second pass's samples must be chosen first ([`Ascent::select`]).
    pub fn needs_selection(&self) -> bool {
        self.selects() && self.selected.is_none()
    }

    fn selects(&self) -> bool {
        self.work.iter().any(|m| m.selects())
    }

    /// The batch positions the second pass uses, once [`Ascent::select`] chose them (`None`:
    /// the whole batch).
    pub fn selected(&self) -> Option<&[usize]> {
        self.selected.as_deref()
    }

    /// The samples the second pass is asked for.
    pub fn request(&self) -> Batch<'_> {
        Batch::of(self.selected.as_deref())
    }

    /// ESAM: chooses the second pass's samples from the per-sample losses at `w + e` (`after`,
    /// a forward pass of [`Ascent::probe`] on the whole batch) and those of the first pass.
    /// Without a selection to make it returns the ascent as it was.
    pub fn select(self, after: Tensor<1>) -> Result<Self, StepError> {
        self.select_values(&bridge::to_f64(after.inner()), None)
    }

    /// The selection forward with a loss closure: the per-sample losses at `w + e` without
    /// gradients on `rows` of the batch (`None`: all of it), and [`Ascent::select`].
    pub fn select_with<F>(self, rows: Option<&[usize]>, mut loss_fn: F) -> Result<Self, StepError>
    where
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        self.select_timed(rows, &mut loss_fn, &mut PassClock::default())
    }

    pub(crate) fn select_timed<F>(
        self,
        rows: Option<&[usize]>,
        loss_fn: &mut F,
        clock: &mut PassClock,
    ) -> Result<Self, StepError>
    where
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        if !self.selects() {
            return Ok(self);
        }
        let view = self.probe();
        let after = clock.time(|| loss_fn(&view, Batch::of(rows), Pass::Selection));
        drop(view);
        let after = bridge::to_f64(after.inner());
        let out = self.select_values(&after, rows);
        clock.mark(Phase::SelectionEnd);
        out
    }

    fn select_values(mut self, after: &[f64], rows: Option<&[usize]>) -> Result<Self, StepError> {
        if !self.selects() {
            return Ok(self);
        }
        let before = std::mem::take(&mut self.before);
        if before.is_empty() {
            return Err(StepError::SampleLossesMissing);
        }
        Expect {
            pass: Pass::Selection,
            count: Some(before.len()),
            per_sample: true,
        }
        .check(after.len())?;
        let sharpness: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        if sharpness.iter().any(|v| !v.is_finite()) {
            return Err(StepError::NonFinite {
                pass: Pass::Selection,
                what: "loss",
            });
        }
        let chosen = self
            .work
            .iter_mut()
            .find_map(|m| m.select(&sharpness))
            .unwrap_or_else(|| (0..before.len()).collect());
        check_selection(&chosen, before.len())?;
        self.selected = Some(match rows {
            // Positions within the rows, back to positions in the batch.
            Some(rows) => chosen.iter().map(|&i| rows[i]).collect(),
            None => chosen,
        });
        self.sharpness = Some(sharpness);
        Ok(self)
    }

    /// The second pass's forward with a loss closure, on `view(ascent.model())` (e.g. a view
    /// that Burn's data-parallel run does not all-reduce): the loss at `w + e` on the selected
    /// samples (or on `rows` of the batch), checked and ready for its backward pass.
    pub fn second_forward<F>(
        &self,
        rows: Option<&[usize]>,
        view: impl FnOnce(&M) -> M,
        mut loss_fn: F,
    ) -> Result<SecondForward<M>, StepError>
    where
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        self.second_forward_timed(rows, view, &mut loss_fn, &mut PassClock::default())
    }

    pub(crate) fn second_forward_timed<F>(
        &self,
        rows: Option<&[usize]>,
        view: impl FnOnce(&M) -> M,
        loss_fn: &mut F,
        clock: &mut PassClock,
    ) -> Result<SecondForward<M>, StepError>
    where
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        if self.needs_selection() {
            return Err(StepError::SelectionMissing);
        }
        let rows: Option<Vec<usize>> = self.selected.clone().or_else(|| rows.map(<[usize]>::to_vec));
        let expect = self.second_expect(rows.as_ref().map(Vec::len));
        let on = view(&self.model);
        let losses = clock.time(|| loss_fn(&on, Batch::of(rows.as_deref()), Pass::Second));
        expect.check(losses.dims()[0])?;
        let precision = PassPrecision::of(self.mixed.as_ref());
        let loss = precision.mean(losses);
        let value = bridge::to_f64(loss.clone().detach().inner())[0];
        if !value.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::Second,
                what: "loss",
            });
        }
        Ok(SecondForward {
            loss,
            value,
            view: on,
            loss_scale: precision.loss_scale,
        })
    }

    fn second_expect(&self, requested: Option<usize>) -> Expect {
        Expect {
            pass: Pass::Second,
            count: requested.or(self.selected.as_ref().map(Vec::len)).or(self.first_count),
            per_sample: self.selects(),
        }
    }

    /// The second pass: its losses at `w + e` (on [`Ascent::request`]; flatmin runs the backward
    /// pass on [`Ascent::model`]) or its gradients. Combines them with the first pass's into the
    /// update; a non-finite second-pass gradient is an error.
    pub fn second_pass(self, input: impl Into<PassInput>) -> Result<Update, StepError> {
        self.second_pass_timed(input.into(), &mut PassClock::default())
    }

    pub(crate) fn second_pass_timed(self, input: PassInput, clock: &mut PassClock) -> Result<Update, StepError> {
        if self.needs_selection() {
            return Err(StepError::SelectionMissing);
        }
        let precision = PassPrecision::of(self.mixed.as_ref());
        let input = input.evaluate(&self.model, self.second_expect(None), precision, clock)?;
        conclude(self, input)
    }
}

/// The forward of a second pass, ready for its backward.
pub struct SecondForward<M> {
    /// The mean loss at `w + e`, on the autodiff tape (in f32 in a mixed-precision step, not
    /// multiplied by the loss scale: [`SecondForward::backward`] does that).
    pub loss: Tensor<1>,
    /// Its value.
    pub value: f64,
    view: M,
    /// The loss scale [`SecondForward::backward`] multiplies the loss by (f16).
    loss_scale: Option<f64>,
}

impl<M: Module> SecondForward<M> {
    /// The backward pass on the model the forward ran on: the second pass's input for
    /// [`Ascent::second_pass`].
    pub fn backward(self) -> PassInput {
        self.backward_timed(&mut PassClock::default())
    }

    pub(crate) fn backward_timed(self, clock: &mut PassClock) -> PassInput {
        let value = self.value;
        let precision = PassPrecision {
            to_f32: false,
            loss_scale: self.loss_scale,
        };
        let (loss, view) = (precision.scaled(self.loss), self.view);
        let grads = clock.time(|| bridge::backward(loss, &view));
        PassInput {
            losses: None,
            grads: Some(grads),
            loss: Some(value),
            values: Vec::new(),
            count: None,
            scaled_by: self.loss_scale,
        }
    }
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

/// The second pass concluded: `g_p` measured and combined with `g`, LookSAM's store, the report
/// completed from the ascent.
fn conclude<M: Module>(ascent: Ascent<M>, input: PassInput) -> Result<Update, StepError> {
    let grads_p = input.grads.as_ref().expect("the second pass was evaluated");
    let half = ascent.mixed.as_ref().is_some_and(|m| m.half);
    let gp = precision::gradients(&ascent.model, &ascent.layout, grads_p, half, input.scaled_by);
    let Ascent {
        model: perturbed,
        origin,
        layout,
        g,
        g_norm,
        e_norm,
        rho,
        eps,
        measure,
        lr,
        step,
        tensor_mask,
        mut work,
        g_from_e,
        loss,
        sharpness,
        selected,
        mixed,
        ..
    } = ascent;
    let known = if g_from_e && measure {
        phases::cosine_from_e(&origin, &perturbed, &layout, &gp, g_norm)
    } else {
        phases::Known { g_norm, gp: None }
    };
    // `w + e` is no longer needed: its memory is free before the update allocates.
    drop((perturbed, origin));
    let info = StepInfo {
        layout: &layout,
        step,
        rho,
        eps,
        base: &phases::NoBase,
    };
    for m in work.iter_mut() {
        m.after_second_pass(&info, &g, &gp);
    }
    let mut descent = phases::combined(&work, layout, &g, &gp, known, eps, measure)?;
    let first = work.iter().any(|m| m.needs_first_gradient()).then_some(g);
    let report = &mut descent.report;
    report.second_pass = true;
    report.loss = loss;
    report.loss_perturbed = input.loss;
    report.perturbation_norm = e_norm;
    report.rho = rho;
    report.tensor_mask = tensor_mask;
    report.sample_sharpness = sharpness;
    report.selected = selected;
    Ok(Update {
        descent,
        first,
        decay_at: None,
        work,
        lr,
        step,
        mixed,
    })
}
