//! Signatures (`.minisig` files): making, parsing and checking them.

use std::io::Read;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::ed25519::signature::Signer;

use crate::key::UNTRUSTED_PREFIX;
use crate::{
    check_comment, key_id_hex, prehash, PublicKey, Result, SecretKey, SignError, KEYNUM_LEN,
    MAX_FILE,
};

/// Signature algorithm of prehashed signatures: Ed25519 over BLAKE2b-512 of the data.
const SIG_ALG_PREHASHED: [u8; 2] = *b"ED";
/// Signature algorithm of minisign's legacy signatures: Ed25519 over the data itself.
const SIG_ALG_LEGACY: [u8; 2] = *b"Ed";
const TRUSTED_PREFIX: &str = "trusted comment: ";
/// Longest trusted comment minisign signs and reads back (its 8192-byte line buffer).
const TRUSTED_COMMENT_MAX: usize = 8173;
/// Longest untrusted comment accepted: minisign reads that line into a 1024-byte buffer.
const UNTRUSTED_COMMENT_MAX: usize = 1024;
/// Base64 length of the signature line ("ED" | keynum | signature: 74 bytes).
const SIGNATURE_LINE_CHARS: usize = (2 + KEYNUM_LEN + 64usize).div_ceil(3) * 4;
/// Base64 length of the global signature line (64 bytes).
const GLOBAL_LINE_CHARS: usize = 64usize.div_ceil(3) * 4;

/// A minisign signature: the content of a `.minisig` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    untrusted_comment: String,
    keynum: [u8; KEYNUM_LEN],
    signature: [u8; 64],
    trusted_comment: String,
    global_signature: [u8; 64],
}

/// What a successful [`verify`] vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The trusted comment: signed together with the data, so it is authentic.
    pub trusted_comment: String,
    /// The id of the key that made the signature (the trusted key's id).
    pub key_id: String,
}

/// Signs everything `data` yields with `secret`, streaming it through BLAKE2b-512.
///
/// The result is a prehashed (`ED`) minisign signature that `minisign -Vm FILE -p KEY.pub`
/// accepts. `trusted_comment` is signed too and shown by `minisign -V` and returned by
/// [`verify`]; it must be one line of at most 8173 bytes (minisign's limit), e.g.
/// `"app:im-stack\tversion:1.1.0\tfile:manifest.json"`.
pub fn sign(secret: &SecretKey, data: &mut dyn Read, trusted_comment: &str) -> Result<Signature> {
    check_comment(trusted_comment, "trusted comment", TRUSTED_COMMENT_MAX)?;
    let hash = prehash(data, "sign")?;
    let key = secret.signing_key();
    let signature = key.sign(&hash).to_bytes();
    let global_signature = key
        .sign(&signed_comment(&signature, trusted_comment))
        .to_bytes();
    Ok(Signature {
        untrusted_comment: format!("signature from appmodel secret key {}", secret.key_id()),
        keynum: *secret.keynum(),
        signature,
        trusted_comment: trusted_comment.to_owned(),
        global_signature,
    })
}

/// Checks `signature_text` (a `.minisig` file's content) against `data`, streamed, and the
/// one `trusted` public key.
///
/// Checks in this order, failing with: [`SignError::MalformedSignature`] or
/// [`SignError::LegacySignature`] (before reading `data`), [`SignError::WrongKey`] (naming
/// both key ids, before reading `data`), [`SignError::ReadData`],
/// [`SignError::BadSignature`] (the data changed), [`SignError::BadTrustedComment`] (the
/// trusted comment changed). The caller names the signature file in its own context.
pub fn verify(trusted: &PublicKey, data: &mut dyn Read, signature_text: &str) -> Result<Verified> {
    Signature::from_text(signature_text)?.verify(trusted, data)
}

impl Signature {
    /// Parses a `.minisig` file's content: four lines (untrusted comment, signature, trusted
    /// comment, global signature), as written by [`Signature::to_text`] or `minisign -S`.
    pub fn from_text(text: &str) -> Result<Signature> {
        let malformed = |reason: &str| SignError::MalformedSignature {
            reason: reason.to_owned(),
        };
        if text.len() as u64 > MAX_FILE {
            return Err(malformed(&format!(
                "it is {} bytes, more than the {MAX_FILE} bytes a signature file may have",
                text.len()
            )));
        }
        if text.trim().is_empty() {
            return Err(malformed("it is empty"));
        }
        let mut lines = text.lines();
        let untrusted_comment = lines
            .next()
            .and_then(|line| line.strip_prefix(UNTRUSTED_PREFIX))
            .ok_or_else(|| malformed("its first line must start with `untrusted comment: `"))?;
        check_parsed_comment(untrusted_comment, "untrusted", UNTRUSTED_COMMENT_MAX)?;
        let signature_line = lines
            .next()
            .ok_or_else(|| malformed("it ends after the first line, expected four lines"))?;
        let bytes = decode_line(signature_line, "second", SIGNATURE_LINE_CHARS)?;
        if bytes.len() != 2 + KEYNUM_LEN + 64 {
            return Err(malformed(&format!(
                "its second line holds {} bytes, not {}",
                bytes.len(),
                2 + KEYNUM_LEN + 64
            )));
        }
        let (algorithm, rest) = bytes.split_at(2);
        if algorithm == SIG_ALG_LEGACY {
            return Err(SignError::LegacySignature);
        }
        if algorithm != SIG_ALG_PREHASHED {
            return Err(malformed(&format!(
                "its signature algorithm is `{}`, not `ED`",
                String::from_utf8_lossy(algorithm)
            )));
        }
        let (keynum_bytes, signature_bytes) = rest.split_at(KEYNUM_LEN);
        let mut keynum = [0u8; KEYNUM_LEN];
        keynum.copy_from_slice(keynum_bytes);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(signature_bytes);
        let trusted_comment = lines
            .next()
            .ok_or_else(|| malformed("it ends after the second line, expected four lines"))?
            .strip_prefix(TRUSTED_PREFIX)
            .ok_or_else(|| malformed("its third line must start with `trusted comment: `"))?;
        check_parsed_comment(trusted_comment, "trusted", TRUSTED_COMMENT_MAX)?;
        let global_line = lines
            .next()
            .ok_or_else(|| malformed("it ends after the third line, expected four lines"))?;
        let global = decode_line(global_line, "fourth", GLOBAL_LINE_CHARS)?;
        let global_signature: [u8; 64] = global.as_slice().try_into().map_err(|_| {
            malformed(&format!(
                "its fourth line holds {} bytes, not 64",
                global.len()
            ))
        })?;
        if lines.any(|line| !line.trim().is_empty()) {
            return Err(malformed("it has text after the fourth line"));
        }
        Ok(Signature {
            untrusted_comment: untrusted_comment.to_owned(),
            keynum,
            signature,
            trusted_comment: trusted_comment.to_owned(),
            global_signature,
        })
    }

    /// The `.minisig` file content (four lines, each ending in `\n`).
    pub fn to_text(&self) -> String {
        let mut line = Vec::with_capacity(2 + KEYNUM_LEN + 64);
        line.extend_from_slice(&SIG_ALG_PREHASHED);
        line.extend_from_slice(&self.keynum);
        line.extend_from_slice(&self.signature);
        format!(
            "{UNTRUSTED_PREFIX}{}\n{}\n{TRUSTED_PREFIX}{}\n{}\n",
            self.untrusted_comment,
            BASE64.encode(line),
            self.trusted_comment,
            BASE64.encode(self.global_signature)
        )
    }

    /// The id of the key this signature claims to be made with (not verified).
    pub fn key_id(&self) -> String {
        key_id_hex(&self.keynum)
    }

    /// The trusted comment as written in the signature; authentic only once [`verify`]
    /// returned it.
    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }

    /// Checks this signature against `data` (streamed) and the `trusted` key; see [`verify`].
    pub fn verify(&self, trusted: &PublicKey, data: &mut dyn Read) -> Result<Verified> {
        if self.keynum != *trusted.keynum() {
            return Err(SignError::WrongKey {
                signed_with: self.key_id(),
                trusted: trusted.key_id(),
            });
        }
        let hash = prehash(data, "verify")?;
        let key = trusted.verifying_key();
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&hash, &signature)
            .map_err(|_| SignError::BadSignature {
                key_id: trusted.key_id(),
            })?;
        let global = ed25519_dalek::Signature::from_bytes(&self.global_signature);
        key.verify_strict(
            &signed_comment(&self.signature, &self.trusted_comment),
            &global,
        )
        .map_err(|_| SignError::BadTrustedComment {
            key_id: trusted.key_id(),
        })?;
        Ok(Verified {
            trusted_comment: self.trusted_comment.clone(),
            key_id: trusted.key_id(),
        })
    }
}

/// Decodes the base64 `which` line of a signature, refusing one longer than `max` characters
/// unread (what it decodes to is checked by the caller).
fn decode_line(line: &str, which: &str, max: usize) -> Result<Vec<u8>> {
    let line = line.trim();
    if line.len() > max {
        return Err(SignError::MalformedSignature {
            reason: format!(
                "its {which} line is {} characters long, not {max}",
                line.len()
            ),
        });
    }
    BASE64
        .decode(line)
        .map_err(|_| SignError::MalformedSignature {
            reason: format!("its {which} line is not base64"),
        })
}

/// Refuses a comment of a signature file that minisign could not have written or read back:
/// longer than `max` bytes, or with a NUL or CR character (a CR before the line's LF is not
/// part of the comment).
fn check_parsed_comment(comment: &str, which: &str, max: usize) -> Result<()> {
    if comment.len() > max {
        return Err(SignError::MalformedSignature {
            reason: format!(
                "its {which} comment is {} bytes long, more than {max}",
                comment.len()
            ),
        });
    }
    if comment.contains(['\0', '\r']) {
        return Err(SignError::MalformedSignature {
            reason: format!("its {which} comment has a NUL or CR character"),
        });
    }
    Ok(())
}

/// What the global signature signs: the data signature followed by the trusted comment.
fn signed_comment(signature: &[u8; 64], trusted_comment: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(64 + trusted_comment.len());
    message.extend_from_slice(signature);
    message.extend_from_slice(trusted_comment.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use std::io::{self, Cursor};

    use super::*;
    use crate::key::tests::test_pair;
    use crate::KeyPair;

    const DATA: &[u8] = b"manifest v1\n";
    const COMMENT: &str = "app:im-stack\tversion:1.1.0";

    fn signed(n: u8) -> Signature {
        sign(test_pair(n).secret_key(), &mut Cursor::new(DATA), COMMENT).unwrap()
    }

    #[test]
    fn signature_text_is_minisign_prehashed() {
        // Both base64 lines were checked against Python's `cryptography` Ed25519 (deterministic
        // signatures) over hashlib's BLAKE2b-512 of DATA.
        assert_eq!(
            signed(1).to_text(),
            "untrusted comment: signature from appmodel secret key 8877665544332201\n\
             RUQBIjNEVWZ3iFyQi+b+/HS6v3rlaMtjS3Hyc32k6MjHMiXcWijCjVRtjI4DwvWL/S5JZpAGNDfHGrktIPoivfvtwmY1szNcEw4=\n\
             trusted comment: app:im-stack\tversion:1.1.0\n\
             sTeW7af8BAuVPr/k81Drf3QxdLWkUVR9elM8sPWJgoY7GhymxUyCnyusswF9Mv9TPmpOwlJbkxkElZtaQIGvDg==\n"
        );
    }

    #[test]
    fn sign_verify_round_trip() {
        let pair = test_pair(1);
        let text = signed(1).to_text();
        let verified = verify(&pair.public_key(), &mut Cursor::new(DATA), &text).unwrap();
        assert_eq!(
            verified,
            Verified {
                trusted_comment: COMMENT.to_owned(),
                key_id: "8877665544332201".to_owned(),
            }
        );
        let parsed = Signature::from_text(&text).unwrap();
        assert_eq!(parsed, signed(1));
        assert_eq!(parsed.to_text(), text);
        assert_eq!(parsed.key_id(), "8877665544332201");
        assert_eq!(parsed.trusted_comment(), COMMENT);
        // CRLF line ends (a signature file edited on Windows) still verify.
        let crlf = text.replace('\n', "\r\n");
        verify(&pair.public_key(), &mut Cursor::new(DATA), &crlf).unwrap();
    }

    #[test]
    fn empty_data_and_empty_comment_round_trip() {
        let pair = test_pair(3);
        let signature = sign(pair.secret_key(), &mut io::empty(), "").unwrap();
        let verified = verify(&pair.public_key(), &mut io::empty(), &signature.to_text()).unwrap();
        assert_eq!(verified.trusted_comment, "");
    }

    /// Yields its data a few bytes at a time, with interruptions, like a slow pipe.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.data.len()).min(7_777);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn streams_data_in_pieces() {
        let pair = test_pair(1);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let whole = sign(pair.secret_key(), &mut Cursor::new(&data), COMMENT).unwrap();
        let mut trickle = Trickle {
            data: &data,
            interrupt: false,
        };
        let pieces = sign(pair.secret_key(), &mut trickle, COMMENT).unwrap();
        assert_eq!(whole, pieces, "Ed25519 signatures are deterministic");
        let mut trickle = Trickle {
            data: &data,
            interrupt: false,
        };
        verify(&pair.public_key(), &mut trickle, &whole.to_text()).unwrap();
    }

    #[test]
    fn tampered_data_fails() {
        let err = verify(
            &test_pair(1).public_key(),
            &mut Cursor::new(b"manifest v2\n"),
            &signed(1).to_text(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature does not match: the signed file was changed after signing"
        );
        assert!(matches!(err, SignError::BadSignature { key_id } if key_id == "8877665544332201"));
    }

    #[test]
    fn tampered_trusted_comment_fails() {
        let text = signed(1)
            .to_text()
            .replace("version:1.1.0", "version:9.9.9");
        let err = verify(&test_pair(1).public_key(), &mut Cursor::new(DATA), &text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trusted comment does not match its signature: the signature file was edited after signing"
        );
    }

    #[test]
    fn untrusted_comment_may_change() {
        let text = signed(1)
            .to_text()
            .replace("signature from appmodel", "anything at all");
        verify(&test_pair(1).public_key(), &mut Cursor::new(DATA), &text).unwrap();
    }

    #[test]
    fn wrong_key_names_both_key_ids() {
        let err = verify(
            &test_pair(2).public_key(),
            &mut Cursor::new(DATA),
            &signed(1).to_text(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature was made with key `8877665544332201`, not the trusted key `8877665544332202`"
        );
    }

    #[test]
    fn same_key_id_other_key_is_a_bad_signature() {
        // A forged key that reuses the trusted key id cannot pass.
        let forged =
            KeyPair::from_seed(&[9; 32], [1, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88], "")
                .unwrap();
        let signature = sign(forged.secret_key(), &mut Cursor::new(DATA), COMMENT).unwrap();
        let err = verify(
            &test_pair(1).public_key(),
            &mut Cursor::new(DATA),
            &signature.to_text(),
        )
        .unwrap_err();
        assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn malformed_signatures() {
        let good = signed(1).to_text();
        let lines: Vec<&str> = good.lines().collect();
        let legacy = {
            let mut bytes = BASE64.decode(lines[1]).unwrap();
            bytes[..2].copy_from_slice(b"Ed");
            format!(
                "{}\n{}\n{}\n{}\n",
                lines[0],
                BASE64.encode(bytes),
                lines[2],
                lines[3]
            )
        };
        let cases = [
            ("".to_owned(), "signature is not a minisign signature: it is empty"),
            (
                "RUQBIjNEVWZ3iFyQ\n".to_owned(),
                "signature is not a minisign signature: its first line must start with `untrusted comment: `",
            ),
            (
                format!("{}\n", lines[0]),
                "signature is not a minisign signature: it ends after the first line, expected four lines",
            ),
            (
                format!("{}\n{}\n", lines[0], lines[1]),
                "signature is not a minisign signature: it ends after the second line, expected four lines",
            ),
            (
                format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]),
                "signature is not a minisign signature: it ends after the third line, expected four lines",
            ),
            (
                format!("{}\nnot base64!\n{}\n{}\n", lines[0], lines[2], lines[3]),
                "signature is not a minisign signature: its second line is not base64",
            ),
            (
                format!("{}\nAAAA\n{}\n{}\n", lines[0], lines[2], lines[3]),
                "signature is not a minisign signature: its second line holds 3 bytes, not 74",
            ),
            (
                format!("{}\n{}\ncomment: x\n{}\n", lines[0], lines[1], lines[3]),
                "signature is not a minisign signature: its third line must start with `trusted comment: `",
            ),
            (
                format!("{}\n{}\n{}\nAAAA\n", lines[0], lines[1], lines[2]),
                "signature is not a minisign signature: its fourth line holds 3 bytes, not 64",
            ),
            (
                format!("{good}{good}"),
                "signature is not a minisign signature: it has text after the fourth line",
            ),
            (
                format!("untrusted comment: {}\n{}\n{}\n{}\n", "u".repeat(1025), lines[1], lines[2], lines[3]),
                "signature is not a minisign signature: its untrusted comment is 1025 bytes long, more than 1024",
            ),
            (
                format!("{}\n{}\ntrusted comment: {}\n{}\n", lines[0], lines[1], "t".repeat(8174), lines[3]),
                "signature is not a minisign signature: its trusted comment is 8174 bytes long, more than 8173",
            ),
            (
                format!("{}\n{}\ntrusted comment: a\0b\n{}\n", lines[0], lines[1], lines[3]),
                "signature is not a minisign signature: its trusted comment has a NUL or CR character",
            ),
            (
                // A CR before the CRLF: it would not survive a round trip through a file.
                format!("{}\r\r\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], lines[3]),
                "signature is not a minisign signature: its untrusted comment has a NUL or CR character",
            ),
            (
                format!("{}\n{}\n{}\n{}\n", lines[0], "A".repeat(104), lines[2], lines[3]),
                "signature is not a minisign signature: its second line is 104 characters long, not 100",
            ),
            (
                format!("{}\n{}\n{}\n{}AAAA\n", lines[0], lines[1], lines[2], lines[3]),
                "signature is not a minisign signature: its fourth line is 92 characters long, not 88",
            ),
            (
                format!("{good}{}", "\n".repeat(70_000 - good.len())),
                "signature is not a minisign signature: it is 70000 bytes, more than the 65536 bytes a signature file may have",
            ),
            (
                legacy,
                "signature uses minisign's legacy format (algorithm `Ed`, not prehashed), which is not accepted: sign again without `minisign -l`",
            ),
        ];
        for (text, message) in cases {
            let err =
                verify(&test_pair(1).public_key(), &mut Cursor::new(DATA), &text).unwrap_err();
            assert_eq!(err.to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn unreadable_data_fails_with_read_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = sign(test_pair(1).secret_key(), &mut Broken, COMMENT).unwrap_err();
        assert_eq!(err.to_string(), "cannot read the data to sign");
        let err = verify(
            &test_pair(1).public_key(),
            &mut Broken,
            &signed(1).to_text(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "cannot read the data to verify");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "disk on fire");
    }

    #[test]
    fn trusted_comment_must_be_one_line_minisign_can_read() {
        for comment in ["a\nb", "a\rb", "nul\0", &"x".repeat(8174)] {
            let err = sign(test_pair(1).secret_key(), &mut Cursor::new(DATA), comment).unwrap_err();
            assert_eq!(
                err.to_string(),
                "trusted comment must be one line of at most 8173 bytes, without NUL, CR or LF characters"
            );
        }
        let longest = "x".repeat(8173);
        let signature = sign(test_pair(1).secret_key(), &mut Cursor::new(DATA), &longest).unwrap();
        verify(
            &test_pair(1).public_key(),
            &mut Cursor::new(DATA),
            &signature.to_text(),
        )
        .unwrap();
    }
}
