//! Small SVG charts written by hand (no plotting dependency): line charts with error bars, and a
//! filled contour map with paths for the 2-D toy.

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
        let pad = ((y1 - y0) * 0.08).max(1e-9);
        let (y0, y1) = (y0 - pad, y1 + pad);
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
            LEFT + pw / 2.0,
            esc(&self.title)
        );
        for t in ticks(y0, y1) {
            let y = sy(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for t in ticks(x0, x1) {
            let x = sx(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#f0f0f0"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + ph,
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
            esc(&self.x_label),
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
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
                .map(|&(x, y, _)| format!("{:.1},{:.1}", sx(x), sy(y)))
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
                    sx(x),
                    sy(y)
                );
                if let Some(e) = e.filter(|e| *e > 0.0) {
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}"/>"#,
                        sy(y - e),
                        sy(y + e),
                        x = sx(x)
                    );
                }
            }
            let ly = TOP + 10.0 + i as f64 * 20.0;
            let lx = LEFT + pw + 14.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                esc(&s.label)
            );
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
        let pw = MAP_W - LEFT - MAP_RIGHT;
        let ph = H - TOP - BOTTOM;
        let (x0, x1) = (self.x.0, self.x.1);
        let (y0, y1) = (self.y.0, self.y.1);
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
        let finite = self.values.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" height="{H}" viewBox="0 0 {MAP_W} {H}" font-family="sans-serif" font-size="12">
<rect width="{MAP_W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
            LEFT + pw / 2.0,
            esc(&self.title)
        );
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
        // Iso-lines by marching squares on cell corners.
        let gx = |i: f64| x0 + i / (cols - 1).max(1) as f64 * (x1 - x0);
        let gy = |j: f64| y0 + j / (rows - 1).max(1) as f64 * (y1 - y0);
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
                        let _ = write!(
                            d,
                            "M{:.1} {:.1}L{:.1} {:.1}",
                            sx(gx(pair[0].0)),
                            sy(gy(pair[0].1)),
                            sx(gx(pair[1].0)),
                            sy(gy(pair[1].1))
                        );
                    }
                }
            }
            let _ = writeln!(svg, r##"<path d="{d}" stroke="#555" stroke-width="0.7" fill="none"/>"##);
        }
        for t in ticks(y0, y1) {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                sy(t) + 4.0,
                fmt_tick(t)
            );
        }
        for t in ticks(x0, x1) {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                sx(t),
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
            esc(&self.x.2),
            TOP + ph / 2.0,
            esc(&self.y.2)
        );
        let inside = |&(x, y): &(f64, f64)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
        for (i, (label, points)) in self.paths.iter().enumerate() {
            let colour = PALETTE[(i + 1) % PALETTE.len()];
            let p: Vec<String> = points
                .iter()
                .filter(|p| inside(p))
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
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
                    sx(end.0),
                    sy(end.1)
                );
            }
            let ly = TOP + 10.0 + i as f64 * 20.0;
            let lx = LEFT + pw + 14.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                esc(label)
            );
        }
        for (label, (x, y)) in &self.marks {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="16">✕</text><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                sx(*x),
                sy(*y) + 5.0,
                sx(*x) + 9.0,
                sy(*y) - 8.0,
                esc(label)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}
