//! Compatibility with the real `minisign` tool, in both directions.
//!
//! These tests run `minisign` (Debian package `minisign`, installed by scripts/setup.sh). Without
//! it they print "skipped: ..." and pass, except under CI=true, where they fail.

use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::key::tests::FAST_LIMITS;
use crate::key::KdfLimits;
use crate::{sign, verify, KeyPair, PublicKey, SecretKey, SignError};

const DATA: &[u8] = b"{\"app\":\"im-stack\",\"version\":\"1.1.0\"}\n";
const COMMENT: &str = "app:im-stack\tversion:1.1.0\tfile:manifest.json";

/// True if the `minisign` tool is there; panics under CI=true if it is not.
fn have_minisign(test: &str) -> bool {
    let found = Command::new("minisign")
        .arg("-v")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the `minisign` tool is missing (CI=true): scripts/setup.sh installs it (Debian package `minisign`)");
        }
        println!("SKIPPED {test}: needs the `minisign` tool; scripts/setup.sh installs it");
        // Counted by scripts/test.sh, as the end-to-end tests' skips are.
        if let Some(log) = std::env::var_os("APPMODEL_SKIP_LOG") {
            use std::io::Write;
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log);
            let _ = f.and_then(|mut f| writeln!(f, "{test}: `minisign`"));
        }
    }
    found
}

/// Runs `minisign ARGS` in `dir`, feeding `stdin`.
fn minisign(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `minisign -Vm manifest.json -p PUB -x SIG`, returning its output.
fn minisign_verify(dir: &Path, public: &str, signature: &str) -> Output {
    minisign(
        dir,
        &["-Vm", "manifest.json", "-p", public, "-x", signature],
        "",
    )
}

#[test]
fn minisign_verifies_our_signature() {
    if !have_minisign("minisign_verifies_our_signature") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pair = KeyPair::generate("interop").unwrap();
    pair.write(dir.path().join("k.key"), dir.path().join("k.pub"), None)
        .unwrap();
    fs::write(dir.path().join("manifest.json"), DATA).unwrap();
    let signature = sign(pair.secret_key(), &mut Cursor::new(DATA), COMMENT).unwrap();
    fs::write(
        dir.path().join("manifest.json.minisig"),
        signature.to_text(),
    )
    .unwrap();

    let out = minisign_verify(dir.path(), "k.pub", "manifest.json.minisig");
    assert_ok(&out, "minisign -V");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("Trusted comment: {COMMENT}")),
        "{stdout}"
    );

    // And with the bare key line, as a site would paste it.
    let out = minisign(
        dir.path(),
        &["-Vm", "manifest.json", "-P", &pair.public_key().to_base64()],
        "",
    );
    assert_ok(&out, "minisign -V -P");

    // minisign agrees that a changed file no longer matches.
    fs::write(dir.path().join("manifest.json"), b"changed").unwrap();
    let out = minisign_verify(dir.path(), "k.pub", "manifest.json.minisig");
    assert!(!out.status.success(), "minisign accepted a changed file");
}

#[test]
fn we_verify_a_minisign_signature() {
    if !have_minisign("we_verify_a_minisign_signature") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = minisign(dir.path(), &["-G", "-W", "-p", "m.pub", "-s", "m.key"], "");
    assert_ok(&out, "minisign -G -W");
    fs::write(dir.path().join("manifest.json"), DATA).unwrap();
    let out = minisign(
        dir.path(),
        &[
            "-S",
            "-s",
            "m.key",
            "-m",
            "manifest.json",
            "-x",
            "m.minisig",
            "-t",
            COMMENT,
        ],
        "",
    );
    assert_ok(&out, "minisign -S");

    let public = PublicKey::load(dir.path().join("m.pub")).unwrap();
    // Our key id is the one minisign writes into the public key's comment.
    let pub_text = fs::read_to_string(dir.path().join("m.pub")).unwrap();
    assert_eq!(
        pub_text.lines().next().unwrap(),
        format!("untrusted comment: minisign public key {}", public.key_id())
    );
    let signature = fs::read_to_string(dir.path().join("m.minisig")).unwrap();
    let verified = verify(&public, &mut Cursor::new(DATA), &signature).unwrap();
    assert_eq!(verified.trusted_comment, COMMENT);
    assert_eq!(verified.key_id, public.key_id());

    let err = verify(&public, &mut Cursor::new(b"changed"), &signature).unwrap_err();
    assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
    let other = KeyPair::generate("other").unwrap().public_key();
    let err = verify(&other, &mut Cursor::new(DATA), &signature).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "signature was made with key `{}`, not the trusted key `{}`",
            public.key_id(),
            other.key_id()
        )
    );

    // minisign's unencrypted secret key loads, and signs like minisign.
    let secret = SecretKey::load(dir.path().join("m.key"), None).unwrap();
    assert_eq!(secret.public_key(), public);
    let ours = sign(&secret, &mut Cursor::new(DATA), COMMENT).unwrap();
    verify(&public, &mut Cursor::new(DATA), &ours.to_text()).unwrap();
}

#[test]
fn minisign_signs_with_our_unencrypted_secret_key() {
    if !have_minisign("minisign_signs_with_our_unencrypted_secret_key") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pair = KeyPair::generate("interop").unwrap();
    pair.write(dir.path().join("k.key"), dir.path().join("k.pub"), None)
        .unwrap();
    fs::write(dir.path().join("manifest.json"), DATA).unwrap();
    let out = minisign(
        dir.path(),
        &[
            "-S",
            "-s",
            "k.key",
            "-m",
            "manifest.json",
            "-x",
            "k.minisig",
            "-t",
            COMMENT,
        ],
        "",
    );
    assert_ok(&out, "minisign -S with our secret key");
    let signature = fs::read_to_string(dir.path().join("k.minisig")).unwrap();
    let verified = verify(&pair.public_key(), &mut Cursor::new(DATA), &signature).unwrap();
    assert_eq!(verified.trusted_comment, COMMENT);

    // minisign recreates exactly our public key line from our secret key.
    let out = minisign(dir.path(), &["-R", "-s", "k.key", "-p", "r.pub"], "");
    assert_ok(&out, "minisign -R");
    let recreated = PublicKey::load(dir.path().join("r.pub")).unwrap();
    assert_eq!(recreated, pair.public_key());
}

/// Our encrypted secret key, with cheap scrypt limits from either branch of libsodium's
/// parameter choice, decrypts in minisign with the same password: the key derivation matches.
#[test]
fn minisign_decrypts_our_encrypted_secret_key() {
    if !have_minisign("minisign_decrypts_our_encrypted_secret_key") {
        return;
    }
    let other_branch = KdfLimits {
        opslimit: 65_536,
        memlimit: 1 << 20,
    };
    for limits in [FAST_LIMITS, other_branch] {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate("interop").unwrap();
        pair.write_with_limits(
            &dir.path().join("k.key"),
            &dir.path().join("k.pub"),
            Some("s3cret pass"),
            limits,
        )
        .unwrap();
        fs::write(dir.path().join("manifest.json"), DATA).unwrap();
        let out = minisign(
            dir.path(),
            &[
                "-S",
                "-s",
                "k.key",
                "-m",
                "manifest.json",
                "-x",
                "k.minisig",
                "-t",
                COMMENT,
            ],
            "s3cret pass\n",
        );
        assert_ok(
            &out,
            &format!("minisign -S with our encrypted key {limits:?}"),
        );
        let signature = fs::read_to_string(dir.path().join("k.minisig")).unwrap();
        verify(&pair.public_key(), &mut Cursor::new(DATA), &signature).unwrap();

        let out = minisign(
            dir.path(),
            &[
                "-S",
                "-s",
                "k.key",
                "-m",
                "manifest.json",
                "-x",
                "bad.minisig",
            ],
            "wrong pass\n",
        );
        assert!(!out.status.success(), "minisign took a wrong password");
    }
}

/// A key made by plain `minisign -G` (encrypted with minisign's full scrypt limits: N = 2^20,
/// 1 GiB) loads with its password. About 12 s: scrypt is optimized even in dev builds
/// (see `[profile.dev.package.scrypt]` in the root Cargo.toml).
#[test]
fn we_load_a_minisign_encrypted_secret_key() {
    if !have_minisign("we_load_a_minisign_encrypted_secret_key") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = minisign(
        dir.path(),
        &["-G", "-p", "m.pub", "-s", "m.key"],
        "pass word\npass word\n",
    );
    assert_ok(&out, "minisign -G");
    let public = PublicKey::load(dir.path().join("m.pub")).unwrap();
    let secret = SecretKey::load(dir.path().join("m.key"), Some("pass word")).unwrap();
    assert_eq!(secret.public_key(), public);
    let err = SecretKey::load(dir.path().join("m.key"), Some("wrong")).unwrap_err();
    assert!(matches!(err, SignError::WrongPassword { .. }), "{err}");

    // And our encrypted key with minisign's full limits decrypts in minisign.
    let pair = KeyPair::generate("interop").unwrap();
    pair.write(
        dir.path().join("k.key"),
        dir.path().join("k.pub"),
        Some("pass word"),
    )
    .unwrap();
    fs::write(dir.path().join("manifest.json"), DATA).unwrap();
    let out = minisign(
        dir.path(),
        &[
            "-S",
            "-s",
            "k.key",
            "-m",
            "manifest.json",
            "-x",
            "k.minisig",
        ],
        "pass word\n",
    );
    assert_ok(&out, "minisign -S with our fully encrypted key");
    let signature = fs::read_to_string(dir.path().join("k.minisig")).unwrap();
    verify(&pair.public_key(), &mut Cursor::new(DATA), &signature).unwrap();
}

#[test]
fn our_key_id_is_the_one_minisign_prints_also_with_a_leading_zero() {
    if !have_minisign("our_key_id_is_the_one_minisign_prints_also_with_a_leading_zero") {
        return;
    }
    // One minisign key in 16 has a keynum whose top hex digit is 0; minisign prints it without
    // the zero. Generate until one turns up (the chance of 400 misses is below 1e-11).
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..400 {
        let _ = fs::remove_file(dir.path().join("m.pub"));
        let _ = fs::remove_file(dir.path().join("m.key"));
        let out = minisign(dir.path(), &["-G", "-W", "-p", "m.pub", "-s", "m.key"], "");
        assert_ok(&out, "minisign -G -W");
        let text = fs::read_to_string(dir.path().join("m.pub")).unwrap();
        let printed = text.lines().next().unwrap().rsplit(' ').next().unwrap();
        let ours = PublicKey::from_text(&text).unwrap().key_id();
        assert_eq!(ours, printed, "key id of\n{text}");
        if printed.len() < 16 {
            return;
        }
    }
    panic!("400 minisign keys without a leading zero in the key id");
}
