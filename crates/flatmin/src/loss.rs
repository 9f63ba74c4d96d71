//! The per-sample loss the one-call API needs for ESAM's selection.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Softmax cross-entropy of each sample: `logsumexp(logits_i) − logits_i[y_i]`, shape `[n]`.
/// Its mean is PyTorch's `cross_entropy(reduction="mean")`.
pub fn per_sample_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let log_probs = log_softmax(logits, 1);
    let picked = log_probs.gather(1, targets.reshape([n, 1]));
    picked.reshape([n]).neg()
}
