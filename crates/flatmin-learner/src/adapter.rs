//! [`SamLearner`]: a model wrapped so that Burn's `Learner` trains it with any flatmin optimizer.
//!
//! How Burn 0.22.1's Learner drives a model (burn-train `learner/supervised/strategies`): per
//! batch, `TrainStep::step(&model, item)` returns gradients and the metrics' item; the Learner
//! then steps its learning-rate scheduler and calls `TrainStep::optimize(model, optim, lr,
//! grads)` (`optimize_multi` for sharded multi-device optimization), which by default is
//! `optim.step(lr, model, grads)` with the Learner's `ModuleOptimizer`. With gradient
//! accumulation, the gradients of several steps are summed first; with several devices, each
//! worker runs `step` on its own copy and the gradients are summed on the main device
//! (`MultiDevice`) or all-reduced during backward (DDP). Checkpoints hold the model record, the
//! `ModuleOptimizer` record and the scheduler record.
//!
//! [`SamLearner`] runs the whole SAM step in `step` — both passes and ESAM's selection, through
//! flatmin — and returns the combined gradient, so the Learner's own optimizer is the base
//! optimizer, its scheduler sets the learning rate and its checkpoints, metrics and early
//! stopping work unchanged. Decoupled WSAM's extra step (outside the base optimizer's momentum)
//! is applied in `optimize`.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Device, Tensor};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use flatmin::bridge::{self, is_distributed};
use flatmin::{Batch, ConfigError, Descent, FirstPass, ParamVector, Pass, PassSchedule, Sam, SamConfig, StepReport};

use crate::engine::{
    self, SkipReason, Votes, all_reduce_through_backward, apply_sharpness, ascend, group_mean, is_plain, prepare,
};
use crate::parallel::{DataParallel, Rendezvous};
use crate::step::SamStep;

/// How a [`SamLearner`] trains.
#[derive(Debug, Clone)]
pub struct SamLearnerConfig {
    /// The SAM-family method. Its `base` is **not** used: the Learner's `ModuleOptimizer` is the
    /// base optimizer. (For PyTorch's SGD semantics with Burn's `SgdConfig`, set the momentum's
    /// `dampening` to 0: Burn's default is 0.1.)
    pub sam: SamConfig,
    /// The devices of a data-parallel run and how they share the first-pass gradient.
    pub parallel: DataParallel,
    /// Under Burn's `MultiDevice` strategy, which sums the workers' gradients, scale each
    /// worker's gradient by `1 / devices` so that the sum is their mean — the average of the
    /// per-device SAM gradients that m-sharpness defines, and what DDP with
    /// `ReduceOperation::Mean` computes. Default true. (Not applied under DDP, which averages
    /// itself.)
    pub average_devices: bool,
    /// The learning rate a ρ schedule proportional to the learning rate (GSAM) reads before the
    /// Learner's first optimizer step. Afterwards it reads the learning rate of the Learner's
    /// previous optimizer step: the Learner sets this step's only after `TrainStep::step`.
    pub initial_lr: f64,
}

impl SamLearnerConfig {
    /// `sam` on one device.
    pub fn new(sam: SamConfig) -> Self {
        Self {
            sam,
            parallel: DataParallel::single(),
            average_devices: true,
            initial_lr: 0.0,
        }
    }

    /// With these data-parallel settings.
    pub fn with_parallel(mut self, parallel: DataParallel) -> Self {
        self.parallel = parallel;
        self
    }

    /// With `average_devices` set.
    pub fn with_average_devices(mut self, average: bool) -> Self {
        self.average_devices = average;
        self
    }

    /// With `initial_lr` set.
    pub fn with_initial_lr(mut self, lr: f64) -> Self {
        self.initial_lr = lr;
        self
    }
}

/// What a [`SamLearner`] has done so far, over all devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamLearnerStats {
    /// Steps taken (per worker: a step on two devices counts twice).
    pub steps: u64,
    /// Steps skipped (non-finite loss or gradient, …): the Learner's optimizer got no gradient.
    pub skipped: u64,
    /// Why the last skipped step was skipped.
    pub last_skip: Option<String>,
    /// The report of the last step taken.
    pub last_report: Option<StepReport>,
}

struct State {
    config: SamLearnerConfig,
    /// One flatmin optimizer per device rank: F-SAM's average and ESAM's masks are per device,
    /// as in the reference implementations under DDP (one optimizer per process).
    sams: Vec<Mutex<Sam>>,
    tickets: AtomicUsize,
    exchange: Option<Rendezvous<Option<ParamVector>>>,
    votes: Rendezvous<bool>,
    /// Decoupled WSAM's sharpness terms waiting for `optimize`: (rank, term, α).
    pending: Mutex<Vec<(usize, GradientsParams, f64)>>,
    lr: Mutex<f64>,
    stats: Mutex<SamLearnerStats>,
    /// Tests only: run the DDP code path on parameters that are not marked distributed (the CPU
    /// backend refuses the mark, and has no collective to average with).
    simulate_ddp: bool,
}

/// The flatmin side of a [`SamLearner`], shared by the copies Burn makes of the model (one per
/// device worker).
#[derive(Clone)]
pub struct SamHandle(Arc<State>);

impl fmt::Debug for SamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.0.config;
        f.debug_struct("SamHandle")
            .field("rho", &config.sam.rho)
            .field("combination", &config.sam.combination)
            .field("devices", &config.parallel.parties())
            .field("ascent", &config.parallel.ascent)
            .finish()
    }
}

/// A model trained by Burn's `Learner` with a flatmin optimizer.
///
/// ```ignore
/// let config = SamLearnerConfig::new(SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0))?);
/// let model = SamLearner::new(model, config)?;           // was: model
/// let learner = Learner::new(model, SgdConfig::new().with_momentum(..).init(), lr_scheduler);
/// let result = SupervisedTraining::new(dir, train, valid).metrics((LossMetric::new(),)).launch(learner);
/// let trained = result.model.model;                        // the wrapped model
/// ```
///
/// The model implements [`SamStep`] (one forward pass on the requested samples) instead of
/// `TrainStep`, and `InferenceStep` as before for validation.
#[derive(Module, Debug)]
pub struct SamLearner<M: Module> {
    /// The model being trained.
    pub model: M,
    #[module(skip)]
    handle: SamHandle,
}

impl<M: SamStep> SamLearner<M> {
    /// Wraps `model`; the SAM configuration is validated here.
    pub fn new(model: M, config: SamLearnerConfig) -> Result<Self, ConfigError> {
        if let flatmin::BaseConfig::Bsam(_) = config.sam.base {
            return Err(ConfigError {
                field: "base",
                value: "Bsam".into(),
                expected: "a base that Burn's optimizer applies (Sgd, Adam): bSAM is its own base optimizer, \
                           so train it with flatmin's own loop (Sam::step)",
            });
        }
        let parties = config.parallel.parties();
        let sams = (0..parties)
            .map(|_| config.sam.init().map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = config.parallel.timeout;
        let exchange = config
            .parallel
            .ascent
            .exchanges(parties)
            .then(|| Rendezvous::new(parties, timeout));
        let state = State {
            lr: Mutex::new(config.initial_lr),
            sams,
            tickets: AtomicUsize::new(0),
            exchange,
            votes: Rendezvous::new(parties, timeout),
            pending: Mutex::new(Vec::new()),
            stats: Mutex::new(SamLearnerStats::default()),
            simulate_ddp: false,
            config,
        };
        Ok(Self {
            model,
            handle: SamHandle(Arc::new(state)),
        })
    }

    /// What the optimizer has done so far.
    pub fn stats(&self) -> SamLearnerStats {
        self.handle.0.stats.lock().expect("stats lock").clone()
    }

    /// The configuration.
    pub fn config(&self) -> &SamLearnerConfig {
        &self.handle.0.config
    }

    /// The wrapped model.
    pub fn into_inner(self) -> M {
        self.model
    }
}

impl State {
    /// The worker's rank: its device's position among the configured devices, or (a device
    /// listed more than once, the CPU stand-in) its turn among the step's workers.
    fn rank(&self, device: Option<&Device>) -> usize {
        let parties = self.config.parallel.parties();
        if parties == 1 {
            return 0;
        }
        device
            .and_then(|d| self.config.parallel.rank_of(d))
            .unwrap_or_else(|| self.tickets.fetch_add(1, Ordering::Relaxed) % parties)
    }

    fn parties(&self) -> usize {
        self.config.parallel.parties()
    }

    /// Averages the first-pass gradients within the worker's group.
    fn share<M: Module>(
        &self,
        exchange: &Rendezvous<Option<ParamVector>>,
        rank: usize,
        model: &M,
        ascended: Result<FirstPass, SkipReason>,
    ) -> Result<FirstPass, SkipReason> {
        let layout = flatmin::Layout::of(model);
        let flat = ascended
            .as_ref()
            .ok()
            .map(|a| bridge::gradients(model, &layout, &a.grads));
        let (me, all) = exchange.meet(Some(rank), flat);
        let mut ascended = ascended?;
        let group = self.config.parallel.ascent.group(me, self.parties());
        let members: Vec<&ParamVector> = all
            .iter()
            .filter(|(r, _)| group.contains(r))
            .filter_map(|(_, v)| v.as_ref())
            .collect();
        if members.len() != group.len() {
            return Err(SkipReason::OtherDevice);
        }
        let own = all
            .iter()
            .find(|(r, _)| *r == me)
            .and_then(|(_, v)| v.as_ref())
            .expect("own gradient");
        ascended.grads = bridge::to_gradients(model, &layout, &group_mean(&members, own));
        Ok(ascended)
    }
}

/// One worker's SAM step: the combined gradient, or why the step was skipped.
fn run<M, F>(state: &State, sam: &mut Sam, rank: usize, model: &M, loss_fn: &mut F) -> Result<Descent, SkipReason>
where
    M: Module,
    F: FnMut(&M, Batch<'_>, Pass) -> Tensor<1>,
{
    let lr = *state.lr.lock().expect("lr lock");
    let ddp = is_distributed(model) || state.simulate_ddp;
    let votes = (ddp && state.parties() > 1).then_some(Votes {
        meeting: &state.votes,
        rank: Some(rank),
    });
    // The first pass never synchronizes: under DDP it runs on a view without the distributed
    // mark, so each device keeps its own gradient (m-sharpness) unless the exchange shares it.
    let ascended = ascend(sam, model, None, ddp, loss_fn).map_err(SkipReason::from);
    let ascended = match &state.exchange {
        Some(exchange) => state.share(exchange, rank, model, ascended),
        None => ascended,
    };
    // The schedule's decision: known before the pass, or (AE-SAM) made from this device's `g`;
    // under DDP, AE-SAM runs a SAM step only where every device's policy asks for one, so the
    // devices never disagree on whether a second pass (and its all-reduce) happens.
    let wants = match &ascended {
        Ok(first) => first.runs_second_pass(),
        Err(_) => sam.runs_second_pass(),
    };
    let second_pass = match &votes {
        Some(v) if matches!(sam.config().schedule, Some(PassSchedule::Adaptive(_))) => v.agree(wants),
        _ => wants,
    };
    if !second_pass {
        let local = ascended.and_then(|a| engine::base_only(sam, model, &a).map_err(SkipReason::from));
        return match &votes {
            Some(v) => synchronize(model, local, v, !state.simulate_ddp),
            None => local,
        };
    }
    match &votes {
        // SAM's own combination: the second pass runs on the perturbed model, which keeps every
        // parameter's distributed mark, so Burn's DDP averages g_p during its backward.
        Some(v) if is_plain(sam) => {
            let prepared =
                ascended.and_then(|a| prepare(sam, lr, model, a, None, false, loss_fn).map_err(SkipReason::from));
            if !v.agree(prepared.is_ok()) {
                return Err(prepared.err().unwrap_or(SkipReason::OtherDevice));
            }
            let (ascent, grads_p) = prepared.expect("every device agreed").backward();
            v.agree(true);
            sam.descent(model, ascent, &grads_p).map_err(SkipReason::from)
        }
        // Combinations that mix g into the update: both passes local, the combined gradient
        // averaged afterwards (as GSAM's reference code does under DDP).
        _ => {
            let local = ascended.and_then(|a| {
                let (ascent, grads_p) = prepare(sam, lr, model, a, None, ddp, loss_fn)?.backward();
                Ok(sam.descent(model, ascent, &grads_p)?)
            });
            match &votes {
                Some(v) => synchronize(model, local, v, !state.simulate_ddp),
                None => local,
            }
        }
    }
}

/// Averages a worker's combined gradient (and WSAM's sharpness) over the DDP devices, all
/// devices going on only if every one of them has a step to average.
fn synchronize<M: Module>(
    model: &M,
    local: Result<Descent, SkipReason>,
    votes: &Votes<'_>,
    mark: bool,
) -> Result<Descent, SkipReason> {
    if !votes.agree(local.is_ok()) {
        return Err(local.err().unwrap_or(SkipReason::OtherDevice));
    }
    let mut d = local.expect("every device agreed");
    let device = model.devices().into_iter().next().expect("a model with parameters");
    let mut vectors = vec![&d.gradient];
    if let Some(s) = &d.sharpness {
        vectors.push(s);
    }
    let mut reduced = all_reduce_through_backward(&d.layout, &vectors, &device, mark).into_iter();
    votes.agree(true);
    d.gradient = reduced.next().expect("gradient");
    if d.sharpness.is_some() {
        d.sharpness = reduced.next();
    }
    Ok(d)
}

impl<M: SamStep> TrainStep for SamLearner<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn step(&self, item: Self::Input) -> TrainOutput<Self::Output> {
        let state = &self.handle.0;
        let device = self.model.devices().into_iter().next();
        let rank = state.rank(device.as_ref());
        let mut output = None;
        let result = {
            let mut sam = state.sams[rank].lock().expect("flatmin optimizer lock");
            let mut loss_fn = |m: &M, batch: Batch<'_>, pass: Pass| {
                let out = m.sam_forward(&item, batch);
                if pass == Pass::First {
                    output = Some(out.output);
                }
                out.losses
            };
            run(state, &mut sam, rank, &self.model, &mut loss_fn)
        };
        let output = output.expect("the first pass ran");
        let mut stats = state.stats.lock().expect("stats lock");
        match result {
            Ok(d) => {
                let ddp = is_distributed(&self.model) || state.simulate_ddp;
                let scale = if state.config.average_devices && state.parties() > 1 && !ddp {
                    1.0 / state.parties() as f64
                } else {
                    1.0
                };
                let scaled = |v: &ParamVector| if scale == 1.0 { v.clone() } else { v.scaled(scale) };
                let grads = bridge::to_gradients(&self.model, &d.layout, &scaled(&d.gradient));
                if let Some(s) = &d.sharpness {
                    let term = bridge::to_gradients(&self.model, &d.layout, &scaled(s));
                    state
                        .pending
                        .lock()
                        .expect("pending lock")
                        .push((rank, term, d.sharpness_weight));
                }
                stats.steps += 1;
                stats.last_report = Some(d.report);
                TrainOutput { grads, item: output }
            }
            Err(reason) => {
                stats.skipped += 1;
                stats.last_skip = Some(reason.to_string());
                TrainOutput {
                    grads: GradientsParams::new(),
                    item: output,
                }
            }
        }
    }

    fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
        let pending = self.before_optimize(&lr);
        let model = optim.step(lr.clone(), self, grads);
        model.after_optimize(&lr, pending)
    }

    fn optimize_multi(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: MultiGradientsParams) -> Self {
        let pending = self.before_optimize(&lr);
        let model = optim.step_multi(lr.clone(), self, grads);
        model.after_optimize(&lr, pending)
    }
}

impl<M: SamStep> SamLearner<M> {
    /// Records the learning rate (for ρ ∝ lr) and takes the decoupled WSAM terms this update
    /// applies: under DDP this device's own (already averaged), otherwise every worker's,
    /// summed as Burn sums their gradients.
    fn before_optimize(&self, lr: &ModuleLearningRate) -> Option<(GradientsParams, f64)> {
        let state = &self.handle.0;
        *state.lr.lock().expect("lr lock") = lr.base();
        let own = if is_distributed(&self.model) && state.parties() > 1 {
            let device = self.model.devices().into_iter().next();
            device.and_then(|d| state.config.parallel.rank_of(&d))
        } else {
            None
        };
        let mut pending = state.pending.lock().expect("pending lock");
        let (mine, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(r, _, _)| own.is_none_or(|o| o == *r));
        *pending = rest;
        let weight = mine.first()?.2;
        Some((
            sum_gradients(&self.model, mine.into_iter().map(|(_, g, _)| g).collect()),
            weight,
        ))
    }

    fn after_optimize(self, lr: &ModuleLearningRate, pending: Option<(GradientsParams, f64)>) -> Self {
        match pending {
            Some((sharpness, weight)) => apply_sharpness(self, lr, &sharpness, weight),
            None => self,
        }
    }
}

/// The sum of several gradients of `model`'s parameters, in the order given.
fn sum_gradients<M: Module>(model: &M, parts: Vec<GradientsParams>) -> GradientsParams {
    let layout = flatmin::Layout::of(model);
    let flats: Vec<ParamVector> = parts.iter().map(|p| bridge::gradients(model, &layout, p)).collect();
    let terms: Vec<(&ParamVector, f64)> = flats.iter().map(|v| (v, 1.0)).collect();
    bridge::to_gradients(model, &layout, &bridge::weighted_sum(&terms))
}

impl<M: SamStep + InferenceStep> InferenceStep for SamLearner<M> {
    type Input = <M as InferenceStep>::Input;
    type Output = <M as InferenceStep>::Output;

    fn step(&self, item: Self::Input) -> Self::Output {
        InferenceStep::step(&self.model, item)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Int, TensorData};
    use burn::train::ClassificationOutput;

    use super::*;
    use crate::{AscentSync, SamOutput};

    #[derive(Module, Debug)]
    struct Tiny {
        l: Linear,
    }

    #[derive(Clone, Debug)]
    struct Xy {
        x: Tensor<2>,
        y: Tensor<1, Int>,
    }

    impl SamStep for Tiny {
        type Input = Xy;
        type Output = ClassificationOutput;

        fn sam_forward(&self, item: &Xy, batch: Batch<'_>) -> SamOutput<ClassificationOutput> {
            let (x, y) = (batch.rows(item.x.clone()), batch.rows_int(item.y.clone()));
            let logits = self.l.forward(x);
            let losses = flatmin::per_sample_cross_entropy(logits.clone(), y.clone());
            SamOutput {
                output: ClassificationOutput::new(losses.clone().mean(), logits, y),
                losses,
            }
        }
    }

    fn shard(j: usize, poisoned: bool, device: &Device) -> Xy {
        let x: Vec<f32> = (0..12)
            .map(|i| {
                if poisoned && i == 0 {
                    f32::NAN
                } else {
                    ((i * 7 + j * 5) % 11) as f32 / 11.0 - 0.4
                }
            })
            .collect();
        let y: Vec<i64> = (0..4).map(|i| ((i + j) % 2) as i64).collect();
        Xy {
            x: Tensor::from_data(TensorData::new(x, [4, 3]), device),
            y: Tensor::from_data(TensorData::new(y, [4]), device),
        }
    }

    fn bits(model: &Tiny, grads: &GradientsParams) -> Vec<Vec<u32>> {
        let w: Vec<u32> = match grads.get::<2>(model.l.weight.id) {
            Some(g) => g.into_data().iter::<f32>().map(f32::to_bits).collect(),
            None => Vec::new(),
        };
        let b: Vec<u32> = match model.l.bias.as_ref().and_then(|b| grads.get::<1>(b.id)) {
            Some(g) => g.into_data().iter::<f32>().map(f32::to_bits).collect(),
            None => Vec::new(),
        };
        vec![w, b]
    }

    /// A two-device DDP run simulated on the CPU (the backend refuses the distributed mark and
    /// has no all-reduce, so the "average" is each device's own value): both workers go through
    /// the DDP path — first pass on the local view, votes and barriers around the distributed
    /// backward passes, the second pass (SAM) or the surrogate sync round (GSAM, WSAM, ρ = 0) —
    /// and must neither hang nor change what they compute.
    fn simulated(sam: &SamConfig, model: &Tiny, poisoned: Option<usize>) -> (Vec<Vec<Vec<u32>>>, SamLearnerStats) {
        let device = Device::flex().autodiff();
        let parallel = DataParallel::new(vec![device.clone(), device.clone()], AscentSync::PerDevice);
        let mut wrapped = SamLearner::new(
            model.clone(),
            SamLearnerConfig::new(sam.clone()).with_parallel(parallel),
        )
        .unwrap();
        Arc::get_mut(&mut wrapped.handle.0)
            .expect("not shared yet")
            .simulate_ddp = true;
        let workers: Vec<_> = (0..2)
            .map(|j| {
                let w = wrapped.clone();
                std::thread::spawn(move || {
                    let d = Device::flex().autodiff();
                    let out = TrainStep::step(&w, shard(j, poisoned == Some(j), &d));
                    (j, bits(&w.model, &out.grads))
                })
            })
            .collect();
        let mut got = vec![Vec::new(); 2];
        for h in workers {
            let (j, b) = h.join().expect("a worker panicked");
            got[j] = b;
        }
        (got, wrapped.stats())
    }

    #[test]
    fn simulated_ddp_gives_each_device_its_own_sam_gradient() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        for preset in ["sam", "gsam", "wsam", "sgd"] {
            let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 0.0)).unwrap();
            let (got, stats) = simulated(&sam, &model, None);
            assert_eq!((stats.steps, stats.skipped), (2, 0), "{preset}");
            for (j, g) in got.iter().enumerate() {
                let single = SamLearner::new(model.clone(), SamLearnerConfig::new(sam.clone())).unwrap();
                let out = TrainStep::step(&single, shard(j, false, &device));
                assert_eq!(g, &bits(&single.model, &out.grads), "{preset}, device {j}");
                assert!(!g[0].is_empty(), "{preset}");
            }
        }
    }

    #[test]
    fn simulated_ddp_skips_on_every_device_when_one_fails() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        for preset in ["sam", "gsam"] {
            let sam = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 0.0)).unwrap();
            let (got, stats) = simulated(&sam, &model, Some(0));
            assert_eq!((stats.steps, stats.skipped), (0, 2), "{preset}");
            assert!(
                got.iter().all(|g| g.iter().all(Vec::is_empty)),
                "{preset}: no gradient anywhere"
            );
            let reason = stats.last_skip.unwrap();
            assert!(
                reason.contains("non-finite") || reason.contains("another device"),
                "{reason}"
            );
        }
    }

    /// The surrogate backward hands each vector back exactly (gradient of ⟨leaf, v⟩ is v).
    #[test]
    fn the_sync_rounds_surrogate_returns_its_vectors() {
        let device = Device::flex().autodiff();
        let model = Tiny {
            l: LinearConfig::new(3, 2).init(&device),
        };
        let layout = flatmin::Layout::of(&model);
        let inner = device.clone().inner();
        let v = |s: f32| {
            ParamVector::new(
                layout
                    .entries
                    .iter()
                    .map(|e| {
                        let n = e.numel();
                        let data: Vec<f32> = (0..n).map(|i| s * (i as f32 + 0.25)).collect();
                        Some(Tensor::<1>::from_data(TensorData::new(data, [n]), &inner))
                    })
                    .collect(),
            )
        };
        let (a, b) = (v(1.5), v(-3.0));
        let out = all_reduce_through_backward(&layout, &[&a, &b], &device, false);
        for (x, y) in [(&a, &out[0]), (&b, &out[1])] {
            for i in 0..layout.len() {
                let p: Vec<f32> = x.get(i).unwrap().clone().into_data().iter().collect();
                let q: Vec<f32> = y.get(i).unwrap().clone().into_data().iter().collect();
                assert_eq!(p, q);
            }
        }
    }
}
