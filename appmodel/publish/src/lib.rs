//! The vendor side: `appmodel publish`. Reads an app model, resolves every artifact it names
//! and records an immutable version in the store.
//!
//! - [`source`]: the common path from any image source into the store (platform selection,
//!   blobs copied once, digests verified while streaming);
//! - [`registry`], [`layout`], [`archive`]: the image sources (OCI registry via oci-client,
//!   OCI layout directory, docker/podman save archive);
//! - [`binary`]: a deterministic minimal image around a static binary;
//! - [`oci`]: the manifest, index and config types.
//!
//! Blobs go into the store first; the version record is written last, under the store lock,
//! so an interrupted publish leaves no version behind (only blobs that `gc` removes).

pub mod archive;
pub mod binary;
pub mod layout;
pub mod oci;
pub mod registry;
pub mod source;

use appmodel_model::version::Version;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use appmodel_model::record::{media, BlobRef, ComponentArtifacts, VersionRecord, RECORD_FORMAT};
use appmodel_model::{load_model, Digest, ModelError};
use appmodel_store::{PutOutcome, Store, StoreError};

pub use registry::RegistryOptions;

/// Errors of publishing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{version}` is not a version: write MAJOR[.MINOR[.PATCH]], e.g. `v1.1` or `1.1.0`")]
    BadVersion { version: String },
    #[error("component `{component}`: binary for {platform} not found at `{}`", .path.display())]
    MissingBinary {
        component: String,
        platform: String,
        path: PathBuf,
    },
    #[error("component `{component}`: binary for {platform} at `{}` {reason}", .path.display())]
    BadBinary {
        component: String,
        platform: String,
        path: PathBuf,
        reason: String,
    },
    #[error("component `{component}`: `image.from_binary` needs a binary for {platform}")]
    NoBinaryForImage { component: String, platform: String },
    #[error("component `{component}`: user `{user}` must be numeric (`uid` or `uid:gid`) for an image built from a binary")]
    BadUser { component: String, user: String },
    #[error("{source_desc} has no image for platform {wanted} (it has: {})", .available.join(", "))]
    PlatformMissing {
        source_desc: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("cannot pull `{reference}`: {message}")]
    Registry { reference: String, message: String },
    #[error("{what}: {message}")]
    Source { what: String, message: String },
    #[error("cannot read `{}`", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("component `{component}`: its SBOM `{}` {reason}", .path.display())]
    BadSbom {
        component: String,
        path: PathBuf,
        reason: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// A vendor's SBOM larger than this is not read.
const MAX_SBOM: u64 = 16 << 20;

/// With images for two platforms or more, stores the OCI index that names them all (the one
/// reference a registry serves for every platform); with one, there is nothing to add.
fn image_index(
    store: &Store,
    lock: &appmodel_store::StoreLock,
    component: &str,
    images: &BTreeMap<String, appmodel_model::record::ImageArtifact>,
) -> Result<Option<BlobRef>, PublishError> {
    if images.len() < 2 {
        return Ok(None);
    }
    let index = oci::Index::of_platforms(images.iter().map(|(p, img)| (p.as_str(), &img.manifest)));
    let bytes = serde_json::to_vec(&index).map_err(|e| PublishError::Internal(e.to_string()))?;
    let (digest, size) =
        store.put_bytes(lock, &format!("the image index of `{component}`"), &bytes)?;
    Ok(Some(BlobRef {
        digest,
        size,
        media_type: media::OCI_INDEX.into(),
    }))
}

/// Reads a component's SBOM file (regular, capped), checks it is CycloneDX or SPDX JSON
/// and stores it.
fn put_sbom(
    store: &Store,
    lock: &appmodel_store::StoreLock,
    component: &str,
    path: &Path,
) -> Result<BlobRef, PublishError> {
    let bad = |reason: String| PublishError::BadSbom {
        component: component.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let bytes =
        appmodel_model::input::read_regular(path, MAX_SBOM, appmodel_model::input::Links::Follow)
            .map_err(|e| bad(format!("cannot be read: {e}")))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let media_type = if doc["bomFormat"] == "CycloneDX" {
        media::CYCLONEDX
    } else if doc["spdxVersion"].is_string() {
        media::SPDX
    } else {
        return Err(bad(
            "is neither CycloneDX JSON (`bomFormat`) nor SPDX JSON (`spdxVersion`)".into(),
        ));
    };
    let (digest, size) = store.put_bytes(lock, &format!("the SBOM of `{component}`"), &bytes)?;
    Ok(BlobRef {
        digest,
        size,
        media_type: media_type.into(),
    })
}

impl PublishError {
    pub(crate) fn source(what: &str, message: String) -> PublishError {
        PublishError::Source {
            what: what.to_string(),
            message,
        }
    }

    /// Errors in the user's input, as opposed to faults of the tool or the machine.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, PublishError::Internal(_))
    }
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub model_file: PathBuf,
    /// Overrides the model's `app.version` (`v1.1` means `1.1.0`).
    pub version: Option<String>,
    pub registry: RegistryOptions,
}

/// What a publish did.
#[derive(Debug)]
pub struct PublishReport {
    pub record: VersionRecord,
    pub outcome: PutOutcome,
    /// Bytes of blobs this publish added to the store.
    pub new_bytes: u64,
    pub new_blobs: usize,
    /// Things the vendor should look at, one sentence each (e.g. a binary outside the
    /// model's tree).
    pub warnings: Vec<String>,
}

/// `v1.1` -> `1.1.0`, `2` -> `2.0.0`, `1.2.3-rc.1` stays.
pub fn normalize_version(text: &str) -> Result<semver::Version, PublishError> {
    let t = text.trim().trim_start_matches(['v', 'V']);
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let dots = core.matches('.').count();
    let padded = match dots {
        0 => format!("{core}.0.0{rest}"),
        1 => format!("{core}.0{rest}"),
        _ => t.to_string(),
    };
    semver::Version::parse(&padded).map_err(|_| PublishError::BadVersion {
        version: text.to_string(),
    })
}

/// Publishes a version: every artifact into the store, then the record.
pub fn publish(store: &Store, opts: &PublishOptions) -> Result<PublishReport, PublishError> {
    let loaded = load_model(&opts.model_file)?;
    let mut model = loaded.model.clone();
    if let Some(v) = &opts.version {
        model.app.version = normalize_version(v)?.to_string();
    }
    let lock = store.lock()?;
    let before: BTreeSet<Digest> = store.blob_digests()?;
    let result = publish_locked(store, &lock, opts, &loaded, model, &before);
    if result.is_err() {
        // Leave the store as it was: drop every blob this attempt added.
        store.remove_blobs_not_in(&lock, &before);
    }
    result
}

fn publish_locked(
    store: &Store,
    lock: &appmodel_store::StoreLock,
    opts: &PublishOptions,
    loaded: &appmodel_model::LoadedModel,
    model: appmodel_model::AppModel,
    before: &BTreeSet<Digest>,
) -> Result<PublishReport, PublishError> {
    let base = opts
        .model_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let platforms = model.app.platforms();

    // Every binary is checked before anything is stored.
    let mut warnings = Vec::new();
    for c in &model.components {
        for (platform, rel) in &c.binaries {
            let path = base.join(rel);
            binary::check(&c.name, platform, &path)?;
            if let Some(w) = binary::outside_warning(&c.name, platform, &base, &path) {
                warnings.push(w);
            }
        }
    }

    let mut components = BTreeMap::new();
    for c in &model.components {
        tracing::info!(component = %c.name, "resolving artifacts");
        let mut art = ComponentArtifacts::default();
        if let Some(rel) = &c.sbom {
            art.sbom = Some(put_sbom(store, lock, &c.name, &base.join(rel))?);
        }
        let mut binary_files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (platform, rel) in &c.binaries {
            let path = base.join(rel);
            let (digest, size) = store.put_file(lock, &path)?;
            art.binaries.insert(
                platform.clone(),
                BlobRef {
                    digest,
                    size,
                    media_type: media::BINARY.into(),
                },
            );
            binary_files.insert(platform.clone(), path);
        }
        if let Some(img) = &c.image {
            let images = if img.from_binary {
                let mut images = BTreeMap::new();
                for platform in &platforms {
                    let bin = binary_files.get(platform).ok_or_else(|| {
                        PublishError::NoBinaryForImage {
                            component: c.name.clone(),
                            platform: platform.clone(),
                        }
                    })?;
                    images.insert(
                        platform.clone(),
                        binary::build(store, lock, c, bin, platform)?,
                    );
                }
                art.image_source = Some("from_binary".into());
                images
            } else if let Some(reference) = &img.registry {
                let mut src = registry::RegistrySource::new(reference, &opts.registry)?;
                let top = src.resolve()?;
                let images = source::copy_image(&mut src, store, lock, &top, &platforms)?;
                art.image_source = Some(src.pinned());
                images
            } else if let Some(dir) = &img.oci_layout {
                let mut src = layout::LayoutSource::new(&base.join(dir));
                let top = src.select(img.tag.as_deref())?;
                art.image_source = Some(format!("oci-layout:{dir}@{}", top.digest));
                source::copy_image(&mut src, store, lock, &top, &platforms)?
            } else if let Some(file) = &img.archive {
                let images = archive::copy_archive(
                    store,
                    lock,
                    &base.join(file),
                    img.tag.as_deref(),
                    &platforms,
                )?;
                art.image_source = Some(format!("archive:{file}"));
                images
            } else {
                BTreeMap::new()
            };
            art.index = image_index(store, lock, &c.name, &images)?;
            art.images = images;
        }
        components.insert(c.name.clone(), art);
    }

    let record = VersionRecord {
        format: RECORD_FORMAT,
        app: model.app.name.clone(),
        version: Version::parse(&model.app.version).map_err(|_| PublishError::BadVersion {
            version: model.app.version.clone(),
        })?,
        published_by: format!("appmodel {}", env!("CARGO_PKG_VERSION")),
        published_at: now_rfc3339(),
        model_file: opts
            .model_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        model_text: loaded.text.clone(),
        model,
        components,
    };
    let outcome = store.put_record(lock, &record, record.blobs().into_keys())?;
    let record = match outcome {
        PutOutcome::Created => record,
        PutOutcome::Unchanged => store
            .record(&record.app, &record.version)?
            .unwrap_or(record),
    };
    let fresh: Vec<u64> = record
        .blobs()
        .iter()
        .filter(|(d, _)| !before.contains(**d))
        .map(|(_, b)| b.size)
        .collect();
    Ok(PublishReport {
        new_bytes: fresh.iter().sum(),
        new_blobs: fresh.len(),
        record,
        outcome,
        warnings,
    })
}

pub use appmodel_model::record::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_normalized() {
        assert_eq!(normalize_version("v1.1").unwrap().to_string(), "1.1.0");
        assert_eq!(normalize_version("2").unwrap().to_string(), "2.0.0");
        assert_eq!(
            normalize_version("1.2.3-rc.1").unwrap().to_string(),
            "1.2.3-rc.1"
        );
        assert_eq!(
            normalize_version("v1.1-beta").unwrap().to_string(),
            "1.1.0-beta"
        );
        assert_eq!(
            normalize_version("one").unwrap_err().to_string(),
            "`one` is not a version: write MAJOR[.MINOR[.PATCH]], e.g. `v1.1` or `1.1.0`"
        );
    }
}
