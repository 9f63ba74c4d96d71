//! A case file, read into serde-derived types ([`CaseFile`]) and checked into a [`Case`]: the
//! parameter layout, the data, the initial weights, the hyperparameters mapped onto the library
//! ([`super::config`]) and every recorded step.
//!
//! Reading has two layers: the types below say what each field holds (a wrong type, a missing
//! field or a field the format does not have is a [`FieldError`] naming its path); [`Case`]'s
//! checks then relate the fields to each other (shapes, labels, positions).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use flatmin::SamConfig;
use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::CaseError;
use super::config::{ConfigError, config_for};
use super::field::{self, FieldError};

/// A case file as written (`tests/fixtures/FORMAT.md`): every field the format has, typed. The
/// fields the replay does not use (`notes`, `reference`, `torch_version`) are accepted as
/// anything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct CaseFile {
    /// Which algorithm (the names of [`super::OPTIMIZERS`]).
    pub optimizer: String,
    /// The algorithm's settings; their keys and values are checked against the library's
    /// registry ([`config_for`]), so they stay JSON values here.
    pub hyperparams: Map<String, Value>,
    /// The update in words.
    pub notes: Option<IgnoredAny>,
    /// Where the trajectory was recorded from.
    pub reference: Option<IgnoredAny>,
    /// The version of the recording's framework.
    pub torch_version: Option<IgnoredAny>,
    /// The recording's float type: only `float64` is replayed.
    pub dtype: Option<String>,
    /// The loss: only `cross_entropy(mean)`.
    pub loss: Option<String>,
    /// Parameter names, in order.
    pub param_names: Vec<String>,
    /// Parameter shapes, in order.
    pub param_shapes: Vec<Vec<usize>>,
    /// The initial weights, by parameter name.
    pub init_params: BTreeMap<String, Nested>,
    /// The data.
    pub data: DataFile,
    /// Rows per step when a step lists no `batch_indices`.
    pub batch_size: usize,
    /// The recorded steps.
    pub steps: Vec<StepFile>,
}

/// A case's `data`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct DataFile {
    /// The inputs, one row per sample.
    #[serde(rename = "X")]
    pub x: Nested,
    /// The labels, one per row.
    pub y: Vec<i64>,
    /// The recording's seed of the data (not used by the replay).
    pub seed_data: Option<IgnoredAny>,
    /// The recording's seed of the initial weights (not used by the replay).
    pub seed_init: Option<IgnoredAny>,
    /// The recording's generator (not used by the replay).
    pub rng: Option<IgnoredAny>,
}

/// One entry of a case's `steps`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct StepFile {
    /// The step number (default: the position in `steps`).
    pub step: Option<usize>,
    /// Rows of the data the step uses (default: the next `batch_size` rows).
    pub batch_indices: Option<Vec<usize>>,
    /// The reference's batch loss before the step.
    pub loss: Option<f64>,
    /// The reference's mean loss over all rows after the step (not compared by the replay).
    pub full_loss_after: Option<f64>,
    /// The reference's parameters after the step, by name.
    pub params: Option<BTreeMap<String, Nested>>,
    /// The per-algorithm records.
    pub extra: Option<ExtraFile>,
}

/// The per-algorithm records of a step that the replay reads; the others (diagnostics such as
/// `rho_t` or `instance_sharpness`) are accepted as they come.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct ExtraFile {
    /// ESAM: per parameter tensor, whether it takes part in the first pass.
    pub first_pass_requires_grad: Option<Vec<bool>>,
    /// ESAM: the batch positions kept for the second pass.
    pub selected_batch_positions: Option<Vec<usize>>,
    /// bSAM: the standard normal draws of the step, by parameter name.
    pub noise: Option<BTreeMap<String, Nested>>,
    /// Whether the reference ran the second pass.
    pub second_pass: Option<bool>,
}

/// A number or a nested list of numbers (a tensor as nested JSON lists).
#[derive(Debug, Clone, PartialEq)]
pub enum Nested {
    /// One number.
    Number(f64),
    /// A list of nested values.
    List(Vec<Nested>),
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NestedVisitor;

        impl<'de> Visitor<'de> for NestedVisitor {
            type Value = Nested;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a nested list of numbers")
            }

            fn visit_f64<E>(self, v: f64) -> Result<Nested, E> {
                Ok(Nested::Number(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Nested, E> {
                Ok(Nested::Number(v as f64))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Nested, E> {
                Ok(Nested::Number(v as f64))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Nested::List(items))
            }
        }

        deserializer.deserialize_any(NestedVisitor)
    }
}

impl Nested {
    /// The values in row-major order and the shape; a ragged list is an error naming `field`.
    pub fn flatten(&self, field: &str) -> Result<(Vec<f64>, Vec<usize>), CaseError> {
        let (mut out, mut shape) = (Vec::new(), Vec::new());
        self.flatten_into(field, &mut out, &mut shape, 0)?;
        Ok((out, shape))
    }

    fn flatten_into(
        &self,
        field: &str,
        out: &mut Vec<f64>,
        shape: &mut Vec<usize>,
        depth: usize,
    ) -> Result<(), CaseError> {
        match self {
            Nested::List(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                } else if shape[depth] != items.len() {
                    return Err(CaseError(format!("`{field}`: ragged nested array")));
                }
                items
                    .iter()
                    .try_for_each(|item| item.flatten_into(field, out, shape, depth + 1))
            }
            Nested::Number(v) => {
                if shape.len() != depth {
                    return Err(CaseError(format!("`{field}`: ragged nested array")));
                }
                out.push(*v);
                Ok(())
            }
        }
    }
}

/// A case that cannot be read: the file, and what is wrong in it.
#[derive(Debug, thiserror::Error)]
pub enum CaseFileError {
    /// The file cannot be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The case file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{}: not valid JSON: {source}", file.display())]
    Json {
        /// The case file.
        file: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
    /// The case is not readable as one: an error of a field, or of fields taken together.
    #[error("{}: {source}", file.display())]
    Case {
        /// The case file.
        file: PathBuf,
        /// What is wrong in it.
        source: ParseError,
    },
}

/// A JSON value that is not a case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// A field is missing, unknown, or of the wrong type.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The hyperparameters do not map onto the library.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The fields do not make a case together (shapes, labels, positions, recorded noise).
    #[error(transparent)]
    Case(#[from] CaseError),
}

impl From<ParseError> for CaseError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Case(e) => e,
            ParseError::Field(e) => CaseError(e.to_string()),
            ParseError::Config(e) => CaseError::from(e),
        }
    }
}

impl From<CaseFileError> for CaseError {
    fn from(e: CaseFileError) -> Self {
        CaseError(e.to_string())
    }
}

/// A parsed conformance case.
pub struct Case {
    /// `optimizer` as written in the case.
    pub optimizer: String,
    /// The library configuration the case maps to.
    pub config: SamConfig,
    /// The learning rate.
    pub lr: f64,
    /// Parameter names, in order.
    pub names: Vec<String>,
    /// Parameter shapes, in order.
    pub shapes: Vec<Vec<usize>>,
    pub(super) init: Vec<Vec<f64>>,
    pub(super) x: Vec<f64>,
    pub(super) x_shape: [usize; 2],
    pub(super) y: Vec<i64>,
    pub(super) classes: usize,
    pub(super) steps: Vec<RecordedStep>,
}

/// What the case recorded for one step.
pub struct RecordedStep {
    /// The step number.
    pub step: usize,
    /// Rows of the data this step uses.
    pub batch: Vec<usize>,
    /// The reference's batch loss before the step.
    pub loss: Option<f64>,
    /// The reference's parameters after the step (flat, case order).
    pub params: Option<Vec<Vec<f64>>>,
    /// ESAM: the per-tensor mask in force.
    pub tensor_mask: Option<Vec<bool>>,
    /// ESAM: the selected batch positions.
    pub selected: Option<Vec<usize>>,
    /// bSAM: the standard normal draws of the noisy first pass, per parameter tensor (flat).
    pub noise: Option<Vec<Vec<f64>>>,
    /// Whether the reference ran the second pass at this step (`extra.second_pass`).
    pub second_pass: Option<bool>,
}

fn err<T>(msg: impl Into<String>) -> Result<T, CaseError> {
    Err(CaseError(msg.into()))
}

impl Case {
    /// Reads and checks a case file.
    pub fn load(path: &Path) -> Result<Self, CaseError> {
        Self::read(path).map_err(CaseError::from)
    }

    /// Reads and checks a case file, with a typed error naming the file.
    pub fn read(path: &Path) -> Result<Self, CaseFileError> {
        let file = || path.to_path_buf();
        let text = std::fs::read_to_string(path).map_err(|source| CaseFileError::Read { file: file(), source })?;
        let value: Value =
            serde_json::from_str(&text).map_err(|source| CaseFileError::Json { file: file(), source })?;
        Self::from_value(&value).map_err(|source| CaseFileError::Case { file: file(), source })
    }

    /// Checks a parsed case.
    pub fn parse(value: &Value) -> Result<Self, CaseError> {
        Self::from_value(value).map_err(CaseError::from)
    }

    /// Checks a parsed case, with a typed error.
    pub fn from_value(value: &Value) -> Result<Self, ParseError> {
        Self::check(field::from_value(value)?)
    }

    /// Maps a case's hyperparameters onto the library and checks its fields against each other.
    pub fn check(file: CaseFile) -> Result<Self, ParseError> {
        let (config, lr) = config_for(&file.optimizer, &file.hyperparams)?;
        Ok(Self::assemble(file, config, lr)?)
    }

    /// The case from its checked configuration and the fields, checked against each other.
    fn assemble(file: CaseFile, config: SamConfig, lr: f64) -> Result<Self, CaseError> {
        let CaseFile {
            optimizer,
            dtype,
            loss,
            param_names: names,
            param_shapes: shapes,
            init_params,
            data,
            batch_size,
            steps: step_files,
            ..
        } = file;
        if let Some(dtype) = dtype
            && dtype != "float64"
        {
            return err(format!("`dtype` = `{dtype}`: only float64 cases are replayed"));
        }
        if let Some(loss) = loss
            && loss != "cross_entropy(mean)"
        {
            return err(format!("`loss` = `{loss}`: expected cross_entropy(mean)"));
        }
        if names.len() != shapes.len() || names.is_empty() || !names.len().is_multiple_of(2) {
            return err("`param_names` and `param_shapes` must list weight and bias pairs of the same layers");
        }
        for (l, pair) in shapes.chunks(2).enumerate() {
            let ok = pair[0].len() == 2 && pair[1].len() == 1 && pair[0][0] == pair[1][0];
            // (`ok` first: a malformed shape has no `[1]` to chain on; found by fuzzing.)
            let chained = ok && (l == 0 || shapes[2 * l - 2][0] == pair[0][1]);
            if !ok || !chained {
                return err(format!(
                    "`param_shapes`: layer {l} is not a linear layer [out, in] + [out] fed by the previous one"
                ));
            }
        }
        let init = read_params(&init_params, &names, &shapes, "init_params")?;
        let (x, x_shape) = data.x.flatten("data.X")?;
        if x_shape.len() != 2 || x_shape[1] != shapes[0][1] {
            return err(format!(
                "`data.X`: expected rows of {} features, found shape {x_shape:?}",
                shapes[0][1]
            ));
        }
        let classes = shapes[shapes.len() - 1][0];
        if let Some(bad) = data.y.iter().find(|c| !(0..classes as i64).contains(c)) {
            return err(format!("`data.y`: expected labels in 0..{classes}, found {bad}"));
        }
        let y = data.y;
        if y.len() != x_shape[0] {
            return err(format!(
                "`data.y` has {} labels for {} rows of `data.X`",
                y.len(),
                x_shape[0]
            ));
        }
        if batch_size == 0 || batch_size > x_shape[0] {
            return err(format!("`batch_size` = {batch_size}: expected 1..={}", x_shape[0]));
        }
        let layout = Layout {
            names: &names,
            shapes: &shapes,
            rows: x_shape[0],
            batch_size,
        };
        let steps = step_files
            .into_iter()
            .enumerate()
            .map(|(k, s)| layout.step(s, k))
            .collect::<Result<Vec<_>, _>>()?;
        if steps.is_empty() {
            return err("`steps` is empty");
        }
        let with_noise = steps.iter().filter(|s| s.noise.is_some()).count();
        if config.member::<flatmin::BsamConfig>().is_some() {
            if with_noise != 0 && with_noise != steps.len() {
                let k = steps.iter().position(|s| s.noise.is_none()).unwrap_or(0);
                return err(format!(
                    "`steps[{k}].extra.noise` is missing: a BSAM case records the noise of every step or of none"
                ));
            }
        } else if let Some(k) = steps.iter().position(|s| s.noise.is_some()) {
            return err(format!(
                "`steps[{k}].extra.noise`: only a BSAM case draws noise (optimizer `{optimizer}`)"
            ));
        }
        Ok(Case {
            optimizer,
            config,
            lr,
            names,
            shapes,
            init,
            x,
            x_shape: [x_shape[0], x_shape[1]],
            y,
            classes,
            steps,
        })
    }

    /// The recorded steps.
    pub fn steps(&self) -> &[RecordedStep] {
        &self.steps
    }

    /// Rows of the case's data.
    pub fn rows(&self) -> usize {
        self.x_shape[0]
    }
}

/// Tensors by parameter name, flat in the case's order, each of its declared shape.
fn read_params(
    tensors: &BTreeMap<String, Nested>,
    names: &[String],
    shapes: &[Vec<usize>],
    what: &str,
) -> Result<Vec<Vec<f64>>, CaseError> {
    names
        .iter()
        .zip(shapes)
        .map(|(name, shape)| {
            let label = format!("{what}.{name}");
            let Some(tensor) = tensors.get(name) else {
                return err(format!("`{label}` is missing"));
            };
            let (values, found) = tensor.flatten(&label)?;
            if &found != shape {
                return err(format!("`{label}`: expected shape {shape:?}, found {found:?}"));
            }
            Ok(values)
        })
        .collect()
}

/// Positions below `bound`.
fn below(positions: Option<Vec<usize>>, what: &str, bound: usize) -> Result<Option<Vec<usize>>, CaseError> {
    if let Some(i) = positions.iter().flatten().find(|&&i| i >= bound) {
        return err(format!("`{what}`: expected positions below {bound}, found {i}"));
    }
    Ok(positions)
}

/// What a step is checked against: the parameter layout and the data's rows.
struct Layout<'a> {
    names: &'a [String],
    shapes: &'a [Vec<usize>],
    rows: usize,
    batch_size: usize,
}

impl Layout<'_> {
    /// Checks the `k`-th recorded step.
    fn step(&self, s: StepFile, k: usize) -> Result<RecordedStep, CaseError> {
        let step = s.step.unwrap_or(k);
        let batch = match below(s.batch_indices, &format!("steps[{k}].batch_indices"), self.rows)? {
            Some(b) if !b.is_empty() => b,
            Some(_) => return err(format!("`steps[{k}].batch_indices` is empty")),
            None => {
                let per_epoch = self.rows / self.batch_size;
                let start = self.batch_size * (step % per_epoch.max(1));
                (start..start + self.batch_size).collect()
            }
        };
        let params = match &s.params {
            Some(p) => Some(read_params(p, self.names, self.shapes, &format!("steps[{k}].params"))?),
            None => None,
        };
        let (mask, selected, noise, second_pass) = match s.extra {
            Some(e) => (
                e.first_pass_requires_grad,
                e.selected_batch_positions,
                e.noise,
                e.second_pass,
            ),
            None => (None, None, None, None),
        };
        if let Some(m) = &mask
            && m.len() != self.names.len()
        {
            return err(format!(
                "`steps[{k}].extra.first_pass_requires_grad`: expected {} entries, found {}",
                self.names.len(),
                m.len()
            ));
        }
        let selected = below(
            selected,
            &format!("steps[{k}].extra.selected_batch_positions"),
            batch.len(),
        )?;
        let noise = match &noise {
            Some(n) => Some(read_params(
                n,
                self.names,
                self.shapes,
                &format!("steps[{k}].extra.noise"),
            )?),
            None => None,
        };
        Ok(RecordedStep {
            step,
            batch,
            loss: s.loss,
            params,
            tensor_mask: mask,
            selected,
            noise,
            second_pass,
        })
    }
}
