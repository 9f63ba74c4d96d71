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

/// Checks that `value` is a finite number `>= 0`.
pub(crate) fn check_non_negative(field: &'static str, value: f64) -> Result<(), ConfigError> {
    check_range(field, value, 0.0, true, f64::INFINITY, false, "a finite number >= 0")
}

/// Checks that `value` is a finite number `> 0`.
pub(crate) fn check_positive(field: &'static str, value: f64) -> Result<(), ConfigError> {
    check_range(field, value, 0.0, false, f64::INFINITY, false, "a finite number > 0")
}

/// Checks that `value` is a finite number.
pub(crate) fn check_finite(field: &'static str, value: f64) -> Result<(), ConfigError> {
    check_range(
        field,
        value,
        f64::NEG_INFINITY,
        false,
        f64::INFINITY,
        false,
        "a finite number",
    )
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
    /// API was asked to finish a step before [`Sam::select`](crate::Sam::select) chose the
    /// second pass's samples.
    SelectionMissing,
    /// A sample selector returned an empty or out-of-range selection.
    BadSelection(String),
    /// The gradients handed to the two-step API do not belong to the model (no parameter had
    /// a gradient).
    NoGradients,
    /// A base optimizer outside flatmin was asked to apply a step of a method that is its own
    /// base optimizer (bSAM, whose precision shapes its noise and its ascent): the step must be
    /// finished by [`Sam::update`](crate::Sam::update) or [`Sam::step`](crate::Sam::step).
    OwnUpdate,
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
                "the sample selection needs the per-sample losses at w + e: call Sam::select (or \
                 Sam::selection_pass) after perturb and run the second pass on the samples it returns"
            ),
            StepError::BadSelection(msg) => write!(f, "bad sample selection: {msg}"),
            StepError::NoGradients => write!(f, "no parameter of the model has a gradient"),
            StepError::OwnUpdate => write!(
                f,
                "bSAM is its own base optimizer (its precision shapes the noise and the ascent): \
                 finish its steps with Sam::update or Sam::step, not with an outside optimizer \
                 (Sam::descent, Sam::base_descent)"
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
