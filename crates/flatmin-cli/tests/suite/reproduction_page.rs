//! REPRODUCTION.md's tables are what the committed results give: rendered by
//! `flatmin_lab::reproduction` from `reproduction/` (the example `render_reproduction` writes
//! them), never typed by hand.

use std::path::{Path, PathBuf};

use flatmin_lab::reproduction::render;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn reproduction_md_tables_are_rendered_from_the_committed_results() {
    let page = std::fs::read_to_string(repo().join("REPRODUCTION.md")).unwrap();
    let marks = page.matches("<!-- rendered: ").count();
    assert!(marks >= 8, "REPRODUCTION.md has {marks} rendered tables");
    let rendered = render(&page, &repo().join("reproduction")).unwrap_or_else(|e| panic!("{e}"));
    if rendered != page {
        let first = page
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "REPRODUCTION.md is not what reproduction/ gives (first difference at line {}): run \
             `cargo run --release -p flatmin-cli --example render_reproduction`\n  page: {}\n  rendered: {}",
            first + 1,
            page.lines().nth(first).unwrap_or(""),
            rendered.lines().nth(first).unwrap_or("")
        );
    }
    // A hand edit inside a table is undone by the renderer (so the check above can fail).
    let at = page.find("<!-- rendered: ").unwrap();
    let edited = format!("{}{}", &page[..at], page[at..].replacen(" ± ", " ± 9", 1));
    assert_ne!(edited, page);
    assert_eq!(render(&edited, &repo().join("reproduction")).unwrap(), page);
}
