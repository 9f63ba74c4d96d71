//! Comparing a replay with the recording: the largest absolute and relative parameter
//! differences, the bar each float type is held to (the fixtures' FORMAT.md), and the result
//! file.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::DType;
use serde_json::{Value, json};

use super::CaseError;
use super::case::Case;
use super::run::Replay;

/// The largest absolute difference between the replayed and the recorded parameters over all
/// steps (`None` when the case recorded no parameters).
pub fn max_abs_diff(case: &Case, replay: &Replay) -> Option<f64> {
    let mut worst: Option<f64> = None;
    for (rec, rep) in case.steps.iter().zip(&replay.steps) {
        let Some(params) = &rec.params else { continue };
        for (a, b) in params.iter().flatten().zip(rep.params.iter().flatten()) {
            let d = (a - b).abs();
            worst = Some(match worst {
                Some(w) if w >= d || d.is_nan() && w.is_nan() => w,
                _ if d.is_nan() => f64::NAN,
                Some(w) => w.max(d),
                None => d,
            });
        }
    }
    worst
}

/// The largest relative difference between the replayed and the recorded parameters over all
/// steps: per step and tensor, the largest absolute difference over the largest recorded
/// magnitude of that tensor (the float32 bar of the fixtures' FORMAT.md is 1e-5 of it). `None`
/// when the case recorded no parameters.
pub fn max_rel_diff(case: &Case, replay: &Replay) -> Option<f64> {
    let mut worst: Option<f64> = None;
    for (rec, rep) in case.steps.iter().zip(&replay.steps) {
        let Some(params) = &rec.params else { continue };
        for (reference, ours) in params.iter().zip(&rep.params) {
            let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let diff = reference
                .iter()
                .zip(ours)
                .map(|(a, b)| (a - b).abs())
                .fold(
                    0.0f64,
                    |m, d| if d.is_nan() || m.is_nan() { f64::NAN } else { m.max(d) },
                );
            let rel = if scale > 0.0 { diff / scale } else { diff };
            worst = Some(match worst {
                Some(w) if w.is_nan() || rel.is_nan() => f64::NAN,
                Some(w) => w.max(rel),
                None => rel,
            });
        }
    }
    worst
}

/// The bar a replay in `dtype` is held to, from the fixtures' FORMAT.md: float64, max absolute
/// difference <= 1e-9; float32, max relative difference ([`max_rel_diff`]) <= 1e-5. Returns the
/// measured difference, the bar and its wording.
pub fn bar_for(case: &Case, replay: &Replay) -> Option<(f64, f64, &'static str)> {
    if replay.dtype == DType::F64 {
        max_abs_diff(case, replay).map(|d| (d, 1e-9, "max |param - reference|"))
    } else {
        max_rel_diff(case, replay).map(|d| (d, 1e-5, "max |param - reference| / max |reference| per tensor"))
    }
}

/// The result file: `{"steps": [{"step", "loss", "params": {name: nested arrays}}, …]}` plus
/// diagnostics (`full_loss_after`, `rho`, ESAM's `sample_sharpness` and `selected`,
/// `max_abs_diff` and `max_rel_diff` against the case's recorded parameters, and the `device`
/// and `dtype` of the replay).
pub fn result_json(case: &Case, replay: &Replay) -> Value {
    let steps: Vec<Value> = replay
        .steps
        .iter()
        .map(|s| {
            let params: BTreeMap<&str, Value> = case
                .names
                .iter()
                .zip(&case.shapes)
                .zip(&s.params)
                .map(|((n, shape), v)| (n.as_str(), nested(v, shape)))
                .collect();
            let mut step = json!({
                "step": s.step,
                "loss": s.loss,
                "full_loss_after": s.full_loss_after,
                "rho": s.rho,
                "second_pass": s.second_pass,
                "params": params,
            });
            if let Some(sharp) = &s.sample_sharpness {
                step["sample_sharpness"] = json!(sharp);
            }
            if let Some(sel) = &s.selected {
                step["selected"] = json!(sel);
            }
            step
        })
        .collect();
    let dtype = if replay.dtype == DType::F64 {
        "float64"
    } else {
        "float32"
    };
    let mut out = json!({
        "optimizer": replay.optimizer,
        "device": replay.device.name(),
        "dtype": dtype,
        "steps": steps,
    });
    if let Some(d) = max_abs_diff(case, replay) {
        out["max_abs_diff"] = json!(d);
    }
    if let Some(d) = max_rel_diff(case, replay) {
        out["max_rel_diff"] = json!(d);
    }
    out
}

/// Writes `value` to `path` atomically (a temporary file in the same folder, then a rename).
pub fn write_json_atomic(path: &Path, value: &Value) -> Result<(), CaseError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CaseError(e.to_string()))?;
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| CaseError(format!("{}: {e}", path.display())))
}

/// `values` (flat, row-major) as nested JSON lists of `shape`.
fn nested(values: &[f64], shape: &[usize]) -> Value {
    match shape {
        [] => json!(values[0]),
        [n] => json!(values[..*n]),
        [n, rest @ ..] => {
            let stride: usize = rest.iter().product();
            Value::Array(
                (0..*n)
                    .map(|i| nested(&values[i * stride..(i + 1) * stride], rest))
                    .collect(),
            )
        }
    }
}
