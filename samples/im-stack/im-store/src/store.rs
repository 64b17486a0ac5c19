//! Conversations on disk: one append-only record log per conversation, offsets dense from 0.
//!
//! Every append is fsync'd before it returns. Opening the store recovers each log (a torn
//! last record is cut off). With format 2 each conversation also has an offset index,
//! which lets a start skip scanning what it already indexed, and a read-receipts log.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use im_common::fsutil::atomic_write;
use im_common::recordlog::{self, RecordLog};
use im_common::{io_err, now_millis};
use serde::{Deserialize, Serialize};

use crate::format::{self, Prepared};
use crate::StoreError;

/// Longest sender name and body accepted.
pub const MAX_FROM: usize = 128;
pub const MAX_BODY: usize = 64 * 1024;

/// A message as returned by reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub offset: u64,
    pub from: String,
    pub body: String,
    pub ts: u64,
}

/// A message as stored: the offset is its record number.
#[derive(Serialize, Deserialize)]
struct Stored {
    from: String,
    body: String,
    ts: u64,
}

#[derive(Serialize, Deserialize)]
struct Receipt {
    user: String,
    offset: u64,
}

/// What opening the store found and did, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub prepared: Prepared,
    pub conversations: usize,
    pub messages: u64,
    /// Bytes of torn records cut off the ends of logs.
    pub truncated_bytes: u64,
    /// Conversations whose index had to be repaired or rebuilt (format 2).
    pub reindexed: usize,
}

struct Conversation {
    id: String,
    log: RecordLog,
    positions: Vec<u64>,
    index: Option<File>,
    receipts: Option<(RecordLog, BTreeMap<String, u64>)>,
}

pub struct Store {
    dir: PathBuf,
    format: u32,
    conversations: Mutex<HashMap<String, Arc<Mutex<Conversation>>>>,
}

impl Store {
    /// Prepares `dir` for `max_format` (initialise, migrate or refuse, see [`format`](mod@crate::format)) and
    /// opens every conversation, recovering torn records.
    pub fn open(dir: &Path, max_format: u32) -> Result<(Store, OpenReport), StoreError> {
        let prepared = format::prepare(dir, max_format)?;
        let format = prepared.format;
        let mut report = OpenReport {
            prepared,
            conversations: 0,
            messages: 0,
            truncated_bytes: 0,
            reindexed: 0,
        };
        let mut conversations = HashMap::new();
        for id in format::conversation_ids(dir)? {
            let (conv, truncated, reindexed) = Conversation::open(dir, &id, format)?;
            report.conversations += 1;
            report.messages += conv.positions.len() as u64;
            report.truncated_bytes += truncated;
            report.reindexed += usize::from(reindexed);
            conversations.insert(id, Arc::new(Mutex::new(conv)));
        }
        let store = Store {
            dir: dir.to_path_buf(),
            format,
            conversations: Mutex::new(conversations),
        };
        Ok((store, report))
    }

    pub fn format(&self) -> u32 {
        self.format
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a message durably and returns its offset.
    pub fn append(&self, id: &str, from: &str, body: &str) -> Result<u64, StoreError> {
        if from.is_empty() || from.len() > MAX_FROM {
            return Err(StoreError::Invalid {
                field: "from",
                reason: format!("must have 1 to {MAX_FROM} bytes"),
            });
        }
        if body.len() > MAX_BODY {
            return Err(StoreError::Invalid {
                field: "body",
                reason: format!("must have at most {MAX_BODY} bytes"),
            });
        }
        let conv = self
            .conversation(id, true)?
            .ok_or_else(|| StoreError::BadId { id: id.into() })?;
        let mut conv = lock(&conv);
        let record = serde_json::to_vec(&Stored {
            from: from.to_string(),
            body: body.to_string(),
            ts: now_millis(),
        })
        .map_err(|e| StoreError::Invalid {
            field: "body",
            reason: e.to_string(),
        })?;
        let pos = conv.log.append(&record)?;
        let offset = conv.positions.len() as u64;
        conv.positions.push(pos);
        if let Some(index) = &conv.index {
            // The index is derived from the log and repaired on open, so it is not fsync'd
            // here, and a failed write only costs a rescan at the next start.
            let _ = index.write_all_at(&pos.to_le_bytes(), offset * 8);
        }
        Ok(offset)
    }

    /// Up to `limit` messages starting at offset `from`.
    pub fn read(&self, id: &str, from: u64, limit: u64) -> Result<Vec<Message>, StoreError> {
        let Some(conv) = self.conversation(id, false)? else {
            return Ok(Vec::new());
        };
        let conv = lock(&conv);
        let len = conv.positions.len() as u64;
        let start = from.min(len);
        let end = from.saturating_add(limit).min(len);
        let mut out = Vec::with_capacity((end - start) as usize);
        for offset in start..end {
            let payload = conv.log.read_at(conv.positions[offset as usize])?;
            let stored: Stored =
                serde_json::from_slice(&payload).map_err(|source| StoreError::BadRecord {
                    id: conv.id.clone(),
                    offset,
                    source,
                })?;
            out.push(Message {
                offset,
                from: stored.from,
                body: stored.body,
                ts: stored.ts,
            });
        }
        Ok(out)
    }

    /// Number of messages in a conversation.
    pub fn len(&self, id: &str) -> Result<u64, StoreError> {
        Ok(match self.conversation(id, false)? {
            Some(conv) => lock(&conv).positions.len() as u64,
            None => 0,
        })
    }

    /// Records that `user` has read the conversation up to `offset` (format 2). Receipts
    /// only move forward; returns the user's receipt after the call.
    pub fn mark_read(&self, id: &str, user: &str, offset: u64) -> Result<u64, StoreError> {
        self.require_receipts()?;
        if user.is_empty() || user.len() > MAX_FROM {
            return Err(StoreError::Invalid {
                field: "user",
                reason: format!("must have 1 to {MAX_FROM} bytes"),
            });
        }
        if !format::valid_id(id) {
            return Err(StoreError::BadId { id: id.into() });
        }
        let conv = self.conversation(id, false)?;
        let Some(conv) = conv else {
            return Err(StoreError::OffsetPastEnd {
                id: id.into(),
                offset,
                len: 0,
            });
        };
        let mut conv = lock(&conv);
        let len = conv.positions.len() as u64;
        if offset >= len {
            return Err(StoreError::OffsetPastEnd {
                id: id.into(),
                offset,
                len,
            });
        }
        let (log, map) = conv
            .receipts
            .as_mut()
            .ok_or(StoreError::NoReceipts { format: 1 })?;
        if let Some(&current) = map.get(user) {
            if current >= offset {
                return Ok(current);
            }
        }
        let record = serde_json::to_vec(&Receipt {
            user: user.to_string(),
            offset,
        })
        .map_err(|e| StoreError::Invalid {
            field: "user",
            reason: e.to_string(),
        })?;
        log.append(&record)?;
        map.insert(user.to_string(), offset);
        Ok(offset)
    }

    /// Each user's read receipt in a conversation (format 2).
    pub fn receipts(&self, id: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        self.require_receipts()?;
        Ok(match self.conversation(id, false)? {
            Some(conv) => lock(&conv)
                .receipts
                .as_ref()
                .map(|(_, m)| m.clone())
                .unwrap_or_default(),
            None => BTreeMap::new(),
        })
    }

    fn require_receipts(&self) -> Result<(), StoreError> {
        if self.format < 2 {
            return Err(StoreError::NoReceipts {
                format: self.format,
            });
        }
        Ok(())
    }

    /// The conversation `id`, created (empty) when `create` is set.
    fn conversation(
        &self,
        id: &str,
        create: bool,
    ) -> Result<Option<Arc<Mutex<Conversation>>>, StoreError> {
        if !format::valid_id(id) {
            return Err(StoreError::BadId { id: id.into() });
        }
        let mut all = lock(&self.conversations);
        if let Some(c) = all.get(id) {
            return Ok(Some(Arc::clone(c)));
        }
        if !create {
            return Ok(None);
        }
        let (conv, _, _) = Conversation::open(&self.dir, id, self.format)?;
        let conv = Arc::new(Mutex::new(conv));
        all.insert(id.to_string(), Arc::clone(&conv));
        Ok(Some(conv))
    }
}

impl Conversation {
    /// Opens (or creates) conversation `id`; returns it, the bytes cut off its logs and
    /// whether its index had to be rewritten.
    fn open(dir: &Path, id: &str, format: u32) -> Result<(Conversation, u64, bool), StoreError> {
        let log_path = format::log_path(dir, id);
        let mut truncated = 0;
        let mut reindexed = false;
        let (log, positions, index) = if format >= 2 {
            let index_path = format::index_path(dir, id);
            let on_disk = match fs::read(&index_path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_err("read", &index_path)(e).into()),
            };
            let mut positions = format::decode_index(&on_disk);
            if !index_plausible(&log_path, &positions)? {
                positions.clear();
            }
            // Scan from the last indexed message: it is checked again, and any message
            // appended after the index was last written is picked up.
            let resume = positions.pop().unwrap_or(0);
            let (log, recovery) = RecordLog::open(&log_path, resume, |pos, _| positions.push(pos))?;
            truncated += recovery.truncated_bytes;
            let encoded = format::encode_index(&positions);
            if encoded != on_disk {
                atomic_write(&index_path, &encoded)?;
                reindexed = true;
            }
            let index = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&index_path)
                .map_err(io_err("open", &index_path))?;
            (log, positions, Some(index))
        } else {
            let mut positions = Vec::new();
            let (log, recovery) = RecordLog::open(&log_path, 0, |pos, _| positions.push(pos))?;
            truncated += recovery.truncated_bytes;
            (log, positions, None)
        };
        let receipts = if format >= 2 {
            let mut map = BTreeMap::new();
            let (rlog, recovery) =
                RecordLog::open(&format::receipts_path(dir, id), 0, |_, payload| {
                    if let Ok(r) = serde_json::from_slice::<Receipt>(payload) {
                        let e = map.entry(r.user).or_insert(r.offset);
                        *e = (*e).max(r.offset);
                    }
                })?;
            truncated += recovery.truncated_bytes;
            Some((rlog, map))
        } else {
            None
        };
        let conv = Conversation {
            id: id.to_string(),
            log,
            positions,
            index,
            receipts,
        };
        Ok((conv, truncated, reindexed))
    }
}

/// An index is trusted as a scan start only if it starts at 0, strictly increases and its
/// last entry points at an intact record.
fn index_plausible(log_path: &Path, positions: &[u64]) -> Result<bool, StoreError> {
    let Some(&last) = positions.last() else {
        return Ok(true);
    };
    if positions[0] != 0 || positions.windows(2).any(|w| w[0] >= w[1]) {
        return Ok(false);
    }
    if !log_path.exists() {
        return Ok(false);
    }
    Ok(recordlog::record_intact_at(log_path, last)?)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data consistent (an append either
    // completed or was rolled back), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(store: &Store, id: &str) -> Vec<String> {
        store
            .read(id, 0, 1000)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    #[test]
    fn appends_get_dense_offsets_per_conversation_and_survive_reopen() {
        for format in [1, 2] {
            let tmp = tempfile::tempdir().unwrap();
            let (store, report) = Store::open(tmp.path(), format).unwrap();
            assert!(report.prepared.initialized);
            assert_eq!(store.append("a", "alice", "one").unwrap(), 0);
            assert_eq!(store.append("a", "bob", "two").unwrap(), 1);
            assert_eq!(store.append("b", "bob", "other").unwrap(), 0);
            assert_eq!(store.append("a", "alice", "three").unwrap(), 2);
            let page = store.read("a", 1, 1).unwrap();
            assert_eq!(
                (page.len(), page[0].offset, page[0].from.as_str()),
                (1, 1, "bob")
            );
            assert!(store.read("a", 9, 10).unwrap().is_empty());
            assert!(store.read("missing", 0, 10).unwrap().is_empty());
            drop(store);

            let (store, report) = Store::open(tmp.path(), format).unwrap();
            assert_eq!(
                (report.conversations, report.messages, report.reindexed),
                (2, 4, 0)
            );
            assert_eq!(bodies(&store, "a"), ["one", "two", "three"]);
            assert_eq!(store.append("a", "bob", "four").unwrap(), 3);
        }
    }

    #[test]
    fn torn_append_is_cut_off_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), 2).unwrap();
        store.append("c", "alice", "kept").unwrap();
        drop(store);
        let log = format::log_path(tmp.path(), "c");
        let mut bytes = fs::read(&log).unwrap();
        bytes.extend_from_slice(&[40, 0, 0, 0, 0, 0, 0, 0, b'{']);
        fs::write(&log, bytes).unwrap();
        let (store, report) = Store::open(tmp.path(), 2).unwrap();
        assert_eq!((report.messages, report.truncated_bytes), (1, 9));
        assert_eq!(store.append("c", "bob", "next").unwrap(), 1);
        assert_eq!(bodies(&store, "c"), ["kept", "next"]);
    }

    #[test]
    fn stale_or_damaged_index_is_repaired() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), 2).unwrap();
        for i in 0..5 {
            store.append("c", "alice", &format!("m{i}")).unwrap();
        }
        drop(store);
        let idx = format::index_path(tmp.path(), "c");
        let full = fs::read(&idx).unwrap();
        // Index behind the log (its last writes were lost).
        fs::write(&idx, &full[..16]).unwrap();
        let (store, report) = Store::open(tmp.path(), 2).unwrap();
        assert_eq!((report.messages, report.reindexed), (5, 1));
        assert_eq!(fs::read(&idx).unwrap(), full);
        drop(store);
        // Garbage index.
        fs::write(&idx, [0u8; 24]).unwrap();
        let (store, report) = Store::open(tmp.path(), 2).unwrap();
        assert_eq!((report.messages, report.reindexed), (5, 1));
        assert_eq!(bodies(&store, "c"), ["m0", "m1", "m2", "m3", "m4"]);
        assert_eq!(fs::read(&idx).unwrap(), full);
    }

    #[test]
    fn receipts_move_forward_and_are_durable() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), 2).unwrap();
        for body in ["a", "b", "c", "d"] {
            store.append("c", "alice", body).unwrap();
        }
        assert_eq!(store.mark_read("c", "bob", 2).unwrap(), 2);
        assert_eq!(store.mark_read("c", "bob", 1).unwrap(), 2);
        assert_eq!(store.mark_read("c", "alice", 3).unwrap(), 3);
        let err = store.mark_read("c", "bob", 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "offset 4 is past the end of conversation `c`, which has 4 messages"
        );
        drop(store);
        let (store, _) = Store::open(tmp.path(), 2).unwrap();
        let r = store.receipts("c").unwrap();
        assert_eq!(
            r,
            BTreeMap::from([("alice".to_string(), 3), ("bob".to_string(), 2)])
        );
        assert!(store.receipts("none").unwrap().is_empty());
    }

    #[test]
    fn format_1_has_no_receipts() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), 1).unwrap();
        store.append("c", "alice", "a").unwrap();
        let err = store.mark_read("c", "bob", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "read receipts need data format 2 (im-store 1.1.0); this data directory has format 1"
        );
    }

    #[test]
    fn data_written_by_format_1_reads_the_same_after_migration() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), 1).unwrap();
        let before: Vec<_> = (0..20)
            .map(|i| {
                store
                    .append(&format!("c{}", i % 3), "alice", &format!("m{i}"))
                    .unwrap()
            })
            .collect();
        assert_eq!(before.len(), 20);
        let snapshot: Vec<_> = (0..3)
            .map(|c| store.read(&format!("c{c}"), 0, 100).unwrap())
            .collect();
        drop(store);
        let (store, report) = Store::open(tmp.path(), 2).unwrap();
        assert_eq!(report.prepared.migrations.len(), 1);
        assert_eq!(report.reindexed, 0);
        for (c, msgs) in snapshot.iter().enumerate() {
            assert_eq!(&store.read(&format!("c{c}"), 0, 100).unwrap(), msgs);
        }
        assert_eq!(store.append("c0", "bob", "after").unwrap(), 7);
        store.mark_read("c0", "bob", 7).unwrap();
    }

    #[test]
    fn invalid_input_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), 2).unwrap();
        assert!(matches!(
            store.append("../x", "a", "b"),
            Err(StoreError::BadId { .. })
        ));
        assert!(matches!(
            store.append("c", "", "b"),
            Err(StoreError::Invalid { field: "from", .. })
        ));
        let big = "x".repeat(MAX_BODY + 1);
        assert!(matches!(
            store.append("c", "a", &big),
            Err(StoreError::Invalid { field: "body", .. })
        ));
    }
}
