//! Helpers shared by the end-to-end tests: run the real `appmodel` binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The outcome of one run, printed the way snapshots show it.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn transcript(&self) -> String {
        let mut out = format!("exit code: {}\n", self.code);
        if !self.stdout.is_empty() {
            out.push_str(&format!("--- stdout\n{}", self.stdout));
        }
        if !self.stderr.is_empty() {
            out.push_str(&format!("--- stderr\n{}", self.stderr));
        }
        out
    }

    /// Asserts the command was refused: exit code 1 and `text` on stderr.
    pub fn assert_refused(&self, text: &str) {
        assert_eq!(self.code, 1, "{}", self.transcript());
        assert!(
            self.stderr.contains(text),
            "expected `{text}` in:\n{}",
            self.stderr
        );
    }
}

/// Runs `appmodel ARGS` in `dir`.
pub fn appmodel(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("the appmodel binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

pub mod crash;
pub mod engines;

/// Makes a variant of the sample's 1.1.0 model from its text.
pub type ModelEdit = dyn Fn(&str) -> String;

/// Runs `appmodel publish VERSION -f MODEL --store STORE EXTRA` beside the model.
pub fn publish(store: &Path, model: &Path, version: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "publish",
        version,
        "-f",
        model.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    appmodel(model.parent().unwrap(), &args)
}

/// Publishes the sample's 1.0.0 and 1.1.0, and the variants of 1.1.0 that `extra` makes,
/// into `dir/store`, and exports each as `dir/im-stack-VERSION.tar` in `form`, shipping
/// `tool` as the bundle's appmodel.
pub fn publish_and_export_sample(
    dir: &Path,
    form: &str,
    tool: &Path,
    extra: &[(&str, &ModelEdit)],
) {
    let store = dir.join("store");
    let versions = root().join("samples/im-stack/versions");
    let mut models: Vec<(String, PathBuf, bool)> = ["1.0.0", "1.1.0"]
        .iter()
        .map(|v| (v.to_string(), versions.join(v).join("appmodel.yaml"), false))
        .collect();
    for (version, edit) in extra {
        // Beside the original, so its relative binary paths still hold.
        let src = versions.join("1.1.0/appmodel.yaml");
        let file = versions.join(format!(
            "1.1.0/.test-{form}-{version}-{}.yaml",
            std::process::id()
        ));
        std::fs::write(&file, edit(&std::fs::read_to_string(&src).unwrap())).unwrap();
        models.push((version.to_string(), file, true));
    }
    // Signed, as every bundle a site accepts by default: `dir/vendor.key`, `dir/vendor.pub`.
    let key = dir.join("vendor");
    let run = appmodel(dir, &["key", "generate", "-o", key.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let secret = key.with_extension("key");
    for (version, model, temporary) in &models {
        let run = publish(&store, model, version, &[]);
        if *temporary {
            let _ = std::fs::remove_file(model);
        }
        assert_eq!(run.code, 0, "{}", run.transcript());
        let out = dir.join(format!("im-stack-{version}.tar"));
        let run = appmodel(
            dir,
            &[
                "export",
                "--format",
                form,
                "--version",
                version,
                "--archive",
                out.to_str().unwrap(),
                "--tool",
                tool.to_str().unwrap(),
                "--store",
                store.to_str().unwrap(),
                "--sign",
                secret.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.transcript());
    }
}

/// `payload` behind an ELF64 executable header for `platform` (`linux/amd64` or
/// `linux/arm64`): what `appmodel publish` accepts as a binary.
pub fn elf_executable(platform: &str, payload: &[u8]) -> Vec<u8> {
    let machine: u16 = match platform {
        "linux/arm64" => 183,
        _ => 62,
    };
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little-endian
    h[6] = 1;
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h.extend_from_slice(payload);
    h
}

/// Files no appmodel input may be (each with the reason appmodel gives): a FIFO, a device,
/// a directory, and a sparse file of `big` bytes when the cap is `cap`. Made in `dir`.
pub fn hostile_files(dir: &Path, big: u64, cap: u64) -> Vec<(String, String)> {
    let fifo = dir.join("fifo.yaml");
    let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(ok.success());
    let large = dir.join("big.yaml");
    std::fs::File::create(&large).unwrap().set_len(big).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        (path(&fifo), "it is a FIFO, not a regular file".into()),
        (
            "/dev/zero".into(),
            "it is a device, not a regular file".into(),
        ),
        (path(dir), "it is a directory, not a regular file".into()),
        (
            path(&large),
            format!("it is {big} bytes, more than the {cap} bytes allowed"),
        ),
    ]
}

/// A tmpfs mounted at `dir` with `options` (`size=1m,nr_inodes=3`) for out-of-space tests,
/// unmounted when dropped. None where mounting is not allowed (not root); under CI=true,
/// that fails the test instead.
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(dir: &Path, options: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !engines::needs(mounted, "a small tmpfs", "run the tests as root") {
            return None;
        }
        Some(SmallDisk {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
