//! The Helm form on site: install, upgrade, roll back and read status through the site's
//! `helm` program (found on PATH; its own `HELM_NAMESPACE`, `KUBECONFIG` and
//! `HELM_KUBECONTEXT` choose the cluster and namespace).
//!
//! Helm keeps its own revisions, waits for readiness itself and rolls a failed upgrade back
//! itself (`--atomic`, `--rollback-on-failure` in Helm 4), and the data lives in the
//! cluster's volumes, so the generic level-by-level [`crate::target::Target`] path does not
//! apply (see docs/decisions/0003-helm-form.md). Each of our revisions records the Helm
//! revision it became (`revisions/N/helm.json`); `appmodel rollback` maps to
//! `helm rollback RELEASE HELM_REVISION`.
//!
//! The images must be in the site registry first (`appmodel push-images`), which records
//! the registry and the versions pushed in `deploy/APP/helm-registry.json`; the values file
//! passed to helm sets `global.imageRegistry` to it.

use std::path::{Path, PathBuf};
use std::process::Command;

use appmodel_model::types::{AppModel, Scalar};
use appmodel_model::VersionRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::deploy::{Deployment, Params};
use crate::engine::{ReleaseChange, ReleaseEngine};
use crate::target::{ComponentStatus, Health};
use crate::{io_err, ImportError};

/// How long helm may wait for the release to become ready.
pub const TIMEOUT: &str = "600s";

/// Runs `helm ARGS` and returns its standard output (a fake records calls in unit tests).
pub trait Runner {
    fn run(&self, args: &[String]) -> Result<String, ImportError>;
}

/// The site's `helm`, from PATH.
pub struct HelmProgram;

impl Runner for HelmProgram {
    fn run(&self, args: &[String]) -> Result<String, ImportError> {
        let command = format!(
            "helm {}",
            args.first().map(String::as_str).unwrap_or_default()
        );
        let out = Command::new("helm")
            .args(args)
            .output()
            .map_err(|e| crate::host::unavailable(&command, &e))?;
        if !out.status.success() {
            return Err(crate::host::failed(&command, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Helm, with the major version found at preflight.
pub struct Helm<R: Runner> {
    runner: R,
    pub major: u32,
    /// `helm version --short`, as it answered (`v3.14.2+gc309b6f`).
    pub version: String,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `v3.14.2+g1234` or `v4.0.1` -> 3 or 4.
pub fn major_version(short: &str) -> Option<u32> {
    short
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

impl<R: Runner> Helm<R> {
    /// Checks that helm runs and is Helm 3 or newer.
    pub fn detect(runner: R) -> Result<Helm<R>, ImportError> {
        let out = runner.run(&args(&["version", "--short"]))?;
        match major_version(&out) {
            Some(major) if major >= 3 => Ok(Helm {
                runner,
                major,
                version: out.trim().trim_start_matches('v').to_string(),
            }),
            _ => Err(ImportError::Preflight(vec![format!(
                "`helm version` says `{}`; Helm 3 or newer is needed",
                out.trim()
            )])),
        }
    }

    /// Problems that stop a change before anything happens: the cluster must answer.
    pub fn preflight(&self, release: &str) -> Vec<String> {
        match self.runner.run(&args(&[
            "list",
            "--all",
            "--filter",
            &format!("^{release}$"),
            "--output",
            "json",
        ])) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("the cluster does not answer helm: {e}")],
        }
    }

    /// `helm upgrade --install` with waiting and automatic rollback on failure.
    pub fn upgrade_install_args(&self, release: &str, chart: &Path, values: &Path) -> Vec<String> {
        let mut a = args(&["upgrade", "--install", release]);
        a.push(chart.display().to_string());
        a.extend(args(&["--values"]));
        a.push(values.display().to_string());
        a.extend(args(&["--wait", "--timeout", TIMEOUT]));
        // Helm 4 renamed --atomic.
        a.push(if self.major >= 4 {
            "--rollback-on-failure".to_string()
        } else {
            "--atomic".to_string()
        });
        a
    }

    pub fn upgrade_install(
        &self,
        release: &str,
        chart: &Path,
        values: &Path,
    ) -> Result<(), ImportError> {
        self.runner
            .run(&self.upgrade_install_args(release, chart, values))
            .map(|_| ())
    }

    pub fn rollback_args(&self, release: &str, helm_revision: u32) -> Vec<String> {
        let mut a = args(&["rollback", release]);
        a.push(helm_revision.to_string());
        a.extend(args(&["--wait", "--timeout", TIMEOUT]));
        a
    }

    pub fn rollback(&self, release: &str, helm_revision: u32) -> Result<(), ImportError> {
        self.runner
            .run(&self.rollback_args(release, helm_revision))
            .map(|_| ())
    }

    /// The release's newest Helm revision as `helm history` shows it (revision, status,
    /// app_version, description).
    pub fn newest(&self, release: &str) -> Result<Value, ImportError> {
        let out = self.runner.run(&args(&[
            "history", release, "--max", "1", "--output", "json",
        ]))?;
        let list: Vec<Value> =
            serde_json::from_str(&out).map_err(|e| ImportError::EngineOutput {
                command: "helm history".into(),
                problem: format!("cannot read its answer: {e}"),
            })?;
        list.into_iter()
            .max_by_key(|r| r.get("revision").and_then(Value::as_u64))
            .ok_or_else(|| no_history(release))
    }

    /// The release's newest Helm revision number (after an upgrade or rollback).
    pub fn last_revision(&self, release: &str) -> Result<u32, ImportError> {
        self.newest(release)?
            .get("revision")
            .and_then(Value::as_u64)
            .map(|n| n as u32)
            .ok_or_else(|| no_history(release))
    }

    /// `helm status`: the release's state (`deployed`, `failed`, `pending-upgrade` …).
    pub fn status(&self, release: &str) -> Result<String, ImportError> {
        let out = self
            .runner
            .run(&args(&["status", release, "--output", "json"]))?;
        let v: Value = serde_json::from_str(&out).map_err(|e| ImportError::EngineOutput {
            command: "helm status".into(),
            problem: format!("cannot read its answer: {e}"),
        })?;
        Ok(v.pointer("/info/status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// `helm upgrade` of the release with its values kept and only `licence.stopped` set:
    /// a licensed chart then runs every workload at 0 replicas (or back at its own).
    pub fn licence_stop_args(&self, release: &str, chart: &Path, stopped: bool) -> Vec<String> {
        let mut a = args(&["upgrade", release]);
        a.push(chart.display().to_string());
        a.extend(args(&["--reuse-values", "--set"]));
        a.push(format!("licence.stopped={stopped}"));
        a.extend(args(&["--wait", "--timeout", TIMEOUT]));
        a
    }

    pub fn uninstall(&self, release: &str) -> Result<(), ImportError> {
        self.runner
            .run(&args(&["uninstall", release, "--wait"]))
            .map(|_| ())
    }
}

/// Where `appmodel push-images` put an app's images.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushedTo {
    pub registry: String,
    /// Versions whose images are there.
    pub versions: Vec<String>,
}

pub fn pushed_file(dep: &Deployment) -> PathBuf {
    dep.dir().join("helm-registry.json")
}

pub fn read_pushed(dep: &Deployment) -> Result<Option<PushedTo>, ImportError> {
    let p = pushed_file(dep);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(crate::damaged(&p)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &p)(e)),
    }
}

/// Records that `version`'s images are in `registry` (a new registry starts a new list).
pub fn record_pushed(dep: &Deployment, registry: &str, version: &str) -> Result<(), ImportError> {
    let mut pushed = read_pushed(dep)?.unwrap_or_default();
    if pushed.registry != registry {
        pushed = PushedTo {
            registry: registry.to_string(),
            versions: Vec::new(),
        };
    }
    if !pushed.versions.iter().any(|v| v == version) {
        pushed.versions.push(version.to_string());
    }
    std::fs::create_dir_all(dep.dir()).map_err(io_err("create", dep.dir()))?;
    let bytes = crate::state_json(&pushed)?;
    appmodel_store::write_atomic(&pushed_file(dep), &bytes)?;
    Ok(())
}

/// The values file for helm: the registry and every parameter as its typed value (the
/// chart's values.schema.json checks them again).
pub fn site_values(registry: &str, params: &Params) -> Value {
    let typed = |v: &Scalar| match v {
        Scalar::Bool(b) => json!(b),
        Scalar::Int(n) => json!(n),
        Scalar::Float(x) => json!(x),
        Scalar::Str(s) => json!(s),
    };
    let mut p = Map::new();
    let mut licence = Map::new();
    for (name, value) in params {
        match name.strip_prefix("licence.") {
            Some(entitlement) => licence.insert(entitlement.to_string(), typed(value)),
            None => p.insert(name.clone(), typed(value)),
        };
    }
    let mut values = appmodel_model::layout::helm::site_values(registry, p);
    if !licence.is_empty() {
        values["licence"] = Value::Object(licence);
    }
    values
}

/// The packaged chart of an imported version.
pub fn chart_path(bundle_dir: &Path, app: &str, version: &str) -> PathBuf {
    bundle_dir.join(appmodel_model::layout::helm::chart_path(app, version))
}

/// What a revision of ours became in Helm (`revisions/N/helm.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelmRevision {
    pub release: String,
    pub helm_revision: u32,
    pub registry: String,
}

fn helm_file(dep: &Deployment, n: u32) -> PathBuf {
    dep.revision_dir(n).join("helm.json")
}

/// The Helm revision one of our revisions became.
pub fn read_helm_revision(dep: &Deployment, n: u32) -> Result<HelmRevision, ImportError> {
    let p = helm_file(dep, n);
    let bytes = std::fs::read(&p).map_err(io_err("read", &p))?;
    serde_json::from_slice(&bytes).map_err(crate::damaged(&p))
}

/// The helm form's [`ReleaseEngine`]: Helm keeps the revisions, waits for readiness and
/// rolls a failed change back itself.
pub struct HelmEngine<R: Runner> {
    helm: Helm<R>,
}

impl HelmEngine<HelmProgram> {
    /// The site's `helm`, which must be Helm 3 or newer.
    pub fn detect() -> Result<HelmEngine<HelmProgram>, ImportError> {
        Ok(HelmEngine {
            helm: Helm::detect(HelmProgram)?,
        })
    }
}

impl<R: Runner> HelmEngine<R> {
    pub fn new(helm: Helm<R>) -> HelmEngine<R> {
        HelmEngine { helm }
    }

    /// For a rollback: the Helm revision the target revision became.
    fn helm_target(&self, change: &ReleaseChange<'_>) -> Result<Option<u32>, ImportError> {
        match change.revision.rollback_to {
            Some(to) => Ok(Some(read_helm_revision(change.dep, to)?.helm_revision)),
            None => Ok(None),
        }
    }

    /// Records the Helm revision the change became; returns the note for history.
    fn record(
        &self,
        change: &ReleaseChange<'_>,
        helm_revision: u32,
        registry: String,
    ) -> Result<String, ImportError> {
        let record = HelmRevision {
            release: change.dep.app.clone(),
            helm_revision,
            registry,
        };
        let bytes = crate::state_json(&record)?;
        appmodel_store::write_atomic(&helm_file(change.dep, change.revision.number), &bytes)?;
        Ok(format!("helm revision {helm_revision}"))
    }
}

impl<R: Runner> ReleaseEngine for HelmEngine<R> {
    fn versions(&self) -> crate::target::EngineVersions {
        crate::target::EngineVersions {
            engine: Some(("Helm".into(), self.helm.version.clone())),
            compose: None,
        }
    }

    /// helm runs, the cluster answers, the images were pushed, the chart is there.
    fn preflight(&self, change: &ReleaseChange<'_>) -> Result<Vec<String>, ImportError> {
        let app = &change.dep.app;
        let mut problems = self.helm.preflight(app);
        let version = &change.record.version;
        let pushed = read_pushed(change.dep)?.unwrap_or_default();
        if !pushed.versions.iter().any(|v| v == version) {
            problems.push(format!(
                "the images of {app} {version} are not in a site registry yet (push-images records where they are)"
            ));
        }
        let chart = chart_path(&change.bundle_dir, app, version);
        if !chart.is_file() {
            problems.push(format!(
                "the chart `{}` is missing; import the helm bundle again",
                chart.display()
            ));
        }
        if let Err(e) = self.helm_target(change) {
            problems.push(e.to_string());
        }
        Ok(problems)
    }

    fn apply(&self, change: &ReleaseChange<'_>) -> Result<String, ImportError> {
        let app = &change.dep.app;
        let pushed = read_pushed(change.dep)?.unwrap_or_default();
        let values = change
            .dep
            .revision_dir(change.revision.number)
            .join("site-values.json");
        let v = site_values(&pushed.registry, change.params);
        let bytes = crate::state_json(&v)?;
        crate::deploy::write_private(&values, &bytes)?;
        match self.helm_target(change)? {
            Some(target) => self.helm.rollback(app, target)?,
            None => {
                let chart = chart_path(&change.bundle_dir, app, &change.record.version);
                self.helm.upgrade_install(app, &chart, &values)?
            }
        }
        let helm_revision = self.helm.last_revision(app)?;
        self.record(change, helm_revision, pushed.registry)
    }

    /// The change went through if Helm's newest revision is deployed, newer than the one
    /// the previous revision became, and is this change: this version, and for a rollback
    /// Helm's "Rollback to N" of the target (a failed upgrade that Helm undid is also a
    /// newer deployed revision, but of the old version, or a rollback to another one).
    fn applied(&self, change: &ReleaseChange<'_>) -> Result<Option<String>, ImportError> {
        let app = &change.dep.app;
        let before = change
            .revision
            .from
            .and_then(|p| read_helm_revision(change.dep, p).ok())
            .map_or(0, |h| h.helm_revision);
        let newest = self.helm.newest(app)?;
        let number = newest.get("revision").and_then(Value::as_u64).unwrap_or(0) as u32;
        let field = |k: &str| newest.get(k).and_then(Value::as_str).unwrap_or_default();
        let is_this = match self.helm_target(change)? {
            Some(target) => field("description") == format!("Rollback to {target}"),
            None => {
                field("app_version") == change.record.version
                    && !field("description").starts_with("Rollback")
            }
        };
        if number > before && field("status") == "deployed" && is_this {
            let registry = read_pushed(change.dep)?.unwrap_or_default().registry;
            return self.record(change, number, registry).map(Some);
        }
        Ok(None)
    }

    /// Helm's view of the release, for every component.
    fn status(
        &self,
        dep: &Deployment,
        model: &AppModel,
    ) -> Result<Vec<ComponentStatus>, ImportError> {
        let state = self.helm.status(&dep.app)?;
        let health = match state.as_str() {
            "deployed" => Health::Healthy,
            "failed" => Health::Unhealthy,
            s if s.starts_with("pending") => Health::Starting,
            _ => Health::Missing,
        };
        // The release's state, not the shared words: Helm reports one state for all.
        Ok(model
            .components
            .iter()
            .map(|c| ComponentStatus {
                state: format!("release {state}"),
                ..ComponentStatus::new(&c.name, health, None)
            })
            .collect())
    }

    /// `helm uninstall --wait`. The cluster keeps what Helm keeps (persistent volume
    /// claims of a StatefulSet), so the data is the cluster's to remove.
    fn uninstall(&self, dep: &Deployment) -> Result<(), ImportError> {
        match self.helm.uninstall(&dep.app) {
            // An uninstall interrupted after Helm's part, finished by the next command.
            Err(ImportError::EngineFailed { stderr, .. }) if stderr.contains("not found") => Ok(()),
            r => r,
        }
    }

    /// A new Helm revision of the same chart and values with `licence.stopped` set. Our
    /// revision keeps its Helm revision: a later `appmodel rollback` (refused while the
    /// licence keeps the app stopped) goes to the values that revision was made with.
    fn set_stopped(
        &self,
        dep: &Deployment,
        record: &VersionRecord,
        bundle_dir: &Path,
        stopped: bool,
    ) -> Result<(), ImportError> {
        let chart = chart_path(bundle_dir, &dep.app, &record.version);
        self.helm
            .runner
            .run(&self.helm.licence_stop_args(&dep.app, &chart, stopped))
            .map(|_| ())
    }
}

fn no_history(release: &str) -> ImportError {
    ImportError::EngineOutput {
        command: "helm history".into(),
        problem: format!("helm has no history for `{release}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appmodel_model::bundle::Form;
    use appmodel_model::version::Version;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Records every argv and answers from a script.
    struct Fake {
        calls: RefCell<Vec<Vec<String>>>,
        answers: BTreeMap<&'static str, Result<&'static str, &'static str>>,
    }

    impl Runner for &Fake {
        fn run(&self, args: &[String]) -> Result<String, ImportError> {
            self.calls.borrow_mut().push(args.to_vec());
            match self.answers.get(args[0].as_str()) {
                Some(Ok(out)) => Ok(out.to_string()),
                Some(Err(e)) => Err(ImportError::EngineOutput {
                    command: args[0].clone(),
                    problem: e.to_string(),
                }),
                None => Ok(String::new()),
            }
        }
    }

    fn fake(version: &'static str) -> Fake {
        let mut answers = BTreeMap::new();
        answers.insert("version", Ok(version));
        answers.insert(
            "history",
            Ok(r#"[{"revision":7,"status":"deployed","app_version":"1.1.0"}]"#),
        );
        answers.insert(
            "status",
            Ok(r#"{"name":"im-stack","info":{"status":"deployed"}}"#),
        );
        Fake {
            calls: RefCell::new(Vec::new()),
            answers,
        }
    }

    #[test]
    fn helm_3_installs_with_atomic_and_helm_4_with_rollback_on_failure() {
        let f = fake("v3.14.2+gc309b6f\n");
        let helm = Helm::detect(&f).unwrap();
        assert_eq!(helm.major, 3);
        helm.upgrade_install(
            "im-stack",
            Path::new("/s/im-stack-1.1.0.tgz"),
            Path::new("/s/v.json"),
        )
        .unwrap();
        assert_eq!(
            f.calls.borrow().clone(),
            vec![
                args(&["version", "--short"]),
                args(&[
                    "upgrade",
                    "--install",
                    "im-stack",
                    "/s/im-stack-1.1.0.tgz",
                    "--values",
                    "/s/v.json",
                    "--wait",
                    "--timeout",
                    "600s",
                    "--atomic"
                ]),
            ]
        );
        let f4 = fake("v4.0.1+g12500dd");
        let helm4 = Helm::detect(&f4).unwrap();
        assert_eq!(
            helm4
                .upgrade_install_args("r", Path::new("c.tgz"), Path::new("v.json"))
                .last()
                .map(String::as_str),
            Some("--rollback-on-failure")
        );
    }

    #[test]
    fn rollback_status_and_history_read_helm() {
        let f = fake("v3.15.0");
        let helm = Helm::detect(&f).unwrap();
        helm.rollback("im-stack", 3).unwrap();
        assert_eq!(helm.last_revision("im-stack").unwrap(), 7);
        assert_eq!(helm.status("im-stack").unwrap(), "deployed");
        let calls = f.calls.borrow();
        assert_eq!(
            calls[1],
            args(&["rollback", "im-stack", "3", "--wait", "--timeout", "600s"])
        );
        assert_eq!(
            calls[2],
            args(&["history", "im-stack", "--max", "1", "--output", "json"])
        );
        assert_eq!(calls[3], args(&["status", "im-stack", "--output", "json"]));
    }

    #[test]
    fn preflight_reports_a_cluster_that_does_not_answer_and_old_helm() {
        let mut f = fake("v3.15.0");
        f.answers
            .insert("list", Err("Kubernetes cluster unreachable"));
        let helm = Helm::detect(&f).unwrap();
        let problems = helm.preflight("im-stack");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("cluster unreachable"), "{problems:?}");
        assert_eq!(
            f.calls.borrow()[1],
            args(&[
                "list",
                "--all",
                "--filter",
                "^im-stack$",
                "--output",
                "json"
            ])
        );
        assert!(Helm::detect(&fake("v2.17.0")).is_err());
    }

    #[test]
    fn site_values_carry_the_site_configurations_values_with_their_types() {
        let model = appmodel_model::parse_model(
            "m.yaml".into(),
            "apiVersion: appmodel/v1\napp: {name: a, version: 1.0.0}\nparameters:\n  - {name: n, type: integer, default: 1}\n  - {name: b, type: boolean, default: true}\n  - {name: s, type: string, default: x}\ncomponents:\n  - {name: c, image: {registry: r.example/c:1}}\n".into(),
        )
        .unwrap()
        .model;
        // A string that looks like a number stays a string; the number and the boolean are
        // never turned into text on the way from the site's file to Helm's values.
        let config = "app: a\nparams:\n  n: 42\n  b: false\n  s: '007'\n";
        let (values, _) = crate::deploy::resolve_values(
            &model,
            Path::new("site.yaml"),
            config.into(),
            &BTreeMap::new(),
        )
        .unwrap();
        let mut params = values.params;
        params.insert("licence.max_users".into(), Scalar::Int(100));
        params.insert("licence.plan".into(), Scalar::Str("standard".into()));
        assert_eq!(
            site_values("reg:5000/p", &params),
            json!({
                "global": {"imageRegistry": "reg:5000/p"},
                "params": {"b": false, "n": 42, "s": "007"},
                "licence": {"max_users": 100, "plan": "standard"},
            })
        );
    }

    #[test]
    fn after_a_crash_helm_says_whether_the_change_went_through() {
        use crate::deploy::{Action, Revision};
        let dir = tempfile::tempdir().unwrap();
        let site = crate::site::Site::open(&dir.path().join("state")).unwrap();
        let dep = Deployment::new(&site, "im-stack");
        let record = |n: u32, helm_revision: u32| {
            std::fs::create_dir_all(dep.revision_dir(n)).unwrap();
            let h = HelmRevision {
                release: "im-stack".into(),
                helm_revision,
                registry: "reg:5000".into(),
            };
            std::fs::write(helm_file(&dep, n), serde_json::to_vec(&h).unwrap()).unwrap();
        };
        record(1, 6);
        let version_record: appmodel_model::record::VersionRecord = {
            let text = "apiVersion: appmodel/v1\napp: {name: im-stack, version: 1.1.0}\ncomponents:\n  - {name: c, image: {registry: r.example/c:1}}\n";
            let model = appmodel_model::parse_model("m.yaml".into(), text.into())
                .unwrap()
                .model;
            appmodel_model::record::VersionRecord::unpublished("m.yaml", text.into(), model)
        };
        let params = BTreeMap::new();
        let upgrade = Revision::pending(
            2,
            "im-stack",
            Version::parse("1.1.0").unwrap(),
            Form::Helm,
            Action::Upgrade,
            Some(1),
            None,
        );
        std::fs::create_dir_all(dep.revision_dir(2)).unwrap();
        let change = ReleaseChange {
            dep: &dep,
            revision: &upgrade,
            record: &version_record,
            params: &params,
            bundle_dir: dir.path().to_path_buf(),
        };
        let engine = |history: &'static str| {
            let mut f = fake("v3.15.0");
            f.answers.insert("history", Ok(history));
            f
        };
        // The upgrade went through: Helm's revision 7 is this version, deployed.
        let f = engine(
            r#"[{"revision":7,"status":"deployed","app_version":"1.1.0","description":"Upgrade complete"}]"#,
        );
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        assert_eq!(
            e.applied(&change).unwrap().as_deref(),
            Some("helm revision 7")
        );
        assert_eq!(read_helm_revision(&dep, 2).unwrap().helm_revision, 7);
        // Helm undid a failed upgrade: the newest revision is deployed, but the old version.
        let f = engine(
            r#"[{"revision":8,"status":"deployed","app_version":"1.0.0","description":"Rollback to 6"}]"#,
        );
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        assert_eq!(e.applied(&change).unwrap(), None);
        // Helm never got the change: its newest revision is the one revision 1 became.
        let f = engine(
            r#"[{"revision":6,"status":"deployed","app_version":"1.1.0","description":"Install complete"}]"#,
        );
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        assert_eq!(e.applied(&change).unwrap(), None);
        // A rollback to revision 1 is Helm's "Rollback to 6".
        let rollback = Revision::pending(
            3,
            "im-stack",
            Version::parse("1.1.0").unwrap(),
            Form::Helm,
            Action::Rollback,
            Some(2),
            Some(1),
        );
        let change = ReleaseChange {
            revision: &rollback,
            ..change
        };
        std::fs::create_dir_all(dep.revision_dir(3)).unwrap();
        let f = engine(
            r#"[{"revision":9,"status":"deployed","app_version":"1.1.0","description":"Rollback to 6"}]"#,
        );
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        assert_eq!(
            e.applied(&change).unwrap().as_deref(),
            Some("helm revision 9")
        );
        let f = engine(
            r#"[{"revision":9,"status":"deployed","app_version":"1.1.0","description":"Rollback to 5"}]"#,
        );
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        assert_eq!(e.applied(&change).unwrap(), None);
    }

    #[test]
    fn uninstall_is_helm_uninstall_and_waits() {
        let f = fake("v3.15.0");
        let dir = tempfile::tempdir().unwrap();
        let site = crate::site::Site::open(&dir.path().join("state")).unwrap();
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        e.uninstall(&Deployment::new(&site, "im-stack")).unwrap();
        assert_eq!(
            f.calls.borrow()[1],
            args(&["uninstall", "im-stack", "--wait"])
        );
    }

    /// The licence check stops a release by scaling it to zero with its values kept (the
    /// chart reads `licence.stopped`, tests/helm.rs renders it), and starts it the same way.
    #[test]
    fn a_licence_stop_is_an_upgrade_of_the_same_chart_with_licence_stopped() {
        let f = fake("v3.15.0");
        let dir = tempfile::tempdir().unwrap();
        let site = crate::site::Site::open(&dir.path().join("state")).unwrap();
        let e = HelmEngine::new(Helm::detect(&f).unwrap());
        let text = "apiVersion: appmodel/v1\napp: {name: im-stack, version: 1.2.0}\ncomponents:\n  - name: a\n    image: {registry: 'r.example/a:1'}\n";
        let model = appmodel_model::parse_model("m.yaml".into(), text.into())
            .unwrap()
            .model;
        let record = VersionRecord::unpublished("m.yaml", text.into(), model);
        let dep = Deployment::new(&site, "im-stack");
        let bundle = dir.path().join("bundle");
        for stopped in [true, false] {
            e.set_stopped(&dep, &record, &bundle, stopped).unwrap();
            let calls = f.calls.borrow();
            let call = calls.last().unwrap();
            assert_eq!(
                call,
                &args(&[
                    "upgrade",
                    "im-stack",
                    chart_path(&bundle, "im-stack", "1.2.0").to_str().unwrap(),
                    "--reuse-values",
                    "--set",
                    &format!("licence.stopped={stopped}"),
                    "--wait",
                    "--timeout",
                    TIMEOUT,
                ])
            );
        }
        assert!(crate::engine::check_supported(Form::Helm, crate::engine::Operation::Stop).is_ok());
    }
}
