//! `appmodel verify FILE.tar`: the import's tar reader and every check after it, on any
//! bytes as the bundle tar (written to a file under $TMPDIR, /dev/shm in scripts/fuzz.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = appmodel_fuzz::scratch_dir("bundle_tar").join("bundle.tar");
    std::fs::write(&path, data).expect("cannot write the bundle tar");
    if let Err(err) = appmodel_importer::verify(&path, vec![], None) {
        let _ = err.to_string();
    }
});
