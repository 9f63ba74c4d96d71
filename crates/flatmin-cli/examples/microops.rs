use burn::tensor::{Device, Tensor, TensorData};
use std::time::Instant;

fn t<F: FnMut()>(name: &str, reps: usize, mut f: F) {
    for _ in 0..3 {
        f();
    }
    let mut v = Vec::new();
    for _ in 0..reps {
        let s = Instant::now();
        f();
        v.push(s.elapsed().as_secs_f64() * 1e6);
    }
    v.sort_by(f64::total_cmp);
    println!("{name:40} median {:8.1} us  min {:8.1}", v[reps / 2], v[0]);
}

fn main() {
    let device = Device::flex();
    let n = 200704usize;
    let a: Tensor<1> = Tensor::from_data(
        TensorData::new((0..n).map(|i| (i as f32).sin()).collect::<Vec<_>>(), [n]),
        &device,
    );
    let b: Tensor<1> = Tensor::from_data(
        TensorData::new((0..n).map(|i| (i as f32).cos()).collect::<Vec<_>>(), [n]),
        &device,
    );
    let reps = 200;
    t("square().sum()", reps, || {
        let _ = a.clone().square().sum().into_data();
    });
    t("(a*b).sum()", reps, || {
        let _ = (a.clone() * b.clone()).sum().into_data();
    });
    t("matmul dot a.a", reps, || {
        let _ = a.clone().reshape([1, n]).matmul(a.clone().reshape([n, 1])).into_data();
    });
    t("matmul dot a.b", reps, || {
        let _ = a.clone().reshape([1, n]).matmul(b.clone().reshape([n, 1])).into_data();
    });
    t("matmul [2,n]x[n,1] (stacked)", reps, || {
        let s = Tensor::cat(vec![a.clone().reshape([1, n]), b.clone().reshape([1, n])], 0);
        let _ = s.matmul(a.clone().reshape([n, 1])).into_data();
    });
    t("mul_scalar alloc", reps, || {
        let _ = a.clone().mul_scalar(0.5);
    });
    t("a + b alloc", reps, || {
        let _ = a.clone() + b.clone();
    });
    t("mul_scalar in place (unique)", reps, || {
        let c = a.clone().mul_scalar(1.0);
        let _ = c.mul_scalar(0.5);
    });
    t("clone-copy only (mul 1.0)", reps, || {
        let _ = a.clone().mul_scalar(1.0);
    });
    t("into_data shared", reps, || {
        let _ = a.clone().into_data();
    });
    t("cat 4 scalars + into_data", reps, || {
        let s: Vec<Tensor<1>> = (0..4).map(|_| a.clone().narrow(0, 0, 1)).collect();
        let _ = Tensor::cat(s, 0).sum().into_data();
    });
    t("sum() only", reps, || {
        let _ = a.clone().sum();
    });
    t("sum().into_data", reps, || {
        let _ = a.clone().sum().into_data();
    });
    t("square only", reps, || {
        let _ = a.clone().square();
    });
    t("a*a alloc", reps, || {
        let _ = a.clone() * a.clone();
    });
    t("(a*a).sum", reps, || {
        let _ = (a.clone() * a.clone()).sum();
    });
    let m: Tensor<2> = a.clone().reshape([784 / 4 * 4, n / 784]);
    t("2d reshape flat", reps, || {
        let _ = m.clone().reshape([n]);
    });
}
