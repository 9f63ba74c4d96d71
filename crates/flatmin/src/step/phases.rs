//! The phases of a step after the first pass, each written once: the base step of a step
//! without a second pass, the perturbation, the second pass's conclusion (measures,
//! combination, report) and the base update. The drivers — [`Sam::step`](crate::Sam::step), the
//! two-step stages and `flatmin-learner`'s adapter — all come through here; the members answer
//! through their hooks.

use burn::module::Module;

use crate::base::BaseOptimizer;
use crate::bridge::{self, Layout};
use crate::error::{Pass, StepError};
use crate::member::{BaseView, Combined, Measures, MemberHooks, Radius, StepInfo};
use crate::perturbation;
use crate::report::StepReport;
use crate::vector::{self, ParamVector, read};

use super::precision::Mixed;

/// What a step hands to a base optimizer that flatmin does not run ([`Sam::descent`](crate::Sam::descent)).
///
/// The base optimizer applies [`Descent::gradient`] to the unperturbed weights; with decoupled
/// WSAM it must then apply `w −= lr · sharpness_weight · sharpness` outside its momentum and
/// moments, as [`Sam::finish`](crate::Sam::finish) does.
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

/// A step ready to apply: what the base optimizer gets, and the members' state after the step,
/// made the optimizer's by [`Sam::finish`](crate::Sam::finish) or [`Sam::descent`](crate::Sam::descent).
pub struct Update {
    pub(crate) descent: Descent,
    /// bSAM: `g` at the noisy weights, which its precision update needs.
    pub(crate) first: Option<ParamVector>,
    /// MSAM: the first pass's point, where the base optimizer's weight decay is taken.
    pub(crate) decay_at: Option<ParamVector>,
    pub(crate) work: Vec<Box<dyn MemberHooks>>,
    pub(crate) lr: f64,
    pub(crate) step: u64,
    /// The f32 master weights of a mixed-precision step, which the update is applied to.
    pub(crate) mixed: Option<Mixed>,
}

impl Update {
    /// The step's measurements.
    pub fn report(&self) -> &StepReport {
        &self.descent.report
    }
}

/// A base optimizer view for the phases that do not read it (after the perturbation).
pub(crate) struct NoBase;

impl BaseView for NoBase {
    fn first_moment(&self, _: &str) -> Option<&burn::tensor::Tensor<1>> {
        None
    }

    fn gradient_weight_decay(&self) -> f64 {
        0.0
    }
}

/// The first-pass gradient, measured: `g` (ESAM's left-out tensors taken out), `‖g‖²`.
pub(crate) struct Measured {
    pub g: ParamVector,
    pub squared: f64,
}

/// `g` (the first pass's gradients, read off the model), masked, measured and checked.
pub(crate) fn measure_first(mut g: ParamVector, tensor_mask: Option<&[bool]>) -> Result<Measured, StepError> {
    if let Some(mask) = tensor_mask {
        let slots = g
            .into_slots()
            .into_iter()
            .zip(mask)
            .map(|(t, &keep)| if keep { t } else { None });
        g = ParamVector::new(slots.collect());
    }
    let squared = read(vec![g.squared_norm_lazy()])[0];
    if !squared.sqrt().is_finite() {
        return Err(StepError::NonFinite {
            pass: Pass::First,
            what: "gradient",
        });
    }
    if g.is_vacant() && tensor_mask.is_none_or(|m| m.iter().any(|&k| k)) {
        return Err(StepError::NoGradients);
    }
    Ok(Measured { g, squared })
}

/// What the measures of a conclusion already know: `‖g‖`, and `(‖g_p‖, g·g_p)` when the caller
/// has them (a base step, where `g_p = g`).
pub(crate) struct Known {
    pub g_norm: f64,
    pub gp: Option<(f64, Option<f64>)>,
}

/// The step without a second pass: the base optimizer on `g` (with LookSAM, `g` plus its stored
/// direction; with MSAM, its weight decay moved to the point the gradient was taken at).
#[allow(clippy::too_many_arguments)]
pub(crate) fn base_step(
    info: &StepInfo,
    layout: Layout,
    mut work: Vec<Box<dyn MemberHooks>>,
    measured: Measured,
    offset: Option<(ParamVector, Option<f64>)>,
    decay_at: Option<ParamVector>,
    loss: Option<f64>,
    measure: bool,
    lr: f64,
    mixed: Option<Mixed>,
) -> Result<Update, StepError> {
    let Measured { g, squared } = measured;
    let g_norm = squared.sqrt();
    let reused = work.iter().find_map(|m| m.base_gradient(info, &g));
    // What the base optimizer gets is measured only where a member or the report needs its
    // norm: `g` is finite (checked), and so is what a member adds to it from finite state.
    let measures_gp = measure || work.iter().any(|m| m.needs_gp_norm());
    let mut descent = match &reused {
        Some(gp) if measures_gp => combined(&work, layout, &g, gp, Known { g_norm, gp: None }, info.eps, measure)?,
        Some(gp) => {
            let known = Known {
                g_norm,
                gp: Some((g_norm, None)),
            };
            combined(&work, layout, &g, gp, known, info.eps, measure)?
        }
        // No second pass and nothing reused: the base optimizer gets `g` itself (no combination
        // of `g` with itself, which GSAM's and coupled WSAM's arithmetic would round).
        None => {
            let known = Known {
                g_norm,
                gp: Some((g_norm, Some(squared))),
            };
            combined(&[], layout, &g, &g, known, info.eps, measure)?
        }
    };
    let report = &mut descent.report;
    report.second_pass = false;
    report.loss = loss;
    match &offset {
        // MSAM: the step's one pass ran at `w + e`.
        Some((_, e_norm)) => {
            report.rho = info.rho;
            report.perturbation_norm = e_norm.unwrap_or(0.0);
        }
        None => report.rho = 0.0,
    }
    // The members' state after the step is the working copy (AE-SAM's statistics are updated).
    let first = None;
    work.shrink_to_fit();
    Ok(Update {
        descent,
        first,
        decay_at,
        work,
        lr,
        step: info.step,
        mixed,
    })
}

/// The perturbation: the direction (F-SAM), ESAM's per-element mask, the ball (a geometry
/// member, or SAM's), `e`'s norm and the model at `w + e` (computed in f32 from the master
/// weights of a mixed-precision step, written in the model's float type).
pub(crate) fn perturb<M: Module>(
    info: &StepInfo,
    model: &M,
    work: &mut [Box<dyn MemberHooks>],
    g: &ParamVector,
    g_norm: f64,
    mixed: Option<&Mixed>,
) -> (M, f64) {
    let layout = info.layout;
    let direction = work.iter_mut().find_map(|m| m.direction(info, g));
    // Without a transform of the direction it is `g`, whose norm is known.
    let d_norm = direction.is_none().then_some(g_norm);
    let d = direction.unwrap_or_else(|| g.clone());
    let element_mask = work.iter_mut().find_map(|m| m.element_mask(info, &d));
    let beta = work.iter().find_map(|m| m.beta()).unwrap_or(1.0);
    let w = if work.iter().any(|m| m.needs_weights()) {
        match mixed {
            Some(mixed) => mixed.weights.clone(),
            None => bridge::values(model, layout),
        }
    } else {
        ParamVector::default()
    };
    let radius = Radius {
        rho: info.rho,
        eps: info.eps,
        beta,
        d_norm,
    };
    let made = work
        .iter()
        .find_map(|m| m.perturbation(info, &radius, &d, &w))
        .unwrap_or_else(|| perturbation::euclidean(&radius, &d));
    drop((d, w));
    let (e, e_norm) = perturbation::masked(made, element_mask.as_ref());
    let perturbed = match mixed {
        Some(mixed) => bridge::perturbed_to(model, layout, mixed.shifted(&e)),
        None => bridge::perturbed_by(model, layout, e),
    };
    (perturbed, e_norm)
}

/// The combination of `g` and `g_p` (a member's, or plain `g_p`), checked, with the measured
/// norms in the report. `g·g_p` is measured only when a member or the report asks for it.
pub(crate) fn combined(
    work: &[Box<dyn MemberHooks>],
    layout: Layout,
    g: &ParamVector,
    gp: &ParamVector,
    known: Known,
    eps: f64,
    measure: bool,
) -> Result<Descent, StepError> {
    if gp.is_vacant() {
        return Err(StepError::NoGradients);
    }
    let g_norm = known.g_norm;
    let needs_dot = measure || work.iter().any(|m| m.needs_dot());
    let (gp_norm, dot) = match known.gp {
        Some((gp_norm, dot)) => (gp_norm, dot.filter(|_| needs_dot)),
        None if needs_dot => {
            let sums = read(vec![gp.squared_norm_lazy(), g.dot_lazy(gp)]);
            (sums[0].sqrt(), Some(sums[1]))
        }
        None => (read(vec![gp.squared_norm_lazy()])[0].sqrt(), None),
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
    } = work
        .iter()
        .find_map(|m| m.combine(eps, g, gp, &measures))
        .unwrap_or_else(|| Combined {
            descent: gp.clone(),
            sharpness: None,
            sharpness_weight: 0.0,
        });
    let cosine = match dot {
        Some(dot) if measure && g_norm > 0.0 && gp_norm > 0.0 => Some(dot / (g_norm * gp_norm)),
        Some(_) if measure => Some(0.0),
        _ => None,
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

/// cos(g, g_p) = cos(e, g_p) when `e` is a positive multiple of `g`: `g·g_p` scaled from
/// `e·g_p`, with `e` rebuilt one tensor at a time from `w + e` and `w` (a difference of nearby
/// numbers: accurate to about the weights' precision over the perturbation's size, ample for a
/// report).
pub(crate) fn cosine_from_e<M: Module>(
    model: &M,
    perturbed: &M,
    layout: &Layout,
    gp: &ParamVector,
    g_norm: f64,
) -> Known {
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
        gp: Some((sums[0].sqrt(), Some(dot))),
    }
}

/// The base optimizer (or a member that is its own) applied to `model` with the descent, then
/// decoupled WSAM's sharpness step outside its state. Nothing here can fail: the state is
/// updated in place (its buffers held only here are written in place) and each weight is
/// handed over to its update. When the step holds its own weights (a mixed-precision step's
/// f32 master weights, or a fused GPU's joined ones: [`Mixed`]) the update is applied to them,
/// they are returned, and the model gets them (cast to its float type). Over joined weights and
/// a joined descent the base update is one operation for all parameters
/// ([`BaseOptimizer::update_joined`]); otherwise it runs parameter by parameter.
pub(crate) fn apply<M: Module>(base: &mut BaseOptimizer, model: M, update: &mut Update) -> (M, Option<ParamVector>) {
    let own = update.work.iter().position(|m| m.own_update());
    if own.is_none() && update.first.is_none() && update.decay_at.is_none() {
        let descent = &update.descent;
        let joined = update
            .mixed
            .as_ref()
            .and_then(|mixed| base.update_joined(&descent.layout, update.lr, &mixed.weights, &descent.gradient));
        if let Some(new) = joined {
            let new = match &descent.sharpness {
                Some(s) => new.plus(&s.scaled(-(update.lr * descent.sharpness_weight))),
                None => new,
            };
            update.mixed = None;
            let model = bridge::update(model, &descent.layout, &|i| new.has(i), &mut |i, w| {
                let value = new.get(i).expect("present").clone();
                match value.dtype() == w.dtype() {
                    true => value,
                    false => value.cast(w.dtype()),
                }
            });
            return (model, Some(new));
        }
    }
    base.unjoin();
    let mut states = std::mem::take(&mut base.states);
    let lr = update.lr;
    let descent = &update.descent;
    let first = update.first.as_ref();
    let decay_at = update.decay_at.as_ref();
    let work = &mut update.work;
    let layout = &descent.layout;
    let sharpness_step = lr * descent.sharpness_weight;
    let base_ref = &*base;
    let held = update.mixed.take();
    let half = held.as_ref().is_some_and(|m| m.half);
    let mut master = held.map(|m| m.weights.into_slots());
    let model = bridge::update(model, layout, &|i| descent.gradient.has(i), &mut |i, w| {
        let d = descent.gradient.get(i).expect("present").clone();
        let path = &layout.entries[i].path;
        // A step holding its own weights updates them; the model's own value is let go.
        let (w, dtype) = match master.as_mut() {
            Some(slots) => {
                let dtype = w.dtype();
                let held = slots
                    .get_mut(i)
                    .and_then(Option::take)
                    .expect("held weights cover the layout");
                (held, Some(dtype))
            }
            None => (w, None),
        };
        let new = match own {
            Some(k) => work[k].update(path, lr, w, d, first.and_then(|f| f.get(i)).cloned()),
            None => base_ref.update(&mut states, path, lr, w, d, decay_at.and_then(|v| v.get(i)).cloned()),
        };
        let new = match descent.sharpness.as_ref().and_then(|s| s.get(i)) {
            Some(s) => new - s.clone().mul_scalar(sharpness_step),
            None => new,
        };
        match (dtype, master.as_mut()) {
            (Some(dtype), Some(slots)) => {
                slots[i] = Some(new.clone());
                match new.dtype() == dtype {
                    true => new,
                    false => new.cast(dtype),
                }
            }
            _ => new,
        }
    });
    base.states = states;
    // Joined weights updated one by one are no longer joined: the next step joins them again.
    let master = master.filter(|_| half).map(ParamVector::new);
    (model, master)
}
