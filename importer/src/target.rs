//! What a deployment target (compose, systemd, helm) does for the generic lifecycle.

use std::path::PathBuf;

use appmodel_model::bundle::Form;
use appmodel_model::record::VersionRecord;
use serde::Serialize;

use crate::ImportError;

/// What a target needs to know about one revision.
pub struct RevisionCtx<'a> {
    pub app: &'a str,
    pub number: u32,
    pub record: &'a VersionRecord,
    /// The imported bundle's files (`STATE/bundles/APP/VERSION/FORM`).
    pub bundle_dir: PathBuf,
    /// Where the target keeps this revision's files.
    pub project_dir: PathBuf,
    /// The deployment's licence gate directory ([`crate::deploy::Deployment::gate_dir`]).
    pub gate_dir: PathBuf,
    /// Parameter values, typed.
    pub params: &'a crate::deploy::Params,
}

/// One component's health as the target sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Starting,
    Unhealthy,
    /// Running, with no health check.
    Running,
    Stopped,
    Missing,
}

impl Health {
    /// The state `appmodel status` shows for it, the same words for every form.
    pub fn state(self) -> &'static str {
        match self {
            Health::Healthy | Health::Running => "running",
            Health::Starting => "starting",
            Health::Unhealthy => "unhealthy",
            Health::Stopped => "stopped",
            Health::Missing => "missing",
        }
    }
}

/// A component's state for `appmodel status`.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub component: String,
    pub state: String,
    pub health: Health,
    pub image: Option<String>,
}

impl ComponentStatus {
    /// A component's status, its state in the shared vocabulary ([`Health::state`]).
    pub fn new(component: &str, health: Health, image: Option<String>) -> ComponentStatus {
        ComponentStatus {
            component: component.to_string(),
            state: health.state().to_string(),
            health,
            image,
        }
    }
}

/// A data volume on the host: its name and where its files are.
pub struct DataDir {
    pub name: String,
    pub path: PathBuf,
}

pub trait Target {
    fn form(&self) -> Form;

    /// Problems that must stop an install or upgrade before anything changes.
    /// `current` is the running revision (its ports are not "busy" for the new one).
    fn preflight(
        &self,
        new: &RevisionCtx<'_>,
        current: Option<&RevisionCtx<'_>>,
    ) -> Result<Vec<String>, ImportError>;

    /// Makes the revision's artifacts available (e.g. loads images). Changes nothing running.
    fn prepare(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError>;

    /// Writes the revision's files into its project directory.
    fn write_project(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError>;

    /// Starts these components of the revision (one dependency level).
    fn start(&self, rev: &RevisionCtx<'_>, components: &[&str]) -> Result<(), ImportError>;

    fn health(&self, rev: &RevisionCtx<'_>, component: &str) -> Result<Health, ImportError>;

    /// Stops and removes the revision's processes or containers; data stays.
    fn stop(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError>;

    /// The revision's data volumes on the host, created if missing.
    fn data_dirs(&self, rev: &RevisionCtx<'_>, create: bool) -> Result<Vec<DataDir>, ImportError>;

    /// Removes the data volumes (uninstall without `--keep-data`).
    fn remove_data(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError>;

    /// Removes what install put on the host besides data and the site state (uninstall,
    /// after `stop`). Nothing by default: a target whose `stop` leaves nothing behind.
    fn remove_files(&self, _rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        Ok(())
    }

    fn status(&self, rev: &RevisionCtx<'_>) -> Result<Vec<ComponentStatus>, ImportError>;

    /// Where the engine keeps images and data on this host, for the `disk` preflight
    /// check; none when the form has no such place here.
    fn data_root(&self, _rev: &RevisionCtx<'_>) -> Option<std::path::PathBuf> {
        None
    }

    /// The engine's and the compose tool's versions, for the `engine` and `compose`
    /// preflight checks.
    fn versions(&self) -> EngineVersions {
        EngineVersions::default()
    }
}

/// What runs an app and its version (`Docker`, `20.10.24`), for preflight.
#[derive(Debug, Clone, Default)]
pub struct EngineVersions {
    pub engine: Option<(String, String)>,
    pub compose: Option<(String, String)>,
}
