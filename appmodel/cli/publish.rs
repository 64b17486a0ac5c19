use anyhow::Result;
use appmodel_model::record::human_bytes;
use appmodel_publish::{publish, PublishOptions, RegistryOptions};
use appmodel_store::PutOutcome;
use serde_json::json;

use crate::args::PublishArgs;
use crate::output::print_json;

pub fn run(args: &PublishArgs) -> Result<()> {
    let store = crate::store::open(&args.store)?;
    let opts = PublishOptions {
        model_file: args.model.file.clone(),
        version: args.version.clone(),
        registry: RegistryOptions {
            insecure: args.registry.insecure.clone(),
            ca_file: args.registry.ca_file.clone(),
            username: args.registry.username.clone(),
            password: args.registry.password.clone(),
            token: args.registry.token.clone(),
            docker_config: args.registry.docker_config.clone(),
        },
    };
    let report = publish(&store, &opts)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let r = &report.record;
    if args.json {
        return print_json(&json!({
            "app": r.app,
            "version": r.version,
            "created": report.outcome == PutOutcome::Created,
            "new_blobs": report.new_blobs,
            "new_bytes": report.new_bytes,
            "unique_bytes": r.unique_bytes(),
            "store": store.root(),
            "warnings": report.warnings,
        }));
    }
    match report.outcome {
        PutOutcome::Created => println!(
            "published {} {}: {} components, {} in {} blobs ({} new) into `{}`",
            r.app,
            r.version,
            r.components.len(),
            human_bytes(r.unique_bytes()),
            r.blobs().len(),
            human_bytes(report.new_bytes),
            store.root().display()
        ),
        PutOutcome::Unchanged => println!(
            "{} {} is already published with the same content; nothing changed",
            r.app, r.version
        ),
    }
    Ok(())
}
