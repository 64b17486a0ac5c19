use anyhow::Result;
use appmodel_importer::{import, Site};
use appmodel_model::record::human_bytes;
use serde_json::json;

use crate::args::ImportArgs;
use crate::output::print_json;

pub fn run(args: &ImportArgs) -> Result<()> {
    let site = Site::open(&args.state.state_dir)?;
    let r = import(&site, &args.path)?;
    if r.signature_unchecked {
        eprintln!("warning: the bundle is signed, but this site pins no key, so the signature was not checked (pin one with `appmodel trust add KEY.pub`)");
    }
    if args.json {
        return print_json(&json!({
            "app": r.app, "version": r.version, "form": r.form.as_str(), "files": r.files,
            "new_blobs": r.new_blobs, "new_bytes": r.new_bytes, "present_blobs": r.present_blobs,
            "signed_by": r.signed_by, "signature_unchecked": r.signature_unchecked, "delta_base": r.delta_base,
        }));
    }
    println!(
        "imported {} {} ({} form{}): {} files verified, {} new in {} blobs, {} blobs already present{}",
        r.app,
        r.version,
        r.form,
        r.delta_base.as_ref().map(|b| format!(", delta on {b}")).unwrap_or_default(),
        r.files,
        human_bytes(r.new_bytes),
        r.new_blobs,
        r.present_blobs,
        r.signed_by.as_ref().map(|k| format!("; signed by key {k}")).unwrap_or_default()
    );
    Ok(())
}
