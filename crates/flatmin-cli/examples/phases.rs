use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use flatmin::{Batch, Layout, SamConfig};
use flatmin_lab::models::{Classifier, InputShape, Mlp, SmallCnn};
use std::time::Instant;

fn main() {
    let which = std::env::args().nth(1).unwrap_or("mlp".into());
    let opt = std::env::args().nth(2).unwrap_or("sam".into());
    let device = Device::flex().autodiff();
    device.seed(0);
    let shape = InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };
    if which == "mlp" {
        run(Mlp::new(shape, &device), &device, &opt)
    } else {
        run(SmallCnn::new(shape, &device), &device, &opt)
    }
}

fn run<M: Classifier>(mut model: M, device: &Device, opt: &str) {
    let n = 128;
    let x: Tensor<4> = Tensor::from_data(
        TensorData::new(
            (0..n * 784).map(|i| ((i % 97) as f32 / 97.0) - 0.5).collect::<Vec<_>>(),
            [n, 1, 28, 28],
        ),
        device,
    );
    let y: Tensor<1, Int> = Tensor::from_data(
        TensorData::new((0..n).map(|i| (i % 10) as i64).collect::<Vec<_>>(), [n]),
        device,
    );
    let mut optim = SamConfig::preset(opt, SamConfig::sgd_base(0.9, 5e-4))
        .unwrap()
        .init()
        .unwrap();
    let loss = |m: &M| flatmin::per_sample_cross_entropy(m.forward(x.clone()), y.clone()).mean();
    let mut acc: Vec<Vec<f64>> = vec![Vec::new(); 8];
    let steps = 60;
    for s in 0..steps + 5 {
        if std::env::var("ONLY_STEP").is_ok() {
            let t6 = Instant::now();
            let (m, r) = optim.step(0.01, model, |m: &M, b: Batch| {
                flatmin::per_sample_cross_entropy(m.forward(b.rows(x.clone())), b.rows_int(y.clone()))
            });
            r.unwrap();
            model = m;
            if s >= 5 {
                acc[6].push(t6.elapsed().as_secs_f64() * 1e6);
                acc[7].push(optim.last_timings().optimizer() * 1e6);
                for a in acc.iter_mut().take(6) {
                    a.push(0.0);
                }
            }
            continue;
        }
        let t0 = Instant::now();
        let layout = Layout::of(&model);
        let t1 = Instant::now();
        let first = optim.first_pass_model(&model);
        let t2 = Instant::now();
        let l = loss(&first);
        let grads = GradientsParams::from_grads(l.backward(), &first);
        drop(first);
        let t3 = Instant::now();
        let ascent = optim.perturb(0.01, &model, &grads).unwrap();
        drop(grads);
        let t4 = Instant::now();
        let lp = loss(ascent.model());
        let grads_p = GradientsParams::from_grads(lp.backward(), ascent.model());
        let t5 = Instant::now();
        let (m, r) = optim.update(0.01, model, ascent, &grads_p);
        r.unwrap();
        model = m;
        let t6 = Instant::now();
        let (m, r) = optim.step(0.01, model, |m: &M, b: Batch| {
            flatmin::per_sample_cross_entropy(m.forward(b.rows(x.clone())), b.rows_int(y.clone()))
        });
        r.unwrap();
        model = m;
        let t7 = Instant::now();
        let _ = layout;
        if s >= 5 {
            let d = [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6];
            for (a, d) in acc.iter_mut().zip(d) {
                a.push(d.as_secs_f64() * 1e6);
            }
            acc[7].push(optim.last_timings().optimizer() * 1e6);
        }
    }
    let acc: Vec<f64> = acc
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    println!(
        "medians: layout {:.0} first_pass_model {:.0} pass1 {:.0} perturb {:.0} pass2 {:.0} update {:.0} | one-call step {:.0} (optimizer {:.0}) us",
        acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]
    );
}
