//! A file writer that overlaps writing and flushing with the caller's work.
//!
//! The caller (reading and hashing on one core) hands 1 MiB chunks to a thread that writes
//! them and, every 16 MiB, asks the kernel to start writing that range to disk without
//! waiting for it (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux); the end fsyncs. So
//! the disk works while the data streams and the final fsync has little left to do, and no
//! thread waits for the disk mid-stream. Measured here on 1 GiB: write-behind + one fsync
//! 0.45-0.55 s, an fdatasync every 16 MiB 0.69-2.1 s, a single fsync at the end 0.9-3.0 s
//! (BENCHMARKS.md). Memory stays bounded: at most a few chunks in flight.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 8;
const WRITE_BEHIND: u64 = 16 << 20;

/// Sees every byte the writer thread writes, in order, before it is written.
pub type Tap = Box<dyn FnMut(&[u8]) + Send>;

pub struct PipeWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    handle: Option<JoinHandle<io::Result<File>>>,
}

impl PipeWriter {
    pub fn new(file: File) -> PipeWriter {
        PipeWriter::at(file, 0, None)
    }

    /// Writes from `offset` of `file` on (leaving the rest of it as it is), handing each
    /// chunk to `tap` on the writer thread first: a second hash of the stream costs the
    /// caller's core nothing.
    pub fn at(file: File, offset: u64, tap: Option<Tap>) -> PipeWriter {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let handle = std::thread::spawn(move || -> io::Result<File> {
            let mut file = file;
            let mut tap = tap;
            if offset > 0 {
                file.seek(SeekFrom::Start(offset))?;
            }
            let mut written = offset;
            let mut started = offset;
            for chunk in rx {
                if let Some(tap) = tap.as_mut() {
                    tap(&chunk);
                }
                file.write_all(&chunk)?;
                written += chunk.len() as u64;
                if written - started >= WRITE_BEHIND {
                    start_writeback(&file, started, written - started);
                    started = written;
                }
            }
            file.sync_all()?;
            Ok(file)
        });
        PipeWriter {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
            handle: Some(handle),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(chunk).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer stopped: its own error says why.
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the writer thread stopped")))
        }
    }

    fn join(&mut self) -> io::Result<File> {
        self.tx.take();
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| io::Error::other("the writer thread panicked"))?,
            None => Err(io::Error::other("the writer was already finished")),
        }
    }

    /// Writes what is left, waits for the writer, and fsyncs. Returns the file.
    pub fn finish(mut self) -> io::Result<File> {
        self.send()?;
        self.join()
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk, without waiting. Only
/// a hint: durability comes from the fsync at the end, so a failure here is ignored.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the whole call; the call reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = PipeWriter::new(File::create(&p).unwrap());
        let data: Vec<u8> = (0..(3 * CHUNK + 12345)).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap();
        let mut back = Vec::new();
        File::open(&p).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn writes_at_an_offset_and_taps_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 10]).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tap_seen = seen.clone();
        let tap: Tap = Box::new(move |b| tap_seen.lock().unwrap().extend_from_slice(b));
        let file = File::options().write(true).open(&p).unwrap();
        let mut w = PipeWriter::at(file, 4, Some(tap));
        let data: Vec<u8> = (0..(2 * CHUNK + 3)).map(|i| (i % 13) as u8).collect();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        let back = std::fs::read(&p).unwrap();
        assert_eq!(&back[..4], &[7u8; 4]);
        assert_eq!(&back[4..], &data[..]);
        assert_eq!(*seen.lock().unwrap(), data);
    }

    #[test]
    fn a_write_error_reaches_the_caller() {
        // /dev/full fails every write with ENOSPC.
        let Ok(full) = File::options().write(true).open("/dev/full") else {
            return;
        };
        let mut w = PipeWriter::new(full);
        let chunk = vec![0u8; CHUNK];
        let mut failed = false;
        for _ in 0..16 {
            if w.write_all(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed || w.finish().is_err());
    }
}
