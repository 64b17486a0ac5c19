//! The systemd form end to end under real systemd with no network: a "site host" container
//! (Debian bookworm rootfs from mmdebstrap, systemd as PID 1, `--network none`) gets the
//! bundles copied in as if from a disc and runs the appmodel executable from the bundle:
//! import -> install -> probe-write -> upgrade -> probe-verify -> rollback -> probe-verify,
//! automatic rollback of an unhealthy upgrade, and recovery after `kill -9` of an upgrade.
//! The sample's real programs run as hardened units with dynamic users.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::engines::{require, sample_built, static_tool};
use common::{root, ModelEdit, Run};

/// One site host at a time: the machine has two cores.
static HOSTS: Mutex<()> = Mutex::new(());

const APP: &str = "im-stack";
const IMAGE: &str = "site-host:bookworm";
const STATE: &str = "/var/lib/appmodel";

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().unwrap()
}

/// The site-host image, built once per machine (mmdebstrap + `docker import`).
fn site_image() -> bool {
    if !require("docker") {
        return false;
    }
    if !common::engines::needs(
        docker(&["info"]).status.success(),
        "a Docker engine that answers",
        "scripts/setup.sh starts dockerd",
    ) {
        return false;
    }
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return true;
    }
    if !require("mmdebstrap") {
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    let out = Command::new("mmdebstrap")
        .args([
            "--variant=minbase",
            "--include=systemd,systemd-sysv,dbus,ca-certificates",
            "bookworm",
        ])
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mmdebstrap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = docker(&["import", rootfs.to_str().unwrap(), IMAGE]);
    assert!(
        out.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// A running site host. Removed when dropped.
struct Host {
    name: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

impl Host {
    fn start(tag: &str) -> Host {
        let name = format!("appmodel-site-{tag}-{}", std::process::id());
        let _ = docker(&["rm", "-f", &name]);
        let out = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--cap-add",
            "SYS_ADMIN",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "--tmpfs",
            "/tmp",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            IMAGE,
            "/lib/systemd/systemd",
        ]);
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let host = Host { name };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = host.sh("systemctl is-system-running || true").stdout;
            if matches!(state.trim(), "running" | "degraded") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "systemd in the site host did not come up: {state}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        host
    }

    fn exec(&self, args: &[&str]) -> Run {
        let out = Command::new("docker")
            .arg("exec")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn sh(&self, script: &str) -> Run {
        self.exec(&["sh", "-c", script])
    }

    fn copy_out(&self, src: &str, dst: &Path) {
        let out = docker(&["cp", &format!("{}:{src}", self.name), dst.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "docker cp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `VAR`'s value in the environment of `unit`'s running process.
    fn unit_env(&self, unit: &str, var: &str) -> String {
        let run = self.sh(&format!(
            "pid=$(systemctl show -p MainPID --value {unit}) && tr '\\0' '\\n' < /proc/$pid/environ | sed -n 's/^{var}=//p'"
        ));
        assert_eq!(run.code, 0, "{}", run.transcript());
        run.stdout.trim().to_string()
    }

    fn copy_in(&self, src: &Path, dst: &str) {
        let out = docker(&["cp", src.to_str().unwrap(), &format!("{}:{dst}", self.name)]);
        assert!(
            out.status.success(),
            "docker cp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct World {
    dir: tempfile::TempDir,
    host: Host,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl World {
    /// Publishes the sample (and `extra` model variants), exports systemd bundles and starts a
    /// site host with the sample's probe in it.
    fn new(tag: &str, extra: &[(&str, &ModelEdit)]) -> Option<World> {
        let guard = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
        if !site_image() || !sample_built(&root()) {
            return None;
        }
        let tool = static_tool()?;
        let dir = tempfile::tempdir().unwrap();
        common::publish_and_export_sample(dir.path(), "systemd", &tool, extra);
        let host = Host::start(tag);
        host.copy_in(
            &root().join("samples/im-stack/dist/im-probe"),
            "/usr/local/bin/im-probe",
        );
        Some(World {
            dir,
            host,
            _guard: guard,
        })
    }

    /// Copies a bundle in and unpacks it as a disc would present it: `/media/disc-VERSION`.
    fn disc(&self, version: &str) -> String {
        let disc = format!("/media/disc-{version}");
        self.host.copy_in(
            &self.dir.path().join(format!("im-stack-{version}.tar")),
            "/root/",
        );
        let run = self.host.sh(&format!(
            "mkdir -p {disc} && tar -xf /root/im-stack-{version}.tar -C {disc}"
        ));
        assert_eq!(run.code, 0, "{}", run.transcript());
        disc
    }

    /// Runs the appmodel from a disc inside the site host.
    fn site(&self, disc: &str, args: &[&str]) -> Run {
        let tool = format!("{disc}/appmodel");
        let mut all = vec![tool.as_str()];
        all.extend(args);
        self.host.exec(&all)
    }

    fn ok(&self, disc: &str, args: &[&str]) -> Run {
        let run = self.site(disc, args);
        assert_eq!(run.code, 0, "appmodel {args:?}:\n{}", run.transcript());
        run
    }

    /// Imports the bundle of `version` from its disc; returns the disc.
    fn import(&self, version: &str) -> String {
        let disc = self.disc(version);
        self.host
            .copy_in(&self.dir.path().join("vendor.pub"), "/root/");
        self.ok(&disc, &["import", &disc, "--trust-key", "/root/vendor.pub"]);
        disc
    }

    /// A site configuration written from the model on the disc.
    fn config(&self, disc: &str) -> &'static str {
        let file = "/root/site-config.yaml";
        self.host.sh(&format!("rm -f {file}"));
        self.ok(
            disc,
            &[
                "config",
                "init",
                "-f",
                &format!("{disc}/appmodel.yaml"),
                "-o",
                file,
            ],
        );
        let run = self.host.sh(&format!(
            "sed -i 's/^  domain:$/  domain: chat.plant.example/' {file} && grep -q 'domain: chat.plant.example' {file}"
        ));
        assert_eq!(run.code, 0, "{}", run.transcript());
        file
    }

    fn admin_secret(&self) -> String {
        let run = self
            .host
            .exec(&["cat", &format!("{STATE}/deploy/{APP}/secrets.json")]);
        let secrets: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        secrets["admin_secret"].as_str().unwrap().to_string()
    }

    /// Runs the sample's probe against im-server inside the site host.
    fn probe_ok(&self, state: &str, args: &[&str]) -> String {
        let secret = self.admin_secret();
        let state = format!("/root/{state}");
        let mut all = vec![
            "im-probe",
            "--server",
            "http://127.0.0.1:8080",
            "--admin-secret",
            &secret,
            "--state",
            &state,
            "--wait-ready",
            "30",
        ];
        all.extend(args);
        let run = self.host.exec(&all);
        assert_eq!(
            run.code,
            0,
            "im-probe {args:?} failed:\n{}",
            run.transcript()
        );
        run.stdout + &run.stderr
    }

    fn history(&self, disc: &str) -> Vec<(u64, String, String)> {
        let run = self.ok(disc, &["history", "--json"]);
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

    /// The running version; every component must be healthy.
    fn running_version(&self, disc: &str) -> String {
        let run = self.ok(disc, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        for c in v["components"].as_array().unwrap() {
            assert_eq!(c["health"], "healthy", "{v}");
        }
        v["revision"]["version"].as_str().unwrap().to_string()
    }

    /// im-server's `/version` answer, fetched inside the site host.
    fn server_version(&self) -> String {
        let run = self.host.exec(&[
            "bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/8080; printf 'GET /version HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3",
        ]);
        run.stdout
    }

    fn current_release(&self) -> String {
        self.host
            .exec(&["readlink", &format!("/opt/appmodel/{APP}/current")])
            .stdout
            .trim()
            .to_string()
    }
}

fn h(n: u64, v: &str, s: &str) -> (u64, String, String) {
    (n, v.to_string(), s.to_string())
}

#[test]
fn install_upgrade_rollback_keep_every_acknowledged_message() {
    let Some(w) = World::new("flow", &[]) else {
        return;
    };
    let disc1 = w.import("1.0.0");
    let config = w.config(&disc1);
    let run = w.ok(&disc1, &["install", "--config", config]);
    assert_eq!(
        run.stdout,
        "installed im-stack 1.0.0: revision 1 (deployed) is running\n"
    );
    assert_eq!(w.running_version(&disc1), "1.0.0");
    assert_eq!(w.current_release(), "releases/1.0.0");
    // The units run as dynamic users in a sandbox, and the app starts at boot.
    let run = w.host.sh(&format!(
        "systemctl show -p User,DynamicUser,ProtectSystem {APP}-im-store.service; systemctl is-enabled {APP}.target"
    ));
    assert!(
        run.stdout.contains("DynamicUser=yes\n") && run.stdout.contains("ProtectSystem=strict\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("enabled\n"), "{}", run.stdout);
    for c in ["im-store", "push-service", "im-server"] {
        let unit = format!("{APP}-{c}.service");
        let run = w
            .host
            .exec(&["systemd-analyze", "security", "--no-pager", &unit]);
        let exposure: f64 = run
            .stdout
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", run.transcript()));
        eprintln!("{unit}: exposure {exposure} (running)");
        assert!(exposure <= 2.5, "{unit}: {exposure}\n{}", run.stdout);
    }
    w.probe_ok("before-upgrade.json", &["write", "60"]);
    // im-store writes where the model says (/var/lib/im-store), which is its StateDirectory.
    let run = w.host.exec(&[
        "cat",
        &format!("/var/lib/private/{APP}/im-store-data/FORMAT"),
    ]);
    assert_eq!(run.stdout.trim(), "1", "{}", run.transcript());

    let disc2 = w.import("1.1.0");
    let run = w.ok(&disc2, &["upgrade", "--events", "/root/events.jsonl"]);
    assert!(
        run.stdout
            .ends_with("upgraded im-stack 1.1.0: revision 2 (deployed) is running\n"),
        "{}",
        run.stdout
    );
    // Every step, as data: what a script or the console follows.
    let events: Vec<serde_json::Value> = w
        .host
        .exec(&["cat", "/root/events.jsonl"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "begin",
            "stopping",
            "snapshotted",
            "starting",
            "healthy",
            "healthy",
            "starting",
            "healthy",
            "done"
        ],
        "{events:?}"
    );
    assert_eq!(events[0]["version"], "1.1.0");
    assert_eq!(events[8]["status"], "deployed");
    assert_eq!(w.running_version(&disc2), "1.1.0");
    assert_eq!(w.current_release(), "releases/1.1.0");
    let verified = w.probe_ok("before-upgrade.json", &["verify"]);
    assert!(
        verified.contains("verified 60 messages, 0 missing"),
        "{verified}"
    );
    w.probe_ok("after-upgrade.json", &["write", "25"]);

    let run = w.ok(&disc2, &["rollback"]);
    assert_eq!(
        run.stdout,
        "rolled back im-stack 1.0.0: revision 3 (deployed) is running\n"
    );
    assert_eq!(w.running_version(&disc2), "1.0.0");
    assert_eq!(w.current_release(), "releases/1.0.0");
    // 1.0.0 runs on the data as it was before the upgrade (1.1.0 migrated it to a format
    // 1.0.0 refuses, so this also proves the snapshot was restored).
    let verified = w.probe_ok("before-upgrade.json", &["verify"]);
    assert!(
        verified.contains("verified 60 messages, 0 missing"),
        "{verified}"
    );
    assert_eq!(
        w.history(&disc2),
        [
            h(1, "1.0.0", "superseded"),
            h(2, "1.1.0", "rolled-back"),
            h(3, "1.0.0", "deployed")
        ]
    );

    // Uninstall keeping the data: units and releases go, the data stays; installed
    // again, every message is still there.
    let run = w.ok(&disc2, &["uninstall", "--keep-data"]);
    assert_eq!(
        run.stdout,
        "uninstalled im-stack 1.0.0 (revision 3); data, snapshots and generated secrets kept\n"
    );
    let run = w.host.sh(&format!(
        "ls /etc/systemd/system/{APP}* 2>/dev/null; systemctl is-active {APP}-im-server.service; find /opt/appmodel /var/lib/private -mindepth 1 -maxdepth 1"
    ));
    assert_eq!(
        run.stdout,
        format!("inactive\n/var/lib/private/{APP}\n"),
        "{}",
        run.transcript()
    );
    let run = w.ok(
        &disc2,
        &["install", "--version", "1.0.0", "--config", config],
    );
    assert_eq!(
        run.stdout,
        "installed im-stack 1.0.0: revision 4 (deployed) is running\n"
    );
    let verified = w.probe_ok("before-upgrade.json", &["verify"]);
    assert!(
        verified.contains("verified 60 messages, 0 missing"),
        "{verified}"
    );

    let run = w.ok(&disc2, &["uninstall"]);
    assert_eq!(
        run.stdout,
        "uninstalled im-stack 1.0.0 (revision 4); data, snapshots and generated secrets removed\n"
    );
    let run = w.host.sh(&format!(
        "ls /etc/systemd/system/{APP}* 2>/dev/null; systemctl is-active {APP}-im-server.service; find /opt/appmodel /var/lib/private -mindepth 1 -maxdepth 1"
    ));
    assert_eq!(run.stdout, "inactive\n", "{}", run.transcript());
}

/// 1.2.0 must be reached through 1.1.0 (`upgrade_from`), and gives im-server a config file
/// holding the admin secret: 0640 root:<group>, read by the dynamic user through that
/// group only.
#[test]
fn a_skipped_version_is_refused_and_a_secret_config_file_is_readable_by_its_service_only() {
    let with_secret = |text: &str| {
        text.replace("  version: 1.1.0\n", "  version: 1.2.0\n  upgrade_from: \">=1.1.0\"\n")
            .replace(
                "    replicas: 1\n    depends_on: [im-store, push-service]",
                "    replicas: 1\n    volumes:\n      - {name: gateway, kind: config, path: /etc/im/gateway.conf, content: \"key=${params.admin_secret}\\n\"}\n    depends_on: [im-store, push-service]",
            )
    };
    let Some(w) = World::new("secret", &[("1.2.0", &with_secret)]) else {
        return;
    };
    let disc1 = w.import("1.0.0");
    let disc2 = w.import("1.1.0");
    let disc3 = w.import("1.2.0");
    let config = w.config(&disc1);
    w.ok(
        &disc1,
        &["install", "--version", "1.0.0", "--config", config],
    );
    let run = w.site(&disc3, &["upgrade", "1.2.0"]);
    run.assert_refused("error: im-stack 1.2.0 can only be reached from versions `>=1.1.0`, and 1.0.0 runs now: install the versions in between first");
    assert_eq!(w.running_version(&disc3), "1.0.0");
    assert_eq!(w.history(&disc3), [h(1, "1.0.0", "deployed")]);
    w.ok(&disc2, &["upgrade", "1.1.0"]);
    w.ok(&disc3, &["upgrade", "1.2.0"]);
    assert_eq!(w.running_version(&disc3), "1.2.0");

    // A new configuration alone reconfigures the running version, and its plan names the
    // value and exactly the component that uses it; the dry run changes nothing.
    let run = w.host.sh(&format!(
        "sed 's/^  max_users: 100$/  max_users: 250/' {config} > /root/more-users.yaml && grep -q 'max_users: 250' /root/more-users.yaml"
    ));
    assert_eq!(run.code, 0, "{}", run.transcript());
    let more = ["upgrade", "--config", "/root/more-users.yaml"];
    let run = w.ok(&disc3, &[&more[..], &["--dry-run"]].concat());
    assert_eq!(
        run.stdout,
        "plan: im-stack 1.2.0 (revision 3) -> 1.2.0\n  values changed: max_users\n  definition changes: im-server\ndry run: nothing changed\n",
        "{}",
        run.transcript()
    );
    assert_eq!(w.history(&disc3).len(), 3);
    let run = w.ok(&disc3, &more);
    assert!(
        run.stdout
            .ends_with("upgraded im-stack 1.2.0: revision 4 (deployed) is running\n"),
        "{}",
        run.transcript()
    );
    let run = w.host.sh(&format!(
        "grep -h MAX_USERS /opt/appmodel/{APP}/current/env/im-server.env"
    ));
    assert!(run.stdout.contains("250"), "{}", run.transcript());
    // A rollback's plan says what happens to the data.
    let run = w.ok(&disc3, &["rollback", "--dry-run"]);
    assert!(
        run.stdout.contains("  data: the data goes back to revision 3's snapshot: what was written since then is replaced; the data as it is now is kept in revision 4's snapshot\n"),
        "{}",
        run.transcript()
    );
    assert_eq!(w.history(&disc3).len(), 4);

    let group = "appmodel-im-stack-im-server";
    let file = "/opt/appmodel/im-stack/current/config/im-server/gateway";
    let run = w.host.sh(&format!(
        "stat -L -c '%a %U %G' {file}; getent group {group} | cut -d: -f1; cat /etc/sysusers.d/appmodel-{APP}.conf"
    ));
    assert_eq!(
        run.stdout,
        format!("640 root {group}\n{group}\n# {APP}: groups that may read config files holding a secret, written by appmodel.\ng {group} -\n"),
        "{}",
        run.transcript()
    );
    // The running service (its unit binds the file read-only where the model put it) holds
    // the group beside its dynamic one; its user and groups can read the file, the same
    // user without them cannot. (The site host may not enter the service's namespace.)
    let secret = w.admin_secret();
    let read = |groups: &str| {
        w.host.sh(&format!(
            "pid=$(systemctl show -p MainPID --value {APP}-im-server.service); \
             uid=$(awk '/^Uid:/ {{print $2}}' /proc/$pid/status); \
             gid=$(awk '/^Gid:/ {{print $2}}' /proc/$pid/status); \
             groups=$(awk '/^Groups:/ {{$1=\"\"; gsub(/^ | $/, \"\"); gsub(/ /, \",\"); print}}' /proc/$pid/status); \
             case \",$groups,\" in *,$(getent group {group} | cut -d: -f3),*) ;; *) echo \"groups: $groups\"; exit 3;; esac; \
             setpriv --reuid=$uid --regid=$gid {groups} cat {file}"
        ))
    };
    let run = read("--groups=$groups");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.stdout, format!("key={secret}\n"));
    let run = read("--clear-groups");
    assert_ne!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr.contains("Permission denied"),
        "{}",
        run.transcript()
    );

    w.ok(&disc3, &["uninstall"]);
    let run = w
        .host
        .sh(&format!("ls /etc/sysusers.d/appmodel-{APP}.conf"));
    assert_ne!(run.code, 0, "{}", run.transcript());
}

#[test]
fn an_upgrade_that_never_becomes_healthy_rolls_back_by_itself() {
    let broken = |text: &str| {
        text.replace("version: 1.1.0", "version: 1.1.1")
            .replace("http: {path: /readyz, port: http}\n      interval: 2s\n      timeout: 2s\n      retries: 15\n    resources: {cpu: 0.5, memory: 256Mi}\n    replicas: 1", "http: {path: /no-such-page, port: http}\n      interval: 1s\n      timeout: 1s\n      retries: 3\n    resources: {cpu: 0.5, memory: 256Mi}\n    replicas: 1")
    };
    let Some(w) = World::new("broken", &[("1.1.1", &broken)]) else {
        return;
    };
    let disc1 = w.import("1.0.0");
    let config = w.config(&disc1);
    w.ok(&disc1, &["install", "--config", config]);
    w.probe_ok("acked.json", &["write", "40"]);
    let disc2 = w.import("1.1.1");
    let run = w.site(&disc2, &["upgrade", "1.1.1"]);
    run.assert_refused("error: revision 2 failed and was reverted (revision 1 runs again, with its data): component `im-server` did not become healthy");
    assert_eq!(w.running_version(&disc2), "1.0.0");
    assert_eq!(w.current_release(), "releases/1.0.0");
    assert!(
        w.server_version().contains("1.0.0"),
        "{}",
        w.server_version()
    );
    let verified = w.probe_ok("acked.json", &["verify"]);
    assert!(
        verified.contains("verified 40 messages, 0 missing"),
        "{verified}"
    );
    let history = w.history(&disc2);
    assert_eq!(history[0], h(1, "1.0.0", "deployed"));
    assert_eq!(history[1], h(2, "1.1.1", "failed"));
}

#[test]
fn an_upgrade_killed_midway_is_reverted_by_the_next_command() {
    let Some(w) = World::new("killed", &[]) else {
        return;
    };
    let disc1 = w.import("1.0.0");
    let disc2 = w.import("1.1.0");
    let config = w.config(&disc1);
    w.ok(
        &disc1,
        &["install", "--version", "1.0.0", "--config", config],
    );
    w.probe_ok("acked.json", &["write", "30"]);

    // Kill the upgrade (by its process id) once the new revision is starting: the old one is
    // stopped and its data snapshotted.
    let journal = format!("{STATE}/deploy/{APP}/journal.json");
    let run = w.host.sh(&format!(
        "{disc2}/appmodel upgrade >/tmp/upgrade.log 2>&1 & pid=$!; \
         until grep -qs '\"starting\"' {journal}; do \
           kill -0 $pid 2>/dev/null || {{ echo ended; exit 1; }}; \
         done; \
         kill -9 $pid; echo killed"
    ));
    assert_eq!(run.stdout.trim(), "killed", "{}", run.transcript());

    // A dry run reports the interrupted upgrade and leaves it alone.
    let run = w.ok(&disc2, &["upgrade", "--dry-run"]);
    assert!(
        run.stdout.starts_with("plan: im-stack 1.0.0 (revision 1) -> 1.1.0\n  first: Upgrade to revision 2 was interrupted at step Starting;"),
        "{}",
        run.stdout
    );
    assert_eq!(w.host.exec(&["test", "-e", &journal]).code, 0);
    // The next changing command reverts it first: 1.0.0 and its data come back.
    let run = w.site(&disc2, &["install", "--config", config]);
    run.assert_refused("`im-stack` is installed already (revision 1, version 1.0.0)");
    assert_eq!(w.host.exec(&["test", "-e", &journal]).code, 1);
    assert_eq!(w.running_version(&disc2), "1.0.0");
    assert_eq!(w.current_release(), "releases/1.0.0");
    let verified = w.probe_ok("acked.json", &["verify"]);
    assert!(
        verified.contains("verified 30 messages, 0 missing"),
        "{verified}"
    );
    let history = w.history(&disc2);
    assert_eq!(history[0], h(1, "1.0.0", "deployed"));
    assert_eq!(history[1], h(2, "1.1.0", "failed"));
}

/// The crash-point matrix on a systemd site host: crashes run a static build with crash
/// points, everything else the appmodel shipped on the discs.
struct CrashHost<'w> {
    w: &'w World,
    disc1: String,
    disc2: String,
}

impl common::crash::CrashSite for CrashHost<'_> {
    fn crash(&self, point: &str, args: &[&str]) {
        let env = format!("APPMODEL_CRASH_AT={point}");
        let mut all = vec!["env", env.as_str(), "/usr/local/bin/appmodel-crash"];
        all.extend(args);
        let run = self.w.host.exec(&all);
        assert_eq!(
            run.code,
            134,
            "appmodel {args:?} did not crash at `{point}`:\n{}",
            run.transcript()
        );
        assert!(
            run.stderr
                .contains(&format!("fault-injection: crashing at `{point}`")),
            "{}",
            run.transcript()
        );
    }

    fn run(&self, args: &[&str]) -> Run {
        self.w.site(&self.disc2, args)
    }

    fn running_version(&self) -> String {
        self.w.running_version(&self.disc2)
    }

    fn journal_exists(&self) -> bool {
        self.w
            .host
            .sh(&format!("test -e {STATE}/deploy/{APP}/journal.json"))
            .code
            == 0
    }

    fn probe(&self, args: &[&str]) -> String {
        self.w.probe_ok("acked.json", args)
    }

    fn config(&self) -> String {
        self.w.config(&self.disc1).to_string()
    }
}

/// Site trust, "every crash point" on the systemd form (real systemd, no network): 4
/// install + 8 upgrade + 9 rollback points (tests/common/crash.rs).
#[test]
fn a_crash_at_every_step_is_finished_or_reverted_by_the_next_command() {
    let Some(w) = World::new("crash", &[]) else {
        return;
    };
    let Some(tool) = common::engines::crash_tool() else {
        return;
    };
    w.host.copy_in(&tool, "/usr/local/bin/appmodel-crash");
    let disc1 = w.import("1.0.0");
    let disc2 = w.import("1.1.0");
    let site = CrashHost {
        w: &w,
        disc1,
        disc2,
    };
    assert_eq!(common::crash::every_crash_point(&site), 21);
}

/// The sample's 1.2.0 (plans, a trial) with no warn or grace days, so a licence that ends
/// in a minute stops the app a minute later.
fn licensed_model(_: &str) -> String {
    std::fs::read_to_string(root().join("samples/im-stack/versions/1.2.0/appmodel.yaml"))
        .unwrap()
        .replace("warn_days: 30", "warn_days: 0")
        .replace("grace_days: 14", "grace_days: 0")
}

const LICENCE_TIMER: &str = "appmodel-licence-im-stack";

#[test]
fn a_licence_binds_to_its_host_its_end_stops_the_units_on_schedule_and_a_copy_is_refused() {
    let Some(w) = World::new("licence", &[("1.2.0", &licensed_model)]) else {
        return;
    };
    let disc = w.import("1.2.0");
    let config = w.config(&disc);
    w.ok(&disc, &["install", "--config", config]);
    let server = format!("{APP}-im-server.service");
    // Unlicensed, the model's trial runs the standard plan; the install set up the check.
    let status = |w: &World, disc: &str| -> serde_json::Value {
        serde_json::from_str(&w.ok(disc, &["license", "status", "--json"]).stdout).unwrap()
    };
    let s = status(&w, &disc);
    assert_eq!(
        (s["stage"].as_str(), s["plan"].as_str()),
        (Some("trial"), Some("standard")),
        "{s}"
    );
    assert_eq!(w.host.unit_env(&server, "IM_MAX_USERS"), "100");
    let run = w.host.sh(&format!(
        "systemctl is-enabled {LICENCE_TIMER}.timer; systemctl is-active {LICENCE_TIMER}.timer; systemctl cat {LICENCE_TIMER}.service"
    ));
    assert!(
        run.stdout.starts_with("enabled\nactive\n"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout
            .contains(&format!("license check --app {APP} --state-dir {STATE}")),
        "{}",
        run.stdout
    );

    // request -> issue (vendor side, outside the host) -> activate.
    w.ok(&disc, &["license", "request", "-o", "/root/site.req"]);
    w.host
        .copy_out("/root/site.req", &w.dir.path().join("site.req"));
    let issue = |name: &str, expires: &str| {
        let key = root().join("samples/im-stack/licensing/licensing.key");
        let out = w.dir.path().join(name);
        let store = w.dir.path().join("store");
        let run = common::appmodel(
            w.dir.path(),
            &[
                "license",
                "issue",
                "--request",
                "site.req",
                "--plan",
                "pro",
                "--expires",
                expires,
                "--customer",
                "ACME Energy",
                "--key",
                key.to_str().unwrap(),
                "--store",
                store.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        w.host.copy_in(&out, "/root/");
        format!("/root/{name}")
    };
    let now = || appmodel_licence::now();
    let ends = now() + 45;
    let short = issue("short.lic", &appmodel_model::record::rfc3339(ends));
    let run = w.ok(&disc, &["license", "activate", &short, "--json"]);
    let a: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(a["acted"], "reconfigured", "{a}");
    assert_eq!(a["plan"], "pro", "{a}");
    assert_eq!(w.host.unit_env(&server, "IM_MAX_USERS"), "1000");
    w.probe_ok("licensed.json", &["write", "20"]);

    // The licence ends; the timer's check (run now, as the timer would) stops every unit
    // and keeps the data.
    while now() <= ends {
        std::thread::sleep(Duration::from_secs(1));
    }
    let run = w
        .host
        .sh(&format!("systemctl start {LICENCE_TIMER}.service"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    let s = status(&w, &disc);
    assert_eq!(s["stage"], "stopped", "{s}");
    assert_eq!(s["stopped"], true, "{s}");
    for c in ["im-store", "push-service", "im-server"] {
        let run = w.host.sh(&format!("systemctl is-active {APP}-{c}.service"));
        assert_ne!(
            run.stdout.trim(),
            "active",
            "{c} still runs: {}",
            run.transcript()
        );
    }
    let run = w.host.exec(&[
        "cat",
        &format!("/var/lib/private/{APP}/im-store-data/FORMAT"),
    ]);
    assert_eq!(run.code, 0, "the data went: {}", run.transcript());
    let run = w.site(&disc, &["rollback"]);
    run.assert_refused("licence");

    // A renewal starts it again with every message; the ended licence is older and refused.
    let renewal = issue("renewal.lic", "2036-12-31");
    let run = w.ok(&disc, &["license", "activate", &renewal, "--json"]);
    let a: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(a["acted"], "started", "{a}");
    assert_eq!(w.running_version(&disc), "1.2.0");
    w.probe_ok("licensed.json", &["verify"]);
    w.site(&disc, &["license", "activate", &short])
        .assert_refused("older than the active sequence");

    // The whole install (state, data, units, disc) copied onto a second host: same
    // hardware, another machine-id. The licence does not hold there.
    let run = w.host.sh(
        "tar -cpf /root/copy.tar /var/lib/appmodel /var/lib/private /opt/appmodel /media \
         /etc/systemd/system/im-stack* /etc/systemd/system/appmodel-* \
         /etc/systemd/system/timers.target.wants /etc/systemd/system/multi-user.target.wants /root/renewal.lic",
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    w.host
        .copy_out("/root/copy.tar", &w.dir.path().join("copy.tar"));
    let copy = Host::start("licence-copy");
    copy.copy_in(&w.dir.path().join("copy.tar"), "/root/");
    let run = copy.sh("tar -xpf /root/copy.tar -C / && systemctl daemon-reload");
    assert_eq!(run.code, 0, "{}", run.transcript());
    let ids = |h: &Host| h.exec(&["cat", "/etc/machine-id"]).stdout;
    assert_ne!(ids(&w.host), ids(&copy));
    let tool = format!("{disc}/appmodel");
    let run = copy.exec(&[&tool, "license", "status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let s: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(s["stage"], "stopped", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("bound to another host (changed: machine-id"),
        "{s}"
    );
    copy.exec(&[&tool, "license", "activate", "/root/renewal.lic"])
        .assert_refused("is bound to another host");
    copy.exec(&[&tool, "rollback"]).assert_refused("licence");
    // Started by hand past appmodel, the copied units run until the scheduled check stops them.
    let run = copy.sh(&format!(
        "systemctl start {APP}.target && for i in $(seq 100); do systemctl is-active -q {server} && exit 0; sleep 0.2; done; exit 1"
    ));
    assert_eq!(
        run.code,
        0,
        "the copy did not start by hand: {}",
        run.transcript()
    );
    let run = copy.sh(&format!(
        "systemctl start {LICENCE_TIMER}.service; systemctl is-active {server}"
    ));
    assert_ne!(run.stdout.trim(), "active", "{}", run.transcript());
    // The original host keeps its licence.
    assert_eq!(status(&w, &disc)["stage"], "valid");
}

/// The disc edition on a host with no network: the ISO image is the only input. On the
/// test side xorriso takes the appmodel and the model off the image (what mounting the
/// disc gives a site); in the site host that appmodel imports the image as a file and
/// installs from it.
#[test]
fn an_iso_image_alone_installs_the_app_on_a_host_with_no_network() {
    if !require("xorriso") {
        return;
    }
    let Some(w) = World::new("disc", &[]) else {
        return;
    };
    let tool = static_tool().unwrap();
    let iso = w.dir.path().join("im-stack-1.1.0-systemd.iso");
    let run = common::appmodel(
        w.dir.path(),
        &[
            "export",
            "--format",
            "systemd",
            "--version",
            "1.1.0",
            "--iso",
            iso.to_str().unwrap(),
            "--tool",
            tool.to_str().unwrap(),
            "--store",
            w.dir.path().join("store").to_str().unwrap(),
            "--sign",
            w.dir.path().join("vendor.key").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let off = w.dir.path().join("off-the-disc");
    std::fs::create_dir_all(&off).unwrap();
    let out = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev", iso.to_str().unwrap()])
        .args([
            "-extract",
            "/appmodel",
            off.join("appmodel").to_str().unwrap(),
        ])
        .args([
            "-extract",
            "/appmodel.yaml",
            off.join("appmodel.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.host.copy_in(&iso, "/media/disc.iso");
    w.host.copy_in(&off, "/media/disc");
    w.host.copy_in(&w.dir.path().join("vendor.pub"), "/root/");
    let disc = "/media/disc";
    w.ok(
        disc,
        &[
            "import",
            "/media/disc.iso",
            "--trust-key",
            "/root/vendor.pub",
        ],
    );
    let config = w.config(disc);
    w.ok(disc, &["install", "--config", config]);
    assert_eq!(w.running_version(disc), "1.1.0");
    w.probe_ok("from-disc.json", &["write", "10"]);
}
