//! `appmodel push-images`: the imported version's images into the site's registry.

use anyhow::Result;
use appmodel_importer::push::{push_images, PushOptions};
use appmodel_importer::Site;
use appmodel_model::record::human_bytes;

use crate::args::PushImagesArgs;
use crate::output::print_json;

pub fn run(args: &PushImagesArgs) -> Result<()> {
    let site = Site::open(&args.site.state.state_dir)?;
    let report = push_images(
        &site,
        &PushOptions {
            app: args.site.app.as_deref(),
            version: args.version.as_deref(),
            registry: &args.registry,
            insecure: args.insecure,
            ca_file: args.ca_file.as_deref(),
            username: args.username.as_deref(),
            password: args.password.as_deref(),
        },
    )?;
    if args.site.json {
        return print_json(&report);
    }
    for i in &report.images {
        println!("{:<20} {} (tag {})", i.component, i.reference, i.tag);
    }
    println!(
        "pushed {} {} to {}: {} blobs sent ({}), {} already there",
        report.app,
        report.version,
        report.registry,
        report.blobs_pushed,
        human_bytes(report.bytes_pushed),
        report.blobs_skipped
    );
    Ok(())
}
