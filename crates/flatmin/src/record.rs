//! Saving and loading optimizer state in Burn's burnpack record format. Each piece of state
//! writes and reads its own part (the base optimizer's buffers in `base/`, F-SAM's average in
//! `perturbation/friendly.rs`); this file holds the container, the step count and the mask
//! generator. Files are written atomically: a crash leaves the previous file or the new one,
//! never a half-written one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::{Bytes, Device, Tensor, TensorData};
use burn_pack::{Reader, Scalar, Writer};

use crate::error::RecordError;
use crate::rng::Rng;
use crate::sam::Sam;

const FORMAT: &str = "flatmin.sam-state.v1";

fn fmt_err(e: impl std::fmt::Display) -> RecordError {
    RecordError::Format(e.to_string())
}

/// A record being written: named flat tensors and unsigned scalars.
#[derive(Default)]
pub(crate) struct RecordOut {
    tensors: Vec<burn_pack::Tensor>,
    scalars: Vec<(String, u64)>,
}

impl RecordOut {
    pub(crate) fn tensor(&mut self, name: String, t: &Tensor<1>) {
        let (bytes, shape, dtype) = t.to_data().into_parts();
        self.tensors
            .push(burn_pack::Tensor::new(name, dtype, shape, None, bytes));
    }

    pub(crate) fn scalar(&mut self, name: String, value: u64) {
        self.scalars.push((name, value));
    }
}

/// The record entries of a per-parameter map of tensors (F-SAM's average, LookSAM's `g_v`):
/// `<prefix><path>`, sorted by name.
pub(crate) fn path_entries<'a>(prefix: &str, map: &'a HashMap<String, Tensor<1>>) -> Vec<(String, &'a Tensor<1>)> {
    let mut out: Vec<(String, &Tensor<1>)> = map.iter().map(|(p, t)| (format!("{prefix}{p}"), t)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Takes the record entry `name` into `map` if it is one of `prefix`'s; gives it back otherwise.
pub(crate) fn take_path_entry(
    prefix: &str,
    map: &mut HashMap<String, Tensor<1>>,
    name: &str,
    value: Tensor<1>,
) -> Option<Tensor<1>> {
    match name.strip_prefix(prefix) {
        Some(path) => {
            map.insert(path.to_string(), value);
            None
        }
        None => Some(value),
    }
}

/// A record being read: each piece of state takes its entries; what is left over is an error.
pub(crate) struct RecordIn {
    tensors: HashMap<String, Tensor<1>>,
    scalars: BTreeMap<String, Scalar>,
}

impl RecordIn {
    pub(crate) fn take_tensor(&mut self, name: &str) -> Option<Tensor<1>> {
        self.tensors.remove(name)
    }

    pub(crate) fn uint(&self, key: &str) -> Result<u64, RecordError> {
        match self.scalars.get(key) {
            Some(Scalar::UInt(v)) => Ok(*v),
            other => Err(RecordError::Mismatch(format!(
                "scalar `{key}`: expected an unsigned integer, found {other:?}"
            ))),
        }
    }

    /// A generator saved as the four scalars `<name>/0` … `<name>/3`.
    pub(crate) fn rng(&self, name: &str) -> Result<Rng, RecordError> {
        Ok(Rng::from_state([
            self.uint(&format!("{name}/0"))?,
            self.uint(&format!("{name}/1"))?,
            self.uint(&format!("{name}/2"))?,
            self.uint(&format!("{name}/3"))?,
        ]))
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

impl Sam {
    fn writer(&self) -> Writer {
        let mut out = RecordOut::default();
        self.base.save(&mut out);
        for (name, t) in self.friendly.record().into_iter().chain(self.look.record()) {
            out.tensor(name, t);
        }
        out.scalar("steps".into(), self.steps);
        if let Some(rng) = self.masks.rng() {
            for (i, word) in rng.state().iter().enumerate() {
                out.scalar(format!("rng/{i}"), *word);
            }
        }
        if let crate::base::BaseConfig::Bsam(_) = self.config.base
            && let Some(rng) = self.noise.rng()
        {
            for (i, word) in rng.state().iter().enumerate() {
                out.scalar(format!("noise/{i}"), *word);
            }
        }
        if let Some(crate::PassSchedule::Adaptive(_)) = self.config.schedule {
            out.scalar("ae/mean".into(), self.adaptive.mean.to_bits());
            out.scalar("ae/var".into(), self.adaptive.var.to_bits());
        }
        let mut writer = Writer::new(out.tensors).with_metadata("format", FORMAT);
        for (k, v) in out.scalars {
            writer = writer.with_scalar(&k, Scalar::UInt(v));
        }
        writer
    }

    /// The optimizer state as burnpack bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecordError> {
        Ok(self.writer().into_bytes().map_err(fmt_err)?.to_vec())
    }

    /// Saves the optimizer state to `path` (burnpack, written atomically; no extension is added).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RecordError> {
        self.writer()
            .auto_extension(false)
            .write_to_file(path.as_ref())
            .map_err(|e| RecordError::Format(format!("{}: {e}", path.as_ref().display())))
    }

    /// Restores state saved by [`Sam::save`] into this optimizer (built from the same config),
    /// placing its tensors on `device`.
    pub fn load(self, path: impl AsRef<Path>, device: &Device) -> Result<Self, RecordError> {
        let reader = Reader::from_file(path.as_ref())
            .map_err(|e| RecordError::Format(format!("{}: {e}", path.as_ref().display())))?;
        self.load_reader(reader, device)
    }

    /// Restores state from [`Sam::to_bytes`].
    pub fn load_bytes(self, bytes: Vec<u8>, device: &Device) -> Result<Self, RecordError> {
        let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(fmt_err)?;
        self.load_reader(reader, device)
    }

    fn load_reader(mut self, reader: Reader, device: &Device) -> Result<Self, RecordError> {
        if reader.metadata().get("format").map(String::as_str) != Some(FORMAT) {
            return Err(RecordError::Mismatch(format!(
                "not a flatmin optimizer record (expected format {FORMAT})"
            )));
        }
        let scalars: BTreeMap<String, Scalar> = reader.scalars().clone();
        let mut friendly = crate::perturbation::friendly::FriendlyState::default();
        let mut look = crate::looksam::LookState::default();
        let mut tensors = HashMap::new();
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
            let value = Tensor::<1>::from_data(data, (device, dtype));
            if let Some(value) = friendly.load(&name, value).and_then(|v| look.load(&name, v)) {
                tensors.insert(name, value);
            }
        }
        let mut record = RecordIn { tensors, scalars };
        self.base.load(&mut record)?;
        if let Some(name) = record.tensors.keys().min() {
            return Err(RecordError::Mismatch(format!("unknown tensor `{name}`")));
        }
        self.friendly = friendly;
        self.look = look;
        self.steps = record.uint("steps")?;
        if let Some(rng) = self.masks.rng_mut() {
            *rng = record.rng("rng")?;
        }
        if let crate::base::BaseConfig::Bsam(_) = self.config.base
            && let Some(rng) = self.noise.rng_mut()
        {
            *rng = record.rng("noise")?;
        }
        if let Some(crate::PassSchedule::Adaptive(_)) = self.config.schedule {
            self.adaptive = crate::adaptive::AdaptiveState {
                mean: f64::from_bits(record.uint("ae/mean")?),
                var: f64::from_bits(record.uint("ae/var")?),
            };
        }
        Ok(self)
    }

    /// Checks that restored state fits `model`, the model it will train: every buffer belongs
    /// to one of its parameters and has that parameter's number of elements and float type. A
    /// state file of another model, or a damaged one, is then an error here rather than a
    /// panic in the next step.
    pub fn check_fits<M: burn::module::Module>(&self, model: &M) -> Result<(), RecordError> {
        let layout = crate::bridge::Layout::of(model);
        let values = crate::bridge::values(model, &layout);
        let params: HashMap<&str, (usize, burn::tensor::DType)> = layout
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| values.get(i).map(|v| (e.path.as_str(), (e.numel(), v.dtype()))))
            .collect();
        let check = |what: &str, path: &str, t: &Tensor<1>| match params.get(path) {
            None => Err(RecordError::Mismatch(format!(
                "{what} of `{path}`: the model has no such parameter"
            ))),
            Some(&(n, dtype)) if t.dims()[0] != n || t.dtype() != dtype => Err(RecordError::Mismatch(format!(
                "{what} of `{path}`: {} values of {:?}, but the parameter has {n} of {dtype:?}",
                t.dims()[0],
                t.dtype()
            ))),
            Some(_) => Ok(()),
        };
        for (path, state) in &self.base.states {
            for (what, t) in state.buffers() {
                check(what, path, t)?;
            }
        }
        for (path, t) in &self.friendly.ema {
            check("F-SAM's EMA", path, t)?;
        }
        for (path, t) in &self.look.gv {
            check("LookSAM's g_v", path, t)?;
        }
        Ok(())
    }
}
