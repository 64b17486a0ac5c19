//! The Helm form: the sample exports as a chart that real Helm lints clean (the Helm v4
//! library in PyPI helm-sdkpy, through tests/helm_lint.py), with its default values and with
//! a site's values; bad site values are refused by the generated values.schema.json; the
//! packaged chart is byte-identical across exports.
//!
//! Real Helm also installs the chart into a fake Kubernetes API server (tests/helm_render.py):
//! the objects it creates are checked against the official Kubernetes schemas (PyPI
//! kubernetes-validate). No Kubernetes cluster runs on these machines: an install on a real
//! cluster is not exercised here (the helm invocation is unit-tested in importer/src/helm.rs).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::engines::sample_built;
use common::{appmodel, root};

/// Whether python3 can import helm-sdkpy. Under `CI=true` a missing library is a failure.
fn helm_sdkpy() -> bool {
    python_imports("helm_sdkpy, yaml", "helm-sdkpy")
}

/// Whether python3 can import `modules` (PyPI `packages`). Under `CI=true` a missing library
/// is a failure; elsewhere the test is skipped with a printed reason.
fn python_imports(modules: &str, packages: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    common::engines::needs(
        ok,
        &format!("python3 with {packages} ({modules})"),
        "scripts/setup.sh installs it",
    )
}

struct Exported {
    dir: tempfile::TempDir,
}

impl Exported {
    /// Publishes the sample's versions and exports each as a Helm bundle directory.
    fn new() -> Option<Exported> {
        if !sample_built(&root()) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        for v in ["1.0.0", "1.1.0"] {
            let model = root().join(format!("samples/im-stack/versions/{v}/appmodel.yaml"));
            let run = appmodel(
                dir.path(),
                &[
                    "publish",
                    v,
                    "-f",
                    model.to_str().unwrap(),
                    "--store",
                    store.to_str().unwrap(),
                ],
            );
            assert_eq!(run.code, 0, "{}", run.transcript());
            export(dir.path(), &store, v, &format!("bundle-{v}"));
        }
        Some(Exported { dir })
    }

    fn chart(&self, version: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("bundle-{version}/helm/im-stack-{version}.tgz"))
    }

    /// Publishes and exports 1.2.0: the sample's 1.1.0 with config files, one plain (a
    /// ConfigMap for push-service) and one using a secret parameter (a Secret for im-server).
    fn with_config_files(&self) -> PathBuf {
        let sample = root().join("samples/im-stack");
        let text = std::fs::read_to_string(sample.join("versions/1.1.0/appmodel.yaml"))
            .unwrap()
            .replacen("version: 1.1.0", "version: 1.2.0", 1)
            .replace("../../dist/", &format!("{}/dist/", sample.display()))
            .replacen(
                "\ncomponents:\n",
                "  - {name: push_key, type: secret, required: true}\n\ncomponents:\n",
                1,
            )
            .replacen(
                "        size: 256Mi\n",
                "        size: 256Mi\n      - {name: conf, kind: config, path: /etc/push/push.conf, content: \"users=${params.max_users}\\n\"}\n",
                1,
            )
            .replacen(
                "    replicas: 1\n",
                "    replicas: 1\n    volumes:\n      - {name: gateway, kind: config, path: /etc/im/gateway.conf, content: \"domain=${params.domain}\\nkey=${params.push_key}\\n\"}\n",
                1,
            );
        let model = self.file("appmodel-1.2.0.yaml", &text);
        let store = self.dir.path().join("store");
        let run = appmodel(
            self.dir.path(),
            &[
                "publish",
                "1.2.0",
                "-f",
                model.to_str().unwrap(),
                "--store",
                store.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        export(self.dir.path(), &store, "1.2.0", "bundle-1.2.0");
        self.chart("1.2.0")
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn export(dir: &Path, store: &Path, version: &str, out: &str) {
    let run = appmodel(
        dir,
        &[
            "export",
            "--format",
            "helm",
            "--version",
            version,
            "-o",
            dir.join(out).to_str().unwrap(),
            "--tool",
            env!("CARGO_BIN_EXE_appmodel"),
            "--store",
            store.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
}

/// Helm's lint messages as (severity, path): 1 info, 2 warning, 3 error.
fn lint(chart: &Path, values: Option<&Path>) -> Vec<(u64, String)> {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/helm_lint.py")).arg(chart);
    if let Some(v) = values {
        cmd.arg(v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "helm_lint.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["severity"].as_u64().unwrap(),
                m["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn problems(messages: &[(u64, String)]) -> Vec<&(u64, String)> {
    messages.iter().filter(|(s, _)| *s >= 2).collect()
}

const SITE_VALUES: &str = "global:\n  imageRegistry: registry.site.example:5000/apps\nparams:\n  domain: chat.plant.example\n  max_users: 500\n  admin_secret: s3cretS3cretS3cretS3cretS3cret00\n";

#[test]
fn every_exported_chart_passes_helm_lint_with_default_and_site_values() {
    let Some(e) = Exported::new() else { return };
    if !helm_sdkpy() {
        return;
    }
    let site = e.file("site-values.yaml", SITE_VALUES);
    for v in ["1.0.0", "1.1.0"] {
        let default = lint(&e.chart(v), None);
        assert!(problems(&default).is_empty(), "{v} default: {default:?}");
        // Only the icon recommendation (info) remains.
        assert!(default.iter().all(|(s, p)| *s == 1 && p == "Chart.yaml"));
        let with_site = lint(&e.chart(v), Some(&site));
        assert!(problems(&with_site).is_empty(), "{v} site: {with_site:?}");
    }
}

/// What tests/helm_render.py reports: real Helm's install of the chart into a fake API server.
struct Rendered {
    /// Created objects: kind -> names without the release prefix.
    kinds: std::collections::BTreeMap<String, Vec<String>>,
    errors: Vec<String>,
    helm_error: Option<String>,
    json: serde_json::Value,
}

fn render(chart: &Path, values: Option<&Path>) -> Rendered {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/helm_render.py")).arg(chart);
    if let Some(v) = values {
        cmd.arg(v);
    }
    let out = cmd.output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "helm_render.py printed no report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Rendered {
        kinds: serde_json::from_value(json["kinds"].clone()).unwrap(),
        errors: serde_json::from_value(json["errors"].clone()).unwrap(),
        helm_error: json["helm_error"].as_str().map(str::to_string),
        json,
    }
}

#[test]
fn rendered_manifests_pass_the_official_kubernetes_schemas() {
    let Some(e) = Exported::new() else { return };
    if !helm_sdkpy() || !python_imports("kubernetes_validate", "kubernetes-validate") {
        return;
    }
    // The chart's defaults with only what an install requires, and a site's values.
    let required = e.file(
        "required-values.yaml",
        "global:\n  imageRegistry: registry.site.example\nparams:\n  domain: chat.plant.example\n",
    );
    let site = e.file("site-values.yaml", SITE_VALUES);
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for v in ["1.0.0", "1.1.0"] {
        for values in [&required, &site] {
            let r = render(&e.chart(v), Some(values));
            let what = format!("{v} with {}", values.display());
            assert_eq!(r.helm_error, None, "{what}: {}", r.json);
            assert!(r.errors.is_empty(), "{what}: {:#?}", r.errors);
            // Per component: its workload and its Service; the secret parameter's Secret.
            // (The sample has no config file, so no ConfigMap.)
            let expected: std::collections::BTreeMap<String, Vec<String>> = [
                ("Deployment", names(&["im-server"])),
                ("StatefulSet", names(&["im-store", "push-service"])),
                ("Service", names(&["im-server", "im-store", "push-service"])),
                ("Secret", names(&["params"])),
            ]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
            assert_eq!(r.kinds, expected, "{what}: {}", r.json);
            assert!(r.json["unanswered"].as_array().unwrap().is_empty());
        }
    }
    // Config files: a ConfigMap, and a Secret for the one that uses a secret parameter.
    let chart = e.with_config_files();
    let values = e.file(
        "values-1.2.0.yaml",
        "global:\n  imageRegistry: registry.site.example\nparams:\n  domain: chat.plant.example\n  push_key: k3y\n",
    );
    let r = render(&chart, Some(&values));
    assert_eq!(r.helm_error, None, "1.2.0: {}", r.json);
    assert!(r.errors.is_empty(), "1.2.0: {:#?}", r.errors);
    assert_eq!(
        r.kinds["ConfigMap"],
        names(&["push-service-config"]),
        "{}",
        r.json
    );
    assert_eq!(
        r.kinds["Secret"],
        names(&["im-server-config", "params"]),
        "{}",
        r.json
    );
    assert_eq!(r.kinds["Deployment"], names(&["im-server"]), "{}", r.json);

    // With the defaults alone real Helm refuses to render: `domain` has no default.
    let r = render(&e.chart("1.1.0"), None);
    let error = r.helm_error.unwrap_or_default();
    assert!(
        error.contains("parameter `domain` is required"),
        "{}",
        r.json
    );
    assert!(r.kinds.is_empty());
}

#[test]
fn bad_site_values_are_refused_by_the_generated_schema() {
    let Some(e) = Exported::new() else { return };
    if !helm_sdkpy() {
        return;
    }
    let bad = [
        ("below the minimum", "params:\n  max_users: 0\n"),
        ("above the maximum", "params:\n  max_users: 100001\n"),
        ("integer as text", "params:\n  max_users: \"many\"\n"),
        ("pattern", "params:\n  domain: Chat_Plant\n"),
        ("boolean as text", "params:\n  read_receipts: \"yes\"\n"),
        ("unknown parameter", "params:\n  colour: red\n"),
        (
            "registry with a space",
            "global:\n  imageRegistry: \"my registry\"\n",
        ),
        (
            "image by tag",
            "images:\n  im-store:\n    repository: im-stack/im-store\n    digest: latest\n",
        ),
        ("replicas", "components:\n  im-server:\n    replicas: -1\n"),
    ];
    // Every case on its own, over valid values, so each refusal is the schema's.
    let base = "params:\n  domain: chat.plant.example\n";
    for (i, (what, extra)) in bad.iter().enumerate() {
        let text = match extra.strip_prefix("params:\n") {
            Some(params) => format!("{base}{params}"),
            None => format!("{base}{extra}"),
        };
        let values = e.file(&format!("bad-{i}.yaml"), &text);
        let messages = lint(&e.chart("1.1.0"), Some(&values));
        assert!(
            messages.contains(&(3, "values.yaml".to_string())),
            "{what}: Helm did not refuse the values: {messages:?}"
        );
    }
}

#[test]
fn the_packaged_chart_is_the_same_bytes_every_time() {
    let Some(e) = Exported::new() else { return };
    let store = e.dir.path().join("store");
    export(e.dir.path(), &store, "1.1.0", "again");
    let again = e.dir.path().join("again/helm/im-stack-1.1.0.tgz");
    assert_eq!(
        std::fs::read(e.chart("1.1.0")).unwrap(),
        std::fs::read(again).unwrap()
    );
    // The gzip header carries no time.
    assert_eq!(
        &std::fs::read(e.chart("1.1.0")).unwrap()[4..8],
        &[0, 0, 0, 0]
    );
}

#[test]
fn push_images_lands_every_image_by_digest_and_sends_no_blob_twice() {
    use common::engines::Registry;
    use sha2::Digest as _;
    let Some(e) = Exported::new() else { return };
    let Some(reg) = Registry::start(Some(("site", "s3cret"))) else {
        return;
    };
    let state = e.dir.path().join("state");
    let bundle = e.dir.path().join("bundle-1.1.0");
    let run = appmodel(
        e.dir.path(),
        &[
            "import",
            bundle.to_str().unwrap(),
            "--allow-unsigned",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let target = format!("{}/site/apps", reg.host());
    let push = |password: &str| {
        appmodel(
            e.dir.path(),
            &[
                "push-images",
                "--registry",
                &target,
                "--insecure",
                "--registry-username",
                "site",
                "--registry-password",
                password,
                "--state-dir",
                state.to_str().unwrap(),
                "--json",
            ],
        )
    };
    let wrong = push("wrong");
    assert_ne!(wrong.code, 0, "{}", wrong.transcript());

    let first = push("s3cret");
    assert_eq!(first.code, 0, "{}", first.transcript());
    let report: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    // Three images from static binaries, for two platforms: a config and one layer each.
    assert_eq!(report["blobs_pushed"], 12, "{report}");
    assert_eq!(report["blobs_skipped"], 0);

    for img in images {
        let reference = img["reference"].as_str().unwrap();
        let (_, digest) = reference.split_once('@').unwrap();
        // skopeo reads the manifest back: its bytes hash to the digest the chart pins.
        let raw = Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds=site:s3cret",
            ])
            .arg(format!("docker://{reference}"))
            .output()
            .unwrap();
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        let actual = format!("sha256:{:x}", sha2::Sha256::digest(&raw.stdout));
        assert_eq!(actual, digest);
        // 1.1.0 is for two platforms: the pinned reference is an OCI index naming both.
        let pinned: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(
            pinned["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let of_arch = |arch: &str| {
            pinned["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["platform"]["architecture"] == arch)
                .map(|m| m["digest"].clone())
                .unwrap_or_else(|| panic!("no {arch} image in {pinned}"))
        };
        // The tag names the same index, and a node of each platform pulls its own image.
        let by_tag = reference.split('@').next().unwrap().to_string() + ":1.1.0";
        for arch in ["amd64", "arm64"] {
            let pulled = e.dir.path().join(format!(
                "pulled-{}-{arch}",
                img["component"].as_str().unwrap()
            ));
            let copy = Command::new("skopeo")
                .args([
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--src-creds=site:s3cret",
                    "--override-os=linux",
                    &format!("--override-arch={arch}"),
                ])
                .arg(format!("docker://{by_tag}"))
                .arg(format!("oci:{}:x", pulled.display()))
                .output()
                .unwrap();
            assert!(
                copy.status.success(),
                "{}",
                String::from_utf8_lossy(&copy.stderr)
            );
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(pulled.join("index.json")).unwrap()).unwrap();
            assert_eq!(index["manifests"][0]["digest"], of_arch(arch), "{arch}");
        }
    }

    // The chart's values name the same repositories and digests below the registry.
    let chart = std::fs::read(e.chart("1.1.0")).unwrap();
    let mut values = String::new();
    let mut archive = tar::Archive::new(gunzip(&chart));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("values.yaml") {
            std::io::Read::read_to_string(&mut entry, &mut values).unwrap();
        }
    }
    for img in images {
        let reference = img["reference"].as_str().unwrap();
        let (_, digest) = reference.split_once('@').unwrap();
        assert!(values.contains(digest));
        let repo = reference.split('@').next().unwrap();
        let repo = repo.strip_prefix(&format!("{target}/")).unwrap();
        assert!(
            values.contains(&format!("repository: \"{repo}\"")),
            "{values}"
        );
    }

    // Again with the appmodel that ships (static musl: no NSS), reaching the registry by a
    // name it must look up: nothing is sent twice.
    let Some(shipped) = common::engines::static_tool() else {
        return;
    };
    let out = Command::new(&shipped)
        .args(["push-images", "--registry"])
        .arg(format!("localhost:{}/site/apps", reg.port))
        .args(["--insecure", "--registry-username", "site"])
        .args(["--registry-password", "s3cret", "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["blobs_pushed"], 0, "{report}");
    assert_eq!(report["blobs_skipped"], 12);
}

/// The chart is a gzip'd tar; `gzip -dc` unpacks it (no gzip crate in the test deps).
fn gunzip(bytes: &[u8]) -> std::io::Cursor<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::io::Cursor::new(out.stdout)
}

/// The sample's 1.2.0 takes its user limit from the licence: appmodel sets `licence:` in the
/// site values (importer/src/helm.rs `site_values`), the chart's schema types it.
#[test]
fn a_licensed_chart_takes_its_entitlements_from_licence_values_checked_by_its_schema() {
    let Some(e) = Exported::new() else { return };
    if !helm_sdkpy() {
        return;
    }
    let store = e.dir.path().join("store");
    let model = root().join("samples/im-stack/versions/1.2.0/appmodel.yaml");
    let run = appmodel(
        e.dir.path(),
        &[
            "publish",
            "1.2.0",
            "-f",
            model.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    export(e.dir.path(), &store, "1.2.0", "bundle-1.2.0");
    let chart = e.chart("1.2.0");
    let base = "global:\n  imageRegistry: registry.site.example\nparams:\n  domain: chat.plant.example\nlicence:\n  plan: pro\n";
    let good = e.file("licensed.yaml", &format!("{base}  max_users: 1000\n"));
    let messages = lint(&chart, Some(&good));
    assert!(problems(&messages).is_empty(), "{messages:?}");
    let r = render(&chart, Some(&good));
    assert_eq!(r.helm_error, None, "{}", r.json);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let every = |n: u64| serde_json::json!({"im-server": n, "im-store": n, "push-service": n});
    assert_eq!(r.json["replicas"], every(1), "{}", r.json);
    // The licence check's stop (`helm upgrade --reuse-values --set licence.stopped=true`):
    // every workload at 0 replicas, the rest (volume claims among it) as it was.
    let stopped = e.file(
        "stopped.yaml",
        &format!("{base}  max_users: 1000\n  stopped: true\n"),
    );
    let s = render(&chart, Some(&stopped));
    assert_eq!(s.helm_error, None, "{}", s.json);
    assert!(s.errors.is_empty(), "{:#?}", s.errors);
    assert_eq!(s.json["replicas"], every(0), "{}", s.json);
    assert_eq!(s.kinds, r.kinds);
    let templates = gunzip(&std::fs::read(&chart).unwrap());
    let mut text = String::new();
    let mut archive = tar::Archive::new(templates);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry
            .path()
            .unwrap()
            .ends_with("templates/im-server-workload.yaml")
        {
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        }
    }
    assert!(text.contains(".Values.licence.max_users"), "{text}");
    for (what, extra) in [
        ("as text", "  max_users: many\n"),
        ("unknown", "  seats: 5\n"),
        ("stopped as text", "  stopped: yes-please\n"),
    ] {
        let bad = e.file("bad-licence.yaml", &format!("{base}{extra}"));
        let messages = lint(&chart, Some(&bad));
        assert!(
            messages.contains(&(3, "values.yaml".to_string())),
            "{what}: Helm did not refuse the licence values: {messages:?}"
        );
    }
}
