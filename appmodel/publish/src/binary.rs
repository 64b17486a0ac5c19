//! A minimal, deterministic image around a static binary: one gzip layer holding the binary
//! at `/usr/local/bin/NAME`, `/tmp`, and the component's data volume directories owned by the
//! image user. Fixed timestamps, owners and order: the same binary and model always give the
//! same digests.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use appmodel_model::record::{media, BlobRef, ImageArtifact};
use appmodel_model::types::{Component, VolumeKind};
use appmodel_model::Digest;
use appmodel_store::{Store, StoreLock};
use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};

use crate::oci::{Descriptor, History, ImageConfig, Manifest, Platform, RootFs, RunConfig};
use crate::PublishError;

/// The user images built from binaries run as unless the model says otherwise: nobody.
pub const DEFAULT_USER: &str = "65534:65534";
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Where the binary sits in the image.
pub fn binary_path_in_image(binary: &Path) -> String {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    format!("/usr/local/bin/{name}")
}

fn parse_user(user: &str) -> Option<(u64, u64)> {
    let mut parts = user.splitn(2, ':');
    let uid = parts.next()?.parse().ok()?;
    let gid = match parts.next() {
        Some(g) => g.parse().ok()?,
        None => uid,
    };
    Some((uid, gid))
}

struct Dir {
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Writes through to `inner` while hashing the bytes (the layer's uncompressed diff_id).
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    Ok(h)
}

/// Builds the image for `platform` and stores its blobs.
pub fn build(
    store: &Store,
    lock: &StoreLock,
    component: &Component,
    binary: &Path,
    platform: &str,
) -> Result<ImageArtifact, PublishError> {
    let user = component
        .user
        .clone()
        .unwrap_or_else(|| DEFAULT_USER.to_string());
    let (uid, gid) = parse_user(&user).ok_or_else(|| PublishError::BadUser {
        component: component.name.clone(),
        user: user.clone(),
    })?;
    let in_image = binary_path_in_image(binary);

    // Every directory, sorted, parents before children.
    let mut dirs: BTreeMap<String, Dir> = BTreeMap::new();
    let add_parents = |path: &str, dirs: &mut BTreeMap<String, Dir>| {
        let mut acc = String::new();
        for part in path.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
            acc.push_str(part);
            acc.push('/');
            dirs.entry(acc.clone()).or_insert(Dir {
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
        }
    };
    add_parents("/usr/local/bin", &mut dirs);
    dirs.insert(
        "tmp/".into(),
        Dir {
            mode: 0o1777,
            uid: 0,
            gid: 0,
        },
    );
    for v in component
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Data)
    {
        add_parents(&v.path, &mut dirs);
        let key = format!("{}/", v.path.trim_matches('/'));
        dirs.insert(
            key,
            Dir {
                mode: 0o750,
                uid,
                gid,
            },
        );
    }

    let mut file = File::open(binary).map_err(|e| PublishError::Io {
        path: binary.to_path_buf(),
        source: e,
    })?;
    let size = file
        .metadata()
        .map_err(|e| PublishError::Io {
            path: binary.to_path_buf(),
            source: e,
        })?
        .len();

    let writer = store.blob_writer(lock, &format!("layer for `{}`", component.name), None)?;
    let gz = GzBuilder::new().mtime(0).write(writer, Compression::new(6));
    let mut tar = tar::Builder::new(HashWriter {
        inner: gz,
        hasher: Sha256::new(),
    });
    let io_err = |e: io::Error| PublishError::Io {
        path: binary.to_path_buf(),
        source: e,
    };
    let mut entries: Vec<(String, Option<&Dir>)> =
        dirs.iter().map(|(p, d)| (p.clone(), Some(d))).collect();
    entries.push((in_image.trim_start_matches('/').to_string(), None));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, dir) in entries {
        match dir {
            Some(d) => {
                let h = header(&path, tar::EntryType::Directory, d.mode, d.uid, d.gid, 0)
                    .map_err(io_err)?;
                tar.append(&h, io::empty()).map_err(io_err)?;
            }
            None => {
                let h =
                    header(&path, tar::EntryType::Regular, 0o755, 0, 0, size).map_err(io_err)?;
                tar.append(&h, &mut file).map_err(io_err)?;
            }
        }
    }
    let hw = tar.into_inner().map_err(io_err)?;
    let diff_id = Digest::from_sha256(&hw.hasher.finalize());
    let blob = hw.inner.finish().map_err(io_err)?;
    let (layer_digest, layer_size) = blob.commit()?;

    let p = Platform::parse(platform);
    let ports: BTreeMap<String, serde_json::Value> = component
        .ports
        .iter()
        .map(|port| {
            let proto = if port.protocol() == appmodel_model::types::Protocol::Udp {
                "udp"
            } else {
                "tcp"
            };
            (format!("{}/{proto}", port.port), serde_json::json!({}))
        })
        .collect();
    let mut env = vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()];
    for (k, v) in &component.env {
        let v = v.to_string();
        if !v.contains("${") {
            env.push(format!("{k}={v}"));
        }
    }
    let config = ImageConfig {
        created: Some(EPOCH.into()),
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        config: RunConfig {
            user: Some(user),
            exposed_ports: (!ports.is_empty()).then_some(ports),
            env: Some(env),
            entrypoint: Some(vec![in_image]),
            cmd: None,
            working_dir: Some("/".into()),
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(EPOCH.into()),
            created_by: Some("appmodel publish (from_binary)".into()),
        }],
    };
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| PublishError::Internal(e.to_string()))?;
    let (config_digest, config_size) = store.put_bytes(lock, "image config", &config_bytes)?;
    let config_ref = BlobRef {
        digest: config_digest,
        size: config_size,
        media_type: media::OCI_CONFIG.into(),
    };
    let layer_ref = BlobRef {
        digest: layer_digest,
        size: layer_size,
        media_type: media::OCI_LAYER_GZIP.into(),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::from_ref(&config_ref),
        layers: vec![Descriptor::from_ref(&layer_ref)],
    };
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| PublishError::Internal(e.to_string()))?;
    let (digest, size) = store.put_bytes(lock, "image manifest", &manifest_bytes)?;
    Ok(ImageArtifact {
        manifest: BlobRef {
            digest,
            size,
            media_type: media::OCI_MANIFEST.into(),
        },
        config: config_ref,
        layers: vec![layer_ref],
    })
}
