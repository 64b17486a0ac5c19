//! Copying an image from any source into the store: resolve the platforms wanted, then pull
//! each manifest's config and layers, skipping blobs the store already holds.

use std::collections::BTreeMap;
use std::io::Read;

use appmodel_model::record::{media, BlobRef, ImageArtifact};
use appmodel_model::Digest;
use appmodel_store::{Store, StoreLock};

use crate::oci::{parse_document, Descriptor, Document, ImageConfig};
use crate::PublishError;

/// Where image blobs come from: an OCI layout, a registry.
pub trait BlobSource {
    /// For messages: `registry.example.com/im/im-server:1.0`.
    fn describe(&self) -> String;
    /// Opens a blob for streaming. The store verifies its digest while copying.
    fn open(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>, PublishError>;
}

fn read_small(source: &mut dyn BlobSource, desc: &Descriptor) -> Result<Vec<u8>, PublishError> {
    let what = source.describe();
    let mut buf = Vec::new();
    source
        .open(desc)?
        .take(16 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| PublishError::source(&what, format!("cannot read `{}`: {e}", desc.digest)))?;
    let actual = Digest::from_sha256(&<sha2::Sha256 as sha2::Digest>::digest(&buf));
    if actual != desc.digest {
        return Err(PublishError::Store(
            appmodel_store::StoreError::DigestMismatch {
                what: format!("manifest from {what}"),
                expected: desc.digest.clone(),
                actual,
            },
        ));
    }
    Ok(buf)
}

/// Copies one blob into the store unless it is there already.
pub fn copy_blob(
    source: &mut dyn BlobSource,
    store: &Store,
    lock: &StoreLock,
    desc: &Descriptor,
) -> Result<BlobRef, PublishError> {
    if !store.has_blob(&desc.digest) {
        let what = format!("blob `{}` from {}", desc.digest, source.describe());
        let mut reader = source.open(desc)?;
        let mut writer = store
            .blob_writer(lock, &what, Some(desc.digest.clone()))?
            .with_total(Some(desc.size));
        writer.copy_from(&mut reader)?;
        let (_, size) = writer.commit()?;
        if size != desc.size {
            return Err(PublishError::Store(
                appmodel_store::StoreError::SizeMismatch {
                    what,
                    expected: desc.size,
                    actual: size,
                },
            ));
        }
    }
    Ok(desc.blob_ref())
}

/// Copies the image `top` names (a manifest or an index) for each wanted platform.
pub fn copy_image(
    source: &mut dyn BlobSource,
    store: &Store,
    lock: &StoreLock,
    top: &Descriptor,
    platforms: &[String],
) -> Result<BTreeMap<String, ImageArtifact>, PublishError> {
    let bytes = read_small(source, top)?;
    let mut out = BTreeMap::new();
    match parse_document(&bytes, Some(&top.media_type))
        .map_err(|e| PublishError::source(&source.describe(), format!("bad manifest: {e}")))?
    {
        Document::Index(index) => {
            for wanted in platforms {
                let Some(desc) = index
                    .manifests
                    .iter()
                    .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(wanted)))
                else {
                    let available = index
                        .manifests
                        .iter()
                        .filter_map(|m| m.platform.as_ref())
                        .map(|p| format!("{}/{}", p.os, p.architecture))
                        .collect();
                    return Err(PublishError::PlatformMissing {
                        source_desc: source.describe(),
                        wanted: wanted.clone(),
                        available,
                    });
                };
                let desc = desc.clone();
                let manifest_bytes = read_small(source, &desc)?;
                let image = copy_manifest(source, store, lock, &desc, &manifest_bytes)?;
                out.insert(wanted.clone(), image);
            }
        }
        Document::Manifest(_) => {
            let image = copy_manifest(source, store, lock, top, &bytes)?;
            let config: ImageConfig =
                serde_json::from_slice(&store.read_blob(&image.config.digest)?).map_err(|e| {
                    PublishError::source(&source.describe(), format!("bad image config: {e}"))
                })?;
            let have = format!("{}/{}", config.os, config.architecture);
            for wanted in platforms {
                if !crate::oci::Platform::parse(&have).matches(wanted) {
                    return Err(PublishError::PlatformMissing {
                        source_desc: source.describe(),
                        wanted: wanted.clone(),
                        available: vec![have.clone()],
                    });
                }
                out.insert(wanted.clone(), image.clone());
            }
        }
    }
    Ok(out)
}

fn copy_manifest(
    source: &mut dyn BlobSource,
    store: &Store,
    lock: &StoreLock,
    desc: &Descriptor,
    bytes: &[u8],
) -> Result<ImageArtifact, PublishError> {
    let Document::Manifest(manifest) = parse_document(bytes, Some(&desc.media_type))
        .map_err(|e| PublishError::source(&source.describe(), format!("bad manifest: {e}")))?
    else {
        return Err(PublishError::source(
            &source.describe(),
            "an index nested in an index is not supported".into(),
        ));
    };
    let config = copy_blob(source, store, lock, &manifest.config)?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        layers.push(copy_blob(source, store, lock, layer)?);
    }
    let (digest, size) = store.put_reader(
        lock,
        "manifest",
        &mut &bytes[..],
        Some(desc.digest.clone()),
        None,
    )?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    Ok(ImageArtifact {
        manifest: BlobRef {
            digest,
            size,
            media_type,
        },
        config,
        layers,
    })
}
