//! The figures README.md and BENCHMARKS.md quote from committed result files, checked against
//! those files, so that a rerun of `scripts/reproduce` that is not copied into the page (or a
//! hand edit of a figure) fails here.
//!
//! - BENCHMARKS.md, *The recorded run*: every row of its tables is a row of
//!   `benchmarks/bench.md`; *ESAM's compute floor*: each model's figures are `bench.json`'s;
//!   *Memory in bf16*: each row's figures are those of `benchmarks/precision/{f32,bf16}.json`.
//! - README.md, the main job's table: its rows are `reproduction/main-job.md`'s; the compare
//!   example's tables: their rows are `reproduction/compare-shapes/compare.md`'s.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of `page` from the heading line starting with `from` to the next heading of the
/// same or a higher level.
fn section<'a>(page: &'a str, from: &str) -> &'a str {
    let start = page.find(from).unwrap_or_else(|| panic!("no section `{from}`"));
    let level = from.chars().take_while(|&c| c == '#').count();
    let rest = &page[start + from.len()..];
    // Lines in fenced code blocks (a shell comment `# …`) are not headings.
    let mut in_code = false;
    let end = rest
        .lines()
        .scan(0usize, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            let hashes = line.chars().take_while(|&c| c == '#').count();
            !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

/// The data rows of the Markdown tables in `text` (not the header or the `|---|` line).
fn table_rows(text: &str) -> Vec<&str> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        let line = line.trim_end();
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table {
            in_table = true; // the header
            continue;
        }
        if !line.starts_with("|---") && !line.starts_with("| ---") {
            rows.push(line);
        }
    }
    rows
}

/// Every data row of the tables in `quoted` is a line of `source`.
fn rows_are_in(quoted: &str, source: &str, what: &str, at_least: usize) {
    let lines: Vec<&str> = source.lines().map(str::trim_end).collect();
    let rows = table_rows(quoted);
    assert!(rows.len() >= at_least, "{what}: only {} rows found", rows.len());
    for row in rows {
        assert!(
            lines.contains(&row),
            "{what}: the row\n{row}\nis not in the result file"
        );
    }
}

#[test]
fn the_recorded_bench_run_is_the_committed_one() {
    let page = read("BENCHMARKS.md");
    rows_are_in(
        section(&page, "## The recorded run"),
        &read("benchmarks/bench.md"),
        "BENCHMARKS.md, The recorded run",
        24 + 3,
    );
}

#[test]
fn esam_s_compute_floor_is_the_committed_runs() {
    let page = read("BENCHMARKS.md");
    let bench: serde_json::Value = serde_json::from_str(&read("benchmarks/bench.json")).unwrap();
    let rows = table_rows(section(&page, "## ESAM's compute floor, measured"));
    assert_eq!(rows.len(), 3, "one row per model");
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let model = cells[0];
        let m = bench["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["model"] == model)
            .unwrap_or_else(|| panic!("bench.json has no model {model}"));
        let a = &m["anatomy"];
        let ms = |key: &str| format!("{:.2} ms", a[key].as_f64().unwrap());
        let run = |field: &str| {
            bench["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["model"] == model && r["optimizer"] == "esam")
                .unwrap_or_else(|| panic!("bench.json has no esam run on {model}"))[field]
                .as_f64()
                .unwrap()
        };
        let expected = [
            model.to_string(),
            ms("forward_ms"),
            ms("activation_gradient_pass_ms"),
            ms("full_pass_ms"),
            format!("{:.2}", a["backward_over_forward"].as_f64().unwrap()),
            format!("{:.0} %", 100.0 * a["weight_gradient_share"].as_f64().unwrap()),
            format!("{:.2}", a["esam_floor_ratio"].as_f64().unwrap()),
            format!("{:.2} / {:.2}", run("ratio_to_base"), run("mean_ratio_to_base")),
        ];
        assert_eq!(cells, expected, "BENCHMARKS.md, ESAM's floor, {model}");
    }
}

#[test]
fn the_bf16_memory_table_is_the_committed_pair_of_runs() {
    let page = read("BENCHMARKS.md");
    let load = |p: &str| -> serde_json::Value {
        serde_json::from_str(&read(&format!("benchmarks/precision/{p}.json"))).unwrap()
    };
    let (f32_run, bf16_run) = (load("f32"), load("bf16"));
    assert_eq!(
        (&f32_run["precision"], &bf16_run["precision"]),
        (&"f32".into(), &"bf16".into())
    );
    let rows = table_rows(section(&page, "## Memory in bf16"));
    assert_eq!(rows.len(), 6, "sgd and sam on three models");
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let find = |run: &serde_json::Value| {
            run["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["model"] == cells[0] && r["optimizer"] == cells[1])
                .unwrap_or_else(|| panic!("no run {} {}", cells[0], cells[1]))
                .clone()
        };
        let (a, b) = (find(&f32_run), find(&bf16_run));
        let f = |r: &serde_json::Value, key: &str, digits: usize| format!("{:.*}", digits, r[key].as_f64().unwrap());
        let expected = [
            cells[0].to_string(),
            cells[1].to_string(),
            f(&a, "peak_rss_mb", 1),
            f(&b, "peak_rss_mb", 1),
            f(&a, "step_heap_mb", 2),
            f(&b, "step_heap_mb", 2),
            f(&a, "median_step_ms", 2),
            f(&b, "median_step_ms", 2),
        ];
        assert_eq!(cells, expected, "BENCHMARKS.md, Memory in bf16");
    }
}

#[test]
fn the_readme_s_main_job_and_compare_example_are_the_committed_runs() {
    let readme = read("README.md");
    let set_up = section(&readme, "## Set-up");
    let main_job = &set_up[..set_up.find("The examples below").expect("the main job's table")];
    rows_are_in(
        main_job,
        &read("reproduction/main-job.md"),
        "README.md, the main job",
        2,
    );
    let compare = section(&readme, "## Does SAM help on your data? `flatmin compare`");
    let example = &compare[..compare.find("### How the verdicts are made").expect("the example")];
    rows_are_in(
        example,
        &read("reproduction/compare-shapes/compare.md"),
        "README.md, the compare example",
        5,
    );
}

#[test]
fn a_row_that_is_not_in_the_file_is_found() {
    let quoted = "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n";
    let source = "| a | b |\n|---|---|\n| 1 | 2 |\n";
    let caught = std::panic::catch_unwind(|| rows_are_in(quoted, source, "test", 2));
    assert!(caught.is_err(), "a row missing from the file must fail");
    rows_are_in(quoted, "| 1 | 2 |\n| 3 | 4 |\n", "test", 2);
    assert_eq!(section("# t\n## A\nx\n### B\ny\n## C\nz\n", "## A"), "\nx\n### B\ny\n");
    assert_eq!(
        section("## A\n```\n# not a heading\n```\n# B\n", "## A"),
        "\n```\n# not a heading\n```\n"
    );
}
