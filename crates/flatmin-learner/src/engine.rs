//! One worker's SAM step, stage by stage, through flatmin's two-step API: the first pass, the
//! (optional) exchange of first-pass gradients, the perturbation, ESAM's selection, the second
//! pass and the combination — ending in the combined gradient rather than an update, so that
//! any base optimizer (Burn's `ModuleOptimizer` above all) can apply it.

use std::collections::HashMap;
use std::fmt;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use flatmin::{Ascent, Batch, Combination, Descent, Layout, ParamVector, Pass, Sam, StepError, StepReport};

use crate::parallel::{Rendezvous, local_view};

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

/// Which call of the loss closure this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The first pass, at `w` (its output is what the metrics see).
    Ascent,
    /// ESAM's selection forward at `w + e`, on a model that tracks no gradient.
    Selection,
    /// The second pass, at `w + e`.
    Descent,
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

/// The first pass of one worker (or chunk).
pub(crate) struct Ascended {
    pub grads: GradientsParams,
    pub before: Vec<f64>,
    pub loss: f64,
}

/// Everything up to the second pass's backward.
pub(crate) struct Prepared<M> {
    ascent: Ascent<M>,
    second: M,
    loss_p: Tensor<1>,
    loss_p_value: f64,
    sharpness: Option<Vec<f64>>,
    selected: Option<Vec<usize>>,
}

/// The request for `rows` of the batch (`None`: all of it).
fn request(rows: Option<&[usize]>) -> Batch<'_> {
    match rows {
        Some(r) => Batch::Subset(r),
        None => Batch::All,
    }
}

pub(crate) fn to_f64(tensor: Tensor<1>) -> Vec<f64> {
    tensor.into_data().iter::<f64>().collect()
}

/// `loss.backward()` on `model`'s parameters; none when no parameter tracks a gradient (ESAM
/// left every tensor out of the first pass).
pub(crate) fn backward<M: Module>(loss: Tensor<1>, model: &M) -> GradientsParams {
    struct Tracked(bool);
    impl ModuleVisitor for Tracked {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 |= param.val().is_require_grad();
        }
    }
    let mut tracked = Tracked(false);
    model.visit(&mut tracked);
    if !tracked.0 {
        return GradientsParams::new();
    }
    GradientsParams::from_grads(loss.backward(), model)
}

/// The first pass on `rows` of the batch. With `local`, it runs on a [`local_view`], so that
/// Burn's DDP does not all-reduce it.
pub(crate) fn ascend<M, F>(
    sam: &mut Sam,
    model: &M,
    rows: Option<&[usize]>,
    local: bool,
    loss_fn: &mut F,
) -> Result<Ascended, StepError>
where
    M: Module,
    F: FnMut(&M, Batch<'_>, Stage) -> Tensor<1>,
{
    let view = if local { local_view(model) } else { model.clone() };
    let first = if sam.config().is_base_only() {
        view
    } else {
        sam.first_pass_model(&view)
    };
    let losses = loss_fn(&first, request(rows), Stage::Ascent);
    let n = losses.dims()[0];
    let needs = sam.config().selection.needs_losses();
    let before = if needs {
        to_f64(losses.clone().detach().inner())
    } else {
        Vec::new()
    };
    let loss = losses.mean();
    let value = to_f64(loss.clone().detach().inner())[0];
    if !value.is_finite() {
        return Err(StepError::NonFinite {
            pass: Pass::First,
            what: "loss",
        });
    }
    if needs && n < 2 {
        return Err(StepError::PerSampleLossesRequired { expected: 2, got: n });
    }
    Ok(Ascended {
        grads: backward(loss, &first),
        before,
        loss: value,
    })
}

/// Perturbation, selection and the second pass's forward. With `local`, the second pass runs
/// on a [`local_view`] of the perturbed model; otherwise the perturbed model keeps every
/// parameter's distributed flag, so that Burn's DDP averages `g_p`.
pub(crate) fn prepare<M, F>(
    sam: &mut Sam,
    lr: f64,
    model: &M,
    ascended: &Ascended,
    rows: Option<&[usize]>,
    local: bool,
    loss_fn: &mut F,
) -> Result<Prepared<M>, StepError>
where
    M: Module,
    F: FnMut(&M, Batch<'_>, Stage) -> Tensor<1>,
{
    let ascent = sam.perturb(lr, model, &ascended.grads)?;
    let (mut sharpness, mut selected) = (None, None);
    if sam.config().selection.needs_losses() {
        let untracked = ascent.model().clone().no_grad();
        let after = to_f64(loss_fn(&untracked, request(rows), Stage::Selection).inner());
        let (s, chosen) = sam.select_samples(&ascended.before, &after)?;
        // Positions within the chunk, back to positions in the batch.
        let chosen = match rows {
            Some(r) => chosen.iter().map(|&i| r[i]).collect(),
            None => chosen,
        };
        sharpness = Some(s);
        selected = Some(chosen);
    }
    let second = if local {
        local_view(ascent.model())
    } else {
        ascent.model().clone()
    };
    let req = match (&selected, rows) {
        (Some(idx), _) => Batch::Subset(idx),
        (None, r) => request(r),
    };
    let loss_p = loss_fn(&second, req, Stage::Descent).mean();
    let loss_p_value = to_f64(loss_p.clone().detach().inner())[0];
    if !loss_p_value.is_finite() {
        return Err(StepError::NonFinite {
            pass: Pass::Second,
            what: "loss",
        });
    }
    Ok(Prepared {
        ascent,
        second,
        loss_p,
        loss_p_value,
        sharpness,
        selected,
    })
}

impl<M: Module> Prepared<M> {
    /// The second pass's backward.
    pub(crate) fn backward(self) -> (Ascent<M>, GradientsParams, PassInfo) {
        let grads = backward(self.loss_p, &self.second);
        let info = PassInfo {
            loss_p: self.loss_p_value,
            sharpness: self.sharpness,
            selected: self.selected,
        };
        (self.ascent, grads, info)
    }
}

/// What the second pass measured, for the step's report.
pub(crate) struct PassInfo {
    loss_p: f64,
    sharpness: Option<Vec<f64>>,
    selected: Option<Vec<usize>>,
}

/// The combination (committing the worker's flatmin state), with the report completed.
pub(crate) fn finish<M: Module>(
    sam: &mut Sam,
    model: &M,
    ascent: Ascent<M>,
    grads_p: &GradientsParams,
    loss: f64,
    info: PassInfo,
) -> Result<Descent, StepError> {
    let mut d = sam.descent(model, ascent, grads_p)?;
    d.report.loss = Some(loss);
    d.report.loss_perturbed = Some(info.loss_p);
    d.report.sample_sharpness = info.sharpness;
    d.report.selected = info.selected;
    Ok(d)
}

/// The base optimizer alone (ρ = 0): `g` handed on.
pub(crate) fn base_only<M: Module>(sam: &mut Sam, model: &M, ascended: &Ascended) -> Result<Descent, StepError> {
    let mut d = sam.base_descent(model, &ascended.grads)?;
    d.report.loss = Some(ascended.loss);
    Ok(d)
}

/// Whether the combination hands the base optimizer `g_p` alone (then Burn's DDP can average
/// the second pass directly; otherwise the combined gradient is averaged afterwards).
pub(crate) fn is_plain(sam: &Sam) -> bool {
    matches!(sam.config().combination, Combination::Plain)
}

/// The flat per-parameter gradients of `grads` on `layout`.
pub(crate) fn flat_grads<M: Module>(model: &M, layout: &Layout, grads: &GradientsParams) -> ParamVector {
    struct Flat<'a> {
        index: HashMap<ParamId, usize>,
        grads: &'a GradientsParams,
        out: Vec<Option<Tensor<1>>>,
    }
    impl ModuleVisitor for Flat<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(&i) = self.index.get(&param.id)
                && let Some(g) = self.grads.get::<D>(param.id)
            {
                let n = g.shape().num_elements();
                self.out[i] = Some(g.reshape([n]));
            }
        }
    }
    let mut v = Flat {
        index: index(layout),
        grads,
        out: vec![None; layout.len()],
    };
    model.visit(&mut v);
    ParamVector::new(v.out)
}

/// Burn gradients (shaped like the parameters, keyed by id) from a flat vector on `layout`.
pub(crate) fn to_grads<M: Module>(model: &M, layout: &Layout, vector: &ParamVector) -> GradientsParams {
    struct Shape<'a> {
        index: HashMap<ParamId, usize>,
        vector: &'a ParamVector,
        out: GradientsParams,
    }
    impl ModuleVisitor for Shape<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(&i) = self.index.get(&param.id)
                && let Some(t) = self.vector.get(i)
            {
                let shaped: Tensor<D> = t.clone().reshape(param.shape());
                self.out.register::<D>(param.id, shaped);
            }
        }
    }
    let mut v = Shape {
        index: index(layout),
        vector,
        out: GradientsParams::new(),
    };
    model.visit(&mut v);
    v.out
}

fn index(layout: &Layout) -> HashMap<ParamId, usize> {
    layout.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect()
}

/// `Σ_j weight_j · v_j` slot by slot, in the order given (a slot absent from a vector counts
/// as zero); a weight of exactly 1 is not multiplied.
pub(crate) fn weighted_sum(parts: &[(&ParamVector, f64)]) -> ParamVector {
    let slots = parts.first().map(|(v, _)| v.len()).unwrap_or(0);
    let mut out = Vec::with_capacity(slots);
    for i in 0..slots {
        let mut acc: Option<Tensor<1>> = None;
        for (v, w) in parts {
            if let Some(t) = v.get(i) {
                let term = if *w == 1.0 { t.clone() } else { t.clone().mul_scalar(*w) };
                acc = Some(match acc {
                    None => term,
                    Some(a) => {
                        let term = term.to_device(&a.device());
                        a + term
                    }
                });
            }
        }
        out.push(acc);
    }
    ParamVector::new(out)
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
    struct Step<'a> {
        path: Vec<String>,
        lr: &'a ModuleLearningRate,
        sharpness: &'a GradientsParams,
        weight: f64,
    }
    impl ModuleMapper for Step<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(s) = self.sharpness.get::<D>(param.id) else {
                return param;
            };
            let (id, tensor, mapper) = param.consume();
            let lr = self.lr.lr_from_param(id, Some(&self.path.join(".")));
            let require_grad = tensor.is_require_grad();
            let distributed = tensor.is_distributed();
            let checkpointing = tensor.gradient_checkpointing_strategy();
            let inner = tensor.inner();
            let s = s.to_device(&inner.device());
            let mut out = Tensor::from_inner(inner - s.mul_scalar(lr * self.weight));
            if let Some(strategy) = checkpointing {
                out = out.with_gradient_checkpointing_strategy(strategy);
            }
            if require_grad {
                out = out.require_grad();
            }
            if distributed {
                out = out.set_distributed(id);
            }
            Param::from_mapped_value(id, out, mapper)
        }
    }
    model.map(&mut Step {
        path: Vec::new(),
        lr,
        sharpness,
        weight,
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
