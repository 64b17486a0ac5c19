//! The seam between the generic lifecycle and a form: how a form's changes are carried out,
//! chosen from one table ([`FORMS`]).
//!
//! Two kinds of engine exist:
//! - a **host engine** ([`Target`]): appmodel drives the host itself (compose, systemd) and
//!   owns the change: journal, stop, data snapshot, start level by level, health gate,
//!   revert ([`crate::lifecycle`]);
//! - a **release engine** ([`ReleaseEngine`]): the form's own tool keeps revisions, waits
//!   for readiness and undoes a failed change itself (helm). appmodel records the revision,
//!   journals the change around the tool's run, and asks the tool after a crash whether
//!   the change went through.
//!
//! A new form is one module implementing one of the two traits plus one row in [`FORMS`].

use std::path::PathBuf;

use appmodel_model::bundle::Form;
use appmodel_model::record::VersionRecord;
use appmodel_model::types::AppModel;
use serde::Serialize;

use crate::deploy::{Deployment, Revision};
use crate::site::Site;
use crate::target::{ComponentStatus, Target};
use crate::ImportError;

/// What a site command asks of a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Install,
    Upgrade,
    Rollback,
    Status,
    Uninstall,
    /// Stop and start again without a change (the licence check).
    Stop,
    Start,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Install => "install",
            Operation::Upgrade => "upgrade",
            Operation::Rollback => "rollback",
            Operation::Status => "status",
            Operation::Uninstall => "uninstall",
            Operation::Stop => "stop",
            Operation::Start => "start",
        })
    }
}

/// One change handed to a release engine.
pub struct ReleaseChange<'a> {
    pub dep: &'a Deployment,
    /// The revision being made (its `from` and `rollback_to` say what it replaces).
    pub revision: &'a Revision,
    pub record: &'a VersionRecord,
    pub params: &'a crate::deploy::Params,
    /// The imported bundle's files of this version and form.
    pub bundle_dir: PathBuf,
}

/// A form whose own tool keeps revisions and rolls back (helm).
pub trait ReleaseEngine {
    /// Problems that must stop the change before anything changes.
    fn preflight(&self, change: &ReleaseChange<'_>) -> Result<Vec<String>, ImportError>;

    /// The tool's version, for the `engine` preflight check.
    fn versions(&self) -> crate::target::EngineVersions {
        crate::target::EngineVersions::default()
    }

    /// Carries the change out and waits for it; a failed change is undone by the tool.
    /// Returns the note history shows (e.g. `helm revision 7`).
    fn apply(&self, change: &ReleaseChange<'_>) -> Result<String, ImportError>;

    /// After a crash during [`ReleaseEngine::apply`]: the note if the change went through
    /// (it runs now), `None` if it did not.
    fn applied(&self, change: &ReleaseChange<'_>) -> Result<Option<String>, ImportError>;

    fn status(
        &self,
        dep: &Deployment,
        model: &AppModel,
    ) -> Result<Vec<ComponentStatus>, ImportError>;

    /// Removes the release; what the tool keeps (e.g. persistent volume claims) is its own.
    fn uninstall(&self, dep: &Deployment) -> Result<(), ImportError>;

    /// Stops (`stopped`) or starts the running release as it is, keeping its data: the
    /// licence check's stop and start. `bundle_dir` is the running version's.
    fn set_stopped(
        &self,
        dep: &Deployment,
        record: &VersionRecord,
        bundle_dir: &std::path::Path,
        stopped: bool,
    ) -> Result<(), ImportError>;
}

/// How one form's changes are carried out.
pub enum Engine<'s> {
    Host(Box<dyn Target + 's>),
    Release(Box<dyn ReleaseEngine + 's>),
}

/// One row of the form table.
pub struct FormRow {
    pub form: Form,
    /// The operations the form has; any other is refused with [`ImportError::NotSupported`].
    pub operations: &'static [Operation],
    pub open: for<'s> fn(&'s Site) -> Result<Engine<'s>, ImportError>,
}

/// What a host engine does: every change, and stopping and starting as it is (the
/// licence check).
const HOST_OPERATIONS: &[Operation] = &[
    Operation::Install,
    Operation::Upgrade,
    Operation::Rollback,
    Operation::Status,
    Operation::Uninstall,
    Operation::Stop,
    Operation::Start,
];

/// What a release engine does: every change, and stopping and starting the release as it
/// is (scaled to zero and back, the licence check).
const RELEASE_OPERATIONS: &[Operation] = &[
    Operation::Install,
    Operation::Upgrade,
    Operation::Rollback,
    Operation::Status,
    Operation::Uninstall,
    Operation::Stop,
    Operation::Start,
];

/// Every form this appmodel deploys, and how.
pub const FORMS: &[FormRow] = &[
    FormRow {
        form: Form::Compose,
        operations: HOST_OPERATIONS,
        open: |site| {
            Ok(Engine::Host(Box::new(crate::compose::Compose::detect(
                site,
            )?)))
        },
    },
    FormRow {
        form: Form::Systemd,
        operations: HOST_OPERATIONS,
        open: |site| Ok(Engine::Host(Box::new(crate::systemd::Systemd::new(site)))),
    },
    FormRow {
        form: Form::Helm,
        operations: RELEASE_OPERATIONS,
        open: |_| {
            Ok(Engine::Release(
                Box::new(crate::helm::HelmEngine::detect()?),
            ))
        },
    },
];

/// The table row of `form`, if this appmodel deploys it at all.
pub fn row(form: Form) -> Option<&'static FormRow> {
    FORMS.iter().find(|r| r.form == form)
}

/// Whether `form` has `operation`: the one typed refusal for a missing one.
pub fn check_supported(form: Form, operation: Operation) -> Result<&'static FormRow, ImportError> {
    match row(form) {
        Some(r) if r.operations.contains(&operation) => Ok(r),
        _ => Err(ImportError::NotSupported { operation, form }),
    }
}

/// The engine that carries out `operation` for `form`.
pub fn engine_for(
    site: &Site,
    form: Form,
    operation: Operation,
) -> Result<Engine<'_>, ImportError> {
    let row = check_supported(form, operation)?;
    #[cfg(test)]
    if let Some(fake) = TEST_ENGINE.with(|t| t.borrow().clone()) {
        return Ok(Engine::Host(fake()));
    }
    (row.open)(site)
}

/// A unit test's host engine, used for every form on this thread (a recording fake).
#[cfg(test)]
pub(crate) type FakeEngine = std::rc::Rc<dyn Fn() -> Box<dyn Target>>;

#[cfg(test)]
thread_local! {
    pub(crate) static TEST_ENGINE: std::cell::RefCell<Option<FakeEngine>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_has_one_row_and_a_missing_operation_is_one_typed_error() {
        for form in Form::ALL {
            assert_eq!(FORMS.iter().filter(|r| r.form == form).count(), 1, "{form}");
            assert!(check_supported(form, Operation::Uninstall).is_ok());
        }
        let e = ImportError::NotSupported {
            operation: Operation::Rollback,
            form: Form::Helm,
        };
        assert_eq!(
            e.to_string(),
            "the helm form has no rollback in this appmodel"
        );
        assert!(e.is_user_error());
    }
}
