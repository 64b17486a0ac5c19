//! The offline bundle's manifest (`bundle.json`): the root of trust of a bundle.
//!
//! The manifest names every other file of the bundle with its size and sha256; a signature
//! (`bundle.json.minisig`) covers the manifest's bytes. The exporters write it, the importer
//! checks a bundle against it before anything on site changes. See docs/bundle-format.md.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::digest::Digest;

/// The newest bundle format this build writes and reads.
pub const BUNDLE_FORMAT: u32 = 2;
/// Format 2 is a bundle for several platforms (images per platform in `manifest.json`,
/// an appmodel per platform): an appmodel that reads format 1 only would load the wrong
/// platform's image, so it must refuse it. A bundle of one platform stays format 1.
pub fn format_for(platforms: &[String]) -> u32 {
    if platforms.len() > 1 {
        2
    } else {
        1
    }
}
/// The manifest's file name at the bundle's root.
pub const MANIFEST_FILE: &str = "bundle.json";
/// The detached minisign signature of the manifest.
pub const SIGNATURE_FILE: &str = "bundle.json.minisig";
/// The published version record inside a bundle.
pub const RECORD_FILE: &str = "record.json";
/// The appmodel executable shipped inside every bundle.
pub const TOOL_FILE: &str = "appmodel";
/// The bill of materials (CycloneDX 1.6 JSON) every bundle carries.
pub const SBOM_FILE: &str = "sbom.cdx.json";

/// The forms a version can be exported as. The exporter's and the importer's form tables
/// each have one row per form (exporters/src/forms.rs, importer/src/engine.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Compose,
    Helm,
    Systemd,
}

impl Form {
    /// Every form, in the order `appmodel export --help` lists them.
    pub const ALL: [Form; 3] = [Form::Compose, Form::Helm, Form::Systemd];

    /// The form's name: in `bundle.json`, on the command line, in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Compose => "compose",
            Form::Helm => "helm",
            Form::Systemd => "systemd",
        }
    }

    /// What a bundle of the form holds, in one line (the help of `--format`).
    pub fn describe(self) -> &'static str {
        match self {
            Form::Compose => "docker-compose project with its images",
            Form::Helm => "Helm chart with its images",
            Form::Systemd => "systemd units with static binaries",
        }
    }
}

impl std::str::FromStr for Form {
    type Err = String;

    /// The form named `s` ([`Form::as_str`]).
    fn from_str(s: &str) -> Result<Form, String> {
        Form::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("no form is named {}", quoted(s)))
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaBase {
    pub version: String,
    pub blobs: Vec<Digest>,
    /// The appmodel executable (sha256) the delta leaves out: the one the vendor shipped
    /// with `version`, which the site already has. Absent: the delta carries its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Digest>,
    /// The other platforms' appmodel executables it leaves out, by file name
    /// (`appmodel-linux-arm64`), on the same rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, Digest>,
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

/// A value read from a bundle, quoted for a message: escaped (no newline or control
/// character reaches the terminal) and cut to 80 characters.
pub fn quoted(value: &str) -> String {
    let escaped: String = value.escape_debug().collect();
    match escaped.char_indices().nth(80) {
        Some((i, _)) => format!("`{}...`", &escaped[..i]),
        None => format!("`{escaped}`"),
    }
}

/// Checks every field of a manifest that reaches a path or a name on site, by the rules of
/// the app model: the app a DNS label, versions semantic versions, platforms `os/arch`.
/// Returns the field and what is wrong with it. A signed manifest is checked the same: a
/// vendor's mistake must not become a write outside the site's state.
pub fn check_manifest_names(m: &BundleManifest) -> Result<(), String> {
    if !crate::validate::dns_name(&m.app) {
        return Err(format!(
            "field `app` is {}: not an app name (lowercase letters, digits and `-`, starting with a letter, at most 63)",
            quoted(&m.app)
        ));
    }
    check_version("version", &m.version)?;
    if let Some(base) = &m.base {
        check_version("base.version", &base.version)?;
        if let Some(name) = base.tools.keys().find(|n| tool_platform(n).is_none()) {
            return Err(format!(
                "field `base.tools` names {}: not an appmodel of a platform (`appmodel-linux-arm64`)",
                quoted(name)
            ));
        }
    }
    for (i, p) in m.platforms.iter().enumerate() {
        if !crate::validate::platform(p) {
            return Err(format!(
                "field `platforms[{i}]` is {}: not a platform such as `linux/amd64`",
                quoted(p)
            ));
        }
    }
    Ok(())
}

fn check_version(field: &str, v: &str) -> Result<(), String> {
    match semver::Version::parse(v) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "field `{field}` is {}: not a semantic version ({e})",
            quoted(v)
        )),
    }
}

/// The bundle file of the appmodel executable for `platform` besides [`TOOL_FILE`] (the
/// exporter's own): `appmodel-linux-arm64`.
pub fn tool_file_for(platform: &str) -> String {
    format!("{TOOL_FILE}-{}", platform.replace('/', "-"))
}

/// Whether `text` is a platform as the app model writes it (`os/arch[/variant]`).
pub fn is_platform(text: &str) -> bool {
    crate::validate::platform(text)
}

/// The platform a [`tool_file_for`] name is for, if it is one.
pub fn tool_platform(name: &str) -> Option<String> {
    let rest = name.strip_prefix(TOOL_FILE)?.strip_prefix('-')?;
    // A platform's parts have no `-`, so each `-` was a `/`.
    let platform = rest.replace('-', "/");
    (is_platform(&platform) && tool_file_for(&platform) == name).then_some(platform)
}

/// The appmodel in bundle directory `dir` that runs on this host: the one for its platform
/// when the bundle carries it, else [`TOOL_FILE`].
pub fn host_tool(dir: &std::path::Path) -> std::path::PathBuf {
    let own = dir.join(tool_file_for(&host_platform()));
    if own.is_file() {
        own
    } else {
        dir.join(TOOL_FILE)
    }
}

/// The platform of the machine this appmodel runs on (`linux/amd64`, `linux/arm64`).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// The group that may read a systemd component's config files holding a secret: the
/// files are `0640 root:<group>`, the unit adds it with `SupplementaryGroups=`, and the
/// importer creates it through a systemd-sysusers drop-in. At most 31 characters (the
/// strict user/group name rule of systemd and shadow); a longer name is cut and made
/// unique by a hash of the whole.
pub fn systemd_secret_group(app: &str, component: &str) -> String {
    let name = format!("appmodel-{app}-{component}");
    if name.len() <= 31 {
        return name;
    }
    // FNV-1a: stable across builds and platforms, enough to tell cut names apart.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let head: String = format!("am-{app}-{component}").chars().take(22).collect();
    format!("{}-{:08x}", head.trim_end_matches('-'), hash as u32)
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
    fn every_form_is_listed_once_and_parses_back_from_its_name() {
        // Names every variant: a new form does not compile here until it is in `ALL` too.
        let position = |f: Form| match f {
            Form::Compose => 0,
            Form::Helm => 1,
            Form::Systemd => 2,
        };
        assert_eq!(Form::ALL.map(position), [0, 1, 2]);
        for form in Form::ALL {
            assert_eq!(Form::ALL.iter().filter(|f| **f == form).count(), 1);
            assert_eq!(form.as_str().parse::<Form>(), Ok(form));
            // The name is the one bundle.json carries.
            assert_eq!(
                serde_json::to_string(&form).unwrap(),
                format!("\"{}\"", form.as_str())
            );
            assert!(!form.describe().is_empty() && !form.describe().contains('\n'));
        }
        assert_eq!(
            "docker".parse::<Form>(),
            Err("no form is named `docker`".to_string())
        );
    }

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

    fn manifest(app: &str, version: &str) -> BundleManifest {
        BundleManifest {
            format: BUNDLE_FORMAT,
            app: app.into(),
            version: version.into(),
            form: Form::Compose,
            platforms: vec!["linux/amd64".into()],
            written_by: "test".into(),
            base: None,
            files: Vec::new(),
        }
    }

    /// Regression: site trust defect 1 — app and version reached paths unchecked.
    #[test]
    fn names_that_reach_paths_are_checked_like_the_model() {
        assert!(check_manifest_names(&manifest("im-stack", "1.1.0")).is_ok());
        assert!(check_manifest_names(&manifest("im-stack", "1.1.0-rc.1+b7")).is_ok());
        for (app, version, field) in [
            ("im-stack", "../../../../tmp/x/v", "version"),
            ("im-stack", "1.0.0/evil", "version"),
            ("im-stack", "", "version"),
            ("im-stack", "1.0.0\nx", "version"),
            ("im-stack", "1.0.0\n", "version"),
            (".", "1.0.0", "app"),
            ("..", "1.0.0", "app"),
            ("a/b", "1.0.0", "app"),
            ("", "1.0.0", "app"),
            ("Im", "1.0.0", "app"),
        ] {
            let e = check_manifest_names(&manifest(app, version)).unwrap_err();
            assert!(
                e.starts_with(&format!("field `{field}` is ")),
                "{app} {version}: {e}"
            );
        }
        let mut m = manifest("im-stack", "1.1.0");
        m.platforms = vec!["linux/../x".into()];
        assert!(check_manifest_names(&m)
            .unwrap_err()
            .contains("platforms[0]"));
        m.platforms = vec!["linux/amd64".into()];
        m.base = Some(DeltaBase {
            version: "../1".into(),
            ..Default::default()
        });
        assert!(check_manifest_names(&m)
            .unwrap_err()
            .contains("base.version"));
        for name in [
            "appmodel",
            "appmodel-",
            "appmodel-../../x",
            "appmodel-linux",
            "x-linux-amd64",
        ] {
            m.base = Some(DeltaBase {
                version: "1.0.0".into(),
                tools: BTreeMap::from([(name.to_string(), Digest::from_sha256(&[0; 32]))]),
                ..Default::default()
            });
            let e = check_manifest_names(&m).unwrap_err();
            assert!(e.contains("base.tools"), "{name}: {e}");
        }
    }

    #[test]
    fn each_platform_has_its_own_appmodel_file_name() {
        for p in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
            assert_eq!(tool_platform(&tool_file_for(p)).as_deref(), Some(p));
        }
        assert_eq!(tool_file_for("linux/arm64"), "appmodel-linux-arm64");
        assert_eq!(tool_platform("appmodel"), None);
        assert_eq!(tool_platform("appmodel-linux-"), None);
        assert_eq!(tool_platform("appmodel-linux-Arm64"), None);
    }

    #[test]
    fn hostile_values_are_escaped_and_cut_in_messages() {
        assert_eq!(quoted("1.0\n\u{1b}[2J"), "`1.0\\n\\u{1b}[2J`");
        let long = quoted(&"x".repeat(500));
        assert_eq!(long.len(), 80 + 5);
        assert_eq!(host_platform().split('/').count(), 2);
    }

    #[test]
    fn secret_groups_are_valid_short_distinct_names() {
        assert_eq!(
            systemd_secret_group("im-stack", "im-server"),
            "appmodel-im-stack-im-server"
        );
        let long = "a".repeat(63);
        let a = systemd_secret_group(&long, "x");
        let b = systemd_secret_group(&long, "y");
        assert_ne!(a, b);
        for g in [a, b, systemd_secret_group("ab", &"c".repeat(63))] {
            assert!(g.len() <= 31, "{g}");
            assert!(g
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            assert!(g.starts_with("am-"), "{g}");
        }
    }
}
