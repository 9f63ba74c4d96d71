//! One axis of a chart: its data range (made finite and non-empty whatever the data), its round
//! tick values and their labels, as a plotters coordinate so that the mesh uses them.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter};

/// Values beyond this magnitude are treated like NaN: dropped, never drawn (their span would
/// overflow and their position mean nothing on a chart).
const LARGEST: f64 = 1e300;

/// Whether `v` can be placed on a chart: finite and at most [`LARGEST`] in magnitude.
pub(super) fn usable(v: f64) -> bool {
    v.is_finite() && v.abs() <= LARGEST
}

/// The smallest interval holding every value given to it (usable ones only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Extent {
    lo: f64,
    hi: f64,
}

impl Extent {
    /// Holds nothing yet.
    pub(super) fn empty() -> Self {
        Self {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }

    /// Widens the extent to hold `v` when `v` is usable.
    pub(super) fn add(&mut self, v: f64) {
        if usable(v) {
            self.lo = self.lo.min(v);
            self.hi = self.hi.max(v);
        }
    }

    /// Whether no usable value was added.
    pub(super) fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    /// The axis for this extent with `pad` of its span added on both sides; a single value gets
    /// a range around it and an empty extent `[0, 1]`, so the axis is always finite and non-empty.
    pub(super) fn axis(&self, pad: f64) -> Axis {
        if self.is_empty() {
            return Axis::new(0.0, 1.0);
        }
        let (lo, hi) = (self.lo, self.hi);
        let span = hi - lo;
        let scale = lo.abs().max(hi.abs());
        if span <= scale * 1e-9 || span < 1e-300 {
            let half = (scale * 0.05).max(0.5);
            return Axis::new(lo - half, hi + half);
        }
        Axis::new(lo - span * pad, hi + span * pad)
    }
}

/// A linear axis from `lo` to `hi` (`lo < hi`, both finite) with round ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    lo: f64,
    hi: f64,
}

impl Axis {
    /// The axis `[lo, hi]`; a reversed, empty or non-finite pair becomes a usable range.
    pub(super) fn new(lo: f64, hi: f64) -> Self {
        let (lo, hi) = if usable(lo) && usable(hi) {
            (lo.min(hi), lo.max(hi))
        } else {
            (0.0, 1.0)
        };
        if hi - lo > 0.0 {
            Self { lo, hi }
        } else {
            Self {
                lo: lo - 0.5,
                hi: hi + 0.5,
            }
        }
    }

    /// The lower end.
    pub(super) fn lo(&self) -> f64 {
        self.lo
    }

    /// The upper end.
    pub(super) fn hi(&self) -> f64 {
        self.hi
    }

    /// Whether `v` lies on the axis.
    pub(super) fn contains(&self, v: f64) -> bool {
        v >= self.lo && v <= self.hi
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = ((value - self.lo) / (self.hi - self.lo)).clamp(-1.0, 2.0);
        let t = if t.is_nan() { 0.0 } else { t };
        let pixels = f64::from(limit.1) - f64::from(limit.0);
        limit.0 + (t * pixels).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Only the bold grid (with labels) is drawn: no light lines between the ticks.
        match hint.weight() {
            KeyPointWeight::Bold => ticks(self.lo, self.hi),
            KeyPointWeight::Any => Vec::new(),
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format(value: &f64) -> String {
        label(*value, None)
    }

    fn format_ext(&self, value: &f64) -> String {
        label(*value, tick_step(self.lo, self.hi))
    }
}

/// The round step (1, 2, 2.5 or 5 times a power of ten) giving about five ticks on `[lo, hi]`;
/// `None` when the range is empty, not finite or too narrow for its magnitude.
fn tick_step(lo: f64, hi: f64) -> Option<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return None;
    }
    let mag = 10f64.powf((span / 5.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let resolvable = step > 0.0 && step.is_finite() && step > lo.abs().max(hi.abs()) * 1e-12;
    resolvable.then_some(step)
}

/// About five round tick values covering `[lo, hi]`; just the two ends when no round step fits.
pub(super) fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let Some(step) = tick_step(lo, hi) else {
        return if usable(lo) && usable(hi) {
            vec![lo, hi]
        } else {
            Vec::new()
        };
    };
    let first = (lo / step).ceil() * step;
    let out: Vec<f64> = (0..12)
        .map(|i| first + f64::from(i) * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v })
        .collect();
    if out.len() < 2 { vec![lo, hi] } else { out }
}

/// A tick label for an axis whose ticks are `step` apart: plain with just the decimals the step
/// needs, scientific for magnitudes of 10⁵ and more or steps below 10⁻³.
pub(super) fn label(v: f64, step: Option<f64>) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let Some(step) = step else {
        // No step known: three decimals at most, trailing zeros dropped.
        if v.abs() >= 0.01 && v.abs() < 1e5 {
            let s = format!("{v:.3}");
            return s.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        return format!("{v:.1e}");
    };
    // Decimals of the step: 0.25 needs two, 0.5 one, 20 none.
    let decimals = (0..=12)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() <= scaled * 1e-6
        })
        .unwrap_or(12);
    if v.abs() >= 1e5 || step < 1e-3 {
        // Significant digits: as many as tell neighbouring ticks apart.
        let digits = (v.abs().log10().floor() - step.log10().floor()).clamp(0.0, 6.0) as usize;
        format!("{v:.digits$e}")
    } else {
        format!("{v:.*}", decimals as usize)
    }
}
