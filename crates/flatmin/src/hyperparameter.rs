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
        let above = if self.lo_closed {
            value >= self.lo
        } else {
            value > self.lo
        };
        let below = if self.hi_closed {
            value <= self.hi
        } else {
            value < self.hi
        };
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

/// A figure of the training run that fills a hyperparameter in when it is left at 0
/// ([`SamConfig::for_run`](crate::SamConfig::for_run)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFigure {
    /// The number of optimizer steps of the run (AE-SAM's threshold moves over them).
    TotalSteps,
    /// The number of training examples (bSAM's noise and weight decay scale with it).
    DataSize,
}

impl RunFigure {
    fn expected(self) -> &'static str {
        match self {
            RunFigure::TotalSteps => "the number of steps of the training run (>= 1; SamConfig::for_run fills it in)",
            RunFigure::DataSize => "the number of training examples (>= 1; SamConfig::for_run fills it in)",
        }
    }
}

/// What a hyperparameter is, apart from the configuration that holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Declaration {
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
    /// Whether the laboratory shows it as a flag and an `hp` key; `false` for what a run fills in
    /// itself (AE-SAM's run length, bSAM's data size, seeds) and for spellings only reference
    /// trajectories use.
    pub lab: bool,
    /// The run's figure that fills it in when left at 0.
    pub run: Option<RunFigure>,
}

impl Declaration {
    /// A hyperparameter shown by the laboratory, with no replay names.
    pub const fn new(key: &'static str, doc: &'static str, kind: Kind, range: Range) -> Self {
        Self {
            key,
            doc,
            kind,
            words: &[],
            range,
            replay: &[],
            lab: true,
            run: None,
        }
    }

    /// With the key names reference trajectories use.
    pub const fn replay(self, replay: &'static [&'static str]) -> Self {
        Self { replay, ..self }
    }

    /// With words a number may also be.
    pub const fn words(self, words: &'static [&'static str]) -> Self {
        Self { words, ..self }
    }

    /// Not shown by the laboratory.
    pub const fn hidden(self) -> Self {
        Self { lab: false, ..self }
    }

    /// Filled in by the run's `figure` when left at 0 (and not shown by the laboratory).
    pub const fn from_run(self, figure: RunFigure) -> Self {
        Self {
            run: Some(figure),
            lab: false,
            ..self
        }
    }
}

/// One hyperparameter of a configuration type `C`, declared next to the field it reads and writes.
pub(crate) struct Declared<C: 'static> {
    /// What it is.
    pub decl: Declaration,
    /// Reads it.
    pub get: fn(&C) -> Value,
    /// Writes it (the value has the declared kind; validation comes later, from `range`).
    pub set: fn(&mut C, Value, &Context),
}

/// Declares a number (`declare!(number Config, "key", "doc", RANGE, field)`), a whole number
/// (`whole`) or a switch (`switch`, no range) of a configuration whose field is a plain `f64`,
/// `u64` or `bool`; a [`Declaration`] builder call may follow (`=> .replay(&["name"])`).
macro_rules! declare {
    (number $c:ty, $key:literal, $doc:literal, $range:expr, $field:ident $(=> $($more:tt)*)?) => {
        $crate::hyperparameter::Declared::<$c> {
            decl: $crate::hyperparameter::Declaration::new($key, $doc, $crate::hyperparameter::Kind::Number, $range) $($($more)*)?,
            get: |c| $crate::hyperparameter::Value::Number(c.$field),
            set: |c, v, _| {
                if let Some(v) = v.number() {
                    c.$field = v;
                }
            },
        }
    };
    (whole $c:ty, $key:literal, $doc:literal, $range:expr, $field:ident $(=> $($more:tt)*)?) => {
        $crate::hyperparameter::Declared::<$c> {
            decl: $crate::hyperparameter::Declaration::new($key, $doc, $crate::hyperparameter::Kind::Whole, $range) $($($more)*)?,
            get: |c| $crate::hyperparameter::Value::Number(c.$field as f64),
            set: |c, v, _| {
                if let Some(v) = v.number() {
                    c.$field = v as u64;
                }
            },
        }
    };
    (switch $c:ty, $key:literal, $doc:literal, $field:ident $(=> $($more:tt)*)?) => {
        $crate::hyperparameter::Declared::<$c> {
            decl: $crate::hyperparameter::Declaration::new($key, $doc, $crate::hyperparameter::Kind::Switch, $crate::hyperparameter::Range::FINITE) $($($more)*)?,
            get: |c| $crate::hyperparameter::Value::Switch(c.$field),
            set: |c, v, _| c.$field = v.on(),
        }
    };
}
pub(crate) use declare;

/// Checks every declared number of `config` against its range (a figure of the run left at 0
/// is missing); the first bad one is named.
pub(crate) fn check_all<C>(config: &C, declared: &[Declared<C>]) -> Result<(), ConfigError> {
    for d in declared {
        if d.decl.kind == Kind::Switch {
            continue;
        }
        if let Value::Number(v) = (d.get)(config) {
            if let (Some(figure), 0.0) = (d.decl.run, v) {
                return Err(ConfigError::new(d.decl.key, v, figure.expected()));
            }
            d.decl.range.check(d.decl.key, v)?;
        }
    }
    Ok(())
}

/// Fills in the figures of the run that `config` left at 0.
pub(crate) fn fill_from_run<C>(config: &mut C, declared: &[Declared<C>], total_steps: u64, data_size: u64) {
    for d in declared {
        let Some(figure) = d.decl.run else { continue };
        if (d.get)(config) == Value::Number(0.0) {
            let value = match figure {
                RunFigure::TotalSteps => total_steps,
                RunFigure::DataSize => data_size,
            };
            let context = Context { lr: 0.0, seed: 0 };
            (d.set)(config, Value::Number(value as f64), &context);
        }
    }
}
