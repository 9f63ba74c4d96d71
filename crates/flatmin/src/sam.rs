//! The SAM step: pass 1, perturbation, selection, pass 2, combination, base optimizer.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};

use crate::base::BaseOptimizer;
use crate::bridge::{self, Layout};
use crate::combination::{Combination, Combined, Measures, combine};
use crate::config::SamConfig;
use crate::error::{Pass, StepError};
use crate::perturbation::{self, Geometry, SwpGranularity};
use crate::report::{StepReport, StepTimings};
use crate::rng::Rng;
use crate::selection::{SampleSelector, Selection, SharpestSamples};
use crate::vector::{self, ParamVector, read};

mod descent;
pub use descent::Descent;

/// Where ESAM's stochastic masks come from. The default draws them from a seeded generator; a
/// replay of a recorded run injects the recorded masks.
pub trait MaskSource: Send {
    /// Which of `count` parameter tensors take part in this step (true = perturbed).
    fn tensor_mask(&mut self, count: usize, beta: f64) -> Vec<bool>;
    /// Which of `numel` weights of one tensor take part in this step.
    fn element_mask(&mut self, numel: usize, beta: f64) -> Vec<bool>;
}

impl MaskSource for Rng {
    fn tensor_mask(&mut self, count: usize, beta: f64) -> Vec<bool> {
        (0..count).map(|_| self.bernoulli(beta)).collect()
    }

    fn element_mask(&mut self, numel: usize, beta: f64) -> Vec<bool> {
        (0..numel).map(|_| self.bernoulli(beta)).collect()
    }
}

pub(crate) enum Masks {
    Seeded(Rng),
    Custom(Box<dyn MaskSource>),
}

/// The samples a loss closure is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    /// The whole batch.
    All,
    /// These positions of the batch (sorted), for ESAM's second pass.
    Subset(&'a [usize]),
}

impl Batch<'_> {
    /// The rows of a float tensor (batch on dimension 0) this request covers.
    pub fn rows<const D: usize>(&self, tensor: Tensor<D>) -> Tensor<D> {
        match self {
            Batch::All => tensor,
            Batch::Subset(idx) => {
                let indices = index_tensor(idx, &tensor.device());
                tensor.select(0, indices)
            }
        }
    }

    /// The rows of an integer tensor (e.g. labels) this request covers.
    pub fn rows_int<const D: usize>(&self, tensor: Tensor<D, Int>) -> Tensor<D, Int> {
        match self {
            Batch::All => tensor,
            Batch::Subset(idx) => {
                let indices = index_tensor(idx, &tensor.device());
                tensor.select(0, indices)
            }
        }
    }
}

fn index_tensor(idx: &[usize], device: &burn::tensor::Device) -> Tensor<1, Int> {
    let values: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [idx.len()]), device)
}

/// The perturbed model of a step in progress (two-step API), with what the update needs.
///
/// Run the second pass on [`Ascent::model`], then hand the ascent back to [`Sam::update`].
pub struct Ascent<M> {
    model: M,
    layout: Layout,
    g: ParamVector,
    g_norm: f64,
    e_norm: f64,
    rho: f64,
    tensor_mask: Option<Vec<bool>>,
    next_ema: HashMap<String, Tensor<1>>,
    next_rng: Option<Rng>,
    /// `g` was let go before the second pass (the one-call step, where `e` is a positive
    /// multiple of `g` and nothing but the report's cosine needs `g`): the cosine is measured
    /// on `e = (w + e) − w` instead.
    g_from_e: bool,
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
}

/// A SAM-family optimizer, built by [`SamConfig::init`].
///
/// One-call API: [`Sam::step`] runs both passes from a loss closure. Two-step API:
/// [`Sam::perturb`] then [`Sam::update`], with the caller running the passes.
pub struct Sam {
    pub(crate) config: SamConfig,
    pub(crate) base: BaseOptimizer,
    pub(crate) ema: HashMap<String, Tensor<1>>,
    pub(crate) steps: u64,
    pub(crate) masks: Masks,
    selector: Option<Box<dyn SampleSelector>>,
    pending_mask: Option<(Vec<bool>, Option<Rng>)>,
    timings: StepTimings,
}

impl Sam {
    pub(crate) fn from_config(config: SamConfig) -> Self {
        let seed = config.swp.as_ref().map(|s| s.seed).unwrap_or(0);
        let selector: Option<Box<dyn SampleSelector>> = match config.selection {
            Selection::SharpnessSensitive { gamma, rule } if config.selection.needs_losses() => {
                Some(Box::new(SharpestSamples { gamma, rule }))
            }
            _ => None,
        };
        Self {
            base: BaseOptimizer::new(config.base.clone()),
            config,
            ema: HashMap::new(),
            steps: 0,
            masks: Masks::Seeded(Rng::seeded(seed)),
            selector,
            pending_mask: None,
            timings: StepTimings::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SamConfig {
        &self.config
    }

    /// How many steps were taken (skipped steps do not count).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Replaces the source of ESAM's masks (e.g. with recorded masks, for a replay).
    pub fn with_mask_source(mut self, source: Box<dyn MaskSource>) -> Self {
        self.masks = Masks::Custom(source);
        self
    }

    /// Replaces the sample selector (e.g. with recorded selections, for a replay). It is used
    /// whenever the configured selection needs per-sample losses.
    pub fn with_selector(mut self, selector: Box<dyn SampleSelector>) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Where the wall time of the last one-call [`Sam::step`] went (passes and optimizer work).
    pub fn last_timings(&self) -> StepTimings {
        self.timings
    }

    /// ρ at learning rate `lr`.
    pub fn rho_at(&self, lr: f64) -> f64 {
        self.config.rho_schedule.rho_at(self.config.rho, lr)
    }

    fn per_tensor_swp(&self) -> Option<f64> {
        match &self.config.swp {
            Some(s) if s.granularity == SwpGranularity::PerTensor => Some(s.beta),
            _ => None,
        }
    }

    /// Draws from the mask source on a copy of the seeded generator, so that nothing changes
    /// until the step is committed.
    fn draw<T>(&mut self, rng: &mut Option<Rng>, f: impl FnOnce(&mut dyn MaskSource) -> T) -> T {
        match &mut self.masks {
            Masks::Seeded(seeded) => {
                let r = rng.get_or_insert_with(|| seeded.clone());
                f(r)
            }
            Masks::Custom(source) => f(source.as_mut()),
        }
    }

    /// The model for the first pass (two-step API). With ESAM's per-tensor mask it draws this
    /// step's mask and returns a view of `model` in which the left-out tensors track no
    /// gradient, so the backward pass skips their weight gradients; otherwise a plain clone.
    pub fn first_pass_model<M: Module>(&mut self, model: &M) -> M {
        let Some(beta) = self.per_tensor_swp() else {
            return model.clone();
        };
        let layout = Layout::of(model);
        let mut rng = None;
        let mask = self.draw(&mut rng, |m| m.tensor_mask(layout.len(), beta));
        let view = bridge::with_tracked(model, &layout, &mask);
        self.pending_mask = Some((mask, rng));
        view
    }

    /// Two-step API, first half: makes `e` from the first-pass gradients `grads` of `model` and
    /// returns the model at `w + e`. `lr` is this step's learning rate (ρ may follow it).
    ///
    /// Nothing in the optimizer changes until [`Sam::update`] commits the step; a non-finite
    /// gradient is an error and leaves everything as it was.
    pub fn perturb<M: Module>(&mut self, lr: f64, model: &M, grads: &GradientsParams) -> Result<Ascent<M>, StepError> {
        let layout = Layout::of(model);
        let (tensor_mask, mut rng) = match self.per_tensor_swp() {
            Some(beta) => match self.pending_mask.take() {
                Some((mask, rng)) if mask.len() == layout.len() => (Some(mask), rng),
                _ => {
                    let mut rng = None;
                    let mask = self.draw(&mut rng, |m| m.tensor_mask(layout.len(), beta));
                    (Some(mask), rng)
                }
            },
            None => (None, None),
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
        let g_norm = g.norm();
        if !g_norm.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::First,
                what: "gradient",
            });
        }
        let rho = self.rho_at(lr);
        let (d, next_ema) = self.direction(&layout, &g);
        // Without F-SAM's transform the direction is `g`, whose norm is known.
        let d_norm = self.config.friendly.is_none().then_some(g_norm);
        let element_mask = match &self.config.swp {
            Some(s) if s.granularity == SwpGranularity::PerElement => {
                let beta = s.beta;
                let mut bits = Vec::with_capacity(layout.len());
                for (i, entry) in layout.entries.iter().enumerate() {
                    bits.push(match d.get(i) {
                        Some(t) => {
                            let b = self.draw(&mut rng, |m| m.element_mask(entry.numel(), beta));
                            Some(perturbation::mask_tensor(&b, t))
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
        drop(d);
        let perturbed = bridge::perturbed_by(model, &layout, made.e);
        Ok(Ascent {
            model: perturbed,
            layout,
            g,
            g_norm,
            e_norm: made.e_norm,
            rho,
            tensor_mask,
            next_ema,
            next_rng: rng,
            g_from_e: false,
        })
    }

    /// Whether `e` is a positive multiple of `g` (over the tensors that took part) and `g` is
    /// needed by nothing but the report: the Euclidean ball, no F-SAM transform, no per-weight
    /// mask, the plain combination.
    fn e_follows_g(&self) -> bool {
        matches!(self.config.geometry, Geometry::Euclidean)
            && self.config.friendly.is_none()
            && self
                .config
                .swp
                .as_ref()
                .is_none_or(|s| s.granularity == SwpGranularity::PerTensor)
            && matches!(self.config.combination, Combination::Plain)
    }

    /// F-SAM's direction `g − σ·m` and the EMA after this step; `g` itself otherwise.
    fn direction(&self, layout: &Layout, g: &ParamVector) -> (ParamVector, HashMap<String, Tensor<1>>) {
        let Some(f) = &self.config.friendly else {
            return (g.clone(), HashMap::new());
        };
        let mut next = self.ema.clone();
        let d = g.map(|i, gi| {
            let path = &layout.entries[i].path;
            match self.ema.get(path) {
                None => {
                    next.insert(path.clone(), gi.clone());
                    gi.clone()
                }
                Some(m) => {
                    let updated = m.clone().mul_scalar(f.lambda) + gi.clone().mul_scalar(1.0 - f.lambda);
                    let removed = if f.update_then_subtract {
                        updated.clone()
                    } else {
                        m.clone()
                    };
                    next.insert(path.clone(), updated);
                    gi.clone() - removed.mul_scalar(f.sigma)
                }
            }
        });
        (d, next)
    }

    /// Two-step API, second half: combines the first-pass gradient kept in `ascent` with the
    /// second-pass gradients `grads_p` (taken on `ascent.model()`) and applies the base optimizer
    /// to `model` (the unperturbed weights) at learning rate `lr`.
    ///
    /// The model always comes back: updated with the report, or untouched with the reason the
    /// step was skipped (a non-finite second-pass gradient).
    pub fn update<M: Module>(
        &mut self,
        lr: f64,
        model: M,
        ascent: Ascent<M>,
        grads_p: &GradientsParams,
    ) -> (M, Result<StepReport, StepError>) {
        let gp = bridge::gradients(&model, &ascent.layout, grads_p);
        let Ascent {
            model: perturbed,
            layout,
            g,
            g_norm,
            e_norm,
            rho,
            tensor_mask,
            next_ema,
            next_rng,
            g_from_e,
        } = ascent;
        let known = if g_from_e {
            // cos(g, g_p) = cos(e, g_p): `g·g_p` scaled from `e·g_p`, with `e` rebuilt one
            // tensor at a time from `w + e` and `w` (a difference of nearby numbers: accurate to
            // about the weights' precision over the perturbation's size, ample for a report).
            let (w, wp) = (bridge::values(&model, &layout), bridge::values(&perturbed, &layout));
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
        } else {
            Known { g_norm, gp: None }
        };
        // `w + e` is no longer needed: its memory is free before the update allocates.
        drop(perturbed);
        let (model, result) = self.finish(lr, model, &layout, (&g, &gp), known);
        match result {
            Ok(mut report) => {
                if self.config.friendly.is_some() {
                    self.ema = next_ema;
                }
                if let (Some(rng), Masks::Seeded(seeded)) = (next_rng, &mut self.masks) {
                    *seeded = rng;
                }
                report.perturbation_norm = e_norm;
                report.rho = rho;
                report.tensor_mask = tensor_mask;
                (model, Ok(report))
            }
            Err(e) => (model, Err(e)),
        }
    }

    /// Combination and base step; commits the base state and the step count on success.
    fn finish<M: Module>(
        &mut self,
        lr: f64,
        model: M,
        layout: &Layout,
        (g, gp): (&ParamVector, &ParamVector),
        known: Known,
    ) -> (M, Result<StepReport, StepError>) {
        if gp.is_vacant() {
            return (model, Err(StepError::NoGradients));
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
            return (
                model,
                Err(StepError::NonFinite {
                    pass: Pass::Second,
                    what: "gradient",
                }),
            );
        }
        let measures = Measures { g_norm, gp_norm, dot };
        let Combined {
            descent,
            sharpness,
            sharpness_weight,
        } = combine(&self.config.combination, self.config.eps, g, gp, &measures);
        // Nothing below can fail: the base state is updated in place (its buffers held only
        // here are written in place) and each weight is handed over to its update.
        let mut states = std::mem::take(&mut self.base.states);
        let base = &self.base;
        let sharpness_step = lr * sharpness_weight;
        let model = bridge::update(model, layout, &|i| descent.has(i), &mut |i, w| {
            let d = descent.get(i).expect("present").clone();
            let new = base.update(&mut states, &layout.entries[i].path, lr, w, d);
            match sharpness.as_ref().and_then(|s| s.get(i)) {
                Some(s) => new - s.clone().mul_scalar(sharpness_step),
                None => new,
            }
        });
        self.base.states = states;
        self.steps += 1;
        let cosine = if g_norm > 0.0 && gp_norm > 0.0 {
            dot / (g_norm * gp_norm)
        } else {
            0.0
        };
        let report = StepReport {
            grad_norm: g_norm,
            grad_perturbed_norm: gp_norm,
            cosine,
            ..StepReport::default()
        };
        (model, Ok(report))
    }

    /// One-call API: runs the whole step on `model` at learning rate `lr`.
    ///
    /// `loss_fn(model, batch)` runs a forward pass of `model` on the requested samples of the
    /// current batch and returns their losses, one per sample (shape `[n]`), or their mean
    /// (shape `[1]`) when the configured selection does not need per-sample losses. It is called
    /// for the first pass, for ESAM's selection forward (on a model that tracks no gradient),
    /// and for the second pass.
    ///
    /// BatchNorm running statistics are updated by the first pass only. The model always comes
    /// back: updated with the step's report, or untouched with the reason it was skipped.
    pub fn step<M, F>(&mut self, lr: f64, model: M, mut loss_fn: F) -> (M, Result<StepReport, StepError>)
    where
        M: Module,
        F: FnMut(&M, Batch<'_>) -> Tensor<1>,
    {
        let started = Instant::now();
        let passes = PassClock::default();
        let mut timed_loss = |m: &M, batch: Batch<'_>| passes.time(|| loss_fn(m, batch));
        let out = self.step_timed(lr, model, &mut timed_loss, &passes);
        self.timings = passes.timings(started.elapsed());
        out
    }

    fn step_timed<M, F>(
        &mut self,
        lr: f64,
        model: M,
        loss_fn: &mut F,
        passes: &PassClock,
    ) -> (M, Result<StepReport, StepError>)
    where
        M: Module,
        F: FnMut(&M, Batch<'_>) -> Tensor<1>,
    {
        let base_only = self.config.is_base_only();
        let first = if base_only {
            model.clone()
        } else {
            self.first_pass_model(&model)
        };
        let losses = loss_fn(&first, Batch::All);
        let batch = losses.dims()[0];
        let needs_losses = self.config.selection.needs_losses();
        let before = if needs_losses {
            bridge::to_f64(losses.clone().detach().inner())
        } else {
            Vec::new()
        };
        let loss = losses.mean();
        let loss_value = bridge::to_f64(loss.clone().detach().inner())[0];
        if !loss_value.is_finite() {
            self.pending_mask = None;
            return (
                model,
                Err(StepError::NonFinite {
                    pass: Pass::First,
                    what: "loss",
                }),
            );
        }
        if needs_losses && batch < 2 {
            self.pending_mask = None;
            return (
                model,
                Err(StepError::PerSampleLossesRequired {
                    expected: 2,
                    got: batch,
                }),
            );
        }
        let grads = passes.time(|| bridge::backward(loss, &first));
        passes.mark(Phase::FirstPassEnd);
        // The first-pass view shares the weights: dropped, it leaves them to the update alone.
        drop(first);
        if base_only {
            let layout = Layout::of(&model);
            let g = bridge::gradients(&model, &layout, &grads);
            let squared = read(vec![g.squared_norm_lazy()])[0];
            let g_norm = squared.sqrt();
            if !g_norm.is_finite() {
                return (
                    model,
                    Err(StepError::NonFinite {
                        pass: Pass::First,
                        what: "gradient",
                    }),
                );
            }
            drop(grads);
            // `g_p = g`: its norm and `g·g_p` are the ones just measured.
            let known = Known {
                g_norm,
                gp: Some((g_norm, squared)),
            };
            let (model, result) = self.finish(lr, model, &layout, (&g, &g), known);
            let result = result.map(|mut r| {
                r.loss = Some(loss_value);
                r.rho = 0.0;
                r
            });
            return (model, result);
        }
        let mut ascent = match self.perturb(lr, &model, &grads) {
            Ok(a) => a,
            Err(e) => return (model, Err(e)),
        };
        if self.e_follows_g() {
            // Nothing after the perturbation needs `g` but the report's cosine, which `e`
            // gives as well: `g`'s memory is free during the second pass.
            ascent.g = ParamVector::default();
            ascent.g_from_e = true;
        }
        drop(grads);
        let mut sharpness = None;
        let mut selected = None;
        if needs_losses {
            let after = bridge::to_f64(loss_fn(&bridge::untracked(ascent.model()), Batch::All).inner());
            passes.mark(Phase::SelectionEnd);
            if after.len() != batch {
                return (
                    model,
                    Err(StepError::PerSampleLossesRequired {
                        expected: batch,
                        got: after.len(),
                    }),
                );
            }
            let s: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            if s.iter().any(|v| !v.is_finite()) {
                return (
                    model,
                    Err(StepError::NonFinite {
                        pass: Pass::Second,
                        what: "loss",
                    }),
                );
            }
            let chosen = match self.selector.as_mut() {
                Some(sel) => sel.select(&s),
                None => (0..batch).collect(),
            };
            if let Err(e) = check_selection(&chosen, batch) {
                return (model, Err(e));
            }
            sharpness = Some(s);
            selected = Some(chosen);
        }
        let request = match &selected {
            Some(idx) => Batch::Subset(idx),
            None => Batch::All,
        };
        let loss_p = loss_fn(ascent.model(), request).mean();
        let loss_p_value = bridge::to_f64(loss_p.clone().detach().inner())[0];
        if !loss_p_value.is_finite() {
            return (
                model,
                Err(StepError::NonFinite {
                    pass: Pass::Second,
                    what: "loss",
                }),
            );
        }
        let grads_p = passes.time(|| bridge::backward(loss_p, ascent.model()));
        let (model, result) = self.update(lr, model, ascent, &grads_p);
        let result = result.map(|mut r| {
            r.loss = Some(loss_value);
            r.loss_perturbed = Some(loss_p_value);
            r.sample_sharpness = sharpness;
            r.selected = selected;
            r
        });
        (model, result)
    }
}

/// What the update knows of the two gradients before measuring anything: `‖g‖`, and
/// `(‖g_p‖, g·g_p)` when the caller has them (the base step, where `g_p = g`).
struct Known {
    g_norm: f64,
    gp: Option<(f64, f64)>,
}

/// The wall time of a one-call step's passes, and the points where the first pass and the
/// selection forward ended, which split it into [`StepTimings`]' phases.
#[derive(Default)]
struct PassClock {
    total: Cell<Duration>,
    marks: Cell<[Option<Duration>; 2]>,
}

/// A point of the step that ends a phase of the passes.
enum Phase {
    FirstPassEnd,
    SelectionEnd,
}

impl PassClock {
    /// Runs `f`, adding its wall time to the passes'.
    fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.total.set(self.total.get() + t.elapsed());
        out
    }

    /// Marks the end of a phase at the passes' time so far.
    fn mark(&self, phase: Phase) {
        let mut marks = self.marks.get();
        marks[phase as usize] = Some(self.total.get());
        self.marks.set(marks);
    }

    /// The step's timings, `total` being its whole wall time. A phase the step did not reach
    /// (it stopped early, or has no selection) takes no time.
    fn timings(&self, total: Duration) -> StepTimings {
        let all = self.total.get();
        let [first, selected] = self.marks.get();
        let first = first.unwrap_or(all);
        let selected = selected.unwrap_or(first);
        StepTimings {
            total: total.as_secs_f64(),
            passes: all.as_secs_f64(),
            first_pass: first.as_secs_f64(),
            selection: (selected - first).as_secs_f64(),
            second_pass: (all - selected).as_secs_f64(),
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
