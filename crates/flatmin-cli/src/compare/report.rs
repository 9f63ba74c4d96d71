//! The reports of `flatmin compare`: compare.md (the results table, how the interval was made,
//! the verdicts, the frontier, warnings), compare.json and the charts ([`write_reports`]).

use std::path::Path;

use serde_json::{Value, json};

use super::text::{decimals, signed, times};
use super::verdict::{Outcome, level_text};
use super::{CompareError, Comparison, OptimizerResult, Plan, RhoSearch, SplitDesign};
use crate::data::input::Loaded;
use crate::frontier;
use crate::fsutil::write_atomic;
use crate::plot::{LineChart, Series};
use crate::stats;

/// The ρ cell of a results row: "0.05", "0.05 (searched)" or "–".
fn rho_cell(r: &OptimizerResult) -> String {
    match (r.rho, r.rho_from.as_deref()) {
        (Some(rho), Some("search")) => format!("{rho} (searched)"),
        (Some(rho), _) => format!("{rho}"),
        _ => "–".into(),
    }
}

/// The results table (Markdown).
pub fn table(c: &Comparison) -> String {
    let base = &c.results[0];
    let mut s = format!(
        "| optimizer | ρ | test acc (mean ± std) | Δ vs {b} ({ci}), points | ms/step | cost per step | time to {b}'s accuracy | skipped steps |\n\
         |---|---|---|---|---|---|---|---|\n",
        b = base.name,
        ci = if c.family > 1 { "CI at Holm's level" } else { "95 % CI" }
    );
    let skipped = |r: &OptimizerResult| {
        if r.skipped_steps == 0 {
            "0".to_string()
        } else {
            format!("{} of {}", r.skipped_steps, r.steps)
        }
    };
    s.push_str(&format!(
        "| {} | {} | {:.2} ± {:.2} % | – | {:.1} | 1.0× | 1.0× | {} |\n",
        base.label,
        rho_cell(base),
        100.0 * base.accuracy_mean,
        100.0 * base.accuracy_std,
        base.ms_per_step,
        skipped(base)
    ));
    for (r, v) in c.results[1..].iter().zip(&c.versus) {
        let d = &v.difference_points;
        let delta = match (d.half_width, v.interval_points, v.outcome) {
            (Some(h), Some((lo, hi)), _) => {
                let k = decimals(d.mean, h).max(2);
                format!(
                    "{} ± {:.*} [{}, {}]",
                    signed(d.mean, k, true),
                    k,
                    h,
                    signed(lo, k, true),
                    signed(hi, k, true)
                )
            }
            (_, _, Outcome::NotScored) => format!("{} (not scored)", signed(d.mean, 2, true)),
            _ => format!("{} (1 seed: no CI)", signed(d.mean, 2, true)),
        };
        s.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} % | {delta} | {:.1} | {} | {} | {} |\n",
            r.label,
            rho_cell(r),
            100.0 * r.accuracy_mean,
            100.0 * r.accuracy_std,
            r.ms_per_step,
            times(v.step_cost_ratio),
            v.reach_cost_ratio.map(times).unwrap_or_else(|| "not reached".into()),
            skipped(r)
        ));
    }
    s
}

/// How the interval was made, in a paragraph for compare.md.
pub fn method_note(c: &Comparison) -> String {
    let base = &c.results[0].name;
    let how = match &c.design {
        SplitDesign::TwoFold { repetitions } => format!(
            "Design: cv2, {repetitions} repetition{} of stratified 2-fold cross-validation: each repetition split every \
             class in halves A and B ({} and {} examples); every optimizer trained on A and was tested on B, and \
             trained on B and was tested on A, each fold with its own training seed ({} trainings per optimizer, each \
             on half the data), the same halves for every optimizer at a repetition. Δ is the mean of the fold \
             differences of test accuracy to {base} ± the half-width of its interval. The two folds of a repetition \
             trained on disjoint halves and were tested on disjoint halves, so the difference between them carries \
             the test sampling, the seeds' noise and how the difference depends on the training set, but not what \
             every repetition of this one data set shares, which averaging over repetitions cannot remove: the \
             variance of Δ is half the mean squared difference between a repetition's two folds, whatever the number \
             of repetitions (more repetitions firm up the estimate, not the data), with Student's t on J degrees of \
             freedom (exact when the difference depends additively on the training and the test examples and an \
             example's two parts are unrelated, conservative when seed noise dominates), and never narrower than the interval of independent paired \
             outcomes over all the examples (McNemar's). Dietterich's (1998) 5×2cv t is weaker, and Alpaydin's (1999) \
             combined F and a t over the folds as if independent are liberal (README, \"How the verdicts are \
             made\"). Its limits: the results are for models trained on half the data; and when what an example does \
             in training and how it is classified at test go together, no design on one data set can see it (Bengio \
             & Grandvalet 2004) and the interval is too narrow (--design splits covers that case, at the price of \
             power).",
            if *repetitions == 1 { "" } else { "s" },
            c.n_train,
            c.n_test,
            2 * repetitions
        ),
        SplitDesign::PerSeed { test_fraction } => format!(
            "Design: splits. Each seed drew its own stratified split ({:.0} % of each class for testing: {} training and {} test \
             examples), the same for every optimizer at that seed. Δ is the mean of the per-seed differences of test \
             accuracy to {base} ± the half-width of its interval. The seeds' differences mix the test set's sampling \
             error, the seeds' own noise and how the difference depends on the training set; two random test sets \
             share n_test/N of their examples but two random training sets share n_train/N, and the part every split \
             of this one data set shares never shows in the seeds' spread. So the test-sampling variance (from the \
             per-example outcomes) keeps Nadeau & Bengio's (2003) correction, 1/J + n_test/n_train, and the spread \
             beyond it gets the training-set one, 1/J + n_train/n_test, with J − 1 degrees of freedom: valid when the \
             difference depends on the training set, conservative (wider than needed) when the spread is seed noise, \
             which one data set cannot tell apart. (The corrected resampled t alone is liberal when the difference \
             depends on the training set.)",
            100.0 * test_fraction,
            c.n_train,
            c.n_test
        ),
        SplitDesign::Fixed { why } => format!(
            "Design: fixed. Every seed was tested on the same {} examples ({why}). Δ is the mean difference of test accuracy to {base} \
             ± the half-width of an interval that counts both the seeds and the test set's own sampling error, from \
             the paired per-example outcomes: examples and seeds as two random effects, each variance component \
             counted once, combined by Banerjee's (1960) rule √(t²(n−1)·A + t²(J−1)·B), which never covers less than \
             its level (Satterthwaite's degrees of freedom are liberal at 2–3 seeds when the seeds dominate). It is \
             conditional on the one training set: it says nothing about how the difference would change with another \
             training set from the same source.",
            c.n_test
        ),
    };
    let family = if c.family > 1 {
        format!(
            " The run's {} verdicts (every optimizer against {base}, and against SAM in \"Gain against cost\") are one \
             family: Holm's (1979) step-down procedure keeps the chance of any false \"better\" or \"worse\" among \
             them at 5 %, and each interval is shown at the level Holm used for it (between 95 % and {}).",
            c.family,
            level_text(1.0 - stats::ALPHA / c.family as f64)
        )
    } else {
        " One comparison: a 95 % interval.".to_string()
    };
    format!(
        "{how} A verdict needs the interval to exclude 0 and McNemar's exact sign test on the discordant outcomes \
         (the examples' net discordance over the seeds with a fixed test set or over the repetitions with cv2, every \
         discordant pair with random splits) to agree, so a handful of discordant examples cannot carry one; the \
         half-width includes Edwards' continuity correction (half a step of the mean), and the variance is never \
         below that of independent paired outcomes, so an interval has zero width only when the two optimizers \
         agree on every test example of every run (the rule of three then says how large a difference the data \
         still allow).{family} \"Could detect\": the true \
         difference this design finds 80 % of the time at 95 %, from the noncentral t; \"to settle\" projections \
         carry the 90 % range their variance estimate allows. Cost per step: ms/step over {base}'s. Time to \
         {base}'s accuracy: training time (optimizer steps) until the mean accuracy curve first reaches {base}'s \
         final mean test accuracy, over {base}'s time for the same (accuracy is measured once per epoch). Skipped \
         steps: steps with a non-finite loss or gradient, over all runs.\n\n"
    )
}

/// The ρ search's table (Markdown): mean validation accuracy ± std per ρ, and the choice.
fn search_table(searches: &[RhoSearch]) -> String {
    let Some(first) = searches.first() else {
        return String::new();
    };
    let mut s = String::from("| optimizer |");
    for (rho, ..) in &first.tried {
        s.push_str(&format!(" ρ = {rho} |"));
    }
    s.push_str(" chosen |\n|---|");
    for _ in &first.tried {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for search in searches {
        s.push_str(&format!("| {} |", search.optimizer));
        for (_, m, sd, _) in &search.tried {
            s.push_str(&format!(" {:.2} ± {:.2} % |", 100.0 * m, 100.0 * sd));
        }
        s.push_str(&format!(" {} |\n", search.chosen));
    }
    s
}

/// The verdict lines, one per optimizer after the base.
pub fn verdicts(c: &Comparison) -> String {
    c.versus.iter().map(|v| format!("- {}.\n", v.verdict)).collect()
}

/// compare.md.
pub fn markdown(plan: &Plan, loaded: &Loaded, c: &Comparison) -> String {
    let b = &plan.base;
    let mut s = format!(
        "# Does it help on {}?\n\nData: {}.\n\nModel {}, {} epochs, batch {}, lr {} (cosine), base {}; design {}; seeds \
         {}{}; {:.1} s in all.\n\n",
        b.dataset,
        loaded.description,
        b.model,
        b.epochs,
        b.batch_size,
        b.lr,
        b.base,
        c.design.name(),
        plan.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        if matches!(c.design, SplitDesign::TwoFold { .. }) {
            format!(
                " (one repetition of 2-fold cross-validation each: {} trainings per optimizer on half the data)",
                2 * plan.seeds.len()
            )
        } else {
            String::new()
        },
        c.seconds
    );
    if !c.searches.is_empty() {
        let over = match c.design {
            SplitDesign::TwoFold { .. } => format!(
                "each fold on {:.0} % of each class of its own training half (seeded, stratified), that fold's best ρ \
                 kept (the column shows the mean ± std over folds; \"chosen\" the most frequent choice)",
                100.0 * plan.val_fraction
            ),
            SplitDesign::PerSeed { .. } => format!(
                "each seed on {:.0} % of each class of its own training part (seeded, stratified), that seed's best ρ \
                 kept (the column shows the mean ± std over seeds; \"chosen\" the most frequent choice)",
                100.0 * plan.val_fraction
            ),
            SplitDesign::Fixed { .. } => format!(
                "mean validation accuracy ± std over seeds {} on {:.0} % of each class of the training data (seeded, \
                 stratified), the best ρ kept",
                plan.search_seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                100.0 * plan.val_fraction
            ),
        };
        s.push_str(&format!("ρ search: {over}:\n\n{}\n", search_table(&c.searches)));
    }
    s.push_str(&table(c));
    s.push('\n');
    s.push_str(&method_note(c));
    s.push_str(&verdicts(c));
    if c.frontier.len() > 1 {
        s.push_str(&format!(
            "\n## Gain against cost\n\nEvery optimizer's difference to {b} with its interval (as above), against its time \
             per step over {b}'s and its training time (the optimizer steps of one run, mean over runs); second passes: \
             the share of its steps that ran SAM's second pass.{}\n\n{}\n![gain against cost per step](frontier.svg)\n",
            if c.frontier.iter().any(|p| p.difference_to_sam_points.is_some()) {
                " Share of SAM's gain: its difference over SAM's, a ratio of means with Fieller's 95 % interval, shown \
                 only when SAM itself is called better than the base; Δ vs SAM: its difference to SAM, paired and with \
                 its interval the same way (part of the family of verdicts)."
            } else {
                ""
            },
            frontier::markdown(&c.frontier, &c.results[0].name),
            b = c.results[0].name
        ));
    }
    if !c.warnings.is_empty() {
        s.push_str("\nWarnings:\n\n");
        for w in &c.warnings {
            s.push_str(&format!("- {w}.\n"));
        }
    }
    s
}

/// compare.json: the data, the settings, every optimizer's results, the comparisons, the
/// family, the verdicts and the frontier.
fn json_report(plan: &Plan, loaded: &Loaded, c: &Comparison) -> Value {
    let set = &loaded.split.train;
    json!({
        "data": {
            "path": plan.base.data_dir,
            "description": loaded.description,
            "kind": if set.features.is_some() { "features" } else { "images" },
            "classes": set.class_names,
            "shape": [set.channels, set.height, set.width],
            "train": set.len(),
            "test": loaded.split.test.len(),
            "examples": set.len() + loaded.split.test.len(),
        },
        "model": plan.base.model,
        "epochs": plan.base.epochs,
        "seeds": plan.seeds,
        "base": c.results[0].optimizer,
        "base_optimizer": plan.base.base,
        "design": c.design.name(),
        "split": c.design,
        "runs": { "train": c.n_train, "test": c.n_test },
        "trainings": plan.runs().iter().map(|r| json!({
            "seed": r.seed,
            "training_seed": r.training_seed,
            "fold": r.fold.map(|f| if f == 0 { "A→B" } else { "B→A" }),
        })).collect::<Vec<_>>(),
        "config": plan.base,
        "rho_search": if c.searches.is_empty() { Value::Null } else { json!({
            "values": plan.rho_search,
            "val_fraction": plan.val_fraction,
            "seeds": plan.search_seeds,
            "results": c.searches,
        }) },
        "optimizers": c.results,
        "versus_base": c.versus,
        "family": { "comparisons": c.family, "procedure": "holm", "alpha": stats::ALPHA },
        "verdicts": c.versus.iter().map(|v| v.verdict.clone()).collect::<Vec<_>>(),
        "frontier": c.frontier,
        "warnings": c.warnings,
        "seconds": c.seconds,
    })
}

/// The plots: the accuracies, the curves against training time and the differences to the base.
fn charts(c: &Comparison, plan: &Plan) -> Vec<(&'static str, LineChart)> {
    let runs = match c.design {
        SplitDesign::TwoFold { .. } => format!("{} folds", 2 * plan.seeds.len()),
        _ => format!("{} seeds", plan.seeds.len()),
    };
    let accuracy = LineChart {
        title: format!("Test accuracy, mean ± std over {runs}"),
        x_label: c
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{} = {}", i + 1, r.optimizer))
            .collect::<Vec<_>>()
            .join(", "),
        y_label: "test accuracy (%)".into(),
        series: c
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                label: r.optimizer.clone(),
                points: vec![((i + 1) as f64, 100.0 * r.accuracy_mean, Some(100.0 * r.accuracy_std))],
            })
            .collect(),
    };
    let n = c.versus.len() as f64;
    let mut difference = LineChart {
        title: format!(
            "Difference to {} with its interval (points; at Holm's level in a family)",
            c.results[0].name
        ),
        x_label: c
            .versus
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{} = {}", i + 1, v.optimizer))
            .collect::<Vec<_>>()
            .join(", "),
        y_label: format!("test accuracy − {}'s (points)", c.results[0].name),
        series: vec![Series {
            label: "no difference".into(),
            points: vec![(0.5, 0.0, None), (n + 0.5, 0.0, None)],
        }],
    };
    difference
        .series
        .extend(c.versus.iter().enumerate().map(|(i, v)| Series {
            label: v.optimizer.clone(),
            points: vec![((i + 1) as f64, v.difference_points.mean, v.difference_points.half_width)],
        }));
    let curves = LineChart {
        title: format!("Test accuracy against training time (mean ± std over {runs})"),
        x_label: "training time, optimizer steps only (s)".into(),
        y_label: "test accuracy (%)".into(),
        series: c
            .results
            .iter()
            .map(|r| Series {
                label: r.optimizer.clone(),
                points: r
                    .curve_seconds
                    .iter()
                    .zip(r.curve.iter().zip(&r.curve_std))
                    .map(|(t, (m, sd))| (*t, 100.0 * m, Some(100.0 * sd)))
                    .collect(),
            })
            .collect(),
    };
    let mut out = vec![("compare_accuracy.svg", accuracy), ("compare_curves.svg", curves)];
    if !c.versus.is_empty() {
        out.push(("compare_difference.svg", difference));
    }
    out
}

/// Writes compare.md, compare.json and the plots into `out`.
pub fn write_reports(out: &Path, plan: &Plan, loaded: &Loaded, c: &Comparison) -> Result<(), CompareError> {
    std::fs::create_dir_all(out).map_err(|source| CompareError::OutFolder {
        path: out.to_path_buf(),
        source,
    })?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes()).map_err(|source| CompareError::Write { path, source })
    };
    write("compare.md", &markdown(plan, loaded, c))?;
    let json = serde_json::to_string_pretty(&json_report(plan, loaded, c))?;
    write("compare.json", &json)?;
    for (name, chart) in charts(c, plan) {
        write(name, &chart.to_svg())?;
    }
    if c.frontier.len() > 1 {
        let what = match c.design {
            SplitDesign::TwoFold { .. } => format!(" ({} repetitions of 2-fold cross-validation)", plan.seeds.len()),
            _ => format!(" ({} seeds)", plan.seeds.len()),
        };
        let [per_step, total] = frontier::charts(&c.frontier, &c.results[0].name, &what);
        write("frontier.svg", &per_step.to_svg())?;
        write("frontier_time.svg", &total.to_svg())?;
    }
    Ok(())
}
