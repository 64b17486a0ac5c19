//! The disc edition, first part: `export --iso` writes an ISO 9660 image (Rock Ridge and
//! Joliet) that real readers accept — xorriso, isoinfo, libarchive's bsdtar — with every
//! file's bytes, name and executable bit; the same version gives the same bytes; `verify`
//! and `import` read the image as a file (no mount, no root), and a damaged or padded
//! image is refused by name with nothing imported. (The kernel here has no iso9660 driver,
//! so nothing is loop-mounted: that is why appmodel reads images itself.)
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::engines::{require, sample_built};
use common::{appmodel, root, Run};
use sha2::Digest as _;

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Option<World> {
        if !sample_built(&root())
            || !require("xorriso")
            || !require("isoinfo")
            || !require("bsdtar")
        {
            return None;
        }
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        let model = root().join("samples/im-stack/versions/1.1.0/appmodel.yaml");
        let run = common::publish(&w.path("store"), &model, "1.1.0", &[]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        let run = w.run(&["key", "generate", "-o", w.path("vendor").to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        // The executable the bundle ships: any file will do here, executable.
        std::fs::write(w.path("tool"), b"#!/bin/sh\necho appmodel\n").unwrap();
        let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(w.path("tool"), exec).unwrap();
        Some(w)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Run {
        appmodel(self.dir.path(), args)
    }

    fn export(&self, how: &str, out: &str) -> PathBuf {
        let path = self.path(out);
        let run = self.run(&[
            "export",
            "--format",
            "compose",
            "--version",
            "1.1.0",
            how,
            path.to_str().unwrap(),
            "--tool",
            self.path("tool").to_str().unwrap(),
            "--store",
            self.path("store").to_str().unwrap(),
            "--sign",
            self.path("vendor.key").to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        path
    }

    /// `bundle.json`'s files: path, size, sha256.
    fn manifest(&self, bundle: &Path) -> Vec<(String, u64, String)> {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["size"].as_u64().unwrap(),
                    f["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn import(&self, image: &Path, state: &str) -> Run {
        self.run(&[
            "import",
            image.to_str().unwrap(),
            "--trust-key",
            self.path("vendor.pub").to_str().unwrap(),
            "--state-dir",
            self.path(state).to_str().unwrap(),
        ])
    }
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> String {
    format!(
        "sha256:{:x}",
        sha2::Sha256::digest(std::fs::read(path).unwrap())
    )
}

#[test]
fn an_iso_image_is_read_by_real_readers_and_imported_as_a_file() {
    let Some(w) = World::new() else { return };
    let dir = w.export("-o", "bundle");
    let iso = w.export("--iso", "im-stack-1.1.0.iso");
    let again = w.export("--iso", "again.iso");
    assert_eq!(
        std::fs::read(&iso).unwrap(),
        std::fs::read(&again).unwrap(),
        "the same version gives the same image"
    );
    let files = w.manifest(&dir);

    // isoinfo: the label, both extensions, and the Rock Ridge and Joliet names.
    let info = tool("isoinfo", &["-d", "-i", iso.to_str().unwrap()]);
    assert!(info.contains("Volume id: IM_STACK_1_1_0_COMPOSE"), "{info}");
    assert!(
        info.contains("Rock Ridge signatures version 1 found"),
        "{info}"
    );
    assert!(info.contains("Joliet with UCS level 3 found"), "{info}");
    let mut want: Vec<String> = files.iter().map(|f| format!("/{}", f.0)).collect();
    want.extend(["/bundle.json".into(), "/bundle.json.minisig".into()]);
    want.sort();
    for ext in ["-R", "-J"] {
        let listed = tool("isoinfo", &[ext, "-f", "-i", iso.to_str().unwrap()]);
        let mut got: Vec<String> = listed
            .lines()
            .filter(|l| want.contains(&l.to_string()))
            .map(str::to_string)
            .collect();
        got.sort();
        assert_eq!(got, want, "isoinfo {ext}");
    }
    // xorriso reads the tree and the modes.
    let found = tool(
        "xorriso",
        &[
            "-indev",
            iso.to_str().unwrap(),
            "-find",
            "/",
            "-type",
            "f",
            "-exec",
            "lsdl",
        ],
    );
    assert_eq!(
        found.lines().filter(|l| l.starts_with('-')).count(),
        want.len(),
        "{found}"
    );
    assert!(
        found
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("'/appmodel'")),
        "{found}"
    );
    // bsdtar extracts every file with the bytes bundle.json lists.
    let out = w.path("extracted");
    std::fs::create_dir_all(&out).unwrap();
    tool(
        "bsdtar",
        &["-xf", iso.to_str().unwrap(), "-C", out.to_str().unwrap()],
    );
    for (path, size, digest) in &files {
        let p = out.join(path);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), *size, "{path}");
        assert_eq!(&sha256(&p), digest, "{path}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("appmodel"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o111, 0o111);

    // verify and import take the image as a file.
    let run = w.run(&[
        "verify",
        iso.to_str().unwrap(),
        "--key",
        w.path("vendor.pub").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(&format!("{} files", files.len())),
        "{}",
        run.stdout
    );
    let run = w.import(&iso, "site");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(w.path("site/store/records/im-stack/1.1.0.json").exists());
}

#[test]
fn a_damaged_or_padded_image_is_refused_by_name_and_nothing_is_imported() {
    let Some(w) = World::new() else { return };
    let iso = w.export("--iso", "good.iso");
    let bytes = std::fs::read(&iso).unwrap();
    let dir = w.export("-o", "bundle");
    let files = w.manifest(&dir);

    // One bit of a blob's bytes flipped: found where xorriso says the file lies.
    let (blob, _, _) = files
        .iter()
        .find(|f| f.0.starts_with("blobs/") && f.1 > 1000)
        .unwrap();
    let lba: u64 = tool(
        "xorriso",
        &[
            "-indev",
            iso.to_str().unwrap(),
            "-find",
            &format!("/{blob}"),
            "-exec",
            "report_lba",
        ],
    )
    .lines()
    .find_map(|l| l.split(',').nth(1)?.trim().parse().ok())
    .unwrap_or_else(|| panic!("no lba for {blob}"));
    let mut flipped = bytes.clone();
    flipped[(lba * 2048 + 100) as usize] ^= 1;
    let bad = w.path("flipped.iso");
    std::fs::write(&bad, &flipped).unwrap();

    // Cut short, inside the files.
    let short = w.path("short.iso");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();

    // An extra file the manifest does not list (a real mkisofs image of the bundle + one).
    std::fs::write(dir.join("extra.sh"), b"rm -rf /\n").unwrap();
    let padded = w.path("padded.iso");
    tool(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-R",
            "-J",
            "-quiet",
            "-o",
            padded.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );

    // Not an image of a bundle at all.
    let empty = w.path("other-disc");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("photos.txt"), b"holiday\n").unwrap();
    let blank = w.path("blank.iso");
    tool(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-R",
            "-quiet",
            "-o",
            blank.to_str().unwrap(),
            empty.to_str().unwrap(),
        ],
    );

    for (image, expected) in [
        (&bad, format!("`{blob}` does not match bundle.json")),
        (&short, "".to_string()),
        (
            &padded,
            "`extra.sh` is in the bundle but not listed in bundle.json".into(),
        ),
        (&blank, "the image has no bundle.json".into()),
    ] {
        let run = w.import(image, "site");
        assert_eq!(run.code, 1, "{}: {}", image.display(), run.transcript());
        assert!(
            run.stderr.contains(&expected),
            "{}: {}",
            image.display(),
            run.stderr
        );
        assert!(
            !w.path("site/store/records/im-stack").exists(),
            "{}: a version was imported",
            image.display()
        );
        let run = w.run(&["verify", image.to_str().unwrap()]);
        assert_eq!(
            run.code,
            1,
            "verify {}: {}",
            image.display(),
            run.transcript()
        );
    }
}
