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
// The populations

#[derive(Clone, Copy)]
enum Design {
    /// One fixed test set of `n` examples.
    Fixed { n: usize },
    /// A data set of `n_train + n_test`, a random split per seed.
    Random { n_train: usize, n_test: usize },
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
}

struct Example {
    p: f64,
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
            let q: Vec<f64> = (0..k)
                .map(|o| {
                    if o == 0 || identical {
                        p
                    } else {
                        let lean = if rng.bernoulli(0.5) { alpha } else { -alpha };
                        p + lean + if o == 1 { cell.delta / 100.0 } else { 0.0 }
                    }
                })
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
            let weight = if train > 0.0 {
                (0..k).map(|_| normal(rng)).collect()
            } else {
                Vec::new()
            };
            Example {
                p,
                q,
                persistent,
                weight,
            }
        })
        .collect()
}

/// One seed's correctness per optimizer on `test`, with each optimizer's seed shift `shifts`
/// (of its fresh draws) and training-set move `moves`.
fn run_seed(cell: &Cell, test: &[&Example], shifts: &[f64], moves: &[f64], rng: &mut Rng) -> Vec<Vec<bool>> {
    let Model::Binary { persist, few, .. } = cell.model else {
        unreachable!()
    };
    let k = cell.optimizers;
    let mut out = vec![Vec::with_capacity(test.len()); k];
    for e in test {
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
            let _ = e.p;
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

/// One simulated run: the tables of paired values (points) per family member, and for random
/// splits the discordance per seed.
enum Run {
    Fixed(Vec<Vec<Vec<f64>>>),
    Random(Vec<Vec<Discordance>>, usize),
}

fn simulate_run(cell: &Cell, seeds: usize, rng: &mut Rng) -> Run {
    let k = cell.optimizers;
    let family = pairs(k);
    match (cell.design, cell.model) {
        (Design::Fixed { n }, Model::Normal { seed }) => {
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
            Run::Fixed(
                family
                    .iter()
                    .map(|&(a, b)| {
                        (0..seeds)
                            .map(|s| (0..n).map(|i| scores[b][s][i] - scores[a][s][i]).collect())
                            .collect()
                    })
                    .collect(),
            )
        }
        (design, Model::Binary { seed, train, .. }) => {
            let (pool, n_test, n_train) = match design {
                Design::Fixed { n } => (n, n, 0),
                Design::Random { n_train, n_test } => (n_train + n_test, n_test, n_train),
            };
            let data = draw_examples(cell, pool, rng);
            let totals: Vec<f64> = (0..k)
                .map(|o| data.iter().map(|e| e.weight.get(o).copied().unwrap_or(0.0)).sum())
                .collect();
            let mut order: Vec<usize> = (0..pool).collect();
            let runs: Vec<Vec<Vec<bool>>> = (0..seeds)
                .map(|_| {
                    if n_train > 0 {
                        // A partial shuffle: the first n_test are this seed's test set.
                        for i in 0..n_test {
                            let r = i + (rng.next_u64() % (pool - i) as u64) as usize;
                            order.swap(i, r);
                        }
                    }
                    let test: Vec<&Example> = order[..n_test].iter().map(|&i| &data[i]).collect();
                    // Seed noise moves the fresh draws (a share 1 − persist of the outcomes) so
                    // that the accuracy moves with sd `seed` points.
                    let Model::Binary { persist, .. } = cell.model else {
                        unreachable!()
                    };
                    let shifts: Vec<f64> = (0..k)
                        .map(|_| seed / 100.0 / (1.0 - persist).max(0.1) * normal(rng))
                        .collect();
                    let moves: Vec<f64> = (0..k)
                        .map(|o| {
                            let mut t = 0.0;
                            if train > 0.0 && n_train > 0 {
                                let held: f64 = test.iter().map(|e| e.weight[o]).sum();
                                let mean = (totals[o] - held) / n_train as f64;
                                t += train / 100.0 * (n_train as f64).sqrt() * mean;
                            }
                            t
                        })
                        .collect();
                    run_seed(cell, &test, &shifts, &moves, rng)
                })
                .collect();
            let discordances: Vec<Vec<Discordance>> = family
                .iter()
                .map(|&(a, b)| runs.iter().map(|r| stats::discordance(&r[a], &r[b])).collect())
                .collect();
            match design {
                Design::Fixed { .. } => Run::Fixed(
                    discordances
                        .iter()
                        .map(|seeds| {
                            seeds
                                .iter()
                                .map(|d| d.iter().map(|&x| 100.0 * f64::from(x)).collect())
                                .collect()
                        })
                        .collect(),
                ),
                Design::Random { .. } => Run::Random(discordances, n_train),
            }
        }
        (Design::Random { .. }, Model::Normal { .. }) => unreachable!(),
    }
}

/// What one run decided: (any false verdict before, any after) for a null cell, or (first method
/// called better before, after) for a power cell.
fn decide(cell: &Cell, run: &Run) -> (bool, bool) {
    let (before, after): (Vec<(bool, f64)>, Vec<Estimate>) = match run {
        Run::Fixed(tables) => (
            tables
                .iter()
                .map(|t| (before_fixed(t), t.iter().flatten().sum::<f64>()))
                .collect(),
            tables.iter().map(|t| stats::two_way_verdict(t).unwrap()).collect(),
        ),
        Run::Random(outcomes, n_train) => (
            outcomes
                .iter()
                .map(|o| {
                    (
                        before_random(o, *n_train),
                        o.iter().flatten().map(|&x| f64::from(x)).sum::<f64>(),
                    )
                })
                .collect(),
            outcomes
                .iter()
                .map(|o| stats::random_splits_verdict(o, *n_train).unwrap())
                .collect(),
        ),
    };
    let decisions = stats::holm(&after.iter().collect::<Vec<_>>(), stats::ALPHA);
    if cell.delta == 0.0 {
        (before.iter().any(|(s, _)| *s), decisions.iter().any(|d| d.rejected))
    } else {
        (
            before[0].0 && before[0].1 > 0.0,
            decisions[0].rejected && after[0].mean > 0.0,
        )
    }
}

/// Rates of (before, after) over `sims` runs of `seeds` seeds.
fn rates(cell: &Cell, seeds: usize, sims: usize, seed: u64) -> (f64, f64) {
    let mut rng = Rng::seeded(seed);
    let (mut before, mut after) = (0usize, 0usize);
    for _ in 0..sims {
        let run = simulate_run(cell, seeds, &mut rng);
        let (b, a) = decide(cell, &run);
        before += usize::from(b);
        after += usize::from(a);
    }
    (before as f64 / sims as f64, after as f64 / sims as f64)
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
    };
    let cell = |name, design, model| Cell {
        name,
        design,
        model,
        delta: 0.0,
        optimizers: 4,
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
            "random: identical optimizers",
            random,
            binary(0.0, true, 0.0, 0.0, None),
        ),
        cell(
            "random: equal on average, ±15 points per example",
            random,
            binary(0.15, false, 0.0, 0.0, None),
        ),
        cell(
            "random: seed-dominated (seed sd 4 points)",
            random,
            binary(0.0, false, 4.0, 0.0, None),
        ),
        cell(
            "random: training-set component 2 points",
            random,
            binary(0.0, false, 0.0, 2.0, None),
        ),
        cell(
            "random: training-set component 4 points",
            random,
            binary(0.0, false, 0.0, 4.0, None),
        ),
        cell(
            "random: training-set component 8 points",
            random,
            binary(0.0, false, 0.0, 8.0, None),
        ),
        cell("random: few discordant, k ≈ 4 per split", random, few(4.0)),
        cell("random: few discordant, k ≈ 16 per split", random, few(16.0)),
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
    };
    vec![
        Cell {
            name: "power: planted +5 points (α 12), fixed, 200 test",
            design: Design::Fixed { n: 200 },
            model: planted,
            delta: 5.0,
            optimizers: 2,
        },
        Cell {
            name: "power: planted +5 points (α 12), random 400/200",
            design: Design::Random {
                n_train: 400,
                n_test: 200,
            },
            model: planted,
            delta: 5.0,
            optimizers: 2,
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

#[test]
fn every_verdict_family_keeps_its_false_positive_rate_and_planted_effects_are_found() {
    let sims = sims();
    let started = std::time::Instant::now();
    let cells: Vec<Cell> = null_cells().into_iter().chain(power_cells()).collect();
    // Every (cell, seeds) on two threads.
    let jobs: Vec<(usize, usize)> = (0..cells.len())
        .flat_map(|c| (0..SEEDS.len()).map(move |s| (c, s)))
        .collect();
    let results: Vec<((usize, usize), (f64, f64))> = std::thread::scope(|scope| {
        let halves: Vec<_> = [0, 1]
            .map(|h| {
                let (jobs, cells) = (&jobs, &cells);
                scope.spawn(move || {
                    jobs.iter()
                        .skip(h)
                        .step_by(2)
                        .map(|&(c, s)| {
                            let seed = 1000 + 17 * c as u64 + s as u64;
                            ((c, s), rates(&cells[c], SEEDS[s], sims, seed))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .into_iter()
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let rate = |c: usize, s: usize| results.iter().find(|(k, _)| *k == (c, s)).unwrap().1;
    let mut table = format!(
        "| cell ({sims} simulated runs each; null cells: family of 5 verdicts) | J = 2 before → after | J = 3 | J = 5 | J = 10 |\n\
         |---|---|---|---|---|\n"
    );
    let mut failures = Vec::new();
    for (c, cell) in cells.iter().enumerate() {
        table.push_str(&format!("| {} |", cell.name));
        for (s, seeds) in SEEDS.iter().enumerate() {
            let (before, after) = rate(c, s);
            table.push_str(&format!(" {:.1} % → {:.1} % |", 100.0 * before, 100.0 * after));
            if cell.delta == 0.0 && after > bound(sims) {
                failures.push(format!("{} at {seeds} seeds: {:.1} %", cell.name, 100.0 * after));
            }
        }
        table.push('\n');
    }
    eprintln!(
        "{table}\nnull cells: family-wise false-positive rate; power cells: the rate of \"better\". Bound per \
         null cell: {:.1} % ({sims} runs). {:.1} s.",
        100.0 * bound(sims),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "above the bound: {failures:?}\n{table}");
    // On a fixed test set the planted effect stays findable with 5 and 10 seeds about as often as
    // before (with random splits the price of validity is power: README).
    let fixed_power = cells.len() - 2;
    assert!(
        rate(fixed_power, 2).1 > 0.12 && rate(fixed_power, 3).1 > 0.15,
        "{table}"
    );
}

/// The held-out power check: a real ~12-point effect on a table like a 40 % label-noise run (the
/// base near 69 %, the method near 81 %, 1000 test examples, 5 seeds, seed-to-seed spread of
/// about 2 points) must be called better, on a fixed test set and with random splits.
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
}
