//! Streaming helpers shared by publish, export and import: a copy in large pieces, and a
//! reader that hashes what passes through it.

use std::io::{self, Read, Write};

use appmodel_model::Digest;
use sha2::{Digest as _, Sha256};

/// Copy buffer: large enough that syscalls do not dominate, small enough to stay flat.
const CHUNK: usize = 1 << 20;

/// Which side of a [`copy_stream`] failed, so each caller can name the right file.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Streams `reader` into `out` in 1 MiB pieces (`io::copy` uses 8 KiB between trait
/// objects) and returns the byte count. Memory stays at one buffer whatever the size.
pub fn copy_stream(reader: &mut dyn Read, out: &mut dyn Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
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

    /// The sha256 and size of everything read.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails on the first read, or yields `left` bytes of 7.
    struct Source {
        left: usize,
        fail: bool,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail {
                return Err(io::Error::other("disc unreadable"));
            }
            let n = self.left.min(buf.len()).min(1000);
            buf[..n].fill(7);
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn copies_hashes_and_names_the_failing_side() {
        let len = 3 * CHUNK + 5;
        let mut r = HashingReader::new(Source {
            left: len,
            fail: false,
        });
        let mut out = Vec::new();
        assert_eq!(copy_stream(&mut r, &mut out).unwrap(), len as u64);
        assert_eq!(out, vec![7u8; len]);
        let (digest, size) = r.finish();
        assert_eq!(size, len as u64);
        assert_eq!(digest, Digest::from_sha256(&Sha256::digest(&out)));

        let mut bad = Source {
            left: 1,
            fail: true,
        };
        assert!(matches!(
            copy_stream(&mut bad, &mut Vec::new()),
            Err(CopyError::Read(e)) if e.to_string() == "disc unreadable"
        ));
        let mut full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut ok = Source {
            left: 10,
            fail: false,
        };
        assert!(matches!(
            copy_stream(&mut ok, &mut full),
            Err(CopyError::Write(_))
        ));
    }
}
