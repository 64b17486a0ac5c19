//! im-store: a durable message store over HTTP.
//!
//! - [`format`](mod@crate::format): the data directory's `FORMAT` file, initialisation, the migration from
//!   format 1 to format 2, and the refusal of data newer than the program understands.
//!   Both formats are implemented here; the program picks the newest it may write with
//!   [`MAX_FORMAT`], so tests can exercise 1.0.0 and 1.1.0 behaviour in one build.
//! - [`store`]: conversations as append-only record logs (one per conversation), offsets,
//!   reads, and (format 2) an offset index and a read-receipts log per conversation.
//! - [`api`]: the HTTP/JSON routes over a [`store::Store`].
//!
//! The binary (`main.rs`) reads settings, opens the store and serves [`api::StoreApi`].

pub mod api;
pub mod format;
pub mod store;

use std::path::PathBuf;

/// The program's version: 1.1.0 with the `v1_1` feature, 1.0.0 without.
pub const VERSION: &str = if cfg!(feature = "v1_1") {
    "1.1.0"
} else {
    "1.0.0"
};

/// The newest data format this build understands and writes.
pub const MAX_FORMAT: u32 = if cfg!(feature = "v1_1") { 2 } else { 1 };

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Common(#[from] im_common::Error),
    #[error("data in {dir} has format {found}, this version understands format {max} only")]
    TooNew { dir: PathBuf, found: u32, max: u32 },
    #[error("`{path}` does not hold a known format number: `{content}`")]
    BadFormatFile { path: PathBuf, content: String },
    #[error(
        "`{dir}` holds conversations but no `FORMAT` file; it is not an im-store data directory"
    )]
    NoFormatFile { dir: PathBuf },
    #[error("conversation id `{id}` is invalid: use 1 to 128 characters of A-Z a-z 0-9 . _ - not starting with `.`")]
    BadId { id: String },
    #[error("message at offset {offset} of conversation `{id}` is not valid JSON")]
    BadRecord {
        id: String,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("offset {offset} is past the end of conversation `{id}`, which has {len} messages")]
    OffsetPastEnd { id: String, offset: u64, len: u64 },
    #[error("read receipts need data format 2 (im-store 1.1.0); this data directory has format {format}")]
    NoReceipts { format: u32 },
    #[error("field `{field}` {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// Whether the store refused the data because it is newer than this program.
impl StoreError {
    pub fn is_too_new(&self) -> bool {
        matches!(self, StoreError::TooNew { .. })
    }
}
