//! Files written so that a crash never leaves a half-written one.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary sibling, synced, then renamed over `path`; the
/// folder is synced after the rename, so that the new file survives a power loss, not only a
/// crash of the process.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        let (first, second) = bytes.split_at(bytes.len() / 2);
        file.write_all(first)?;
        crate::fault::pause_point(&format!("write-half:{name}"));
        file.write_all(second)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes the entries of folder `dir` (files created, renamed or removed in it) durable: fsync
/// of the folder itself. Filesystems that cannot sync a folder (they answer EINVAL) are taken
/// as they are; elsewhere than Unix, nothing is done.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        match std::fs::File::open(dir)?.sync_all() {
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Proves `dir` can take `bytes` more bytes: writes a hidden file of that size (zeros, synced),
/// then removes it. A full disk or a quota answers with the error the real write would get.
pub fn probe_space(dir: &Path, bytes: u64) -> std::io::Result<()> {
    let probe = dir.join(format!(".space-probe.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&probe)?;
        let chunk = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    result
}

/// Removes the temporary files (`*.tmp`) of atomic writes that a killed run left in its folder
/// `dir`. Best effort: a file that cannot be removed stays.
pub fn remove_temporaries(dir: &Path) {
    remove_matching(dir, |name| name.ends_with(".tmp"));
}

/// Removes what an interrupted run may have left in its folder `dir`: temporary files of
/// atomic writes (`*.tmp`) and checkpoint files (`model-e*.bpk`, `optimizer-e*.bpk`) other than
/// those in `keep`. Best effort: a file that cannot be removed stays.
pub fn remove_stale(dir: &Path, keep: &[&str]) {
    remove_matching(dir, |name| {
        let checkpoint_file =
            (name.starts_with("model-e") || name.starts_with("optimizer-e")) && name.ends_with(".bpk");
        name.ends_with(".tmp") || checkpoint_file && !keep.contains(&name)
    });
}

fn remove_matching(dir: &Path, stale: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if stale(&name) && entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
