//! Faults injected on purpose, for the robustness tests (RELIABILITY.md). Test machinery, not
//! part of the product: compiled in only with the cargo feature `fault-injection`, which the
//! crate's tests turn on (through its dev-dependency on itself, so `cargo test` needs no flag);
//! `cargo build` and `cargo install` leave it out, and then both switches below are ignored and
//! every function here does nothing. With the feature, both switches are environment variables
//! that a normal run never sets, and both are read once.
//!
//! * `FLATMIN_INJECT_NAN_STEP=3,17:inf,40:nan2` makes the loss of the given training steps
//!   (1-based, counted over the whole run as `summary.json`'s `steps` counts them) non-finite:
//!   `nan` (the default) or `inf` in the first pass, `nan2` or `inf2` in the second pass (at
//!   `w + e`). The step must be skipped, reported, and training must go on.
//! * `FLATMIN_PAUSE_AT=NAME[@N]` stops the process for good the `N`-th time (default 1) it reaches
//!   the point `NAME`, after printing `flatmin: paused at NAME` to stderr, so that a test can
//!   `kill -9` it exactly there. The points are the stages of a checkpoint write:
//!   `checkpoint:model` (model file written), `checkpoint:optimizer` (optimizer file written),
//!   `checkpoint:json` (checkpoint.json replaced, old files not yet removed),
//!   `checkpoint:metrics` (metrics.jsonl written), and `write-half:FILE` (half of the bytes of
//!   FILE written to its temporary file, not yet renamed).

#[cfg(not(feature = "fault-injection"))]
pub use absent::*;
#[cfg(feature = "fault-injection")]
pub use injected::*;

#[cfg(feature = "fault-injection")]
mod injected {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use burn::tensor::Tensor;

    /// The environment variable of loss injection.
    pub const INJECT_ENV: &str = "FLATMIN_INJECT_NAN_STEP";
    /// The environment variable of pause points.
    pub const PAUSE_ENV: &str = "FLATMIN_PAUSE_AT";

    /// A non-finite loss injected at one step.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Fault {
        /// The value added to every per-sample loss (NaN or +∞).
        pub value: f64,
        /// In the second pass (at `w + e`) instead of the first.
        pub second_pass: bool,
    }

    /// The faults of a run, by step.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Faults {
        entries: Vec<(usize, Fault)>,
    }

    impl Faults {
        /// Parses the value of [`INJECT_ENV`].
        pub fn parse(spec: &str) -> Result<Self, String> {
            let mut entries = Vec::new();
            for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (step, kind) = item.split_once(':').unwrap_or((item, "nan"));
                let step: usize =
                    step.trim().parse().ok().filter(|&s| s >= 1).ok_or_else(|| {
                        format!("{INJECT_ENV}: `{item}`: expected STEP[:nan|inf|nan2|inf2], STEP >= 1")
                    })?;
                let (value, second_pass) = match kind.trim() {
                    "nan" => (f64::NAN, false),
                    "inf" => (f64::INFINITY, false),
                    "nan2" => (f64::NAN, true),
                    "inf2" => (f64::INFINITY, true),
                    other => return Err(format!("{INJECT_ENV}: `{other}`: expected nan, inf, nan2 or inf2")),
                };
                entries.push((step, Fault { value, second_pass }));
            }
            Ok(Self { entries })
        }

        /// The faults [`INJECT_ENV`] asks for (none when it is unset).
        pub fn from_env() -> Result<Self, String> {
            match std::env::var(INJECT_ENV) {
                Ok(spec) => Self::parse(&spec),
                Err(_) => Ok(Self::default()),
            }
        }

        /// The fault of step `step` (1-based), if any.
        pub fn at(&self, step: usize) -> Option<Fault> {
            self.entries.iter().find(|(s, _)| *s == step).map(|(_, f)| *f)
        }
    }

    impl Fault {
        /// `losses`, poisoned if this is the pass the fault is for: `call` is the 1-based call of
        /// the loss closure within the step, `second_call` the call that is the second pass.
        pub fn apply(&self, losses: Tensor<1>, call: usize, second_call: usize) -> Tensor<1> {
            let target = if self.second_pass { second_call } else { 1 };
            if call == target {
                losses.add_scalar(self.value)
            } else {
                losses
            }
        }
    }

    /// Stops here for good if [`PAUSE_ENV`] names this point (and this is the wanted occurrence).
    pub fn pause_point(name: &str) {
        static WANTED: OnceLock<Option<(String, usize)>> = OnceLock::new();
        static SEEN: AtomicUsize = AtomicUsize::new(0);
        let wanted = WANTED.get_or_init(|| {
            let spec = std::env::var(PAUSE_ENV).ok()?;
            Some(match spec.rsplit_once('@') {
                Some((point, n)) => (point.to_string(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            })
        });
        let Some((point, occurrence)) = wanted else {
            return;
        };
        if point != name || SEEN.fetch_add(1, Ordering::SeqCst) + 1 != *occurrence {
            return;
        }
        eprintln!("flatmin: paused at {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn faults_parse_steps_and_kinds() {
            let f = Faults::parse("3, 17:inf,40:nan2 ,41:inf2").unwrap();
            assert!(f.at(3).unwrap().value.is_nan() && !f.at(3).unwrap().second_pass);
            assert_eq!(
                f.at(17),
                Some(Fault {
                    value: f64::INFINITY,
                    second_pass: false
                })
            );
            assert!(f.at(40).unwrap().second_pass && f.at(41).unwrap().second_pass);
            assert_eq!(f.at(4), None);
            assert_eq!(Faults::parse("").unwrap(), Faults::default());
            for bad in ["0", "x", "3:maybe", "-1"] {
                assert!(Faults::parse(bad).unwrap_err().contains(INJECT_ENV), "{bad}");
            }
        }
    }
}

/// Without the feature: no fault is ever injected and no pause point stops.
#[cfg(not(feature = "fault-injection"))]
mod absent {
    use burn::tensor::Tensor;

    /// No faults.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Faults;

    /// A fault that cannot happen.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Fault {}

    impl Faults {
        /// None, whatever the environment says.
        pub fn from_env() -> Result<Self, String> {
            Ok(Self)
        }

        /// None.
        pub fn at(&self, _step: usize) -> Option<Fault> {
            None
        }
    }

    impl Fault {
        /// Never called: there is no fault.
        pub fn apply(&self, _losses: Tensor<1>, _call: usize, _second_call: usize) -> Tensor<1> {
            match *self {}
        }
    }

    /// Does nothing.
    pub fn pause_point(_name: &str) {}
}
