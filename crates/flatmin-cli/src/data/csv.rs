//! CSV files of numeric features with a label column.
//!
//! - Cells are separated by commas (or tabs or semicolons: the one the first row uses most);
//!   double quotes may enclose a cell (`""` inside is a quote); blank lines are skipped; cells
//!   are trimmed.
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
//! variation. Errors name the file and the 1-based line.

use std::path::Path;

use super::input::{InputError, InputOptions, Loaded, split_account};
use super::{Dataset, Features, split};

/// A finite number, or `None`.
fn number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The cells of one line, or `None` when a quote does not close.
fn cells(line: &str, delimiter: char) -> Option<Vec<String>> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == delimiter {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if quoted {
        return None;
    }
    out.push(cur.trim().to_string());
    Some(out)
}

/// The delimiter the line uses most outside quotes (commas win ties).
fn delimiter(line: &str) -> char {
    let mut best = (',', 0);
    for d in [',', '\t', ';'] {
        let mut quoted = false;
        let n = line
            .chars()
            .filter(|&c| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && c == d
            })
            .count();
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
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
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let Some(&(_, first)) = lines.first() else {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
            detail: "no rows".into(),
        });
    };
    let delim = delimiter(first);
    let mut rows: Vec<(usize, Vec<String>)> = Vec::with_capacity(lines.len());
    for &(line, l) in &lines {
        let row = cells(l, delim).ok_or_else(|| InputError::Quote {
            path: path.to_path_buf(),
            line,
        })?;
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
