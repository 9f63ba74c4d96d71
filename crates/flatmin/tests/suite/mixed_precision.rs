//! Mixed precision with master weights (`Precision::Mixed`): a bf16 or f16 model trains with
//! f32 master weights and state, an f16 model's passes are loss-scaled with a scale that backs
//! off on overflow and grows after good steps, records carry both, and an f32 model (or the
//! default `Precision::Native`) is trained exactly as before.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{DType, Device, Tensor, TensorData};
use flatmin::bridge::{self, Layout};
use flatmin::{Precision, Sam, SamConfig, SamRecord, StepError};

use crate::common::scratch;

#[derive(Module, Debug)]
struct Net {
    a: Linear,
    b: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        // Burn's initializers draw from a global generator: the weights are set explicitly so
        // every test builds the same network.
        let mut a: Linear = LinearConfig::new(6, 16).init(device);
        let mut b: Linear = LinearConfig::new(16, 3).init(device);
        let fill =
            |n: usize, salt: f32| -> Vec<f32> { (0..n).map(|i| ((i as f32 * 0.7 + salt).sin()) * 0.4).collect() };
        a.weight = Param::from_tensor(Tensor::from_data(TensorData::new(fill(96, 0.1), [6, 16]), device));
        a.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(fill(16, 2.9), [16]),
            device,
        )));
        b.weight = Param::from_tensor(Tensor::from_data(TensorData::new(fill(48, 1.3), [16, 3]), device));
        b.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(fill(3, 0.6), [3]),
            device,
        )));
        Self { a, b }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.b.forward(relu(self.a.forward(x)))
    }
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// A fixed regression problem: 32 inputs of 6 features and 3 targets each, in f32.
fn data(device: &Device) -> (Tensor<2>, Tensor<2>) {
    let x: Vec<f32> = (0..32 * 6).map(|i| ((i as f32) * 0.37).cos()).collect();
    let y: Vec<f32> = (0..32 * 3).map(|i| ((i as f32) * 0.11).sin()).collect();
    (
        Tensor::from_data(TensorData::new(x, [32, 6]), device),
        Tensor::from_data(TensorData::new(y, [32, 3]), device),
    )
}

fn mse(net: &Net, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<1> {
    let dtype = bridge::float_dtype(net, &Layout::of(net)).unwrap();
    let out = net.forward(x.clone().cast(dtype));
    let diff = out - y.clone().cast(dtype);
    (diff.clone() * diff).mean().reshape([1])
}

fn sam(precision: Precision) -> Sam {
    SamConfig::new(SamConfig::sgd_base(0.9, 0.0))
        .with_rho(0.05)
        .with_precision(precision)
        .init()
        .unwrap()
}

fn floats(t: Tensor<1>) -> Vec<f64> {
    t.cast(DType::F64).into_data().iter::<f64>().collect()
}

/// Every parameter of `net`, flat, as f64.
fn weights(net: &Net) -> Vec<f64> {
    bridge::values(net, &Layout::of(net))
        .slots()
        .iter()
        .flatten()
        .flat_map(|t| floats(t.clone()))
        .collect()
}

fn master(sam: &Sam) -> Vec<f64> {
    sam.master_weights()
        .expect("master weights")
        .slots()
        .iter()
        .flatten()
        .flat_map(|t| floats(t.clone()))
        .collect()
}

fn train(sam: &mut Sam, mut net: Net, steps: usize, lr: f64) -> (Net, Vec<f64>) {
    let (x, y) = data(&net.a.weight.device());
    let mut losses = Vec::new();
    for _ in 0..steps {
        let (next, report) = sam.step(lr, net, |m, _| mse(m, &x, &y));
        net = next;
        losses.push(report.expect("a finite step").loss.unwrap());
    }
    (net, losses)
}

fn relative_distance(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

#[test]
fn bf16_with_master_weights_follows_the_f32_run() {
    let device = device();
    let (f32_net, f32_losses) = train(&mut sam(Precision::Native), Net::new(&device), 60, 0.05);
    let mut mixed = sam(Precision::mixed());
    let bf16 = bridge::cast_floats(Net::new(&device), DType::BF16);
    let (net, losses) = train(&mut mixed, bf16, 60, 0.05);

    assert_eq!(bridge::float_dtype(&net, &Layout::of(&net)), Some(DType::BF16));
    let held = mixed.master_weights().unwrap();
    assert!(held.slots().iter().flatten().all(|t| t.dtype() == DType::F32));
    // The model holds the master weights rounded to bf16.
    let rounded: Vec<f64> = held
        .slots()
        .iter()
        .flatten()
        .flat_map(|t| floats(t.clone().cast(DType::BF16)))
        .collect();
    assert_eq!(weights(&net), rounded);

    let distance = relative_distance(&master(&mixed), &weights(&f32_net));
    assert!(distance < 0.02, "master weights {distance:.4} away from the f32 run");
    let (last, f32_last) = (*losses.last().unwrap(), *f32_losses.last().unwrap());
    eprintln!("bf16 master weights {distance:.2e} from the f32 run (relative); loss {last} vs {f32_last}");
    assert!(
        last < losses[0] * 0.7,
        "the bf16 run did not learn: {} -> {last}",
        losses[0]
    );
    assert!(
        (last - f32_last).abs() < 0.02 * f32_last.max(0.1),
        "{last} vs {f32_last}"
    );
}

#[test]
fn master_weights_keep_updates_bf16_would_round_away() {
    // An update of 1e-4 to a weight near 0.4 is below bf16's resolution there (2^-9): trained
    // in bf16 alone, the weights never move; the master copy accumulates every update.
    let device = device();
    let lr = 1e-4;
    let start = bridge::cast_floats(Net::new(&device), DType::BF16);
    let before = weights(&start);
    let (native, _) = train(&mut sam(Precision::Native), start.clone(), 5, lr);
    let mut mixed = sam(Precision::mixed());
    let (_, _) = train(&mut mixed, start, 5, lr);
    let moved_native = relative_distance(&weights(&native), &before);
    let moved_master = relative_distance(&master(&mixed), &before);
    let changed = |after: &[f64]| after.iter().zip(&before).filter(|(a, b)| a != b).count();
    let (changed_native, changed_master) = (changed(&weights(&native)), changed(&master(&mixed)));
    eprintln!(
        "moved {moved_master:e} (master) vs {moved_native:e} (bf16 alone); changed {changed_master} vs {changed_native} of {}",
        before.len()
    );
    assert!(
        moved_master > 3.0 * moved_native,
        "master moved {moved_master:e}, native {moved_native:e}"
    );
    assert!(
        changed_master > 2 * changed_native,
        "{changed_master} vs {changed_native}"
    );
}

#[test]
fn f32_models_and_the_default_setting_are_untouched() {
    let device = device();
    let (native, native_losses) = train(&mut sam(Precision::Native), Net::new(&device), 5, 0.05);
    let mut mixed = sam(Precision::mixed());
    let (same, same_losses) = train(&mut mixed, Net::new(&device), 5, 0.05);
    assert!(mixed.master_weights().is_none(), "an f32 model needs no master copy");
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&weights(&native)), bits(&weights(&same)));
    assert_eq!(bits(&native_losses), bits(&same_losses));
    assert_eq!(
        SamConfig::new(SamConfig::sgd_base(0.9, 0.0)).precision,
        Precision::Native
    );
    assert_eq!(sam(Precision::Native).loss_scale(), None);
}

#[test]
fn f16_overflow_is_skipped_and_the_scale_halves() {
    let device = device();
    let precision = Precision::Mixed {
        init_scale: 1e12,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2000,
    };
    let mut sam = sam(precision);
    let net = bridge::cast_floats(Net::new(&device), DType::F16);
    let before = weights(&net);
    let (x, y) = data(&device);
    // A scale of 1e12 takes every f16 gradient past 65504: the first step overflows.
    let (net, out) = sam.step(0.05, net, |m, _| mse(m, &x, &y));
    assert!(
        matches!(out, Err(StepError::NonFinite { what: "gradient", .. })),
        "{out:?}"
    );
    assert_eq!(sam.loss_scale(), Some(5e11));
    assert_eq!(sam.steps(), 0);
    assert_eq!(weights(&net), before, "a skipped step leaves the model untouched");
    // Each overflow halves it again, until the gradients fit and the step is taken.
    let mut net = net;
    let mut skipped = 1;
    loop {
        let (next, out) = sam.step(0.05, net, |m, _| mse(m, &x, &y));
        net = next;
        match out {
            Ok(_) => break,
            Err(StepError::NonFinite { .. }) => skipped += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(skipped < 40, "the scale never came down");
    }
    assert_eq!(sam.loss_scale(), Some(1e12 / 2f64.powi(skipped)));
    assert!(sam.loss_scale().unwrap() * 1e-3 < 65504.0);
    assert_eq!(sam.steps(), 1);
    assert_ne!(weights(&net), before);
    assert_eq!(bridge::float_dtype(&net, &Layout::of(&net)), Some(DType::F16));
}

#[test]
fn f16_scale_grows_after_good_steps_and_unscaled_gradients_match() {
    let device = device();
    let precision = |init_scale| Precision::Mixed {
        init_scale,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 3,
    };
    let mut scaled = sam(precision(1024.0));
    let net = bridge::cast_floats(Net::new(&device), DType::F16);
    let (_, _) = train(&mut scaled, net.clone(), 3, 0.05);
    assert_eq!(scaled.loss_scale(), Some(2048.0));
    let (_, _) = train(&mut scaled, net.clone(), 2, 0.05);
    assert_eq!(scaled.loss_scale(), Some(2048.0));
    // The scale is a power of two: gradients divided by it are those of an unscaled run up to
    // f16's rounding of the scaled values (its underflow is what the scale avoids).
    let mut a = sam(precision(1024.0));
    let mut b = sam(precision(1.0));
    let (_, la) = train(&mut a, net.clone(), 4, 0.05);
    let (_, lb) = train(&mut b, net, 4, 0.05);
    let distance = relative_distance(&master(&a), &master(&b));
    assert!(distance < 1e-2, "{distance}");
    assert!((la[3] - lb[3]).abs() < 1e-2 * lb[3], "{la:?} vs {lb:?}");
}

#[test]
fn the_two_step_api_runs_the_same_mixed_step() {
    let device = device();
    let net = bridge::cast_floats(Net::new(&device), DType::F16);
    let (x, y) = data(&device);
    let scaled = Precision::Mixed {
        init_scale: 1024.0,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2000,
    };
    let mut one = sam(scaled.clone());
    let (by_step, _) = train(&mut one, net.clone(), 2, 0.05);

    let mut two = sam(scaled);
    let mut net = net;
    for _ in 0..2 {
        let first = two.begin(0.05, &net);
        let loss = mse(first.model(), &x, &y);
        let ascent = two.ascend(&net, first, loss).unwrap().ascent().unwrap();
        let loss = mse(ascent.model(), &x, &y);
        let update = ascent.second_pass(loss).unwrap();
        let (next, report) = two.finish(net, update);
        report.unwrap();
        net = next;
    }
    assert_eq!(weights(&net), weights(&by_step));
    assert_eq!(master(&two), master(&one));

    // An outside base optimizer cannot update the master weights.
    let first = two.begin(0.05, &net);
    let loss = mse(first.model(), &x, &y);
    let ascent = two.ascend(&net, first, loss).unwrap().ascent().unwrap();
    let loss = mse(ascent.model(), &x, &y);
    let update = ascent.second_pass(loss).unwrap();
    assert_eq!(two.descent(update).err(), Some(StepError::MasterWeights));
}

#[test]
fn records_hold_the_master_weights_and_the_scale() {
    let device = device();
    let dir = scratch("mixed_precision");
    let precision = Precision::Mixed {
        init_scale: 4096.0,
        growth_factor: 2.0,
        backoff_factor: 0.5,
        growth_interval: 2,
    };
    let net = bridge::cast_floats(Net::new(&device), DType::F16);
    let mut straight = sam(precision.clone());
    let (_, full) = train(&mut straight, net.clone(), 6, 0.05);

    let mut first = sam(precision.clone());
    let (half_way, _) = train(&mut first, net, 3, 0.05);
    let path = dir.join("mixed.bpk");
    first.record().save(&path).unwrap();
    let record = SamRecord::load(&path, &device).unwrap();
    assert!(record.tensors.keys().any(|k| k.starts_with("master/")));
    let mut resumed = sam(precision).load_record(record.clone(), &half_way).unwrap();
    assert_eq!(resumed.loss_scale(), first.loss_scale());
    assert_eq!(resumed.loss_scale(), Some(8192.0));
    assert_eq!(master(&resumed), master(&first));
    let (_, rest) = train(&mut resumed, half_way.clone(), 3, 0.05);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&full[3..]), bits(&rest));
    assert_eq!(master(&resumed), master(&straight));

    // A record of a mixed-precision run does not fit an optimizer that keeps none.
    let err = sam(Precision::Native)
        .load_record(record, &half_way)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("master/"), "{err}");
}

#[test]
fn bad_loss_scaling_settings_are_named() {
    let bad = |p: Precision| {
        SamConfig::new(SamConfig::sgd_base(0.9, 0.0))
            .with_precision(p)
            .init()
            .err()
            .expect("refused")
    };
    let mixed = |init_scale, growth_factor, backoff_factor, growth_interval| Precision::Mixed {
        init_scale,
        growth_factor,
        backoff_factor,
        growth_interval,
    };
    assert_eq!(bad(mixed(0.0, 2.0, 0.5, 10)).field, "precision.init_scale");
    assert_eq!(bad(mixed(f64::NAN, 2.0, 0.5, 10)).field, "precision.init_scale");
    assert_eq!(bad(mixed(1.0, 0.5, 0.5, 10)).field, "precision.growth_factor");
    assert_eq!(bad(mixed(1.0, 2.0, 1.0, 10)).field, "precision.backoff_factor");
    assert_eq!(bad(mixed(1.0, 2.0, 0.5, 0)).field, "precision.growth_interval");
}

/// On Burn's wgpu backend (`--features wgpu`; lavapipe where there is no GPU): each half type the
/// adapter offers trains with master weights — the loss falls, the model keeps its type and the
/// master weights are f32 — and the test says which types the adapter offers.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_trains_the_half_types_its_adapter_offers() {
    if !crate::common::wgpu_here() {
        eprintln!("no wgpu adapter here");
        return;
    }
    let _device = crate::common::wgpu_shared();
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice).autodiff();
    let mut trained = 0;
    for dtype in [DType::F16, DType::BF16] {
        let offered = device.supports_dtype(dtype);
        eprintln!("wgpu adapter offers {dtype:?}: {offered}");
        if !offered {
            continue;
        }
        let precision = Precision::Mixed {
            init_scale: 1024.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        };
        let mut mixed = sam(precision);
        let (net, losses) = train(&mut mixed, bridge::cast_floats(Net::new(&device), dtype), 20, 0.05);
        eprintln!("wgpu {dtype:?}: loss {} -> {}", losses[0], losses[19]);
        assert!(losses[19] < 0.8 * losses[0], "{dtype:?}: {losses:?}");
        assert_eq!(bridge::float_dtype(&net, &Layout::of(&net)), Some(dtype));
        assert!(
            mixed
                .master_weights()
                .unwrap()
                .slots()
                .iter()
                .flatten()
                .all(|t| t.dtype() == DType::F32)
        );
        trained += 1;
    }
    eprintln!("{trained} half type(s) trained on wgpu");
}

/// Every preset (ESAM's selection, bSAM's and MSAM's own updates, the schedules' base steps,
/// ρ = 0) trains a bf16 model with master weights: the steps are taken, the master weights stay
/// f32, and the model holds them rounded to bf16.
#[test]
fn every_preset_trains_a_bf16_model_with_master_weights() {
    let device = device();
    let (x, y) = data(&device);
    for preset in flatmin::PRESETS {
        let mut sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 5e-4))
            .unwrap()
            .for_run(10, 32)
            .with_precision(Precision::mixed())
            .init()
            .unwrap();
        let mut net = bridge::cast_floats(Net::new(&device), DType::BF16);
        let before = weights(&net);
        for _ in 0..4 {
            let (next, report) = sam.step(0.05, net, |m, batch| {
                let out = m.forward(batch.rows(x.clone()).cast(DType::BF16)).cast(DType::F32);
                let diff = out - batch.rows(y.clone());
                (diff.clone() * diff).mean_dim(1).reshape([-1])
            });
            net = next;
            let report = report.unwrap_or_else(|e| panic!("{preset}: {e}"));
            assert!(report.loss.is_some_and(f64::is_finite), "{preset}");
        }
        let held = sam
            .master_weights()
            .unwrap_or_else(|| panic!("{preset}: no master weights"));
        assert!(
            held.slots().iter().flatten().all(|t| t.dtype() == DType::F32),
            "{preset}"
        );
        let rounded: Vec<f64> = held
            .slots()
            .iter()
            .flatten()
            .flat_map(|t| floats(t.clone().cast(DType::BF16)))
            .collect();
        assert_eq!(weights(&net), rounded, "{preset}");
        assert_ne!(weights(&net), before, "{preset}: nothing moved");
    }
}
