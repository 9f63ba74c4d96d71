//! The one-call step lets `g` go before the second pass when nothing but the report needs it
//! (SAM and per-tensor ESAM with the plain combination) and measures the report's cosine on
//! `e = (w + e) − w` instead: the weights are those of the two-step API, which keeps `g`, bit
//! for bit, and the cosine agrees to rounding.

use crate::common::*;
use flatmin::{Batch, SamConfig};

const STEPS: usize = 4;
const LR: f64 = 0.1;

fn two_step(config: &SamConfig) -> (Vec<Vec<f64>>, Vec<f64>) {
    let device = device();
    let data = Data::new(5, &device);
    let mut optim = config.init().unwrap();
    let mut model = Mlp::new(2, &device);
    let (mut params, mut cosines) = (Vec::new(), Vec::new());
    let loss = |m: &Mlp| data.losses(m, Batch::All).mean();
    for _ in 0..STEPS {
        let update = update_from_gradients(&optim, LR, &model, loss);
        let (next, report) = optim.finish(model, update);
        model = next;
        cosines.push(report.unwrap().cosine.expect("measured"));
        params.push(model.flat());
    }
    (params, cosines)
}

fn one_call(config: &SamConfig) -> (Vec<Vec<f64>>, Vec<f64>) {
    let device = device();
    let data = Data::new(5, &device);
    let mut optim = config.init().unwrap();
    let (_, params, reports) = train(&mut optim, Mlp::new(2, &device), &data, STEPS, LR);
    (params, reports.iter().map(|r| r.cosine.expect("measured")).collect())
}

#[test]
fn the_cosine_from_e_is_the_cosine_from_g_and_the_weights_are_unchanged() {
    let base = SamConfig::sgd_base(0.9, 5e-4);
    // SAM, and ESAM's per-tensor mask without selection (the two-step API's passes above use
    // every sample); the report's cosine is measured on request.
    let esam = without_selection(SamConfig::preset("esam", base.clone()).unwrap());
    for config in [SamConfig::preset("sam", base).unwrap(), esam] {
        let config = config.with_measure(true);
        let (w2, c2) = two_step(&config);
        let (w1, c1) = one_call(&config);
        assert_eq!(bits(&w1), bits(&w2), "{config:?}");
        for (a, b) in c1.iter().zip(&c2) {
            assert!(b.abs() > 1e-3, "a cosine worth comparing: {b}");
            assert!((a - b).abs() < 1e-9, "{a} vs {b} ({config:?})");
        }
        // Measuring changes no weight.
        let device = device();
        let data = Data::new(5, &device);
        let mut optim = config.clone().with_measure(false).init().unwrap();
        let (_, w0, reports) = train(&mut optim, Mlp::new(2, &device), &data, STEPS, LR);
        assert!(reports.iter().all(|r| r.cosine.is_none()));
        assert_eq!(bits(&w0), bits(&w1), "{config:?}");
    }
}
