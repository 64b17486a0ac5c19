//! Where a deployment keeps its records: each revision's `revision.json`, the journal and
//! the generated secrets. [`FileRecords`] is the site's state directory; the unit tests of
//! the state machine run it on [`MemoryRecords`] too, which can also fail a chosen write
//! (a full disk, an I/O error) to prove that no failed write leaves a wrong state.
//!
//! A record is named by its path under the deployment's directory (`journal.json`,
//! `revisions/3/revision.json`) and is always replaced whole: a reader sees the old record
//! or the new one, never a part. What is not a record stays in files: the rendered project
//! a target hands its engine, the site configuration kept with a revision, and the data
//! snapshots, which are copies of the engine's own directories.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{io_err, ImportError};

pub trait Records: Send + Sync {
    /// The record `key`, if there is one.
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, ImportError>;
    /// Replaces the record whole; a `private` one is readable by its owner only.
    fn write(&self, key: &str, bytes: &[u8], private: bool) -> Result<(), ImportError>;
    /// Removes the record; one that is not there is fine.
    fn remove(&self, key: &str) -> Result<(), ImportError>;
    /// The numbers of the revisions there is a record of.
    fn revisions(&self) -> Result<Vec<u32>, ImportError>;
    /// Where the record is, for messages about a damaged one.
    fn locate(&self, key: &str) -> PathBuf;
}

pub fn revision_key(n: u32) -> String {
    format!("revisions/{n}/revision.json")
}

pub const JOURNAL: &str = "journal.json";
pub const SECRETS: &str = "secrets.json";

/// Records as files under a deployment's state directory, each written atomically.
pub struct FileRecords {
    pub dir: PathBuf,
}

impl Records for FileRecords {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, ImportError> {
        let p = self.dir.join(key);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    fn write(&self, key: &str, bytes: &[u8], private: bool) -> Result<(), ImportError> {
        let p = self.dir.join(key);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        if private {
            appmodel_store::write_atomic_mode(&p, bytes, 0o600)?;
        } else {
            appmodel_store::write_atomic(&p, bytes)?;
        }
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), ImportError> {
        crate::deploy::remove_if_present(&self.dir.join(key))
    }

    fn revisions(&self) -> Result<Vec<u32>, ImportError> {
        let dir = self.dir.join("revisions");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &dir)(e)),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|n| is_file(&self.dir.join(revision_key(*n))))
            .collect())
    }

    fn locate(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }
}

fn is_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file())
}

/// Records in memory, for unit tests: nothing of them reaches the disk, and
/// [`MemoryRecords::fail_write`] makes a chosen write fail as a full disk would.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryRecords {
    records: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    /// Writes (and removals) so far, and the one that is to fail.
    writes: std::sync::atomic::AtomicUsize,
    fail_at: std::sync::Mutex<Option<usize>>,
}

#[cfg(test)]
impl MemoryRecords {
    /// Makes the `n`th write or removal from now (1 is the next) fail; `None`: none fails.
    pub fn fail_write(&self, n: Option<usize>) {
        let done = self.writes.load(std::sync::atomic::Ordering::SeqCst);
        *self.fail_at.lock().unwrap() = n.map(|n| done + n);
    }

    /// How many writes and removals there have been.
    pub fn writes(&self) -> usize {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self, key: &str) -> Result<(), ImportError> {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if *self.fail_at.lock().unwrap() == Some(n) {
            return Err(ImportError::Io {
                action: "write",
                path: self.locate(key),
                source: std::io::Error::from_raw_os_error(28), // ENOSPC
            });
        }
        Ok(())
    }
}

#[cfg(test)]
impl Records for MemoryRecords {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, ImportError> {
        Ok(self.records.lock().unwrap().get(key).cloned())
    }

    fn write(&self, key: &str, bytes: &[u8], _private: bool) -> Result<(), ImportError> {
        self.count(key)?;
        self.records
            .lock()
            .unwrap()
            .insert(key.to_string(), bytes.to_vec());
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), ImportError> {
        self.count(key)?;
        self.records.lock().unwrap().remove(key);
        Ok(())
    }

    fn revisions(&self) -> Result<Vec<u32>, ImportError> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .keys()
            .filter_map(|k| {
                k.strip_prefix("revisions/")?
                    .strip_suffix("/revision.json")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    fn locate(&self, key: &str) -> PathBuf {
        PathBuf::from("memory:").join(key)
    }
}
