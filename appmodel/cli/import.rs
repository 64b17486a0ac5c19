use anyhow::{Context, Result};
use std::io::IsTerminal;

use appmodel_importer::{import, ImportError, ImportOptions, Site};
use appmodel_model::input::{self, cap, Links};
use appmodel_model::record::human_bytes;
use serde_json::json;

use crate::args::ImportArgs;
use crate::output::print_json;

pub fn run(args: &ImportArgs) -> Result<()> {
    let mut extra_keys = Vec::new();
    for k in &args.trust_keys {
        let text = input::read_text(k, cap::SIGNATURE, Links::Follow)
            .with_context(|| format!("cannot read the key `{}`", k.display()))?;
        extra_keys.push((k.display().to_string(), text));
    }
    let site = Site::open(&args.state.state_dir)?;
    let opts = ImportOptions {
        allow_unsigned: args.allow_unsigned,
        extra_keys: extra_keys.clone(),
    };
    // A disc of a set at a mount point, on a terminal: wait for the next disc there.
    let waits = std::io::stdin().is_terminal()
        && args
            .path
            .join(appmodel_model::volume::VOLUME_FILE)
            .is_file();
    let r = loop {
        match import(&site, &args.path, &opts) {
            Err(e @ ImportError::VolumesMissing { .. }) if waits => {
                let ImportError::VolumesMissing { missing, of, .. } = &e else {
                    unreachable!()
                };
                eprint!(
                    "{e}\ninsert volume {} of {of} at `{}` and press Enter (Ctrl-D stops; the volumes read are kept): ",
                    missing.first().copied().unwrap_or(0),
                    args.path.display()
                );
                let mut line = String::new();
                if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
                    eprintln!();
                    return Err(e.into());
                }
            }
            other => break other?,
        }
    };

    // Pin the key given with --trust-key that signed the bundle.
    let mut pinned = None;
    if let Some(id) = &r.signed_by {
        for (name, text) in &extra_keys {
            let is_signer =
                appmodel_signing::PublicKey::from_text(text).is_ok_and(|k| k.key_id() == *id);
            if is_signer {
                let id = site
                    .add_trusted_key(text)
                    .with_context(|| format!("cannot pin `{name}`"))?;
                pinned = Some(id);
            }
        }
    }
    if r.signature_unchecked {
        eprintln!("warning: the bundle is signed by a key this site does not trust, so its signature proves nothing; imported because of --allow-unsigned (recorded with the version)");
    } else if r.unsigned_allowed {
        eprintln!("warning: the bundle is unsigned; imported because of --allow-unsigned (recorded with the version)");
    }
    let skipped = r.present_blobs;
    if args.json {
        return print_json(&json!({
            "app": r.app, "version": r.version, "form": r.form.as_str(), "files": r.files,
            "verified_files": r.verified_files, "verified_bytes": r.verified_bytes,
            "new_blobs": r.new_blobs, "new_bytes": r.new_bytes, "present_blobs": r.present_blobs,
            "signed_by": r.signed_by, "unsigned_allowed": r.unsigned_allowed,
            "pinned_key": pinned, "delta_base": r.delta_base,
            "volumes": r.volumes, "of_volumes": r.of_volumes,
        }));
    }
    println!(
        "imported {} {} ({} form{}{}): {} of {} files verified ({}), {} new blobs ({}){}{}",
        r.app,
        r.version,
        r.form,
        r.delta_base
            .as_ref()
            .map(|b| format!(", delta on {b}"))
            .unwrap_or_default(),
        if r.of_volumes > 0 {
            format!(", from {} volumes", r.of_volumes)
        } else {
            String::new()
        },
        r.verified_files,
        r.files,
        human_bytes(r.verified_bytes),
        r.new_blobs,
        human_bytes(r.new_bytes),
        if skipped > 0 {
            format!("; {skipped} blobs already in the site store were not read again (`appmodel verify` checks every byte)")
        } else {
            String::new()
        },
        match (&r.signed_by, &pinned) {
            (Some(k), Some(_)) => format!("; signed by key {k}, now pinned"),
            (Some(k), None) => format!("; signed by key {k}"),
            (None, _) => "; unsigned".to_string(),
        }
    );
    Ok(())
}
