use anyhow::Result;
use appmodel_model::{load_model, ModelError};
use serde_json::json;

use crate::args::ValidateArgs;
use crate::output::{print_json, Reported};

pub fn run(args: &ValidateArgs) -> Result<()> {
    let file = &args.model.file;
    match load_model(file) {
        Ok(loaded) => {
            let m = &loaded.model;
            if args.json {
                print_json(&json!({
                    "ok": true,
                    "file": file,
                    "app": m.app.name,
                    "version": m.app.version,
                    "components": m.components.iter().map(|c| &c.name).collect::<Vec<_>>(),
                    "parameters": m.parameters.iter().map(|p| &p.name).collect::<Vec<_>>(),
                }))?;
            } else {
                println!(
                    "ok: `{}` is a valid model of {} {} ({} components, {} parameters)",
                    file.display(),
                    m.app.name,
                    m.app.version,
                    m.components.len(),
                    m.parameters.len()
                );
            }
            Ok(())
        }
        Err(ModelError::Invalid(report)) if args.json => {
            print_json(&json!({"ok": false, "file": file, "errors": report.json()}))?;
            Err(Reported(format!("{} errors", report.diagnostics.len())).into())
        }
        Err(e) => Err(e.into()),
    }
}
