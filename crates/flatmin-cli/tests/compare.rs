//! `flatmin compare`: its statistics on synthetic per-seed results with known answers, and a run
//! of the real binary on a small image folder of coloured shapes the test writes.

use std::path::Path;
use std::process::Command;

use flatmin_lab::compare::{
    OptimizerResult, Outcome, PairedDifference, t_cdf, t_quantile, time_to_reach, verdict, versus_base,
};
use serde_json::Value;

mod common;
use common::Scratch;

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

#[test]
fn a_clear_win_is_better_with_its_interval() {
    // Differences 1.0, 1.5, 1.0: mean 7/6, sd 0.288675, half-width t(0.975, 2)·sd/√3 = 0.717109.
    let d = PairedDifference::new(&[80.0, 81.0, 82.0], &[81.0, 82.5, 83.0]);
    assert_eq!(d.n, 3);
    assert!(close(d.mean, 7.0 / 6.0, 1e-12) && close(d.std, 0.288_675_134_6, 1e-9));
    assert!(close(d.t.unwrap(), 4.302_652_730, 1e-8));
    let h = d.half_width.unwrap();
    assert!(close(h, 0.717_108_79, 1e-7), "{h}");
    let (lo, hi) = d.interval().unwrap();
    assert!(close(lo, 7.0 / 6.0 - h, 1e-12) && close(hi, 7.0 / 6.0 + h, 1e-12));
    assert_eq!(d.outcome(), Outcome::Better);
    assert_eq!(
        verdict("SAM", &d, 2.0),
        "SAM is better by 1.2 ± 0.7 points at 2.0× the cost per step (95 % CI over 3 seeds)"
    );
}

#[test]
fn a_clear_loss_is_worse() {
    // Differences −2, −2.5, −1.5: mean −2, sd 0.5, half-width 4.302653·0.5/√3 = 1.242069.
    let d = PairedDifference::new(&[90.0, 90.0, 90.0], &[88.0, 87.5, 88.5]);
    assert!(close(d.half_width.unwrap(), 1.242_069_4, 1e-6));
    assert_eq!(d.outcome(), Outcome::Worse);
    assert_eq!(
        verdict("WSAM", &d, 1.48),
        "WSAM is worse by 2.0 ± 1.2 points at 1.5× the cost per step (95 % CI over 3 seeds)"
    );
}

#[test]
fn no_difference_when_the_interval_holds_zero() {
    // Differences 0.5, −1.0, −0.4: mean −0.3, sd 0.754983, half-width 1.875483.
    let d = PairedDifference::new(&[85.0, 86.0, 84.0], &[85.5, 85.0, 83.6]);
    assert!(close(d.mean, -0.3, 1e-12) && close(d.half_width.unwrap(), 1.875_483, 1e-5));
    assert_eq!(d.outcome(), Outcome::NoDifference);
    assert_eq!(
        verdict("SAM", &d, 2.04),
        "SAM: no difference detectable with 3 seeds (−0.3 ± 1.9 points) at 2.0× the cost per step"
    );
    // Identical runs: a zero-width interval at 0 is no difference either.
    let same = PairedDifference::new(&[70.0, 71.0], &[70.0, 71.0]);
    assert_eq!((same.outcome(), same.half_width), (Outcome::NoDifference, Some(0.0)));
    assert!(verdict("SAM", &same, 1.0).contains("no difference detectable with 2 seeds (+0.0 ± 0.0 points)"));
    // Small effects get a second decimal, so the numbers never read "0.0 ± 0.0".
    let small = PairedDifference::new(&[50.0, 50.0, 50.0], &[50.05, 50.06, 50.04]);
    assert_eq!(small.outcome(), Outcome::Better);
    assert!(
        verdict("ESAM", &small, 1.3).starts_with("ESAM is better by 0.05 ± 0.02 points"),
        "{}",
        verdict("ESAM", &small, 1.3)
    );
}

#[test]
fn one_seed_gives_no_interval_and_says_so() {
    let d = PairedDifference::new(&[80.0], &[80.5]);
    assert_eq!((d.n, d.t, d.half_width, d.interval()), (1, None, None, None));
    assert_eq!(d.outcome(), Outcome::OneSeed);
    assert_eq!(
        verdict("SAM", &d, 2.0),
        "SAM: +0.5 points with 1 seed, which gives no confidence interval: run --seeds 3 or more to tell an \
         effect from seed noise (at 2.0× the cost per step)"
    );
}

fn result(name: &str, accs: &[f64], ms: f64, curve: &[f64], seconds: &[f64]) -> OptimizerResult {
    OptimizerResult {
        optimizer: name.to_lowercase(),
        name: name.into(),
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
    }
}

#[test]
fn cost_per_step_and_per_reached_accuracy() {
    assert_eq!(time_to_reach(&[0.5, 0.7, 0.8], &[1.0, 2.0, 3.0], 0.7), Some(2.0));
    assert_eq!(time_to_reach(&[0.5, 0.7], &[1.0, 2.0], 0.71), None);
    // The base ends at 0.80 (reached at 3 s); SAM reaches 0.80 at 4 s, at twice the step time.
    let base = result("SGD", &[0.79, 0.81], 10.0, &[0.5, 0.7, 0.8], &[1.0, 2.0, 3.0]);
    let sam = result("SAM", &[0.84, 0.86], 20.0, &[0.6, 0.82, 0.85], &[2.0, 4.0, 6.0]);
    let v = versus_base(&base, &sam);
    assert!(close(v.step_cost_ratio, 2.0, 1e-12));
    assert_eq!((v.seconds_to_target, v.base_seconds_to_target), (Some(4.0), 3.0));
    assert!(close(v.reach_cost_ratio.unwrap(), 4.0 / 3.0, 1e-12));
    assert!(v.per_seed_points.iter().all(|d| close(*d, 5.0, 1e-9)));
    assert_eq!(
        v.outcome,
        Outcome::Better,
        "two seeds, both +5: a zero-width interval above 0"
    );
    assert!(
        v.verdict
            .ends_with("; it reaches SGD's final test accuracy (80.00 %) at 1.3× SGD's training time"),
        "{}",
        v.verdict
    );
    let slow = result("ASAM", &[0.7, 0.72], 30.0, &[0.5, 0.6, 0.71], &[3.0, 6.0, 9.0]);
    let v = versus_base(&base, &slow);
    assert_eq!((v.seconds_to_target, v.reach_cost_ratio), (None, None));
    assert!(v.verdict.contains("never reaches SGD's final 80.00 %"), "{}", v.verdict);
}

// ---------------------------------------------------------------------------------------------
// End to end

fn scratch(name: &str) -> Scratch {
    common::scratch("flatmin-compare", name)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn compare(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flatmin"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn compare_runs_end_to_end_on_a_generated_image_folder() {
    let data = scratch("shapes-data");
    flatmin_lab::data::shapes::write(&data, 20, 12, 1).unwrap();
    let out = scratch("shapes-out");
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
            &[
                "--optimizers",
                "sgd,sam",
                "--seeds",
                "2",
                "--rho-search",
                "0.05,0.1",
                "--search-seeds",
                "1",
            ],
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
        assert_eq!(accs.len(), 2);
        assert!(accs.iter().all(|a| (0.0..=1.0).contains(a)));
        // 12 test images: every accuracy is a multiple of 1/12.
        assert!(
            accs.iter().all(|a| close(a * 12.0, (a * 12.0).round(), 1e-9)),
            "{accs:?}"
        );
        assert_eq!(o["curve"].as_array().unwrap().len(), 2);
        assert!(o["ms_per_step"].as_f64().unwrap() > 0.0);
    }

    let v = &report["versus_base"][0];
    let diff = &v["difference_points"];
    assert_eq!(diff["n"].as_u64(), Some(2));
    assert!(close(diff["t"].as_f64().unwrap(), 12.706_204_736, 1e-8), "df 1");
    let accs = |i: usize| -> Vec<f64> {
        opts[i]["test_accuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect()
    };
    let (base, sam) = (accs(0), accs(1));
    let expected = PairedDifference::new(
        &base.iter().map(|a| a * 100.0).collect::<Vec<_>>(),
        &sam.iter().map(|a| a * 100.0).collect::<Vec<_>>(),
    );
    assert!(close(diff["mean"].as_f64().unwrap(), expected.mean, 1e-9));
    assert!(close(
        diff["half_width"].as_f64().unwrap(),
        expected.half_width.unwrap(),
        1e-9
    ));
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
                sentence.starts_with("SAM: no difference detectable with 2 seeds ("),
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
        stdout.contains("| optimizer | ρ | test acc (mean ± std) | Δ vs SGD (95 % CI), points |"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("- {sentence}.")), "{stdout}");
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("ρ search") && md.contains("| sam |") && md.contains(&format!("- {sentence}.")));
    for svg in ["compare_accuracy.svg", "compare_curves.svg", "compare_difference.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("sam"), "{svg}");
    }

    // The same seed on the same split gives the same run (the base, seed 0, alone).
    let again = compare(&[&common[..], &["--optimizers", "sgd", "--seeds", "1"]].concat());
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let line = String::from_utf8_lossy(&again.stdout)
        .lines()
        .find(|l| l.starts_with("| sgd |"))
        .unwrap()
        .to_string();
    assert!(
        line.contains(&format!("| {:.2} ± 0.00 % |", 100.0 * base[0])),
        "{line} vs {}",
        base[0]
    );
}

#[test]
fn compare_fails_clearly_on_bad_data_and_flags() {
    let data = scratch("bad-data");
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
    ] {
        let run = compare(&[&["--data", d, "--quiet"][..], flags].concat());
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && err.contains(message), "{flags:?}: {err}");
    }
    // CSV features train an MLP only.
    let csv = scratch("bad-csv");
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
