//! Where a step's time goes, phase by phase, through the step's phases (the functions the
//! one-call step runs, called one by one):
//! `cargo run --release -p flatmin-cli --example step_phases -- [mlp|cnn|resnet] [OPTIMIZER] [STEPS]`.
//!
//! Each phase is timed in CPU time of the calling thread (Linux), which a busy machine does not
//! stretch the way it stretches wall time; the optimizer's own phases (`perturb`, `update`) run
//! on this thread alone, the passes also use the backend's worker threads (not counted here).
//! Prints the median of each phase in µs.

use burn::tensor::{Device, Int, Tensor, TensorData};
use flatmin::{Batch, Pass};
use flatmin_lab::bench::variant;
use flatmin_lab::cputime::{Clock, cpu_time};
use flatmin_lab::models::{Classifier, InputShape, Mlp, ResNetStack, SmallCnn};

/// CPU time of the calling thread, in µs (NaN off Linux).
fn thread_cpu_us() -> f64 {
    cpu_time(Clock::Thread).map_or(f64::NAN, |s| s * 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map_or("mlp", String::as_str);
    let optimizer = args.get(2).map_or("sam", String::as_str);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(40);
    let device = Device::flex().autodiff();
    device.seed(0);
    let mnist = InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };
    let cifar = InputShape {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    };
    match model {
        "mlp" => run(Mlp::new(mnist, &device), mnist, &device, optimizer, steps),
        "cnn" => run(SmallCnn::new(mnist, &device), mnist, &device, optimizer, steps),
        _ => run(ResNetStack::new(cifar, &device), cifar, &device, optimizer, steps),
    }
}

fn run<M: Classifier>(mut model: M, shape: InputShape, device: &Device, optimizer: &str, steps: usize) {
    let n = 128;
    let per = shape.channels * shape.height * shape.width;
    let pixels: Vec<f32> = (0..n * per).map(|i| ((i * 7919 % 997) as f32 / 997.0) - 0.5).collect();
    let x: Tensor<4> = Tensor::from_data(
        TensorData::new(pixels, [n, shape.channels, shape.height, shape.width]),
        device,
    );
    let y: Tensor<1, Int> = Tensor::from_data(TensorData::new((0..n).map(|i| (i % 10) as i64).collect(), [n]), device);
    flatmin::keep_freed_memory();
    let mut optim = variant(optimizer, 0).expect("preset");
    let losses =
        |m: &M, b: Batch| flatmin::per_sample_cross_entropy(m.forward(b.rows(x.clone())), b.rows_int(y.clone()));
    let mut with_pass = |m: &M, b: Batch<'_>, _: Pass| losses(m, b);
    let names = [
        "first pass",
        "perturb + selection",
        "second pass",
        "update",
        "one-call step (thread CPU)",
    ];
    let mut phases: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for s in 0..steps + 3 {
        let mut t = vec![thread_cpu_us()];
        // The phases one by one, as the one-call step runs them.
        let first = optim.begin(0.01, &model);
        let input = first.run(None, &mut with_pass).expect("finite first pass");
        t.push(thread_cpu_us());
        let ascent = optim
            .ascend(&model, first, input)
            .expect("finite gradient")
            .ascent()
            .expect("a SAM step");
        let ascent = ascent.select_with(None, &mut with_pass).expect("selection");
        t.push(thread_cpu_us());
        let second = ascent
            .second_forward(None, |m| m.clone(), &mut with_pass)
            .expect("finite second pass")
            .backward();
        t.push(thread_cpu_us());
        let update = ascent.second_pass(second).expect("finite second gradient");
        let (next, report) = optim.finish(model, update);
        report.expect("finite step");
        t.push(thread_cpu_us());
        // The one-call step, whole.
        let (next, report) = optim.step(0.01, next, losses);
        report.expect("finite step");
        t.push(thread_cpu_us());
        model = next;
        if s >= 3 {
            for (k, w) in t.windows(2).enumerate() {
                phases[k].push(w[1] - w[0]);
            }
        }
    }
    let line: Vec<String> = names
        .iter()
        .zip(phases)
        .map(|(name, mut v)| {
            v.sort_by(f64::total_cmp);
            format!("{name} {:.0}", v.get(v.len() / 2).copied().unwrap_or(f64::NAN))
        })
        .collect();
    println!(
        "{optimizer} on {}: median µs per phase: {}",
        std::any::type_name::<M>().rsplit("::").next().unwrap_or("model"),
        line.join(" | ")
    );
}
