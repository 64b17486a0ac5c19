//! The compose form end to end on the real Docker engine (or on Podman, under
//! `APPMODEL_COMPOSE=podman`): publish -> export -> import ->
//! install -> probe-write -> upgrade -> probe-verify -> rollback -> probe-verify, automatic
//! rollback of an unhealthy upgrade, refusals before any container changes, and recovery
//! after `kill -9` of an upgrade. The sample's real programs run in the containers.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::engines::{container_engine, require_compose, sample_built, static_tool};
use common::{appmodel, root, ModelEdit, Run};

/// The scenarios share the Docker engine, the project name and host port 8080.
static ENGINE: Mutex<()> = Mutex::new(());

const APP: &str = "im-stack";

fn engine_ready() -> bool {
    let ok = Command::new(container_engine())
        .args(["info"])
        .output()
        .is_ok_and(|o| o.status.success());
    common::engines::needs(
        ok,
        &format!(
            "a container engine that answers `{} info`",
            container_engine()
        ),
        "scripts/setup.sh starts dockerd and configures Podman",
    ) && require_compose()
}

/// Removes every container and volume of the sample project (before and after a scenario).
fn clean_engine() {
    let ids = Command::new(container_engine())
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={APP}"),
        ])
        .output()
        .unwrap();
    for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
        let _ = Command::new(container_engine())
            .args(["rm", "-f", id])
            .output();
    }
    for v in volumes() {
        let _ = Command::new(container_engine())
            .args(["volume", "rm", "-f", &v])
            .output();
    }
    let _ = Command::new(container_engine())
        .args(["network", "rm", &format!("{APP}_default")])
        .output();
    if container_engine() == "podman" {
        // podman-compose puts a project's containers in one pod.
        let _ = Command::new("podman")
            .args(["pod", "rm", "-f", &format!("pod_{APP}")])
            .output();
    }
}

/// The sample project's data volumes.
fn volumes() -> Vec<String> {
    let out = Command::new(container_engine())
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={APP}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn containers() -> Vec<String> {
    let out = Command::new(container_engine())
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={APP}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

struct World {
    dir: tempfile::TempDir,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl Drop for World {
    fn drop(&mut self) {
        clean_engine();
    }
}

impl World {
    /// Publishes the sample (and `extra` model variants), exports compose bundles.
    fn new(extra: &[(&str, &ModelEdit)]) -> Option<World> {
        let guard = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
        if !engine_ready() || !sample_built(&root()) {
            return None;
        }
        let tool = static_tool()?;
        clean_engine();
        let w = World {
            dir: tempfile::tempdir().unwrap(),
            _guard: guard,
        };
        common::publish_and_export_sample(w.dir.path(), "compose", &tool, extra);
        Some(w)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn site(&self, args: &[&str]) -> Run {
        let state = self.path("state");
        let mut all = args.to_vec();
        all.extend(["--state-dir", state.to_str().unwrap()]);
        appmodel(self.dir.path(), &all)
    }

    fn ok(&self, args: &[&str]) -> Run {
        let run = self.site(args);
        assert_eq!(run.code, 0, "appmodel {args:?}:\n{}", run.transcript());
        run
    }

    fn import(&self, version: &str) {
        let bundle = self.path(&format!("im-stack-{version}.tar"));
        let key = self.path("vendor.pub");
        self.ok(&[
            "import",
            bundle.to_str().unwrap(),
            "--trust-key",
            key.to_str().unwrap(),
        ]);
    }

    /// 1.0.0 and 1.1.0 imported, 1.0.0 installed with the site configuration returned.
    fn installed_1_0_0_with_1_1_0_imported(&self) -> PathBuf {
        self.import("1.0.0");
        self.import("1.1.0");
        let config = self.config("1.0.0");
        self.ok(&[
            "install",
            "--version",
            "1.0.0",
            "--config",
            config.to_str().unwrap(),
        ]);
        config
    }

    /// A site configuration written from the template in the bundle.
    fn config(&self, version: &str) -> PathBuf {
        let model = self.path(&format!(
            "state/bundles/{APP}/{version}/compose/appmodel.yaml"
        ));
        let file = self.path("site-config.yaml");
        let _ = std::fs::remove_file(&file);
        let run = appmodel(
            self.dir.path(),
            &[
                "config",
                "init",
                "-f",
                model.to_str().unwrap(),
                "-o",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("  domain:\n", "  domain: chat.plant.example\n");
        std::fs::write(&file, text).unwrap();
        file
    }

    fn admin_secret(&self) -> String {
        let secrets: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.path(&format!("state/deploy/{APP}/secrets.json"))).unwrap(),
        )
        .unwrap();
        secrets["admin_secret"].as_str().unwrap().to_string()
    }

    /// Runs the sample's probe against im-server on the host port.
    fn probe(&self, state: &str, args: &[&str]) -> std::process::Output {
        Command::new(root().join("samples/im-stack/dist/im-probe"))
            .args([
                "--server",
                "http://127.0.0.1:8080",
                "--admin-secret",
                &self.admin_secret(),
                "--state",
            ])
            .arg(self.path(state))
            .args(["--wait-ready", "30"])
            .args(args)
            .output()
            .unwrap()
    }

    fn probe_ok(&self, state: &str, args: &[&str]) -> String {
        let out = self.probe(state, args);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "im-probe {args:?} failed:\n{text}");
        text
    }

    fn history(&self) -> Vec<(u64, String, String)> {
        let run = self.ok(&["history", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["number"].as_u64().unwrap(),
                    r["version"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn running_version(&self) -> String {
        let run = self.ok(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        for c in v["components"].as_array().unwrap() {
            assert_eq!(c["health"], "healthy", "{v}");
        }
        v["revision"]["version"].as_str().unwrap().to_string()
    }
}

/// im-server's `/version` answer (status line, headers and body).
fn server_version() -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect("127.0.0.1:8080").unwrap();
    s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn h(n: u64, v: &str, s: &str) -> (u64, String, String) {
    (n, v.to_string(), s.to_string())
}

#[test]
fn install_upgrade_rollback_keep_every_acknowledged_message() {
    let Some(w) = World::new(&[]) else { return };
    w.import("1.0.0");
    let config = w.config("1.0.0");
    let run = w.ok(&["install", "--config", config.to_str().unwrap()]);
    assert_eq!(
        run.stdout,
        "installed im-stack 1.0.0: revision 1 (deployed) is running\n"
    );
    assert_eq!(w.running_version(), "1.0.0");
    w.probe_ok("before-upgrade.json", &["write", "60"]);

    w.import("1.1.0");
    let run = w.ok(&["upgrade", "--dry-run"]);
    assert!(
        run.stdout
            .contains("plan: im-stack 1.0.0 (revision 1) -> 1.1.0\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  parameters added: read_receipts\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("dry run: nothing changed\n"));
    assert_eq!(w.history(), [h(1, "1.0.0", "deployed")]);

    let run = w.ok(&["upgrade"]);
    assert!(
        run.stdout
            .ends_with("upgraded im-stack 1.1.0: revision 2 (deployed) is running\n"),
        "{}",
        run.stdout
    );
    assert_eq!(w.running_version(), "1.1.0");
    assert!(server_version().contains("\"version\":\"1.1.0\""));
    let verified = w.probe_ok("before-upgrade.json", &["verify"]);
    assert!(
        verified.contains("verified 60 messages, 0 missing"),
        "{verified}"
    );
    w.probe_ok("after-upgrade.json", &["write", "25"]);

    let run = w.ok(&["rollback"]);
    assert_eq!(
        run.stdout,
        "rolled back im-stack 1.0.0: revision 3 (deployed) is running\n"
    );
    assert_eq!(w.running_version(), "1.0.0");
    assert!(server_version().contains("\"version\":\"1.0.0\""));
    // 1.0.0 runs on the data as it was before the upgrade (1.1.0 migrated it to a format
    // 1.0.0 refuses, so this also proves the snapshot was restored).
    let verified = w.probe_ok("before-upgrade.json", &["verify"]);
    assert!(
        verified.contains("verified 60 messages, 0 missing"),
        "{verified}"
    );
    assert_eq!(
        w.history(),
        [
            h(1, "1.0.0", "superseded"),
            h(2, "1.1.0", "rolled-back"),
            h(3, "1.0.0", "deployed")
        ]
    );

    // Uninstall keeping the data, install again: every message is still there.
    let run = w.ok(&["uninstall", "--keep-data"]);
    assert_eq!(
        run.stdout,
        "uninstalled im-stack 1.0.0 (revision 3); data, snapshots and generated secrets kept\n"
    );
    assert!(containers().is_empty());
    assert!(!volumes().is_empty(), "--keep-data removed the volumes");
    let config = w.config("1.0.0");
    let run = w.ok(&[
        "install",
        "--version",
        "1.0.0",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        run.stdout,
        "installed im-stack 1.0.0: revision 4 (deployed) is running\n"
    );
    let verified = w.probe_ok("before-upgrade.json", &["verify"]);
    assert!(
        verified.contains("verified 60 messages, 0 missing"),
        "{verified}"
    );

    let run = w.ok(&["uninstall"]);
    assert_eq!(
        run.stdout,
        "uninstalled im-stack 1.0.0 (revision 4); data, snapshots and generated secrets removed\n"
    );
    assert!(containers().is_empty());
    assert!(
        volumes().is_empty(),
        "uninstall left volumes: {:?}",
        volumes()
    );
}

#[test]
fn an_upgrade_that_never_becomes_healthy_rolls_back_by_itself() {
    let broken = |text: &str| {
        text.replace("version: 1.1.0", "version: 1.1.1")
            .replace("http: {path: /readyz, port: http}\n      interval: 2s\n      timeout: 2s\n      retries: 15\n    resources: {cpu: 0.5, memory: 256Mi}\n    replicas: 1", "http: {path: /no-such-page, port: http}\n      interval: 1s\n      timeout: 1s\n      retries: 3\n    resources: {cpu: 0.5, memory: 256Mi}\n    replicas: 1")
    };
    let Some(w) = World::new(&[("1.1.1", &broken)]) else {
        return;
    };
    w.import("1.0.0");
    let config = w.config("1.0.0");
    w.ok(&["install", "--config", config.to_str().unwrap()]);
    w.probe_ok("acked.json", &["write", "40"]);
    w.import("1.1.1");
    let run = w.site(&["upgrade", "1.1.1"]);
    run.assert_refused("error: revision 2 failed and was reverted (revision 1 runs again, with its data): component `im-server` did not become healthy");
    assert_eq!(w.running_version(), "1.0.0");
    let verified = w.probe_ok("acked.json", &["verify"]);
    assert!(
        verified.contains("verified 40 messages, 0 missing"),
        "{verified}"
    );
    let history = w.history();
    assert_eq!(history[0], h(1, "1.0.0", "deployed"));
    assert_eq!(history[1], h(2, "1.1.1", "failed"));
}

#[test]
fn a_missing_parameter_and_a_busy_port_are_refused_before_any_container_changes() {
    let Some(w) = World::new(&[]) else { return };
    w.import("1.0.0");
    let config = w.path("incomplete.yaml");
    std::fs::write(&config, "app: im-stack\nparams:\n  max_users: 10\n").unwrap();
    let run = w.site(&["install", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("error: required parameter `domain` is missing\n --> "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("incomplete.yaml:2:1 (params.domain)"),
        "{}",
        run.stderr
    );
    assert!(containers().is_empty());

    let busy = std::net::TcpListener::bind("0.0.0.0:8080").unwrap();
    let config = w.config("1.0.0");
    let run = w.site(&["install", "--config", config.to_str().unwrap()]);
    drop(busy);
    run.assert_refused("preflight failed, nothing was changed:\n  - host port 8080 (component `im-server`, port `http`) is in use by another program");
    assert!(containers().is_empty());
    assert!(w.history().is_empty());
}

#[test]
fn an_upgrade_killed_midway_is_reverted_by_the_next_command() {
    let Some(w) = World::new(&[]) else { return };
    let config = w.installed_1_0_0_with_1_1_0_imported();
    w.probe_ok("acked.json", &["write", "30"]);

    let state = w.path("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args(["upgrade", "--state-dir", state.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the new revision is starting: the old one is stopped, data snapshotted.
    let journal = state.join(format!("deploy/{APP}/journal.json"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("\"starting\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upgrade never reached its start step"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upgrade ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // A dry run reports the interrupted upgrade and leaves it alone.
    let run = w.ok(&["upgrade", "--dry-run"]);
    assert!(
        run.stdout.starts_with("plan: im-stack 1.0.0 (revision 1) -> 1.1.0\n  first: Upgrade to revision 2 was interrupted at step Starting;"),
        "{}",
        run.stdout
    );
    assert!(journal.exists());
    // The next changing command reverts it first: 1.0.0 and its data come back.
    let run = w.site(&["install", "--config", config.to_str().unwrap()]);
    run.assert_refused("`im-stack` is installed already (revision 1, version 1.0.0)");
    assert!(!journal.exists());
    assert_eq!(w.running_version(), "1.0.0");
    let verified = w.probe_ok("acked.json", &["verify"]);
    assert!(
        verified.contains("verified 30 messages, 0 missing"),
        "{verified}"
    );
    let history = w.history();
    assert_eq!(history[0], h(1, "1.0.0", "deployed"));
    assert_eq!(history[1], h(2, "1.1.0", "failed"));
}

#[test]
fn a_new_required_parameter_must_be_supplied_before_an_upgrade_changes_anything() {
    let needs_org = |text: &str| {
        text.replace("version: 1.1.0", "version: 1.2.0").replace(
            "parameters:\n",
            "parameters:\n  - name: organisation\n    type: string\n    required: true\n    description: Name shown to users (new in 1.2.0).\n",
        )
    };
    let Some(w) = World::new(&[("1.2.0", &needs_org)]) else {
        return;
    };
    w.import("1.0.0");
    let config = w.config("1.0.0");
    w.ok(&["install", "--config", config.to_str().unwrap()]);
    let before = containers();
    w.import("1.2.0");
    let run = w.site(&["upgrade", "1.2.0"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("error: required parameter `organisation` is missing\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("error: the site configuration is not valid"),
        "{}",
        run.stderr
    );
    assert_eq!(containers(), before, "no container changed");
    assert_eq!(w.history(), [h(1, "1.0.0", "deployed")]);

    let text = std::fs::read_to_string(&config).unwrap() + "  organisation: Plant North\n";
    std::fs::write(&config, text).unwrap();
    let run = w.ok(&["upgrade", "1.2.0", "--config", config.to_str().unwrap()]);
    assert!(
        run.stdout
            .ends_with("upgraded im-stack 1.2.0: revision 2 (deployed) is running\n"),
        "{}",
        run.stdout
    );
    // The new configuration is kept for the next upgrade.
    let kept = std::fs::read_to_string(
        w.path(&format!("state/deploy/{APP}/revisions/2/site-config.yaml")),
    )
    .unwrap();
    assert!(kept.contains("organisation: Plant North"));
}

impl common::crash::CrashSite for World {
    fn crash(&self, point: &str, args: &[&str]) {
        use std::os::unix::process::ExitStatusExt;
        let state = self.path("state");
        let out = Command::new(env!("CARGO_BIN_EXE_appmodel"))
            .args(args)
            .args(["--state-dir", state.to_str().unwrap()])
            .current_dir(self.dir.path())
            .env("APPMODEL_CRASH_AT", point)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(6),
            "appmodel {args:?} did not crash at `{point}`: {:?}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains(&format!("fault-injection: crashing at `{point}`")),
            "{stderr}"
        );
    }

    fn run(&self, args: &[&str]) -> Run {
        self.site(args)
    }

    fn running_version(&self) -> String {
        World::running_version(self)
    }

    fn journal_exists(&self) -> bool {
        self.path(&format!("state/deploy/{APP}/journal.json"))
            .exists()
    }

    fn probe(&self, args: &[&str]) -> String {
        self.probe_ok("acked.json", args)
    }

    fn config(&self) -> String {
        World::config(self, "1.0.0").to_str().unwrap().to_string()
    }
}

/// Site trust, "every crash point" on the compose form (real Docker): 4 install + 8
/// upgrade + 9 rollback points (tests/common/crash.rs). The test build of `appmodel` has
/// the crash points (the root package's dev-dependency turns `fault-injection` on).
#[test]
fn a_crash_at_every_step_is_finished_or_reverted_by_the_next_command() {
    let Some(w) = World::new(&[]) else { return };
    w.import("1.0.0");
    w.import("1.1.0");
    assert_eq!(common::crash::every_crash_point(&w), 21);
}

/// Regression: site trust defect 8 — out of disk while the data snapshot was taken,
/// `upgrade` left the app down while `status` said "deployed". Now the previous revision
/// starts again at once and the failed one is recorded as failed.
#[test]
fn an_upgrade_that_cannot_snapshot_the_data_reverts_at_once() {
    let Some(w) = World::new(&[]) else { return };
    w.installed_1_0_0_with_1_1_0_imported();
    w.probe_ok("acked.json", &["write", "10"]);
    // A snapshot directory with room for two files only.
    let snaps = w.path(&format!("state/deploy/{APP}/snapshots"));
    let Some(disk) = common::SmallDisk::mount(&snaps, "size=64m,nr_inodes=3") else {
        return;
    };
    let run = w.site(&["upgrade"]);
    drop(disk);
    assert_ne!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("revision 2 failed and was reverted (revision 1 runs again, with its data)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.history(),
        [h(1, "1.0.0", "deployed"), h(2, "1.1.0", "failed")]
    );
    assert_eq!(w.running_version(), "1.0.0");
    let verified = w.probe_ok("acked.json", &["verify"]);
    assert!(
        verified.contains("verified 10 messages, 0 missing"),
        "{verified}"
    );
}

/// The model's requirements of 1.1.1 (a minimum this host fails), 1.1.2 (two warnings, a
/// file and a service on the network, all met) and 1.1.3 (a strict kernel minimum).
fn with_requirements(requirements: String) -> impl Fn(&str) -> String {
    move |text: &str| {
        // In place of the sample's own, the last section of its model.
        let start = text.find("\nrequirements:\n").unwrap();
        format!("{}\nrequirements:\n{requirements}", &text[..start])
    }
}

#[test]
fn preflight_reads_the_host_and_stops_a_change_before_anything_changes() {
    // A service on the site's network the vendor's check looks for.
    let ldap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ldap_port = ldap.local_addr().unwrap().port();
    let fails = with_requirements("  cpus: {fail: 100000}\n".into());
    let warns = with_requirements(format!(
        "  cpus: {{warn: 100000, fail: 1}}\n  memory: {{fail: 1Mi}}\n  kernel: {{fail: '2.6'}}\n  engine: {{fail: '1.0'}}\n  compose: {{fail: '1.0'}}\n  disk: {{warn: 1000Ti, fail: 1Ki}}\n  checks:\n    - {{name: ca-bundle, file: /proc/self/status}}\n    - {{name: ldap, tcp: '127.0.0.1:{ldap_port}', fix: start the directory server}}\n"
    ));
    let strict = with_requirements("  kernel: {fail: '999.0', strict: true}\n".into());
    let Some(w) = World::new(&[("1.1.1", &fails), ("1.1.2", &warns), ("1.1.3", &strict)]) else {
        return;
    };
    // The disc's bundle against this host before anything is imported: verified (no key
    // is pinned yet, so its signature fails), the form's own checks left for a directory.
    let tar = w.path("im-stack-1.1.2.tar");
    let run = w.site(&["preflight", tar.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let verdict = |r: &serde_json::Value, name: &str| {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["result"].as_str().unwrap().to_string())
    };
    assert_eq!(r["version"], "1.1.2");
    assert_eq!(verdict(&r, "signature").as_deref(), Some("fail"), "{r}");
    assert_eq!(verdict(&r, "cpus").as_deref(), Some("warn"), "{r}");
    assert_eq!(verdict(&r, "host"), None, "{r}");
    assert!(
        !w.path("state/bundles/im-stack").exists(),
        "nothing imported"
    );

    for v in ["1.1.1", "1.1.2", "1.1.3"] {
        w.import(v);
    }
    // A bundle directory (a mounted disc), now that the vendor's key is pinned.
    let disc = w.path("disc-1.1.2");
    std::fs::create_dir(&disc).unwrap();
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&disc)
        .status()
        .unwrap();
    assert!(untar.success());
    let run = w.ok(&["preflight", disc.to_str().unwrap(), "--json"]);
    let r: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(verdict(&r, "signature").as_deref(), Some("pass"), "{r}");
    assert_eq!(verdict(&r, "host").as_deref(), Some("pass"), "{r}");
    assert_eq!(verdict(&r, "ldap").as_deref(), Some("pass"), "{r}");

    let config = w.config("1.1.2");
    let config = config.to_str().unwrap();

    // Every check, cheapest first, each with what it found.
    let run = w.ok(&["preflight", "1.1.2", "--config", config, "--json"]);
    let checks: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let verdicts: Vec<(String, String)> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("signature", "pass"),
        ("architecture", "pass"),
        ("cpus", "warn"),
        ("memory", "pass"),
        ("kernel", "pass"),
        ("engine", "pass"),
        ("compose", "pass"),
        ("disk", "warn"),
        ("host", "pass"),
        ("ca-bundle", "pass"),
        ("ldap", "pass"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(verdicts, expected, "{}", run.stdout);
    let run = w.ok(&["preflight", "1.1.2", "--config", config]);
    assert!(run.stdout.contains("CHECK"), "{}", run.stdout);
    assert!(run.stdout.contains("disk "), "{}", run.stdout);

    // A port held by a real listener and a network service that is down: both fail.
    drop(ldap);
    let busy = std::net::TcpListener::bind("0.0.0.0:8080").unwrap();
    let run = w.site(&["preflight", "1.1.2", "--config", config]);
    run.assert_refused("a preflight check failed");
    assert!(run.stdout.contains("host port 8080"), "{}", run.stdout);
    assert!(
        run.stdout.contains("fix: start the directory server"),
        "{}",
        run.stdout
    );
    drop(busy);

    // A failed minimum stops the install before any container exists.
    let run = w.site(&["preflight", "1.1.1", "--config", config]);
    run.assert_refused("a preflight check failed");
    let run = w.site(&["install", "--version", "1.1.1", "--config", config]);
    run.assert_refused("preflight failed, nothing was changed");
    assert!(run.stderr.contains("`cpus`: found"), "{}", run.stderr);
    assert!(containers().is_empty());
    // A strict one cannot be waived.
    let run = w.site(&[
        "install",
        "--version",
        "1.1.3",
        "--config",
        config,
        "--ignore-check",
        "kernel",
    ]);
    run.assert_refused("preflight check `kernel` is strict");
    assert!(containers().is_empty());

    // Waived, the install goes ahead and history says it was ignored, not passed.
    w.ok(&[
        "install",
        "--version",
        "1.1.1",
        "--config",
        config,
        "--ignore-check",
        "cpus",
    ]);
    // Warnings do not stop an upgrade; history keeps them. (The directory server is back.)
    let _ldap = std::net::TcpListener::bind(("127.0.0.1", ldap_port)).unwrap();
    let run = w.ok(&["upgrade", "1.1.2"]);
    assert!(run.stderr.contains("preflight `cpus`"), "{}", run.stderr);
    let run = w.ok(&["history", "--json"]);
    let history: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let waivers = history[0]["waivers"].to_string();
    assert!(
        waivers.contains("`cpus`") && waivers.contains("ignored with --ignore-check"),
        "{waivers}"
    );
    let warnings = history[1]["warnings"].to_string();
    assert!(
        warnings.contains("`cpus`") && warnings.contains("`disk`"),
        "{warnings}"
    );
}
