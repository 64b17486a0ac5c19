//! `bundle.json`: the manifest types, and `appmodel verify DIR` on a directory bundle whose
//! manifest is the input and whose `record.json` is a real one (the seeds list it with its
//! size and sha256, so the fuzzer can get past the manifest into the record checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

use appmodel_model::bundle::{BundleManifest, MANIFEST_FILE, RECORD_FILE};

const RECORD: &[u8] = include_bytes!("../data/record.json");

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<BundleManifest>(data);

    let dir = appmodel_fuzz::scratch_dir("bundle_manifest");
    let record = dir.join(RECORD_FILE);
    if !record.exists() {
        std::fs::write(&record, RECORD).expect("cannot write record.json");
    }
    std::fs::write(dir.join(MANIFEST_FILE), data).expect("cannot write bundle.json");
    if let Err(err) = appmodel_importer::verify(dir, vec![], None) {
        let _ = err.to_string();
    }
});
