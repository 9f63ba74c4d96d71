//! Small models and data shared by the library's tests, in float64.
#![allow(dead_code)]

use burn::module::{Module, Param};
use burn::tensor::activation::tanh;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use flatmin::{Batch, Member, Next, Rng, Sam, SamConfig, StepError, StepReport};

mod shared;
pub use shared::*;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// This test process's wgpu device: CubeCL's launch observer sees every kernel the process
/// launches, so the launch count (`launches.rs`) takes the device alone and every other test
/// that runs kernels on wgpu shares it; they run side by side, never beside the count.
static WGPU_DEVICE: RwLock<()> = RwLock::new(());

/// A share of the wgpu device, held for a test's run.
pub fn wgpu_shared() -> RwLockReadGuard<'static, ()> {
    WGPU_DEVICE.read().unwrap_or_else(PoisonError::into_inner)
}

/// The wgpu device alone, for the launch count.
pub fn wgpu_alone() -> RwLockWriteGuard<'static, ()> {
    WGPU_DEVICE.write().unwrap_or_else(PoisonError::into_inner)
}

pub fn device() -> Device {
    Device::flex().autodiff()
}

pub fn vec1(values: &[f64], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), (device, DType::F64))
}

pub fn mat(values: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), (device, DType::F64))
}

pub fn read(t: Tensor<1>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// `L(w) = ½ Σ a_i w_i²` over one parameter vector (crates/flatmin/ALGORITHMS.md §12.1).
#[derive(Module, Debug)]
pub struct Quadratic {
    pub w: Param<Tensor<1>>,
}

impl Quadratic {
    pub fn new(w: &[f64], device: &Device) -> Self {
        Self {
            w: Param::from_tensor(vec1(w, device)),
        }
    }

    pub fn loss(&self, a: &[f64]) -> Tensor<1> {
        let a = vec1(a, &self.w.val().device());
        (self.w.val() * self.w.val() * a).sum().mul_scalar(0.5)
    }

    pub fn values(&self) -> Vec<f64> {
        read(self.w.val())
    }
}

/// Two separate parameter tensors, for global-vs-per-tensor norm checks: `L = 3·u + 4·v`.
#[derive(Module, Debug)]
pub struct TwoTensors {
    pub u: Param<Tensor<1>>,
    pub v: Param<Tensor<1>>,
}

/// A tanh MLP with PyTorch-layout weights, float64.
#[derive(Module, Debug)]
pub struct Mlp {
    pub w1: Param<Tensor<2>>,
    pub b1: Param<Tensor<1>>,
    pub w2: Param<Tensor<2>>,
    pub b2: Param<Tensor<1>>,
}

impl Mlp {
    pub fn new(seed: u64, device: &Device) -> Self {
        let mut rng = Rng::seeded(seed);
        let mut draw =
            |n: usize, scale: f64| -> Vec<f64> { (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) * scale).collect() };
        Self {
            w1: Param::from_tensor(mat(&draw(16 * 6, 0.4), [16, 6], device)),
            b1: Param::from_tensor(vec1(&draw(16, 0.1), device)),
            w2: Param::from_tensor(mat(&draw(3 * 16, 0.4), [3, 16], device)),
            b2: Param::from_tensor(vec1(&draw(3, 0.1), device)),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = tanh(x.matmul(self.w1.val().transpose()) + self.b1.val().reshape([1, 16]));
        h.matmul(self.w2.val().transpose()) + self.b2.val().reshape([1, 3])
    }

    pub fn flat(&self) -> Vec<f64> {
        [
            self.w1.val().into_data(),
            self.b1.val().into_data(),
            self.w2.val().into_data(),
            self.b2.val().into_data(),
        ]
        .iter()
        .flat_map(|d| d.iter::<f64>().collect::<Vec<_>>())
        .collect()
    }
}

/// A seeded classification batch: 24 rows of 6 features, 3 classes.
pub struct Data {
    pub x: Tensor<2>,
    pub y: Tensor<1, Int>,
}

impl Data {
    pub fn new(seed: u64, device: &Device) -> Self {
        let mut rng = Rng::seeded(seed);
        let x: Vec<f64> = (0..24 * 6).map(|_| rng.uniform() * 2.0 - 1.0).collect();
        let y: Vec<i64> = (0..24).map(|_| (rng.next_u64() % 3) as i64).collect();
        Self {
            x: mat(&x, [24, 6], device),
            y: Tensor::from_data(TensorData::new(y, [24]), device),
        }
    }

    pub fn losses(&self, m: &Mlp, batch: Batch) -> Tensor<1> {
        flatmin::per_sample_cross_entropy(m.forward(batch.rows(self.x.clone())), batch.rows_int(self.y.clone()))
    }
}

/// Runs `steps` one-call steps on the MLP; returns the flat parameters after each step and the
/// reports.
pub fn train(
    optim: &mut Sam,
    mut model: Mlp,
    data: &Data,
    steps: usize,
    lr: f64,
) -> (Mlp, Vec<Vec<f64>>, Vec<StepReport>) {
    let mut params = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..steps {
        let (next, report) = optim.step(lr, model, |m: &Mlp, b: Batch| data.losses(m, b));
        model = next;
        reports.push(report.expect("finite step"));
        params.push(model.flat());
    }
    (model, params, reports)
}

/// One step through the generic two-step loop of the crate docs, for any preset: begin → the
/// first pass (per-sample losses, on [`flatmin::FirstPass::model`]) → ascend → on an ascent, the
/// selection where it is needed (losses at `w + e` on [`flatmin::Ascent::probe`]) and the second
/// pass on [`flatmin::Ascent::request`] → finish. A step without a second pass (a schedule's
/// base step, MSAM) goes from ascend to finish.
pub fn two_step<M: Module>(
    optim: &mut Sam,
    model: M,
    lr: f64,
    mut losses: impl FnMut(&M, Batch) -> Tensor<1>,
) -> (M, Result<StepReport, StepError>) {
    let first = optim.begin(lr, &model);
    let at_w = losses(first.model(), Batch::All);
    let update = match optim.ascend(&model, first, at_w) {
        Err(e) => return (model, Err(e)),
        Ok(Next::Update(update)) => update,
        Ok(Next::Ascent(ascent)) => {
            let ascent = if ascent.needs_selection() {
                let probe = ascent.probe();
                let after = losses(&probe, Batch::All);
                drop(probe);
                match ascent.select(after) {
                    Ok(a) => a,
                    Err(e) => return (model, Err(e)),
                }
            } else {
                ascent
            };
            let at_w_plus_e = losses(ascent.model(), ascent.request());
            match ascent.second_pass(at_w_plus_e) {
                Ok(update) => update,
                Err(e) => return (model, Err(e)),
            }
        }
    };
    optim.finish(model, update)
}

/// `config` without ESAM's selection (for losses that are not per sample).
pub fn without_selection(mut config: SamConfig) -> SamConfig {
    config.members.retain(|m| !matches!(m, Member::Selection(_)));
    config
}

/// The bit patterns of a trajectory, for bit-for-bit comparisons (`==` on floats would take
/// `-0.0` for `0.0`).
pub fn bits(trajectory: &[Vec<f64>]) -> Vec<Vec<u64>> {
    trajectory
        .iter()
        .map(|w| w.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// A fixed sequence of batches: step `k` trains on `batches[k % len]`.
pub struct Batches(pub Vec<Data>);

impl Batches {
    pub fn new(seed: u64, count: u64, device: &Device) -> Self {
        Self((0..count).map(|i| Data::new(seed * 100 + i, device)).collect())
    }

    pub fn at(&self, step: usize) -> &Data {
        &self.0[step % self.0.len()]
    }
}

/// `steps` one-call steps on the batch sequence, from step `from` of it; the flat parameters
/// after each step and the reports.
pub fn train_on(
    optim: &mut Sam,
    mut model: Mlp,
    batches: &Batches,
    from: usize,
    steps: usize,
    lr: f64,
) -> (Mlp, Vec<Vec<f64>>, Vec<StepReport>) {
    let (mut params, mut reports) = (Vec::new(), Vec::new());
    for k in from..from + steps {
        let data = batches.at(k);
        let (next, report) = optim.step(lr, model, |m: &Mlp, b: Batch| data.losses(m, b));
        model = next;
        reports.push(report.unwrap_or_else(|e| panic!("step {k}: {e}")));
        params.push(model.flat());
    }
    (model, params, reports)
}

/// [`train_on`] through the two-step API ([`two_step`]).
pub fn train_two_step(
    optim: &mut Sam,
    mut model: Mlp,
    batches: &Batches,
    steps: usize,
    lr: f64,
) -> (Mlp, Vec<Vec<f64>>, Vec<StepReport>) {
    let (mut params, mut reports) = (Vec::new(), Vec::new());
    for k in 0..steps {
        let data = batches.at(k);
        let (next, report) = two_step(optim, model, lr, |m: &Mlp, b: Batch| data.losses(m, b));
        model = next;
        reports.push(report.unwrap_or_else(|e| panic!("two-step step {k}: {e}")));
        params.push(model.flat());
    }
    (model, params, reports)
}

pub fn max_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
