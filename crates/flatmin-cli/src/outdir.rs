//! Output folders: which command wrote them, and never a result overwritten or mixed without
//! the user's word.
//!
//! Every command that writes a folder of results (`train`, `compare`, `sweep`, `toy`) goes
//! through [`OutDir`]:
//!
//! 1. [`OutDir::check`], first, reads the folder and refuses one that already holds results,
//!    naming what it holds, unless the user asked to continue it ([`Intent::Continue`]: a folder
//!    written by another command is refused even then) or to replace it ([`Intent::Overwrite`]);
//! 2. [`OutDir::claim`], once every check that can fail has passed, removes the old results (when
//!    replacing), creates the folder and records in [`MARKER`] which command and settings wrote
//!    it; a run refused by a late check therefore leaves no folder behind;
//! 3. [`OutDir::abandon`] or [`OutDir::discard`] after a failure: removes what the claim made
//!    when no result (or no whole result) was written.
//!
//! The commands that write a single file (`bench --out`, `replay --out`) use [`check_file`].

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil;
use crate::train::{TrainConfig, TrainError};

/// The record of who wrote a folder, in the folder itself.
pub const MARKER: &str = "flatmin-run.json";

/// What [`MARKER`] holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Marker {
    /// The command: `train`, `compare`, `sweep` or `toy`.
    pub command: String,
    /// The settings in a few words, for messages.
    pub description: String,
    /// Every setting of the command (its config, plan or spec as JSON).
    pub settings: Value,
    /// The flatmin version that wrote the folder.
    pub flatmin_version: String,
    /// When the folder was claimed, UTC (`2026-11-30T15:20:01Z`).
    pub created: String,
    /// The same moment, in seconds since 1970-01-01 UTC.
    pub created_unix: u64,
}

/// What the user asked for an output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// A new run: a folder that holds results is refused.
    New,
    /// Continue the run in the folder (`--resume`, or the same sweep again).
    Continue,
    /// Replace what the folder holds (`--overwrite`): the old results are removed first.
    Overwrite,
}

impl Intent {
    /// [`Intent::Overwrite`] when `overwrite`, else [`Intent::New`].
    pub fn new_or_overwrite(overwrite: bool) -> Self {
        if overwrite { Self::Overwrite } else { Self::New }
    }
}

/// Why an output folder or file was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutDirError(pub String);

impl std::fmt::Display for OutDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutDirError {}

impl From<OutDirError> for TrainError {
    fn from(e: OutDirError) -> Self {
        TrainError(e.0)
    }
}

impl From<OutDirError> for String {
    fn from(e: OutDirError) -> Self {
        e.0
    }
}

fn err<T>(msg: String) -> Result<T, OutDirError> {
    Err(OutDirError(msg))
}

/// What a folder holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// The folder's [`MARKER`], if it has one: read, or why it could not be.
    pub marker: Option<Result<Marker, String>>,
    /// Names of its entries other than the marker and the temporary files of writes (sorted):
    /// empty for a missing folder, an empty one, or one a run left before its first result.
    pub results: Vec<String>,
    /// Checkpoint files of a training run that no `checkpoint.json` names: what a run killed in
    /// the middle of its first checkpoint leaves (`checkpoint.json` is the commit point). Not
    /// results; a new run in the folder removes them.
    pub leftovers: Vec<String>,
}

/// Whether `name` is one of a training run's checkpoint files.
fn is_checkpoint_file(name: &str) -> bool {
    (name.starts_with("model-e") || name.starts_with("optimizer-e")) && name.ends_with(".bpk")
}

/// Entries that are never results: the marker and what an interrupted write leaves.
fn bookkeeping(name: &str) -> bool {
    name == MARKER || name == ".write-probe" || name.ends_with(".tmp") || name.starts_with(".space-probe")
}

/// Reads what `dir` holds (nothing if it does not exist).
pub fn inspect(dir: &Path) -> Result<Contents, OutDirError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) if dir.exists() && !dir.is_dir() => {
            return err(format!("--out {}: is a file, not a folder", dir.display()));
        }
        // Not there (or a file stands where a folder above it should be: creating it will say so).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Contents::default());
        }
        Err(e) => return err(format!("--out {}: cannot read the folder: {e}", dir.display())),
    };
    let mut contents = Contents::default();
    for entry in entries {
        let entry = entry.map_err(|e| OutDirError(format!("--out {}: cannot read the folder: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == MARKER {
            contents.marker = Some(
                std::fs::read_to_string(entry.path())
                    .map_err(|e| e.to_string())
                    .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string())),
            );
        } else if !bookkeeping(&name) {
            contents.results.push(name);
        }
    }
    contents.results.sort();
    let by_train = matches!(&contents.marker, Some(Ok(m)) if m.command == "train");
    if by_train && !contents.results.iter().any(|n| n == "checkpoint.json") {
        let (leftovers, results) = contents.results.into_iter().partition(|n| is_checkpoint_file(n));
        (contents.leftovers, contents.results) = (leftovers, results);
    }
    Ok(contents)
}

/// Whether a file or folder `name` (at `path`) is something a flatmin command writes: only
/// those are removed by `--overwrite`. A folder counts when everything in it does.
fn written_by_flatmin(path: &Path, name: &str) -> bool {
    const NAMES: [&str; 12] = [
        "checkpoint.json",
        "metrics.jsonl",
        "summary.json",
        "sweep.json",
        "results.md",
        "results.json",
        "compare.md",
        "compare.json",
        "toy.json",
        "sharpness.json",
        "lambda.json",
        "bench.json",
    ];
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if meta.is_dir() {
        return std::fs::read_dir(path).is_ok_and(|entries| {
            entries.flatten().all(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                written_by_flatmin(&e.path(), &n)
            })
        });
    }
    meta.is_file() && (bookkeeping(name) || NAMES.contains(&name) || is_checkpoint_file(name) || name.ends_with(".svg"))
}

/// `a, b, c and 4 more`.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// An output folder of one command, checked, then claimed.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    command: &'static str,
    intent: Intent,
    continue_hint: Option<String>,
    /// The folders the claim created, outermost first.
    created: Vec<PathBuf>,
    claimed: bool,
}

impl OutDir {
    /// The folder `path` for `flatmin COMMAND`, with what the user asked.
    pub fn new(path: &Path, command: &'static str, intent: Intent) -> Self {
        Self {
            path: path.to_path_buf(),
            command,
            intent,
            continue_hint: None,
            created: Vec::new(),
            claimed: false,
        }
    }

    /// How this command continues a folder of its own (e.g. `--resume DIR`), for the refusal.
    pub fn with_continue_hint(mut self, hint: impl Into<String>) -> Self {
        self.continue_hint = Some(hint.into());
        self
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`OutDir::claim`] has made the folder (and no failure has undone it).
    pub fn is_claimed(&self) -> bool {
        self.claimed
    }

    /// Reads the folder and refuses it if what the user asked would lose or mix a result.
    /// Writes nothing.
    pub fn check(&self) -> Result<Contents, OutDirError> {
        let contents = inspect(&self.path)?;
        let out = self.path.display();
        let by = match &contents.marker {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) if self.intent != Intent::Overwrite => {
                return err(format!(
                    "--out {out}: its {MARKER} (the record of which command wrote it) cannot be read: {e}; \
                     give --overwrite to replace the folder, or another --out"
                ));
            }
            _ => None,
        };
        if self.intent == Intent::Continue {
            if let Some(m) = by.filter(|m| m.command != self.command) {
                return err(format!(
                    "{out} was written by `flatmin {}` ({}), not by `flatmin {}`: it cannot be continued here; \
                     nothing was written",
                    m.command, m.description, self.command
                ));
            }
            return Ok(contents);
        }
        if contents.results.is_empty() {
            return Ok(contents);
        }
        if self.intent == Intent::Overwrite {
            let foreign: Vec<String> = contents
                .results
                .iter()
                .filter(|n| !written_by_flatmin(&self.path.join(n), n))
                .cloned()
                .collect();
            if !foreign.is_empty() {
                return err(format!(
                    "--out {out}: --overwrite removes only what flatmin writes, and the folder also holds {}; \
                     move those away or choose another --out (nothing was removed)",
                    list(&foreign)
                ));
            }
            return Ok(contents);
        }
        let what = match by {
            Some(m) => format!(
                "the results of `flatmin {}` ({}; written {} by flatmin {})",
                m.command, m.description, m.created, m.flatmin_version
            ),
            None if contents
                .results
                .iter()
                .all(|n| written_by_flatmin(&self.path.join(n), n)) =>
            {
                "the results of an earlier flatmin run (with no record of its command)".to_string()
            }
            None => "files not written by flatmin".to_string(),
        };
        let replace = "--overwrite to replace it (the old results are removed first), or choose another --out";
        let ways = match self
            .continue_hint
            .as_ref()
            .filter(|_| by.is_none_or(|m| m.command == self.command))
        {
            Some(hint) => format!("give {hint} to continue it, {replace}"),
            None => format!("give {replace}"),
        };
        err(format!(
            "--out {out} already holds {what}: {}. Nothing was written; {ways}",
            list(&contents.results)
        ))
    }

    /// [`OutDir::check`], then proves the folder can be created and written, and leaves nothing
    /// behind: for a command (`compare`) that writes its results only at the end, so that a kill
    /// before then leaves no folder.
    pub fn probe(&self) -> Result<(), OutDirError> {
        self.check()?;
        let created = self.create()?;
        let probe = self.path.join(".write-probe");
        let result = fsutil::write_atomic(&probe, b"ok")
            .map_err(|e| OutDirError(format!("--out {}: not writable: {e}", self.path.display())));
        let _ = std::fs::remove_file(&probe);
        for dir in created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        result
    }

    /// Creates the folder and the missing folders above it; returns those it created,
    /// outermost first.
    fn create(&self) -> Result<Vec<PathBuf>, OutDirError> {
        let mut missing = Vec::new();
        let mut at = Some(self.path.as_path());
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err()) {
            missing.push(dir.to_path_buf());
            at = dir.parent();
        }
        missing.reverse();
        std::fs::create_dir_all(&self.path)
            .map_err(|e| OutDirError(format!("--out {}: cannot create the folder: {e}", self.path.display())))?;
        // The new folders' entries in their parents, durable before anything is written in them.
        for dir in &missing {
            if let Some(parent) = dir.parent() {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                fsutil::sync_dir(parent).map_err(|e| {
                    OutDirError(format!("--out {}: cannot create the folder: {e}", self.path.display()))
                })?;
            }
        }
        Ok(missing)
    }

    /// Checks again, removes the old results when replacing, creates the folder and records
    /// `flatmin COMMAND` with `settings` in [`MARKER`] (written atomically; a folder being
    /// continued keeps its record). Call it once every check that can fail has passed, just
    /// before the first write.
    pub fn claim(&mut self, description: &str, settings: Value) -> Result<(), OutDirError> {
        let contents = self.check()?;
        let out = self.path.display().to_string();
        if self.intent == Intent::Overwrite && !contents.results.is_empty() {
            for name in contents.results.iter().map(String::as_str).chain([MARKER]) {
                let path = self.path.join(name);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return err(format!("--out {out}: --overwrite could not remove {name}: {e}"));
                    }
                    _ => {}
                }
            }
            eprintln!(
                "flatmin {}: --overwrite: removed the earlier results in {out} ({})",
                self.command,
                list(&contents.results)
            );
        }
        self.created = self.create()?;
        self.claimed = true;
        // A run killed in the middle of a write leaves its temporary file, or (in the middle of its
        // first checkpoint) checkpoint files that nothing names; a new run clears them.
        fsutil::remove_temporaries(&self.path);
        self.remove_leftovers(&contents);
        let written = if self.intent == Intent::Continue && matches!(contents.marker, Some(Ok(_))) {
            // The record stays; a probe proves the folder still writable.
            let probe = self.path.join(".write-probe");
            let r = fsutil::write_atomic(&probe, b"ok");
            let _ = std::fs::remove_file(&probe);
            r
        } else {
            let (created, created_unix) = now_utc();
            let marker = Marker {
                command: self.command.to_string(),
                description: description.to_string(),
                settings,
                flatmin_version: env!("CARGO_PKG_VERSION").to_string(),
                created,
                created_unix,
            };
            let text = serde_json::to_string_pretty(&marker).map_err(|e| OutDirError(e.to_string()))?;
            fsutil::write_atomic(&self.path.join(MARKER), text.as_bytes())
        };
        if let Err(e) = written {
            self.abandon();
            return err(format!("--out {out}: not writable: {e}"));
        }
        Ok(())
    }

    /// Removes the checkpoint files that no `checkpoint.json` names ([`Contents::leftovers`]).
    fn remove_leftovers(&self, contents: &Contents) {
        for name in &contents.leftovers {
            let _ = std::fs::remove_file(self.path.join(name));
        }
    }

    /// After a failure: when the folder holds no result (a run refused before its first
    /// checkpoint), removes what the claim made (the record, temporary files, the folders it
    /// created). A folder with results — a resumable checkpoint — is kept.
    pub fn abandon(&mut self) {
        if !self.claimed {
            return;
        }
        let Ok(contents) = inspect(&self.path) else {
            return;
        };
        if !contents.results.is_empty() {
            return;
        }
        if self.intent != Intent::Continue {
            let _ = std::fs::remove_file(self.path.join(MARKER));
        }
        fsutil::remove_temporaries(&self.path);
        self.remove_leftovers(&contents);
        let _ = std::fs::remove_file(self.path.join(".write-probe"));
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        self.claimed = false;
    }

    /// After a failure of a command whose results are whole or worthless (a report half
    /// written): removes everything written in the folder since the claim (the claim left it
    /// holding no result) and the folders it created.
    pub fn discard(&mut self) {
        if !self.claimed || self.intent == Intent::Continue {
            return self.abandon();
        }
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
        self.abandon();
    }
}

/// For a command that writes one file (`bench --out`, `replay --out`): refuses an existing
/// `path` unless `overwrite` (the new file then replaces it atomically), a folder at `path`,
/// and a `path` whose folder does not exist. Writes nothing.
pub fn check_file(path: &Path, overwrite: bool) -> Result<(), OutDirError> {
    let out = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => err(format!("--out {out}: is a folder; give the path of a file")),
        Ok(meta) if !overwrite => {
            let when = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| format!(", modified {}", utc(d.as_secs())))
                .unwrap_or_default();
            err(format!(
                "--out {out} already exists ({} bytes{when}). Nothing was written; \
                 give --overwrite to replace it, or choose another --out",
                meta.len()
            ))
        }
        _ => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(())
            } else {
                err(format!("--out {out}: the folder {} does not exist", parent.display()))
            }
        }
    }
}

/// A few words on a training run's settings, for [`Marker::description`].
pub fn train_description(c: &TrainConfig) -> String {
    format!(
        "{} (base {}) on {}, {} model, {} epochs, lr {}, seed {}",
        c.optimizer, c.base, c.dataset, c.model, c.epochs, c.lr, c.seed
    )
}

fn now_utc() -> (String, u64) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (utc(secs), secs)
}

/// `secs` since 1970-01-01 UTC as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar;
/// days to a civil date by H. Hinnant's `civil_from_days`).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flatmin-outdir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn utc_dates_match_known_moments() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_131_261), "2026-12-01T13:21:01Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn a_new_run_is_refused_a_used_folder_and_the_claim_records_the_command() {
        let dir = scratch("claim");
        let mut first = OutDir::new(&dir.join("a/b"), "toy", Intent::New);
        first.claim("the toy", serde_json::json!({"lr": 5.0})).unwrap();
        let marker: Marker =
            serde_json::from_str(&std::fs::read_to_string(dir.join("a/b").join(MARKER)).unwrap()).unwrap();
        assert_eq!(
            (marker.command.as_str(), marker.settings["lr"].as_f64()),
            ("toy", Some(5.0))
        );
        // Only the record: nothing to lose, a new run may take it.
        OutDir::new(&dir.join("a/b"), "train", Intent::New).check().unwrap();
        std::fs::write(dir.join("a/b/toy.json"), "{}").unwrap();
        let refused = OutDir::new(&dir.join("a/b"), "train", Intent::New)
            .with_continue_hint("--resume X")
            .check()
            .unwrap_err();
        assert!(
            refused.0.contains("`flatmin toy` (the toy;") && refused.0.contains("toy.json"),
            "{refused}"
        );
        assert!(
            !refused.0.contains("--resume X"),
            "another command's folder is not continued: {refused}"
        );
        let continued = OutDir::new(&dir.join("a/b"), "train", Intent::Continue)
            .check()
            .unwrap_err();
        assert!(continued.0.contains("written by `flatmin toy`"), "{continued}");
        // A file flatmin does not write stops --overwrite before anything is removed.
        std::fs::write(dir.join("a/b/notes.txt"), "mine").unwrap();
        let mut over = OutDir::new(&dir.join("a/b"), "train", Intent::Overwrite);
        let e = over.claim("", Value::Null).unwrap_err();
        assert!(e.0.contains("notes.txt"), "{e}");
        assert!(dir.join("a/b/toy.json").exists());
        std::fs::remove_file(dir.join("a/b/notes.txt")).unwrap();
        over.claim("a run", Value::Null).unwrap();
        assert!(!dir.join("a/b/toy.json").exists());
        // A failed claimant that wrote nothing removes what it made: here its record (the
        // folder was there before it), below the folders it created too.
        over.abandon();
        assert_eq!(std::fs::read_dir(dir.join("a/b")).unwrap().count(), 0);
        let mut fresh = OutDir::new(&dir.join("c/d"), "train", Intent::New);
        fresh.claim("", Value::Null).unwrap();
        fresh.abandon();
        assert!(!dir.join("c").exists(), "every folder the claim created is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A training run killed in the middle of its first checkpoint leaves checkpoint files that
    /// no `checkpoint.json` names: a new run may take the folder (and clears them); once a
    /// `checkpoint.json` commits them they are results.
    #[test]
    fn checkpoint_files_without_a_checkpoint_json_are_leftovers_not_results() {
        let dir = scratch("leftovers");
        OutDir::new(&dir, "train", Intent::New)
            .claim("killed", Value::Null)
            .unwrap();
        std::fs::write(dir.join("model-e1.bpk"), "half").unwrap();
        std::fs::write(dir.join("optimizer-e1.bpk"), "half").unwrap();
        let contents = OutDir::new(&dir, "train", Intent::New).check().unwrap();
        assert!(contents.results.is_empty());
        assert_eq!(contents.leftovers, ["model-e1.bpk", "optimizer-e1.bpk"]);
        OutDir::new(&dir, "train", Intent::New)
            .claim("again", Value::Null)
            .unwrap();
        assert!(!dir.join("model-e1.bpk").exists() && !dir.join("optimizer-e1.bpk").exists());
        // Committed by a checkpoint.json: results, refused to a new run.
        std::fs::write(dir.join("model-e1.bpk"), "whole").unwrap();
        std::fs::write(dir.join("checkpoint.json"), "{}").unwrap();
        let refused = OutDir::new(&dir, "train", Intent::New).check().unwrap_err();
        assert!(refused.0.contains("model-e1.bpk"), "{refused}");
        // Another command's folder: its files are never taken for leftovers.
        let other = scratch("leftovers-other");
        OutDir::new(&other, "compare", Intent::New)
            .claim("", Value::Null)
            .unwrap();
        std::fs::write(other.join("model-e1.bpk"), "x").unwrap();
        assert!(OutDir::new(&other, "compare", Intent::New).check().is_err());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }

    #[test]
    fn probe_leaves_nothing_and_check_file_refuses_an_existing_file() {
        let dir = scratch("probe");
        OutDir::new(&dir.join("x/y"), "compare", Intent::New).probe().unwrap();
        assert!(!dir.exists());
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bench.json");
        check_file(&file, false).unwrap();
        std::fs::write(&file, "{}").unwrap();
        assert!(
            check_file(&file, false)
                .unwrap_err()
                .0
                .contains("already exists (2 bytes")
        );
        check_file(&file, true).unwrap();
        assert!(check_file(&dir, true).unwrap_err().0.contains("is a folder"));
        assert!(
            check_file(&dir.join("no/f.json"), false)
                .unwrap_err()
                .0
                .contains("does not exist")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
