//! Progress of long byte streams (pulls, hashing, copies), reported to whoever listens.
//!
//! Libraries call [`task`] around a stream and [`Task::advance`] as bytes pass; the CLI
//! installs a reporter that draws progress bars when stderr is a terminal. Without a
//! reporter (tests, scripts, no TTY) this costs nothing.

use std::sync::OnceLock;

/// Draws or records progress.
pub trait Reporter: Send + Sync {
    fn begin(&self, label: &str, total: Option<u64>) -> Box<dyn Task>;
}

/// One stream in progress; dropping it ends it.
pub trait Task {
    fn advance(&self, bytes: u64);
}

static REPORTER: OnceLock<Box<dyn Reporter>> = OnceLock::new();

/// Installs the process-wide reporter (once; later calls are ignored).
pub fn set_reporter(reporter: Box<dyn Reporter>) {
    let _ = REPORTER.set(reporter);
}

/// Starts a task if a reporter is installed.
pub fn task(label: &str, total: Option<u64>) -> Option<Box<dyn Task>> {
    REPORTER.get().map(|r| r.begin(label, total))
}

/// Streams below this size are not worth a progress bar.
pub const MIN_BYTES: u64 = 8 << 20;

/// A task for a stream of `total` bytes, or none when it is known to be too small to be
/// worth a bar.
pub fn sized_task(label: &str, total: Option<u64>) -> Option<Box<dyn Task>> {
    match total {
        Some(t) if t < MIN_BYTES => None,
        t => task(label, t),
    }
}

/// A reader that reports the bytes read to a task (if any).
pub struct Reading<R> {
    inner: R,
    task: Option<Box<dyn Task>>,
}

impl<R> Reading<R> {
    pub fn new(inner: R, task: Option<Box<dyn Task>>) -> Self {
        Reading { inner, task }
    }
}

impl<R: std::io::Read> std::io::Read for Reading<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(t) = &self.task {
            t.advance(n as u64);
        }
        Ok(n)
    }
}
