//! Minisign signatures and public keys from anyone: `PublicKey::from_text` on the input, and
//! `verify` of the input as a `.minisig` text against a fixed key and fixed data (the seeds
//! are real signatures of that data, so the fuzzer starts from the accepting path).
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use appmodel_signing::PublicKey;

/// The public key the seed signatures were made with (fuzz/data/signature.pub).
const KEY: &str = include_str!("../data/signature.pub");
/// The data the seed signatures sign.
const DATA: &[u8] = include_bytes!("../data/signature.data");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static TRUSTED: OnceLock<PublicKey> = OnceLock::new();
    let trusted = TRUSTED.get_or_init(|| PublicKey::from_text(KEY).expect("the fuzz key is valid"));

    if let Ok(key) = PublicKey::from_text(text) {
        // What parses must print back to something that parses to the same key.
        assert_eq!(PublicKey::from_text(&key.to_text()).ok(), Some(key.clone()));
        assert_eq!(PublicKey::from_text(&key.to_base64()).ok(), Some(key));
    }
    match appmodel_signing::verify(trusted, &mut Cursor::new(DATA), text) {
        Ok(verified) => {
            assert_eq!(verified.key_id, trusted.key_id());
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
    if let Ok(signature) = appmodel_signing::Signature::from_text(text) {
        // A parsed signature prints back to text that parses to the same signature.
        let again = appmodel_signing::Signature::from_text(&signature.to_text())
            .expect("a printed signature parses");
        assert_eq!(again, signature);
    }
});
