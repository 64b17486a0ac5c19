//! The site side: verify an offline bundle, then import it into the site's state.
//!
//! - [`site`]: the state directory (`/var/lib/appmodel` by default): store, imported
//!   bundles, pinned trust keys, one lock;
//! - [`import`]: reading a bundle (directory, mounted disc, or tar) entry by entry and
//!   checking every byte against its manifest before anything becomes visible.
//!
//! Install, upgrade and rollback per target build on the imported versions.

pub mod import;
pub mod site;

use std::path::PathBuf;

use appmodel_model::Digest;
use appmodel_store::StoreError;

pub use import::{import, ImportReport};
pub use site::Site;

/// Errors of the site side.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {action} `{}`", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not an appmodel bundle: {reason}", .path.display())]
    NotABundle { path: PathBuf, reason: String },
    #[error("bundle.json is invalid: {0}")]
    BadManifest(String),
    #[error("bundle format {found} is newer than this appmodel understands ({supported}); use the appmodel shipped in the bundle")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("bundle entry `{path}` is refused: {reason}")]
    UnsafeEntry { path: String, reason: String },
    #[error("`{path}` is in the bundle but not listed in bundle.json")]
    UnlistedFile { path: String },
    #[error("`{path}` is listed in bundle.json but missing from the bundle")]
    MissingFile { path: String },
    #[error("`{path}` appears twice in the bundle")]
    DuplicateEntry { path: String },
    #[error("`{path}` is {actual} bytes, bundle.json says {expected}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("`{path}` does not match bundle.json: expected sha256 `{expected}`, got `{actual}`")]
    DigestMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("this delta bundle builds on {app} {base}, whose blobs this site does not hold ({missing} missing); import the full {base} bundle first")]
    MissingBase {
        app: String,
        base: String,
        missing: usize,
    },
    #[error("record.json is for {found}, bundle.json for {expected}")]
    RecordMismatch { expected: String, found: String },
    #[error(
        "the bundle is unsigned, but this site trusts only signed bundles (pinned keys: {keys})"
    )]
    Unsigned { keys: String },
    #[error("not a usable public key: {0}")]
    BadKey(String),
    #[error("the bundle's signature is not valid: {0}")]
    BadSignature(String),
}

impl ImportError {
    /// A problem with the bundle or the request, as opposed to the site's own machine.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            ImportError::Io { .. } | ImportError::Store(StoreError::Io { .. })
        )
    }
}

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_path_buf();
    move |source| ImportError::Io {
        action,
        path,
        source,
    }
}
