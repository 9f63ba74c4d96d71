//! The statistics of `flatmin compare`: how far a difference of test accuracy between two
//! optimizers can be trusted on new data from the same source, what a run could have seen, and
//! how the verdicts of one run are kept to a 5 % family-wise error.
//!
//! Every comparison gets an interval (the mean difference ± a half-width) and an exact sign test;
//! it is significant at level α when the interval at 1 − α excludes 0 **and** the sign test's p is
//! at most α. The verdicts of one run (every optimizer against the base, and against SAM when the
//! frontier shows that) are one family, decided by Holm's (1979) step-down procedure over those
//! tests ([`holm`]); each interval is then shown at the level Holm used for it (95 % for a family
//! of one, up to 1 − 0.05/m for m comparisons). Three designs:
//!
//! - **Repeated 2-fold cross-validation** (`cv2`, the default; [`two_fold_cv`]): each of J
//!   repetitions splits the data in halves A and B, and both optimizers train on A and are tested
//!   on B, and train on B and are tested on A (Dietterich 1998). The difference of a fold is the
//!   data set's own part D (what every repetition of this one data set shares: its sampling, as
//!   test and as training set), plus the split's part, plus seed noise. Within a repetition the
//!   two folds trained on disjoint halves and were tested on disjoint halves, so when the
//!   difference depends additively on the training and the test examples (each example's two
//!   parts uncorrelated) the split's part enters them with opposite signs and D with the same,
//!   with equal variances: half the squared difference between a
//!   repetition's folds, `s_j² = (p₁ − p₂)²/2`, estimates the variance of one fold's deviation,
//!   which then equals Var(D) (Bengio & Grandvalet 2004 show that no estimator can do this
//!   without some such assumption). The mean of the 2J fold differences gets the variance
//!   `s̄²/2` (`s̄²` the mean of the `s_j²`, J degrees of freedom) — whatever J, since D does not
//!   average out; the repetitions only firm up the estimate — so `mean/√(s̄²/2)` is exactly
//!   Student's t on J df in that additive model and conservative when seed noise dominates. The
//!   half-width is the wider of that t-interval and the z-interval of independent paired outcomes
//!   over all the examples (McNemar's variance, a floor with the examples' df), so a run whose
//!   folds happen to agree keeps a width and one flipped example moves it by little. The
//!   simulation grid (tests/suite/compare_grid.rs) chose it over Dietterich's 5×2cv t (the first
//!   fold alone in the numerator: weaker, and liberal with few discordant examples), Alpaydin's
//!   (1999) combined F (liberal at 10 repetitions: it takes the 2J differences as independent,
//!   which they are not, sharing D), the plain t over the 2J folds (far too liberal, for the
//!   same reason) and a variance with the repetitions' spread subtracted (liberal). Its limit:
//!   when an example's effect on training and its outcome as a test example go together (a
//!   positive covariance of the two parts), Var(D) exceeds what the folds show and the interval
//!   is too narrow — no design on one data set can see that.
//! - **Repeated random splits** (`splits`): every seed draws its own stratified split and both
//!   optimizers share it. The spread of the per-seed differences mixes the test set's sampling
//!   error, the seeds' own noise and how the difference depends on the training set. Nadeau &
//!   Bengio's (2003) corrected resampled t widens all of it by `1/J + n_test/n_train`, which is
//!   right for the test-set part (two random test sets share `n_test/N` of their examples) but far
//!   too little for a training-set part (two random training sets share `n_train/N`; the part of
//!   it common to every split of this one data set never shows in the seeds' spread, as Bengio &
//!   Grandvalet (2004) showed for cross-validation). Seed noise and training-set dependence look
//!   alike in the seeds' spread, and one data set cannot tell them apart, so the whole spread —
//!   at least the test sampling `w·(1 − n_test/N)` the per-example outcomes measure (`w` their
//!   uncentred variance over n, McNemar's) — gets the training-set correction: variance of the
//!   mean `max(s², w·(1 − n_test/N))·(1/J + n_train/n_test)`, Student's t on `J − 1` degrees of
//!   freedom. It is exact when the difference depends linearly on the training examples and
//!   conservative otherwise (the price: power). Subtracting the test sampling first would be
//!   unbiased, but when s² falls low by chance the training-set part vanishes with it while the
//!   mean still carries it — liberal in the simulation grid — so it is not subtracted.
//! - **A fixed test set** (the user's `train/` and `test/` folders, or an explicit
//!   `--split-seed`): the per-example paired outcomes form an examples × seeds table, and the
//!   variance of the mean is the two-way random-effects sum `σ²_examples/n + σ²_seeds/J +
//!   σ²_interaction/(nJ)`, estimated from the mean squares without counting the interaction
//!   twice: `max(MS_examples − MS_interaction, 0)/(nJ)` on `n − 1` degrees of freedom and
//!   `max(MS_seeds, MS_interaction)/(nJ)` on `J − 1`. The two parts are combined by Banerjee's
//!   (1960) rule — half-width `√(t²_{n−1}·A + t²_{J−1}·B)` — which never covers less than its level
//!   whatever the parts' ratio, where Satterthwaite's degrees of freedom are liberal at two or three
//!   seeds when the seeds dominate. The interval is conditional on the one training set.
//!
//! In all three, the half-width gets Edwards' (1948) continuity correction (half a step of the
//! mean, `100/(number of outcomes)` points) and the variance is at least that of independent paired
//! outcomes under no difference (McNemar's), so an interval has zero width only when the two
//! optimizers agree on every test example of every run, and one flipped example moves it by one
//! example's worth. The exact sign test (McNemar's, on the examples' net discordance over the
//! seeds with a fixed test set or over the repetitions with cv2, on the discordant pairs with
//! random splits) keeps a handful of discordant examples from a verdict the exact distribution
//! would not give.
//!
//! Power and "detectable" use the noncentral t. Differences are in accuracy points (percent).
//! Distributions come from `statrs`.

use serde::Serialize;
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF, StudentsT};
use statrs::function::erf::erfc;
use statrs::function::gamma::ln_gamma;

// ---------------------------------------------------------------------------------------------
// Distributions

/// Degrees of freedom beyond which Student's t is the normal distribution here.
const NORMAL_DF: f64 = 1e7;

/// The standard normal distribution function.
fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The cumulative distribution function of Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    if df >= NORMAL_DF {
        return normal_cdf(t);
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |d| d.cdf(t))
}

/// The `p` quantile of Student's t with `df` degrees of freedom (`df` > 0, 0 < `p` < 1; NaN
/// otherwise).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if df >= NORMAL_DF {
        return -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p);
    }
    // statrs inverts the t by search; a run (and a simulation, thousands of times) asks for the
    // same few quantiles again and again, so they are kept, per thread.
    thread_local! {
        static QUANTILES: std::cell::RefCell<std::collections::HashMap<(u64, u64), f64>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    let key = (p.to_bits(), df.to_bits());
    if let Some(q) = QUANTILES.with(|c| c.borrow().get(&key).copied()) {
        return q;
    }
    let q = StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |d| d.inverse_cdf(p));
    QUANTILES.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 4096 {
            c.clear();
        }
        c.insert(key, q);
    });
    q
}

/// The distribution function of the noncentral t with `df` degrees of freedom and noncentrality
/// `lambda`: `T = (Z + λ)/√(W/ν)`, so `P(T ≤ x) = E[Φ(x·√(W/ν) − λ)]` over `W ~ χ²_ν`, integrated
/// by Simpson's rule over the density of `√(W/ν)` (to about 1e-7).
pub fn noncentral_t_cdf(x: f64, df: f64, lambda: f64) -> f64 {
    if df >= 1e5 {
        return normal_cdf(x - lambda);
    }
    let nu = df.max(0.5);
    let spread = (0.5 / nu).sqrt();
    let (lo, hi) = ((1.0 - 14.0 * spread).max(0.0), 1.0 + 14.0 * spread);
    let ln_c = std::f64::consts::LN_2 + 0.5 * nu * (0.5 * nu).ln() - ln_gamma(0.5 * nu);
    let density = |y: f64| {
        if y <= 0.0 {
            return if nu == 1.0 { ln_c.exp() } else { 0.0 };
        }
        (ln_c + (nu - 1.0) * y.ln() - 0.5 * nu * y * y).exp()
    };
    const STEPS: usize = 400;
    let h = (hi - lo) / STEPS as f64;
    let mut sum = 0.0;
    for k in 0..=STEPS {
        let y = lo + h * k as f64;
        let w = if k == 0 || k == STEPS {
            1.0
        } else if k % 2 == 1 {
            4.0
        } else {
            2.0
        };
        sum += w * density(y) * normal_cdf(x * y - lambda);
    }
    (sum * h / 3.0).clamp(0.0, 1.0)
}

/// The `p` quantile of the chi-squared distribution with `df` degrees of freedom.
fn chi_squared_quantile(p: f64, df: f64) -> f64 {
    ChiSquared::new(df).map_or(f64::NAN, |d| d.inverse_cdf(p))
}

/// The two-sided exact sign test: `positive` and `negative` signs, each equally likely under no
/// difference; p = twice the smaller tail, at most 1.
pub fn sign_test_p(positive: u64, negative: u64) -> f64 {
    let k = positive + negative;
    if k == 0 {
        return 1.0;
    }
    let tail = Binomial::new(0.5, k).map_or(1.0, |b| b.cdf(positive.min(negative)));
    (2.0 * tail).min(1.0)
}

/// The level of every verdict family and of the intervals of a family of one.
pub const ALPHA: f64 = 0.05;
/// The two-sided confidence of an interval in a family of one.
pub const CONFIDENCE: f64 = 1.0 - ALPHA;
/// The power at which "the smallest detectable difference" is quoted.
pub const POWER: f64 = 0.8;

/// The probability that a two-sided test rejects when its statistic is noncentral t with `df`
/// degrees of freedom and noncentrality `lambda`, and it rejects beyond `critical` (in standard
/// errors).
pub fn power_of(lambda: f64, df: f64, critical: f64) -> f64 {
    (1.0 - noncentral_t_cdf(critical, df, lambda)) + noncentral_t_cdf(-critical, df, lambda)
}

/// The noncentrality at which that test has [`POWER`].
pub fn detectable_noncentrality(df: f64, critical: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, critical.max(1.0) + 10.0);
    while power_of(hi, df, critical) < POWER && hi < 1e6 {
        hi *= 2.0;
    }
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if power_of(mid, df, critical) < POWER {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
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

// ---------------------------------------------------------------------------------------------
// Summaries: the one mean and standard deviation of the laboratory (compare, sweep, bench).

/// The mean of `xs` (NaN when there is none).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Mean and sample variance (n − 1) of `xs`: both NaN when there is no value, the variance 0 for
/// one value.
pub fn mean_var(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = mean(xs);
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0)
    } else {
        0.0
    };
    (m, var)
}

/// Mean and sample standard deviation (n − 1) of `xs`: both NaN when there is no value, the
/// standard deviation 0 for one value.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let (m, var) = mean_var(xs);
    (m, var.sqrt())
}

/// A seed's difference in points: 100 × the mean discordance.
#[cfg(test)]
fn points(d: &[i8]) -> f64 {
    100.0 * d.iter().map(|&x| f64::from(x)).sum::<f64>() / d.len().max(1) as f64
}

/// A table of outcomes in points (`table[seed][example]`).
fn in_points(outcomes: &[Discordance]) -> Vec<Vec<f64>> {
    outcomes
        .iter()
        .map(|d| d.iter().map(|&x| 100.0 * f64::from(x)).collect())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Estimates

/// Which interval an [`Estimate`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Repeated random splits: the seeds' spread with the training-set correction.
    RandomSplits,
    /// A fixed test set: seeds and test examples as two random effects, Banerjee's combination.
    SeedsAndTestExamples,
    /// The plain t-interval over seeds (the first method; kept for the comparison by simulation).
    PlainT,
    /// Repeated 2-fold cross-validation: the mean of the fold differences, its variance from the
    /// differences between the two folds of each repetition, J degrees of freedom.
    TwoFoldCv,
}

impl Method {
    /// A one-line name for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Self::RandomSplits => {
                "per-seed random splits: the seeds' spread corrected by n_train/n_test (training-set dependence; Nadeau & \
                 Bengio's n_test/n_train is liberal there)"
            }
            Self::SeedsAndTestExamples => {
                "seeds + test-example sampling error on the fixed test set (two-way random effects, Banerjee's rule)"
            }
            Self::PlainT => "plain t over seeds",
            Self::TwoFoldCv => {
                "repeated 2-fold cross-validation: the mean of the 2J fold differences, its variance half the mean \
                 squared difference between a repetition's two folds, Student's t on J degrees of freedom"
            }
        }
    }
}

/// One independently estimated part of the variance of the mean, with its degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VariancePart {
    /// Its contribution to the squared standard error (points²).
    pub variance: f64,
    /// Degrees of freedom of its estimate.
    pub df: f64,
}

/// How the variance of the mean changes with more seeds or more data, per method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Components {
    /// Random splits: `(within + beyond)·(1/J + n_train/n_test)` (points²).
    Resampled {
        /// The test-sampling variance of one seed's difference within the data set,
        /// `w·(1 − n_test/N)`; it shrinks with more data.
        within: f64,
        /// The per-seed variance beyond it (seed noise or training-set dependence); more data does
        /// not remove seed noise, so projections keep it.
        beyond: f64,
        /// n_test / n_train.
        test_over_train: f64,
    },
    /// Fixed test set: `examples/n + seeds/J + interaction/(n·J)` (points²), the variance
    /// components of the examples × seeds table (method of moments, clipped at 0), each counted
    /// once.
    Fixed {
        /// Between-example variance of the difference.
        examples: f64,
        /// Between-seed variance of the difference.
        seeds: f64,
        /// Interaction (example × seed) and Bernoulli noise.
        interaction: f64,
    },
    /// Repeated 2-fold cross-validation: `spread`, whatever J (points²), and never below
    /// `within`. The repetitions share the data set, whose own sampling does not average out;
    /// more repetitions only firm up the estimate (its degrees of freedom).
    TwoFold {
        /// Half the mean squared difference between a repetition's two folds (J df).
        spread: f64,
        /// The test sampling of the whole data set under independent outcomes and no difference
        /// (McNemar's): the floor. It shrinks with more data; the rest of `spread`
        /// (training-set dependence, or seed noise, which data does not remove) is kept in
        /// projections.
        within: f64,
    },
    /// Plain t: `var_per_seed / J`.
    Plain {
        /// Variance of one seed's difference (points²).
        var_per_seed: f64,
    },
}

/// McNemar's exact sign test on the discordant outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SignTest {
    /// What is counted: "examples" (net discordance over the seeds, fixed test set) or "pairs"
    /// (every discordant seed × example, random splits).
    pub unit: &'static str,
    /// Units where the method is ahead.
    pub positive: u64,
    /// Units where the base is ahead.
    pub negative: u64,
    /// Two-sided exact p.
    pub p: f64,
}

/// A paired difference (method − base, accuracy points) with its interval and what the run could
/// have detected.
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
    /// Effective degrees of freedom (Satterthwaite's, of the parts; for power and planning).
    pub df: f64,
    /// The interval's two-sided confidence (0.95 alone; higher in a family, by Holm's step).
    pub level: f64,
    /// (half-width − continuity) / standard error: the multiple of the standard error.
    pub t: f64,
    /// The interval is mean ± this.
    pub half_width: f64,
    /// Edwards' continuity correction in the half-width (points).
    pub continuity: f64,
    /// The part of the squared standard error due to the seeds (points²): with random splits,
    /// the spread beyond test sampling (with its correction); with a fixed test set, seeds and
    /// interaction.
    pub seed_variance: f64,
    /// The part due to the test examples or the luck of the split (points²).
    pub test_variance: f64,
    /// Of `seed_variance`, the example × seed interaction (fixed test set; 0 otherwise).
    pub interaction_variance: f64,
    /// The independently estimated parts of the squared standard error, with their df; the
    /// half-width is `√(Σ t²(df)·variance) + continuity` (Banerjee's rule).
    pub parts: Vec<VariancePart>,
    /// Repeated 2-fold cross-validation: the variance of the mean under independent outcomes and
    /// no difference (McNemar's), on the examples' df; the half-width is then the wider of the
    /// two, `max(t(J)·√Σparts, t(n − 1)·√floor) + continuity`, and the standard error the
    /// larger (`None` for the other designs).
    pub floor: Option<VariancePart>,
    /// McNemar's exact sign test (none for the plain t).
    pub sign_test: Option<SignTest>,
    /// The smallest true difference this run finds 80 % of the time at 95 % (points; noncentral t).
    pub detectable: f64,
    /// Test examples of the run none of which were discordant: the rule of three's n.
    pub examples_seen: f64,
    /// The variance model, for projections.
    pub components: Components,
}

/// `√(Σ t(1 − α/2, df)²·variance)`.
fn banerjee(parts: &[VariancePart], alpha: f64) -> f64 {
    parts
        .iter()
        .filter(|p| p.variance > 0.0)
        .map(|p| t_quantile(1.0 - alpha / 2.0, p.df.max(1.0)).powi(2) * p.variance)
        .sum::<f64>()
        .sqrt()
}

/// The wider of Banerjee's half-width of `parts` and that of the `floor` alone.
fn spread(parts: &[VariancePart], floor: Option<VariancePart>, alpha: f64) -> f64 {
    let main = banerjee(parts, alpha);
    floor.map_or(main, |f| main.max(banerjee(&[f], alpha)))
}

/// The standard error of `parts` with the `floor`: the larger.
fn standard_error_of(parts: &[VariancePart], floor: Option<VariancePart>) -> f64 {
    let main: f64 = parts.iter().map(|p| p.variance).sum();
    floor.map_or(main, |f| main.max(f.variance)).sqrt()
}

/// The degrees of freedom of the binding one: the floor's when it gives the wider interval,
/// else Satterthwaite's of the parts.
fn df_of(parts: &[VariancePart], floor: Option<VariancePart>) -> f64 {
    match floor {
        Some(f) if f.variance > 0.0 && banerjee(&[f], ALPHA) > banerjee(parts, ALPHA) => f.df,
        _ => satterthwaite(parts),
    }
}

/// Satterthwaite's degrees of freedom of the sum of `parts`.
fn satterthwaite(parts: &[VariancePart]) -> f64 {
    let total: f64 = parts.iter().map(|p| p.variance).sum();
    let denominator: f64 = parts.iter().map(|p| p.variance * p.variance / p.df.max(1.0)).sum();
    if denominator > 0.0 {
        (total * total / denominator).max(1.0)
    } else {
        parts.iter().map(|p| p.df).fold(f64::INFINITY, f64::min).max(1.0)
    }
}

impl Estimate {
    #[allow(clippy::too_many_arguments)]
    fn new(
        method: Method,
        seeds: usize,
        test_examples: f64,
        mean: f64,
        (parts, floor): (Vec<VariancePart>, Option<VariancePart>),
        (seed_variance, test_variance, interaction_variance): (f64, f64, f64),
        continuity: f64,
        sign_test: Option<SignTest>,
        examples_seen: f64,
        components: Components,
        plan: bool,
    ) -> Self {
        let standard_error = standard_error_of(&parts, floor);
        let mut e = Self {
            method,
            seeds,
            test_examples,
            mean,
            standard_error,
            df: df_of(&parts, floor),
            level: CONFIDENCE,
            t: 0.0,
            half_width: 0.0,
            continuity: if standard_error > 0.0 { continuity } else { 0.0 },
            seed_variance,
            test_variance,
            interaction_variance,
            parts,
            floor,
            sign_test,
            detectable: 0.0,
            examples_seen,
            components,
        };
        e.detectable = if plan {
            e.detectable_with(&e.parts.clone(), e.floor, e.continuity)
        } else {
            f64::NAN
        };
        e.set_level(ALPHA);
        e
    }

    /// The half-width at two-sided level `alpha`.
    pub fn half_width_at(&self, alpha: f64) -> f64 {
        if self.standard_error == 0.0 {
            return 0.0;
        }
        spread(&self.parts, self.floor, alpha) + self.continuity
    }

    fn set_level(&mut self, alpha: f64) {
        self.level = 1.0 - alpha;
        self.half_width = self.half_width_at(alpha);
        self.t = if self.standard_error > 0.0 {
            (self.half_width - self.continuity) / self.standard_error
        } else {
            t_quantile(1.0 - alpha / 2.0, self.df)
        };
    }

    /// This estimate with its interval at two-sided level `alpha` (e.g. a Holm step's).
    pub fn at_level(&self, alpha: f64) -> Self {
        let mut e = self.clone();
        e.set_level(alpha);
        e
    }

    /// The interval's ends.
    pub fn interval(&self) -> (f64, f64) {
        (self.mean - self.half_width, self.mean + self.half_width)
    }

    /// Whether the interval at `alpha` excludes 0.
    pub fn interval_excludes_zero(&self, alpha: f64) -> bool {
        self.standard_error > 0.0 && self.mean.abs() > self.half_width_at(alpha)
    }

    /// Whether the difference is significant at two-sided level `alpha`: the interval excludes 0
    /// and the exact sign test agrees.
    pub fn rejects(&self, alpha: f64) -> bool {
        self.interval_excludes_zero(alpha) && self.sign_test.is_none_or(|s| s.p <= alpha)
    }

    /// Whether the difference is significant at the interval's own level.
    pub fn significant(&self) -> bool {
        self.rejects(1.0 - self.level)
    }

    /// The interval excludes 0 at its level, but the exact sign test does not reject.
    pub fn held_back_by_sign_test(&self) -> bool {
        let alpha = 1.0 - self.level;
        self.interval_excludes_zero(alpha) && !self.rejects(alpha)
    }

    /// The p-value of the interval alone: the level at which it just touches 0.
    pub fn interval_p(&self) -> f64 {
        if self.standard_error == 0.0 || self.mean.abs() <= self.continuity {
            return 1.0;
        }
        let excess = self.mean.abs() - self.continuity;
        let positive: Vec<VariancePart> = self
            .parts
            .iter()
            .chain(&self.floor)
            .filter(|p| p.variance > 0.0)
            .copied()
            .collect();
        if self.parts.iter().filter(|p| p.variance > 0.0).count() <= 1 {
            // One part (and the floor): the interval excludes 0 exactly when every one of their
            // t-intervals does, so p is the largest of their t-tests' p-values.
            return positive
                .iter()
                .map(|p| 2.0 * t_cdf(-excess / p.variance.sqrt(), p.df.max(1.0)))
                .fold(0.0, f64::max)
                .clamp(0.0, 1.0);
        }
        let (mut lo, mut hi) = (1e-300f64, 1.0f64);
        if self.interval_excludes_zero(hi.min(0.999_999)) && !self.interval_excludes_zero(lo) {
            // Between: bisect on the log scale.
            for _ in 0..100 {
                let mid = (lo.ln() + 0.5 * (hi.ln() - lo.ln())).exp();
                if self.interval_excludes_zero(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
                if hi / lo < 1.0 + 1e-9 {
                    break;
                }
            }
            hi
        } else if self.interval_excludes_zero(lo) {
            lo
        } else {
            1.0
        }
    }

    /// The p-value of the comparison: the larger of the interval's and the sign test's.
    pub fn p_value(&self) -> f64 {
        self.interval_p().max(self.sign_test.map_or(0.0, |s| s.p))
    }

    /// The probability that this design calls a true difference of `delta` points significant
    /// at 95 % (noncentral t with the effective df).
    pub fn power(&self, delta: f64) -> f64 {
        if self.standard_error == 0.0 {
            return if delta != 0.0 { 1.0 } else { 0.0 };
        }
        let critical = self.half_width_at(ALPHA) / self.standard_error;
        power_of(delta.abs() / self.standard_error, self.df, critical)
    }

    fn detectable_with(&self, parts: &[VariancePart], floor: Option<VariancePart>, continuity: f64) -> f64 {
        let se = standard_error_of(parts, floor);
        if se == 0.0 {
            return 0.0;
        }
        let critical = (spread(parts, floor, ALPHA) + continuity) / se;
        detectable_noncentrality(df_of(parts, floor), critical) * se
    }

    /// The variance parts with `seeds` seeds and `data` times the test examples (and, for random
    /// splits, the whole data set: the split fractions stay), each part scaled by `scale`.
    fn projected_parts(&self, seeds: f64, data: f64, scale: f64) -> (Vec<VariancePart>, Option<VariancePart>) {
        let df_seeds = (seeds - 1.0).max(1.0);
        if let Components::TwoFold { spread, within } = self.components {
            // The test sampling shrinks with the data; the rest (training-set dependence, seed
            // noise) is kept; more repetitions only add degrees of freedom.
            let examples = self.examples_seen * data;
            return (
                vec![VariancePart {
                    variance: scale * ((spread - within).max(0.0) + spread.min(within) / data),
                    df: seeds.max(1.0),
                }],
                Some(VariancePart {
                    variance: scale * within / data,
                    df: (examples - 1.0).max(1.0),
                }),
            );
        }
        let parts = match self.components {
            Components::Resampled {
                within,
                beyond,
                test_over_train,
            } => vec![VariancePart {
                variance: scale * (within / data + beyond) * (1.0 / seeds + 1.0 / test_over_train),
                df: df_seeds,
            }],
            Components::TwoFold { .. } => unreachable!("handled above"),
            Components::Plain { var_per_seed } => vec![VariancePart {
                variance: scale * var_per_seed / seeds,
                df: df_seeds,
            }],
            Components::Fixed {
                examples,
                seeds: between_seeds,
                interaction,
            } => {
                let n = self.test_examples * data;
                vec![
                    VariancePart {
                        variance: scale * examples / n,
                        df: (n - 1.0).max(1.0),
                    },
                    VariancePart {
                        variance: scale * (between_seeds / seeds + interaction / (n * seeds)),
                        df: df_seeds,
                    },
                ]
            }
        };
        (parts, None)
    }

    /// Standard error and effective df with `seeds` seeds and `data` times the data.
    pub fn projected(&self, seeds: f64, data: f64) -> (f64, f64) {
        let (parts, floor) = self.projected_parts(seeds, data, 1.0);
        (standard_error_of(&parts, floor), df_of(&parts, floor))
    }

    /// The smallest detectable difference (80 % power at 95 %) with `seeds` seeds and `data`
    /// times the data.
    pub fn detectable_at(&self, seeds: f64, data: f64) -> f64 {
        self.detectable_scaled(seeds, data, 1.0)
    }

    fn detectable_scaled(&self, seeds: f64, data: f64, scale: f64) -> f64 {
        let continuity = self.continuity * self.seeds as f64 / (seeds * data);
        let (parts, floor) = self.projected_parts(seeds, data, scale);
        self.detectable_with(&parts, floor, continuity)
    }

    /// The factors by which the variance could plausibly be smaller or larger than estimated:
    /// the 90 % range of a variance estimated on this estimate's effective df.
    pub fn variance_range(&self) -> (f64, f64) {
        let df = self.df;
        if df >= 1e5 {
            return (1.0, 1.0);
        }
        (df / chi_squared_quantile(0.95, df), df / chi_squared_quantile(0.05, df))
    }

    fn seeds_needed(&self, delta: f64, scale: f64) -> Option<u64> {
        let delta = delta.abs();
        let enough = |j: u64| self.detectable_scaled(j as f64, 1.0, scale) <= delta;
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

    fn data_needed(&self, delta: f64, scale: f64) -> Option<f64> {
        let delta = delta.abs();
        let seeds = self.seeds as f64;
        let enough = |f: f64| self.detectable_scaled(seeds, f, scale) <= delta;
        if delta == 0.0 || !enough(1e4) {
            return None;
        }
        let (mut lo, mut hi) = (1e-3f64, 1e4f64);
        for _ in 0..40 {
            let mid = (lo * hi).sqrt();
            if enough(mid) { hi = mid } else { lo = mid }
        }
        Some(hi)
    }

    /// About how many seeds (same data) would detect a true difference of `delta` 80 % of the
    /// time; `None` when no number of seeds up to 10 000 would (the test set, or with random
    /// splits the seeds' spread beyond test sampling, limits it).
    pub fn seeds_to_detect(&self, delta: f64) -> Option<u64> {
        self.seeds_needed(delta, 1.0)
    }

    /// About how many times the data (test examples, or the whole data set with random splits),
    /// at this many seeds, would detect a true difference of `delta` 80 % of the time; `None` when
    /// no amount up to 10 000× would (the seeds limit it).
    pub fn data_to_detect(&self, delta: f64) -> Option<f64> {
        self.data_needed(delta, 1.0)
    }

    /// [`Self::seeds_to_detect`] with the variance at the low and high end of its 90 % range
    /// (`None`: more than 10 000).
    pub fn seeds_to_detect_range(&self, delta: f64) -> (Option<u64>, Option<u64>) {
        let (low, high) = self.variance_range();
        (self.seeds_needed(delta, low), self.seeds_needed(delta, high))
    }

    /// [`Self::data_to_detect`] with the variance at the low and high end of its 90 % range.
    pub fn data_to_detect_range(&self, delta: f64) -> (Option<f64>, Option<f64>) {
        let (low, high) = self.variance_range();
        (self.data_needed(delta, low), self.data_needed(delta, high))
    }

    /// With no discordant example at all: the largest difference (points) the rule of three
    /// still allows at 95 % — 0 discordant of n examples leaves a discordance rate up to 3/n.
    pub fn rule_of_three(&self) -> Option<f64> {
        (self.standard_error == 0.0 && self.examples_seen > 0.0).then(|| 300.0 / self.examples_seen)
    }
}

/// The plain t-interval over per-seed differences (points): the first method of `flatmin
/// compare`, kept to show by simulation why it was replaced. `None` with fewer than two seeds.
pub fn plain_t(per_seed: &[f64], test_examples: f64) -> Option<Estimate> {
    let j = per_seed.len();
    if j < 2 {
        return None;
    }
    let (mean, var) = mean_var(per_seed);
    Some(Estimate::new(
        Method::PlainT,
        j,
        test_examples,
        mean,
        (
            vec![VariancePart {
                variance: var / j as f64,
                df: (j - 1) as f64,
            }],
            None,
        ),
        (var / j as f64, 0.0, 0.0),
        0.0,
        None,
        0.0,
        Components::Plain { var_per_seed: var },
        true,
    ))
}

/// Repeated random splits: seed `j` trained on `n_train` examples and was tested on the
/// `outcomes[j]` of its own held-out examples (see the module note). `None` with fewer than two
/// seeds or an empty test set.
pub fn random_splits(outcomes: &[Discordance], n_train: usize) -> Option<Estimate> {
    random_splits_planned(outcomes, n_train, true)
}

/// [`random_splits`] without the planning figure (`detectable` is NaN): the verdict alone, as
/// simulations need it thousands of times.
pub fn random_splits_verdict(outcomes: &[Discordance], n_train: usize) -> Option<Estimate> {
    random_splits_planned(outcomes, n_train, false)
}

fn random_splits_planned(outcomes: &[Discordance], n_train: usize, plan: bool) -> Option<Estimate> {
    let j = outcomes.len();
    if j < 2 || outcomes.iter().any(|d| d.is_empty()) || n_train == 0 {
        return None;
    }
    let table = in_points(outcomes);
    let per_seed: Vec<f64> = table.iter().map(|d| mean(d)).collect();
    let (mean, s2) = mean_var(&per_seed);
    // Each seed's test-sampling variance under no difference (uncentred: McNemar's), averaged.
    let w = table
        .iter()
        .map(|d| d.iter().map(|x| x * x).sum::<f64>() / (d.len() as f64).powi(2))
        .sum::<f64>()
        / j as f64;
    let n_test = outcomes.iter().map(Vec::len).sum::<usize>() as f64 / j as f64;
    let n_all = n_test + n_train as f64;
    let test_over_train = n_test / n_train as f64;
    let within = w * (1.0 - n_test / n_all);
    // The whole spread (at least the test sampling) with the training-set correction: s² is one
    // scaled chi-squared on J − 1 df, so Student's t is exact for it. Subtracting the test
    // sampling first would be unbiased, but when s² falls low by chance the training-set part
    // vanishes with it while the mean still carries it: liberal (the simulation grid found 11–19 %
    // family-wise at 8 points).
    let spread = s2.max(within);
    let beyond = (spread - within).max(0.0);
    let jf = j as f64;
    let test_part = within * (1.0 / jf + 1.0 / test_over_train);
    let seed_part = beyond * (1.0 / jf + 1.0 / test_over_train);
    let df = jf - 1.0;
    let (positive, negative) = outcomes.iter().flatten().fold((0, 0), |(p, n), &x| match x {
        1 => (p + 1, n),
        -1 => (p, n + 1),
        _ => (p, n),
    });
    let total = test_part + seed_part;
    Some(Estimate::new(
        Method::RandomSplits,
        j,
        n_test,
        mean,
        (vec![VariancePart { variance: total, df }], None),
        (seed_part, test_part, 0.0),
        100.0 / (n_test * jf),
        Some(SignTest {
            unit: "pairs",
            positive,
            negative,
            p: sign_test_p(positive, negative),
        }),
        n_test,
        Components::Resampled {
            within,
            beyond,
            test_over_train,
        },
        plan,
    ))
}

/// One fold of repeated 2-fold cross-validation: the paired outcomes on its test half and the
/// indices (in the whole data set) of those test examples, in the same order.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    /// `+1` where only the method is right, `−1` where only the base is, `0` where they agree.
    pub outcomes: Discordance,
    /// The data-set index of each outcome's example.
    pub examples: Vec<usize>,
}

/// J repetitions of 2-fold cross-validation: `folds[2r]` trained on half A of repetition `r` and
/// was tested on half B, `folds[2r + 1]` the other way round (see the module note). `None` with
/// an odd number of folds, none, or an empty fold.
pub fn two_fold_cv(folds: &[Fold]) -> Option<Estimate> {
    two_fold_cv_planned(folds, true)
}

/// [`two_fold_cv`] without the planning figure (`detectable` is NaN), for simulations.
pub fn two_fold_cv_verdict(folds: &[Fold]) -> Option<Estimate> {
    two_fold_cv_planned(folds, false)
}

fn two_fold_cv_planned(folds: &[Fold], plan: bool) -> Option<Estimate> {
    if folds.is_empty()
        || !folds.len().is_multiple_of(2)
        || folds
            .iter()
            .any(|f| f.outcomes.is_empty() || f.outcomes.len() != f.examples.len())
    {
        return None;
    }
    let j = folds.len() / 2;
    let jf = j as f64;
    // One pass over the outcomes: per fold its sum and sum of squares (both in units of one
    // example), and per example its net discordance over the repetitions.
    let size = folds.iter().flat_map(|f| f.examples.iter()).max().map_or(0, |&m| m + 1);
    let mut net = vec![0i64; size];
    let mut seen = vec![false; size];
    let mut sums = Vec::with_capacity(folds.len());
    for f in folds {
        let (mut sum, mut squares) = (0i64, 0i64);
        for (k, &x) in f.outcomes.iter().enumerate() {
            let x = i64::from(x);
            sum += x;
            squares += x * x;
            let i = f.examples[k];
            net[i] += x;
            seen[i] = true;
        }
        sums.push((sum as f64, squares as f64, f.outcomes.len() as f64));
    }
    let points: Vec<f64> = sums.iter().map(|&(sum, _, n)| 100.0 * sum / n).collect();
    let mean = self::mean(&points);
    // Within each repetition the two folds trained on disjoint halves and tested on disjoint
    // halves: their difference carries the test sampling, the training-set dependence and the
    // seeds' noise, but not the part every repetition of this data set shares.
    let s2 = points.chunks(2).map(|p| (p[0] - p[1]).powi(2) / 2.0).sum::<f64>() / jf;
    // The variance of a repetition's mean under independent outcomes and no difference
    // (McNemar's), averaged over the repetitions: the floor.
    let floor = sums
        .chunks(2)
        .map(|pair| pair.iter().map(|&(_, squares, n)| squares * 1e4 / (n * n)).sum::<f64>() / 4.0)
        .sum::<f64>()
        / jf;
    let variance = s2 / 2.0;
    // McNemar's sign test on the examples' net discordance over the repetitions.
    let (positive, negative) = net.iter().fold((0, 0), |(p, q), &s| match s.signum() {
        1 => (p + 1, q),
        -1 => (p, q + 1),
        _ => (p, q),
    });
    let examples = seen.iter().filter(|&&s| s).count() as f64;
    let outcomes = folds.iter().map(|f| f.outcomes.len()).sum::<usize>() as f64;
    let per_fold = outcomes / folds.len() as f64;
    Some(Estimate::new(
        Method::TwoFoldCv,
        j,
        per_fold,
        mean,
        (
            vec![VariancePart { variance, df: jf }],
            Some(VariancePart {
                variance: floor,
                df: (examples - 1.0).max(1.0),
            }),
        ),
        ((variance - floor).max(0.0), floor.min(variance), 0.0),
        100.0 / outcomes,
        Some(SignTest {
            unit: "examples",
            positive,
            negative,
            p: sign_test_p(positive, negative),
        }),
        examples,
        Components::TwoFold {
            spread: variance,
            within: floor,
        },
        plan,
    ))
}

/// A fixed test set: `outcomes[j][i]` is example `i` under seed `j` (every seed the same
/// examples); see the module note. `None` with fewer than two seeds, an empty test set, or seeds
/// with different test sets.
pub fn seeds_and_test_examples(outcomes: &[Discordance]) -> Option<Estimate> {
    let n = outcomes.first()?.len();
    if outcomes.len() < 2 || n == 0 || outcomes.iter().any(|d| d.len() != n) {
        return None;
    }
    two_way(&in_points(outcomes))
}

/// [`two_way`] without the planning figure (`detectable` is NaN), for simulations.
pub fn two_way_verdict(table: &[Vec<f64>]) -> Option<Estimate> {
    two_way_planned(table, false)
}

/// [`seeds_and_test_examples`] on any paired values in points (`table[seed][example]`), e.g. a
/// normal model in a simulation. The sign test counts the examples by the sign of their sum.
pub fn two_way(table: &[Vec<f64>]) -> Option<Estimate> {
    two_way_planned(table, true)
}

fn two_way_planned(table: &[Vec<f64>], plan: bool) -> Option<Estimate> {
    let j = table.len();
    let n = table.first()?.len();
    if j < 2 || n == 0 || table.iter().any(|d| d.len() != n) {
        return None;
    }
    let (jf, nf) = (j as f64, n as f64);
    let mut per_example = vec![0.0; n];
    for row in table {
        for (m, x) in per_example.iter_mut().zip(row) {
            *m += x;
        }
    }
    let (positive, negative) = per_example.iter().fold((0, 0), |(p, q), &s| {
        if s > 0.0 {
            (p + 1, q)
        } else if s < 0.0 {
            (p, q + 1)
        } else {
            (p, q)
        }
    });
    for m in &mut per_example {
        *m /= jf;
    }
    let per_seed: Vec<f64> = table.iter().map(|d| mean(d)).collect();
    let (mean, seeds_var) = mean_var(&per_seed);
    let (_, examples_var) = mean_var(&per_example);
    let ms_examples = jf * examples_var;
    let ms_seeds = nf * seeds_var;
    let (mut ss, mut squares) = (0.0, 0.0);
    for (row, seed_mean) in table.iter().zip(&per_seed) {
        for (x, example_mean) in row.iter().zip(&per_example) {
            ss += (x - example_mean - seed_mean + mean).powi(2);
            squares += x * x;
        }
    }
    let ms_interaction = if n > 1 { ss / ((nf - 1.0) * (jf - 1.0)) } else { 0.0 };
    let cells = nf * jf;
    let mut a = (ms_examples - ms_interaction).max(0.0) / cells;
    let b = ms_seeds.max(ms_interaction) / cells;
    // Never below the variance of independent paired outcomes under no difference (McNemar's).
    let floor = squares / (cells * cells);
    if a + b < floor {
        a = floor - b;
    }
    let components = Components::Fixed {
        examples: a * nf,
        seeds: (b - ms_interaction / cells).max(0.0) * jf,
        interaction: ms_interaction,
    };
    Some(Estimate::new(
        Method::SeedsAndTestExamples,
        j,
        nf,
        mean,
        (
            vec![
                VariancePart {
                    variance: a,
                    df: (nf - 1.0).max(1.0),
                },
                VariancePart {
                    variance: b,
                    df: jf - 1.0,
                },
            ],
            None,
        ),
        (b, a, ms_interaction / cells),
        100.0 / cells,
        Some(SignTest {
            unit: "examples",
            positive,
            negative,
            p: sign_test_p(positive, negative),
        }),
        nf,
        components,
        plan,
    ))
}

// ---------------------------------------------------------------------------------------------
// A family of verdicts

/// Holm's decision on one member of a family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decision {
    /// Called different from 0 (better or worse).
    pub rejected: bool,
    /// The two-sided level Holm's step used for it: its interval is shown at 1 − this.
    pub alpha: f64,
    /// Comparisons in the family.
    pub family: usize,
}

/// Holm's (1979) step-down procedure at family-wise level `alpha` over `family`: with r
/// comparisons already called different, every remaining one significant at `alpha/(m − r)` is
/// called different too, until none is; the rest keep the last threshold.
pub fn holm(family: &[&Estimate], alpha: f64) -> Vec<Decision> {
    let m = family.len();
    let mut decisions: Vec<Option<Decision>> = vec![None; m];
    let mut rejected = 0;
    loop {
        let threshold = alpha / (m - rejected) as f64;
        let now: Vec<usize> = (0..m)
            .filter(|&k| decisions[k].is_none() && family[k].rejects(threshold))
            .collect();
        for &k in &now {
            decisions[k] = Some(Decision {
                rejected: true,
                alpha: threshold,
                family: m,
            });
        }
        rejected += now.len();
        if now.is_empty() || rejected == m {
            return decisions
                .into_iter()
                .map(|d| {
                    d.unwrap_or(Decision {
                        rejected: false,
                        alpha: threshold,
                        family: m,
                    })
                })
                .collect();
        }
    }
}

/// Fieller's (1954) interval for the ratio `a/b` of two estimates with variances `var_a`,
/// `var_b` and covariance `cov`, at `critical` standard errors: the `r` with `(a − r·b)² ≤
/// critical²·Var(a − r·b)`. `None` when that set is not one bounded interval (the denominator is
/// not clearly away from 0).
pub fn fieller(a: f64, b: f64, var_a: f64, var_b: f64, cov: f64, critical: f64) -> Option<(f64, f64)> {
    let c2 = critical * critical;
    let qa = b * b - c2 * var_b;
    let qb = a * b - c2 * cov;
    let qc = a * a - c2 * var_a;
    if qa <= 0.0 {
        return None;
    }
    let disc = qb * qb - qa * qc;
    if disc < 0.0 {
        return None;
    }
    let root = disc.sqrt();
    Some(((qb - root) / qa, (qb + root) / qa))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mean_and_sample_std_of_known_values() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations 32, sample variance 32/7.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), 5.0);
        let (m, var) = mean_var(&xs);
        assert!(m == 5.0 && close(var, 32.0 / 7.0, 1e-12), "{m} {var}");
        let (m, sd) = mean_std(&xs);
        assert!(m == 5.0 && close(sd, (32.0f64 / 7.0).sqrt(), 1e-12), "{m} {sd}");
        // One value: no spread; none: no mean.
        assert_eq!(mean_std(&[-3.5]), (-3.5, 0.0));
        assert_eq!(mean_var(&[-3.5]), (-3.5, 0.0));
        assert!(mean(&[]).is_nan());
        let (m, sd) = mean_std(&[]);
        assert!(m.is_nan() && sd.is_nan());
        // The spread does not depend on the location.
        let shifted: Vec<f64> = xs.iter().map(|x| x + 1e3).collect();
        assert!(close(mean_std(&shifted).1, mean_std(&xs).1, 1e-9));
    }

    #[test]
    fn t_quantiles_for_power_match_the_tables() {
        // One-sided 80 %, where it has a closed form: df 1 (Cauchy) tan(0.3π), df 2
        // (2p − 1)/√(2p(1 − p)), and the normal quantile for large df.
        assert!(close(t_quantile(0.8, 1.0), (0.3 * std::f64::consts::PI).tan(), 1e-10));
        assert!(close(t_quantile(0.8, 2.0), 0.6 / 0.32f64.sqrt(), 1e-10));
        assert!(close(t_quantile(0.8, 1e8), 0.841_621_234, 1e-8));
        assert!(t_quantile(0.8, 4.0) > t_quantile(0.8, 9.0) && t_quantile(0.8, 9.0) > t_quantile(0.8, 1e7));
    }

    #[test]
    fn the_noncentral_t_is_the_t_at_zero_and_needs_5_65_standard_errors_at_df_2() {
        for df in [1.0, 2.0, 5.0, 30.0] {
            for x in [-3.0, -0.7, 0.0, 1.2, 4.0] {
                let (a, b) = (noncentral_t_cdf(x, df, 0.0), t_cdf(x, df));
                assert!(close(a, b, 1e-7), "df {df} x {x}: {a} vs {b}");
            }
        }
        // df 2: the two-sided 95 % test finds a true difference 80 % of the time at 5.65 standard
        // errors; the old shortcut t₀.₉₇₅ + t₀.₈ = 5.36 gives only 76.6 %.
        let c = t_quantile(0.975, 2.0);
        let shortcut = c + t_quantile(0.8, 2.0);
        assert!(close(shortcut, 5.36, 0.01), "{shortcut}");
        assert!(
            close(power_of(shortcut, 2.0, c), 0.766, 0.002),
            "{}",
            power_of(shortcut, 2.0, c)
        );
        let exact = detectable_noncentrality(2.0, c);
        assert!(close(exact, 5.65, 0.01), "{exact}");
        assert!(close(power_of(exact, 2.0, c), 0.8, 1e-6));
        // Large df: the normal answer, 1.96 + 0.84.
        assert!(close(detectable_noncentrality(1e6, 1.959_964), 2.801_585, 1e-3));
        // The power of a 95 % test at 0 is 5 %.
        assert!(close(power_of(0.0, 9.0, t_quantile(0.975, 9.0)), 0.05, 1e-7));
    }

    #[test]
    fn the_sign_test_is_exact() {
        assert!(close(sign_test_p(4, 0), 0.125, 1e-12));
        assert!(close(sign_test_p(5, 0), 0.0625, 1e-12));
        assert!(close(sign_test_p(0, 6), 0.031_25, 1e-12));
        assert!(close(sign_test_p(10, 2), 2.0 * 79.0 / 4096.0, 1e-12));
        assert_eq!(sign_test_p(3, 3), 1.0);
        assert_eq!(sign_test_p(0, 0), 1.0);
    }

    fn seed(n: usize, plus: usize, minus: usize) -> Discordance {
        (0..n)
            .map(|i| {
                if i < plus {
                    1
                } else if i < plus + minus {
                    -1
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn random_splits_count_test_sampling_and_the_spread_beyond_it() {
        // Per-seed differences 1, 3, 2 points on 100 test examples; n_train 400 (N = 500).
        let outcomes = [seed(100, 11, 10), seed(100, 13, 10), seed(100, 12, 10)];
        let e = random_splits(&outcomes, 400).unwrap();
        assert!(close(e.mean, 2.0, 1e-12));
        // w: the uncentred per-example variance over n: (21, 23, 22 discordant)·100²/100², mean 22.
        // s² = 1 is below the test sampling within the data set, which stands in for it; all of it
        // gets the training-set correction n_train/n_test = 4.
        let within: f64 = 22.0 * (1.0 - 100.0 / 500.0);
        let var = within * (1.0 / 3.0 + 4.0);
        assert!(close(e.standard_error, var.sqrt(), 1e-9), "{e:?}");
        assert_eq!((e.df, e.parts.len()), (2.0, 1));
        assert!(close(e.continuity, 100.0 / 300.0, 1e-12));
        assert!(close(e.half_width, 4.302_652_730 * var.sqrt() + 1.0 / 3.0, 1e-7));
        // Seeds spread far beyond their test sampling: that spread gets n_train/n_test.
        let outcomes = [seed(100, 1, 0), seed(100, 21, 0), seed(100, 41, 0)];
        let e = random_splits(&outcomes, 400).unwrap();
        let within: f64 = (1.0 + 21.0 + 41.0) / 3.0 * 0.8;
        let var: f64 = 400.0 * (1.0 / 3.0 + 4.0);
        assert!(close(e.standard_error, var.sqrt(), 1e-9));
        assert!(close(e.test_variance, within * (1.0 / 3.0 + 4.0), 1e-9));
        assert!(close(e.seed_variance + e.test_variance, var, 1e-9));
    }

    /// Two repetitions of 2-fold cross-validation of 20 examples (halves of 10), each fold's
    /// outcomes on its half: repetition 1 halves 0..10 / 10..20, repetition 2 the even / odd ones.
    fn cv2(outcomes: [[i8; 10]; 4]) -> Vec<Fold> {
        let halves: [Vec<usize>; 4] = [
            (10..20).collect(),
            (0..10).collect(),
            (0..20).filter(|i| i % 2 == 1).collect(),
            (0..20).filter(|i| i % 2 == 0).collect(),
        ];
        outcomes
            .iter()
            .zip(halves)
            .map(|(o, examples)| Fold {
                outcomes: o.to_vec(),
                examples,
            })
            .collect()
    }

    #[test]
    fn two_fold_cv_takes_its_variance_from_within_the_repetitions() {
        let mut folds = [[0i8; 10]; 4];
        // Fold differences (points): +30, +10 | +20, 0; every discordance +1 except one −1.
        folds[0][..3].copy_from_slice(&[1, 1, 1]);
        folds[1][..1].copy_from_slice(&[1]);
        folds[2][..3].copy_from_slice(&[1, 1, -1]);
        folds[2][3] = 1;
        let e = two_fold_cv(&cv2(folds)).unwrap();
        assert_eq!((e.method, e.seeds, e.examples_seen), (Method::TwoFoldCv, 2, 20.0));
        assert!(close(e.mean, 15.0, 1e-12), "{e:?}");
        // s̄² = ((30 − 10)²/2 + (20 − 0)²/2)/2 = 200; the variance of the mean is s̄²/2 = 100, on
        // J = 2 df. The floor: per repetition (Σx² over its folds)/10²·10⁴/4: (3 + 1)·25 = 100
        // and (4 + 0)·25 = 100, on 19 df.
        assert_eq!(
            e.parts,
            vec![VariancePart {
                variance: 100.0,
                df: 2.0
            }]
        );
        let floor = e.floor.unwrap();
        assert!(close(floor.variance, 100.0, 1e-9) && floor.df == 19.0, "{floor:?}");
        assert!(close(e.standard_error, 10.0, 1e-9));
        // The half-width is the wider of the two intervals, t(2)·10 against t(19)·10, plus half a
        // step (100/40 points).
        let h = 4.302_652_730 * 10.0 + 2.5;
        assert!(close(e.half_width, h, 1e-6), "{} vs {h}", e.half_width);
        assert_eq!(e.df, 2.0, "the t part binds");
        // McNemar's sign test on the examples' net discordance over the repetitions: examples
        // 10, 11, 12 and 0 +1 in repetition 1; 1, 3 and 7 +1, 5 −1 in repetition 2.
        let test = e.sign_test.unwrap();
        assert_eq!(
            (test.unit, test.positive, test.negative),
            ("examples", 7, 1),
            "{test:?}"
        );
        // The p-value is the larger of the two t-tests' (and the sign test's).
        let p_t = 2.0 * t_cdf(-(15.0 - 2.5) / 10.0, 2.0);
        assert!(close(e.interval_p(), p_t, 1e-9), "{} vs {p_t}", e.interval_p());
        // Projections: as run, and more data shrinks the floor's share, not the rest.
        assert!(close(e.detectable_at(2.0, 1.0), e.detectable, 1e-6 * e.detectable));
        assert!(e.detectable_at(20.0, 1.0) < e.detectable && e.detectable_at(2.0, 4.0) < e.detectable);
        // Full agreement: zero width, and the rule of three over the 20 examples.
        let e = two_fold_cv(&cv2([[0; 10]; 4])).unwrap();
        assert_eq!((e.mean, e.half_width), (0.0, 0.0));
        assert!(close(e.rule_of_three().unwrap(), 15.0, 1e-12));
        // An odd number of folds, or a fold without examples, has no estimate.
        assert!(two_fold_cv(&cv2(folds)[..3]).is_none());
    }

    #[test]
    fn one_flipped_example_moves_the_interval_by_little() {
        // Equal per-seed differences (4 of 120 each), then one example flipped in one seed.
        let equal = vec![seed(120, 4, 0); 3];
        let mut flipped = equal.clone();
        flipped[1][100] = 1;
        let (a, b) = (
            random_splits(&equal, 480).unwrap(),
            random_splits(&flipped, 480).unwrap(),
        );
        assert!(
            (b.half_width / a.half_width - 1.0).abs() < 0.25,
            "{} vs {}",
            a.half_width,
            b.half_width
        );
        let (a, b) = (
            seeds_and_test_examples(&equal).unwrap(),
            seeds_and_test_examples(&flipped).unwrap(),
        );
        assert!(
            (b.half_width / a.half_width - 1.0).abs() < 0.25,
            "{} vs {}",
            a.half_width,
            b.half_width
        );
        // Repeated 2-fold cross-validation: every fold 4 of 60 one way, then one example flipped.
        let fold = |shift: usize| Fold {
            outcomes: seed(60, 4, 0),
            examples: (0..60).map(|i| (i + shift) % 120).collect(),
        };
        let equal: Vec<Fold> = vec![fold(60), fold(0), fold(30), fold(90)];
        let mut flipped = equal.clone();
        flipped[1].outcomes[50] = 1;
        let (a, b) = (two_fold_cv(&equal).unwrap(), two_fold_cv(&flipped).unwrap());
        assert!(
            (b.half_width / a.half_width - 1.0).abs() < 0.25,
            "{} vs {}",
            a.half_width,
            b.half_width
        );
    }

    #[test]
    fn a_fixed_test_set_counts_its_examples() {
        // 3 seeds, 113 test rows, every seed differs by the same single row.
        let mut d = vec![0i8; 113];
        d[7] = -1;
        let outcomes = vec![d.clone(), d.clone(), d];
        let plain = plain_t(&outcomes.iter().map(|d| points(d)).collect::<Vec<_>>(), 113.0).unwrap();
        assert_eq!(plain.half_width, 0.0);
        let e = seeds_and_test_examples(&outcomes).unwrap();
        assert!(close(e.mean, -100.0 / 113.0, 1e-12));
        // MS_examples = 3·s²(example means), no seed or interaction variance.
        let examples_var = (10_000.0 - 113.0 * (100.0f64 / 113.0).powi(2)) / 112.0;
        assert!(close(e.standard_error, (examples_var / 113.0).sqrt(), 1e-9), "{e:?}");
        assert!(!e.significant(), "{e:?}");
        // Identical outcomes: zero width, at 0, and the rule of three.
        let same = vec![vec![0i8; 20]; 4];
        let e = seeds_and_test_examples(&same).unwrap();
        assert_eq!((e.mean, e.half_width), (0.0, 0.0));
        assert!(!e.significant());
        assert!(close(e.rule_of_three().unwrap(), 15.0, 1e-12));
        // Every example one way on 4 or 5 examples: the sign test's p is .125 / .0625, no verdict.
        for n in [4, 5] {
            let all = vec![vec![1i8; n]; 3];
            let e = seeds_and_test_examples(&all).unwrap();
            assert!(e.half_width > 10.0 && !e.significant(), "{e:?}");
        }
        // Two seeds, (+1, −1) and (−1, +1): no example or seed leans, but they disagree.
        let e = seeds_and_test_examples(&[vec![1, -1], vec![-1, 1]]).unwrap();
        assert!(e.standard_error > 0.0 && e.rule_of_three().is_none(), "{e:?}");
        assert!(seeds_and_test_examples(&[vec![0i8; 3], vec![0i8; 4]]).is_none());
        assert!(seeds_and_test_examples(&[vec![0i8; 3]]).is_none());
    }

    #[test]
    fn the_fixed_variance_counts_the_interaction_once() {
        // 2 seeds × 4 examples: seed 0 [1, 0, 0, 0], seed 1 [1, 1, 0, -1] (×100).
        let outcomes = vec![vec![1, 0, 0, 0], vec![1, 1, 0, -1]];
        let e = seeds_and_test_examples(&outcomes).unwrap();
        // Example means 100, 50, 0, −50: MS_ex = 2·4166.67 = 8333.3; seed means 25, 25: MS_seeds
        // = 0; residuals ±50 on examples 1 and 3 in both seeds: SS 4·50² = 10 000 over 3 df.
        assert!(close(e.mean, 25.0, 1e-12));
        let ms_int = 10_000.0 / 3.0;
        let a = (2.0 * 12_500.0 / 3.0 - ms_int) / 8.0;
        let b = ms_int / 8.0;
        assert!(close(e.test_variance, a, 1e-9), "{e:?}");
        assert!(close(e.seed_variance, b, 1e-9) && close(e.interaction_variance, b, 1e-9));
        assert!(close(e.standard_error, (a + b).sqrt(), 1e-9));
        // Banerjee: √(t²₃·a + t²₁·b) + continuity.
        let h = (3.182_446_305f64.powi(2) * a + 12.706_204_736f64.powi(2) * b).sqrt() + 100.0 / 8.0;
        assert!(close(e.half_width, h, 1e-6), "{} vs {h}", e.half_width);
    }

    #[test]
    fn holm_steps_down_and_intervals_follow_it() {
        let strong = seeds_and_test_examples(&vec![seed(400, 40, 2); 5]).unwrap();
        let weak = seeds_and_test_examples(&vec![seed(400, 14, 6); 5]).unwrap();
        let none = seeds_and_test_examples(&vec![seed(400, 5, 5); 5]).unwrap();
        let d = holm(&[&none, &strong, &weak], ALPHA);
        assert!(d[1].rejected && close(d[1].alpha, ALPHA / 3.0, 1e-15), "{d:?}");
        assert!(!d[0].rejected);
        // The unrejected keep the last threshold; an interval at it agrees with the decision.
        for (e, d) in [&none, &strong, &weak].iter().zip(&d) {
            assert_eq!(e.at_level(d.alpha).significant(), d.rejected);
        }
        // p-values agree with the decisions at their levels.
        assert!(strong.p_value() < ALPHA / 3.0 && none.p_value() > ALPHA);
    }

    #[test]
    fn fieller_brackets_the_ratio_and_opens_when_the_denominator_is_unclear() {
        let (lo, hi) = fieller(3.0, 4.0, 0.25, 0.25, 0.1, 2.0).unwrap();
        assert!(lo < 0.75 && 0.75 < hi, "{lo} {hi}");
        // The ends satisfy (a − r b)² = c²·Var(a − r b).
        for r in [lo, hi] {
            let lhs = (3.0 - r * 4.0f64).powi(2);
            let rhs = 4.0 * (0.25 - 2.0 * r * 0.1 + r * r * 0.25);
            assert!(close(lhs, rhs, 1e-9));
        }
        assert!(fieller(3.0, 0.8, 0.25, 0.25, 0.1, 2.0).is_none());
    }

    #[test]
    fn projections_shrink_with_seeds_and_data_and_carry_a_range() {
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
            close(se, e.standard_error, 1e-9 * e.standard_error),
            "{se} vs {}",
            e.standard_error
        );
        assert!(close(e.detectable_at(5.0, 1.0), e.detectable, 1e-6 * e.detectable));
        assert!(e.detectable_at(50.0, 4.0) < e.detectable / 1.8);
        let need = e.data_to_detect(e.detectable / 2.0).unwrap();
        assert!((3.0..6.0).contains(&need), "{need}");
        let (low, high) = e.data_to_detect_range(e.detectable / 2.0);
        assert!(low.unwrap() < need && need < high.unwrap(), "{low:?} {need} {high:?}");
        let r = random_splits(&outcomes, 800).unwrap();
        assert!(close(r.detectable_at(5.0, 1.0), r.detectable, 1e-6 * r.detectable));
        // Random splits: the training-set correction does not shrink with seeds, so seeds alone
        // cannot halve what the run detects; more data can, at a range.
        assert!(r.seeds_to_detect(r.detectable * 0.5).is_none());
        let f = r.data_to_detect(r.detectable * 0.5).unwrap();
        let (low, high) = r.data_to_detect_range(r.detectable * 0.5);
        assert!(
            low.unwrap() <= f && high.is_none_or(|h| h >= f) && f > 3.0,
            "{low:?} {f} {high:?}"
        );
    }
}
