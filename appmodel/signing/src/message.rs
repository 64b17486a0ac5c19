//! Signatures over short messages with a domain prefix, for payloads that are not files
//! (licences). Unlike minisign signatures they are plain Ed25519 over
//! `domain | 0x00 | message`, so a signature made for one purpose never verifies for another.

use ed25519_dalek::ed25519::signature::Signer;
use ed25519_dalek::Signature as EdSignature;

use crate::{PublicKey, SecretKey};

/// An Ed25519 signature's length in bytes.
pub const MESSAGE_SIGNATURE_LEN: usize = 64;

fn framed(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 1 + message.len());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

impl SecretKey {
    /// Signs `message` for `domain` (e.g. `"appmodel licence v1"`).
    pub fn sign_message(&self, domain: &str, message: &[u8]) -> [u8; MESSAGE_SIGNATURE_LEN] {
        self.signing_key().sign(&framed(domain, message)).to_bytes()
    }
}

impl PublicKey {
    /// Whether `signature` is this key's signature of `message` for `domain` (strict: no
    /// small-order keys, no non-canonical signatures).
    pub fn verify_message(&self, domain: &str, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; MESSAGE_SIGNATURE_LEN]>::try_from(signature) else {
            return false;
        };
        self.verifying_key()
            .verify_strict(&framed(domain, message), &EdSignature::from_bytes(&bytes))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::KeyPair;

    #[test]
    fn a_message_signature_verifies_only_for_its_key_domain_and_bytes() {
        let pair = KeyPair::generate("t").expect("keys");
        let other = KeyPair::generate("u").expect("keys");
        let sig = pair.secret_key().sign_message("d1", b"payload");
        let key = pair.public_key();
        assert!(key.verify_message("d1", b"payload", &sig));
        assert!(!key.verify_message("d2", b"payload", &sig));
        assert!(!key.verify_message("d1", b"payloaD", &sig));
        assert!(!key.verify_message("d1", b"payload", &sig[..63]));
        assert!(!other.public_key().verify_message("d1", b"payload", &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!key.verify_message("d1", b"payload", &flipped));
        // The domain is framed: "d" + "1payload" is not "d1" + "payload".
        assert!(!key.verify_message("d", b"1payload", &sig));
    }
}
