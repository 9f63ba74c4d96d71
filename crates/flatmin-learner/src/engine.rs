//! One worker's SAM step, stage by stage, through flatmin's typed stages (the same phases
//! `Sam::step` runs): [`Sam::begin`] and [`FirstPass::run`], the (optional) exchange of
//! first-pass gradients through [`PassInput::gradients_mut`], the decision of a member that
//! decides after the first pass ([`FirstPass::decide`], AE-SAM), [`Sam::ascend`], ESAM's
//! selection ([`Ascent::select_with`]), the second pass ([`Ascent::second_forward`],
//! [`SecondForward::backward`], [`Ascent::second_pass`]) — ending in an [`Update`] that
//! [`Sam::descent`] commits and hands over as the combined gradient, so that any base optimizer
//! (Burn's `ModuleOptimizer` above all) can apply it. What is the learner's own: the devices'
//! views, votes and exchanges.

use std::fmt;

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use flatmin::bridge::{self, local_view};
use flatmin::{
    Ascent, Batch, FirstPass, Layout, Next, ParamVector, Pass, PassInput, Sam, SamConfig, SecondForward, StepError,
    StepReport, Update,
};

use crate::parallel::Rendezvous;

/// Why a step was skipped: the weights and the optimizer state stay as they were.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    /// This worker's step failed (non-finite loss or gradient, bad selection, …).
    Step(StepError),
    /// Another device's step failed: in distributed data parallel, every device skips together
    /// so that the replicas stay identical.
    OtherDevice,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Step(e) => write!(f, "{e}"),
            SkipReason::OtherDevice => write!(f, "another device skipped this step; skipped here too"),
        }
    }
}

impl std::error::Error for SkipReason {}

impl From<StepError> for SkipReason {
    fn from(e: StepError) -> Self {
        SkipReason::Step(e)
    }
}

/// The combined gradient of one step, keyed like Burn's gradients, ready for a
/// [`ModuleOptimizer`].
#[derive(Debug)]
pub struct SamGradients {
    /// What the base optimizer gets: `g_p` or the combination's mix of `g` and `g_p`.
    pub grads: GradientsParams,
    /// Decoupled WSAM's `g_p − g`, applied as `w −= lr · sharpness_weight · sharpness` after the
    /// base step, outside its momentum (see [`apply_sharpness`]).
    pub sharpness: Option<GradientsParams>,
    /// α, the weight of `sharpness`.
    pub sharpness_weight: f64,
    /// The first-pass loss `L(w)` (averaged over the chunks, weighted by their size).
    pub loss: f64,
    /// One report per chunk (one for a plain step).
    pub reports: Vec<StepReport>,
}

impl SamGradients {
    /// Applies the step to `model` with a Burn optimizer: `optim` takes [`SamGradients::grads`],
    /// then decoupled WSAM's sharpness term is applied outside it.
    pub fn apply<M: Module>(self, optim: &mut ModuleOptimizer, lr: f64, model: M) -> M {
        let lr: ModuleLearningRate = lr.into();
        let model = optim.step(lr.clone(), model, self.grads);
        match &self.sharpness {
            Some(s) => apply_sharpness(model, &lr, s, self.sharpness_weight),
            None => model,
        }
    }
}

/// A step begun on `model` at learning rate `lr`, and its first pass on `rows` of the batch.
/// With `local`, the step is begun on a [`local_view`], so that Burn's DDP does not all-reduce
/// the first pass. With `master`, `model` is its half-precision copy and the step's master
/// weights are `master`'s ([`Sam::begin_with_master`]). The stage is handed back whatever the
/// pass gave: a data-parallel driver still has to meet the other devices.
pub(crate) fn first_pass<M, F>(
    sam: &Sam,
    lr: f64,
    model: &M,
    master: Option<&M>,
    rows: Option<&[usize]>,
    local: bool,
    loss_fn: &mut F,
) -> (FirstPass<M>, Result<PassInput, StepError>)
where
    M: Module,
    F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
{
    let view = if local { local_view(model) } else { model.clone() };
    let first = match master {
        Some(master) => sam.begin_with_master(lr, &view, master),
        None => sam.begin(lr, &view),
    };
    let input = first.run(rows, &mut *loss_fn);
    (first, input)
}

/// The step without a second pass (the schedule's choice, or the devices' vote): the base
/// optimizer's update on `g` (with LookSAM, `g` plus its stored direction). Nothing is committed.
pub(crate) fn base_step<M: Module>(
    sam: &Sam,
    model: &M,
    mut first: FirstPass<M>,
    input: PassInput,
) -> Result<Update, StepError> {
    first.skip_second_pass();
    match sam.ascend(model, first, input)? {
        Next::Update(update) => Ok(update),
        Next::Ascent(_) => unreachable!("a step told to skip its second pass ascended"),
    }
}

/// A step up to the second pass's backward: the second pass's forward on the perturbed model
/// (after ESAM's selection), or the update when the step has no second pass after all.
pub(crate) enum Prepared<M> {
    /// The ascent and the second pass's forward, ready for its backward.
    Second(Box<(Ascent<M>, SecondForward<M>)>),
    /// A step the members made without a second pass.
    Ready(Box<Update>),
}

/// The perturbation, ESAM's selection and the second pass's forward. With `local`, the second
/// pass runs on a [`local_view`] of the perturbed model; otherwise the perturbed model keeps
/// every parameter's distributed flag, so that Burn's DDP averages `g_p`. Nothing is committed.
pub(crate) fn prepare<M, F>(
    sam: &Sam,
    model: &M,
    first: FirstPass<M>,
    input: PassInput,
    rows: Option<&[usize]>,
    local: bool,
    loss_fn: &mut F,
) -> Result<Prepared<M>, StepError>
where
    M: Module,
    F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
{
    let ascent = match sam.ascend(model, first, input)? {
        Next::Ascent(ascent) => ascent,
        Next::Update(update) => return Ok(Prepared::Ready(Box::new(update))),
    };
    let ascent = ascent.select_with(rows, &mut *loss_fn)?;
    let view = |m: &M| if local { local_view(m) } else { m.clone() };
    let forward = ascent.second_forward(rows, view, &mut *loss_fn)?;
    Ok(Prepared::Second(Box::new((ascent, forward))))
}

impl<M: Module> Prepared<M> {
    /// The second pass's backward (under DDP, the distributed one) and its conclusion: the
    /// update, not yet committed. A non-finite second-pass gradient is an error.
    pub(crate) fn conclude(self) -> Result<Update, StepError> {
        match self {
            Prepared::Second(stages) => {
                let (ascent, forward) = *stages;
                ascent.second_pass(forward.backward())
            }
            Prepared::Ready(update) => Ok(*update),
        }
    }
}

/// Whether the combination hands the base optimizer `g_p` alone (then Burn's DDP can average
/// the second pass directly; otherwise the combined gradient is averaged afterwards). GSAM and
/// WSAM mix the device's own `g` into the update.
pub(crate) fn is_plain(config: &SamConfig) -> bool {
    !config.members.iter().any(|m| m.room() == flatmin::Room::Combination)
}

/// The first pass's gradients of `model` as one flat vector.
pub(crate) fn first_gradient<M: Module>(model: &M, layout: &Layout, input: &PassInput) -> Option<ParamVector> {
    input.gradients().map(|g| bridge::gradients(model, layout, g))
}

/// The mean, slot by slot, of the vectors present in `group` (in rank order), on `own`'s device.
pub(crate) fn group_mean(group: &[&ParamVector], own: &ParamVector) -> ParamVector {
    let mut out = Vec::with_capacity(own.len());
    for i in 0..own.len() {
        let present: Vec<Tensor<1>> = group.iter().filter_map(|v| v.get(i).cloned()).collect();
        let Some(first) = present.first() else {
            out.push(None);
            continue;
        };
        let device = own.get(i).map(|t| t.device()).unwrap_or_else(|| first.device());
        let count = present.len();
        let mut acc: Option<Tensor<1>> = None;
        for t in present {
            let t = t.to_device(&device);
            acc = Some(match acc {
                None => t,
                Some(a) => a + t,
            });
        }
        let acc = acc.expect("at least one");
        out.push(Some(if count == 1 {
            acc
        } else {
            acc.mul_scalar(1.0 / count as f64)
        }));
    }
    ParamVector::new(out)
}

/// Applies decoupled WSAM's sharpness step `w −= lr · weight · sharpness` to every parameter
/// that has an entry in `sharpness`, at that parameter's learning rate, keeping the
/// parameter's autodiff flags (`require_grad`, distributed, gradient checkpointing).
pub fn apply_sharpness<M: Module>(model: M, lr: &ModuleLearningRate, sharpness: &GradientsParams, weight: f64) -> M {
    let layout = Layout::of(&model);
    let s = bridge::gradients(&model, &layout, sharpness);
    bridge::update(model, &layout, &|i| s.has(i), &mut |i, w| {
        let entry = &layout.entries[i];
        let lr = lr.lr_from_param(entry.id, Some(&entry.path));
        let step = s.get(i).expect("present").clone().to_device(&w.device());
        w - step.mul_scalar(lr * weight)
    })
}

/// (vector index, offset) of each vector's part of one parameter's leaf.
type Spans = Vec<(usize, usize)>;

/// Burn's DDP averages gradients only inside a backward pass, on parameters marked distributed.
/// This averages an arbitrary per-parameter vector (here the combined gradient and WSAM's
/// sharpness) the same way: a zero leaf per parameter, marked distributed under that
/// parameter's id, enters the surrogate loss `Σ ⟨leaf, v⟩`, whose gradient with respect to the
/// leaf is `v` — all-reduced by the DDP run's operation (use `ReduceOperation::Mean`).
/// Without a distributed context it returns the vectors unchanged; `mark: false` leaves the
/// leaves unmarked (the CPU backend refuses the mark), for the simulated DDP of the tests.
pub(crate) fn all_reduce_through_backward(
    layout: &Layout,
    vectors: &[&ParamVector],
    device: &burn::tensor::Device,
    mark: bool,
) -> Vec<ParamVector> {
    // (parameter slot, its leaf, where each vector's part starts in the leaf)
    let mut leaves: Vec<(usize, Tensor<1>, Spans)> = Vec::new();
    let mut surrogate: Option<Tensor<1>> = None;
    for (i, entry) in layout.entries.iter().enumerate() {
        let mut parts = Vec::new();
        let mut spans = Vec::new();
        let mut offset = 0;
        for (k, v) in vectors.iter().enumerate() {
            if let Some(t) = v.get(i) {
                let n = t.dims()[0];
                parts.push(t.clone());
                spans.push((k, offset));
                offset += n;
            }
        }
        if parts.is_empty() {
            continue;
        }
        let flat = Tensor::cat(parts, 0).to_device(&device.clone().inner());
        let mut leaf = Tensor::from_inner(flat.zeros_like()).require_grad();
        if mark {
            leaf = leaf.set_distributed(entry.id);
        }
        let term = (leaf.clone() * Tensor::from_inner(flat)).sum();
        surrogate = Some(match surrogate {
            None => term,
            Some(s) => s + term,
        });
        leaves.push((i, leaf, spans));
    }
    let mut out: Vec<Vec<Option<Tensor<1>>>> = vectors.iter().map(|v| vec![None; v.len()]).collect();
    let Some(surrogate) = surrogate else {
        return vectors.iter().map(|v| (*v).clone()).collect();
    };
    let grads = surrogate.backward();
    for (i, leaf, spans) in leaves {
        let reduced = leaf.grad(&grads).expect("the leaf is on the surrogate's graph");
        for (k, offset) in spans {
            let n = vectors[k].get(i).expect("present").dims()[0];
            out[k][i] = Some(reduced.clone().narrow(0, offset, n));
        }
    }
    out.into_iter().map(ParamVector::new).collect()
}

/// The votes of a distributed step: every device says whether its step can go on, and all
/// go on only together; the same meeting serves as the barrier that keeps each distributed
/// backward pass apart from the devices' local ones.
pub(crate) struct Votes<'a> {
    pub meeting: &'a Rendezvous<bool>,
    pub rank: Option<usize>,
}

impl Votes<'_> {
    pub(crate) fn agree(&self, ok: bool) -> bool {
        let (_, all) = self.meeting.meet(self.rank, ok);
        all.iter().all(|(_, v)| *v)
    }
}
