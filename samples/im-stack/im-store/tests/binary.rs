//! The im-store binary of the current feature set (1.0.0, or 1.1.0 with `v1_1`): start-up,
//! kill -9 recovery, clean stop, and its behaviour on data of the other format.

// Test code: a failed unwrap is a failed test (clippy.toml only covers #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use im_common::client;
use im_common::process::{wait_ok, Program};
use im_store::store::Store;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_im-store");
const T: Duration = Duration::from_secs(10);

fn start(data: &Path, logs: &Path, name: &str, listen: &str) -> (Program, String) {
    let mut p = Program::start(
        Path::new(EXE),
        name,
        &["--listen", listen],
        &[("STORE_DATA_DIR", data.to_str().unwrap())],
        logs,
    );
    let url = p.wait_listening(T);
    wait_ok(&format!("{url}/readyz"), T);
    (p, url)
}

fn append(url: &str, conv: &str, body: &str) -> u64 {
    let r = client::post_json(
        &format!("{url}/conversations/{conv}/messages"),
        &json!({"from": "alice", "body": body}),
        T,
    )
    .unwrap();
    assert_eq!(r.status, 201);
    r.json::<Value>().unwrap()["offset"].as_u64().unwrap()
}

fn bodies(url: &str, conv: &str) -> Vec<String> {
    let r = client::get(
        &format!("{url}/conversations/{conv}/messages?limit=1000"),
        T,
    )
    .unwrap();
    let v: Value = r.json().unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn prints_its_version() {
    let out = Command::new(EXE).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("im-store {}", im_store::VERSION)
    );
}

#[test]
fn missing_data_dir_is_a_usage_error() {
    let out = Command::new(EXE)
        .env_remove("STORE_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "im-store {}: setting `STORE_DATA_DIR` or `--data-dir` is required",
            im_store::VERSION
        )
    );
}

#[test]
fn acknowledged_appends_survive_kill_9_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut store, url) = start(&data, tmp.path(), "store-1", "127.0.0.1:0");
    for i in 0..50 {
        assert_eq!(append(&url, "c", &format!("m{i}")), i);
    }
    store.kill();

    // The same port again, as a restarted service would have.
    let listen = url.trim_start_matches("http://").to_string();
    let (mut store, url) = start(&data, tmp.path(), "store-2", &listen);
    let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(&url, "c"), expected);
    assert!(
        store
            .stdout()
            .contains("recovered 1 conversations, 50 messages"),
        "{}",
        store.stdout()
    );
    assert_eq!(append(&url, "c", "after"), 50);

    let status = store.terminate();
    assert!(status.success(), "exit {status}: {}", store.stderr());
    assert!(
        store.stdout().contains("stopped: signal received"),
        "{}",
        store.stdout()
    );
}

#[cfg(not(feature = "v1_1"))]
#[test]
fn version_1_0_refuses_format_2_data_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (store, _) = Store::open(&data, 2).unwrap();
    store.append("c", "alice", "from 1.1").unwrap();
    drop(store);
    let before = std::fs::read(data.join("conversations/c.log")).unwrap();

    let out = Command::new(EXE)
        .env("STORE_DATA_DIR", &data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "im-store 1.0.0: data in {} has format 2, this version understands format 1 only; \
             restore the data from before the upgrade",
            data.display()
        )
    );
    assert_eq!(std::fs::read_to_string(data.join("FORMAT")).unwrap(), "2\n");
    assert_eq!(
        std::fs::read(data.join("conversations/c.log")).unwrap(),
        before
    );
}

#[cfg(not(feature = "v1_1"))]
#[test]
fn version_1_0_writes_format_1_and_has_no_receipts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut store, url) = start(&data, tmp.path(), "store", "127.0.0.1:0");
    append(&url, "c", "x");
    assert_eq!(std::fs::read_to_string(data.join("FORMAT")).unwrap(), "1\n");
    let r = client::get(&format!("{url}/conversations/c/read"), T).unwrap();
    assert_eq!(r.status, 404);
    assert!(store.terminate().success());
}

#[cfg(feature = "v1_1")]
#[test]
fn version_1_1_migrates_format_1_data_on_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (store, _) = Store::open(&data, 1).unwrap();
    for i in 0..3 {
        store
            .append("dm.alice.bob", "alice", &format!("m{i}"))
            .unwrap();
    }
    drop(store);

    let (mut store, url) = start(&data, tmp.path(), "store", "127.0.0.1:0");
    assert!(
        store.stdout().contains(&format!(
            "migrated data from format 1 to format 2: 1 conversations, 3 messages indexed, \
             read-receipt logs added in {}",
            data.display()
        )),
        "{}",
        store.stdout()
    );
    assert_eq!(std::fs::read_to_string(data.join("FORMAT")).unwrap(), "2\n");
    assert_eq!(bodies(&url, "dm.alice.bob"), ["m0", "m1", "m2"]);
    let r = client::post_json(
        &format!("{url}/conversations/dm.alice.bob/read"),
        &json!({"user": "bob", "offset": 2}),
        T,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(store.terminate().success());

    // The receipt is durable, and a second start migrates nothing.
    let (mut store, url) = start(&data, tmp.path(), "store-2", "127.0.0.1:0");
    let r = client::get(&format!("{url}/conversations/dm.alice.bob/read"), T).unwrap();
    assert_eq!(r.json::<Value>().unwrap(), json!({"receipts": {"bob": 2}}));
    assert!(!store.stdout().contains("migrated"));
    assert!(store.terminate().success());
}
