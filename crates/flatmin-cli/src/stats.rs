//! The statistics of `flatmin compare`: how far a difference of test accuracy between two
//! optimizers can be trusted on new data from the same source, and what a run could have seen.
//!
//! Two designs, each with the interval that accounts for the variance a user meets on new data:
//!
//! - **Repeated random splits** (the default): every seed draws its own stratified split and both
//!   optimizers share it. The per-seed differences are correlated (the training sets overlap), so
//!   the plain t-interval is too narrow; the *corrected resampled t-test* of Nadeau & Bengio (2003,
//!   "Inference for the Generalization Error", Machine Learning 52) widens the variance of the
//!   mean by the factor `1/J + n_test/n_train` instead of `1/J` (Bouckaert & Frank 2004,
//!   "Evaluating the Replicability of Significance Tests for Comparing Learning Algorithms",
//!   PAKDD), with `J − 1` degrees of freedom.
//! - **A fixed test set** (the user's `train/` and `test/` folders, or an explicit
//!   `--split-seed`): the seeds see the same test examples, so their spread says nothing about
//!   the test set's own sampling error. The per-example paired outcomes form an examples × seeds
//!   table; the variance of the mean difference is the two-way random-effects sum
//!   `s²_examples / n + s²_seeds / J` (test examples and seeds both drawn at random; the
//!   example × seed interaction enters both terms, once too many, so this is slightly
//!   conservative), with Satterthwaite's (1946) degrees of freedom.
//!
//! Both intervals have zero width only when the two optimizers agree on every test example of
//! every seed. Differences are in accuracy points (percent). Student's t is computed here (the
//! regularized incomplete beta by its continued fraction), checked against table values.

use serde::Serialize;

// ---------------------------------------------------------------------------------------------
// Student's t

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-14).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz).
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < tiny { tiny } else { d };
    let mut f = d;
    for m in 1..=500 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = 1.0 / if d.abs() < tiny { tiny } else { d };
            c = 1.0 + numerator / c;
            if c.abs() < tiny {
                c = tiny;
            }
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * f / a
}

/// The cumulative distribution function of Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (`df` > 0, 0 < `p` < 1): the
/// inverse of [`t_cdf`] by bisection, to about 1e-12 relative.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    if p == 0.5 {
        return 0.0;
    }
    let mut hi = 1.0;
    while t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The two-sided level of every interval and test here.
pub const CONFIDENCE: f64 = 0.95;
/// The power at which "the smallest detectable difference" is quoted.
pub const POWER: f64 = 0.8;

/// `t(0.975, df) + t(0.8, df)`: the multiple of the standard error that a true difference needs
/// to be found 80 % of the time by a two-sided 95 % test (the usual power approximation that
/// ignores the far tail).
fn detection_multiple(df: f64) -> f64 {
    t_quantile(0.5 + CONFIDENCE / 2.0, df) + t_quantile(POWER, df)
}

// ---------------------------------------------------------------------------------------------
// Paired outcomes

/// One seed's paired per-example outcomes on its test set: `+1` where only the method is right,
/// `−1` where only the base is, `0` where they agree (both right or both wrong).
pub type Discordance = Vec<i8>;

/// The per-example discordance of two correctness vectors over the same test examples.
pub fn discordance(base: &[bool], method: &[bool]) -> Discordance {
    base.iter()
        .zip(method)
        .map(|(&b, &m)| i8::from(m) - i8::from(b))
        .collect()
}

/// Mean and sample variance (n − 1) of `xs`; the variance is 0 for fewer than two values.
fn mean_var(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count() as f64;
    if n == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.clone().sum::<f64>() / n;
    let var = if n > 1.0 {
        xs.map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var)
}

/// The sample variance of per-example values, guarded: when every example shows the same nonzero
/// difference, one tie (a 0) is counted with them, so a handful of examples that all go one way
/// still leave an interval of honest width. All zeros (full agreement) stay at variance 0.
fn example_variance(values: &[f64]) -> f64 {
    let (mean, var) = mean_var(values.iter().copied());
    if var == 0.0 && mean != 0.0 {
        mean_var(values.iter().copied().chain([0.0])).1
    } else {
        var
    }
}

/// A seed's difference in points: 100 × the mean discordance.
fn points(d: &[i8]) -> f64 {
    100.0 * d.iter().map(|&x| f64::from(x)).sum::<f64>() / d.len().max(1) as f64
}

// ---------------------------------------------------------------------------------------------
// Estimates

/// Which interval an [`Estimate`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Repeated random splits, Nadeau & Bengio's corrected resampled t.
    CorrectedResampledT,
    /// A fixed test set: seeds and test examples as two random effects.
    SeedsAndTestExamples,
    /// The plain t-interval over seeds (the method before; kept for the comparison by simulation).
    PlainT,
}

impl Method {
    /// A one-line name for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CorrectedResampledT => "corrected resampled t over per-seed random splits (Nadeau & Bengio 2003)",
            Self::SeedsAndTestExamples => {
                "seeds + test-example sampling error on the fixed test set (two-way random effects, Satterthwaite df)"
            }
            Self::PlainT => "plain t over seeds",
        }
    }
}

/// How the variance of the mean difference changes with more seeds or more data, per method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Components {
    /// Corrected resampled t: `var_per_seed · (1/J + test_over_train)`.
    Resampled {
        /// Variance of one seed's difference (points²); its within-split sampling variance when the
        /// seeds' differences are all equal.
        var_per_seed: f64,
        /// n_test / n_train.
        test_over_train: f64,
    },
    /// Fixed test set: `examples/n + seeds/J + interaction/(n·J)` (points²), the variance
    /// components of the examples × seeds table (method of moments, clipped at 0).
    Fixed {
        /// Between-example variance of the difference.
        examples: f64,
        /// Between-seed variance of the difference.
        seeds: f64,
        /// Interaction (example × seed) and Bernoulli noise.
        interaction: f64,
    },
    /// Plain t: `var_per_seed / J`.
    Plain {
        /// Variance of one seed's difference (points²).
        var_per_seed: f64,
    },
}

/// A paired difference (method − base, accuracy points) with its 95 % interval and what the run
/// could have detected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The interval's method.
    pub method: Method,
    /// Seeds (paired runs).
    pub seeds: usize,
    /// Test examples per seed (the mean when they differ).
    pub test_examples: f64,
    /// Mean difference (points).
    pub mean: f64,
    /// Standard error of the mean (points).
    pub standard_error: f64,
    /// Degrees of freedom of t.
    pub df: f64,
    /// The 0.975 quantile of t with `df`.
    pub t: f64,
    /// t · standard error: the interval is mean ± this.
    pub half_width: f64,
    /// The part of the squared standard error due to the seeds (points²).
    pub seed_variance: f64,
    /// The part due to the test examples or the luck of the split (points²).
    pub test_variance: f64,
    /// The smallest true difference this run finds 80 % of the time (points).
    pub detectable: f64,
    /// The variance model, for projections.
    pub components: Components,
}

impl Estimate {
    /// The interval's ends.
    pub fn interval(&self) -> (f64, f64) {
        (self.mean - self.half_width, self.mean + self.half_width)
    }

    /// Whether the interval excludes 0.
    pub fn significant(&self) -> bool {
        let (lo, hi) = self.interval();
        lo > 0.0 || hi < 0.0
    }

    /// The probability that this design calls a true difference of `delta` points significant
    /// (two-sided, t with the run's df, the far tail included).
    pub fn power(&self, delta: f64) -> f64 {
        power_at(delta, self.standard_error, self.df)
    }

    /// Standard error and df with `seeds` seeds and `data` times the test examples (and, for
    /// random splits, the whole data set: the split fractions stay).
    pub fn projected(&self, seeds: f64, data: f64) -> (f64, f64) {
        match self.components {
            Components::Resampled {
                var_per_seed,
                test_over_train,
            } => (
                (var_per_seed / data * (1.0 / seeds + test_over_train)).sqrt(),
                seeds - 1.0,
            ),
            Components::Plain { var_per_seed } => ((var_per_seed / data / seeds).sqrt(), seeds - 1.0),
            Components::Fixed {
                examples,
                seeds: between_seeds,
                interaction,
            } => {
                let n = self.test_examples * data;
                let a = examples / n + interaction / (n * seeds);
                let b = between_seeds / seeds;
                (
                    (a + b).sqrt(),
                    satterthwaite(a, n - 1.0, b, seeds - 1.0).unwrap_or(seeds - 1.0),
                )
            }
        }
    }

    /// The smallest detectable difference (80 % power) with `seeds` seeds and `data` times the data.
    pub fn detectable_at(&self, seeds: f64, data: f64) -> f64 {
        let (se, df) = self.projected(seeds, data);
        detection_multiple(df) * se
    }

    /// About how many seeds (same data) would detect a true difference of `delta` 80 % of the
    /// time; `None` when no number of seeds up to 10 000 would (the test set or the split ratio
    /// limits it).
    pub fn seeds_to_detect(&self, delta: f64) -> Option<u64> {
        let delta = delta.abs();
        let enough = |j: u64| self.detectable_at(j as f64, 1.0) <= delta;
        if delta == 0.0 || !enough(10_000) {
            return None;
        }
        let (mut lo, mut hi) = (1u64, 10_000u64);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if enough(mid) { hi = mid } else { lo = mid }
        }
        Some(hi.max(2))
    }

    /// About how many times the data (test examples, or the whole data set with random splits),
    /// at this many seeds, would detect a true difference of `delta` 80 % of the time; `None` when
    /// no amount up to 10 000× would (the seeds limit it).
    pub fn data_to_detect(&self, delta: f64) -> Option<f64> {
        let delta = delta.abs();
        let seeds = self.seeds as f64;
        let enough = |f: f64| self.detectable_at(seeds, f) <= delta;
        if delta == 0.0 || !enough(1e4) {
            return None;
        }
        let (mut lo, mut hi) = (1e-3f64, 1e4f64);
        for _ in 0..100 {
            let mid = (lo * hi).sqrt();
            if enough(mid) { hi = mid } else { lo = mid }
        }
        Some(hi)
    }
}

/// Satterthwaite's degrees of freedom of `a + b`, with `a` and `b` estimated on `da` and `db`
/// degrees of freedom; `None` when both are 0.
fn satterthwaite(a: f64, da: f64, b: f64, db: f64) -> Option<f64> {
    let denominator = a * a / da.max(1.0) + b * b / db.max(1.0);
    (denominator > 0.0).then(|| ((a + b) * (a + b) / denominator).max(1.0))
}

/// The probability that a two-sided 95 % t-test with standard error `se` and `df` degrees of
/// freedom rejects when the true difference is `delta` (the shifted-t approximation).
pub fn power_at(delta: f64, se: f64, df: f64) -> f64 {
    if se == 0.0 {
        return if delta != 0.0 { 1.0 } else { 0.0 };
    }
    let tc = t_quantile(0.5 + CONFIDENCE / 2.0, df);
    let shift = delta / se;
    (1.0 - t_cdf(tc - shift, df)) + t_cdf(-tc - shift, df)
}

fn finish(
    method: Method,
    seeds: usize,
    n: f64,
    mean: f64,
    (seed_var, test_var): (f64, f64),
    df: f64,
    components: Components,
) -> Estimate {
    let standard_error = (seed_var + test_var).sqrt();
    let t = t_quantile(0.5 + CONFIDENCE / 2.0, df);
    Estimate {
        method,
        seeds,
        test_examples: n,
        mean,
        standard_error,
        df,
        t,
        half_width: t * standard_error,
        seed_variance: seed_var,
        test_variance: test_var,
        detectable: detection_multiple(df) * standard_error,
        components,
    }
}

/// The plain t-interval over per-seed differences (points): the method `flatmin compare` used
/// before, kept to show by simulation why it was replaced. `None` with fewer than two seeds.
pub fn plain_t(per_seed: &[f64], test_examples: f64) -> Option<Estimate> {
    let j = per_seed.len();
    if j < 2 {
        return None;
    }
    let (mean, var) = mean_var(per_seed.iter().copied());
    Some(finish(
        Method::PlainT,
        j,
        test_examples,
        mean,
        (var / j as f64, 0.0),
        (j - 1) as f64,
        Components::Plain { var_per_seed: var },
    ))
}

/// Repeated random splits: seed `j` trained on `n_train` examples and was tested on the
/// `outcomes[j]` of its own held-out examples. The corrected resampled t-interval (Nadeau &
/// Bengio 2003): variance of the mean `(1/J + n_test/n_train) · s²`, where `s²` is the sample
/// variance of the per-seed differences. When that is 0 while the optimizers disagree on some
/// examples (equal per-seed differences, which small test sets make likely), the mean
/// within-split sampling variance of a seed's difference stands in for it, so the interval keeps
/// a width. `None` with fewer than two seeds or an empty test set.
pub fn corrected_resampled_t(outcomes: &[Discordance], n_train: usize) -> Option<Estimate> {
    let j = outcomes.len();
    if j < 2 || outcomes.iter().any(|d| d.is_empty()) || n_train == 0 {
        return None;
    }
    let per_seed: Vec<f64> = outcomes.iter().map(|d| points(d)).collect();
    let (mean, var) = mean_var(per_seed.iter().copied());
    let within = outcomes
        .iter()
        .map(|d| {
            let v: Vec<f64> = d.iter().map(|&x| 100.0 * f64::from(x)).collect();
            example_variance(&v) / d.len() as f64
        })
        .sum::<f64>()
        / j as f64;
    let var_per_seed = if var > 0.0 { var } else { within };
    let n_test = outcomes.iter().map(Vec::len).sum::<usize>() as f64 / j as f64;
    let test_over_train = n_test / n_train as f64;
    Some(finish(
        Method::CorrectedResampledT,
        j,
        n_test,
        mean,
        (var_per_seed / j as f64, var_per_seed * test_over_train),
        (j - 1) as f64,
        Components::Resampled {
            var_per_seed,
            test_over_train,
        },
    ))
}

/// A fixed test set: `outcomes[j][i]` is example `i` under seed `j` (every seed the same
/// examples). Variance of the mean `s²_examples/n + s²_seeds/J`, where `s²_examples` is the
/// sample variance over examples of the seed-averaged discordance and `s²_seeds` that over seeds
/// of the per-seed differences; Satterthwaite's df. `None` with fewer than two seeds, an empty
/// test set, or seeds with different test sets.
pub fn seeds_and_test_examples(outcomes: &[Discordance]) -> Option<Estimate> {
    let j = outcomes.len();
    let n = outcomes.first()?.len();
    if j < 2 || n == 0 || outcomes.iter().any(|d| d.len() != n) {
        return None;
    }
    let x = |s: usize, i: usize| 100.0 * f64::from(outcomes[s][i]);
    let per_example: Vec<f64> = (0..n)
        .map(|i| (0..j).map(|s| x(s, i)).sum::<f64>() / j as f64)
        .collect();
    let per_seed: Vec<f64> = outcomes.iter().map(|d| points(d)).collect();
    let (mean, seeds_var) = mean_var(per_seed.iter().copied());
    let examples_var = example_variance(&per_example);
    let a = examples_var / n as f64;
    let b = seeds_var / j as f64;
    let df = satterthwaite(a, (n - 1) as f64, b, (j - 1) as f64).unwrap_or((j - 1) as f64);
    // Variance components for projections (expected mean squares of the two-way table).
    let residual = if n > 1 {
        let mut ss = 0.0;
        for (s, seed_mean) in per_seed.iter().enumerate() {
            for (i, example_mean) in per_example.iter().enumerate() {
                ss += (x(s, i) - example_mean - seed_mean + mean).powi(2);
            }
        }
        ss / ((n - 1) * (j - 1)) as f64
    } else {
        0.0
    };
    let components = Components::Fixed {
        examples: (examples_var - residual / j as f64).max(0.0),
        seeds: (seeds_var - residual / n as f64).max(0.0),
        interaction: residual,
    };
    Some(finish(
        Method::SeedsAndTestExamples,
        j,
        n as f64,
        mean,
        (b, a),
        df,
        components,
    ))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_quantiles_for_power_match_the_tables() {
        // One-sided 80 %, where it has a closed form: df 1 (Cauchy) tan(0.3π), df 2
        // (2p − 1)/√(2p(1 − p)), and the normal quantile for large df.
        assert!(close(t_quantile(0.8, 1.0), (0.3 * std::f64::consts::PI).tan(), 1e-10));
        assert!(close(t_quantile(0.8, 2.0), 0.6 / 0.32f64.sqrt(), 1e-10));
        assert!(close(t_quantile(0.8, 1e7), 0.841_621_234, 1e-5));
        assert!(t_quantile(0.8, 4.0) > t_quantile(0.8, 9.0) && t_quantile(0.8, 9.0) > t_quantile(0.8, 1e7));
    }

    #[test]
    fn power_is_five_percent_at_zero_and_eighty_at_the_detectable_difference() {
        assert!(close(power_at(0.0, 1.0, 9.0), 0.05, 1e-10));
        let delta = detection_multiple(9.0) * 1.5;
        // The far tail adds a hair to the 80 %.
        let p = power_at(delta, 1.5, 9.0);
        assert!((0.8..0.8005).contains(&p), "{p}");
        // Large df: the normal formula, (1.96 + 0.8416)·se.
        assert!(close(detection_multiple(1e7), 1.959_964 + 0.841_621, 1e-5));
    }

    #[test]
    fn corrected_resampled_t_widens_by_the_split_ratio() {
        // Per-seed differences 1, 3, 2 points on 100 test examples; n_train 400: s² = 1, variance
        // of the mean (1/3 + 0.25)·1, t(0.975, 2).
        let seed = |plus: usize| -> Discordance {
            let mut d = vec![0i8; 100];
            for x in d.iter_mut().take(plus + 10) {
                *x = 1;
            }
            for x in d.iter_mut().skip(50).take(10) {
                *x = -1;
            }
            d
        };
        let e = corrected_resampled_t(&[seed(1), seed(3), seed(2)], 400).unwrap();
        assert!(close(e.mean, 2.0, 1e-12));
        let se = (1.0f64 / 3.0 + 0.25).sqrt();
        assert!(close(e.standard_error, se, 1e-9), "{} vs {se}", e.standard_error);
        assert!(close(e.half_width, 4.302_652_730 * se, 1e-7));
        assert!(close(e.seed_variance, 1.0 / 3.0, 1e-12) && close(e.test_variance, 0.25, 1e-12));
        assert_eq!(e.df, 2.0);
        // Equal per-seed differences on disagreeing examples: the within-split sampling variance
        // (sample variance of 100·D over the examples, over n) stands in for s² = 0.
        let e = corrected_resampled_t(&[seed(2), seed(2), seed(2)], 400).unwrap();
        let ss = 12.0 * (100.0f64 - 2.0).powi(2) + 10.0 * (100.0f64 + 2.0).powi(2) + 78.0 * 4.0;
        let within = ss / 99.0 / 100.0;
        assert!(
            close(e.standard_error, (within * (1.0 / 3.0 + 0.25)).sqrt(), 1e-9),
            "{e:?}"
        );
    }

    #[test]
    fn corrected_resampled_t_without_the_floor_is_the_textbook_formula() {
        // Per-seed differences 10, 30, 20 points on 10 test examples; n_train 40.
        let seed = |plus: usize| -> Discordance { (0..10).map(|i| i8::from(i < plus)).collect() };
        let e = corrected_resampled_t(&[seed(1), seed(3), seed(2)], 40).unwrap();
        assert!(close(e.mean, 20.0, 1e-12));
        // s² = 100; within-split ≤ 100·100·0.3·0.7·10/9/10 ≈ 23.3 < 100.
        assert!(close(e.standard_error, (100.0f64 * (1.0 / 3.0 + 0.25)).sqrt(), 1e-9));
    }

    #[test]
    fn a_fixed_test_set_counts_its_examples() {
        // The breast-cancer case: 3 seeds, 113 test rows, every seed differs by the same
        // single row. Plain t: zero width. Here: the one row's sampling error.
        let mut d = vec![0i8; 113];
        d[7] = -1;
        let outcomes = vec![d.clone(), d.clone(), d];
        let plain = plain_t(&outcomes.iter().map(|d| points(d)).collect::<Vec<_>>(), 113.0).unwrap();
        assert_eq!(plain.half_width, 0.0);
        let e = seeds_and_test_examples(&outcomes).unwrap();
        assert!(close(e.mean, -100.0 / 113.0, 1e-12));
        // s²_examples = (100² − 113·(100/113)²)/112, over n = 113; no seed variance; df = 112.
        let var = (10_000.0 - 113.0 * (100.0f64 / 113.0).powi(2)) / 112.0 / 113.0;
        assert!(close(e.standard_error, var.sqrt(), 1e-12));
        assert!(close(e.df, 112.0, 1e-9));
        assert!(e.half_width > 1.5 && !e.significant(), "{e:?}");
        // Identical outcomes: zero width, at 0.
        let same = vec![vec![0i8; 20]; 4];
        let e = seeds_and_test_examples(&same).unwrap();
        assert_eq!((e.mean, e.half_width), (0.0, 0.0));
        assert!(!e.significant());
        // Every example one way: still a width (the guard's tie).
        let all = vec![vec![1i8; 5]; 3];
        let e = seeds_and_test_examples(&all).unwrap();
        assert!(e.half_width > 10.0, "{e:?}");
        assert!(seeds_and_test_examples(&[vec![0i8; 3], vec![0i8; 4]]).is_none());
        assert!(seeds_and_test_examples(&[vec![0i8; 3]]).is_none());
    }

    #[test]
    fn both_sources_add_up_on_a_fixed_test_set() {
        // 2 seeds × 4 examples: seed 0 [1, 0, 0, 0], seed 1 [1, 1, 0, -1].
        let outcomes = vec![vec![1, 0, 0, 0], vec![1, 1, 0, -1]];
        let e = seeds_and_test_examples(&outcomes).unwrap();
        // Per seed: 25, 25 points → seed variance 0; per example: 100, 50, 0, −50 → s² = 6250/... :
        // mean 25, squares 5625 + 625 + 625 + 5625 = 12500, /3 = 4166.67, /4 = 1041.67.
        assert!(close(e.mean, 25.0, 1e-12));
        assert!(close(e.seed_variance, 0.0, 1e-12));
        assert!(close(e.test_variance, 12_500.0 / 3.0 / 4.0, 1e-9));
        assert!(close(e.df, 3.0, 1e-12));
    }

    #[test]
    fn projections_shrink_with_seeds_and_data() {
        let mut outcomes = Vec::new();
        for s in 0..5 {
            outcomes.push(
                (0..200)
                    .map(|i| {
                        if (i + s) % 17 == 0 {
                            1
                        } else if (i * 7 + s) % 23 == 0 {
                            -1
                        } else {
                            0
                        }
                    })
                    .collect::<Vec<i8>>(),
            );
        }
        let e = seeds_and_test_examples(&outcomes).unwrap();
        let (se, _) = e.projected(5.0, 1.0);
        assert!(
            close(se, e.standard_error, 0.25 * e.standard_error),
            "{se} vs {}",
            e.standard_error
        );
        assert!(e.detectable_at(50.0, 4.0) < e.detectable / 1.8);
        let need = e.data_to_detect(e.detectable / 2.0).unwrap();
        assert!((3.0..6.0).contains(&need), "{need}");
        let r = corrected_resampled_t(&outcomes, 800).unwrap();
        assert!(close(r.detectable_at(5.0, 1.0), r.detectable, 1e-9));
        // The split ratio floors what seeds alone can do: 1/J + 0.25 never goes below 0.25.
        assert!(r.seeds_to_detect(r.detectable * 0.3).is_none());
        let j = r.seeds_to_detect(r.detectable * 0.9).unwrap();
        assert!(j > 5, "{j}");
        let f = r.data_to_detect(r.detectable / 2.0).unwrap();
        assert!(close(f, 4.0, 0.01), "{f}");
    }
}
