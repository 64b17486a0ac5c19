//! Volume sets (`export --media cd700|dvd5|dvd9|bd25|usb-fat32|SIZE`): one planned bundle
//! split across volumes that each verify and install on their own
//! ([`appmodel_model::volume`], docs/bundle-format.md "Volume sets").
//!
//! Each volume is written as a bundle of its own through the ordinary writers (a directory,
//! or an ISO image for optical media): the same bundle.json and signature, every file
//! outside `blobs/`, its signed `volume.json`, and its share of the blobs as parts. Blobs
//! are packed in path order, filling each volume; a blob that does not fit in what is left
//! is cut there, so only the last part of a volume is a piece of a longer blob, and no part
//! reaches [`MAX_PART`]. The same version and media give the same volumes, byte for byte.
//!
//! Every volume's manifest lists the sha256 of every part of the set. Directories get
//! their parts first, each hashed as it is written, then their manifests; an ISO image is
//! written in one pass, manifest included, so the parts cut from a blob are hashed
//! beforehand (one more read of those bytes).

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use appmodel_model::bundle::BundleFile;
use appmodel_model::volume::{
    Part, VolumeManifest, MAX_PART, PARTS_DIR, VOLUME_FILE, VOLUME_FORMAT, VOLUME_SIGNATURE_FILE,
};
use appmodel_model::Digest;
use appmodel_store::Store;
use sha2::{Digest as _, Sha256};

use crate::plan::{json_bytes, Plan, PlannedFile, Source};
use crate::{io_err, ExportError, Signer};

/// How a set is written.
pub struct VolumeSet {
    /// The directory the volumes go in (`vol01/` … or `vol01.iso` …); it must not exist.
    pub dir: PathBuf,
    /// Bytes each volume may hold.
    pub capacity: u64,
    /// ISO images (dated and labelled from these options) instead of directories.
    pub iso: Option<appmodel_media::IsoOptions>,
}

/// The smallest piece a blob is cut into to fill a volume: below it, the blob starts on the
/// next volume instead.
const MIN_PART: u64 = 1 << 20;
/// What a file costs an ISO image beyond its bytes: its sector padding and its directory
/// records in both trees.
const FILE_COST: u64 = 2048 + 1024;
/// An ISO image's own structures (system area, descriptors, path tables, directories).
const IMAGE_COST: u64 = 512 << 10;
/// A volume manifest's bytes per part listed (a part is about 250 bytes of JSON).
const PART_JSON: u64 = 320;

/// One volume's name in the set's directory.
pub fn volume_name(n: u32, iso: bool) -> String {
    if iso {
        format!("vol{n:02}.iso")
    } else {
        format!("vol{n:02}")
    }
}

/// The parts of every blob, each with the volume it goes on (hashes not yet known).
fn pack(blobs: &[&PlannedFile], payload: u64) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut volume = 1u32;
    let mut used = 0u64;
    for f in blobs {
        let mut offset = 0;
        while offset < f.entry.size {
            let left = f.entry.size - offset;
            let room = payload.saturating_sub(used + FILE_COST);
            // (The payload leaves an empty volume at least MIN_PART: this ends.)
            if room < left && room < MIN_PART {
                volume += 1;
                used = 0;
                continue;
            }
            let take = left.min(room).min(MAX_PART);
            parts.push(Part {
                file: f.entry.path.clone(),
                offset,
                size: take,
                sha256: f.entry.sha256.clone(),
                volume,
            });
            used += take + FILE_COST;
            offset += take;
        }
    }
    parts
}

/// The sha256 of every part that is a piece of its blob (a whole blob's is the blob's).
fn hash_parts(store: &Store, parts: &mut [Part], plan: &Plan) -> Result<(), ExportError> {
    for p in parts.iter_mut() {
        let size = plan
            .files
            .iter()
            .find(|f| f.entry.path == p.file)
            .map_or(0, |f| f.entry.size);
        if p.offset == 0 && p.size == size {
            continue;
        }
        let blob = &p.sha256;
        let path = store.blob_path(blob);
        let mut file = store.open_blob(blob)?;
        file.seek(std::io::SeekFrom::Start(p.offset))
            .map_err(io_err("read", &path))?;
        let mut h = Sha256::new();
        let mut limited = file.take(p.size);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = limited.read(&mut buf).map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        p.sha256 = Digest::from_sha256(&h.finalize());
    }
    Ok(())
}

/// Writes every part of a set of directories on its volume (`DIR/volNN/parts/<sha256>`),
/// hashing it as it is written: each part's sha256 is known once it is on its volume. A
/// part that is a whole blob is checked against the blob's sha256.
fn write_parts(
    store: &Store,
    blobs: &[&PlannedFile],
    parts: &mut [Part],
    dir: &Path,
) -> Result<(), ExportError> {
    let mut dirs = std::collections::BTreeSet::new();
    for p in parts.iter_mut() {
        let size = blobs
            .iter()
            .find(|f| f.entry.path == p.file)
            .map_or(0, |f| f.entry.size);
        let whole = p.offset == 0 && p.size == size;
        let blob = p.sha256.clone();
        let into = dir.join(volume_name(p.volume, false)).join(PARTS_DIR);
        if dirs.insert(into.clone()) {
            std::fs::create_dir_all(&into).map_err(io_err("create", &into))?;
        }
        let planned = PlannedFile {
            entry: BundleFile {
                path: p.path(),
                size: p.size,
                sha256: blob.clone(),
                executable: false,
            },
            source: Source::Part {
                blob: blob.clone(),
                offset: p.offset,
            },
        };
        let tmp = into.join(format!(".{}-{}.partial", blob.hex(), p.offset));
        let (actual, n) = crate::write::copy_to(store, &planned, &tmp)?;
        if n != p.size || (whole && actual != blob) {
            return Err(ExportError::CorruptBlob {
                digest: blob,
                actual,
            });
        }
        p.sha256 = actual;
        let dest = dir.join(volume_name(p.volume, false)).join(p.path());
        std::fs::rename(&tmp, &dest).map_err(io_err("rename into", &dest))?;
    }
    for d in &dirs {
        appmodel_store::sync_dir(d)?;
    }
    Ok(())
}

/// The set's id: the bundle and the capacity it was split for.
fn set_id(bundle: &Digest, capacity: u64) -> String {
    let mut h = Sha256::new();
    h.update(b"appmodel volume set v1\0");
    h.update(bundle.hex().as_bytes());
    h.update(capacity.to_string().as_bytes());
    Digest::from_sha256(&h.finalize()).hex().to_string()
}

fn bytes_entry(path: &str, bytes: Vec<u8>) -> PlannedFile {
    PlannedFile {
        entry: BundleFile {
            path: path.to_string(),
            size: bytes.len() as u64,
            sha256: Digest::from_sha256(&Sha256::digest(&bytes)),
            executable: false,
        },
        source: Source::Bytes(bytes),
    }
}

/// Writes the set; returns each volume's path, in order.
pub fn write_volumes(
    store: &Store,
    plan: &Plan,
    signature: Option<&str>,
    signer: Option<Signer<'_>>,
    set: &VolumeSet,
) -> Result<Vec<PathBuf>, ExportError> {
    if set.dir.exists() {
        return Err(ExportError::OutputExists(set.dir.clone()));
    }
    let (blobs, common): (Vec<&PlannedFile>, Vec<&PlannedFile>) = plan
        .files
        .iter()
        .partition(|f| f.entry.path.starts_with("blobs/"));
    // What every volume carries besides its parts, with room for its volume manifest.
    let fixed: u64 = common.iter().map(|f| f.entry.size + FILE_COST).sum::<u64>()
        + plan.manifest_bytes.len() as u64
        + 4 * FILE_COST
        + 2 * 1024
        + IMAGE_COST;
    let mut payload = set.capacity.saturating_sub(fixed);
    let mut parts = loop {
        if payload < MIN_PART + FILE_COST {
            return Err(ExportError::MediaTooSmall {
                capacity: set.capacity,
                needed: fixed + MIN_PART + FILE_COST,
            });
        }
        let parts = pack(&blobs, payload);
        // The manifest lists every part on every volume: make room for it and pack again.
        let listing = parts.len() as u64 * PART_JSON + 4096;
        if payload + listing <= set.capacity.saturating_sub(fixed) {
            break parts;
        }
        payload = set.capacity.saturating_sub(fixed + listing);
    };
    let bundle = Digest::from_sha256(&Sha256::digest(&plan.manifest_bytes));
    let volumes = parts.last().map_or(1, |p| p.volume);
    let tmp = set.dir.with_file_name(format!(
        ".{}.partial-{}",
        set.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
    let result = (|| {
        if set.iso.is_none() {
            // Directories: every part is written first, hashed as it is, so no part is read
            // twice; the volume manifests, which list every part's sha256, come after.
            write_parts(store, &blobs, &mut parts, &tmp)?;
        } else {
            hash_parts(store, &mut parts, plan)?;
        }
        let mut out = Vec::new();
        for n in 1..=volumes {
            let manifest = VolumeManifest {
                format: VOLUME_FORMAT,
                set: set_id(&bundle, set.capacity),
                bundle: bundle.clone(),
                app: plan.manifest.app.clone(),
                version: plan.manifest.version.clone(),
                form: plan.manifest.form,
                volume: n,
                volumes,
                capacity: set.capacity,
                parts: parts.clone(),
            };
            let vbytes = json_bytes(&manifest);
            let mut files: Vec<PlannedFile> = common.iter().map(|f| (*f).clone()).collect();
            if let Some(sign) = signer {
                files.push(bytes_entry(
                    VOLUME_SIGNATURE_FILE,
                    sign(&vbytes).map_err(ExportError::Sign)?.into_bytes(),
                ));
            }
            files.push(bytes_entry(VOLUME_FILE, vbytes));
            let mut seen = std::collections::BTreeSet::new();
            // (A directory's parts are on it already.)
            let here = manifest.here().filter(|_| set.iso.is_some());
            for p in here.filter(|p| seen.insert(p.sha256.clone())) {
                let blob = blobs
                    .iter()
                    .find(|f| f.entry.path == p.file)
                    .map(|f| f.entry.sha256.clone())
                    .unwrap_or_else(|| p.sha256.clone());
                files.push(PlannedFile {
                    entry: BundleFile {
                        path: p.path(),
                        size: p.size,
                        sha256: p.sha256.clone(),
                        executable: false,
                    },
                    source: Source::Part {
                        blob,
                        offset: p.offset,
                    },
                });
            }
            files.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
            let volume_plan = Plan {
                manifest: plan.manifest.clone(),
                manifest_bytes: plan.manifest_bytes.clone(),
                files,
                tool: plan.tool.clone(),
                other_tools: plan.other_tools.clone(),
            };
            let path = tmp.join(volume_name(n, set.iso.is_some()));
            match &set.iso {
                Some(opts) => {
                    let opts = appmodel_media::IsoOptions {
                        volume_id: format!("V{n:02} {}", opts.volume_id),
                        time: opts.time,
                    };
                    crate::write::write_iso(store, &volume_plan, signature, &path, &opts)?;
                    let size = std::fs::metadata(&path)
                        .map_err(io_err("read", &path))?
                        .len();
                    if size > set.capacity {
                        return Err(ExportError::MediaTooSmall {
                            capacity: set.capacity,
                            needed: size,
                        });
                    }
                }
                None => {
                    crate::write::write_dir_into(store, &volume_plan, signature, &path)?;
                }
            }
            out.push(set.dir.join(volume_name(n, set.iso.is_some())));
        }
        std::fs::rename(&tmp, &set.dir).map_err(io_err("rename into", &set.dir))?;
        let parent = match set.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        appmodel_store::sync_dir(parent)?;
        Ok(out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(path: &str, size: u64) -> PlannedFile {
        PlannedFile {
            entry: BundleFile {
                path: path.into(),
                size,
                sha256: Digest::from_sha256(&[size as u8; 32]),
                executable: false,
            },
            source: Source::Bytes(Vec::new()),
        }
    }

    #[test]
    fn blobs_fill_each_volume_and_are_cut_only_to_fill_it() {
        let mib = 1 << 20;
        let files = [
            blob("blobs/sha256/a", 3 * mib),
            blob("blobs/sha256/b", 10 * mib),
            blob("blobs/sha256/c", 100),
        ];
        let refs: Vec<&PlannedFile> = files.iter().collect();
        let payload = 5 * mib;
        let parts = pack(&refs, payload);
        // Each volume holds at most its payload; parts of one blob follow each other.
        for v in 1..=parts.last().unwrap().volume {
            let used: u64 = parts
                .iter()
                .filter(|p| p.volume == v)
                .map(|p| p.size + FILE_COST)
                .sum();
            assert!(used <= payload, "volume {v}: {used}");
        }
        for f in &files {
            let mut at = 0;
            for p in parts.iter().filter(|p| p.file == f.entry.path) {
                assert_eq!(p.offset, at);
                at += p.size;
            }
            assert_eq!(at, f.entry.size, "{}", f.entry.path);
        }
        // `a` fits whole on volume 1; `b` starts in what is left and goes on.
        assert_eq!(parts[0].size, 3 * mib);
        assert_eq!(
            (parts[1].file.as_str(), parts[1].volume),
            ("blobs/sha256/b", 1)
        );
        assert!(parts.iter().all(|p| p.size < MAX_PART));
        // Tiny room left: the next blob starts on the next volume instead of a crumb.
        let parts = pack(&refs[..2], 3 * mib + 2 * FILE_COST + 1000);
        assert_eq!(parts[1].volume, 2, "{parts:?}");
    }
}
