//! The site's licence: its state under `deploy/<app>/licence/`, the check every change
//! plans with, activation, and the scheduled check that stops the app.
//!
//! ```text
//! deploy/<app>/licence/
//!   site.json      install id, clock key, first install time (mode 0600)
//!   licence.lic    the active licence, as the vendor issued it (mode 0600)
//!   clock.json     the clock record (the other copy is STATE/.licence-clock/<app>.json)
//!   stopped        present while the licence keeps the app stopped: the reason
//! ```
//! Decisions are `appmodel_licence::evaluate`'s; this module reads the state, acts, and
//! writes the clock record forward.

use std::fs;
use std::path::{Path, PathBuf};

use appmodel_licence::clock::{timesyncd_mark, TOLERANCE};
use appmodel_licence::host::{install_id_hex, new_install_id, parse_install_id, INSTALL_ID_LEN};
use appmodel_licence::{
    evaluate, Clock, ClockReading, HostIds, Inputs, Licence, SiteCode, Stage, Standing,
};
use appmodel_model::expr::licence_key;
use appmodel_model::input::{self, Links};
use appmodel_model::record::parse_rfc3339;
use appmodel_model::types::{LicencePolicy, Scalar};
use appmodel_model::VersionRecord;
use appmodel_signing::PublicKey;
use serde::{Deserialize, Serialize};

use crate::deploy::{Deployment, Params};
use crate::fault::{host_root, now};
use crate::{ImportError, Site};
use appmodel_licence::gate::{GateFile, GATE_FILE};

/// What this install keeps to be recognised.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    install_id: String,
    clock_key: String,
    installed_at: u64,
}

/// This install's identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub install_id: [u8; INSTALL_ID_LEN],
    clock_key: [u8; 32],
    pub installed_at: u64,
}

fn dir(dep: &Deployment) -> PathBuf {
    dep.dir().join("licence")
}

fn licence_path(dep: &Deployment) -> PathBuf {
    dir(dep).join("licence.lic")
}

fn stopped_path(dep: &Deployment) -> PathBuf {
    dir(dep).join("stopped")
}

/// Writes a file of the licence state whole, mode 0600, making its directory.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(crate::io_err("create", dir))?;
    }
    crate::deploy::write_private(path, bytes)
}

fn bad_state(path: &Path, what: &str) -> ImportError {
    ImportError::DamagedState {
        path: path.to_path_buf(),
        reason: what.to_string(),
    }
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    bytes?.try_into().ok()
}

/// Reads this install's identity; with `create`, makes it when there is none (and writes
/// the first clock record).
fn identity(site: &Site, dep: &Deployment, create: bool) -> Result<Option<Identity>, ImportError> {
    let path = dir(dep).join("site.json");
    match input::read_regular(&path, 4096, Links::Refuse) {
        Ok(bytes) => {
            let f: SiteFile = serde_json::from_slice(&bytes)
                .map_err(|e| bad_state(&path, &format!("is not a licence site file: {e}")))?;
            let install_id = parse_install_id(&f.install_id)
                .ok_or_else(|| bad_state(&path, "has a malformed install id"))?;
            let clock_key = unhex32(&f.clock_key)
                .ok_or_else(|| bad_state(&path, "has a malformed clock key"))?;
            Ok(Some(Identity {
                install_id,
                clock_key,
                installed_at: f.installed_at,
            }))
        }
        Err(input::InputError::NotFound) if create => {
            let install_id = new_install_id().map_err(licence_err)?;
            let mut clock_key = [0u8; 32];
            getrandom_fill(&mut clock_key)?;
            let id = Identity {
                install_id,
                clock_key,
                installed_at: now(),
            };
            let file = SiteFile {
                install_id: install_id_hex(&install_id),
                clock_key: clock_key.iter().map(|b| format!("{b:02x}")).collect(),
                installed_at: id.installed_at,
            };
            write_private(&path, &serde_json::to_vec_pretty(&file).unwrap_or_default())?;
            clock(site, dep, &id)
                .write(id.installed_at)
                .map_err(licence_err)?;
            Ok(Some(id))
        }
        Err(input::InputError::NotFound) => Ok(None),
        Err(source) => Err(ImportError::Input { path, source }),
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), ImportError> {
    getrandom::fill(buf).map_err(|e| {
        ImportError::Internal(format!("the operating system gave no random bytes: {e}"))
    })
}

fn licence_err(e: appmodel_licence::LicenceError) -> ImportError {
    ImportError::Licence(e.to_string())
}

fn clock(site: &Site, dep: &Deployment, id: &Identity) -> Clock {
    Clock::new(
        [
            dir(dep).join("clock.json"),
            site.root()
                .join(".licence-clock")
                .join(format!("{}.json", dep.app)),
        ],
        id.clock_key,
    )
}

fn vendor_key(policy: &LicencePolicy) -> Result<PublicKey, ImportError> {
    PublicKey::from_text(&policy.public_key)
        .map_err(|e| ImportError::Inconsistent(format!("the model's licence key: {e}")))
}

/// Everything a check found, for status and for acting on.
#[derive(Debug, Clone, Serialize)]
pub struct LicenceReport {
    pub app: String,
    #[serde(flatten)]
    pub standing: Standing,
    pub licence_id: Option<String>,
    pub sequence: Option<u64>,
    pub customer: Option<String>,
    pub expires: Option<u64>,
    /// The site code of this install (what `license request` prints).
    pub site_code: Option<String>,
    /// The identifiers bound and, of them, the ones that no longer match.
    pub bound: Vec<String>,
    pub changed: Vec<String>,
    /// Problems with the clock record (a copy missing or edited).
    pub clock_problems: Vec<String>,
    /// The licence keeps the app stopped now.
    pub stopped: bool,
}

/// Checks the licence of `record`'s model on this site; `None` when the model has none.
/// Reads only.
pub fn check(
    site: &Site,
    dep: &Deployment,
    record: &VersionRecord,
) -> Result<Option<(LicenceReport, Option<Identity>, ClockReading)>, ImportError> {
    check_with(site, dep, record, None)
}

/// [`check`], with `candidate` in place of the active licence (activation's look ahead).
fn check_with(
    site: &Site,
    dep: &Deployment,
    record: &VersionRecord,
    candidate: Option<Licence>,
) -> Result<Option<(LicenceReport, Option<Identity>, ClockReading)>, ImportError> {
    let Some(policy) = &record.model.licence else {
        return Ok(None);
    };
    let key = vendor_key(policy)?;
    let id = identity(site, dep, false)?;
    let now = now();
    let path = licence_path(dep);
    // Activating a licence writes a new clock record: a lost one does not count then.
    let activating = candidate.is_some();
    let (licence, licence_problem) = if let Some(c) = candidate {
        (Some(c), None)
    } else if path.exists() {
        match Licence::load(&path, &key, &dep.app) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let here = id
        .as_ref()
        .map(|id| HostIds::read(&host_root()).fingerprint(&id.install_id));
    let host = match (&licence, &here) {
        (Some(l), Some(h)) => l.host.fingerprint().map(|b| h.compare(&b)),
        _ => None,
    };
    let reading = id
        .as_ref()
        .map(|id| clock(site, dep, id).read())
        .unwrap_or_default();
    let trusted = [
        reading.mark,
        licence.as_ref().map_or(0, |l| l.issued_at),
        parse_rfc3339(&record.published_at).unwrap_or(0),
        timesyncd_mark(&host_root()).unwrap_or(0),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let mut standing = evaluate(&Inputs {
        policy,
        licence: licence.as_ref(),
        host: host.clone(),
        now,
        trusted,
        clock_lost: id.is_some() && reading.lost() && !activating,
        installed_at: id.as_ref().map_or(now, |i| i.installed_at),
    });
    if let Some(problem) = licence_problem {
        standing.stage = Stage::Stopped;
        standing.reason = format!("the active licence is not valid: {problem}");
    }
    let clock_problems = reading
        .missing
        .iter()
        .map(|p| format!("`{}` is missing", p.display()))
        .chain(
            reading
                .forged
                .iter()
                .map(|p| format!("`{}` was changed", p.display())),
        )
        .filter(|_| id.is_some())
        .collect();
    let report = LicenceReport {
        app: dep.app.clone(),
        licence_id: licence.as_ref().map(|l| l.id.clone()),
        sequence: licence.as_ref().map(|l| l.sequence),
        customer: licence.as_ref().map(|l| l.customer.clone()),
        expires: licence.as_ref().map(|l| l.expires),
        site_code: here.map(|fingerprint| {
            SiteCode {
                app: dep.app.clone(),
                fingerprint,
            }
            .to_text()
        }),
        bound: licence
            .as_ref()
            .map(|l| l.host.ids.clone())
            .unwrap_or_default(),
        changed: host
            .map(|m| m.changed.iter().map(|k| k.as_str().to_string()).collect())
            .unwrap_or_default(),
        clock_problems,
        stopped: stopped_path(dep).exists(),
        standing,
    };
    Ok(Some((report, id, reading)))
}

/// Moves the clock record forward to now (never back; not while the clock is behind it),
/// rewriting a missing or edited copy.
fn advance(
    site: &Site,
    dep: &Deployment,
    id: &Identity,
    reading: &ClockReading,
) -> Result<(), ImportError> {
    let now = now();
    if now + TOLERANCE < reading.mark {
        return Ok(());
    }
    let c = clock(site, dep, id);
    if now > reading.mark || !reading.missing.is_empty() || !reading.forged.is_empty() {
        c.write(now.max(reading.mark)).map_err(licence_err)?;
    }
    Ok(())
}

/// The values `${licence.NAME}` resolves to under a standing.
pub fn entitlement_params(standing: &Standing) -> Params {
    let mut out: Params = standing
        .entitlements
        .iter()
        .map(|(k, v)| (licence_key(k), v.clone()))
        .collect();
    if let Some(plan) = &standing.plan {
        out.insert(licence_key("plan"), Scalar::Str(plan.clone()));
    }
    out
}

/// Writes the host's decision for the licence gate in the containers
/// ([`appmodel_licence::gate`]): `gate.json`, readable by the containers' users (it holds no
/// secret), replaced whole so a gate never reads half of it.
pub fn write_gate(dep: &Deployment, standing: &Standing) -> Result<(), ImportError> {
    let dir = dep.gate_dir();
    fs::create_dir_all(&dir).map_err(crate::io_err("create", &dir))?;
    let mut gate = GateFile::of(&dep.app, standing, now());
    // The containers run on the real clock; a test's clock is translated to it.
    gate.checked_at = crate::fault::real_time(gate.checked_at);
    gate.stops_at = gate.stops_at.map(crate::fault::real_time);
    appmodel_store::write_atomic_mode(&dir.join(GATE_FILE), &gate.to_bytes(), 0o644)?;
    Ok(())
}

/// The licence part of a change's plan.
#[derive(Debug, Clone, Serialize)]
pub struct LicenceGate {
    pub stage: Stage,
    pub reason: String,
    pub days_left: Option<u64>,
    pub plan: Option<String>,
    /// Why the change is refused, if it is.
    pub refused: Option<String>,
}

/// The licence check of a change to `record`: sets `params`' `licence.*` values and says
/// whether the change may go ahead. `upgrade_to_new_version`: versions published after the
/// licence's expiry are not covered. A real change (not `dry_run`) makes the install's
/// identity if there is none and moves the clock record forward.
pub fn gate(
    site: &Site,
    dep: &Deployment,
    record: &VersionRecord,
    params: &mut Params,
    upgrade_to_new_version: bool,
    dry_run: bool,
) -> Result<Option<LicenceGate>, ImportError> {
    if record.model.licence.is_none() {
        return Ok(None);
    }
    if !dry_run {
        identity(site, dep, true)?;
    }
    let Some((report, id, reading)) = check(site, dep, record)? else {
        return Ok(None);
    };
    params.retain(|k, _| !k.starts_with("licence."));
    params.extend(entitlement_params(&report.standing));
    let s = &report.standing;
    let mut refused = (!s.stage.runs()).then(|| s.reason.clone());
    if let (None, true, Some(until)) = (&refused, upgrade_to_new_version, s.covers_until) {
        let published = parse_rfc3339(&record.published_at).unwrap_or(0);
        if published > until {
            refused = Some(format!(
                "{} {} was published on {}, after the licence ended (after {}): the licence does not cover it",
                record.app,
                record.version,
                &record.published_at[..10.min(record.published_at.len())],
                Licence::date(until.saturating_sub(1))
            ));
        }
    }
    if let (false, Some(id)) = (dry_run, &id) {
        advance(site, dep, id, &reading)?;
    }
    if !dry_run {
        write_gate(dep, s)?;
    }
    Ok(Some(LicenceGate {
        stage: s.stage,
        reason: s.reason.clone(),
        days_left: s.days_left,
        plan: s.plan.clone(),
        refused,
    }))
}

/// `appmodel license request`: this install's site code (making the identity if needed).
pub fn request(site: &Site, dep: &Deployment) -> Result<SiteCode, ImportError> {
    let id = identity(site, dep, true)?
        .ok_or_else(|| ImportError::Internal("no install id after making one".into()))?;
    Ok(SiteCode {
        app: dep.app.clone(),
        fingerprint: HostIds::read(&host_root()).fingerprint(&id.install_id),
    })
}

/// Verifies `text` as a licence for this install (vendor key, app, host, sequence) and makes
/// it the active one. Nothing is written when it is refused.
pub fn activate(
    site: &Site,
    dep: &Deployment,
    record: &VersionRecord,
    text: &str,
    origin: &str,
) -> Result<Licence, ImportError> {
    let policy = record.model.licence.as_ref().ok_or_else(|| {
        ImportError::Licence(format!(
            "{} {} takes no licence",
            record.app, record.version
        ))
    })?;
    let key = vendor_key(policy)?;
    let licence = Licence::verify(text, origin, &key, &dep.app).map_err(licence_err)?;
    let id = identity(site, dep, true)?
        .ok_or_else(|| ImportError::Internal("no install id after making one".into()))?;
    let here = HostIds::read(&host_root()).fingerprint(&id.install_id);
    let bound = licence
        .host
        .fingerprint()
        .ok_or_else(|| ImportError::Licence(format!("`{origin}` has a malformed host binding")))?;
    let m = here.compare(&bound);
    if !m.holds() {
        return Err(ImportError::Licence(format!(
            "`{origin}` is bound to another host (changed: {}); send the vendor this host's site code to move it: {}",
            m.describe(),
            SiteCode {
                app: dep.app.clone(),
                fingerprint: here
            }
            .to_text()
        )));
    }
    if let Ok(active) = Licence::load(&licence_path(dep), &key, &dep.app) {
        if active.id == licence.id && licence.sequence < active.sequence {
            return Err(ImportError::Licence(format!(
                "`{origin}` is sequence {} of licence {}, older than the active sequence {}",
                licence.sequence, licence.id, active.sequence
            )));
        }
    }
    // What the site would stand at with it: an ended licence, or a clock behind the
    // record, is refused before anything is written.
    let reading = clock(site, dep, &id).read();
    let (ahead, _, _) = check_with(site, dep, record, Some(licence.clone()))?
        .ok_or_else(|| ImportError::Internal("no licence policy".into()))?;
    let s = &ahead.standing;
    if !s.stage.runs() {
        return Err(ImportError::Licence(format!(
            "`{origin}` cannot be activated: {}",
            s.reason
        )));
    }
    let now = now();
    if now + TOLERANCE < licence.issued_at {
        return Err(ImportError::Licence(format!(
            "`{origin}` was issued at {}, and this host's clock says {}: set the clock first",
            appmodel_model::record::rfc3339(licence.issued_at),
            appmodel_model::record::rfc3339(now)
        )));
    }
    write_private(&licence_path(dep), text.as_bytes())?;
    // A new licence is a fresh start for the clock record too (it may have been lost).
    clock(site, dep, &id)
        .write(now.max(reading.mark))
        .map_err(licence_err)?;
    Ok(licence)
}

/// Records that the licence keeps the app stopped (or no longer does).
pub fn set_stopped(dep: &Deployment, reason: Option<&str>) -> Result<(), ImportError> {
    let path = stopped_path(dep);
    match reason {
        Some(r) => write_private(&path, r.as_bytes()),
        None => match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::io_err("remove", &path)(e)),
        },
    }
}

/// Whether the licence keeps the app stopped.
pub fn is_stopped(dep: &Deployment) -> bool {
    stopped_path(dep).exists()
}

/// Moves the clock record forward after a check (`license check`, `license status`).
pub fn touch_clock(
    site: &Site,
    dep: &Deployment,
    id: &Identity,
    reading: &ClockReading,
) -> Result<(), ImportError> {
    advance(site, dep, id, reading)
}

/// Where the scheduled check's units go; none on a host without systemd.
fn unit_dir() -> Option<PathBuf> {
    #[cfg(feature = "fault-injection")]
    if let Some(dir) = std::env::var_os("APPMODEL_LICENCE_UNIT_DIR") {
        return Some(dir.into());
    }
    Path::new("/run/systemd/system")
        .is_dir()
        .then(|| PathBuf::from("/etc/systemd/system"))
}

/// How often the scheduled check runs: the longest an expired licence lets the app run on.
pub const CHECK_EVERY_MINUTES: u32 = 10;

fn timer_name(app: &str) -> String {
    format!("appmodel-licence-{app}")
}

fn systemctl(args: &[&str]) -> Result<(), ImportError> {
    crate::host::run(
        std::process::Command::new("systemctl").args(args),
        &format!("systemctl {}", args.join(" ")),
    )
    .map(|_| ())
}

/// Installs the scheduled licence check: a systemd timer running `license check` with the
/// appmodel of the running version's bundle every [`CHECK_EVERY_MINUTES`] minutes and
/// two minutes after boot. Nothing on a host without systemd (docs/licence.md).
pub fn install_timer(
    site: &Site,
    dep: &Deployment,
    running: &crate::deploy::Revision,
) -> Result<(), ImportError> {
    let Some(units) = unit_dir() else {
        if running.form == appmodel_model::bundle::Form::Compose {
            tracing::warn!("no systemd on this host: the licence gate in each container stops the app when its licence ends; run `appmodel license check` from cron too, so that a copy of this install on another host is stopped");
        } else {
            tracing::warn!("no systemd on this host: run `appmodel license check` from cron to stop the app when its licence ends");
        }
        return Ok(());
    };
    let tool = appmodel_model::bundle::host_tool(&site.bundle_dir(
        &dep.app,
        &running.version,
        running.form,
    ));
    let name = timer_name(&dep.app);
    let service = format!(
        "[Unit]\nDescription=appmodel: licence check of {app}\n\n[Service]\nType=oneshot\nExecStart={tool} license check --app {app} --state-dir {state}\n",
        app = dep.app,
        tool = tool.display(),
        state = site.root().display(),
    );
    let timer = format!(
        "[Unit]\nDescription=appmodel: licence check of {app}, every {CHECK_EVERY_MINUTES} minutes\n\n[Timer]\nOnBootSec=2min\nOnUnitActiveSec={CHECK_EVERY_MINUTES}min\nAccuracySec=30s\n\n[Install]\nWantedBy=timers.target\n",
        app = dep.app,
    );
    fs::create_dir_all(&units).map_err(crate::io_err("create", &units))?;
    let mut changed = false;
    for (file, text) in [
        (format!("{name}.service"), service),
        (format!("{name}.timer"), timer),
    ] {
        let path = units.join(file);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            appmodel_store::write_atomic(&path, text.as_bytes())?;
            changed = true;
        }
    }
    if changed && unit_dir_is_live(&units) {
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", "--now", "--quiet", &format!("{name}.timer")])?;
    }
    Ok(())
}

/// Whether `units` is the directory systemd reads (not a test's directory).
fn unit_dir_is_live(units: &Path) -> bool {
    units == Path::new("/etc/systemd/system") && Path::new("/run/systemd/system").is_dir()
}

/// Removes the scheduled check (uninstall).
pub fn remove_timer(dep: &Deployment) -> Result<(), ImportError> {
    let Some(units) = unit_dir() else {
        return Ok(());
    };
    let name = timer_name(&dep.app);
    let timer = units.join(format!("{name}.timer"));
    if !timer.exists() {
        return Ok(());
    }
    if unit_dir_is_live(&units) {
        let _ = systemctl(&["disable", "--now", "--quiet", &format!("{name}.timer")]);
    }
    for p in [timer, units.join(format!("{name}.service"))] {
        let _ = fs::remove_file(&p);
    }
    if unit_dir_is_live(&units) {
        systemctl(&["daemon-reload"])?;
    }
    Ok(())
}

/// The version whose model decides: the running one, else the newest imported.
fn deciding(
    site: &Site,
    dep: &Deployment,
) -> Result<(Option<crate::lifecycle::Loaded>, VersionRecord), ImportError> {
    match dep.current()? {
        Some(current) => {
            let l = crate::lifecycle::load_revision(site, dep, &current)?;
            let record = l.record.clone();
            Ok((Some(l), record))
        }
        None => Ok((
            None,
            crate::lifecycle::pick_version(site, &dep.app, None, None)?,
        )),
    }
}

fn no_licence(record: &VersionRecord) -> ImportError {
    ImportError::Licence(format!(
        "{} {} takes no licence (its model has no `licence` section)",
        record.app, record.version
    ))
}

/// `appmodel license status`.
pub fn status(site: &Site, app: Option<&str>) -> Result<LicenceReport, ImportError> {
    let app = crate::lifecycle::resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    let (_, record) = deciding(site, &dep)?;
    check(site, &dep, &record)?
        .map(|c| c.0)
        .ok_or_else(|| no_licence(&record))
}

/// `appmodel license request`.
pub fn site_code(site: &Site, app: Option<&str>) -> Result<SiteCode, ImportError> {
    let _lock = site.lock()?;
    let app = crate::lifecycle::resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    let (_, record) = deciding(site, &dep)?;
    if record.model.licence.is_none() {
        return Err(no_licence(&record));
    }
    request(site, &dep)
}

/// What `license activate` and `license check` did.
#[derive(Debug, Clone, Serialize)]
pub struct LicenceAction {
    #[serde(flatten)]
    pub report: LicenceReport,
    /// `stopped`, `started`, `reconfigured` or none.
    pub acted: Option<String>,
    /// The revision a reconfiguration made.
    pub revision: Option<u32>,
}

/// `appmodel license activate FILE`: verifies and keeps the licence; when the app is
/// installed, renders it with the licence's entitlements (a new revision when they
/// changed) and starts it again if the licence had stopped it.
pub fn activate_file(
    site: &Site,
    app: Option<&str>,
    file: &Path,
) -> Result<LicenceAction, ImportError> {
    let text = input::read_text(file, appmodel_licence::file::MAX_FILE, Links::Follow).map_err(
        |source| ImportError::Input {
            path: file.to_path_buf(),
            source,
        },
    )?;
    activate_text(site, app, &text, &file.display().to_string())
}

/// [`activate_file`] of a licence's text (pasted into the console); `origin` names it in
/// errors.
pub fn activate_text(
    site: &Site,
    app: Option<&str>,
    text: &str,
    origin: &str,
) -> Result<LicenceAction, ImportError> {
    if text.len() as u64 > appmodel_licence::file::MAX_FILE {
        return Err(ImportError::Licence(format!(
            "{origin} is larger than a licence can be ({} bytes)",
            appmodel_licence::file::MAX_FILE
        )));
    }
    let _lock = site.lock()?;
    let app = crate::lifecycle::resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    crate::lifecycle::recover(site, &dep)?;
    let (current, record) = deciding(site, &dep)?;
    activate(site, &dep, &record, text, origin)?;
    let mut acted = None;
    let mut revision = None;
    if let Some(cur) = current {
        let mut params = cur.params.clone();
        let gate = gate(site, &dep, &record, &mut params, false, false)?;
        if let Some(refused) = gate.and_then(|g| g.refused) {
            return Err(ImportError::Licence(refused));
        }
        if params != cur.params || is_stopped(&dep) {
            let outcome = crate::lifecycle::upgrade_locked(
                site,
                &crate::lifecycle::ChangeOptions {
                    app: Some(&app),
                    version: Some(&cur.revision.version),
                    config: None,
                    keep: crate::lifecycle::DEFAULT_KEEP,
                    dry_run: false,
                    allow_downgrade: false,
                    ignore_checks: &[],
                    preflight_only: false,
                },
            )?;
            set_stopped(&dep, None)?;
            revision = Some(outcome.revision.number);
            acted = Some(
                if params != cur.params {
                    "reconfigured"
                } else {
                    "started"
                }
                .to_string(),
            );
        }
    }
    let report = check(site, &dep, &record)?
        .map(|c| c.0)
        .ok_or_else(|| no_licence(&record))?;
    write_gate(&dep, &report.standing)?;
    Ok(LicenceAction {
        report,
        acted,
        revision,
    })
}

/// `appmodel license check`: the scheduled check. Stops the app when its licence no
/// longer lets it run (data untouched) and starts it again when it does.
pub fn scheduled_check(site: &Site, app: Option<&str>) -> Result<LicenceAction, ImportError> {
    let _lock = site.lock()?;
    let app = crate::lifecycle::resolve_app(site, app)?;
    let dep = Deployment::new(site, &app);
    let (current, record) = deciding(site, &dep)?;
    let (report, id, reading) = check(site, &dep, &record)?.ok_or_else(|| no_licence(&record))?;
    if let Some(id) = &id {
        advance(site, &dep, id, &reading)?;
    }
    // Before anything starts: the containers' gates read it.
    write_gate(&dep, &report.standing)?;
    let mut acted = None;
    if let (Some(cur), None) = (&current, dep.journal()?) {
        let runs = report.standing.stage.runs();
        let stopped = is_stopped(&dep);
        if !runs && !stopped {
            match crate::engine::engine_for(
                site,
                cur.revision.form,
                crate::engine::Operation::Stop,
            )? {
                crate::engine::Engine::Host(target) => {
                    target.stop(&crate::lifecycle::ctx(site, &dep, cur))?;
                }
                crate::engine::Engine::Release(release) => {
                    let bundle = site.bundle_dir(&app, &cur.revision.version, cur.revision.form);
                    release.set_stopped(&dep, &cur.record, &bundle, true)?;
                }
            }
            set_stopped(&dep, Some(&report.standing.reason))?;
            crate::events::emit(crate::events::ChangeEvent::LicenceStopped {
                app: app.clone(),
                reason: report.standing.reason.clone(),
            });
            acted = Some("stopped".to_string());
        } else if runs && stopped {
            match crate::engine::engine_for(
                site,
                cur.revision.form,
                crate::engine::Operation::Start,
            )? {
                crate::engine::Engine::Host(target) => {
                    crate::lifecycle::start_in_order(
                        target.as_ref(),
                        &crate::lifecycle::ctx(site, &dep, cur),
                    )?;
                }
                crate::engine::Engine::Release(release) => {
                    let bundle = site.bundle_dir(&app, &cur.revision.version, cur.revision.form);
                    release.set_stopped(&dep, &cur.record, &bundle, false)?;
                }
            }
            set_stopped(&dep, None)?;
            crate::events::emit(crate::events::ChangeEvent::LicenceStarted { app: app.clone() });
            acted = Some("started".to_string());
        }
    }
    let report = check(site, &dep, &record)?
        .map(|c| c.0)
        .ok_or_else(|| no_licence(&record))?;
    Ok(LicenceAction {
        report,
        acted,
        revision: None,
    })
}
