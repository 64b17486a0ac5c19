//! Streaming blob writes: hash while writing, verify, fsync, rename into place.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use appmodel_model::Digest;
use sha2::{Digest as _, Sha256};

use crate::atomic::sync_dir;
use crate::pipe::PipeWriter;
use crate::stream::{copy_stream, CopyError};
use crate::{io_err, Result, Store, StoreError};

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A blob being written. Nothing is visible in the store until [`BlobWriter::commit`]; a
/// writer dropped without commit removes its temp file.
pub struct BlobWriter {
    file: Option<PipeWriter>,
    tmp: PathBuf,
    /// The temp file became the blob.
    renamed: bool,
    hasher: Sha256,
    size: u64,
    expected: Option<Digest>,
    what: String,
    blobs: PathBuf,
    total: Option<u64>,
}

impl BlobWriter {
    pub(crate) fn new(store: &Store, what: &str, expected: Option<Digest>) -> Result<BlobWriter> {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = store
            .root()
            .join("tmp")
            .join(format!("blob-{}-{n}", std::process::id()));
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        Ok(BlobWriter {
            file: Some(PipeWriter::new(file)),
            tmp,
            renamed: false,
            hasher: Sha256::new(),
            size: 0,
            expected,
            what: what.to_string(),
            blobs: store.root().join("blobs/sha256"),
            total: None,
        })
    }

    /// The expected size, for progress reporting.
    pub fn with_total(mut self, total: Option<u64>) -> Self {
        self.total = total;
        self
    }

    /// Streams everything from `reader` into the blob.
    pub fn copy_from(&mut self, reader: &mut dyn Read) -> Result<u64> {
        let task = crate::progress::sized_task(&self.what, self.total);
        let mut reader = crate::progress::Reading::new(reader, task);
        copy_stream(&mut reader, self).map_err(|e| match e {
            CopyError::Read(source) => StoreError::ReadFailed {
                what: self.what.clone(),
                source,
            },
            CopyError::Write(e) => io_err("write", &self.tmp)(e),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies the digest, fsyncs and moves the blob into place.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        // Everything written and fsync'd before the digest decides.
        if let Some(pipe) = self.file.take() {
            pipe.finish().map_err(io_err("write", &self.tmp))?;
        }
        let digest = Digest::from_sha256(&std::mem::take(&mut self.hasher).finalize());
        if let Some(expected) = &self.expected {
            if expected != &digest {
                return Err(StoreError::DigestMismatch {
                    what: self.what.clone(),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }

        let dest = self.blobs.join(digest.hex());
        if !dest.exists() {
            // Read-only: blobs are immutable, and exports may hard-link them.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&self.tmp, fs::Permissions::from_mode(0o444))
                    .map_err(io_err("protect", &self.tmp))?;
            }
            fs::rename(&self.tmp, &dest).map_err(io_err("rename into", &dest))?;
            self.renamed = true;
            sync_dir(&self.blobs)?;
        }
        Ok((digest, self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    /// Whatever ended the write (dropped, a failed commit, a blob already there), the temp
    /// file goes unless it became the blob.
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
