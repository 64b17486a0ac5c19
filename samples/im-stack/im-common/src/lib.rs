//! Code shared by the programs of the im-stack sample.
//!
//! - [`server`]: a small HTTP/JSON server over `tiny_http` with worker threads, one log
//!   line per request and a clean stop on SIGTERM/SIGINT ([`server::Shutdown`]).
//! - [`cli`]: exit codes and error output of the programs.
//! - [`client`]: a tiny HTTP/1.1 client over `std::net::TcpStream` (plain http only),
//!   used for the calls between the services and by the probe.
//! - [`recordlog`]: an append-only file of length-prefixed, CRC-32-checked records,
//!   fsync'd on every append; opening it recovers from a torn last record.
//! - [`fsutil`]: atomic file replacement (temp file, fsync, rename, fsync directory).
//! - [`process`]: the programs as child processes, for integration tests.
//! - [`settings`]: command-line flags with environment fallbacks.
//! - [`log`]: timestamped log lines on stdout.

pub mod cli;
pub mod client;
pub mod fsutil;
pub mod log;
pub mod process;
pub mod recordlog;
pub mod server;
pub mod settings;

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("record log `{path}` is unusable after a failed append; restart the program")]
    Poisoned { path: PathBuf },
    #[error("record of {len} bytes at byte {pos} of `{path}` is damaged")]
    DamagedRecord { path: PathBuf, pos: u64, len: u64 },
    #[error("record of {len} bytes is larger than the limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("invalid url `{url}`: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("request `{method} {url}` failed")]
    Request {
        method: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed response to `{method} {url}`: {reason}")]
    Response {
        method: String,
        url: String,
        reason: String,
    },
    #[error("cannot listen on `{addr}`: {reason}")]
    Listen { addr: String, reason: String },
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("setting `{name}` is required")]
    Missing { name: String },
    #[error("setting `{name}` has invalid value `{value}`: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats an error and its sources as one line: `outer: inner: innermost`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

/// Attaches a path and an action to an I/O error.
pub fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
