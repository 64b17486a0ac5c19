//! The whole stack as separate processes on loopback: im-store, push-service and
//! im-server (built by `cargo build` for the current feature set: 1.0.0, or 1.1.0 with
//! this package's `v1_1` feature), driven by im-probe and a webhook receiver.

// Test code: a failed unwrap is a failed test (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use im_common::client;
use im_common::process::{wait_ok, Program};
use im_common::server::{Handler, HttpServer, Request, Response};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);
const SECRET: &str = "stack-test-secret";
const PROBE: &str = env!("CARGO_BIN_EXE_im-probe");

/// The three services, built once per test run with the same profile and target dir as
/// this test.
fn binaries() -> &'static HashMap<String, PathBuf> {
    static BINS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BINS.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap(); // <target>[/<triple>]/<profile>
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let mut target_dir = profile_dir.parent().unwrap();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--message-format=json-render-diagnostics",
            "-p",
            "im-store",
            "-p",
            "push-service",
            "-p",
            "im-server",
        ]);
        if !target_dir.join("CACHEDIR.TAG").exists() {
            let triple = target_dir.file_name().unwrap().to_str().unwrap();
            cmd.args(["--target", triple]);
            target_dir = target_dir.parent().unwrap();
        }
        cmd.arg("--target-dir").arg(target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        if cfg!(feature = "v1_1") {
            cmd.args([
                "--features",
                "im-store/v1_1,push-service/v1_1,im-server/v1_1",
            ]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut bins = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let (Some("compiler-artifact"), Some(exe)) =
                (msg["reason"].as_str(), msg["executable"].as_str())
            {
                bins.insert(
                    msg["target"]["name"].as_str().unwrap().to_string(),
                    PathBuf::from(exe),
                );
            }
        }
        for name in ["im-store", "push-service", "im-server"] {
            assert!(bins.contains_key(name), "cargo build did not report {name}");
        }
        bins
    })
}

fn version() -> &'static str {
    if cfg!(feature = "v1_1") {
        "1.1.0"
    } else {
        "1.0.0"
    }
}

struct Stack {
    dir: PathBuf,
    store: Program,
    push: Program,
    server: Program,
    store_url: String,
    push_url: String,
    server_url: String,
    restarts: u32,
}

impl Stack {
    fn start(dir: &Path, push_env: &[(&str, &str)]) -> Stack {
        let (store, store_url) = start_store(dir, "store", "127.0.0.1:0");
        let (push, push_url) = start_push(dir, "push", "127.0.0.1:0", push_env);
        let mut server = Program::start(
            &binaries()["im-server"],
            "server",
            &[],
            &[
                ("IM_LISTEN", "127.0.0.1:0"),
                ("IM_DOMAIN", "stack.test"),
                ("IM_ADMIN_SECRET", SECRET),
                ("IM_MAX_USERS", "10"),
                ("IM_STORE_URL", &store_url),
                ("IM_PUSH_URL", &push_url),
            ],
            dir,
        );
        let server_url = server.wait_listening(T);
        wait_ok(&format!("{server_url}/readyz"), T);
        Stack {
            dir: dir.to_path_buf(),
            store,
            push,
            server,
            store_url,
            push_url,
            server_url,
            restarts: 0,
        }
    }

    fn restart_store(&mut self) {
        self.restarts += 1;
        let listen = self.store_url.trim_start_matches("http://").to_string();
        let (store, _) = start_store(&self.dir, &format!("store-{}", self.restarts), &listen);
        self.store = store;
        wait_ok(&format!("{}/readyz", self.server_url), T);
    }

    fn restart_push(&mut self, push_env: &[(&str, &str)]) {
        self.restarts += 1;
        let listen = self.push_url.trim_start_matches("http://").to_string();
        let (push, _) = start_push(
            &self.dir,
            &format!("push-{}", self.restarts),
            &listen,
            push_env,
        );
        self.push = push;
    }

    /// Runs im-probe after waiting for im-server to be ready.
    fn probe(&self, args: &[&str]) -> Output {
        self.probe_now(&[&["--wait-ready", "10"], args].concat())
    }

    /// Runs im-probe without waiting.
    fn probe_now(&self, args: &[&str]) -> Output {
        let state = self.dir.join("probe-state.jsonl");
        Command::new(PROBE)
            .args(["--server", &self.server_url, "--admin-secret", SECRET])
            .arg("--state")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    }

    fn post(&self, url: &str, body: Value) -> (u16, Value) {
        let r = client::post_json_with(
            url,
            &[("Authorization", &format!("Bearer {SECRET}"))],
            &body,
            T,
        )
        .unwrap();
        (r.status, r.json().unwrap_or(Value::Null))
    }

    fn stop_all(mut self) {
        for p in [&mut self.server, &mut self.push, &mut self.store] {
            let status = p.terminate();
            assert!(
                status.success(),
                "{} exited with {status}:\n{}",
                p.name,
                p.stderr()
            );
            assert!(
                p.stdout().contains("stopped: signal received"),
                "{}",
                p.stdout()
            );
        }
    }
}

fn start_store(dir: &Path, name: &str, listen: &str) -> (Program, String) {
    let data = dir.join("store-data");
    let mut p = Program::start(
        &binaries()["im-store"],
        name,
        &["--listen", listen],
        &[("STORE_DATA_DIR", data.to_str().unwrap())],
        dir,
    );
    let url = p.wait_listening(T);
    wait_ok(&format!("{url}/readyz"), T);
    (p, url)
}

fn start_push(
    dir: &Path,
    name: &str,
    listen: &str,
    extra_env: &[(&str, &str)],
) -> (Program, String) {
    let data = dir.join("push-data");
    let mut env = vec![
        ("PUSH_DATA_DIR", data.to_str().unwrap()),
        ("PUSH_LISTEN", listen),
    ];
    env.extend_from_slice(extra_env);
    let mut p = Program::start(&binaries()["push-service"], name, &[], &env, dir);
    let url = p.wait_listening(T);
    wait_ok(&format!("{url}/readyz"), T);
    (p, url)
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn acknowledged_messages_survive_a_store_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut stack = Stack::start(tmp.path(), &[]);
    let r = client::get(&format!("{}/version", stack.server_url), T).unwrap();
    assert_eq!(r.json::<Value>().unwrap()["version"], version());

    let out = stack.probe(&["write", "150"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("wrote 150 messages"),
        "{}",
        text(&out)
    );

    stack.store.kill();
    let r = client::get(&format!("{}/readyz", stack.server_url), T).unwrap();
    assert_eq!(
        r.status, 503,
        "im-server must not be ready without im-store"
    );
    // A send while the store is down is refused, so nothing unacknowledged gets recorded.
    let out = stack.probe_now(&["write", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is unreachable"),
        "{}",
        text(&out)
    );
    let recorded = std::fs::read_to_string(tmp.path().join("probe-state.jsonl")).unwrap();
    assert_eq!(recorded.lines().count(), 150);

    stack.restart_store();
    let out = stack.probe(&["write", "50"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = stack.probe(&["verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "verified 200 messages, 0 missing"
    );

    // The probe notices a loss: cut the last message off the conversation log.
    assert!(stack.store.terminate().success());
    let log = tmp
        .path()
        .join("store-data/conversations/dm.probe-a.probe-b.log");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    stack.restart_store();
    assert!(stack
        .store
        .stdout()
        .contains("bytes of torn records cut off"));
    let out = stack.probe(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "verified 200 messages, 1 missing"
    );

    stack.stop_all();
}

/// A webhook receiver that records the bodies it gets.
struct Hook(Mutex<Vec<Value>>);

impl Handler for Hook {
    fn handle(&self, req: &Request) -> Response {
        self.0
            .lock()
            .unwrap()
            .push(req.json::<Value>().unwrap_or(Value::Null));
        Response::json(200, &json!({}))
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pushes_reach_the_webhook_even_across_a_push_service_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let fast_retries = [
        ("PUSH_RETRY_MIN_MS", "50"),
        ("PUSH_RETRY_MAX_MS", "200"),
        ("PUSH_MAX_ATTEMPTS", "1000"),
    ];
    let mut stack = Stack::start(tmp.path(), &fast_retries);
    for name in ["alice", "bob"] {
        let (status, v) = stack.post(
            &format!("{}/users", stack.server_url),
            json!({ "name": name }),
        );
        assert_eq!(status, 201, "{v}");
    }
    // The webhook's port is free for now: the first attempts fail.
    let hook_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (status, _) = stack.post(
        &format!("{}/devices", stack.push_url),
        json!({"user": "bob", "endpoint": format!("http://{hook_addr}/hook")}),
    );
    assert_eq!(status, 201);
    let (status, v) = stack.post(
        &format!("{}/messages", stack.server_url),
        json!({"from": "alice", "to": "bob", "body": "first"}),
    );
    assert_eq!(
        (status, v),
        (201, json!({"conversation": "dm.alice.bob", "offset": 0}))
    );
    let stats_url = format!("{}/stats", stack.push_url);
    wait_for("a failed attempt", || {
        stack.push.stdout().contains("failed (attempt 1)")
    });
    let stats: Value = client::get(&stats_url, T).unwrap().json().unwrap();
    assert_eq!(stats, json!({"queued": 1, "delivered": 0, "failed": 0}));

    // Crash push-service; the queued delivery survives and goes out once the hook is up.
    stack.push.kill();
    stack.restart_push(&fast_retries);
    assert!(
        stack
            .push
            .stdout()
            .contains("1 devices, 1 deliveries pending"),
        "{}",
        stack.push.stdout()
    );
    let hook = Arc::new(Hook(Mutex::new(Vec::new())));
    let _hook = HttpServer::bind(&hook_addr.to_string(), "hook")
        .unwrap()
        .spawn(hook.clone(), 1);
    wait_for("the first push", || hook.0.lock().unwrap().len() == 1);

    let (status, _) = stack.post(
        &format!("{}/messages", stack.server_url),
        json!({"from": "alice", "to": "bob", "body": "second"}),
    );
    assert_eq!(status, 201);
    wait_for("the second push", || hook.0.lock().unwrap().len() == 2);
    let got = hook.0.lock().unwrap().clone();
    assert_eq!(got[0]["recipient"], "bob");
    assert_eq!(got[0]["payload"]["body"], "first");
    assert_eq!(got[1]["payload"]["offset"], 1);
    assert_eq!(got[1]["payload"]["domain"], "stack.test");
    let stats: Value = client::get(&stats_url, T).unwrap().json().unwrap();
    assert_eq!(stats, json!({"queued": 0, "delivered": 2, "failed": 0}));

    stack.stop_all();
}
