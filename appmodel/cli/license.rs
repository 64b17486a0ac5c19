//! `appmodel license …`: thin calls of appmodel_licence (vendor) and the importer's
//! licensing (site).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use appmodel_importer::licensing::{self, LicenceReport};
use appmodel_importer::Site;
use appmodel_licence::host::install_id_hex;
use appmodel_licence::{issue as sign_licence, Licence, LicenceTerms, SiteCode};
use appmodel_model::input::{self, Links};
use appmodel_model::record::{parse_rfc3339, rfc3339};
use appmodel_signing::{KeyPair, SecretKey};

use crate::args::{
    KeyGenerateArgs, LicenseActivateArgs, LicenseIssueArgs, LicenseRequestArgs, SiteArgs,
};
use crate::output::{print_json, UserError};

const REQUEST_HEADER: &str = "appmodel licence request v1";
/// Largest request file read.
const MAX_REQUEST: u64 = 16 << 10;

pub fn key_generate(args: &KeyGenerateArgs) -> Result<()> {
    let secret = args.output.with_extension("key");
    let public = args.output.with_extension("pub");
    let pair = KeyPair::generate(&args.comment)?;
    pair.write(&secret, &public, args.password.as_deref())
        .with_context(|| format!("cannot write the key pair `{}`", args.output.display()))?;
    let text = pair.public_key().to_text();
    println!(
        "wrote `{}` (secret: it issues licences; keep it at the vendor) and `{}`; key id {}\nput this in the model:\n\nlicence:\n  public_key: {}",
        secret.display(),
        public.display(),
        pair.public_key().key_id(),
        text.lines().nth(1).unwrap_or_default()
    );
    Ok(())
}

fn site(args: &SiteArgs) -> Result<Site> {
    Ok(Site::open(&args.state.state_dir)?)
}

pub fn request(args: &LicenseRequestArgs) -> Result<()> {
    let site = site(&args.site)?;
    let code = licensing::site_code(&site, args.site.app.as_deref())?;
    let text = code.to_text();
    let file = format!(
        "{REQUEST_HEADER}\napp: {}\ninstall id: {}\ncreated: {}\nsite code: {text}\n",
        code.app,
        install_id_hex(&code.fingerprint.install_id),
        rfc3339(appmodel_licence::now()),
    );
    fs::write(&args.output, &file)
        .with_context(|| format!("cannot write `{}`", args.output.display()))?;
    if args.site.json {
        return print_json(
            &serde_json::json!({"app": code.app, "site_code": text, "request": args.output}),
        );
    }
    println!(
        "site code of {} on this host (send it, or `{}`, to the vendor):\n\n  {text}\n",
        code.app,
        args.output.display()
    );
    // On a terminal, the same code as a QR code, for a phone on the other side of an air gap.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        if let Some(qr) = qr_code(&text) {
            println!("{qr}");
        }
    }
    Ok(())
}

/// `text` as a QR code in Unicode half blocks with its quiet zone, drawn black on white
/// with ANSI colours whatever the terminal's theme (scanners expect dark on light).
/// Upper-case, which a site code may be, so it takes QR's compact alphanumeric mode. None
/// when too long for a QR code.
fn qr_code(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::with_error_correction_level(text.to_ascii_uppercase(), qrcode::EcLevel::M)
            .ok()?;
    let image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .build();
    Some(
        image
            .lines()
            .map(|l| format!("\x1b[30;47m{l}\x1b[0m"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Reads a request file (or a file holding only a site code).
fn read_request(path: &Path) -> Result<SiteCode> {
    let text = input::read_text(path, MAX_REQUEST, Links::Follow)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let origin = format!("`{}`", path.display());
    let code = match text.lines().next().map(str::trim) {
        Some(REQUEST_HEADER) => text
            .lines()
            .find_map(|l| l.strip_prefix("site code:"))
            .ok_or_else(|| {
                UserError::new(
                    format!("{origin} has no `site code:` line"),
                    "ask the site for the file `appmodel license request` wrote",
                )
            })?
            .to_string(),
        _ => text,
    };
    Ok(SiteCode::parse(&code, &origin)?)
}

fn date(text: &str, flag: &str) -> Result<u64> {
    parse_rfc3339(text).ok_or_else(|| {
        UserError::new(
            format!("`{flag} {text}` is not a date"),
            "write YYYY-MM-DD, e.g. 2027-12-31",
        )
        .into()
    })
}

pub fn issue(args: &LicenseIssueArgs) -> Result<()> {
    let mut jobs: Vec<(SiteCode, std::path::PathBuf)> = Vec::new();
    if let Some(code) = &args.site_code {
        jobs.push((SiteCode::parse(code, "`--site-code`")?, args.output.clone()));
    }
    if let Some(req) = &args.request {
        jobs.push((read_request(req)?, args.output.clone()));
    }
    if let Some(dir) = &args.requests {
        let mut files: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "req"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(UserError::new(
                format!("`{}` holds no `*.req` file", dir.display()),
                "put the sites' request files there",
            )
            .into());
        }
        for f in files {
            let out = f.with_extension("lic");
            jobs.push((read_request(&f)?, out));
        }
    }
    let store = crate::store::open(&args.store)?;
    let key = SecretKey::load(&args.key, args.password.as_deref())?;
    let now = appmodel_licence::now();
    // A day is licensed to its end; an instant (`…T12:00:00Z`) exactly.
    let expires = date(&args.expires, "--expires")?
        + if args.expires.len() == 10 {
            appmodel_licence::DAY
        } else {
            0
        };
    let not_before = match &args.starts {
        Some(s) => date(s, "--starts")?,
        None => now - now % appmodel_licence::DAY,
    };
    for (code, out) in &jobs {
        let record = crate::store::record(&store, &code.app, args.version.as_deref())?;
        let version = &record.version;
        let policy = record.model.licence.as_ref().ok_or_else(|| {
            UserError::new(
                format!("{} {version} takes no licence", code.app),
                "add a `licence` section to its model and publish it",
            )
        })?;
        let terms = LicenceTerms {
            id: args.id.clone().unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    code.app,
                    &install_id_hex(&code.fingerprint.install_id)[..12]
                )
            }),
            sequence: args.sequence.unwrap_or(now),
            customer: args.customer.clone(),
            plan: args.plan.clone(),
            not_before,
            expires,
            issued_at: now,
        };
        let text = sign_licence(policy, code, &terms, &key)?;
        if out.exists() {
            return Err(UserError::new(
                format!("`{}` exists already", out.display()),
                "move it away or name another file with `-o`",
            )
            .into());
        }
        fs::write(out, &text).with_context(|| format!("cannot write `{}`", out.display()))?;
        println!(
            "wrote `{}`: {} plan {} for {}, {} to {} (grace to {})",
            out.display(),
            code.app,
            args.plan,
            args.customer,
            Licence::date(not_before),
            Licence::date(expires - 1),
            Licence::date(expires + u64::from(policy.grace_days()) * appmodel_licence::DAY - 1),
        );
    }
    Ok(())
}

fn print_report(r: &LicenceReport) {
    let s = &r.standing;
    println!("{}: {} — {}", r.app, s.stage.as_str(), s.reason);
    if let Some(plan) = &s.plan {
        let ents: Vec<String> = s
            .entitlements
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("  plan        {plan} ({})", ents.join(", "));
    }
    if let (Some(id), Some(seq)) = (&r.licence_id, r.sequence) {
        println!(
            "  licence     {id}, sequence {seq}, for {}",
            r.customer.as_deref().unwrap_or("-")
        );
    }
    if let Some(d) = s.days_left {
        println!("  days left   {d}");
    }
    if !r.bound.is_empty() {
        println!("  bound to    {}", r.bound.join(", "));
    }
    if !r.changed.is_empty() {
        println!("  changed     {}", r.changed.join(", "));
    }
    for p in &r.clock_problems {
        println!("  clock       {p}");
    }
    if r.stopped {
        println!("  the licence keeps the app stopped");
    }
    if let Some(code) = &r.site_code {
        println!("  site code   {code}");
    }
}

pub fn activate(args: &LicenseActivateArgs) -> Result<()> {
    let site = site(&args.site)?;
    let a = licensing::activate_file(&site, args.site.app.as_deref(), &args.file)?;
    if args.site.json {
        return print_json(&a);
    }
    println!("activated `{}`", args.file.display());
    if let (Some(what), Some(n)) = (a.acted.as_deref(), a.revision) {
        println!("the app was {what} with the licence (revision {n})");
    }
    print_report(&a.report);
    Ok(())
}

pub fn status(args: &SiteArgs) -> Result<()> {
    let site = site(args)?;
    let r = licensing::status(&site, args.app.as_deref())?;
    if args.json {
        return print_json(&r);
    }
    print_report(&r);
    Ok(())
}

pub fn check(args: &SiteArgs) -> Result<()> {
    let site = site(args)?;
    let a = licensing::scheduled_check(&site, args.app.as_deref())?;
    if args.json {
        return print_json(&a);
    }
    if let Some(what) = &a.acted {
        println!("the app was {what}: {}", a.report.standing.reason);
    }
    print_report(&a.report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_code_fits_a_small_qr_code() {
        // A usual host: machine-id, product_uuid, root filesystem, one NIC.
        let usual = SiteCode {
            app: "im-stack".into(),
            fingerprint: appmodel_licence::host::Fingerprint {
                install_id: [7; appmodel_licence::host::INSTALL_ID_LEN],
                ids: [1u8, 2, 3, 4]
                    .iter()
                    .map(|i| {
                        (
                            appmodel_licence::host::Kind::Nic,
                            [*i; appmodel_licence::host::HASH_LEN],
                        )
                    })
                    .collect(),
            },
        };
        let qr = qr_code(&usual.to_text()).unwrap();
        // Version 5 (37 modules) and the quiet zone: 23 rows, one 80x24 screen.
        assert!(qr.lines().count() <= 23, "{qr}");
        // A site code with every kind of identifier and the most NICs it carries.
        let code = SiteCode {
            app: "im-stack".into(),
            fingerprint: appmodel_licence::host::Fingerprint {
                install_id: [7; appmodel_licence::host::INSTALL_ID_LEN],
                ids: (0..appmodel_licence::host::MAX_IDS)
                    .map(|i| {
                        (
                            appmodel_licence::host::Kind::Nic,
                            [i as u8; appmodel_licence::host::HASH_LEN],
                        )
                    })
                    .collect(),
            },
        };
        let text = code.to_text();
        let qr = qr_code(&text).unwrap();
        let rows: Vec<String> = qr
            .lines()
            .map(|l| l.replace("\x1b[30;47m", "").replace("\x1b[0m", ""))
            .collect();
        let width = rows[0].chars().count();
        // Version 10 (57 modules) at most, plus a quiet zone of 4 on each side: 33 rows of
        // text, which an 80x24 terminal scrolls but any phone reads.
        assert!(
            width <= 57 + 8,
            "{width} modules for {} characters",
            text.len()
        );
        assert!(rows.iter().all(|r| r.chars().count() == width));
        // Two modules a row of text: the code is square.
        assert_eq!(rows.len(), width.div_ceil(2));
        assert!(qr_code(&"x".repeat(8000)).is_none());
        // What a phone reads back is a site code.
        assert_eq!(
            SiteCode::parse(&text.to_ascii_uppercase(), "qr").unwrap(),
            code
        );
    }
}
