//! `bundle.json`: the manifest types, and `appmodel verify DIR` on a directory bundle whose
//! manifest is the input, in two ways:
//!
//! 1. the input as it is, beside a real `record.json` (fuzz/data/; the seeds list it with its
//!    size and sha256, so the fuzzer can get past the manifest into the record checks);
//! 2. when the input parses, the manifest made consistent with a `record.json` that names its
//!    app and version (the record's entry gets the matching size and sha256), so that any app
//!    and version reach a verified bundle. A verified bundle's app and version become
//!    directory names on the site (`bundles/APP/VERSION/FORM`): each must be one plain path
//!    component, which this target asserts;
//! 3. the input as a volume's `volume.json` beside a real bundle.json (fuzz/data/, whose
//!    volume.json is a seed): `appmodel verify VOLUME`, and the volume manifest's checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};

use appmodel_model::bundle::{BundleFile, BundleManifest, MANIFEST_FILE, RECORD_FILE};
use appmodel_model::Digest;

const RECORD: &[u8] = include_bytes!("../data/record.json");
const BUNDLE: &[u8] = include_bytes!("../data/bundle.json");

fuzz_target!(|data: &[u8]| {
    let scratch = appmodel_fuzz::scratch_dir("bundle_manifest");
    let (dir, vol) = (&scratch.join("bundle"), &scratch.join("volume"));
    for d in [dir, vol] {
        std::fs::create_dir_all(d).expect("cannot create a scratch directory");
    }

    // 3. The input as a volume manifest.
    std::fs::write(vol.join("volume.json"), data).expect("cannot write volume.json");
    std::fs::write(vol.join(MANIFEST_FILE), BUNDLE).expect("cannot write bundle.json");
    if let Err(err) = appmodel_importer::verify(vol, vec![], None) {
        let _ = err.to_string();
    }
    if let Ok(v) = serde_json::from_slice::<appmodel_model::volume::VolumeManifest>(data) {
        let bundle: BundleManifest =
            serde_json::from_slice(BUNDLE).expect("the fuzz bundle.json is a manifest");
        if v.check(&bundle).is_ok() {
            let _ = v.volumes_of(v.parts.iter());
        }
    }

    let parsed = serde_json::from_slice::<BundleManifest>(data);

    // 1. The input as bundle.json, the real record.json beside it.
    std::fs::write(dir.join(RECORD_FILE), RECORD).expect("cannot write record.json");
    std::fs::write(dir.join(MANIFEST_FILE), data).expect("cannot write bundle.json");
    check(appmodel_importer::verify(dir, vec![], None));

    // 2. The parsed manifest with a record of its own app and version.
    let Ok(mut manifest) = parsed else {
        return;
    };
    let mut record: serde_json::Value =
        serde_json::from_slice(RECORD).expect("the fuzz record.json is JSON");
    record["app"] = manifest.app.clone().into();
    record["version"] = manifest.version.clone().into();
    let record = serde_json::to_vec_pretty(&record).expect("a JSON value serializes");
    manifest.files.retain(|f| f.path != RECORD_FILE);
    manifest.files.push(BundleFile {
        path: RECORD_FILE.to_owned(),
        size: record.len() as u64,
        sha256: Digest::from_sha256(&Sha256::digest(&record)),
        executable: false,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    std::fs::write(dir.join(RECORD_FILE), &record).expect("cannot write record.json");
    std::fs::write(dir.join(MANIFEST_FILE), &bytes).expect("cannot write bundle.json");
    check(appmodel_importer::verify(dir, vec![], None));
});

fn check(result: Result<appmodel_importer::ImportReport, appmodel_importer::ImportError>) {
    match result {
        Ok(report) => {
            for (what, name) in [("app", &report.app), ("version", &report.version)] {
                assert!(
                    is_plain_component(name),
                    "a verified bundle has the {what} {name:?}, which is not a plain directory name"
                );
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
}

/// One path component that names a directory of its own: not empty, `.` or `..`, and no
/// `/`, `\` or NUL.
fn is_plain_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}
