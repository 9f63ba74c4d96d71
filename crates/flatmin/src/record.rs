//! The optimizer's state as a record: named flat tensors and unsigned scalars, each member
//! writing and reading its own entries under its own names (the base optimizer's buffers under
//! `base/`, F-SAM's average under `ema/`, LookSAM's `g_v` under `looksam/`, ESAM's generator
//! `rng/`, bSAM's `noise/` and its state under `base/`, AE-SAM's `ae/`). Saved as Burn's
//! burnpack format; files are written atomically: a crash leaves the previous file or the new
//! one, never a half-written one.
//!
//! The names are those of format `flatmin.sam-state.v1`, which every flatmin so far wrote: old
//! records load unchanged.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::{Bytes, Device, Tensor, TensorData};
use burn_pack::{Reader, Scalar, Writer};

use crate::error::RecordError;
use crate::rng::Rng;

const FORMAT: &str = "flatmin.sam-state.v1";

fn fmt_err(e: impl std::fmt::Display) -> RecordError {
    RecordError::Format(e.to_string())
}

/// A record being written: named flat tensors and unsigned scalars.
#[derive(Default)]
pub(crate) struct RecordOut {
    pub(crate) tensors: Vec<(String, Tensor<1>)>,
    pub(crate) scalars: Vec<(String, u64)>,
}

impl RecordOut {
    pub(crate) fn tensor(&mut self, name: String, t: &Tensor<1>) {
        self.tensors.push((name, t.clone()));
    }

    pub(crate) fn scalar(&mut self, name: String, value: u64) {
        self.scalars.push((name, value));
    }

    /// A generator as the four scalars `<name>/0` … `<name>/3`.
    pub(crate) fn rng(&mut self, name: &str, rng: &Rng) {
        for (i, word) in rng.state().iter().enumerate() {
            self.scalar(format!("{name}/{i}"), *word);
        }
    }

    /// A per-parameter map of tensors as `<prefix><path>`, sorted by path.
    pub(crate) fn map(&mut self, prefix: &str, map: &HashMap<String, Tensor<1>>) {
        let mut paths: Vec<&String> = map.keys().collect();
        paths.sort();
        for path in paths {
            self.tensor(format!("{prefix}{path}"), &map[path]);
        }
    }
}

/// A record being read: each member takes its entries; what is left over is an error.
pub(crate) struct RecordIn {
    pub(crate) tensors: HashMap<String, Tensor<1>>,
    pub(crate) scalars: BTreeMap<String, u64>,
}

impl RecordIn {
    pub(crate) fn take_tensor(&mut self, name: &str) -> Option<Tensor<1>> {
        self.tensors.remove(name)
    }

    pub(crate) fn uint(&mut self, key: &str) -> Result<u64, RecordError> {
        self.scalars
            .remove(key)
            .ok_or_else(|| RecordError::Mismatch(format!("scalar `{key}`: missing (expected an unsigned integer)")))
    }

    /// A generator saved as the four scalars `<name>/0` … `<name>/3`.
    pub(crate) fn rng(&mut self, name: &str) -> Result<Rng, RecordError> {
        Ok(Rng::from_state([
            self.uint(&format!("{name}/0"))?,
            self.uint(&format!("{name}/1"))?,
            self.uint(&format!("{name}/2"))?,
            self.uint(&format!("{name}/3"))?,
        ]))
    }

    /// Takes every tensor named `<prefix><path>` into a map by path.
    pub(crate) fn map(&mut self, prefix: &str) -> HashMap<String, Tensor<1>> {
        let names: Vec<String> = self.tensors.keys().filter(|n| n.starts_with(prefix)).cloned().collect();
        names
            .into_iter()
            .map(|n| {
                let t = self.tensors.remove(&n).expect("listed");
                (n[prefix.len()..].to_string(), t)
            })
            .collect()
    }

    /// The middle parts of the scalar names `<prefix><middle><suffix>`, sorted.
    pub(crate) fn scalar_groups(&self, prefix: &str, suffix: &str) -> Vec<String> {
        self.scalars
            .keys()
            .filter_map(|k| k.strip_prefix(prefix)?.strip_suffix(suffix))
            .map(str::to_string)
            .collect()
    }
}

/// An optimizer's state: the base optimizer's and every member's, by name, from
/// [`Sam::record`](crate::Sam::record); saved and read as burnpack.
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Device;
/// use flatmin::{SamConfig, SamRecord};
///
/// let model: Linear = LinearConfig::new(4, 3).init(&Device::flex());
/// let optim = SamConfig::preset("fsam", SamConfig::sgd_base(0.9, 0.0)).unwrap().init().unwrap();
/// let bytes = optim.record().to_bytes().unwrap();
/// let again = SamRecord::from_bytes(bytes, &Device::flex()).unwrap();
/// let optim = SamConfig::preset("fsam", SamConfig::sgd_base(0.9, 0.0)).unwrap().init().unwrap()
///     .load_record(again, &model).unwrap();
/// assert_eq!(optim.steps(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SamRecord {
    /// Flat state tensors by name.
    pub tensors: BTreeMap<String, Tensor<1>>,
    /// Unsigned scalars by name (counts, generator words, bit patterns of `f64` statistics).
    pub scalars: BTreeMap<String, u64>,
}

impl SamRecord {
    pub(crate) fn from_out(out: RecordOut) -> Self {
        Self {
            tensors: out.tensors.into_iter().collect(),
            scalars: out.scalars.into_iter().collect(),
        }
    }

    pub(crate) fn into_in(self) -> RecordIn {
        RecordIn {
            tensors: self.tensors.into_iter().collect(),
            scalars: self.scalars,
        }
    }

    fn writer(&self) -> Writer {
        let tensors = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let (bytes, shape, dtype) = t.to_data().into_parts();
                burn_pack::Tensor::new(name.clone(), dtype, shape, None, bytes)
            })
            .collect();
        let mut writer = Writer::new(tensors).with_metadata("format", FORMAT);
        for (k, v) in &self.scalars {
            writer = writer.with_scalar(k, Scalar::UInt(*v));
        }
        writer
    }

    /// The record as burnpack bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecordError> {
        Ok(self.writer().into_bytes().map_err(fmt_err)?.to_vec())
    }

    /// Saves the record to `path` (burnpack, written atomically; no extension is added).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RecordError> {
        self.writer()
            .auto_extension(false)
            .write_to_file(path.as_ref())
            .map_err(|e| RecordError::Format(format!("{}: {e}", path.as_ref().display())))
    }

    /// Reads a record saved by [`SamRecord::save`], placing its tensors on `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, RecordError> {
        let reader = Reader::from_file(path.as_ref())
            .map_err(|e| RecordError::Format(format!("{}: {e}", path.as_ref().display())))?;
        Self::from_reader(reader, device)
    }

    /// Reads a record from [`SamRecord::to_bytes`].
    pub fn from_bytes(bytes: Vec<u8>, device: &Device) -> Result<Self, RecordError> {
        let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(fmt_err)?;
        Self::from_reader(reader, device)
    }

    fn from_reader(reader: Reader, device: &Device) -> Result<Self, RecordError> {
        if reader.metadata().get("format").map(String::as_str) != Some(FORMAT) {
            return Err(RecordError::Mismatch(format!(
                "not a flatmin optimizer record (expected format {FORMAT})"
            )));
        }
        let mut scalars = BTreeMap::new();
        for (name, value) in reader.scalars() {
            match value {
                Scalar::UInt(v) => {
                    scalars.insert(name.clone(), *v);
                }
                other => {
                    return Err(RecordError::Mismatch(format!(
                        "scalar `{name}`: expected an unsigned integer, found {other:?}"
                    )));
                }
            }
        }
        let mut tensors = BTreeMap::new();
        for tensor in reader.into_tensors().map_err(fmt_err)? {
            let (name, dtype, shape, _, bytes) = tensor.into_parts().map_err(fmt_err)?;
            // Every state buffer is a flat float tensor whose bytes are exactly its elements.
            let whole = shape.len() == 1 && dtype.is_float() && shape[0].checked_mul(dtype.size()) == Some(bytes.len());
            if !whole {
                return Err(RecordError::Mismatch(format!(
                    "tensor `{name}`: shape {shape:?} of {dtype:?} in {} bytes; expected a flat float buffer",
                    bytes.len()
                )));
            }
            let data = TensorData::from_bytes(bytes, shape, dtype);
            tensors.insert(name, Tensor::<1>::from_data(data, (device, dtype)));
        }
        Ok(Self { tensors, scalars })
    }
}

/// The record names a member may hold, known before it has any state (what a checkpoint with
/// a fixed layout, such as the Learner's model record, allocates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// Prefixes of per-parameter tensor maps (`<prefix><parameter path>`, one flat tensor of
    /// the parameter's size each).
    pub maps: Vec<&'static str>,
    /// Unsigned scalars, by full name.
    pub scalars: Vec<String>,
}
