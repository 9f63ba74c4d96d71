//! [`ContourMap`]: a scalar field as coloured cells with iso-lines, paths and marked points.

use std::collections::{BTreeMap, BTreeSet};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::ContourMap;
use super::axis::{Axis, usable};
use super::canvas::{Area, Entry, Fail, anchored, colour, frame, legend, no_data, outline, render, titled};

/// Width of a contour map and of its legend column (its labels are long), in pixels.
const WIDTH: u32 = 900;
const LEGEND: u32 = 270;

/// Iso-lines.
const ISO: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Low values dark blue, high values near white: the minima stand out. `t` in `[0, 1]`.
fn ramp(t: f64) -> RGBColor {
    let t = if t.is_nan() { 1.0 } else { t.clamp(0.0, 1.0) };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(33.0, 247.0), mix(102.0, 247.0), mix(172.0, 247.0))
}

/// A grid edge an iso-line crosses: horizontal from node `(i, j)` to `(i + 1, j)`, or vertical
/// from `(i, j)` to `(i, j + 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Edge {
    /// From node `(i, j)` to `(i + 1, j)`.
    Horizontal(usize, usize),
    /// From node `(i, j)` to `(i, j + 1)`.
    Vertical(usize, usize),
}

/// The iso-line of `level` through the grid `values[j][i]` (marching squares), as chains of
/// crossed edges: each chain is one connected line, closed ones end on their first edge.
pub(super) fn iso_chains(values: &[Vec<f64>], level: f64) -> Vec<Vec<Edge>> {
    let at = |i: usize, j: usize| values.get(j).and_then(|row| row.get(i)).copied().unwrap_or(f64::NAN);
    // A side is crossed when one end is below the level and the other at or above it (both
    // values finite), so a line through a node is not broken there.
    let crosses = |a: f64, b: f64| usable(a) && usable(b) && (a < level) != (b < level);
    let rows = values.len();
    let cols = values.iter().map(Vec::len).min().unwrap_or(0);
    let mut next: BTreeMap<Edge, Vec<Edge>> = BTreeMap::new();
    for j in 0..rows.saturating_sub(1) {
        for i in 0..cols.saturating_sub(1) {
            let sides = [
                (Edge::Horizontal(i, j), at(i, j), at(i + 1, j)),
                (Edge::Vertical(i + 1, j), at(i + 1, j), at(i + 1, j + 1)),
                (Edge::Horizontal(i, j + 1), at(i + 1, j + 1), at(i, j + 1)),
                (Edge::Vertical(i, j), at(i, j + 1), at(i, j)),
            ];
            let crossed: Vec<Edge> = sides.iter().filter(|s| crosses(s.1, s.2)).map(|s| s.0).collect();
            for pair in crossed.chunks_exact(2) {
                next.entry(pair[0]).or_default().push(pair[1]);
                next.entry(pair[1]).or_default().push(pair[0]);
            }
        }
    }
    // Open lines start at an end (an edge with one neighbour); what is left are closed loops.
    let ends = next.iter().filter(|(_, n)| n.len() == 1).map(|(e, _)| *e);
    let starts: Vec<Edge> = ends.chain(next.keys().copied()).collect();
    let mut seen = BTreeSet::new();
    let mut chains = Vec::new();
    for start in starts {
        if !seen.insert(start) {
            continue;
        }
        let mut chain = vec![start];
        let mut current = start;
        while let Some(&n) = next.get(&current).and_then(|ns| ns.iter().find(|n| !seen.contains(*n))) {
            seen.insert(n);
            chain.push(n);
            current = n;
        }
        if chain.len() > 2 && next.get(&current).is_some_and(|ns| ns.contains(&start)) {
            chain.push(start);
        }
        chains.push(chain);
    }
    chains
}

impl ContourMap {
    /// The map as an SVG document. NaN or infinite values are drawn as the highest colour and
    /// cross no iso-line; path points outside the map are left out (the path is broken there).
    pub fn to_svg(&self) -> String {
        render(WIDTH, |root| self.draw(root))
    }

    /// Data coordinates of grid node `(i, j)` (fractional indices give points between nodes).
    fn node(&self, axes: (Axis, Axis), (i, j): (f64, f64)) -> (f64, f64) {
        let rows = self.values.len();
        let cols = self.values.iter().map(Vec::len).min().unwrap_or(0);
        let (x, y) = axes;
        let along = |a: &Axis, k: f64, n: usize| a.lo() + k / (n.max(2) - 1) as f64 * (a.hi() - a.lo());
        (along(&x, i, cols), along(&y, j, rows))
    }

    fn draw(&self, root: &Area<'_>) -> Result<(), Fail> {
        let axes = (Axis::new(self.x.0, self.x.1), Axis::new(self.y.0, self.y.1));
        let (plot, side) = titled(root, &self.title)?.split_horizontally(WIDTH - LEGEND);
        // The grid lines are covered by the field: only ticks and labels stay visible.
        let chart = frame(&plot, axes, (&self.x.2, &self.y.2), false)?;
        let area = chart.plotting_area();
        let finite = self.values.iter().flatten().copied().filter(|v| usable(*v));
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let cols = self.values.iter().map(Vec::len).min().unwrap_or(0);
        if lo > hi || cols == 0 {
            no_data(&chart, "no values")?;
        }
        // Each value colours the cell around its node; √ spreads the low values apart.
        let (x, y) = axes;
        let clip = |(px, py): (f64, f64)| (px.clamp(x.lo(), x.hi()), py.clamp(y.lo(), y.hi()));
        for (j, row) in self.values.iter().enumerate() {
            for (i, v) in row.iter().take(cols).enumerate() {
                let t = if usable(*v) {
                    ((v - lo) / (hi - lo).max(1e-300)).sqrt()
                } else {
                    1.0
                };
                let (i, j) = (i as f64, j as f64);
                let corners = [
                    clip(self.node(axes, (i - 0.5, j + 0.5))),
                    clip(self.node(axes, (i + 0.5, j - 0.5))),
                ];
                area.draw(&Rectangle::new(corners, ramp(t).filled()))?;
            }
        }
        for &level in self.levels.iter().filter(|l| usable(**l)) {
            for chain in iso_chains(&self.values, level) {
                let points: Vec<(f64, f64)> = chain.iter().map(|e| self.crossing(axes, *e, level)).collect();
                area.draw(&PathElement::new(points, ISO.mix(0.75).stroke_width(1)))?;
            }
        }
        outline(&chart)?;
        let inside = |&(px, py): &(f64, f64)| x.contains(px) && y.contains(py);
        let mut entries = Vec::new();
        for (i, (label, points)) in self.paths.iter().enumerate() {
            // Black is kept for the marks.
            let c = colour(i + 1);
            for run in super::canvas::runs(points, inside) {
                area.draw(&PathElement::new(run, c.stroke_width(2)))?;
            }
            if let Some(&end) = points.last().filter(|p| inside(p)) {
                area.draw(&Circle::new(end, 4, c.filled()))?;
            }
            entries.push(Entry {
                label,
                colour: c,
                dashed: false,
            });
        }
        for (label, point) in self.marks.iter().filter(|(_, p)| inside(p)) {
            let text = Text::new(label.clone(), (9, -6), anchored(11.0, HPos::Left, VPos::Bottom));
            area.draw(&(EmptyElement::at(*point) + Cross::new((0, 0), 5, BLACK.stroke_width(2)) + text))?;
        }
        legend(&side, 6, &entries)
    }

    /// Where the iso-line of `level` crosses `edge`, in data coordinates.
    fn crossing(&self, axes: (Axis, Axis), edge: Edge, level: f64) -> (f64, f64) {
        let at = |i: usize, j: usize| {
            self.values
                .get(j)
                .and_then(|row| row.get(i))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let (i, j, di, dj) = match edge {
            Edge::Horizontal(i, j) => (i, j, 1.0, 0.0),
            Edge::Vertical(i, j) => (i, j, 0.0, 1.0),
        };
        let (a, b) = (at(i, j), at(i + di as usize, j + dj as usize));
        let t = ((level - a) / (b - a)).clamp(0.0, 1.0);
        let t = if t.is_nan() { 0.5 } else { t };
        self.node(axes, (i as f64 + t * di, j as f64 + t * dj))
    }
}
