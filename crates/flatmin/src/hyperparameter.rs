//! How a member declares its hyperparameters: key, one-line doc, kind, valid range and the key
//! names reference trajectories use, next to the field it reads and writes. The member's
//! validation checks the same ranges, and the default is the member's `Config` default, so every
//! fact about a hyperparameter is written once, in its member's file; the registry
//! ([`crate::HYPERPARAMETERS`]) collects them for the laboratory's flags, `--config` keys, sweep
//! axes and replay keys.

use std::fmt;

use crate::error::ConfigError;

/// What kind of value a hyperparameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A real number (`--rho 0.1`, `"rho": 0.1`).
    Number,
    /// A whole number (`--sam-every 5`).
    Whole,
    /// A switch (`--adaptive`, `"adaptive": true`).
    Switch,
}

/// A hyperparameter's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A number (whole numbers too).
    Number(f64),
    /// A switch.
    Switch(bool),
    /// One of the words a number may also be (Unified SAM's λ: `"1/t"`, `"1-1/t"`).
    Word(&'static str),
}

impl Value {
    /// The number, or 1/0 for a switch; `None` for a word.
    pub fn number(&self) -> Option<f64> {
        match *self {
            Value::Number(v) => Some(v),
            Value::Switch(on) => Some(f64::from(u8::from(on))),
            Value::Word(_) => None,
        }
    }

    /// The value as a switch (any number but 0 is on).
    pub fn on(&self) -> bool {
        match *self {
            Value::Number(v) => v != 0.0,
            Value::Switch(on) => on,
            Value::Word(_) => true,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(v) => write!(f, "{v}"),
            Value::Switch(on) => write!(f, "{on}"),
            Value::Word(w) => write!(f, "{w}"),
        }
    }
}

/// The valid numbers of a hyperparameter: an interval with open or closed ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower end.
    pub lo: f64,
    /// Whether `lo` itself is valid.
    pub lo_closed: bool,
    /// Upper end.
    pub hi: f64,
    /// Whether `hi` itself is valid.
    pub hi_closed: bool,
    /// What a valid value looks like, in words.
    pub expected: &'static str,
}

impl Range {
    /// Any finite number.
    pub const FINITE: Range = Range::new(f64::NEG_INFINITY, false, f64::INFINITY, false, "a finite number");
    /// A finite number `>= 0`.
    pub const NON_NEGATIVE: Range = Range::new(0.0, true, f64::INFINITY, false, "a finite number >= 0");
    /// A finite number `> 0`.
    pub const POSITIVE: Range = Range::new(0.0, false, f64::INFINITY, false, "a finite number > 0");
    /// `[0, 1)`.
    pub const FRACTION: Range = Range::new(0.0, true, 1.0, false, "a number in [0, 1)");
    /// `(0, 1]`.
    pub const SHARE: Range = Range::new(0.0, false, 1.0, true, "a number in (0, 1]");
    /// `[0, 1]`.
    pub const PROBABILITY: Range = Range::new(0.0, true, 1.0, true, "a number in [0, 1]");
    /// A whole number `>= 1`.
    pub const COUNT: Range = Range::new(1.0, true, f64::INFINITY, false, "a whole number >= 1");
    /// A whole number `>= 0`.
    pub const WHOLE: Range = Range::new(0.0, true, f64::INFINITY, false, "a whole number >= 0");

    /// An interval.
    pub const fn new(lo: f64, lo_closed: bool, hi: f64, hi_closed: bool, expected: &'static str) -> Self {
        Self {
            lo,
            lo_closed,
            hi,
            hi_closed,
            expected,
        }
    }

    /// Whether `value` is finite and inside the interval.
    pub fn contains(&self, value: f64) -> bool {
        let above = if self.lo_closed { value >= self.lo } else { value > self.lo };
        let below = if self.hi_closed { value <= self.hi } else { value < self.hi };
        value.is_finite() && above && below
    }

    /// `Ok` when `value` is valid for `field`, else the error naming it.
    pub(crate) fn check(&self, field: &'static str, value: f64) -> Result<(), ConfigError> {
        if self.contains(value) {
            Ok(())
        } else {
            Err(ConfigError::new(field, value, self.expected))
        }
    }
}

/// What setting a hyperparameter needs to know of the run besides the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context {
    /// The peak learning rate (GSAM's ρ schedule follows it).
    pub lr: f64,
    /// The run's seed (ESAM's masks, randomized sharpness training's draws, bSAM's noise).
    pub seed: u64,
}

/// One hyperparameter of a configuration type `C`, declared next to the field it reads and writes.
pub(crate) struct Declared<C: 'static> {
    /// The key: `hp` key, `sweep --vary` axis and (with `-` for `_`) command-line flag.
    pub key: &'static str,
    /// One line: what it is.
    pub doc: &'static str,
    /// Number, whole number or switch.
    pub kind: Kind,
    /// Words a number may also be.
    pub words: &'static [&'static str],
    /// The valid numbers (unused for a switch).
    pub range: Range,
    /// The key names reference trajectories use for it (`hyperparams.<name>` of a case).
    pub replay: &'static [&'static str],
    /// Reads it.
    pub get: fn(&C) -> Value,
    /// Writes it (the value has the declared kind; validation comes later, from `range`).
    pub set: fn(&mut C, Value, &Context),
    /// Whether the laboratory shows it as a flag and an `hp` key; `false` for what a run fills in
    /// itself (AE-SAM's run length, bSAM's data size, seeds) and for spellings only reference
    /// trajectories use.
    pub lab: bool,
}

/// Declares a number (`number!(Config, "key", "doc", RANGE, field)`), a whole number
/// (`whole!`) or a switch (`switch!`) of a configuration whose field is a plain `f64`, `u64` or
/// `bool`, with the replay key names after `replay:`.
macro_rules! declare {
    ($kind:ident $c:ty, $key:literal, $doc:literal, $($rest:tt)*) => {
        $crate::hyperparameter::declare!(@ $kind $c, $key, $doc, $($rest)*)
    };
    (@ number $c:ty, $key:literal, $doc:literal, $range:expr, $field:ident, replay: [$($r:literal),*]) => {
        $crate::hyperparameter::declare!(@ number $c, $key, $doc, $range, $field, replay: [$($r),*], lab: true)
    };
    (@ number $c:ty, $key:literal, $doc:literal, $range:expr, $field:ident, replay: [$($r:literal),*], lab: $lab:literal) => {
        $crate::hyperparameter::Declared::<$c> {
            key: $key,
            doc: $doc,
            kind: $crate::hyperparameter::Kind::Number,
            words: &[],
            range: $range,
            replay: &[$($r),*],
            get: |c| $crate::hyperparameter::Value::Number(c.$field),
            set: |c, v, _| {
                if let Some(v) = v.number() {
                    c.$field = v;
                }
            },
            lab: $lab,
        }
    };
    (@ whole $c:ty, $key:literal, $doc:literal, $range:expr, $field:ident, replay: [$($r:literal),*]) => {
        $crate::hyperparameter::declare!(@ whole $c, $key, $doc, $range, $field, replay: [$($r),*], lab: true)
    };
    (@ whole $c:ty, $key:literal, $doc:literal, $range:expr, $field:ident, replay: [$($r:literal),*], lab: $lab:literal) => {
        $crate::hyperparameter::Declared::<$c> {
            key: $key,
            doc: $doc,
            kind: $crate::hyperparameter::Kind::Whole,
            words: &[],
            range: $range,
            replay: &[$($r),*],
            get: |c| $crate::hyperparameter::Value::Number(c.$field as f64),
            set: |c, v, _| {
                if let Some(v) = v.number() {
                    c.$field = v as u64;
                }
            },
            lab: $lab,
        }
    };
    (@ switch $c:ty, $key:literal, $doc:literal, $field:ident, replay: [$($r:literal),*]) => {
        $crate::hyperparameter::declare!(@ switch $c, $key, $doc, $field, replay: [$($r),*], lab: true)
    };
    (@ switch $c:ty, $key:literal, $doc:literal, $field:ident, replay: [$($r:literal),*], lab: $lab:literal) => {
        $crate::hyperparameter::Declared::<$c> {
            key: $key,
            doc: $doc,
            kind: $crate::hyperparameter::Kind::Switch,
            words: &[],
            range: $crate::hyperparameter::Range::FINITE,
            replay: &[$($r),*],
            get: |c| $crate::hyperparameter::Value::Switch(c.$field),
            set: |c, v, _| c.$field = v.on(),
            lab: $lab,
        }
    };
}
pub(crate) use declare;

/// Checks every declared number of `config` against its range; the first bad one is named.
pub(crate) fn check_all<C>(config: &C, declared: &[Declared<C>]) -> Result<(), ConfigError> {
    for d in declared {
        if d.kind == Kind::Switch {
            continue;
        }
        if let Value::Number(v) = (d.get)(config) {
            d.range.check(d.key, v)?;
        }
    }
    Ok(())
}
