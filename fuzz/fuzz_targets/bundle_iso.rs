//! `appmodel verify FILE.iso`: the ISO 9660 reader (Rock Ridge, Joliet, plain names) and
//! every bundle check after it, on any bytes as the image (written to a file under
//! $TMPDIR, /dev/shm in scripts/fuzz.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = appmodel_fuzz::scratch_dir("bundle_iso").join("bundle.iso");
    std::fs::write(&path, data).expect("cannot write the image");
    if let Err(err) = appmodel_importer::verify(&path, vec![], None) {
        let _ = err.to_string();
    }
    // The reader alone, also where the bundle checks would stop it early.
    if let Ok(img) = appmodel_media::IsoImage::open(&path) {
        for e in img.entries.iter().take(64) {
            if let Ok(mut r) = img.open_file(e) {
                let _ = std::io::copy(
                    &mut std::io::Read::take(&mut r, 1 << 16),
                    &mut std::io::sink(),
                );
            }
        }
    }
});
