//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The targets feed untrusted input to the parsers appmodel runs on files from anyone: the
//! app model and site configuration (YAML), a bundle's `bundle.json`, its minisign
//! signature, and a bundle tar. See docs/fuzzing.md.

use std::path::PathBuf;
use std::sync::OnceLock;

use appmodel_model::{AppModel, ModelError};

/// A scratch directory for targets that must hand the code under test a file: one per
/// process, created on first use under `$TMPDIR` (scripts/fuzz.sh points it at /dev/shm, so
/// each execution writes to memory, not disk). Never removed by the target: libFuzzer ends
/// the process with `exit`; the script removes the parent.
pub fn scratch_dir(target: &str) -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("appmodel-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the fuzz scratch directory");
        dir
    })
}

/// The sample's model (samples/im-stack 1.1.0), parsed once: what site configurations are
/// checked against.
pub fn sample_model() -> &'static AppModel {
    static MODEL: OnceLock<AppModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let text = include_str!("../../samples/im-stack/versions/1.1.0/appmodel.yaml");
        appmodel_model::parse_model(PathBuf::from("appmodel.yaml"), text.to_owned())
            .expect("the sample model is valid")
            .model
    })
}

/// Renders a model error the way the CLI shows it (text with snippets, and JSON), so the
/// fuzzer also covers the code that points into the input.
pub fn render(err: &ModelError) {
    let _ = err.to_string();
    if let ModelError::Invalid(report) = err {
        let _ = report.to_string();
        let _ = serde_json::to_string(&report.json());
    }
}

/// The sample's licence key (samples/im-stack/licensing/licensing.pub), parsed once.
pub fn licence_key() -> &'static appmodel_signing::PublicKey {
    static KEY: OnceLock<appmodel_signing::PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        appmodel_signing::PublicKey::from_text(
            "RWTHtzEXHFEqrwD73AcyRi5Rj0nSgMJO5K8cCLIDi6bDD2q5DDkrOhNc",
        )
        .expect("the sample's licence key parses")
    })
}
