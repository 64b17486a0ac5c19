//! Durable file replacement.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::{io_err, Result};

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// write a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(contents).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
    sync_dir(dir)
}

/// Makes the directory entries of `dir` (created, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Creates `dir` and its parents if missing and makes the new entries durable.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    sync_dir(parent(dir))
}

/// Checks that files can be created in `dir` (used by the readiness checks).
pub fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(".readyz-probe");
    let result = File::create(&probe)
        .and_then(|mut f| f.write_all(b"ok"))
        .map_err(io_err("write", &probe));
    let _ = fs::remove_file(&probe);
    result
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("FORMAT");
        atomic_write(&path, b"1\n").unwrap();
        atomic_write(&path, b"2\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"2\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("FORMAT")]);
    }

    #[test]
    fn check_writable_fails_for_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(dir.path()).is_ok());
        let err = check_writable(&dir.path().join("gone")).unwrap_err();
        assert!(err.to_string().starts_with("cannot write `"), "{err}");
    }
}
