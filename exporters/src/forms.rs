//! What each form takes from a published version.
//!
//! compose and helm ship container images (OCI layout); systemd ships static binaries. The
//! rendered files of each form (compose project, chart, units) are added by the form's own
//! module.

use std::collections::BTreeMap;

use appmodel_model::bundle::Form;
use appmodel_model::record::{BlobRef, ImageArtifact, VersionRecord};
use appmodel_model::Digest;

use crate::ExportError;

/// The images (per component and platform) and binaries a form needs.
#[derive(Debug, Default)]
pub struct Needs<'r> {
    pub images: Vec<(&'r str, String, &'r ImageArtifact)>,
    pub binaries: Vec<(&'r str, String, &'r BlobRef)>,
}

impl Needs<'_> {
    /// Every blob, each once.
    pub fn blobs(&self) -> BTreeMap<&Digest, &BlobRef> {
        let mut out = BTreeMap::new();
        for (_, _, img) in &self.images {
            for b in img.blobs() {
                out.insert(&b.digest, b);
            }
        }
        for (_, _, b) in &self.binaries {
            out.insert(&b.digest, *b);
        }
        out
    }
}

pub fn needs(record: &VersionRecord, form: Form) -> Result<Needs<'_>, ExportError> {
    let mut needs = Needs::default();
    let platforms = record.model.app.platforms();
    for c in &record.model.components {
        let art = record.components.get(&c.name);
        for p in &platforms {
            match form {
                Form::Compose | Form::Helm => {
                    let img = art.and_then(|a| a.images.get(p)).ok_or_else(|| {
                        ExportError::NotExportable {
                            component: c.name.clone(),
                            form,
                            reason: format!(
                                "it has no container image for {p}; give it an `image`"
                            ),
                        }
                    })?;
                    needs.images.push((c.name.as_str(), p.clone(), img));
                }
                Form::Systemd => {
                    let bin = art.and_then(|a| a.binaries.get(p)).ok_or_else(|| {
                        ExportError::NotExportable {
                            component: c.name.clone(),
                            form,
                            reason: if c.image.is_some() {
                                format!(
                                    "it has only a container image and no static binary for {p}; add one under `binaries`"
                                )
                            } else {
                                format!("it has no static binary for {p}; add one under `binaries`")
                            },
                        }
                    })?;
                    needs.binaries.push((c.name.as_str(), p.clone(), bin));
                }
            }
        }
    }
    Ok(needs)
}
