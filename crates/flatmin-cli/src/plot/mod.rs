//! Small SVG charts drawn with plotters' SVG backend (no fonts needed: text is written as SVG
//! `<text>` for the viewer to set): line charts with error bars, labelled scatter plots with
//! error bars (the cost–accuracy frontier), and a filled contour map with paths for the 2-D toy.
//!
//! Rooms: `axis` (ranges that are always finite, round ticks and their labels), `canvas` (what
//! every chart shares: title, frame, legend, the fallback when drawing fails), one room per
//! chart kind, and the tests. No input panics: NaN, infinite or huge values are left out, and a
//! chart with nothing to draw says so.

mod axis;
mod canvas;
mod contour;
mod line;
mod scatter;
#[cfg(test)]
mod tests;

/// Colours for series, distinguishable and colour-blind friendly (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442",
];

/// One line of a chart: points `(x, y, error)`.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points; `error` draws a ±error bar.
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// A line chart.
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// A labelled point of a [`ScatterChart`]: `(x, y)` with a ±error bar on `y`.
pub struct LabelledPoint {
    /// Legend label (and the label written next to the point).
    pub label: String,
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Half-length of the vertical error bar, if any.
    pub error: Option<f64>,
}

/// Points with vertical error bars, each labelled, and a dashed horizontal line at `y = 0`
/// (no difference): where each optimizer sits between cost and gain.
pub struct ScatterChart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The points.
    pub points: Vec<LabelledPoint>,
}

/// A scalar field on a grid, drawn as coloured cells with iso-lines, and paths on top.
pub struct ContourMap {
    /// Title.
    pub title: String,
    /// X range and label.
    pub x: (f64, f64, String),
    /// Y range and label.
    pub y: (f64, f64, String),
    /// `values[j][i]` at `x_i`, `y_j` (rows bottom to top).
    pub values: Vec<Vec<f64>>,
    /// Iso-levels to draw.
    pub levels: Vec<f64>,
    /// Paths (label, points).
    pub paths: Vec<(String, Vec<(f64, f64)>)>,
    /// Marked points (label, point).
    pub marks: Vec<(String, (f64, f64))>,
}
