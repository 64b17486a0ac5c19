//! Deployments on site: revisions, history, the journal, configuration and secrets.
//!
//! ```text
//! STATE/deploy/<app>/revisions/<N>/revision.json   what revision N is and its status
//! STATE/deploy/<app>/revisions/<N>/site-config.yaml the configuration it was made with
//! STATE/deploy/<app>/revisions/<N>/project/         the target's files (compose project …)
//! STATE/deploy/<app>/snapshots/<N>/                 revision N's data when it was left
//! STATE/deploy/<app>/secrets.json                   generated secrets, kept across upgrades
//! STATE/deploy/<app>/journal.json                   the step in progress, if any
//! ```
//!
//! History is append-only: every install, upgrade and rollback adds a revision; only a
//! revision's status changes afterwards (deployed -> superseded, rolled-back, failed,
//! uninstalled). Each step is journalled before it runs, so the next command can finish or
//! revert a step a crash interrupted.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use appmodel_model::bundle::Form;
use appmodel_model::config::{effective_values, needs_value};
use appmodel_model::types::{AppModel, ParamType, Scalar, DEFAULT_SECRET_LENGTH};
use appmodel_model::version::Version;
use appmodel_model::{parse_site_config, SiteConfig};
use serde::{Deserialize, Serialize};

use crate::records::{revision_key, FileRecords, Records, JOURNAL, SECRETS};
use crate::site::Site;
use crate::{io_err, ImportError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Being installed, upgraded to or rolled back to.
    Pending,
    /// Running now.
    Deployed,
    /// Replaced by a later upgrade.
    Superseded,
    /// Undone by a rollback.
    RolledBack,
    /// Did not become healthy (or was interrupted) and was reverted.
    Failed,
    /// Removed by `appmodel uninstall`.
    Uninstalled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Deployed => "deployed",
            Status::Superseded => "superseded",
            Status::RolledBack => "rolled-back",
            Status::Failed => "failed",
            Status::Uninstalled => "uninstalled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    Upgrade,
    Rollback,
    /// Only in the journal: a revision is never made by an uninstall.
    Uninstall,
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub number: u32,
    pub app: String,
    pub version: Version,
    pub form: Form,
    pub action: Action,
    /// The revision that was running before (upgrade, rollback), or rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u32>,
    pub status: Status,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Safety checks the operator waived for this revision, as they were said
    /// (`--allow-unsigned` at import, `--allow-downgrade`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<String>,
    /// Preflight warnings when it was made (a minimum met only at its `warn` level).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Revision {
    /// A new revision, pending until it is healthy.
    pub fn pending(
        number: u32,
        app: &str,
        version: Version,
        form: Form,
        action: Action,
        from: Option<u32>,
        rollback_to: Option<u32>,
    ) -> Revision {
        Revision {
            number,
            app: app.to_string(),
            version,
            form,
            action,
            from,
            rollback_to,
            status: Status::Pending,
            created_at: appmodel_model::record::now_rfc3339(),
            message: None,
            waivers: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The step in progress, written before the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub action: Action,
    /// The revision being brought up.
    pub revision: u32,
    /// The revision running before, to return to if this one does not complete.
    pub previous: Option<u32>,
    pub step: Step,
    /// An uninstall: whether the data stays (an interrupted one is finished as it was asked).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_data: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Nothing running has been touched yet (images may be loaded).
    Prepared,
    /// The previous revision is being stopped and its data snapshotted.
    Stopping,
    /// The previous revision's data is safe in its snapshot.
    Snapshotted,
    /// The new revision's data is being restored (rollback) and it is being started.
    Starting,
}

/// An app's deployment: its state directory, and its records (revisions, journal,
/// secrets) kept there ([`crate::records`]).
#[derive(Clone)]
pub struct Deployment {
    pub app: String,
    dir: PathBuf,
    records: Arc<dyn Records>,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("app", &self.app)
            .field("dir", &self.dir)
            .finish()
    }
}

#[cfg(test)]
thread_local! {
    /// Records this test thread's deployments keep in memory instead of in files.
    pub(crate) static TEST_RECORDS: std::cell::RefCell<Option<Arc<crate::records::MemoryRecords>>> =
        const { std::cell::RefCell::new(None) };
}

impl Deployment {
    pub fn new(site: &Site, app: &str) -> Deployment {
        let dir = site.root().join("deploy").join(app);
        let records: Arc<dyn Records> = Arc::new(FileRecords { dir: dir.clone() });
        #[cfg(test)]
        let records: Arc<dyn Records> = match TEST_RECORDS.with(|t| t.borrow().clone()) {
            Some(memory) => memory,
            None => records,
        };
        Deployment {
            app: app.to_string(),
            dir,
            records,
        }
    }

    fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ImportError> {
        match self.records.read(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(crate::damaged(&self.records.locate(key))),
            None => Ok(None),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn revision_dir(&self, n: u32) -> PathBuf {
        self.dir.join("revisions").join(n.to_string())
    }

    pub fn project_dir(&self, n: u32) -> PathBuf {
        self.revision_dir(n).join("project")
    }

    /// The licence gate's directory: the host's decision (`gate.json`), mounted read-only
    /// into the containers of a licensed compose app.
    pub fn gate_dir(&self) -> PathBuf {
        self.dir.join("gate")
    }

    pub fn snapshot_dir(&self, n: u32) -> PathBuf {
        self.dir.join("snapshots").join(n.to_string())
    }

    /// Every revision, oldest first.
    pub fn history(&self) -> Result<Vec<Revision>, ImportError> {
        let mut out = Vec::new();
        for n in self.records.revisions()? {
            let key = revision_key(n);
            if let Some(r) = self.read_record::<Revision>(&key)? {
                if r.number != n {
                    return Err(ImportError::DamagedState {
                        path: self.records.locate(&key),
                        reason: format!("it says it is revision {}", r.number),
                    });
                }
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.number);
        Ok(out)
    }

    pub fn current(&self) -> Result<Option<Revision>, ImportError> {
        Ok(self
            .history()?
            .into_iter()
            .rev()
            .find(|r| r.status == Status::Deployed))
    }

    pub fn revision(&self, n: u32) -> Result<Option<Revision>, ImportError> {
        Ok(self.history()?.into_iter().find(|r| r.number == n))
    }

    pub fn next_number(&self) -> Result<u32, ImportError> {
        Ok(self.history()?.last().map_or(1, |r| r.number + 1))
    }

    pub fn write_revision(&self, r: &Revision) -> Result<(), ImportError> {
        let bytes = crate::state_json(r)?;
        self.records.write(&revision_key(r.number), &bytes, false)
    }

    pub fn set_status(
        &self,
        n: u32,
        status: Status,
        message: Option<String>,
    ) -> Result<(), ImportError> {
        if let Some(mut r) = self.revision(n)? {
            r.status = status;
            if message.is_some() {
                r.message = message;
            }
            self.write_revision(&r)?;
        }
        Ok(())
    }

    pub fn journal(&self) -> Result<Option<Journal>, ImportError> {
        self.read_record(JOURNAL)
    }

    pub fn write_journal(&self, j: &Journal) -> Result<(), ImportError> {
        let bytes = crate::state_json(j)?;
        self.records.write(JOURNAL, &bytes, false)?;
        crate::fault::point(&format!("{:?}-{:?}", j.action, j.step));
        Ok(())
    }

    pub fn clear_journal(&self) -> Result<(), ImportError> {
        self.records.remove(JOURNAL)
    }

    /// Removes snapshots beyond the newest `keep`, never those of `protect`.
    pub fn prune_snapshots(&self, keep: usize, protect: &[u32]) -> Result<(), ImportError> {
        let dir = self.dir.join("snapshots");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut numbers: Vec<u32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        numbers.sort_unstable();
        let excess = numbers.len().saturating_sub(keep);
        for n in numbers.into_iter().take(excess) {
            if !protect.contains(&n) {
                let p = self.snapshot_dir(n);
                fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
            }
        }
        Ok(())
    }

    /// Generated secrets, by parameter name.
    pub fn secrets(&self) -> Result<BTreeMap<String, String>, ImportError> {
        Ok(self.read_record(SECRETS)?.unwrap_or_default())
    }

    pub fn write_secrets(&self, secrets: &BTreeMap<String, String>) -> Result<(), ImportError> {
        let bytes = crate::state_json(secrets)?;
        self.records.write(SECRETS, &bytes, true)
    }

    /// Removes what the site state keeps of the app's data and secrets: the data snapshots
    /// and the generated secrets (uninstall without `--keep-data`).
    pub fn remove_data_and_secrets(&self) -> Result<(), ImportError> {
        remove_if_present(&self.dir.join("snapshots"))?;
        self.records.remove(SECRETS)
    }
}

/// Removes a file or a directory tree; one that is not there is fine.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), ImportError> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Writes a file readable by its owner only (it holds secrets or the site's configuration),
/// born with that mode.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    appmodel_store::write_atomic_mode(path, bytes, 0o600)?;
    Ok(())
}

/// A random secret of `len` letters and digits (safe in env files and URLs).
pub fn generate_secret(len: usize) -> Result<String, ImportError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut f =
        fs::File::open("/dev/urandom").map_err(io_err("read", Path::new("/dev/urandom")))?;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf)
            .map_err(io_err("read", Path::new("/dev/urandom")))?;
        // 62 * 4 = 248: reject 248..=255 to keep the choice uniform.
        out.extend(
            buf.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b % 62) as usize] as char)
                .take(len - out.len()),
        );
    }
    Ok(out)
}

/// Parameter values by name, typed as the model declares them (and `licence.NAME` as the
/// plan does). They stay typed until a renderer writes them: an env file as text, Helm's
/// values as JSON numbers and booleans.
pub type Params = BTreeMap<String, Scalar>;

/// The parameter values for a revision: the site's configuration checked against the model,
/// defaults, and generated secrets (made once and kept).
pub struct Values {
    pub params: Params,
    /// The configuration file's text, kept with the revision.
    pub config_text: String,
}

/// `params` with each value of the type the model declares: appmodel releases before typed
/// parameters kept every value of a revision's `params.json` as text (`"100"`), which must
/// compare equal to the same value read from the site's file (`100`).
pub fn typed_as_declared(model: &AppModel, params: Params) -> Params {
    let declared = |name: &str| -> Option<Scalar> {
        match name.strip_prefix("licence.") {
            Some(e) => model
                .licence
                .as_ref()?
                .plans
                .values()
                .find_map(|plan| plan.get(e).cloned()),
            None => match model.parameter(name)?.kind {
                ParamType::Integer => Some(Scalar::Int(0)),
                ParamType::Boolean => Some(Scalar::Bool(false)),
                _ => None,
            },
        }
    };
    params
        .into_iter()
        .map(|(name, value)| {
            let value = match (&value, declared(&name)) {
                (Scalar::Str(s), Some(Scalar::Int(_))) => s.parse().map_or(value, Scalar::Int),
                (Scalar::Str(s), Some(Scalar::Bool(_))) => s.parse().map_or(value, Scalar::Bool),
                (Scalar::Str(s), Some(Scalar::Float(_))) => s.parse().map_or(value, Scalar::Float),
                _ => value,
            };
            (name, value)
        })
        .collect()
}

/// Reads and checks the configuration (all errors at once, with line numbers) and fills in
/// defaults and generated secrets. Nothing is written; `new_secrets` are returned to keep.
pub fn resolve_values(
    model: &AppModel,
    config_file: &Path,
    config_text: String,
    secrets: &BTreeMap<String, String>,
) -> Result<(Values, BTreeMap<String, String>), ImportError> {
    let config: SiteConfig =
        parse_site_config(config_file.to_path_buf(), config_text.clone(), model)
            .map_err(ImportError::Config)?;
    let mut params: Params = effective_values(model, &config);
    let mut new_secrets = BTreeMap::new();
    for p in &model.parameters {
        if params.contains_key(&p.name) {
            continue;
        }
        if p.kind == ParamType::Secret && p.generate {
            let value = match secrets.get(&p.name) {
                Some(v) => v.clone(),
                None => {
                    let v = generate_secret(p.length.unwrap_or(DEFAULT_SECRET_LENGTH) as usize)?;
                    new_secrets.insert(p.name.clone(), v.clone());
                    v
                }
            };
            params.insert(p.name.clone(), Scalar::Str(value));
        } else if needs_value(p) {
            // parse_site_config has already reported this; keep the invariant explicit.
            return Err(ImportError::Internal(format!(
                "parameter `{}` has no value",
                p.name
            )));
        }
    }
    Ok((
        Values {
            params,
            config_text,
        },
        new_secrets,
    ))
}

/// Copies a directory tree, keeping modes, owners and symlinks (for data snapshots).
/// The bytes of the regular files under `path` (links not followed); 0 if it is missing.
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

pub fn copy_tree(src: &Path, dst: &Path) -> Result<u64, ImportError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::symlink_metadata(src).map_err(io_err("read", src))?;
    let mut bytes = 0;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(io_err("read", src))?;
        std::os::unix::fs::symlink(&target, dst).map_err(io_err("create", dst))?;
    } else if meta.is_dir() {
        fs::create_dir_all(dst).map_err(io_err("create", dst))?;
        for entry in fs::read_dir(src).map_err(io_err("read", src))? {
            let entry = entry.map_err(io_err("read", src))?;
            bytes += copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else if meta.is_file() {
        bytes += fs::copy(src, dst).map_err(io_err("copy into", dst))?;
        if let Ok(f) = fs::File::open(dst) {
            let _ = f.sync_all();
        }
    } else {
        return Ok(0);
    }
    if !meta.file_type().is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode()))
            .map_err(io_err("set permissions of", dst))?;
    }
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_err("set the owner of", dst))?;
    Ok(bytes)
}

/// Replaces the content of `dir` with a copy of `snapshot` (the directory itself stays, so
/// its owner and mode are kept as the snapshot had them).
pub fn restore_tree(snapshot: &Path, dir: &Path) -> Result<(), ImportError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))?.flatten() {
        let p = entry.path();
        let r = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        r.map_err(io_err("remove", &p))?;
    }
    for entry in fs::read_dir(snapshot)
        .map_err(io_err("read", snapshot))?
        .flatten()
    {
        copy_tree(&entry.path(), &dir.join(entry.file_name()))?;
    }
    let meta = fs::metadata(snapshot).map_err(io_err("read", snapshot))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(meta.mode()))
        .map_err(io_err("set permissions of", dir))?;
    std::os::unix::fs::chown(dir, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_err("set the owner of", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file that does not parse is named, with what is wrong in it, as a problem of
    /// the site (exit 2), not of what the user typed.
    #[test]
    fn a_damaged_state_file_is_named_and_is_not_a_user_error() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::open(&dir.path().join("state")).unwrap();
        let dep = Deployment::new(&site, "im-stack");
        for (file, text) in [("journal.json", "{\"rev"), ("secrets.json", "[1]")] {
            fs::create_dir_all(dep.dir()).unwrap();
            let p = dep.dir().join(file);
            fs::write(&p, text).unwrap();
            let e = if file == "journal.json" {
                dep.journal().map(|_| ()).unwrap_err()
            } else {
                dep.secrets().map(|_| ()).unwrap_err()
            };
            assert!(
                matches!(&e, ImportError::DamagedState { path, .. } if path == &p),
                "{e:?}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("`{}` in the site state is damaged: ", p.display())),
                "{e}"
            );
            assert!(!e.is_user_error());
        }
        let r = dep.revision_dir(1);
        fs::create_dir_all(&r).unwrap();
        fs::write(r.join("revision.json"), "{}").unwrap();
        let e = dep.history().unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
    }

    #[test]
    fn values_kept_as_text_by_an_older_release_read_back_typed() {
        let model = appmodel_model::parse_model(
            "m.yaml".into(),
            "apiVersion: appmodel/v1\napp: {name: a, version: 1.0.0}\nparameters:\n  - {name: n, type: integer, default: 1}\n  - {name: b, type: boolean, default: true}\n  - {name: s, type: string, default: x}\ncomponents:\n  - {name: c, image: {registry: r.example/c:1}}\n".into(),
        )
        .unwrap()
        .model;
        let old: Params = serde_json::from_str(r#"{"n": "42", "b": "false", "s": "007"}"#).unwrap();
        let typed = typed_as_declared(&model, old);
        assert_eq!(typed["n"], Scalar::Int(42));
        assert_eq!(typed["b"], Scalar::Bool(false));
        assert_eq!(typed["s"], Scalar::Str("007".into()));
        // What this release writes reads back the same.
        let bytes = serde_json::to_vec(&typed).unwrap();
        let again: Params = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(typed_as_declared(&model, again), typed);
    }

    #[test]
    fn secrets_are_letters_and_digits_of_the_asked_length() {
        let a = generate_secret(32).unwrap();
        let b = generate_secret(32).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn copy_and_restore_keep_content_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(data.join("sub/f"), b"one").unwrap();
        fs::set_permissions(data.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", data.join("link")).unwrap();
        let snap = dir.path().join("snap");
        assert_eq!(copy_tree(&data, &snap).unwrap(), 3);
        fs::write(data.join("sub/f"), b"changed").unwrap();
        fs::write(data.join("new"), b"x").unwrap();
        restore_tree(&snap, &data).unwrap();
        assert_eq!(fs::read(data.join("sub/f")).unwrap(), b"one");
        assert!(!data.join("new").exists());
        assert_eq!(
            fs::read_link(data.join("link")).unwrap(),
            Path::new("sub/f")
        );
        assert_eq!(
            fs::metadata(data.join("sub/f"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o640
        );
    }
}
