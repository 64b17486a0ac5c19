//! A minimal, deterministic image around a static binary: one gzip layer holding the binary
//! at `/usr/local/bin/NAME`, `/tmp`, and the component's data volume directories owned by the
//! image user. Fixed timestamps, owners and order: the same binary and model always give the
//! same digests.
//!
//! [`check`] is what publish asks of every binary a model names, before storing any: a
//! regular file, a 64-bit little-endian ELF executable (`ET_EXEC` or `ET_DYN`) for the
//! machine of the declared platform. [`outside_warning`] says when it lives outside the
//! model's tree.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use appmodel_model::input::{open_regular, InputError, Links};

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

/// The ELF machine (`e_machine`) of a platform's executables, and its name.
fn elf_machine(platform: &str) -> Option<(u16, &'static str)> {
    match platform {
        "linux/amd64" => Some((62, "x86-64")),
        "linux/arm64" => Some((183, "AArch64")),
        _ => None,
    }
}

fn machine_name(machine: u16) -> String {
    match machine {
        3 => "i386".into(),
        40 => "32-bit ARM".into(),
        62 => "x86-64".into(),
        183 => "AArch64".into(),
        243 => "RISC-V".into(),
        other => format!("ELF machine {other}"),
    }
}

/// Why the 64 first bytes of a file are not an executable for `platform`, if they are not.
fn elf_problem(head: &[u8], platform: &str) -> Option<String> {
    const ET_EXEC: u16 = 2;
    const ET_DYN: u16 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" {
        return Some("is not an ELF executable".into());
    }
    let Some((want, want_name)) = elf_machine(platform) else {
        return Some(format!(
            "cannot be checked: appmodel knows the executables of `linux/amd64` and `linux/arm64`, not `{platform}`"
        ));
    };
    if head[4] != 2 || head[5] != 1 {
        return Some(format!(
            "is not a 64-bit little-endian ELF file, as {platform} ({want_name}) needs"
        ));
    }
    let e_type = u16::from_le_bytes([head[16], head[17]]);
    if e_type != ET_EXEC && e_type != ET_DYN {
        let what = match e_type {
            1 => "a relocatable object",
            4 => "a core dump",
            _ => "an ELF file of unknown type",
        };
        return Some(format!("is {what}, not an executable"));
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if machine != want {
        return Some(format!(
            "is an executable for {}, not for {platform} ({want_name})",
            machine_name(machine)
        ));
    }
    None
}

/// Checks that `path` is a regular file and an ELF executable of `platform`.
pub fn check(component: &str, platform: &str, path: &Path) -> Result<(), PublishError> {
    let bad = |reason: String| PublishError::BadBinary {
        component: component.to_string(),
        platform: platform.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let (file, _) = match open_regular(path, Links::Follow) {
        Ok(opened) => opened,
        Err(InputError::NotFound) => {
            return Err(PublishError::MissingBinary {
                component: component.to_string(),
                platform: platform.to_string(),
                path: path.to_path_buf(),
            })
        }
        Err(InputError::NotRegular(kind)) => return Err(bad(format!("is {kind}, not a file"))),
        Err(InputError::Io(source)) => {
            return Err(PublishError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(other) => return Err(bad(other.to_string())),
    };
    let mut head = Vec::with_capacity(64);
    file.take(64)
        .read_to_end(&mut head)
        .map_err(|source| PublishError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    match elf_problem(&head, platform) {
        Some(reason) => Err(bad(reason)),
        None => Ok(()),
    }
}

/// The trees a binary is expected in: the model's directory and, when the model lives in
/// a git working tree, that tree's root (the nearest ancestor holding `.git`).
fn expected_roots(model_dir: &Path) -> Vec<PathBuf> {
    let Ok(dir) = model_dir
        .canonicalize()
        .or_else(|_| std::env::current_dir().and_then(|d| d.join(model_dir).canonicalize()))
    else {
        return Vec::new();
    };
    let mut roots = vec![dir.clone()];
    if let Some(repo) = dir.ancestors().find(|a| a.join(".git").exists()) {
        roots.push(repo.to_path_buf());
    }
    roots
}

/// A warning when `path` resolves (links followed) outside the model's tree; see
/// [`expected_roots`]. The binary is still published: the vendor may mean it.
pub fn outside_warning(
    component: &str,
    platform: &str,
    model_dir: &Path,
    path: &Path,
) -> Option<String> {
    let resolved = path.canonicalize().ok()?;
    let roots = expected_roots(if model_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        model_dir
    });
    if roots.iter().any(|r| resolved.starts_with(r)) {
        return None;
    }
    Some(format!(
        "component `{component}`: binary for {platform} `{}` resolves to `{}`, outside the model's tree `{}`",
        path.display(),
        resolved.display(),
        roots
            .last()
            .map(|r| r.display().to_string())
            .unwrap_or_default()
    ))
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The first 64 bytes of an ELF64 little-endian file of `e_type` for `machine`.
    pub(crate) fn elf_header(e_type: u16, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // ELFCLASS64
        h[5] = 1; // little-endian
        h[6] = 1;
        h[16..18].copy_from_slice(&e_type.to_le_bytes());
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    fn check_bytes(bytes: &[u8], platform: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, bytes).unwrap();
        check("web", platform, &p)
            .map_err(|e| e.to_string().replace(&p.display().to_string(), "BIN"))
    }

    /// Regression: site trust defect 7b. publish packed any file a model named.
    #[test]
    fn only_executables_of_the_declared_platform_pass() {
        assert!(check_bytes(&elf_header(2, 62), "linux/amd64").is_ok());
        assert!(check_bytes(&elf_header(3, 62), "linux/amd64").is_ok());
        assert!(check_bytes(&elf_header(3, 183), "linux/arm64").is_ok());
        let cases: [(Vec<u8>, &str, &str); 7] = [
            (b"root:x:0:0::/root:/bin/sh\n".to_vec(), "linux/amd64", "is not an ELF executable"),
            (Vec::new(), "linux/amd64", "is not an ELF executable"),
            (elf_header(2, 183), "linux/amd64", "is an executable for AArch64, not for linux/amd64 (x86-64)"),
            (elf_header(2, 62), "linux/arm64", "is an executable for x86-64, not for linux/arm64 (AArch64)"),
            (elf_header(1, 62), "linux/amd64", "is a relocatable object, not an executable"),
            ({ let mut h = elf_header(2, 3); h[4] = 1; h }, "linux/amd64", "is not a 64-bit little-endian ELF file, as linux/amd64 (x86-64) needs"),
            (elf_header(2, 62), "linux/s390x", "cannot be checked: appmodel knows the executables of `linux/amd64` and `linux/arm64`, not `linux/s390x`"),
        ];
        for (bytes, platform, reason) in cases {
            assert_eq!(
                check_bytes(&bytes, platform).unwrap_err(),
                format!("component `web`: binary for {platform} at `BIN` {reason}")
            );
        }
    }

    /// Regression: site trust defect 7b. A directory was reported as "not found".
    #[test]
    fn a_directory_or_a_fifo_is_named_as_such_and_a_missing_file_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let e = check("web", "linux/amd64", dir.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "component `web`: binary for linux/amd64 at `{}` is a directory, not a file",
                dir.path().display()
            )
        );
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = check("web", "linux/amd64", &fifo).unwrap_err();
        assert!(e.to_string().ends_with("is a FIFO, not a file"), "{e}");
        let e = check("web", "linux/amd64", &dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, PublishError::MissingBinary { .. }), "{e}");
    }

    /// Regression: site trust defect 7b. A binary outside the model's tree was packed silently.
    #[test]
    fn a_binary_outside_the_models_tree_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let model_dir = dir.path().join("vendor/app");
        std::fs::create_dir_all(model_dir.join("bin")).unwrap();
        std::fs::write(model_dir.join("bin/a"), elf_header(2, 62)).unwrap();
        std::fs::write(dir.path().join("vendor/b"), elf_header(2, 62)).unwrap();
        let inside = model_dir.join("bin/a");
        assert_eq!(
            outside_warning("a", "linux/amd64", &model_dir, &inside),
            None
        );
        let up = model_dir.join("../b");
        let w = outside_warning("b", "linux/amd64", &model_dir, &up).unwrap();
        let real = dir.path().canonicalize().unwrap();
        assert_eq!(
            w,
            format!(
                "component `b`: binary for linux/amd64 `{}` resolves to `{}`, outside the model's tree `{}`",
                up.display(),
                real.join("vendor/b").display(),
                real.join("vendor/app").display()
            )
        );
        // A link inside the tree to a file outside it counts where it points.
        std::os::unix::fs::symlink(real.join("vendor/b"), model_dir.join("bin/link")).unwrap();
        assert!(
            outside_warning("b", "linux/amd64", &model_dir, &model_dir.join("bin/link")).is_some()
        );
        // In a git working tree, the whole tree is the model's.
        std::fs::create_dir(dir.path().join("vendor/.git")).unwrap();
        assert_eq!(outside_warning("b", "linux/amd64", &model_dir, &up), None);
        assert!(
            outside_warning("b", "linux/amd64", &model_dir, Path::new("/etc/hostname")).is_some()
        );
    }
}
