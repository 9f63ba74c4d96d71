//! REPRODUCTION.md's tables, rendered from the result files `scripts/reproduce` writes.
//!
//! The page marks each table with `<!-- rendered: KIND ARGS -->` … `<!-- end rendered -->`;
//! [`render`] replaces what stands between the marks with the table made from the committed
//! files under the results folder (a sweep's `results.json`, a bench's JSON), so no number in
//! those tables is typed by hand. The example `render_reproduction` rewrites the page, and a
//! test checks that the committed page is what the committed files give.
//!
//! Kinds (a `SWEEP` is a folder under the results folder; a `CELL` is `SWEEP/LABEL`, a variant
//! of a sweep, paired with another sweep's runs by seed when both used the same settings):
//! - `accuracy SWEEP [lambda] [passes]`: test accuracy, mean ± std over seeds, per variant ×
//!   noise rate; `lambda` adds λ_max at the first noise rate, `passes` the second-pass share.
//! - `differences SWEEP BASE`: every other variant's difference to `BASE` per noise rate.
//! - `versus SWEEP BASE SAM`: the difference to `BASE` and to `SAM` per noise rate, with the
//!   share of SAM's gain.
//! - `against SWEEP BASE_CELL SAM_CELL`: the variants of `SWEEP` against cells of another sweep.
//! - `cost BENCH.json OPTIMIZER,…`: the bench's second-pass share and cost ratio per model.
//! - `claims`: the papers' claims ([`CLAIMS`]), each one comparison.
//!
//! A label with spaces (a swept variant, `sam rho=0.02`) is written with `+` in a mark:
//! `differences rho sam+rho=0.02`.
//!
//! Intervals are the fixed test set's (seeds and test examples,
//! [`stats::seeds_and_test_examples`]) and are decided in families as one `flatmin compare` run
//! decides its verdicts: in a table of differences, the comparisons at one noise rate are one
//! family; the claims table is one family. Each interval is shown at the level Holm's procedure
//! used for it, and a difference is **bold** only where Holm rejects 0 (family-wise 5 %).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::stats::{self, Estimate};

/// Why the page could not be rendered: the mark, file or cell at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A result file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A mark that names an unknown kind, sweep, cell or noise rate, or lacks its end.
    #[error("REPRODUCTION.md, mark `{mark}`: {message}")]
    Mark {
        /// The mark's text.
        mark: String,
        /// What was expected.
        message: String,
    },
}

/// One run of a sweep, as `results.json` holds it.
#[derive(Debug, Clone, Deserialize)]
struct Run {
    seed: u64,
    lambda_max: Option<f64>,
    #[serde(default)]
    test_correct: Option<String>,
}

/// A variant at a noise rate.
#[derive(Debug, Clone, Deserialize)]
struct Cell {
    variant: String,
    noise: f64,
    runs: Vec<Run>,
    accuracy_mean: f64,
    accuracy_std: f64,
    #[serde(default)]
    second_pass_fraction: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
struct Variant {
    label: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Spec {
    noise: Vec<f64>,
}

/// A sweep's `results.json`.
#[derive(Debug, Clone, Deserialize)]
struct Sweep {
    spec: Spec,
    variants: Vec<Variant>,
    cells: Vec<Cell>,
}

/// A difference with its family decision.
struct Compared {
    estimate: Estimate,
    /// Holm's level for it, and whether it rejected 0.
    alpha: f64,
    rejected: bool,
}

/// The results folder and the sweeps read from it.
struct Results {
    root: PathBuf,
    /// The sweeps read so far, by folder name: each results.json is read and parsed once.
    read: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<Sweep>>>,
}

impl Results {
    fn sweep(&self, name: &str) -> Result<std::rc::Rc<Sweep>, RenderError> {
        if let Some(sweep) = self.read.borrow().get(name) {
            return Ok(sweep.clone());
        }
        let sweep = std::rc::Rc::new(self.parse(name)?);
        self.read.borrow_mut().insert(name.to_string(), sweep.clone());
        Ok(sweep)
    }

    fn parse(&self, name: &str) -> Result<Sweep, RenderError> {
        let path = self.root.join(name).join("results.json");
        let text = std::fs::read_to_string(&path).map_err(|e| RenderError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| RenderError::File {
            path,
            message: e.to_string(),
        })
    }

    /// The cell `SWEEP/LABEL` at `noise`.
    fn cell(&self, reference: &str, noise: f64, mark: &str) -> Result<Cell, RenderError> {
        let (sweep, label) = reference
            .split_once('/')
            .ok_or_else(|| bad(mark, "expected SWEEP/LABEL"))?;
        find(&*self.sweep(sweep)?, label, noise, mark)
    }
}

fn bad(mark: &str, message: impl Into<String>) -> RenderError {
    RenderError::Mark {
        mark: mark.to_string(),
        message: message.into(),
    }
}

/// The variant label a mark names: a mark writes a label's spaces as `+` (marks are split at
/// whitespace), e.g. `sam+rho=0.02`.
fn label_of(written: &str) -> String {
    written.replace('+', " ")
}

/// The cell of variant `label` (as a mark writes it: [`label_of`]) at `noise`.
fn find(sweep: &Sweep, label: &str, noise: f64, mark: &str) -> Result<Cell, RenderError> {
    let label = label_of(label);
    sweep
        .cells
        .iter()
        .find(|c| c.variant == label && c.noise == noise)
        .cloned()
        .ok_or_else(|| bad(mark, format!("no cell `{label}` at noise {noise}")))
}

/// The difference of `method` to `base` in points, paired by seed over the fixed test set.
fn difference(base: &Cell, method: &Cell, mark: &str) -> Result<Estimate, RenderError> {
    let mut outcomes = Vec::new();
    for b in &base.runs {
        let Some(m) = method.runs.iter().find(|m| m.seed == b.seed) else {
            continue;
        };
        let digits = |r: &Run, cell: &Cell| {
            r.test_correct
                .as_deref()
                .and_then(crate::sweep::outcomes_from_digits)
                .ok_or_else(|| {
                    bad(
                        mark,
                        format!("`{}` seed {}: no per-example outcomes", cell.variant, r.seed),
                    )
                })
        };
        let (b, m) = (digits(b, base)?, digits(m, method)?);
        if b.len() != m.len() {
            return Err(bad(mark, "the two cells were tested on different test sets"));
        }
        outcomes.push(stats::discordance(&b, &m));
    }
    stats::seeds_and_test_examples(&outcomes).ok_or_else(|| {
        bad(
            mark,
            format!(
                "`{}` against `{}`: fewer than two paired seeds",
                method.variant, base.variant
            ),
        )
    })
}

/// Holm's decisions over a family of estimates.
fn family(estimates: Vec<Estimate>) -> Vec<Compared> {
    let groups = vec![0; estimates.len()];
    families(estimates, &groups)
}

/// Holm's decisions within each family: `groups[i]` names the family of `estimates[i]`.
fn families(estimates: Vec<Estimate>, groups: &[usize]) -> Vec<Compared> {
    let mut alpha = vec![ALPHA; estimates.len()];
    let mut rejected = vec![false; estimates.len()];
    let mut ids: Vec<usize> = groups.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let members: Vec<usize> = (0..estimates.len()).filter(|&i| groups[i] == id).collect();
        let decisions = stats::holm(&members.iter().map(|&i| &estimates[i]).collect::<Vec<_>>(), ALPHA);
        for (&i, d) in members.iter().zip(decisions) {
            alpha[i] = d.alpha;
            rejected[i] = d.rejected;
        }
    }
    estimates
        .into_iter()
        .enumerate()
        .map(|(i, estimate)| Compared {
            estimate,
            alpha: alpha[i],
            rejected: rejected[i],
        })
        .collect()
}

/// The family-wise error rate every table keeps.
const ALPHA: f64 = 0.05;

/// `+3.0 ± 2.4`, bold where Holm rejects 0; the interval at Holm's level.
fn shown(c: &Compared) -> String {
    let e = c.estimate.at_level(c.alpha);
    let text = format!("{} ± {:.1}", signed(e.mean, 1), e.half_width);
    if c.rejected { format!("**{text}**") } else { text }
}

/// A number with its sign, the minus a true minus sign.
fn signed(x: f64, digits: usize) -> String {
    let text = format!("{:+.*}", digits, x);
    text.replacen('-', "−", 1)
}

fn percent(noise: f64) -> String {
    format!("{} %", (noise * 100.0).round())
}

fn mean_std(c: &Cell) -> String {
    format!("{:.2} ± {:.2}", 100.0 * c.accuracy_mean, 100.0 * c.accuracy_std)
}

fn accuracy(results: &Results, args: &[&str], mark: &str) -> Result<String, RenderError> {
    let name = args.first().ok_or_else(|| bad(mark, "expected a sweep"))?;
    let sweep = results.sweep(name)?;
    let lambda = args.contains(&"lambda");
    let passes = args.contains(&"passes");
    let mut head = vec!["optimizer".to_string()];
    head.extend(sweep.spec.noise.iter().map(|&n| format!("noise {}", percent(n))));
    if lambda {
        head.push(format!("λ_max (noise {})", percent(sweep.spec.noise[0])));
    }
    if passes {
        head.push("second passes".into());
    }
    let mut rows = Vec::new();
    for v in &sweep.variants {
        let cells: Vec<Cell> = sweep
            .spec
            .noise
            .iter()
            .map(|&n| find(&sweep, &v.label, n, mark))
            .collect::<Result<_, _>>()?;
        let mut row = vec![v.label.clone()];
        row.extend(cells.iter().map(mean_std));
        if lambda {
            let l: Vec<f64> = cells[0].runs.iter().filter_map(|r| r.lambda_max).collect();
            let (m, s) = stats::mean_std(&l);
            row.push(if l.is_empty() {
                "–".into()
            } else {
                format!("{m:.2} ± {s:.2}")
            });
        }
        if passes {
            let f = stats::mean(&cells.iter().filter_map(|c| c.second_pass_fraction).collect::<Vec<_>>());
            row.push(if f.is_nan() {
                "–".into()
            } else {
                format!("{:.0} %", 100.0 * f)
            });
        }
        rows.push(row);
    }
    Ok(table(&head, &rows))
}

fn differences(results: &Results, args: &[&str], mark: &str) -> Result<String, RenderError> {
    let [name, base] = args else {
        return Err(bad(mark, "expected SWEEP BASE"));
    };
    let sweep = results.sweep(name)?;
    let base_label = label_of(base);
    let others: Vec<&Variant> = sweep.variants.iter().filter(|v| v.label != base_label).collect();
    // One family per noise rate, as one `flatmin compare` run would decide them.
    let (mut estimates, mut groups) = (Vec::new(), Vec::new());
    for v in &others {
        for (k, &n) in sweep.spec.noise.iter().enumerate() {
            estimates.push(difference(
                &find(&sweep, base, n, mark)?,
                &find(&sweep, &v.label, n, mark)?,
                mark,
            )?);
            groups.push(k);
        }
    }
    let compared = families(estimates, &groups);
    let mut head = vec!["optimizer".to_string()];
    head.extend(sweep.spec.noise.iter().map(|&n| format!("noise {}", percent(n))));
    let width = sweep.spec.noise.len();
    let rows = others
        .iter()
        .zip(compared.chunks(width))
        .map(|(v, c)| std::iter::once(v.label.clone()).chain(c.iter().map(shown)).collect())
        .collect::<Vec<Vec<String>>>();
    Ok(table(&head, &rows))
}

/// Rows of `(label, cells at each noise)` against a base and SAM (cells at each noise).
fn versus_rows(
    noise: &[f64],
    rows: &[(String, Vec<Cell>)],
    base: &[Cell],
    sam: &[Cell],
    mark: &str,
) -> Result<String, RenderError> {
    // One family per noise rate (as one `flatmin compare` run with SAM in its list): every
    // row's difference to the base and (but for SAM itself) to SAM.
    let is_sam: Vec<bool> = rows.iter().map(|(l, _)| *l == sam[0].variant).collect();
    let (mut plan, mut kept, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    for (r, (_, cells)) in rows.iter().enumerate() {
        for (k, cell) in cells.iter().enumerate() {
            plan.push((r, 0usize, kept.len()));
            kept.push(difference(&base[k], cell, mark)?);
            groups.push(k);
            if !is_sam[r] {
                plan.push((r, 1usize, kept.len()));
                kept.push(difference(&sam[k], cell, mark)?);
                groups.push(k);
            }
        }
    }
    let compared = families(kept, &groups);
    let sam_gain: Vec<&Compared> = rows
        .iter()
        .position(|(l, _)| *l == sam[0].variant)
        .map(|r| {
            plan.iter()
                .filter(|(row, kind, _)| *row == r && *kind == 0)
                .map(|(_, _, i)| &compared[*i])
                .collect()
        })
        .unwrap_or_default();
    let mut head = vec!["optimizer".to_string()];
    head.extend(
        noise
            .iter()
            .map(|&n| format!("Δ vs {}, {}", base[0].variant, percent(n))),
    );
    head.push(format!(
        "share of SAM's gain ({})",
        noise.iter().map(|&n| percent(n)).collect::<Vec<_>>().join(" / ")
    ));
    head.extend(noise.iter().map(|&n| format!("Δ vs SAM, {}", percent(n))));
    let mut out_rows = Vec::new();
    for (r, (label, _)) in rows.iter().enumerate() {
        let of = |kind: usize| -> Vec<&Compared> {
            plan.iter()
                .filter(|(row, k, _)| *row == r && *k == kind)
                .map(|(_, _, i)| &compared[*i])
                .collect()
        };
        let (to_base, to_sam) = (of(0), of(1));
        let mut row = vec![label.clone()];
        row.extend(to_base.iter().map(|c| shown(c)));
        if is_sam[r] {
            row.push("–".into());
            row.extend(noise.iter().map(|_| "–".to_string()));
        } else {
            let shares: Vec<String> = (0..noise.len())
                .map(|k| share(to_base[k], sam_gain.get(k).copied(), to_sam[k]))
                .collect();
            row.push(shares.join(" / "));
            row.extend(to_sam.iter().map(|c| shown(c)));
        }
        out_rows.push(row);
    }
    Ok(table(&head, &out_rows))
}

/// The share of SAM's gain with Fieller's interval at the family's levels; `–` unless SAM's
/// own gain is significant (a share of noise means nothing).
fn share(gain: &Compared, sam: Option<&Compared>, to_sam: &Compared) -> String {
    let Some(sam) = sam.filter(|s| s.rejected && s.estimate.mean > 0.0) else {
        return "–".into();
    };
    let interval = |c: &Compared| {
        let e = c.estimate.at_level(c.alpha);
        crate::frontier::Interval {
            mean: e.mean,
            half_width: Some(e.half_width),
            method: Some(e.method),
        }
    };
    match crate::frontier::share_from_intervals(&interval(gain), &interval(sam), &interval(to_sam)) {
        Some(s) => match s.interval {
            Some((lo, hi)) => format!("{:.0} % [{:.0}, {:.0}]", 100.0 * s.ratio, 100.0 * lo, 100.0 * hi),
            None => format!("{:.0} % [unbounded]", 100.0 * s.ratio),
        },
        None => "–".into(),
    }
}

fn versus(results: &Results, args: &[&str], mark: &str) -> Result<String, RenderError> {
    let [name, base, sam] = args else {
        return Err(bad(mark, "expected SWEEP BASE SAM"));
    };
    let sweep = results.sweep(name)?;
    let at = |label: &str| -> Result<Vec<Cell>, RenderError> {
        sweep.spec.noise.iter().map(|&n| find(&sweep, label, n, mark)).collect()
    };
    let rows: Vec<(String, Vec<Cell>)> = sweep
        .variants
        .iter()
        .filter(|v| v.label != *base)
        .map(|v| Ok((v.label.clone(), at(&v.label)?)))
        .collect::<Result<_, RenderError>>()?;
    versus_rows(&sweep.spec.noise, &rows, &at(base)?, &at(sam)?, mark)
}

fn against(results: &Results, args: &[&str], mark: &str) -> Result<String, RenderError> {
    let [name, base, sam] = args else {
        return Err(bad(mark, "expected SWEEP BASE_CELL SAM_CELL"));
    };
    let sweep = results.sweep(name)?;
    let noise = &sweep.spec.noise;
    let base: Vec<Cell> = noise
        .iter()
        .map(|&n| results.cell(base, n, mark))
        .collect::<Result<_, _>>()?;
    let sam: Vec<Cell> = noise
        .iter()
        .map(|&n| results.cell(sam, n, mark))
        .collect::<Result<_, _>>()?;
    let rows: Vec<(String, Vec<Cell>)> = sweep
        .variants
        .iter()
        .map(|v| {
            Ok((
                v.label.clone(),
                noise
                    .iter()
                    .map(|&n| find(&sweep, &v.label, n, mark))
                    .collect::<Result<_, _>>()?,
            ))
        })
        .collect::<Result<_, RenderError>>()?;
    versus_rows(noise, &rows, &base, &sam, mark)
}

fn cost(results: &Results, args: &[&str], mark: &str) -> Result<String, RenderError> {
    let [file, optimizers] = args else {
        return Err(bad(mark, "expected BENCH.json OPTIMIZER,…"));
    };
    let path = results.root.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| RenderError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| RenderError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let runs = json["runs"].as_array().cloned().unwrap_or_default();
    let mut models: Vec<String> = Vec::new();
    for r in &runs {
        let m = r["model"].as_str().unwrap_or_default().to_string();
        if !models.contains(&m) {
            models.push(m);
        }
    }
    let mut head = vec!["optimizer".to_string()];
    for m in &models {
        head.push(format!("{m}: second passes"));
        head.push(format!("{m}: cost per step"));
    }
    let mut rows = Vec::new();
    for o in optimizers.split(',') {
        let mut row = vec![o.to_string()];
        for m in &models {
            let r = runs
                .iter()
                .find(|r| r["model"] == m.as_str() && r["optimizer"] == o)
                .ok_or_else(|| bad(mark, format!("{}: no run of {o} on {m}", path.display())))?;
            let fraction = r["second_pass_fraction"].as_f64().unwrap_or(f64::NAN);
            let ratio = r["cost_ratio_to_base"]
                .as_f64()
                .or(r["ratio_to_base"].as_f64())
                .unwrap_or(f64::NAN);
            row.push(format!("{:.0} %", 100.0 * fraction));
            row.push(format!("{ratio:.2}×"));
        }
        rows.push(row);
    }
    Ok(table(&head, &rows))
}

/// One of the papers' claims and the one comparison that tests it here.
pub struct Claim {
    /// The claim, with the paper's figure.
    pub claim: &'static str,
    /// The cell the claim is about (`SWEEP/LABEL`).
    pub method: &'static str,
    /// The cell it is compared with, paired by seed.
    pub against: &'static str,
    /// The noise rate of the comparison.
    pub noise: f64,
    /// What is compared: test accuracy (points, over seeds and test examples) or λ_max (over
    /// seeds).
    pub measure: Measure,
    /// The side the paper claims: `+1` method above, `−1` method below.
    pub side: f64,
}

/// What a claim compares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Test accuracy, in points.
    Accuracy,
    /// The top Hessian eigenvalue of the training loss at the final weights.
    LambdaMax,
}

const fn accuracy_claim(claim: &'static str, method: &'static str, against: &'static str, noise: f64) -> Claim {
    Claim {
        claim,
        method,
        against,
        noise,
        measure: Measure::Accuracy,
        side: 1.0,
    }
}

/// The claims table: one row per paper's claim, each one comparison fixed before the runs (noise
/// claims at 40 %, the first noise rate of every grid; "improves" and "matches" claims on clean
/// data where the paper's figure is on clean data), all one family (Holm over the rows).
pub const CLAIMS: &[Claim] = &[
    accuracy_claim(
        "SAM generalises better than SGD (CIFAR-10 WRN-28-10 96.5 → 97.3 %)",
        "noise/sam",
        "noise/sgd",
        0.0,
    ),
    accuracy_claim(
        "SAM is robust to label noise (\"on par with noise-specific methods\")",
        "noise/sam",
        "noise/sgd",
        0.4,
    ),
    Claim {
        claim: "SAM's minima are flatter: lower λ_max",
        method: "noise/sam",
        against: "noise/sgd",
        noise: 0.0,
        measure: Measure::LambdaMax,
        side: -1.0,
    },
    accuracy_claim(
        "ASAM ≥ SAM (WRN-28-10 C10 97.28 vs 96.98)",
        "noise/asam",
        "noise/sam",
        0.0,
    ),
    accuracy_claim(
        "ESAM matches SAM (ResNet-18 C10 96.56 vs 96.52)",
        "noise/esam",
        "noise/sam",
        0.0,
    ),
    accuracy_claim(
        "F-SAM improves on SAM by ≈ 0.3–0.6 points",
        "noise/fsam",
        "noise/sam",
        0.0,
    ),
    accuracy_claim(
        "WSAM ≥ SAM and most robust to label noise (γ 0.9)",
        "noise/wsam",
        "noise/sam",
        0.4,
    ),
    accuracy_claim("GSAM improves on SAM", "noise/gsam", "noise/sam", 0.0),
    accuracy_claim(
        "LookSAM (k 5, α 0.7) keeps SAM's accuracy",
        "cheaper/looksam",
        "cheaper/sam",
        0.4,
    ),
    accuracy_claim(
        "AE-SAM matches SAM with about half the second passes",
        "cheaper/ae-sam",
        "cheaper/sam",
        0.4,
    ),
    accuracy_claim(
        "RST (p 0.5) keeps SAM's gain at half the passes",
        "cheaper/rst",
        "cheaper/sam",
        0.4,
    ),
];

/// λ_max of `method` minus `base`'s, paired by seed (plain t over seeds).
fn lambda_difference(base: &Cell, method: &Cell, mark: &str) -> Result<Estimate, RenderError> {
    let per_seed: Vec<f64> = base
        .runs
        .iter()
        .filter_map(|b| {
            let m = method.runs.iter().find(|m| m.seed == b.seed)?;
            Some(m.lambda_max? - b.lambda_max?)
        })
        .collect();
    stats::plain_t(&per_seed, f64::NAN)
        .ok_or_else(|| bad(mark, format!("`{}`: fewer than two seeds with λ_max", method.variant)))
}

fn claims(results: &Results, mark: &str) -> Result<String, RenderError> {
    let mut estimates = Vec::new();
    for c in CLAIMS {
        let base = results.cell(c.against, c.noise, mark)?;
        let method = results.cell(c.method, c.noise, mark)?;
        estimates.push(match c.measure {
            Measure::Accuracy => difference(&base, &method, mark)?,
            Measure::LambdaMax => lambda_difference(&base, &method, mark)?,
        });
    }
    let compared = family(estimates);
    let head = [
        "claim (paper)",
        "compared here",
        "difference (CI at Holm's level)",
        "p",
        "verdict",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = CLAIMS
        .iter()
        .zip(&compared)
        .map(|(claim, c)| {
            let verdict = match (c.rejected, c.estimate.mean * claim.side > 0.0) {
                (true, true) => "**held**",
                (true, false) => "**did not hold** (the other way)",
                (false, _) => "not detectable",
            };
            let e = c.estimate.at_level(c.alpha);
            let name = |cell: &str| cell.split_once('/').map_or(cell, |(_, l)| l).to_string();
            let (what, unit, digits) = match claim.measure {
                Measure::Accuracy => ("accuracy", " points", 1),
                Measure::LambdaMax => ("λ_max", "", 2),
            };
            vec![
                claim.claim.to_string(),
                format!(
                    "{what}, {} − {}, {} noise",
                    name(claim.method),
                    name(claim.against),
                    percent(claim.noise)
                ),
                format!(
                    "{} ± {:.*}{unit} ({:.1} %)",
                    signed(e.mean, digits),
                    digits,
                    e.half_width,
                    100.0 * (1.0 - c.alpha)
                ),
                format!("{:.3}", c.estimate.p_value()),
                verdict.to_string(),
            ]
        })
        .collect();
    Ok(table(&head, &rows))
}

fn table(head: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

const OPEN: &str = "<!-- rendered: ";
const CLOSE: &str = "<!-- end rendered -->";

/// `page` with every marked table made again from the results under `root`.
pub fn render(page: &str, root: &Path) -> Result<String, RenderError> {
    let results = Results {
        root: root.to_path_buf(),
        read: Default::default(),
    };
    let mut out = String::new();
    let mut rest = page;
    while let Some(start) = rest.find(OPEN) {
        let line_end = rest[start..].find('\n').map_or(rest.len(), |i| start + i + 1);
        let mark = rest[start + OPEN.len()..line_end]
            .trim()
            .trim_end_matches("-->")
            .trim()
            .to_string();
        let close = rest[line_end..]
            .find(CLOSE)
            .map(|i| line_end + i)
            .ok_or_else(|| bad(&mark, format!("no `{CLOSE}` after it")))?;
        let words: Vec<&str> = mark.split_whitespace().collect();
        let args = &words[1.min(words.len())..];
        let body = match words.first().copied() {
            Some("accuracy") => accuracy(&results, args, &mark)?,
            Some("differences") => differences(&results, args, &mark)?,
            Some("versus") => versus(&results, args, &mark)?,
            Some("against") => against(&results, args, &mark)?,
            Some("cost") => cost(&results, args, &mark)?,
            Some("claims") => claims(&results, &mark)?,
            _ => {
                return Err(bad(
                    &mark,
                    "unknown kind (accuracy, differences, versus, against, cost, claims)",
                ));
            }
        };
        out.push_str(&rest[..line_end]);
        out.push_str(&body);
        out.push_str(CLOSE);
        rest = &rest[close + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_marks_is_unchanged_and_a_bad_mark_is_named() {
        let root = Path::new("/nonexistent");
        assert_eq!(render("# page\ntext\n", root).unwrap(), "# page\ntext\n");
        let e = render("<!-- rendered: pie noise -->\nold\n<!-- end rendered -->\n", root).unwrap_err();
        assert!(e.to_string().contains("mark `pie noise`: unknown kind"), "{e}");
        let e = render("<!-- rendered: claims -->\nold\n", root).unwrap_err();
        assert!(e.to_string().contains("no `<!-- end rendered -->`"), "{e}");
        let e = render("<!-- rendered: accuracy noise -->\n<!-- end rendered -->", root).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/noise/results.json"), "{e}");
    }

    #[test]
    fn signs_use_the_minus_sign() {
        assert_eq!(signed(-1.25, 1), "−1.2");
        assert_eq!(signed(3.0, 1), "+3.0");
        assert_eq!(percent(0.4), "40 %");
    }
}
