//! The report costs nothing unless asked: its cosine is measured only with
//! `SamConfig::measure`, and then it is `cos(g, g_p)`.

use crate::common::*;
use flatmin::{Batch, SamConfig};

/// Without `measure`, no preset's one-call report has a cosine.
#[test]
fn no_cosine_unless_measured() {
    let device = device();
    let data = Data::new(2, &device);
    for name in flatmin::PRESETS {
        let config = SamConfig::preset(name, SamConfig::sgd_base(0.9, 5e-4))
            .unwrap()
            .for_run(6, 24);
        assert!(!config.measure, "{name}: off by default");
        let mut optim = config.init().unwrap();
        let (_, _, reports) = train(&mut optim, Mlp::new(2, &device), &data, 6, 0.05);
        assert!(reports.iter().all(|r| r.cosine.is_none()), "{name}");
        let mut optim = config.with_measure(true).init().unwrap();
        let (_, _, reports) = train(&mut optim, Mlp::new(2, &device), &data, 6, 0.05);
        for r in &reports {
            let c = r.cosine.unwrap_or_else(|| panic!("{name}: measured"));
            assert!((-1.0 - 1e-12..=1.0 + 1e-12).contains(&c), "{name}: {c}");
        }
    }
}

/// With `measure`, the cosine is `g·g_p / (‖g‖‖g_p‖)`, by hand on `L = ½ Σ a_i w_i²`
/// (`g = a⊙w`, `e = ρ·g/(‖g‖ + eps)`, `g_p = a⊙(w + e)`), for SAM (whose one-call step measures it
/// on `e`) and GSAM (which keeps `g`), over three steps.
#[test]
fn the_measured_cosine_is_cos_g_gp() {
    let a = [1.0, 10.0, 0.3, 4.0];
    let w0 = [1.0, 0.7, -2.0, 0.2];
    let device = device();
    for name in ["sam", "gsam"] {
        let config = SamConfig::preset(name, SamConfig::sgd_base(0.9, 0.0))
            .unwrap()
            .with_rho(1.0)
            .with_measure(true);
        let (rho, eps) = (config.rho, config.eps);
        let mut optim = config.init().unwrap();
        let mut model = Quadratic::new(&w0, &device);
        let mut unmeasured = config_without_measure(name).init().unwrap();
        let mut twin = Quadratic::new(&w0, &device);
        for step in 0..3 {
            let w = model.values();
            let (next, report) = optim.step(0.05, model, |m: &Quadratic, _: Batch| m.loss(&a));
            model = next;
            let report = report.unwrap();
            let g: Vec<f64> = w.iter().zip(&a).map(|(w, a)| a * w).collect();
            let gn = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            let gp: Vec<f64> = (0..4).map(|i| a[i] * (w[i] + rho * g[i] / (gn + eps))).collect();
            let gpn = gp.iter().map(|x| x * x).sum::<f64>().sqrt();
            let want = g.iter().zip(&gp).map(|(x, y)| x * y).sum::<f64>() / (gn * gpn);
            let got = report.cosine.expect("measured");
            assert!((got - want).abs() < 1e-6, "{name} step {step}: {got} vs {want}");
            assert!(
                want < 0.999,
                "{name} step {step}: a cosine that tells g from g_p ({want})"
            );
            // Measuring changes no weight.
            let (next, report) = unmeasured.step(0.05, twin, |m: &Quadratic, _: Batch| m.loss(&a));
            assert_eq!(report.unwrap().cosine, None);
            twin = next;
            assert_eq!(bits(&[model.values()]), bits(&[twin.values()]), "{name} step {step}");
        }
    }
}

fn config_without_measure(name: &str) -> SamConfig {
    SamConfig::preset(name, SamConfig::sgd_base(0.9, 0.0))
        .unwrap()
        .with_rho(1.0)
}
