//! The licence file: a signed payload, verified before it is parsed.
//!
//! ```text
//! appmodel licence v1
//! # customer ACME Energy, app im-stack, plan pro, expires 2027-12-31 (not signed; ignored)
//! payload: <base64 of the payload JSON>
//! signature: <key id> <base64 of Ed25519("appmodel licence v1" | 0 | payload bytes)>
//! ```
//!
//! The signature covers the exact payload bytes; the JSON is parsed only after it holds,
//! with unknown fields refused. Times are seconds since the epoch (UTC).

use std::collections::BTreeMap;
use std::path::Path;

use appmodel_model::input::{self, Links};
use appmodel_model::record::rfc3339;
use appmodel_model::types::{LicencePolicy, Scalar};
use appmodel_signing::{PublicKey, SecretKey};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::host::{Fingerprint, Kind, SiteCode, HASH_LEN, INSTALL_ID_LEN};
use crate::{hex, unhex, LicenceError, Result, DAY};

const HEADER: &str = "appmodel licence v1";
const DOMAIN: &str = "appmodel licence v1";
/// Largest licence file read.
pub const MAX_FILE: u64 = 64 << 10;

/// What a licence grants: signed by the vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    /// The licence's id: the same id across renewals.
    pub id: String,
    /// Renewals count up; a lower sequence never replaces a higher one of the same id.
    pub sequence: u64,
    pub customer: String,
    pub app: String,
    pub plan: String,
    pub entitlements: BTreeMap<String, Scalar>,
    pub issued_at: u64,
    pub not_before: u64,
    /// From here, warnings.
    pub warn_from: u64,
    /// The end of the licence: from here, grace (no upgrade to a version published later).
    pub expires: u64,
    /// The end of grace: from here, the app is stopped.
    pub stops: u64,
    pub host: Binding,
}

/// The host a licence is bound to: what the site code said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// Hex.
    pub install_id: String,
    /// `kind:hash` pairs, hashes in hex.
    pub ids: Vec<String>,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::MachineId => "machine-id",
        Kind::ProductUuid => "product-uuid",
        Kind::RootFs => "root-fs",
        Kind::Nic => "nic",
    }
}

impl Binding {
    pub fn of(fp: &Fingerprint) -> Binding {
        Binding {
            install_id: hex(&fp.install_id),
            ids: fp
                .ids
                .iter()
                .map(|(k, h)| format!("{}:{}", kind_name(*k), hex(h)))
                .collect(),
        }
    }

    pub fn fingerprint(&self) -> Option<Fingerprint> {
        let install_id: [u8; INSTALL_ID_LEN] = unhex(&self.install_id)?.try_into().ok()?;
        let ids = self
            .ids
            .iter()
            .map(|s| {
                let (k, h) = s.split_once(':')?;
                let kind = Kind::ALL.into_iter().find(|x| kind_name(*x) == k)?;
                let h: [u8; HASH_LEN] = unhex(h)?.try_into().ok()?;
                Some((kind, h))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Fingerprint { install_id, ids })
    }
}

/// What the vendor decides when issuing.
#[derive(Debug, Clone)]
pub struct LicenceTerms {
    pub id: String,
    pub sequence: u64,
    pub customer: String,
    pub plan: String,
    pub not_before: u64,
    pub expires: u64,
    pub issued_at: u64,
}

fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control)
}

/// Signs a licence for `code` under `policy`, returning the file's text.
pub fn issue(
    policy: &LicencePolicy,
    code: &SiteCode,
    terms: &LicenceTerms,
    key: &SecretKey,
) -> Result<String> {
    let refuse = |m: String| LicenceError::Issue(m);
    let entitlements = policy.plans.get(&terms.plan).ok_or_else(|| {
        let known: Vec<&str> = policy.plans.keys().map(String::as_str).collect();
        refuse(format!(
            "the model has no plan `{}` (plans: {})",
            terms.plan,
            known.join(", ")
        ))
    })?;
    if key.public_key()
        != PublicKey::from_text(&policy.public_key).map_err(|e| refuse(e.to_string()))?
    {
        return Err(refuse(format!(
            "the secret key `{}` is not the model's licence key `{}`",
            key.key_id(),
            PublicKey::from_text(&policy.public_key)
                .map(|k| k.key_id())
                .unwrap_or_default()
        )));
    }
    if !plain(&terms.customer) || !plain(&terms.id) {
        return Err(refuse(
            "the customer and the licence id are one line of at most 200 characters".into(),
        ));
    }
    if terms.sequence == 0 {
        return Err(refuse("the sequence starts at 1".into()));
    }
    if terms.expires <= terms.not_before {
        return Err(refuse("the licence expires before it starts".into()));
    }
    let warn_from = terms
        .expires
        .saturating_sub(u64::from(policy.warn_days()) * DAY)
        .max(terms.not_before);
    let licence = Licence {
        id: terms.id.clone(),
        sequence: terms.sequence,
        customer: terms.customer.clone(),
        app: code.app.clone(),
        plan: terms.plan.clone(),
        entitlements: entitlements.clone(),
        issued_at: terms.issued_at,
        not_before: terms.not_before,
        warn_from,
        expires: terms.expires,
        stops: terms.expires + u64::from(policy.grace_days()) * DAY,
        host: Binding::of(&code.fingerprint),
    };
    let payload = serde_json::to_vec(&licence).map_err(|e| refuse(e.to_string()))?;
    let signature = key.sign_message(DOMAIN, &payload);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "{HEADER}\n# customer {}, app {}, plan {}, to {} (this line is not signed)\npayload: {}\nsignature: {} {}\n",
        licence.customer,
        licence.app,
        licence.plan,
        Licence::date(licence.expires.saturating_sub(1)),
        b64.encode(&payload),
        key.key_id(),
        b64.encode(signature),
    ))
}

impl Licence {
    /// Reads a licence file: a regular file of at most [`MAX_FILE`] bytes.
    pub fn load(path: &Path, key: &PublicKey, app: &str) -> Result<Licence> {
        let text = input::read_text(path, MAX_FILE, Links::Follow).map_err(|source| {
            LicenceError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Licence::verify(&text, &path.display().to_string(), key, app)
    }

    /// Checks a licence text against the vendor's `key` and the `app`, then parses it.
    pub fn verify(text: &str, origin: &str, key: &PublicKey, app: &str) -> Result<Licence> {
        let bad = |reason: String| LicenceError::BadLicence {
            origin: origin.to_string(),
            reason,
        };
        if text.len() as u64 > MAX_FILE {
            return Err(bad("it is too large".into()));
        }
        let mut lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        if lines.next().map(str::trim) != Some(HEADER) {
            return Err(bad(format!("its first line is not `{HEADER}`")));
        }
        let field = |line: Option<&str>, name: &str| -> Result<String> {
            line.and_then(|l| l.trim().strip_prefix(name))
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_string())
                .ok_or_else(|| bad(format!("it has no `{name}:` line where one belongs")))
        };
        let payload_b64 = field(lines.next(), "payload")?;
        let signature_line = field(lines.next(), "signature")?;
        if lines.next().is_some() {
            return Err(bad("it has lines after the signature".into()));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64
            .decode(&payload_b64)
            .map_err(|_| bad("its payload is not base64".into()))?;
        let (key_id, sig_b64) = signature_line
            .split_once(' ')
            .ok_or_else(|| bad("its signature line is not `KEYID SIGNATURE`".into()))?;
        if key_id != key.key_id() {
            return Err(bad(format!(
                "it was signed with key `{key_id}`, and this app's licences are signed with key `{}`",
                key.key_id()
            )));
        }
        let signature = b64
            .decode(sig_b64.trim())
            .map_err(|_| bad("its signature is not base64".into()))?;
        if !key.verify_message(DOMAIN, &payload, &signature) {
            return Err(bad(
                "its signature does not match: the file was changed after it was issued".into(),
            ));
        }
        let licence: Licence = serde_json::from_slice(&payload)
            .map_err(|e| bad(format!("its signed payload is not a licence ({e})")))?;
        if licence.app != app {
            return Err(bad(format!(
                "it is a licence for app `{}`, not `{app}`",
                licence.app
            )));
        }
        let ordered = licence.not_before <= licence.warn_from
            && licence.warn_from <= licence.expires
            && licence.expires <= licence.stops;
        if !ordered || licence.sequence == 0 || licence.host.fingerprint().is_none() {
            return Err(bad("its signed payload is inconsistent (dates out of order, sequence 0 or a malformed host binding)".into()));
        }
        Ok(licence)
    }

    /// The date a person reads, `YYYY-MM-DD`.
    pub fn date(secs: u64) -> String {
        rfc3339(secs)[..10].to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use appmodel_signing::KeyPair;

    pub(crate) fn policy(pair: &KeyPair) -> LicencePolicy {
        let text = pair.public_key().to_text();
        let line = text.lines().nth(1).unwrap().to_string();
        LicencePolicy {
            public_key: line,
            trial: None,
            warn_days: Some(30),
            grace_days: Some(14),
            plans: BTreeMap::from([
                (
                    "pro".to_string(),
                    BTreeMap::from([("max_users".to_string(), Scalar::Int(1000))]),
                ),
                (
                    "standard".to_string(),
                    BTreeMap::from([("max_users".to_string(), Scalar::Int(100))]),
                ),
            ]),
        }
    }

    pub(crate) fn code() -> SiteCode {
        SiteCode {
            app: "im-stack".into(),
            fingerprint: Fingerprint {
                install_id: [3; INSTALL_ID_LEN],
                ids: vec![(Kind::MachineId, [4; HASH_LEN])],
            },
        }
    }

    pub(crate) fn terms(sequence: u64) -> LicenceTerms {
        LicenceTerms {
            id: "lic-1".into(),
            sequence,
            customer: "ACME Energy".into(),
            plan: "pro".into(),
            not_before: 1_000 * DAY,
            expires: 2_000 * DAY,
            issued_at: 1_000 * DAY,
        }
    }

    #[test]
    fn an_issued_licence_verifies_with_its_dates_and_binding() {
        let pair = KeyPair::generate("t").unwrap();
        let text = issue(&policy(&pair), &code(), &terms(2), pair.secret_key()).unwrap();
        let l = Licence::verify(&text, "site.lic", &pair.public_key(), "im-stack").unwrap();
        assert_eq!(l.plan, "pro");
        assert_eq!(l.entitlements["max_users"], Scalar::Int(1000));
        assert_eq!(l.warn_from, 1_970 * DAY);
        assert_eq!(l.stops, 2_014 * DAY);
        assert_eq!(l.host.fingerprint().unwrap(), code().fingerprint);
        assert!(
            text.contains("# customer ACME Energy, app im-stack, plan pro"),
            "{text}"
        );
    }

    #[test]
    fn every_tampering_and_wrong_target_is_refused_by_name() {
        let pair = KeyPair::generate("t").unwrap();
        let other = KeyPair::generate("u").unwrap();
        let key = pair.public_key();
        let text = issue(&policy(&pair), &code(), &terms(1), pair.secret_key()).unwrap();
        let err = |t: &str, app: &str, key: &PublicKey| {
            Licence::verify(t, "site.lic", key, app)
                .unwrap_err()
                .to_string()
        };
        // A flipped bit in the payload, then in the signature.
        let payload_line = text.lines().find(|l| l.starts_with("payload: ")).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut p = b64.decode(&payload_line[9..]).unwrap();
        p[20] ^= 1;
        let flipped = text.replace(payload_line, &format!("payload: {}", b64.encode(&p)));
        assert!(err(&flipped, "im-stack", &key).contains("does not match"));
        let sig_line = text.lines().find(|l| l.starts_with("signature: ")).unwrap();
        let (kid, sig) = sig_line[11..].split_once(' ').unwrap();
        let mut s = b64.decode(sig).unwrap();
        s[5] ^= 0x80;
        let flipped = text.replace(sig_line, &format!("signature: {kid} {}", b64.encode(&s)));
        assert!(err(&flipped, "im-stack", &key).contains("does not match"));
        // Wrong key; another app.
        assert!(err(&text, "im-stack", &other.public_key()).contains("signed with key"));
        assert!(err(&text, "other-app", &key).contains("for app `im-stack`, not `other-app`"));
        // The unsigned comment may change; nothing else.
        assert!(Licence::verify(
            &text.replace("plan pro", "plan gold"),
            "x",
            &key,
            "im-stack"
        )
        .is_ok());
        for broken in [
            String::new(),
            "appmodel licence v2\n".into(),
            text.replace("payload: ", "payload: !"),
            format!("{text}extra: 1\n"),
            text.lines().take(2).collect::<Vec<_>>().join("\n"),
            "x".repeat(70_000),
        ] {
            let e = err(&broken, "im-stack", &key);
            assert!(e.starts_with("`site.lic` is not a valid licence"), "{e}");
        }
        // Signed by the right key but not a licence: refused after the signature holds.
        let junk = b"{\"id\":1}";
        let forged = format!(
            "{HEADER}\npayload: {}\nsignature: {} {}\n",
            b64.encode(junk),
            pair.secret_key().key_id(),
            b64.encode(pair.secret_key().sign_message(DOMAIN, junk))
        );
        assert!(err(&forged, "im-stack", &key).contains("not a licence"));
    }

    #[test]
    fn issuing_refuses_an_unknown_plan_a_foreign_key_and_bad_dates() {
        let pair = KeyPair::generate("t").unwrap();
        let other = KeyPair::generate("u").unwrap();
        let mut t = terms(1);
        t.plan = "gold".into();
        let e = issue(&policy(&pair), &code(), &t, pair.secret_key())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no plan `gold` (plans: pro, standard)"), "{e}");
        let e = issue(&policy(&pair), &code(), &terms(1), other.secret_key())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not the model's licence key"), "{e}");
        let mut t = terms(1);
        t.expires = t.not_before;
        assert!(issue(&policy(&pair), &code(), &t, pair.secret_key()).is_err());
        assert!(issue(&policy(&pair), &code(), &terms(0), pair.secret_key()).is_err());
    }
}
