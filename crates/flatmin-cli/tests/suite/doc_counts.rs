//! The counts the documents state — presets, conformance cases, fixture files — against the
//! code and the fixtures, so that a new preset or case cannot leave a page stale.
//!
//! Every phrase "N presets" and "N conformance cases" (N in digits or words) in the
//! repository's Markdown pages is checked, except the CHANGELOG's (a version's entry states what
//! that version had), as is the breakdown of the cases in `FORMAT.md`.

use std::path::{Path, PathBuf};

use crate::common::{conformance_cases, fixtures, json_files};

/// The repository's root (two folders above this crate).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Markdown pages of the repository that state counts: the root's and each crate's, the
/// fixtures' notes. (No `target/`, no fuzz corpus.)
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = Vec::new();
    let mut dirs = vec![
        root.clone(),
        root.join("crates/flatmin"),
        root.join("crates/flatmin-learner"),
    ];
    dirs.push(root.join("crates/flatmin-cli"));
    dirs.push(fixtures());
    for sub in ["oracle", "peer", "reference"] {
        dirs.push(fixtures().join(sub));
    }
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".md") && name != "CHANGELOG.md" {
                pages.push(path);
            }
        }
    }
    pages.sort();
    assert!(pages.len() >= 8, "too few pages found: {pages:?}");
    pages
}

/// A count written as digits or as an English word (up to twenty).
fn number(word: &str) -> Option<usize> {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    word.parse().ok().or_else(|| WORDS.iter().position(|w| *w == word))
}

/// Every count stated before `noun` ("16 presets", "sixteen presets") in `text`, with its line.
fn counts_before(text: &str, noun: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    // Pages wrap lines anywhere: read the text as one line of words, remembering line numbers.
    let words: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .flat_map(|(i, line)| line.split_whitespace().map(move |w| (i + 1, w)))
        .collect();
    let noun: Vec<&str> = noun.split(' ').collect();
    for i in 1..words.len() {
        let matches = noun.iter().enumerate().all(|(k, n)| {
            words
                .get(i + k)
                .is_some_and(|(_, w)| w.trim_end_matches([',', '.', ';', ':', ')']) == *n)
        });
        if matches && let Some(n) = number(words[i - 1].1) {
            let phrase = format!("{} {}", words[i - 1].1, noun.join(" "));
            found.push((words[i - 1].0, n, phrase));
        }
    }
    found
}

/// Checks every "N `noun`" of every page against `expected`; returns how many were checked.
fn check(noun: &str, expected: usize) -> usize {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (line, n, phrase) in counts_before(&text, noun) {
            checked += 1;
            if n != expected {
                wrong.push(format!("{}:{line}: \"{phrase}\"", page.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the code has {expected} {noun}, but:\n{}",
        wrong.join("\n")
    );
    checked
}

#[test]
fn the_number_of_presets_the_pages_state_is_the_registrys() {
    let checked = check("presets", flatmin::PRESETS.len());
    assert!(checked >= 1, "no page states the number of presets");
}

#[test]
fn the_number_of_conformance_cases_the_pages_state_is_the_suites() {
    let cases = conformance_cases().len();
    let checked = check("conformance cases", cases);
    assert!(checked >= 2, "the README and BENCHMARKS.md state it: found {checked}");
    // FORMAT.md breaks the float32 set down by folder.
    let format = std::fs::read_to_string(fixtures().join("FORMAT.md")).unwrap();
    let recorded = json_files(&fixtures()).len();
    let oracle = json_files(&fixtures().join("oracle")).len();
    let breakdown = format!("Of the {cases} cases ({recorded} recorded, {oracle} oracle,");
    let flat = format.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&breakdown), "FORMAT.md should say \"{breakdown}\"");
}

#[test]
fn the_fixture_folders_hold_what_their_notes_say() {
    // ALGORITHMS.md §12.3 names the recorded and the reference trajectories by count.
    let algorithms = std::fs::read_to_string(root().join("crates/flatmin/ALGORITHMS.md")).unwrap();
    let flat = algorithms.split_whitespace().collect::<Vec<_>>().join(" ");
    let oracle = json_files(&fixtures().join("oracle")).len();
    let reference = json_files(&fixtures().join("reference")).len();
    for (stated, count) in [
        (format!("The {oracle} cases in `fixtures/oracle/`"), oracle),
        (
            format!("`fixtures/reference/` holds {} trajectories", words(reference)),
            reference,
        ),
    ] {
        assert!(
            flat.contains(&stated),
            "ALGORITHMS.md §12.3 should say \"{stated}\" ({count} files)"
        );
    }
}

/// `n` as the pages write small counts.
fn words(n: usize) -> String {
    const WORDS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    WORDS.get(n).map_or_else(|| n.to_string(), |w| w.to_string())
}

#[test]
fn counts_are_read_in_digits_and_words() {
    let found = counts_before("has sixteen\npresets, and 36 conformance cases.", "presets");
    assert_eq!(found, vec![(1, 16, "sixteen presets".to_string())]);
    let found = counts_before("the 36\nconformance cases; the nine", "conformance cases");
    assert_eq!(found, vec![(1, 36, "36 conformance cases".to_string())]);
    assert_eq!(number("Eight"), Some(8));
    assert_eq!(number("many"), None);
}
