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

/// The bytes the filesystem holding `path` has free for this user (`statvfs`: available blocks
/// times the fragment size); `Ok(None)` where that cannot be asked (systems other than Unix).
pub fn free_space(path: &Path) -> std::io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        // SAFETY: statvfs is plain data, for which all zeros is a valid value.
        let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c_path` is a NUL-terminated string and `stats` a writable statvfs, both alive
        // for the duration of the call.
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between systems
        Ok(Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64)))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// The bytes of the files at `path`: the file's length, or the sum over everything inside a
/// folder (symbolic links count for nothing and are not followed). Unreadable entries count 0.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
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
