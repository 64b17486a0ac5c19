//! The published version record: the model as written plus every artifact pinned by digest.
//!
//! A record is immutable once written. The store keeps one per app version; a bundle carries
//! the record of the version it delivers, and the site keeps it as the truth of what was
//! installed. Exporters and the importer read nothing else about a version.

use crate::version::Version;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::types::AppModel;

/// The record format this build writes.
pub const RECORD_FORMAT: u32 = 1;

/// OCI media types used in records and layouts.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const BINARY: &str = "application/octet-stream";
    pub const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
    pub const SPDX: &str = "application/spdx+json";
}

/// A blob: its digest, size and media type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    #[serde(rename = "mediaType")]
    pub media_type: String,
}

/// One platform's image: manifest, config and layers, all in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageArtifact {
    pub manifest: BlobRef,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
}

impl ImageArtifact {
    pub fn blobs(&self) -> impl Iterator<Item = &BlobRef> {
        std::iter::once(&self.manifest)
            .chain(std::iter::once(&self.config))
            .chain(self.layers.iter())
    }
}

/// What was published for one component.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ComponentArtifacts {
    /// Where the image came from, pinned: `registry/repo:tag@sha256:...`, `oci-layout:DIR`,
    /// `archive:FILE`, `from_binary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_source: Option<String>,
    /// Image per platform (`linux/amd64`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, ImageArtifact>,
    /// With images for more than one platform: the OCI image index naming each platform's
    /// manifest, the one reference a registry (and so the helm form) serves for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<BlobRef>,
    /// Static executable per platform.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binaries: BTreeMap<String, BlobRef>,
    /// The vendor's bill of materials of the component (media type CycloneDX or SPDX JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<BlobRef>,
}

/// An immutable published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub format: u32,
    pub app: String,
    pub version: Version,
    /// The appmodel release that published it.
    pub published_by: String,
    /// RFC 3339 time of first publication (not part of the content).
    pub published_at: String,
    /// The model file's name and text exactly as written.
    pub model_file: String,
    pub model_text: String,
    /// The model as read, with `app.version` set to the published version.
    pub model: AppModel,
    pub components: BTreeMap<String, ComponentArtifacts>,
}

impl VersionRecord {
    /// A record of a model not published (no artifacts, no publication time): for code
    /// and tests that need a record but no store. The model must be validated (its version
    /// is then a semantic version).
    pub fn unpublished(model_file: &str, model_text: String, model: AppModel) -> VersionRecord {
        VersionRecord {
            format: RECORD_FORMAT,
            app: model.app.name.clone(),
            version: Version::parse(&model.app.version)
                .expect("a validated model's version is a semantic version"),
            published_by: format!("appmodel {}", env!("CARGO_PKG_VERSION")),
            published_at: String::new(),
            model_file: model_file.to_string(),
            model_text,
            model,
            components: BTreeMap::new(),
        }
    }

    /// Every blob the version needs, each once.
    pub fn blobs(&self) -> BTreeMap<&Digest, &BlobRef> {
        let mut all = BTreeMap::new();
        for c in self.components.values() {
            for img in c.images.values() {
                for b in img.blobs() {
                    all.insert(&b.digest, b);
                }
            }
            for b in c.binaries.values().chain(&c.index).chain(&c.sbom) {
                all.insert(&b.digest, b);
            }
        }
        all
    }

    /// Total bytes of the version's distinct blobs.
    pub fn unique_bytes(&self) -> u64 {
        self.blobs().values().map(|b| b.size).sum()
    }

    /// What differs in content between two records of the same version, for people.
    /// Empty when they are the same (publication time and tool version aside).
    pub fn content_differences(&self, other: &VersionRecord) -> Vec<String> {
        let mut out = Vec::new();
        if self.model_text != other.model_text {
            let line = self
                .model_text
                .lines()
                .zip(other.model_text.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || {
                        self.model_text
                            .lines()
                            .count()
                            .min(other.model_text.lines().count())
                            + 1
                    },
                    |i| i + 1,
                );
            out.push(format!("the model text differs from line {line} on"));
        } else if self.model != other.model {
            out.push("the model differs".to_string());
        }
        let names: BTreeSet<&String> = self
            .components
            .keys()
            .chain(other.components.keys())
            .collect();
        for name in names {
            match (self.components.get(name), other.components.get(name)) {
                (Some(a), Some(b)) if a != b => {
                    for (platform, img) in &a.images {
                        if b.images.get(platform).map(|i| &i.manifest.digest)
                            != Some(&img.manifest.digest)
                        {
                            out.push(format!(
                                "component `{name}`: image for {platform} was {}",
                                img.manifest.digest
                            ));
                        }
                    }
                    for (platform, bin) in &a.binaries {
                        if b.binaries.get(platform).map(|x| &x.digest) != Some(&bin.digest) {
                            out.push(format!(
                                "component `{name}`: binary for {platform} was {}",
                                bin.digest
                            ));
                        }
                    }
                    if a.image_source != b.image_source {
                        out.push(format!("component `{name}`: image source differs"));
                    }
                    if !out
                        .iter()
                        .any(|l| l.starts_with(&format!("component `{name}`")))
                    {
                        out.push(format!("component `{name}`: artifacts differ"));
                    }
                }
                (Some(_), None) => {
                    out.push(format!("component `{name}` was published, now missing"))
                }
                (None, Some(_)) => out.push(format!("component `{name}` is new")),
                _ => {}
            }
        }
        out
    }
}

/// How version `to` differs from version `from` (`appmodel diff A B`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionDiff {
    pub app: String,
    pub from: Version,
    pub to: Version,
    pub components_added: Vec<String>,
    pub components_removed: Vec<String>,
    /// Components whose definition or artifacts changed, with what changed.
    pub components_changed: BTreeMap<String, Vec<String>>,
    pub parameters_added: Vec<String>,
    pub parameters_removed: Vec<String>,
    /// Blobs `to` needs that `from` did not have: what a delta bundle carries.
    pub new_blobs: usize,
    pub new_bytes: u64,
}

/// Each platform's digest of a per-platform map (none for `None`).
fn by_platform<T>(
    map: Option<&BTreeMap<String, T>>,
    digest: impl Fn(&T) -> &Digest,
) -> BTreeMap<String, Digest> {
    map.into_iter()
        .flatten()
        .map(|(p, v)| (p.clone(), digest(v).clone()))
        .collect()
}

impl VersionDiff {
    pub fn between(from: &VersionRecord, to: &VersionRecord) -> VersionDiff {
        let names = |r: &VersionRecord| {
            r.model
                .components
                .iter()
                .map(|c| c.name.clone())
                .collect::<BTreeSet<_>>()
        };
        let (a, b) = (names(from), names(to));
        let mut changed = BTreeMap::new();
        for name in a.intersection(&b) {
            let mut what = Vec::new();
            // Binary paths are where the vendor kept the files; the digests below say
            // whether the binaries changed.
            let definition = |r: &VersionRecord| {
                r.model.component(name).cloned().map(|mut c| {
                    c.binaries.clear();
                    c
                })
            };
            if definition(from) != definition(to) {
                what.push("definition".to_string());
            }
            let (aa, ab) = (from.components.get(name), to.components.get(name));
            // By platform: a platform only one side has is said as such; the others
            // compare by digest.
            let images = |x: Option<&ComponentArtifacts>| {
                by_platform(x.map(|c| &c.images), |i: &ImageArtifact| &i.manifest.digest)
            };
            let bins = |x: Option<&ComponentArtifacts>| {
                by_platform(x.map(|c| &c.binaries), |b: &BlobRef| &b.digest)
            };
            let differs = |old: &BTreeMap<String, Digest>, new: &BTreeMap<String, Digest>| {
                old.iter().any(|(p, d)| new.get(p).is_some_and(|n| n != d))
            };
            let (ia, ib, ba, bb) = (images(aa), images(ab), bins(aa), bins(ab));
            if differs(&ia, &ib) || (ia.is_empty() != ib.is_empty()) {
                what.push("image".to_string());
            }
            if differs(&ba, &bb) || (ba.is_empty() != bb.is_empty()) {
                what.push("binary".to_string());
            }
            let platforms = |i: &BTreeMap<String, Digest>, b: &BTreeMap<String, Digest>| {
                i.keys().chain(b.keys()).cloned().collect::<BTreeSet<_>>()
            };
            let (pa, pb) = (platforms(&ia, &ba), platforms(&ib, &bb));
            if !pa.is_empty() && !pb.is_empty() {
                for p in pb.difference(&pa) {
                    what.push(format!("new platform {p}"));
                }
                for p in pa.difference(&pb) {
                    what.push(format!("platform {p} removed"));
                }
            }
            if !what.is_empty() {
                changed.insert(name.clone(), what);
            }
        }
        let params = |r: &VersionRecord| {
            r.model
                .parameters
                .iter()
                .map(|p| p.name.clone())
                .collect::<BTreeSet<_>>()
        };
        let (pa, pb) = (params(from), params(to));
        let old = from.blobs();
        let fresh: Vec<u64> = to
            .blobs()
            .iter()
            .filter(|(d, _)| !old.contains_key(*d))
            .map(|(_, b)| b.size)
            .collect();
        VersionDiff {
            app: to.app.clone(),
            from: from.version.clone(),
            to: to.version.clone(),
            components_added: b.difference(&a).cloned().collect(),
            components_removed: a.difference(&b).cloned().collect(),
            components_changed: changed,
            parameters_added: pb.difference(&pa).cloned().collect(),
            parameters_removed: pa.difference(&pb).cloned().collect(),
            new_blobs: fresh.len(),
            new_bytes: fresh.iter().sum(),
        }
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// The civil date and time of `secs` since the epoch, UTC: (year, month, day, hour,
/// minute, second) (Howard Hinnant's civil-from-days).
pub fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y as u64,
        m as u64,
        d as u64,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d, h, mi, s) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ` into seconds since the epoch
/// (years 1970 to 9999); `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (hh, mm, ss) = match b.len() {
        10 => (0, 0, 0),
        20 if b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z' => {
            (num(11..13)?, num(14..16)?, num(17..19)?)
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let (yy, mo) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn parsing_is_the_inverse_of_formatting() {
        for secs in [0, 951_782_400, 1_795_435_200, 4_102_444_799, 86_399] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(secs)), Some(secs));
        }
        assert_eq!(super::parse_rfc3339("2027-12-31"), Some(1_830_211_200));
        for bad in [
            "",
            "2027-13-01",
            "2027-02-29",
            "1969-12-31",
            "2027-1-01",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:00:00",
            "+027-01-01",
            "2027-01-01x",
            "２０２７-01-01",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(super::parse_rfc3339("2028-02-29"), Some(1_835_395_200));
    }

    #[test]
    fn known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_435_200), "2026-11-23T12:00:00Z");
    }
}
