//! [`ScatterChart`]: labelled points with ±error bars and a dashed line at `y = 0`.

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::ScatterChart;
use super::axis::{Extent, usable};
use super::canvas::{Area, Entry, Fail, GLYPH, anchored, colour, frame, legend, no_data, render, titled};
use super::line::bar;

/// Width of a scatter chart and of its legend column, in pixels.
const WIDTH: u32 = 720;
const LEGEND: u32 = 190;

/// The `y = 0` line ("no difference").
const ZERO: RGBColor = RGBColor(0x88, 0x88, 0x88);

impl ScatterChart {
    /// The chart as an SVG document. Points with a NaN, infinite or huge coordinate are left
    /// out of the plot but keep their legend entry; `y = 0` is always in view.
    pub fn to_svg(&self) -> String {
        render(WIDTH, |root| self.draw(root))
    }

    fn draw(&self, root: &Area<'_>) -> Result<(), Fail> {
        let (mut xs, mut ys) = (Extent::empty(), Extent::empty());
        ys.add(0.0);
        for p in self.points.iter().filter(|p| usable(p.x) && usable(p.y)) {
            xs.add(p.x);
            ys.add(p.y);
            if let Some(e) = bar(p.y, p.error) {
                ys.add(p.y - e);
                ys.add(p.y + e);
            }
        }
        let (plot, side) = titled(root, &self.title)?.split_horizontally(WIDTH - LEGEND);
        let chart = frame(
            &plot,
            (xs.axis(0.08), ys.axis(0.08)),
            (&self.x_label, &self.y_label),
            true,
        )?;
        let x = chart.x_range();
        let zero = [(x.start, 0.0), (x.end, 0.0)];
        chart
            .plotting_area()
            .draw(&DashedPathElement::new(zero, 4, 3, ZERO.stroke_width(1)))?;
        let right = chart.plotting_area().get_pixel_range().0.end;
        let mut entries = Vec::new();
        for (i, p) in self.points.iter().enumerate() {
            let c = colour(i);
            if usable(p.x) && usable(p.y) {
                if let Some(e) = bar(p.y, p.error) {
                    let style = c.stroke_width(2);
                    chart
                        .plotting_area()
                        .draw(&ErrorBar::new_vertical(p.x, p.y - e, p.y, p.y + e, style, 9))?;
                }
                // The label goes right of the point, or left of it if it would cross the frame.
                let room = right - chart.backend_coord(&(p.x, p.y)).0;
                let width = (p.label.chars().count() as f64 * GLYPH * 11.0) as i32;
                let (dx, h) = if 7 + width < room {
                    (7, HPos::Left)
                } else {
                    (-7, HPos::Right)
                };
                let label = Text::new(p.label.clone(), (dx, -4), anchored(11.0, h, VPos::Bottom));
                let point = EmptyElement::at((p.x, p.y)) + Circle::new((0, 0), 5, c.filled()) + label;
                chart.plotting_area().draw(&point)?;
            }
            entries.push(Entry {
                label: &p.label,
                colour: c,
                dashed: false,
            });
        }
        if xs.is_empty() {
            no_data(&chart, "no data")?;
        }
        legend(&side, 6, &entries)
    }
}
