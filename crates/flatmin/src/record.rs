//! Saving and loading optimizer state (base-optimizer buffers, F-SAM's EMA, the mask generator,
//! the step count) in Burn's burnpack record format. Files are written atomically: a crash
//! leaves the previous file or the new one, never a half-written one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::{Bytes, Device, Tensor, TensorData};
use burn_pack::{Reader, Scalar, Writer};

use crate::base::BaseState;
use crate::error::RecordError;
use crate::rng::Rng;
use crate::sam::{Masks, Sam};

const FORMAT: &str = "flatmin.sam-state.v1";

fn fmt_err(e: impl std::fmt::Display) -> RecordError {
    RecordError::Format(e.to_string())
}

impl Sam {
    fn writer(&self) -> Writer {
        let mut tensors = Vec::new();
        let mut scalars: Vec<(String, Scalar)> = Vec::new();
        let mut push = |name: String, t: &Tensor<1>| {
            let data = t.to_data();
            let (bytes, shape, dtype) = data.into_parts();
            tensors.push(burn_pack::Tensor::new(name, dtype, shape, None, bytes));
        };
        let mut paths: Vec<&String> = self.base.states.keys().collect();
        paths.sort();
        for path in paths {
            let s = &self.base.states[path];
            if let Some(t) = &s.momentum {
                push(format!("base/{path}/momentum"), t);
            }
            if let Some(t) = &s.exp_avg {
                push(format!("base/{path}/exp_avg"), t);
            }
            if let Some(t) = &s.exp_avg_sq {
                push(format!("base/{path}/exp_avg_sq"), t);
            }
            scalars.push((format!("base/{path}/step"), Scalar::UInt(s.step)));
        }
        let mut ema: Vec<(&String, &Tensor<1>)> = self.ema.iter().collect();
        ema.sort_by(|a, b| a.0.cmp(b.0));
        for (path, t) in ema {
            push(format!("ema/{path}"), t);
        }
        scalars.push(("steps".into(), Scalar::UInt(self.steps)));
        if let Masks::Seeded(rng) = &self.masks {
            for (i, word) in rng.state().iter().enumerate() {
                scalars.push((format!("rng/{i}"), Scalar::UInt(*word)));
            }
        }
        let mut writer = Writer::new(tensors).with_metadata("format", FORMAT);
        for (k, v) in scalars {
            writer = writer.with_scalar(&k, v);
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
        let uint = |key: &str| -> Result<u64, RecordError> {
            match scalars.get(key) {
                Some(Scalar::UInt(v)) => Ok(*v),
                other => Err(RecordError::Mismatch(format!(
                    "scalar `{key}`: expected an unsigned integer, found {other:?}"
                ))),
            }
        };
        let mut base: HashMap<String, BaseState> = HashMap::new();
        let mut ema: HashMap<String, Tensor<1>> = HashMap::new();
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
            if let Some(path) = name.strip_prefix("ema/") {
                ema.insert(path.to_string(), value);
                continue;
            }
            let (path, field) = name
                .strip_prefix("base/")
                .and_then(|rest| rest.rsplit_once('/'))
                .ok_or_else(|| RecordError::Mismatch(format!("unknown tensor `{name}`")))?;
            let state = base.entry(path.to_string()).or_default();
            match field {
                "momentum" => state.momentum = Some(value),
                "exp_avg" => state.exp_avg = Some(value),
                "exp_avg_sq" => state.exp_avg_sq = Some(value),
                _ => return Err(RecordError::Mismatch(format!("unknown tensor `{name}`"))),
            }
        }
        for key in scalars.keys() {
            if let Some(path) = key.strip_prefix("base/").and_then(|r| r.strip_suffix("/step")) {
                base.entry(path.to_string()).or_default().step = uint(key)?;
            }
        }
        self.base.states = base;
        self.ema = ema;
        self.steps = uint("steps")?;
        if let Masks::Seeded(rng) = &mut self.masks {
            *rng = Rng::from_state([uint("rng/0")?, uint("rng/1")?, uint("rng/2")?, uint("rng/3")?]);
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
            for (what, t) in [
                ("momentum", &state.momentum),
                ("exp_avg", &state.exp_avg),
                ("exp_avg_sq", &state.exp_avg_sq),
            ] {
                if let Some(t) = t {
                    check(what, path, t)?;
                }
            }
        }
        for (path, t) in &self.ema {
            check("F-SAM's EMA", path, t)?;
        }
        Ok(())
    }
}
