//! Streaming blob writes: hash while writing, verify, fsync, rename into place.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use appmodel_model::Digest;
use sha2::{Digest as _, Sha256};

use crate::atomic::sync_dir;
use crate::pipe::PipeWriter;
use crate::{io_err, Result, Store, StoreError};

/// Copy buffer: large enough that syscalls do not dominate, small enough to stay flat.
const CHUNK: usize = 1 << 20;

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A blob being written. Nothing is visible in the store until [`BlobWriter::commit`]; a
/// writer dropped without commit removes its temp file.
pub struct BlobWriter {
    file: Option<PipeWriter>,
    tmp: PathBuf,
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
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        let task = match self.total {
            Some(t) if t < crate::progress::MIN_BYTES => None,
            t => crate::progress::task(&self.what, t),
        };
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::ReadFailed {
                        what: self.what.clone(),
                        source: e,
                    })
                }
            };
            self.write_all(&buf[..n])
                .map_err(io_err("write", &self.tmp.clone()))?;
            total += n as u64;
            if let Some(t) = &task {
                t.advance(n as u64);
            }
        }
        Ok(total)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies the digest, fsyncs and moves the blob into place.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        // Everything written and fsync'd before the digest decides.
        if let Some(pipe) = self.file.take() {
            if let Err(e) = pipe.finish() {
                let _ = fs::remove_file(&self.tmp);
                return Err(io_err("write", &self.tmp)(e));
            }
        }
        let digest = Digest::from_sha256(&std::mem::take(&mut self.hasher).finalize());
        if let Some(expected) = &self.expected {
            if expected != &digest {
                let _ = fs::remove_file(&self.tmp);
                return Err(StoreError::DigestMismatch {
                    what: self.what.clone(),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }

        let dest = self.blobs.join(digest.hex());
        if dest.exists() {
            let _ = fs::remove_file(&self.tmp);
        } else {
            // Read-only: blobs are immutable, and exports may hard-link them.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&self.tmp, fs::Permissions::from_mode(0o444))
                    .map_err(io_err("protect", &self.tmp))?;
            }
            fs::rename(&self.tmp, &dest).map_err(io_err("rename into", &dest))?;
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
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256(&self.hasher.finalize()), self.size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
