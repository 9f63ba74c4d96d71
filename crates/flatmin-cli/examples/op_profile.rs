//! Per-operation timings of the small CNN's and the ResNet stack's layers on the `flex` backend,
//! at batch 128, with the shapes `scripts/bench_vs_pytorch.py ops` times in PyTorch:
//! `cargo run --release -p flatmin-cli --example op_profile [-- REPS]`. Prints one JSON object
//! (`{"framework": "burn-flex", "ops": [{"model", "kind", "layer", "count", "ms"}]}`, `count` =
//! how often the layer runs in one forward and backward pass, `ms` = the median over REPS calls).
//!
//! Each operation is the one Burn's autodiff runs for that layer: a convolution's input gradient
//! is the transposed convolution `conv2d_x_backward` calls, its weight gradient
//! `conv2d_weight_backward`, BatchNorm's training forward `batch_norm_train` and its backward the
//! composition `ModuleOps::batch_norm_train_backward` is made of (flex does not override it), a
//! linear layer's gradients the two products autodiff forms; ReLU's backward is timed as the
//! element-wise product of two tensors of its size (flex's `relu_backward` is that loop).

use std::time::Instant;

use burn::tensor::module::{
    adaptive_avg_pool2d, batch_norm_train, conv_transpose2d, conv2d, conv2d_weight_backward, linear,
    max_pool2d_with_indices, max_pool2d_with_indices_backward, unfold4d,
};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions, UnfoldOptions};
use burn::tensor::{Device, Distribution, Tensor};
use flatmin_lab::cputime::{Clock, cpu_ms};

/// One convolution layer: model, name, uses per pass, input [c, h, w], out channels, kernel,
/// stride, padding, bias, whether the backward needs its input gradient.
type ConvSpec = (
    &'static str,
    &'static str,
    usize,
    [usize; 3],
    usize,
    usize,
    usize,
    usize,
    bool,
    bool,
);

const N: usize = 128;

const CONVS: [ConvSpec; 10] = [
    ("cnn", "conv1 1→16 3×3 @28", 1, [1, 28, 28], 16, 3, 1, 1, true, false),
    ("cnn", "conv2 16→32 3×3 @14", 1, [16, 14, 14], 32, 3, 1, 1, true, true),
    ("resnet", "stem 3→16 3×3 @32", 1, [3, 32, 32], 16, 3, 1, 1, false, false),
    ("resnet", "16→16 3×3 @32", 2, [16, 32, 32], 16, 3, 1, 1, false, true),
    ("resnet", "16→32 3×3 s2 @32", 1, [16, 32, 32], 32, 3, 2, 1, false, true),
    ("resnet", "32→32 3×3 @16", 1, [32, 16, 16], 32, 3, 1, 1, false, true),
    ("resnet", "16→32 1×1 s2 @32", 1, [16, 32, 32], 32, 1, 2, 0, false, true),
    ("resnet", "32→64 3×3 s2 @16", 1, [32, 16, 16], 64, 3, 2, 1, false, true),
    ("resnet", "64→64 3×3 @8", 1, [64, 8, 8], 64, 3, 1, 1, false, true),
    ("resnet", "32→64 1×1 s2 @16", 1, [32, 16, 16], 64, 1, 2, 0, false, true),
];

type MapSpec = (&'static str, &'static str, usize, [usize; 3]);

const BNS: [MapSpec; 3] = [
    ("resnet", "BN 16 @32", 4, [16, 32, 32]),
    ("resnet", "BN 32 @16", 3, [32, 16, 16]),
    ("resnet", "BN 64 @8", 3, [64, 8, 8]),
];
const POOLS: [MapSpec; 2] = [
    ("cnn", "maxpool 2×2 16 @28", 1, [16, 28, 28]),
    ("cnn", "maxpool 2×2 32 @14", 1, [32, 14, 14]),
];
const RELUS: [MapSpec; 5] = [
    ("cnn", "relu 16 @28", 1, [16, 28, 28]),
    ("cnn", "relu 32 @14", 1, [32, 14, 14]),
    ("resnet", "relu 16 @32", 5, [16, 32, 32]),
    ("resnet", "relu 32 @16", 2, [32, 16, 16]),
    ("resnet", "relu 64 @8", 2, [64, 8, 8]),
];
const ADDS: [MapSpec; 3] = [
    ("resnet", "add 16 @32", 1, [16, 32, 32]),
    ("resnet", "add 32 @16", 1, [32, 16, 16]),
    ("resnet", "add 64 @8", 1, [64, 8, 8]),
];
const LINEARS: [(&str, &str, usize, usize, usize); 3] = [
    ("cnn", "linear 1568→128", 1, 1568, 128),
    ("cnn", "linear 128→10", 1, 128, 10),
    ("resnet", "linear 64→10", 1, 64, 10),
];

struct Row {
    model: &'static str,
    kind: &'static str,
    layer: String,
    count: usize,
    ms: [f64; 4],
}

/// CPU time of every thread of the process, in ms (Linux; NaN elsewhere).
fn process_cpu_ms() -> f64 {
    cpu_ms(Clock::Process)
}

/// Timings of `reps` calls after two untimed ones: median and least wall time, median and least
/// CPU time of the process (all threads; on a busy machine the wall time stretches, the CPU time
/// much less). Flex runs eagerly: an operation has finished when it returns.
fn timed<T>(reps: usize, mut f: impl FnMut() -> T) -> [f64; 4] {
    for _ in 0..2 {
        std::hint::black_box(f());
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (c, t) = (process_cpu_ms(), Instant::now());
        std::hint::black_box(f());
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(process_cpu_ms() - c);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    [wall[reps / 2], wall[0], cpu[reps / 2], cpu[0]]
}

fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// The backward of BatchNorm's training forward, as `ModuleOps::batch_norm_train_backward`
/// composes it (the flex backend runs that default), written with the tensor API.
fn batch_norm_backward(
    x: Tensor<4>,
    gamma: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    grad: Tensor<4>,
) -> [Tensor<4>; 1] {
    let [n, c, h, w] = x.dims();
    let per = [1, c, 1, 1];
    let inv_std = var.add_scalar(1e-5).sqrt().recip().reshape(per);
    let normalized = (x - mean.reshape(per)) * inv_std.clone();
    let grad_flat = grad.clone().swap_dims(0, 1).reshape([c, n * h * w]);
    let normalized_grad_flat = (grad.clone() * normalized.clone())
        .swap_dims(0, 1)
        .reshape([c, n * h * w]);
    let _beta_grad = grad_flat.clone().sum_dim(1);
    let _gamma_grad = normalized_grad_flat.clone().sum_dim(1);
    let mean_grad = grad_flat.mean_dim(1).reshape(per);
    let mean_normalized_grad = normalized_grad_flat.mean_dim(1).reshape(per);
    let centred = grad - mean_grad;
    let projected = normalized * mean_normalized_grad;
    let scale = gamma.reshape(per) * inv_std;
    [scale * (centred - projected)]
}

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    flatmin::keep_freed_memory();
    let device = Device::flex();
    device.seed(0);
    let mut rows = Vec::new();
    let mut push = |model, kind, layer: String, count, ms| {
        rows.push(Row {
            model,
            kind,
            layer,
            count,
            ms,
        })
    };
    for (model, name, count, [c, h, w], out, k, s, p, bias, need_x) in CONVS {
        let x = normal([N, c, h, w], &device);
        let weight = normal([out, c, k, k], &device).mul_scalar(0.1);
        let b = bias.then(|| normal([out], &device));
        let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let y = conv2d(x.clone(), weight.clone(), b.clone(), options.clone());
        let grad = normal(y.dims(), &device);
        let ms = timed(reps, || conv2d(x.clone(), weight.clone(), b.clone(), options.clone()));
        push(model, "conv forward", name.into(), count, ms);
        if need_x {
            // As `conv2d_x_backward`: the transposed convolution, with the output padding that
            // recovers the input size.
            let out_size = y.dims()[2];
            let pad_out = if s > 1 {
                h + 2 * p - (k - 1) - 1 - (out_size - 1) * s
            } else {
                0
            };
            let t_options = ConvTransposeOptions::new([s, s], [p, p], [pad_out, pad_out], [1, 1], 1);
            let dx = conv_transpose2d(grad.clone(), weight.clone(), None, t_options.clone());
            assert_eq!(dx.dims(), [N, c, h, w], "{name}: input gradient shape");
            let ms = timed(reps, || {
                conv_transpose2d(grad.clone(), weight.clone(), None, t_options.clone())
            });
            push(model, "conv input-grad", name.into(), count, ms);
        }
        let ms = timed(reps, || {
            let dw = conv2d_weight_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
            // The bias gradient, as `conv2d_bias_backward` forms it.
            let [gn, _, gh, gw] = grad.dims();
            let db = bias.then(|| grad.clone().swap_dims(0, 1).reshape([out, gn * gh * gw]).sum_dim(1));
            (dw, db)
        });
        push(model, "conv weight-grad", name.into(), count, ms);
        // The same weight gradient as one matrix product, `dW = G · im2col(x)ᵀ` with the batch
        // and the output positions as the inner dimension (what PyTorch's non-oneDNN CPU path
        // does): the padding, the im2col copy and the layout copies are inside the timing.
        let as_gemm = || {
            let cols = unfold4d(
                x.clone().pad((p, p, p, p), 0.0),
                [k, k],
                UnfoldOptions::new([s, s], [0, 0], [1, 1]),
            );
            let [_, ckk, l] = cols.dims();
            let cols = cols.swap_dims(1, 2).reshape([N * l, ckk]);
            let g = grad.clone().reshape([N, out, l]).swap_dims(0, 1).reshape([out, N * l]);
            g.matmul(cols).reshape([out, c, k, k])
        };
        let reference = conv2d_weight_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
        let error = (as_gemm() - reference.clone()).abs().max().into_scalar::<f32>() as f64;
        let scale = reference.abs().max().into_scalar::<f32>() as f64;
        assert!(
            error <= 1e-4 * scale,
            "{name}: im2col weight gradient differs by {error} (scale {scale})"
        );
        let ms = timed(reps, as_gemm);
        push(model, "conv weight-grad, im2col + one GEMM", name.into(), count, ms);
    }
    for (model, name, count, [c, h, w]) in BNS {
        let x = normal([N, c, h, w], &device);
        let gamma: Tensor<1> = Tensor::ones([c], &device);
        let beta: Tensor<1> = Tensor::zeros([c], &device);
        let ms = timed(reps, || {
            batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5).output
        });
        push(model, "BN forward", name.into(), count, ms);
        let stats = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let grad = normal([N, c, h, w], &device);
        let ms = timed(reps, || {
            batch_norm_backward(
                x.clone(),
                gamma.clone(),
                stats.mean.clone(),
                stats.variance.clone(),
                grad.clone(),
            )
        });
        push(model, "BN backward", name.into(), count, ms);
    }
    for (model, name, count, [c, h, w]) in POOLS {
        let x = normal([N, c, h, w], &device);
        let options = MaxPoolOptions::new([2, 2]);
        let ms = timed(reps, || max_pool2d_with_indices(x.clone(), options.clone()));
        push(model, "pool forward", name.into(), count, ms);
        let (y, indices) = max_pool2d_with_indices(x.clone(), options);
        let grad = normal(y.dims(), &device);
        let ms = timed(reps, || {
            max_pool2d_with_indices_backward(
                x.clone(),
                [2, 2],
                [2, 2],
                [0, 0],
                [1, 1],
                false,
                grad.clone(),
                indices.clone(),
            )
        });
        push(model, "pool backward", name.into(), count, ms);
    }
    {
        let x = normal([N, 64, 8, 8], &device);
        let ms = timed(reps, || adaptive_avg_pool2d(x.clone(), [1, 1]));
        push("resnet", "pool forward", "global avg pool 64 @8".into(), 1, ms);
    }
    for (model, name, count, i, o) in LINEARS {
        let x = normal([N, i], &device);
        let weight = normal([i, o], &device).mul_scalar(0.1);
        let b = normal([o], &device);
        let grad = normal([N, o], &device);
        let ms = timed(reps, || linear(x.clone(), weight.clone(), Some(b.clone())));
        push(model, "matmul forward", name.into(), count, ms);
        let ms = timed(reps, || grad.clone().matmul(weight.clone().transpose()));
        push(model, "matmul input-grad", name.into(), count, ms);
        let ms = timed(reps, || {
            (x.clone().transpose().matmul(grad.clone()), grad.clone().sum_dim(0))
        });
        push(model, "matmul weight-grad", name.into(), count, ms);
    }
    for (model, name, count, [c, h, w]) in RELUS {
        let x = normal([N, c, h, w], &device);
        let grad = normal([N, c, h, w], &device);
        let ms = timed(reps, || burn::tensor::activation::relu(x.clone()));
        push(model, "elementwise", format!("{name} forward"), count, ms);
        // Flex's `relu_backward` is one element-wise loop over the output and the gradient (not
        // public in the tensor API): the same loop as a product of the two.
        let y = burn::tensor::activation::relu(x.clone());
        let ms = timed(reps, || y.clone() * grad.clone());
        push(model, "elementwise", format!("{name} backward"), count, ms);
    }
    for (model, name, count, [c, h, w]) in ADDS {
        let x = normal([N, c, h, w], &device);
        let z = normal([N, c, h, w], &device);
        let ms = timed(reps, || x.clone() + z.clone());
        push(model, "elementwise", name.into(), count, ms);
    }
    let ops: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"model": r.model, "kind": r.kind, "layer": r.layer, "count": r.count, "ms": r.ms[0], "min_ms": r.ms[1], "cpu_ms": r.ms[2], "min_cpu_ms": r.ms[3]})
        })
        .collect();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!(
        "{}",
        serde_json::json!({"framework": "burn-flex", "threads": threads, "ops": ops})
    );
}
