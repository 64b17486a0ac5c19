//! Licences end to end: the sample's 1.2.0 (plans `standard` and `pro`, a 30-day trial)
//! through `appmodel license request → issue → activate → status → check`.
//!
//! Time is moved with `APPMODEL_TEST_NOW` and host identifiers with `APPMODEL_HOST_ROOT`
//! (a fake sysfs), test hooks of the `fault-injection` build that the tests run; the
//! machine's clock is never touched. The compose scenario runs the sample on the real
//! Docker engine; the refusals need no engine (nothing is installed).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use appmodel_licence::SiteCode;
use common::engines::{
    compose_tool, container_engine, require, require_compose, sample_built, static_tool,
};
use common::{root, Run};

const APP: &str = "im-stack";
const DAY: u64 = 86_400;

/// The engine scenario shares the Docker project and host port 8080 with tests/compose.rs
/// (cargo runs test binaries one after the other; this orders the tests in this one).
static ENGINE: Mutex<()> = Mutex::new(());

struct World {
    dir: tempfile::TempDir,
    /// Environment for every site command (the fake host, the test clock).
    env: BTreeMap<String, String>,
}

fn now() -> u64 {
    appmodel_licence::now()
}

fn date(secs: u64) -> String {
    appmodel_model::record::rfc3339(secs)[..10].to_string()
}

/// The DMI product_uuid of every fake host: they are all on one machine.
const PRODUCT_UUID: &str = "4c4c4544-0042-3510-8052-b4c04f4e3232";

/// A host's identifiers under `root`: machine-id, DMI product_uuid and physical NICs (sysfs
/// `device` links).
fn fake_host(root: &Path, machine_id: &str, macs: &[&str]) {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/machine-id"), format!("{machine_id}\n")).unwrap();
    let dmi = root.join("sys/class/dmi/id");
    std::fs::create_dir_all(&dmi).unwrap();
    std::fs::write(dmi.join("product_uuid"), format!("{PRODUCT_UUID}\n")).unwrap();
    for (i, mac) in macs.iter().enumerate() {
        let nic = root.join(format!("sys/class/net/eth{i}"));
        let bus = root.join(format!("sys/devices/pci0000:00/0000:00:0{i}.0"));
        std::fs::create_dir_all(&nic).unwrap();
        std::fs::create_dir_all(&bus).unwrap();
        std::fs::write(nic.join("address"), format!("{mac}\n")).unwrap();
        std::os::unix::fs::symlink(&bus, nic.join("device")).unwrap();
    }
}

impl World {
    /// Publishes the sample's 1.2.0, exports it as a signed compose bundle, imports it.
    fn new() -> Option<World> {
        if !sample_built(&root()) {
            return None;
        }
        let tool = static_tool()?;
        let w = World {
            dir: tempfile::tempdir().unwrap(),
            env: BTreeMap::new(),
        };
        let model = root().join("samples/im-stack/versions/1.2.0/appmodel.yaml");
        let store = w.path("store");
        let run = common::publish(&store, &model, "1.2.0", &[]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        w.vendor(&["key", "generate", "-o", w.path("vendor").to_str().unwrap()]);
        w.vendor(&[
            "export",
            "--format",
            "compose",
            "--version",
            "1.2.0",
            "--archive",
            w.path("im-stack-1.2.0.tar").to_str().unwrap(),
            "--tool",
            tool.to_str().unwrap(),
            "--sign",
            w.path("vendor.key").to_str().unwrap(),
        ]);
        w.ok(&[
            "import",
            w.path("im-stack-1.2.0.tar").to_str().unwrap(),
            "--trust-key",
            w.path("vendor.pub").to_str().unwrap(),
        ]);
        Some(w)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `appmodel ARGS`, on site (`--state-dir`) or at the vendor (`--store`).
    fn run_with(&self, args: &[&str], site: bool) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_appmodel"));
        cmd.args(args).current_dir(self.dir.path()).envs(&self.env);
        if site {
            cmd.args(["--state-dir", self.path("state").to_str().unwrap()]);
        } else if !args.contains(&"generate") {
            cmd.args(["--store", self.path("store").to_str().unwrap()]);
        }
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// A site command (with the state directory) that must succeed.
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run_with(args, true);
        assert_eq!(run.code, 0, "appmodel {args:?}:\n{}", run.transcript());
        run
    }

    /// A vendor command (with the store) that must succeed.
    fn vendor(&self, args: &[&str]) -> Run {
        let run = self.run_with(args, false);
        assert_eq!(run.code, 0, "appmodel {args:?}:\n{}", run.transcript());
        run
    }

    fn at(&mut self, secs: u64) {
        self.env
            .insert("APPMODEL_TEST_NOW".into(), secs.to_string());
    }

    fn on_host(&mut self, host: &str) {
        self.env.insert(
            "APPMODEL_HOST_ROOT".into(),
            self.path(host).to_str().unwrap().into(),
        );
    }

    /// `license issue` for the request in `site.req`, written to `out`.
    fn issue(&self, out: &str, plan: &str, expires: &str, extra: &[&str]) -> PathBuf {
        let file = self.path(out);
        let key = root().join("samples/im-stack/licensing/licensing.key");
        let mut args = vec![
            "license",
            "issue",
            "--request",
            "site.req",
            "--plan",
            plan,
            "--expires",
            expires,
            "--customer",
            "ACME Energy",
            "--key",
            key.to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.vendor(&args);
        file
    }

    fn status(&self) -> serde_json::Value {
        let run = self.ok(&["license", "status", "--json"]);
        serde_json::from_str(&run.stdout).unwrap()
    }

    fn licence_dir(&self) -> PathBuf {
        self.path(&format!("state/deploy/{APP}/licence"))
    }

    /// Every file of the licence state with its bytes (to show a refusal changed nothing).
    fn licence_state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for dir in [self.licence_dir(), self.path("state/.licence-clock")] {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
        out
    }
}

/// Rewrites the base64 field `field` of a licence file with one bit flipped in its bytes.
fn flip(text: &str, field: &str, byte: usize) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap()
        .to_string();
    let value = line.rsplit(' ').next().unwrap();
    let mut bytes = b64.decode(value).unwrap();
    bytes[byte] ^= 0x04;
    text.replace(&line, &line.replace(value, &b64.encode(&bytes)))
}

#[test]
fn every_bad_licence_is_refused_with_nothing_changed_and_the_clock_guard_holds() {
    let Some(mut w) = World::new() else { return };
    let machine = "0123456789abcdef0123456789abcdef";
    fake_host(
        &w.path("host-a"),
        machine,
        &["52:54:00:00:00:01", "52:54:00:00:00:02"],
    );
    w.on_host("host-a");
    let t0 = now();
    w.at(t0);

    // Not installed, no licence: the trial's standing, and the site code.
    let s = w.status();
    assert_eq!(s["stage"], "trial", "{s}");
    let req = w.ok(&["license", "request"]);
    assert!(req.stdout.contains("im-stack:"), "{}", req.stdout);
    let code = std::fs::read_to_string(w.path("site.req")).unwrap();
    assert!(code.starts_with("appmodel licence request v1\n"), "{code}");
    // Piped, the site code is text only; on a terminal (util-linux `script` gives it one),
    // a QR code of it follows.
    assert!(!req.stdout.contains('▀'), "{}", req.stdout);
    if require("script") {
        let cmd = format!(
            "{} license request -o tty.req --state-dir {}",
            env!("CARGO_BIN_EXE_appmodel"),
            w.path("state").display()
        );
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(w.dir.path())
            .envs(&w.env)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let qr: Vec<&str> = text.lines().filter(|l| l.contains('▀')).collect();
        assert!(qr.len() > 10, "no QR code on a terminal:\n{text}");
    }

    let expires = date(t0 + 400 * DAY);
    let good = w.issue("good.lic", "pro", &expires, &["--sequence", "5"]);
    let activated = w.ok(&["license", "activate", good.to_str().unwrap()]);
    assert!(activated.stdout.contains("valid"), "{}", activated.stdout);
    let s = w.status();
    assert_eq!(
        (s["stage"].as_str(), s["plan"].as_str()),
        (Some("valid"), Some("pro")),
        "{s}"
    );
    assert_eq!(s["entitlements"]["max_users"], 1000);
    assert_eq!(s["sequence"], 5);

    // Licences that must be refused, each with what the message names.
    let text = std::fs::read_to_string(&good).unwrap();
    let mut bad: Vec<(&str, String, &str)> = vec![
        (
            "payload-flip.lic",
            flip(&text, "payload: ", 30),
            "changed after it was issued",
        ),
        (
            "signature-flip.lic",
            flip(&text, "signature: ", 7),
            "changed after it was issued",
        ),
        ("empty.lic", String::new(), "not a valid licence"),
        (
            "garbage.lic",
            "appmodel licence v1\npayload: ###\nsignature: X Y\n".into(),
            "payload is not base64",
        ),
    ];
    // A lower sequence of the same licence.
    let older = w.issue("older.lic", "standard", &expires, &["--sequence", "3"]);
    bad.push((
        "older.lic",
        std::fs::read_to_string(&older).unwrap(),
        "older than the active sequence 5",
    ));
    // Signed by another vendor key: the same model with another key, in another store.
    let other = w.path("other");
    std::fs::create_dir_all(&other).unwrap();
    w.vendor(&[
        "license",
        "key",
        "generate",
        "-o",
        other.join("licensing").to_str().unwrap(),
    ]);
    let other_pub = std::fs::read_to_string(other.join("licensing.pub")).unwrap();
    let model_dir = root().join("samples/im-stack/versions/1.2.0");
    let model_text = std::fs::read_to_string(model_dir.join("appmodel.yaml")).unwrap();
    let foreign_model = model_dir.join(format!(".test-licence-{}.yaml", std::process::id()));
    let key_line = other_pub.lines().nth(1).unwrap();
    let mut foreign = model_text
        .lines()
        .map(|l| {
            if l.starts_with("  public_key: ") {
                format!("  public_key: {key_line}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    foreign.push('\n');
    std::fs::write(&foreign_model, &foreign).unwrap();
    let other_store = other.join("store");
    let run = common::publish(&other_store, &foreign_model, "1.2.0", &[]);
    // The sample's model (and key) for another app, in a third store.
    let renamed = model_text.replace("  name: im-stack\n", "  name: other-app\n");
    std::fs::write(&foreign_model, &renamed).unwrap();
    let third_store = other.join("store3");
    let run2 = common::publish(&third_store, &foreign_model, "1.2.0", &[]);
    let _ = std::fs::remove_file(&foreign_model);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run2.code, 0, "{}", run2.transcript());
    let issue_with = |code: &str, out: &str, key: &Path, store: &Path| {
        let file = w.path(out);
        let run = Command::new(env!("CARGO_BIN_EXE_appmodel"))
            .args([
                "license",
                "issue",
                "--site-code",
                code,
                "--plan",
                "pro",
                "--expires",
                &expires,
            ])
            .args(["--customer", "Mallory", "--key", key.to_str().unwrap()])
            .args([
                "--store",
                store.to_str().unwrap(),
                "-o",
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read_to_string(file).unwrap()
    };
    let site_code = code
        .lines()
        .find_map(|l| l.strip_prefix("site code: "))
        .unwrap();
    let other_key = other.join("licensing.key");
    bad.push((
        "wrong-key.lic",
        issue_with(site_code, "wrong-key.lic", &other_key, &other_store),
        "this app's licences are signed with key",
    ));
    let parsed = SiteCode::parse(site_code, "t").unwrap();
    let other_app = SiteCode {
        app: "other-app".into(),
        fingerprint: parsed.fingerprint.clone(),
    }
    .to_text();
    let sample_key = root().join("samples/im-stack/licensing/licensing.key");
    bad.push((
        "other-app.lic",
        issue_with(&other_app, "other-app.lic", &sample_key, &third_store),
        "it is a licence for app `other-app`, not `im-stack`",
    ));

    let before = w.licence_state();
    for (name, text, expected) in &bad {
        let file = w.path(name);
        std::fs::write(&file, text).unwrap();
        let run = w.run_with(&["license", "activate", file.to_str().unwrap()], true);
        run.assert_refused(expected);
        assert_eq!(
            w.licence_state(),
            before,
            "{name} changed the licence state"
        );
    }

    // Another host: a copy of the whole state onto another system on the same machine (the
    // same product_uuid, another machine-id and other NICs). The licence stops there, naming what changed; activating it is refused.
    fake_host(
        &w.path("host-c"),
        "fedcba9876543210fedcba9876543210",
        &["52:54:00:00:00:99"],
    );
    w.on_host("host-c");
    let s = w.status();
    assert_eq!(s["stage"], "stopped", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("bound to another host (changed: machine-id, network card)"),
        "{s}"
    );
    let run = w.run_with(&["license", "activate", good.to_str().unwrap()], true);
    run.assert_refused("is bound to another host (changed: machine-id, network card); send the vendor this host's site code to move it: im-stack:");
    assert_eq!(w.licence_state(), before);

    // Both NICs replaced, same machine: still valid (two of the three identifiers hold).
    fake_host(
        &w.path("host-b"),
        machine,
        &["52:54:00:00:00:77", "52:54:00:00:00:78"],
    );
    w.on_host("host-b");
    let s = w.status();
    assert_eq!(s["stage"], "valid", "{s}");
    assert_eq!(s["changed"], serde_json::json!(["network card"]), "{s}");
    w.on_host("host-a");

    // The clock guard. `license check` moves the record to t0 + 1 day.
    w.at(t0 + DAY);
    w.ok(&["license", "check"]);
    for (back, expected) in [(2 * 3600, "2 hours behind"), (t0 + DAY, "days behind")] {
        w.at(t0 + DAY - back);
        let s = w.status();
        assert_eq!(s["stage"], "stopped", "{s}");
        assert!(s["reason"].as_str().unwrap().contains(expected), "{s}");
        let run = w.run_with(&["license", "check"], true);
        assert_eq!(run.code, 0, "{}", run.transcript());
        // A check while the clock is behind does not move the record back.
        w.at(t0 + DAY - 1800);
        assert_eq!(w.status()["stage"], "valid", "within the hour's tolerance");
    }
    // Heals when the clock is past the record again.
    w.at(t0 + 2 * DAY);
    assert_eq!(w.status()["stage"], "valid");

    // One copy of the clock record deleted: noticed, the other holds, a check rewrites it.
    let copy = w.licence_dir().join("clock.json");
    std::fs::remove_file(&copy).unwrap();
    let s = w.status();
    assert_eq!(s["stage"], "valid", "{s}");
    assert!(
        s["clock_problems"][0]
            .as_str()
            .unwrap()
            .contains("is missing"),
        "{s}"
    );
    w.ok(&["license", "check"]);
    assert!(copy.is_file());
    // Both deleted: tampering; the licence counts as stopped until it is activated again.
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_file(w.path(&format!("state/.licence-clock/{APP}.json"))).unwrap();
    let s = w.status();
    assert_eq!(s["stage"], "stopped", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("clock record is missing or was changed"),
        "{s}"
    );
    w.ok(&["license", "activate", good.to_str().unwrap()]);
    assert_eq!(w.status()["stage"], "valid");
    // An edited record (a time set back by hand) fails its MAC: the same.
    let edited = std::fs::read_to_string(&copy)
        .unwrap()
        .replace("\"seen\":1", "\"seen\":2");
    std::fs::write(&copy, edited).unwrap();
    assert!(w.status()["clock_problems"][0]
        .as_str()
        .unwrap()
        .contains("was changed"));
}

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
    let vols = Command::new(container_engine())
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={APP}"),
        ])
        .output()
        .unwrap();
    for v in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
        let _ = Command::new(container_engine())
            .args(["volume", "rm", "-f", v])
            .output();
    }
    let _ = Command::new(container_engine())
        .args(["network", "rm", &format!("{APP}_default")])
        .output();
}

/// The compose project's containers that run.
fn running() -> usize {
    let out = Command::new(container_engine())
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={APP}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .count()
}

/// im-server's user limit, as it answers `GET /users`.
fn max_users(secret: &str) -> u64 {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:8080") {
            let req = format!("GET /users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if let Some(json) = body.split("\r\n\r\n").nth(1) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                    if let Some(n) = v["max_users"].as_u64() {
                        return n;
                    }
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "im-server did not answer GET /users"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Waits until component `c`'s container no longer runs its program (the gate stopped or
/// refused it: the container exits and Docker's restart policy retries it); its state and
/// log.
fn wait_gated(c: &str, deadline: std::time::Instant) -> (String, String) {
    let name = format!("{APP}-{c}-1");
    let names = [name.clone(), format!("{APP}_{c}_1")];
    loop {
        for n in &names {
            let out = Command::new(container_engine())
                .args([
                    "inspect",
                    "--format",
                    "{{.State.Status}} {{.State.ExitCode}}",
                    n,
                ])
                .output()
                .unwrap();
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && state != "running 0" {
                let logs = Command::new(container_engine())
                    .args(["logs", n])
                    .output()
                    .unwrap();
                return (
                    state,
                    String::from_utf8_lossy(&logs.stdout).into_owned()
                        + &String::from_utf8_lossy(&logs.stderr),
                );
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} still runs past the licence's end"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        clean_engine();
    }
}

#[test]
fn a_licence_sets_the_plan_and_its_end_stops_the_app_until_a_renewal_starts_it() {
    let _guard = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    if !engine_ready() {
        return;
    }
    let Some(mut w) = World::new() else { return };
    clean_engine();
    let _cleanup = Cleanup;
    let t0 = now();
    w.at(t0);

    // The trial: the standard plan's limit reaches im-server.
    let model = w.path(&format!("state/bundles/{APP}/1.2.0/compose/appmodel.yaml"));
    let config = w.path("site-config.yaml");
    let run = common::appmodel(
        w.dir.path(),
        &[
            "config",
            "init",
            "-f",
            model.to_str().unwrap(),
            "-o",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("  domain:\n", "  domain: chat.plant.example\n");
    std::fs::write(&config, text).unwrap();
    let install = w.ok(&["install", "--config", config.to_str().unwrap()]);
    assert!(
        install.stdout.contains("licence: trial, 30 days left"),
        "{}",
        install.stdout
    );
    let secrets: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.path(&format!("state/deploy/{APP}/secrets.json"))).unwrap(),
    )
    .unwrap();
    let secret = secrets["admin_secret"].as_str().unwrap().to_string();
    assert_eq!(max_users(&secret), 100);

    // request → issue → activate: the pro plan's limit, in a new revision.
    w.ok(&["license", "request"]);
    let expires = date(t0 + 100 * DAY);
    let pro = w.issue("pro.lic", "pro", &expires, &["--sequence", "10"]);
    let run = w.ok(&["license", "activate", pro.to_str().unwrap()]);
    assert!(
        run.stdout
            .contains("the app was reconfigured with the licence (revision 2)"),
        "{}",
        run.stdout
    );
    assert_eq!(max_users(&secret), 1000);
    let status = w.ok(&["status"]);
    assert!(
        status.stdout.contains("licence: valid"),
        "{}",
        status.stdout
    );

    // Some data, to show a licence stop never touches it.
    let probe_state = w.path("probe.json");
    let probe = |args: &[&str]| {
        let out = Command::new(root().join("samples/im-stack/dist/im-probe"))
            .args([
                "--server",
                "http://127.0.0.1:8080",
                "--admin-secret",
                &secret,
                "--state",
            ])
            .arg(&probe_state)
            .args(["--wait-ready", "30"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "im-probe {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    probe(&["write", "20"]);

    // Grace (after the end, within grace_days): the app runs; the check changes nothing.
    w.at(t0 + 105 * DAY);
    let run = w.ok(&["license", "check"]);
    assert!(run.stdout.contains("grace"), "{}", run.stdout);
    assert_eq!(running(), 3);

    // With no scheduled check at all (a host without systemd), the licence gate in every
    // container stops the app at the end of grace on its own. The host's last check puts
    // that end 15 s ahead on the real clock the containers run on.
    let stops = w.status()["stops_at"].as_u64().unwrap();
    w.at(stops - 15);
    w.ok(&["license", "check"]);
    assert_eq!(running(), 3);
    let gated = std::time::Instant::now() + std::time::Duration::from_secs(15);
    for c in ["im-server", "push-service", "im-store"] {
        let (state, logs) = wait_gated(c, gated + std::time::Duration::from_secs(20));
        assert!(
            logs.contains(&format!(
                "stopping /usr/local/bin/{c}: the licence of {APP} ended at"
            )),
            "{c} ({state}): {logs}"
        );
    }
    assert!(std::time::Instant::now() >= gated, "stopped before its end");

    // Past grace: the scheduled check stops every container, data kept.
    w.at(t0 + 120 * DAY);
    let run = w.ok(&["license", "check"]);
    assert!(run.stdout.contains("the app was stopped"), "{}", run.stdout);
    assert_eq!(running(), 0);
    // Started by hand past appmodel (`docker-compose up` in the project), no component
    // starts: the gate refuses each, naming why, so compose gives up waiting for the
    // dependencies to be healthy.
    let project = w.path(&format!("state/deploy/{APP}/revisions/2/project"));
    let up = compose_tool()
        .args(["-p", APP, "up", "-d"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        !up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let (_, logs) = wait_gated(
        "im-store",
        std::time::Instant::now() + std::time::Duration::from_secs(30),
    );
    assert!(
        logs.contains(&format!("/usr/local/bin/im-store does not start: the licence of {APP} keeps it stopped: the licence ended after")),
        "{logs}"
    );
    let down = compose_tool()
        .args(["-p", APP, "down"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(running(), 0);
    let run = w.run_with(&["upgrade", "--config", config.to_str().unwrap()], true);
    run.assert_refused("its grace after");
    assert_eq!(running(), 0);
    // A second check does nothing more.
    let run = w.ok(&["license", "check"]);
    assert!(!run.stdout.contains("the app was"), "{}", run.stdout);

    // A renewal (higher sequence) starts it again, with the data.
    let renewal = w.issue(
        "renewal.lic",
        "pro",
        &date(t0 + 500 * DAY),
        &["--sequence", "11"],
    );
    let run = w.ok(&["license", "activate", renewal.to_str().unwrap()]);
    assert!(
        run.stdout.contains("the app was started with the licence"),
        "{}",
        run.stdout
    );
    assert_eq!(running(), 3);
    probe(&["verify"]);
    // The older licence is refused, and changes nothing.
    let run = w.run_with(&["license", "activate", pro.to_str().unwrap()], true);
    run.assert_refused("older than the active sequence 11");
    assert_eq!(running(), 3);
    assert_eq!(max_users(&secret), 1000);
    w.ok(&["uninstall"]);
}

/// A licence file or a request file may come from anyone: a FIFO must not hang the command,
/// `/dev/zero` must not fill memory, a directory or a file over the cap is named and
/// refused, exit 1, with the licence state unchanged.
#[test]
fn a_licence_or_request_that_is_not_a_regular_file_or_too_large_is_refused() {
    let Some(mut w) = World::new() else { return };
    fake_host(
        &w.path("host-a"),
        "0123456789abcdef0123456789abcdef",
        &["52:54:00:00:00:01"],
    );
    w.on_host("host-a");
    w.at(now());
    w.ok(&["license", "request"]);
    let before = w.licence_state();
    let lic = w.path("hostile-lic");
    std::fs::create_dir_all(&lic).unwrap();
    for (file, why) in common::hostile_files(&lic, 1 << 20, appmodel_licence::file::MAX_FILE) {
        let run = w.run_with(&["license", "activate", &file], true);
        run.assert_refused(&format!("cannot read `{file}`"));
        run.assert_refused(&why);
        assert_eq!(w.licence_state(), before, "{file}");
    }
    let req = w.path("hostile-req");
    std::fs::create_dir_all(&req).unwrap();
    let key = root().join("samples/im-stack/licensing/licensing.key");
    for (file, why) in common::hostile_files(&req, 1 << 20, 16 << 10) {
        let run = w.run_with(
            &[
                "license",
                "issue",
                "--request",
                &file,
                "--plan",
                "pro",
                "--expires",
                "2036-12-31",
                "--customer",
                "ACME",
                "--key",
                key.to_str().unwrap(),
                "-o",
                w.path("x.lic").to_str().unwrap(),
            ],
            false,
        );
        run.assert_refused(&format!("cannot read `{file}`"));
        run.assert_refused(&why);
        assert!(!w.path("x.lic").exists());
    }
}
