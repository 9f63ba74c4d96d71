//! The calibration grid of `flatmin compare`'s verdicts: simulated runs, no training. Every cell
//! draws per-example paired outcomes from a known population and runs one comparison the way
//! `compare` does; the test fails when the family-wise false-positive rate of any null cell is
//! significantly above 5 %, or when the planted effects stop being found.
//!
//! `cargo test -p flatmin-cli --test suite -- --nocapture compare_grid` prints the table (README,
//! "How the verdicts are calibrated"); `FLATMIN_GRID_SIMS=N` sets the comparisons per cell (default
//! 200; README's table used 2000).
//!
//! A null cell is a run of four optimizers, all equal on average: the base, "SAM" and two more,
//! so one run prints five verdicts (three against the base, two against SAM) — the family. Today's
//! method ("before") decides each at 95 % on its own; the chosen one ("after") by Holm's procedure
//! over the five. Power cells are one method against the base with a planted effect.
//!
//! The population (as in compare.rs's simulation): each test example is easy, middling or hard
//! (the base right with p = 0.8, 0.6, 0.35); an optimizer is right with q = p + δ ± α (its own
//! leaning per example, half each way). A run keeps each example's persistent outcome (drawn once
//! per optimizer; shared by "identical" optimizers) `persist` of the time and draws afresh
//! otherwise; seed noise shifts the fresh draws' probability (the accuracy moves with sd `seed`
//! points). Training-set dependence moves an optimizer's accuracy in a run by t: a fixed
//! per-example weight averaged over the seed's training part, scaled so that t has sd `train`
//! points across independent training sets, realised by redrawing half the outcomes with
//! P(right) = 0.5 + 2t (linear in t).
//! "Few discordant": every optimizer right everywhere except on a few examples of its own, always
//! (no fresh draws), so about k examples of the test set are discordant between two optimizers.
//! The seed-dominated fixed cells use a two-way normal model (example, seed and interaction
//! effects of the difference, the seeds a share of the variance of the mean at 2 seeds).

use flatmin::Rng;
use flatmin_lab::stats::{self, Discordance, Estimate, t_quantile};

fn normal(rng: &mut Rng) -> f64 {
    let (u, v) = (rng.uniform().max(1e-300), rng.uniform());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

// ---------------------------------------------------------------------------------------------
// Today's method ("before"), as `flatmin compare` had it: kept here to measure it.

/// Satterthwaite's two-way interval on a fixed test set (the interaction counted twice, the
/// one-tie guard): significant at 95 %?
fn before_fixed(table: &[Vec<f64>]) -> bool {
    let (j, n) = (table.len(), table[0].len());
    let mean_var = |xs: &[f64]| {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        (
            m,
            xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0),
        )
    };
    let per_example: Vec<f64> = (0..n)
        .map(|i| table.iter().map(|r| r[i]).sum::<f64>() / j as f64)
        .collect();
    let per_seed: Vec<f64> = table.iter().map(|r| r.iter().sum::<f64>() / n as f64).collect();
    let (mean, seeds_var) = mean_var(&per_seed);
    let (em, mut examples_var) = mean_var(&per_example);
    if examples_var == 0.0 && em != 0.0 {
        examples_var = mean_var(&[per_example.clone(), vec![0.0]].concat()).1;
    }
    let (a, b) = (examples_var / n as f64, seeds_var / j as f64);
    let den = a * a / (n as f64 - 1.0) + b * b / (j as f64 - 1.0);
    let df = if den > 0.0 {
        ((a + b).powi(2) / den).max(1.0)
    } else {
        j as f64 - 1.0
    };
    let h = t_quantile(0.975, df) * (a + b).sqrt();
    mean.abs() > h
}

/// Nadeau & Bengio's corrected resampled t with the within-split floor at s² = 0.
fn before_random(outcomes: &[Discordance], n_train: usize) -> bool {
    let j = outcomes.len() as f64;
    let per_seed: Vec<f64> = outcomes
        .iter()
        .map(|d| 100.0 * d.iter().map(|&x| f64::from(x)).sum::<f64>() / d.len() as f64)
        .collect();
    let mean = per_seed.iter().sum::<f64>() / j;
    let s2 = per_seed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (j - 1.0);
    let within = outcomes
        .iter()
        .map(|d| {
            let v: Vec<f64> = d.iter().map(|&x| 100.0 * f64::from(x)).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let mut var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0);
            if var == 0.0 && m != 0.0 {
                let w = [v.clone(), vec![0.0]].concat();
                let m = w.iter().sum::<f64>() / w.len() as f64;
                var = w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (w.len() as f64 - 1.0);
            }
            var / d.len() as f64
        })
        .sum::<f64>()
        / j;
    let var = if s2 > 0.0 { s2 } else { within };
    let n_test = outcomes[0].len() as f64;
    let h = t_quantile(0.975, j - 1.0) * (var * (1.0 / j + n_test / n_train as f64)).sqrt();
    mean.abs() > h
}

// ---------------------------------------------------------------------------------------------
// The cv2 statistics the chosen one was picked from (README, "How the verdicts are made"); each
// on the fold differences p (2J of them, a repetition's two folds side by side).

/// The fold differences (points).
fn fold_points(folds: &[stats::Fold]) -> Vec<f64> {
    folds
        .iter()
        .map(|f| 100.0 * f.outcomes.iter().map(|&x| f64::from(x)).sum::<f64>() / f.outcomes.len() as f64)
        .collect()
}

/// (the fold differences, their mean, s̄² = the mean over repetitions of (p₁ − p₂)²/2, the
/// sample variance of the repetitions' means, the plain sample variance of the 2J differences).
fn fold_summary(p: &[f64]) -> (&[f64], f64, f64, f64, f64) {
    let j = p.len() as f64 / 2.0;
    let mean = p.iter().sum::<f64>() / p.len() as f64;
    let s2 = p.chunks(2).map(|q| (q[0] - q[1]).powi(2) / 2.0).sum::<f64>() / j;
    let m: Vec<f64> = p.chunks(2).map(|q| (q[0] + q[1]) / 2.0).collect();
    let sm2 = if j > 1.0 {
        m.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (j - 1.0)
    } else {
        0.0
    };
    let all = p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (p.len() as f64 - 1.0);
    (p, mean, s2, sm2, all)
}

fn t_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return if t.is_nan() { 1.0 } else { 0.0 };
    }
    2.0 * (1.0 - stats::t_cdf(t.abs(), df))
}

/// Dietterich's (1998) 5×2cv paired t, with J repetitions: the first fold's difference over
/// √s̄², J df.
fn dietterich_p(points: &[f64]) -> f64 {
    let (p, _, s2, ..) = fold_summary(points);
    t_p(p[0] / s2.sqrt(), (p.len() / 2) as f64)
}

/// Alpaydin's (1999) combined 5×2cv F with J repetitions: Σp² / (2·Σ s_j²) on F(2J, J).
fn alpaydin_p(points: &[f64]) -> f64 {
    use statrs::distribution::{ContinuousCDF, FisherSnedecor};
    let (p, _, s2, ..) = fold_summary(points);
    let j = (p.len() / 2) as f64;
    let f = p.iter().map(|x| x * x).sum::<f64>() / (2.0 * s2 * j);
    if !f.is_finite() {
        return if f.is_nan() { 1.0 } else { 0.0 };
    }
    1.0 - FisherSnedecor::new(2.0 * j, j).unwrap().cdf(f)
}

/// The naive t: the 2J fold differences as if independent (variance / 2J, 2J − 1 df).
fn naive_p(points: &[f64]) -> f64 {
    let (p, mean, _, _, all) = fold_summary(points);
    t_p(mean / (all / p.len() as f64).sqrt(), p.len() as f64 - 1.0)
}

/// The chosen variance with the repetitions' spread subtracted where seed noise would let the
/// mean average out: s̄²/2 − (1 − 1/J)·s²(means), at least s²(means)/J, J df.
fn refined_p(points: &[f64]) -> f64 {
    let (p, mean, s2, sm2, _) = fold_summary(points);
    let j = (p.len() / 2) as f64;
    let v = (s2 / 2.0 - (1.0 - 1.0 / j) * sm2).max(sm2 / j);
    t_p(mean / v.sqrt(), j)
}

/// Holm's step-down on p-values at 5 %: which are rejected.
fn holm_p(ps: &[f64]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..ps.len()).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut out = vec![false; ps.len()];
    for (r, &k) in order.iter().enumerate() {
        if ps[k] <= stats::ALPHA / (ps.len() - r) as f64 {
            out[k] = true;
        } else {
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The populations

#[derive(Clone, Copy)]
enum Design {
    /// One fixed test set of `n` examples.
    Fixed { n: usize },
    /// A data set of `n_train + n_test`: a random split per seed (`--design splits`), or as
    /// many repetitions of 2-fold cross-validation (`--design cv2`, the default).
    Random { n_train: usize, n_test: usize },
}

/// How a run of a `Random` cell uses its data set.
#[derive(Clone, Copy, PartialEq)]
enum Scheme {
    /// The fixed test set of a `Fixed` cell.
    Fixed,
    /// A random split per seed.
    Splits,
    /// J repetitions of 2-fold cross-validation.
    Cv2,
}

/// Whether the grid also runs the cv2 statistics the chosen one was picked from
/// (`FLATMIN_GRID_CANDIDATES=1`; README's table).
fn candidates() -> bool {
    std::env::var_os("FLATMIN_GRID_CANDIDATES").is_some()
}

/// The decisions compared per scheme, in the order `decide` returns them.
fn methods(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::Fixed => &["fixed, before issue 21", "fixed (Banerjee)"],
        Scheme::Splits => &["splits, corrected resampled t", "splits, worst case"],
        Scheme::Cv2 if !candidates() => &["cv2 t (chosen)"],
        Scheme::Cv2 => &[
            "cv2 t (chosen)",
            "cv2 t without the sign test",
            "Dietterich's t",
            "Alpaydin's F",
            "cv2 t and Alpaydin's F",
            "naive t over 2J folds",
            "cv2 t, seed spread subtracted",
        ],
    }
}

#[derive(Clone, Copy)]
enum Model {
    Binary {
        alpha: f64,
        identical: bool,
        persist: f64,
        /// sd of the per-seed accuracy move (points).
        seed: f64,
        /// sd of the training-set accuracy move across independent training sets (points).
        train: f64,
        /// Few discordant: each optimizer wrong on about this many of `n` (test) examples.
        few: Option<f64>,
        /// The training-set weight of an example is the optimizer's own leaning on it as a test
        /// example (±1), not independent of it: what training on an example does and how the
        /// example is classified go together (the limit of every one-data-set design, Bengio &
        /// Grandvalet 2004).
        coupled: bool,
    },
    /// Two-way normal model of each optimizer's per-example score (points): example sd 100, seed
    /// sd `seed`, interaction sd 100.
    Normal { seed: f64 },
}

#[derive(Clone, Copy)]
struct Cell {
    name: &'static str,
    design: Design,
    model: Model,
    /// The planted difference of the first method (points); 0 for null cells.
    delta: f64,
    /// Optimizers, the base first: 4 for a null cell (a family of 5 verdicts), 2 for power.
    optimizers: usize,
    /// Outside what the designs can promise: reported, not checked.
    limit: bool,
}

impl Cell {
    fn schemes(&self) -> &'static [Scheme] {
        match self.design {
            Design::Fixed { .. } => &[Scheme::Fixed],
            Design::Random { .. } => &[Scheme::Splits, Scheme::Cv2],
        }
    }
}

struct Example {
    q: Vec<f64>,
    persistent: Vec<bool>,
    weight: Vec<f64>,
}

fn draw_examples(cell: &Cell, count: usize, rng: &mut Rng) -> Vec<Example> {
    let Model::Binary {
        alpha,
        identical,
        few,
        train,
        coupled,
        ..
    } = cell.model
    else {
        unreachable!()
    };
    let k = cell.optimizers;
    (0..count)
        .map(|_| {
            let u = rng.uniform();
            let p = if u < 0.6 {
                0.8
            } else if u < 0.85 {
                0.6
            } else {
                0.35
            };
            let leans: Vec<f64> = (0..k)
                .map(|o| {
                    if o == 0 || identical {
                        0.0
                    } else if rng.bernoulli(0.5) {
                        1.0
                    } else {
                        -1.0
                    }
                })
                .collect();
            let q: Vec<f64> = (0..k)
                .map(|o| p + alpha * leans[o] + if o == 1 { cell.delta / 100.0 } else { 0.0 })
                .collect();
            let persistent: Vec<bool> = match few {
                Some(kk) => {
                    let n = match cell.design {
                        Design::Fixed { n } => n,
                        Design::Random { n_test, .. } => n_test,
                    };
                    (0..k).map(|_| !rng.bernoulli(kk / (2.0 * n as f64))).collect()
                }
                None => {
                    let shared = rng.bernoulli(p);
                    q.iter()
                        .map(|&q| if identical { shared } else { rng.bernoulli(q) })
                        .collect()
                }
            };
            let weight = if coupled {
                leans
            } else if train > 0.0 {
                (0..k).map(|_| normal(rng)).collect()
            } else {
                Vec::new()
            };
            Example { q, persistent, weight }
        })
        .collect()
}

/// One run's correctness per optimizer on the examples `test` of `data`, trained on the
/// `n_train` others (their weights summing to `totals` less the test's): each optimizer's seed
/// shift of its fresh draws and training-set move.
fn run_on(
    cell: &Cell,
    data: &[Example],
    test: &[usize],
    n_train: usize,
    totals: &[f64],
    rng: &mut Rng,
) -> Vec<Vec<bool>> {
    let Model::Binary {
        persist,
        few,
        seed,
        train,
        ..
    } = cell.model
    else {
        unreachable!()
    };
    let k = cell.optimizers;
    // Seed noise moves the fresh draws (a share 1 − persist of the outcomes) so that the
    // accuracy moves with sd `seed` points.
    let shifts: Vec<f64> = (0..k)
        .map(|_| seed / 100.0 / (1.0 - persist).max(0.1) * normal(rng))
        .collect();
    let moves: Vec<f64> = (0..k)
        .map(|o| {
            if train > 0.0 && n_train > 0 {
                let held: f64 = test.iter().map(|&i| data[i].weight[o]).sum();
                let mean = (totals[o] - held) / n_train as f64;
                train / 100.0 * (n_train as f64).sqrt() * mean
            } else {
                0.0
            }
        })
        .collect();
    let mut out = vec![Vec::with_capacity(test.len()); k];
    for &i in test {
        let e = &data[i];
        let keep = few.is_some() || rng.bernoulli(persist);
        for o in 0..k {
            let mut right = if keep {
                e.persistent[o]
            } else {
                rng.bernoulli((e.q[o] + shifts[o]).clamp(0.0, 1.0))
            };
            let t = moves[o];
            if t != 0.0 && rng.bernoulli(0.5) {
                // Half the outcomes redrawn around 50 % moved by 2t: the accuracy moves by t,
                // linearly.
                right = rng.bernoulli((0.5 + 2.0 * t).clamp(0.0, 1.0));
            }
            out[o].push(right);
        }
    }
    out
}

/// The family of one run: (first, second) optimizer pairs, the second against the first.
fn pairs(k: usize) -> Vec<(usize, usize)> {
    let mut p: Vec<(usize, usize)> = (1..k).map(|j| (0, j)).collect();
    if k > 2 {
        p.extend((2..k).map(|j| (1, j)));
    }
    p
}

impl Run {
    /// The run of its first `j` seeds (repetitions).
    fn first(&self, j: usize) -> Run {
        match self {
            Run::Fixed(t) => Run::Fixed(t.iter().map(|t| t[..j].to_vec()).collect()),
            Run::Splits(o, n) => Run::Splits(o.iter().map(|o| o[..j].to_vec()).collect(), *n),
            Run::Cv2(f) => Run::Cv2(f.iter().map(|f| f[..2 * j].to_vec()).collect()),
        }
    }
}

/// One simulated run: per family member, the tables of paired values (points, fixed test set),
/// the discordance per seed (random splits) or the folds (cv2).
enum Run {
    Fixed(Vec<Vec<Vec<f64>>>),
    Splits(Vec<Vec<Discordance>>, usize),
    Cv2(Vec<Vec<stats::Fold>>),
}

fn simulate_run(cell: &Cell, scheme: Scheme, seeds: usize, rng: &mut Rng) -> Run {
    let k = cell.optimizers;
    let family = pairs(k);
    if let Model::Normal { seed } = cell.model {
        let Design::Fixed { n } = cell.design else {
            unreachable!()
        };
        let scores: Vec<Vec<Vec<f64>>> = (0..k)
            .map(|o| {
                let examples: Vec<f64> = (0..n).map(|_| 100.0 * normal(rng)).collect();
                (0..seeds)
                    .map(|_| {
                        let s = seed * normal(rng);
                        examples
                            .iter()
                            .map(|e| e + s + 100.0 * normal(rng) + if o == 1 { cell.delta } else { 0.0 })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        return Run::Fixed(
            family
                .iter()
                .map(|&(a, b)| {
                    (0..seeds)
                        .map(|s| (0..n).map(|i| scores[b][s][i] - scores[a][s][i]).collect())
                        .collect()
                })
                .collect(),
        );
    }
    let pool = match cell.design {
        Design::Fixed { n } => n,
        Design::Random { n_train, n_test } => n_train + n_test,
    };
    let data = draw_examples(cell, pool, rng);
    let totals: Vec<f64> = (0..k)
        .map(|o| data.iter().map(|e| e.weight.get(o).copied().unwrap_or(0.0)).sum())
        .collect();
    let mut order: Vec<usize> = (0..pool).collect();
    let discordance = |runs: &[Vec<Vec<bool>>], a: usize, b: usize| -> Vec<Discordance> {
        runs.iter().map(|r| stats::discordance(&r[a], &r[b])).collect()
    };
    match (scheme, cell.design) {
        (Scheme::Fixed, _) => {
            let runs: Vec<Vec<Vec<bool>>> = (0..seeds)
                .map(|_| run_on(cell, &data, &order, 0, &totals, rng))
                .collect();
            Run::Fixed(
                family
                    .iter()
                    .map(|&(a, b)| {
                        discordance(&runs, a, b)
                            .iter()
                            .map(|d| d.iter().map(|&x| 100.0 * f64::from(x)).collect())
                            .collect()
                    })
                    .collect(),
            )
        }
        (Scheme::Splits, Design::Random { n_train, n_test }) => {
            let runs: Vec<Vec<Vec<bool>>> = (0..seeds)
                .map(|_| {
                    // A partial shuffle: the first n_test are this seed's test set.
                    for i in 0..n_test {
                        let r = i + (rng.next_u64() % (pool - i) as u64) as usize;
                        order.swap(i, r);
                    }
                    let test = order[..n_test].to_vec();
                    run_on(cell, &data, &test, n_train, &totals, rng)
                })
                .collect();
            Run::Splits(family.iter().map(|&(a, b)| discordance(&runs, a, b)).collect(), n_train)
        }
        (Scheme::Cv2, Design::Random { .. }) => {
            // Each repetition: a random half A, the rest B; train on A and test on B, then the
            // other way round, each fold with its own seed noise.
            let half = pool / 2;
            let mut folds: Vec<(Vec<usize>, Vec<Vec<bool>>)> = Vec::with_capacity(2 * seeds);
            for _ in 0..seeds {
                for i in 0..half {
                    let r = i + (rng.next_u64() % (pool - i) as u64) as usize;
                    order.swap(i, r);
                }
                let (a, b) = (order[..half].to_vec(), order[half..].to_vec());
                let on_b = run_on(cell, &data, &b, a.len(), &totals, rng);
                let on_a = run_on(cell, &data, &a, b.len(), &totals, rng);
                folds.push((b, on_b));
                folds.push((a, on_a));
            }
            Run::Cv2(
                family
                    .iter()
                    .map(|&(x, y)| {
                        folds
                            .iter()
                            .map(|(examples, r)| stats::Fold {
                                outcomes: stats::discordance(&r[x], &r[y]),
                                examples: examples.clone(),
                            })
                            .collect()
                    })
                    .collect(),
            )
        }
        _ => unreachable!(),
    }
}

/// What one run decided, per method of its scheme: any false verdict in the family (a null
/// cell), or the first method called better (a power cell).
fn decide(cell: &Cell, run: &Run) -> Vec<bool> {
    let null = cell.delta == 0.0;
    let finish = |decisions: Vec<Vec<bool>>, sums: &[f64]| -> Vec<bool> {
        decisions
            .iter()
            .map(|d| {
                if null {
                    d.iter().any(|&r| r)
                } else {
                    d[0] && sums[0] > 0.0
                }
            })
            .collect()
    };
    let sums: Vec<f64>;
    let mut decisions: Vec<Vec<bool>> = Vec::new();
    let holm = |estimates: &[Estimate]| -> Vec<bool> {
        stats::holm(&estimates.iter().collect::<Vec<_>>(), stats::ALPHA)
            .iter()
            .map(|d| d.rejected)
            .collect()
    };
    match run {
        Run::Fixed(tables) => {
            sums = tables.iter().map(|t| t.iter().flatten().sum::<f64>()).collect();
            decisions.push(tables.iter().map(|t| before_fixed(t)).collect());
            decisions.push(holm(
                &tables
                    .iter()
                    .map(|t| stats::two_way_verdict(t).unwrap())
                    .collect::<Vec<_>>(),
            ));
        }
        Run::Splits(outcomes, n_train) => {
            sums = outcomes
                .iter()
                .map(|o| o.iter().flatten().map(|&x| f64::from(x)).sum::<f64>())
                .collect();
            decisions.push(outcomes.iter().map(|o| before_random(o, *n_train)).collect());
            decisions.push(holm(
                &outcomes
                    .iter()
                    .map(|o| stats::random_splits_verdict(o, *n_train).unwrap())
                    .collect::<Vec<_>>(),
            ));
        }
        Run::Cv2(folds) => {
            let estimates: Vec<Estimate> = folds.iter().map(|f| stats::two_fold_cv_verdict(f).unwrap()).collect();
            sums = estimates.iter().map(|e| e.mean).collect();
            let chosen = holm(&estimates);
            decisions.push(chosen.clone());
            if !candidates() {
                return finish(decisions, &sums);
            }
            let points: Vec<Vec<f64>> = folds.iter().map(|f| fold_points(f)).collect();
            decisions.push(holm_p(&estimates.iter().map(|e| e.interval_p()).collect::<Vec<_>>()));
            decisions.push(holm_p(&points.iter().map(|p| dietterich_p(p)).collect::<Vec<_>>()));
            let f = holm_p(&points.iter().map(|p| alpaydin_p(p)).collect::<Vec<_>>());
            decisions.push(f.clone());
            decisions.push(chosen.iter().zip(&f).map(|(a, b)| *a && *b).collect());
            decisions.push(holm_p(&points.iter().map(|p| naive_p(p)).collect::<Vec<_>>()));
            decisions.push(holm_p(&points.iter().map(|p| refined_p(p)).collect::<Vec<_>>()));
        }
    }
    finish(decisions, &sums)
}

/// The rate of each method of `scheme` over `sims` runs, per number of seeds (repetitions for
/// cv2) in [`SEEDS`]: each simulated run has the most, and the smaller counts are its first seeds.
fn rates(cell: &Cell, scheme: Scheme, sims: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng::seeded(seed);
    let most = SEEDS[SEEDS.len() - 1];
    let mut counts = vec![vec![0usize; methods(scheme).len()]; SEEDS.len()];
    for _ in 0..sims {
        let run = simulate_run(cell, scheme, most, &mut rng);
        for (s, &seeds) in SEEDS.iter().enumerate() {
            let decided = if seeds == most {
                decide(cell, &run)
            } else {
                decide(cell, &run.first(seeds))
            };
            for (c, d) in counts[s].iter_mut().zip(decided) {
                *c += usize::from(d);
            }
        }
    }
    counts
        .iter()
        .map(|c| c.iter().map(|&c| c as f64 / sims as f64).collect())
        .collect()
}

fn null_cells() -> Vec<Cell> {
    let fixed = Design::Fixed { n: 100 };
    let random = Design::Random {
        n_train: 480,
        n_test: 120,
    };
    let binary = |alpha: f64, identical: bool, seed: f64, train: f64, few: Option<f64>| Model::Binary {
        alpha,
        identical,
        persist: 0.7,
        seed,
        train,
        few,
        coupled: false,
    };
    let cell = |name, design, model| Cell {
        name,
        design,
        model,
        delta: 0.0,
        optimizers: 4,
        limit: false,
    };
    let few = |k: f64| binary(0.0, false, 0.0, 0.0, Some(k));
    vec![
        cell("fixed: identical optimizers", fixed, binary(0.0, true, 0.0, 0.0, None)),
        cell(
            "fixed: equal on average, ±15 points per example",
            fixed,
            binary(0.15, false, 0.0, 0.0, None),
        ),
        cell(
            "fixed: seeds 62 % of the variance (normal)",
            fixed,
            Model::Normal { seed: 22.4 },
        ),
        cell(
            "fixed: seeds 94 % of the variance (normal)",
            fixed,
            Model::Normal { seed: 70.7 },
        ),
        cell("fixed: few discordant, k ≈ 2", Design::Fixed { n: 120 }, few(2.0)),
        cell("fixed: few discordant, k ≈ 4", Design::Fixed { n: 120 }, few(4.0)),
        cell("fixed: few discordant, k ≈ 8", Design::Fixed { n: 120 }, few(8.0)),
        cell("fixed: few discordant, k ≈ 16", Design::Fixed { n: 120 }, few(16.0)),
        cell(
            "data set: identical optimizers",
            random,
            binary(0.0, true, 0.0, 0.0, None),
        ),
        cell(
            "data set: equal on average, ±15 points per example",
            random,
            binary(0.15, false, 0.0, 0.0, None),
        ),
        cell(
            "data set: seed-dominated (seed sd 4 points)",
            random,
            binary(0.0, false, 4.0, 0.0, None),
        ),
        cell(
            "data set: training-set component 2 points",
            random,
            binary(0.0, false, 0.0, 2.0, None),
        ),
        cell(
            "data set: training-set component 4 points",
            random,
            binary(0.0, false, 0.0, 4.0, None),
        ),
        cell(
            "data set: training-set component 8 points",
            random,
            binary(0.0, false, 0.0, 8.0, None),
        ),
        cell("data set: few discordant, k ≈ 4 per 120", random, few(4.0)),
        cell("data set: few discordant, k ≈ 16 per 120", random, few(16.0)),
        Cell {
            limit: true,
            ..cell(
                "limit: training-set component 4 points tied to the test-set one",
                random,
                Model::Binary {
                    alpha: 0.15,
                    identical: false,
                    persist: 0.7,
                    seed: 0.0,
                    train: 4.0,
                    few: None,
                    coupled: true,
                },
            )
        },
    ]
}

fn power_cells() -> Vec<Cell> {
    let planted = Model::Binary {
        alpha: 0.12,
        identical: false,
        persist: 0.7,
        seed: 2.0,
        train: 0.0,
        few: None,
        coupled: false,
    };
    vec![
        Cell {
            name: "power: planted +5 points (α 12), fixed, 200 test",
            design: Design::Fixed { n: 200 },
            model: planted,
            delta: 5.0,
            optimizers: 2,
            limit: false,
        },
        Cell {
            name: "power: planted +5 points (α 12), data set of 600",
            design: Design::Random {
                n_train: 400,
                n_test: 200,
            },
            model: planted,
            delta: 5.0,
            optimizers: 2,
            limit: false,
        },
    ]
}

const SEEDS: [usize; 4] = [2, 3, 5, 10];

fn sims() -> usize {
    std::env::var("FLATMIN_GRID_SIMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// The highest observed rate still consistent with a true rate of 5 % (one-sided, 1 %).
fn bound(sims: usize) -> f64 {
    0.05 + 2.326 * (0.05f64 * 0.95 / sims as f64).sqrt()
}

fn percent(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

#[test]
fn every_verdict_family_keeps_its_false_positive_rate_and_planted_effects_are_found() {
    let sims = sims();
    let started = std::time::Instant::now();
    let cells: Vec<Cell> = null_cells().into_iter().chain(power_cells()).collect();
    // Every (cell, scheme) on two threads, the costliest (cv2) first.
    let mut jobs: Vec<(usize, Scheme)> = cells
        .iter()
        .enumerate()
        .flat_map(|(c, cell)| cell.schemes().iter().map(move |&scheme| (c, scheme)))
        .collect();
    jobs.sort_by_key(|&(_, scheme)| scheme != Scheme::Cv2);
    type Rates = Vec<((usize, u8), Vec<Vec<f64>>)>;
    let tag = |scheme: Scheme| scheme as u8;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Rates = std::thread::scope(|scope| {
        let workers: Vec<_> = [0, 1]
            .map(|_| {
                let (jobs, cells, next) = (&jobs, &cells, &next);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    while let Some(&(c, scheme)) = jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        let seed = 1000 + 17 * c as u64 + 7919 * tag(scheme) as u64;
                        done.push(((c, tag(scheme)), rates(&cells[c], scheme, sims, seed)));
                    }
                    done
                })
            })
            .into_iter()
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let rate = |c: usize, scheme: Scheme, s: usize| -> &Vec<f64> {
        &results.iter().find(|(k, _)| *k == (c, tag(scheme))).unwrap().1[s]
    };
    let mut table = format!(
        "| cell ({sims} simulated runs each; null cells: family of 5 verdicts) | J = 2 | J = 3 | J = 5 | J = 10 |\n\
         |---|---|---|---|---|\n"
    );
    let mut failures = Vec::new();
    for (c, cell) in cells.iter().enumerate() {
        table.push_str(&format!("| {} |", cell.name));
        for (s, seeds) in SEEDS.iter().enumerate() {
            let cell_text = match cell.design {
                // Before issue 21 → Banerjee's two-way interval with Holm.
                Design::Fixed { .. } => {
                    let r = rate(c, Scheme::Fixed, s);
                    format!("{} → **{}**", percent(r[0]), percent(r[1]))
                }
                // The corrected resampled t / the worst-case splits interval / cv2.
                Design::Random { .. } => {
                    let (r, v) = (rate(c, Scheme::Splits, s), rate(c, Scheme::Cv2, s));
                    format!("{} / {} / **{}**", percent(r[0]), percent(r[1]), percent(v[0]))
                }
            };
            table.push_str(&format!(" {cell_text} |"));
            if cell.delta == 0.0 && !cell.limit {
                for &scheme in cell.schemes() {
                    // The chosen method of each scheme: the last of fixed and splits, cv2's first.
                    let r = rate(c, scheme, s);
                    let chosen = if scheme == Scheme::Cv2 { r[0] } else { r[1] };
                    if chosen > bound(sims) {
                        failures.push(format!(
                            "{} ({}) at {seeds} seeds: {}",
                            cell.name,
                            methods(scheme)[if scheme == Scheme::Cv2 { 0 } else { 1 }],
                            percent(chosen)
                        ));
                    }
                }
            }
        }
        table.push('\n');
    }
    // The cv2 statistics side by side: the highest family-wise rate over the null cells, and the
    // power cell.
    let mut alternatives = format!(
        "| cv2 statistic ({sims} runs per cell) | highest null-cell FWER, J = 2 / 3 / 5 / 10 | power, +5 points on 600, J = 2 / 3 / 5 / 10 |\n|---|---|---|\n"
    );
    let power_random = cells.len() - 1;
    for (m, name) in methods(Scheme::Cv2).iter().enumerate() {
        let worst: Vec<String> = (0..SEEDS.len())
            .map(|s| {
                let w = (0..cells.len())
                    .filter(|&c| {
                        cells[c].delta == 0.0 && !cells[c].limit && matches!(cells[c].design, Design::Random { .. })
                    })
                    .map(|c| rate(c, Scheme::Cv2, s)[m])
                    .fold(0.0, f64::max);
                percent(w)
            })
            .collect();
        let power: Vec<String> = (0..SEEDS.len())
            .map(|s| percent(rate(power_random, Scheme::Cv2, s)[m]))
            .collect();
        alternatives.push_str(&format!("| {name} | {} | {} |\n", worst.join(" / "), power.join(" / ")));
    }
    if std::env::var_os("FLATMIN_GRID_ALL").is_some() {
        for (c, cell) in cells.iter().enumerate() {
            if let Design::Random { .. } = cell.design {
                for (m, name) in methods(Scheme::Cv2).iter().enumerate() {
                    let r: Vec<String> = (0..SEEDS.len()).map(|s| percent(rate(c, Scheme::Cv2, s)[m])).collect();
                    eprintln!("| {} | {name} | {} |", cell.name, r.join(" | "));
                }
            }
        }
    }
    if !candidates() {
        alternatives.clear();
    }
    eprintln!(
        "{table}\nfixed cells: before issue 21 → now; data-set cells: a split per seed with the corrected \
         resampled t (before issue 21) / with the worst-case training-set interval (--design splits) / repeated \
         2-fold cross-validation (--design cv2, the default). Null cells: family-wise false-positive rate; power \
         cells: the rate of \"better\". Bound per null cell: {} ({sims} runs).\n\n{alternatives}\n{:.1} s.",
        percent(bound(sims)),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "above the bound: {failures:?}\n{table}");
    // On a fixed test set the planted effect stays findable with 5 and 10 seeds about as often as
    // before; with a data set, cv2 finds it more often than the corrected resampled t did (which
    // was liberal) and far more often than the worst-case splits interval.
    let fixed_power = cells.len() - 2;
    assert!(
        rate(fixed_power, Scheme::Fixed, 2)[1] > 0.12 && rate(fixed_power, Scheme::Fixed, 3)[1] > 0.15,
        "{table}"
    );
    for s in [2, 3] {
        let (splits, cv2) = (
            rate(power_random, Scheme::Splits, s),
            rate(power_random, Scheme::Cv2, s),
        );
        assert!(cv2[0] > splits[0] && cv2[0] > splits[1] + 0.1, "{table}");
    }
}

/// The held-out power check: a real ~12-point effect on a table like a 40 % label-noise run (the
/// base near 69 %, the method near 81 %, 1000 test examples, 5 seeds, seed-to-seed spread of
/// about 2 points) must be called better: on a fixed test set, with random splits, and with
/// repeated 2-fold cross-validation.
#[test]
fn a_twelve_point_effect_under_label_noise_is_called_better() {
    let mut rng = Rng::seeded(40);
    let n = 1000;
    // Persistent outcomes: the base right on 69 % of the examples, the method on 81 %, agreeing
    // on most; each seed redraws 20 % of them with its own accuracy move (sd 2 points).
    let base: Vec<bool> = (0..n).map(|_| rng.bernoulli(0.69)).collect();
    let method: Vec<bool> = base
        .iter()
        .map(|&b| if b { rng.bernoulli(0.93) } else { rng.bernoulli(0.55) })
        .collect();
    let seed_outcomes = |rng: &mut Rng, test: &[usize]| -> Discordance {
        let (sb, sm) = (0.02 * normal(rng), 0.02 * normal(rng));
        let (b, m): (Vec<bool>, Vec<bool>) = test
            .iter()
            .map(|&i| {
                if rng.bernoulli(0.8) {
                    (base[i], method[i])
                } else {
                    (rng.bernoulli(0.69 + sb), rng.bernoulli(0.81 + sm))
                }
            })
            .unzip();
        stats::discordance(&b, &m)
    };
    let all: Vec<usize> = (0..n).collect();
    let fixed: Vec<Discordance> = (0..5).map(|_| seed_outcomes(&mut rng, &all)).collect();
    let e = stats::seeds_and_test_examples(&fixed).unwrap();
    eprintln!(
        "held-out check, fixed test set: {:+.1} ± {:.1} points (p = {:.2e})",
        e.mean,
        e.half_width,
        e.p_value()
    );
    assert!(e.mean > 9.0 && e.significant(), "{e:?}");
    // Random splits of a 5000-example data set: 4000 training, 1000 test examples per seed.
    let pool = 5000;
    let (base_all, method_all): (Vec<bool>, Vec<bool>) = (0..pool)
        .map(|_| {
            let b = rng.bernoulli(0.69);
            (b, if b { rng.bernoulli(0.93) } else { rng.bernoulli(0.55) })
        })
        .unzip();
    let random: Vec<Discordance> = (0..5)
        .map(|_| {
            let mut order: Vec<usize> = (0..pool).collect();
            for i in 0..n {
                let r = i + (rng.next_u64() % (pool - i) as u64) as usize;
                order.swap(i, r);
            }
            let (sb, sm) = (0.02 * normal(&mut rng), 0.02 * normal(&mut rng));
            let (b, m): (Vec<bool>, Vec<bool>) = order[..n]
                .iter()
                .map(|&i| {
                    if rng.bernoulli(0.8) {
                        (base_all[i], method_all[i])
                    } else {
                        (rng.bernoulli(0.69 + sb), rng.bernoulli(0.81 + sm))
                    }
                })
                .unzip();
            stats::discordance(&b, &m)
        })
        .collect();
    let e = stats::random_splits(&random, 4000).unwrap();
    eprintln!(
        "held-out check, random splits: {:+.1} ± {:.1} points (p = {:.2e})",
        e.mean,
        e.half_width,
        e.p_value()
    );
    assert!(e.mean > 9.0 && e.significant(), "{e:?}");
    // Five repetitions of 2-fold cross-validation of the same 5000 examples (2500 / 2500).
    let mut folds = Vec::new();
    let mut order: Vec<usize> = (0..pool).collect();
    for _ in 0..5 {
        for i in 0..pool / 2 {
            let r = i + (rng.next_u64() % (pool - i) as u64) as usize;
            order.swap(i, r);
        }
        let (a, b) = order.split_at(pool / 2);
        for test in [b, a] {
            let (sb, sm) = (0.02 * normal(&mut rng), 0.02 * normal(&mut rng));
            let (bs, ms): (Vec<bool>, Vec<bool>) = test
                .iter()
                .map(|&i| {
                    if rng.bernoulli(0.8) {
                        (base_all[i], method_all[i])
                    } else {
                        (rng.bernoulli(0.69 + sb), rng.bernoulli(0.81 + sm))
                    }
                })
                .unzip();
            folds.push(stats::Fold {
                outcomes: stats::discordance(&bs, &ms),
                examples: test.to_vec(),
            });
        }
    }
    let e = stats::two_fold_cv(&folds).unwrap();
    eprintln!(
        "held-out check, 5 repetitions of 2-fold cross-validation: {:+.1} ± {:.1} points (p = {:.2e})",
        e.mean,
        e.half_width,
        e.p_value()
    );
    assert!(e.mean > 9.0 && e.significant(), "{e:?}");
}
