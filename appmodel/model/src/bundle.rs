//! The offline bundle's manifest (`bundle.json`): the root of trust of a bundle.
//!
//! The manifest names every other file of the bundle with its size and sha256; a signature
//! (`bundle.json.minisig`) covers the manifest's bytes. The exporters write it, the importer
//! checks a bundle against it before anything on site changes. See docs/bundle-format.md.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The bundle format this build writes and reads.
pub const BUNDLE_FORMAT: u32 = 1;
/// The manifest's file name at the bundle's root.
pub const MANIFEST_FILE: &str = "bundle.json";
/// The detached minisign signature of the manifest.
pub const SIGNATURE_FILE: &str = "bundle.json.minisig";
/// The published version record inside a bundle.
pub const RECORD_FILE: &str = "record.json";
/// The appmodel executable shipped inside every bundle.
pub const TOOL_FILE: &str = "appmodel";

/// The three forms a version can be exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Compose,
    Helm,
    Systemd,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Compose => "compose",
            Form::Helm => "helm",
            Form::Systemd => "systemd",
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of the bundle other than the manifest and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Relative path with `/` separators, no `.` or `..` parts.
    pub path: String,
    pub size: u64,
    pub sha256: Digest,
    /// The file is executable (the appmodel tool, static binaries).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

/// For a delta bundle: the version it builds on and the blobs the site must already hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaBase {
    pub version: String,
    pub blobs: Vec<Digest>,
}

/// `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format: u32,
    pub app: String,
    pub version: String,
    pub form: Form,
    pub platforms: Vec<String>,
    /// The appmodel release that wrote the bundle.
    pub written_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<DeltaBase>,
    /// Every other file, sorted by path.
    pub files: Vec<BundleFile>,
}

impl BundleManifest {
    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Total bytes of the listed files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Whether `path` is acceptable inside a bundle: relative, `/`-separated, no empty, `.` or
/// `..` parts, no backslashes or NULs.
pub fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        for ok in ["bundle.json", "blobs/sha256/ab", "form/docker-compose.yaml"] {
            assert!(is_safe_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a/",
        ] {
            assert!(!is_safe_path(bad), "{bad}");
        }
    }
}
