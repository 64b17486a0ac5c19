//! Images from an OCI image layout directory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::oci::{Descriptor, Index};
use crate::source::BlobSource;
use crate::PublishError;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct LayoutSource {
    dir: PathBuf,
}

impl LayoutSource {
    pub fn new(dir: &Path) -> LayoutSource {
        LayoutSource {
            dir: dir.to_path_buf(),
        }
    }

    /// The manifest or index `tag` names in `index.json`, or the only one there.
    pub fn select(&self, tag: Option<&str>) -> Result<Descriptor, PublishError> {
        let path = self.dir.join("index.json");
        let bytes = std::fs::read(&path).map_err(|e| PublishError::Io {
            path: path.clone(),
            source: e,
        })?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| PublishError::source(&self.describe(), format!("bad index.json: {e}")))?;
        let name_of = |d: &Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        let names: Vec<String> = index.manifests.iter().filter_map(name_of).collect();
        let found = match tag {
            Some(t) => index.manifests.iter().find(|d| {
                name_of(d)
                    .is_some_and(|n| n == t || n.rsplit_once(':').is_some_and(|(_, tag)| tag == t))
            }),
            None if index.manifests.len() == 1 => index.manifests.first(),
            None => {
                return Err(PublishError::source(
                    &self.describe(),
                    format!(
                        "it holds {} images; pick one with `image.tag` (names: {})",
                        index.manifests.len(),
                        names.join(", ")
                    ),
                ))
            }
        };
        found.cloned().ok_or_else(|| {
            PublishError::source(
                &self.describe(),
                format!(
                    "no image named `{}` (names: {})",
                    tag.unwrap_or_default(),
                    names.join(", ")
                ),
            )
        })
    }
}

impl BlobSource for LayoutSource {
    fn describe(&self) -> String {
        format!("OCI layout `{}`", self.dir.display())
    }

    fn open(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>, PublishError> {
        let path = self
            .dir
            .join("blobs")
            .join(desc.digest.algorithm())
            .join(desc.digest.hex());
        let f = File::open(&path).map_err(|e| PublishError::Io { path, source: e })?;
        Ok(Box::new(f))
    }
}
