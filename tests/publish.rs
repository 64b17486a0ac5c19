//! `appmodel publish` and the store commands, end to end: the real binary, a real registry
//! (Debian's docker-registry) and skopeo as an independent reader of what we store.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::engines::{require, sample_built, Registry, RegistrySetup};
use common::{appmodel, elf_executable, publish, root};
use serde_json::Value;

/// A one-component app whose binary is `payload` (behind an x86-64 ELF header), with
/// `image` as its image source.
fn demo(dir: &Path, payload: &[u8], image: &str, platforms: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/a"), elf_executable("linux/amd64", payload)).unwrap();
    let model = format!(
        "apiVersion: appmodel/v1\napp: {{name: demo, version: 0.0.1, platforms: {platforms}}}\ncomponents:\n  - name: a\n    binaries: {{linux/amd64: bin/a}}\n    image: {image}\n    ports: [{{name: http, port: 8080, protocol: http}}]\n    volumes: [{{name: data, kind: data, path: /var/lib/a}}]\n"
    );
    let file = dir.join("appmodel.yaml");
    std::fs::write(&file, model).unwrap();
    file
}

fn show(store: &Path, version: &str) -> Value {
    let run = appmodel(
        store,
        &[
            "show",
            version,
            "--json",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    serde_json::from_str(&run.stdout).unwrap()
}

fn blob_count(store: &Path) -> usize {
    std::fs::read_dir(store.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn versions(store: &Path) -> Vec<String> {
    let run = appmodel(
        store,
        &["versions", "--json", "--store", store.to_str().unwrap()],
    );
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect()
}

fn image_digest(store: &Path, version: &str) -> String {
    show(store, version)["components"]["a"]["images"]["linux/amd64"]["manifest"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_same_content_again_is_a_no_op_and_different_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let model = demo(
        &dir.path().join("m"),
        b"first build",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    let run = publish(&store, &model, "v1.0", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .starts_with("published demo 1.0.0: 1 components, "),
        "{}",
        run.stdout
    );
    let run = publish(&store, &model, "1.0.0", &[]);
    assert_eq!(
        run.stdout,
        "demo 1.0.0 is already published with the same content; nothing changed\n"
    );
    let blobs = blob_count(&store);

    std::fs::write(
        dir.path().join("m/bin/a"),
        elf_executable("linux/amd64", b"second build"),
    )
    .unwrap();
    let run = publish(&store, &model, "v1.0", &[]);
    run.assert_refused("error: version 1.0.0 of `demo` is already published with different content: component `a`: image for linux/amd64 was sha256:");
    assert_eq!(
        blob_count(&store),
        blobs,
        "a refused publish leaves no blob behind"
    );
    assert_eq!(versions(&store), ["1.0.0"]);
}

#[test]
fn images_from_binaries_are_deterministic_and_readable_by_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let model = demo(
        &dir.path().join("m"),
        b"\x7fELF pretend binary",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    let (s1, s2) = (dir.path().join("s1"), dir.path().join("s2"));
    assert_eq!(publish(&s1, &model, "v1", &[]).code, 0);
    assert_eq!(publish(&s2, &model, "v1", &[]).code, 0);
    let digest = image_digest(&s1, "1.0.0");
    assert_eq!(
        digest,
        image_digest(&s2, "1.0.0"),
        "same binary, same image digest"
    );

    if !require("skopeo") {
        return;
    }
    let out = Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:demo/a:1.0.0", s1.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(inspected["Architecture"], "amd64");
    let config = Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            &format!("oci:{}:demo/a:1.0.0", s1.display()),
        ])
        .output()
        .unwrap();
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/a"])
    );
    assert_eq!(config["config"]["User"], "65534:65534");
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
}

#[test]
fn a_missing_binary_is_named_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let model = demo(
        &dir.path().join("m"),
        b"x",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    std::fs::remove_file(dir.path().join("m/bin/a")).unwrap();
    let run = publish(&store, &model, "v1", &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.ends_with(&format!(
            "error: component `a`: binary for linux/amd64 not found at `{}`\n",
            dir.path().join("m/bin/a").display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(blob_count(&store), 0);
    assert!(versions(&store).is_empty());
}

/// Regression: site trust defect 7b. publish packed whatever path a binary named: a
/// directory was "not found", `/etc/shadow`, a script or an arm64 build declared as amd64
/// were packed silently, and a path leaving the model's tree said nothing.
#[test]
fn a_binary_must_be_an_executable_of_its_platform() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let m = dir.path().join("m");
    let model = demo(&m, b"x", "{from_binary: true}", "[linux/amd64]");
    std::fs::create_dir(m.join("bin/dir")).unwrap();
    std::fs::write(m.join("bin/script"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(m.join("bin/arm"), elf_executable("linux/arm64", b"x")).unwrap();
    std::fs::write(
        dir.path().join("outside"),
        elf_executable("linux/amd64", b"o"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&model).unwrap();
    let with = |path: &str| {
        std::fs::write(
            &model,
            text.replace(
                "binaries: {linux/amd64: bin/a}",
                &format!("binaries: {{linux/amd64: '{path}'}}"),
            ),
        )
        .unwrap();
        publish(&store, &model, "v1", &[])
    };
    let at = |path: &str| {
        format!(
            "error: component `a`: binary for linux/amd64 at `{}",
            m.join(path).display()
        )
    };
    with("bin/dir").assert_refused(&format!("{}` is a directory, not a file\n", at("bin/dir")));
    with("bin/script").assert_refused(&format!("{}` is not an ELF executable\n", at("bin/script")));
    with("bin/arm").assert_refused(&format!(
        "{}` is an executable for AArch64, not for linux/amd64 (x86-64)\n",
        at("bin/arm")
    ));
    let shadow = if Path::new("/etc/shadow").exists() {
        "/etc/shadow"
    } else {
        "/etc/passwd"
    };
    with(shadow).assert_refused(&format!(
        "error: component `a`: binary for linux/amd64 at `{shadow}` is not an ELF executable\n"
    ));
    assert_eq!(blob_count(&store), 0, "nothing stored");
    assert!(versions(&store).is_empty());

    // An executable outside the model's tree is published, with a warning naming where it is.
    let run = with("../outside");
    assert_eq!(run.code, 0, "{}", run.transcript());
    let real = dir.path().canonicalize().unwrap();
    assert!(
        run.stderr.contains(&format!(
            "warning: component `a`: binary for linux/amd64 `{}` resolves to `{}`, outside the model's tree `{}`\n",
            m.join("../outside").display(),
            real.join("outside").display(),
            real.join("m").display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn sample_versions_share_blobs_in_the_store() {
    if !sample_built(&root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut new_bytes = Vec::new();
    for v in ["1.0.0", "1.1.0"] {
        let model = root().join(format!("samples/im-stack/versions/{v}/appmodel.yaml"));
        let run = publish(&store, &model, v, &["--json"]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        let out: Value = serde_json::from_str(&run.stdout).unwrap();
        // `../../dist/...` stays inside the repository that holds the model.
        assert_eq!(out["warnings"], serde_json::json!([]), "{}", run.stderr);
        assert!(!run.stderr.contains("warning"), "{}", run.stderr);
        new_bytes.push((
            out["new_bytes"].as_u64().unwrap(),
            out["unique_bytes"].as_u64().unwrap(),
        ));
    }
    let (v10_new, v10_unique) = new_bytes[0];
    let (v11_new, v11_unique) = new_bytes[1];
    assert_eq!(v10_new, v10_unique, "the first version stores everything");
    let shared = v11_unique - v11_new;
    assert!(
        shared > 0,
        "1.1.0 reuses 1.0.0's unchanged push-service blobs"
    );
    // The store holds each shared blob once.
    let on_disk: u64 = std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, v10_unique + v11_new);

    let run = appmodel(
        &root(),
        &[
            "diff",
            "1.0",
            "1.1",
            "--json",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    let d: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(d["parameters_added"], serde_json::json!(["read_receipts"]));
    assert_eq!(d["new_bytes"].as_u64().unwrap(), v11_new);
    // push-service's amd64 binary is 1.0.0's; 1.1.0 adds arm64, and says only that.
    assert_eq!(
        d["components_changed"]["push-service"],
        serde_json::json!(["new platform linux/arm64"]),
        "{d}"
    );
}

#[test]
fn images_from_a_registry_are_pinned_by_digest() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let model = demo(
        &dir.path().join("m"),
        b"registry payload",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    assert_eq!(publish(&local, &model, "v1", &[]).code, 0);
    let built = show(&local, "1.0.0")["components"]["a"]["images"]["linux/amd64"].clone();
    registry.push(
        &format!("oci:{}:demo/a:1.0.0", local.display()),
        "team/a:1.0",
        &[],
    );

    let host = registry.host();
    let store = dir.path().join("store");
    let pulled = demo(
        &dir.path().join("r"),
        b"registry payload",
        &format!("{{registry: \"{host}/team/a:1.0\"}}"),
        "[linux/amd64]",
    );
    let run = publish(&store, &pulled, "v2", &["--insecure-registry", &host]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let record = show(&store, "2.0.0");
    let image = &record["components"]["a"]["images"]["linux/amd64"];
    assert_eq!(
        image, &built,
        "manifest, config and layers arrive with the same digests"
    );
    assert_eq!(
        record["components"]["a"]["image_source"],
        format!(
            "{host}/team/a:1.0@{}",
            built["manifest"]["digest"].as_str().unwrap()
        )
        .as_str()
    );

    // An unknown tag is refused and leaves nothing.
    let bad = demo(
        &dir.path().join("t"),
        b"x",
        &format!("{{registry: \"{host}/team/a:9.9\"}}"),
        "[linux/amd64]",
    );
    let store2 = dir.path().join("store2");
    let run = publish(&store2, &bad, "v1", &["--insecure-registry", &host]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains(&format!("error: cannot pull `{host}/team/a:9.9`: ")),
        "{}",
        run.stderr
    );
    assert_eq!(blob_count(&store2), 0);
}

#[test]
fn an_unreachable_registry_is_a_clear_error() {
    if !require("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = common::engines::free_port();
    let model = demo(
        &dir.path().join("m"),
        b"x",
        &format!("{{registry: \"127.0.0.1:{port}/team/a:1.0\"}}"),
        "[linux/amd64]",
    );
    let store = dir.path().join("store");
    let run = publish(
        &store,
        &model,
        "v1",
        &["--insecure-registry", &format!("127.0.0.1:{port}")],
    );
    run.assert_refused(&format!(
        "error: cannot pull `127.0.0.1:{port}/team/a:1.0`: "
    ));
    assert_eq!(blob_count(&store), 0);
}

#[test]
fn a_blob_swapped_in_the_registry_is_refused_and_nothing_is_kept() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let model = demo(
        &dir.path().join("m"),
        &vec![7u8; 100_000],
        "{from_binary: true}",
        "[linux/amd64]",
    );
    assert_eq!(publish(&local, &model, "v1", &[]).code, 0);
    registry.push(
        &format!("oci:{}:demo/a:1.0.0", local.display()),
        "team/a:1.0",
        &[],
    );
    let layer = show(&local, "1.0.0")["components"]["a"]["images"]["linux/amd64"]["layers"][0]
        ["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let file = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let host = registry.host();
    let store = dir.path().join("store");
    let pulled = demo(
        &dir.path().join("r"),
        b"other",
        &format!("{{registry: \"{host}/team/a:1.0\"}}"),
        "[linux/amd64]",
    );
    let run = publish(&store, &pulled, "v1", &["--insecure-registry", &host]);
    run.assert_refused(&format!("error: cannot read blob `sha256:{layer}` from registry image `{host}/team/a:1.0`: Invalid digest. Expected sha256:{layer}, got sha256:"));
    assert_eq!(
        blob_count(&store),
        0,
        "nothing from the failed publish stays in the store"
    );
    assert!(versions(&store).is_empty());
}

#[test]
fn a_multi_platform_index_keeps_the_platforms_asked_for() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Two single-platform images, joined into one index with skopeo.
    let local = dir.path().join("local");
    let m = dir.path().join("m");
    let model = demo(
        &m,
        b"amd64 build",
        "{from_binary: true}",
        "[linux/amd64, linux/arm64]",
    );
    let text = std::fs::read_to_string(&model).unwrap().replace(
        "binaries: {linux/amd64: bin/a}",
        "binaries: {linux/amd64: bin/a, linux/arm64: bin/a-arm64}",
    );
    std::fs::write(&model, text).unwrap();
    std::fs::write(
        m.join("bin/a-arm64"),
        elf_executable("linux/arm64", b"arm64 build"),
    )
    .unwrap();
    let run = publish(&local, &model, "v1", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let images = show(&local, "1.0.0")["components"]["a"]["images"].clone();
    let layout = dir.path().join("layout");
    write_index_layout(&local, &layout, &images);
    registry.push(
        &format!("oci:{}:multi", layout.display()),
        "team/multi:1.0",
        &["--all"],
    );

    let host = registry.host();
    let store = dir.path().join("store");
    let only_amd = demo(
        &dir.path().join("r"),
        b"amd64 build",
        &format!("{{registry: \"{host}/team/multi:1.0\"}}"),
        "[linux/amd64]",
    );
    let run = publish(&store, &only_amd, "v1", &["--insecure-registry", &host]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let got = show(&store, "1.0.0")["components"]["a"]["images"].clone();
    assert_eq!(got.as_object().unwrap().len(), 1);
    assert_eq!(got["linux/amd64"], images["linux/amd64"]);

    let s390x = demo(
        &dir.path().join("s"),
        b"x",
        &format!("{{registry: \"{host}/team/multi:1.0\"}}"),
        "[linux/s390x]",
    );
    let text = std::fs::read_to_string(&s390x)
        .unwrap()
        .replace("binaries: {linux/amd64: bin/a}", "binaries: {}");
    std::fs::write(&s390x, text).unwrap();
    let store2 = dir.path().join("store2");
    let run = publish(&store2, &s390x, "v1", &["--insecure-registry", &host]);
    run.assert_refused(&format!("error: registry image `{host}/team/multi:1.0` has no image for platform linux/s390x (it has: linux/amd64, linux/arm64)"));
    assert_eq!(blob_count(&store2), 0);
}

/// Writes an OCI layout whose index names both platform images of `images` under `multi`.
fn write_index_layout(store: &Path, layout: &Path, images: &Value) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut manifests = Vec::new();
    for (platform, image) in images.as_object().unwrap() {
        for blob in std::iter::once(&image["manifest"])
            .chain(std::iter::once(&image["config"]))
            .chain(image["layers"].as_array().unwrap())
        {
            let hex = blob["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:");
            std::fs::copy(
                store.join("blobs/sha256").join(hex),
                layout.join("blobs/sha256").join(hex),
            )
            .unwrap();
        }
        let (os, arch) = platform.split_once('/').unwrap();
        manifests.push(serde_json::json!({
            "mediaType": image["manifest"]["mediaType"], "digest": image["manifest"]["digest"], "size": image["manifest"]["size"],
            "platform": {"os": os, "architecture": arch}
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
    let digest = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&index));
    std::fs::write(layout.join("blobs/sha256").join(&digest), &index).unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{digest}"), "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multi"}
    }]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn registry_credentials_are_used_and_wrong_ones_refused() {
    let Some(registry) = Registry::start(Some(("vendor", "s3cret"))) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let model = demo(
        &dir.path().join("m"),
        b"private",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    assert_eq!(publish(&local, &model, "v1", &[]).code, 0);
    registry.push(
        &format!("oci:{}:demo/a:1.0.0", local.display()),
        "private/a:1.0",
        &[],
    );

    let host = registry.host();
    let pulled = demo(
        &dir.path().join("r"),
        b"private",
        &format!("{{registry: \"{host}/private/a:1.0\"}}"),
        "[linux/amd64]",
    );
    let store = dir.path().join("store");
    let run = publish(
        &store,
        &pulled,
        "v1",
        &[
            "--insecure-registry",
            &host,
            "--registry-username",
            "vendor",
            "--registry-password",
            "wrong",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains(&format!("error: cannot pull `{host}/private/a:1.0`: ")),
        "{}",
        run.stderr
    );
    assert_eq!(blob_count(&store), 0);

    let run = publish(
        &store,
        &pulled,
        "v1",
        &[
            "--insecure-registry",
            &host,
            "--registry-username",
            "vendor",
            "--registry-password",
            "s3cret",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());

    // Credentials from a docker config file work too.
    let cfg = dir.path().join("docker-config.json");
    let auth = base64_encode(b"vendor:s3cret");
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let run = publish(
        &dir.path().join("store3"),
        &pulled,
        "v1",
        &[
            "--insecure-registry",
            &host,
            "--docker-config",
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn images_from_an_oci_layout_and_a_docker_archive() {
    if !require("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let model = demo(
        &dir.path().join("m"),
        b"layout payload",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    assert_eq!(publish(&local, &model, "v1", &[]).code, 0);
    let built = show(&local, "1.0.0")["components"]["a"]["images"]["linux/amd64"].clone();

    // The store itself is an OCI layout.
    let from_layout = demo(
        &dir.path().join("l"),
        b"x",
        &format!(
            "{{oci_layout: \"{}\", tag: \"demo/a:1.0.0\"}}",
            local.display()
        ),
        "[linux/amd64]",
    );
    let store = dir.path().join("store");
    let run = publish(&store, &from_layout, "v1", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        show(&store, "1.0.0")["components"]["a"]["images"]["linux/amd64"],
        built
    );

    // A docker-archive (as `docker save` writes it), made by skopeo.
    let tar = dir.path().join("a.tar");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            &format!("oci:{}:demo/a:1.0.0", local.display()),
            &format!("docker-archive:{}:team/a:1.0", tar.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_archive = demo(
        &dir.path().join("t"),
        b"x",
        &format!("{{archive: \"{}\", tag: \"team/a:1.0\"}}", tar.display()),
        "[linux/amd64]",
    );
    let run = publish(&store, &from_archive, "v2", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let image = &show(&store, "2.0.0")["components"]["a"]["images"]["linux/amd64"];
    assert_eq!(
        image["config"], built["config"],
        "the archive carries the same config"
    );
    assert_eq!(
        image["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );

    // A tag the archive does not hold.
    let wrong = demo(
        &dir.path().join("w"),
        b"x",
        &format!("{{archive: \"{}\", tag: \"team/a:2.0\"}}", tar.display()),
        "[linux/amd64]",
    );
    let run = publish(&dir.path().join("store2"), &wrong, "v1", &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no image tagged `team/a:2.0` (tags: docker.io/team/a:1.0)"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_interrupted_publish_leaves_no_version_and_the_next_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let m = dir.path().join("m");
    let model = demo(&m, b"", "{from_binary: true}", "[linux/amd64]");
    // A large (sparse) binary keeps publish busy long enough to be killed mid-way.
    let f = std::fs::File::create(m.join("bin/a")).unwrap();
    f.set_len(1 << 30).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, &elf_executable("linux/amd64", b""), 0).unwrap();
    drop(f);
    let mut child = Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args([
            "publish",
            "v1",
            "-f",
            model.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the binary is streaming into a temp blob (not after a fixed time, which
    // a fast machine could outrun).
    let tmp = store.join("tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !std::fs::read_dir(&tmp).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 1 << 20))
    }) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "publish finished before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no temp blob after 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(versions(&store).is_empty(), "no partial version is listed");

    let f = std::fs::File::create(m.join("bin/a")).unwrap();
    f.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, &elf_executable("linux/amd64", b""), 0).unwrap();
    drop(f);
    let run = publish(&store, &model, "v1", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(versions(&store), ["1.0.0"]);
    assert_eq!(
        std::fs::read_dir(store.join("tmp")).unwrap().count(),
        0,
        "temp files of the killed run are gone"
    );
    let run = appmodel(
        &store,
        &["gc", "--json", "--store", store.to_str().unwrap()],
    );
    let gc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        gc["blobs_kept"].as_u64().unwrap(),
        4,
        "binary, layer, config, manifest"
    );
}

/// Pushes a one-component image built from a binary to `registry` as `repo`; returns the
/// model that pulls it back and the image as first published.
fn pushed_demo(registry: &Registry, dir: &Path, repo: &str) -> (PathBuf, Value) {
    let local = dir.join("local");
    let model = demo(
        &dir.join("m"),
        b"payload behind auth",
        "{from_binary: true}",
        "[linux/amd64]",
    );
    assert_eq!(publish(&local, &model, "v1", &[]).code, 0);
    let built = show(&local, "1.0.0")["components"]["a"]["images"]["linux/amd64"].clone();
    registry.push(&format!("oci:{}:demo/a:1.0.0", local.display()), repo, &[]);
    let pulled = demo(
        &dir.join("r"),
        b"payload behind auth",
        &format!("{{registry: \"{}/{repo}\"}}", registry.host()),
        "[linux/amd64]",
    );
    (pulled, built)
}

#[test]
fn an_https_registry_signed_by_a_private_ca_is_trusted_with_registry_ca_only() {
    let Some(registry) = Registry::start_with(RegistrySetup {
        tls: true,
        ..RegistrySetup::default()
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pulled, built) = pushed_demo(&registry, dir.path(), "tls/a:1.0");
    let host = registry.host();

    // https (no --insecure-registry), the CA unknown: refused before anything is stored.
    let store = dir.path().join("store");
    let run = publish(&store, &pulled, "v1", &[]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains(&format!("error: cannot pull `{host}/tls/a:1.0`: ")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("invalid peer certificate: UnknownIssuer"),
        "the cause is named: {}",
        run.stderr
    );
    assert_eq!(blob_count(&store), 0);
    assert!(versions(&store).is_empty());

    // With the CA: the same digests as pushed.
    let ca = registry.ca_file.clone().unwrap();
    let run = publish(
        &store,
        &pulled,
        "v1",
        &["--registry-ca", ca.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        show(&store, "1.0.0")["components"]["a"]["images"]["linux/amd64"],
        built
    );

    // The same through the environment.
    let run = Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args(["publish", "v2", "-f", pulled.to_str().unwrap(), "--store"])
        .arg(&store)
        .env("APPMODEL_REGISTRY_CA", &ca)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // A file that holds no certificate is named, not silently ignored.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let run = publish(
        &dir.path().join("store2"),
        &pulled,
        "v1",
        &["--registry-ca", bogus.to_str().unwrap()],
    );
    run.assert_refused("holds no PEM certificate");
}

#[test]
fn a_registry_with_token_auth_is_pulled_with_credentials_or_a_token() {
    let Some(registry) = Registry::start_with(RegistrySetup {
        token: Some(("vendor", "t0ken-s3cret")),
        ..RegistrySetup::default()
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pulled, built) = pushed_demo(&registry, dir.path(), "private/a:1.0");
    let host = registry.host();
    let insecure = ["--insecure-registry", host.as_str()];

    // Without credentials the token carries no access: refused.
    let store = dir.path().join("store");
    let run = publish(&store, &pulled, "v1", &insecure);
    run.assert_refused(": Not authorized: ");
    assert_eq!(blob_count(&store), 0);

    // A wrong password: the token server's refusal is the error; nothing is stored.
    let mut wrong = insecure.to_vec();
    wrong.extend([
        "--registry-username",
        "vendor",
        "--registry-password",
        "wrong",
    ]);
    let run = publish(&store, &pulled, "v1", &wrong);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(&format!(
            "error: cannot pull `{host}/private/a:1.0`: Authentication failure: "
        )) && run.stderr.contains("wrong user name or password"),
        "{}",
        run.stderr
    );
    assert_eq!(blob_count(&store), 0);
    assert!(versions(&store).is_empty());

    // User and password: oci-client trades them for a token at the realm.
    let mut right = insecure.to_vec();
    right.extend([
        "--registry-username",
        "vendor",
        "--registry-password",
        "t0ken-s3cret",
    ]);
    let run = publish(&store, &pulled, "v1", &right);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        show(&store, "1.0.0")["components"]["a"]["images"]["linux/amd64"],
        built
    );

    // A token fetched beforehand, used as is.
    let token = registry.token_server.as_ref().unwrap().fetch(
        "vendor",
        "t0ken-s3cret",
        "repository:private/a:pull",
    );
    let store2 = dir.path().join("store2");
    let mut with_token = insecure.to_vec();
    with_token.extend(["--registry-token", token.as_str()]);
    let run = publish(&store2, &pulled, "v1", &with_token);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        show(&store2, "1.0.0")["components"]["a"]["images"]["linux/amd64"],
        built
    );

    // A token for another repository does not open this one.
    let other = registry.token_server.as_ref().unwrap().fetch(
        "vendor",
        "t0ken-s3cret",
        "repository:elsewhere/b:pull",
    );
    let store3 = dir.path().join("store3");
    let mut with_other = insecure.to_vec();
    with_other.extend(["--registry-token", other.as_str()]);
    let run = publish(&store3, &pulled, "v1", &with_other);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(blob_count(&store3), 0);
}
