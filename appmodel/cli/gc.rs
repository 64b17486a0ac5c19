use anyhow::Result;
use appmodel_model::record::human_bytes;
use serde_json::json;

use crate::args::GcArgs;
use crate::output::print_json;

pub fn run(args: &GcArgs) -> Result<()> {
    let store = crate::store::open(&args.store)?;
    let lock = store.lock()?;
    let report = store.gc(&lock)?;
    if args.json {
        return print_json(
            &json!({"blobs_removed": report.blobs_removed, "bytes_freed": report.bytes_freed, "blobs_kept": report.blobs_kept}),
        );
    }
    println!(
        "removed {} unreferenced blobs, freed {} ({} blobs kept)",
        report.blobs_removed,
        human_bytes(report.bytes_freed),
        report.blobs_kept
    );
    Ok(())
}
