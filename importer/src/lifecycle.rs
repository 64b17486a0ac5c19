//! install, upgrade, rollback, status, history, uninstall — the same for every target.
//!
//! Every change follows one path ([`switch`]): check the configuration and preflight before
//! anything changes; prepare artifacts; journal; stop the running revision and snapshot its
//! data; (rollback: restore the target's snapshot); start the new revision level by level in
//! dependency order, waiting for each component's health. If a component is not healthy in
//! time, the previous revision and its data come back automatically and the new revision is
//! recorded as failed. A crash at any step is finished or reverted by the next command
//! ([`recover`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use appmodel_model::bundle::Form;
use appmodel_model::record::{VersionDiff, VersionRecord};
use appmodel_model::types::Component;
use appmodel_model::DependencyGraph;
use serde::Serialize;

use crate::deploy::{
    copy_tree, resolve_values, restore_tree, Action, Deployment, Journal, Revision, Status, Step,
};
use crate::engine::{engine_for, Engine, Operation, ReleaseChange, ReleaseEngine};
use crate::events::{emit, ChangeEvent};
use crate::plan::{self, Plan};
use crate::preflight::Verdict;
use crate::site::Site;
use crate::target::{ComponentStatus, Health, RevisionCtx, Target};
use crate::{io_err, ImportError};

/// Snapshots kept by default: the newest `--keep`, and always the one of the newest
/// superseded revision (what a plain `rollback` goes back to). An older revision's
/// snapshot may be pruned; `rollback N` to it then says there is no snapshot.
pub const DEFAULT_KEEP: usize = 3;

/// The app a site command means: the one named, else the only one imported.
pub fn resolve_app(site: &Site, named: Option<&str>) -> Result<String, ImportError> {
    if let Some(a) = named {
        return Ok(a.to_string());
    }
    let mut apps: Vec<String> = site.store().records()?.into_iter().map(|r| r.app).collect();
    apps.dedup();
    match apps.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ImportError::NothingImported),
        _ => Err(ImportError::Ambiguous(format!(
            "this site holds several apps ({}); name one with `--app`",
            apps.join(", ")
        ))),
    }
}

/// Imported versions of `app` (with a bundle of `form`, when given), oldest first by
/// semantic version (prereleases before their release).
fn imported_versions(
    site: &Site,
    app: &str,
    form: Option<Form>,
) -> Result<Vec<VersionRecord>, ImportError> {
    Ok(site
        .store()
        .records()?
        .into_iter()
        .filter(|r| r.app == app)
        .filter(|r| form.is_none_or(|f| site.bundle_dir(app, &r.version, f).is_dir()))
        .collect())
}

/// The imported version `asked` means ([`appmodel_model::version::pick`]: exactly, else the
/// newest of its series, else with nothing asked the newest).
pub fn pick_version(
    site: &Site,
    app: &str,
    form: Option<Form>,
    asked: Option<&str>,
) -> Result<VersionRecord, ImportError> {
    let mut versions = imported_versions(site, app, form)?;
    let picked = appmodel_model::version::pick(asked, versions.iter().map(|r| &r.version)).cloned();
    match (picked, asked) {
        (Some(v), _) => {
            versions.retain(|r| r.version == v);
            Ok(versions.pop().expect("the picked version is one of them"))
        }
        (None, None) => Err(ImportError::NothingImported),
        (None, Some(asked)) => Err(ImportError::NotImported {
            app: app.to_string(),
            version: asked.strip_prefix('v').unwrap_or(asked).to_string(),
            form,
        }),
    }
}

/// The form an app is deployed with, or the only form imported for it.
fn pick_form(site: &Site, app: &str, dep: &Deployment) -> Result<Form, ImportError> {
    if let Some(r) = dep.history()?.last() {
        return Ok(r.form);
    }
    let mut forms = Vec::new();
    for f in crate::engine::FORMS.iter().map(|r| r.form) {
        if !imported_versions(site, app, Some(f))?.is_empty() {
            forms.push(f);
        }
    }
    match forms.as_slice() {
        [one] => Ok(*one),
        [] => Err(ImportError::NothingImported),
        _ => Ok(forms[0]),
    }
}

pub(crate) struct Loaded {
    pub(crate) revision: Revision,
    pub(crate) record: VersionRecord,
    pub(crate) params: crate::deploy::Params,
}

pub(crate) fn ctx<'a>(site: &Site, dep: &'a Deployment, l: &'a Loaded) -> RevisionCtx<'a> {
    RevisionCtx {
        app: &dep.app,
        number: l.revision.number,
        record: &l.record,
        bundle_dir: site.bundle_dir(&dep.app, &l.revision.version, l.revision.form),
        project_dir: dep.project_dir(l.revision.number),
        gate_dir: dep.gate_dir(),
        params: &l.params,
    }
}

/// Reads a recorded revision back (its record and the values it was made with).
pub(crate) fn load_revision(
    site: &Site,
    dep: &Deployment,
    r: &Revision,
) -> Result<Loaded, ImportError> {
    let record = site.store().record(&dep.app, &r.version)?.ok_or_else(|| {
        ImportError::Inconsistent(format!(
            "revision {} needs {} {}, which is not in the site store",
            r.number, dep.app, r.version
        ))
    })?;
    let p = dep.revision_dir(r.number).join("params.json");
    let params = match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(crate::damaged(&p))?,
        Err(_) => BTreeMap::new(),
    };
    let params = crate::deploy::typed_as_declared(&record.model, params);
    Ok(Loaded {
        revision: r.clone(),
        record,
        params,
    })
}

#[derive(Clone, Copy)]
pub struct ChangeOptions<'a> {
    pub app: Option<&'a str>,
    pub version: Option<&'a str>,
    pub config: Option<&'a Path>,
    pub keep: usize,
    /// Work out and print the plan; touch nothing, not even an unfinished change.
    pub dry_run: bool,
    /// Install or upgrade to a version older than the newest this site has run.
    pub allow_downgrade: bool,
    /// Preflight checks whose failure is waived (never a strict one); recorded in history.
    pub ignore_checks: &'a [String],
    /// `appmodel preflight`: a dry run that returns the plan with every check's result
    /// even when one fails.
    pub preflight_only: bool,
}

/// What an install, upgrade or rollback did (or, on a dry run, would do).
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub revision: Revision,
    /// The revision that runs now (the new one, or the previous one after a revert).
    pub running: Option<u32>,
    pub plan: Option<Plan>,
    /// Nothing was changed: `upgrade` with no version and no new configuration, and the
    /// newest imported version already runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// Nothing was changed: this was a dry run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl Outcome {
    /// A dry run's (or a preflight's) outcome: the plan of a revision not made.
    fn planned(revision: Revision, running: Option<u32>, plan: Plan) -> Outcome {
        Outcome {
            revision,
            running,
            plan: Some(plan),
            unchanged: false,
            dry_run: true,
        }
    }
}

fn read_config(path: &Path) -> Result<String, ImportError> {
    use appmodel_model::input::{cap, read_text, Links};
    read_text(path, cap::CONFIG, Links::Follow).map_err(|source| ImportError::Input {
        path: path.to_path_buf(),
        source,
    })
}
/// The checks on the version itself, before anything else: it must run on this host, must
/// not be older than what the site has run (unless allowed), and must be reachable from
/// the running version. Returns the waivers to record.
fn check_version_allowed(
    site: &Site,
    dep: &Deployment,
    record: &VersionRecord,
    form: Form,
    current: Option<&Revision>,
    allow_downgrade: bool,
) -> Result<Vec<String>, ImportError> {
    let mut waivers = Vec::new();
    crate::import::runs_on_host(
        &record.app,
        &record.version,
        form,
        &record.model.app.platforms(),
    )?;
    let note =
        crate::import::ImportNote::read(&site.bundle_dir(&record.app, &record.version, form));
    if note.unsigned_allowed {
        waivers.push("unsigned bundle, imported with --allow-unsigned".to_string());
    }
    let to = &record.version;
    // What ran and whose data was carried forward: not a failed revision, and not one a
    // rollback undid (its data was replaced by the older revision's snapshot).
    let ran = dep.history()?.into_iter().filter(|r| {
        matches!(
            r.status,
            Status::Deployed | Status::Superseded | Status::Uninstalled
        )
    });
    if let Some((newest, rev)) = ran.map(|r| (r.version, r.number)).max() {
        if *to < newest {
            if !allow_downgrade {
                return Err(ImportError::Downgrade {
                    app: record.app.clone(),
                    to: record.version.to_string(),
                    newest: newest.to_string(),
                    revision: rev,
                });
            }
            waivers.push(format!("downgrade below {newest}, with --allow-downgrade"));
        }
    }
    if let (Some(cur), Some(req)) = (current, record.model.app.upgrade_from.as_deref()) {
        if !record.model.allows_upgrade_from(cur.version.semver()) && cur.version != *to {
            return Err(ImportError::SkippedVersion {
                app: record.app.clone(),
                to: record.version.to_string(),
                from: cur.version.to_string(),
                requirement: req.to_string(),
            });
        }
    }
    Ok(waivers)
}

/// The snapshot of the running revision's data must fit where snapshots go: checked before
/// anything changes (a full disk mid-snapshot is still reverted, see [`switch`]).
fn check_snapshot_space(
    dep: &Deployment,
    target: &dyn Target,
    current: &RevisionCtx<'_>,
) -> Result<(), ImportError> {
    let needed: u64 = target
        .data_dirs(current, false)?
        .iter()
        .map(|d| crate::deploy::tree_size(&d.path))
        .sum();
    let dir = dep.snapshot_dir(current.number);
    match crate::host::free_at(&dir) {
        Some((existing, free)) if needed > free => Err(ImportError::NoSpace {
            what: format!("the data snapshot of revision {}", current.number),
            path: existing.to_path_buf(),
            needed,
            free,
        }),
        _ => Ok(()),
    }
}

/// A change, planned: the plan and everything carrying it out needs.
struct Change {
    plan: Plan,
    current: Option<Loaded>,
    next: Loaded,
    config_text: String,
    new_secrets: BTreeMap<String, String>,
}

/// Opens the site's deployment of the app a command means. A real change first finishes
/// or reverts what a crash left unfinished; a dry run only reports it in the plan.
fn begin(site: &Site, app: Option<&str>, dry_run: bool) -> Result<Deployment, ImportError> {
    let app = resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    if !dry_run {
        recover(site, &dep)?;
    }
    Ok(dep)
}

/// The plan of a change from `current` (if any) to `next`.
fn plan_of(
    site: &Site,
    dep: &Deployment,
    current: Option<&Loaded>,
    next: &mut Loaded,
    waivers: Vec<String>,
    dry_run: bool,
) -> Result<Plan, ImportError> {
    // The licence first: it gives the `licence.*` values the components render with.
    let new_version = match next.revision.action {
        Action::Install => true,
        Action::Upgrade => current.is_some_and(|c| c.record.version != next.record.version),
        _ => false,
    };
    let licence = crate::licensing::gate(
        site,
        dep,
        &next.record,
        &mut next.params,
        new_version,
        dry_run,
    )?;
    let next = &*next;
    let old = current.map(|c| plan::Side {
        record: &c.record,
        params: &c.params,
    });
    let new = plan::Side {
        record: &next.record,
        params: &next.params,
    };
    let (components_changed, values_changed) = plan::changes(old.as_ref(), &new);
    let diff = current.map(|c| VersionDiff::between(&c.record, &next.record));
    let images = diff
        .iter()
        .flat_map(|d| d.components_changed.iter())
        .filter(|(_, w)| w.iter().any(|x| x == "image"))
        .map(|(c, _)| c.clone())
        .collect();
    Ok(Plan {
        app: dep.app.clone(),
        action: next.revision.action,
        form: next.revision.form,
        from_revision: current.map(|c| c.revision.number),
        from_version: current.map(|c| c.revision.version.clone()),
        to_version: next.record.version.clone(),
        rollback_to: next.revision.rollback_to,
        parameters_added: diff
            .as_ref()
            .map(|d| d.parameters_added.clone())
            .unwrap_or_default(),
        diff,
        images,
        components_changed,
        values_changed,
        data: None,
        waivers,
        pending_recovery: dep.journal()?,
        licence,
        preflight: Vec::new(),
    })
}

/// `appmodel preflight`: every check of installing `opts.version` (or, when the app is
/// installed, of upgrading to it), with nothing changed and nothing recovered. `None` when
/// there is no change to check (the newest imported version runs already).
pub fn preflight(site: &Site, opts: &ChangeOptions<'_>) -> Result<Option<Plan>, ImportError> {
    let opts = ChangeOptions {
        dry_run: true,
        preflight_only: true,
        ..*opts
    };
    let app = resolve_app(site, opts.app)?;
    let installed = Deployment::new(site, &app).current()?.is_some();
    let outcome = if installed {
        upgrade(site, &opts)?
    } else {
        install(site, &opts)?
    };
    Ok(outcome.plan)
}

/// What `appmodel preflight BUNDLE` found.
#[derive(Debug, Serialize)]
pub struct BundlePreflight {
    pub app: String,
    pub version: String,
    pub form: Form,
    pub checks: Vec<crate::preflight::Check>,
}

/// `appmodel preflight BUNDLE`: a bundle not imported yet (a directory, a mounted disc, a
/// tar or an ISO file) verified as import would verify it (its signature against the
/// pinned keys, every file), writing nothing, then the host checked against its version.
/// The form's own checks (engine, ports, room) need the bundle's files and run for a
/// directory or a mounted disc only.
pub fn preflight_bundle(
    site: &Site,
    path: &Path,
    config: Option<&Path>,
) -> Result<BundlePreflight, ImportError> {
    let keys = crate::site::trusted_keys_in(&site.root().join("trust"))?;
    let report = crate::import::verify(path, keys, Some(site.store()))?;
    let record = report.record.clone().ok_or_else(|| {
        crate::import::not_a_bundle(
            path,
            "it is a volume of a set: preflight reads one bundle; import the set, then run `preflight VERSION`",
        )
    })?;
    let untrusted = report.signed_by.is_none().then(|| {
        if report.signature_unchecked {
            "signed, but no pinned key to check it with".to_string()
        } else {
            "unsigned".to_string()
        }
    });
    let mut params = match config {
        Some(c) => {
            let text = read_config(c)?;
            resolve_values(&record.model, c, text, &BTreeMap::new())?
                .0
                .params
        }
        None => crate::deploy::Params::new(),
    };
    let dep = Deployment::new(site, &record.app);
    let current = match dep.current()? {
        Some(r) => Some(load_revision(site, &dep, &r)?),
        None => None,
    };
    let licence =
        crate::licensing::gate(site, &dep, &record, &mut params, current.is_some(), true)?;
    let engine = engine_for(site, report.form, Operation::Install)?;
    let (engine_problems, data_root, versions, runs_here) = match &engine {
        Engine::Host(t) => {
            let new = RevisionCtx {
                app: &record.app,
                number: 0,
                record: &record,
                bundle_dir: path.to_path_buf(),
                project_dir: dep.project_dir(0),
                gate_dir: dep.gate_dir(),
                params: &params,
            };
            let cur_ctx = current.as_ref().map(|c| ctx(site, &dep, c));
            let problems = match path.is_dir() {
                true => Some(t.preflight(&new, cur_ctx.as_ref())?),
                false => None,
            };
            (problems, t.data_root(&new), t.versions(), true)
        }
        Engine::Release(r) => (None, None, r.versions(), false),
    };
    let checks = crate::preflight::run(
        &crate::preflight::Inputs {
            record: &record,
            form: report.form,
            params: &params,
            licence: licence.as_ref(),
            unsigned: false,
            untrusted,
            data_root,
            runs_here,
            versions,
            engine_problems,
        },
        &[],
    )?;
    Ok(BundlePreflight {
        app: record.app.clone(),
        version: record.version.to_string(),
        form: report.form,
        checks,
    })
}

/// `appmodel install`.
pub fn install(site: &Site, opts: &ChangeOptions<'_>) -> Result<Outcome, ImportError> {
    let _lock = site.lock()?;
    let dep = begin(site, opts.app, opts.dry_run)?;
    let app = dep.app.clone();
    if let Some(cur) = dep.current()? {
        return Err(ImportError::AlreadyInstalled {
            app,
            revision: cur.number,
            version: cur.version.to_string(),
        });
    }
    let form = pick_form(site, &app, &dep)?;
    let engine = engine_for(site, form, Operation::Install)?;
    let record = pick_version(site, &app, Some(form), opts.version)?;
    let waivers = check_version_allowed(site, &dep, &record, form, None, opts.allow_downgrade)?;
    let config = opts.config.ok_or_else(|| ImportError::ConfigNeeded {
        app: app.clone(),
        version: record.version.to_string(),
    })?;
    let text = read_config(config)?;
    let (values, new_secrets) = resolve_values(&record.model, config, text, &dep.secrets()?)?;
    let mut revision = Revision::pending(
        dep.next_number()?,
        &app,
        record.version.clone(),
        form,
        Action::Install,
        None,
        None,
    );
    revision.waivers = waivers.clone();
    let mut next = Loaded {
        revision,
        record,
        params: values.params,
    };
    let change = Change {
        plan: plan_of(site, &dep, None, &mut next, waivers, opts.dry_run)?,
        current: None,
        next,
        config_text: values.config_text,
        new_secrets,
    };
    carry_out(site, &dep, &engine, change, opts)
}

/// `appmodel upgrade [VERSION] [--config FILE]`. With neither, to the newest imported
/// version; with only `--config`, the running version with the new configuration.
pub fn upgrade(site: &Site, opts: &ChangeOptions<'_>) -> Result<Outcome, ImportError> {
    let _lock = site.lock()?;
    upgrade_locked(site, opts)
}

/// [`upgrade`], with the site lock held by the caller.
pub(crate) fn upgrade_locked(
    site: &Site,
    opts: &ChangeOptions<'_>,
) -> Result<Outcome, ImportError> {
    let dep = begin(site, opts.app, opts.dry_run)?;
    let app = dep.app.clone();
    let current = dep
        .current()?
        .ok_or_else(|| ImportError::NotInstalled(app.clone()))?;
    let engine = engine_for(site, current.form, Operation::Upgrade)?;
    let cur = load_revision(site, &dep, &current)?;
    let version = match (opts.version, opts.config) {
        (Some(v), _) => Some(v),
        (None, Some(_)) => Some(current.version.as_str()),
        (None, None) => None,
    };
    let record = pick_version(site, &app, Some(current.form), version)?;
    if opts.version.is_none() && opts.config.is_none() && record.version == current.version {
        return Ok(Outcome {
            running: Some(current.number),
            revision: current,
            plan: None,
            unchanged: true,
            dry_run: opts.dry_run,
        });
    }
    let waivers = check_version_allowed(
        site,
        &dep,
        &record,
        current.form,
        Some(&current),
        opts.allow_downgrade,
    )?;
    // The configuration carries over unless a new one is given.
    let (config_path, text) = match opts.config {
        Some(p) => (p.to_path_buf(), read_config(p)?),
        None => {
            let p = dep.revision_dir(current.number).join("site-config.yaml");
            // Made for the running version: what the new one no longer has is dropped.
            let (text, retired) =
                appmodel_model::drop_retired_params(&read_config(&p)?, &record.model);
            if !retired.is_empty() {
                tracing::warn!(
                    "{} {} has no parameter {}: its value in the running configuration is not carried over",
                    record.app,
                    record.version,
                    retired.join(", ")
                );
            }
            (p.clone(), text)
        }
    };
    let (values, new_secrets) = resolve_values(&record.model, &config_path, text, &dep.secrets()?)?;
    let mut revision = Revision::pending(
        dep.next_number()?,
        &app,
        record.version.clone(),
        current.form,
        Action::Upgrade,
        Some(current.number),
        None,
    );
    revision.waivers = waivers.clone();
    let mut next = Loaded {
        revision,
        record,
        params: values.params,
    };
    let change = Change {
        plan: plan_of(site, &dep, Some(&cur), &mut next, waivers, opts.dry_run)?,
        current: Some(cur),
        next,
        config_text: values.config_text,
        new_secrets,
    };
    carry_out(site, &dep, &engine, change, opts)
}

/// `appmodel rollback [REVISION]`: brings back a revision's files and its data snapshot, as
/// a new revision.
pub fn rollback(
    site: &Site,
    app: Option<&str>,
    to: Option<u32>,
    opts: &ChangeOptions<'_>,
) -> Result<Outcome, ImportError> {
    let _lock = site.lock()?;
    let dep = begin(site, app, opts.dry_run)?;
    let app = dep.app.clone();
    let current = dep
        .current()?
        .ok_or_else(|| ImportError::NotInstalled(app.clone()))?;
    let engine = engine_for(site, current.form, Operation::Rollback)?;
    let history = dep.history()?;
    let target_rev = match to {
        Some(n) => history
            .iter()
            .find(|r| r.number == n)
            .cloned()
            .ok_or(ImportError::NoSuchRevision(n))?,
        None => history
            .iter()
            .rev()
            .find(|r| r.number < current.number && r.status == Status::Superseded)
            .cloned()
            .ok_or_else(|| ImportError::NothingToRollBack(app.clone()))?,
    };
    if target_rev.number == current.number {
        return Err(ImportError::NothingToRollBack(app.clone()));
    }
    let host = matches!(engine, Engine::Host(_));
    if host && !dep.snapshot_dir(target_rev.number).is_dir() {
        return Err(ImportError::NoSnapshot(target_rev.number));
    }
    let cur = load_revision(site, &dep, &current)?;
    let old = load_revision(site, &dep, &target_rev)?;
    let config_text = read_config(&dep.revision_dir(target_rev.number).join("site-config.yaml"))?;
    let mut next = Loaded {
        revision: Revision::pending(
            dep.next_number()?,
            &app,
            target_rev.version.clone(),
            target_rev.form,
            Action::Rollback,
            Some(current.number),
            Some(target_rev.number),
        ),
        record: old.record,
        params: old.params,
    };
    let mut plan = plan_of(site, &dep, Some(&cur), &mut next, Vec::new(), opts.dry_run)?;
    plan.data = Some(if host {
        format!(
            "the data goes back to revision {}'s snapshot: what was written since then is replaced; the data as it is now is kept in revision {}'s snapshot",
            target_rev.number, current.number
        )
    } else {
        format!(
            "the release goes back to revision {}; the data in the cluster's volumes is not rolled back",
            target_rev.number
        )
    });
    let change = Change {
        plan,
        current: Some(cur),
        next,
        config_text,
        new_secrets: BTreeMap::new(),
    };
    carry_out(site, &dep, &engine, change, opts)
}

/// The one stage every change goes through: the engine's preflight, then (unless this is
/// a dry run) the change itself.
fn carry_out(
    site: &Site,
    dep: &Deployment,
    engine: &Engine<'_>,
    change: Change,
    opts: &ChangeOptions<'_>,
) -> Result<Outcome, ImportError> {
    let Change {
        mut plan,
        current,
        mut next,
        config_text,
        new_secrets,
    } = change;
    let previous = current.as_ref().map(|c| c.revision.number);
    if !opts.preflight_only {
        if let Some(refused) = plan.licence.as_ref().and_then(|l| l.refused.clone()) {
            return Err(ImportError::Licence(refused));
        }
    }
    let versions = match engine {
        Engine::Host(t) => t.versions(),
        Engine::Release(r) => r.versions(),
    };
    let (mut engine_problems, data_root, snapshot_space) = match engine {
        Engine::Host(target) => {
            let target = target.as_ref();
            let cur_ctx = current.as_ref().map(|c| ctx(site, dep, c));
            let new_ctx = ctx(site, dep, &next);
            let problems = target.preflight(&new_ctx, cur_ctx.as_ref())?;
            let space = match &cur_ctx {
                Some(c) => check_snapshot_space(dep, target, c).err(),
                None => None,
            };
            (problems, target.data_root(&new_ctx), space)
        }
        Engine::Release(r) => (r.preflight(&release_change(site, dep, &next))?, None, None),
    };
    if opts.preflight_only {
        if let Some(e) = &snapshot_space {
            engine_problems.push(e.to_string());
        }
    }
    let bundle_dir = site.bundle_dir(&dep.app, &next.revision.version, next.revision.form);
    let checks = crate::preflight::run(
        &crate::preflight::Inputs {
            record: &next.record,
            form: next.revision.form,
            params: &next.params,
            licence: plan.licence.as_ref(),
            unsigned: crate::import::ImportNote::read(&bundle_dir).unsigned_allowed,
            untrusted: None,
            data_root,
            runs_here: matches!(engine, Engine::Host(_)),
            versions,
            engine_problems: Some(engine_problems.clone()),
        },
        opts.ignore_checks,
    )?;
    plan.preflight = checks.clone();
    if opts.preflight_only {
        return Ok(Outcome::planned(next.revision, previous, plan));
    }
    // The form's own problems are told as they are; the other failures as their checks.
    let mut failures = engine_problems;
    failures.extend(
        checks
            .iter()
            .filter(|c| c.result == Verdict::Fail && c.name != "host")
            .map(|c| c.line()),
    );
    if !failures.is_empty() {
        return Err(ImportError::Preflight(failures));
    }
    if let Some(e) = snapshot_space {
        return Err(e);
    }
    for c in &checks {
        match c.result {
            Verdict::Warn => {
                tracing::warn!("preflight {}", c.line());
                next.revision
                    .warnings
                    .push(format!("preflight {}", c.line()));
            }
            Verdict::Ignored => {
                let waiver = format!("preflight {}, ignored with --ignore-check", c.line());
                tracing::warn!("{waiver}");
                next.revision.waivers.push(waiver.clone());
                plan.waivers.push(waiver);
            }
            _ => {}
        }
    }
    if opts.dry_run {
        return Ok(Outcome::planned(next.revision, previous, plan));
    }
    emit(ChangeEvent::Begin {
        app: dep.app.clone(),
        action: next.revision.action,
        version: next.revision.version.to_string(),
        revision: next.revision.number,
        previous,
    });
    let mut outcome = match engine {
        Engine::Host(target) => {
            let target = target.as_ref();
            target.prepare(&ctx(site, dep, &next))?;
            record_prepared(dep, &next, &config_text, new_secrets, previous)?;
            switch(site, dep, target, current.as_ref(), &next, opts.keep)?
        }
        Engine::Release(r) => {
            record_prepared(dep, &next, &config_text, new_secrets, previous)?;
            release_switch(site, dep, r.as_ref(), &next)?
        }
    };
    emit(ChangeEvent::Done {
        revision: outcome.revision.number,
        status: outcome.revision.status,
    });
    if plan.licence.is_some() {
        crate::licensing::install_timer(site, dep, &outcome.revision)?;
    }
    outcome.plan = Some(plan);
    Ok(outcome)
}

fn release_change<'a>(site: &Site, dep: &'a Deployment, l: &'a Loaded) -> ReleaseChange<'a> {
    ReleaseChange {
        dep,
        revision: &l.revision,
        record: &l.record,
        params: &l.params,
        bundle_dir: site.bundle_dir(&dep.app, &l.revision.version, l.revision.form),
    }
}

/// A release engine's change, journalled around the tool's run: the tool waits for the
/// release and undoes a failure itself, which is recorded as failed.
fn release_switch(
    site: &Site,
    dep: &Deployment,
    engine: &dyn ReleaseEngine,
    next: &Loaded,
) -> Result<Outcome, ImportError> {
    let n = next.revision.number;
    let action = next.revision.action;
    dep.write_journal(&Journal {
        action,
        revision: n,
        previous: next.revision.from,
        step: Step::Starting,
        keep_data: false,
    })?;
    match engine.apply(&release_change(site, dep, next)) {
        Ok(note) => {
            crate::fault::point(&format!("{action:?}-started"));
            finish_release(dep, &next.revision, note)?;
            Ok(Outcome {
                revision: dep.revision(n)?.ok_or(ImportError::NoSuchRevision(n))?,
                running: Some(n),
                plan: None,
                unchanged: false,
                dry_run: false,
            })
        }
        Err(e) => {
            dep.set_status(n, Status::Failed, Some(e.to_string()))?;
            dep.clear_journal()?;
            Err(ImportError::Reverted {
                revision: n,
                reason: e.to_string(),
                restored: next.revision.from,
            })
        }
    }
}

/// Records a release engine's change that went through.
fn finish_release(dep: &Deployment, next: &Revision, note: String) -> Result<(), ImportError> {
    if let Some(p) = next.from {
        dep.set_status(p, left_behind(next.action), None)?;
    }
    dep.set_status(next.number, Status::Deployed, Some(note))?;
    dep.clear_journal()
}

/// Keeps new secrets, writes the pending revision with its configuration, and journals
/// that it is prepared (nothing running touched yet).
fn record_prepared(
    dep: &Deployment,
    l: &Loaded,
    config_text: &str,
    new_secrets: BTreeMap<String, String>,
    previous: Option<u32>,
) -> Result<(), ImportError> {
    if !new_secrets.is_empty() {
        let mut secrets = dep.secrets()?;
        secrets.extend(new_secrets);
        dep.write_secrets(&secrets)?;
    }
    let saved = save_revision(dep, l, config_text).and_then(|()| {
        dep.write_journal(&Journal {
            action: l.revision.action,
            revision: l.revision.number,
            previous,
            step: Step::Prepared,
            keep_data: false,
        })
    });
    if let Err(e) = &saved {
        // Nothing running was touched; the revision must not stay "pending" for ever.
        let _ = dep.set_status(
            l.revision.number,
            Status::Failed,
            Some(format!("its files could not be written: {e}")),
        );
    }
    saved
}

fn save_revision(dep: &Deployment, l: &Loaded, config_text: &str) -> Result<(), ImportError> {
    dep.write_revision(&l.revision)?;
    let dir = dep.revision_dir(l.revision.number);
    std::fs::create_dir_all(&dir).map_err(crate::io_err("create", &dir))?;
    let cfg = dir.join("site-config.yaml");
    crate::deploy::write_private(&cfg, config_text.as_bytes())?;
    let params = dir.join("params.json");
    let bytes = crate::state_json(&l.params)?;
    crate::deploy::write_private(&params, &bytes)
}

/// Stops `previous` (snapshotting its data), starts `next`; reverts on failure.
fn switch(
    site: &Site,
    dep: &Deployment,
    target: &dyn Target,
    previous: Option<&Loaded>,
    next: &Loaded,
    keep: usize,
) -> Result<Outcome, ImportError> {
    let n = next.revision.number;
    if let Some(prev) = previous {
        let p = prev.revision.number;
        dep.write_journal(&Journal {
            action: next.revision.action,
            revision: n,
            previous: Some(p),
            step: Step::Stopping,
            keep_data: false,
        })?;
        emit(ChangeEvent::Stopping { revision: p });
        let pctx = ctx(site, dep, prev);
        let stopped = target.stop(&pctx).and_then(|()| {
            crate::fault::point(&format!("{:?}-stopped", next.revision.action));
            snapshot(dep, target, &pctx)
        });
        let stopped = stopped.and_then(|()| {
            dep.write_journal(&Journal {
                action: next.revision.action,
                revision: n,
                previous: Some(p),
                step: Step::Snapshotted,
                keep_data: false,
            })
        });
        if let Err(e) = stopped {
            // The previous revision's data was not changed: any snapshot of it is partial
            // or older than its data, so it goes, and the previous revision starts again.
            emit(ChangeEvent::Reverting {
                revision: n,
                reason: format!("stopping or snapshotting failed: {e}"),
            });
            drop_unfinished_snapshot(dep, p);
            revert(site, dep, target, previous, next, &e.to_string())?;
            return Err(ImportError::Reverted {
                revision: n,
                reason: e.to_string(),
                restored: Some(p),
            });
        }
    }
    dep.write_journal(&Journal {
        action: next.revision.action,
        revision: n,
        previous: previous.map(|p| p.revision.number),
        step: Step::Starting,
        keep_data: false,
    })?;
    let nctx = ctx(site, dep, next);
    let action = next.revision.action;
    let started = (|| {
        if let Some(to) = next.revision.rollback_to {
            restore(dep, target, &nctx, to)?;
            crate::fault::point(&format!("{action:?}-restored"));
        }
        target.write_project(&nctx)?;
        start_in_order(target, &nctx)
    })();
    match started {
        Ok(()) => {
            crate::fault::point(&format!("{action:?}-started"));
            if let Some(prev) = previous {
                dep.set_status(prev.revision.number, left_behind(action), None)?;
                crate::fault::point(&format!("{action:?}-superseded"));
            }
            dep.set_status(n, Status::Deployed, None)?;
            crate::fault::point(&format!("{action:?}-deployed"));
            dep.clear_journal()?;
            let mut protect = vec![n];
            protect.extend(
                dep.history()?
                    .iter()
                    .filter(|r| r.status == Status::Superseded)
                    .map(|r| r.number)
                    .max(),
            );
            dep.prune_snapshots(keep.max(1), &protect)?;
            let revision = dep.revision(n)?.unwrap_or_else(|| next.revision.clone());
            Ok(Outcome {
                revision,
                running: Some(n),
                plan: None,
                unchanged: false,
                dry_run: false,
            })
        }
        Err(e) => {
            emit(ChangeEvent::Reverting {
                revision: n,
                reason: e.to_string(),
            });
            revert(site, dep, target, previous, next, &e.to_string())?;
            Err(ImportError::Reverted {
                revision: n,
                reason: e.to_string(),
                restored: previous.map(|p| p.revision.number),
            })
        }
    }
}

/// What the running revision becomes once the change's new revision runs.
fn left_behind(action: Action) -> Status {
    if action == Action::Rollback {
        Status::RolledBack
    } else {
        Status::Superseded
    }
}

/// Before its snapshot was complete, the previous revision's data was not changed: a
/// snapshot of it (partial, or older than its data) must never be restored over it.
fn drop_unfinished_snapshot(dep: &Deployment, revision: u32) {
    let dir = dep.snapshot_dir(revision);
    let _ = std::fs::remove_dir_all(dir.with_extension("partial"));
    let _ = std::fs::remove_dir_all(dir);
}

fn snapshot(
    dep: &Deployment,
    target: &dyn Target,
    rev: &RevisionCtx<'_>,
) -> Result<(), ImportError> {
    let dest = dep.snapshot_dir(rev.number);
    let tmp = dest.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
    let mut bytes = 0;
    for d in target.data_dirs(rev, false)? {
        bytes += copy_tree(&d.path, &tmp.join(&d.name))?;
    }
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).map_err(io_err("rename into", &dest))?;
    emit(ChangeEvent::Snapshotted {
        revision: rev.number,
        bytes,
    });
    Ok(())
}

fn restore(
    dep: &Deployment,
    target: &dyn Target,
    rev: &RevisionCtx<'_>,
    from: u32,
) -> Result<(), ImportError> {
    let snap = dep.snapshot_dir(from);
    for d in target.data_dirs(rev, true)? {
        let src = snap.join(&d.name);
        if src.is_dir() {
            restore_tree(&src, &d.path)?;
        }
    }
    emit(ChangeEvent::Restored { from });
    Ok(())
}

/// Starts level by level; each component must be healthy within its time.
pub(crate) fn start_in_order(
    target: &dyn Target,
    rev: &RevisionCtx<'_>,
) -> Result<(), ImportError> {
    let model = &rev.record.model;
    let graph = DependencyGraph::from_model(model).map_err(|c| {
        ImportError::Internal(format!("dependency cycle in a verified model: {}", c[0]))
    })?;
    for level in graph.levels() {
        emit(ChangeEvent::Starting {
            revision: rev.number,
            components: level.iter().map(|c| c.to_string()).collect(),
        });
        target.start(rev, &level)?;
        for name in &level {
            if let Some(c) = model.component(name) {
                wait_healthy(target, rev, c)?;
            }
        }
    }
    Ok(())
}

/// How long a component may take to become healthy: its start period and every retry.
pub fn health_timeout(c: &Component) -> Duration {
    let Some(h) = &c.health else {
        return Duration::from_secs(30);
    };
    let t = h.durations();
    t.start_period + (t.interval + t.timeout) * (t.retries + 1) + Duration::from_secs(15)
}

fn wait_healthy(
    target: &dyn Target,
    rev: &RevisionCtx<'_>,
    c: &Component,
) -> Result<(), ImportError> {
    let deadline = Instant::now() + health_timeout(c);
    let mut last = Health::Missing;
    while Instant::now() < deadline {
        last = target.health(rev, &c.name)?;
        let healthy = match last {
            Health::Healthy => true,
            Health::Running => c.health.is_none(),
            _ => false,
        };
        if healthy {
            emit(ChangeEvent::Healthy {
                revision: rev.number,
                component: c.name.clone(),
            });
            return Ok(());
        }
        match last {
            Health::Unhealthy => break,
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    Err(ImportError::Unhealthy {
        component: c.name.clone(),
        health: format!("{last:?}").to_lowercase(),
        waited: health_timeout(c).as_secs(),
    })
}

/// Undoes a failed or interrupted switch: stop `next`, bring back `previous` and its data.
fn revert(
    site: &Site,
    dep: &Deployment,
    target: &dyn Target,
    previous: Option<&Loaded>,
    next: &Loaded,
    why: &str,
) -> Result<(), ImportError> {
    let nctx = ctx(site, dep, next);
    // Best effort: a revision that never got as far as its files has nothing to stop
    // (compose then fails for want of a project file, which changes nothing).
    let _ = target.stop(&nctx);
    dep.set_status(next.revision.number, Status::Failed, Some(why.to_string()))?;
    if let Some(prev) = previous {
        let pctx = ctx(site, dep, prev);
        if dep.snapshot_dir(prev.revision.number).is_dir() {
            restore(dep, target, &pctx, prev.revision.number)?;
        }
        start_in_order(target, &pctx)?;
        dep.set_status(prev.revision.number, Status::Deployed, None)?;
    }
    dep.clear_journal()?;
    emit(ChangeEvent::Reverted {
        revision: next.revision.number,
        restored: previous.map(|p| p.revision.number),
    });
    Ok(())
}

/// Finishes or reverts a step a crash interrupted. Runs first in every changing command.
pub fn recover(site: &Site, dep: &Deployment) -> Result<Option<String>, ImportError> {
    let Some(j) = dep.journal()? else {
        return Ok(None);
    };
    let next_rev = dep.revision(j.revision)?;
    let prev_rev = match j.previous {
        Some(p) => dep.revision(p)?,
        None => None,
    };
    let Some(next_rev) = next_rev else {
        dep.clear_journal()?;
        return Ok(None);
    };
    if j.action == Action::Uninstall {
        if next_rev.status != Status::Uninstalled {
            finish_uninstall(site, dep, &next_rev, j.keep_data)?;
        }
        dep.clear_journal()?;
        return Ok(Some(finished_note(&j)));
    }
    if next_rev.status == Status::Deployed {
        // The crash came after the new revision was healthy and recorded: finish the step.
        if let Some(p) = &prev_rev {
            if p.status == Status::Deployed {
                dep.set_status(p.number, left_behind(j.action), None)?;
            }
        }
        dep.clear_journal()?;
        return Ok(Some(finished_note(&j)));
    }
    let why = format!(
        "interrupted during {:?} (step {:?}); reverted by the next command",
        j.action, j.step
    )
    .to_lowercase();
    let engine = engine_for(site, next_rev.form, operation_of(j.action))?;
    let next = load_revision(site, dep, &next_rev)?;
    let target = match &engine {
        Engine::Host(t) => t.as_ref(),
        Engine::Release(r) => {
            // The tool undoes its own failed change; ask it whether this one went through.
            if j.step == Step::Starting {
                if let Some(note) = r.applied(&release_change(site, dep, &next))? {
                    finish_release(dep, &next.revision, note)?;
                    return Ok(Some(finished_note(&j)));
                }
            }
            dep.set_status(j.revision, Status::Failed, Some(why.clone()))?;
            dep.clear_journal()?;
            emit(ChangeEvent::Recovered {
                revision: j.revision,
                note: why.clone(),
            });
            return Ok(Some(why));
        }
    };
    let prev = match &prev_rev {
        Some(r) => Some(load_revision(site, dep, r)?),
        None => None,
    };
    if j.step == Step::Prepared {
        // Nothing running was touched.
        dep.set_status(j.revision, Status::Failed, Some(why.clone()))?;
        dep.clear_journal()?;
        emit(ChangeEvent::Recovered {
            revision: j.revision,
            note: why.clone(),
        });
        return Ok(Some(why));
    }
    if j.step == Step::Stopping {
        // The snapshot may be incomplete, but the previous revision's data was not changed:
        // start it again as it is.
        if let Some(p) = &prev {
            drop_unfinished_snapshot(dep, p.revision.number);
        }
    }
    revert(site, dep, target, prev.as_ref(), &next, &why)?;
    emit(ChangeEvent::Recovered {
        revision: j.revision,
        note: why.clone(),
    });
    Ok(Some(why))
}

/// What recovery says of a change it finished.
fn finished_note(j: &Journal) -> String {
    let done = format!(
        "{:?} of revision {} was finished by the next command",
        j.action, j.revision
    )
    .to_lowercase();
    emit(ChangeEvent::Recovered {
        revision: j.revision,
        note: done.clone(),
    });
    done
}

/// The operation whose engine finishes or reverts a journalled change.
fn operation_of(action: Action) -> Operation {
    match action {
        Action::Install => Operation::Install,
        Action::Upgrade => Operation::Upgrade,
        Action::Rollback => Operation::Rollback,
        Action::Uninstall => Operation::Uninstall,
    }
}

/// `appmodel status`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub app: String,
    pub revision: Option<Revision>,
    pub components: Vec<ComponentStatus>,
    /// A change that did not finish (a crash, or a failure that could not be reverted):
    /// which, and at which step. The next changing command finishes or reverts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Journal>,
    /// The licence (models with a `licence` section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence: Option<crate::licensing::LicenceReport>,
}

pub fn status(site: &Site, app: Option<&str>) -> Result<StatusReport, ImportError> {
    let app = resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    let interrupted = dep.journal()?;
    let Some(current) = dep.current()? else {
        let licence = match pick_version(site, &app, None, None) {
            Ok(record) => crate::licensing::check(site, &dep, &record)?.map(|c| c.0),
            Err(_) => None,
        };
        return Ok(StatusReport {
            app,
            revision: None,
            components: Vec::new(),
            interrupted,
            licence,
        });
    };
    let l = load_revision(site, &dep, &current)?;
    let licence = crate::licensing::check(site, &dep, &l.record)?.map(|c| c.0);
    let components = match engine_for(site, current.form, Operation::Status)? {
        Engine::Host(target) => target.status(&ctx(site, &dep, &l))?,
        Engine::Release(r) => r.status(&dep, &l.record.model)?,
    };
    Ok(StatusReport {
        app,
        revision: Some(current),
        components,
        interrupted,
        licence,
    })
}

pub fn history(site: &Site, app: Option<&str>) -> Result<Vec<Revision>, ImportError> {
    let app = resolve_app(site, app)?;
    Deployment::new(site, &app).history()
}

/// `appmodel uninstall [--keep-data]`.
pub fn uninstall(site: &Site, app: Option<&str>, keep_data: bool) -> Result<Revision, ImportError> {
    let _lock = site.lock()?;
    let app = resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    recover(site, &dep)?;
    let current = dep
        .current()?
        .ok_or_else(|| ImportError::NotInstalled(app.clone()))?;
    // Checked before the journal, so a form without uninstall leaves nothing to recover.
    engine_for(site, current.form, Operation::Uninstall)?;
    dep.write_journal(&Journal {
        action: Action::Uninstall,
        revision: current.number,
        previous: None,
        step: Step::Stopping,
        keep_data,
    })?;
    finish_uninstall(site, &dep, &current, keep_data)?;
    dep.revision(current.number)?
        .ok_or(ImportError::NoSuchRevision(current.number))
}

/// The steps of an uninstall, each of which can run again: the next command finishes an
/// interrupted one this way (stopping what is stopped and removing what is gone are no-ops).
fn finish_uninstall(
    site: &Site,
    dep: &Deployment,
    current: &Revision,
    keep_data: bool,
) -> Result<(), ImportError> {
    let l = load_revision(site, dep, current)?;
    match engine_for(site, current.form, Operation::Uninstall)? {
        Engine::Host(target) => {
            let c = ctx(site, dep, &l);
            target.stop(&c)?;
            crate::fault::point("uninstall-stopped");
            target.remove_files(&c)?;
            if !keep_data {
                target.remove_data(&c)?;
            }
        }
        Engine::Release(r) => r.uninstall(dep)?,
    }
    crate::fault::point("uninstall-removed");
    crate::licensing::remove_timer(dep)?;
    if !keep_data {
        dep.remove_data_and_secrets()?;
    }
    let note = if keep_data {
        "uninstalled; data, its snapshots and the generated secrets kept"
    } else {
        "uninstalled; data, its snapshots and the generated secrets removed"
    };
    dep.set_status(current.number, Status::Uninstalled, Some(note.into()))?;
    crate::fault::point("uninstall-uninstalled");
    dep.clear_journal()
}
