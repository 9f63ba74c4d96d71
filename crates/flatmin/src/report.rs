//! What one step measured, for logs, progress bars and sharpness plots.

/// The numbers of one SAM step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    /// `L(w)`: the batch loss of the first pass (when the pass was handed in as its losses).
    pub loss: Option<f64>,
    /// `L(w + e)`: the loss of the second pass, on the samples it used (when handed in as its losses).
    pub loss_perturbed: Option<f64>,
    /// `‖g‖`: global norm of the first-pass gradient (over the tensors that took part).
    pub grad_norm: f64,
    /// `‖g_p‖`: global norm of the second-pass gradient.
    pub grad_perturbed_norm: f64,
    /// `‖e‖`: global norm of the perturbation.
    pub perturbation_norm: f64,
    /// cos(g, g_p) (0 when either gradient is zero), measured only when the configuration asks
    /// ([`SamConfig::measure`](crate::SamConfig::measure)): it costs up to three operations per
    /// parameter tensor.
    pub cosine: Option<f64>,
    /// ρ used at this step.
    pub rho: f64,
    /// ESAM: which parameter tensors took part in the first pass and the perturbation.
    pub tensor_mask: Option<Vec<bool>>,
    /// ESAM: the per-sample loss increase `ℓ_i(w+e) − ℓ_i(w)`.
    pub sample_sharpness: Option<Vec<f64>>,
    /// ESAM: the batch positions the second pass used.
    pub selected: Option<Vec<usize>>,
    /// Whether the step ran the second pass (false for a base step of a schedule).
    pub second_pass: bool,
}

impl StepReport {
    /// `L(w + e) − L(w)`, SAM's sharpness estimate, when both losses are known and were taken on
    /// the same samples (no selection).
    pub fn sharpness(&self) -> Option<f64> {
        match (self.loss, self.loss_perturbed, &self.selected) {
            (Some(l), Some(lp), None) => Some(lp - l),
            _ => None,
        }
    }
}

/// Where the wall time of a one-call step went: the passes (Burn's forward and backward work)
/// and the rest, the optimizer's own work (masks, norms, perturbation, selection, combination,
/// update).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimings {
    /// The whole step, in seconds.
    pub total: f64,
    /// The loss closure's calls (forward passes) and the backward passes, in seconds: the sum
    /// of the three below.
    pub passes: f64,
    /// The first pass (forward and backward at `w`), in seconds; the whole step's passes when
    /// the step stopped before its end.
    pub first_pass: f64,
    /// ESAM's selection forward at `w + e` (no autodiff), in seconds; 0 without a loss-based
    /// selection.
    pub selection: f64,
    /// The second pass (forward and backward at `w + e`, on the selected samples), in seconds;
    /// 0 for the base optimizer.
    pub second_pass: f64,
}

impl StepTimings {
    /// The optimizer's own work: the step minus its passes, in seconds.
    pub fn optimizer(&self) -> f64 {
        (self.total - self.passes).max(0.0)
    }
}
