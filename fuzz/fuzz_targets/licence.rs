//! `appmodel license activate FILE` and `license issue --site-code CODE`: the licence file
//! (verified before it is parsed) and the site code, on any text; and the gate file the
//! containers' licence gate reads, with its verdict at any time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let key = appmodel_fuzz::licence_key();
    if let Err(err) = appmodel_licence::Licence::verify(&text, "fuzz", key, "im-stack") {
        let _ = err.to_string();
    }
    match appmodel_licence::SiteCode::parse(&text, "fuzz") {
        // What parses must print back to the same code.
        Ok(code) => assert_eq!(
            appmodel_licence::SiteCode::parse(&code.to_text(), "again").ok(),
            Some(code)
        ),
        Err(err) => {
            let _ = err.to_string();
        }
    }
    if let Ok(gate) = serde_json::from_slice::<appmodel_licence::gate::GateFile>(data) {
        for now in [0, gate.checked_at, u64::MAX] {
            let _ = appmodel_licence::gate::decide(&gate, now);
        }
    }
});
