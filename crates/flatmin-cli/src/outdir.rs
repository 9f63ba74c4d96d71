//! Output folders: which command wrote them, and never a result overwritten or mixed without
//! the user's word.
//!
//! Every command that writes a folder of results (`train`, `compare`, `sweep`, `toy`) goes
//! through [`OutDir`]:
//!
//! 1. [`OutDir::check`], first, reads the folder and refuses one that already holds results,
//!    naming what it holds, unless the user asked to continue it ([`Intent::Continue`]: a folder
//!    written by another command is refused even then) or to replace it ([`Intent::Overwrite`]);
//! 2. [`OutDir::claim`], once every check that can fail has passed, sets the old results aside
//!    (when replacing), creates the folder and records in [`MARKER`] which command and settings
//!    wrote it; a run refused by a late check therefore leaves no folder behind;
//! 3. [`OutDir::abandon`] or [`OutDir::discard`] after a failure: removes what the claim made
//!    when no result (or no whole result) was written, and puts the old results back;
//! 4. dropping the [`OutDir`] of a run that no failure undid: the new results are complete, and
//!    only now are the old results that `--overwrite` set aside removed.
//!
//! `--overwrite` never removes the old results before the new ones exist. The claim first checks
//! that the disk has room for the new results beside the old ones (the estimate: as much room as
//! the old results take, since the same command wrote them), then moves the old results into a
//! hidden folder inside the output folder ([`SET_ASIDE`], a rename: atomic, and no copy), and
//! they stay there until the run succeeds. A run that fails before its first result gets them
//! back in place; one that fails later (a training with a resumable checkpoint), or is killed,
//! leaves them in that hidden folder, and says so.
//!
//! The commands that write a single file (`bench --out`, `replay --out`) use [`check_file`].

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil;
use crate::train::TrainConfig;

/// The record of who wrote a folder, in the folder itself.
pub const MARKER: &str = "flatmin-run.json";

/// The start of the name of the hidden folder, inside the output folder, where `--overwrite`
/// keeps the old results until the new ones are complete (a random suffix follows).
pub const SET_ASIDE: &str = ".flatmin-set-aside-";

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
    /// Replace what the folder holds (`--overwrite`): the old results are set aside at the claim
    /// and removed once the new ones are complete.
    Overwrite,
}

impl Intent {
    /// [`Intent::Overwrite`] when `overwrite`, else [`Intent::New`].
    pub fn new_or_overwrite(overwrite: bool) -> Self {
        if overwrite { Self::Overwrite } else { Self::New }
    }
}

/// Why an output folder or file was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutDirError(pub String);

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
    /// Hidden folders ([`SET_ASIDE`]) in which an `--overwrite` that did not complete (killed,
    /// or failed after its first result) left the results it was replacing. Not results of the
    /// folder; never removed by flatmin.
    pub set_aside: Vec<String>,
}

/// Whether `name` is one of a training run's checkpoint files.
fn is_checkpoint_file(name: &str) -> bool {
    (name.starts_with("model-e") || name.starts_with("optimizer-e")) && name.ends_with(".bpk")
}

/// Entries that are never results: the marker and what an interrupted write leaves.
fn bookkeeping(name: &str) -> bool {
    name == MARKER
        || name == ".write-probe"
        || name.ends_with(".tmp")
        || name.starts_with(".space-probe")
        || name.starts_with(SET_ASIDE)
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
        } else if name.starts_with(SET_ASIDE) {
            contents.set_aside.push(name);
        } else if !bookkeeping(&name) {
            contents.results.push(name);
        }
    }
    contents.results.sort();
    contents.set_aside.sort();
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
    /// The old results `--overwrite` moved aside at the claim, until the run ends.
    set_aside: Option<SetAside>,
}

/// Old results moved aside by an `--overwrite` claim.
#[derive(Debug)]
struct SetAside {
    /// The hidden folder inside the output folder that holds them.
    dir: TempDir,
    /// The entries moved into it (names in the output folder).
    names: Vec<String>,
    /// Those entries for messages (`a, b and 3 more`).
    listing: String,
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
            set_aside: None,
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
        let replace = "--overwrite to replace it (the old results are removed once the new ones are complete), \
                       or choose another --out";
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

    /// Checks again, sets the old results aside when replacing, creates the folder and records
    /// `flatmin COMMAND` with `settings` in [`MARKER`] (written atomically; a folder being
    /// continued keeps its record). Call it once every check that can fail has passed, just
    /// before the first write.
    pub fn claim(&mut self, description: &str, settings: Value) -> Result<(), OutDirError> {
        let contents = self.check()?;
        let out = self.path.display().to_string();
        for name in &contents.set_aside {
            eprintln!(
                "flatmin {}: note: {out}/{name} holds the results an earlier --overwrite was replacing when it \
                 stopped; flatmin leaves it alone: move them back or remove it",
                self.command
            );
        }
        if self.intent == Intent::Overwrite && !contents.results.is_empty() {
            self.put_aside(&contents)?;
        }
        let created = match self.create() {
            Ok(created) => created,
            Err(e) => {
                self.put_back();
                return Err(e);
            }
        };
        self.created = created;
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
            serde_json::to_string_pretty(&marker)
                .map_err(std::io::Error::other)
                .and_then(|text| fsutil::write_atomic(&self.path.join(MARKER), text.as_bytes()))
        };
        if let Err(e) = written {
            self.abandon();
            return err(format!("--out {out}: not writable: {e}"));
        }
        Ok(())
    }

    /// Moves the old results (and their record) into a new [`SET_ASIDE`] folder inside the
    /// output folder, after checking that the disk has room for the new results beside them.
    /// On failure, whatever was moved is moved back and the error says that nothing was removed.
    fn put_aside(&mut self, contents: &Contents) -> Result<(), OutDirError> {
        let out = self.path.display().to_string();
        let old: u64 = contents
            .results
            .iter()
            .chain(std::iter::once(&MARKER.to_string()))
            .map(|n| fsutil::disk_usage(&self.path.join(n)))
            .sum();
        match fsutil::free_space(&self.path) {
            Ok(Some(free)) if free < old => {
                return err(format!(
                    "--out {out}: --overwrite keeps the earlier results until the new ones are complete, and the new \
                     ones are estimated to need as much room as the earlier ones ({:.1} MB), but the disk has only \
                     {:.1} MB free; make room, remove the earlier results yourself, or choose another --out \
                     (nothing was removed)",
                    old as f64 / 1e6,
                    free as f64 / 1e6
                ));
            }
            Ok(_) => {}
            Err(e) => {
                return err(format!(
                    "--out {out}: --overwrite could not read the disk's free space: {e} (nothing was removed)"
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(SET_ASIDE)
            .tempdir_in(&self.path)
            .map_err(|e| {
                OutDirError(format!(
                    "--out {out}: --overwrite could not make a folder to keep the earlier results in until the new \
                     ones are complete: {e} (nothing was removed)"
                ))
            })?;
        let mut aside = SetAside {
            dir,
            names: Vec::new(),
            listing: list(&contents.results),
        };
        for name in contents.results.iter().map(String::as_str).chain([MARKER]) {
            let from = self.path.join(name);
            if std::fs::symlink_metadata(&from).is_err() {
                continue; // a folder without a record
            }
            if let Err(e) = std::fs::rename(&from, aside.dir.path().join(name)) {
                self.set_aside = Some(aside);
                self.put_back();
                return err(format!(
                    "--out {out}: --overwrite could not set {name} aside: {e} (nothing was removed)"
                ));
            }
            aside.names.push(name.to_string());
        }
        let synced = fsutil::sync_dir(&self.path);
        self.set_aside = Some(aside);
        if let Err(e) = synced {
            self.put_back();
            return err(format!("--out {out}: --overwrite: {e} (nothing was removed)"));
        }
        crate::fault::pause_point("overwrite:set-aside");
        Ok(())
    }

    /// Moves the results set aside by [`OutDir::put_aside`] back into the output folder (which
    /// must no longer hold the new ones) and removes the hidden folder. If one cannot be moved
    /// back, the hidden folder is kept and stderr says where.
    fn put_back(&mut self) {
        let Some(aside) = self.set_aside.take() else {
            return;
        };
        let failed: Vec<String> = aside
            .names
            .iter()
            .filter(|name| std::fs::rename(aside.dir.path().join(name), self.path.join(name)).is_err())
            .cloned()
            .collect();
        let _ = fsutil::sync_dir(&self.path);
        if failed.is_empty() {
            let _ = aside.dir.close();
        } else {
            let kept = aside.dir.keep();
            eprintln!(
                "flatmin {}: --overwrite: {} could not be moved back from {}, where they are kept",
                self.command,
                list(&failed),
                kept.display()
            );
        }
    }

    /// Keeps the results set aside by [`OutDir::put_aside`] where they are (the folder now holds
    /// a new result that is not complete), and says where on stderr.
    fn keep_aside(&mut self) {
        if let Some(aside) = self.set_aside.take() {
            let kept = aside.dir.keep();
            eprintln!(
                "flatmin {}: --overwrite did not complete: the earlier results it was replacing ({}) are kept in {}; \
                 move them back or remove that folder",
                self.command,
                aside.listing,
                kept.display()
            );
        }
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
        let contents = match inspect(&self.path) {
            Ok(contents) if contents.results.is_empty() => contents,
            // A new result that is not complete: it stays, and so do the old ones, aside.
            _ => return self.keep_aside(),
        };
        if self.intent != Intent::Continue {
            let _ = std::fs::remove_file(self.path.join(MARKER));
        }
        fsutil::remove_temporaries(&self.path);
        self.remove_leftovers(&contents);
        let _ = std::fs::remove_file(self.path.join(".write-probe"));
        self.put_back();
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        self.claimed = false;
    }

    /// After a failure of a command whose results are whole or worthless (a report half
    /// written): removes everything written in the folder since the claim (the claim left it
    /// holding no result) and the folders it created, and puts back the results an
    /// `--overwrite` set aside.
    pub fn discard(&mut self) {
        if !self.claimed || self.intent == Intent::Continue {
            return self.abandon();
        }
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(SET_ASIDE) {
                    continue;
                }
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

impl Drop for OutDir {
    /// The end of a run: if it claimed the folder with `--overwrite` and no failure undid the
    /// claim, its results are complete and the old results set aside are removed now. (While
    /// panicking, they are kept instead, and stderr says where.)
    fn drop(&mut self) {
        if std::thread::panicking() {
            return self.keep_aside();
        }
        let Some(aside) = self.set_aside.take() else {
            return;
        };
        let out = self.path.display();
        let where_ = aside.dir.path().display().to_string();
        match aside.dir.close() {
            Ok(()) => eprintln!(
                "flatmin {}: --overwrite: removed the earlier results in {out} ({}), now that the new ones are complete",
                self.command, aside.listing
            ),
            Err(e) => eprintln!(
                "flatmin {}: --overwrite: the earlier results in {where_} could not all be removed: {e}",
                self.command
            ),
        }
        let _ = fsutil::sync_dir(&self.path);
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

/// `secs` since 1970-01-01 UTC as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339 without fractions, by the
/// `time` crate). A moment past the year 9999, which RFC 3339 cannot write, is written as
/// `SECS s after 1970-01-01T00:00:00Z`.
pub fn utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{secs} s after 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder, removed when dropped.
    fn scratch() -> TempDir {
        tempfile::Builder::new().prefix("flatmin-outdir-").tempdir().unwrap()
    }

    #[test]
    fn utc_dates_match_known_moments() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_131_261), "2026-12-01T13:21:01Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(utc(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(utc(253_402_300_800), "253402300800 s after 1970-01-01T00:00:00Z");
        assert_eq!(utc(u64::MAX), format!("{} s after 1970-01-01T00:00:00Z", u64::MAX));
    }

    #[test]
    fn a_new_run_is_refused_a_used_folder_and_the_claim_records_the_command() {
        let dir_tmp = scratch();
        let dir = dir_tmp.path().join("claim");
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
        let old_record = std::fs::read(dir.join("a/b").join(MARKER)).unwrap();
        over.claim("a run", Value::Null).unwrap();
        assert!(!dir.join("a/b/toy.json").exists());
        // A failed claimant that wrote nothing removes what it made: here its record (the
        // folder was there before it), and puts back the results it set aside; below, it
        // removes the folders it created too.
        over.abandon();
        assert_eq!(names(&dir.join("a/b")), [MARKER, "toy.json"]);
        assert_eq!(std::fs::read(dir.join("a/b").join(MARKER)).unwrap(), old_record);
        let mut fresh = OutDir::new(&dir.join("c/d"), "train", Intent::New);
        fresh.claim("", Value::Null).unwrap();
        fresh.abandon();
        assert!(!dir.join("c").exists(), "every folder the claim created is gone");
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A folder holding the results of `flatmin toy` (its record, toy.json and a run folder).
    fn toy_results(dir: &Path) -> Vec<(String, Vec<u8>)> {
        OutDir::new(dir, "toy", Intent::New)
            .claim("old", serde_json::json!({"old": true}))
            .unwrap();
        std::fs::write(dir.join("toy.json"), "{\"old\": 1}").unwrap();
        std::fs::create_dir(dir.join("run-a")).unwrap();
        std::fs::write(dir.join("run-a/summary.json"), "{\"old\": 2}").unwrap();
        [MARKER, "toy.json", "run-a/summary.json"]
            .iter()
            .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
            .collect()
    }

    /// Whether `dir` holds the files `files`, byte for byte.
    fn holds(dir: &Path, files: &[(String, Vec<u8>)]) -> bool {
        files
            .iter()
            .all(|(name, bytes)| std::fs::read(dir.join(name)).ok().as_ref() == Some(bytes))
    }

    /// `--overwrite` removes the old results only once the new ones are complete: from the claim
    /// to the end of the run they are whole, in the hidden folder; a run that fails before its
    /// first result puts them back; one that fails after it keeps both; a run that ends well
    /// removes them.
    #[test]
    fn overwrite_keeps_the_old_results_until_the_new_ones_are_complete() {
        let tmp = scratch();
        let dir = tmp.path().join("out");
        let old = toy_results(&dir);

        // Success: during the run the old results are aside, whole; at its end they are gone.
        let mut over = OutDir::new(&dir, "toy", Intent::Overwrite);
        over.claim("new", Value::Null).unwrap();
        let contents = inspect(&dir).unwrap();
        assert!(contents.results.is_empty(), "{:?}", contents.results);
        assert_eq!(contents.set_aside.len(), 1, "one hidden folder: {:?}", names(&dir));
        assert!(
            holds(&dir.join(&contents.set_aside[0]), &old),
            "the old results are whole"
        );
        std::fs::write(dir.join("toy.json"), "{\"new\": 1}").unwrap();
        drop(over);
        assert_eq!(names(&dir), [MARKER, "toy.json"]);
        assert_eq!(std::fs::read_to_string(dir.join("toy.json")).unwrap(), "{\"new\": 1}");

        // Failure before the first result (abandon) and of a half-written report (discard):
        // the old results are back, byte for byte, and nothing else is there.
        let old = toy_results(&tmp.path().join("again"));
        let dir = tmp.path().join("again");
        for discard in [false, true] {
            let mut over = OutDir::new(&dir, "toy", Intent::Overwrite);
            over.claim("new", Value::Null).unwrap();
            if discard {
                std::fs::write(dir.join("toy.json"), "{\"half").unwrap();
                over.discard();
            } else {
                over.abandon();
            }
            drop(over);
            assert_eq!(names(&dir), [MARKER, "run-a", "toy.json"], "discard: {discard}");
            assert!(holds(&dir, &old), "discard: {discard}");
        }

        // Failure after a first result (a resumable checkpoint): the new result stays, the old
        // ones stay aside, and a later claim leaves them alone.
        let mut over = OutDir::new(&dir, "toy", Intent::Overwrite);
        over.claim("new", Value::Null).unwrap();
        std::fs::write(dir.join("toy.json"), "{\"partial\": 1}").unwrap();
        over.abandon();
        drop(over);
        let contents = inspect(&dir).unwrap();
        assert_eq!(contents.results, ["toy.json"]);
        assert_eq!(contents.set_aside.len(), 1);
        let kept = dir.join(&contents.set_aside[0]);
        assert!(holds(&kept, &old));
        let mut next = OutDir::new(&dir, "toy", Intent::Overwrite);
        next.claim("next", Value::Null).unwrap();
        drop(next);
        assert!(holds(&kept, &old), "an earlier set-aside folder is never removed");
    }

    /// A disk without room for the new results beside the old ones refuses `--overwrite`
    /// before anything is moved. (The estimate is the old results' size: a file as large as the
    /// free space makes any disk too small.)
    #[test]
    fn overwrite_is_refused_before_anything_moves_when_the_disk_is_too_small() {
        let tmp = scratch();
        let dir = tmp.path().join("out");
        let old = toy_results(&dir);
        let free = fsutil::free_space(&dir).unwrap().unwrap();
        // A sparse file: its length counts in the estimate, it takes no room.
        let big = std::fs::File::create(dir.join("run-a/lambda.json")).unwrap();
        big.set_len(free + (1 << 30)).unwrap();
        let before = names(&dir);
        let e = OutDir::new(&dir, "toy", Intent::Overwrite)
            .claim("new", Value::Null)
            .unwrap_err();
        assert!(e.0.contains("MB free") && e.0.contains("nothing was removed"), "{e}");
        assert_eq!(names(&dir), before);
        assert!(holds(&dir, &old));
    }

    /// A training run killed in the middle of its first checkpoint leaves checkpoint files that
    /// no `checkpoint.json` names: a new run may take the folder (and clears them); once a
    /// `checkpoint.json` commits them they are results.
    #[test]
    fn checkpoint_files_without_a_checkpoint_json_are_leftovers_not_results() {
        let dir_tmp = scratch();
        let dir = dir_tmp.path().join("leftovers");
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
        let other_tmp = scratch();
        let other = other_tmp.path().join("leftovers-other");
        OutDir::new(&other, "compare", Intent::New)
            .claim("", Value::Null)
            .unwrap();
        std::fs::write(other.join("model-e1.bpk"), "x").unwrap();
        assert!(OutDir::new(&other, "compare", Intent::New).check().is_err());
    }

    #[test]
    fn probe_leaves_nothing_and_check_file_refuses_an_existing_file() {
        let dir_tmp = scratch();
        let dir = dir_tmp.path().join("probe");
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
    }
}
