//! Offline bundles end to end: publish -> export -> import, byte-identical re-export, delta
//! bundles, and bad bundles refused with the offending file named and the site unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{appmodel, Run};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A vendor store with demo 1.0.0 and 1.1.0; 1.1.0 changes component `b` only.
struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Vendor {
        let v = Vendor {
            dir: tempfile::tempdir().unwrap(),
        };
        // A small stand-in for the appmodel executable keeps bundles small in these tests.
        std::fs::write(
            v.dir.path().join("tool"),
            b"#!/bin/sh\necho stand-in for appmodel\n",
        )
        .unwrap();
        for (version, b_payload) in [("1.0.0", "b one"), ("1.1.0", "b two")] {
            let m = v.dir.path().join(format!("m{version}"));
            std::fs::create_dir_all(m.join("bin")).unwrap();
            let a = common::elf_executable("linux/amd64", &[b'a'; 300_000]);
            std::fs::write(m.join("bin/a"), a).unwrap();
            let b = common::elf_executable("linux/amd64", b_payload.as_bytes());
            std::fs::write(m.join("bin/b"), b).unwrap();
            let model = format!(
                "apiVersion: appmodel/v1\napp: {{name: demo, version: {version}}}\ncomponents:\n  - name: a\n    binaries: {{linux/amd64: bin/a}}\n    image: {{from_binary: true}}\n    ports: [{{name: http, port: 8080, protocol: http}}]\n  - name: b\n    binaries: {{linux/amd64: bin/b}}\n    image: {{from_binary: true}}\n    depends_on: [a]\n"
            );
            std::fs::write(m.join("appmodel.yaml"), model).unwrap();
            let run = v.run(&["publish", "-f", m.join("appmodel.yaml").to_str().unwrap()]);
            assert_eq!(run.code, 0, "{}", run.transcript());
        }
        v
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn run(&self, args: &[&str]) -> Run {
        let store = self.store();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--store", store.to_str().unwrap()]);
        appmodel(self.dir.path(), &all)
    }

    /// Exports and returns the bundle's path. `out` is a name under the vendor's dir.
    /// 1.0.0 in the compose form, shipping the appmodel under test as the bundle's tool.
    fn export_shipping_this_appmodel(&self, out: &str) -> PathBuf {
        let args = ["--format", "compose", "--version", "1.0.0"];
        self.export(
            out,
            &[&args[..], &["--tool", env!("CARGO_BIN_EXE_appmodel")]].concat(),
        )
    }

    fn export(&self, out: &str, extra: &[&str]) -> PathBuf {
        let path = self.dir.path().join(out);
        let tool = self.dir.path().join("tool");
        let tool = tool.to_str().unwrap();
        let mut args = vec!["export"];
        if !extra.contains(&"--tool") {
            args.extend(["--tool", tool]);
        }
        let p = path.to_str().unwrap().to_string();
        if out.ends_with(".tar") {
            args.extend(["--archive", &p]);
        } else {
            args.extend(["-o", &p]);
        }
        args.extend_from_slice(extra);
        let run = self.run(&args);
        assert_eq!(run.code, 0, "{}", run.transcript());
        path
    }
}

/// A site state directory.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Imports with `--allow-unsigned`: most of these tests are about what an import
    /// checks besides the signature (`import_signed` is the default policy).
    fn import(&self, bundle: &Path) -> Run {
        let state = self.state();
        appmodel(
            self.dir.path(),
            &[
                "import",
                bundle.to_str().unwrap(),
                "--allow-unsigned",
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
    }

    /// Imports as a site does by default: only signed bundles from trusted keys.
    fn import_signed(&self, bundle: &Path) -> Run {
        self.run(&["import", bundle.to_str().unwrap()])
    }

    fn run(&self, args: &[&str]) -> Run {
        let state = self.state();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--state-dir", state.to_str().unwrap()]);
        appmodel(self.dir.path(), &all)
    }

    /// Every file under the state directory with its content hash.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let root = self.state();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                if p.is_dir() {
                    out.insert(rel + "/", String::new());
                    stack.push(p);
                } else {
                    out.insert(
                        rel,
                        format!("{:x}", Sha256::digest(std::fs::read(&p).unwrap())),
                    );
                }
            }
        }
        out
    }

    /// Checks that `appmodel verify` and `appmodel import` both refuse `bad` with
    /// `message`, and that neither changed the site or the bundle.
    fn refuses(&self, bad: &Path, message: &str) {
        let before = self.snapshot();
        let bundle_before = tree_or_file(bad);
        for run in [
            self.run(&["verify", bad.to_str().unwrap()]),
            self.import(bad),
        ] {
            run.assert_refused(message);
            assert_eq!(
                self.snapshot(),
                before,
                "a refused bundle must not change the site"
            );
        }
        assert_eq!(tree_or_file(bad), bundle_before, "the bundle was changed");
    }
}

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap()
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// A directory's files, or a file's bytes under its own name.
fn tree_or_file(path: &Path) -> BTreeMap<String, Vec<u8>> {
    if path.is_dir() {
        tree(path)
    } else if path.exists() {
        BTreeMap::from([(String::new(), std::fs::read(path).unwrap())])
    } else {
        BTreeMap::new()
    }
}

/// Copies a directory bundle so a test can damage the copy.
fn copy_bundle(src: &Path, dst: &Path) {
    for (rel, bytes) in tree(src) {
        let p = dst.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn a_layer(bundle: &Path) -> String {
    let m = manifest(bundle);
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("blobs/"))
        .max_by_key(|f| f["size"].as_u64().unwrap())
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_bundle_round_trips_from_store_to_site() {
    let vendor = Vendor::new();
    // This one ships the real appmodel executable.
    let bundle = vendor.export_shipping_this_appmodel("b-dir");
    let m = manifest(&bundle);
    assert_eq!(m["app"], "demo");
    assert_eq!(m["version"], "1.0.0");
    assert_eq!(m["form"], "compose");
    let paths: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for p in [
        "README.txt",
        "appmodel",
        "index.json",
        "oci-layout",
        "record.json",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let shipped = std::process::Command::new(bundle.join("appmodel"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shipped.stdout),
        format!("appmodel {}\n", env!("CARGO_PKG_VERSION"))
    );

    let site = Site::new();
    let run = site.import(&bundle);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .starts_with("imported demo 1.0.0 (compose form): "),
        "{}",
        run.stdout
    );
    let state = site.state();
    assert!(state.join("store/records/demo/1.0.0.json").is_file());
    assert!(state
        .join("bundles/demo/1.0.0/compose/bundle.json")
        .is_file());
    for f in m["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        if let Some(hex) = p.strip_prefix("blobs/sha256/") {
            assert!(state.join("store/blobs/sha256").join(hex).is_file(), "{p}");
        }
    }

    // Importing again is a no-op that skips every blob; a tar of the same bundle too.
    let run = site.import(&bundle);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(", 0 new blobs (0 B); "),
        "{}",
        run.stdout
    );
    let tar = vendor.export("b.tar", &["--format", "compose", "--version", "1.0.0"]);
    let run = site.import(&tar);
    assert_eq!(run.code, 0, "{}", run.transcript());

    // The site's store is an OCI layout skopeo can read (when skopeo is here).
    if common::engines::require("skopeo") {
        let out = std::process::Command::new("skopeo")
            .args([
                "inspect",
                &format!("oci:{}:demo/a:1.0.0", state.join("store").display()),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn exporting_twice_gives_byte_identical_bundles() {
    let vendor = Vendor::new();
    let d1 = vendor.export("d1", &["--format", "compose"]);
    let d2 = vendor.export("d2", &["--format", "compose"]);
    assert_eq!(tree(&d1), tree(&d2));
    let t1 = vendor.export("t1.tar", &["--format", "systemd"]);
    let t2 = vendor.export("t2.tar", &["--format", "systemd"]);
    assert_eq!(std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());
    // The newest version is the default.
    assert_eq!(manifest(&d1)["version"], "1.1.0");
}

#[test]
fn the_systemd_form_carries_binaries_not_images() {
    let vendor = Vendor::new();
    let bundle = vendor.export("s", &["--format", "systemd"]);
    let m = manifest(&bundle);
    let paths: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!paths.contains(&"index.json"));
    assert_eq!(
        paths.iter().filter(|p| p.starts_with("blobs/")).count(),
        2,
        "two binaries: {paths:?}"
    );
}

#[test]
fn a_delta_bundle_is_smaller_and_needs_its_base() {
    let vendor = Vendor::new();
    let full = vendor.export("full-1.1", &["--format", "compose", "--version", "1.1.0"]);
    let delta = vendor.export(
        "delta-1.1",
        &[
            "--format",
            "compose",
            "--version",
            "1.1.0",
            "--since",
            "1.0.0",
        ],
    );
    let size = |b: &Path| {
        manifest(b)["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["size"].as_u64().unwrap())
            .sum::<u64>()
    };
    let blobs = |b: &Path| {
        manifest(b)["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["path"].as_str().unwrap().starts_with("blobs/"))
            .count()
    };
    assert!(
        blobs(&delta) < blobs(&full),
        "delta leaves out a's unchanged image"
    );
    assert!(size(&delta) < size(&full));
    assert_eq!(manifest(&delta)["base"]["version"], "1.0.0");

    // A site without 1.0.0 refuses it, naming the base.
    let fresh = Site::new();
    assert_eq!(
        fresh
            .import(&vendor.export(
                "full-1.0-for-fresh",
                &["--format", "systemd", "--version", "1.0.0"]
            ))
            .code,
        0
    );
    fresh.refuses(
        &delta,
        "this delta bundle builds on demo 1.0.0, whose blobs this site does not hold",
    );

    // A site with 1.0.0 takes it.
    let site = Site::new();
    assert_eq!(
        site.import(&vendor.export("full-1.0", &["--format", "compose", "--version", "1.0.0"]))
            .code,
        0
    );
    let run = site.import(&delta);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("(compose form, delta on 1.0.0)"),
        "{}",
        run.stdout
    );
}

/// A delta leaves out the appmodel executable when the store's exports of its base shipped
/// the same one; the site's copy (from the base's bundle) goes with the delta's bundle. A
/// site that has another appmodel refuses the delta, naming it, with nothing changed;
/// `--with-tool` puts it back in.
#[test]
fn a_delta_leaves_out_the_appmodel_the_site_already_has() {
    let vendor = Vendor::new();
    let tool_sha = format!(
        "sha256:{:x}",
        Sha256::digest(std::fs::read(vendor.dir.path().join("tool")).unwrap())
    );
    let full = vendor.export("full-1.0", &["--format", "compose", "--version", "1.0.0"]);
    let since = [
        "--format",
        "compose",
        "--version",
        "1.1.0",
        "--since",
        "1.0.0",
    ];
    let delta = vendor.export("delta-1.1", &since);
    let m = manifest(&delta);
    assert_eq!(m["base"]["tool"], tool_sha.as_str(), "{m}");
    let files = m["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["path"] != "appmodel"), "{m}");
    assert!(!delta.join("appmodel").exists());
    // What is left beside the changed blobs: the manifests, the model, the form's files.
    let other: u64 = files
        .iter()
        .filter(|f| !f["path"].as_str().unwrap().starts_with("blobs/"))
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    assert!(other < 64 << 10, "{other} bytes besides the blobs");
    let readme = std::fs::read_to_string(delta.join("README.txt")).unwrap();
    assert!(readme.contains("NOT on this medium"), "{readme}");

    let site = Site::new();
    assert_eq!(site.import(&full).code, 0);
    let run = site.import(&delta);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let kept = site.state().join("bundles/demo/1.1.0/compose/appmodel");
    assert_eq!(
        format!("sha256:{:x}", Sha256::digest(std::fs::read(&kept).unwrap())),
        tool_sha
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755);

    // A site whose 1.0.0 came with another appmodel.
    std::fs::write(
        vendor.dir.path().join("tool2"),
        b"#!/bin/sh\necho another\n",
    )
    .unwrap();
    let other_tool = vendor.dir.path().join("tool2");
    let full_other = vendor.export(
        "full-1.0-other",
        &[
            "--format",
            "compose",
            "--version",
            "1.0.0",
            "--tool",
            other_tool.to_str().unwrap(),
        ],
    );
    let elsewhere = Site::new();
    assert_eq!(elsewhere.import(&full_other).code, 0);
    let before = elsewhere.snapshot();
    elsewhere.import(&delta).assert_refused(&format!(
        "this delta bundle leaves out the appmodel executable ({tool_sha}) shipped with demo 1.0.0"
    ));
    assert_eq!(
        elsewhere.snapshot(),
        before,
        "a refused delta changed the site"
    );
    let with = vendor.export("delta-with", &[&since[..], &["--with-tool"]].concat());
    let m = manifest(&with);
    assert!(m["base"].get("tool").is_none(), "{m}");
    assert!(with.join("appmodel").is_file());
    let run = elsewhere.import(&with);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn damaged_bundles_are_refused_naming_the_file() {
    let vendor = Vendor::new();
    let good = vendor.export("good", &["--format", "compose", "--version", "1.0.0"]);
    let site = Site::new();
    assert_eq!(
        site.import(&vendor.export("other", &["--format", "systemd", "--version", "1.0.0"]))
            .code,
        0
    );
    let layer = a_layer(&good);

    let flipped = vendor.dir.path().join("flipped");
    copy_bundle(&good, &flipped);
    let mut bytes = std::fs::read(flipped.join(&layer)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(flipped.join(&layer), bytes).unwrap();
    site.refuses(
        &flipped,
        &format!(
            "`{layer}` does not match bundle.json: expected sha256 `sha256:{}`, got `sha256:",
            layer.trim_start_matches("blobs/sha256/")
        ),
    );

    let truncated = vendor.dir.path().join("truncated");
    copy_bundle(&good, &truncated);
    let bytes = std::fs::read(truncated.join("record.json")).unwrap();
    std::fs::write(truncated.join("record.json"), &bytes[..bytes.len() / 2]).unwrap();
    site.refuses(
        &truncated,
        &format!(
            "`record.json` is {} bytes, bundle.json says {}",
            bytes.len() / 2,
            bytes.len()
        ),
    );

    let missing = vendor.dir.path().join("missing");
    copy_bundle(&good, &missing);
    std::fs::remove_file(missing.join(&layer)).unwrap();
    site.refuses(
        &missing,
        &format!("`{layer}` is listed in bundle.json but missing from the bundle"),
    );

    let extra = vendor.dir.path().join("extra");
    copy_bundle(&good, &extra);
    std::fs::write(extra.join("blobs/sha256/evil.sh"), "#!/bin/sh\n").unwrap();
    site.refuses(
        &extra,
        "`blobs/sha256/evil.sh` is in the bundle but not listed in bundle.json",
    );

    let nothing = vendor.dir.path().join("no-such-bundle");
    site.refuses(
        &nothing,
        &format!(
            "`{}` is not an appmodel bundle: it does not exist",
            nothing.display()
        ),
    );
    let text = vendor.dir.path().join("notes.txt");
    std::fs::write(&text, "root:x:0:0:root:/root:/bin/bash\n".repeat(40)).unwrap();
    site.refuses(
        &text,
        &format!("`{}` is not an appmodel bundle: it is neither a directory, an ISO image nor a tar file (its first 512 bytes are not a tar header)", text.display()),
    );
    let empty = vendor.dir.path().join("empty.tar");
    std::fs::write(&empty, [0u8; 1024]).unwrap();
    site.refuses(&empty, "is not an appmodel bundle: it has no bundle.json");

    let link = vendor.dir.path().join("link");
    copy_bundle(&good, &link);
    std::os::unix::fs::symlink("/etc/passwd", link.join("passwd")).unwrap();
    site.refuses(&link, "bundle entry `passwd` is refused: a symbolic link");
}

/// Rewrites the good tar, inserting `evil` (name, kind, content) right after bundle.json.
fn tar_with(
    good: &Path,
    out: &Path,
    name: &[u8],
    kind: tar::EntryType,
    content: &[u8],
    link: Option<&str>,
) {
    let mut src = tar::Archive::new(std::fs::File::open(good).unwrap());
    let mut dst = tar::Builder::new(std::fs::File::create(out).unwrap());
    for (i, e) in src.entries().unwrap().enumerate() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        dst.append_data(&mut h, path, &mut e).unwrap();
        if i == 0 {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_entry_type(kind);
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            dst.append(&h, content).unwrap();
        }
    }
    dst.finish().unwrap();
}

#[test]
fn unsafe_tar_entries_are_refused() {
    let vendor = Vendor::new();
    let good = vendor.export("good.tar", &["--format", "compose", "--version", "1.0.0"]);
    let site = Site::new();
    assert_eq!(
        site.import(&vendor.export("seed", &["--format", "systemd", "--version", "1.0.0"]))
            .code,
        0
    );
    let dir = vendor.dir.path();

    tar_with(
        &good,
        &dir.join("dotdot.tar"),
        b"../x",
        tar::EntryType::Regular,
        b"x",
        None,
    );
    site.refuses(
        &dir.join("dotdot.tar"),
        "bundle entry `../x` is refused: not a plain relative path",
    );

    tar_with(
        &good,
        &dir.join("abs.tar"),
        b"/etc/cron.d/x",
        tar::EntryType::Regular,
        b"x",
        None,
    );
    site.refuses(
        &dir.join("abs.tar"),
        "bundle entry `/etc/cron.d/x` is refused: an absolute path",
    );

    tar_with(
        &good,
        &dir.join("link.tar"),
        b"record.json",
        tar::EntryType::Symlink,
        b"",
        Some("/etc/shadow"),
    );
    site.refuses(
        &dir.join("link.tar"),
        "bundle entry `record.json` is refused: a symbolic link",
    );

    tar_with(
        &good,
        &dir.join("dev.tar"),
        b"null",
        tar::EntryType::Char,
        b"",
        None,
    );
    site.refuses(
        &dir.join("dev.tar"),
        "bundle entry `null` is refused: a device",
    );

    let record = std::fs::read(
        vendor
            .export("plain", &["--format", "compose", "--version", "1.0.0"])
            .join("record.json"),
    )
    .unwrap();
    tar_with(
        &good,
        &dir.join("dup.tar"),
        b"record.json",
        tar::EntryType::Regular,
        &record,
        None,
    );
    site.refuses(
        &dir.join("dup.tar"),
        "`record.json` appears twice in the bundle",
    );

    // A plain tar that is no bundle.
    let mut b = tar::Builder::new(std::fs::File::create(dir.join("nobundle.tar")).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", &b"hi"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    site.refuses(
        &dir.join("nobundle.tar"),
        "is not an appmodel bundle: its first entry is not bundle.json",
    );
}

#[test]
fn the_sample_round_trips_in_all_three_forms() {
    if !common::engines::sample_built(&common::root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    for v in ["1.0.0", "1.1.0"] {
        let model = common::root().join(format!("samples/im-stack/versions/{v}/appmodel.yaml"));
        assert_eq!(
            appmodel(
                dir.path(),
                &["publish", "-f", model.to_str().unwrap(), "--store", s]
            )
            .code,
            0
        );
    }
    let site = Site::new();
    for form in ["compose", "systemd", "helm"] {
        let out = dir.path().join(format!("im-{form}.tar"));
        let tool = dir.path().join("tool");
        std::fs::write(&tool, b"stand-in").unwrap();
        let run = appmodel(
            dir.path(),
            &[
                "export",
                "--format",
                form,
                "--version",
                "1.1.0",
                "--archive",
                out.to_str().unwrap(),
                "--tool",
                tool.to_str().unwrap(),
                "--store",
                s,
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        let run = site.import(&out);
        assert_eq!(run.code, 0, "{}", run.transcript());
    }
    let run = site.run(&["trust", "list"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    let run = appmodel(
        dir,
        &[
            "key",
            "generate",
            "-o",
            prefix.to_str().unwrap(),
            "--comment",
            name,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

#[test]
fn signed_bundles_and_pinned_keys() {
    let vendor = Vendor::new();
    let (secret, public) = keygen(vendor.dir.path(), "vendor");
    let (_, other_public) = keygen(vendor.dir.path(), "other");
    let signed = vendor.export(
        "signed",
        &[
            "--format",
            "systemd",
            "--version",
            "1.0.0",
            "--sign",
            secret.to_str().unwrap(),
        ],
    );
    assert!(signed.join("bundle.json.minisig").is_file());
    let unsigned = vendor.export("unsigned", &["--format", "systemd", "--version", "1.0.0"]);

    // Without a pinned key, a signed bundle is refused by default, naming the key and how
    // to pin it; `--trust-key` pins and imports in one step.
    let open = Site::new();
    let key_id = {
        let text = std::fs::read_to_string(&public).unwrap();
        let run = open.run(&[
            "verify",
            signed.to_str().unwrap(),
            "--key",
            public.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(text.contains("minisign public key"), "{text}");
        run.stdout
            .split("signed by key ")
            .nth(1)
            .unwrap()
            .trim()
            .to_string()
    };
    let run = open.import_signed(&signed);
    run.assert_refused(&format!(
        "the bundle is signed by key `{key_id}`, which this site does not trust (no key is pinned)"
    ));
    assert!(run.stderr.contains("hint: if key"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--trust-key VENDOR.pub"),
        "{}",
        run.stderr
    );
    // With --allow-unsigned it imports, saying the signature proved nothing.
    let run = open.import(&signed);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("warning: the bundle is signed by a key this site does not trust"),
        "{}",
        run.stderr
    );
    let pinning = Site::new();
    let run = pinning.run(&[
        "import",
        signed.to_str().unwrap(),
        "--trust-key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .ends_with(&format!("; signed by key {key_id}, now pinned\n")),
        "{}",
        run.stdout
    );
    assert!(pinning
        .state()
        .join(format!("trust/{key_id}.pub"))
        .is_file());
    // A --trust-key that did not sign the bundle is not pinned.
    let other_site = Site::new();
    other_site
        .run(&[
            "import",
            signed.to_str().unwrap(),
            "--trust-key",
            other_public.to_str().unwrap(),
        ])
        .assert_refused(&format!(
            "the bundle is signed by key `{key_id}`, which this site does not trust (pinned: "
        ));
    assert_eq!(
        std::fs::read_dir(other_site.state().join("trust"))
            .unwrap()
            .count(),
        0
    );

    // An unsigned bundle is refused by default, even with no key pinned.
    let run = open.import_signed(&unsigned);
    run.assert_refused("the bundle is unsigned, and this site accepts only signed bundles");
    assert!(run.stderr.contains("--allow-unsigned"), "{}", run.stderr);

    // A site that pinned the vendor's key.
    let site = Site::new();
    let run = site.run(&["trust", "add", public.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let before = site.snapshot();
    for run in [
        site.run(&["verify", unsigned.to_str().unwrap()]),
        site.import_signed(&unsigned),
    ] {
        run.assert_refused(&format!(
            "the bundle is unsigned, and this site accepts only signed bundles (trusted keys: {key_id})"
        ));
    }
    assert_eq!(site.snapshot(), before);

    let edited = vendor.dir.path().join("edited");
    copy_bundle(&signed, &edited);
    let text = std::fs::read_to_string(edited.join("bundle.json"))
        .unwrap()
        .replace(
            "\"written_by\": \"appmodel",
            "\"written_by\": \"evil appmodel",
        );
    std::fs::write(edited.join("bundle.json"), text).unwrap();
    site.refuses(&edited, "the bundle's signature is not valid: ");

    let run = site.import_signed(&signed);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.ends_with(&format!("; signed by key {key_id}\n")),
        "{}",
        run.stdout
    );

    // A site that trusts another key refuses the vendor's signature, naming both keys.
    let strict = Site::new();
    assert_eq!(
        strict
            .run(&["trust", "add", other_public.to_str().unwrap()])
            .code,
        0
    );
    for run in [
        strict.run(&["verify", signed.to_str().unwrap()]),
        strict.import_signed(&signed),
    ] {
        run.assert_refused(&format!(
            "the bundle is signed by key `{key_id}`, which this site does not trust (pinned: "
        ));
    }

    // The stock minisign tool checks the same signature.
    if common::engines::require("minisign") {
        let out = std::process::Command::new("minisign")
            .args([
                "-Vm",
                signed.join("bundle.json").to_str().unwrap(),
                "-p",
                public.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_compose_project_is_accepted_by_docker_compose_and_the_images_by_podman_load() {
    let vendor = Vendor::new();
    let bundle = vendor.export(
        "compose-check",
        &["--format", "compose", "--version", "1.0.0"],
    );
    // Both tools a site may have: Compose v1 and v2.
    for (name, mut tool) in [
        (
            "docker-compose",
            std::process::Command::new("docker-compose"),
        ),
        ("docker compose", common::engines::compose_v2()),
    ] {
        let answers = tool
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !common::engines::needs(
            answers,
            &format!("`{name}`"),
            "scripts/setup.sh installs it",
        ) {
            continue;
        }
        let mut cmd = if name == "docker-compose" {
            std::process::Command::new("docker-compose")
        } else {
            common::engines::compose_v2()
        };
        let out = cmd
            .args(["-p", "demo", "-f"])
            .arg(bundle.join("compose/docker-compose.yaml"))
            .arg("config")
            .env("APPMODEL_TOOL", bundle.join("appmodel"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("condition: service_started"),
            "{name}: {text}"
        );
    }
    if common::engines::require("podman") {
        // The bundle's root, tarred as is, is a docker-archive that podman loads.
        let tar = vendor.dir.path().join("images.tar");
        let status = std::process::Command::new("tar")
            .args([
                "-cf",
                tar.to_str().unwrap(),
                "-C",
                bundle.to_str().unwrap(),
                "manifest.json",
                "oci-layout",
                "index.json",
                "blobs",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let root = vendor.dir.path().join("podman-root");
        let runroot = vendor.dir.path().join("podman-run");
        let podman = |args: &[&str]| {
            std::process::Command::new("podman")
                .arg("--root")
                .arg(&root)
                .arg("--runroot")
                .arg(&runroot)
                .arg("--storage-driver=vfs")
                .args(args)
                .output()
                .unwrap()
        };
        let out = podman(&["load", "-i", tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docker_manifest: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
        for entry in docker_manifest.as_array().unwrap() {
            let name = entry["RepoTags"][0].as_str().unwrap();
            let out = podman(&["image", "inspect", "--format", "{{.Id}}", name]);
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(
                format!("blobs/sha256/{id}"),
                entry["Config"].as_str().unwrap(),
                "{name}"
            );
        }
    }
}

/// A bundle on read-only media (a disc, a write-protected stick) imports as is.
#[test]
fn a_bundle_on_read_only_media_imports() {
    let vendor = Vendor::new();
    let bundle = vendor.export("disc", &["--format", "systemd", "--version", "1.0.0"]);
    let mnt = vendor.dir.path().join("media");
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = |args: &[&str]| {
        std::process::Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let (b, m) = (bundle.to_str().unwrap(), mnt.to_str().unwrap());
    if !(mount(&["--bind", b, m]) && mount(&["-o", "remount,bind,ro", m])) {
        let _ = std::process::Command::new("umount").arg(m).status();
        common::engines::needs(false, "a read-only bind mount", "run the tests as root");
        return;
    }
    assert!(
        std::fs::write(mnt.join("probe"), b"x").is_err(),
        "the mount is read-only"
    );
    let site = Site::new();
    let run = site.import(&mnt);
    let _ = std::process::Command::new("umount").arg(m).status();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .starts_with("imported demo 1.0.0 (systemd form): "),
        "{}",
        run.stdout
    );
}

/// An import killed half-way keeps the blobs it had verified; the next import skips them.
#[test]
fn an_interrupted_import_resumes_without_redoing_verified_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(m.join("bin")).unwrap();
    // Two large binaries with different content (sparse files with one distinct byte).
    for (name, byte) in [("a", 1u8), ("b", 2u8)] {
        let f = std::fs::File::create(m.join("bin").join(name)).unwrap();
        f.set_len(96 << 20).unwrap();
        let head = common::elf_executable("linux/amd64", &[byte]);
        std::os::unix::fs::FileExt::write_at(&f, &head, 0).unwrap();
    }
    std::fs::write(
        m.join("appmodel.yaml"),
        "apiVersion: appmodel/v1\napp: {name: big, version: 1.0.0}\ncomponents:\n  - {name: a, binaries: {linux/amd64: bin/a}}\n  - {name: b, binaries: {linux/amd64: bin/b}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tool"), b"stand-in").unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    assert_eq!(
        appmodel(
            dir.path(),
            &[
                "publish",
                "-f",
                m.join("appmodel.yaml").to_str().unwrap(),
                "--store",
                s
            ]
        )
        .code,
        0
    );
    let bundle = dir.path().join("bundle");
    let tool = dir.path().join("tool");
    let run = appmodel(
        dir.path(),
        &[
            "export",
            "--format",
            "systemd",
            "-o",
            bundle.to_str().unwrap(),
            "--tool",
            tool.to_str().unwrap(),
            "--store",
            s,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());

    let state = dir.path().join("state");
    let blobs = state.join("store/blobs/sha256");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args([
            "import",
            bundle.to_str().unwrap(),
            "--allow-unsigned",
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first blob is in the store, while the second is being verified.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0) < 1 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be interrupted"
        );
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !state.join("store/records/big/1.0.0.json").exists(),
        "no version is visible after the kill"
    );

    let site = Site { dir };
    let run = site.run(&[
        "import",
        bundle.to_str().unwrap(),
        "--allow-unsigned",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(report["present_blobs"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(
        report["present_blobs"].as_u64().unwrap() + report["new_blobs"].as_u64().unwrap(),
        2
    );
    assert!(state.join("store/records/big/1.0.0.json").is_file());
}

#[test]
fn verify_checks_a_bundle_without_a_site_and_writes_nothing() {
    let vendor = Vendor::new();
    let (secret, public) = keygen(vendor.dir.path(), "vendor");
    let (_, other_public) = keygen(vendor.dir.path(), "other");
    let sign = ["--sign", secret.to_str().unwrap()];
    let dir = vendor.export(
        "signed",
        &[&["--format", "compose", "--version", "1.0.0"][..], &sign].concat(),
    );
    let tar = vendor.export(
        "signed.tar",
        &[&["--format", "compose", "--version", "1.0.0"][..], &sign].concat(),
    );
    let delta = vendor.export(
        "delta",
        &[
            "--format",
            "compose",
            "--version",
            "1.1.0",
            "--since",
            "1.0.0",
        ],
    );
    let before: Vec<_> = [&dir, &tar, &delta].map(|b| tree_or_file(b)).into();
    let nowhere = vendor.dir.path().join("no-site");
    let verify = |bundle: &Path, extra: &[&str]| {
        let mut args = vec![
            "verify",
            bundle.to_str().unwrap(),
            "--state-dir",
            nowhere.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        appmodel(vendor.dir.path(), &args)
    };
    let listed: u64 = manifest(&dir)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    let files = manifest(&dir)["files"].as_array().unwrap().len();

    // Signed, no key given or pinned: every byte checked, the signature said unchecked.
    for bundle in [&dir, &tar] {
        let run = verify(bundle, &["--json"]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        let out: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(out["verified_bytes"], listed, "{}", run.stdout);
        assert_eq!(out["files"], files);
        assert_eq!(out["signature_unchecked"], true);
        assert!(
            run.stderr.contains("no key was given or pinned"),
            "{}",
            run.stderr
        );
    }

    // With the vendor's key: checked and named; with another key: refused.
    let run = verify(&tar, &["--key", public.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.starts_with(&format!(
            "verified demo 1.0.0 (compose form): {files} files, "
        )) && run.stdout.contains("match bundle.json; signed by key "),
        "{}",
        run.stdout
    );
    let run = verify(&dir, &["--key", other_public.to_str().unwrap()]);
    run.assert_refused("which this site does not trust (pinned: ");
    // A key is given, so an unsigned bundle is refused.
    let run = verify(&delta, &["--key", public.to_str().unwrap()]);
    run.assert_refused("the bundle is unsigned");

    // A delta checked without a site says what the site must hold.
    let run = verify(&delta, &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("; unsigned; a delta on 1.0.0: the site must already hold its "),
        "{}",
        run.stdout
    );

    // A site that holds the base: verify says so.
    let site = Site::new();
    assert_eq!(site.import(&dir).code, 0);
    let run = site.run(&["verify", delta.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("; a delta on 1.0.0, whose "),
        "{}",
        run.stdout
    );

    assert!(!nowhere.exists(), "verify created a state directory");
    let after: Vec<_> = [&dir, &tar, &delta].map(|b| tree_or_file(b)).into();
    assert!(before == after, "verify changed a bundle");
}

/// A loop-mounted XFS filesystem (reflink is on by default), unmounted on drop. `None`
/// (the test is skipped) when this machine cannot make one; under `CI=true` that fails.
struct Xfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Xfs {
    fn new() -> Option<Xfs> {
        if !common::engines::require("mkfs.xfs") || !common::engines::require("filefrag") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("xfs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(300 << 20)
            .unwrap();
        let sh = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap()
        };
        let made = sh(&format!(
            "mkfs.xfs -q -f '{}' && mount -o loop '{}' '{}'",
            image.display(),
            image.display(),
            mnt.display()
        ));
        if !made.status.success() {
            let why = String::from_utf8_lossy(&made.stderr).into_owned();
            common::engines::needs(
                false,
                "a loop-mounted XFS",
                &format!("root and loop devices: {}", why.trim()),
            );
            return None;
        }
        Some(Xfs { _dir: dir, mnt })
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mnt)
            .status();
    }
}

#[test]
fn a_directory_export_on_a_reflink_filesystem_shares_extents_instead_of_copying() {
    let Some(xfs) = Xfs::new() else { return };
    let vendor = Vendor::new();
    let store = xfs.mnt.join("store");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(vendor.store())
        .arg(&store)
        .status()
        .unwrap();
    assert!(copied.success());
    let bundle = xfs.mnt.join("bundle");
    let run = appmodel(
        vendor.dir.path(),
        &[
            "export",
            "--format",
            "compose",
            "--version",
            "1.0.0",
            "--store",
            store.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
            "--tool",
            vendor.dir.path().join("tool").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let blobs: Vec<(String, u64)> = manifest(&bundle)["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("blobs/"))
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!blobs.is_empty());
    assert_eq!(
        report["linked_bytes"],
        blobs.iter().map(|(_, s)| s).sum::<u64>(),
        "every blob reflinked"
    );
    use std::os::unix::fs::MetadataExt;
    for (path, _) in &blobs {
        let ours = bundle.join(path);
        let theirs = store.join(path);
        let (a, b) = (
            std::fs::metadata(&ours).unwrap(),
            std::fs::metadata(&theirs).unwrap(),
        );
        // Not a hard link: its own inode, so nothing done to the bundle reaches the store.
        assert_ne!(a.ino(), b.ino(), "{path} is a hard link");
        assert_eq!(a.nlink(), 1, "{path}");
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap()
        );
        // ... yet no data was copied: its extents are the store's.
        let frag = std::process::Command::new("filefrag")
            .arg("-v")
            .arg(&ours)
            .output()
            .unwrap();
        let frag = String::from_utf8_lossy(&frag.stdout);
        assert!(frag.contains("shared"), "{path} shares no extent:\n{frag}");
    }
    let site = Site::new();
    let run = site.run(&["verify", bundle.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

/// Rewrites `file`'s entry in a directory bundle's bundle.json with its new size and sha256.
fn relist(bundle: &Path, file: &str) {
    use sha2::Digest as _;
    let bytes = std::fs::read(bundle.join(file)).unwrap();
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut m = manifest(bundle);
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == file {
            f["size"] = bytes.len().into();
            f["sha256"] = format!("sha256:{hex}").into();
        }
    }
    std::fs::write(
        bundle.join("bundle.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// Runs `verify` and `import` of `bad` (which `refuses` could not read: a FIFO, a link to a
/// device) and checks both are refused with `message`, leaving the site as it was.
fn refused_without_reading(site: &Site, bad: &Path, message: &str) {
    let before = site.snapshot();
    for run in [
        site.run(&["verify", bad.to_str().unwrap()]),
        site.import(bad),
    ] {
        run.assert_refused(message);
        assert_eq!(site.snapshot(), before);
    }
}

/// Regression: site trust defects 1 (names from bundle.json reached paths), 2 (a FIFO or a
/// link to /dev/zero in a directory bundle hung or exhausted memory), 3 (a tar extension
/// header of 1 GiB was read into memory), 4 (a bundle for another platform imported) and 12
/// (a re-import claimed to verify blobs it skipped).
#[test]
fn hostile_bundles_are_refused_before_they_reach_a_path_or_memory() {
    let vendor = Vendor::new();
    let good = vendor.export("good", &["--format", "compose", "--version", "1.0.0"]);
    let site = Site::new();
    assert_eq!(site.import(&good).code, 0);
    let outside = tempfile::tempdir().unwrap();

    // 1. Names that reach paths: checked by the model's rules, signed or not.
    let escape = format!("../../../../{}/compose/v", outside.path().display());
    for (field, value, message) in [
        (
            "version",
            escape.as_str(),
            "bundle.json is invalid: field `version` is `../../",
        ),
        (
            "version",
            "1.0.0/evil",
            "bundle.json is invalid: field `version` is `1.0.0/evil`: not a semantic version",
        ),
        (
            "version",
            "",
            "bundle.json is invalid: field `version` is ``: not a semantic version",
        ),
        (
            "version",
            "1.0.0\n",
            "bundle.json is invalid: field `version` is `1.0.0\\n`: not a semantic version",
        ),
        (
            "app",
            ".",
            "bundle.json is invalid: field `app` is `.`: not an app name",
        ),
        (
            "app",
            "../demo",
            "bundle.json is invalid: field `app` is `../demo`: not an app name",
        ),
    ] {
        let bad = vendor
            .dir
            .path()
            .join(format!("bad-{field}-{}", value.len()));
        copy_bundle(&good, &bad);
        let mut m = manifest(&bad);
        m[field] = value.into();
        std::fs::write(bad.join("bundle.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        site.refuses(&bad, message);
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

    // 2. A FIFO or a link to a device where the signature goes: refused at once.
    let fifo = vendor.dir.path().join("fifo");
    copy_bundle(&good, &fifo);
    let status = std::process::Command::new("mkfifo")
        .arg(fifo.join("bundle.json.minisig"))
        .status()
        .unwrap();
    assert!(status.success());
    refused_without_reading(
        &site,
        &fifo,
        "bundle entry `bundle.json.minisig` is refused: a FIFO, not a regular file",
    );
    let zero = vendor.dir.path().join("zero");
    copy_bundle(&good, &zero);
    std::os::unix::fs::symlink("/dev/zero", zero.join("bundle.json.minisig")).unwrap();
    refused_without_reading(
        &site,
        &zero,
        "bundle entry `bundle.json.minisig` is refused: a symbolic link",
    );
    let zero_manifest = vendor.dir.path().join("zero-manifest");
    copy_bundle(&good, &zero_manifest);
    std::fs::remove_file(zero_manifest.join("bundle.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero_manifest.join("bundle.json")).unwrap();
    refused_without_reading(
        &site,
        &zero_manifest,
        "bundle entry `bundle.json` is refused: a symbolic link",
    );

    // Key files named on the command line: a FIFO or a device is refused at once.
    let fifo_key = vendor.dir.path().join("key.pub");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo_key)
        .status()
        .unwrap()
        .success());
    for (args, name) in [
        (
            vec!["trust", "add", fifo_key.to_str().unwrap()],
            fifo_key.display().to_string(),
        ),
        (vec!["trust", "add", "/dev/zero"], "/dev/zero".to_string()),
        (
            vec![
                "verify",
                good.to_str().unwrap(),
                "--key",
                fifo_key.to_str().unwrap(),
            ],
            fifo_key.display().to_string(),
        ),
        (
            vec!["import", good.to_str().unwrap(), "--trust-key", "/dev/zero"],
            "/dev/zero".to_string(),
        ),
    ] {
        site.run(&args)
            .assert_refused(&format!("error: cannot read the key `{name}`: it is a"));
    }

    // 3. Tar extension headers claiming 1 GiB: refused before a byte of them is read.
    for (kind, name, what) in [
        (
            tar::EntryType::GNULongName,
            "././@LongLink",
            "GNU long-name",
        ),
        (tar::EntryType::XHeader, "PaxHeader/x", "PAX"),
    ] {
        let path = vendor.dir.path().join(format!("{what}.tar"));
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(1 << 30);
        h.set_mode(0o644);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'a'; 4096]);
        std::fs::write(&path, bytes).unwrap();
        site.refuses(
            &path,
            &format!("bundle entry `{what} header at byte 0` is refused: it is 1073741824 bytes, more than the 65536 bytes allowed"),
        );
    }

    // A tar's signature member is read no further than a signature's cap (64 KiB).
    let good_tar = vendor.export("good.tar", &["--format", "compose", "--version", "1.0.0"]);
    let big_sig = vendor.dir.path().join("big-sig.tar");
    tar_with(
        &good_tar,
        &big_sig,
        b"bundle.json.minisig",
        tar::EntryType::Regular,
        &vec![b'x'; 1 << 20],
        None,
    );
    site.refuses(&big_sig, "bundle entry `bundle.json.minisig` is refused: ");

    // 4. A bundle for another platform: import names both.
    let arm = vendor.dir.path().join("arm");
    copy_bundle(&good, &arm);
    let mut record: Value =
        serde_json::from_slice(&std::fs::read(arm.join("record.json")).unwrap()).unwrap();
    record["model"]["app"]["platforms"] = serde_json::json!(["linux/arm64"]);
    for c in record["model"]["components"].as_array_mut().unwrap() {
        let bin = c["binaries"]["linux/amd64"].take();
        c["binaries"] = serde_json::json!({ "linux/arm64": bin });
    }
    std::fs::write(
        arm.join("record.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    relist(&arm, "record.json");
    let mut m = manifest(&arm);
    m["platforms"] = serde_json::json!(["linux/arm64"]);
    std::fs::write(arm.join("bundle.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let run = site.run(&["verify", arm.to_str().unwrap()]);
    assert_eq!(
        run.code,
        0,
        "verify checks the bundle, not the host: {}",
        run.transcript()
    );
    let before = site.snapshot();
    site.import(&arm).assert_refused(
        "demo 1.0.0 (compose form) is built for linux/arm64, but this host is linux/amd64",
    );
    assert_eq!(site.snapshot(), before);

    // 12. A re-import onto a site that holds the blobs says what it did not read again.
    let layer = a_layer(&good);
    let flipped = vendor.dir.path().join("flipped-again");
    copy_bundle(&good, &flipped);
    let mut bytes = std::fs::read(flipped.join(&layer)).unwrap();
    bytes[10] ^= 1;
    std::fs::write(flipped.join(&layer), bytes).unwrap();
    let run = site.import(&flipped);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let files = manifest(&good)["files"].as_array().unwrap().len();
    let blobs = manifest(&good)["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("blobs/"))
        .count();
    assert!(
        run.stdout.contains(&format!(
            ": {} of {files} files verified",
            files - blobs
        )) && run.stdout.contains(&format!(
            "; {blobs} blobs already in the site store were not read again (`appmodel verify` checks every byte)"
        )),
        "{}",
        run.stdout
    );
    // verify stays the full check.
    site.run(&["verify", flipped.to_str().unwrap()])
        .assert_refused(&format!("`{layer}` does not match bundle.json"));
}

/// Site trust, concurrency: a second changing command on the same state directory waits,
/// naming the process that holds the lock; a `kill -9` of that process frees it.
#[test]
fn a_second_command_waits_naming_the_first_and_a_killed_first_frees_the_lock() {
    let vendor = Vendor::new();
    let bundle = vendor.export("b", &["--format", "compose", "--version", "1.0.0"]);
    let site = Site::new();
    let state = site.state();
    let spawn = |pause: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_appmodel"));
        cmd.args([
            "import",
            bundle.to_str().unwrap(),
            "--allow-unsigned",
            "--state-dir",
        ])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        if pause {
            cmd.env("APPMODEL_PAUSE_AT", "import-verified");
        }
        cmd.spawn().unwrap()
    };
    let mut first = spawn(true);
    // Wait until the first holds the lock and has verified everything.
    let mut first_err = first.stderr.take().unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen).contains("pausing at `import-verified`") {
        use std::io::Read;
        let mut buf = [0u8; 256];
        let n = first_err.read(&mut buf).unwrap();
        assert!(
            n > 0 && std::time::Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let second = spawn(false);
    std::thread::sleep(std::time::Duration::from_secs(2));
    // Still waiting; then the first is killed as by a power cut.
    assert!(!state.join("store/records/demo/1.0.0.json").exists());
    first.kill().unwrap();
    first.wait().unwrap();
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "waiting for `{}`, held by process {} (`appmodel import`)",
            state.join("lock").display(),
            first.id()
        )),
        "{stderr}"
    );
    assert!(state.join("store/records/demo/1.0.0.json").is_file());
}

/// Regression: site trust defect 5 — `kill -9` of a re-import could leave
/// `STATE/bundles/APP/VERSION/FORM` missing. The replacement is one rename now: after a kill
/// at any moment the imported bundle is there, whole.
#[test]
fn a_killed_reimport_never_loses_the_imported_bundle() {
    let vendor = Vendor::new();
    let bundle = vendor.export("b", &["--format", "compose", "--version", "1.0.0"]);
    let site = Site::new();
    assert_eq!(site.import(&bundle).code, 0);
    let state = site.state();
    let kept = state.join("bundles/demo/1.0.0/compose");
    let manifest_bytes = std::fs::read(bundle.join("bundle.json")).unwrap();
    let mut killed = 0;
    for i in 0..40u64 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_appmodel"))
            .args([
                "import",
                bundle.to_str().unwrap(),
                "--allow-unsigned",
                "--state-dir",
            ])
            .arg(&state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the whole import (a few tens of milliseconds here).
        std::thread::sleep(std::time::Duration::from_micros(1500 * (i % 40)));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
        assert_eq!(
            std::fs::read(kept.join("bundle.json")).unwrap(),
            manifest_bytes,
            "round {i}: the imported bundle is gone or partial"
        );
        assert!(kept.join("record.json").is_file(), "round {i}");
    }
    assert!(
        killed >= 5,
        "only {killed} of 40 imports were still running when killed"
    );
    // And the site works on.
    let run = site.run(&["verify", bundle.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(site.import(&bundle).code, 0);
}

/// Site trust defect 7: out of disk, an import said only what the OS said. Now it checks
/// first and says how much space is needed where, before a byte is written.
#[test]
fn an_import_that_does_not_fit_says_how_much_space_it_needs_where() {
    let vendor = Vendor::new();
    let bundle = vendor.export_shipping_this_appmodel("big");
    let site = Site::new();
    let state = site.state();
    let Some(disk) = common::SmallDisk::mount(&state, "size=1m") else {
        return;
    };
    let run = site.import(&bundle);
    let records = state.join("store/records").read_dir().map(|d| d.count());
    drop(disk);
    run.assert_refused(&format!(
        "not enough space at `{}` for demo 1.0.0: ",
        state.display()
    ));
    assert!(run.stderr.contains(" needed, "), "{}", run.stderr);
    assert_eq!(records.unwrap_or(0), 0);
}

/// What `readelf FLAGS BIN` prints.
fn readelf(flags: &str, bin: &Path) -> String {
    let out = std::process::Command::new("readelf")
        .arg(flags)
        .arg(bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "readelf {flags} {}", bin.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The appmodel that rides on every disc: one static executable (no interpreter, no
/// shared library), stripped, that runs with an empty environment.
#[test]
fn the_shipped_appmodel_is_one_static_executable() {
    let Some(bin) = common::engines::static_tool() else {
        return;
    };
    let headers = readelf("-ld", &bin);
    assert!(!headers.contains("INTERP"), "{headers}");
    assert!(!headers.contains("(NEEDED)"), "{headers}");
    assert!(!readelf("-S", &bin).contains(".symtab"), "not stripped");
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("appmodel "));
}

/// The appmodel for arm64 sites (static musl, aarch64) verifies a signed bundle under
/// qemu-aarch64-static, and refuses it once a byte of a blob is changed, naming the blob.
#[test]
fn the_arm64_appmodel_verifies_a_bundle_under_qemu() {
    let Some(bin) = common::engines::static_tool_arm64() else {
        return;
    };
    if !common::engines::require("qemu-aarch64-static") {
        return;
    }
    let header = readelf("-hld", &bin);
    assert!(header.contains("AArch64"), "{header}");
    assert!(
        !header.contains("INTERP") && !header.contains("(NEEDED)"),
        "{header}"
    );
    let vendor = Vendor::new();
    let key = vendor.dir.path().join("vendor");
    let run = appmodel(
        vendor.dir.path(),
        &["key", "generate", "-o", key.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let bundle = vendor.export(
        "arm",
        &[
            "--format",
            "systemd",
            "--version",
            "1.0.0",
            "--sign",
            vendor.dir.path().join("vendor.key").to_str().unwrap(),
        ],
    );
    let verify = || {
        std::process::Command::new("qemu-aarch64-static")
            .arg(&bin)
            .arg("verify")
            .arg(&bundle)
            .arg("--key")
            .arg(vendor.dir.path().join("vendor.pub"))
            .output()
            .unwrap()
    };
    let out = verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("verified demo 1.0.0"), "{stdout}");
    let blob = a_layer(&bundle);
    let path = bundle.join(&blob);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    // A new file: the export hard-linked the store's blob.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&blob), "{stderr}");
}

/// The sample's 1.1.0 programs for arm64 (samples/im-stack/build.sh) start under
/// qemu-aarch64-static and answer their health checks, probed by the arm64 appmodel; a
/// probe of a port nobody listens on fails.
#[test]
fn the_arm64_sample_answers_its_health_checks_probed_by_the_arm64_appmodel() {
    use common::engines::{free_port, needs, require, static_tool_arm64};
    let Some(tool) = static_tool_arm64() else {
        return;
    };
    let dist = common::root().join("samples/im-stack/dist/1.1.0/linux-arm64");
    if !require("qemu-aarch64-static")
        || !needs(
            dist.join("im-server").is_file(),
            "the sample built for arm64",
            "bash samples/im-stack/build.sh builds it",
        )
    {
        return;
    }
    /// The programs, killed when the test ends however it ends.
    struct Running(Vec<std::process::Child>);
    impl Drop for Running {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, push, im) = (free_port(), free_port(), free_port());
    let at = |port: u16| format!("127.0.0.1:{port}");
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let data = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let programs: [(&str, Vec<(&str, String)>); 3] = [
        (
            "im-store",
            vec![
                ("STORE_LISTEN", at(store)),
                ("STORE_DATA_DIR", data("store")),
            ],
        ),
        (
            "push-service",
            vec![("PUSH_LISTEN", at(push)), ("PUSH_DATA_DIR", data("push"))],
        ),
        (
            "im-server",
            vec![
                ("IM_LISTEN", at(im)),
                ("IM_DOMAIN", "chat.example".into()),
                ("IM_MAX_USERS", "100".into()),
                ("IM_ADMIN_SECRET", "a".repeat(32)),
                ("IM_STORE_URL", url(store)),
                ("IM_PUSH_URL", url(push)),
                ("IM_READ_RECEIPTS", "true".into()),
            ],
        ),
    ];
    let mut running = Running(Vec::new());
    for (program, env) in programs {
        let child = std::process::Command::new("qemu-aarch64-static")
            .arg(dist.join(program))
            .env_clear()
            .envs(env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        running.0.push(child);
    }
    let probe = |port: u16| {
        std::process::Command::new("qemu-aarch64-static")
            .arg(&tool)
            .args(["probe", &format!("{}/readyz", url(port))])
            .output()
            .unwrap()
    };
    for port in [store, push, im] {
        let since = std::time::Instant::now();
        loop {
            let out = probe(port);
            if out.status.success() {
                assert!(String::from_utf8_lossy(&out.stdout).contains("200"));
                break;
            }
            assert!(
                since.elapsed().as_secs() < 30,
                "port {port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    assert_eq!(probe(free_port()).status.code(), Some(1));
}

fn sha256_file(path: &Path) -> String {
    format!("sha256:{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// The sample's 1.1.0 is for amd64 and arm64: one bundle serves both, with an appmodel for
/// each. An amd64 site takes the delta from 1.0.0, which is within 1.05x of its new blobs
/// and manifests; the arm64 appmodel (from the bundle, under qemu-aarch64-static) verifies
/// it and imports the full bundle, and refuses amd64-only 1.0.0 with nothing changed. A
/// later delta leaves out the arm64 appmodel too, and the site's copy goes with it.
#[test]
fn the_sample_serves_amd64_and_arm64_from_one_bundle() {
    use common::engines::{require, static_tool, static_tool_arm64};
    if !common::engines::sample_built(&common::root()) {
        return;
    }
    let (Some(amd), Some(arm)) = (static_tool(), static_tool_arm64()) else {
        return;
    };
    if !require("qemu-aarch64-static") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let versions = common::root().join("samples/im-stack/versions");
    // 1.1.1: the 1.1.0 model again (beside it, so its binary paths hold).
    let again = versions.join(format!("1.1.0/.test-arm-{}.yaml", std::process::id()));
    std::fs::copy(versions.join("1.1.0/appmodel.yaml"), &again).unwrap();
    for (v, model) in [
        ("1.0.0", versions.join("1.0.0/appmodel.yaml")),
        ("1.1.0", versions.join("1.1.0/appmodel.yaml")),
        ("1.1.1", again.clone()),
    ] {
        let run = common::publish(&store, &model, v, &[]);
        assert_eq!(run.code, 0, "{}", run.transcript());
    }
    let _ = std::fs::remove_file(&again);
    let arm_tool = format!("linux/arm64={}", arm.display());
    let try_export = |name: &str, version: &str, extra: &[&str]| -> (Run, PathBuf) {
        let out = dir.path().join(name);
        let mut args = vec![
            "export",
            "--format",
            "compose",
            "--version",
            version,
            "-o",
            out.to_str().unwrap(),
            "--tool",
            amd.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        (appmodel(dir.path(), &args), out)
    };
    let export = |name: &str, version: &str, extra: &[&str]| -> PathBuf {
        let (run, out) = try_export(name, version, extra);
        assert_eq!(run.code, 0, "{}", run.transcript());
        out
    };
    // A tool for a platform the app is not for is refused.
    let (run, _) = try_export("no", "1.0.0", &["--tool-for", &arm_tool]);
    run.assert_refused(
        "an appmodel for linux/arm64 was given, but im-stack 1.0.0 is for linux/amd64",
    );
    // An amd64 file given as the arm64 one is refused too.
    let wrong = format!("linux/arm64={}", amd.display());
    let (run, _) = try_export("no", "1.1.0", &["--tool-for", &wrong]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("not for linux/arm64"),
        "{}",
        run.transcript()
    );

    let full_10 = export("full-1.0.0", "1.0.0", &[]);
    let delta = export(
        "delta-1.1.0",
        "1.1.0",
        &["--since", "1.0.0", "--tool-for", &arm_tool],
    );
    let m = manifest(&delta);
    assert_eq!(
        m["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(m["base"]["tool"], sha256_file(&amd).as_str(), "{m}");
    assert_eq!(
        sha256_file(&delta.join("appmodel-linux-arm64")),
        sha256_file(&arm)
    );
    // Within 1.05x of what changed: the new blobs (the arm64 appmodel among them, new in
    // 1.1.0) and the manifests.
    let files = m["files"].as_array().unwrap();
    let size_of = |f: &Value| f["size"].as_u64().unwrap();
    let path_of = |f: &Value| f["path"].as_str().unwrap().to_string();
    let changed: u64 = files
        .iter()
        .filter(|f| {
            let p = path_of(f);
            p.starts_with("blobs/") || p == "appmodel-linux-arm64" || p == "record.json"
        })
        .map(size_of)
        .sum::<u64>()
        + std::fs::metadata(delta.join("bundle.json")).unwrap().len();
    let total: u64 = files.iter().map(size_of).sum::<u64>()
        + std::fs::metadata(delta.join("bundle.json")).unwrap().len();
    let ratio = total as f64 / changed as f64;
    println!("delta 1.0.0 -> 1.1.0: {total} bytes, {changed} changed: {ratio:.4}x");
    assert!(ratio <= 1.05, "{ratio}");

    // An amd64 site: 1.0.0, then the delta; the images it would load are amd64's.
    let site = Site::new();
    assert_eq!(site.import(&full_10).code, 0);
    let run = site.import(&delta);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let kept = site.state().join("bundles/im-stack/1.1.0/compose");
    assert_eq!(sha256_file(&kept.join("appmodel")), sha256_file(&amd));
    assert_eq!(
        sha256_file(&kept.join("appmodel-linux-arm64")),
        sha256_file(&arm)
    );
    let entries: Vec<Value> =
        serde_json::from_slice(&std::fs::read(kept.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(entries.len(), 6, "three images for each of two platforms");
    for e in &entries {
        // (The configs are in the store the vendor published to, by the same path.)
        let config: Value = serde_json::from_slice(
            &std::fs::read(store.join(e["Config"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let platform = e["Platform"].as_str().unwrap();
        assert_eq!(
            format!("linux/{}", config["architecture"].as_str().unwrap()),
            platform
        );
    }

    // The arm64 appmodel the bundle carries verifies it, under qemu.
    let qemu = |args: &[&str], state: &Path| {
        let out = std::process::Command::new("qemu-aarch64-static")
            .arg(delta.join("appmodel-linux-arm64"))
            .args(args)
            .arg("--state-dir")
            .arg(state)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let arm_site = dir.path().join("arm-state");
    let (code, text) = qemu(&["verify", delta.to_str().unwrap()], &arm_site);
    assert_eq!(code, Some(0), "{text}");
    // 1.0.0 is for amd64 only: refused before anything is written.
    let (code, text) = qemu(
        &["import", full_10.to_str().unwrap(), "--allow-unsigned"],
        &arm_site,
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("built for linux/amd64, but this host is linux/arm64"),
        "{text}"
    );
    // (Opening the state directory lays out its empty skeleton; nothing of the app.)
    let written: Vec<String> = tree(&arm_site)
        .into_keys()
        .filter(|p| p.contains("im-stack") || p.contains("sha256"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    // The full 1.1.0 imports there.
    let full_11 = export("full-1.1.0", "1.1.0", &["--tool-for", &arm_tool]);
    let (code, text) = qemu(
        &["import", full_11.to_str().unwrap(), "--allow-unsigned"],
        &arm_site,
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(arm_site
        .join("bundles/im-stack/1.1.0/compose/appmodel-linux-arm64")
        .is_file());

    // 1.1.1 on 1.1.0: both appmodels are the site's already, so neither is on the medium.
    let next = export(
        "delta-1.1.1",
        "1.1.1",
        &["--since", "1.1.0", "--tool-for", &arm_tool],
    );
    let m = manifest(&next);
    assert_eq!(m["base"]["tool"], sha256_file(&amd).as_str(), "{m}");
    assert_eq!(
        m["base"]["tools"]["appmodel-linux-arm64"],
        sha256_file(&arm).as_str(),
        "{m}"
    );
    assert!(!next.join("appmodel-linux-arm64").exists());
    // Each README names the arm64 appmodel only where the medium carries it.
    let readme = |b: &Path| std::fs::read_to_string(b.join("README.txt")).unwrap();
    assert!(readme(&full_11).contains("On a linux/arm64 host, run ./appmodel-linux-arm64"));
    assert!(
        !readme(&next).contains("appmodel-linux-arm64"),
        "{}",
        readme(&next)
    );
    let run = site.import(&next);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        sha256_file(
            &site
                .state()
                .join("bundles/im-stack/1.1.1/compose/appmodel-linux-arm64")
        ),
        sha256_file(&arm)
    );
}
