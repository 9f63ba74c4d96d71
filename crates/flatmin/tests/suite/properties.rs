//! Property tests: random small models (one to three float64 parameter tensors of random shapes),
//! random finite weights and per-sample quadratic losses (so random finite gradients), and random
//! valid settings of every perturbation, selection, combination and base optimizer.
//!
//! * a step from finite input is finite (never NaN), and always taken;
//! * `perturb` leaves the original weights bitwise untouched in every variant, and the update
//!   starts from them;
//! * the equivalences of docs/ALGORITHMS.md §12.2 hold: bitwise where it says bitwise, within
//!   a relative 1e-12 where it says "up to rounding".
//!
//! The case count is modest so that CI stays fast; `PROPTEST_CASES=N` runs more, and
//! `PROPTEST_RNG_SEED=S` another fixed seed (the default seed is fixed, so CI is repeatable).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};
use flatmin::{
    AdamConfig, BaseConfig, Batch, Combination, FriendlyConfig, Geometry, RhoSchedule, SamConfig, Selection,
    SelectionRule, SgdConfig, SwpConfig, SwpGranularity,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// Samples per batch of the per-sample losses.
const BATCH: usize = 4;
/// Steps per trajectory.
const STEPS: usize = 3;

/// A model of random shape: one or two weight matrices and maybe a bias vector (so official
/// ASAM sees tensors it scales and one it does not).
#[derive(Module, Debug)]
struct Net {
    weight: Vec<Param<Tensor<2>>>,
    bias: Option<Param<Tensor<1>>>,
}

/// A random problem: shapes, weights, and per-sample coefficients of
/// `ℓ_j(w) = Σ c_j ⊙ w + ½ a_j ⊙ w²`, whose gradient is `c_j + a_j ⊙ w`.
#[derive(Debug, Clone)]
struct Problem {
    shapes: Vec<[usize; 2]>,
    bias: Option<usize>,
    w: Vec<f64>,
    c: Vec<f64>,
    a: Vec<f64>,
    lr: f64,
}

fn device() -> Device {
    Device::flex().autodiff()
}

impl Problem {
    fn sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self.shapes.iter().map(|[r, c]| r * c).collect();
        sizes.extend(self.bias);
        sizes
    }

    fn model(&self, device: &Device) -> Net {
        let mut offset = 0;
        let mut take = |n: usize| {
            let values = self.w[offset..offset + n].to_vec();
            offset += n;
            values
        };
        let weight = self
            .shapes
            .iter()
            .map(|&[r, c]| {
                Param::from_tensor(Tensor::from_data(
                    TensorData::new(take(r * c), [r, c]),
                    (device, DType::F64),
                ))
            })
            .collect();
        let bias = self
            .bias
            .map(|n| Param::from_tensor(Tensor::from_data(TensorData::new(take(n), [n]), (device, DType::F64))));
        Net { weight, bias }
    }

    /// The per-sample losses of the requested samples, `[n]`.
    fn losses(&self, net: &Net, batch: Batch) -> Tensor<1> {
        let device = net.weight[0].val().device();
        let total: usize = self.sizes().iter().sum();
        let mut flat: Vec<Tensor<1>> = net.weight.iter().map(|p| p.val().flatten(0, 1)).collect();
        flat.extend(net.bias.iter().map(|p| p.val()));
        let mut offset = 0;
        let mut sum: Option<Tensor<2>> = None;
        for w in flat {
            let n = w.dims()[0];
            let coeff = |src: &[f64]| {
                let rows: Vec<f64> = (0..BATCH)
                    .flat_map(|j| src[j * total + offset..j * total + offset + n].to_vec())
                    .collect();
                Tensor::<2>::from_data(TensorData::new(rows, [BATCH, n]), (&device, DType::F64))
            };
            let (c, a) = (coeff(&self.c), coeff(&self.a));
            let w = w.reshape([1, n]);
            let term = (c * w.clone() + (a * w.clone() * w).mul_scalar(0.5)).sum_dim(1);
            sum = Some(match sum {
                Some(s) => s + term,
                None => term,
            });
            offset += n;
        }
        batch.rows(sum.expect("a tensor").reshape([BATCH]))
    }
}

/// Every weight of `net`, flat, in parameter order.
fn values(net: &Net) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for p in &net.weight {
        out.extend(p.val().into_data().iter::<f64>());
    }
    if let Some(p) = &net.bias {
        out.extend(p.val().into_data().iter::<f64>());
    }
    out
}

/// The gradients of `loss` for `net`'s parameters; none when ESAM's per-tensor mask left every
/// tensor out of the first pass (nothing is tracked, so there is nothing to differentiate).
/// The two-step API's selection (ESAM): the per-sample losses at `w` (on the first-pass model)
/// and at `w + e`, without gradients.
fn select_if_needed(
    optim: &mut flatmin::Sam,
    ascent: &mut flatmin::Ascent<Net>,
    problem: &Problem,
    first: &Net,
) -> Result<(), TestCaseError> {
    if optim.needs_sample_losses() {
        let read = |t: Tensor<1>| t.into_data().iter::<f64>().collect::<Vec<f64>>();
        let before = read(problem.losses(first, Batch::All));
        let after = read(problem.losses(&flatmin::bridge::untracked(ascent.model()), Batch::All));
        optim
            .select(ascent, &before, &after)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(())
}

fn grads_of(loss: Tensor<1>, net: &Net) -> GradientsParams {
    let tracked = net.weight.iter().any(|p| p.val().is_require_grad())
        || net.bias.as_ref().is_some_and(|p| p.val().is_require_grad());
    if tracked {
        GradientsParams::from_grads(loss.backward(), net)
    } else {
        GradientsParams::new()
    }
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// The weights after each of `STEPS` one-call steps, or the first error.
fn trajectory(problem: &Problem, config: &SamConfig) -> Result<Vec<Vec<f64>>, String> {
    let device = device();
    let mut optim = config.init().map_err(|e| e.to_string())?;
    let mut net = problem.model(&device);
    let mut out = Vec::with_capacity(STEPS);
    for step in 0..STEPS {
        let (next, report) = optim.step(problem.lr, net, |m: &Net, b: Batch| problem.losses(m, b));
        net = next;
        let report = report.map_err(|e| format!("step {step}: {e}"))?;
        for (what, v) in [
            ("grad_norm", report.grad_norm),
            ("grad_perturbed_norm", report.grad_perturbed_norm),
            ("perturbation_norm", report.perturbation_norm),
            ("cosine", report.cosine),
            ("rho", report.rho),
            ("loss", report.loss.unwrap_or(0.0)),
            ("loss_perturbed", report.loss_perturbed.unwrap_or(0.0)),
        ] {
            if !v.is_finite() {
                return Err(format!("step {step}: {what} = {v}"));
            }
        }
        out.push(values(&net));
    }
    Ok(out)
}

fn problem() -> impl Strategy<Value = Problem> {
    let shapes = prop::collection::vec((1usize..=3, 1usize..=3).prop_map(|(r, c)| [r, c]), 1..=2);
    let bias = prop::option::of(1usize..=3);
    (shapes, bias)
        .prop_flat_map(|(shapes, bias)| {
            let n: usize = shapes.iter().map(|[r, c]| r * c).sum::<usize>() + bias.unwrap_or(0);
            // Sometimes a zero linear term at w = 0: an exactly zero gradient.
            let zero = prop::bool::weighted(0.1);
            (
                Just(shapes),
                Just(bias),
                prop::collection::vec(-2.0f64..2.0, n),
                prop::collection::vec(-2.0f64..2.0, n * BATCH),
                prop::collection::vec(-1.0f64..3.0, n * BATCH),
                prop_oneof![Just(0.1), 1e-3f64..0.5],
                zero,
            )
        })
        .prop_map(|(shapes, bias, w, c, a, lr, zero)| {
            let (w, c) = if zero {
                (vec![0.0; w.len()], vec![0.0; c.len()])
            } else {
                (w, c)
            };
            Problem {
                shapes,
                bias,
                w,
                c,
                a,
                lr,
            }
        })
}

fn base() -> impl Strategy<Value = BaseConfig> {
    let momentum = prop_oneof![Just(0.0), 0.0f64..0.95];
    let sgd = (
        momentum,
        any::<bool>(),
        prop_oneof![Just(0.0), 0.0f64..0.5],
        prop_oneof![Just(0.0), 0.0f64..0.1],
    )
        .prop_map(|(momentum, nesterov, dampening, wd)| {
            let nesterov = nesterov && momentum > 0.0;
            BaseConfig::Sgd(
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_nesterov(nesterov)
                    .with_dampening(if nesterov { 0.0 } else { dampening })
                    .with_weight_decay(wd),
            )
        });
    let adam = (
        0.0f64..0.95,
        0.9f64..0.9999,
        prop_oneof![Just(0.0), 0.0f64..0.1],
        any::<bool>(),
    )
        .prop_map(|(b1, b2, wd, decoupled)| {
            BaseConfig::Adam(
                AdamConfig::new()
                    .with_beta1(b1)
                    .with_beta2(b2)
                    .with_weight_decay(wd)
                    .with_decoupled_weight_decay(decoupled),
            )
        });
    prop_oneof![sgd, adam]
}

fn geometry() -> impl Strategy<Value = Geometry> {
    prop_oneof![
        Just(Geometry::Euclidean),
        Just(Geometry::AdaptiveSquared),
        prop_oneof![Just(0.0), 0.0f64..0.1].prop_map(|eta| Geometry::Asam { eta }),
        prop_oneof![Just(0.0), 0.0f64..2.0].prop_map(|eta| Geometry::Fisher { eta }),
    ]
}

fn friendly() -> impl Strategy<Value = Option<FriendlyConfig>> {
    prop::option::of(
        (0.0f64..1.5, 0.0f64..0.99, any::<bool>()).prop_map(|(sigma, lambda, then)| {
            FriendlyConfig::new()
                .with_sigma(sigma)
                .with_lambda(lambda)
                .with_update_then_subtract(then)
        }),
    )
}

fn granularity() -> impl Strategy<Value = SwpGranularity> {
    prop_oneof![Just(SwpGranularity::PerTensor), Just(SwpGranularity::PerElement)]
}

fn swp() -> impl Strategy<Value = Option<SwpConfig>> {
    prop::option::of(
        (prop_oneof![Just(1.0), 0.1f64..1.0], granularity(), any::<u64>()).prop_map(|(beta, granularity, seed)| {
            SwpConfig::new()
                .with_beta(beta)
                .with_granularity(granularity)
                .with_seed(seed)
        }),
    )
}

fn rule() -> impl Strategy<Value = SelectionRule> {
    prop_oneof![Just(SelectionRule::TopK), Just(SelectionRule::OfficialStrict)]
}

fn selection() -> impl Strategy<Value = Selection> {
    prop_oneof![
        Just(Selection::All),
        (prop_oneof![Just(1.0), 0.2f64..1.0], rule())
            .prop_map(|(gamma, rule)| Selection::SharpnessSensitive { gamma, rule }),
    ]
}

fn combination() -> impl Strategy<Value = Combination> {
    prop_oneof![
        Just(Combination::Plain),
        (0.0f64..1.0).prop_map(|alpha| Combination::Gsam { alpha }),
        (0.0f64..0.95, any::<bool>(), prop::option::of(0.1f64..10.0)).prop_map(|(gamma, decoupled, max_norm)| {
            Combination::Wsam {
                gamma,
                decoupled,
                max_norm,
            }
        }),
    ]
}

fn rho() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.05), 1e-3f64..0.5]
}

fn schedule() -> impl Strategy<Value = Option<(f64, f64, f64)>> {
    // (ρ_min as a fraction of ρ, lr_min, lr_max − lr_min)
    prop::option::weighted(0.2, (0.0f64..1.0, 0.0f64..0.05, 0.01f64..0.5))
}

/// Any valid configuration of the whole family.
fn config() -> impl Strategy<Value = SamConfig> {
    (
        base(),
        prop_oneof![Just(0.0), rho()],
        schedule(),
        prop_oneof![Just(1e-12), 1e-12f64..1e-6],
        geometry(),
        friendly(),
        swp(),
        selection(),
        combination(),
    )
        .prop_map(
            |(base, rho, schedule, eps, geometry, friendly, swp, selection, combination)| {
                let rho_schedule = match schedule {
                    Some((fraction, lr_min, span)) => RhoSchedule::ProportionalToLr {
                        rho_min: rho * fraction,
                        lr_min,
                        lr_max: lr_min + span,
                    },
                    None => RhoSchedule::Constant,
                };
                SamConfig::new(base)
                    .with_rho(rho)
                    .with_rho_schedule(rho_schedule)
                    .with_eps(eps)
                    .with_geometry(geometry)
                    .with_friendly(friendly)
                    .with_swp(swp)
                    .with_selection(selection)
                    .with_combination(combination)
            },
        )
        .prop_filter("valid settings", |c| c.validate().is_ok())
}

fn runner_config() -> ProptestConfig {
    let mut config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if let Some(cases) = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()) {
        config.cases = cases;
    }
    if std::env::var("PROPTEST_RNG_SEED").is_err() {
        config.rng_seed = RngSeed::Fixed(0x5a4d_f1a7);
    }
    config
}

/// `a` and `b` equal within a relative 1e-12 (docs/ALGORITHMS.md §12.2: "up to rounding").
fn close(a: &[Vec<f64>], b: &[Vec<f64>]) -> Result<(), TestCaseError> {
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        let tol = 1e-12 * x.abs().max(y.abs()).max(1.0);
        prop_assert!((x - y).abs() <= tol, "{x} vs {y}: |Δ| = {:e}", (x - y).abs());
    }
    Ok(())
}

fn run(problem: &Problem, config: &SamConfig) -> Result<Vec<Vec<f64>>, TestCaseError> {
    trajectory(problem, config).map_err(|e| TestCaseError::fail(format!("{config:?}: {e}")))
}

proptest! {
    #![proptest_config(runner_config())]

    /// Finite weights and gradients give a finite step, taken (never skipped), in every variant.
    #[test]
    fn a_step_from_finite_input_is_finite(problem in problem(), config in config()) {
        let trajectory = run(&problem, &config)?;
        for w in &trajectory {
            prop_assert!(w.iter().all(|v| v.is_finite()), "{config:?}: {w:?}");
        }
    }

    /// `perturb` never writes the original weights; the ascent model holds `w + e`; the update
    /// is applied to the original weights.
    #[test]
    fn perturb_leaves_the_weights_bitwise_and_the_update_starts_from_them(
        problem in problem(),
        config in config(),
    ) {
        let device = device();
        let net = problem.model(&device);
        let before = bits(&values(&net));
        let mut optim = config.init().unwrap();
        let loss = |m: &Net| problem.losses(m, Batch::All).mean();
        let first = optim.first_pass_model(&net);
        let grads = grads_of(loss(&first), &first);
        let mut ascent = optim.perturb(problem.lr, &net, &grads).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&bits(&values(&net)), &before, "perturb changed the weights");
        let perturbed = values(ascent.model());
        if ascent.perturbation_norm() == 0.0 {
            prop_assert_eq!(bits(&perturbed), before.clone());
        }
        select_if_needed(&mut optim, &mut ascent, &problem, &first)?;
        let second = problem.losses(ascent.model(), ascent.request()).mean();
        let grads_p = GradientsParams::from_grads(second.backward(), ascent.model());
        let (updated, report) = optim.update(problem.lr, net, ascent, &grads_p);
        prop_assert!(report.is_ok(), "{report:?}");
        let after = values(&updated);
        prop_assert!(after.iter().all(|v| v.is_finite()));

        // With plain SGD and the plain combination the update is exactly `w − lr·g_p` from the
        // original `w`, whatever the perturbation was (one update of the same kind, rebuilt).
        let mut plain = config.clone().with_combination(Combination::Plain);
        plain.base = BaseConfig::Sgd(SgdConfig::new());
        let mut optim = plain.init().unwrap();
        let net = problem.model(&device);
        let first = optim.first_pass_model(&net);
        let grads = grads_of(loss(&first), &first);
        let mut ascent = optim.perturb(problem.lr, &net, &grads).map_err(|e| TestCaseError::fail(e.to_string()))?;
        select_if_needed(&mut optim, &mut ascent, &problem, &first)?;
        let model_p = ascent.model().clone();
        let grads_p = GradientsParams::from_grads(problem.losses(&model_p, ascent.request()).mean().backward(), &model_p);
        let mut gp: Vec<f64> = Vec::new();
        for p in &model_p.weight {
            gp.extend(grads_p.get::<2>(p.id).unwrap().into_data().iter::<f64>());
        }
        if let Some(p) = &model_p.bias {
            gp.extend(grads_p.get::<1>(p.id).unwrap().into_data().iter::<f64>());
        }
        let w = values(&net);
        let (updated, report) = optim.update(problem.lr, net, ascent, &grads_p);
        prop_assert!(report.is_ok());
        let expected: Vec<f64> = w.iter().zip(&gp).map(|(w, g)| w - g * problem.lr).collect();
        prop_assert_eq!(bits(&values(&updated)), bits(&expected));
    }

    /// E1 (docs/ALGORITHMS.md §12.2): ρ = 0 is the base optimizer (two passes with any perturbation, bitwise equal to
    /// the one-pass base step).
    #[test]
    fn rho_zero_is_the_base_optimizer(
        problem in problem(),
        base in base(),
        geometry in geometry(),
        friendly in friendly(),
        swp in swp(),
        coupled_half in any::<bool>(),
    ) {
        let erm = run(&problem, &SamConfig::new(base.clone()).with_rho(0.0))?;
        // A combination that is `g_p` itself (GSAM α = 0 or coupled WSAM γ = ½) keeps the
        // second pass, which the plain combination would skip at ρ = 0.
        let combination = if coupled_half {
            Combination::Wsam { gamma: 0.5, decoupled: false, max_norm: None }
        } else {
            Combination::Gsam { alpha: 0.0 }
        };
        let two_pass = SamConfig::new(base)
            .with_rho(0.0)
            .with_geometry(geometry)
            .with_friendly(friendly)
            .with_swp(swp)
            .with_combination(combination);
        prop_assert!(!two_pass.is_base_only());
        prop_assert_eq!(run(&problem, &two_pass)?, erm);
    }

    /// E7: F-SAM with σ = 0 is SAM, for any λ, bitwise.
    #[test]
    fn fsam_sigma_zero_is_sam(
        problem in problem(),
        config in config(),
        lambda in 0.0f64..0.99,
        then in any::<bool>(),
    ) {
        let sam = config.clone().with_friendly(None);
        let fsam = config.with_friendly(Some(
            FriendlyConfig::new().with_sigma(0.0).with_lambda(lambda).with_update_then_subtract(then),
        ));
        prop_assert_eq!(run(&problem, &fsam)?, run(&problem, &sam)?);
    }

    /// E3: coupled WSAM with γ = ½ (no clipping) is SAM for any base, bitwise.
    #[test]
    fn wsam_half_coupled_is_sam(problem in problem(), config in config()) {
        let sam = config.clone().with_combination(Combination::Plain);
        let wsam = config.with_combination(Combination::Wsam { gamma: 0.5, decoupled: false, max_norm: None });
        prop_assert_eq!(run(&problem, &wsam)?, run(&problem, &sam)?);
    }

    /// E5: WSAM with γ = 0 is the base optimizer, coupled or decoupled, bitwise.
    #[test]
    fn wsam_gamma_zero_is_the_base_optimizer(
        problem in problem(),
        config in config(),
        decoupled in any::<bool>(),
    ) {
        // ESAM's per-tensor mask leaves tensors without `g`; those take `g_p`, as SAM would.
        let config = match &config.swp {
            Some(s) if s.granularity == SwpGranularity::PerTensor => config.clone().with_swp(None),
            _ => config,
        };
        let erm = run(&problem, &SamConfig::new(config.base.clone()).with_rho(0.0))?;
        let wsam = config.with_combination(Combination::Wsam { gamma: 0.0, decoupled, max_norm: None });
        prop_assert_eq!(run(&problem, &wsam)?, erm);
    }

    /// E2: GSAM with α = 0 is SAM, bitwise.
    #[test]
    fn gsam_alpha_zero_is_sam(problem in problem(), config in config()) {
        let sam = config.clone().with_combination(Combination::Plain);
        let gsam = config.with_combination(Combination::Gsam { alpha: 0.0 });
        prop_assert_eq!(run(&problem, &gsam)?, run(&problem, &sam)?);
    }

    /// E8: ESAM with β = 1 and γ = 1 is SAM (both mask granularities, both rules, any
    /// seed), bitwise.
    #[test]
    fn esam_beta_one_gamma_one_is_sam(
        problem in problem(),
        config in config(),
        granularity in granularity(),
        rule in rule(),
        seed in any::<u64>(),
    ) {
        let sam = config.clone().with_swp(None).with_selection(Selection::All);
        let esam = config
            .with_swp(Some(SwpConfig::new().with_beta(1.0).with_granularity(granularity).with_seed(seed)))
            .with_selection(Selection::SharpnessSensitive { gamma: 1.0, rule });
        prop_assert_eq!(run(&problem, &esam)?, run(&problem, &sam)?);
    }

    /// E9: Fisher-SAM with η = 0 is SAM (Euclidean) up to rounding.
    #[test]
    fn fisher_eta_zero_is_sam_up_to_rounding(problem in problem(), config in config()) {
        // A selection could flip on a near tie under rounding; the equivalence is about `e`.
        let config = config.with_selection(Selection::All);
        let sam = config.clone().with_geometry(Geometry::Euclidean);
        let fisher = config.with_geometry(Geometry::Fisher { eta: 0.0 });
        close(&run(&problem, &fisher)?, &run(&problem, &sam)?)?;
    }
}
