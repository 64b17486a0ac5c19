//! The app model parser and validator (`appmodel validate`, `publish`) on any UTF-8 text.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = appmodel_model::parse_model(PathBuf::from("fuzz.yaml"), text.to_owned()) {
        appmodel_fuzz::render(&err);
    }
});
