//! Volume sets: one bundle split across discs or sticks (docs/bundle-format.md, "Volume
//! sets"). The contract shared by the exporter, which packs them, and the importer, which
//! puts them back together.
//!
//! Every volume holds the signed bundle manifest, every bundle file outside `blobs/` (the
//! static appmodel, the README, the form's files: each volume installs on its own), its
//! own signed [`VolumeManifest`] and some **parts**: pieces of the blobs, each a whole file
//! named by its sha256 under `parts/`, none 4 GiB or larger (FAT32's limit, and the ISO
//! readers'). The manifest of every volume lists every part of the set and the volume it is
//! on, so any one volume says exactly which are still missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bundle::{is_safe_path, BundleManifest, Form};
use crate::Digest;

/// The version of the volume manifest's format.
pub const VOLUME_FORMAT: u32 = 1;
/// The volume manifest, at the root of every volume.
pub const VOLUME_FILE: &str = "volume.json";
/// Its signature (the bundle's key, minisign format).
pub const VOLUME_SIGNATURE_FILE: &str = "volume.json.minisig";
/// Where the parts are.
pub const PARTS_DIR: &str = "parts";
/// No part is larger than this: FAT32 holds files up to 4 GiB − 1 byte, ISO 9660 readers
/// up to 4 GiB − 1 per extent.
pub const MAX_PART: u64 = (4 << 30) - (1 << 20);
/// The largest volume manifest read (a set of 100,000 parts is about 25 MiB).
pub const MAX_VOLUME_MANIFEST: u64 = 32 << 20;

/// The media names `--media` knows, with the bytes each holds.
pub const MEDIA: &[(&str, u64, &str)] = &[
    ("cd700", 737_280_000, "an 80-minute CD-R (700 MiB)"),
    ("dvd5", 4_700_372_992, "a single-layer DVD±R (4.7 GB)"),
    ("dvd9", 8_543_666_176, "a dual-layer DVD±R (8.5 GB)"),
    ("bd25", 25_025_314_816, "a single-layer BD-R (25 GB)"),
    (
        "usb-fat32",
        32_000_000_000,
        "a 32 GB USB stick formatted FAT32",
    ),
];

/// Whether a media name is an optical disc (its volumes are written as ISO images).
pub fn is_optical(name: &str) -> bool {
    matches!(name, "cd700" | "dvd5" | "dvd9" | "bd25")
}

/// The capacity of `--media NAME|SIZE` (`700M`, `4Gi`, `100000000`), in bytes.
pub fn media_capacity(text: &str) -> Option<u64> {
    MEDIA
        .iter()
        .find(|(name, _, _)| *name == text)
        .map(|(_, bytes, _)| *bytes)
        .or_else(|| crate::units::parse_quantity(text))
}

/// One piece of a bundle file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// The bundle file (a path of bundle.json's `files`) it is a piece of.
    pub file: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: Digest,
    /// The volume (1-based) it is on.
    pub volume: u32,
}

impl Part {
    /// Its path on its volume.
    pub fn path(&self) -> String {
        format!("{PARTS_DIR}/{}", self.sha256.hex())
    }
}

/// `volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeManifest {
    pub format: u32,
    /// The set: the same on every volume of one split, different for another split (of
    /// another bundle, or of the same one for other media).
    pub set: String,
    /// sha256 of the bundle.json bytes on every volume.
    pub bundle: Digest,
    pub app: String,
    pub version: String,
    pub form: Form,
    /// This volume, 1-based, and how many there are.
    pub volume: u32,
    pub volumes: u32,
    /// The capacity the set was split for, in bytes.
    pub capacity: u64,
    /// Every part of the set, in file then offset order.
    pub parts: Vec<Part>,
}

impl VolumeManifest {
    /// The parts on this volume.
    pub fn here(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(move |p| p.volume == self.volume)
    }

    /// Checks this manifest against the bundle's: the same app, version and form; a
    /// volume number within the set; every part of a listed `blobs/` file, and each such
    /// file cut into parts that cover it exactly, in order. `Err` says what is wrong.
    pub fn check(&self, bundle: &BundleManifest) -> Result<(), String> {
        if self.format != VOLUME_FORMAT {
            return Err(format!(
                "volume format {} is not {VOLUME_FORMAT}, the one this appmodel reads",
                self.format
            ));
        }
        if (self.app.as_str(), self.version.as_str(), self.form)
            != (bundle.app.as_str(), bundle.version.as_str(), bundle.form)
        {
            return Err(format!(
                "it is a volume of {} {} ({}), and its bundle.json is {} {} ({})",
                self.app, self.version, self.form, bundle.app, bundle.version, bundle.form
            ));
        }
        if self.volumes == 0 || self.volume == 0 || self.volume > self.volumes {
            return Err(format!(
                "it says it is volume {} of {}",
                self.volume, self.volumes
            ));
        }
        if self.set.len() != 64 || !self.set.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("its set id is not 64 hex digits".into());
        }
        let blobs: BTreeMap<&str, (u64, &Digest)> = bundle
            .files
            .iter()
            .filter(|f| f.path.starts_with("blobs/"))
            .map(|f| (f.path.as_str(), (f.size, &f.sha256)))
            .collect();
        let mut covered: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &self.parts {
            let Some(&(size, sha256)) = blobs.get(p.file.as_str()) else {
                return Err(format!(
                    "a part is of `{}`, which bundle.json does not list as a blob",
                    p.file
                ));
            };
            if !is_safe_path(&p.path()) {
                return Err(format!("a part of `{}` has an unsafe name", p.file));
            }
            if p.volume == 0 || p.volume > self.volumes {
                return Err(format!(
                    "a part of `{}` is on volume {} of {}",
                    p.file, p.volume, self.volumes
                ));
            }
            if p.size == 0 || p.size > MAX_PART {
                return Err(format!("a part of `{}` is {} bytes", p.file, p.size));
            }
            let at = covered.entry(p.file.as_str()).or_insert(0);
            if p.offset != *at || p.offset.saturating_add(p.size) > size {
                return Err(format!(
                    "the parts of `{}` do not follow each other (one at byte {}, expected {})",
                    p.file, p.offset, at
                ));
            }
            // A part that is a whole blob is that blob: a site keeps it as the blob
            // without hashing it again.
            if p.offset == 0 && p.size == size && &p.sha256 != sha256 {
                return Err(format!(
                    "the one part of `{}` has another sha256 than the blob",
                    p.file
                ));
            }
            *at += p.size;
        }
        for (file, (size, _)) in &blobs {
            let got = covered.get(file).copied().unwrap_or(0);
            if got != *size && *size > 0 {
                return Err(format!(
                    "the parts of `{file}` hold {got} of its {size} bytes"
                ));
            }
        }
        Ok(())
    }

    /// The volumes holding any of `parts` (by sha256), in order.
    pub fn volumes_of<'a>(&self, parts: impl IntoIterator<Item = &'a Part>) -> Vec<u32> {
        let mut v: Vec<u32> = parts.into_iter().map(|p| p.volume).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::BundleFile;

    fn digest(n: u8) -> Digest {
        Digest::from_sha256(&[n; 32])
    }

    fn bundle() -> BundleManifest {
        let mut m: BundleManifest = serde_json::from_value(serde_json::json!({
            "format": 1, "app": "im-stack", "version": "1.1.0", "form": "compose",
            "platforms": ["linux/amd64"], "written_by": "t", "files": []
        }))
        .unwrap();
        m.files = vec![BundleFile {
            path: format!("blobs/sha256/{}", digest(9).hex()),
            size: 100,
            sha256: digest(9),
            executable: false,
        }];
        m
    }

    fn volume(parts: Vec<(u64, u64, u32)>) -> VolumeManifest {
        let file = format!("blobs/sha256/{}", digest(9).hex());
        VolumeManifest {
            format: VOLUME_FORMAT,
            set: "ab".repeat(32),
            bundle: digest(1),
            app: "im-stack".into(),
            version: "1.1.0".into(),
            form: Form::Compose,
            volume: 1,
            volumes: 2,
            capacity: 80,
            parts: parts
                .into_iter()
                .enumerate()
                .map(|(i, (offset, size, volume))| Part {
                    file: file.clone(),
                    offset,
                    size,
                    sha256: digest(i as u8 + 20),
                    volume,
                })
                .collect(),
        }
    }

    #[test]
    fn parts_must_cover_each_blob_exactly_in_order() {
        assert_eq!(
            volume(vec![(0, 60, 1), (60, 40, 2)]).check(&bundle()),
            Ok(())
        );
        for (parts, expected) in [
            (vec![(0, 60, 1)], "hold 60 of its 100 bytes"),
            (vec![(0, 60, 1), (50, 50, 2)], "do not follow each other"),
            (vec![(0, 60, 1), (60, 50, 2)], "do not follow each other"),
            (vec![(0, 60, 1), (60, 40, 3)], "is on volume 3 of 2"),
            (vec![(0, 0, 1), (0, 100, 2)], "is 0 bytes"),
        ] {
            let e = volume(parts).check(&bundle()).unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
        let e = volume(vec![(0, 100, 1)]).check(&bundle()).unwrap_err();
        assert!(e.contains("another sha256 than the blob"), "{e}");
        let mut whole = volume(vec![(0, 100, 1)]);
        whole.parts[0].sha256 = digest(9);
        assert_eq!(whole.check(&bundle()), Ok(()));
        let mut v = whole.clone();
        v.parts[0].file = "record.json".into();
        assert!(v
            .check(&bundle())
            .unwrap_err()
            .contains("does not list as a blob"));
        let mut v = whole.clone();
        v.version = "1.0.0".into();
        assert!(v
            .check(&bundle())
            .unwrap_err()
            .contains("its bundle.json is"));
        let mut v = whole;
        v.volume = 3;
        assert!(v.check(&bundle()).unwrap_err().contains("volume 3 of 2"));
    }

    #[test]
    fn media_names_and_sizes() {
        assert_eq!(media_capacity("cd700"), Some(737_280_000));
        assert_eq!(media_capacity("100Mi"), Some(100 << 20));
        assert_eq!(media_capacity("700M"), Some(700_000_000));
        assert_eq!(media_capacity("dvd"), None);
        assert!(is_optical("dvd5") && !is_optical("usb-fat32"));
    }
}
