use std::io::Write;

use anyhow::{bail, Context, Result};
use appmodel_model::config::{template, MASK};
use appmodel_model::types::ParamType;
use appmodel_model::{load_model, load_site_config, ModelError};
use serde_json::json;

use crate::args::{ConfigCheckArgs, ConfigInitArgs};
use crate::output::{print_json, Reported};

pub fn init(args: &ConfigInitArgs) -> Result<()> {
    let loaded = load_model(&args.model.file)?;
    let text = template(&loaded.model);
    if args.output.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    if args.output.exists() && !args.force {
        bail!(
            "`{}` exists already; pass `--force` to replace it",
            args.output.display()
        );
    }
    let mut file = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create `{}`", args.output.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", args.output.display()))?;
    println!(
        "wrote `{}`: {} parameters of {} {}; fill in the REQUIRED ones, then run `appmodel config check {}`",
        args.output.display(),
        loaded.model.parameters.len(),
        loaded.model.app.name,
        loaded.model.app.version,
        args.output.display()
    );
    Ok(())
}

pub fn check(args: &ConfigCheckArgs) -> Result<()> {
    let loaded = load_model(&args.model.file)?;
    match load_site_config(&args.config, &loaded.model) {
        Ok(config) => {
            if args.json {
                // Secret values stay in the file: the output shows only that they are set.
                let params: serde_json::Map<String, serde_json::Value> = config
                    .params
                    .iter()
                    .map(|(name, value)| {
                        let secret = loaded
                            .model
                            .parameter(name)
                            .is_some_and(|p| p.kind == ParamType::Secret);
                        let shown = match value {
                            Some(_) if secret => json!(MASK),
                            other => json!(other),
                        };
                        (name.clone(), shown)
                    })
                    .collect();
                print_json(&json!({"ok": true, "file": args.config, "params": params}))?;
            } else {
                let set = config.params.values().filter(|v| v.is_some()).count();
                println!(
                    "ok: `{}` is a valid configuration of {} {} ({set} of {} parameters set)",
                    args.config.display(),
                    loaded.model.app.name,
                    loaded.model.app.version,
                    loaded.model.parameters.len()
                );
            }
            Ok(())
        }
        Err(ModelError::Invalid(report)) if args.json => {
            print_json(&json!({"ok": false, "file": args.config, "errors": report.json()}))?;
            Err(Reported(format!("{} errors", report.diagnostics.len())).into())
        }
        Err(e) => Err(e.into()),
    }
}
