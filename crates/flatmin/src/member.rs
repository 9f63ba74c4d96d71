//! What a member of the family is to the step: a configuration ([`MemberConfig`]) that builds a
//! runtime part ([`MemberHooks`]) answering the step's phase hooks. The step driver (`step/`) calls
//! the hooks in phase order — decide, first-pass point, direction, radius, select, combine,
//! update, commit, record — without knowing which member answers; each member's file holds its
//! configuration, state, record entries, hyperparameter declarations and validation.
//!
//! Every hook has a default that does nothing, so a member implements only the phases it
//! changes. The driver works on a copy of the members during a step and puts the copy in place
//! when the step is committed: a step that fails changes no member's state.

use std::any::Any;
use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;

use crate::bridge::Layout;
use crate::error::{ConfigError, RecordError};
use crate::hyperparameter::{Context, Declared, check_all, fill_from_run};
use crate::param_map::ParamMap;
use crate::record::{RecordIn, RecordOut};
use crate::vector::ParamVector;

/// The room of the step a member occupies; a room holds at most one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Room {
    /// The ball the perturbation lives in (SAM's Euclidean ball when empty).
    Geometry,
    /// A transform of the direction before the ball (F-SAM).
    Direction,
    /// A stochastic mask of the weights (ESAM's SWP).
    Mask,
    /// The samples of the second pass (ESAM's selection).
    Selection,
    /// How `g` and `g_p` become the update (plain `g_p` when empty).
    Combination,
    /// Which steps run the second pass (every step when empty).
    Schedule,
    /// What a step without a second pass reuses (LookSAM).
    Reuse,
    /// A member that is a whole step of its own (bSAM, MSAM): it goes with no other member.
    Whole,
}

impl Room {
    /// Its name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Room::Geometry => "geometry",
            Room::Direction => "direction",
            Room::Mask => "mask",
            Room::Selection => "selection",
            Room::Combination => "combination",
            Room::Schedule => "schedule",
            Room::Reuse => "reuse",
            Room::Whole => "whole step",
        }
    }
}

/// A member's configuration: its declarations, validation and runtime part.
pub(crate) trait MemberConfig: Clone + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The member's name (errors, records, the registry).
    const NAME: &'static str;
    /// The room it occupies.
    const ROOM: Room;
    /// Its hyperparameters.
    const HYPERPARAMETERS: &'static [Declared<Self>];
    /// A room that must be filled for it to work, and why: filled with that room's default
    /// member when a hyperparameter switches this member on (LookSAM needs a schedule).
    const REQUIRES: Option<(Room, &'static str)> = None;
    /// For a whole-step member (room [`Room::Whole`]): why nothing else goes with it, and where
    /// its hyperparameters apply (it is chosen by its preset only).
    const ALONE: Option<(&'static str, &'static str)> = None;

    /// The member with its defaults, seeded from the run where it draws random numbers.
    fn fresh(context: &Context) -> Self;

    /// Checks its hyperparameters; the first bad one is named.
    fn validate(&self) -> Result<(), ConfigError> {
        check_all(self, Self::HYPERPARAMETERS)
    }

    /// Fills in what it needs to know of the training run when left unset (0): the
    /// hyperparameters declared as figures of the run.
    fn for_run(&mut self, total_steps: u64, data_size: u64) {
        fill_from_run(self, Self::HYPERPARAMETERS, total_steps, data_size);
    }

    /// Whether it decides after the first pass whether to run the second (AE-SAM).
    fn decides_after_first_pass(&self) -> bool {
        false
    }

    /// Whether it draws something before the first pass that a skipped second pass would waste
    /// (ESAM's per-tensor mask).
    fn draws_before_first_pass(&self) -> bool {
        false
    }

    /// Whether it is its own base optimizer (bSAM): ρ = 0 is then not the base optimizer.
    fn replaces_base(&self) -> bool {
        false
    }

    /// Whether some steps run no second pass with it (a schedule, MSAM).
    fn skips_second_passes(&self) -> bool {
        Self::ROOM == Room::Schedule
    }

    /// Whether it needs a base optimizer flatmin runs (its update reads or replaces that
    /// optimizer's state): such a step cannot be finished by an optimizer outside flatmin.
    fn own_update(&self) -> bool {
        false
    }

    /// Whether it chooses the second pass's samples from per-sample losses (ESAM's selection).
    fn needs_sample_losses(&self) -> bool {
        false
    }

    /// The runtime part.
    fn build(&self) -> Box<dyn MemberHooks>;
}

/// Implements [`MemberConfig`] for a member's configuration from its name, room,
/// hyperparameters and defaults (`fresh(context) = …`), and the items it overrides:
/// `member_config! { impl GsamConfig as "gsam" in Combination with HYPERPARAMETERS, fresh(_) = Self::new(); fn build(&self) … }`.
macro_rules! member_config {
    (impl $ty:ident as $name:literal in $room:ident with $hp:expr, fresh($ctx:pat_param) = $fresh:expr; $($item:item)*) => {
        impl $crate::member::MemberConfig for $ty {
            const NAME: &'static str = $name;
            const ROOM: $crate::member::Room = $crate::member::Room::$room;
            const HYPERPARAMETERS: &'static [$crate::hyperparameter::Declared<Self>] = $hp;

            fn fresh($ctx: &$crate::hyperparameter::Context) -> Self {
                $fresh
            }

            $($item)*
        }
    };
}
pub(crate) use member_config;

/// What a member sees of the base optimizer.
pub(crate) trait BaseView {
    /// The first moment kept for the parameter at `path` (SGD's momentum buffer, Adam's `m`),
    /// once there is one.
    fn first_moment(&self, path: &str) -> Option<&Tensor<1>>;
    /// The L2 weight decay the base optimizer adds to the gradient (`g + wd·w`); 0 when it has
    /// none or decays the weights directly.
    fn gradient_weight_decay(&self) -> f64;
}

/// What the members see of the step in progress.
pub(crate) struct StepInfo<'a> {
    /// The model's parameters.
    pub layout: &'a Layout,
    /// How many steps were committed before this one (`t = step + 1` counting from 1).
    pub step: u64,
    /// ρ at this step.
    pub rho: f64,
    /// Added to the norm in the perturbation's denominator.
    pub eps: f64,
    /// The base optimizer's state.
    pub base: &'a dyn BaseView,
}

/// The scalars of one step's perturbation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Radius {
    /// ρ at this step.
    pub rho: f64,
    /// Added to the norm.
    pub eps: f64,
    /// ESAM's β (1 without SWP): `e` is divided by it.
    pub beta: f64,
    /// `‖d‖`, when the driver has measured it (the direction is `g`).
    pub d_norm: Option<f64>,
}

/// A perturbation and, where it follows from scalars, its norm.
pub(crate) struct Made {
    /// `e`.
    pub e: ParamVector,
    /// `‖e‖`, when known without measuring.
    pub e_norm: Option<f64>,
}

/// The norms and the inner product the combinations need, measured once per step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measures {
    /// `‖g‖`.
    pub g_norm: f64,
    /// `‖g_p‖`.
    pub gp_norm: f64,
    /// `g·g_p`, when some member or the report asked for it.
    pub dot: Option<f64>,
}

/// What the base optimizer gets, and an optional plain step applied after it.
pub(crate) struct Combined {
    /// The gradient handed to the base optimizer.
    pub descent: ParamVector,
    /// WSAM decoupled: `g_p − g`, applied as `w −= (lr·α)·sharpness` after the base step.
    pub sharpness: Option<ParamVector>,
    /// α of the decoupled sharpness step.
    pub sharpness_weight: f64,
}

/// The record names a member may hold (defined with the records, which the per-parameter maps
/// write without knowing the members).
pub use crate::record::Schema;

/// A source a replay puts in place of a member's own random draws or choices (ESAM's masks and
/// selection, bSAM's noise): made by the member's constructor (`Injection::masks`,
/// `Injection::noise`, `Injection::selector`) and handed to [`crate::Sam::inject`].
pub struct Injection {
    pub(crate) source: Box<dyn Any + Send>,
    /// What it stands in for, in messages.
    pub(crate) what: &'static str,
}

impl Injection {
    pub(crate) fn new<T: Any + Send>(source: T, what: &'static str) -> Self {
        Self {
            source: Box::new(source),
            what,
        }
    }

    /// Takes the source if it is a `T`; gives it back otherwise.
    pub(crate) fn take<T: Any>(self) -> Result<T, Self> {
        let what = self.what;
        match self.source.downcast::<T>() {
            Ok(t) => Ok(*t),
            Err(source) => Err(Self { source, what }),
        }
    }
}

impl std::fmt::Debug for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Injection({})", self.what)
    }
}

/// An injected source, shared by the optimizer and the copy a step works on.
pub(crate) type Shared<T> = Arc<Mutex<Box<T>>>;

/// Puts an injected source of type `Box<T>` in place with `put`, or gives the injection back when
/// it is of another kind.
pub(crate) fn inject_into<T: ?Sized + 'static>(source: Injection, put: impl FnOnce(Shared<T>)) -> Option<Injection> {
    match source.take::<Box<T>>() {
        Ok(source) => {
            put(Arc::new(Mutex::new(source)));
            None
        }
        Err(other) => Some(other),
    }
}

/// A copy of a member's runtime part, for a step to work on.
pub(crate) trait CloneHooks {
    fn clone_box(&self) -> Box<dyn MemberHooks>;
}

impl<T: MemberHooks + Clone + 'static> CloneHooks for T {
    fn clone_box(&self) -> Box<dyn MemberHooks> {
        Box::new(self.clone())
    }
}

/// The runtime part of a member: the phase hooks. The driver calls them on a copy of the
/// members that becomes the optimizer's when the step is committed.
pub(crate) trait MemberHooks: CloneHooks + Send + Sync {
    // ---- decide -------------------------------------------------------------------------------

    /// Before the first pass: whether step `step` runs the second pass, if this member decides.
    fn plan(&self, _step: u64) -> Option<bool> {
        None
    }

    /// After the first pass, from `‖g‖²`: updates the member's statistics and says whether the
    /// step runs the second pass. Called on every step of a member that decides after the first
    /// pass ([`MemberConfig::decides_after_first_pass`]).
    fn decide(&mut self, _step: u64, _g_squared: f64) -> bool {
        true
    }

    // ---- the first pass's point ---------------------------------------------------------------

    /// Which parameter tensors take part in this step (ESAM's per-tensor mask), drawn before the
    /// first pass of a step that may run the second pass.
    fn tensor_mask(&mut self, _count: usize) -> Option<Vec<bool>> {
        None
    }

    /// Whether [`MemberHooks::first_pass_offset`] reads the weights (bSAM's precision starts like
    /// them); otherwise it gets an empty vector and the weights are not read.
    fn offset_reads_weights(&self) -> bool {
        false
    }

    /// Where the first pass runs, as an offset to the weights `w` (bSAM's noise, MSAM's step
    /// along its momentum), and the offset's norm when known.
    fn first_pass_offset(&mut self, _info: &StepInfo, _w: &ParamVector) -> Option<(ParamVector, Option<f64>)> {
        None
    }

    // ---- a step without a second pass ---------------------------------------------------------

    /// What the base optimizer gets on a step without a second pass, from the first-pass
    /// gradient `g` (LookSAM adds its stored direction). `None`: `g` itself.
    fn base_gradient(&self, _info: &StepInfo, _g: &ParamVector) -> Option<ParamVector> {
        None
    }

    /// Whether the base optimizer's weight decay is taken at the first pass's point rather than
    /// at `w` (MSAM, whose gradient is taken at `w + e`: the decay of the point the gradient
    /// belongs to, as its authors' code does).
    fn decays_at_first_pass_point(&self) -> bool {
        false
    }

    // ---- perturbation -------------------------------------------------------------------------

    /// The direction the ball normalizes, from `g` (F-SAM removes its average), its state after
    /// this step kept in the working copy.
    fn direction(&mut self, _info: &StepInfo, _g: &ParamVector) -> Option<ParamVector> {
        None
    }

    /// ESAM's per-element mask of `d`: 0/1 tensors, drawn for each present slot.
    fn element_mask(&mut self, _info: &StepInfo, _d: &ParamVector) -> Option<ParamVector> {
        None
    }

    /// The share of the weights a mask keeps (`e` is divided by it); 1 without a mask.
    fn beta(&self) -> Option<f64> {
        None
    }

    /// Whether the geometry reads the weights.
    fn needs_weights(&self) -> bool {
        false
    }

    /// The perturbation `e` from the direction `d` (a geometry; the Euclidean ball when no
    /// member answers). `w` holds the weights when [`MemberHooks::needs_weights`].
    fn perturbation(&self, _info: &StepInfo, _radius: &Radius, _d: &ParamVector, _w: &ParamVector) -> Option<Made> {
        None
    }

    /// Whether `e` stays a positive multiple of `g` with this member (false for the balls other
    /// than the Euclidean, F-SAM's direction and ESAM's per-element mask): the report's cosine
    /// can then be measured on `e` after `g` is let go.
    fn e_along_g(&self) -> bool {
        true
    }

    /// Whether it needs `g` after the perturbation (a combination, LookSAM, bSAM's update).
    fn needs_g_later(&self) -> bool {
        false
    }

    // ---- selection ----------------------------------------------------------------------------

    /// Whether it chooses the second pass's samples from per-sample losses.
    fn selects(&self) -> bool {
        false
    }

    /// The sorted batch positions the second pass uses, from the per-sample sharpness.
    fn select(&mut self, _sharpness: &[f64]) -> Option<Vec<usize>> {
        None
    }

    // ---- combination --------------------------------------------------------------------------

    /// Whether it needs `g·g_p` in [`Measures`].
    fn needs_dot(&self) -> bool {
        false
    }

    /// Whether it needs `‖g_p‖` in [`Measures`] on a step without a second pass, where `g_p` is
    /// the gradient the base optimizer gets (WSAM's clipping).
    fn needs_gp_norm(&self) -> bool {
        self.needs_dot()
    }

    /// The combination of `g` and `g_p` (plain `g_p` when no member answers).
    fn combine(&self, _eps: f64, _g: &ParamVector, _gp: &ParamVector, _m: &Measures) -> Option<Combined> {
        None
    }

    /// After a second pass, with both gradients (LookSAM stores `g_v`).
    fn after_second_pass(&mut self, _info: &StepInfo, _g: &ParamVector, _gp: &ParamVector) {}

    /// Whether it keeps `g` for its own update (bSAM's precision).
    fn needs_first_gradient(&self) -> bool {
        false
    }

    // ---- update -------------------------------------------------------------------------------

    /// Whether it is its own base optimizer (bSAM): [`MemberHooks::update`] replaces the base
    /// optimizer's rule.
    fn own_update(&self) -> bool {
        false
    }

    /// Its own update of the parameter at `path` with the gradient `grad` (and `first`, the
    /// first pass's gradient when kept), its state changed in the working copy.
    fn update(
        &mut self,
        _path: &str,
        _lr: f64,
        param: Tensor<1>,
        _grad: Tensor<1>,
        _first: Option<Tensor<1>>,
    ) -> Tensor<1> {
        param
    }

    // ---- record -------------------------------------------------------------------------------

    /// Its per-parameter state, if it keeps one as a [`ParamMap`]: the record hooks below then
    /// save, load, list and check it.
    fn param_map(&self) -> Option<&ParamMap> {
        None
    }

    /// Its per-parameter state, to load into.
    fn param_map_mut(&mut self) -> Option<&mut ParamMap> {
        None
    }

    /// Writes its state.
    fn save(&self, out: &mut RecordOut) {
        if let Some(map) = self.param_map() {
            map.save(out);
        }
    }

    /// Reads its state.
    fn load(&mut self, record: &mut RecordIn) -> Result<(), RecordError> {
        if let Some(map) = self.param_map_mut() {
            map.load(record);
        }
        Ok(())
    }

    /// The record names it may hold.
    fn schema(&self) -> Schema {
        self.param_map().map(ParamMap::schema).unwrap_or_default()
    }

    /// Its per-parameter buffers, for a check that they fit a model: (what, path, tensor).
    fn buffers(&self) -> Vec<(&'static str, &str, &Tensor<1>)> {
        self.param_map().map(ParamMap::buffers).unwrap_or_default()
    }

    /// Takes an injected source it draws from; gives it back if it has no use for it.
    fn inject(&mut self, source: Injection) -> Option<Injection> {
        Some(source)
    }
}
