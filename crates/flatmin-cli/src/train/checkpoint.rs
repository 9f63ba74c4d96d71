//! Checkpoints: the output folder, atomic writes after every epoch, reading them back to
//! resume exactly, and the checks a resume makes.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use flatmin::SamConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{config::*, error::*, report::*};
use crate::fsutil::write_atomic;

/// A setting changed when a run was resumed (only those in [`RESUMABLE`] may change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChange {
    /// Epochs done when it changed.
    pub after_epoch: usize,
    /// The setting's key (`epochs`).
    pub setting: String,
    /// Its value before.
    pub from: Value,
    /// Its value after.
    pub to: Value,
}

/// A checkpoint: which files hold the model and the optimizer after `epoch`.
///
/// Format 2 added `format`, `sam` and `changes`. A checkpoint written before (format 1, none of
/// them) is the same run: its `config` means what it meant then, and it resumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    #[serde(default = "first_format")]
    pub(super) format: u64,
    pub(super) config: TrainConfig,
    /// The library configuration the run was made with ([`crate::config_record`]); a resume that
    /// would build another one (a flatmin whose presets changed) is refused.
    #[serde(default)]
    pub(super) sam: Option<Value>,
    /// Settings changed on resume, oldest first.
    #[serde(default)]
    pub(super) changes: Vec<SettingChange>,
    pub(super) epoch: usize,
    pub(super) steps: usize,
    pub(super) seconds: f64,
    pub(super) step_ms_total: f64,
    pub(super) model_file: String,
    pub(super) optimizer_file: String,
    pub(super) history: Vec<EpochMetrics>,
    /// Which data the run trained on (absent in checkpoints written before it was recorded): a
    /// resume that finds other data at the same path is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) data: Option<DataRecord>,
}

pub(super) const CHECKPOINT: &str = "checkpoint.json";

/// The format of the checkpoints this version writes; it reads this one and every older one.
/// Format 3 records the library configuration with its list of members (`sam.members`).
pub(super) const CHECKPOINT_FORMAT: u64 = 3;

pub(super) fn first_format() -> u64 {
    1
}

/// Creates `out` and proves it writable (what a run's folder needs when no command claims
/// it: the runs of a sweep, inside the sweep's folder).
pub(super) fn prepare_out(out: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(out)
        .map_err(|e| TrainError::Invalid(format!("--out {}: cannot create the folder: {e}", out.display())))?;
    // A run killed in the middle of a write leaves its temporary file; a new run clears them.
    crate::fsutil::remove_temporaries(out);
    let probe = out.join(".write-probe");
    write_atomic(&probe, b"ok")
        .map_err(|e| TrainError::Invalid(format!("--out {}: not writable: {e}", out.display())))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// Proves `out` has room for the checkpoints before any training starts: writes (and removes) a
/// file as large as two checkpoints (the previous one stays until the next is complete), or one
/// when resuming next to an existing checkpoint. A full disk is then an error here, not after
/// the first epoch.
pub(super) fn check_space<M: Module>(out: &Path, model: &M, sam: &SamConfig, resume: bool) -> Result<(), TrainError> {
    let model = model_bytes(model)?.len() as u64;
    // bSAM keeps its momentum and precision in place of the base optimizer's buffers.
    let base_buffers = if sam.member::<flatmin::BsamConfig>().is_some() {
        2
    } else {
        sam.base.buffers_per_parameter()
    };
    let mut buffers = base_buffers + sam.record_schema().maps.len() as u64;
    if sam.precision.is_mixed() {
        // A half-precision model's optimizer state and master weights are kept in f32.
        buffers *= 2;
    }
    let checkpoint = model * (1 + buffers) + (1 << 20);
    let needed = if resume { checkpoint } else { 2 * checkpoint };
    crate::fsutil::probe_space(out, needed).map_err(|e| {
        TrainError::Invalid(format!(
            "--out {}: no room for the checkpoints (about {:.1} MB needed): {e}",
            out.display(),
            needed as f64 / 1e6
        ))
    })
}

pub(super) fn model_bytes<M: Module>(model: &M) -> Result<Vec<u8>, TrainError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::Invalid(format!("saving the model: {e}")))?;
    Ok(bytes.to_vec())
}

pub(super) fn write_checkpoint<M: Module>(
    out: &Path,
    ckpt: &Checkpoint,
    model: &M,
    optim: &flatmin::Sam,
) -> Result<(), TrainError> {
    let io = |p: &Path, e: std::io::Error| TrainError::Invalid(format!("{}: {e}", p.display()));
    let model_path = out.join(&ckpt.model_file);
    write_atomic(&model_path, &model_bytes(model)?).map_err(|e| io(&model_path, e))?;
    crate::fault::pause_point("checkpoint:model");
    let optim_path = out.join(&ckpt.optimizer_file);
    optim
        .record()
        .save(&optim_path)
        .map_err(|e| TrainError::Invalid(e.to_string()))?;
    crate::fault::pause_point("checkpoint:optimizer");
    // Both files are synced (by their writers); their names in the folder must be durable too
    // before checkpoint.json points at them, or a power loss could leave it naming files that
    // are not there.
    crate::fsutil::sync_dir(out).map_err(|e| io(out, e))?;
    let text = serde_json::to_string_pretty(ckpt).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let ckpt_path = out.join(CHECKPOINT);
    write_atomic(&ckpt_path, text.as_bytes()).map_err(|e| io(&ckpt_path, e))?;
    crate::fault::pause_point("checkpoint:json");
    // Only now, with the new checkpoint in place, are the older files no longer needed.
    if ckpt.epoch > 1 {
        std::fs::remove_file(out.join(format!("model-e{}.bpk", ckpt.epoch - 1))).ok();
        std::fs::remove_file(out.join(format!("optimizer-e{}.bpk", ckpt.epoch - 1))).ok();
    }
    Ok(())
}

/// Loads weights saved by a checkpoint into `model` (built with the same architecture).
pub(crate) fn load_model_file<M: Module>(model: M, path: &Path) -> Result<M, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
    load_model_bytes(model, bytes).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}

/// Loads weights from the bytes of a checkpoint's model file into `model`.
#[doc(hidden)]
pub fn load_model_bytes<M: Module>(model: M, bytes: Vec<u8>) -> Result<M, String> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| e.to_string())?;
    model.try_load_record(record).map_err(|e| e.to_string())
}

/// The model file of the checkpoint in `out`.
pub(crate) fn checkpoint_model_path(out: &Path) -> Result<PathBuf, TrainError> {
    Ok(out.join(read_checkpoint(out)?.model_file))
}

pub(super) fn read_checkpoint(out: &Path) -> Result<Checkpoint, TrainError> {
    let path = out.join(CHECKPOINT);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::Invalid(format!("{}: no checkpoint to resume: {e}", path.display())))?;
    parse_checkpoint(&text).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}

/// A checkpoint.json's text, read and checked for what resuming relies on: a format this flatmin
/// reads, the files it names
/// are plain names in its own folder (never a path elsewhere), its history has one line per
/// epoch, its epoch is within the run, its times are ≥ 0.
pub(super) fn parse_checkpoint(text: &str) -> Result<Checkpoint, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let ckpt: Checkpoint = match value.get("format").map_or(Some(1), Value::as_u64) {
        Some(1..=CHECKPOINT_FORMAT) => serde_json::from_str(text).map_err(|e| e.to_string())?,
        Some(n) => {
            return Err(format!(
                "checkpoint format {n}; this flatmin reads formats 1 to {CHECKPOINT_FORMAT} (was it written by a newer one?)"
            ));
        }
        None => return Err("`format` must be a whole number".into()),
    };
    for (key, name) in [
        ("model_file", &ckpt.model_file),
        ("optimizer_file", &ckpt.optimizer_file),
    ] {
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        if !plain {
            return Err(format!("`{key}` {name:?}: expected a file name in the run's folder"));
        }
    }
    if ckpt.history.len() != ckpt.epoch || ckpt.epoch > ckpt.config.epochs {
        return Err(format!(
            "`epoch` {} with {} lines of history in a run of {} epochs: expected one line per epoch done",
            ckpt.epoch,
            ckpt.history.len(),
            ckpt.config.epochs
        ));
    }
    if !(ckpt.seconds >= 0.0 && ckpt.step_ms_total >= 0.0) {
        return Err(format!(
            "`seconds` {} and `step_ms_total` {}: expected times ≥ 0",
            ckpt.seconds, ckpt.step_ms_total
        ));
    }
    Ok(ckpt)
}

/// Reads a checkpoint.json's text as [`read_checkpoint`] does (for the fuzz target): the
/// configuration and the two file names.
#[doc(hidden)]
pub fn checkpoint_files_from_text(text: &str) -> Result<(TrainConfig, String, String), String> {
    parse_checkpoint(text).map(|c| (c.config, c.model_file, c.optimizer_file))
}

/// Checks that `config` (with its library configuration `sam`) continues the run of `ckpt`:
/// settings other than [`RESUMABLE`] ones must be the run's, `epochs` can only grow, and the
/// library configuration must be the one the run was made with. Returns the run's changes, this
/// resume's appended.
pub(super) fn resume_changes(
    ckpt: &Checkpoint,
    config: &TrainConfig,
    sam: &SamConfig,
    path: &Path,
) -> Result<Vec<SettingChange>, TrainError> {
    let differences = ckpt.config.differences(config);
    let refused: Vec<String> = differences
        .iter()
        .filter(|d| !RESUMABLE.contains(&d.key.as_str()))
        .map(|d| format!("  {}", d.describe("this resume")))
        .collect();
    if !refused.is_empty() {
        return fail(format!(
            "{}: a resumed run keeps its settings (only --epochs may change, to extend it):\n{}",
            path.display(),
            refused.join("\n")
        ));
    }
    if config.epochs < ckpt.epoch {
        return fail(format!(
            "--epochs {}: the run has already done {} epochs; resuming can only extend it",
            config.epochs, ckpt.epoch
        ));
    }
    let now = crate::config_record::config_json(sam);
    if let Some(made_with) = &ckpt.sam
        && !crate::config_record::same_method(made_with, &now)
    {
        return fail(format!(
            "{}: the run was made with the library configuration {}, but its settings now give {} \
             (a flatmin whose presets changed?): resume it with the flatmin that made it",
            path.display(),
            made_with,
            now
        ));
    }
    let mut changes = ckpt.changes.clone();
    changes.extend(differences.into_iter().map(|d| SettingChange {
        after_epoch: ckpt.epoch,
        setting: d.key,
        from: d.run,
        to: d.asked,
    }));
    Ok(changes)
}

/// Reads the configuration a checkpoint in `out` was made with (for `--resume`).
pub fn checkpoint_config(out: &Path) -> Result<TrainConfig, TrainError> {
    read_checkpoint(out).map(|c| c.config)
}

pub(super) fn write_metrics(out: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let mut text = String::new();
    for m in history {
        text.push_str(&serde_json::to_string(m).map_err(|e| TrainError::Invalid(e.to_string()))?);
        text.push('\n');
    }
    let path = out.join("metrics.jsonl");
    write_atomic(&path, text.as_bytes()).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}

/// The weights of a run's last checkpoint, by parameter path (raw little-endian bytes), for
/// comparing runs: parameter ids, which differ between processes, are left out.
pub fn checkpoint_weights(out: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>, TrainError> {
    let ckpt = read_checkpoint(out)?;
    let path = out.join(ckpt.model_file);
    let err = |e: burn_pack::Error| TrainError::Invalid(format!("{}: {e}", path.display()));
    let reader = burn_pack::Reader::from_file(&path).map_err(err)?;
    let mut weights = std::collections::BTreeMap::new();
    for tensor in reader.into_tensors().map_err(err)? {
        let (name, _, _, _, bytes) = tensor.into_parts().map_err(err)?;
        weights.insert(name, bytes.to_vec());
    }
    Ok(weights)
}

/// Refuses a resume whose data is not what the run trained on (another file at the same path, or
/// a named dataset read differently): the counts of examples and classes must be the same.
pub(super) fn check_same_data(ckpt: &Checkpoint, now: &DataRecord, path: &Path) -> Result<(), TrainError> {
    let Some(then) = &ckpt.data else {
        return Ok(());
    };
    if (then.train, then.test, then.classes) != (now.train, now.test, now.classes) {
        return fail(format!(
            "{}: the run trained on {} ({} training and {} test examples, {} classes), but {} now gives \
             {} training and {} test examples, {} classes: resume it with the data it was made with",
            path.display(),
            then.name,
            then.train,
            then.test,
            then.classes,
            now.name,
            now.train,
            now.test,
            now.classes
        ));
    }
    Ok(())
}
