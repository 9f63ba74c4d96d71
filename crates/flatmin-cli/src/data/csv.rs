//! CSV files of numeric features with a label column.
//!
//! - Read by the `csv` crate, as RFC 4180 has it: cells are separated by commas (or tabs or
//!   semicolons: the one that splits the first row into the most cells, commas winning ties);
//!   a cell that starts with a double quote is quoted up to the closing quote, and may hold the
//!   separator, line breaks and `""` (a quote); a quote elsewhere in a cell is just a character.
//!   Blank lines are skipped; cells are trimmed.
//! - The first row is a header when one of its cells is not a number where the second row's cell
//!   of that column is one (or when `--label-column` names one of its cells).
//! - The label column (`--label-column NAME|INDEX`, columns numbered from 0; default the last)
//!   may hold numbers or strings: the distinct labels, sorted (numerically when all are numbers,
//!   by text otherwise), become classes 0, 1, ….
//! - Every other column is a feature and every feature cell must be a finite number.
//!
//! Features are stored as `f64` — no rounding, no quantisation to the laboratory's `u8` pixels —
//! in [`Dataset::features`], each row a `F`×1×1 "image"; the trainer standardises each feature
//! with the training set's mean and standard deviation (computed in `f64`) and only then hands
//! `f32` values to the model, so a feature like a timestamp near 1.7e9 that varies by 1 keeps its
//! variation. Errors name the file and the 1-based line (a row's first line, for a row whose
//! quoted cell spans lines).

use std::path::Path;

use super::input::{InputError, InputOptions, Loaded, split_account};
use super::{Dataset, Features, split};

/// A finite number, or `None`.
fn number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A reader of `text` with `delimiter`: no header row (detected below), rows of any length
/// (checked below), cells trimmed.
fn reader(text: &str, delimiter: u8) -> ::csv::Reader<&[u8]> {
    ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes())
}

/// Whether a record is a blank line (no cell, or one holding only white space).
fn blank(record: &::csv::StringRecord) -> bool {
    record.iter().all(str::is_empty) && record.len() <= 1
}

/// The delimiter that splits the first row into the most cells (commas win ties).
fn delimiter(text: &str) -> u8 {
    let cells = |d: u8| {
        reader(text, d)
            .records()
            .flatten()
            .find(|r| !blank(r))
            .map_or(0, |r| r.len())
    };
    let mut best = (b',', cells(b','));
    for d in [b'\t', b';'] {
        let n = cells(d);
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// The 1-based line of a double quote that opens a cell and never closes, if any. The `csv`
/// crate reads such a cell to the end of the file without complaint; this is the check it does
/// not make, with its rule that a quote opens a cell only at the cell's start.
fn unclosed_quote(text: &str, delimiter: u8) -> Option<usize> {
    let (mut line, mut opened, mut quoted, mut at_start) = (1, 0, false, true);
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        if quoted {
            if b == b'"' && bytes.next_if_eq(&b'"').is_none() {
                quoted = false;
            }
        } else if b == b'"' && at_start {
            (quoted, opened) = (true, line);
        }
        at_start = !quoted && (b == delimiter || b == b'\n' || b == b'\r');
        if b == b'\n' {
            line += 1;
        }
    }
    quoted.then_some(opened)
}

/// Reads the CSV at `path` (see the module documentation) and splits it (seeded, stratified).
pub fn load(path: &Path, options: &InputOptions) -> Result<Loaded, InputError> {
    let bytes = std::fs::read(path).map_err(|e| InputError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        InputError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line {line}: not UTF-8 text")),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let delim = delimiter(text);
    if let Some(line) = unclosed_quote(text, delim) {
        return Err(InputError::Quote {
            path: path.to_path_buf(),
            line,
        });
    }
    // The line of a row is that of its first character. The `csv` crate's positions start a row
    // that follows a CRLF at the LF (csv 1.4.0): its byte offset and line number are one short of
    // the row's own, so both are taken from the first byte that is not a line break.
    let breaks: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line_at = |p: &::csv::Position| {
        let start = usize::try_from(p.byte()).unwrap_or(usize::MAX).min(text.len());
        let first = text.as_bytes()[start..]
            .iter()
            .position(|&b| b != b'\n' && b != b'\r')
            .map_or(text.len(), |k| start + k);
        breaks.partition_point(|&i| i < first) + 1
    };
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    for record in reader(text, delim).records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(String::new(), |p| format!("line {}: ", line_at(p)));
            InputError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{line}{e}")),
            )
        })?;
        if blank(&record) {
            continue;
        }
        let line = record.position().map_or(0, line_at);
        let row: Vec<String> = record.iter().map(String::from).collect();
        if let Some((_, first_row)) = rows.first()
            && row.len() != first_row.len()
        {
            return Err(InputError::Ragged {
                path: path.to_path_buf(),
                line,
                expected: first_row.len(),
                found: row.len(),
            });
        }
        rows.push((line, row));
    }
    if rows.is_empty() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
            detail: "no rows".into(),
        });
    }
    let columns = rows[0].1.len();

    let wanted = options.label_column.as_deref();
    let first_is_text = |j: usize| number(&rows[0].1[j]).is_none();
    let header = match rows.get(1) {
        Some((_, second)) => (0..columns).any(|j| first_is_text(j) && number(&second[j]).is_some()),
        None => (0..columns).all(first_is_text),
    } || wanted.is_some_and(|w| number(w).is_none() && rows[0].1.iter().any(|c| c == w));
    let names: Option<Vec<String>> = header.then(|| rows[0].1.clone());
    let data = if header { &rows[1..] } else { &rows[..] };
    if data.is_empty() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
            detail: "no data rows (only a header)".into(),
        });
    }
    let available = || match &names {
        Some(n) => format!(
            "{} (or an index from 0 to {})",
            n.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
            columns - 1
        ),
        None => format!("numbered 0 to {} (no header row was detected)", columns - 1),
    };
    let label = match wanted {
        None => columns - 1,
        Some(w) => match names.as_ref().and_then(|n| n.iter().position(|c| c == w)) {
            Some(j) => j,
            None => match w.trim().parse::<usize>() {
                Ok(j) if j < columns => j,
                _ => {
                    return Err(InputError::MissingLabelColumn {
                        path: path.to_path_buf(),
                        requested: w.to_string(),
                        available: available(),
                    });
                }
            },
        },
    };
    if columns < 2 {
        return Err(InputError::NoFeatures {
            path: path.to_path_buf(),
        });
    }
    let column_name = |j: usize| match &names {
        Some(n) => format!("{j} (`{}`)", n[j]),
        None => j.to_string(),
    };

    let features_per_row = columns - 1;
    let mut values = Vec::with_capacity(data.len() * features_per_row);
    let mut raw_labels = Vec::with_capacity(data.len());
    for (line, row) in data {
        for (j, cell) in row.iter().enumerate() {
            if j == label {
                if cell.is_empty() {
                    return Err(InputError::BadCell {
                        path: path.to_path_buf(),
                        line: *line,
                        column: column_name(j),
                        value: cell.clone(),
                        expected: "a label (the cell is empty)",
                    });
                }
                raw_labels.push(cell.as_str());
            } else {
                values.push(number(cell).ok_or_else(|| InputError::BadCell {
                    path: path.to_path_buf(),
                    line: *line,
                    column: column_name(j),
                    value: cell.clone(),
                    expected: "a finite number",
                })?);
            }
        }
    }

    let numeric: Option<Vec<f64>> = raw_labels.iter().map(|l| number(l)).collect();
    let (class_names, labels): (Vec<String>, Vec<usize>) = match numeric {
        Some(v) => {
            let mut distinct = v.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let index = v.iter().map(|x| distinct.partition_point(|y| y < x)).collect();
            (distinct.iter().map(|x| format!("{x}")).collect(), index)
        }
        None => {
            let mut distinct: Vec<&str> = raw_labels.clone();
            distinct.sort();
            distinct.dedup();
            let index = raw_labels.iter().map(|l| distinct.partition_point(|y| y < l)).collect();
            (distinct.iter().map(|l| l.to_string()).collect(), index)
        }
    };
    match class_names.len() {
        1 => {
            return Err(InputError::OneClass {
                path: path.to_path_buf(),
                class: class_names[0].clone(),
            });
        }
        n if n > 256 => {
            return Err(InputError::TooManyClasses {
                path: path.to_path_buf(),
                found: n,
            });
        }
        _ => {}
    }
    let all = Dataset {
        images: Vec::new(),
        labels: labels.iter().map(|&l| l as u8).collect(),
        classes: class_names.len(),
        channels: features_per_row,
        height: 1,
        width: 1,
        class_names,
        features: Some(Features(values)),
    };
    let split = split::stratified(&all, options.test_fraction, options.seed);
    if split.test.is_empty() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
            detail: "too few rows to hold any out for testing (every class has a single row)".into(),
        });
    }
    let description = format!(
        "CSV {}: {features_per_row} features, {}; label column {}",
        path.display(),
        split_account(&split, "rows", Some(options.test_fraction)),
        column_name(label)
    );
    Ok(Loaded {
        split,
        description,
        came_split: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trainer's statistics of features are taken in f64, in two passes: a feature near
    /// 1.7e9 that varies by ±1 keeps its variation (one-pass f32 sums would lose it).
    #[test]
    fn the_trainer_standardises_features_at_full_precision() {
        let base = 1_700_000_000.0;
        let set = Dataset {
            images: Vec::new(),
            labels: vec![0, 1, 0, 1],
            classes: 2,
            channels: 2,
            height: 1,
            width: 1,
            class_names: vec!["a".into(), "b".into()],
            features: Some(Features(vec![
                base - 1.0,
                5.0,
                base + 1.0,
                5.0,
                base - 1.0,
                5.0,
                base + 1.0,
                5.0,
            ])),
        };
        let (mean, std) = crate::train::channel_stats(&set);
        assert_eq!(mean, vec![base, 5.0]);
        assert_eq!(
            std,
            vec![1.0, 1.0],
            "population std 1; a constant feature gets 1, not 0"
        );
    }
}
