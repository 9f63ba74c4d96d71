//! `flatmin`: the laboratory command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flatmin_lab::replay;

/// The sharpness-aware minimization family for Burn: replay, train, measure.
#[derive(Parser)]
#[command(name = "flatmin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a conformance case (reference trajectory) and write every step's parameters.
    Replay {
        /// The case file (format: tests/fixtures/FORMAT.md).
        case: PathBuf,
        /// Where to write the result JSON.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { case, out } => match run_replay(&case, &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flatmin replay: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run_replay(case_path: &std::path::Path, out: &std::path::Path) -> Result<(), replay::CaseError> {
    let case = replay::Case::load(case_path)?;
    let result = replay::run(&case)?;
    let json = replay::result_json(&case, &result);
    replay::write_json_atomic(out, &json)?;
    match replay::max_abs_diff(&case, &result) {
        Some(d) => println!(
            "{}: {} steps replayed; max |param - reference| = {d:.3e} ({})",
            case.optimizer,
            result.steps.len(),
            if d <= 1e-9 { "within 1e-9" } else { "ABOVE the 1e-9 bar" }
        ),
        None => println!(
            "{}: {} steps replayed (the case records no parameters to compare)",
            case.optimizer,
            result.steps.len()
        ),
    }
    Ok(())
}
