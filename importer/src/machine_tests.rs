//! The change state machine, table-driven, in milliseconds: every journal step of install,
//! upgrade and rollback × {crash there, unhealthy new revision, success}, and uninstall,
//! against a recording fake host engine, with the deployment's records in real files in a
//! temporary directory and again in memory ([`crate::records::MemoryRecords`]), where every
//! single write of a change is also made to fail in turn.
//! The end-to-end crash matrix (tests/common/crash.rs) proves the same on Docker and
//! systemd; this one pins the state machine itself.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use appmodel_model::bundle::{host_platform, Form};
use appmodel_model::record::VersionRecord;

use crate::deploy::TEST_RECORDS;
use crate::deploy::{Deployment, Status};
use crate::fault::TEST_CRASH;
use crate::lifecycle::{self, ChangeOptions};
use crate::records::MemoryRecords;
use crate::target::{ComponentStatus, DataDir, Health, RevisionCtx, Target};
use crate::{ImportError, Site};

const APP: &str = "demo";

/// What the fake host runs and what it was asked to do.
#[derive(Default)]
struct Host {
    /// The revision whose processes run.
    running: Option<u32>,
    /// A revision that never becomes healthy.
    unhealthy: Option<u32>,
    calls: Vec<String>,
}

/// A host engine that keeps its state in [`Host`] and its one data volume in a real
/// directory (snapshots and restores are the lifecycle's real code). A version "migrates"
/// the data when it starts: it leaves `migrated-VERSION` in it.
struct Fake {
    host: Rc<RefCell<Host>>,
    data: PathBuf,
}

impl Target for Fake {
    fn form(&self) -> Form {
        Form::Systemd
    }

    fn preflight(
        &self,
        _new: &RevisionCtx<'_>,
        _current: Option<&RevisionCtx<'_>>,
    ) -> Result<Vec<String>, ImportError> {
        Ok(Vec::new())
    }

    fn prepare(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        self.host
            .borrow_mut()
            .calls
            .push(format!("prepare {}", rev.number));
        Ok(())
    }

    fn write_project(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        self.host
            .borrow_mut()
            .calls
            .push(format!("write {}", rev.number));
        Ok(())
    }

    fn start(&self, rev: &RevisionCtx<'_>, _components: &[&str]) -> Result<(), ImportError> {
        std::fs::create_dir_all(&self.data).unwrap();
        std::fs::write(
            self.data.join(format!("migrated-{}", rev.record.version)),
            "",
        )
        .unwrap();
        let mut h = self.host.borrow_mut();
        h.running = Some(rev.number);
        h.calls.push(format!("start {}", rev.number));
        Ok(())
    }

    fn health(&self, rev: &RevisionCtx<'_>, _component: &str) -> Result<Health, ImportError> {
        let h = self.host.borrow();
        Ok(match (h.running, h.unhealthy) {
            (Some(r), Some(bad)) if r == rev.number && bad == r => Health::Unhealthy,
            (Some(r), _) if r == rev.number => Health::Healthy,
            _ => Health::Stopped,
        })
    }

    fn stop(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let mut h = self.host.borrow_mut();
        h.running = None;
        h.calls.push(format!("stop {}", rev.number));
        Ok(())
    }

    fn data_dirs(&self, _rev: &RevisionCtx<'_>, create: bool) -> Result<Vec<DataDir>, ImportError> {
        if create {
            std::fs::create_dir_all(&self.data).unwrap();
        }
        Ok(vec![DataDir {
            name: "db-data".into(),
            path: self.data.clone(),
        }])
    }

    fn remove_data(&self, _rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let _ = std::fs::remove_dir_all(&self.data);
        Ok(())
    }

    fn status(&self, rev: &RevisionCtx<'_>) -> Result<Vec<ComponentStatus>, ImportError> {
        Ok(vec![ComponentStatus::new(
            "db",
            self.health(rev, "db")?,
            None,
        )])
    }
}

struct World {
    dir: tempfile::TempDir,
    site: Site,
    host: Rc<RefCell<Host>>,
    /// The deployment's records, when they are kept in memory.
    memory: Option<Arc<MemoryRecords>>,
}

thread_local! {
    /// Whether the worlds this test thread makes keep their records in memory.
    static IN_MEMORY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every world it makes keeping its records in memory.
fn in_memory(f: impl FnOnce()) {
    IN_MEMORY.with(|m| m.set(true));
    f();
    IN_MEMORY.with(|m| m.set(false));
    TEST_RECORDS.with(|t| *t.borrow_mut() = None);
}

fn record(version: &str) -> VersionRecord {
    let text = format!(
        "apiVersion: appmodel/v1\napp: {{name: {APP}, version: {version}, platforms: [{}]}}\ncomponents:\n  - name: db\n    image: {{registry: r.example/db:1}}\n    ports: [{{name: http, port: 7070, protocol: http}}]\n    volumes: [{{name: data, kind: data, path: /data}}]\n    health: {{http: {{path: /readyz, port: http}}, interval: 1s, retries: 1}}\n",
        host_platform()
    );
    let model = appmodel_model::parse_model("m.yaml".into(), text.clone())
        .unwrap()
        .model;
    VersionRecord::unpublished("m.yaml", text, model)
}

impl World {
    /// A site with 1.0.0 and 1.1.0 imported (systemd form), the fake engine on this thread.
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::open(&dir.path().join("state")).unwrap();
        let lock = site.store().lock().unwrap();
        for v in ["1.0.0", "1.1.0"] {
            site.store().put_record(&lock, &record(v), []).unwrap();
            std::fs::create_dir_all(site.bundle_dir(APP, v, Form::Systemd)).unwrap();
        }
        drop(lock);
        std::fs::write(dir.path().join("site.yaml"), format!("app: {APP}\n")).unwrap();
        let host = Rc::new(RefCell::new(Host::default()));
        let (shared, data) = (host.clone(), dir.path().join("data"));
        let fake: crate::engine::FakeEngine = Rc::new(move || {
            Box::new(Fake {
                host: shared.clone(),
                data: data.clone(),
            }) as Box<dyn Target>
        });
        crate::engine::TEST_ENGINE.with(|t| *t.borrow_mut() = Some(fake));
        let memory = IN_MEMORY
            .with(|m| m.get())
            .then(|| Arc::new(MemoryRecords::default()));
        TEST_RECORDS.with(|t| *t.borrow_mut() = memory.clone());
        World {
            dir,
            site,
            host,
            memory,
        }
    }

    /// Whether a record of the deployment is in the state directory.
    fn has_record_files(&self) -> bool {
        let dir = Deployment::new(&self.site, APP).dir().to_path_buf();
        dir.join("journal.json").exists() || dir.join("revisions/1/revision.json").exists()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn migrated(&self) -> bool {
        self.data().join("migrated-1.1.0").exists()
    }

    fn opts<'a>(&self, version: Option<&'a str>, config: Option<&'a Path>) -> ChangeOptions<'a> {
        ChangeOptions {
            app: None,
            version,
            config,
            keep: 3,
            dry_run: false,
            allow_downgrade: false,
            ignore_checks: &[],
            preflight_only: false,
        }
    }

    fn install(&self) -> Result<lifecycle::Outcome, ImportError> {
        let config = self.dir.path().join("site.yaml");
        lifecycle::install(&self.site, &self.opts(Some("1.0.0"), Some(&config)))
    }

    fn upgrade(&self) -> Result<lifecycle::Outcome, ImportError> {
        lifecycle::upgrade(&self.site, &self.opts(Some("1.1.0"), None))
    }

    fn rollback(&self) -> Result<lifecycle::Outcome, ImportError> {
        lifecycle::rollback(&self.site, None, None, &self.opts(None, None))
    }

    /// Runs the change, "crashing" (panicking) at `point` if given.
    fn change(
        &self,
        action: &str,
        point: Option<&str>,
    ) -> Option<Result<lifecycle::Outcome, ImportError>> {
        TEST_CRASH.with(|c| *c.borrow_mut() = point.map(str::to_string));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match action {
            "install" => self.install(),
            "upgrade" => self.upgrade(),
            _ => self.rollback(),
        }));
        TEST_CRASH.with(|c| *c.borrow_mut() = None);
        run.ok()
    }

    fn history(&self) -> Vec<(u32, String, Status)> {
        Deployment::new(&self.site, APP)
            .history()
            .unwrap()
            .into_iter()
            .map(|r| (r.number, r.version.to_string(), r.status))
            .collect()
    }
}

fn h(n: u32, v: &str, s: Status) -> (u32, String, Status) {
    (n, v.to_string(), s)
}

/// The journal's steps of each action, as the crash points name them.
const POINTS: &[(&str, &[&str])] = &[
    ("install", &["prepared", "starting", "started", "deployed"]),
    (
        "upgrade",
        &[
            "prepared",
            "stopping",
            "stopped",
            "snapshotted",
            "starting",
            "started",
            "superseded",
            "deployed",
        ],
    ),
    (
        "rollback",
        &[
            "prepared",
            "stopping",
            "stopped",
            "snapshotted",
            "starting",
            "restored",
            "started",
            "superseded",
            "deployed",
        ],
    ),
];

/// Brings the world to just before `action`, with an acknowledged "message" in the data.
fn before(action: &str) -> World {
    let w = World::new();
    if action != "install" {
        w.install().unwrap();
        std::fs::write(w.data().join("acked"), "1").unwrap();
    }
    if action == "rollback" {
        w.upgrade().unwrap();
    }
    w
}

/// What must hold once the change is over (finished, or reverted with its revision failed).
fn assert_outcome(w: &World, action: &str, finished: bool, case: &str) {
    assert_eq!(w.history(), expected_history(action, finished), "{case}");
    assert_consistent(w, action, case);
}

/// The history once `action` is over: finished, or reverted with its revision failed.
fn expected_history(action: &str, finished: bool) -> Vec<(u32, String, Status)> {
    use Status::*;
    match (action, finished) {
        ("install", true) => vec![h(1, "1.0.0", Deployed)],
        ("install", false) => vec![h(1, "1.0.0", Failed)],
        ("upgrade", true) => vec![h(1, "1.0.0", Superseded), h(2, "1.1.0", Deployed)],
        ("upgrade", false) => vec![h(1, "1.0.0", Deployed), h(2, "1.1.0", Failed)],
        ("rollback", true) => vec![
            h(1, "1.0.0", Superseded),
            h(2, "1.1.0", RolledBack),
            h(3, "1.0.0", Deployed),
        ],
        _ => vec![
            h(1, "1.0.0", Superseded),
            h(2, "1.1.0", Deployed),
            h(3, "1.0.0", Failed),
        ],
    }
}

/// What holds after every change, whatever became of it: what runs is what history says,
/// no journal is left, the acknowledged data is kept and is the running version's.
fn assert_consistent(w: &World, action: &str, case: &str) {
    use Status::*;
    let history = w.history();
    let running = w.host.borrow().running;
    let deployed: Vec<u32> = history
        .iter()
        .filter(|r| r.2 == Deployed)
        .map(|r| r.0)
        .collect();
    assert!(deployed.len() <= 1, "{case}: {history:?}");
    assert_eq!(
        running,
        deployed.first().copied(),
        "{case}: what runs is what history says"
    );
    assert!(
        Deployment::new(&w.site, APP).journal().unwrap().is_none(),
        "{case}"
    );
    if action != "install" {
        assert!(
            w.data().join("acked").exists(),
            "{case}: the acknowledged data is kept"
        );
        // 1.1.0's migration is there exactly when 1.1.0 runs on that data.
        let runs_new = history.iter().any(|r| r.2 == Deployed && r.1 == "1.1.0");
        assert_eq!(
            w.migrated(),
            runs_new,
            "{case}: the data is the running version's"
        );
    }
}

#[test]
fn every_journal_step_crashed_is_finished_or_reverted_by_the_next_command() {
    crash_table();
}

#[test]
fn the_same_table_with_the_records_in_memory() {
    in_memory(|| {
        crash_table();
        unhealthy_and_healthy();
        uninstall_crashes();
        let w = before("rollback");
        assert_eq!(w.history().len(), 2);
        assert!(!w.has_record_files(), "no record reached the disk");
    });
}

/// Every write and removal of a record that a change makes, made to fail in turn (a full
/// disk): the change stops with an error, never a panic, and the next command leaves a
/// state as consistent as after a crash, finished or reverted.
#[test]
fn a_change_whose_record_write_fails_is_finished_or_reverted_by_the_next_command() {
    in_memory(|| {
        let mut cases = 0;
        for action in ["install", "upgrade", "rollback"] {
            let w = before(action);
            let memory = w.memory.clone().unwrap();
            let start = memory.writes();
            w.change(action, None).unwrap().unwrap();
            let writes = memory.writes() - start;
            assert!(writes >= 4, "{action}: {writes} writes");
            for i in 1..=writes {
                let case = format!("{action}, write {i} of {writes} fails");
                let w = before(action);
                let untouched = w.history();
                let memory = w.memory.clone().unwrap();
                memory.fail_write(Some(i));
                let result = w.change(action, None).expect("no panic");
                memory.fail_write(None);
                if let Err(e) = &result {
                    assert!(
                        matches!(e, ImportError::Io { .. } | ImportError::Reverted { .. }),
                        "{case}: {e}"
                    );
                }
                let dep = Deployment::new(&w.site, APP);
                lifecycle::recover(&w.site, &dep).unwrap();
                let history = w.history();
                assert!(
                    history == untouched
                        || history == expected_history(action, true)
                        || history == expected_history(action, false),
                    "{case}: {history:?}"
                );
                assert_consistent(&w, action, &case);
                cases += 1;
            }
        }
        assert!(cases >= 15, "{cases}");
    });
}

fn crash_table() {
    let mut cases = 0;
    for (action, steps) in POINTS {
        for step in *steps {
            let point = format!("{action}-{step}");
            let w = before(action);
            assert!(
                w.change(action, Some(&point)).is_none(),
                "{point}: did not crash"
            );
            let status = lifecycle::status(&w.site, None).unwrap();
            assert!(
                status.interrupted.is_some(),
                "{point}: status reports the crash"
            );
            // A dry run reports the unfinished change and leaves it alone.
            let dry = lifecycle::upgrade(
                &w.site,
                &ChangeOptions {
                    dry_run: true,
                    ..w.opts(Some("1.1.0"), None)
                },
            );
            if let Ok(o) = dry {
                assert!(o.plan.unwrap().pending_recovery.is_some(), "{point}");
            }
            assert!(
                Deployment::new(&w.site, APP).journal().unwrap().is_some(),
                "{point}"
            );
            let dep = Deployment::new(&w.site, APP);
            lifecycle::recover(&w.site, &dep).unwrap();
            assert_outcome(&w, action, *step == "deployed", &point);
            cases += 1;
        }
    }
    assert_eq!(cases, 21);
}

#[test]
fn an_unhealthy_new_revision_is_reverted_and_a_healthy_one_deployed() {
    unhealthy_and_healthy();
}

fn unhealthy_and_healthy() {
    for action in ["install", "upgrade", "rollback"] {
        let w = before(action);
        let next = w.history().len() as u32 + 1;
        w.host.borrow_mut().unhealthy = Some(next);
        let e = w.change(action, None).unwrap().unwrap_err();
        assert!(
            matches!(e, ImportError::Reverted { revision, .. } if revision == next),
            "{action}: {e}"
        );
        assert_outcome(&w, action, false, &format!("{action} unhealthy"));

        let w = before(action);
        let o = w.change(action, None).unwrap().unwrap();
        assert_eq!(o.running, Some(next));
        assert_outcome(&w, action, true, &format!("{action} healthy"));
    }
}

#[test]
fn uninstall_stops_and_removes_or_keeps_the_data() {
    for keep in [true, false] {
        // Installed, then upgraded: revision 1's data is in its snapshot.
        let w = before("rollback");
        let r = lifecycle::uninstall(&w.site, None, keep).unwrap();
        assert_eq!(r.status, Status::Uninstalled);
        assert_eq!(w.host.borrow().running, None);
        assert_eq!(w.data().join("acked").exists(), keep);
        let dep = Deployment::new(&w.site, APP);
        // The snapshot goes with the data.
        assert_eq!(dep.snapshot_dir(1).is_dir(), keep);
        assert!(dep.current().unwrap().is_none());
    }
}

#[test]
fn an_interrupted_uninstall_is_finished_by_the_next_command() {
    uninstall_crashes();
}

fn uninstall_crashes() {
    let mut cases = 0;
    for keep in [true, false] {
        for step in ["stopping", "stopped", "removed", "uninstalled"] {
            let point = format!("uninstall-{step}");
            let case = format!("{point}, keep data: {keep}");
            let w = before("rollback");
            TEST_CRASH.with(|c| *c.borrow_mut() = Some(point.clone()));
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                lifecycle::uninstall(&w.site, None, keep)
            }));
            TEST_CRASH.with(|c| *c.borrow_mut() = None);
            assert!(run.is_err(), "{case}: did not crash");
            let status = lifecycle::status(&w.site, None).unwrap();
            assert!(status.interrupted.is_some(), "{case}: status reports it");

            // The next command finishes it as it was asked, whatever that command asks.
            let dep = Deployment::new(&w.site, APP);
            lifecycle::recover(&w.site, &dep).unwrap();
            use Status::*;
            assert_eq!(
                w.history(),
                [h(1, "1.0.0", Superseded), h(2, "1.1.0", Uninstalled)],
                "{case}"
            );
            assert_eq!(w.host.borrow().running, None, "{case}");
            assert!(dep.journal().unwrap().is_none(), "{case}");
            assert_eq!(w.data().join("acked").exists(), keep, "{case}");
            assert_eq!(dep.snapshot_dir(1).is_dir(), keep, "{case}");

            // And the app can be installed again (its newest version: data may remain).
            let config = w.dir.path().join("site.yaml");
            lifecycle::install(&w.site, &w.opts(Some("1.1.0"), Some(&config))).unwrap();
            assert_eq!(w.host.borrow().running, Some(3), "{case}");
            cases += 1;
        }
    }
    assert_eq!(cases, 8);
}

/// Each event as `name revision` (and its components or restored revision), for comparing
/// sequences.
fn steps(events: &[crate::events::ChangeEvent]) -> Vec<String> {
    use crate::events::ChangeEvent::*;
    events
        .iter()
        .map(|e| match e {
            Begin {
                action, revision, ..
            } => format!("begin {action:?} {revision}"),
            Stopping { revision } => format!("stopping {revision}"),
            Snapshotted { revision, .. } => format!("snapshotted {revision}"),
            Restored { from } => format!("restored from {from}"),
            Starting {
                revision,
                components,
            } => format!("starting {revision} {}", components.join(",")),
            Healthy {
                revision,
                component,
            } => format!("healthy {revision} {component}"),
            Reverting { revision, .. } => format!("reverting {revision}"),
            Reverted { revision, restored } => format!("reverted {revision} to {restored:?}"),
            Done { revision, status } => format!("done {revision} {}", status.as_str()),
            Recovered { revision, .. } => format!("recovered {revision}"),
            LicenceStopped { .. } => "licence stopped".into(),
            LicenceStarted { .. } => "licence started".into(),
        })
        .collect()
}

#[test]
fn every_change_reports_its_steps_as_events() {
    use crate::events::record;
    let w = before("upgrade");
    let (o, events) = record(|| w.upgrade());
    o.unwrap();
    assert_eq!(
        steps(&events),
        [
            "begin Upgrade 2",
            "stopping 1",
            "snapshotted 1",
            "starting 2 db",
            "healthy 2 db",
            "done 2 deployed"
        ]
    );
    let (o, events) = record(|| w.rollback());
    o.unwrap();
    assert_eq!(
        steps(&events),
        [
            "begin Rollback 3",
            "stopping 2",
            "snapshotted 2",
            "restored from 1",
            "starting 3 db",
            "healthy 3 db",
            "done 3 deployed"
        ]
    );

    // Unhealthy: the revert is reported step by step too.
    let w = before("upgrade");
    w.host.borrow_mut().unhealthy = Some(2);
    let (o, events) = record(|| w.upgrade());
    assert!(o.is_err());
    assert_eq!(
        steps(&events),
        [
            "begin Upgrade 2",
            "stopping 1",
            "snapshotted 1",
            "starting 2 db",
            "reverting 2",
            "restored from 1",
            "starting 1 db",
            "healthy 1 db",
            "reverted 2 to Some(1)"
        ]
    );

    // A crash, then the next command's recovery.
    let w = before("upgrade");
    assert!(w.change("upgrade", Some("upgrade-starting")).is_none());
    let dep = Deployment::new(&w.site, APP);
    let (r, events) = record(|| lifecycle::recover(&w.site, &dep));
    r.unwrap();
    assert_eq!(
        steps(&events),
        [
            "restored from 1",
            "starting 1 db",
            "healthy 1 db",
            "reverted 2 to Some(1)",
            "recovered 2"
        ]
    );
    // A dry run changes nothing, so it reports nothing.
    let (o, events) = record(|| {
        lifecycle::upgrade(
            &w.site,
            &ChangeOptions {
                dry_run: true,
                ..w.opts(Some("1.1.0"), None)
            },
        )
    });
    assert!(o.unwrap().dry_run);
    assert_eq!(steps(&events), Vec::<String>::new());
}
