use anyhow::Result;
use appmodel_model::record::human_bytes;
use serde_json::json;

use crate::args::ShowArgs;
use crate::output::print_json;

pub fn run(args: &ShowArgs) -> Result<()> {
    let store = crate::store::open(&args.store)?;
    let app = crate::store::app(&store, args.app.app.as_deref())?;
    let r = crate::store::record(&store, &app, Some(&args.version))?;
    let total: u64 = r
        .components
        .values()
        .map(|c| {
            c.images
                .values()
                .flat_map(|i| i.blobs())
                .chain(c.binaries.values())
                .map(|b| b.size)
                .sum::<u64>()
        })
        .sum();
    if args.json {
        return print_json(&json!({
            "app": r.app, "version": r.version, "published_at": r.published_at, "published_by": r.published_by,
            "components": r.components, "total_bytes": total, "unique_bytes": r.unique_bytes(),
        }));
    }
    println!(
        "{} {} (published {} by {})",
        r.app, r.version, r.published_at, r.published_by
    );
    for (name, c) in &r.components {
        println!("  {name}");
        if let Some(src) = &c.image_source {
            println!("    image source: {src}");
        }
        for (platform, img) in &c.images {
            let size: u64 = img.blobs().map(|b| b.size).sum();
            println!(
                "    image {platform}: {} ({}, {} layers)",
                img.manifest.digest,
                human_bytes(size),
                img.layers.len()
            );
        }
        for (platform, b) in &c.binaries {
            println!(
                "    binary {platform}: {} ({})",
                b.digest,
                human_bytes(b.size)
            );
        }
    }
    println!(
        "total {}, unique {} in {} blobs",
        human_bytes(total),
        human_bytes(r.unique_bytes()),
        r.blobs().len()
    );
    Ok(())
}
