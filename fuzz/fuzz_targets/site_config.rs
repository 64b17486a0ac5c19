//! A site configuration (`appmodel config check`, `install --config`) checked against the
//! sample's model, on any UTF-8 text.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let model = appmodel_fuzz::sample_model();
    if let Err(err) =
        appmodel_model::parse_site_config(PathBuf::from("site-config.yaml"), text.to_owned(), model)
    {
        appmodel_fuzz::render(&err);
    }
});
