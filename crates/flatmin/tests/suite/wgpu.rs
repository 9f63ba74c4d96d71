//! The library on Burn's wgpu backend (built only with the `wgpu` feature; on a machine without
//! a GPU it runs on Mesa's software Vulkan driver, lavapipe), in float32:
//!
//! * a short training run of every preset on a model with BatchNorm: the loss falls, and the
//!   running statistics are those of the first pass alone;
//! * the two-step API takes the one-call API's steps, for every preset;
//! * every preset's trajectory on wgpu agrees with the same float32 run on the CPU (flex);
//! * norms of long tensors, and SAM on a model of 150,010 parameters, are right on wgpu.
//!
//! The conformance cases on wgpu are in flatmin-cli's test set.

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{DType, Device, DeviceKind, Int, Tensor, TensorData};
use flatmin::{Batch, Member, PRESETS, Rng, Sam, SamConfig, StepError, StepReport, bridge};

use crate::common::wgpu_here;

/// The wgpu device; `FLATMIN_WGPU_SET_ON_CPU=1` runs the same tests on flex, to tell a wgpu
/// difference from one of the test itself.
fn wgpu() -> Device {
    if std::env::var_os("FLATMIN_WGPU_SET_ON_CPU").is_some() {
        return Device::flex().autodiff();
    }
    Device::wgpu(DeviceKind::DefaultDevice).autodiff()
}

fn sgdm() -> flatmin::BaseConfig {
    SamConfig::sgd_base(0.9, 5e-4)
}

/// Seeded values in [-scale, scale).
fn draw(rng: &mut Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) * scale).collect()
}

fn tensor<const D: usize>(values: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F32))
}

/// 32 rows of 6 features, 3 classes, a little separable: the same on every device.
struct Data {
    x: Tensor<2>,
    y: Tensor<1, Int>,
}

impl Data {
    fn new(seed: u64, device: &Device) -> Self {
        let mut rng = Rng::seeded(seed);
        let y: Vec<i64> = (0..32).map(|_| (rng.next_u64() % 3) as i64).collect();
        let mut x = draw(&mut rng, 32 * 6, 1.0);
        for (row, &class) in y.iter().enumerate() {
            x[row * 6 + class as usize] += 1.0;
        }
        Self {
            x: tensor(x, [32, 6], device),
            y: Tensor::from_data(TensorData::new(y, [32]), device),
        }
    }

    fn losses(&self, logits: impl Fn(Tensor<2>) -> Tensor<2>, batch: Batch) -> Tensor<1> {
        flatmin::per_sample_cross_entropy(logits(batch.rows(self.x.clone())), batch.rows_int(self.y.clone()))
    }
}

/// Linear → BatchNorm → tanh → Linear, seeded weights (Burn's initializers are per device).
#[derive(Module, Debug)]
struct BnNet {
    l1: Linear,
    bn: BatchNorm,
    l2: Linear,
}

impl BnNet {
    fn new(seed: u64, device: &Device) -> Self {
        let mut rng = Rng::seeded(seed);
        let mut l1 = LinearConfig::new(6, 16).init(device);
        let mut l2 = LinearConfig::new(16, 3).init(device);
        l1.weight = Param::from_tensor(tensor(draw(&mut rng, 6 * 16, 0.4), [6, 16], device));
        l1.bias = Some(Param::from_tensor(tensor(draw(&mut rng, 16, 0.1), [16], device)));
        l2.weight = Param::from_tensor(tensor(draw(&mut rng, 16 * 3, 0.4), [16, 3], device));
        l2.bias = Some(Param::from_tensor(tensor(draw(&mut rng, 3, 0.1), [3], device)));
        Self {
            l1,
            bn: BatchNormConfig::new(16).init(device),
            l2,
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.l2.forward(tanh(self.bn.forward(self.l1.forward(x))))
    }

    /// Read through `valid()`, as `batchnorm.rs` does: Burn merges a running state's pending
    /// updates when it is read there.
    fn running_mean(&self) -> Vec<f64> {
        self.valid().bn.running_mean.value().into_data().iter::<f64>().collect()
    }

    fn trainable(&self) -> Vec<f64> {
        trainable(self)
    }

    /// A copy with its own running statistics (Burn's clones share them).
    fn deep_copy(&self) -> Self {
        self.clone().valid().train()
    }
}

/// The training loss (batch statistics, as the optimizer sees it), on a copy.
fn mean_loss(net: &BnNet, data: &Data) -> f64 {
    let copy = net.deep_copy();
    let losses = data.losses(|x| copy.forward(x), Batch::All);
    losses.mean().into_data().iter::<f64>().next().unwrap()
}

/// A model's trainable parameters, flattened in visiting order.
fn trainable<M: Module>(model: &M) -> Vec<f64> {
    let layout = flatmin::Layout::of(model);
    bridge::values(model, &layout)
        .into_slots()
        .into_iter()
        .flatten()
        .flat_map(|t| t.into_data().iter::<f64>().collect::<Vec<_>>())
        .collect()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn scale(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Every preset trains: 20 steps on one batch lower the loss by a fifth at least, and after the
/// first step BatchNorm's running mean is the first pass's alone (within float32 rounding; for
/// bSAM the pass at its noisy weights),
/// clearly apart from what a second update by the perturbed pass would give.
#[test]
fn every_preset_trains_on_wgpu_and_keeps_batchnorm_statistics_to_the_first_pass() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let device = wgpu();
    let data = Data::new(7, &device);
    for name in PRESETS {
        let config = SamConfig::preset(name, sgdm()).unwrap().for_run(20, 32);
        let mut optim = config.init().unwrap();
        let mut net = BnNet::new(3, &device);
        let before = mean_loss(&net, &data);

        // What one training-mode forward of the preset's first-pass model (the model itself,
        // ESAM's masked view, bSAM's noisy weights: `begin` draws the step's draws and changes
        // nothing) leaves in the statistics, and what two would (then a pass at other weights).
        let once = net.deep_copy();
        let _ = optim.begin(0.05, &once).model().forward(data.x.clone());
        let expected = once.running_mean();
        let twice = once.deep_copy();
        let _ = twice.forward(data.x.clone().mul_scalar(1.5));
        let wrong = twice.running_mean();

        let mut first_step = None;
        for k in 0..20 {
            let (next, report) = optim.step(0.05, net, |m: &BnNet, b: Batch| data.losses(|x| m.forward(x), b));
            report.unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
            net = next;
            if k == 0 {
                first_step = Some(net.running_mean());
            }
        }
        let got = first_step.unwrap();
        let tolerance = 1e-5 * scale(&expected).max(1e-3);
        assert!(
            max_abs(&got, &expected) <= tolerance,
            "{name}: the running mean after one step is the first pass's: max |Δ| = {:e}",
            max_abs(&got, &expected)
        );
        assert!(
            max_abs(&expected, &wrong) > 100.0 * tolerance,
            "the check discriminates"
        );
        let after = mean_loss(&net, &data);
        println!("{name:<12} loss {before:.4} -> {after:.4}");
        assert!(after < 0.8 * before, "{name}: loss {before} -> {after}");
    }
}

/// One step through the generic two-step loop of the crate docs: begin, the first pass,
/// ascend, then on an ascent the selection where it is needed and the second pass, finish.
fn two_step(optim: &mut Sam, model: BnNet, data: &Data, lr: f64) -> (BnNet, Result<StepReport, StepError>) {
    let first = optim.begin(lr, &model);
    let at_w = data.losses(|x| first.model().forward(x), Batch::All);
    let update = match optim.ascend(&model, first, at_w) {
        Err(e) => return (model, Err(e)),
        Ok(flatmin::Next::Update(update)) => update,
        Ok(flatmin::Next::Ascent(ascent)) => {
            let ascent = if ascent.needs_selection() {
                let probe = ascent.probe();
                let after = data.losses(|x| probe.forward(x), Batch::All);
                match ascent.select(after) {
                    Ok(a) => a,
                    Err(e) => return (model, Err(e)),
                }
            } else {
                ascent
            };
            let at_w_plus_e = data.losses(|x| ascent.model().forward(x), ascent.request());
            match ascent.second_pass(at_w_plus_e) {
                Ok(update) => update,
                Err(e) => return (model, Err(e)),
            }
        }
    };
    optim.finish(model, update)
}

/// The two-step API on wgpu takes the one-call API's steps, for every preset.
#[test]
fn two_step_api_equals_one_call_on_wgpu_for_every_preset() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let device = wgpu();
    let data = Data::new(5, &device);
    for name in PRESETS {
        let config = SamConfig::preset(name, sgdm()).unwrap().for_run(5, 32);
        let (mut one, mut two) = (config.init().unwrap(), config.init().unwrap());
        let (mut a, mut b) = (BnNet::new(1, &device), BnNet::new(1, &device));
        let mut worst = 0.0f64;
        for k in 0..5 {
            let (next, report) = one.step(0.05, a, |m: &BnNet, batch: Batch| data.losses(|x| m.forward(x), batch));
            report.unwrap_or_else(|e| panic!("{name} one-call step {k}: {e}"));
            a = next;
            let (next, report) = two_step(&mut two, b, &data, 0.05);
            report.unwrap_or_else(|e| panic!("{name} two-step step {k}: {e}"));
            b = next;
            worst = worst.max(max_abs(&a.trainable(), &b.trainable()));
            worst = worst.max(max_abs(&a.running_mean(), &b.running_mean()));
        }
        println!("{name:<12} max |one-call - two-step| = {worst:e}");
        assert_eq!(
            worst, 0.0,
            "{name}: the same operations on the same device give the same bits"
        );
    }
}

/// Each preset's 5 steps on wgpu agree with the same float32 steps on the CPU (flex): per step,
/// max |Δ| over the trainable parameters / their max |cpu| <= 1e-5 (the fixtures' float32 bar). Fisher-SAM and ASAM have
/// no conformance case; this covers them too.
#[test]
fn every_preset_on_wgpu_agrees_with_the_cpu_in_float32() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let (gpu, cpu) = (wgpu(), Device::flex().autodiff());
    let (data_gpu, data_cpu) = (Data::new(9, &gpu), Data::new(9, &cpu));
    for name in PRESETS {
        let mut config = SamConfig::preset(name, sgdm()).unwrap().for_run(5, 32);
        if name == "esam" {
            // ESAM's selection keeps the samples above a quantile of per-sample sharpness: a
            // float32 difference between backends can swap two near-tied samples and send the
            // runs apart (6.8e-3 here with the selection on). Its masks are compared here; its
            // selection on wgpu by the conformance cases, which record it.
            config.members.retain(|m| !matches!(m, Member::Selection(_)));
        }
        let run = |device: &Device, data: &Data| {
            let mut optim = config.init().unwrap();
            let mut net = BnNet::new(4, device);
            let mut trajectory = Vec::new();
            for k in 0..5 {
                let (next, report) = optim.step(0.05, net, |m: &BnNet, b: Batch| data.losses(|x| m.forward(x), b));
                report.unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
                net = next;
                trajectory.push(net.trainable());
            }
            trajectory
        };
        let (on_gpu, on_cpu) = (run(&gpu, &data_gpu), run(&cpu, &data_cpu));
        let rel = on_gpu
            .iter()
            .zip(&on_cpu)
            .map(|(g, c)| max_abs(g, c) / scale(c))
            .fold(0.0, f64::max);
        println!("{name:<12} max |wgpu - cpu| / max |cpu| = {rel:.3e}");
        assert!(rel <= 1e-5, "{name}: {rel:e}");
    }
}

/// `Σ a·b` in f64 over the f32 values of two equally long lists.
fn exact_dot(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64))
        .sum()
}

/// Norms and inner products of long tensors are their sums on wgpu, where Burn 0.22.1's
/// whole-tensor reductions are not: its `[1, n] × [n, 1]` product counts at most 65,535
/// vector lanes (203,530 ones dotted with themselves give 131,070 on lavapipe) and its `sum()`
/// about 262,000 elements. The vectors mix tensors longer than those limits (odd and even
/// lengths, one beyond a block of rows), one just over the join threshold, and many small
/// ones that are joined, with a slot missing from one side.
#[test]
fn norms_and_inner_products_of_long_tensors_are_exact_on_wgpu() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let device = wgpu();
    let mut sizes = vec![1_000_001, 203_530, 262_146, 65_537, 17_000_000];
    sizes.extend((0..40).map(|i| 100 + 7 * i));
    let mut rng = Rng::seeded(3);
    let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect() };
    let a: Vec<Vec<f32>> = sizes.iter().map(|&n| values(n)).collect();
    let b: Vec<Vec<f32>> = sizes.iter().map(|&n| values(n)).collect();
    let to_vector = |lists: &[Vec<f32>], skip: Option<usize>| {
        let slots = lists.iter().enumerate().map(|(i, v)| {
            (Some(i) != skip)
                .then(|| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), (&device, DType::F32)))
        });
        flatmin::ParamVector::new(slots.collect())
    };
    let (va, vb) = (to_vector(&a, None), to_vector(&b, Some(1)));
    let sums: Vec<f64> = [va.squared_norm_lazy(), va.dot_lazy(&vb), vb.squared_norm_lazy()]
        .into_iter()
        .map(|t| bridge::to_f64(t.expect("present"))[0])
        .collect();
    let (mut a_kept, mut b_kept) = (a.clone(), b.clone());
    a_kept.remove(1);
    b_kept.remove(1);
    let want = [
        exact_dot(&a, &a),
        exact_dot(&a_kept, &b_kept),
        exact_dot(&b_kept, &b_kept),
    ];
    // Every figure is held to 1e-5 of the largest, ‖a‖² (a·b is a sum of cancelling terms).
    let bar = 1e-5 * want[0].max(1.0);
    for (what, (got, want)) in ["‖a‖²", "a·b", "‖b‖²"].iter().zip(sums.iter().zip(want)) {
        println!("{what}: {got} (exact {want})");
        assert!((got - want).abs() <= bar, "{what}: {got} against {want}");
    }
    assert!((va.norm() - want[0].sqrt()).abs() <= 1e-5 * want[0].sqrt());
}

/// 6 → `hidden` → 3 with tanh, seeded (Burn's initializers are per device).
#[derive(Module, Debug)]
struct TwoLayer {
    l1: Linear,
    l2: Linear,
}

impl TwoLayer {
    /// The output layer's weights drawn within `out_scale`, with a bias when `out_bias`.
    fn new(seed: u64, hidden: usize, out_scale: f64, out_bias: bool, device: &Device) -> Self {
        let mut rng = Rng::seeded(seed);
        let mut l1 = LinearConfig::new(6, hidden).init(device);
        let mut l2 = LinearConfig::new(hidden, 3).with_bias(out_bias).init(device);
        l1.weight = Param::from_tensor(tensor(draw(&mut rng, 6 * hidden, 0.4), [6, hidden], device));
        l1.bias = Some(Param::from_tensor(tensor(
            draw(&mut rng, hidden, 0.1),
            [hidden],
            device,
        )));
        l2.weight = Param::from_tensor(tensor(draw(&mut rng, hidden * 3, out_scale), [hidden, 3], device));
        if out_bias {
            l2.bias = Some(Param::from_tensor(tensor(draw(&mut rng, 3, 0.1), [3], device)));
        }
        Self { l1, l2 }
    }

    /// 6 → 15,001 → 3 without a second bias: 150,010 parameters, one tensor of 90,006, so the
    /// norms cross the lengths Burn 0.22.1's whole-tensor reductions get wrong on wgpu.
    fn wide(device: &Device) -> Self {
        Self::new(5, 15_001, 0.01, false, device)
    }

    /// 6 → 16 → 3 with biases and no BatchNorm: every parameter has a gradient well above
    /// float32 noise, so Adam (which divides it by its own size) agrees across backends.
    /// (Before a BatchNorm a bias has no gradient but rounding, which Adam blows up to a full
    /// step.)
    fn small(seed: u64, device: &Device) -> Self {
        Self::new(seed, 16, 0.4, true, device)
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.l2.forward(tanh(self.l1.forward(x)))
    }
}

/// SAM on a model of 150,010 parameters takes the CPU's float32 steps on wgpu, and reports the
/// CPU's gradient norms (which scale its perturbation, `ρ·g/‖g‖`).
#[test]
fn a_model_with_long_tensors_takes_the_cpus_sam_steps_on_wgpu() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let (gpu, cpu) = (wgpu(), Device::flex().autodiff());
    let config = SamConfig::preset("sam", sgdm()).unwrap();
    let run = |device: &Device| {
        let data = Data::new(4, device);
        let mut optim = config.init().unwrap();
        let mut net = TwoLayer::wide(device);
        let mut norms = Vec::new();
        for _ in 0..3 {
            let (next, report) = optim.step(0.05, net, |m: &TwoLayer, b: Batch| data.losses(|x| m.forward(x), b));
            let report = report.expect("a finite step");
            norms.push(report.grad_norm);
            net = next;
        }
        (trainable(&net), norms)
    };
    let ((w_gpu, n_gpu), (w_cpu, n_cpu)) = (run(&gpu), run(&cpu));
    let rel = max_abs(&w_gpu, &w_cpu) / scale(&w_cpu);
    let norm_rel = max_abs(&n_gpu, &n_cpu) / scale(&n_cpu);
    println!("weights {rel:.3e}, norms {n_gpu:?} against {n_cpu:?}");
    assert!(rel <= 1e-5, "weights: {rel:e}");
    assert!(norm_rel <= 1e-5, "‖g‖: {n_gpu:?} against {n_cpu:?}");
}

/// `model` with every trainable parameter multiplied by `factor`, ids kept: a change made
/// outside the optimizer (weight surgery, an average of checkpoints) that the next step must
/// take up, although the optimizer kept the weights of its last step joined on the GPU.
fn scaled_outside<M: Module>(model: M, factor: f64) -> M {
    let layout = flatmin::Layout::of(&model);
    bridge::update(model, &layout, &|_| true, &mut |_, w| w.mul_scalar(factor))
}

/// On a fused GPU the optimizer keeps the weights its step wrote, joined in one buffer, and
/// takes them up again only while the model holds the very tensors it wrote (README, *GPU*). A
/// model changed between steps (here every weight halved, ids kept) is stepped as changed:
/// the run agrees with the CPU's, which keeps nothing. Kept weights taken up regardless would
/// undo the change and leave the runs far apart.
#[test]
fn a_model_changed_between_steps_is_stepped_as_changed_on_wgpu() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let (gpu, cpu) = (wgpu(), Device::flex().autodiff());
    for (name, base) in [
        ("sam", sgdm()),
        ("sam", SamConfig::adam_base(0.0, false)),
        ("sgd", sgdm()),
    ] {
        let config = SamConfig::preset(name, base).unwrap();
        let run = |device: &Device| {
            let data = Data::new(5, device);
            let mut optim = config.init().unwrap();
            let mut net = TwoLayer::small(6, device);
            for k in 0..4 {
                if k == 2 {
                    net = scaled_outside(net, 0.5);
                }
                let (next, report) = optim.step(0.05, net, |m: &TwoLayer, b: Batch| data.losses(|x| m.forward(x), b));
                report.unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
                net = next;
            }
            trainable(&net)
        };
        let (on_gpu, on_cpu) = (run(&gpu), run(&cpu));
        let rel = max_abs(&on_gpu, &on_cpu) / scale(&on_cpu);
        println!("{name}: max |wgpu - cpu| / max |cpu| = {rel:.3e}");
        assert!(rel <= 1e-5, "{name}: {rel:e}");
    }
}

/// The base optimizer's state on a fused GPU is one buffer per kind, each parameter's state a
/// view of it: a record taken mid-run and loaded into a new optimizer resumes the run, whose
/// weights end where the uninterrupted run's do (SGD with momentum and Adam).
#[test]
fn a_record_taken_on_wgpu_resumes_the_run() {
    if !wgpu_here() {
        return;
    }
    let _device = crate::common::wgpu_shared();
    let device = wgpu();
    let data = Data::new(7, &device);
    for base in [sgdm(), SamConfig::adam_base(1e-4, true)] {
        let config = SamConfig::preset("sam", base).unwrap();
        let steps = |optim: &mut Sam, mut net: BnNet, n: usize| {
            for k in 0..n {
                let (next, report) = optim.step(0.05, net, |m: &BnNet, b: Batch| data.losses(|x| m.forward(x), b));
                report.unwrap_or_else(|e| panic!("step {k}: {e}"));
                net = next;
            }
            net
        };
        let mut whole = config.init().unwrap();
        let straight = steps(&mut whole, BnNet::new(8, &device), 4);
        let mut first = config.init().unwrap();
        let half = steps(&mut first, BnNet::new(8, &device), 2);
        let bytes = first.record().to_bytes().unwrap();
        let record = flatmin::SamRecord::from_bytes(bytes, &device).unwrap();
        let mut resumed = config.init().unwrap().load_record(record, &half).unwrap();
        let resumed_net = steps(&mut resumed, half, 2);
        let (a, b) = (straight.trainable(), resumed_net.trainable());
        let rel = max_abs(&a, &b) / scale(&a);
        println!("resumed against uninterrupted: {rel:.3e}");
        assert!(rel <= 1e-6, "{rel:e}");
    }
}
