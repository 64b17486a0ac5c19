//! The clock guard: the newest time appmodel has trusted, kept in two files with a MAC.
//!
//! Each check reads both copies and takes the newer valid one; a clock more than
//! [`TOLERANCE`] behind the mark counts as wrong (see [`crate::standing`]). A copy that is
//! missing or whose MAC fails is reported and rewritten from the other; when both are gone
//! the record is lost, which the caller treats as tampering. The MAC key lives in the site
//! state (mode 0600): this stops edits by hand and a careless restore of old files, not a
//! root user who reads the key (docs/licence.md says so).

use std::fs;
use std::path::{Path, PathBuf};

use appmodel_model::input::{self, Links};
use serde::{Deserialize, Serialize};

use crate::{framed_hash, hex, LicenceError, Result};

/// How far behind the mark the clock may be (daylight saving slips, a slow RTC).
pub const TOLERANCE: u64 = 3600;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    seen: u64,
    mac: String,
}

/// The two copies of the mark and their key.
#[derive(Debug, Clone)]
pub struct Clock {
    pub paths: [PathBuf; 2],
    key: [u8; 32],
}

/// What reading the two copies found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClockReading {
    /// The newest valid mark; 0 when none is valid.
    pub mark: u64,
    /// Copies that are missing.
    pub missing: Vec<PathBuf>,
    /// Copies that exist but are not a record with a valid MAC.
    pub forged: Vec<PathBuf>,
}

impl ClockReading {
    /// Neither copy holds a valid mark.
    pub fn lost(&self) -> bool {
        self.missing.len() + self.forged.len() == 2
    }
}

impl Clock {
    pub fn new(paths: [PathBuf; 2], key: [u8; 32]) -> Clock {
        Clock { paths, key }
    }

    fn mac(&self, seen: u64) -> String {
        hex(&framed_hash(&[b"appmodel clock v1", &self.key, &seen.to_le_bytes()])[..16])
    }

    fn read_one(&self, path: &Path) -> Option<Option<u64>> {
        let bytes = match input::read_regular(path, 4096, Links::Refuse) {
            Ok(b) => b,
            Err(input::InputError::NotFound) => return None,
            Err(_) => return Some(None),
        };
        let valid = serde_json::from_slice::<Record>(&bytes)
            .ok()
            .filter(|r| r.mac == self.mac(r.seen))
            .map(|r| r.seen);
        Some(valid)
    }

    pub fn read(&self) -> ClockReading {
        let mut reading = ClockReading::default();
        for path in &self.paths {
            match self.read_one(path) {
                None => reading.missing.push(path.clone()),
                Some(None) => reading.forged.push(path.clone()),
                Some(Some(seen)) => reading.mark = reading.mark.max(seen),
            }
        }
        reading
    }

    /// Writes `seen` to both copies (each replaced whole, mode 0600).
    pub fn write(&self, seen: u64) -> Result<()> {
        let record = serde_json::to_vec(&Record {
            seen,
            mac: self.mac(seen),
        })
        .unwrap_or_default();
        for path in &self.paths {
            write_private(path, &record)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` whole (temporary file, fsync, rename), mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|source| LicenceError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(appmodel_store::write_atomic_mode(path, bytes, 0o600)?)
}

/// When systemd-timesyncd last saw the time (the mtime of its clock file), if it runs here.
pub fn timesyncd_mark(root: &Path) -> Option<u64> {
    fs::metadata(root.join("var/lib/systemd/timesync/clock"))
        .ok()?
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(dir: &Path) -> Clock {
        Clock::new(
            [dir.join("a/clock.json"), dir.join("b/clock.json")],
            [9; 32],
        )
    }

    #[test]
    fn the_mark_survives_one_lost_or_edited_copy_and_not_two() {
        let t = tempfile::tempdir().unwrap();
        let c = clock(t.path());
        assert!(c.read().lost());
        c.write(1_000).unwrap();
        assert_eq!(
            c.read(),
            ClockReading {
                mark: 1_000,
                ..Default::default()
            }
        );

        fs::remove_file(&c.paths[0]).unwrap();
        let r = c.read();
        assert_eq!((r.mark, r.missing.len(), r.lost()), (1_000, 1, false));

        // Editing the time without the key breaks the MAC.
        let edited = fs::read_to_string(&c.paths[1])
            .unwrap()
            .replace("1000", "10");
        fs::write(&c.paths[1], edited).unwrap();
        let r = c.read();
        assert_eq!((r.mark, r.forged.len(), r.lost()), (0, 1, true));

        // Another key (another install's record copied in) does not verify either.
        c.write(5_000).unwrap();
        let stranger = Clock::new(c.paths.clone(), [1; 32]);
        assert!(stranger.read().lost());
        assert_eq!(c.read().mark, 5_000);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(&c.paths[0]).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
