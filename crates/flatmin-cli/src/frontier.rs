//! The cost–accuracy frontier that `flatmin compare` and `flatmin sweep` draw: for every
//! optimizer, its test-accuracy difference to the base (with its 95 % interval, from
//! [`crate::stats`]) against what it costs — its time per step over the base's and its total
//! training time — with the fraction of its steps that ran SAM's second pass, and, when SAM is
//! among the optimizers, how much of SAM's gain it keeps (with Fieller's interval). As JSON (serialized points), a Markdown
//! table and two pictures.

use serde::Serialize;

use crate::plot::{LabelledPoint, ScatterChart};
use crate::stats::Method;

/// A difference in accuracy points with its 95 % interval, when there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// The mean difference (points).
    pub mean: f64,
    /// The interval is mean ± this (`None` with one seed or no verdict).
    pub half_width: Option<f64>,
    /// How the interval was made (`None` without one).
    pub method: Option<Method>,
}

impl Interval {
    /// The interval's ends, if any.
    pub fn ends(&self) -> Option<(f64, f64)> {
        self.half_width.map(|h| (self.mean - h, self.mean + h))
    }
}

/// What the frontier needs of one optimizer's runs.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The row label.
    pub label: String,
    /// Mean wall time of an optimizer step over its runs, in ms.
    pub ms_per_step: f64,
    /// Mean training time of a run (its optimizer steps), in seconds.
    pub training_seconds: f64,
    /// The fraction of its steps that ran the second pass (`None` for runs that did not record it).
    pub second_pass_fraction: Option<f64>,
}

/// One optimizer on the frontier.
#[derive(Debug, Clone, Serialize)]
pub struct FrontierPoint {
    /// The row label.
    pub optimizer: String,
    /// Its test-accuracy difference to the base, in points, with its 95 % interval (the base
    /// itself: 0, no interval).
    pub difference_points: Interval,
    /// The interval's ends (points), if any.
    pub interval_points: Option<(f64, f64)>,
    /// Mean ms per optimizer step.
    pub ms_per_step: f64,
    /// Its time per step over the base's.
    pub step_cost_ratio: f64,
    /// Mean training time of a run (optimizer steps only), in seconds.
    pub training_seconds: f64,
    /// Its training time over the base's.
    pub training_time_ratio: f64,
    /// The fraction of its steps that ran the second pass.
    pub second_pass_fraction: Option<f64>,
    /// With SAM among the optimizers: its difference to the base over SAM's (the share of SAM's
    /// gain it keeps, a ratio of means); `None` for the base, for SAM itself, and unless SAM's own
    /// gain is significantly positive (a share of noise, or of a loss, means nothing).
    pub share_of_sam_gain: Option<f64>,
    /// Fieller's interval for that share (`None` when it is not shown or unbounded).
    pub share_of_sam_gain_interval: Option<(f64, f64)>,
    /// With SAM among the optimizers: its difference to SAM (points, paired the same way), with
    /// its interval; `None` for the base and SAM.
    pub difference_to_sam_points: Option<Interval>,
}

/// The share of SAM's gain an optimizer keeps, with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// Its gain over SAM's.
    pub ratio: f64,
    /// Fieller's interval (`None` when unbounded).
    pub interval: Option<(f64, f64)>,
}

/// The share of SAM's gain from the intervals alone: `gain` (the optimizer's difference to the
/// base), `sam` (SAM's) and `to_sam` (the optimizer's difference to SAM). Shown only when SAM's
/// interval lies above 0; Fieller's interval with each half-width taken as a common critical
/// value times its standard error (the covariance of the two gains from `Var(a − b)`).
pub fn share_from_intervals(gain: &Interval, sam: &Interval, to_sam: &Interval) -> Option<Share> {
    let (lo, _) = sam.ends()?;
    if lo <= 0.0 {
        return None;
    }
    let (ha, hb) = (gain.half_width?, sam.half_width?);
    let interval = to_sam.half_width.and_then(|hab| {
        let cov = (ha * ha + hb * hb - hab * hab) / 2.0;
        crate::stats::fieller(gain.mean, sam.mean, ha * ha, hb * hb, cov, 1.0)
    });
    Some(Share {
        ratio: gain.mean / sam.mean,
        interval,
    })
}

/// The frontier of `entries` (the base first). `versus(i, j)` is the difference of entry `j` to
/// entry `i` with its interval; `sam` the index of SAM among the entries, if it is there and is
/// not the base. The share of SAM's gain comes from the intervals ([`share_from_intervals`]).
pub fn build(entries: &[Entry], versus: impl Fn(usize, usize) -> Interval, sam: Option<usize>) -> Vec<FrontierPoint> {
    build_with(entries, &versus, sam, |j, s| {
        share_from_intervals(&versus(0, j), &versus(0, s), &versus(s, j))
    })
}

/// [`build`] with the share of SAM's gain of entry `j` (SAM at `s`) given by `share(j, s)`.
pub fn build_with(
    entries: &[Entry],
    versus: impl Fn(usize, usize) -> Interval,
    sam: Option<usize>,
    share: impl Fn(usize, usize) -> Option<Share>,
) -> Vec<FrontierPoint> {
    let Some(base) = entries.first() else {
        return Vec::new();
    };
    let sam = sam.filter(|&s| s > 0 && s < entries.len());
    entries
        .iter()
        .enumerate()
        .map(|(j, e)| {
            let difference = if j == 0 {
                Interval {
                    mean: 0.0,
                    half_width: None,
                    method: None,
                }
            } else {
                versus(0, j)
            };
            let (share, to_sam) = match sam {
                Some(s) if j != 0 && j != s => (share(j, s), Some(versus(s, j))),
                _ => (None, None),
            };
            FrontierPoint {
                optimizer: e.label.clone(),
                interval_points: difference.ends(),
                difference_points: difference,
                ms_per_step: e.ms_per_step,
                step_cost_ratio: e.ms_per_step / base.ms_per_step,
                training_seconds: e.training_seconds,
                training_time_ratio: e.training_seconds / base.training_seconds,
                second_pass_fraction: e.second_pass_fraction,
                share_of_sam_gain: share.map(|s| s.ratio),
                share_of_sam_gain_interval: share.and_then(|s| s.interval),
                difference_to_sam_points: to_sam,
            }
        })
        .collect()
}

/// "+1.23 ± 0.45" or "+1.23 (no CI)".
fn cell(i: &Interval) -> String {
    match i.half_width {
        Some(h) => format!("{:+.2} ± {h:.2}", i.mean),
        None => format!("{:+.2} (no CI)", i.mean),
    }
}

/// The frontier as a Markdown table (`base` names the base in the header).
pub fn markdown(points: &[FrontierPoint], base: &str) -> String {
    let with_sam = points.iter().any(|p| p.difference_to_sam_points.is_some());
    let mut s = format!(
        "| optimizer | Δ vs {base}, points (CI) | cost per step | training time (s) | training time vs {base} | second passes |{}\n\
         |---|---|---|---|---|---|{}\n",
        if with_sam {
            " share of SAM's gain (95 % CI) | Δ vs SAM, points (CI) |"
        } else {
            ""
        },
        if with_sam { "---|---|" } else { "" }
    );
    for (j, p) in points.iter().enumerate() {
        let delta = if j == 0 {
            "–".to_string()
        } else {
            cell(&p.difference_points)
        };
        s.push_str(&format!(
            "| {} | {delta} | {:.2}× | {:.1} | {:.2}× | {} |",
            p.optimizer,
            p.step_cost_ratio,
            p.training_seconds,
            p.training_time_ratio,
            p.second_pass_fraction
                .map_or_else(|| "–".to_string(), |f| format!("{:.0} %", 100.0 * f)),
        ));
        if with_sam {
            s.push_str(&format!(
                " {} | {} |",
                match (p.share_of_sam_gain, p.share_of_sam_gain_interval) {
                    (Some(r), Some((lo, hi))) => format!("{:.0} % [{:.0}, {:.0} %]", 100.0 * r, 100.0 * lo, 100.0 * hi),
                    (Some(r), None) => format!("{:.0} % (interval unbounded)", 100.0 * r),
                    _ => "–".to_string(),
                },
                p.difference_to_sam_points
                    .as_ref()
                    .map_or_else(|| "–".to_string(), cell)
            ));
        }
        s.push('\n');
    }
    s
}

/// The two pictures: accuracy difference (with its interval) against the cost per step, and
/// against the total training time; `what` says where they come from (for the titles).
pub fn charts(points: &[FrontierPoint], base: &str, what: &str) -> [ScatterChart; 2] {
    let chart = |x_label: String, x: &dyn Fn(&FrontierPoint) -> f64, title: String| ScatterChart {
        title,
        x_label,
        y_label: format!("test accuracy − {base}'s (points, with its CI)"),
        points: points
            .iter()
            .map(|p| LabelledPoint {
                label: p.optimizer.clone(),
                x: x(p),
                y: p.difference_points.mean,
                error: p.difference_points.half_width,
            })
            .collect(),
    };
    [
        chart(
            format!("time per step over {base}'s"),
            &|p| p.step_cost_ratio,
            format!("Gain against cost per step{what}"),
        ),
        chart(
            "training time of a run, optimizer steps (s)".into(),
            &|p| p.training_seconds,
            format!("Gain against training time{what}"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str, ms: f64, seconds: f64, fraction: f64) -> Entry {
        Entry {
            label: label.into(),
            ms_per_step: ms,
            training_seconds: seconds,
            second_pass_fraction: Some(fraction),
        }
    }

    #[test]
    fn ratios_shares_and_differences_to_sam() {
        let entries = [
            entry("sgd", 2.0, 10.0, 0.0),
            entry("sam", 4.0, 20.0, 1.0),
            entry("looksam", 2.5, 12.0, 0.2),
        ];
        // Differences: sam +4 ± 1, looksam +3 ± 1.5; looksam − sam = −1 ± 1.2.
        let means = [0.0, 4.0, 3.0];
        let versus = |i: usize, j: usize| Interval {
            mean: means[j] - means[i],
            half_width: Some(if i == 0 { 1.0 + 0.5 * (j as f64 - 1.0) } else { 1.2 }),
            method: Some(Method::SeedsAndTestExamples),
        };
        let f = build(&entries, versus, Some(1));
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].difference_points.mean, f[0].step_cost_ratio), (0.0, 1.0));
        assert_eq!((f[1].step_cost_ratio, f[1].training_time_ratio), (2.0, 2.0));
        assert_eq!(f[1].share_of_sam_gain, None, "SAM against itself");
        assert_eq!(f[2].step_cost_ratio, 1.25);
        assert_eq!(f[2].share_of_sam_gain, Some(0.75));
        assert_eq!(f[2].difference_to_sam_points.as_ref().unwrap().mean, -1.0);
        assert_eq!(f[2].interval_points, Some((1.5, 4.5)));
        let md = markdown(&f, "SGD");
        assert!(
            md.contains("| looksam | +3.00 ± 1.50 | 1.25× | 12.0 | 1.20× | 20 % | 75 % [43, 105 %] | -1.00 ± 1.20 |"),
            "{md}"
        );
        // SAM's gain not significant: no share.
        let noisy = |i: usize, j: usize| Interval {
            half_width: Some(10.0),
            ..versus(i, j)
        };
        assert_eq!(build(&entries, noisy, Some(1))[2].share_of_sam_gain, None);
        // SAM significantly worse than the base: no "share of a loss".
        let loss = [0.0, -4.0, -3.0];
        let worse = |i: usize, j: usize| Interval {
            mean: loss[j] - loss[i],
            ..versus(i, j)
        };
        let f = build(&entries, worse, Some(1));
        assert_eq!((f[2].share_of_sam_gain, f[2].share_of_sam_gain_interval), (None, None));
        // The share's interval is Fieller's: its ends solve (a − r·b)² = H²(a − r·b).
        let (lo, hi) = build(&entries, versus, Some(1))[2].share_of_sam_gain_interval.unwrap();
        for r in [lo, hi] {
            let h2 = 1.5f64.powi(2) + r * r - 2.0 * r * (1.5f64.powi(2) + 1.0 - 1.2f64.powi(2)) / 2.0;
            assert!(((3.0 - 4.0 * r).powi(2) - h2).abs() < 1e-9, "{r}");
        }
        let svg = charts(&f, "SGD", "")[0].to_svg();
        assert!(svg.contains("looksam") && svg.starts_with("<svg"), "{svg}");
    }
}
