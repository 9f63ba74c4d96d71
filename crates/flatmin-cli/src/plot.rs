//! Small SVG charts written by hand (no plotting dependency): line charts with error bars,
//! labelled scatter plots with error bars (the cost–accuracy frontier), and a filled contour map
//! with paths for the 2-D toy.

use std::fmt::Write;

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

const W: f64 = 720.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// About five round tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let first = (lo / step).ceil() * step;
    (0..)
        .map(|i| first + i as f64 * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 0.01 && v.abs() < 1e5) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// The plot area of a chart: its size, data ranges and the shared drawing (header, axes,
/// legend) of every chart kind.
struct Frame {
    width: f64,
    right: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn plot_width(&self) -> f64 {
        self.width - LEFT - self.right
    }

    fn plot_height(&self) -> f64 {
        H - TOP - BOTTOM
    }

    fn sx(&self, x: f64) -> f64 {
        LEFT + (x - self.x.0) / (self.x.1 - self.x.0) * self.plot_width()
    }

    fn sy(&self, y: f64) -> f64 {
        TOP + self.plot_height() - (y - self.y.0) / (self.y.1 - self.y.0) * self.plot_height()
    }

    /// The SVG header, white background and title.
    fn open(&self, title: &str) -> String {
        let w = self.width;
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{H}" viewBox="0 0 {w} {H}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
            LEFT + self.plot_width() / 2.0,
            esc(title)
        )
    }

    /// Tick labels (with grid lines when `grid`), the frame and the axis labels.
    fn axes(&self, svg: &mut String, x_label: &str, y_label: &str, grid: bool) {
        let (pw, ph) = (self.plot_width(), self.plot_height());
        for t in ticks(self.y.0, self.y.1) {
            let y = self.sy(t);
            if grid {
                let _ = write!(
                    svg,
                    r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
                    LEFT + pw
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for t in ticks(self.x.0, self.x.1) {
            let x = self.sx(t);
            if grid {
                let _ = write!(
                    svg,
                    r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#f0f0f0"/>"##,
                    TOP + ph
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                TOP + ph + 18.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
            LEFT + pw / 2.0,
            H - 12.0,
            esc(x_label),
            TOP + ph / 2.0,
            esc(y_label)
        );
    }

    /// Legend entry `i`: a line sample and its label, right of the plot.
    fn legend(&self, svg: &mut String, i: usize, colour: &str, dash: &str, label: &str) {
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + self.plot_width() + 14.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            esc(label)
        );
    }
}

impl LineChart {
    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y, e) in pts {
            let e = e.unwrap_or(0.0);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y - e);
            y1 = y1.max(y + e);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        // A little room on every side, so end points and their error bars clear the frame.
        let (xpad, ypad) = ((x1 - x0) * 0.03, ((y1 - y0) * 0.08).max(1e-9));
        let frame = Frame {
            width: W,
            right: RIGHT,
            x: (x0 - xpad, x1 + xpad),
            y: (y0 - ypad, y1 + ypad),
        };
        let mut svg = frame.open(&self.title);
        frame.axes(&mut svg, &self.x_label, &self.y_label, true);
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let dash = if i >= PALETTE.len() {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            };
            let path: Vec<String> = s
                .points
                .iter()
                .map(|&(x, y, _)| format!("{:.1},{:.1}", frame.sx(x), frame.sy(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
            for &(x, y, e) in &s.points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    frame.sx(x),
                    frame.sy(y)
                );
                if let Some(e) = e.filter(|e| *e > 0.0) {
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}"/>"#,
                        frame.sy(y - e),
                        frame.sy(y + e),
                        x = frame.sx(x)
                    );
                }
            }
            frame.legend(&mut svg, i, colour, dash, &s.label);
        }
        svg.push_str("</svg>\n");
        svg
    }
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

impl ScatterChart {
    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let finite = |v: f64| v.is_finite();
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, 0.0f64);
        for p in self.points.iter().filter(|p| finite(p.x) && finite(p.y)) {
            let e = p.error.filter(|e| finite(*e)).unwrap_or(0.0);
            x0 = x0.min(p.x);
            x1 = x1.max(p.x);
            y0 = y0.min(p.y - e);
            y1 = y1.max(p.y + e);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 - x0 < 1e-12 {
            (x0, x1) = (x0 - 0.5, x1 + 0.5);
        }
        if y1 - y0 < 1e-12 {
            (y0, y1) = (y0 - 1.0, y1 + 1.0);
        }
        let (xpad, ypad) = ((x1 - x0) * 0.08, (y1 - y0) * 0.08);
        let frame = Frame {
            width: W,
            right: RIGHT,
            x: (x0 - xpad, x1 + xpad),
            y: (y0 - ypad, y1 + ypad),
        };
        let mut svg = frame.open(&self.title);
        frame.axes(&mut svg, &self.x_label, &self.y_label, true);
        let zero = frame.sy(0.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{zero:.1}" y2="{zero:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
            LEFT + frame.plot_width()
        );
        for (i, p) in self.points.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            if finite(p.x) && finite(p.y) {
                let (px, py) = (frame.sx(p.x), frame.sy(p.y));
                if let Some(e) = p.error.filter(|e| finite(*e) && *e > 0.0) {
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}"/>"#,
                        frame.sy(p.y - e),
                        frame.sy(p.y + e),
                        px - 4.0,
                        px + 4.0,
                        frame.sy(p.y - e),
                        frame.sy(p.y - e),
                        px - 4.0,
                        px + 4.0,
                        frame.sy(p.y + e),
                        frame.sy(p.y + e)
                    );
                }
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{px:.1}" cy="{py:.1}" r="4.5" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                    px + 7.0,
                    py - 6.0,
                    esc(&p.label)
                );
            }
            frame.legend(&mut svg, i, colour, "", &p.label);
        }
        svg.push_str("</svg>\n");
        svg
    }
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

/// Low values dark blue, high values near white: the minima stand out.
fn ramp(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let (lo, hi) = ((33.0, 102.0, 172.0), (247.0, 247.0, 247.0));
    let mix = |a: f64, b: f64| (a + (b - a) * t) as u8;
    format!("#{:02x}{:02x}{:02x}", mix(lo.0, hi.0), mix(lo.1, hi.1), mix(lo.2, hi.2))
}

/// Width and right margin of a contour map (its legend labels are long).
const MAP_W: f64 = 900.0;
const MAP_RIGHT: f64 = 270.0;

impl ContourMap {
    /// The map as an SVG document.
    pub fn to_svg(&self) -> String {
        let rows = self.values.len();
        let cols = self.values.first().map_or(0, Vec::len);
        let frame = Frame {
            width: MAP_W,
            right: MAP_RIGHT,
            x: (self.x.0, self.x.1),
            y: (self.y.0, self.y.1),
        };
        let (pw, ph) = (frame.plot_width(), frame.plot_height());
        let finite = self.values.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let mut svg = frame.open(&self.title);
        let (cw, ch) = (pw / cols.max(1) as f64, ph / rows.max(1) as f64);
        svg.push_str(r#"<g shape-rendering="crispEdges">"#);
        for (j, row) in self.values.iter().enumerate() {
            for (i, v) in row.iter().enumerate() {
                let t = if v.is_finite() {
                    (v - lo) / (hi - lo).max(1e-12)
                } else {
                    1.0
                };
                let _ = write!(
                    svg,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                    LEFT + i as f64 * cw,
                    TOP + ph - (j + 1) as f64 * ch,
                    cw + 0.3,
                    ch + 0.3,
                    ramp(t.sqrt())
                );
            }
        }
        svg.push_str("</g>\n");
        // Iso-lines by marching squares on the grid's corners.
        let gx = |i: f64| self.x.0 + i / (cols - 1).max(1) as f64 * (self.x.1 - self.x.0);
        let gy = |j: f64| self.y.0 + j / (rows - 1).max(1) as f64 * (self.y.1 - self.y.0);
        for &level in &self.levels {
            let mut d = String::new();
            for j in 0..rows.saturating_sub(1) {
                for i in 0..cols.saturating_sub(1) {
                    let c = [
                        (i as f64, j as f64, self.values[j][i]),
                        (i as f64 + 1.0, j as f64, self.values[j][i + 1]),
                        (i as f64 + 1.0, j as f64 + 1.0, self.values[j + 1][i + 1]),
                        (i as f64, j as f64 + 1.0, self.values[j + 1][i]),
                    ];
                    let mut crossings = Vec::new();
                    for k in 0..4 {
                        let (a, b) = (c[k], c[(k + 1) % 4]);
                        if (a.2 - level) * (b.2 - level) < 0.0 {
                            let t = (level - a.2) / (b.2 - a.2);
                            crossings.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
                        }
                    }
                    for pair in crossings.chunks(2).filter(|p| p.len() == 2) {
                        let (p, q) = (pair[0], pair[1]);
                        let _ = write!(
                            d,
                            "M{:.1} {:.1}L{:.1} {:.1}",
                            frame.sx(gx(p.0)),
                            frame.sy(gy(p.1)),
                            frame.sx(gx(q.0)),
                            frame.sy(gy(q.1))
                        );
                    }
                }
            }
            let _ = writeln!(svg, r##"<path d="{d}" stroke="#555" stroke-width="0.7" fill="none"/>"##);
        }
        frame.axes(&mut svg, &self.x.2, &self.y.2, false);
        let inside = |&(x, y): &(f64, f64)| x >= self.x.0 && x <= self.x.1 && y >= self.y.0 && y <= self.y.1;
        for (i, (label, points)) in self.paths.iter().enumerate() {
            let colour = PALETTE[(i + 1) % PALETTE.len()];
            let p: Vec<String> = points
                .iter()
                .filter(|p| inside(p))
                .map(|&(x, y)| format!("{:.1},{:.1}", frame.sx(x), frame.sy(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                p.join(" ")
            );
            if let Some(&end) = points.last().filter(|p| inside(p)) {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"/>"#,
                    frame.sx(end.0),
                    frame.sy(end.1)
                );
            }
            frame.legend(&mut svg, i, colour, "", label);
        }
        for (label, (x, y)) in &self.marks {
            let (px, py) = (frame.sx(*x), frame.sy(*y));
            let _ = writeln!(
                svg,
                r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="16">✕</text><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                py + 5.0,
                px + 9.0,
                py - 8.0,
                esc(label)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}
