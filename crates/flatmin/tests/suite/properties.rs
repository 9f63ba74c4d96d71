//! Property tests: random small models (one to three float64 parameter tensors of random shapes),
//! random finite weights and per-sample quadratic losses (so random finite gradients), and random
//! valid settings of every perturbation (geometry, direction, mask), selection, combination and
//! base optimizer, with and without the report's measures.
//!
//! * a step from finite input is finite (never NaN), and always taken;
//! * the ascent (`Sam::ascend`) leaves the original weights bitwise untouched in every variant,
//!   and the update starts from them;
//! * the equivalences of crates/flatmin/ALGORITHMS.md §12.2 hold: bitwise where it says bitwise, within
//!   a relative 1e-12 where it says "up to rounding".
//!
//! The case count is modest so that CI stays fast; `PROPTEST_CASES=N` runs more, and
//! `PROPTEST_RNG_SEED=S` another fixed seed (the default seed is fixed, so CI is repeatable).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};
use flatmin::{
    AdamBaseConfig, AsamConfig, BaseConfig, Batch, FisherConfig, FriendlyConfig, GsamConfig, Member, Next, PassInput,
    RhoSchedule, SamConfig, SelectionConfig, SelectionRule, SgdBaseConfig, SquaredAsamConfig, SwpConfig,
    SwpGranularity, UnifiedConfig, UnifiedLambda, WsamConfig,
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

/// The gradients of `loss` for `net`'s parameters; none when no parameter of `net` tracks a
/// gradient (nothing to differentiate).
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
fn trajectory(problem: &Problem, family: &Family) -> Result<Vec<Vec<f64>>, String> {
    let config = family.config();
    let device = device();
    let mut optim = config.init().map_err(|e| e.to_string())?;
    let mut net = problem.model(&device);
    let mut out = Vec::with_capacity(STEPS);
    for step in 0..STEPS {
        let (next, report) = optim.step(problem.lr, net, |m: &Net, b: Batch| problem.losses(m, b));
        net = next;
        let report = report.map_err(|e| format!("step {step}: {e}"))?;
        if report.cosine.is_some() != config.measure {
            return Err(format!(
                "step {step}: cosine {:?} with measure = {}",
                report.cosine, config.measure
            ));
        }
        for (what, v) in [
            ("grad_norm", report.grad_norm),
            ("grad_perturbed_norm", report.grad_perturbed_norm),
            ("perturbation_norm", report.perturbation_norm),
            ("cosine", report.cosine.unwrap_or(0.0)),
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
                SgdBaseConfig::new()
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
        any::<bool>(),
    )
        .prop_map(|(b1, b2, wd, decoupled, after)| {
            BaseConfig::Adam(
                AdamBaseConfig::new()
                    .with_beta1(b1)
                    .with_beta2(b2)
                    .with_weight_decay(wd)
                    .with_decoupled_weight_decay(decoupled)
                    .with_decay_after_step(after),
            )
        });
    prop_oneof![sgd, adam]
}

/// The ball (SAM's Euclidean ball when `None`).
fn geometry() -> impl Strategy<Value = Option<Member>> {
    let lambda = prop_oneof![
        prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0].prop_map(|lambda| UnifiedLambda::Constant { lambda }),
        Just(UnifiedLambda::InverseT),
        Just(UnifiedLambda::OneMinusInverseT),
    ];
    prop_oneof![
        Just(None),
        Just(Some(SquaredAsamConfig::new().into())),
        prop_oneof![Just(0.0), 0.0f64..0.1].prop_map(|eta| Some(AsamConfig::new().with_eta(eta).into())),
        prop_oneof![Just(0.0), 0.0f64..2.0].prop_map(|eta| Some(FisherConfig::new().with_eta(eta).into())),
        lambda.prop_map(|lambda| Some(UnifiedConfig::new().with_lambda(lambda).into())),
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

/// ESAM's selection (every sample when `None`).
fn selection() -> impl Strategy<Value = Option<SelectionConfig>> {
    prop_oneof![
        Just(None),
        (prop_oneof![Just(1.0), 0.2f64..1.0], rule())
            .prop_map(|(gamma, rule)| Some(SelectionConfig::new().with_gamma(gamma).with_rule(rule))),
    ]
}

/// How `g` and `g_p` combine (plain `g_p` when `None`).
fn combination() -> impl Strategy<Value = Option<Member>> {
    prop_oneof![
        Just(None),
        (0.0f64..1.0).prop_map(|alpha| Some(GsamConfig::new().with_alpha(alpha).into())),
        (0.0f64..0.95, any::<bool>(), prop::option::of(0.1f64..10.0)).prop_map(|(gamma, decoupled, max_norm)| {
            Some(
                WsamConfig::new()
                    .with_gamma(gamma)
                    .with_decoupled(decoupled)
                    .with_max_norm(max_norm)
                    .into(),
            )
        }),
    ]
}

fn wsam(gamma: f64, decoupled: bool) -> Option<Member> {
    Some(
        WsamConfig::new()
            .with_gamma(gamma)
            .with_decoupled(decoupled)
            .with_max_norm(None)
            .into(),
    )
}

fn rho() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.05), 1e-3f64..0.5]
}

fn schedule() -> impl Strategy<Value = Option<(f64, f64, f64)>> {
    // (ρ_min as a fraction of ρ, lr_min, lr_max − lr_min)
    prop::option::weighted(0.2, (0.0f64..1.0, 0.0f64..0.05, 0.01f64..0.5))
}

/// A configuration of the whole family, one field per room, so that a test can change one room
/// and build again.
#[derive(Debug, Clone)]
struct Family {
    base: BaseConfig,
    rho: f64,
    rho_schedule: RhoSchedule,
    eps: f64,
    geometry: Option<Member>,
    friendly: Option<FriendlyConfig>,
    swp: Option<SwpConfig>,
    selection: Option<SelectionConfig>,
    combination: Option<Member>,
    measure: bool,
}

impl Family {
    fn config(&self) -> SamConfig {
        let mut config = SamConfig::new(self.base.clone())
            .with_rho(self.rho)
            .with_rho_schedule(self.rho_schedule.clone())
            .with_eps(self.eps)
            .with_measure(self.measure);
        let members: [Option<Member>; 5] = [
            self.geometry.clone(),
            self.friendly.clone().map(Member::from),
            self.swp.clone().map(Member::from),
            self.selection.clone().map(Member::from),
            self.combination.clone(),
        ];
        for member in members.into_iter().flatten() {
            config = config.with_member(member);
        }
        config
    }

    /// The base optimizer alone (ρ = 0).
    fn erm(&self) -> Family {
        Family {
            rho: 0.0,
            rho_schedule: RhoSchedule::Constant,
            geometry: None,
            friendly: None,
            swp: None,
            selection: None,
            combination: None,
            ..self.clone()
        }
    }
}

/// Any valid configuration of the whole family.
fn config() -> impl Strategy<Value = Family> {
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
        any::<bool>(),
    )
        .prop_map(
            |(base, rho, schedule, eps, geometry, friendly, swp, selection, combination, measure)| {
                let rho_schedule = match schedule {
                    Some((fraction, lr_min, span)) => RhoSchedule::ProportionalToLr {
                        rho_min: rho * fraction,
                        lr_min,
                        lr_max: lr_min + span,
                    },
                    None => RhoSchedule::Constant,
                };
                Family {
                    base,
                    rho,
                    rho_schedule,
                    eps,
                    geometry,
                    friendly,
                    swp,
                    selection,
                    combination,
                    measure,
                }
            },
        )
        .prop_filter("valid settings", |f| f.config().validate().is_ok())
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

/// `a` and `b` equal within a relative 1e-12 (crates/flatmin/ALGORITHMS.md §12.2: "up to rounding").
fn close(a: &[Vec<f64>], b: &[Vec<f64>]) -> Result<(), TestCaseError> {
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        let tol = 1e-12 * x.abs().max(y.abs()).max(1.0);
        prop_assert!((x - y).abs() <= tol, "{x} vs {y}: |Δ| = {:e}", (x - y).abs());
    }
    Ok(())
}

fn run(problem: &Problem, family: &Family) -> Result<Vec<Vec<f64>>, TestCaseError> {
    trajectory(problem, family).map_err(|e| TestCaseError::fail(format!("{family:?}: {e}")))
}

/// One step through the two-step API with the passes handed in as gradients (the first with its
/// per-sample losses where ESAM's selection needs them): the weights after it, the update's
/// `g_p` (the first pass's `g` on a step without a second pass), flat. On the way it checks that
/// the ascent leaves the weights bitwise, and that `w + e` is `w` bitwise when `‖e‖ = 0`.
fn gradients_step(problem: &Problem, config: &SamConfig) -> Result<(Net, Vec<f64>), TestCaseError> {
    let fail = |e: flatmin::StepError| TestCaseError::fail(format!("{config:?}: {e}"));
    let device = device();
    let net = problem.model(&device);
    let before = bits(&values(&net));
    let mut optim = config.init().unwrap();
    let first = optim.begin(problem.lr, &net);
    let losses = problem.losses(first.model(), Batch::All);
    let sample: Vec<f64> = losses.clone().detach().into_data().iter::<f64>().collect();
    let grads = grads_of(losses.mean(), first.model());
    let flat_grads = |grads: &GradientsParams, net: &Net| {
        let mut out: Vec<f64> = Vec::new();
        for p in &net.weight {
            out.extend(grads.get::<2>(p.id).unwrap().into_data().iter::<f64>());
        }
        if let Some(p) = &net.bias {
            out.extend(grads.get::<1>(p.id).unwrap().into_data().iter::<f64>());
        }
        out
    };
    // Without a second pass (ρ = 0) no mask is drawn, so every tensor has its `g`.
    let g = (first.second_pass() == Some(false)).then(|| flat_grads(&grads, &net));
    let input = if first.needs_sample_losses() {
        PassInput::with_losses(grads, sample)
    } else {
        PassInput::from(grads)
    };
    let (update, gp) = match optim.ascend(&net, first, input).map_err(fail)? {
        Next::Update(update) => (update, g.expect("a step planned without a second pass")),
        Next::Ascent(ascent) => {
            prop_assert_eq!(&bits(&values(&net)), &before, "the ascent changed the weights");
            let perturbed = values(ascent.model());
            if ascent.perturbation_norm() == 0.0 {
                prop_assert_eq!(bits(&perturbed), before.clone());
            }
            let ascent = if ascent.needs_selection() {
                let after = problem.losses(&ascent.probe(), Batch::All);
                ascent.select(after).map_err(fail)?
            } else {
                ascent
            };
            let model_p = ascent.model().clone();
            let grads_p =
                GradientsParams::from_grads(problem.losses(&model_p, ascent.request()).mean().backward(), &model_p);
            let gp = flat_grads(&grads_p, &model_p);
            (ascent.second_pass(grads_p).map_err(fail)?, gp)
        }
    };
    let (updated, report) = optim.finish(net, update);
    prop_assert!(report.is_ok(), "{:?}", report);
    Ok((updated, gp))
}

proptest! {
    #![proptest_config(runner_config())]

    /// Finite weights and gradients give a finite step, taken (never skipped), in every variant.
    #[test]
    fn a_step_from_finite_input_is_finite(problem in problem(), family in config()) {
        // With the report's measures, so that its cosine is checked too.
        let family = Family { measure: true, ..family };
        let trajectory = run(&problem, &family)?;
        for w in &trajectory {
            prop_assert!(w.iter().all(|v| v.is_finite()), "{family:?}: {w:?}");
        }
    }

    /// The ascent never writes the original weights; the ascent model holds `w + e`; the update
    /// is applied to the original weights.
    #[test]
    fn the_ascent_leaves_the_weights_bitwise_and_the_update_starts_from_them(
        problem in problem(),
        family in config(),
    ) {
        let (updated, _) = gradients_step(&problem, &family.config())?;
        let after = values(&updated);
        prop_assert!(after.iter().all(|v| v.is_finite()));

        // With plain SGD and the plain combination the update is exactly `w − lr·g_p` from the
        // original `w`, whatever the perturbation was (one update of the same kind, rebuilt).
        let plain = Family {
            combination: None,
            base: BaseConfig::Sgd(SgdBaseConfig::new()),
            ..family
        };
        let (updated, gp) = gradients_step(&problem, &plain.config())?;
        let w = values(&problem.model(&device()));
        let expected: Vec<f64> = w.iter().zip(&gp).map(|(w, g)| w - g * problem.lr).collect();
        prop_assert_eq!(bits(&values(&updated)), bits(&expected));
    }

    /// E1 (crates/flatmin/ALGORITHMS.md §12.2): ρ = 0 is the base optimizer (two passes with any perturbation, bitwise equal to
    /// the one-pass base step). ρ = 0 itself is one pass whatever the members (`is_base_only`), so
    /// the two passes run at ρ_t = 0 of a ρ schedule (ρ_min = 0 at lr_min = the step's lr).
    #[test]
    fn rho_zero_is_the_base_optimizer(
        problem in problem(),
        base in base(),
        rho_max in rho(),
        span in 0.01f64..0.5,
        geometry in geometry(),
        friendly in friendly(),
        swp in swp(),
        combination in prop_oneof![Just(0), Just(1), Just(2)],
    ) {
        let erm = Family {
            base,
            rho: 0.0,
            rho_schedule: RhoSchedule::Constant,
            eps: 1e-12,
            geometry: None,
            friendly: None,
            swp: None,
            selection: None,
            combination: None,
            measure: false,
        };
        prop_assert!(erm.config().is_base_only());
        let erm_trajectory = run(&problem, &erm)?;
        // A combination that is `g_p` itself (GSAM α = 0 or coupled WSAM γ = ½) or none.
        let combination = match combination {
            0 => None,
            1 => wsam(0.5, false),
            _ => Some(GsamConfig::new().with_alpha(0.0).into()),
        };
        let two_pass = Family {
            rho: rho_max,
            rho_schedule: RhoSchedule::ProportionalToLr {
                rho_min: 0.0,
                lr_max: problem.lr + span,
                lr_min: problem.lr,
            },
            geometry,
            friendly,
            swp,
            combination,
            ..erm
        };
        let config = two_pass.config();
        prop_assert!(config.validate().is_ok());
        prop_assert!(!config.is_base_only());
        prop_assert_eq!(config.rho_at(problem.lr), 0.0);
        prop_assert_eq!(run(&problem, &two_pass)?, erm_trajectory);
    }

    /// E7: F-SAM with σ = 0 is SAM, for any λ, bitwise.
    #[test]
    fn fsam_sigma_zero_is_sam(
        problem in problem(),
        family in config(),
        lambda in 0.0f64..0.99,
        then in any::<bool>(),
    ) {
        let sam = Family { friendly: None, ..family.clone() };
        let fsam = Family {
            friendly: Some(FriendlyConfig::new().with_sigma(0.0).with_lambda(lambda).with_update_then_subtract(then)),
            ..family
        };
        prop_assert_eq!(run(&problem, &fsam)?, run(&problem, &sam)?);
    }

    /// E3: coupled WSAM with γ = ½ (no clipping) is SAM for any base, bitwise.
    #[test]
    fn wsam_half_coupled_is_sam(problem in problem(), family in config()) {
        let sam = Family { combination: None, ..family.clone() };
        let wsam = Family { combination: wsam(0.5, false), ..family };
        prop_assert_eq!(run(&problem, &wsam)?, run(&problem, &sam)?);
    }

    /// E5: WSAM with γ = 0 is the base optimizer, coupled or decoupled, bitwise.
    #[test]
    fn wsam_gamma_zero_is_the_base_optimizer(
        problem in problem(),
        family in config(),
        decoupled in any::<bool>(),
    ) {
        // ESAM's per-tensor mask leaves tensors without `g`; those take `g_p`, as SAM would.
        let family = match &family.swp {
            Some(s) if s.granularity == SwpGranularity::PerTensor => Family { swp: None, ..family.clone() },
            _ => family,
        };
        let erm = run(&problem, &family.erm())?;
        let wsam = Family { combination: wsam(0.0, decoupled), ..family };
        prop_assert_eq!(run(&problem, &wsam)?, erm);
    }

    /// E2: GSAM with α = 0 is SAM, bitwise.
    #[test]
    fn gsam_alpha_zero_is_sam(problem in problem(), family in config()) {
        let sam = Family { combination: None, ..family.clone() };
        let gsam = Family { combination: Some(GsamConfig::new().with_alpha(0.0).into()), ..family };
        prop_assert_eq!(run(&problem, &gsam)?, run(&problem, &sam)?);
    }

    /// E8: ESAM with β = 1 and γ = 1 is SAM (both mask granularities, both rules, any
    /// seed), bitwise.
    #[test]
    fn esam_beta_one_gamma_one_is_sam(
        problem in problem(),
        family in config(),
        granularity in granularity(),
        rule in rule(),
        seed in any::<u64>(),
    ) {
        let sam = Family { swp: None, selection: None, ..family.clone() };
        let esam = Family {
            swp: Some(SwpConfig::new().with_beta(1.0).with_granularity(granularity).with_seed(seed)),
            selection: Some(SelectionConfig::new().with_gamma(1.0).with_rule(rule)),
            ..family
        };
        prop_assert_eq!(run(&problem, &esam)?, run(&problem, &sam)?);
    }

    /// E9: Fisher-SAM with η = 0 is SAM (Euclidean) up to rounding.
    #[test]
    fn fisher_eta_zero_is_sam_up_to_rounding(problem in problem(), family in config()) {
        // A selection could flip on a near tie under rounding; the equivalence is about `e`.
        let family = Family { selection: None, ..family };
        let sam = Family { geometry: None, ..family.clone() };
        let fisher = Family { geometry: Some(FisherConfig::new().with_eta(0.0).into()), ..family };
        close(&run(&problem, &fisher)?, &run(&problem, &sam)?)?;
    }

    /// Unified SAM with λ = 1 is SAM (Euclidean) up to rounding (`ρ·(1/(‖g‖+eps))` against
    /// `ρ/(‖g‖+eps)`).
    #[test]
    fn unified_lambda_one_is_sam_up_to_rounding(problem in problem(), family in config()) {
        let family = Family { selection: None, ..family };
        let sam = Family { geometry: None, ..family.clone() };
        let unified = Family {
            geometry: Some(UnifiedConfig::new().with_lambda(UnifiedLambda::Constant { lambda: 1.0 }).into()),
            ..family
        };
        close(&run(&problem, &unified)?, &run(&problem, &sam)?)?;
    }
}
