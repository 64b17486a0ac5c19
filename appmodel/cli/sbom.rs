//! `appmodel sbom`: the bill of materials of a bundle (as it carries it) or of a published
//! version (made from the store, as an export would).

use std::path::Path;

use anyhow::{Context, Result};
use appmodel_model::bundle::{BundleManifest, MANIFEST_FILE, SBOM_FILE};
use appmodel_model::input::{cap, read_regular, Links};
use appmodel_model::Digest;
use sha2::{Digest as _, Sha256};

use crate::args::SbomArgs;
use crate::output::UserError;

/// A bill of materials larger than this is not read.
const SBOM_CAP: u64 = 16 << 20;

pub fn run(args: &SbomArgs) -> Result<()> {
    let path = Path::new(&args.target);
    let bytes = if path.is_dir() {
        from_bundle(path)?
    } else {
        let store = crate::store::open(&args.store)?;
        let app = crate::store::app(&store, args.app.app.as_deref())?;
        let record = crate::store::record(&store, &app, Some(&args.target))?;
        let sbom = appmodel_exporters::sbom::cyclonedx(&store, &record, args.form, &[], None)?;
        let mut bytes = serde_json::to_vec_pretty(&sbom)?;
        bytes.push(b'\n');
        bytes
    };
    let bytes = if args.format == "spdx" {
        let cdx: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            UserError::new(
                format!("the bill of materials is not JSON: {e}"),
                "export the version again",
            )
        })?;
        let mut out = serde_json::to_vec_pretty(&appmodel_exporters::sbom::spdx(&cdx))?;
        out.push(b'\n');
        out
    } else {
        bytes
    };
    use std::io::Write;
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}

/// The bundle's `sbom.cdx.json`, checked against its listing in `bundle.json` (whose
/// signature `appmodel verify` checks).
fn from_bundle(dir: &Path) -> Result<Vec<u8>> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = read_regular(&manifest_path, cap::MANIFEST, Links::Refuse)
        .with_context(|| format!("cannot read `{}`", manifest_path.display()))?;
    let manifest: BundleManifest = serde_json::from_slice(&manifest).map_err(|e| {
        UserError::new(
            format!(
                "`{}` is not a bundle manifest: {e}",
                manifest_path.display()
            ),
            "give a bundle directory or a mounted disc",
        )
    })?;
    let entry = manifest.file(SBOM_FILE).ok_or_else(|| {
        UserError::new(
            format!(
                "the bundle at `{}` lists no {SBOM_FILE} (it was written by an appmodel before 0.1's bills of materials)",
                dir.display()
            ),
            "export the version again, or run `appmodel sbom VERSION` on the vendor's store",
        )
    })?;
    let path = dir.join(SBOM_FILE);
    let bytes = read_regular(&path, SBOM_CAP.min(entry.size), Links::Refuse)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let digest = Digest::from_sha256(&Sha256::digest(&bytes));
    if digest != entry.sha256 || bytes.len() as u64 != entry.size {
        return Err(UserError::new(
            format!(
                "`{}` is not the file the bundle manifest lists: its sha256 is {digest}, the manifest says {}",
                path.display(),
                entry.sha256
            ),
            "the bundle was changed or damaged; run `appmodel verify` on it",
        )
        .into());
    }
    Ok(bytes)
}
