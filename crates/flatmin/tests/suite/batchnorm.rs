//! BatchNorm running statistics come from the first pass only, in both APIs.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use flatmin::{Batch, Next, SamConfig};

use crate::common::without_selection;

#[derive(Module, Debug)]
struct Net {
    linear: Linear,
    norm: BatchNorm,
}

impl Net {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.norm.forward(self.linear.forward(x))
    }
}

fn setup() -> (Net, Tensor<2>) {
    let device = Device::flex().autodiff();
    let net = Net {
        linear: LinearConfig::new(5, 4).init(&device),
        norm: BatchNormConfig::new(4).init(&device),
    };
    let x = Tensor::<2>::random([16, 5], Distribution::Normal(3.0, 2.0), &device);
    (net, x)
}

fn running_mean(net: &Net) -> Vec<f32> {
    net.valid()
        .norm
        .running_mean
        .value()
        .into_data()
        .iter::<f32>()
        .collect()
}

/// The running mean after exactly one training-mode forward pass of `net` on `x`.
fn after_one_forward(net: &Net, x: &Tensor<2>) -> Vec<f32> {
    let copy = net.valid().train();
    let _ = copy.forward(x.clone());
    running_mean(&copy)
}

#[test]
fn one_call_step_updates_running_stats_once() {
    let (net, x) = setup();
    let expected = after_one_forward(&net, &x);
    let initial = running_mean(&net);
    let mut optim = SamConfig::preset("sam", SamConfig::sgd_base(0.9, 0.0))
        .unwrap()
        .with_rho(0.5)
        .init()
        .unwrap();
    let (net, report) = optim.step(0.1, net, |m: &Net, _b: Batch| m.forward(x.clone()).square().mean());
    report.unwrap();
    let got = running_mean(&net);
    assert_ne!(got, initial, "the first pass must update the statistics");
    assert_eq!(got, expected, "the second pass must not touch them");
}

/// For every preset, each of two steps leaves the statistics of exactly one forward pass of the
/// preset's own first-pass model (`FirstPass::model`: the model itself, ESAM's masked view,
/// bSAM's noisy weights, MSAM's point along the momentum on the second step) — never the second
/// pass's, and never none (bSAM's noisy pass once updated a copy's).
#[test]
fn every_preset_updates_running_stats_once_from_its_first_pass() {
    let (net, x) = setup();
    let initial = running_mean(&net);
    for name in flatmin::PRESETS {
        // The losses here are not per sample: ESAM's selection is left out.
        let config = without_selection(SamConfig::preset(name, SamConfig::sgd_base(0.9, 0.0)).unwrap())
            .with_rho(0.5)
            .for_run(2, 16);
        let mut optim = config.init().unwrap();
        let mut stepped = net.valid().train();
        let mut before = initial.clone();
        for k in 0..2 {
            // The same draws as the step's: `begin` changes nothing in the optimizer, so the
            // step begun next draws what this one drew. On a copy.
            let copy = stepped.valid().train();
            let first = optim.begin(0.1, &copy);
            let _ = first.model().forward(x.clone());
            drop(first);
            let expected = running_mean(&copy);

            let (next, report) = optim.step(0.1, stepped, |m: &Net, _b: Batch| m.forward(x.clone()).square().mean());
            report.unwrap_or_else(|e| panic!("{name}: step {k}: {e}"));
            stepped = next;
            let got = running_mean(&stepped);
            assert_ne!(
                got, before,
                "{name}: step {k}: the first pass must update the statistics"
            );
            assert_eq!(got, expected, "{name}: step {k}: once, from the first-pass model");
            before = got;
        }
    }
}

#[test]
fn two_step_api_keeps_the_perturbed_pass_out_of_the_statistics() {
    let (net, x) = setup();
    let expected = after_one_forward(&net, &x);
    // ESAM's per-tensor mask, without its selection (the losses here are not per sample).
    let mut optim = without_selection(SamConfig::preset("esam", SamConfig::sgd_base(0.9, 0.0)).unwrap())
        .with_rho(0.5)
        .init()
        .unwrap();
    let first = optim.begin(0.1, &net);
    let grads = GradientsParams::from_grads(
        first.model().forward(x.clone()).square().mean().backward(),
        first.model(),
    );
    let Next::Ascent(ascent) = optim.ascend(&net, first, grads).unwrap() else {
        panic!("ESAM runs the second pass");
    };
    for _ in 0..3 {
        let _ = ascent.model().forward(x.clone());
    }
    let grads_p = GradientsParams::from_grads(
        ascent.model().forward(x.clone()).square().mean().backward(),
        ascent.model(),
    );
    let update = ascent.second_pass(grads_p).unwrap();
    let (net, report) = optim.finish(net, update);
    report.unwrap();
    assert_eq!(running_mean(&net), expected);
}

#[test]
fn perturbation_leaves_the_original_weights_bitwise() {
    let (net, x) = setup();
    let before: Vec<f32> = net.linear.weight.val().into_data().iter::<f32>().collect();
    let optim = SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0))
        .unwrap()
        .init()
        .unwrap();
    let first = optim.begin(0.1, &net);
    let grads = GradientsParams::from_grads(
        first.model().forward(x.clone()).square().mean().backward(),
        first.model(),
    );
    let ascent = optim.ascend(&net, first, grads).unwrap().ascent().expect("SAM ascends");
    let after: Vec<f32> = net.linear.weight.val().into_data().iter::<f32>().collect();
    let perturbed: Vec<f32> = ascent.model().linear.weight.val().into_data().iter::<f32>().collect();
    assert_eq!(before, after);
    assert_ne!(before, perturbed);
    // The perturbed copy keeps the parameters trainable with the same ids.
    assert!(ascent.model().linear.weight.val().is_require_grad());
    assert_eq!(ascent.model().linear.weight.id, net.linear.weight.id);
}
