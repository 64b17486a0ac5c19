use anyhow::{Context, Result};
use appmodel_importer::site::trusted_keys_in;
use appmodel_model::record::human_bytes;
use appmodel_store::Store;
use serde_json::json;

use crate::args::VerifyArgs;
use crate::output::print_json;

pub fn run(args: &VerifyArgs) -> Result<()> {
    let keys = if args.keys.is_empty() {
        trusted_keys_in(&args.state.state_dir.join("trust"))?
    } else {
        let mut keys = Vec::new();
        for k in &args.keys {
            let text = appmodel_model::input::read_text(
                k,
                appmodel_model::input::cap::SIGNATURE,
                appmodel_model::input::Links::Follow,
            )
            .with_context(|| format!("cannot read the key `{}`", k.display()))?;
            keys.push((k.display().to_string(), text));
        }
        keys
    };
    let store = Store::open_existing(&args.state.state_dir.join("store"));
    let r = appmodel_importer::verify(&args.path, keys, store.as_ref())?;
    if r.signature_unchecked {
        eprintln!("warning: the bundle is signed, but no key was given or pinned, so the signature was not checked (give one with `--key KEY.pub`)");
    }
    if args.json {
        return print_json(&json!({
            "app": r.app, "version": r.version, "form": r.form.as_str(), "files": r.files,
            "verified_bytes": r.verified_bytes, "signed_by": r.signed_by,
            "signature_unchecked": r.signature_unchecked, "delta_base": r.delta_base,
            "base_blobs": r.base_blobs, "volumes": r.volumes, "of_volumes": r.of_volumes,
        }));
    }
    if !r.volumes.is_empty() {
        let list: Vec<String> = r.volumes.iter().map(u32::to_string).collect();
        println!(
            "verified {} {} of {} of {} {} ({} form): {} files and parts, {} match their sha256{}",
            if r.volumes.len() == 1 {
                "volume"
            } else {
                "volumes"
            },
            list.join(", "),
            r.of_volumes,
            r.app,
            r.version,
            r.form,
            r.verified_files,
            human_bytes(r.verified_bytes),
            r.signed_by
                .as_ref()
                .map(|k| format!("; signed by key {k}"))
                .unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "verified {} {} ({} form): {} files, {} match bundle.json{}{}",
        r.app,
        r.version,
        r.form,
        r.files,
        human_bytes(r.verified_bytes),
        r.signed_by
            .as_ref()
            .map(|k| format!("; signed by key {k}"))
            .unwrap_or_else(|| if r.signature_unchecked {
                String::new()
            } else {
                "; unsigned".to_string()
            }),
        r.delta_base
            .as_ref()
            .map(|b| if store.is_some() {
                format!(
                    "; a delta on {b}, whose {} blobs this site holds",
                    r.base_blobs
                )
            } else {
                format!(
                    "; a delta on {b}: the site must already hold its {} blobs",
                    r.base_blobs
                )
            })
            .unwrap_or_default(),
    );
    Ok(())
}
