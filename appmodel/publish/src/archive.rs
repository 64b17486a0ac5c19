//! Images from a `docker save` / `podman save` archive. The tar is read entry by entry, in
//! two passes (find `manifest.json`, then stream the wanted files into the store); nothing
//! is unpacked to disk and no blob is held in memory whole.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use appmodel_model::record::{media, BlobRef, ImageArtifact};
use appmodel_store::{Store, StoreLock};
use serde::Deserialize;

use crate::oci::{Descriptor, ImageConfig, Manifest, Platform};
use crate::PublishError;

#[derive(Debug, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// `docker.io/library/x:1`, `library/x:1` and `x:1` name the same image; a bare tag matches too.
fn tag_matches(repo_tag: &str, wanted: &str) -> bool {
    let short = |s: &str| {
        s.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    short(repo_tag) == short(wanted)
        || repo_tag
            .rsplit_once(':')
            .is_some_and(|(_, tag)| tag == wanted)
}

fn open(path: &Path) -> Result<tar::Archive<File>, PublishError> {
    let f = File::open(path).map_err(|e| PublishError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(tar::Archive::new(f))
}

/// Copies the image `tag` picks (or the only one) from the archive into the store.
pub fn copy_archive(
    store: &Store,
    lock: &StoreLock,
    path: &Path,
    tag: Option<&str>,
    platforms: &[String],
) -> Result<BTreeMap<String, ImageArtifact>, PublishError> {
    let what = format!("archive `{}`", path.display());
    let bad = |m: String| PublishError::source(&what, m);
    let io = |e: std::io::Error| PublishError::Io {
        path: path.to_path_buf(),
        source: e,
    };

    // Pass 1: manifest.json and the symlinks docker uses to share layers.
    let mut manifest_json = None;
    let mut links: HashMap<String, String> = HashMap::new();
    let mut archive = open(path)?;
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = normalize(&entry.path().map_err(io)?.to_string_lossy());
        if entry.header().entry_type().is_symlink() {
            if let Ok(Some(target)) = entry.link_name() {
                let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                links.insert(
                    name.clone(),
                    normalize(&format!("{dir}/{}", target.to_string_lossy())),
                );
            }
        } else if name == "manifest.json" {
            let mut buf = Vec::new();
            entry
                .by_ref()
                .take(4 << 20)
                .read_to_end(&mut buf)
                .map_err(io)?;
            manifest_json = Some(buf);
        }
    }
    let manifest_json = manifest_json
        .ok_or_else(|| bad("it has no `manifest.json`; is it a `docker save` archive?".into()))?;
    let entries: Vec<ArchiveEntry> = serde_json::from_slice(&manifest_json)
        .map_err(|e| bad(format!("bad manifest.json: {e}")))?;
    let tags = || {
        entries
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match tag {
        Some(t) => entries
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|rt| tag_matches(rt, t))),
        None if entries.len() == 1 => entries.first(),
        None => {
            return Err(bad(format!(
                "it holds {} images; pick one with `image.tag` (tags: {})",
                entries.len(),
                tags()
            )))
        }
    }
    .ok_or_else(|| {
        bad(format!(
            "no image tagged `{}` (tags: {})",
            tag.unwrap_or_default(),
            tags()
        ))
    })?;

    let resolve = |p: &str| {
        let mut p = normalize(p);
        for _ in 0..8 {
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    };
    let config_path = resolve(&chosen.config);
    let layer_paths: Vec<String> = chosen.layers.iter().map(|l| resolve(l)).collect();

    // Pass 2: stream the config and layers into the store.
    let mut found: HashMap<String, BlobRef> = HashMap::new();
    let mut archive = open(path)?;
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = normalize(&entry.path().map_err(io)?.to_string_lossy());
        let is_config = name == config_path;
        if !is_config && !layer_paths.contains(&name)
            || found.contains_key(&name)
            || !entry.header().entry_type().is_file()
        {
            continue;
        }
        let entry_size = entry.size();
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            let n = entry.read(&mut magic[got..]).map_err(io)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let media_type = if is_config {
            media::OCI_CONFIG
        } else if magic[..got].starts_with(&[0x1f, 0x8b]) {
            media::OCI_LAYER_GZIP
        } else if magic[..got].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            media::OCI_LAYER_ZSTD
        } else {
            media::OCI_LAYER_TAR
        };
        let expected = name
            .strip_prefix("blobs/sha256/")
            .and_then(|h| appmodel_model::Digest::from_hex(h).ok());
        let mut reader = (&magic[..got]).chain(&mut entry);
        let (digest, size) = store.put_reader(
            lock,
            &format!("`{name}` in {what}"),
            &mut reader,
            expected,
            Some(entry_size),
        )?;
        found.insert(
            name,
            BlobRef {
                digest,
                size,
                media_type: media_type.into(),
            },
        );
    }
    let config = found
        .get(&config_path)
        .cloned()
        .ok_or_else(|| bad(format!("it lacks the config `{config_path}`")))?;
    let mut layers = Vec::new();
    for l in &layer_paths {
        layers.push(
            found
                .get(l)
                .cloned()
                .ok_or_else(|| bad(format!("it lacks the layer `{l}`")))?,
        );
    }
    let image_config: ImageConfig = serde_json::from_slice(&store.read_blob(&config.digest)?)
        .map_err(|e| bad(format!("bad image config: {e}")))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::from_ref(&config),
        layers: layers.iter().map(Descriptor::from_ref).collect(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| PublishError::Internal(e.to_string()))?;
    let (digest, size) = store.put_bytes(lock, "image manifest", &bytes)?;
    let image = ImageArtifact {
        manifest: BlobRef {
            digest,
            size,
            media_type: media::OCI_MANIFEST.into(),
        },
        config,
        layers,
    };
    let have = format!("{}/{}", image_config.os, image_config.architecture);
    let mut out = BTreeMap::new();
    for wanted in platforms {
        if !Platform::parse(&have).matches(wanted) {
            return Err(PublishError::PlatformMissing {
                source_desc: what.clone(),
                wanted: wanted.clone(),
                available: vec![have.clone()],
            });
        }
        out.insert(wanted.clone(), image.clone());
    }
    Ok(out)
}
