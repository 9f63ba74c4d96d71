//! What a model provides to be trained with SAM inside Burn's `Learner`.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;
use burn::train::ItemLazy;
use flatmin::Batch;

/// A forward pass for SAM: the per-sample losses of the requested samples, and the output the
/// Learner's metrics read.
pub struct SamOutput<O> {
    /// The losses of the requested samples, one per sample (shape `[n]`), or their mean (shape
    /// `[1]`) when the configured selection does not need per-sample losses (everything but
    /// ESAM's sample selection).
    pub losses: Tensor<1>,
    /// What the Learner's metrics read (e.g. a `ClassificationOutput`). Only the first pass's
    /// output reaches them: it is taken at `w`, as SAM logs its training loss.
    pub output: O,
}

/// A model that [`SamLearner`](crate::SamLearner) trains: the one method that replaces
/// `TrainStep::step`.
///
/// SAM runs the forward pass up to three times a step — at `w` (first pass), at `w + e` without
/// gradients (ESAM's selection) and at `w + e` (second pass, possibly on a subset of the batch)
/// — so instead of one `step` that returns gradients, the model says how to run one forward pass
/// on the samples `batch` asks for:
///
/// ```ignore
/// impl SamStep for Mlp {
///     type Input = MnistBatch;
///     type Output = ClassificationOutput;
///
///     fn sam_forward(&self, item: &MnistBatch, batch: Batch<'_>) -> SamOutput<ClassificationOutput> {
///         let images = batch.rows(item.images.clone());
///         let targets = batch.rows_int(item.targets.clone());
///         let logits = self.forward(images);
///         let losses = flatmin::per_sample_cross_entropy(logits.clone(), targets.clone());
///         let output = ClassificationOutput::new(losses.clone().mean(), logits, targets);
///         SamOutput { losses, output }
///     }
/// }
/// ```
pub trait SamStep: Module + ModuleDisplay {
    /// The training batch (the Learner's `TrainStep::Input`).
    type Input: Send + 'static;
    /// What the training metrics read (the Learner's `TrainStep::Output`).
    type Output: ItemLazy + 'static;

    /// One forward pass of `self` on the samples of `item` that `batch` selects
    /// ([`Batch::rows`] and [`Batch::rows_int`] pick them from a tensor whose first dimension
    /// is the batch).
    fn sam_forward(&self, item: &Self::Input, batch: Batch<'_>) -> SamOutput<Self::Output>;
}
