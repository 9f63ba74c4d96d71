//! The charts' SVG: what must be in it (title, legend, one line per series, the points), what
//! must not (NaN, unescaped text), and that no input makes drawing panic or hang.

use super::axis::{Axis, Extent, label, ticks};
use super::canvas::{colour, fit};
use super::contour::{Edge, iso_chains};
use super::{ContourMap, LabelledPoint, LineChart, PALETTE, ScatterChart, Series};

/// The SVG elements `tag` drawn in `colour` (plotters writes colours as upper-case hex).
fn count(svg: &str, tag: &str, colour: &str) -> usize {
    let (stroke, fill) = (format!(r#"stroke="{colour}""#), format!(r#"fill="{colour}""#));
    svg.lines()
        .filter(|l| l.starts_with(&format!("<{tag} ")) && (l.contains(&stroke) || l.contains(&fill)))
        .count()
}

/// The texts of the document (plotters writes each between its own `<text …>` and `</text>`
/// lines), unescaped.
fn texts(svg: &str) -> Vec<String> {
    let lines: Vec<&str> = svg.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with("<text "))
        .map(|w| {
            w[1].replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// Whether the document writes `text` (exactly, as one text element).
fn has(svg: &str, text: &str) -> bool {
    texts(svg).iter().any(|t| t == text)
}

/// A well-formed document: one `<svg>` opened first, closed last.
fn complete(svg: &str) -> bool {
    svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>") && svg.matches("<svg").count() == 1
}

fn series(label: &str, points: &[(f64, f64, Option<f64>)]) -> Series {
    Series {
        label: label.into(),
        points: points.to_vec(),
    }
}

fn line_chart(series: Vec<Series>) -> LineChart {
    LineChart {
        title: "Accuracy against noise".into(),
        x_label: "noise rate".into(),
        y_label: "test accuracy (%)".into(),
        series,
    }
}

#[test]
fn a_line_chart_has_its_title_labels_legend_and_one_line_per_series() {
    let chart = line_chart(vec![
        series("sgd", &[(0.0, 70.0, Some(2.0)), (0.5, 60.0, Some(3.0))]),
        series("sam", &[(0.0, 72.0, None), (0.5, 65.0, Some(1.0)), (1.0, 50.0, None)]),
    ]);
    let svg = chart.to_svg();
    assert!(complete(&svg), "{svg}");
    for text in [
        "Accuracy against noise",
        "noise rate",
        "test accuracy (%)",
        "sgd",
        "sam",
    ] {
        assert!(has(&svg, text), "{text} missing");
    }
    // One line per series and one legend sample, in the series' colour.
    for (i, n_points) in [(0, 2), (1, 3)] {
        let c = PALETTE[i];
        assert_eq!(count(&svg, "polyline", c), 2, "series {i}");
        assert_eq!(count(&svg, "circle", c), n_points, "series {i}: a marker per point");
    }
    // Error bars: a bar and two caps per point that has one (3 for sgd, 3 for sam's one).
    assert_eq!(count(&svg, "line", PALETTE[0]), 6);
    assert_eq!(count(&svg, "line", PALETTE[1]), 3);
    // Round tick labels.
    assert!(has(&svg, "0") && has(&svg, "0.4") && has(&svg, "60"), "{svg}");
}

#[test]
fn nan_and_infinite_points_are_dropped_and_break_the_line() {
    let chart = line_chart(vec![series(
        "sgd",
        &[
            (0.0, 1.0, Some(f64::NAN)),
            (1.0, f64::NAN, Some(1.0)),
            (2.0, 3.0, Some(f64::INFINITY)),
            (3.0, 4.0, Some(0.5)),
            (f64::INFINITY, 2.0, None),
            (4.0, -f64::INFINITY, None),
        ],
    )]);
    let svg = chart.to_svg();
    assert!(complete(&svg), "{svg}");
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    // Three drawable points: two runs, (0, 1) alone and (2, 3)–(3, 4), plus the legend.
    assert_eq!(count(&svg, "circle", PALETTE[0]), 3);
    assert_eq!(count(&svg, "polyline", PALETTE[0]), 3);
    // Only the one finite error bar is drawn.
    assert_eq!(count(&svg, "line", PALETTE[0]), 3);
    assert!(!has(&svg, "no data"));
}

#[test]
fn an_empty_chart_says_so() {
    for chart in [
        line_chart(Vec::new()),
        line_chart(vec![series("sgd", &[])]),
        line_chart(vec![series("sgd", &[(f64::NAN, f64::NAN, None)])]),
    ] {
        let svg = chart.to_svg();
        assert!(
            complete(&svg) && has(&svg, "no data") && has(&svg, "Accuracy against noise"),
            "{svg}"
        );
    }
    let scatter = ScatterChart {
        title: "t".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        points: Vec::new(),
    };
    assert!(has(&scatter.to_svg(), "no data"));
    let svg = contour(Vec::new(), Vec::new()).to_svg();
    assert!(complete(&svg) && has(&svg, "no values"), "{svg}");
}

#[test]
fn extreme_values_neither_panic_nor_hang_and_stay_finite() {
    let cases: [&[(f64, f64, Option<f64>)]; 7] = [
        &[(1e308, -1e308, Some(1e308)), (-1e308, 1e308, None)],
        &[(0.0, 1e-310, None), (1e-310, 2e-310, Some(1e-320))],
        &[(1e15, 1e15, None), (1e15 + 1.0, 1e15 + 0.5, None)],
        &[(5.0, 5.0, None), (5.0, 5.0, Some(0.0))],
        &[(0.0, 0.0, Some(-1.0))],
        &[(-3.0, 2.0, Some(f64::MAX)), (f64::MIN_POSITIVE, f64::EPSILON, None)],
        &[(1e300, 1e-300, Some(1e300))],
    ];
    for points in cases {
        let svg = line_chart(vec![series("s", points)]).to_svg();
        assert!(complete(&svg), "{points:?}");
        assert!(
            !svg.contains("NaN") && !svg.contains("could not be drawn"),
            "{points:?}: {svg}"
        );
    }
}

#[test]
fn text_is_escaped() {
    let mut chart = line_chart(vec![series("a<b & c>d", &[(0.0, 1.0, None), (1.0, 2.0, None)])]);
    chart.title = "x < y & z".into();
    let svg = chart.to_svg();
    assert!(
        svg.contains("x &lt; y &amp; z") && svg.contains("a&lt;b &amp; c&gt;d"),
        "{svg}"
    );
    assert!(!svg.contains("x < y") && !svg.contains("a<b"));
}

#[test]
fn series_past_the_palette_are_dashed_and_a_long_legend_is_counted() {
    let many: Vec<Series> = (0..30)
        .map(|i| {
            series(
                &format!("run {i}"),
                &[(0.0, f64::from(i), None), (1.0, f64::from(i) + 1.0, None)],
            )
        })
        .collect();
    let svg = line_chart(many).to_svg();
    assert!(complete(&svg));
    // Series 8 has series 0's colour, dashed: many short segments instead of one line.
    assert!(count(&svg, "polyline", PALETTE[0]) > 4 * 2, "{svg}");
    assert!(
        has(&svg, "run 0")
            && texts(&svg)
                .iter()
                .any(|t| t.starts_with("… and ") && t.ends_with(" more")),
        "{svg}"
    );
    assert!(
        !has(&svg, "run 29"),
        "a legend that does not fit is cut, not overflowing"
    );
}

#[test]
fn a_scatter_chart_has_its_points_labels_bars_and_zero_line() {
    let point = |label: &str, x: f64, y: f64, error: Option<f64>| LabelledPoint {
        label: label.into(),
        x,
        y,
        error,
    };
    let chart = ScatterChart {
        title: "Gain against cost".into(),
        x_label: "time per step".into(),
        y_label: "difference".into(),
        points: vec![
            point("sgd", 1.0, 0.0, None),
            point("sam", 2.0, 3.0, Some(1.5)),
            point("broken", f64::NAN, 1.0, Some(1.0)),
        ],
    };
    let svg = chart.to_svg();
    assert!(complete(&svg));
    for text in ["Gain against cost", "time per step", "difference", "sgd", "sam"] {
        assert!(has(&svg, text), "{text} missing");
    }
    assert_eq!(count(&svg, "circle", PALETTE[0]), 1);
    // The point, and the error bar's own ring under it.
    assert_eq!(count(&svg, "circle", PALETTE[1]), 2);
    assert_eq!(count(&svg, "circle", PALETTE[2]), 0, "the NaN point is not drawn");
    // Its label appears once (the legend), not next to a point.
    assert_eq!(texts(&svg).iter().filter(|t| *t == "broken").count(), 1);
    assert_eq!(count(&svg, "line", PALETTE[1]), 3, "a bar with two caps");
    assert!(
        count(&svg, "polyline", "#888888") + count(&svg, "line", "#888888") > 3,
        "dashed y = 0"
    );
}

fn contour(values: Vec<Vec<f64>>, paths: Vec<(String, Vec<(f64, f64)>)>) -> ContourMap {
    ContourMap {
        title: "loss".into(),
        x: (-1.0, 1.0, "μ".into()),
        y: (-1.0, 1.0, "σ".into()),
        values,
        levels: vec![0.25, 0.5, f64::NAN],
        paths,
        marks: vec![("minimum".into(), (0.0, 0.0)), ("away".into(), (5.0, 5.0))],
    }
}

/// `x² + y²` on an `n` × `n` grid over `[-1, 1]²`.
fn bowl(n: usize) -> Vec<Vec<f64>> {
    let at = |k: usize| -1.0 + 2.0 * k as f64 / (n - 1) as f64;
    (0..n)
        .map(|j| (0..n).map(|i| at(i).powi(2) + at(j).powi(2)).collect())
        .collect()
}

#[test]
fn iso_lines_are_joined_into_closed_loops() {
    let chains = iso_chains(&bowl(21), 0.5);
    assert_eq!(chains.len(), 1, "{chains:?}");
    let ring = &chains[0];
    assert!(ring.len() > 10 && ring.first() == ring.last(), "{ring:?}");
    // A level outside the values crosses nothing; a NaN cell breaks no invariant.
    assert!(iso_chains(&bowl(21), 5.0).is_empty());
    let mut holed = bowl(21);
    holed[10][10] = f64::NAN;
    assert!(!iso_chains(&holed, 0.5).is_empty());
    // An open line (a straight level set) runs from one side to the other.
    let ramp: Vec<Vec<f64>> = (0..5).map(|_| (0..5).map(|i| i as f64).collect()).collect();
    let open = iso_chains(&ramp, 1.5);
    assert_eq!(open.len(), 1);
    assert!(
        matches!(open[0][0], Edge::Horizontal(1, _)) && open[0].len() == 5,
        "{open:?}"
    );
}

#[test]
fn a_contour_map_has_its_field_lines_paths_and_marks() {
    let path = (
        "sam → flat".to_string(),
        vec![(-0.8, -0.8), (-0.4, -0.2), (f64::NAN, 0.0), (0.0, 0.1), (9.0, 9.0)],
    );
    let svg = contour(bowl(21), vec![path]).to_svg();
    assert!(complete(&svg));
    assert!(has(&svg, "loss") && has(&svg, "μ") && has(&svg, "σ") && has(&svg, "sam → flat"));
    assert!(
        has(&svg, "minimum") && !has(&svg, "away"),
        "marks outside the map are left out"
    );
    assert!(svg.matches("<rect").count() >= 21 * 21, "a cell per value");
    assert_eq!(count(&svg, "polyline", "#555555"), 2, "one closed line per level");
    // The path is broken at the NaN and where it leaves the map: two pieces and the legend.
    assert_eq!(count(&svg, "polyline", PALETTE[1]), 3);
    assert!(!svg.contains("NaN"));
    // Ragged or NaN grids draw too.
    let ragged = vec![vec![1.0, f64::NAN, 2.0], vec![0.5], vec![f64::INFINITY, 0.0, 1.0]];
    assert!(complete(&contour(ragged, Vec::new()).to_svg()));
}

#[test]
fn ticks_are_round_and_few_whatever_the_range() {
    assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
    assert_eq!(ticks(-45.0, 45.0), vec![-40.0, -20.0, 0.0, 20.0, 40.0]);
    for (lo, hi) in [
        (0.0, 1e-310),
        (1e15, 1e15 + 1.0),
        (-1e300, 1e300),
        (3.0, 3.0),
        (1.0, 0.0),
        (0.0, f64::NAN),
    ] {
        let t = ticks(lo, hi);
        assert!(t.len() <= 12 && t.iter().all(|v| v.is_finite()), "{lo} {hi}: {t:?}");
    }
    assert_eq!(label(0.25, Some(0.25)), "0.25");
    assert_eq!(label(1.0, Some(0.25)), "1.00");
    assert_eq!(label(40.0, Some(20.0)), "40");
    assert_eq!(label(2e5, Some(5e4)), "2.0e5");
    assert_eq!(label(0.0004, Some(0.0002)), "4e-4");
    assert_eq!(label(0.123456, None), "0.123");
}

#[test]
fn axes_are_finite_and_non_empty_whatever_the_data() {
    let mut e = Extent::empty();
    assert_eq!(e.axis(0.1), Axis::new(0.0, 1.0));
    e.add(f64::NAN);
    e.add(f64::INFINITY);
    assert!(e.is_empty());
    e.add(50.0);
    let a = e.axis(0.1);
    assert!(a.lo() < 50.0 && a.hi() > 50.0, "{a:?}");
    e.add(-1e300);
    e.add(1e300);
    let a = e.axis(0.1);
    assert!(a.lo().is_finite() && a.hi().is_finite() && a.lo() < a.hi(), "{a:?}");
    assert_eq!(Axis::new(2.0, 1.0), Axis::new(1.0, 2.0));
    assert_eq!(Axis::new(f64::NAN, 1.0), Axis::new(0.0, 1.0));
}

#[test]
fn long_text_is_shrunk_then_cut_and_colours_follow_the_palette() {
    assert_eq!(fit("short", 12.0, 8.0, 200.0), ("short".to_string(), 12.0));
    let (text, px) = fit(&"x".repeat(40), 12.0, 8.0, 200.0);
    assert!((8.0..12.0).contains(&px) && text.chars().count() == 40);
    let (text, px) = fit(&"x".repeat(400), 12.0, 8.0, 200.0);
    assert!(px == 8.0 && text.ends_with('…') && text.chars().count() < 50, "{text}");
    for (i, hex) in PALETTE.iter().enumerate() {
        let c = colour(i);
        assert_eq!(format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2), *hex);
    }
    assert_eq!(colour(PALETTE.len()), colour(0));
}

#[test]
fn a_point_label_that_would_cross_the_frame_goes_left_of_its_point() {
    let point = |label: &str, x: f64| LabelledPoint {
        label: label.into(),
        x,
        y: 1.0,
        error: None,
    };
    let chart = ScatterChart {
        title: "t".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        points: vec![point("left-hand point", 0.0), point("a long right-hand label", 1.0)],
    };
    let svg = chart.to_svg();
    let lines: Vec<&str> = svg.lines().collect();
    // The text-anchor of the `nth` text element writing `text`.
    let anchor = |text: &str, nth: usize| {
        let i = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == text)
            .nth(nth)
            .map_or(0, |(i, _)| i);
        let attributes = lines[i.saturating_sub(1)];
        attributes
            .split("text-anchor=\"")
            .nth(1)
            .and_then(|a| a.split('"').next())
            .unwrap_or("")
            .to_string()
    };
    // Each label is written twice: at its point, then in the legend.
    assert_eq!(anchor("left-hand point", 0), "start");
    assert_eq!(anchor("a long right-hand label", 0), "end");
    assert_eq!(anchor("a long right-hand label", 1), "start", "the legend's entry");
}
