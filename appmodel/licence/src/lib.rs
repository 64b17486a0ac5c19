//! Licences for appmodel apps: signed by the vendor, bound to one host, checked offline.
//!
//! The flow (docs/licence.md): the site's appmodel prints a [`SiteCode`] (an install id and
//! keyed hashes of host identifiers, [`host`]); the vendor signs a [`Licence`] for it with
//! the key whose public half is in the app model ([`file`]); the site activates it; from then
//! on every check evaluates the licence against the host, the model's policy and a guarded
//! clock ([`clock`]) into a [`Standing`] on the ladder valid → warn → grace → stopped
//! ([`standing`]).
//!
//! This crate decides; it does not stop services. The importer acts on a [`Standing`].
//! Every input (licence file, site code, clock record) may come from anyone: sizes are
//! capped before decoding, signatures are checked before a payload is parsed, and every
//! failure is a [`LicenceError`] that says which file or field is wrong.

pub mod clock;
pub mod file;
pub mod gate;
pub mod host;
pub mod standing;

pub use clock::{Clock, ClockReading};
pub use file::{issue, Binding, Licence, LicenceTerms};
pub use host::{HostIds, Match, SiteCode};
pub use standing::{evaluate, Inputs, Stage, Standing};

use std::path::PathBuf;

/// One day in seconds.
pub const DAY: u64 = 86_400;

/// Errors of reading, issuing and checking licences.
#[derive(Debug, thiserror::Error)]
pub enum LicenceError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: appmodel_model::input::InputError,
    },
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A licence file that is not one, or whose signature does not hold.
    #[error("`{origin}` is not a valid licence: {reason}")]
    BadLicence { origin: String, reason: String },
    /// A gate file (the host's decision, read inside a container) that is not one.
    #[error("`{path}` is not a licence gate file: {reason}")]
    BadGate { path: PathBuf, reason: String },
    /// A site code or request that is not one.
    #[error("{origin} is not a valid site code: {reason}")]
    BadSiteCode { origin: String, reason: String },
    /// Issuing was asked for something the model does not sell.
    #[error("cannot issue: {0}")]
    Issue(String),
    #[error(transparent)]
    Store(#[from] appmodel_store::StoreError),
    #[error("cannot get random bytes from the operating system")]
    Random(#[source] getrandom::Error),
}

pub type Result<T, E = LicenceError> = std::result::Result<T, E>;

/// BLAKE2b-512 of length-framed parts (no part can run into the next): the keyed hashes of
/// host identifiers and the clock record's MAC. BLAKE2 has no length extension, so a secret
/// first part makes it a MAC.
pub(crate) fn framed_hash(parts: &[&[u8]]) -> [u8; 64] {
    use blake2::{Blake2b512, Digest};
    let mut h = Blake2b512::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || !text
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Seconds since the epoch, now (0 if the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
