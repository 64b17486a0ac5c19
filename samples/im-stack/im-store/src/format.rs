//! The data directory layout and its format versions.
//!
//! ```text
//! DATA_DIR/FORMAT                     "1\n" or "2\n", replaced atomically
//! DATA_DIR/conversations/ID.log       messages: record log of {"from","body","ts"}; offset = record number
//! DATA_DIR/conversations/ID.idx       format 2: u64 LE byte position of each message (derived, repaired on open)
//! DATA_DIR/conversations/ID.read      format 2: record log of read receipts {"user","offset"}
//! ```
//!
//! Format 1 is written by im-store 1.0.0, format 2 by 1.1.0. Opening format-1 data with
//! `max_format` 2 migrates it: every conversation gets an index file (written atomically)
//! and an empty receipts log, and only then is `FORMAT` replaced, so a crash during the
//! migration leaves format 1 data that the next start migrates again.

use std::fs;
use std::path::{Path, PathBuf};

use im_common::fsutil::{atomic_write, create_dir_durable, sync_dir};
use im_common::io_err;
use im_common::recordlog::RecordLog;

use crate::StoreError;

pub const FORMAT_FILE: &str = "FORMAT";
pub const CONVERSATIONS_DIR: &str = "conversations";
/// The newest format implemented.
pub const LATEST_FORMAT: u32 = 2;

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The format the directory now has.
    pub format: u32,
    /// The directory was empty and has been initialised.
    pub initialized: bool,
    pub migrations: Vec<Migration>,
}

/// One migration step that [`prepare`] performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub from: u32,
    pub to: u32,
    pub conversations: usize,
    pub messages: u64,
    /// Bytes of torn records cut off while scanning the logs.
    pub truncated_bytes: u64,
}

impl std::fmt::Display for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migrated data from format {} to format {}: {} conversations, {} messages indexed, \
             read-receipt logs added",
            self.from, self.to, self.conversations, self.messages
        )?;
        if self.truncated_bytes > 0 {
            write!(
                f,
                ", {} bytes of torn records cut off",
                self.truncated_bytes
            )?;
        }
        Ok(())
    }
}

/// Makes `dir` ready for a program that understands formats up to `max_format`:
/// initialises an empty directory, migrates older data, refuses newer data.
pub fn prepare(dir: &Path, max_format: u32) -> Result<Prepared, StoreError> {
    create_dir_durable(dir)?;
    let format = match read_format(dir)? {
        Some(f) => f,
        None => {
            if dir.join(CONVERSATIONS_DIR).exists() {
                return Err(StoreError::NoFormatFile {
                    dir: dir.to_path_buf(),
                });
            }
            create_dir_durable(&dir.join(CONVERSATIONS_DIR))?;
            write_format(dir, max_format)?;
            return Ok(Prepared {
                format: max_format,
                initialized: true,
                migrations: Vec::new(),
            });
        }
    };
    if format > max_format {
        return Err(StoreError::TooNew {
            dir: dir.to_path_buf(),
            found: format,
            max: max_format,
        });
    }
    create_dir_durable(&dir.join(CONVERSATIONS_DIR))?;
    let mut migrations = Vec::new();
    let mut current = format;
    while current < max_format {
        match current {
            1 => migrations.push(migrate_1_to_2(dir)?),
            _ => {
                return Err(StoreError::BadFormatFile {
                    path: dir.join(FORMAT_FILE),
                    content: current.to_string(),
                })
            }
        }
        current += 1;
    }
    Ok(Prepared {
        format: current,
        initialized: false,
        migrations,
    })
}

/// The format recorded in `dir`, `None` when there is no `FORMAT` file.
pub fn read_format(dir: &Path) -> Result<Option<u32>, StoreError> {
    let path = dir.join(FORMAT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e).into()),
    };
    match text.trim().parse::<u32>() {
        Ok(f) if f >= 1 => Ok(Some(f)),
        _ => Err(StoreError::BadFormatFile {
            path,
            content: text.trim().chars().take(40).collect(),
        }),
    }
}

pub fn write_format(dir: &Path, format: u32) -> Result<(), StoreError> {
    atomic_write(&dir.join(FORMAT_FILE), format!("{format}\n").as_bytes())?;
    Ok(())
}

/// Conversation ids with a `.log` file, sorted.
pub fn conversation_ids(dir: &Path) -> Result<Vec<String>, StoreError> {
    let conv_dir = dir.join(CONVERSATIONS_DIR);
    let mut ids = Vec::new();
    for entry in fs::read_dir(&conv_dir).map_err(io_err("list", &conv_dir))? {
        let name = entry.map_err(io_err("list", &conv_dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".log") {
            if valid_id(id) {
                ids.push(id.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(CONVERSATIONS_DIR).join(format!("{id}.log"))
}

pub fn index_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(CONVERSATIONS_DIR).join(format!("{id}.idx"))
}

pub fn receipts_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(CONVERSATIONS_DIR).join(format!("{id}.read"))
}

/// Conversation ids are file names: 1 to 128 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Encodes message positions as an index file.
pub fn encode_index(positions: &[u64]) -> Vec<u8> {
    positions.iter().flat_map(|p| p.to_le_bytes()).collect()
}

/// Decodes an index file; a torn last entry is ignored.
pub fn decode_index(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

/// Format 1 -> 2: index every conversation and add its receipts log, then record format 2.
pub fn migrate_1_to_2(dir: &Path) -> Result<Migration, StoreError> {
    let ids = conversation_ids(dir)?;
    let mut messages = 0;
    let mut truncated_bytes = 0;
    for id in &ids {
        let mut positions = Vec::new();
        let (log, recovery) = RecordLog::open(&log_path(dir, id), 0, |pos, _| positions.push(pos))?;
        drop(log);
        messages += recovery.records;
        truncated_bytes += recovery.truncated_bytes;
        atomic_write(&index_path(dir, id), &encode_index(&positions))?;
        // Creates the empty receipts log (and fsyncs the directory entry).
        RecordLog::open(&receipts_path(dir, id), 0, |_, _| {})?;
    }
    sync_dir(&dir.join(CONVERSATIONS_DIR))?;
    write_format(dir, 2)?;
    Ok(Migration {
        from: 1,
        to: 2,
        conversations: ids.len(),
        messages,
        truncated_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(dir: &Path, id: &str, payloads: &[&str]) {
        let (mut log, _) = RecordLog::open(&log_path(dir, id), 0, |_, _| {}).unwrap();
        for p in payloads {
            log.append(p.as_bytes()).unwrap();
        }
    }

    #[test]
    fn empty_dir_is_initialised_with_the_max_format() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let p = prepare(&dir, 1).unwrap();
        assert_eq!((p.format, p.initialized), (1, true));
        assert_eq!(fs::read_to_string(dir.join("FORMAT")).unwrap(), "1\n");
        let p = prepare(&dir, 1).unwrap();
        assert_eq!((p.format, p.initialized, p.migrations.len()), (1, false, 0));
    }

    #[test]
    fn format_1_is_migrated_to_2_with_index_and_receipts_log() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        prepare(dir, 1).unwrap();
        append(
            dir,
            "dm.alice.bob",
            &[r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#],
        );
        append(dir, "_users", &[r#"{"u":1}"#]);
        // A torn record at the end of one log, as left by a crash.
        let mut bytes = fs::read(log_path(dir, "_users")).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1]);
        fs::write(log_path(dir, "_users"), bytes).unwrap();

        let p = prepare(dir, 2).unwrap();
        assert_eq!(p.format, 2);
        assert_eq!(
            p.migrations,
            vec![Migration {
                from: 1,
                to: 2,
                conversations: 2,
                messages: 4,
                truncated_bytes: 5
            }]
        );
        assert_eq!(
            p.migrations[0].to_string(),
            "migrated data from format 1 to format 2: 2 conversations, 4 messages indexed, \
             read-receipt logs added, 5 bytes of torn records cut off"
        );
        assert_eq!(fs::read_to_string(dir.join("FORMAT")).unwrap(), "2\n");
        assert_eq!(
            decode_index(&fs::read(index_path(dir, "dm.alice.bob")).unwrap()),
            vec![0, 15, 30]
        );
        assert_eq!(
            fs::metadata(receipts_path(dir, "dm.alice.bob"))
                .unwrap()
                .len(),
            0
        );
        // Nothing left over from the atomic writes.
        let mut names: Vec<_> = fs::read_dir(dir.join(CONVERSATIONS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "_users.idx",
                "_users.log",
                "_users.read",
                "dm.alice.bob.idx",
                "dm.alice.bob.log",
                "dm.alice.bob.read"
            ]
        );
        // Already migrated: nothing more to do.
        assert_eq!(prepare(dir, 2).unwrap().migrations, vec![]);
    }

    #[test]
    fn interrupted_migration_is_redone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        prepare(dir, 1).unwrap();
        append(dir, "c", &["x", "y"]);
        // A crash after the index was written but before FORMAT changed.
        fs::write(index_path(dir, "c"), [1, 2, 3]).unwrap();
        let p = prepare(dir, 2).unwrap();
        assert_eq!(p.migrations[0].messages, 2);
        assert_eq!(
            decode_index(&fs::read(index_path(dir, "c")).unwrap()),
            vec![0, 9]
        );
    }

    #[test]
    fn newer_data_is_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        prepare(dir, 2).unwrap();
        append(dir, "c", &["x"]);
        let err = prepare(dir, 1).unwrap_err();
        assert!(err.is_too_new());
        assert_eq!(
            err.to_string(),
            format!(
                "data in {} has format 2, this version understands format 1 only",
                dir.display()
            )
        );
        assert_eq!(fs::read_to_string(dir.join("FORMAT")).unwrap(), "2\n");
    }

    #[test]
    fn unknown_or_missing_format_files_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir(dir.join(CONVERSATIONS_DIR)).unwrap();
        let err = prepare(dir, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` holds conversations but no `FORMAT` file; it is not an im-store data directory",
                dir.display()
            )
        );
        fs::write(dir.join(FORMAT_FILE), "two\n").unwrap();
        let err = prepare(dir, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` does not hold a known format number: `two`",
                dir.join("FORMAT").display()
            )
        );
    }

    #[test]
    fn ids_are_file_names() {
        for ok in ["dm.alice.bob", "_users", "a", "A-b_c.9"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(129)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
