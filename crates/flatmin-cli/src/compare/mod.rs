//! `flatmin compare`: does SAM (or any member of the family) help on *my* data? Every optimizer is
//! trained with the same seeds on the same splits (by default J repetitions of stratified 2-fold
//! cross-validation, `--design cv2`; or a split per seed, or one fixed test set); the answer is the
//! test-accuracy difference to the base optimizer with an interval that holds on new data from the
//! same source ([`crate::stats`]), what it costs, what the run could have detected, and a verdict
//! in words that says "better" or "worse" only when the interval excludes 0 and McNemar's exact
//! sign test agrees. All the verdicts of one run (against the base, and against SAM on the
//! frontier) are one family, decided by Holm's procedure at 5 % family-wise ([`assess`]).
//! Degenerate runs (most steps skipped) get a reason instead of a verdict.
//!
//! With `--rho-search`, each optimizer's ρ is chosen by validation accuracy on a validation split
//! carved (seeded, stratified) from the training data — each fold's own training half with cv2,
//! each seed's own training part with a split per seed —; the test sets are touched only by the
//! final runs.
//!
//! The rooms, one concern each (every public item is re-exported here, `compare::X`):
//!
//! - `args`: the flags ([`CompareArgs`], [`DesignChoice`]) and their limits;
//! - `plan`: the flags resolved against the data ([`Plan`], [`SplitDesign`]), the splits of every
//!   run ([`RunSpec`]) and the validation split of the ρ search;
//! - `run`: the ρ search and the runs ([`run`]), each optimizer's results summarised
//!   ([`OptimizerResult`]);
//! - `verdict`: the score of one comparison ([`score_runs`], [`Scored`]) and its sentence
//!   ([`verdict_in_family`], [`to_settle`]);
//! - `assess`: a run's comparisons decided together by Holm's procedure ([`assess`],
//!   [`VersusBase`]) and the frontier;
//! - `report`: compare.md's table and notes, compare.json and the charts ([`write_reports`]);
//! - `text`: how numbers and optimizers are written;
//! - `error`: why a comparison stops ([`CompareError`]).

mod args;
mod assess;
mod error;
mod plan;
mod report;
mod run;
mod text;
mod verdict;

pub use args::{CompareArgs, DEFAULT_TEST_FRACTION, DesignChoice, MAX_RHO_VALUES, MAX_SEEDS};
pub use assess::{VersusBase, assess, frontier_of, time_to_reach, versus_base};
pub use error::CompareError;
pub use plan::{Plan, RunSpec, SplitDesign};
pub use report::{markdown, method_note, table, verdicts, write_reports};
pub use run::{Comparison, OptimizerResult, RhoSearch, SMALL_TEST_SET, run, second_pass_fraction};
pub use text::{display_name, row_label};
pub use verdict::{
    Outcome, PairedDifference, Scored, level_text, score, score_runs, to_settle, verdict, verdict_in_family,
};

pub use crate::stats::{t_cdf, t_quantile};

/// `flatmin compare`.
pub fn command(args: &CompareArgs) -> Result<(), CompareError> {
    args.train.cpu_only("compare")?;
    // A folder that holds results is refused before the data is read (crate::outdir).
    let intent = crate::outdir::Intent::new_or_overwrite(args.train.overwrite);
    let mut folder = args
        .train
        .out
        .as_ref()
        .map(|out| crate::outdir::OutDir::new(out, "compare", intent));
    if let Some(folder) = &folder {
        folder.check()?;
    }
    let (plan, loaded) = args.plan()?;
    if let Some(folder) = &folder {
        // Proves the folder writable before the runs, not after them; it is made only when
        // the reports are written, so that a failed or killed comparison leaves none.
        folder.probe()?;
    }
    if !plan.quiet {
        eprintln!("flatmin compare: {}", loaded.description);
        eprintln!(
            "model {}, {} epochs; {} × {}{}",
            plan.base.model,
            plan.base.epochs,
            plan.optimizers.join(", "),
            match plan.design {
                SplitDesign::TwoFold { .. } => format!(
                    "{} repetitions of 2-fold cross-validation ({} trainings each, on half the data)",
                    plan.seeds.len(),
                    2 * plan.seeds.len()
                ),
                _ => format!("{} seeds", plan.seeds.len()),
            },
            if plan.rho_search.is_empty() {
                String::new()
            } else {
                format!(", after a ρ search over {:?}", plan.rho_search)
            }
        );
    }
    let comparison = run(&plan, &loaded.split)?;
    for w in &comparison.warnings {
        eprintln!("warning: {w}");
    }
    let md = markdown(&plan, &loaded, &comparison);
    println!("{md}");
    if let (Some(out), Some(folder)) = (&plan.out, folder.as_mut()) {
        let settings = serde_json::json!({
            "data": plan.base.data_dir,
            "base": plan.base,
            "optimizers": plan.optimizers,
            "seeds": plan.seeds,
            "rho_search": plan.rho_search,
            "search_seeds": plan.search_seeds,
            "val_fraction": plan.val_fraction,
            "split_seed": plan.split_seed,
            "design": plan.design.name(),
        });
        let description = format!(
            "{} on {}, {} model, {} epochs, {} seeds, design {}",
            plan.optimizers.join(", "),
            plan.base.dataset,
            plan.base.model,
            plan.base.epochs,
            plan.seeds.len(),
            plan.design.name()
        );
        folder.claim(&description, settings)?;
        if let Err(e) = write_reports(out, &plan, &loaded, &comparison) {
            // A half-written report is no result: nothing of it stays.
            folder.discard();
            return Err(e);
        }
        println!(
            "wrote {}/compare.md, compare.json, compare_accuracy.svg, compare_curves.svg{}",
            out.display(),
            if comparison.versus.is_empty() {
                ""
            } else {
                ", compare_difference.svg, frontier.svg, frontier_time.svg"
            }
        );
    }
    Ok(())
}
