use anyhow::Result;
use appmodel_model::{model_schema, site_config_schema};

use crate::args::{SchemaArgs, SchemaKind};

pub fn run(args: &SchemaArgs) -> Result<()> {
    let schema = match args.kind {
        SchemaKind::Model => model_schema(),
        SchemaKind::SiteConfig => site_config_schema(),
    };
    println!("{}", serde_json::to_string_pretty(schema)?);
    Ok(())
}
