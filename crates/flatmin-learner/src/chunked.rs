//! m-sharpness on one device: the batch split into chunks of `m` samples, each with its own
//! ascent and its own perturbed gradient, averaged — exactly what data-parallel SAM computes
//! with one chunk per device (SAM paper §4.1, crates/flatmin/ALGORITHMS.md §2.3).
//!
//! Chunk `j` has its own flatmin optimizer, like device `j` has (F-SAM's gradient average and
//! ESAM's masks are per device), so `MSharpness` with `k` chunks reproduces a `k`-device run
//! step for step. The chunks' first passes run one after the other on the same model, so a
//! BatchNorm layer's running statistics take `k` updates per step (on `k` devices each device
//! updates its own copy).

use burn::module::Module;
use burn::tensor::Tensor;
use flatmin::bridge::{self, weighted_sum};
use flatmin::{Batch, ConfigError, Layout, ParamVector, Pass, PassInput, Sam, SamConfig, Update};

use crate::engine::{SamGradients, SkipReason, base_step, first_gradient, first_pass, group_mean, prepare};
use crate::parallel::AscentSync;

/// SAM with m-sharpness on one device (or in any custom training loop).
///
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::{ModuleOptimizer, SgdConfig};
/// use burn::tensor::{Device, Int, Tensor, TensorData};
/// use flatmin::{Batch, SamConfig};
/// use flatmin_learner::{AscentSync, MSharpness};
///
/// let device = Device::flex().autodiff();
/// let mut model: Linear = LinearConfig::new(4, 3).init(&device);
/// let x = Tensor::<2>::from_data(TensorData::new((0..32).map(|i| i as f32 / 32.0).collect::<Vec<_>>(), [8, 4]), &device);
/// let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0, 1, 2, 0, 1], [8]), &device);
///
/// // Chunks of m = 4: two ascents, two perturbed gradients, averaged.
/// let sam = SamConfig::preset("sam", SamConfig::sgd_base(0.0, 0.0)).unwrap();
/// let mut msam = MSharpness::new(&sam, 4, AscentSync::PerDevice).unwrap();
/// let mut optim: ModuleOptimizer = SgdConfig::new().init();
/// let step = msam
///     .descent(0.1, &model, 8, |m: &Linear, batch: Batch| {
///         flatmin::per_sample_cross_entropy(m.forward(batch.rows(x.clone())), batch.rows_int(y.clone()))
///     })
///     .expect("finite step");
/// assert_eq!(step.reports.len(), 2);
/// model = step.apply(&mut optim, 0.1, model);
/// # let _ = model;
/// ```
pub struct MSharpness {
    config: SamConfig,
    m: usize,
    ascent: AscentSync,
    sams: Vec<Sam>,
}

impl MSharpness {
    /// Chunks of `m` samples (the last one takes what is left), each with its own optimizer
    /// built from `config` (whose `base` is not used: the caller applies the result).
    /// `ascent` says which chunks share their first-pass gradient, as devices would. A method
    /// that needs flatmin's own base optimizer (bSAM, MSAM: [`SamConfig::needs_own_update`]) is
    /// refused, as [`SamLearner::new`](crate::SamLearner::new) refuses it.
    pub fn new(config: &SamConfig, m: usize, ascent: AscentSync) -> Result<Self, ConfigError> {
        config.validate()?;
        crate::adapter::refuse_own_update(config)?;
        crate::adapter::refuse_mixed(config)?;
        if m == 0 {
            return Err(ConfigError {
                field: "m",
                value: "0".into(),
                expected: "a chunk size >= 1",
            });
        }
        Ok(Self {
            config: config.clone(),
            m,
            ascent,
            sams: Vec::new(),
        })
    }

    /// The chunk size `m`.
    pub fn m(&self) -> usize {
        self.m
    }

    /// The flatmin optimizer of chunk `j` (created at its first step).
    pub fn chunk_optimizer(&self, j: usize) -> Option<&Sam> {
        self.sams.get(j)
    }

    /// The positions of each chunk of a batch of `batch_size` samples.
    pub fn chunks(&self, batch_size: usize) -> Vec<Vec<usize>> {
        (0..batch_size)
            .step_by(self.m)
            .map(|s| (s..(s + self.m).min(batch_size)).collect())
            .collect()
    }

    /// One step on a batch of `batch_size` samples: the average, weighted by chunk size, of
    /// the chunks' combined gradients. `loss_fn(model, batch)` returns the losses of the
    /// requested samples (one per sample; their mean will do when nothing needs per-sample
    /// losses), as for [`Sam::step`].
    ///
    /// A step is taken whole or not at all: if any chunk fails, no chunk's optimizer state
    /// changes and the reason comes back.
    pub fn descent<M, F>(
        &mut self,
        lr: f64,
        model: &M,
        batch_size: usize,
        mut loss_fn: F,
    ) -> Result<SamGradients, SkipReason>
    where
        M: Module,
        F: FnMut(&M, Batch<'_>) -> Tensor<1>,
    {
        let chunks = self.chunks(batch_size);
        let k = chunks.len();
        while self.sams.len() < k {
            self.sams.push(self.config.init().expect("validated in new"));
        }
        let mut loss3 = |m: &M, b: Batch<'_>, _: Pass| loss_fn(m, b);
        let whole = |j: usize| if k == 1 { None } else { Some(chunks[j].as_slice()) };

        // First passes, each chunk's step begun on its own optimizer.
        let mut firsts = Vec::with_capacity(k);
        let mut inputs: Vec<PassInput> = Vec::with_capacity(k);
        for (j, sam) in self.sams.iter().take(k).enumerate() {
            let (first, input) = first_pass(sam, lr, model, None, whole(j), false, &mut loss3);
            inputs.push(input?);
            firsts.push(first);
        }
        // Every chunk's schedule decides alike, except AE-SAM's, which looks at each chunk's own
        // `g` (before any exchange, as each device's does): the step is a SAM step only if every
        // chunk's policy asks for one. Every chunk decides (and updates its statistics).
        let mut second_pass = true;
        for (first, input) in firsts.iter_mut().zip(inputs.iter_mut()) {
            second_pass &= first.decide(model, input)?;
        }
        // The exchange of the first-pass gradients within groups of chunks.
        if self.ascent.exchanges(k) {
            let layout = Layout::of(model);
            let flats: Vec<ParamVector> = inputs
                .iter()
                .map(|input| first_gradient(model, &layout, input).expect("the first pass ran its backward"))
                .collect();
            for (j, input) in inputs.iter_mut().enumerate() {
                let members: Vec<&ParamVector> = self.ascent.group(j, k).map(|r| &flats[r]).collect();
                let shared = bridge::to_gradients(model, &layout, &group_mean(&members, &flats[j]));
                *input.gradients_mut().expect("the first pass ran its backward") = shared;
            }
        }

        let weights: Vec<f64> = chunks
            .iter()
            .map(|c| {
                if k == 1 {
                    1.0
                } else {
                    c.len() as f64 / batch_size as f64
                }
            })
            .collect();
        let loss = inputs
            .iter()
            .zip(&weights)
            .map(|(input, w)| input.loss().expect("the first pass's loss") * w)
            .sum();

        // Every chunk's update, then — each of them ready, so none failed — every commit: a step
        // is taken whole or not at all.
        let mut updates: Vec<Update> = Vec::with_capacity(k);
        for (j, ((sam, first), input)) in self.sams.iter().zip(firsts).zip(inputs).enumerate() {
            updates.push(if second_pass {
                prepare(sam, model, first, input, whole(j), false, &mut loss3)?.conclude()?
            } else {
                base_step(sam, model, first, input)?
            });
        }
        let mut descents = Vec::with_capacity(k);
        for (sam, update) in self.sams.iter_mut().zip(updates) {
            descents.push(sam.descent(update)?);
        }

        let layout = &descents[0].layout;
        let gradient = weighted_sum(
            &descents
                .iter()
                .zip(&weights)
                .map(|(d, &w)| (&d.gradient, w))
                .collect::<Vec<_>>(),
        );
        let sharpness = descents[0].sharpness.as_ref().map(|_| {
            weighted_sum(
                &descents
                    .iter()
                    .zip(&weights)
                    .filter_map(|(d, &w)| d.sharpness.as_ref().map(|s| (s, w)))
                    .collect::<Vec<_>>(),
            )
        });
        Ok(SamGradients {
            grads: bridge::to_gradients(model, layout, &gradient),
            sharpness: sharpness.map(|s| bridge::to_gradients(model, layout, &s)),
            sharpness_weight: descents[0].sharpness_weight,
            loss,
            reports: descents.into_iter().map(|d| d.report).collect(),
        })
    }
}
