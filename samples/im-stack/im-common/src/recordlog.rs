//! An append-only file of records, each `[length u32 LE][crc32 u32 LE][payload]`.
//!
//! Every append is written with one `write` at the end of the file and fsync'd before
//! [`RecordLog::append`] returns, so an acknowledged record survives a crash. A crash
//! during an append can leave a torn last record: [`RecordLog::open`] scans the file,
//! keeps every record whose length and checksum are intact and truncates the rest.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{fsutil, io_err, Error, Result};

/// Largest payload accepted, so that a damaged length field cannot make us allocate gigabytes.
pub const MAX_RECORD: usize = 16 << 20;
const HEADER: u64 = 8;

/// What [`RecordLog::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Intact records read from the scan start.
    pub records: u64,
    /// Bytes cut off the end (a torn or damaged last record).
    pub truncated_bytes: u64,
}

#[derive(Debug)]
pub struct RecordLog {
    path: PathBuf,
    file: File,
    len: u64,
    poisoned: bool,
}

impl RecordLog {
    /// Opens the log at `path`, creating it if missing, and scans it from byte `start`
    /// (a record boundary, 0 for the whole file), calling `visit(position, payload)` for
    /// each intact record in order. Everything after the last intact record is truncated.
    pub fn open(
        path: &Path,
        start: u64,
        mut visit: impl FnMut(u64, &[u8]),
    ) -> Result<(Self, Recovery)> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err("open", path))?;
        if !existed {
            if let Some(dir) = path.parent() {
                fsutil::sync_dir(dir)?;
            }
        }
        let file_len = file.metadata().map_err(io_err("stat", path))?.len();
        if start > file_len {
            return Err(Error::DamagedRecord {
                path: path.to_path_buf(),
                pos: start,
                len: 0,
            });
        }
        let mut reader = BufReader::new(FileReaderAt {
            file: &file,
            pos: start,
        });
        let mut pos = start;
        let mut records = 0;
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; HEADER as usize];
            match read_full(&mut reader, &mut header).map_err(io_err("read", path))? {
                0 => break,
                n if n < header.len() => break,
                _ => {}
            }
            let (len, crc) = split_header(&header);
            if len > MAX_RECORD {
                break;
            }
            payload.resize(len, 0);
            if read_full(&mut reader, &mut payload).map_err(io_err("read", path))? < len {
                break;
            }
            if crc32(&payload) != crc {
                break;
            }
            visit(pos, &payload);
            records += 1;
            pos += HEADER + len as u64;
        }
        let truncated_bytes = file_len - pos;
        if truncated_bytes > 0 {
            file.set_len(pos).map_err(io_err("truncate", path))?;
            file.sync_all().map_err(io_err("fsync", path))?;
        }
        Ok((
            RecordLog {
                path: path.to_path_buf(),
                file,
                len: pos,
                poisoned: false,
            },
            Recovery {
                records,
                truncated_bytes,
            },
        ))
    }

    /// Appends one record and fsyncs it; returns its position.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
            });
        }
        let buf = encode_record(payload)?;
        let pos = self.len;
        let written = self
            .file
            .write_all_at(&buf, pos)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Cut the partial record off so later appends do not land behind garbage.
            if self
                .file
                .set_len(pos)
                .and_then(|()| self.file.sync_all())
                .is_err()
            {
                self.poisoned = true;
            }
            return Err(Error::Io {
                action: "append to",
                path: self.path.clone(),
                source,
            });
        }
        self.len += buf.len() as u64;
        Ok(pos)
    }

    /// Reads the record at `pos` (a position returned by `append` or `open`).
    pub fn read_at(&self, pos: u64) -> Result<Vec<u8>> {
        let damaged = |len| Error::DamagedRecord {
            path: self.path.clone(),
            pos,
            len,
        };
        if pos + HEADER > self.len {
            return Err(damaged(0));
        }
        let mut header = [0u8; HEADER as usize];
        self.file
            .read_exact_at(&mut header, pos)
            .map_err(io_err("read", &self.path))?;
        let (len, crc) = split_header(&header);
        if len > MAX_RECORD || pos + HEADER + len as u64 > self.len {
            return Err(damaged(len as u64));
        }
        let mut payload = vec![0u8; len];
        self.file
            .read_exact_at(&mut payload, pos + HEADER)
            .map_err(io_err("read", &self.path))?;
        if crc32(&payload) != crc {
            return Err(damaged(len as u64));
        }
        Ok(payload)
    }

    /// Position just after the record at `pos`, if an intact record is there.
    pub fn next_position(&self, pos: u64) -> Result<u64> {
        let payload = self.read_at(pos)?;
        Ok(pos + HEADER + payload.len() as u64)
    }

    /// Length of the log in bytes (the position of the next append).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One record as it is stored: header and payload. Used by `append` and to build a
/// whole log in memory for an atomic rewrite (compaction).
pub fn encode_record(payload: &[u8]) -> Result<Vec<u8>> {
    if payload.len() > MAX_RECORD {
        return Err(Error::RecordTooLarge {
            len: payload.len(),
            max: MAX_RECORD,
        });
    }
    let mut buf = Vec::with_capacity(payload.len() + HEADER as usize);
    // MAX_RECORD fits in u32, checked above.
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    Ok(buf)
}

/// Whether an intact record starts at `pos` of the file at `path`, checked read-only
/// (used to validate an index before trusting it as a scan start).
pub fn record_intact_at(path: &Path, pos: u64) -> Result<bool> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let file_len = file.metadata().map_err(io_err("stat", path))?.len();
    if pos + HEADER > file_len {
        return Ok(false);
    }
    let mut header = [0u8; HEADER as usize];
    file.read_exact_at(&mut header, pos)
        .map_err(io_err("read", path))?;
    let (len, crc) = split_header(&header);
    if len > MAX_RECORD || pos + HEADER + len as u64 > file_len {
        return Ok(false);
    }
    let mut payload = vec![0u8; len];
    file.read_exact_at(&mut payload, pos + HEADER)
        .map_err(io_err("read", path))?;
    Ok(crc32(&payload) == crc)
}

fn split_header(header: &[u8; HEADER as usize]) -> (usize, u32) {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    (len, crc)
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Sequential reads from a position without moving the file's cursor.
struct FileReaderAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for FileReaderAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// CRC-32 (IEEE 802.3, as used by zlib and PNG).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn collect(path: &Path, start: u64) -> (RecordLog, Recovery, Vec<(u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let (log, rec) =
            RecordLog::open(path, start, |pos, p| seen.push((pos, p.to_vec()))).unwrap();
        (log, rec, seen)
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn appended_records_are_read_back_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let (mut log, rec, seen) = collect(&path, 0);
        assert_eq!((rec, seen.len()), (Recovery::default(), 0));
        let p0 = log.append(b"first").unwrap();
        let p1 = log.append(b"").unwrap();
        let p2 = log.append(b"third").unwrap();
        assert_eq!((p0, p1, p2), (0, 13, 21));
        assert_eq!(log.read_at(p2).unwrap(), b"third");
        drop(log);
        let (log, rec, seen) = collect(&path, 0);
        assert_eq!(rec.records, 3);
        assert_eq!(seen[2], (21, b"third".to_vec()));
        assert_eq!(log.len(), 34);
        let (_, _, tail) = collect(&path, 13);
        assert_eq!(tail.len(), 2);
    }

    #[test]
    fn torn_last_record_is_truncated_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let (mut log, _, _) = collect(&path, 0);
        log.append(b"kept").unwrap();
        log.append(b"torn record").unwrap();
        drop(log);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() - 3]).unwrap();

        let (mut log, rec, seen) = collect(&path, 0);
        assert_eq!(
            rec,
            Recovery {
                records: 1,
                truncated_bytes: 16
            }
        );
        assert_eq!(seen, vec![(0, b"kept".to_vec())]);
        assert_eq!(fs::metadata(&path).unwrap().len(), 12);
        assert_eq!(log.append(b"next").unwrap(), 12);
        drop(log);
        let (_, rec, _) = collect(&path, 0);
        assert_eq!(
            rec,
            Recovery {
                records: 2,
                truncated_bytes: 0
            }
        );
    }

    #[test]
    fn checksum_mismatch_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let (mut log, _, _) = collect(&path, 0);
        log.append(b"one").unwrap();
        let p = log.append(b"two").unwrap();
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (log, rec, _) = collect(&path, 0);
        assert_eq!(
            rec,
            Recovery {
                records: 1,
                truncated_bytes: 11
            }
        );
        let err = log.read_at(p).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "record of 0 bytes at byte 11 of `{}` is damaged",
                path.display()
            )
        );
    }

    #[test]
    fn record_intact_at_checks_without_changing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let (mut log, _) = RecordLog::open(&path, 0, |_, _| {}).unwrap();
        log.append(b"abc").unwrap();
        assert!(record_intact_at(&path, 0).unwrap());
        assert!(!record_intact_at(&path, 1).unwrap());
        assert!(!record_intact_at(&path, 11).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().len(), 11);
    }

    #[test]
    fn oversized_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = RecordLog::open(&dir.path().join("a.log"), 0, |_, _| {}).unwrap();
        let err = log.append(&vec![0u8; MAX_RECORD + 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "record of 16777217 bytes is larger than the limit of 16777216 bytes"
        );
    }
}
