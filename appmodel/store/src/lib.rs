//! The local app market: a content-addressed blob store and immutable version records.
//!
//! Layout (an OCI image layout, so `skopeo`/`umoci` can read the images in it directly):
//!
//! ```text
//! STORE/oci-layout                     {"imageLayoutVersion": "1.0.0"}
//! STORE/index.json                     every published image manifest, with ref names
//! STORE/blobs/sha256/<hex>             each blob once, shared by all apps and versions
//! STORE/records/<app>/<version>.json   immutable version records (written last)
//! STORE/tmp/                           blobs being written; stale files removed under the lock
//! STORE/lock                           one writer at a time
//! ```
//!
//! A blob is written to `tmp/`, hashed while it streams, fsync'd and renamed into place, so a
//! blob whose bytes do not match its digest never becomes visible. A version's record is
//! written after all its blobs, atomically: readers see a version whole or not at all.

mod atomic;
mod blob;
mod index;
pub mod pipe;
pub mod progress;
mod stream;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use appmodel_model::record::VersionRecord;
use appmodel_model::Digest;

pub use atomic::{sync_dir, write_atomic, write_atomic_mode, write_synced, write_synced_mode};
pub use blob::BlobWriter;
pub use stream::{copy_stream, CopyError, HashingReader};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("content of {what} does not match its digest: expected `{expected}`, got `{actual}`")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} is {actual} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("version {version} of `{app}` is already published with different content: {}", .differences.join("; "))]
    VersionExists {
        app: String,
        version: String,
        differences: Vec<String>,
    },
    #[error("version record `{path}` is unreadable")]
    CorruptRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob `{0}` is not in the store")]
    MissingBlob(Digest),
    #[error("cannot read {what}")]
    ReadFailed {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// A store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Held while writing; dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// What `put_record` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The same content was published before; nothing changed.
    Unchanged,
}

/// What `gc` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub blobs_kept: u64,
}

impl Store {
    /// Where the store lives when no `--store` is given: `$APPMODEL_STORE`, else
    /// `$XDG_DATA_HOME/appmodel/store`, else `~/.local/share/appmodel/store`.
    pub fn default_location() -> PathBuf {
        if let Some(p) = std::env::var_os("APPMODEL_STORE") {
            return PathBuf::from(p);
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("appmodel/store")
    }

    /// Opens the store at `root`, creating its layout if needed.
    pub fn open(root: &Path) -> Result<Store> {
        for dir in ["blobs/sha256", "records", "tmp"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let store = Store {
            root: root.to_path_buf(),
        };
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !root.join("index.json").exists() {
            index::write(&store, &[])?;
        }
        let lock = root.join("lock");
        if !lock.exists() {
            File::create(&lock).map_err(io_err("create", &lock))?;
        }
        Ok(store)
    }

    /// The store at `root` if there is one, creating nothing: for commands that only read
    /// (`appmodel verify` on a site).
    pub fn open_existing(root: &Path) -> Option<Store> {
        root.join("oci-layout").is_file().then(|| Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the writer lock (waits for another writer to finish), then removes temp files
    /// a killed writer left behind.
    pub fn lock(&self) -> Result<StoreLock> {
        let file = lock_file(&self.root.join("lock"))?;
        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err("read", &tmp))?.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        Ok(StoreLock { _file: file })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Every blob in the store.
    pub fn blob_digests(&self) -> Result<BTreeSet<Digest>> {
        let dir = self.root.join("blobs/sha256");
        Ok(fs::read_dir(&dir)
            .map_err(io_err("read", &dir))?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|h| Digest::from_hex(h).ok())
            })
            .collect())
    }

    /// Removes every blob not in `keep`: undoes what a failed writer added since it listed
    /// the blobs with [`Store::blob_digests`] (it holds the lock, so nobody else added any).
    pub fn remove_blobs_not_in(&self, _lock: &StoreLock, keep: &BTreeSet<Digest>) {
        for d in self.blob_digests().unwrap_or_default() {
            if !keep.contains(&d) {
                let _ = fs::remove_file(self.blob_path(&d));
            }
        }
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A writer for a new blob; `expected` makes `commit` refuse other content.
    pub fn blob_writer(
        &self,
        _lock: &StoreLock,
        what: &str,
        expected: Option<Digest>,
    ) -> Result<BlobWriter> {
        BlobWriter::new(self, what, expected)
    }

    /// Streams `reader` into a blob. `total` (the expected size, if known) only feeds
    /// progress reporting.
    pub fn put_reader(
        &self,
        lock: &StoreLock,
        what: &str,
        reader: &mut dyn Read,
        expected: Option<Digest>,
        total: Option<u64>,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = &expected {
            if self.has_blob(d) {
                let path = self.blob_path(d);
                let size = fs::metadata(&path).map_err(io_err("read", &path))?.len();
                return Ok((d.clone(), size));
            }
        }
        let mut w = self.blob_writer(lock, what, expected)?.with_total(total);
        w.copy_from(reader)?;
        w.commit()
    }

    /// Makes the file at `path`, which the caller already hashed to `digest` and synced
    /// (a volume set's kept part), the blob `digest` without reading it again: a hard link
    /// when `path` is on the store's file system, else a hashed copy. The file becomes
    /// read-only, as every blob is.
    pub fn adopt(&self, lock: &StoreLock, path: &Path, digest: &Digest) -> Result<u64> {
        let dest = self.blob_path(digest);
        if let Ok(meta) = fs::metadata(&dest) {
            return Ok(meta.len());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o444))
                .map_err(io_err("protect", path))?;
        }
        match fs::hard_link(path, &dest) {
            Ok(()) => {
                sync_dir(&self.root.join("blobs/sha256"))?;
                let meta = fs::metadata(&dest).map_err(io_err("read", &dest))?;
                Ok(meta.len())
            }
            Err(_) => {
                let mut f = File::open(path).map_err(io_err("read", path))?;
                let size = f.metadata().map(|m| m.len()).ok();
                let what = format!("`{}`", path.display());
                let (_, n) = self.put_reader(lock, &what, &mut f, Some(digest.clone()), size)?;
                Ok(n)
            }
        }
    }

    pub fn put_bytes(&self, lock: &StoreLock, what: &str, bytes: &[u8]) -> Result<(Digest, u64)> {
        self.put_reader(lock, what, &mut &bytes[..], None, None)
    }

    /// Copies a file into the store, hashing as it streams.
    pub fn put_file(&self, lock: &StoreLock, path: &Path) -> Result<(Digest, u64)> {
        let mut f = File::open(path).map_err(io_err("read", path))?;
        let size = f.metadata().map(|m| m.len()).ok();
        self.put_reader(lock, &format!("`{}`", path.display()), &mut f, None, size)
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::MissingBlob(digest.clone()),
            _ => StoreError::Io {
                action: "read",
                path,
                source: e,
            },
        })
    }

    /// Reads a small blob (a manifest or config) whole.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_err("read", &path))?;
        Ok(buf)
    }

    fn record_path(&self, app: &str, version: &str) -> PathBuf {
        self.root
            .join("records")
            .join(app)
            .join(format!("{version}.json"))
    }

    pub fn record(&self, app: &str, version: &str) -> Result<Option<VersionRecord>> {
        read_record(&self.record_path(app, version))
    }

    /// Every published version, by app, then by semantic version.
    pub fn records(&self) -> Result<Vec<VersionRecord>> {
        let dir = self.root.join("records");
        let mut out = Vec::new();
        for app in fs::read_dir(&dir).map_err(io_err("read", &dir))?.flatten() {
            let app_dir = app.path();
            for entry in fs::read_dir(&app_dir)
                .map_err(io_err("read", &app_dir))?
                .flatten()
            {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "json") {
                    if let Some(r) = read_record(&p)? {
                        out.push(r);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.app.cmp(&b.app).then_with(|| a.version.cmp(&b.version)));
        Ok(out)
    }

    /// Records a version. The blobs in `must_have` must be in the store already: all of the
    /// record's blobs for a vendor's store, those of the imported form on a site. The same
    /// content again is a no-op; different content for an existing version is refused.
    pub fn put_record<'d>(
        &self,
        _lock: &StoreLock,
        record: &VersionRecord,
        must_have: impl IntoIterator<Item = &'d Digest>,
    ) -> Result<PutOutcome> {
        for digest in must_have {
            if !self.has_blob(digest) {
                return Err(StoreError::MissingBlob(digest.clone()));
            }
        }
        if let Some(existing) = self.record(&record.app, &record.version)? {
            let differences = existing.content_differences(record);
            return if differences.is_empty() {
                Ok(PutOutcome::Unchanged)
            } else {
                Err(StoreError::VersionExists {
                    app: record.app.clone(),
                    version: record.version.to_string(),
                    differences,
                })
            };
        }
        let path = self.record_path(&record.app, &record.version);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        let json =
            serde_json::to_vec_pretty(record).map_err(|source| StoreError::CorruptRecord {
                path: path.clone(),
                source,
            })?;
        write_atomic(&path, &json)?;
        index::write(self, &self.records()?)?;
        Ok(PutOutcome::Created)
    }

    fn exported_tools_path(&self, app: &str, version: &str) -> PathBuf {
        self.root
            .join("exports")
            .join(app)
            .join(format!("{version}.tools"))
    }

    /// The appmodel executables (sha256) that exports of `app` `version` from this store
    /// shipped, so a delta on that version can leave out the same one.
    pub fn exported_tools(&self, app: &str, version: &str) -> BTreeSet<Digest> {
        let text = fs::read_to_string(self.exported_tools_path(app, version)).unwrap_or_default();
        text.lines().filter_map(|l| l.parse().ok()).collect()
    }

    /// Notes that an export of `app` `version` shipped the appmodel `tool`.
    pub fn note_exported_tool(&self, app: &str, version: &str, tool: &Digest) -> Result<()> {
        let mut tools = self.exported_tools(app, version);
        if !tools.insert(tool.clone()) {
            return Ok(());
        }
        let path = self.exported_tools_path(app, version);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        let text: String = tools.iter().map(|d| format!("{d}\n")).collect();
        write_atomic(&path, text.as_bytes())
    }

    /// Removes every blob no version references, and stale temp files.
    pub fn gc(&self, _lock: &StoreLock) -> Result<GcReport> {
        let records = self.records()?;
        let keep: BTreeSet<&Digest> = records.iter().flat_map(|r| r.blobs().into_keys()).collect();
        let dir = self.root.join("blobs/sha256");
        let mut report = GcReport::default();
        for entry in fs::read_dir(&dir).map_err(io_err("read", &dir))?.flatten() {
            let name = entry.file_name();
            let Some(digest) = name.to_str().and_then(|h| Digest::from_hex(h).ok()) else {
                continue;
            };
            if keep.contains(&digest) {
                report.blobs_kept += 1;
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).map_err(io_err("remove", &entry.path()))?;
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        index::write(self, &records)?;
        Ok(report)
    }
}

/// Opens (creating if needed) and exclusively locks `path`; waits for another holder. The
/// lock ends when the returned file is dropped, also when the process dies.
pub fn lock_file(path: &Path) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(
                "waiting for `{}`, held by {}",
                path.display(),
                lock_holder(&file).unwrap_or_else(|| "another process".into())
            );
            file.lock().map_err(io_err("lock", path))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock", path)(e)),
    }
    Ok(file)
}

/// Who holds the lock on `file`: the kernel's table of locks (`/proc/locks`) names the
/// process, `/proc/PID/cmdline` its command (the program and the subcommand only: later
/// arguments may carry passwords). Nothing is written to find out.
fn lock_holder(file: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`
        let (pid, id) = (f.get(4)?, f.get(5)?);
        let mut parts = id.split(':');
        let ma = u32::from_str_radix(parts.next()?, 16).ok()?;
        let mi = u32::from_str_radix(parts.next()?, 16).ok()?;
        let ino: u64 = parts.next()?.parse().ok()?;
        (f.get(1) == Some(&"FLOCK") && ma == major && mi == minor && ino == meta.ino())
            .then(|| pid.to_string())
    })?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .take(2)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let program = words
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string());
    Some(match program {
        Some(p) => format!(
            "process {pid} (`{p}{}`)",
            words.get(1).map(|w| format!(" {w}")).unwrap_or_default()
        ),
        None => format!("process {pid}"),
    })
}

fn read_record(path: &Path) -> Result<Option<VersionRecord>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StoreError::CorruptRecord {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use appmodel_model::record::{media, BlobRef, ComponentArtifacts, RECORD_FORMAT};

    use super::*;

    fn record(store: &Store, lock: &StoreLock, version: &str, payload: &[u8]) -> VersionRecord {
        let (digest, size) = store.put_bytes(lock, "test binary", payload).unwrap();
        let model = appmodel_model::parse_model(
            "m.yaml".into(),
            "apiVersion: appmodel/v1\napp: {name: demo, version: 1.0.0}\ncomponents:\n  - {name: a, binaries: {linux/amd64: a}}\n".into(),
        )
        .unwrap();
        let mut components = BTreeMap::new();
        components.insert(
            "a".to_string(),
            ComponentArtifacts {
                binaries: [(
                    "linux/amd64".to_string(),
                    BlobRef {
                        digest,
                        size,
                        media_type: media::BINARY.into(),
                    },
                )]
                .into(),
                ..Default::default()
            },
        );
        VersionRecord {
            format: RECORD_FORMAT,
            app: "demo".into(),
            version: appmodel_model::version::Version::parse(version).unwrap(),
            published_by: "test".into(),
            published_at: "2026-01-01T00:00:00Z".into(),
            model_file: "m.yaml".into(),
            model_text: model.text,
            model: model.model,
            components,
        }
    }

    #[test]
    fn blobs_are_content_addressed_and_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        let (a, size) = store.put_bytes(&lock, "x", b"hello").unwrap();
        let (b, _) = store.put_bytes(&lock, "x", b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(size, 5);
        assert_eq!(
            a.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(store.blob_path(&a)).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn an_adopted_file_becomes_the_blob_without_a_copy() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let lock = store.lock().unwrap();
        let kept = dir.path().join("part");
        std::fs::write(&kept, b"hello").unwrap();
        let digest = Digest::from_sha256(&<sha2::Sha256 as sha2::Digest>::digest(b"hello"));
        assert_eq!(store.adopt(&lock, &kept, &digest).unwrap(), 5);
        let blob = std::fs::metadata(store.blob_path(&digest)).unwrap();
        assert_eq!(blob.ino(), std::fs::metadata(&kept).unwrap().ino());
        assert!(blob.permissions().readonly());
        // Adopting it again (or another file with that digest) keeps the blob there.
        assert_eq!(store.adopt(&lock, &kept, &digest).unwrap(), 5);
        assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), b"hello");
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_never_becomes_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        let claimed: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        let mut w = store
            .blob_writer(&lock, "layer `x`", Some(claimed.clone()))
            .unwrap();
        w.write_all(b"not what was promised").unwrap();
        let err = w.commit().unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("content of layer `x` does not match its digest: expected `{claimed}`, got `sha256:")),
            "{text}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        let mut w = store.blob_writer(&lock, "x", None).unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn the_same_version_twice_is_a_no_op_and_different_content_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        let r1 = record(&store, &lock, "1.0.0", b"binary one");
        assert_eq!(
            store
                .put_record(&lock, &r1, r1.blobs().into_keys())
                .unwrap(),
            PutOutcome::Created
        );
        let mut again = r1.clone();
        again.published_at = "2027-01-01T00:00:00Z".into();
        assert_eq!(
            store.put_record(&lock, &again, []).unwrap(),
            PutOutcome::Unchanged
        );
        let r2 = record(&store, &lock, "1.0.0", b"binary two");
        let err = store.put_record(&lock, &r2, []).unwrap_err().to_string();
        assert!(
            err.starts_with("version 1.0.0 of `demo` is already published with different content: component `a`: binary for linux/amd64 was sha256:"),
            "{err}"
        );
        assert_eq!(store.record("demo", "1.0.0").unwrap().unwrap(), r1);
    }

    #[test]
    fn gc_removes_only_unreferenced_blobs_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        let r = record(&store, &lock, "1.0.0", b"kept");
        store.put_record(&lock, &r, r.blobs().into_keys()).unwrap();
        store.put_bytes(&lock, "orphan", b"twelve bytes").unwrap();
        let report = store.gc(&lock).unwrap();
        assert_eq!(
            report,
            GcReport {
                blobs_removed: 1,
                bytes_freed: 12,
                blobs_kept: 1
            }
        );
        assert_eq!(store.gc(&lock).unwrap().blobs_removed, 0);
    }

    #[test]
    fn records_sort_by_semantic_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lock = store.lock().unwrap();
        for v in ["1.10.0", "1.2.0", "1.9.1"] {
            let r = record(&store, &lock, v, v.as_bytes());
            store.put_record(&lock, &r, r.blobs().into_keys()).unwrap();
        }
        let versions: Vec<String> = store
            .records()
            .unwrap()
            .into_iter()
            .map(|r| r.version.to_string())
            .collect();
        assert_eq!(versions, ["1.2.0", "1.9.1", "1.10.0"]);
    }
}
