//! A file writer that overlaps writing and flushing with the caller's work.
//!
//! The caller (reading and hashing on one core) hands 1 MiB chunks to a thread that writes
//! them while a third flushes to disk behind it every 16 MiB; the end fsyncs. On a 2-core machine the
//! hash, the copy and the flush run side by side instead of one after another, and the
//! final fsync has little left to do. Memory stays bounded: at most a few chunks in flight.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 8;
const FLUSH_EVERY: u64 = 16 << 20;

pub struct PipeWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    handle: Option<JoinHandle<io::Result<File>>>,
}

impl PipeWriter {
    pub fn new(file: File) -> PipeWriter {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let handle = std::thread::spawn(move || -> io::Result<File> {
            let mut file = file;
            // A third thread flushes behind the writer through a second handle to the same
            // file, so neither the writer nor the caller ever waits for the disk mid-stream.
            let (flush_tx, flush_rx) = sync_channel::<()>(1);
            let flusher = file.try_clone().ok().map(|clone| {
                std::thread::spawn(move || -> io::Result<()> {
                    for () in flush_rx {
                        clone.sync_data()?;
                    }
                    Ok(())
                })
            });
            let mut unflushed = 0u64;
            for chunk in rx {
                file.write_all(&chunk)?;
                unflushed += chunk.len() as u64;
                if unflushed >= FLUSH_EVERY {
                    // Skip the request if the flusher is still busy with the last one.
                    let _ = flush_tx.try_send(());
                    unflushed = 0;
                }
            }
            drop(flush_tx);
            if let Some(f) = flusher {
                f.join()
                    .map_err(|_| io::Error::other("the flusher thread panicked"))??;
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
