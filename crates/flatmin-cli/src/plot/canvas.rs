//! What every chart shares: the SVG canvas (with a readable fallback if drawing fails), the
//! title, the plot frame with its grid, ticks and axis labels, and the legend right of the plot.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PALETTE;
use super::axis::Axis;

/// A part of the SVG canvas in pixels.
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// A plot: its pixel area and data coordinates.
pub(super) type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;
/// Why drawing failed (writing into a string does not, but plotters' API can say so).
pub(super) type Fail = DrawingAreaErrorKind<std::io::Error>;

/// Height of every chart, in pixels.
pub(super) const HEIGHT: u32 = 460;
/// Text colour of labels and frame.
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
/// Grid lines.
const GRID: RGBColor = RGBColor(0xe5, 0xe5, 0xe5);
/// Average glyph width of a sans-serif font, in ems, to size text that has to fit.
pub(super) const GLYPH: f64 = 0.6;

/// The sans-serif font at `px` pixels (plotters' SVG backend writes its size divided by 1.24).
pub(super) fn font(px: f64) -> FontDesc<'static> {
    ("sans-serif", px * 1.24).into_font()
}

/// The font at `px` anchored at `h`/`v` of its position.
pub(super) fn anchored(px: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(font(px)).pos(Pos::new(h, v))
}

/// Colour `i` of [`PALETTE`], as plotters draws it.
pub(super) fn colour(i: usize) -> RGBColor {
    let hex = PALETTE[i % PALETTE.len()].trim_start_matches('#');
    let channel = |k: usize| {
        hex.get(k..k + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    RGBColor(channel(0), channel(2), channel(4))
}

/// `text` at the largest size from `px` down to `min_px` that fits `width` pixels, cut short
/// with "…" when even `min_px` is too large.
pub(super) fn fit(text: &str, px: f64, min_px: f64, width: f64) -> (String, f64) {
    let chars = text.chars().count().max(1) as f64;
    let size = (width / (chars * GLYPH)).clamp(min_px, px);
    let room = (width / (size * GLYPH)).floor() as usize;
    if text.chars().count() <= room {
        (text.to_string(), size)
    } else {
        let cut: String = text.chars().take(room.saturating_sub(1)).collect();
        (format!("{cut}…"), size)
    }
}

/// Draws a chart `width` × [`HEIGHT`] pixels with `draw` into an SVG document. Should plotters
/// report an error, the document says so in words instead of holding a half-drawn chart.
pub(super) fn render(width: u32, draw: impl FnOnce(&Area<'_>) -> Result<(), Fail>) -> String {
    let mut svg = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut svg, (width, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
    };
    match outcome {
        Ok(()) => svg,
        Err(e) => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, (width, HEIGHT)).into_drawing_area();
                let (message, px) = fit(
                    &format!("the chart could not be drawn: {e}"),
                    14.0,
                    8.0,
                    f64::from(width) - 20.0,
                );
                let style = anchored(px, HPos::Center, VPos::Center);
                // Nothing more to fall back on: at worst the document is an empty <svg>.
                let _ = root
                    .fill(&WHITE)
                    .and_then(|()| root.draw_text(&message, &style, (width as i32 / 2, HEIGHT as i32 / 2)))
                    .and_then(|()| root.present());
            }
            text
        }
    }
}

/// Writes `title` centred above everything (smaller, or cut, if it is too long for the width)
/// and returns the area below it.
pub(super) fn titled<'b>(root: &Area<'b>, title: &str) -> Result<Area<'b>, Fail> {
    let width = f64::from(root.dim_in_pixel().0) - 20.0;
    let (title, px) = fit(title, 15.0, 9.0, width);
    root.titled(&title, font(px))
}

/// Builds the plot on `area` over `x` × `y`: the grid (when `grid`), the ticks and their
/// labels, the axis labels (made to fit) and a frame around the plot.
pub(super) fn frame<'a, 'b>(
    area: &'a Area<'b>,
    (x, y): (Axis, Axis),
    (x_label, y_label): (&str, &str),
    grid: bool,
) -> Result<Chart<'a, 'b>, Fail> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(6)
        .margin_bottom(6)
        .margin_left(6)
        .margin_right(10)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x, y)?;
    let (w, h) = chart.plotting_area().dim_in_pixel();
    let (x_label, x_px) = fit(x_label, 12.0, 8.0, f64::from(w));
    let (y_label, y_px) = fit(y_label, 12.0, 8.0, f64::from(h));
    let grid_style = if grid {
        GRID.stroke_width(1)
    } else {
        TRANSPARENT.stroke_width(1)
    };
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style(font(x_px.min(y_px)))
        .label_style(font(12.0))
        .bold_line_style(grid_style)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .x_labels(8)
        .y_labels(8)
        .draw()?;
    outline(&chart)?;
    Ok(chart)
}

/// The frame around the plot (drawn again over anything that covered it).
pub(super) fn outline(chart: &Chart<'_, '_>) -> Result<(), Fail> {
    let (x, y) = (chart.x_range(), chart.y_range());
    chart.plotting_area().draw(&Rectangle::new(
        [(x.start, y.end), (x.end, y.start)],
        INK.stroke_width(1),
    ))
}

/// "no data" in the middle of an empty plot: an empty chart says it is empty.
pub(super) fn no_data(chart: &Chart<'_, '_>, what: &str) -> Result<(), Fail> {
    let (x, y) = (chart.x_range(), chart.y_range());
    let centre = ((x.start + x.end) / 2.0, (y.start + y.end) / 2.0);
    let style = anchored(14.0, HPos::Center, VPos::Center).color(&INK);
    chart.plotting_area().draw(&Text::new(what.to_string(), centre, style))
}

/// One legend entry: its label, colour and whether its line is dashed.
pub(super) struct Entry<'s> {
    /// The label.
    pub label: &'s str,
    /// The line's colour.
    pub colour: RGBColor,
    /// A dashed line.
    pub dashed: bool,
}

/// The legend in `area` (right of the plot): a line sample and the label of every entry, one
/// per 20 pixels from `top`; entries that do not fit are counted in a last "… and N more".
pub(super) fn legend(area: &Area<'_>, top: i32, entries: &[Entry<'_>]) -> Result<(), Fail> {
    let (w, h) = area.dim_in_pixel();
    let fits = ((h as i32 - top - 10) / 20).max(1) as usize;
    let shown = if entries.len() > fits { fits - 1 } else { entries.len() };
    let text_width = f64::from(w) - 40.0;
    for (i, e) in entries.iter().take(shown).enumerate() {
        let y = top + 10 + 20 * i as i32;
        let sample = [(6, y), (28, y)];
        if e.dashed {
            area.draw(&DashedPathElement::new(sample, 5, 3, e.colour.stroke_width(2)))?;
        } else {
            area.draw(&PathElement::new(sample, e.colour.stroke_width(2)))?;
        }
        let (label, px) = fit(e.label, 12.0, 9.0, text_width);
        area.draw_text(&label, &anchored(px, HPos::Left, VPos::Center), (34, y))?;
    }
    if shown < entries.len() {
        let y = top + 10 + 20 * shown as i32;
        let more = format!("… and {} more", entries.len() - shown);
        area.draw_text(&more, &anchored(12.0, HPos::Left, VPos::Center), (34, y))?;
    }
    Ok(())
}

/// Consecutive runs of the points for which `keep` holds: a line is broken where a point
/// cannot be drawn instead of joining its neighbours across it.
pub(super) fn runs<T: Copy>(points: &[T], keep: impl Fn(&T) -> bool) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current = Vec::new();
    for p in points {
        if keep(p) {
            current.push(*p);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
