//! What a loss closure is asked for, and the contract its answer must keep: one loss per
//! requested sample, or their mean where nothing needs per-sample losses.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Pass, StepError};

/// The samples a loss closure is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    /// The whole batch.
    All,
    /// These positions of the batch (sorted), for ESAM's second pass.
    Subset(&'a [usize]),
}

impl<'a> Batch<'a> {
    /// The request for `rows` of the batch (`None`: all of it).
    pub fn of(rows: Option<&'a [usize]>) -> Self {
        match rows {
            Some(r) => Batch::Subset(r),
            None => Batch::All,
        }
    }

    /// How many samples are asked for, when known (a subset; the whole batch's size is the
    /// caller's).
    pub fn requested(&self) -> Option<usize> {
        match self {
            Batch::All => None,
            Batch::Subset(idx) => Some(idx.len()),
        }
    }

    /// The rows of a float tensor (batch on dimension 0) this request covers.
    pub fn rows<const D: usize>(&self, tensor: Tensor<D>) -> Tensor<D> {
        match self {
            Batch::All => tensor,
            Batch::Subset(idx) => {
                let indices = index_tensor(idx, &tensor.device());
                tensor.select(0, indices)
            }
        }
    }

    /// The rows of an integer tensor (e.g. labels) this request covers.
    pub fn rows_int<const D: usize>(&self, tensor: Tensor<D, Int>) -> Tensor<D, Int> {
        match self {
            Batch::All => tensor,
            Batch::Subset(idx) => {
                let indices = index_tensor(idx, &tensor.device());
                tensor.select(0, indices)
            }
        }
    }
}

fn index_tensor(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [idx.len()]), device)
}

/// What a pass may receive from the loss closure.
pub(crate) struct Expect {
    pub pass: Pass,
    /// The number of losses asked for, when known.
    pub count: Option<usize>,
    /// Per-sample losses are needed: at least two (the whole batch of unknown size) or exactly
    /// `count`; a mean will not do.
    pub per_sample: bool,
}

impl Expect {
    /// Checks the number of losses the closure returned.
    pub(crate) fn check(&self, got: usize) -> Result<(), StepError> {
        let ok = match (self.count, self.per_sample) {
            (Some(n), true) => got == n,
            (Some(n), false) => got == n || got == 1,
            (None, true) => got >= 2,
            (None, false) => got >= 1,
        };
        if ok {
            return Ok(());
        }
        Err(StepError::LossCount {
            pass: self.pass,
            expected: self.count.unwrap_or(if self.per_sample { 2 } else { 1 }),
            at_least: self.count.is_none(),
            mean_allowed: !self.per_sample,
            got,
        })
    }
}
