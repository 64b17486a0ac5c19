use anyhow::{Context, Result};
use appmodel_model::{load_model, DependencyGraph};

use crate::args::{GraphArgs, GraphFormat};
use crate::output::print_json;

pub fn run(args: &GraphArgs) -> Result<()> {
    let loaded = load_model(&args.model.file)?;
    // A loaded model has passed validation, which rejects cycles.
    let graph = DependencyGraph::from_model(&loaded.model)
        .ok()
        .context("the dependency graph has a cycle")?;
    match args.format {
        GraphFormat::Text => print!("{}", graph.to_text()),
        GraphFormat::Dot => print!("{}", graph.to_dot(&loaded.model.app.name)),
        GraphFormat::Json => print_json(&graph.to_json())?,
    }
    Ok(())
}
