use anyhow::Result;
use appmodel_model::record::human_bytes;
use serde_json::json;

use crate::args::VersionsArgs;
use crate::output::print_json;

pub fn run(args: &VersionsArgs) -> Result<()> {
    let store = crate::store::open(&args.store)?;
    let records: Vec<_> = store
        .records()?
        .into_iter()
        .filter(|r| args.app.as_ref().is_none_or(|a| &r.app == a))
        .collect();
    if args.json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| json!({"app": r.app, "version": r.version, "published_at": r.published_at, "components": r.components.len(), "unique_bytes": r.unique_bytes()}))
            .collect();
        return print_json(&rows);
    }
    if records.is_empty() {
        println!("no published versions in `{}`", store.root().display());
        return Ok(());
    }
    println!(
        "{:<20} {:<12} {:<22} {:>10} {:>10}",
        "APP", "VERSION", "PUBLISHED", "COMPONENTS", "SIZE"
    );
    for r in &records {
        println!(
            "{:<20} {:<12} {:<22} {:>10} {:>10}",
            r.app,
            r.version,
            r.published_at,
            r.components.len(),
            human_bytes(r.unique_bytes())
        );
    }
    Ok(())
}
