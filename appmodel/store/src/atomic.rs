//! Atomic file replacement: temp file in the same directory, fsync, rename, fsync the directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::{io_err, Result};

/// Writes a new file `path` with `bytes` and fsyncs it (the caller syncs the directory, or
/// renames a directory holding it into place and syncs that).
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    write_synced_mode(path, bytes, 0o644)
}

/// [`write_synced`] for a file born with `mode` (e.g. 0o600 for a secret): the mode is set
/// when the file is created, before a byte is written, so it is never readable by others.
pub fn write_synced_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(bytes).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("sync", path))
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new content, never a mix,
/// even across a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] for a file born with `mode` (0o600 for secrets and site configuration).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        write_synced_mode(&tmp, bytes, mode)?;
        fs::rename(&tmp, path).map_err(io_err("rename into", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes the names in `dir` (a rename, a new file) durable. A filesystem that cannot sync a
/// directory (it says "invalid" or "unsupported") is left to its own devices; a real I/O
/// error is reported.
pub fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(io_err("sync", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_private_file_is_born_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secrets.json");
        write_atomic_mode(&p, b"{}", 0o600).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
