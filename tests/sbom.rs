//! The bill of materials in every bundle: the sample's 1.1.0 exported in each form carries
//! `sbom.cdx.json`, which an independent CycloneDX implementation (PyPI
//! cyclonedx-python-lib's strict JSON validator, CycloneDX 1.6) accepts, which names what
//! the bundle ships by digest (images, binaries with their crates, the form's files) and
//! the model's dependency edges, and which `appmodel sbom` prints from a bundle (refusing a
//! changed one) or from the store, also as SPDX 2.3 (checked by spdx-tools' validator).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::engines::{require_python_module, sample_built};
use common::{appmodel, publish, root};
use serde_json::Value;
use sha2::{Digest, Sha256};

struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Option<Vendor> {
        if !sample_built(&root()) || !require_python_module("cyclonedx.validation.json") {
            return None;
        }
        let v = Vendor {
            dir: tempfile::tempdir().unwrap(),
        };
        let model = root().join("samples/im-stack/versions/1.1.0/appmodel.yaml");
        let run = publish(&v.store(), &model, "1.1.0", &[]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        Some(v)
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Exports 1.1.0 in `form` into a directory, and returns it.
    fn export(&self, form: &str, name: &str) -> PathBuf {
        let out = self.dir.path().join(name);
        let run = appmodel(
            self.dir.path(),
            &[
                "export",
                "--format",
                form,
                "--version",
                "1.1.0",
                "--store",
                self.store().to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
        out
    }

    fn sbom(&self, args: &[&str]) -> common::Run {
        let store = self.store();
        let mut all = vec!["sbom"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--store", store.to_str().unwrap()]);
        appmodel(self.dir.path(), &all)
    }
}

/// Runs cyclonedx-python-lib's strict validator for CycloneDX 1.6 JSON over `file`.
fn assert_valid_cyclonedx(file: &Path) {
    let script = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\nerr = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif err is not None:\n    print(err)\n    sys.exit(1)\nprint('valid')\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid CycloneDX 1.6: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs spdx-tools' validator (`pyspdxtools -i FILE`) over `file`.
fn assert_valid_spdx(file: &Path) {
    let out = std::process::Command::new("pyspdxtools")
        .args(["-i", file.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !said.contains("invalid"),
        "{} is not valid SPDX: {said}",
        file.display()
    );
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hashes(v: &Value) -> Vec<String> {
    v["hashes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    assert_eq!(h["alg"], "SHA-256");
                    h["content"].as_str().unwrap().to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn component<'a>(sbom: &'a Value, name: &str) -> &'a Value {
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["type"] == "application")
        .unwrap_or_else(|| panic!("no component {name}"))
}

fn parts<'a>(c: &'a Value, kind: &str) -> Vec<&'a Value> {
    c["components"]
        .as_array()
        .map(|a| a.iter().filter(|p| p["type"] == kind).collect())
        .unwrap_or_default()
}

#[test]
fn every_form_ships_a_valid_bill_of_materials_of_what_it_carries() {
    let Some(v) = Vendor::new() else { return };
    // The programs 1.1.0 ships, for both its platforms; push-service did not change on
    // amd64, so there it is 1.0.0's binary.
    let binary = |name: &str, arch: &str| {
        let v = if name == "push-service" && arch == "amd64" {
            "1.0.0"
        } else {
            "1.1.0"
        };
        root().join(format!("samples/im-stack/dist/{v}/linux-{arch}/{name}"))
    };
    for form in ["systemd", "compose", "helm"] {
        let bundle = v.export(form, &format!("b-{form}"));
        let file = bundle.join("sbom.cdx.json");
        assert_valid_cyclonedx(&file);
        let sbom: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(sbom["specVersion"], "1.6");
        assert_eq!(sbom["metadata"]["component"]["name"], "im-stack");
        assert_eq!(sbom["metadata"]["component"]["version"], "1.1.0");
        assert_eq!(
            sbom["metadata"]["component"]["supplier"]["name"],
            "Example Messaging Ltd."
        );
        assert_eq!(
            sbom["metadata"]["tools"]["components"][0]["hashes"][0]["content"],
            sha256_hex(&bundle.join("appmodel")).as_str(),
            "{form}: the appmodel that wrote it, by digest"
        );
        // The manifest lists it like every file.
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
        let listed = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "sbom.cdx.json")
            .unwrap_or_else(|| panic!("{form}: not in bundle.json"));
        assert_eq!(
            listed["sha256"].as_str().unwrap(),
            format!("sha256:{}", sha256_hex(&file))
        );

        for name in ["im-store", "push-service", "im-server"] {
            let c = component(&sbom, name);
            assert_eq!(c["version"], "1.1.0");
            // Each binary by sha256, the same as the built program's; with its crates.
            let bins = parts(c, "file");
            assert_eq!(bins.len(), 2, "{form} {name}: {c}");
            let listed: BTreeSet<Vec<String>> = bins.iter().map(|b| hashes(b)).collect();
            let built: BTreeSet<Vec<String>> = ["amd64", "arm64"]
                .map(|arch| vec![sha256_hex(&binary(name, arch))])
                .into();
            assert_eq!(listed, built, "{form} {name}");
            for bin in &bins {
                let crates: BTreeSet<String> = bin["components"]
                    .as_array()
                    .unwrap_or_else(|| {
                        panic!("{form} {name}: no crates (built without cargo auditable?)")
                    })
                    .iter()
                    .map(|p| {
                        assert!(p["purl"].as_str().unwrap().starts_with("pkg:cargo/"));
                        p["name"].as_str().unwrap().to_string()
                    })
                    .collect();
                assert!(crates.contains(name), "{form} {name}: {crates:?}");
                assert!(crates.contains("serde_json"), "{form} {name}: {crates:?}");
            }
            // Images by manifest digest, as package URLs (the forms that ship images), one
            // per platform.
            let images = parts(c, "container");
            if form == "systemd" {
                assert!(images.is_empty(), "{form} {name}");
            } else {
                assert_eq!(images.len(), 2, "{form} {name}");
                let mut archs = BTreeSet::new();
                for image in images {
                    let purl = image["purl"].as_str().unwrap();
                    let digest = image["version"].as_str().unwrap();
                    let arch = purl
                        .split("arch=")
                        .nth(1)
                        .and_then(|a| a.split('&').next())
                        .unwrap();
                    archs.insert(arch.to_string());
                    assert_eq!(
                        purl,
                        format!(
                            "pkg:oci/{name}@sha256%3A{}?arch={arch}&os=linux",
                            digest.strip_prefix("sha256:").unwrap()
                        )
                    );
                    assert!(
                        bundle.join("blobs/sha256").join(&digest[7..]).is_file(),
                        "{form} {name}: the image's manifest is in the bundle"
                    );
                }
                assert_eq!(archs, BTreeSet::from(["amd64".into(), "arm64".into()]));
            }
        }
        // The form's own files, by the digests the manifest lists.
        let files: Vec<&Value> = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "file")
            .collect();
        let prefix = match form {
            "systemd" => "systemd/",
            "compose" => "compose/",
            _ => "helm/",
        };
        assert!(!files.is_empty(), "{form}");
        for f in files {
            let path = f["name"].as_str().unwrap();
            assert!(path.starts_with(prefix), "{form}: {path}");
            assert_eq!(
                hashes(f),
                [sha256_hex(&bundle.join(path))],
                "{form}: {path}"
            );
        }
        // The model's edges: im-server needs the other two.
        let deps = sbom["dependencies"].as_array().unwrap();
        let server = deps
            .iter()
            .find(|d| d["ref"] == "component/im-server")
            .unwrap();
        let on: BTreeSet<&str> = server["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(
            on,
            BTreeSet::from(["component/im-store", "component/push-service"]),
            "{form}"
        );

        // `appmodel sbom BUNDLE` prints the bundle's own file.
        let run = v.sbom(&[bundle.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert_eq!(run.stdout.as_bytes(), std::fs::read(&file).unwrap());
    }

    // Byte-identical when the version is exported again.
    let again = v.export("systemd", "b-systemd-again");
    assert_eq!(
        std::fs::read(again.join("sbom.cdx.json")).unwrap(),
        std::fs::read(v.dir.path().join("b-systemd/sbom.cdx.json")).unwrap()
    );

    // From the store: every artifact of the version, and just as valid.
    let run = v.sbom(&["1.1.0"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let from_store = v.dir.path().join("store.cdx.json");
    std::fs::write(&from_store, &run.stdout).unwrap();
    assert_valid_cyclonedx(&from_store);
    let sbom: Value = serde_json::from_str(&run.stdout).unwrap();
    let c = component(&sbom, "im-server");
    // An image and a binary for each of amd64 and arm64.
    assert_eq!(parts(c, "container").len(), 2);
    assert_eq!(parts(c, "file").len(), 2);
}

#[test]
fn the_same_bill_of_materials_as_spdx_passes_spdx_tools() {
    let Some(v) = Vendor::new() else { return };
    if !common::engines::needs(
        std::process::Command::new("pyspdxtools")
            .arg("--help")
            .output()
            .is_ok_and(|o| o.status.success()),
        "spdx-tools (`pyspdxtools`)",
        "scripts/setup.sh installs it (PyPI spdx-tools)",
    ) {
        return;
    }
    let bundle = v.export("compose", "b");
    let run = v.sbom(&[bundle.to_str().unwrap(), "--format", "spdx"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let file = v.dir.path().join("b.spdx.json");
    std::fs::write(&file, &run.stdout).unwrap();
    assert_valid_spdx(&file);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages = doc["packages"].as_array().unwrap();
    let server = packages.iter().find(|p| p["name"] == "im-server").unwrap();
    assert_eq!(server["versionInfo"], "1.1.0");
    assert!(
        packages
            .iter()
            .any(|p| p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|l| l.starts_with("pkg:oci/im-server@sha256%3A"))),
        "the image as a package URL"
    );
    assert!(packages.iter().any(|p| p["name"] == "serde_json"));
    let rel = doc["relationships"].as_array().unwrap();
    assert!(rel.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"
        && r["spdxElementId"] == "SPDXRef-component-im-server"
        && r["relatedSpdxElement"] == "SPDXRef-component-im-store"));
}

#[test]
fn a_changed_bill_of_materials_is_refused_by_name() {
    let Some(v) = Vendor::new() else { return };
    let bundle = v.export("compose", "b");
    let file = bundle.join("sbom.cdx.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("im-server", "im-serveR", 1)).unwrap();
    let run = v.sbom(&[bundle.to_str().unwrap()]);
    run.assert_refused("sbom.cdx.json` is not the file the bundle manifest lists");
    assert!(run.stdout.is_empty(), "nothing printed: {}", run.stdout);

    // A link in its place is not followed.
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
    let run = v.sbom(&[bundle.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("sbom.cdx.json"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // A version the store does not hold.
    let run = v.sbom(&["9.9"]);
    run.assert_refused("version 9.9 of `im-stack` is not published");
}

#[test]
fn a_vendors_own_sbom_of_a_component_travels_in_the_bundle_and_is_linked() {
    let Some(v) = Vendor::new() else { return };
    let vendor_sbom = v.dir.path().join("im-server.cdx.json");
    std::fs::write(
        &vendor_sbom,
        r#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [{"type": "library", "name": "openssl", "version": "3.0.11"}]}"#,
    )
    .unwrap();
    let with_sbom = |file: &Path| {
        let text =
            std::fs::read_to_string(root().join("samples/im-stack/versions/1.1.0/appmodel.yaml"))
                .unwrap();
        text.replace(
            "  - name: im-server\n",
            &format!("  - name: im-server\n    sbom: {}\n", file.display()),
        )
    };
    // Beside the original, so its relative binary paths still hold.
    let model = root().join(format!(
        "samples/im-stack/versions/1.1.0/.test-sbom-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&model, with_sbom(&vendor_sbom)).unwrap();
    let run = publish(&v.store(), &model, "1.1.1", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());

    // Not CycloneDX or SPDX JSON: refused by name, nothing published.
    let bogus = v.dir.path().join("notes.txt");
    std::fs::write(&bogus, "made with love\n").unwrap();
    std::fs::write(&model, with_sbom(&bogus)).unwrap();
    let run = publish(&v.store(), &model, "1.1.2", &[]);
    let _ = std::fs::remove_file(&model);
    run.assert_refused("component `im-server`: its SBOM");
    assert!(run.stderr.contains("notes.txt"), "{}", run.stderr);

    let out = v.dir.path().join("b");
    let run = appmodel(
        v.dir.path(),
        &[
            "export",
            "--format",
            "systemd",
            "--version",
            "1.1.1",
            "--store",
            v.store().to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let hex = sha256_hex(&vendor_sbom);
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(&hex)).unwrap(),
        std::fs::read(&vendor_sbom).unwrap(),
        "the vendor's file travels as it is"
    );
    let file = out.join("sbom.cdx.json");
    assert_valid_cyclonedx(&file);
    let sbom: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let link = &component(&sbom, "im-server")["externalReferences"][0];
    assert_eq!(link["type"], "bom");
    assert_eq!(link["url"], format!("blobs/sha256/{hex}"));
    assert_eq!(hashes(link), [hex]);
    assert!(component(&sbom, "im-store")["externalReferences"].is_null());
}
