//! The store's `index.json`: one descriptor per published image manifest, so OCI tools can
//! address images as `oci:STORE:APP/COMPONENT:VERSION`.

use appmodel_model::record::{media, VersionRecord};
use serde_json::{json, Value};

use crate::{write_atomic, Result, Store};

pub(crate) fn write(store: &Store, records: &[VersionRecord]) -> Result<()> {
    let mut manifests: Vec<Value> = Vec::new();
    for r in records {
        for (component, artifacts) in &r.components {
            for (i, (platform, image)) in artifacts.images.iter().enumerate() {
                let mut parts = platform.split('/');
                let os = parts.next().unwrap_or_default();
                let arch = parts.next().unwrap_or_default();
                let base = format!("{}/{component}:{}", r.app, r.version);
                let mut names = vec![format!("{base}-{os}-{arch}")];
                if i == 0 {
                    names.insert(0, base);
                }
                for name in names {
                    manifests.push(json!({
                        "mediaType": image.manifest.media_type,
                        "digest": image.manifest.digest,
                        "size": image.manifest.size,
                        "platform": {"os": os, "architecture": arch},
                        "annotations": {
                            "org.opencontainers.image.ref.name": name,
                            "dev.appmodel.app": r.app,
                            "dev.appmodel.version": r.version,
                            "dev.appmodel.component": component,
                        }
                    }));
                }
            }
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
    write_atomic(&store.root().join("index.json"), &bytes)
}
