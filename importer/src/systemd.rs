//! The systemd target: static binaries run as hardened services on a host without a
//! container runtime.
//!
//! ```text
//! /opt/appmodel/<app>/releases/<version>/bin/<c>/<file name>  the binary (0755), from the site store
//! /opt/appmodel/<app>/releases/<version>/env/<component>.env  rendered at install (0600)
//! /opt/appmodel/<app>/releases/<version>/config/<c>/<volume>  config files (0644), bound read-only;
//!                                      one holding a secret 0640 root:<group> (SupplementaryGroups=)
//! /etc/sysusers.d/appmodel-<app>.conf                         those groups, made by systemd-sysusers
//! /opt/appmodel/<app>/current -> releases/<version>           switched by renaming a new symlink
//! /etc/systemd/system/<app>-<component>.service, <app>.target the bundle's units, naming `current`
//! /var/lib/private/<app>/<component>-<volume>                 data (StateDirectory, dynamic user)
//! ```
//!
//! Every operation is idempotent, so the lifecycle's journal can repeat or undo any step after
//! a crash: [`Target::start`] (re)activates the revision it starts — release files, units,
//! `current` — before starting anything, and [`Target::stop`] stops the app's services and
//! removes its units. A release that was pruned is laid out again from the site store when a
//! rollback needs it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use appmodel_model::bundle::Form;
use appmodel_model::expr::render_for_target;
use appmodel_model::record::{BlobRef, VersionRecord};
use appmodel_model::types::{Component, HealthCheck, VolumeKind};

use crate::deploy::remove_if_present;
use crate::host::run;
use crate::lifecycle::DEFAULT_KEEP;
use crate::site::Site;
use crate::target::{ComponentStatus, DataDir, Health, RevisionCtx, Target};
use crate::{io_err, ImportError};

// The form's layout and names are the bundle contract, shared with the exporter.
use appmodel_model::layout::param_var;
use appmodel_model::layout::systemd::{
    binary_in_release, secret_group as systemd_secret_group, service_name, target_name, HOST,
    MARKER, OPT_ROOT, UNIT_DIR,
};

/// Where the target puts things on the host. Only tests change them.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Releases: `<opt>/<app>/releases/<version>`.
    pub opt: PathBuf,
    /// Unit files.
    pub units: PathBuf,
    /// systemd's `StateDirectory=` root.
    pub var_lib: PathBuf,
    /// systemd-sysusers drop-ins (the groups that read secret config files).
    pub sysusers: PathBuf,
    /// The group database systemd-sysusers writes.
    pub group_file: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            opt: PathBuf::from(OPT_ROOT),
            units: PathBuf::from("/etc/systemd/system"),
            var_lib: PathBuf::from("/var/lib"),
            sysusers: PathBuf::from("/etc/sysusers.d"),
            group_file: PathBuf::from("/etc/group"),
        }
    }
}

pub struct Systemd<'s> {
    site: &'s Site,
    paths: Paths,
}

fn systemctl() -> Command {
    Command::new("systemctl")
}

/// Writes `bytes` to `path` (temp file, fsync, rename) unless it holds them already, with
/// `mode` (and `group`, when given) from the file's first byte. Returns whether anything
/// changed.
fn write_if_changed(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    group: Option<u32>,
) -> Result<bool, ImportError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let same = fs::read(path).is_ok_and(|b| b == bytes)
        && fs::metadata(path).is_ok_and(|m| {
            m.permissions().mode() & 0o7777 == mode && group.is_none_or(|g| m.gid() == g)
        });
    if same {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    let tmp = temp_path(path);
    remove_if_present(&tmp)?;
    // Created with at most `mode` (the umask only narrows it), then set exactly, and
    // given its group, before a byte is written.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("write", &tmp))?;
    if let Some(gid) = group {
        std::os::unix::fs::fchown(&f, Some(0), Some(gid))
            .map_err(io_err("set the owner of", &tmp))?;
    }
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err("set permissions of", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename into", path))?;
    Ok(true)
}

/// `<path>.appmodel-tmp`: beside the file, one per file name (`a.conf` and `a.yaml` apart).
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".appmodel-tmp");
    path.with_file_name(name)
}

/// The systemd-sysusers drop-in that declares `groups` (system groups, ids picked by
/// sysusers).
fn sysusers_conf(app: &str, groups: &[String]) -> String {
    let mut out = format!(
        "# {app}: groups that may read config files holding a secret, written by appmodel.\n"
    );
    for g in groups {
        out.push_str(&format!("g {g} -\n"));
    }
    out
}

/// The id of group `name` in a group database's text.
fn group_id(group_file: &str, name: &str) -> Option<u32> {
    group_file.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.trim().parse().ok()
    })
}

/// A value for an `EnvironmentFile=`: double-quoted, with `\`, `"`, `$` and `` ` `` escaped.
fn env_value(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn render(
    rev: &RevisionCtx<'_>,
    c: &Component,
    what: &str,
    text: &str,
) -> Result<String, ImportError> {
    render_for_target(
        &rev.record.model,
        text,
        &|_: &Component| HOST.to_string(),
        &|p: &str| rev.params.get(p).map(|v| v.to_string()),
        &|s: &str| s.to_string(),
    )
    .map_err(|e| ImportError::Render {
        component: c.name.clone(),
        what: what.to_string(),
        reason: e.message,
    })
}

/// The environment file of a component: its env, rendered for this host and site, and the
/// parameters its arguments use.
pub fn env_file(rev: &RevisionCtx<'_>, c: &Component) -> Result<String, ImportError> {
    let mut out = format!(
        "# {} {} `{}`: rendered by appmodel at install from the site configuration.\n",
        rev.app, rev.record.version, c.name
    );
    for (k, v) in &c.env {
        let value = render(rev, c, &format!("env `{k}`"), &v.to_string())?;
        out.push_str(&format!("{k}={}\n", env_value(&value)));
    }
    for p in c.params_in_args() {
        let value =
            rev.params
                .get(&p)
                .map(|v| v.to_string())
                .ok_or_else(|| ImportError::Render {
                    component: c.name.clone(),
                    what: format!("the arguments' parameter `{p}`"),
                    reason: "it has no value".into(),
                })?;
        out.push_str(&format!("{}={}\n", param_var(&p), env_value(&value)));
    }
    Ok(out)
}

impl<'s> Systemd<'s> {
    pub fn new(site: &'s Site) -> Systemd<'s> {
        Systemd::with_paths(site, Paths::default())
    }

    pub fn with_paths(site: &'s Site, paths: Paths) -> Systemd<'s> {
        Systemd { site, paths }
    }

    fn app_dir(&self, app: &str) -> PathBuf {
        self.paths.opt.join(app)
    }

    pub fn release_dir(&self, app: &str, version: &str) -> PathBuf {
        self.app_dir(app).join("releases").join(version)
    }

    pub fn current_link(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("current")
    }

    /// Where a data volume's files are: with `DynamicUser=yes` systemd keeps
    /// `StateDirectory=<app>/<c>-<v>` under `/var/lib/private` (and links it from `/var/lib`).
    fn data_path(&self, app: &str, component: &str, volume: &str) -> PathBuf {
        self.paths
            .var_lib
            .join("private")
            .join(app)
            .join(format!("{component}-{volume}"))
    }

    fn binary<'r>(&self, rev: &'r RevisionCtx<'_>, c: &str) -> Result<&'r BlobRef, ImportError> {
        binary_for(rev.record, c, &appmodel_model::bundle::host_platform())
    }

    /// Copies the binaries from the site store into the release (idempotent).
    fn lay_out(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        use std::os::unix::fs::PermissionsExt;
        for c in &rev.record.model.components {
            let blob = self.binary(rev, &c.name)?;
            // The binary keeps its file name (bin/<component>/<name>), as in its image.
            let dst = self
                .release_dir(rev.app, &rev.record.version)
                .join(binary_in_release(c));
            if let Some(dir) = dst.parent() {
                fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            }
            if fs::metadata(&dst).is_ok_and(|m| m.len() == blob.size) {
                continue;
            }
            let src = self.site.store().blob_path(&blob.digest);
            let tmp = temp_path(&dst);
            fs::copy(&src, &tmp).map_err(io_err("copy", &src))?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
                .map_err(io_err("set permissions of", &tmp))?;
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err("write", &tmp))?;
            fs::rename(&tmp, &dst).map_err(io_err("rename into", &dst))?;
        }
        Ok(())
    }

    /// Renders the revision's environment and config files into its release.
    fn render_files(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let model = &rev.record.model;
        let release = self.release_dir(rev.app, &rev.record.version);
        let env_dir = release.join("env");
        fs::create_dir_all(&env_dir).map_err(io_err("create", &env_dir))?;
        restrict_dir(&env_dir)?;
        let groups = self.secret_groups(rev)?;
        for c in &model.components {
            write_if_changed(
                &env_dir.join(format!("{}.env", c.name)),
                env_file(rev, c)?.as_bytes(),
                0o600,
                None,
            )?;
            for v in c.volumes.iter().filter(|v| v.kind == VolumeKind::Config) {
                let content = v.content.as_deref().unwrap_or_default();
                let text = render(rev, c, &format!("config file `{}`", v.name), content)?;
                let p = release.join("config").join(&c.name).join(&v.name);
                match groups.get(c.name.as_str()) {
                    // Readable by root and the service's group only, from the first byte.
                    Some(&gid) if model.holds_secret(content) => {
                        write_if_changed(&p, text.as_bytes(), 0o640, Some(gid))?
                    }
                    _ => write_if_changed(&p, text.as_bytes(), 0o644, None)?,
                };
            }
        }
        Ok(())
    }

    fn sysusers_file(&self, app: &str) -> PathBuf {
        self.paths.sysusers.join(format!("appmodel-{app}.conf"))
    }

    /// Makes the groups of the components whose config files hold a secret (a
    /// systemd-sysusers drop-in, so they are declared like any package's) and returns
    /// their ids by component.
    fn secret_groups<'r>(
        &self,
        rev: &'r RevisionCtx<'_>,
    ) -> Result<BTreeMap<&'r str, u32>, ImportError> {
        let model = &rev.record.model;
        let wanted: Vec<(&str, String)> = model
            .components
            .iter()
            .filter(|c| model.config_holds_secret(c))
            .map(|c| (c.name.as_str(), systemd_secret_group(rev.app, &c.name)))
            .collect();
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let names: Vec<String> = wanted.iter().map(|(_, g)| g.clone()).collect();
        let conf = self.sysusers_file(rev.app);
        write_if_changed(
            &conf,
            sysusers_conf(rev.app, &names).as_bytes(),
            0o644,
            None,
        )?;
        run(
            Command::new("systemd-sysusers").arg(&conf),
            "systemd-sysusers",
        )?;
        let db = appmodel_model::input::read_text(
            &self.paths.group_file,
            16 << 20,
            appmodel_model::input::Links::Follow,
        )
        .map_err(|source| ImportError::Input {
            path: self.paths.group_file.clone(),
            source,
        })?;
        wanted
            .into_iter()
            .map(|(c, g)| match group_id(&db, &g) {
                Some(gid) => Ok((c, gid)),
                None => Err(ImportError::EngineOutput {
                    command: "systemd-sysusers".into(),
                    problem: format!(
                        "it did not create group `{g}` in {}",
                        self.paths.group_file.display()
                    ),
                }),
            })
            .collect()
    }

    /// The unit files appmodel wrote for `app`.
    fn installed_units(&self, app: &str) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.paths.units) else {
            return Vec::new();
        };
        let marker = format!("{MARKER} {app}\n");
        let mut out: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && fs::read_to_string(p).is_ok_and(|t| t.starts_with(&marker)))
            .collect();
        out.sort();
        out
    }

    /// Installs the revision's units (and only those). Returns whether anything changed.
    fn install_units(&self, rev: &RevisionCtx<'_>) -> Result<bool, ImportError> {
        let src_dir = rev.bundle_dir.join(UNIT_DIR);
        let mut wanted = BTreeMap::new();
        for entry in fs::read_dir(&src_dir)
            .map_err(io_err("read", &src_dir))?
            .flatten()
        {
            let p = entry.path();
            let bytes = fs::read(&p).map_err(io_err("read", &p))?;
            wanted.insert(entry.file_name(), bytes);
        }
        let mut changed = false;
        for old in self.installed_units(rev.app) {
            if old.file_name().is_some_and(|n| !wanted.contains_key(n)) {
                fs::remove_file(&old).map_err(io_err("remove", &old))?;
                changed = true;
            }
        }
        let project = rev.project_dir.join(UNIT_DIR);
        for (name, bytes) in &wanted {
            changed |= write_if_changed(&self.paths.units.join(name), bytes, 0o644, None)?;
            write_if_changed(&project.join(name), bytes, 0o644, None)?;
        }
        Ok(changed)
    }

    /// Points `current` at the revision's release: a new symlink renamed over the old one.
    fn switch_current(&self, rev: &RevisionCtx<'_>) -> Result<bool, ImportError> {
        let link = self.current_link(rev.app);
        let target = Path::new("releases").join(rev.record.version.as_str());
        if fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(false);
        }
        let tmp = self.app_dir(rev.app).join("current.new");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(io_err("create", &tmp))?;
        fs::rename(&tmp, &link).map_err(io_err("rename into", &link))?;
        if let Ok(dir) = fs::File::open(self.app_dir(rev.app)) {
            let _ = dir.sync_all();
        }
        // The newest used releases are kept when old ones are pruned.
        let release = self.release_dir(rev.app, &rev.record.version);
        if let Ok(dir) = fs::File::open(&release) {
            let _ = dir.set_modified(SystemTime::now());
        }
        Ok(true)
    }

    /// Makes the revision the one the units run: release files, units, `current`.
    fn activate(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        self.lay_out(rev)?;
        self.render_files(rev)?;
        let units = self.install_units(rev)?;
        let switched = self.switch_current(rev)?;
        if units || switched {
            run(systemctl().arg("daemon-reload"), "systemctl daemon-reload")?;
        }
        self.prune_releases(rev)
    }

    /// Removes releases beyond the newest [`DEFAULT_KEEP`], never the current one.
    fn prune_releases(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let dir = self.app_dir(rev.app).join("releases");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut releases: Vec<(SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_name() != rev.record.version.as_str())
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        releases.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (_, p) in releases.into_iter().skip(DEFAULT_KEEP.saturating_sub(1)) {
            fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
        }
        Ok(())
    }

    /// The state of a unit: `LoadState ActiveState`.
    fn unit_state(&self, unit: &str) -> Result<(String, String), ImportError> {
        let out = run(
            systemctl().args(["show", "--property=LoadState,ActiveState", unit]),
            "systemctl show",
        )?;
        let mut load = String::new();
        let mut active = String::new();
        for line in out.lines() {
            if let Some(v) = line.strip_prefix("LoadState=") {
                load = v.to_string();
            } else if let Some(v) = line.strip_prefix("ActiveState=") {
                active = v.to_string();
            }
        }
        Ok((load, active))
    }
}

fn restrict_dir(dir: &Path) -> Result<(), ImportError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err("protect", dir))
}

/// Runs the model's health check from the host once.
fn check(c: &Component, h: &HealthCheck) -> bool {
    let timeout = h.durations().timeout;
    let port = |name: &str| c.port(name).map(|p| p.port).unwrap_or_default();
    if let Some(http) = &h.http {
        crate::probe::probe(
            &format!("http://{HOST}:{}{}", port(&http.port), http.path),
            timeout,
        )
        .is_ok()
    } else if let Some(tcp) = &h.tcp {
        crate::probe::probe(&format!("tcp://{HOST}:{}", port(&tcp.port)), timeout).is_ok()
    } else if let Some(exec) = &h.exec {
        exec_ok(&exec.command, timeout)
    } else {
        true
    }
}

/// Runs an exec check on the host; healthy on exit status 0 within `timeout`.
fn exec_ok(command: &[String], timeout: Duration) -> bool {
    let Some((program, args)) = command.split_first() else {
        return false;
    };
    let Ok(mut child) = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

impl Target for Systemd<'_> {
    fn form(&self) -> Form {
        Form::Systemd
    }

    fn preflight(
        &self,
        new: &RevisionCtx<'_>,
        current: Option<&RevisionCtx<'_>>,
    ) -> Result<Vec<String>, ImportError> {
        let mut problems = Vec::new();
        if !Path::new("/run/systemd/system").is_dir() {
            problems.push("systemd is not running on this host (no /run/systemd/system)".into());
        } else if let Err(e) = run(systemctl().arg("--version"), "systemctl") {
            problems.push(e.to_string());
        }
        // Every port binds on the host; those the running revision holds are not busy.
        problems.extend(crate::host::busy_ports(new, current, |p| Some(p.port)));
        let mut need: u64 = 16 << 20;
        for c in &new.record.model.components {
            match self.binary(new, &c.name) {
                Ok(blob) => {
                    if !self.site.store().blob_path(&blob.digest).is_file() {
                        problems.push(format!(
                            "the binary of `{}` (`{}`) is not in the site store; import the bundle again",
                            c.name, blob.digest
                        ));
                    }
                    need += blob.size;
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        problems.extend(crate::host::space_problem(
            &self.paths.opt,
            need,
            "the binaries",
        ));
        Ok(problems)
    }

    fn prepare(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        self.lay_out(rev)
    }

    fn write_project(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        self.activate(rev)
    }

    fn start(&self, rev: &RevisionCtx<'_>, components: &[&str]) -> Result<(), ImportError> {
        // A revert or a recovery starts a revision whose units may not be the installed ones.
        self.activate(rev)?;
        let units: Vec<String> = components
            .iter()
            .map(|c| service_name(rev.app, c))
            .collect();
        // A unit that failed before (or hit its start limit) starts afresh.
        let _ = systemctl().arg("reset-failed").args(&units).output();
        run(
            systemctl().arg("start").args(&units),
            &format!("starting {}", components.join(", ")),
        )?;
        run(
            systemctl().args(["enable", "--quiet", &target_name(rev.app)]),
            "systemctl enable",
        )
        .map(|_| ())
    }

    fn health(&self, rev: &RevisionCtx<'_>, component: &str) -> Result<Health, ImportError> {
        let (load, active) = self.unit_state(&service_name(rev.app, component))?;
        if load != "loaded" {
            return Ok(Health::Missing);
        }
        Ok(match active.as_str() {
            "active" => match rev
                .record
                .model
                .component(component)
                .and_then(|c| Some((c, c.health.as_ref()?)))
            {
                None => Health::Running,
                Some((c, h)) if check(c, h) => Health::Healthy,
                Some(_) => Health::Starting,
            },
            "activating" | "reloading" => Health::Starting,
            "failed" => Health::Unhealthy,
            _ => Health::Stopped,
        })
    }

    fn stop(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let installed = self.installed_units(rev.app);
        let mut units: Vec<String> = installed
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
            .collect();
        for c in &rev.record.model.components {
            let name = service_name(rev.app, &c.name);
            if !units.contains(&name) && self.unit_state(&name)?.1 != "inactive" {
                units.push(name);
            }
        }
        if !units.is_empty() {
            // One transaction: systemd stops dependents before what they depend on.
            run(systemctl().arg("stop").args(&units), "stopping the app")?;
            let _ = systemctl().arg("reset-failed").args(&units).output();
        }
        let target = target_name(rev.app);
        if self.paths.units.join(&target).is_file() {
            run(
                systemctl().args(["disable", "--quiet", &target]),
                "systemctl disable",
            )?;
        }
        for p in &installed {
            fs::remove_file(p).map_err(io_err("remove", p))?;
        }
        if !installed.is_empty() {
            run(systemctl().arg("daemon-reload"), "systemctl daemon-reload")?;
        }
        Ok(())
    }

    fn data_dirs(&self, rev: &RevisionCtx<'_>, create: bool) -> Result<Vec<DataDir>, ImportError> {
        let mut out = Vec::new();
        for c in &rev.record.model.components {
            for v in c.volumes.iter().filter(|v| v.kind == VolumeKind::Data) {
                let path = self.data_path(rev.app, &c.name, &v.name);
                if !path.is_dir() {
                    if !create {
                        continue;
                    }
                    let private = self.paths.var_lib.join("private");
                    if !private.is_dir() {
                        fs::create_dir_all(&private).map_err(io_err("create", &private))?;
                        restrict_dir(&private)?;
                    }
                    fs::create_dir_all(&path).map_err(io_err("create", &path))?;
                    restrict_dir(&path)?;
                }
                out.push(DataDir {
                    name: format!("{}-{}", c.name, v.name),
                    path,
                });
            }
        }
        Ok(out)
    }

    fn remove_data(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        for dir in [
            self.paths.var_lib.join("private").join(rev.app),
            self.paths.var_lib.join(rev.app),
        ] {
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &dir)(e)),
            }
        }
        Ok(())
    }

    /// The releases (binaries, rendered environment files, config files) and the
    /// `current` link under /opt/appmodel/<app>; data lives elsewhere.
    /// The sysusers drop-in goes too; the groups themselves stay, as systemd-sysusers
    /// never removes one (so an id is not reused for files that still carry it).
    fn remove_files(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        remove_if_present(&self.sysusers_file(rev.app))?;
        remove_if_present(&self.app_dir(rev.app))
    }

    /// `systemctl --version`: `systemd 252 (252.22-1~deb12u1)`.
    fn versions(&self) -> crate::target::EngineVersions {
        let version = run(systemctl().arg("--version"), "systemctl")
            .ok()
            .and_then(|t| t.split_whitespace().nth(1).map(str::to_string));
        crate::target::EngineVersions {
            engine: version.map(|v| ("systemd".to_string(), v)),
            compose: None,
        }
    }

    /// Data lives in each unit's StateDirectory under /var/lib.
    fn data_root(&self, _rev: &RevisionCtx<'_>) -> Option<PathBuf> {
        Some(self.paths.var_lib.clone())
    }

    fn status(&self, rev: &RevisionCtx<'_>) -> Result<Vec<ComponentStatus>, ImportError> {
        let mut out = Vec::new();
        for c in &rev.record.model.components {
            out.push(ComponentStatus::new(
                &c.name,
                self.health(rev, &c.name)?,
                self.binary(rev, &c.name).ok().map(|b| b.digest.to_string()),
            ));
        }
        Ok(out)
    }
}

/// Component `c`'s binary for `platform` in `record`: a unit runs the host's.
fn binary_for<'r>(
    record: &'r VersionRecord,
    c: &str,
    platform: &str,
) -> Result<&'r BlobRef, ImportError> {
    record
        .components
        .get(c)
        .and_then(|a| a.binaries.get(platform))
        .ok_or_else(|| {
            ImportError::Inconsistent(format!(
                "{} {} has no {platform} binary for `{c}`",
                record.app, record.version
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use appmodel_model::record::VersionRecord;
    use appmodel_model::types::Scalar;

    fn record(version: &str) -> VersionRecord {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = root.join(format!("samples/im-stack/versions/{version}/appmodel.yaml"));
        let text = fs::read_to_string(&file).unwrap();
        let model = appmodel_model::parse_model(file, text.clone())
            .unwrap()
            .model;
        VersionRecord {
            format: 1,
            app: "im-stack".into(),
            version: appmodel_model::version::Version::parse(version).unwrap(),
            published_by: "test".into(),
            published_at: "2026-01-01T00:00:00Z".into(),
            model_file: "appmodel.yaml".into(),
            model_text: text,
            model,
            components: BTreeMap::new(),
        }
    }

    #[test]
    fn a_unit_runs_the_binary_of_the_host_platform() {
        let mut rec = record("1.1.0");
        let blob = |n: u8| BlobRef {
            digest: appmodel_model::Digest::from_sha256(&[n; 32]),
            size: 1,
            media_type: "application/octet-stream".into(),
        };
        let mut art = appmodel_model::record::ComponentArtifacts::default();
        art.binaries.insert("linux/amd64".into(), blob(1));
        art.binaries.insert("linux/arm64".into(), blob(2));
        rec.components.insert("im-store".into(), art);
        let pick = |p: &str| binary_for(&rec, "im-store", p).map(|b| b.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), blob(1).digest);
        assert_eq!(pick("linux/arm64").unwrap(), blob(2).digest);
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            e.contains("has no linux/s390x binary for `im-store`"),
            "{e}"
        );
    }

    struct Fixture {
        dir: tempfile::TempDir,
        site: Site,
        params: crate::deploy::Params,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let site = Site::open(&dir.path().join("state")).unwrap();
            let params = [
                ("domain", Scalar::Str("chat.example".into())),
                ("max_users", Scalar::Int(100)),
                ("admin_secret", Scalar::Str("s3cr\"t$x".into())),
                ("read_receipts", Scalar::Bool(true)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            Fixture { dir, site, params }
        }

        fn target(&self) -> Systemd<'_> {
            let root = self.dir.path();
            Systemd::with_paths(
                &self.site,
                Paths {
                    opt: root.join("opt"),
                    units: root.join("units"),
                    var_lib: root.join("var-lib"),
                    sysusers: root.join("sysusers.d"),
                    group_file: root.join("group"),
                },
            )
        }

        fn ctx<'a>(&'a self, record: &'a VersionRecord, units: &[(&str, &str)]) -> RevisionCtx<'a> {
            let bundle = self.dir.path().join(format!("bundle-{}", record.version));
            for (name, text) in units {
                let p = bundle.join(UNIT_DIR).join(name);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, text).unwrap();
            }
            RevisionCtx {
                app: "im-stack",
                number: 1,
                record,
                bundle_dir: bundle,
                project_dir: self.dir.path().join(format!("project-{}", record.version)),
                gate_dir: self.dir.path().join("gate"),
                params: &self.params,
            }
        }
    }

    #[test]
    fn the_environment_file_resolves_parameters_and_components_on_loopback() {
        let f = Fixture::new();
        let r = record("1.1.0");
        let ctx = f.ctx(&r, &[]);
        let c = r.model.component("im-server").unwrap();
        assert_eq!(
            env_file(&ctx, c).unwrap(),
            "# im-stack 1.1.0 `im-server`: rendered by appmodel at install from the site configuration.\n\
             IM_ADMIN_SECRET=\"s3cr\\\"t\\$x\"\n\
             IM_DOMAIN=\"chat.example\"\n\
             IM_LISTEN=\"0.0.0.0:8080\"\n\
             IM_MAX_USERS=\"100\"\n\
             IM_PUSH_URL=\"http://127.0.0.1:7080\"\n\
             IM_READ_RECEIPTS=\"true\"\n\
             IM_STORE_URL=\"http://127.0.0.1:7070\"\n"
        );
    }

    #[test]
    fn units_current_and_files_are_switched_idempotently() {
        use std::os::unix::fs::PermissionsExt;
        let f = Fixture::new();
        let t = f.target();
        let old = format!("{MARKER} im-stack\n[Unit]\n");
        let r1 = record("1.0.0");
        let c1 = f.ctx(
            &r1,
            &[("im-stack.target", &old), ("im-stack-gone.service", &old)],
        );
        t.render_files(&c1).unwrap();
        assert!(t.install_units(&c1).unwrap());
        assert!(t.switch_current(&c1).unwrap());
        assert!(
            !t.install_units(&c1).unwrap(),
            "nothing changes the second time"
        );
        assert!(!t.switch_current(&c1).unwrap());
        // Someone else's unit is never touched.
        fs::write(f.dir.path().join("units/other.service"), "[Unit]\n").unwrap();

        let new = format!("{MARKER} im-stack\n[Unit]\nDescription=new\n");
        let r2 = record("1.1.0");
        let c2 = f.ctx(&r2, &[("im-stack.target", &new)]);
        t.render_files(&c2).unwrap();
        assert!(t.install_units(&c2).unwrap());
        assert!(t.switch_current(&c2).unwrap());
        let units = f.dir.path().join("units");
        assert_eq!(
            fs::read_to_string(units.join("im-stack.target")).unwrap(),
            new
        );
        assert!(!units.join("im-stack-gone.service").exists());
        assert!(units.join("other.service").exists());
        assert_eq!(
            fs::read_link(t.current_link("im-stack")).unwrap(),
            Path::new("releases/1.1.0")
        );
        let env = t.release_dir("im-stack", "1.1.0").join("env/im-server.env");
        assert_eq!(
            fs::metadata(&env).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            t.installed_units("im-stack"),
            [units.join("im-stack.target")]
        );
    }

    #[test]
    fn secret_groups_are_declared_for_sysusers_and_looked_up_exactly() {
        assert_eq!(
            sysusers_conf("im-stack", &["appmodel-im-stack-im-server".into()]),
            "# im-stack: groups that may read config files holding a secret, written by appmodel.\n\
             g appmodel-im-stack-im-server -\n"
        );
        let db =
            "root:x:0:\nappmodel-im-stack-im:x:998:\nappmodel-im-stack-im-server:x:997:\nbad:x:\n";
        assert_eq!(group_id(db, "appmodel-im-stack-im-server"), Some(997));
        assert_eq!(group_id(db, "appmodel-im-stack"), None);
        assert_eq!(group_id(db, "bad"), None);
    }

    #[test]
    fn files_have_their_mode_from_the_first_byte_and_a_mode_change_is_a_change() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/conf");
        // A stale temporary file from a crash is replaced, not written through.
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(temp_path(&p), "stale").unwrap();
        let gid = fs::metadata(dir.path()).unwrap().gid();
        assert!(write_if_changed(&p, b"x", 0o640, Some(gid)).unwrap());
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o640);
        assert_eq!(m.gid(), gid);
        assert!(!write_if_changed(&p, b"x", 0o640, Some(gid)).unwrap());
        assert!(write_if_changed(&p, b"x", 0o644, None).unwrap());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        assert!(!temp_path(&p).exists());
    }

    #[test]
    fn old_releases_are_pruned_but_never_the_current_one() {
        let f = Fixture::new();
        let t = f.target();
        let releases = f.dir.path().join("opt/im-stack/releases");
        for (i, v) in ["1.0.0", "0.2.0", "0.3.0", "0.4.0"].iter().enumerate() {
            let d = releases.join(v);
            fs::create_dir_all(&d).unwrap();
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 * (i as u64 + 1));
            fs::File::open(&d).unwrap().set_modified(when).unwrap();
        }
        // The oldest one is current: it stays.
        let r = record("1.0.0");
        let ctx = f.ctx(&r, &[]);
        t.prune_releases(&ctx).unwrap();
        let mut left: Vec<String> = fs::read_dir(&releases)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["0.3.0", "0.4.0", "1.0.0"]);
    }

    #[test]
    fn data_lives_in_the_dynamic_users_private_state_directory() {
        let f = Fixture::new();
        let t = f.target();
        let r = record("1.1.0");
        let ctx = f.ctx(&r, &[]);
        assert!(t.data_dirs(&ctx, false).unwrap().is_empty());
        let dirs = t.data_dirs(&ctx, true).unwrap();
        let names: Vec<(&str, PathBuf)> = dirs
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.path.strip_prefix(f.dir.path()).unwrap().to_path_buf(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (
                    "im-store-data",
                    PathBuf::from("var-lib/private/im-stack/im-store-data")
                ),
                (
                    "push-service-queue",
                    PathBuf::from("var-lib/private/im-stack/push-service-queue")
                ),
            ]
        );
        t.remove_data(&ctx).unwrap();
        assert!(!f.dir.path().join("var-lib/private/im-stack").exists());
    }
}
