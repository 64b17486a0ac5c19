use anyhow::Result;
use appmodel_model::record::{human_bytes, VersionDiff};

use crate::args::DiffArgs;
use crate::output::print_json;

pub fn run(args: &DiffArgs) -> Result<()> {
    let store = crate::store::open(&args.store)?;
    let app = crate::store::app(&store, args.app.app.as_deref())?;
    let from = crate::store::record(&store, &app, Some(&args.from))?;
    let to = crate::store::record(&store, &app, Some(&args.to))?;
    let d = VersionDiff::between(&from, &to);
    if args.json {
        return print_json(&d);
    }
    println!("{} {} -> {}", d.app, d.from, d.to);
    let list = |label: &str, items: &[String]| {
        if !items.is_empty() {
            println!("  {label}: {}", items.join(", "));
        }
    };
    list("components added", &d.components_added);
    list("components removed", &d.components_removed);
    for (name, what) in &d.components_changed {
        println!("  component changed: {name} ({})", what.join(", "));
    }
    list("parameters added", &d.parameters_added);
    list("parameters removed", &d.parameters_removed);
    println!(
        "  new in {}: {} blobs, {}",
        d.to,
        d.new_blobs,
        human_bytes(d.new_bytes)
    );
    Ok(())
}
