//! The site side: verify an offline bundle, then import it into the site's state.
//!
//! - [`site`]: the state directory (`/var/lib/appmodel` by default): store, imported
//!   bundles, pinned trust keys, one lock;
//! - [`import`]: reading a bundle (directory, mounted disc, or tar) entry by entry and
//!   checking every byte against its manifest before anything becomes visible.
//!
//! Install, upgrade and rollback per target build on the imported versions.

pub mod compose;
pub mod deploy;
pub mod engine;
pub mod events;
pub mod fault;
pub mod gate;
pub mod helm;
pub mod host;
pub mod import;
pub mod licensing;
pub mod lifecycle;
#[cfg(test)]
mod machine_tests;
pub mod plan;
pub mod preflight;
pub mod probe;
pub mod push;
pub mod records;
pub mod site;
pub mod systemd;
pub mod target;
pub mod volumes;

use std::path::PathBuf;

use appmodel_model::Digest;
use appmodel_store::StoreError;

pub use import::{import, verify, ImportNote, ImportOptions, ImportReport};
pub use site::Site;

/// Errors of the site side.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {action} `{}`", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not an appmodel bundle: {reason}", .path.display())]
    NotABundle { path: PathBuf, reason: String },
    #[error("bundle.json is invalid: {0}")]
    BadManifest(String),
    #[error("bundle format {found} is newer than this appmodel understands ({supported}); use the appmodel shipped in the bundle")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("bundle entry `{path}` is refused: {reason}")]
    UnsafeEntry { path: String, reason: String },
    #[error("`{path}` is in the bundle but not listed in bundle.json")]
    UnlistedFile { path: String },
    #[error("`{path}` is listed in bundle.json but missing from the bundle")]
    MissingFile { path: String },
    #[error("`{path}` appears twice in the bundle")]
    DuplicateEntry { path: String },
    #[error("`{path}` is {actual} bytes, bundle.json says {expected}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("`{path}` does not match bundle.json: expected sha256 `{expected}`, got `{actual}`")]
    DigestMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("this delta bundle builds on {app} {base}, whose blobs this site does not hold ({missing} missing); import the full {base} bundle first")]
    MissingBase {
        app: String,
        base: String,
        missing: usize,
    },
    #[error("this delta bundle leaves out the appmodel executable ({tool}) shipped with {app} {base}, and no bundle of {app} imported on this site carries it; import the full {base} bundle first, or ask the vendor for a delta exported with `--with-tool`")]
    MissingTool {
        app: String,
        base: String,
        tool: Digest,
    },
    #[error("record.json is for {found}, bundle.json for {expected}")]
    RecordMismatch { expected: String, found: String },
    #[error("the bundle is unsigned, and this site accepts only signed bundles{}", if .keys.is_empty() { String::new() } else { format!(" (trusted keys: {})", .keys.join(", ")) })]
    Unsigned { keys: Vec<String> },
    #[error("the bundle is signed by key `{key_id}`, which this site does not trust{}", if .pinned.is_empty() { " (no key is pinned)".to_string() } else { format!(" (pinned: {})", .pinned.join(", ")) })]
    UntrustedKey { key_id: String, pinned: Vec<String> },
    #[error("{app} {version} ({form} form) is built for {}, but this host is {host}", .bundle.join(", "))]
    WrongPlatform {
        app: String,
        version: String,
        form: appmodel_model::bundle::Form,
        bundle: Vec<String>,
        host: String,
    },
    #[error("the site configuration is not valid")]
    Config(#[source] appmodel_model::ModelError),
    #[error("{app} {version} needs a site configuration")]
    ConfigNeeded { app: String, version: String },
    #[error("preflight failed, nothing was changed:\n  - {}", .0.join("\n  - "))]
    Preflight(Vec<String>),
    /// A preflight check named with `--ignore-check` that cannot be (strict) or is not there.
    #[error("{0}")]
    IgnoreCheck(String),
    /// An engine ran but its answer was not what it should be (unreadable output, an image
    /// loaded under another id), or writing to it failed midway.
    #[error("{command}: {problem}")]
    EngineOutput { command: String, problem: String },
    /// The site's registry refused or could not be reached.
    #[error("registry: cannot {action}: {reason}")]
    Registry { action: String, reason: String },
    /// A `--registry` the user gave is not a registry address.
    #[error("`{0}` is not a registry: write HOST[:PORT][/PREFIX]")]
    BadRegistry(String),
    /// A component's definition could not be rendered for this site (a verified bundle
    /// always renders: this is a bug or a damaged site state).
    #[error("cannot render {what} of `{component}`: {reason}")]
    Render {
        component: String,
        what: String,
        reason: String,
    },
    #[error("{command} failed ({}){}", .status.map_or("killed by a signal".to_string(), |c| format!("exit status {c}")), if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    EngineFailed {
        /// The engine command, as the operation names it (`systemctl daemon-reload`).
        command: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("{command}: cannot run it: {reason}")]
    EngineUnavailable { command: String, reason: String },
    #[error(
        "component `{component}` did not become healthy within {waited} s (last seen: {health})"
    )]
    Unhealthy {
        component: String,
        health: String,
        waited: u64,
    },
    #[error("revision {revision} failed and was reverted{}: {reason}", .restored.map(|r| format!(" (revision {r} runs again, with its data)")).unwrap_or_default())]
    Reverted {
        revision: u32,
        reason: String,
        restored: Option<u32>,
    },
    /// A file or part on a volume that is not what its manifests say.
    #[error("`{file}` on `{}` is damaged: {reason}", .volume.display())]
    VolumeDamaged {
        volume: PathBuf,
        file: String,
        reason: String,
    },
    /// A volume set is not complete yet; what was read is kept.
    #[error("{app} {version}: {} still missing (the volumes read so far are kept): insert volume {} of {of} and import it, or give the directory holding the rest", volume_list(.missing, *.of), .missing.first().copied().unwrap_or(0))]
    VolumesMissing {
        app: String,
        version: String,
        missing: Vec<u32>,
        of: u32,
    },
    #[error("`{0}` is not installed on this site")]
    NotInstalled(String),
    #[error("`{app}` is installed already (revision {revision}, version {version})")]
    AlreadyInstalled {
        app: String,
        revision: u32,
        version: String,
    },
    #[error("nothing is imported on this site")]
    NothingImported,
    #[error("{0}")]
    Ambiguous(String),
    #[error(
        "{app} {version} is not imported{}", .form.map(|f| format!(" in the {f} form")).unwrap_or_default()
    )]
    NotImported {
        app: String,
        version: String,
        form: Option<appmodel_model::bundle::Form>,
    },
    #[error("cannot read `{}`: {source}", .path.display())]
    Input {
        path: PathBuf,
        source: appmodel_model::input::InputError,
    },
    #[error("{app} {to} is older than {newest}, which this site has run (revision {revision}); an older version would run on data a newer one may have changed")]
    Downgrade {
        app: String,
        to: String,
        newest: String,
        revision: u32,
    },
    #[error("{app} {to} can only be reached from versions `{requirement}`, and {from} runs now: install the versions in between first")]
    SkippedVersion {
        app: String,
        to: String,
        from: String,
        requirement: String,
    },
    #[error("not enough space at `{}` for {what}: {} needed, {} free", .path.display(), appmodel_model::record::human_bytes(*.needed), appmodel_model::record::human_bytes(*.free))]
    NoSpace {
        what: String,
        path: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error("there is no revision {0}")]
    NoSuchRevision(u32),
    #[error("`{0}` has no earlier revision to roll back to")]
    NothingToRollBack(String),
    #[error("revision {0} has no data snapshot left (only the newest are kept); cannot restore its data")]
    NoSnapshot(u32),
    #[error("the {form} form has no {operation} in this appmodel")]
    NotSupported {
        operation: engine::Operation,
        form: appmodel_model::bundle::Form,
    },
    /// The licence does not allow what was asked, or a licence file was refused.
    #[error("{0}")]
    Licence(String),
    /// A file of the site state that cannot be read back (edited, truncated, written by
    /// another appmodel).
    #[error("`{}` in the site state is damaged: {reason}", .path.display())]
    DamagedState { path: PathBuf, reason: String },
    /// The state's files disagree with each other (a revision whose version left the store).
    #[error("the site state is inconsistent: {0}")]
    Inconsistent(String),
    /// Something appmodel itself should never do (a bug): said plainly, exit 2.
    #[error("internal error (a bug in appmodel; please report it): {0}")]
    Internal(String),
    #[error("not a usable public key: {0}")]
    BadKey(String),
    #[error("the bundle's signature is not valid: {0}")]
    BadSignature(String),
}

impl ImportError {
    /// A problem with the bundle or the request, as opposed to the site's own machine.
    /// Whether the problem is in what the user gave or asked (exit 1), not in an engine,
    /// the host or appmodel itself (exit 2).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            ImportError::Io { .. }
                | ImportError::EngineOutput { .. }
                | ImportError::Registry { .. }
                | ImportError::Render { .. }
                | ImportError::EngineFailed { .. }
                | ImportError::EngineUnavailable { .. }
                | ImportError::DamagedState { .. }
                | ImportError::Inconsistent(_)
                | ImportError::Internal(_)
                | ImportError::Store(StoreError::Io { .. })
                | ImportError::Input {
                    source: appmodel_model::input::InputError::Io(_),
                    ..
                }
        )
    }
}

/// `volume 3 of 5`, `volumes 1, 2 and 4 of 5`.
fn volume_list(missing: &[u32], of: u32) -> String {
    let list: Vec<String> = missing.iter().map(u32::to_string).collect();
    match list.as_slice() {
        [one] => format!("volume {one} of {of} is"),
        [rest @ .., last] => format!("volumes {} and {last} of {of} are", rest.join(", ")),
        [] => format!("no volume of {of} is"),
    }
}

/// The error of a state file at `path` that does not parse.
pub(crate) fn damaged(path: &std::path::Path) -> impl FnOnce(serde_json::Error) -> ImportError {
    let path = path.to_path_buf();
    move |e| ImportError::DamagedState {
        path,
        reason: e.to_string(),
    }
}

/// `value` as pretty JSON, as every state file is written.
pub(crate) fn state_json(value: &impl serde::Serialize) -> Result<Vec<u8>, ImportError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| ImportError::Internal(format!("cannot write JSON: {e}")))
}

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_path_buf();
    move |source| ImportError::Io {
        action,
        path,
        source,
    }
}
