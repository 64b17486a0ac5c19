//! Keys and signatures for appmodel bundles, in the [minisign] format.
//!
//! A bundle's manifest is signed at the publisher and verified at the air-gapped site. The
//! files this crate writes and reads are byte-compatible with the stock `minisign` tool
//! (Debian package `minisign`), so a site can also check a bundle without appmodel:
//!
//! ```text
//! minisign -Vm manifest.json -p publisher.pub -x manifest.json.minisig
//! ```
//!
//! # API
//!
//! - [`KeyPair::generate`] makes a key pair; [`KeyPair::write`] writes `NAME.key` (secret,
//!   mode 0600, optionally password-protected) and `NAME.pub` (public), never overwriting.
//! - [`SecretKey::load`], [`PublicKey::load`], [`PublicKey::from_text`] read them back
//!   (also keys made by `minisign -G`, with or without `-W`).
//! - [`sign`] streams the data and returns a [`Signature`]; [`Signature::to_text`] is the
//!   `.minisig` file content.
//! - [`verify`] streams the data, checks a `.minisig` text against one trusted
//!   [`PublicKey`] and returns the [`Verified`] trusted comment and key id.
//! - Key and signature files may come from anyone: `load` reads only regular files of at most
//!   64 KiB, never blocking on a FIFO (`appmodel_model::input`), and the parsers cap every line
//!   (comments at minisign's buffer sizes, base64 lines at their exact length) before decoding.
//!   `fuzz/` fuzzes them (docs/fuzzing.md).
//! - Every failure is a [`SignError`] whose message says what to do (wrong key names both
//!   key ids, a changed file says so, malformed key files name the file).
//!
//! # File formats (all base64 is standard base64 with padding, every line ends in `\n`)
//!
//! ```text
//! public key   untrusted comment: minisign public key <KEYID> (<comment>)
//!              base64( "Ed" | keynum[8] | ed25519 public key[32] )
//!
//! secret key   untrusted comment: minisign encrypted secret key <KEYID> (<comment>)
//!              base64( "Ed" | kdf "Sc" or 00 00 | "B2" | salt[32] | opslimit u64le | memlimit u64le
//!                      | ( keynum[8] | seed[32] | public key[32] | checksum[32] ) xor scrypt stream )
//!              checksum = BLAKE2b-256("Ed" | keynum | seed | public key);
//!              unencrypted (`minisign -W` style): kdf 00 00, salt and limits zero, no xor;
//!              `minisign -G -W` leaves the checksum zero, which is accepted on loading
//!
//! signature    untrusted comment: signature from appmodel secret key <KEYID>
//!              base64( "ED" | keynum[8] | ed25519 signature of BLAKE2b-512(data)[64] )
//!              trusted comment: <trusted comment>
//!              base64( ed25519 signature of (the 64 signature bytes | trusted comment) )
//! ```
//!
//! The key id (`<KEYID>`) is the keynum read as a little-endian u64, printed in upper-case hex
//! without leading zeros: what `minisign` prints (`%PRIX64`). Encrypted secret keys use minisign's scrypt parameters
//! (opslimit 2^25, memlimit 1 GiB, i.e. N = 2^20, r = 8, p = 1; about 1 GiB of memory and a few
//! seconds to load). Only prehashed (`ED`) signatures are accepted; minisign's legacy `Ed`
//! signatures (`minisign -S -l`) are refused, since they cannot be checked while streaming.
//!
//! # Why the format is implemented here
//!
//! The format is small (above), and the `minisign` crate prompts on the terminal when a
//! password is missing, needs `Read + Seek` to verify, reports errors as strings and carries
//! its own Ed25519 code. This crate instead builds on the RustCrypto/dalek primitives:
//! `ed25519-dalek` (signatures, checked with `verify_strict`, which like libsodium rejects
//! small-order keys and non-canonical signatures), `blake2` (prehash and key checksum) and
//! `scrypt` (key encryption); all pure Rust, no C library, so the appmodel binary still links
//! statically. Compatibility is tested against the real `minisign` tool in both directions
//! (see `src/interop_tests.rs`).
//!
//! [minisign]: https://jedisct1.github.io/minisign/

mod key;
mod message;
mod signature;

#[cfg(test)]
mod interop_tests;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use appmodel_model::input::{self, InputError, Links};
use blake2::{Blake2b512, Digest};

pub use key::{KeyPair, PublicKey, SecretKey};
pub use message::MESSAGE_SIGNATURE_LEN;
pub use signature::{sign, verify, Signature, Verified};

/// Errors of key handling, signing and verification.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key file could not be read, created or written.
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file was refused or could not be read: missing, not a regular file (a FIFO, a
    /// device), larger than a key file can be, or not text.
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: InputError,
    },
    /// The data given to [`sign`] or [`verify`] could not be read.
    #[error("cannot read the data to {purpose}")]
    ReadData {
        purpose: &'static str,
        #[source]
        source: io::Error,
    },
    /// [`KeyPair::write`] found a file where it would write a key.
    #[error("key file `{path}` already exists: move it away or choose another path (key files are never overwritten)")]
    KeyExists { path: PathBuf },
    /// A key file or key text is not a minisign key of the expected kind.
    #[error("{origin} is not a minisign {kind} key: {reason}")]
    MalformedKey {
        /// The file (in backticks) or "the given public key text".
        origin: String,
        /// `public` or `secret`.
        kind: &'static str,
        reason: String,
    },
    /// A signature text is not in the minisign format.
    #[error("signature is not a minisign signature: {reason}")]
    MalformedSignature { reason: String },
    /// A minisign legacy (not prehashed) signature.
    #[error("signature uses minisign's legacy format (algorithm `Ed`, not prehashed), which is not accepted: sign again without `minisign -l`")]
    LegacySignature,
    /// The signature was made with another key than the trusted one.
    #[error("signature was made with key `{signed_with}`, not the trusted key `{trusted}`")]
    WrongKey {
        signed_with: String,
        trusted: String,
    },
    /// The data does not match the signature.
    #[error("signature does not match: the signed file was changed after signing")]
    BadSignature { key_id: String },
    /// The trusted comment does not match its signature.
    #[error(
        "trusted comment does not match its signature: the signature file was edited after signing"
    )]
    BadTrustedComment { key_id: String },
    /// An encrypted secret key was loaded without a password.
    #[error("secret key `{path}` is encrypted: a password is needed to use it")]
    PasswordRequired { path: PathBuf },
    /// The password does not decrypt the secret key.
    #[error("wrong password for secret key `{path}`")]
    WrongPassword { path: PathBuf },
    /// A comment that minisign could not store or read back.
    #[error("{what} must be one line of at most {max} bytes, without NUL, CR or LF characters")]
    InvalidComment { what: &'static str, max: usize },
    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system")]
    Random(#[source] getrandom::Error),
}

/// The result type of this crate.
pub type Result<T, E = SignError> = std::result::Result<T, E>;

/// Length of a keynum, the random key identifier stored in keys and signatures.
const KEYNUM_LEN: usize = 8;

/// The key id as minisign prints it: the keynum as a little-endian u64 in upper-case hex,
/// without leading zeros (minisign's `%PRIX64`), so ours and minisign's `.pub` comment agree.
fn key_id_hex(keynum: &[u8; KEYNUM_LEN]) -> String {
    format!("{:X}", u64::from_le_bytes(*keynum))
}

/// BLAKE2b-512 of everything `data` yields: the message that prehashed (`ED`) signatures sign.
fn prehash(data: &mut dyn Read, purpose: &'static str) -> Result<[u8; 64]> {
    let mut hasher = Blake2b512::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(SignError::ReadData { purpose, source }),
        }
    }
    Ok(hasher.finalize().into())
}

/// Longest key or signature file (and text) this crate reads: far more than any minisign
/// file (a signature is at most about 9 KiB), so a hostile file cannot make it allocate much.
const MAX_FILE: u64 = input::cap::SIGNATURE;

/// Reads a key file that may come from anyone: without blocking on a FIFO, only a regular file
/// (a link to one is fine: the path is the user's), at most [`MAX_FILE`] bytes.
fn read_key_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    input::read_regular(path, MAX_FILE, Links::Follow)
        .map(zeroize::Zeroizing::new)
        .map_err(|source| SignError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Checks that a comment fits on one minisign line of `max` bytes.
fn check_comment(comment: &str, what: &'static str, max: usize) -> Result<()> {
    if comment.len() > max || comment.contains(['\0', '\r', '\n']) {
        return Err(SignError::InvalidComment { what, max });
    }
    Ok(())
}
