//! The seam between the bundle writer and a form, chosen from one table ([`FORMS`]).
//!
//! A form ships either container images (as an OCI image layout: `oci-layout`, `index.json`,
//! `blobs/`) or static binaries (as blobs), see [`Ships`]; [`needs`] picks them from the
//! published version. The form's own module renders its files (compose project, chart,
//! units) through [`FormExporter`]. [`crate::plan`] names no form.
//!
//! A new form is one module implementing [`FormExporter`] plus one row in [`FORMS`].

use std::collections::BTreeMap;

use appmodel_model::bundle::Form;
use appmodel_model::record::{BlobRef, ImageArtifact, VersionRecord};
use appmodel_model::Digest;

use crate::ExportError;

/// What a form carries to the site, besides its rendered files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ships {
    /// Each component's container image per platform, as an OCI image layout.
    Images,
    /// Each component's static binary per platform.
    Binaries,
}

/// One form's part of an export.
pub trait FormExporter {
    fn ships(&self) -> Ships;

    /// The form's rendered files, `(path in the bundle, bytes)`, for `record` and what
    /// [`needs`] picked for it.
    fn files(
        &self,
        record: &VersionRecord,
        needs: &Needs<'_>,
    ) -> Result<Vec<(String, Vec<u8>)>, ExportError>;

    /// The end of README.txt's list of files: the form's own, in a sentence.
    fn readme_files(&self) -> &'static str;
}

/// One row of the form table.
pub struct FormRow {
    pub form: Form,
    pub exporter: &'static dyn FormExporter,
}

/// Every form this appmodel exports, and how.
pub const FORMS: &[FormRow] = &[
    FormRow {
        form: Form::Compose,
        exporter: &crate::compose::Compose,
    },
    FormRow {
        form: Form::Helm,
        exporter: &crate::helm::Helm,
    },
    FormRow {
        form: Form::Systemd,
        exporter: &crate::systemd::Systemd,
    },
];

/// The exporter of `form`: the one typed refusal for a form without a row.
pub fn exporter(form: Form) -> Result<&'static dyn FormExporter, ExportError> {
    FORMS
        .iter()
        .find(|r| r.form == form)
        .map(|r| r.exporter)
        .ok_or(ExportError::UnsupportedForm(form))
}

/// The images (per component and platform) and binaries a form needs.
#[derive(Debug, Default)]
pub struct Needs<'r> {
    pub images: Vec<(&'r str, String, &'r ImageArtifact)>,
    /// A component's OCI index over its platforms' images (when it has more than one).
    pub indexes: BTreeMap<&'r str, &'r BlobRef>,
    pub binaries: Vec<(&'r str, String, &'r BlobRef)>,
    /// The vendor's SBOM of a component, which every form ships.
    pub sboms: Vec<(&'r str, &'r BlobRef)>,
    /// What each image runs (from its config), by config digest: filled by
    /// [`Needs::read_processes`] for forms that wrap a component's command.
    pub processes: BTreeMap<Digest, ImageProcess>,
}

/// An image's own command: its config's `Entrypoint` and `Cmd`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageProcess {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// The largest image config read (real ones are a few KiB).
const MAX_IMAGE_CONFIG: u64 = 1 << 20;

impl Needs<'_> {
    /// Reads every image's config from `store` for [`Needs::processes`].
    pub fn read_processes(
        &mut self,
        store: &appmodel_store::Store,
        form: Form,
    ) -> Result<(), ExportError> {
        for (component, _, img) in &self.images {
            let bad = |reason: String| ExportError::NotExportable {
                component: component.to_string(),
                form,
                reason,
            };
            if img.config.size > MAX_IMAGE_CONFIG {
                return Err(bad(format!(
                    "its image config is {} bytes, more than the {MAX_IMAGE_CONFIG} read",
                    img.config.size
                )));
            }
            let bytes = store.read_blob(&img.config.digest)?;
            let config: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("its image config is not JSON: {e}")))?;
            let list = |key: &str| -> Vec<String> {
                config["config"][key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            self.processes.insert(
                img.config.digest.clone(),
                ImageProcess {
                    entrypoint: list("Entrypoint"),
                    cmd: list("Cmd"),
                },
            );
        }
        Ok(())
    }

    /// Every blob, each once.
    pub fn blobs(&self) -> BTreeMap<&Digest, &BlobRef> {
        let mut out = BTreeMap::new();
        for (_, _, img) in &self.images {
            for b in img.blobs() {
                out.insert(&b.digest, b);
            }
        }
        for b in self.indexes.values() {
            out.insert(&b.digest, *b);
        }
        for (_, _, b) in &self.binaries {
            out.insert(&b.digest, *b);
        }
        for (_, b) in &self.sboms {
            out.insert(&b.digest, *b);
        }
        out
    }
}

/// The images or binaries (as `form` ships) of every component, for every platform of the
/// app; a component without one cannot be exported to the form.
pub fn needs(record: &VersionRecord, form: Form) -> Result<Needs<'_>, ExportError> {
    let ships = exporter(form)?.ships();
    let mut needs = Needs::default();
    let platforms = record.model.app.platforms();
    for c in &record.model.components {
        let art = record.components.get(&c.name);
        if let Some(sbom) = art.and_then(|a| a.sbom.as_ref()) {
            needs.sboms.push((c.name.as_str(), sbom));
        }
        for p in &platforms {
            match ships {
                Ships::Images => {
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
                    if let Some(index) = art.and_then(|a| a.index.as_ref()) {
                        needs.indexes.insert(c.name.as_str(), index);
                    }
                }
                Ships::Binaries => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_has_exactly_one_row() {
        for form in Form::ALL {
            assert_eq!(FORMS.iter().filter(|r| r.form == form).count(), 1, "{form}");
            assert!(exporter(form).is_ok(), "{form}");
        }
        assert_eq!(FORMS.len(), Form::ALL.len());
    }

    #[test]
    fn images_for_compose_and_helm_binaries_for_systemd() {
        let ships = |form| exporter(form).map(|e| e.ships()).ok();
        assert_eq!(ships(Form::Compose), Some(Ships::Images));
        assert_eq!(ships(Form::Helm), Some(Ships::Images));
        assert_eq!(ships(Form::Systemd), Some(Ships::Binaries));
    }

    #[test]
    fn a_form_without_a_row_is_one_typed_error() {
        let e = ExportError::UnsupportedForm(Form::Helm);
        assert_eq!(
            e.to_string(),
            "the helm form cannot be exported by this appmodel"
        );
        assert!(e.is_user_error());
    }
}
