//! The SAM step: an optimizer ([`Sam`]) and its one-call driver ([`Sam::step`]).
//!
//! The step's phases — first pass, perturbation, selection, second pass, combination, base
//! update, report — are each written once, in [`phases`](self::phases), as public methods of
//! [`Sam`]. Three drivers run them: [`Sam::step`] here, the two-step API (the caller runs the
//! passes and calls the phases), and `flatmin-learner`'s adapter for Burn's `Learner`.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::adaptive::AdaptiveState;
use crate::base::bsam::Noise;
use crate::base::{BaseConfig, BaseOptimizer, NoiseSource};
use crate::config::SamConfig;
use crate::error::{Pass, StepError};
use crate::looksam::LookState;
use crate::masks::{Draws, MaskSource, Masks, SwpGranularity};
use crate::perturbation::friendly::FriendlyState;
use crate::report::{StepReport, StepTimings};
use crate::schedule::PassSchedule;
use crate::selection::{SampleSelector, Selection, SharpestSamples};

mod batch;
mod clock;
mod phases;

pub use batch::Batch;
pub(crate) use batch::Expect;
use clock::PassClock;
pub use phases::{Ascent, Descent, FirstPass, SecondPass};

/// A SAM-family optimizer, built by [`SamConfig::init`].
///
/// One-call API: [`Sam::step`] runs both passes from a loss closure. Two-step API:
/// [`Sam::first_pass_model`], [`Sam::perturb`], [`Sam::select`] (ESAM) and [`Sam::update`],
/// with the caller running the passes; or the phases with a loss closure, one by one
/// ([`Sam::first_pass`], [`Sam::ascend`], [`Sam::selection_pass`], [`Sam::second_pass`],
/// [`Sam::update`] or [`Sam::descent`]), as a training loop with its own base optimizer does.
pub struct Sam {
    pub(crate) config: SamConfig,
    pub(crate) base: BaseOptimizer,
    /// F-SAM's average of past gradients (empty without F-SAM).
    pub(crate) friendly: FriendlyState,
    pub(crate) steps: u64,
    pub(crate) masks: Masks,
    /// LookSAM's stored sharpness direction (empty without LookSAM, or before its first SAM step).
    pub(crate) look: LookState,
    /// AE-SAM's running statistics of `‖g‖²`.
    pub(crate) adaptive: AdaptiveState,
    /// bSAM's noise (seeded, or injected for a replay).
    pub(crate) noise: Noise,
    /// The noise generator after the draws of [`Sam::first_pass_model`], committed with the step.
    pending_noise: Option<crate::rng::Rng>,
    selector: Option<Box<dyn SampleSelector>>,
    /// The per-tensor mask drawn by [`Sam::first_pass_model`], for the perturbation to use.
    pending_mask: Option<(Vec<bool>, Draws)>,
    clock: PassClock,
    timings: StepTimings,
}

impl Sam {
    pub(crate) fn from_config(config: SamConfig) -> Self {
        let seed = config.swp.as_ref().map(|s| s.seed).unwrap_or(0);
        let noise_seed = match &config.base {
            BaseConfig::Bsam(b) => b.seed,
            _ => 0,
        };
        let selector: Option<Box<dyn SampleSelector>> = match config.selection {
            Selection::SharpnessSensitive { gamma, rule } if config.selection.needs_losses() => {
                Some(Box::new(SharpestSamples { gamma, rule }))
            }
            _ => None,
        };
        Self {
            base: BaseOptimizer::new(config.base.clone()),
            config,
            friendly: FriendlyState::default(),
            steps: 0,
            masks: Masks::seeded(seed),
            look: LookState::default(),
            adaptive: AdaptiveState::default(),
            noise: Noise::seeded(noise_seed),
            pending_noise: None,
            selector,
            pending_mask: None,
            clock: PassClock::default(),
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

    /// The base optimizer and its per-parameter state.
    pub fn base(&self) -> &BaseOptimizer {
        &self.base
    }

    /// Replaces the source of ESAM's masks (e.g. with recorded masks, for a replay).
    pub fn with_mask_source(mut self, source: Box<dyn MaskSource>) -> Self {
        self.masks = Masks::Custom(source);
        self
    }

    /// Replaces the source of bSAM's noise (e.g. with recorded noise, for a replay).
    pub fn with_noise_source(mut self, source: Box<dyn NoiseSource>) -> Self {
        self.noise = Noise::Custom(source);
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

    /// Whether the next step may run the second pass: the schedule's choice, and never for the
    /// base optimizer alone (ρ = 0 with nothing that needs `g_p`). AE-SAM decides only after
    /// the first pass: this is then `true` and [`Sam::wants_second_pass`] (or
    /// [`FirstPass::runs_second_pass`]) gives the decision.
    pub fn runs_second_pass(&self) -> bool {
        !self.config.is_base_only() && self.schedule().decided_before(self.steps).unwrap_or(true)
    }

    /// Two-step API: whether this step runs the second pass, given its first-pass gradients
    /// `grads` of `model` (AE-SAM asks its policy with `‖g‖²`; the other schedules do not need
    /// the gradients). A step that does not goes on with [`Sam::base_update`] or
    /// [`Sam::base_descent`].
    pub fn wants_second_pass<M: Module>(&self, model: &M, grads: &burn::optim::GradientsParams) -> bool {
        if !self.runs_second_pass() {
            return false;
        }
        match self.schedule() {
            PassSchedule::Adaptive(c) => {
                let squared = phases::squared_norm_of(model, grads);
                self.adaptive.decide(c, self.steps, squared).second_pass
            }
            _ => true,
        }
    }

    pub(crate) fn schedule(&self) -> &PassSchedule {
        self.config.schedule.as_ref().unwrap_or(&PassSchedule::Always)
    }

    /// Whether the selection needs the per-sample losses at `w` and `w + e` (ESAM).
    pub fn needs_sample_losses(&self) -> bool {
        self.config.selection.needs_losses()
    }

    pub(crate) fn per_tensor_swp(&self) -> Option<f64> {
        match &self.config.swp {
            Some(s) if s.granularity == SwpGranularity::PerTensor => Some(s.beta),
            _ => None,
        }
    }

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
        self.clock = PassClock::default();
        let mut loss_fn = |m: &M, batch: Batch<'_>, _: Pass| loss_fn(m, batch);
        let out = self.run_step(lr, model, &mut loss_fn);
        self.timings = self.clock.timings(started.elapsed());
        out
    }

    /// The phases in order, for the one-call API.
    fn run_step<M, F>(&mut self, lr: f64, model: M, loss_fn: &mut F) -> (M, Result<StepReport, StepError>)
    where
        M: Module,
        F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
    {
        let first = match self.first_pass(&model, None, loss_fn) {
            Ok(first) => first,
            Err(e) => return (model, Err(e)),
        };
        if !first.runs_second_pass() {
            return self.base_update(lr, model, first);
        }
        let mut ascent = match self.ascend(lr, &model, first) {
            Ok(a) => a,
            Err(e) => return (model, Err(e)),
        };
        if self.e_follows_g() {
            // Nothing after the perturbation needs `g` but the report's cosine, which `e`
            // gives as well: `g`'s memory is free during the second pass.
            ascent.release_g();
        }
        if let Err(e) = self.selection_pass(&mut ascent, None, loss_fn) {
            return (model, Err(e));
        }
        let second = match self.second_pass(&mut ascent, None, loss_fn) {
            Ok(s) => s,
            Err(e) => return (model, Err(e)),
        };
        let grads_p = self.clock.time(|| second.backward(ascent.model()));
        self.update(lr, model, ascent, &grads_p)
    }
}
