//! Key pairs and the minisign key files: generation, writing, loading, secret key encryption.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use blake2::{Blake2b256, Digest};
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::{check_comment, key_id_hex, read_key_file, Result, SignError, KEYNUM_LEN, MAX_FILE};

/// Signature algorithm of keys: Ed25519.
const SIG_ALG: [u8; 2] = *b"Ed";
/// Key derivation of encrypted secret keys: scrypt.
const KDF_SCRYPT: [u8; 2] = *b"Sc";
/// Key derivation of unencrypted secret keys (`minisign -W`): none.
const KDF_NONE: [u8; 2] = [0, 0];
/// Checksum of secret keys: BLAKE2b-256.
const CHK_BLAKE2B: [u8; 2] = *b"B2";

pub(crate) const UNTRUSTED_PREFIX: &str = "untrusted comment: ";

/// "Ed" | keynum | public key.
const PUBLIC_KEY_LEN: usize = 2 + KEYNUM_LEN + 32;
const SALT_LEN: usize = 32;
/// keynum | seed | public key | checksum: the part that is encrypted.
const KEYNUM_SK_LEN: usize = KEYNUM_LEN + 64 + 32;
/// sig alg | kdf alg | chk alg | salt | opslimit | memlimit | keynum_sk.
const SECRET_KEY_LEN: usize = 2 + 2 + 2 + SALT_LEN + 8 + 8 + KEYNUM_SK_LEN;
/// Length of a decoded signature line ("ED" | keynum | signature), for error hints.
const SIGNATURE_LINE_LEN: usize = 2 + KEYNUM_LEN + 64;

/// Longest key comment: the decorated comment line must fit minisign's 1024-byte line buffer.
const KEY_COMMENT_MAX: usize = 900;

/// The scrypt limits stored in an encrypted secret key (libsodium's `opslimit`/`memlimit`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KdfLimits {
    pub(crate) opslimit: u64,
    pub(crate) memlimit: u64,
}

impl KdfLimits {
    /// What `minisign -G` writes (libsodium's "sensitive" limits): N = 2^20, r = 8, p = 1.
    pub(crate) const MINISIGN: KdfLimits = KdfLimits {
        opslimit: 33_554_432,
        memlimit: 1_073_741_824,
    };

    /// The scrypt parameters libsodium derives from these limits (`pickparams`), or `None`
    /// for limits beyond minisign's (a hostile key file could otherwise ask for any amount of
    /// memory and time).
    fn scrypt_params(self) -> Option<scrypt::Params> {
        let max = Self::MINISIGN;
        if self.opslimit > 8 * max.opslimit || self.memlimit > max.memlimit {
            return None;
        }
        let opslimit = self.opslimit.max(32_768);
        let r: u32 = 8;
        // The smallest log2(N) with N > max_n / 2.
        let log_n_for = |max_n: u64| {
            let mut log_n = 1u8;
            while log_n < 63 && (1u64 << log_n) <= max_n / 2 {
                log_n += 1;
            }
            log_n
        };
        let (log_n, p) = if opslimit < self.memlimit / 32 {
            (log_n_for(opslimit / (4 * u64::from(r))), 1)
        } else {
            let log_n = log_n_for(self.memlimit / (128 * u64::from(r)));
            let max_rp = u32::try_from(((opslimit / 4) >> log_n).min(0x3fff_ffff)).ok()?;
            (log_n, max_rp / r)
        };
        // The first PBKDF2 output is p * r * 128 bytes: bound it like the scrypt memory.
        if u64::from(p) * u64::from(r) * 128 > max.memlimit {
            return None;
        }
        scrypt::Params::new(log_n, r, p).ok()
    }

    /// The stream that encrypts (by xor) the keynum_sk part of a secret key.
    fn stream(self, password: &str, salt: &[u8]) -> Option<Zeroizing<[u8; KEYNUM_SK_LEN]>> {
        let params = self.scrypt_params()?;
        let mut stream = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
        scrypt::scrypt(password.as_bytes(), salt, &params, &mut stream[..]).ok()?;
        Some(stream)
    }
}

/// A public key: verifies signatures. Loaded from a `.pub` file or its base64 line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    keynum: [u8; KEYNUM_LEN],
    key: VerifyingKey,
}

impl PublicKey {
    /// Loads a minisign public key file (`NAME.pub`, as written by [`KeyPair::write`] or
    /// `minisign -G`).
    ///
    /// The file may come from anyone: a FIFO, a device or a file larger than 64 KiB is
    /// refused ([`SignError::Read`]) without blocking or reading it.
    pub fn load(path: impl AsRef<Path>) -> Result<PublicKey> {
        let path = path.as_ref();
        let bytes = read_key_file(path)?;
        let origin = format!("`{}`", path.display());
        let text = std::str::from_utf8(&bytes).map_err(|_| SignError::MalformedKey {
            origin: origin.clone(),
            kind: "public",
            reason: "it is not text".into(),
        })?;
        Self::parse(text, origin)
    }

    /// Parses a public key from the content of a `.pub` file (comment line and key line) or
    /// from the bare base64 key line (what `minisign -P` takes).
    pub fn from_text(text: &str) -> Result<PublicKey> {
        Self::parse(text, "the given public key text".to_owned())
    }

    fn parse(text: &str, origin: String) -> Result<PublicKey> {
        let malformed = |reason: String| SignError::MalformedKey {
            origin: origin.clone(),
            kind: "public",
            reason,
        };
        check_text_size(text).map_err(malformed)?;
        let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
        let mut line = lines
            .next()
            .ok_or_else(|| malformed("it is empty".into()))?;
        if line.starts_with("untrusted comment:") {
            line = lines
                .next()
                .ok_or_else(|| malformed("there is no key line after the comment line".into()))?;
        }
        let bytes = decode_key_line(line, PUBLIC_KEY_LEN).map_err(malformed)?;
        if bytes[..2] != SIG_ALG {
            return Err(malformed(format!(
                "its signature algorithm is `{}`, not `Ed`",
                String::from_utf8_lossy(&bytes[..2])
            )));
        }
        let mut keynum = [0u8; KEYNUM_LEN];
        keynum.copy_from_slice(&bytes[2..2 + KEYNUM_LEN]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[2 + KEYNUM_LEN..]);
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| malformed("its Ed25519 key is not a valid curve point".into()))?;
        Ok(PublicKey { keynum, key })
    }

    /// The key id as `minisign` shows it: upper-case hex, no leading zeros, e.g. `AA05B2FDA32A869C`.
    pub fn key_id(&self) -> String {
        key_id_hex(&self.keynum)
    }

    /// The base64 key line: what `minisign -Vm FILE -P BASE64` takes.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::with_capacity(PUBLIC_KEY_LEN);
        bytes.extend_from_slice(&SIG_ALG);
        bytes.extend_from_slice(&self.keynum);
        bytes.extend_from_slice(self.key.as_bytes());
        BASE64.encode(bytes)
    }

    /// The `.pub` file content: `untrusted comment: minisign public key KEYID`, then the key line.
    pub fn to_text(&self) -> String {
        self.to_text_with_comment("")
    }

    fn to_text_with_comment(&self, comment: &str) -> String {
        format!(
            "{UNTRUSTED_PREFIX}minisign public key {}{}\n{}\n",
            self.key_id(),
            decoration(comment),
            self.to_base64()
        )
    }

    pub(crate) fn keynum(&self) -> &[u8; KEYNUM_LEN] {
        &self.keynum
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A secret key: makes signatures. Its key material is wiped from memory when dropped.
#[derive(Clone)]
pub struct SecretKey {
    keynum: [u8; KEYNUM_LEN],
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// Loads a minisign secret key file (`NAME.key`, as written by [`KeyPair::write`] or
    /// `minisign -G`, with or without `-W`).
    ///
    /// An encrypted key needs its `password` (deriving the key from it takes minisign's scrypt
    /// work: about 1 GiB of memory and a few seconds); the password of an unencrypted key is
    /// ignored. Never prompts.
    ///
    /// Like [`PublicKey::load`], refuses a FIFO, a device or a file larger than 64 KiB.
    pub fn load(path: impl AsRef<Path>, password: Option<&str>) -> Result<SecretKey> {
        let path = path.as_ref();
        let bytes = read_key_file(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| SignError::MalformedKey {
            origin: format!("`{}`", path.display()),
            kind: "secret",
            reason: "it is not text".into(),
        })?;
        Self::parse(text, path, password)
    }

    fn parse(text: &str, path: &Path, password: Option<&str>) -> Result<SecretKey> {
        let malformed = |reason: String| SignError::MalformedKey {
            origin: format!("`{}`", path.display()),
            kind: "secret",
            reason,
        };
        check_text_size(text).map_err(malformed)?;
        let mut lines = text.lines();
        if !lines
            .next()
            .is_some_and(|line| line.starts_with("untrusted comment:"))
        {
            return Err(malformed(
                "its first line must be `untrusted comment: ...`".into(),
            ));
        }
        let line = lines
            .next()
            .map(str::trim)
            .ok_or_else(|| malformed("there is no key line after the comment line".into()))?;
        let bytes = decode_key_line(line, SECRET_KEY_LEN).map_err(malformed)?;
        let (sig_alg, rest) = bytes.split_at(2);
        let (kdf_alg, rest) = rest.split_at(2);
        let (chk_alg, rest) = rest.split_at(2);
        let (salt, rest) = rest.split_at(SALT_LEN);
        let (opslimit, rest) = rest.split_at(8);
        let (memlimit, sealed) = rest.split_at(8);
        if sig_alg != SIG_ALG {
            return Err(malformed(format!(
                "its signature algorithm is `{}`, not `Ed`",
                String::from_utf8_lossy(sig_alg)
            )));
        }
        if chk_alg != CHK_BLAKE2B {
            return Err(malformed(format!(
                "its checksum algorithm is `{}`, not `B2`",
                String::from_utf8_lossy(chk_alg)
            )));
        }
        let mut keynum_sk = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
        keynum_sk.copy_from_slice(sealed);
        let encrypted = match [kdf_alg[0], kdf_alg[1]] {
            KDF_NONE => false,
            KDF_SCRYPT => {
                let password = password.ok_or_else(|| SignError::PasswordRequired {
                    path: path.to_owned(),
                })?;
                let limits = KdfLimits {
                    opslimit: u64_le(opslimit),
                    memlimit: u64_le(memlimit),
                };
                let stream = limits.stream(password, salt).ok_or_else(|| {
                    malformed(format!(
                        "its scrypt limits (opslimit {}, memlimit {}) are beyond minisign's",
                        limits.opslimit, limits.memlimit
                    ))
                })?;
                for (byte, key) in keynum_sk.iter_mut().zip(stream.iter()) {
                    *byte ^= key;
                }
                true
            }
            _ => {
                return Err(malformed(format!(
                    "its key encryption `{}` is not scrypt (`Sc`) or none",
                    String::from_utf8_lossy(kdf_alg)
                )))
            }
        };
        let (keynum_bytes, rest) = keynum_sk.split_at(KEYNUM_LEN);
        let (keypair, chk) = rest.split_at(64);
        let mut keynum = [0u8; KEYNUM_LEN];
        keynum.copy_from_slice(keynum_bytes);
        let mut keypair_bytes = Zeroizing::new([0u8; 64]);
        keypair_bytes.copy_from_slice(keypair);
        // `minisign -G -W` leaves the checksum of unencrypted keys zero (minisign checks it
        // only when decrypting); `minisign -C -W` and this crate write the real one.
        let unchecked = !encrypted && chk.iter().all(|&b| b == 0);
        if !unchecked && checksum(&keynum, &keypair_bytes)[..] != *chk {
            return Err(if encrypted {
                SignError::WrongPassword {
                    path: path.to_owned(),
                }
            } else {
                malformed("its checksum does not match its content: the file is damaged".into())
            });
        }
        let key = SigningKey::from_keypair_bytes(&keypair_bytes)
            .map_err(|_| malformed("its secret and public halves do not match".into()))?;
        Ok(SecretKey { keynum, key })
    }

    /// The key id as `minisign` shows it: upper-case hex, no leading zeros.
    pub fn key_id(&self) -> String {
        key_id_hex(&self.keynum)
    }

    /// The public key of this secret key (what `minisign -R` recreates).
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            keynum: self.keynum,
            key: self.key.verifying_key(),
        }
    }

    pub(crate) fn keynum(&self) -> &[u8; KEYNUM_LEN] {
        &self.keynum
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The secret key file's content, encrypted with `password` under `limits` if given.
    fn to_text(
        &self,
        comment: &str,
        password: Option<&str>,
        limits: KdfLimits,
        path: &Path,
    ) -> Result<Zeroizing<String>> {
        let mut keynum_sk = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
        let keypair = Zeroizing::new(self.key.to_keypair_bytes());
        keynum_sk[..KEYNUM_LEN].copy_from_slice(&self.keynum);
        keynum_sk[KEYNUM_LEN..KEYNUM_LEN + 64].copy_from_slice(&keypair[..]);
        keynum_sk[KEYNUM_LEN + 64..].copy_from_slice(&checksum(&self.keynum, &keypair));

        let mut bytes = Zeroizing::new(Vec::with_capacity(SECRET_KEY_LEN));
        bytes.extend_from_slice(&SIG_ALG);
        let description = match password {
            None => {
                bytes.extend_from_slice(&KDF_NONE);
                bytes.extend_from_slice(&CHK_BLAKE2B);
                bytes.extend_from_slice(&[0u8; SALT_LEN + 8 + 8]);
                "unencrypted"
            }
            Some(password) => {
                let mut salt = [0u8; SALT_LEN];
                getrandom::fill(&mut salt).map_err(SignError::Random)?;
                let stream = limits.stream(password, &salt).ok_or_else(|| {
                    // Only reachable with limits this crate never uses.
                    SignError::MalformedKey {
                        origin: format!("`{}`", path.display()),
                        kind: "secret",
                        reason: "its scrypt limits are out of range".into(),
                    }
                })?;
                for (byte, key) in keynum_sk.iter_mut().zip(stream.iter()) {
                    *byte ^= key;
                }
                bytes.extend_from_slice(&KDF_SCRYPT);
                bytes.extend_from_slice(&CHK_BLAKE2B);
                bytes.extend_from_slice(&salt);
                bytes.extend_from_slice(&limits.opslimit.to_le_bytes());
                bytes.extend_from_slice(&limits.memlimit.to_le_bytes());
                "encrypted"
            }
        };
        bytes.extend_from_slice(&keynum_sk[..]);
        Ok(Zeroizing::new(format!(
            "{UNTRUSTED_PREFIX}minisign {description} secret key {}{}\n{}\n",
            self.key_id(),
            decoration(comment),
            BASE64.encode(&bytes[..])
        )))
    }
}

/// A new key pair with its comment.
#[derive(Clone, Debug)]
pub struct KeyPair {
    secret: SecretKey,
    comment: String,
}

impl KeyPair {
    /// Generates a key pair from the operating system's random numbers.
    ///
    /// `comment` (e.g. "ACME bundle signing 2026") goes, untrusted, into the comment lines of
    /// both key files, after the key id. It must be one line of at most 900 bytes.
    pub fn generate(comment: &str) -> Result<KeyPair> {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut keynum = [0u8; KEYNUM_LEN];
        getrandom::fill(&mut seed[..]).map_err(SignError::Random)?;
        getrandom::fill(&mut keynum).map_err(SignError::Random)?;
        Self::from_seed(&seed, keynum, comment)
    }

    /// A key pair from a given seed and keynum (deterministic: for tests).
    pub(crate) fn from_seed(
        seed: &[u8; 32],
        keynum: [u8; KEYNUM_LEN],
        comment: &str,
    ) -> Result<KeyPair> {
        check_comment(comment, "key comment", KEY_COMMENT_MAX)?;
        Ok(KeyPair {
            secret: SecretKey {
                keynum,
                key: SigningKey::from_bytes(seed),
            },
            comment: comment.to_owned(),
        })
    }

    /// The secret key, for [`sign`](crate::sign).
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }

    /// The public key, for [`verify`](crate::verify) and to hand to sites.
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Writes the secret key to `secret_path` (mode 0600) and the public key to `public_path`,
    /// in minisign's formats (by convention `NAME.key` and `NAME.pub`).
    ///
    /// With a `password`, the secret key is encrypted as `minisign -G` does (scrypt with
    /// minisign's parameters: about 1 GiB of memory and a few seconds); without, it is stored
    /// unencrypted as `minisign -G -W` does. Refuses to overwrite: if either file exists,
    /// nothing is written ([`SignError::KeyExists`]). If writing the public key fails, the
    /// secret key file just written is removed again.
    pub fn write(
        &self,
        secret_path: impl AsRef<Path>,
        public_path: impl AsRef<Path>,
        password: Option<&str>,
    ) -> Result<()> {
        self.write_with_limits(
            secret_path.as_ref(),
            public_path.as_ref(),
            password,
            KdfLimits::MINISIGN,
        )
    }

    pub(crate) fn write_with_limits(
        &self,
        secret_path: &Path,
        public_path: &Path,
        password: Option<&str>,
        limits: KdfLimits,
    ) -> Result<()> {
        for path in [secret_path, public_path] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(SignError::KeyExists {
                    path: path.to_owned(),
                });
            }
        }
        let secret_text = self
            .secret
            .to_text(&self.comment, password, limits, secret_path)?;
        let public_text = self.public_key().to_text_with_comment(&self.comment);
        create_new(secret_path, secret_text.as_bytes(), 0o600)?;
        if let Err(err) = create_new(public_path, public_text.as_bytes(), 0o644) {
            let _ = fs::remove_file(secret_path);
            return Err(err);
        }
        Ok(())
    }
}

/// Creates `path` (failing if anything is there), writes `contents` and syncs it; removes the
/// file again if writing fails.
fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            SignError::KeyExists {
                path: path.to_owned(),
            }
        } else {
            io_err("create", path, source)
        }
    })?;
    if let Err(source) = file.write_all(contents).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_err("write", path, source));
    }
    Ok(())
}

/// Refuses a key text larger than any key file may be (what `load` reads at most), so text
/// from elsewhere (a site's trust store, a flag) is held to the same cap.
fn check_text_size(text: &str) -> std::result::Result<(), String> {
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "it is {} bytes, more than the {MAX_FILE} bytes a key file may have",
            text.len()
        ));
    }
    Ok(())
}

/// Longest base64 key line: a secret key's (158 bytes, 212 characters).
const MAX_KEY_LINE: usize = SECRET_KEY_LEN.div_ceil(3) * 4;

/// Decodes a base64 key line of `expected` bytes; the error is the reason, with a hint when
/// the line is another kind of minisign line. A line longer than any key is refused unread.
fn decode_key_line(line: &str, expected: usize) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    if line.len() > MAX_KEY_LINE {
        return Err(format!(
            "its key line is {} characters long, longer than any minisign key ({MAX_KEY_LINE})",
            line.len()
        ));
    }
    let bytes = Zeroizing::new(
        BASE64
            .decode(line)
            .map_err(|_| "its key line is not base64".to_owned())?,
    );
    if bytes.len() != expected {
        let hint = match bytes.len() {
            PUBLIC_KEY_LEN => " (it looks like a public key)",
            SECRET_KEY_LEN => " (it looks like a secret key)",
            SIGNATURE_LINE_LEN => " (it looks like a signature)",
            _ => "",
        };
        return Err(format!(
            "its key line holds {} bytes, not {expected}{hint}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The secret key checksum: BLAKE2b-256("Ed" | keynum | seed | public key).
fn checksum(keynum: &[u8; KEYNUM_LEN], keypair: &[u8; 64]) -> [u8; 32] {
    let mut hasher = Blake2b256::new();
    hasher.update(SIG_ALG);
    hasher.update(keynum);
    hasher.update(keypair);
    hasher.finalize().into()
}

fn decoration(comment: &str) -> String {
    if comment.is_empty() {
        String::new()
    } else {
        format!(" ({comment})")
    }
}

fn u64_le(bytes: &[u8]) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(bytes);
    u64::from_le_bytes(le)
}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> SignError {
    SignError::Io {
        action,
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic key pairs, so key ids and file contents are stable in assertions.
    pub(crate) fn test_pair(n: u8) -> KeyPair {
        KeyPair::from_seed(
            &[n; 32],
            [n, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
            "test",
        )
        .unwrap()
    }

    /// Cheap scrypt limits for tests (minisign's take a minute in a debug build).
    pub(crate) const FAST_LIMITS: KdfLimits = KdfLimits {
        opslimit: 32_768,
        memlimit: 16 << 20,
    };

    fn paths(dir: &tempfile::TempDir) -> (PathBuf, PathBuf) {
        (dir.path().join("site.key"), dir.path().join("site.pub"))
    }

    #[test]
    fn key_files_have_the_minisign_layout() {
        let pair = test_pair(1);
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        pair.write(&secret, &public, None).unwrap();

        assert_eq!(pair.public_key().key_id(), "8877665544332201");
        // minisign prints the id with `%PRIX64`: no leading zeros (one key in 16 has one).
        let low = KeyPair::from_seed(&[1; 32], [1, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x08], "t")
            .unwrap();
        assert_eq!(low.public_key().key_id(), "877665544332201");
        // The key line was checked against Python's `cryptography` Ed25519 for seed [1; 32].
        assert_eq!(
            fs::read_to_string(&public).unwrap(),
            "untrusted comment: minisign public key 8877665544332201 (test)\n\
             RWQBIjNEVWZ3iIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c\n"
        );
        let secret_text = fs::read_to_string(&secret).unwrap();
        let mut lines = secret_text.lines();
        assert_eq!(
            lines.next(),
            Some("untrusted comment: minisign unencrypted secret key 8877665544332201 (test)")
        );
        let bytes = BASE64.decode(lines.next().unwrap()).unwrap();
        assert_eq!(bytes.len(), SECRET_KEY_LEN);
        assert_eq!(&bytes[..6], b"Ed\0\0B2");
        assert!(
            bytes[6..54].iter().all(|&b| b == 0),
            "salt and limits are zero"
        );
        assert_eq!(lines.next(), None);
    }

    #[cfg(unix)]
    #[test]
    fn secret_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        test_pair(1)
            .write_with_limits(&secret, &public, Some("pw"), FAST_LIMITS)
            .unwrap();
        let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn unencrypted_key_round_trip() {
        let pair = test_pair(1);
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        pair.write(&secret, &public, None).unwrap();
        let loaded = SecretKey::load(&secret, None).unwrap();
        assert_eq!(loaded.key_id(), "8877665544332201");
        assert_eq!(loaded.public_key(), pair.public_key());
        assert_eq!(PublicKey::load(&public).unwrap(), pair.public_key());
        // A password given for an unencrypted key is ignored.
        assert_eq!(
            SecretKey::load(&secret, Some("unused")).unwrap().key_id(),
            "8877665544332201"
        );
    }

    #[test]
    fn encrypted_key_round_trip_and_password_errors() {
        let pair = test_pair(2);
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        pair.write_with_limits(&secret, &public, Some("correct horse"), FAST_LIMITS)
            .unwrap();
        let text = fs::read_to_string(&secret).unwrap();
        assert!(text.starts_with("untrusted comment: minisign encrypted secret key "));
        let bytes = BASE64.decode(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(&bytes[..6], b"EdScB2");
        assert_eq!(u64_le(&bytes[38..46]), FAST_LIMITS.opslimit);
        assert_eq!(u64_le(&bytes[46..54]), FAST_LIMITS.memlimit);

        let loaded = SecretKey::load(&secret, Some("correct horse")).unwrap();
        assert_eq!(loaded.public_key(), pair.public_key());

        let err = SecretKey::load(&secret, Some("wrong")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("wrong password for secret key `{}`", secret.display())
        );
        let err = SecretKey::load(&secret, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "secret key `{}` is encrypted: a password is needed to use it",
                secret.display()
            )
        );
    }

    #[test]
    fn minisign_scrypt_parameters() {
        let params = KdfLimits::MINISIGN.scrypt_params().unwrap();
        assert_eq!((params.log_n(), params.r(), params.p()), (20, 8, 1));
        let params = FAST_LIMITS.scrypt_params().unwrap();
        assert_eq!((params.log_n(), params.r(), params.p()), (10, 8, 1));
        // The other branch of libsodium's pickparams: p from opslimit.
        let limits = KdfLimits {
            opslimit: 65_536,
            memlimit: 1 << 20,
        };
        let params = limits.scrypt_params().unwrap();
        assert_eq!((params.log_n(), params.r(), params.p()), (10, 8, 2));
    }

    #[test]
    fn hostile_scrypt_limits_are_refused() {
        for (opslimit, memlimit) in [(33_554_432, 1 << 31), (1 << 40, 1 << 30), (1 << 28, 0)] {
            let limits = KdfLimits { opslimit, memlimit };
            assert!(limits.scrypt_params().is_none(), "{limits:?}");
        }
        let pair = test_pair(1);
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        pair.write_with_limits(&secret, &public, Some("pw"), FAST_LIMITS)
            .unwrap();
        let text = fs::read_to_string(&secret).unwrap();
        let mut lines = text.lines();
        let comment = lines.next().unwrap();
        let mut bytes = BASE64.decode(lines.next().unwrap()).unwrap();
        bytes[46..54].copy_from_slice(&(1u64 << 40).to_le_bytes());
        fs::write(&secret, format!("{comment}\n{}\n", BASE64.encode(&bytes))).unwrap();
        let err = SecretKey::load(&secret, Some("pw")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign secret key: its scrypt limits (opslimit 32768, memlimit 1099511627776) are beyond minisign's",
                secret.display()
            )
        );
    }

    #[test]
    fn refuses_to_overwrite_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        fs::write(&secret, "keep me").unwrap();
        let err = test_pair(1).write(&secret, &public, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "key file `{}` already exists: move it away or choose another path (key files are never overwritten)",
                secret.display()
            )
        );
        assert_eq!(fs::read_to_string(&secret).unwrap(), "keep me");
        assert!(
            !public.exists(),
            "nothing is written when a key file exists"
        );

        fs::remove_file(&secret).unwrap();
        fs::write(&public, "keep me too").unwrap();
        let err = test_pair(1).write(&secret, &public, None).unwrap_err();
        assert!(matches!(err, SignError::KeyExists { path } if path == public));
        assert_eq!(fs::read_to_string(&public).unwrap(), "keep me too");
        assert!(
            !secret.exists(),
            "nothing is written when a key file exists"
        );
    }

    #[test]
    fn missing_directory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("no/such/dir/site.key");
        let public = dir.path().join("site.pub");
        let err = test_pair(1).write(&secret, &public, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot create `{}`", secret.display())
        );
        assert!(!public.exists());
    }

    #[test]
    fn public_key_from_text_takes_the_file_or_the_bare_line() {
        let key = test_pair(1).public_key();
        assert_eq!(PublicKey::from_text(&key.to_text()).unwrap(), key);
        assert_eq!(PublicKey::from_text(&key.to_base64()).unwrap(), key);
        assert_eq!(
            PublicKey::from_text(&format!("  {}\r\n", key.to_base64())).unwrap(),
            key
        );
        assert_eq!(
            key.to_text(),
            format!(
                "untrusted comment: minisign public key 8877665544332201\n{}\n",
                key.to_base64()
            )
        );
    }

    #[test]
    fn malformed_public_keys() {
        let secret_line = {
            let dir = tempfile::tempdir().unwrap();
            let (secret, public) = paths(&dir);
            test_pair(1).write(&secret, &public, None).unwrap();
            fs::read_to_string(&secret).unwrap()
        };
        let wrong_alg = BASE64.encode([b"Xy".as_slice(), &[0u8; 40]].concat());
        let cases = [
            ("", "it is empty"),
            (
                "untrusted comment: just a comment\n",
                "there is no key line after the comment line",
            ),
            ("not base64!", "its key line is not base64"),
            ("AAAA", "its key line holds 3 bytes, not 42"),
            (
                secret_line.as_str(),
                "its key line holds 158 bytes, not 42 (it looks like a secret key)",
            ),
            (
                wrong_alg.as_str(),
                "its signature algorithm is `Xy`, not `Ed`",
            ),
        ];
        for (text, reason) in cases {
            let err = PublicKey::from_text(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the given public key text is not a minisign public key: {reason}"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unencrypted_key_with_zero_checksum_loads() {
        // `minisign -G -W` writes unencrypted keys with an all-zero checksum.
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        test_pair(1).write(&secret, &public, None).unwrap();
        let text = fs::read_to_string(&secret).unwrap();
        let mut lines = text.lines();
        let comment = lines.next().unwrap();
        let mut bytes = BASE64.decode(lines.next().unwrap()).unwrap();
        bytes[SECRET_KEY_LEN - 32..].fill(0);
        fs::write(&secret, format!("{comment}\n{}\n", BASE64.encode(&bytes))).unwrap();
        let loaded = SecretKey::load(&secret, None).unwrap();
        assert_eq!(loaded.public_key(), test_pair(1).public_key());

        // With the checksum unchecked, a damaged key is still caught by its two halves.
        bytes[SECRET_KEY_LEN - 40] ^= 1;
        fs::write(&secret, format!("{comment}\n{}\n", BASE64.encode(&bytes))).unwrap();
        let err = SecretKey::load(&secret, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign secret key: its secret and public halves do not match",
                secret.display()
            )
        );
    }

    #[test]
    fn malformed_key_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = paths(&dir);
        test_pair(1).write(&secret, &public, None).unwrap();

        // A public key file given as the secret key.
        let err = SecretKey::load(&public, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign secret key: its key line holds 42 bytes, not 158 (it looks like a public key)",
                public.display()
            )
        );

        // One flipped bit in an unencrypted secret key.
        let text = fs::read_to_string(&secret).unwrap();
        let mut lines = text.lines();
        let comment = lines.next().unwrap();
        let mut bytes = BASE64.decode(lines.next().unwrap()).unwrap();
        bytes[100] ^= 1;
        let damaged = dir.path().join("damaged.key");
        fs::write(&damaged, format!("{comment}\n{}\n", BASE64.encode(&bytes))).unwrap();
        let err = SecretKey::load(&damaged, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign secret key: its checksum does not match its content: the file is damaged",
                damaged.display()
            )
        );

        let no_comment = dir.path().join("bare.key");
        fs::write(&no_comment, BASE64.encode(&bytes)).unwrap();
        let err = SecretKey::load(&no_comment, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign secret key: its first line must be `untrusted comment: ...`",
                no_comment.display()
            )
        );

        let missing = dir.path().join("missing.pub");
        let err = PublicKey::load(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read `{}`", missing.display())
        );
    }

    #[test]
    fn key_files_that_are_not_regular_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.pub");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let zero_link = dir.path().join("zero.pub");
        std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
        let cases = [
            // Reading a FIFO would block until a writer came; /dev/zero would never end.
            (fifo.as_path(), "it is a FIFO, not a regular file"),
            (Path::new("/dev/zero"), "it is a device, not a regular file"),
            (zero_link.as_path(), "it is a device, not a regular file"),
            (dir.path(), "it is a directory, not a regular file"),
        ];
        for (path, reason) in cases {
            let public = PublicKey::load(path).unwrap_err();
            let secret = SecretKey::load(path, None).unwrap_err();
            for err in [public, secret] {
                assert_eq!(err.to_string(), format!("cannot read `{}`", path.display()));
                let source = std::error::Error::source(&err).unwrap();
                assert_eq!(source.to_string(), reason, "{}", path.display());
            }
        }
    }

    #[test]
    fn oversized_and_binary_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pub");
        fs::write(&big, "A".repeat(64 * 1024 + 1)).unwrap();
        let err = PublicKey::load(&big).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot read `{}`", big.display()));
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "it is 65537 bytes, more than the 65536 bytes allowed"
        );
        assert!(matches!(
            SecretKey::load(&big, None),
            Err(SignError::Read { .. })
        ));

        let binary = dir.path().join("binary.key");
        fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let err = SecretKey::load(&binary, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign secret key: it is not text",
                binary.display()
            )
        );
        let err = PublicKey::load(&binary).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is not a minisign public key: it is not text",
                binary.display()
            )
        );

        // The same caps for key text that does not come from a file.
        let err = PublicKey::from_text(&"A".repeat(300)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the given public key text is not a minisign public key: its key line is 300 characters long, longer than any minisign key (212)"
        );
        let err = PublicKey::from_text(&" ".repeat(70_000)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the given public key text is not a minisign public key: it is 70000 bytes, more than the 65536 bytes a key file may have"
        );
    }

    #[test]
    fn comments_must_be_one_short_line() {
        for comment in ["two\nlines", "cr\r", &"x".repeat(901)] {
            let err = KeyPair::generate(comment).unwrap_err();
            assert_eq!(
                err.to_string(),
                "key comment must be one line of at most 900 bytes, without NUL, CR or LF characters"
            );
        }
        let pair = KeyPair::generate(&"x".repeat(900)).unwrap();
        assert_ne!(pair.public_key(), test_pair(1).public_key());
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_the_secret() {
        let a = KeyPair::generate("a").unwrap();
        let b = KeyPair::generate("b").unwrap();
        assert_ne!(a.public_key(), b.public_key());
        assert_ne!(a.public_key().key_id(), b.public_key().key_id());
        let debug = format!("{:?}", a.secret_key());
        assert_eq!(
            debug,
            format!("SecretKey {{ key_id: {:?}, .. }}", a.public_key().key_id())
        );
    }
}
