//! [`LineChart`]: lines through their points, with ±error bars.

use plotters::prelude::*;

use super::axis::{Extent, usable};
use super::canvas::{Area, Entry, Fail, colour, frame, legend, no_data, render, runs, titled};
use super::{LineChart, PALETTE};

/// Width of a line chart and of its legend column, in pixels.
const WIDTH: u32 = 720;
const LEGEND: u32 = 190;

/// The half-length of an error bar that can be drawn around `y`, if any.
pub(super) fn bar(y: f64, error: Option<f64>) -> Option<f64> {
    error.filter(|e| *e > 0.0 && usable(*e) && usable(y - e) && usable(y + e))
}

impl LineChart {
    /// The chart as an SVG document. Points with a NaN, infinite or huge (beyond 1e300)
    /// coordinate are left out (the line is broken there), as are such error bars; a chart with
    /// nothing to draw says "no data".
    pub fn to_svg(&self) -> String {
        render(WIDTH, |root| self.draw(root))
    }

    fn draw(&self, root: &Area<'_>) -> Result<(), Fail> {
        let drawable = |&(x, y, _): &(f64, f64, Option<f64>)| usable(x) && usable(y);
        let (mut xs, mut ys) = (Extent::empty(), Extent::empty());
        for &(x, y, e) in self.series.iter().flat_map(|s| &s.points).filter(|p| drawable(p)) {
            xs.add(x);
            ys.add(y);
            if let Some(e) = bar(y, e) {
                ys.add(y - e);
                ys.add(y + e);
            }
        }
        // A little room on every side, so end points and their error bars clear the frame.
        let (plot, side) = titled(root, &self.title)?.split_horizontally(WIDTH - LEGEND);
        let axes = (xs.axis(0.03), ys.axis(0.08));
        let mut chart = frame(&plot, axes, (&self.x_label, &self.y_label), true)?;
        let mut entries = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let c = colour(i);
            // Past the palette's colours, lines are dashed to stay apart.
            let dashed = i >= PALETTE.len();
            for run in runs(&s.points, drawable) {
                let line = run.iter().map(|&(x, y, _)| (x, y));
                if dashed {
                    chart.draw_series(DashedLineSeries::new(line, 6, 4, c.stroke_width(2)))?;
                } else {
                    chart.draw_series(LineSeries::new(line, c.stroke_width(2)))?;
                }
            }
            for &(x, y, e) in s.points.iter().filter(|p| drawable(p)) {
                match bar(y, e) {
                    Some(e) => {
                        chart
                            .plotting_area()
                            .draw(&ErrorBar::new_vertical(x, y - e, y, y + e, c.filled(), 6))?
                    }
                    None => chart.plotting_area().draw(&Circle::new((x, y), 3, c.filled()))?,
                }
            }
            entries.push(Entry {
                label: &s.label,
                colour: c,
                dashed,
            });
        }
        if xs.is_empty() {
            no_data(&chart, "no data")?;
        }
        legend(&side, 6, &entries)
    }
}
