//! The application model as written in `appmodel.yaml`.
//!
//! Named things (components, ports, volumes, parameters) are lists with a `name` field rather
//! than maps, so that a duplicate name is a finding with two positions instead of a key the
//! YAML reader silently overwrites. "Exactly one of" choices (image source, health check kind)
//! are structs of optional fields checked by validation, which gives far clearer messages
//! than an untagged enum would.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `apiVersion` this build of appmodel reads and writes.
pub const API_VERSION: &str = "appmodel/v1";

/// The platform used when a model names none.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// An application model: one version of one application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "appmodel application model")]
pub struct AppModel {
    /// Format of this file. Must be `appmodel/v1`.
    pub api_version: String,
    pub app: App,
    /// The site's offline configuration: what each site may or must set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// The programs that make up the application.
    pub components: Vec<Component>,
    /// How the application is licensed on a site (docs/licence.md). Absent: no licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<LicencePolicy>,
    /// What the host must have: checked by `appmodel preflight`, and before every install
    /// and upgrade (docs/preflight.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
}

/// The host's minimums and the vendor's own checks. Each minimum may say where the app
/// still runs, but with a warning (`warn`), and below which it does not (`fail`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// CPU cores the host has online (as `nproc` counts them): integers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Minimum>,
    /// Memory the host has (`MemTotal`), as a size: `8Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Minimum>,
    /// Free disk where the engine keeps images and data (Docker's or Podman's storage,
    /// `/var/lib` for systemd), as a size: `20Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Minimum>,
    /// The kernel release (`uname -r`), as a quoted version: `"4.18"`, `"5.10"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Minimum>,
    /// The engine's version, as a quoted version: the Docker or Podman server (compose
    /// form), systemd (systemd form), Helm (helm form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Minimum>,
    /// The compose tool's version (compose form), as a quoted version: `"2.20"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<Minimum>,
    /// The vendor's own checks: a service the app needs on the site's network, a file it
    /// needs on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<VendorCheck>,
}

/// A minimum: below `fail` the check fails (nothing is installed), below `warn` it warns
/// (the install goes ahead, and the warning is kept in history). At least one is given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Minimum {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<Scalar>,
    /// A failure cannot be waived with `--ignore-check`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict: bool,
}

/// A check of the vendor's: exactly one of `tcp` and `file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorCheck {
    /// Lowercase name (letters, digits, `-`): what the report and `--ignore-check` call it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `HOST:PORT` that must accept a TCP connection within 3 s (a directory server, a
    /// database on the site's network). `${params.NAME}` may give either part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// An absolute path that must exist on the host (a CA bundle, a device).
    /// `${params.NAME}` may give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What a check that does not pass does: `fail` (the default) or `warn`.
    #[serde(default, skip_serializing_if = "Severity::is_fail")]
    pub severity: Severity,
    /// A failure cannot be waived with `--ignore-check`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict: bool,
    /// What the operator should do when it does not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    #[default]
    Fail,
}

impl Severity {
    fn is_fail(&self) -> bool {
        *self == Severity::Fail
    }
}

/// What a minimum measures, and how its values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A count (CPU cores).
    Count,
    /// Bytes, written as a size (`8Gi`) or a plain integer.
    Bytes,
    /// A dotted version (`5.10`), compared part by part as numbers.
    Version,
}

impl Measure {
    /// `v` as comparable numbers (one for a count or a size, the parts of a version).
    pub fn read(self, v: &Scalar) -> Option<Vec<u64>> {
        match (self, v) {
            (Measure::Count, Scalar::Int(n)) if *n >= 1 => Some(vec![*n as u64]),
            (Measure::Bytes, Scalar::Int(n)) if *n >= 1 => Some(vec![*n as u64]),
            (Measure::Bytes, Scalar::Str(s)) => crate::units::parse_quantity(s).map(|b| vec![b]),
            (Measure::Version, Scalar::Str(s)) => version_parts(s),
            _ => None,
        }
    }
}

/// `5.10.0-28-amd64` -> [5, 10, 0]: the leading dotted numbers of a kernel release.
pub fn version_parts(s: &str) -> Option<Vec<u64>> {
    let numeric: Vec<u64> = s
        .split(['.', '-', '+', '_'])
        .map_while(|p| p.parse().ok())
        .take(4)
        .collect();
    (!numeric.is_empty()).then_some(numeric)
}

/// The licence a site needs: who signs it, the plans sold, and the grace given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LicencePolicy {
    /// The vendor's licence public key: the base64 line of the `.pub` file written by
    /// `appmodel license key generate` (minisign format, `RW…`).
    pub public_key: String,
    /// Without a licence the app runs for this trial; absent, a licence must be activated
    /// before the app is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// Days before expiry from which install, upgrade and status warn. Default: 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<u32>,
    /// Days after expiry the app keeps running (no upgrade to a version published after the
    /// expiry) before it is stopped. Default: 14.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_days: Option<u32>,
    /// The plans, by name: each plan's entitlements (integers, booleans or strings), which
    /// the app reads as `${licence.NAME}`. Every plan has the same entitlements.
    pub plans: BTreeMap<String, BTreeMap<String, Scalar>>,
}

/// A trial: how long and with which plan's entitlements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// Days from the first install.
    pub days: u32,
    /// The plan whose entitlements the trial gives.
    pub plan: String,
}

/// Default of [`LicencePolicy::warn_days`].
pub const DEFAULT_WARN_DAYS: u32 = 30;
/// Default of [`LicencePolicy::grace_days`].
pub const DEFAULT_GRACE_DAYS: u32 = 14;

impl LicencePolicy {
    pub fn warn_days(&self) -> u32 {
        self.warn_days.unwrap_or(DEFAULT_WARN_DAYS)
    }
    pub fn grace_days(&self) -> u32 {
        self.grace_days.unwrap_or(DEFAULT_GRACE_DAYS)
    }
    /// The entitlement names, each once (validation makes every plan list them all).
    pub fn entitlements(&self) -> impl Iterator<Item = &str> {
        let names: std::collections::BTreeSet<&str> = self
            .plans
            .values()
            .flat_map(|p| p.keys().map(String::as_str))
            .collect();
        names.into_iter()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Lowercase name: letters, digits and `-`, starting with a letter.
    pub name: String,
    /// Semantic version (`1.1.0`). `appmodel publish` may override it.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Platforms the application is delivered for, as `os/arch`. Default: `[linux/amd64]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// The installed versions a site may upgrade to this one from, as a semver requirement
    /// (`>=1.0.0`, `>=1.0.0, <2.0.0`, `^1.2`). Absent: any older version. A site on a version
    /// outside it must first upgrade through one that is inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<String>,
}

impl App {
    /// The platforms, with the default filled in.
    pub fn platforms(&self) -> Vec<String> {
        if self.platforms.is_empty() {
            vec![DEFAULT_PLATFORM.to_string()]
        } else {
            self.platforms.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    Enum,
    Secret,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::Enum => "enum",
            ParamType::Secret => "secret",
        }
    }
}

/// A setting the site supplies in its offline configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Referenced as `${params.NAME}`. Letters, digits and `_`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value used when the site gives none. Not allowed for secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Scalar>,
    /// The site must give a value (no default applies).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Regular expression a string or secret must match in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Smallest allowed integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    /// Largest allowed integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    /// The allowed values of an `enum` parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// For a secret: generate a random value once, on site, at install, and keep it across
    /// upgrades. Never generated at export time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub generate: bool,
    /// Length of a generated secret (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
}

/// Length of a generated secret when the model does not say.
pub const DEFAULT_SECRET_LENGTH: u32 = 32;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A plain YAML value: string, integer, number or boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

/// One program of the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Lowercase name: letters, digits and `-`, starting with a letter.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the container image comes from (compose and Helm forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSource>,
    /// Static executables per platform (`linux/amd64: bin/im-server`), paths relative to the
    /// model file. Needed for the systemd form and for `image.from_binary`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binaries: BTreeMap<String, String>,
    /// The vendor's own bill of materials of this component (CycloneDX or SPDX JSON, as
    /// syft, trivy or cdxgen write it), a path relative to the model file. It travels in
    /// every bundle, and the bundle's `sbom.cdx.json` links it by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// The program and its fixed arguments. Default: the image's entrypoint, or the binary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// User (and group) the program runs as in its image: `65534:65534`. Images built
    /// `from_binary` default to `65534:65534` (nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Arguments after the command. May use `${...}` references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables. Values may use `${...}` references.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Scalar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Number of copies (Helm form). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Components that must be healthy before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// Exactly one of the fields says where the image comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSource {
    /// A registry reference: `registry.example.com/im/im-server:1.0` or `...@sha256:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// An OCI image layout directory, relative to the model file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_layout: Option<String>,
    /// A `docker save` or `podman save` archive, relative to the model file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Which image of a layout or archive holding several (`name:tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Build a minimal image from the component's static binary.
    #[serde(default, skip_serializing_if = "is_false")]
    pub from_binary: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Http,
    Https,
    Grpc,
}

impl Protocol {
    /// The URL scheme for `${components.X.url}`, if the protocol has one.
    pub fn scheme(self) -> Option<&'static str> {
        match self {
            Protocol::Http => Some("http"),
            Protocol::Https => Some("https"),
            Protocol::Grpc => Some("grpc"),
            Protocol::Tcp | Protocol::Udp => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Referenced as `${components.C.ports.NAME}`.
    pub name: String,
    /// The port the program listens on.
    pub port: u16,
    /// Default `tcp`. `http`, `https` and `grpc` are TCP with a URL scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Publish the port outside the host, on `host_port` (default: the same number).
    #[serde(default, skip_serializing_if = "is_false")]
    pub expose: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
}

impl Port {
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or(Protocol::Tcp)
    }

    /// The host port, if the port is exposed.
    pub fn published(&self) -> Option<u16> {
        self.expose.then(|| self.host_port.unwrap_or(self.port))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// Persistent data: kept across upgrades, snapshotted before them.
    Data,
    /// A configuration file rendered from `content` at install time, mounted read-only.
    Config,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub kind: VolumeKind,
    /// Where it appears: a directory for data, a file for config.
    pub path: String,
    /// Content of a config file. May use `${...}` references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Requested size of a data volume (`1Gi`), used by the Helm form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// The defaults of a health check's timing, the same in every form.
pub mod health_defaults {
    pub const INTERVAL: &str = "5s";
    pub const TIMEOUT: &str = "3s";
    pub const RETRIES: u32 = 3;
    pub const START_PERIOD: &str = "0s";
}

/// How to tell that a component is healthy. Exactly one of `http`, `tcp`, `exec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCheck>,
    /// Time between checks (`10s`). Default 5s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Time one check may take. Default 3s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Failed checks in a row before the component counts as unhealthy. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Grace time after start during which failures do not count. Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

impl HealthCheck {
    /// `interval`, or its default, as written (`5s`).
    pub fn interval_or_default(&self) -> &str {
        self.interval
            .as_deref()
            .unwrap_or(health_defaults::INTERVAL)
    }

    pub fn timeout_or_default(&self) -> &str {
        self.timeout.as_deref().unwrap_or(health_defaults::TIMEOUT)
    }

    pub fn retries_or_default(&self) -> u32 {
        self.retries.unwrap_or(health_defaults::RETRIES)
    }

    pub fn start_period_or_default(&self) -> &str {
        self.start_period
            .as_deref()
            .unwrap_or(health_defaults::START_PERIOD)
    }

    /// The four as durations (an unparsable one, which validation refuses, as its default).
    pub fn durations(&self) -> HealthTiming {
        let d = |s: &str, default: &str| {
            crate::units::parse_duration(s)
                .or_else(|| crate::units::parse_duration(default))
                .unwrap_or_default()
        };
        HealthTiming {
            interval: d(self.interval_or_default(), health_defaults::INTERVAL),
            timeout: d(self.timeout_or_default(), health_defaults::TIMEOUT),
            retries: self.retries_or_default(),
            start_period: d(
                self.start_period_or_default(),
                health_defaults::START_PERIOD,
            ),
        }
    }
}

/// A health check's timing, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTiming {
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub retries: u32,
    pub start_period: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// Path to GET; healthy on a 2xx or 3xx answer.
    pub path: String,
    /// Name of one of the component's ports.
    pub port: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// Name of one of the component's ports.
    pub port: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecCheck {
    /// Command run inside the component; healthy on exit status 0.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU limit in cores (`0.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory limit: a number of bytes with an optional `Ki`, `Mi`, `Gi` suffix (`256Mi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

impl AppModel {
    /// Whether a site on version `from` may upgrade to this model's version directly, as
    /// `app.upgrade_from` says: always when the field is absent, never when it does not
    /// parse (a validated model's always does). Whether `from` is older is not checked
    /// here.
    pub fn allows_upgrade_from(&self, from: &semver::Version) -> bool {
        match &self.app.upgrade_from {
            None => true,
            Some(req) => semver::VersionReq::parse(req).is_ok_and(|r| r.matches(from)),
        }
    }

    /// Whether `text` (a config file's content) uses a secret parameter. Text that does
    /// not parse as a template counts as holding one when it names one at all, so the
    /// answer errs on the side of protecting the file.
    pub fn holds_secret(&self, text: &str) -> bool {
        let secret = |name: &str| {
            self.parameter(name)
                .is_some_and(|p| p.kind == ParamType::Secret)
        };
        match crate::expr::Template::parse(text) {
            Ok(t) => t.references().any(|r| match r {
                crate::expr::Reference::Param(name) => secret(name),
                _ => false,
            }),
            Err(_) => self.parameters.iter().any(|p| {
                p.kind == ParamType::Secret && text.contains(&format!("params.{}", p.name))
            }),
        }
    }

    /// Whether one of the component's config files uses a secret parameter.
    pub fn config_holds_secret(&self, c: &Component) -> bool {
        c.volumes
            .iter()
            .filter(|v| v.kind == VolumeKind::Config)
            .any(|v| self.holds_secret(v.content.as_deref().unwrap_or_default()))
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

impl Component {
    /// The file name its static binary keeps on a host (a program that dispatches on its
    /// own name, like busybox, needs it): the name of the first platform's file, as the
    /// image built from it has it. A name with anything but letters, digits, `.`, `_`,
    /// `+` and `-` (or no binary at all) becomes the component's name.
    pub fn binary_file_name(&self) -> String {
        self.binaries
            .values()
            .next()
            .and_then(|p| std::path::Path::new(p).file_name()?.to_str())
            .filter(|n| {
                !n.starts_with('.')
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
            })
            .unwrap_or(&self.name)
            .to_string()
    }

    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The parameters the component's command arguments and `args` use, sorted, once each
    /// (a target that cannot template arguments passes them as `PARAM_<name>`).
    pub fn params_in_args(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .command
            .iter()
            .skip(1)
            .chain(self.args.iter())
            .filter_map(|a| crate::expr::Template::parse(a).ok())
            .flat_map(|t| {
                t.references()
                    .filter_map(|r| match r {
                        crate::expr::Reference::Param(p) => Some(p.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
