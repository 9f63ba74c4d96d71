//! Renders REPRODUCTION.md's tables from the committed results in `reproduction/`
//! ([`flatmin_lab::reproduction`]); `scripts/reproduce` runs it last.
//!
//! ```bash
//! cargo run --release -p flatmin-cli --example render_reproduction            # rewrite the page
//! cargo run --release -p flatmin-cli --example render_reproduction -- --check # only compare
//! ```
//!
//! Arguments: `[--check] [PAGE] [RESULTS]` (default `REPRODUCTION.md` and `reproduction/` of the
//! repository). The page is written atomically, and only when a table changed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.first().is_some_and(|a| a == "--check");
    if check {
        args.remove(0);
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let page = args.first().map_or_else(|| repo.join("REPRODUCTION.md"), PathBuf::from);
    let results = args.get(1).map_or_else(|| repo.join("reproduction"), PathBuf::from);
    let text = match std::fs::read_to_string(&page) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("render_reproduction: {}: {e}", page.display());
            return ExitCode::FAILURE;
        }
    };
    let rendered = match flatmin_lab::reproduction::render(&text, &results) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("render_reproduction: {e}");
            return ExitCode::FAILURE;
        }
    };
    if rendered == text {
        println!("{}: every table is what {} gives", page.display(), results.display());
        return ExitCode::SUCCESS;
    }
    if check {
        eprintln!(
            "render_reproduction: {} differs from what {} gives",
            page.display(),
            results.display()
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = flatmin_lab::fsutil::write_atomic(&page, rendered.as_bytes()) {
        eprintln!("render_reproduction: {}: {e}", page.display());
        return ExitCode::FAILURE;
    }
    println!("{}: tables rendered from {}", page.display(), results.display());
    ExitCode::SUCCESS
}
