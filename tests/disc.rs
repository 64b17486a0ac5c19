//! The disc edition, first part: `export --iso` writes an ISO 9660 image (Rock Ridge and
//! Joliet) that real readers accept — xorriso, isoinfo, libarchive's bsdtar — with every
//! file's bytes, name and executable bit; the same version gives the same bytes; `verify`
//! and `import` read the image as a file (no mount, no root), and a damaged or padded
//! image is refused by name with nothing imported. Volume sets (`export --media`): each
//! volume within its media and verifying alone, imported in any order and resumed, damaged
//! or foreign volumes refused with nothing kept, as ISO images and through FAT32 stick
//! images. (The kernel here has no iso9660 or vfat driver, so nothing is loop-mounted: that
//! is why appmodel reads images itself, and why sticks are filled and read with mtools.)
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::engines::{require, require_compose, sample_built};
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

    /// `appmodel export ARGS` from the vendor's store, shipping the stand-in tool, signed.
    fn export_with(&self, args: &[&str]) -> Run {
        let (tool, store, key) = (
            self.path("tool"),
            self.path("store"),
            self.path("vendor.key"),
        );
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        all.extend(["--tool", tool.to_str().unwrap()]);
        all.extend(["--store", store.to_str().unwrap()]);
        all.extend(["--sign", key.to_str().unwrap()]);
        let run = self.run(&all);
        assert_eq!(run.code, 0, "{}", run.transcript());
        run
    }

    fn export(&self, how: &str, out: &str) -> PathBuf {
        let path = self.path(out);
        let compose = ["--format", "compose", "--version", "1.1.0"];
        self.export_with(&[&compose[..], &[how, path.to_str().unwrap()]].concat());
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

impl World {
    /// `export --media MEDIA -o OUT` (and `extra`): a volume set of the sample's 1.1.0.
    fn export_set(&self, out: &str, media: &str, extra: &[&str]) -> Vec<PathBuf> {
        let dir = self.path(out);
        let mut args = vec!["--format", "compose", "--version", "1.1.0"];
        args.extend(["-o", dir.to_str().unwrap(), "--media", media]);
        args.extend_from_slice(extra);
        self.export_with(&args);
        let mut vols: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        vols.sort();
        vols
    }

    /// The files of cut blobs a site is putting together.
    fn assembling(&self, state: &str) -> usize {
        let sets = self.path(state).join("volume-sets");
        std::fs::read_dir(sets).map_or(0, |d| {
            d.flatten()
                .map(|s| std::fs::read_dir(s.path().join("assembling")).map_or(0, |a| a.count()))
                .sum()
        })
    }

    fn imported(&self, state: &str) -> bool {
        self.path(state)
            .join("bundles/im-stack/1.1.0/compose/bundle.json")
            .is_file()
    }

    /// The verified parts a site keeps between the volumes of a set: whole blobs in
    /// `parts/`, and the marks of the pieces written into a cut blob in `placed/`.
    fn kept_parts(&self, state: &str) -> usize {
        let sets = self.path(state).join("volume-sets");
        std::fs::read_dir(sets).map_or(0, |d| {
            d.flatten()
                .map(|set| {
                    ["parts", "placed"]
                        .iter()
                        .map(|k| std::fs::read_dir(set.path().join(k)).map_or(0, |p| p.count()))
                        .sum::<usize>()
                })
                .sum()
        })
    }
}

/// Every file under `dir`, by path, with its sha256.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256(&p));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let run = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(run.status.success());
}

/// The parts on a volume directory, largest first.
/// The part files on `volume` that are pieces of a blob cut across volumes.
fn pieces_of(volume: &Path) -> Vec<PathBuf> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(volume.join("volume.json")).unwrap()).unwrap();
    let parts = manifest["parts"].as_array().unwrap();
    let cut = |file: &serde_json::Value| parts.iter().filter(|p| &p["file"] == file).count() > 1;
    parts
        .iter()
        .filter(|p| p["volume"] == manifest["volume"] && cut(&p["file"]))
        .map(|p| {
            let hex = p["sha256"].as_str().unwrap().trim_start_matches("sha256:");
            volume.join("parts").join(hex)
        })
        .collect()
}

fn parts_of(volume: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(volume.join("parts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    parts
}

/// A bundle split for small media: every volume within the media's size and verifying on
/// its own, the same bytes on every export; imported one volume at a time in reverse order,
/// one volume twice, after a first attempt with a volume cut short.
#[test]
fn a_volume_set_imports_in_any_order_and_resumes_and_each_volume_verifies_alone() {
    let Some(w) = World::new() else { return };
    let vols = w.export_set("set", "2M", &[]);
    let n = vols.len();
    assert!(n >= 3, "{vols:?}");
    for (i, v) in vols.iter().enumerate() {
        let files = tree(v);
        let bytes: u64 = files
            .keys()
            .map(|f| std::fs::metadata(v.join(f)).unwrap().len())
            .sum();
        assert!(bytes <= 2_000_000, "{}: {bytes} bytes", v.display());
        for f in [
            "bundle.json",
            "bundle.json.minisig",
            "volume.json",
            "volume.json.minisig",
            "appmodel",
            "README.txt",
            "record.json",
        ] {
            assert!(files.contains_key(f), "{} has no {f}", v.display());
        }
        let run = w.run(&[
            "verify",
            v.to_str().unwrap(),
            "--key",
            w.path("vendor.pub").to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(
            run.stdout.starts_with(&format!(
                "verified volume {} of {n} of im-stack 1.1.0",
                i + 1
            )),
            "{}",
            run.stdout
        );
    }
    let again = w.export_set("again", "2M", &[]);
    for (a, b) in vols.iter().zip(&again) {
        assert_eq!(
            tree(a),
            tree(b),
            "the same version and media give the same volumes"
        );
    }

    // The first attempt: the last volume, read from a disc that ends early.
    copy_dir(&vols[n - 1], &w.path("short"));
    let cut = parts_of(&w.path("short"))[0].clone();
    let len = std::fs::metadata(&cut).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let run = w.import(&w.path("short"), "site");
    assert_eq!(run.code, 1, "{}", run.transcript());
    let name = cut.file_name().unwrap().to_str().unwrap();
    assert!(
        run.stderr.contains(&format!("`parts/{name}` on `"))
            && run.stderr.contains("is damaged: it is "),
        "{}",
        run.stderr
    );
    assert_eq!(
        w.kept_parts("site"),
        0,
        "a refused volume left parts behind"
    );

    // Reverse order, the last volume twice: each says what is still missing.
    for (k, v) in vols.iter().enumerate().rev() {
        let times = if k == n - 1 { 2 } else { 1 };
        for _ in 0..times {
            let run = w.import(v, "site");
            if k > 0 {
                assert_eq!(run.code, 1, "{}", run.transcript());
                assert!(
                    run.stderr.contains("still missing")
                        && run.stderr.contains(&format!("insert volume 1 of {n}")),
                    "{}",
                    run.stderr
                );
                assert!(!w.imported("site"));
            } else {
                assert_eq!(run.code, 0, "{}", run.transcript());
                assert!(
                    run.stdout.contains(&format!("from {n} volumes")),
                    "{}",
                    run.stdout
                );
            }
        }
    }
    assert!(w.imported("site"));
    assert_eq!(
        w.kept_parts("site"),
        0,
        "the set's parts are removed once imported"
    );
    // The imported bundle's files are the bundle's, byte for byte.
    let whole = w.export("-o", "whole");
    let site = w.path("site/bundles/im-stack/1.1.0/compose");
    for (path, _, digest) in w.manifest(&whole) {
        if !path.starts_with("blobs/") {
            assert_eq!(sha256(&site.join(&path)), digest, "{path}");
        }
    }
    // Every blob is in the site's store (each travelled as one part here, kept as it
    // was; a blob in several parts: the next test).
    for (path, _, digest) in w.manifest(&whole) {
        if path.starts_with("blobs/") {
            let blob = w.path("site/store").join(&path);
            assert_eq!(sha256(&blob), digest, "{path}");
            assert_eq!(std::fs::metadata(&blob).unwrap().nlink(), 1, "{path}");
        }
    }
}

/// Refused by name, with nothing imported and no part kept: a volume of another set among
/// the volumes given, a flipped bit in a part, in volume.json or in its signature.
#[test]
fn a_damaged_or_foreign_volume_is_refused_by_name_and_nothing_is_kept() {
    let Some(w) = World::new() else { return };
    let vols = w.export_set("set", "2M", &[]);
    let other = w.export_set("other", "3M", &[]);
    let mixed = w.path("mixed");
    std::fs::create_dir(&mixed).unwrap();
    copy_dir(&vols[0], &mixed.join("vol01"));
    copy_dir(&other[1], &mixed.join("vol02"));
    let run = w.import(&mixed, "site");
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("of another set"), "{}", run.stderr);

    let flip = |file: &Path, at: u64| {
        let mut bytes = std::fs::read(file).unwrap();
        let i = (at as usize).min(bytes.len() - 1);
        bytes[i] ^= 1;
        std::fs::write(file, bytes).unwrap();
    };
    for (what, file, expected) in [
        ("a part", "part", "is damaged: its sha256 is"),
        ("volume.json", "volume.json", "volume.json"),
        ("its signature", "volume.json.minisig", "volume.json"),
    ] {
        let bad = w.path(&format!("bad-{}", file.replace('.', "-")));
        copy_dir(&vols[0], &bad);
        let target = if file == "part" {
            parts_of(&bad)[0].clone()
        } else {
            bad.join(file)
        };
        let at = if file == "volume.json" { 40 } else { 200 };
        flip(&target, at);
        let run = w.import(&bad, "site");
        assert_eq!(run.code, 1, "{what}: {}", run.transcript());
        assert!(run.stderr.contains(expected), "{what}: {}", run.stderr);
        let run = w.run(&[
            "verify",
            bad.to_str().unwrap(),
            "--key",
            w.path("vendor.pub").to_str().unwrap(),
        ]);
        assert_eq!(run.code, 1, "verify, {what}: {}", run.transcript());
    }
    assert!(!w.imported("site"));
    assert_eq!(w.kept_parts("site"), 0);
}

/// The volumes as ISO images (read by xorriso, isoinfo and bsdtar) and as FAT32 stick images
/// (mkfs.vfat, files copied on and off with mtools: nothing is mounted here) import.
#[test]
fn volumes_as_iso_images_and_on_fat32_sticks_import() {
    let Some(w) = World::new() else { return };
    if !require("mcopy") || !require("mkfs.vfat") {
        return;
    }
    let discs = w.export_set("discs", "2M", &["--volumes-as", "iso"]);
    assert!(discs.len() >= 3);
    for (i, d) in discs.iter().enumerate() {
        assert!(d.extension().is_some_and(|e| e == "iso"), "{}", d.display());
        assert!(std::fs::metadata(d).unwrap().len() <= 2_000_000);
        let info = tool("isoinfo", &["-d", "-i", d.to_str().unwrap()]);
        assert!(
            info.contains(&format!("Volume id: V{:02}_IM_STACK_1_1_0_COMPOSE", i + 1)),
            "{info}"
        );
        let listed = tool("bsdtar", &["-tf", d.to_str().unwrap()]);
        assert!(listed.lines().any(|l| l == "volume.json"), "{listed}");
        assert!(listed.lines().any(|l| l.starts_with("parts/")), "{listed}");
        let found = tool(
            "xorriso",
            &[
                "-indev",
                d.to_str().unwrap(),
                "-find",
                "/parts",
                "-type",
                "f",
            ],
        );
        assert!(found.contains("/parts/"), "{found}");
    }
    let run = w.import(&w.path("discs"), "from-discs");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(w.imported("from-discs"));

    // Each volume onto its own FAT32 stick, and off it again.
    let vols = w.export_set("set", "2M", &[]);
    for v in &vols {
        let name = v.file_name().unwrap().to_str().unwrap();
        let stick = w.path(&format!("{name}.img"));
        tool(
            "mkfs.vfat",
            &[
                "-C",
                "-F",
                "32",
                "-n",
                "IMSTACK",
                stick.to_str().unwrap(),
                "65536",
            ],
        );
        let mut on = Command::new("mcopy");
        on.args(["-s", "-i", stick.to_str().unwrap()]);
        for e in std::fs::read_dir(v).unwrap() {
            on.arg(e.unwrap().path());
        }
        on.arg("::/");
        assert!(on.output().unwrap().status.success());
        let off = w.path(&format!("off-{name}"));
        std::fs::create_dir(&off).unwrap();
        tool(
            "mcopy",
            &[
                "-s",
                "-n",
                "-i",
                stick.to_str().unwrap(),
                "::/*",
                off.to_str().unwrap(),
            ],
        );
        assert_eq!(tree(&off), tree(v), "{name} came off the stick changed");
        let run = w.import(&off, "from-sticks");
        if v == vols.last().unwrap() {
            assert_eq!(run.code, 0, "{}", run.transcript());
        } else {
            assert_eq!(run.code, 1, "{}", run.transcript());
        }
    }
    assert!(w.imported("from-sticks"));
}

/// On a terminal, importing a disc of a set at its mount point asks for the next disc there
/// and goes on when Enter is pressed: the discs are swapped under one directory, as a drive
/// is. (util-linux `script` gives the import a terminal.)
#[test]
fn on_a_terminal_the_import_asks_for_each_disc_at_the_same_mount_point() {
    let Some(w) = World::new() else { return };
    if !require("script") {
        return;
    }
    use std::io::{BufRead, Write};
    let vols = w.export_set("set", "2M", &[]);
    let drive = w.path("drive");
    let insert = |v: &Path| {
        let _ = std::fs::remove_dir_all(&drive);
        copy_dir(v, &drive);
    };
    // The discs go in in reverse order.
    let order: Vec<&PathBuf> = vols.iter().rev().collect();
    insert(order[0]);
    let cmd = format!(
        "{} import {} --trust-key {} --state-dir {}",
        env!("CARGO_BIN_EXE_appmodel"),
        drive.display(),
        w.path("vendor.pub").display(),
        w.path("site").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        // The prompt ends without a newline: read byte by byte up to ": ".
        let mut r = std::io::BufReader::new(stdout);
        let mut text = Vec::new();
        loop {
            let mut chunk = Vec::new();
            match r.read_until(b' ', &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    text.extend_from_slice(&chunk);
                    let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
                }
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |needle: &str, count: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen.matches(needle).count() < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(t) => seen = t,
                Err(_) => panic!("no `{needle}` (#{count}) on the terminal:\n{seen}"),
            }
        }
        seen.clone()
    };
    for (k, v) in order.iter().enumerate().skip(1) {
        let text = wait_for("press Enter", k);
        assert!(
            text.contains(&format!("insert volume 1 of {}", vols.len())),
            "{text}"
        );
        insert(v);
        stdin.write_all(b"\n").unwrap();
    }
    let status = child.wait().unwrap();
    // All of the terminal's output, up to its end.
    let mut text = seen.clone();
    while let Ok(t) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        text = t;
    }
    assert!(status.success(), "{text}");
    assert!(text.contains("imported im-stack 1.1.0"), "{text}");
    assert!(
        text.contains(&format!("from {} volumes", vols.len())),
        "{text}"
    );
    assert!(w.imported("site"));
}

/// Removes every container, volume and network of the sample's compose project.
fn clean_compose_project() {
    let list = |args: &[&str]| -> Vec<String> {
        let out = Command::new("docker").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let label = "label=com.docker.compose.project=im-stack";
    for id in list(&["ps", "-aq", "--filter", label]) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    }
    for v in list(&["volume", "ls", "-q", "--filter", label]) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &v])
            .output();
    }
    let _ = Command::new("docker")
        .args(["network", "rm", "im-stack_default"])
        .output();
}

/// The disc edition on Docker: the ISO image is the only input. The appmodel and the model
/// are taken off it (as mounting the disc gives them), and that appmodel imports the image
/// as a file and installs the compose form until every component is healthy.
#[test]
fn an_iso_image_alone_installs_the_compose_form_on_docker() {
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::engines::needs(
        docker,
        "a Docker engine that answers",
        "scripts/setup.sh starts dockerd",
    ) || !require_compose()
    {
        return;
    }
    let Some(w) = World::new() else { return };
    let Some(static_tool) = common::engines::static_tool() else {
        return;
    };
    clean_compose_project();
    let iso = w.path("im-stack-1.1.0-compose.iso");
    let run = w.run(&[
        "export",
        "--format",
        "compose",
        "--version",
        "1.1.0",
        "--iso",
        iso.to_str().unwrap(),
        "--tool",
        static_tool.to_str().unwrap(),
        "--store",
        w.path("store").to_str().unwrap(),
        "--sign",
        w.path("vendor.key").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // "Mounting" the disc: the tool and the model, off the image.
    let disc = w.path("disc");
    std::fs::create_dir(&disc).unwrap();
    tool(
        "bsdtar",
        &[
            "-xf",
            iso.to_str().unwrap(),
            "-C",
            disc.to_str().unwrap(),
            "appmodel",
            "appmodel.yaml",
        ],
    );
    let from_disc = |args: &[&str]| -> Run {
        let out = Command::new(disc.join("appmodel"))
            .args(args)
            .args(["--state-dir", w.path("site").to_str().unwrap()])
            .current_dir(w.dir.path())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let started = std::time::Instant::now();
    let run = from_disc(&[
        "import",
        iso.to_str().unwrap(),
        "--trust-key",
        w.path("vendor.pub").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let config = w.path("site-config.yaml");
    let out = Command::new(disc.join("appmodel"))
        .args(["config", "init", "-f"])
        .arg(disc.join("appmodel.yaml"))
        .arg("-o")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("  domain:\n", "  domain: chat.plant.example\n");
    std::fs::write(&config, text).unwrap();
    let run = from_disc(&["install", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let run = from_disc(&["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let components = v["components"].as_array().unwrap();
    assert_eq!(components.len(), 3, "{v}");
    for c in components {
        assert_eq!(c["health"], "healthy", "{v}");
    }
    eprintln!(
        "disc present to every component healthy (compose, import + install): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let run = from_disc(&["uninstall"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    clean_compose_project();
}

/// A bundle of a few hundred MiB (one 256 MiB binary) split for 100 MB media: the blob
/// travels in parts on three volumes. A first import killed midway leaves nothing that
/// stops the next; the volumes then come in reverse order, the last one twice, and the
/// blob put back together in the site's store is the published one.
#[test]
fn a_few_hundred_mib_split_across_volumes_imports_after_an_interrupted_attempt() {
    let Some(w) = World::new() else { return };
    let app = w.path("big");
    std::fs::create_dir(&app).unwrap();
    // A static executable (the sample's probe) carrying 256 MiB more: incompressible, and
    // no two parts alike (xorshift).
    let mut data = std::fs::read(root().join("samples/im-stack/dist/im-probe")).unwrap();
    let elf = data.len();
    data.resize(elf + (256 << 20), 0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data[elf..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(&data));
    std::fs::write(app.join("payload"), &data).unwrap();
    drop(data);
    std::fs::write(
        app.join("appmodel.yaml"),
        "apiVersion: appmodel/v1\napp: {name: big, version: 1.0.0}\n\
         components:\n  - name: payload\n    binaries: {linux/amd64: payload}\n    command: [payload]\n",
    )
    .unwrap();
    let run = common::publish(&w.path("store"), &app.join("appmodel.yaml"), "1.0.0", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let out = w.path("vols");
    w.export_with(&[
        "--format",
        "systemd",
        "--app",
        "big",
        "--version",
        "1.0.0",
        "-o",
        out.to_str().unwrap(),
        "--media",
        "100M",
    ]);
    let mut vols: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    vols.sort();
    assert_eq!(vols.len(), 3, "{vols:?}");
    let blob = format!("blobs/sha256/{}", &digest["sha256:".len()..]);
    let volume: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vols[0].join("volume.json")).unwrap()).unwrap();
    let parts = volume["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["file"] == blob.as_str())
        .count();
    assert_eq!(parts, 3, "{volume}");

    // Killed midway through the last volume: whatever it left, the import goes on.
    let mut child = Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args(["import", vols[2].to_str().unwrap(), "--trust-key"])
        .arg(w.path("vendor.pub"))
        .arg("--state-dir")
        .arg(w.path("site"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed while a part is being written: a whole blob's under a temporary name, a
    // piece of a cut blob in place in the blob's assembling file.
    let partial = || {
        let mut stack = vec![w.path("site/volume-sets")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "partial")
                    || p.parent().is_some_and(|d| d.ends_with("assembling"))
                {
                    return true;
                }
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        false
    };
    let since = std::time::Instant::now();
    while !partial() && since.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import ended before it was killed");
    assert_eq!(w.kept_parts("site"), 0, "a killed import kept a part");
    for (k, v) in [(3, &vols[2]), (3, &vols[2]), (2, &vols[1])] {
        let run = w.import(v, "site");
        assert_eq!(run.code, 1, "volume {k}: {}", run.transcript());
        assert!(
            run.stderr.contains("insert volume 1 of 3"),
            "volume {k}: {}",
            run.stderr
        );
    }
    let run = w.import(&vols[0], "site");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("from 3 volumes"), "{}", run.stdout);
    let kept = w.path("site/store").join(&blob);
    assert_eq!(sha256(&kept), digest);
    assert_eq!(std::fs::metadata(&kept).unwrap().nlink(), 1);
    assert!(
        !w.path("site/volume-sets").exists()
            || std::fs::read_dir(w.path("site/volume-sets"))
                .unwrap()
                .count()
                == 0,
        "the set's staging is removed once imported"
    );

    // All three in one import, in order: the cut blob is hashed whole as its pieces are
    // written, and is the same blob.
    let run = w.import(&out, "site2");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(sha256(&w.path("site2/store").join(&blob)), digest);

    // A bit flipped in a piece of the cut blob: refused by name, and neither the piece
    // nor the blob's file it was being written into is kept.
    let bad = w.path("bad-piece");
    copy_dir(&vols[1], &bad);
    let piece = pieces_of(&bad)[0].clone();
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::File::options().write(true).open(&piece).unwrap();
        f.seek(std::io::SeekFrom::Start(12345)).unwrap();
        f.write_all(b"\x5a").unwrap();
    }
    let run = w.import(&bad, "site3");
    assert_eq!(run.code, 1, "{}", run.transcript());
    let name = piece.file_name().unwrap().to_str().unwrap();
    assert!(
        run.stderr.contains(&format!("`parts/{name}` on `"))
            && run.stderr.contains("is damaged: its sha256 is"),
        "{}",
        run.stderr
    );
    assert_eq!(w.kept_parts("site3"), 0, "a damaged piece was kept");
    assert_eq!(
        w.assembling("site3"),
        0,
        "a damaged piece left its blob's file"
    );
}

/// A set given up halfway (one volume of it kept) is cleared once its version arrives
/// another way, here as one bundle directory.
#[test]
fn the_parts_of_an_unfinished_set_go_once_its_version_is_imported_another_way() {
    let Some(w) = World::new() else { return };
    let vols = w.export_set("set", "2M", &[]);
    let run = w.import(&vols[0], "site");
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(w.kept_parts("site") > 0);
    let whole = w.export("-o", "whole");
    let run = w.import(&whole, "site");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(w.imported("site"));
    assert_eq!(
        w.kept_parts("site"),
        0,
        "the unfinished set's parts were kept"
    );
}
