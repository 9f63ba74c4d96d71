//! `flatmin compare`: its statistics on synthetic per-seed results with known answers, and a run
//! of the real binary on a small image folder of coloured shapes the test writes.

use flatmin_lab::compare::{
    OptimizerResult, Outcome, PairedDifference, Scored, SplitDesign, display_name, row_label, score, score_runs, t_cdf,
    t_quantile, time_to_reach, verdict, versus_base,
};
use flatmin_lab::stats::{self, Discordance};
use serde_json::Value;

use crate::common::{bin, json, scratch_path};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn t_quantiles_match_the_tables() {
    // Two-sided 95 % (p = 0.975), as in every statistics table (R's qt, to 1e-9).
    let known = [
        (1.0, 12.706_204_736),
        (2.0, 4.302_652_730),
        (3.0, 3.182_446_305),
        (4.0, 2.776_445_105),
        (5.0, 2.570_581_836),
        (6.0, 2.446_911_851),
        (9.0, 2.262_157_163),
        (10.0, 2.228_138_852),
        (20.0, 2.085_963_447),
        (30.0, 2.042_272_456),
        (60.0, 2.000_297_822),
        (100.0, 1.983_971_519),
    ];
    for (df, t) in known {
        let q = t_quantile(0.975, df);
        assert!(close(q, t, 1e-8), "df {df}: {q} vs {t}");
        assert!(close(t_cdf(q, df), 0.975, 1e-12), "df {df}");
    }
    assert!(close(t_quantile(0.95, 1.0), 6.313_751_515, 1e-8));
    assert!(close(t_quantile(0.995, 5.0), 4.032_142_984, 1e-8));
    assert!(close(t_quantile(0.025, 3.0), -3.182_446_305, 1e-8), "symmetric");
    assert_eq!(t_quantile(0.5, 7.0), 0.0);
    assert!(
        close(t_quantile(0.975, 1e7), 1.959_964, 1e-5),
        "tends to the normal quantile"
    );
    // df 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/π.
    for t in [-3.0, -0.5, 0.3, 2.0, 40.0] {
        assert!(
            close(t_cdf(t, 1.0), 0.5 + f64::atan(t) / std::f64::consts::PI, 1e-13),
            "t {t}"
        );
    }
    assert!(t_quantile(1.0, 3.0).is_nan() && t_quantile(0.9, 0.0).is_nan());
}

fn fixed() -> SplitDesign {
    SplitDesign::Fixed { why: "test".into() }
}

fn per_seed() -> SplitDesign {
    SplitDesign::PerSeed { test_fraction: 0.2 }
}

fn cv2(repetitions: usize) -> SplitDesign {
    SplitDesign::TwoFold { repetitions }
}

/// The test examples of `repetitions` repetitions of 2-fold cross-validation of `2·half`
/// examples: repetition r's halves are the examples shifted by r·7 (mod 2·half), in two runs.
fn cv2_examples(repetitions: usize, half: usize) -> Vec<Vec<usize>> {
    (0..repetitions)
        .flat_map(|r| {
            let order: Vec<usize> = (0..2 * half).map(|i| (i + 7 * r) % (2 * half)).collect();
            [order[half..].to_vec(), order[..half].to_vec()]
        })
        .collect()
}

/// `plus` examples where only the method is right and `minus` where only the base is, of `n`.
fn seed_outcomes(n: usize, plus: usize, minus: usize) -> Discordance {
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
fn the_plain_t_interval_is_what_it_was() {
    // Differences 1.0, 1.5, 1.0: mean 7/6, sd 0.288675, half-width t(0.975, 2)·sd/√3 = 0.717109.
    let d = PairedDifference::new(&[80.0, 81.0, 82.0], &[81.0, 82.5, 83.0]);
    assert_eq!(d.n, 3);
    assert!(close(d.mean, 7.0 / 6.0, 1e-12) && close(d.std, 0.288_675_134_6, 1e-9));
    assert!(close(d.t.unwrap(), 4.302_652_730, 1e-8));
    assert!(close(d.half_width.unwrap(), 0.717_108_79, 1e-7));
    assert_eq!(d.outcome(), Outcome::Better);
    let one = PairedDifference::new(&[80.0], &[80.5]);
    assert_eq!(
        (one.n, one.t, one.half_width, one.outcome()),
        (1, None, None, Outcome::OneSeed)
    );
}

#[test]
fn a_clear_win_on_a_fixed_test_set_is_better() {
    // 400 test examples, 3 seeds: the method alone right on 30, 34, 32; the base alone on 2.
    let outcomes = vec![
        seed_outcomes(400, 30, 2),
        seed_outcomes(400, 34, 2),
        seed_outcomes(400, 32, 2),
    ];
    let scored = score(&fixed(), &outcomes, 1600);
    assert_eq!(scored.outcome(), Outcome::Better);
    let Scored::Estimated(e) = &scored else { panic!() };
    assert!(close(e.mean, 7.5, 1e-12));
    assert_eq!(
        verdict("SAM", &scored, &fixed(), 2.0),
        format!(
            "SAM is better by 7.5 ± {:.1} points at 2.0× the cost per step (95 % CI over 3 seeds and the 400 test \
             examples)",
            e.half_width
        )
    );
}

#[test]
fn a_clear_win_with_two_fold_cross_validation_is_better() {
    // 3 repetitions of 2-fold cross-validation of 400 examples: on every fold of 200 the method
    // alone is right on 14–23 (the second fold of each repetition 7 more), the base alone on 2.
    let outcomes: Vec<Discordance> = (0..6).map(|k| seed_outcomes(200, 14 + (k * 7) % 13, 2)).collect();
    let scored = score_runs(&cv2(3), &outcomes, &cv2_examples(3, 200), 200);
    assert_eq!(scored.outcome(), Outcome::Better, "{scored:?}");
    let Scored::Estimated(e) = &scored else { panic!() };
    assert_eq!((e.method, e.seeds, e.df), (stats::Method::TwoFoldCv, 3, 3.0));
    assert_eq!(
        verdict("SAM", &scored, &cv2(3), 2.0),
        format!(
            "SAM is better by {:.1} ± {:.1} points at 2.0× the cost per step (95 % CI over 3 repetitions of 2-fold \
             cross-validation of 400 examples)",
            e.mean, e.half_width
        )
    );
    // One repetition: an interval on one degree of freedom, wide.
    let one = score_runs(&cv2(1), &outcomes[..2], &cv2_examples(1, 200), 200);
    let Scored::Estimated(e) = &one else { panic!() };
    assert_eq!(e.df, 1.0);
}

#[test]
fn the_issue_case_is_no_longer_worse() {
    // breast-cancer, 3 seeds, 113 test rows: every seed differs by the same single row. The
    // plain t said "worse by 0.88 ± 0.00"; one row is within the test set's sampling error.
    let mut d = vec![0i8; 113];
    d[40] = -1;
    let outcomes = vec![d.clone(), d.clone(), d];
    let per_seed = vec![-100.0 / 113.0; 3];
    let plain = stats::plain_t(&per_seed, 113.0).unwrap();
    assert!(
        plain.mean < 0.0 && plain.half_width == 0.0,
        "the old answer: worse by 0.88 ± 0.00"
    );
    let scored = score(&fixed(), &outcomes, 456);
    assert_eq!(scored.outcome(), Outcome::NoDifference);
    let sentence = verdict("ESAM", &scored, &fixed(), 1.3);
    assert!(
        sentence.starts_with(
            "ESAM: no difference detectable with 3 seeds (−0.9 ± 2.0 points) at 1.3× the cost per step; this run could \
             detect about 2.8 points (80 % power at 95 %)"
        ),
        "{sentence}"
    );
    assert!(
        sentence.contains(
            "to settle a difference of 0.9 points: more seeds alone would not (the test set limits it), or about"
        ),
        "{sentence}"
    );
}

#[test]
fn four_discordant_examples_are_no_verdict() {
    // Issue 21: every seed with the method right and the base wrong on the same 4 of 120 examples
    // was "better by 3.33 ± 3.26"; McNemar's exact p on the 4 examples is 0.125.
    let outcomes = vec![seed_outcomes(120, 4, 0); 3];
    let Scored::Estimated(e) = score(&fixed(), &outcomes, 480) else {
        panic!()
    };
    let test = e.sign_test.unwrap();
    assert_eq!((test.positive, test.negative), (4, 0));
    assert!(close(test.p, 0.125, 1e-12) && e.p_value() >= 0.125, "{e:?}");
    assert_eq!(Scored::Estimated(e.clone()).outcome(), Outcome::NoDifference, "{e:?}");
    // Six such examples (exact p 1/32) are a verdict.
    let six = score(&fixed(), &vec![seed_outcomes(400, 6, 0); 5], 480);
    assert_eq!(six.outcome(), Outcome::Better, "{six:?}");
}

#[test]
fn zero_width_only_when_every_example_agrees() {
    let same = vec![vec![0i8; 30]; 3];
    for design in [fixed(), per_seed()] {
        let Scored::Estimated(e) = score(&design, &same, 120) else {
            panic!()
        };
        assert_eq!((e.mean, e.half_width), (0.0, 0.0));
        assert_eq!(
            verdict("SAM", &Scored::Estimated(e), &design, 1.0),
            "SAM: no difference with 3 seeds (+0.0 ± 0.0 points: the two agree on every test example of every seed; \
             with 0 of 30 examples discordant, the difference on new data could still be up to about 10.0 points, by \
             the rule of three) at 1.0× the cost per step"
        );
    }
    // Two-fold cross-validation: the same on every fold of 3 repetitions of 60 examples, and
    // what the rule of three allows over the 60 examples.
    let same = vec![vec![0i8; 30]; 6];
    let Scored::Estimated(e) = score_runs(&cv2(3), &same, &cv2_examples(3, 30), 30) else {
        panic!()
    };
    assert_eq!((e.mean, e.half_width), (0.0, 0.0));
    assert_eq!(
        verdict("SAM", &Scored::Estimated(e), &cv2(3), 1.0),
        "SAM: no difference with 3 repetitions (+0.0 ± 0.0 points: the two agree on every test example of every \
         fold; with 0 of 60 examples discordant, the difference on new data could still be up to about 5.0 points, by \
         the rule of three) at 1.0× the cost per step"
    );
    // Without the folds' test examples cv2 cannot pair them.
    assert_eq!(score(&cv2(3), &same, 30).outcome(), Outcome::NotScored);
    // Per-seed random splits whose differences happen to be equal still have a width: each
    // seed's own test sampling error floors the variance.
    let outcomes = vec![seed_outcomes(30, 2, 1); 3];
    let Scored::Estimated(e) = score(&per_seed(), &outcomes, 120) else {
        panic!()
    };
    assert!(e.half_width > 1.0, "{e:?}");
}

#[test]
fn one_seed_and_degenerate_runs_get_no_verdict() {
    let one = score(&per_seed(), &[seed_outcomes(10, 1, 0)], 40);
    assert_eq!(one.outcome(), Outcome::OneSeed);
    assert_eq!(
        verdict("SAM", &one, &per_seed(), 2.0),
        "SAM: +10.0 points with 1 seed, which gives no confidence interval: run --seeds 3 or more to tell an \
         effect from seed noise (at 2.0× the cost per step)"
    );
    let empty = score(&fixed(), &[Vec::new(), Vec::new()], 40);
    assert_eq!(empty.outcome(), Outcome::NotScored);
    assert_eq!(
        verdict("SAM", &empty, &fixed(), 1.0),
        "SAM: no verdict: no test example to score"
    );
}

fn result(name: &str, accs: &[f64], ms: f64, curve: &[f64], seconds: &[f64]) -> OptimizerResult {
    // 100 test examples per seed; the first round(100·acc) right.
    let correct = accs
        .iter()
        .map(|a| (0..100).map(|i| (i as f64) < (a * 100.0).round()).collect())
        .collect();
    OptimizerResult {
        optimizer: name.to_lowercase(),
        name: name.into(),
        label: name.to_lowercase(),
        rho: None,
        rho_from: None,
        seeds: (0..accs.len() as u64).collect(),
        test_accuracy: accs.to_vec(),
        accuracy_mean: accs.iter().sum::<f64>() / accs.len() as f64,
        accuracy_std: 0.0,
        ms_per_step: ms,
        curve: curve.to_vec(),
        curve_std: vec![0.0; curve.len()],
        curve_seconds: seconds.to_vec(),
        steps: 100 * accs.len(),
        skipped_steps: 0,
        training_seconds: seconds.last().copied().unwrap_or(0.0),
        second_pass_fraction: Some(1.0),
        test_correct: correct,
        test_examples: Vec::new(),
    }
}

#[test]
fn cost_per_step_and_per_reached_accuracy() {
    assert_eq!(time_to_reach(&[0.5, 0.7, 0.8], &[1.0, 2.0, 3.0], 0.7), Some(2.0));
    assert_eq!(time_to_reach(&[0.5, 0.7], &[1.0, 2.0], 0.71), None);
    // The base ends at 0.80 (reached at 3 s); SAM reaches 0.80 at 4 s, at twice the step time.
    let base = result("SGD", &[0.79, 0.81], 10.0, &[0.5, 0.7, 0.8], &[1.0, 2.0, 3.0]);
    let sam = result("SAM", &[0.84, 0.86], 20.0, &[0.6, 0.82, 0.85], &[2.0, 4.0, 6.0]);
    let v = versus_base(&base, &sam, &fixed(), 400);
    assert!(close(v.step_cost_ratio, 2.0, 1e-12));
    assert_eq!((v.seconds_to_target, v.base_seconds_to_target), (Some(4.0), 3.0));
    assert!(close(v.reach_cost_ratio.unwrap(), 4.0 / 3.0, 1e-12));
    assert!(v.per_seed_points.iter().all(|d| close(*d, 5.0, 1e-9)));
    // Two seeds, both +5, on different examples (seed 0 on 79–83, seed 1 on 81–85): the plain t
    // had zero width; the interval now carries the examples' sampling error and, with two seeds,
    // the seeds' part on one degree of freedom (Banerjee's rule: t₁ = 12.7), which the
    // disagreement between the seeds about *which* examples makes wide: no verdict at 2 seeds.
    assert_eq!(v.plain_t_points.half_width, Some(0.0));
    let h = v.difference_points.half_width.unwrap();
    assert!((10.0..16.0).contains(&h), "{h}");
    assert_eq!(v.outcome, Outcome::NoDifference, "{}", v.verdict);
    assert!(v.p_value.unwrap() > 0.05 && v.holm.unwrap().family == 1, "{v:?}");
    assert!(
        v.verdict
            .ends_with("; it reaches SGD's final test accuracy (80.00 %) at 1.3× SGD's training time"),
        "{}",
        v.verdict
    );
    let slow = result("ASAM", &[0.7, 0.72], 30.0, &[0.5, 0.6, 0.71], &[3.0, 6.0, 9.0]);
    let v = versus_base(&base, &slow, &fixed(), 400);
    assert_eq!((v.seconds_to_target, v.reach_cost_ratio), (None, None));
    assert!(v.verdict.contains("never reaches SGD's final 80.00 %"), "{}", v.verdict);
    // −9 points at two seeds that disagree on which examples: not enough for a verdict.
    assert_eq!(v.outcome, Outcome::NoDifference, "{}", v.verdict);
    // Most steps skipped: named, not scored.
    let mut broken = result("SAM", &[0.33, 0.33], 20.0, &[0.33], &[1.0]);
    broken.skipped_steps = 180;
    let v = versus_base(&base, &broken, &fixed(), 400);
    assert_eq!(v.outcome, Outcome::NotScored);
    assert!(
        v.verdict
            .starts_with("SAM: no verdict: sam skipped 180 of its 200 steps"),
        "{}",
        v.verdict
    );
    assert_eq!((v.interval_points, v.difference_points.half_width), (None, None));
}

#[test]
fn rows_name_the_base_actually_used() {
    assert_eq!(row_label("sgd", "adam"), "adam");
    assert_eq!(row_label("sam", "adam"), "sam (base adam)");
    assert_eq!(row_label("sam", "sgd"), "sam");
    assert_eq!(display_name("sgd", "adamw"), "AdamW");
}

// ---------------------------------------------------------------------------------------------
// Simulation: the calibration grid of the verdicts (every family false-positive rate, power before
// and after, the held-out power check) is tests/suite/compare_grid.rs.

// ---------------------------------------------------------------------------------------------
// End to end

fn chosen_per_seed(report: &Value) -> Vec<f64> {
    report["rho_search"]["results"][0]["chosen_per_seed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_f64().unwrap())
        .collect()
}

fn compare(args: &[&str]) -> std::process::Output {
    bin().arg("compare").args(args).output().unwrap()
}

#[test]
fn compare_runs_end_to_end_on_a_generated_image_folder() {
    let data = scratch_path("shapes-data");
    flatmin_lab::data::shapes::write(&data, 20, 12, 1).unwrap();
    let out = scratch_path("shapes-out");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "--data",
        d,
        "--epochs",
        "2",
        "--model",
        "mlp",
        "--batch-size",
        "8",
        "--quiet",
    ];
    let run = compare(
        &[
            &common[..],
            &["--optimizers", "sgd,sam", "--seeds", "2", "--rho-search", "0.05,0.1"],
            &["--out", o],
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );

    let report = json(&out.join("compare.json"));
    assert_eq!(report["data"]["kind"], "images");
    assert_eq!(
        report["data"]["classes"],
        serde_json::json!(["circle", "square", "triangle"])
    );
    assert_eq!(report["data"]["shape"], serde_json::json!([3, 12, 12]));
    assert_eq!(
        (report["data"]["train"].as_u64(), report["data"]["test"].as_u64()),
        (Some(48), Some(12))
    );
    assert_eq!(
        (report["model"].as_str(), report["epochs"].as_u64()),
        (Some("mlp"), Some(2))
    );
    assert_eq!(report["seeds"], serde_json::json!([0, 1]));
    assert_eq!(report["base"], "sgd");
    // The default design: 2 repetitions of 2-fold cross-validation, halves of 30 images (10 per
    // class), each fold with its own training seed.
    assert_eq!(report["design"], "cv2");
    assert_eq!(
        report["split"],
        serde_json::json!({"kind": "two_fold", "repetitions": 2})
    );
    assert_eq!(
        (report["runs"]["train"].as_u64(), report["runs"]["test"].as_u64()),
        (Some(30), Some(30))
    );
    let trainings = report["trainings"].as_array().unwrap();
    assert_eq!(trainings.len(), 4);
    assert_eq!(
        trainings
            .iter()
            .map(|t| (
                t["seed"].as_u64().unwrap(),
                t["training_seed"].as_u64().unwrap(),
                t["fold"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [(0, 0, "A→B"), (0, 1, "B→A"), (1, 2, "A→B"), (1, 3, "B→A")]
    );

    let search = &report["rho_search"]["results"][0];
    assert_eq!(search["optimizer"], "sam");
    assert_eq!(search["tried"].as_array().unwrap().len(), 2);
    let chosen = search["chosen"].as_f64().unwrap();
    assert!(chosen == 0.05 || chosen == 0.1);

    let opts = report["optimizers"].as_array().unwrap();
    assert_eq!(opts.len(), 2);
    assert_eq!(
        (opts[0]["optimizer"].as_str(), opts[0]["name"].as_str()),
        (Some("sgd"), Some("SGD"))
    );
    assert_eq!(
        (opts[1]["optimizer"].as_str(), opts[1]["rho_from"].as_str()),
        (Some("sam"), Some("search"))
    );
    assert_eq!(opts[1]["rho"].as_f64(), Some(chosen));
    for o in opts {
        let accs: Vec<f64> = o["test_accuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect();
        // One accuracy per fold, each on a half of 30 test images.
        assert_eq!(accs.len(), 4);
        assert!(accs.iter().all(|a| (0.0..=1.0).contains(a)));
        assert!(
            accs.iter().all(|a| close(a * 30.0, (a * 30.0).round(), 1e-9)),
            "{accs:?}"
        );
        assert_eq!(o["seeds"], serde_json::json!([0, 1, 2, 3]));
        assert_eq!(o["curve"].as_array().unwrap().len(), 2);
        assert!(o["ms_per_step"].as_f64().unwrap() > 0.0);
    }

    let v = &report["versus_base"][0];
    let diff = &v["difference_points"];
    assert_eq!(diff["n"].as_u64(), Some(4), "one difference per fold");
    let accs = |i: usize| -> Vec<f64> {
        opts[i]["test_accuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect()
    };
    let (base, sam) = (accs(0), accs(1));
    let per_fold: Vec<f64> = (0..4).map(|k| 100.0 * (sam[k] - base[k])).collect();
    let mean = per_fold.iter().sum::<f64>() / 4.0;
    assert!(close(diff["mean"].as_f64().unwrap(), mean, 1e-9));
    let per_seed_points: Vec<f64> = v["per_seed_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(per_seed_points.iter().zip(&per_fold).all(|(a, b)| close(*a, *b, 1e-9)));
    let per_repetition: Vec<f64> = v["per_repetition_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(per_repetition.len(), 2);
    assert!(close(per_repetition[1], (per_fold[2] + per_fold[3]) / 2.0, 1e-9));
    // The reported interval is repeated 2-fold cross-validation's: the variance from within the
    // repetitions on J = 2 df, or the floor of independent outcomes when that is wider.
    let estimate = &v["estimate"];
    assert_eq!(estimate["method"], "two_fold_cv");
    assert_eq!(
        (estimate["seeds"].as_u64(), estimate["examples_seen"].as_f64()),
        (Some(2), Some(60.0))
    );
    let s2 = ((per_fold[0] - per_fold[1]).powi(2) + (per_fold[2] - per_fold[3]).powi(2)) / 4.0;
    assert!(
        close(estimate["parts"][0]["variance"].as_f64().unwrap(), s2 / 2.0, 1e-9),
        "{estimate}"
    );
    assert_eq!(estimate["parts"][0]["df"].as_f64(), Some(2.0));
    assert_eq!(diff["half_width"], estimate["half_width"]);
    assert!(estimate["detectable"].as_f64().unwrap() > 0.0);
    // The ρ search: one choice per fold, each on a validation part of the fold's training half.
    assert_eq!(chosen_per_seed(&report).len(), 4);
    let (lo, hi) = (
        v["interval_points"][0].as_f64().unwrap(),
        v["interval_points"][1].as_f64().unwrap(),
    );
    let sentence = v["verdict"].as_str().unwrap();
    let outcome = v["outcome"].as_str().unwrap();
    match outcome {
        "better" => assert!(lo > 0.0 && sentence.starts_with("SAM is better by "), "{sentence}"),
        "worse" => assert!(hi < 0.0 && sentence.starts_with("SAM is worse by "), "{sentence}"),
        "no_difference" => {
            assert!(lo <= 0.0 && hi >= 0.0, "{lo} {hi}");
            assert!(
                sentence.starts_with("SAM: no difference detectable with 2 repetitions (")
                    || sentence.starts_with("SAM: no difference with 2 repetitions (+0.0 ± 0.0 points: the two agree"),
                "{sentence}"
            );
        }
        other => panic!("outcome {other}"),
    }
    assert!(sentence.contains("× the cost per step"), "{sentence}");
    let ratio = v["step_cost_ratio"].as_f64().unwrap();
    assert!(close(
        ratio,
        opts[1]["ms_per_step"].as_f64().unwrap() / opts[0]["ms_per_step"].as_f64().unwrap(),
        1e-9
    ));
    assert!(sentence.contains("SGD's final test accuracy") || sentence.contains("never reaches SGD's final"));
    assert_eq!(report["verdicts"][0].as_str(), Some(sentence));

    // Printed: the table and the verdict line; written: the Markdown and the plots.
    assert!(
        stdout.contains("| optimizer | ρ | test acc (mean ± std) | Δ vs SGD (95 % CI), points |")
            && stdout.contains("| skipped steps |"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("- {sentence}.")), "{stdout}");
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("ρ search") && md.contains("| sam |") && md.contains(&format!("- {sentence}.")));
    assert!(
        md.contains("design cv2; seeds 0, 1 (one repetition of 2-fold cross-validation each: 4 trainings")
            && md.contains("Design: cv2, 2 repetitions of stratified 2-fold cross-validation"),
        "{md}"
    );
    for svg in ["compare_accuracy.svg", "compare_curves.svg", "compare_difference.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("sam"), "{svg}");
    }

    // The same seed on the same halves gives the same runs (the base, repetition 0, alone).
    let again_out = scratch_path("shapes-again");
    let again = compare(
        &[
            &common[..],
            &[
                "--optimizers",
                "sgd",
                "--seeds",
                "1",
                "--out",
                again_out.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let again = json(&again_out.join("compare.json"));
    assert_eq!(
        again["optimizers"][0]["test_accuracy"],
        serde_json::json!([base[0], base[1]])
    );
    // --test-fraction alone selects a split per seed (the design before cv2), with its interval.
    let splits_out = scratch_path("shapes-splits");
    let run = compare(
        &[
            &common[..],
            &["--optimizers", "sgd,sam", "--seeds", "2", "--test-fraction", "0.2"],
            &["--out", splits_out.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let splits = json(&splits_out.join("compare.json"));
    assert_eq!(
        (splits["design"].as_str(), splits["split"]["kind"].as_str()),
        (Some("splits"), Some("per_seed"))
    );
    assert_eq!(splits["versus_base"][0]["estimate"]["method"], "random_splits");
    assert_eq!(splits["optimizers"][0]["test_accuracy"].as_array().unwrap().len(), 2);
    assert!(splits["versus_base"][0]["per_repetition_points"].is_null());
}

#[test]
fn compare_fails_clearly_on_bad_data_and_flags() {
    let data = scratch_path("bad-data");
    flatmin_lab::data::shapes::write(&data, 3, 8, 2).unwrap();
    std::fs::write(data.join("square").join("zz-broken.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let d = data.to_str().unwrap();
    let run = compare(&["--data", d, "--epochs", "1", "--quiet"]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("flatmin compare:") && err.contains("zz-broken.png") && err.contains("unreadable image"),
        "{err}"
    );

    let missing = compare(&["--data", "/nonexistent/flatmin-data"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/flatmin-data"));

    std::fs::remove_file(data.join("square").join("zz-broken.png")).unwrap();
    for (flags, message) in [
        (&["--optimizer", "sam"][..], "use --optimizers"),
        (&["--rho", "0.1", "--rho-search", "0.05"][..], "--rho or --rho-search"),
        (&["--optimizers", "sgd,sgd"][..], "lists `sgd` twice"),
        (&["--rho-search", "0,0.1"][..], "--rho-search 0"),
        (&["--dataset", "mnist"][..], "--data PATH"),
        (&["--seeds", "100000000000"][..], "--seeds 100000000000: at most 1000"),
        (
            &["--search-seeds", "9"][..],
            "--search-seeds 9: expected 1 to --seeds (3)",
        ),
        (
            &["--search-seeds", "1", "--rho-search", "0.1"][..],
            "--search-seeds applies to a fixed split",
        ),
        (&["--test-limit", "0"][..], "--test-limit 0 leaves no test example"),
        (
            &["--design", "cv2", "--split-seed", "1"][..],
            "--split-seed fixes one test split: it is --design fixed, not --design cv2",
        ),
        (
            &["--design", "splits", "--split-seed", "1"][..],
            "it is --design fixed, not --design splits",
        ),
        (
            &["--design", "cv2", "--test-fraction", "0.3"][..],
            "--test-fraction 0.3: --design cv2 tests on halves",
        ),
        (&["--design", "halves"][..], "invalid value 'halves' for '--design"),
    ] {
        let run = compare(&[&["--data", d, "--quiet"][..], flags].concat());
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && err.contains(message), "{flags:?}: {err}");
    }
    // Data with its own train/ and test/ folders has a fixed test set: no resampling design.
    let folders = scratch_path("bad-folders");
    flatmin_lab::data::shapes::write(&folders.join("train"), 3, 8, 2).unwrap();
    flatmin_lab::data::shapes::write(&folders.join("test"), 2, 8, 3).unwrap();
    for design in ["cv2", "splits"] {
        let run = compare(&["--data", folders.to_str().unwrap(), "--design", design, "--quiet"]);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            !run.status.success() && err.contains(&format!("--design {design}:")) && err.contains("--design fixed"),
            "{err}"
        );
    }
    // CSV features train an MLP only.
    let csv = scratch_path("bad-csv");
    std::fs::create_dir_all(&csv).unwrap();
    std::fs::write(csv.join("d.csv"), "1,2,a\n3,4,b\n5,6,a\n7,8,b\n").unwrap();
    let run = compare(&[
        "--data",
        csv.join("d.csv").to_str().unwrap(),
        "--model",
        "cnn",
        "--quiet",
    ]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("a CSV's features train an MLP"));
}

#[test]
fn compare_help_lists_no_flag_it_rejects() {
    let help = compare(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success() && text.contains("--split-seed"), "{text}");
    assert!(!text.contains("--resume") && !text.contains("--compare-base"), "{text}");
}

#[test]
fn degenerate_runs_are_named_and_a_fixed_split_counts_its_test_set() {
    let data = scratch_path("degenerate-data");
    flatmin_lab::data::shapes::write(&data, 10, 8, 3).unwrap();
    let out = scratch_path("degenerate-out");
    let run = compare(&[
        "--data",
        data.to_str().unwrap(),
        "--optimizers",
        "sgd,sam",
        "--base",
        "adam",
        "--lr",
        "0.01",
        "--rho",
        "1e30",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--model",
        "mlp",
        "--batch-size",
        "8",
        "--split-seed",
        "4",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}\n{stdout}");
    let report = json(&out.join("compare.json"));
    assert_eq!(report["split"]["kind"], "fixed");
    let opts = report["optimizers"].as_array().unwrap();
    assert_eq!(
        (opts[0]["label"].as_str(), opts[1]["label"].as_str()),
        (Some("adam"), Some("sam (base adam)"))
    );
    assert_eq!(
        opts[1]["skipped_steps"], opts[1]["steps"],
        "ρ = 1e30: every SAM step is non-finite"
    );
    let v = &report["versus_base"][0];
    assert_eq!(v["outcome"], "not_scored");
    assert!(
        v["verdict"]
            .as_str()
            .unwrap()
            .starts_with("SAM: no verdict: sam (base adam) skipped 6 of its 6 steps"),
        "{v}"
    );
    assert!(
        stdout.contains("| adam | – |") && stdout.contains("| sam (base adam) | 1000000000000000000000000000000 |"),
        "{stdout}"
    );
    assert!(stdout.contains("| 6 of 6 |"), "{stdout}");
    // 6 test images: warned.
    assert!(stderr.contains("warning: a test set of 6 examples"), "{stderr}");
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("skipped 6 of its 6 steps")),
        "{warnings:?}"
    );
    // --test-limit 2 keeps the first two test images, of the first class only: the others are named.
    let run = compare(&[
        "--data",
        data.to_str().unwrap(),
        "--optimizers",
        "sgd",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--model",
        "mlp",
        "--batch-size",
        "8",
        "--test-limit",
        "2",
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: seed 0, fold A→B: no test example of class "),
        "{stderr}"
    );
    assert!(stderr.contains("warning: a test set of 2 examples"), "{stderr}");
}

#[test]
fn compare_draws_the_frontier_of_gain_against_cost() {
    let data = scratch_path("frontier-data");
    flatmin_lab::data::shapes::write(&data, 20, 12, 1).unwrap();
    let out = scratch_path("frontier-out");
    // 40 training images in batches of 8: 5 steps per epoch, so SAM every 5 steps runs the
    // second pass on exactly a fifth of them (a split per seed: 48 training images, limited to 40).
    let run = compare(&[
        "--data",
        data.to_str().unwrap(),
        "--design",
        "splits",
        "--optimizers",
        "sgd,sam,sam-every-5",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--model",
        "mlp",
        "--batch-size",
        "8",
        "--train-limit",
        "40",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = json(&out.join("compare.json"));
    let frontier = report["frontier"].as_array().expect("frontier");
    let names: Vec<&str> = frontier.iter().map(|p| p["optimizer"].as_str().unwrap()).collect();
    assert_eq!(names, ["sgd", "sam", "sam-every-5"]);
    let number = |p: &Value, key: &str| p[key].as_f64().unwrap_or_else(|| panic!("{key} in {p}"));
    for (p, fraction) in frontier.iter().zip([0.0, 1.0, 0.2]) {
        assert_eq!(number(p, "second_pass_fraction"), fraction, "{p}");
        assert!(
            number(p, "training_seconds") > 0.0 && number(p, "step_cost_ratio") > 0.0,
            "{p}"
        );
        assert!(number(p, "training_time_ratio") > 0.0, "{p}");
    }
    assert_eq!(number(&frontier[0], "step_cost_ratio"), 1.0);
    assert_eq!(frontier[0]["difference_points"]["mean"].as_f64(), Some(0.0));
    assert!(frontier[0]["interval_points"].is_null());
    // The others carry the reported interval, the same as versus_base.
    for (p, v) in frontier[1..].iter().zip(report["versus_base"].as_array().unwrap()) {
        assert_eq!(p["difference_points"]["mean"], v["difference_points"]["mean"]);
        assert_eq!(
            p["difference_points"]["half_width"],
            v["difference_points"]["half_width"]
        );
        assert_eq!(p["difference_points"]["method"], "random_splits");
        assert_eq!(p["step_cost_ratio"], v["step_cost_ratio"]);
        assert_eq!(p["interval_points"], v["interval_points"]);
    }
    // Against SAM: sam-every-5 has its difference to SAM, SAM itself none.
    assert!(frontier[1]["difference_to_sam_points"].is_null());
    assert!(frontier[2]["difference_to_sam_points"]["mean"].is_number());
    assert_eq!(report["optimizers"][2]["second_pass_fraction"].as_f64(), Some(0.2));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        md.contains("## Gain against cost") && md.contains("| sam-every-5 |"),
        "{md}"
    );
    assert!(md.contains("| 20 % |"), "{md}");
    for svg in ["frontier.svg", "frontier_time.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("sam-every-5") && text.contains("<circle"),
            "{svg}"
        );
    }
}
