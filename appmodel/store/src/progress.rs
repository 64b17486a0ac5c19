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
