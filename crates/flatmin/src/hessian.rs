//! The top eigenvalue of the loss Hessian by power iteration (PyHessian's loop, crates/flatmin/ALGORITHMS.md §10),
//! with Hessian-vector products by central finite differences of gradients — Burn has no
//! second-order autodiff:
//!
//! `Hv ≈ (g(w + r·v) − g(w − r·v)) / (2r)`, `‖v‖ = 1`, exact for quadratics up to rounding,
//! `O(r²)` otherwise. The step `r` is relative to the weights' size and depends on the float
//! type: `r = 1e-3·max(1, ‖w‖)` for float32, `1e-6·max(1, ‖w‖)` for float64.
//!
//! In float32 the rounding of the two gradients leaves the estimate a scatter that grows as `1/r`
//! — on a trained CNN about 0.4 % from one iteration to the next at `r = 1e-3`, above PyHessian's
//! 1e-3 tolerance — while a larger step trades it for truncation bias (−11 % at `1e-2` there). So
//! the step stays small and, besides PyHessian's rule, the loop stops when the estimate has
//! reached a plateau within its scatter, and reports the plateau's mean (crates/flatmin/ALGORITHMS.md §10.3).

use burn::config::Config;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};

use crate::bridge::{self, Layout};
use crate::error::{ConfigError, check_positive, check_range};
use crate::rng::Rng;
use crate::vector::{ParamVector, read};

/// Settings of the power iteration.
#[derive(Config, Debug, PartialEq)]
pub struct PowerIterationConfig {
    /// Most iterations.
    #[config(default = 100)]
    pub max_iterations: usize,
    /// Stop when `|λ_k − λ_{k−1}| / (|λ_{k−1}| + 1e-6) < tolerance` (PyHessian's rule), or when
    /// the mean of the last five estimates differs from the mean of the five before by less than
    /// `tolerance` (relative) or than its standard error (a plateau within the scatter).
    #[config(default = 1e-3)]
    pub tolerance: f64,
    /// Seed of the random start vector.
    #[config(default = 0)]
    pub seed: u64,
    /// The finite-difference step relative to `max(1, ‖w‖)`; by default 1e-3 in float32 and
    /// 1e-6 in float64.
    #[config(default = "None")]
    pub relative_step: Option<f64>,
}

/// What the power iteration found.
#[derive(Debug, Clone, PartialEq)]
pub struct EigenEstimate {
    /// The estimate of λ_max.
    pub eigenvalue: f64,
    /// Iterations run (each costs two gradient evaluations).
    pub iterations: usize,
    /// Whether the stopping rule was met before `max_iterations`.
    pub converged: bool,
    /// The Rayleigh quotient at every iteration.
    pub history: Vec<f64>,
    /// Whether the estimate is the mean over a plateau of the last ten iterations (the
    /// estimates scattered more than the tolerance) rather than the last iteration's value.
    pub plateau: bool,
    /// The standard deviation of the last ten estimates (of those there are): the scatter the
    /// finite differences leave in the estimate.
    pub spread: f64,
    /// Whether the first run converged to a negative eigenvalue of larger magnitude, so that the
    /// estimate comes from a second run on `H + c·I` (power iteration finds the eigenvalue of
    /// largest magnitude).
    pub shifted: bool,
    /// The finite-difference step used.
    pub step: f64,
}

/// One iteration of the power iteration, as it happens (for progress reports).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterationProgress {
    /// Whether this iteration belongs to the rerun on `H + c·I` (see [`EigenEstimate::shifted`]).
    pub shifted: bool,
    /// The iteration's number within its run, from 1.
    pub iteration: usize,
    /// The most iterations of a run.
    pub max_iterations: usize,
    /// This iteration's estimate of the eigenvalue of `H` (the shift removed).
    pub eigenvalue: f64,
    /// `|λ_k − λ_{k−1}| / (|λ_{k−1}| + 1e-6)`, the quantity the stopping rule compares with the
    /// tolerance; `None` at the first iteration.
    pub relative_change: Option<f64>,
}

/// Why the eigenvalue could not be estimated.
#[derive(Debug, Clone, PartialEq)]
pub enum HessianError {
    /// A setting out of range.
    Config(ConfigError),
    /// A gradient was not finite.
    NonFinite,
    /// The model has no parameter with a gradient.
    NoGradients,
}

impl std::fmt::Display for HessianError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HessianError::Config(e) => write!(f, "{e}"),
            HessianError::NonFinite => write!(f, "a gradient was not finite during the power iteration"),
            HessianError::NoGradients => write!(f, "no parameter of the model has a gradient"),
        }
    }
}

impl std::error::Error for HessianError {}

/// The largest eigenvalue of the Hessian of the loss whose gradient `gradient(model)` returns,
/// at `model`'s weights.
///
/// `gradient` must be deterministic (same data every call; BatchNorm in inference mode, see
/// [`inference_mode_tracked`](crate::inference_mode_tracked)).
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::optim::GradientsParams;
/// use burn::tensor::{DType, Device, Tensor, TensorData};
/// use flatmin::hessian::{PowerIterationConfig, top_hessian_eigenvalue};
///
/// #[derive(Module, Debug)]
/// struct Quad { w: Param<Tensor<1>> }
/// let device = Device::flex().autodiff();
/// let w = Tensor::from_data(TensorData::new(vec![0.3, -1.0, 2.0], [3]), (&device, DType::F64));
/// let model = Quad { w: Param::from_tensor(w) };
/// // L = ½ wᵀ diag(3, 1, 0.5) w: λ_max = 3.
/// let h = Tensor::from_data(TensorData::new(vec![3.0, 1.0, 0.5], [3]), (&device, DType::F64));
/// let grad = |m: &Quad| {
///     let loss = (m.w.val() * m.w.val() * h.clone()).sum().mul_scalar(0.5);
///     GradientsParams::from_grads(loss.backward(), m)
/// };
/// let est = top_hessian_eigenvalue(&model, grad, &PowerIterationConfig::new()).unwrap();
/// assert!((est.eigenvalue - 3.0).abs() < 1e-2);
/// ```
pub fn top_hessian_eigenvalue<M: Module>(
    model: &M,
    gradient: impl FnMut(&M) -> GradientsParams,
    config: &PowerIterationConfig,
) -> Result<EigenEstimate, HessianError> {
    top_hessian_eigenvalue_with_progress(model, gradient, config, |_| {})
}

/// [`top_hessian_eigenvalue`], calling `progress` after every iteration (each costs two
/// gradient evaluations, so a large model's estimate takes a while to settle).
pub fn top_hessian_eigenvalue_with_progress<M: Module>(
    model: &M,
    mut gradient: impl FnMut(&M) -> GradientsParams,
    config: &PowerIterationConfig,
    mut progress: impl FnMut(&IterationProgress),
) -> Result<EigenEstimate, HessianError> {
    check_range(
        "max_iterations",
        config.max_iterations as f64,
        1.0,
        true,
        f64::INFINITY,
        false,
        "at least 1",
    )
    .map_err(HessianError::Config)?;
    check_positive("tolerance", config.tolerance).map_err(HessianError::Config)?;
    if let Some(s) = config.relative_step {
        check_range("relative_step", s, 0.0, false, 1.0, true, "a number in (0, 1]").map_err(HessianError::Config)?;
    }
    let layout = Layout::of(model);
    let w = bridge::values(model, &layout);
    // Only the parameters that get a gradient take part.
    let g0 = bridge::gradients(model, &layout, &gradient(model));
    if g0.is_vacant() {
        return Err(HessianError::NoGradients);
    }
    let w = ParamVector::new(
        w.slots()
            .iter()
            .enumerate()
            .map(|(i, t)| if g0.has(i) { t.clone() } else { None })
            .collect(),
    );
    let is_f64 = w.slots().iter().flatten().any(|t| t.dtype() == DType::F64);
    let relative = config.relative_step.unwrap_or(if is_f64 { 1e-6 } else { 1e-3 });
    let step = relative * w.norm().max(1.0);

    let mut hvp = |v: &ParamVector| -> Result<ParamVector, HessianError> {
        let plus = bridge::perturbed(model, &layout, &v.scaled(step));
        let minus = bridge::perturbed(model, &layout, &v.scaled(-step));
        let gp = bridge::gradients(&plus, &layout, &gradient(&plus));
        let gm = bridge::gradients(&minus, &layout, &gradient(&minus));
        let hv = gp.zip_map(&gm, |a, b| {
            (a.clone() - b.expect("same parameters").clone()).div_scalar(2.0 * step)
        });
        Ok(hv)
    };

    let first = iterate(&w, &mut hvp, config, 0.0, &mut progress)?;
    if first.eigenvalue >= 0.0 {
        return Ok(EigenEstimate { step, ..first });
    }
    // A negative eigenvalue dominated: shift by its magnitude so the top of the spectrum does.
    let shift = -first.eigenvalue;
    let second = iterate(&w, &mut hvp, config, shift, &mut progress)?;
    Ok(EigenEstimate {
        eigenvalue: second.eigenvalue - shift,
        shifted: true,
        step,
        ..second
    })
}

fn iterate(
    like: &ParamVector,
    hvp: &mut impl FnMut(&ParamVector) -> Result<ParamVector, HessianError>,
    config: &PowerIterationConfig,
    shift: f64,
    progress: &mut impl FnMut(&IterationProgress),
) -> Result<EigenEstimate, HessianError> {
    let mut rng = Rng::seeded(config.seed);
    let mut v = like.map(|_, t| {
        let n = t.shape().num_elements();
        let values: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        Tensor::from_data(TensorData::new(values, [n]), (&t.device(), t.dtype()))
    });
    v = v.scaled(1.0 / (v.norm() + 1e-6));
    let (mut previous, mut history, mut converged) = (None::<f64>, Vec::new(), false);
    let (mut raw, mut plateaued) = (Vec::new(), false);
    let mut eigenvalue = 0.0;
    for _ in 0..config.max_iterations {
        let mut hv = hvp(&v)?;
        if shift != 0.0 {
            hv = hv.zip_map(&v, |h, v| h.clone() + v.expect("same").clone().mul_scalar(shift));
        }
        let sums = read(vec![hv.dot_lazy(&v), hv.squared_norm_lazy()]);
        let (lambda, norm) = (sums[0], sums[1].sqrt());
        if !lambda.is_finite() || !norm.is_finite() {
            return Err(HessianError::NonFinite);
        }
        history.push(lambda - shift);
        raw.push(lambda);
        eigenvalue = lambda;
        let relative_change = previous.map(|p| (p - lambda).abs() / (p.abs() + 1e-6));
        progress(&IterationProgress {
            shifted: shift != 0.0,
            iteration: history.len(),
            max_iterations: config.max_iterations,
            eigenvalue: lambda - shift,
            relative_change,
        });
        if relative_change.is_some_and(|c| c < config.tolerance) {
            converged = true;
            break;
        }
        if let Some(mean) = plateau(&raw, config.tolerance) {
            eigenvalue = mean;
            plateaued = true;
            converged = true;
            break;
        }
        previous = Some(lambda);
        if norm == 0.0 {
            break;
        }
        v = hv.scaled(1.0 / (norm + 1e-6));
    }
    let spread = std_dev(&raw[raw.len().saturating_sub(2 * PLATEAU_WINDOW)..]);
    Ok(EigenEstimate {
        eigenvalue,
        iterations: history.len(),
        converged,
        history,
        plateau: plateaued,
        spread,
        shifted: false,
        step: 0.0,
    })
}

/// Iterations per window of the plateau test.
const PLATEAU_WINDOW: usize = 5;

/// The mean of the last two windows of estimates when they no longer rise or fall: the means of
/// the last window and the one before differ by less than `tolerance` (relative) or than the
/// standard error of that difference. A trend larger than the scatter keeps the loop going.
fn plateau(estimates: &[f64], tolerance: f64) -> Option<f64> {
    let n = estimates.len();
    if n < 2 * PLATEAU_WINDOW {
        return None;
    }
    let (before, last) = estimates[n - 2 * PLATEAU_WINDOW..].split_at(PLATEAU_WINDOW);
    let (mean_before, mean_last) = (mean(before), mean(last));
    let w = PLATEAU_WINDOW as f64;
    let standard_error = ((std_dev(before).powi(2) + std_dev(last).powi(2)) / w).sqrt();
    let difference = (mean_last - mean_before).abs();
    (difference < tolerance * (mean_last.abs() + 1e-6) || difference < standard_error)
        .then(|| (mean_before + mean_last) / 2.0)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The sample standard deviation (0 for fewer than two values).
fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.uniform().max(f64::MIN_POSITIVE);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
