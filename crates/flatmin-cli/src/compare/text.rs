//! How the reports write numbers and name optimizers.

/// A number with a real minus sign: "−0.3", "+1.2" with `sign`.
pub(super) fn signed(x: f64, decimals: usize, sign: bool) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let zero = s.chars().all(|c| c == '0' || c == '.');
    match (x < 0.0 && !zero, sign) {
        (true, _) => format!("−{s}"),
        (false, true) => format!("+{s}"),
        (false, false) => s,
    }
}

/// Decimals that show both numbers: 1, or 2 when one of them is below 0.1 (and not 0).
pub(super) fn decimals(a: f64, b: f64) -> usize {
    let small = |x: f64| x != 0.0 && x.abs() < 0.1;
    if small(a) || small(b) { 2 } else { 1 }
}

/// "2.0×".
pub(super) fn times(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.1}×")
    } else {
        "–".into()
    }
}

/// The display name of a preset: upper case, and the base optimizer's name for `sgd` (the base
/// alone).
pub fn display_name(optimizer: &str, base: &str) -> String {
    match (optimizer, base) {
        ("sgd", "adam") => "Adam".into(),
        ("sgd", "adamw") => "AdamW".into(),
        ("sgd", _) => "SGD".into(),
        ("fisher-sam", _) => "Fisher-SAM".into(),
        ("looksam", _) => "LookSAM".into(),
        ("sam-every-5", _) => "SAM every 5 steps".into(),
        ("bsam", _) => "bSAM".into(),
        (o, _) => o.to_uppercase(),
    }
}

/// The row label of a preset with the base optimizer actually used: the base alone is named by
/// it ("sgd", "adam"), a method on a base other than SGD says so ("sam (base adam)").
pub fn row_label(optimizer: &str, base: &str) -> String {
    match (optimizer, base) {
        ("sgd", b) => b.to_string(),
        (o, "sgd") => o.to_string(),
        (o, b) => format!("{o} (base {b})"),
    }
}
