//! Running a case: the model from the case's weights, the library's optimizer from its
//! configuration, ESAM's masks and selections and bSAM's noise taken from the recording, and
//! every step kept ([`Replay`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::device::DeviceChoice;
use burn::tensor::{DType, Int, Tensor, TensorData};
use flatmin::{Batch, Injection, MaskSource, NoiseSource, SampleSelector, SelectionRule};

use super::CaseError;
use super::case::Case;
use super::model::{Mlp, model_from, tensor2};

/// The position of the step being replayed, shared with the recorded sources below: a step
/// without a second pass draws no mask, selection or noise, so counting calls would misalign
/// them on a schedule.
type Cursor = Arc<AtomicUsize>;

/// ESAM masks replayed from the case, step by step.
struct RecordedMasks {
    masks: Vec<Option<Vec<bool>>>,
    cursor: Cursor,
}

impl MaskSource for RecordedMasks {
    fn tensor_mask(&mut self, count: usize, _beta: f64) -> Vec<bool> {
        self.masks
            .get(self.cursor.load(Ordering::Relaxed))
            .cloned()
            .flatten()
            .unwrap_or_else(|| vec![true; count])
    }

    fn element_mask(&mut self, numel: usize, _beta: f64) -> Vec<bool> {
        vec![true; numel]
    }
}

/// ESAM selections replayed from the case, step by step; where a step recorded none, the
/// official rule decides.
struct RecordedSelections {
    selected: Vec<Option<Vec<usize>>>,
    cursor: Cursor,
    gamma: f64,
}

impl SampleSelector for RecordedSelections {
    fn select(&mut self, sharpness: &[f64]) -> Vec<usize> {
        self.selected
            .get(self.cursor.load(Ordering::Relaxed))
            .cloned()
            .flatten()
            .unwrap_or_else(|| flatmin::select_sharpest(sharpness, self.gamma, SelectionRule::OfficialStrict))
    }
}

/// bSAM's noise replayed from the case: the draws of the current step, tensor by tensor in
/// parameter order.
struct RecordedNoise {
    noise: Vec<Vec<Vec<f64>>>,
    cursor: Cursor,
    /// The step of the last draw and how many tensors it has drawn.
    drawn: Option<(usize, usize)>,
}

impl NoiseSource for RecordedNoise {
    fn normals(&mut self, numel: usize) -> Vec<f64> {
        let step = self.cursor.load(Ordering::Relaxed);
        let tensor = match self.drawn {
            Some((s, t)) if s == step => t,
            _ => 0,
        };
        self.drawn = Some((step, tensor + 1));
        match self.noise.get(step).and_then(|n| n.get(tensor)) {
            Some(values) if values.len() == numel => values.clone(),
            // Cannot happen for a parsed case (shapes are checked); a NaN makes the step fail
            // with a named non-finite error rather than run on made-up noise.
            _ => vec![f64::NAN; numel],
        }
    }
}

/// One replayed step.
#[derive(Debug, Clone)]
pub struct ReplayedStep {
    /// The step number.
    pub step: usize,
    /// Batch loss before the step (first pass).
    pub loss: f64,
    /// Mean loss over all rows after the step.
    pub full_loss_after: f64,
    /// Parameters after the step (flat, case order).
    pub params: Vec<Vec<f64>>,
    /// ESAM: per-sample sharpness.
    pub sample_sharpness: Option<Vec<f64>>,
    /// ESAM: the positions used by the second pass.
    pub selected: Option<Vec<usize>>,
    /// ρ at this step.
    pub rho: f64,
    /// Whether the step ran the second pass.
    pub second_pass: bool,
}

/// The result of a replay.
pub struct Replay {
    /// The case's optimizer name.
    pub optimizer: String,
    /// The device it ran on.
    pub device: DeviceChoice,
    /// The float type it ran in.
    pub dtype: DType,
    /// Every step.
    pub steps: Vec<ReplayedStep>,
}

/// Runs the case in float64 on the flex backend.
pub fn run(case: &Case) -> Result<Replay, CaseError> {
    run_on(case, DeviceChoice::Cpu)
}

/// Runs the case on `device`, in its replay float type ([`DeviceChoice::replay_dtype`]:
/// float64 on the CPU, float32 on wgpu).
pub fn run_on(case: &Case, device: DeviceChoice) -> Result<Replay, CaseError> {
    run_in(case, device, device.replay_dtype())
}

/// Runs the case on `device` in `dtype`: the CPU in float32 tells what float32 alone costs a
/// case, apart from a GPU backend's kernels.
pub fn run_in(case: &Case, device: DeviceChoice, dtype: DType) -> Result<Replay, CaseError> {
    let choice = device;
    let device = device.autodiff().map_err(|e| CaseError(e.to_string()))?;
    let mut model = model_from(case, &device, dtype);
    let mut optim = case.config.init().map_err(|e| CaseError(format!("hyperparams: {e}")))?;
    let cursor = Cursor::default();
    let recorded_masks = case.steps.iter().map(|s| s.tensor_mask.clone()).collect();
    let inject = |optim: flatmin::Sam, source: Injection| optim.inject(source).map_err(|e| CaseError(e.to_string()));
    if case.config.member::<flatmin::SwpConfig>().is_some() {
        optim = inject(
            optim,
            Injection::masks(Box::new(RecordedMasks {
                masks: recorded_masks,
                cursor: cursor.clone(),
            })),
        )?;
    }
    if let Some(selection) = case.config.member::<flatmin::SelectionConfig>() {
        optim = inject(
            optim,
            Injection::selector(Box::new(RecordedSelections {
                selected: case.steps.iter().map(|s| s.selected.clone()).collect(),
                cursor: cursor.clone(),
                gamma: selection.gamma,
            })),
        )?;
    }
    if let Some(noise) = case.steps.iter().map(|s| s.noise.clone()).collect::<Option<Vec<_>>>() {
        optim = inject(
            optim,
            Injection::noise(Box::new(RecordedNoise {
                noise,
                cursor: cursor.clone(),
                drawn: None,
            })),
        )?;
    }
    let x_all = tensor2(&case.x, case.x_shape, &device, dtype);
    let y_all = Tensor::<1, Int>::from_data(TensorData::new(case.y.clone(), [case.y.len()]), &device);
    let mut steps = Vec::with_capacity(case.steps.len());
    for (index, recorded) in case.steps.iter().enumerate() {
        cursor.store(index, Ordering::Relaxed);
        let rows: Vec<i64> = recorded.batch.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [recorded.batch.len()]), &device);
        let xb = x_all.clone().select(0, idx.clone());
        let yb = y_all.clone().select(0, idx);
        let loss_fn = |m: &Mlp, batch: Batch| {
            flatmin::per_sample_cross_entropy(m.forward(batch.rows(xb.clone())), batch.rows_int(yb.clone()))
        };
        let (next, report) = optim.step(case.lr, model, loss_fn);
        model = next;
        let report = report.map_err(|e| CaseError(format!("step {}: {e}", recorded.step)))?;
        if let Some(expected) = recorded.second_pass
            && expected != report.second_pass
        {
            return Err(CaseError(format!(
                "step {}: the case records `extra.second_pass` = {expected}, the replay {} the second pass",
                recorded.step,
                if report.second_pass { "ran" } else { "skipped" }
            )));
        }
        let full = flatmin::per_sample_cross_entropy(model.forward(x_all.clone()), y_all.clone()).mean();
        steps.push(ReplayedStep {
            step: recorded.step,
            loss: report.loss.unwrap_or(f64::NAN),
            full_loss_after: full.into_data().iter::<f64>().next().unwrap_or(f64::NAN),
            params: model.flat_params(),
            sample_sharpness: report.sample_sharpness,
            selected: report.selected,
            rho: report.rho,
            second_pass: report.second_pass,
        });
    }
    debug_assert!(case.classes > 0);
    Ok(Replay {
        optimizer: case.optimizer.clone(),
        device: choice,
        dtype,
        steps,
    })
}
