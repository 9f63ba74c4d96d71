//! m-sharpness on one device: the batch split into chunks of `m` samples, each with its own
//! ascent and its own perturbed gradient, averaged — exactly what data-parallel SAM computes
//! with one chunk per device (SAM paper §4.1, docs/ALGORITHMS.md §2.3).
//!
//! Chunk `j` has its own flatmin optimizer, like device `j` has (F-SAM's gradient average and
//! ESAM's masks are per device), so `MSharpness` with `k` chunks reproduces a `k`-device run
//! step for step. The chunks' first passes run one after the other on the same model, so a
//! BatchNorm layer's running statistics take `k` updates per step (on `k` devices each device
//! updates its own copy).

use burn::module::Module;
use burn::tensor::Tensor;
use flatmin::bridge::{self, weighted_sum};
use flatmin::{Batch, ConfigError, FirstPass, Layout, ParamVector, Pass, Sam, SamConfig};

use crate::engine::{SamGradients, SkipReason, ascend, base_only, group_mean, prepare};
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
    /// `ascent` says which chunks share their first-pass gradient, as devices would.
    pub fn new(config: &SamConfig, m: usize, ascent: AscentSync) -> Result<Self, ConfigError> {
        config.validate()?;
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

        // First passes, then the exchange of their gradients within groups of chunks.
        let mut ascended: Vec<FirstPass> = Vec::with_capacity(k);
        for (j, sam) in self.sams.iter_mut().take(k).enumerate() {
            ascended.push(ascend(sam, model, whole(j), false, &mut loss3)?);
        }
        if self.ascent.exchanges(k) {
            let layout = Layout::of(model);
            let flats: Vec<ParamVector> = ascended
                .iter()
                .map(|a| bridge::gradients(model, &layout, &a.grads))
                .collect();
            for (j, a) in ascended.iter_mut().enumerate() {
                let members: Vec<&ParamVector> = self.ascent.group(j, k).map(|r| &flats[r]).collect();
                a.grads = bridge::to_gradients(model, &layout, &group_mean(&members, &flats[j]));
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
        let loss = ascended.iter().zip(&weights).map(|(a, w)| a.loss * w).sum();

        // Perturbations and second passes; nothing is committed until every chunk is done.
        // Every chunk's schedule decides alike, except AE-SAM's, which looks at each chunk's `g`:
        // the step is a SAM step only if every chunk's policy asks for one.
        let descents = if !ascended.iter().all(|a| a.runs_second_pass()) {
            let mut out = Vec::with_capacity(k);
            for (sam, a) in self.sams.iter_mut().zip(&ascended) {
                out.push(base_only(sam, model, a)?);
            }
            out
        } else {
            let mut passes = Vec::with_capacity(k);
            for (j, (sam, a)) in self.sams.iter_mut().zip(ascended).enumerate() {
                passes.push(prepare(sam, lr, model, a, whole(j), false, &mut loss3)?.backward());
            }
            for (_, grads_p) in &passes {
                check_finite(model, grads_p)?;
            }
            let mut out = Vec::with_capacity(k);
            for (sam, (ascent, grads_p)) in self.sams.iter_mut().zip(passes) {
                out.push(sam.descent(model, ascent, &grads_p)?);
            }
            out
        };

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

/// A non-finite second-pass gradient, found before any chunk commits.
fn check_finite<M: Module>(model: &M, grads: &burn::optim::GradientsParams) -> Result<(), SkipReason> {
    let layout = Layout::of(model);
    let norm = bridge::gradients(model, &layout, grads).norm();
    if norm.is_finite() {
        Ok(())
    } else {
        Err(SkipReason::Step(flatmin::StepError::NonFinite {
            pass: flatmin::Pass::Second,
            what: "gradient",
        }))
    }
}
