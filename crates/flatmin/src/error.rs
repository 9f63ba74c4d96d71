//! Typed errors: a bad hyperparameter when an optimizer is built, a fault during a step.

use std::fmt;

/// A hyperparameter that failed validation when the optimizer was built.
///
/// Names the field, the value given and what was expected, so a configuration file or command
/// line that carries it can be fixed without reading the source.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The hyperparameter, as it is named in the config (e.g. `"rho"`, `"swp.beta"`).
    pub field: &'static str,
    /// The value that was given, printed as it came.
    pub value: String,
    /// What a valid value looks like (e.g. `"a finite number >= 0"`).
    pub expected: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, value: impl fmt::Display, expected: &'static str) -> Self {
        Self {
            field,
            value: value.to_string(),
            expected,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid hyperparameter `{}` = {}: expected {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Checks that `value` is finite and inside `[lo, hi]` (each end open or closed).
pub(crate) fn check_range(
    field: &'static str,
    value: f64,
    lo: f64,
    lo_closed: bool,
    hi: f64,
    hi_closed: bool,
    expected: &'static str,
) -> Result<(), ConfigError> {
    let above = if lo_closed { value >= lo } else { value > lo };
    let below = if hi_closed { value <= hi } else { value < hi };
    if value.is_finite() && above && below {
        Ok(())
    } else {
        Err(ConfigError::new(field, value, expected))
    }
}

/// Checks that `value` is a finite number `> 0`.
pub(crate) fn check_positive(field: &'static str, value: f64) -> Result<(), ConfigError> {
    check_range(field, value, 0.0, false, f64::INFINITY, false, "a finite number > 0")
}

/// Which pass of a SAM step a fault came from, and which call of a loss closure this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The gradient at the current weights `w`.
    First,
    /// ESAM's selection forward: the per-sample losses at `w + e`, no gradient.
    Selection,
    /// The gradient at the perturbed weights `w + e`.
    Second,
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pass::First => write!(f, "first pass (at w)"),
            Pass::Selection => write!(f, "selection forward (at w + e, no gradient)"),
            Pass::Second => write!(f, "second pass (at w + e)"),
        }
    }
}

/// Why a step could not be taken. Weights and optimizer state are untouched whenever one is
/// returned (or reported as skipped): a step either happens whole or not at all.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// A gradient (or the loss) of one pass held NaN or infinity.
    NonFinite {
        /// The pass whose gradient or loss was not finite.
        pass: Pass,
        /// What was not finite (`"gradient"` or `"loss"`).
        what: &'static str,
    },
    /// The loss closure broke its contract: in `pass` it returned `got` losses where it was
    /// asked for `expected` (one per requested sample), or their mean where `mean_allowed`.
    /// With `at_least`, `expected` is a lower bound: ESAM's selection needs one loss per sample
    /// of a batch of two or more.
    LossCount {
        /// The call of the closure.
        pass: Pass,
        /// How many losses were expected.
        expected: usize,
        /// Whether `expected` is a lower bound (the whole batch was asked for, of unknown size).
        at_least: bool,
        /// Whether a single mean loss would have been accepted instead.
        mean_allowed: bool,
        /// How many the closure returned.
        got: usize,
    },
    /// The configured selection needs the per-sample losses at `w + e` (ESAM), and the two-step
    /// API was asked to run the second pass before [`Ascent::select`](crate::Ascent::select)
    /// chose its samples.
    SelectionMissing,
    /// The configured selection needs the per-sample losses at `w` (ESAM), and the first pass
    /// was handed in as gradients without them ([`PassInput::with_losses`](crate::PassInput::with_losses)).
    SampleLossesMissing,
    /// A stage of a step begun at step `begun` was handed back when the optimizer was at step
    /// `now`: two steps were interleaved, and the older one would undo the newer.
    Stale {
        /// The step the stage was begun at.
        begun: u64,
        /// The optimizer's step now.
        now: u64,
    },
    /// A sample selector returned an empty or out-of-range selection.
    BadSelection(String),
    /// The gradients handed to the two-step API do not belong to the model (no parameter had
    /// a gradient).
    NoGradients,
    /// A base optimizer outside flatmin was asked to apply a step of a member that needs
    /// flatmin's own (bSAM, which is its own base optimizer; MSAM, which steps along the base
    /// optimizer's momentum): the step must be finished by [`Sam::finish`](crate::Sam::finish)
    /// or [`Sam::step`](crate::Sam::step).
    OwnUpdate,
    /// A base optimizer outside flatmin was asked to apply a mixed-precision step: the update
    /// belongs on the f32 master weights flatmin keeps, which only
    /// [`Sam::finish`](crate::Sam::finish) or [`Sam::step`](crate::Sam::step) update (a step
    /// begun with [`Sam::begin_with_master`](crate::Sam::begin_with_master) on the caller's f32
    /// model may be handed over).
    MasterWeights,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::NonFinite { pass, what } => {
                write!(f, "non-finite {what} in the {pass}; step skipped")
            }
            StepError::LossCount {
                pass,
                expected,
                at_least,
                mean_allowed,
                got,
            } => {
                let bound = if *at_least { "at least " } else { "" };
                let mean = if *mean_allowed { ", or their mean (1 value)" } else { "" };
                write!(
                    f,
                    "the loss closure returned {got} loss value(s) in the {pass}; expected one loss per \
                     requested sample ({bound}{expected}){mean}"
                )?;
                if !*mean_allowed {
                    write!(f, " (the sample selection needs one loss per sample)")?;
                }
                Ok(())
            }
            StepError::SelectionMissing => write!(
                f,
                "the sample selection needs the per-sample losses at w + e: call Ascent::select with \
                 them before the second pass, and run the second pass on Ascent::request"
            ),
            StepError::SampleLossesMissing => write!(
                f,
                "the sample selection needs the per-sample losses at w: hand the first pass in as its \
                 losses (one per sample), or as PassInput::with_losses(grads, losses)"
            ),
            StepError::Stale { begun, now } => write!(
                f,
                "a stage of step {begun} was handed back at step {now}: finish one step before \
                 beginning the next"
            ),
            StepError::BadSelection(msg) => write!(f, "bad sample selection: {msg}"),
            StepError::NoGradients => write!(f, "no parameter of the model has a gradient"),
            StepError::OwnUpdate => write!(
                f,
                "this step needs flatmin's own base optimizer (bSAM is its own, MSAM steps along its \
                 momentum): finish it with Sam::finish or Sam::step, not with an outside optimizer \
                 (Sam::descent)"
            ),
            StepError::MasterWeights => write!(
                f,
                "this step keeps f32 master weights (Precision::Mixed on a bf16 or f16 model): finish \
                 it with Sam::finish or Sam::step, or begin it with Sam::begin_with_master on the f32 \
                 model an outside optimizer (Sam::descent) updates"
            ),
        }
    }
}

impl std::error::Error for StepError {}

/// An error while saving or loading optimizer state.
#[derive(Debug)]
pub enum RecordError {
    /// The burnpack container could not be read or written.
    Format(String),
    /// The record does not fit this optimizer (a missing or mistyped entry).
    Mismatch(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Format(msg) => write!(f, "optimizer record: {msg}"),
            RecordError::Mismatch(msg) => write!(f, "optimizer record does not fit: {msg}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// A hyperparameter that could not be set.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingError {
    /// Two settings choose different members of one room of the step (two geometries, two
    /// schedules, …): give one, not both.
    Clash {
        /// The first setting's key.
        first: &'static str,
        /// The second setting's key.
        second: &'static str,
        /// The room both choose.
        room: &'static str,
        /// The members they choose.
        members: (&'static str, &'static str),
    },
    /// A value of the wrong kind, or a member that cannot be chosen this way.
    Invalid(ConfigError),
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Clash {
                first,
                second,
                room,
                members,
            } => write!(
                f,
                "`{first}` and `{second}` both choose the {room} ({} and {}): give one, not both",
                members.0, members.1
            ),
            SettingError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SettingError {}
