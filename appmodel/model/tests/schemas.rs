//! The committed JSON Schemas under `schemas/` must match the Rust types.
//! Refresh them with `APPMODEL_UPDATE_SCHEMAS=1 cargo test -p appmodel-model --test schemas`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn check(file: &str, schema: &serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas")
        .join(file);
    let fresh = serde_json::to_string_pretty(schema).unwrap() + "\n";
    if std::env::var_os("APPMODEL_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "schemas/{file} is stale: the Rust types changed. Refresh it with\n  \
         APPMODEL_UPDATE_SCHEMAS=1 cargo test -p appmodel-model --test schemas"
    );
}

#[test]
fn the_app_model_schema_is_fresh() {
    check("appmodel.schema.json", appmodel_model::model_schema());
}

#[test]
fn the_site_config_schema_is_fresh() {
    check(
        "site-config.schema.json",
        appmodel_model::site_config_schema(),
    );
}
