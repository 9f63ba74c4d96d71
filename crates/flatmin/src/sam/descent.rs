//! The step without its base optimizer: for a training loop whose optimizer is not flatmin's
//! (Burn's `Learner` and its `ModuleOptimizer`), the two-step API can end in the combined
//! gradient instead of an update. ESAM's selection is offered as its own piece, so such a loop
//! can run every stage of [`Sam::step`] itself.

use burn::module::Module;
use burn::optim::GradientsParams;

use super::{Ascent, Masks, Sam, check_selection};
use crate::bridge::{self, Layout};
use crate::combination::{Combined, Measures, combine};
use crate::error::{Pass, StepError};
use crate::report::StepReport;
use crate::vector::{ParamVector, read};

/// What a step hands to a base optimizer that flatmin does not run.
///
/// The base optimizer applies [`Descent::gradient`] to the unperturbed weights; with decoupled
/// WSAM it must then apply `w −= lr · sharpness_weight · sharpness` outside its momentum and
/// moments, as [`Sam::update`] does.
#[derive(Debug, Clone)]
pub struct Descent {
    /// The parameters the vectors below are laid out on.
    pub layout: Layout,
    /// What the base optimizer gets: `g_p`, or the combination's mix of `g` and `g_p`.
    pub gradient: ParamVector,
    /// Decoupled WSAM: `g_p − g`, applied after the base step, outside its state.
    pub sharpness: Option<ParamVector>,
    /// α, the weight of `sharpness`.
    pub sharpness_weight: f64,
    /// The step's measurements (the losses are the caller's to fill in).
    pub report: StepReport,
}

impl Sam {
    /// Two-step API, second half without the base optimizer: combines the first-pass gradient
    /// kept in `ascent` with the second-pass gradients `grads_p` (taken on `ascent.model()`)
    /// and returns what a base optimizer outside flatmin applies to `model`.
    ///
    /// The step is committed as [`Sam::update`] commits it (F-SAM's average, ESAM's mask
    /// generator, the step count), except that flatmin's own base optimizer state is not used
    /// and does not change. A non-finite second-pass gradient is an error and commits nothing.
    pub fn descent<M: Module>(
        &mut self,
        model: &M,
        ascent: Ascent<M>,
        grads_p: &GradientsParams,
    ) -> Result<Descent, StepError> {
        let gp = bridge::gradients(model, &ascent.layout, grads_p);
        let Ascent {
            layout,
            g,
            g_norm,
            e_norm,
            rho,
            tensor_mask,
            next_ema,
            next_rng,
            ..
        } = ascent;
        let mut descent = self.combined(layout, &g, g_norm, &gp)?;
        if self.config.friendly.is_some() {
            self.ema = next_ema;
        }
        if let (Some(rng), Masks::Seeded(seeded)) = (next_rng, &mut self.masks) {
            *seeded = rng;
        }
        descent.report.perturbation_norm = e_norm;
        descent.report.rho = rho;
        descent.report.tensor_mask = tensor_mask;
        Ok(descent)
    }

    /// The base optimizer's step alone (a configuration with ρ = 0 and nothing that needs
    /// `g_p`, see [`SamConfig::is_base_only`](crate::SamConfig::is_base_only)): `g` from the
    /// gradients `grads` of one pass on `model`, handed on unchanged.
    pub fn base_descent<M: Module>(&mut self, model: &M, grads: &GradientsParams) -> Result<Descent, StepError> {
        let layout = Layout::of(model);
        let g = bridge::gradients(model, &layout, grads);
        let g_norm = g.norm();
        if !g_norm.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::First,
                what: "gradient",
            });
        }
        self.combined(layout, &g, g_norm, &g)
    }

    /// ESAM's selection as one piece: from the per-sample losses at `w` (`before`) and at
    /// `w + e` (`after`), the sharpness `after − before` and the sorted positions the second
    /// pass uses, as [`Sam::step`] chooses them (every position when the configured selection
    /// needs no losses).
    pub fn select_samples(&mut self, before: &[f64], after: &[f64]) -> Result<(Vec<f64>, Vec<usize>), StepError> {
        if after.len() != before.len() {
            return Err(StepError::PerSampleLossesRequired {
                expected: before.len(),
                got: after.len(),
            });
        }
        let sharpness: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        if sharpness.iter().any(|v| !v.is_finite()) {
            return Err(StepError::NonFinite {
                pass: Pass::Second,
                what: "loss",
            });
        }
        let chosen = match self.selector.as_mut() {
            Some(sel) if self.config.selection.needs_losses() => sel.select(&sharpness),
            _ => (0..before.len()).collect(),
        };
        check_selection(&chosen, before.len())?;
        Ok((sharpness, chosen))
    }

    /// The combination, checked, with the step count committed (as in `finish`, without the
    /// base optimizer).
    fn combined(
        &mut self,
        layout: Layout,
        g: &ParamVector,
        g_norm: f64,
        gp: &ParamVector,
    ) -> Result<Descent, StepError> {
        if gp.is_vacant() {
            return Err(StepError::NoGradients);
        }
        let sums = read(vec![gp.squared_norm_lazy(), g.dot_lazy(gp)]);
        let (gp_norm, dot) = (sums[0].sqrt(), sums[1]);
        if !gp_norm.is_finite() {
            return Err(StepError::NonFinite {
                pass: Pass::Second,
                what: "gradient",
            });
        }
        let measures = Measures { g_norm, gp_norm, dot };
        let Combined {
            descent,
            sharpness,
            sharpness_weight,
        } = combine(&self.config.combination, self.config.eps, g, gp, &measures);
        self.steps += 1;
        let cosine = if g_norm > 0.0 && gp_norm > 0.0 {
            dot / (g_norm * gp_norm)
        } else {
            0.0
        };
        Ok(Descent {
            layout,
            gradient: descent,
            sharpness,
            sharpness_weight,
            report: StepReport {
                grad_norm: g_norm,
                grad_perturbed_norm: gp_norm,
                cosine,
                ..StepReport::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::{Combination, SamConfig};

    #[derive(Module, Debug)]
    struct Quad {
        w: Param<Tensor<1>>,
    }

    fn loss(m: &Quad, a: &Tensor<1>) -> Tensor<1> {
        (m.w.val() * a.clone()).sum().square() + m.w.val().square().sum()
    }

    fn values(m: &Quad) -> Vec<f64> {
        m.w.val().into_data().iter::<f64>().collect()
    }

    /// `descent` followed by the base optimizer's rule done by hand gives `update`'s weights,
    /// for SAM, GSAM and decoupled WSAM (whose sharpness step comes after the base step).
    #[test]
    fn descent_then_plain_sgd_is_update() {
        let device = Device::flex().autodiff();
        let a = Tensor::<1>::from_data(TensorData::new(vec![0.5f64, -1.0, 2.0], [3]), &device);
        let start = |d: &Device| Quad {
            w: Param::from_tensor(Tensor::from_data(TensorData::new(vec![0.3f64, 0.1, -0.2], [3]), d)),
        };
        for combination in [
            Combination::Plain,
            Combination::Gsam { alpha: 0.4 },
            Combination::Wsam {
                gamma: 0.9,
                decoupled: true,
                max_norm: None,
            },
        ] {
            let config = SamConfig::new(SamConfig::sgd_base(0.0, 0.0))
                .with_rho(0.1)
                .with_combination(combination.clone());
            let lr = 0.05;
            let mut own = config.init().unwrap();
            let mut outside = config.init().unwrap();
            let (stepped, report) = own.step(lr, start(&device), |m: &Quad, _| loss(m, &a));
            report.unwrap();

            let model = start(&device);
            let first = outside.first_pass_model(&model);
            let grads = GradientsParams::from_grads(loss(&first, &a).backward(), &first);
            let ascent = outside.perturb(lr, &model, &grads).unwrap();
            let grads_p = GradientsParams::from_grads(loss(ascent.model(), &a).backward(), ascent.model());
            let d = outside.descent(&model, ascent, &grads_p).unwrap();
            let mut w = model.w.val().inner() - d.gradient.get(0).unwrap().clone().mul_scalar(lr);
            if let Some(s) = &d.sharpness {
                w = w - s.get(0).unwrap().clone().mul_scalar(lr * d.sharpness_weight);
            }
            let by_hand: Vec<f64> = w.into_data().iter::<f64>().collect();
            assert_eq!(by_hand, values(&stepped), "{combination:?}");
            assert_eq!(outside.steps(), 1);
        }
    }

    /// The selection piece chooses what the one-call step chooses and rejects bad input.
    #[test]
    fn select_samples_follows_the_configured_selection() {
        let base = SamConfig::sgd_base(0.0, 0.0);
        let mut esam = SamConfig::preset("esam", base.clone()).unwrap().init().unwrap();
        let (s, chosen) = esam
            .select_samples(&[1.0, 1.0, 1.0, 1.0], &[1.5, 1.1, 2.0, 0.9])
            .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(chosen, vec![0, 2]);
        assert!(esam.select_samples(&[1.0, 1.0], &[1.0]).is_err());
        assert!(esam.select_samples(&[1.0, 1.0], &[f64::NAN, 1.0]).is_err());
        let mut sam = SamConfig::preset("sam", base).unwrap().init().unwrap();
        assert_eq!(sam.select_samples(&[1.0, 1.0], &[3.0, 0.0]).unwrap().1, vec![0, 1]);
    }
}
