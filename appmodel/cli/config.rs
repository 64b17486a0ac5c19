use std::io::Write;

use anyhow::{bail, Context, Result};
use appmodel_model::config::{template, CheckReport};
use std::path::Path;

use appmodel_model::input::{cap, read_text, Links};
use appmodel_model::{load_model, parse_model, parse_site_config, LoadedModel, ModelError};

use crate::args::{ConfigCheckArgs, ConfigInitArgs};
use crate::output::{print_json, Reported, UserError};

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
        "wrote `{}`: {} parameters of {} {}; fill in the REQUIRED ones, then run `appmodel config check {}` (beside the model, or on a site where the version is imported)",
        args.output.display(),
        loaded.model.parameters.len(),
        loaded.model.app.name,
        loaded.model.app.version,
        args.output.display()
    );
    Ok(())
}

/// The model a configuration is checked against: `-f`, else `appmodel.yaml` here, else on
/// a site the model of the newest imported version of the app the file names.
fn model_to_check(args: &ConfigCheckArgs, config_text: &str) -> Result<LoadedModel> {
    let here = Path::new("appmodel.yaml");
    let file = match &args.file {
        Some(f) => f.as_path(),
        None if here.exists() => here,
        None => match imported_model(args, config_text)? {
            Some(m) => return Ok(m),
            None => here,
        },
    };
    Ok(load_model(file)?)
}

fn imported_model(args: &ConfigCheckArgs, text: &str) -> Result<Option<LoadedModel>> {
    let Some(store) = appmodel_store::Store::open_existing(&args.state.state_dir.join("store"))
    else {
        return Ok(None);
    };
    // The top-level `app:` line `config init` writes; the full parse comes after. The name
    // is only compared with the records' names, never made into a path.
    let Some(app) = text.lines().find_map(|l| {
        let v = l.strip_prefix("app:")?.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_string())
    }) else {
        return Ok(None);
    };
    // Records come oldest first by semantic version.
    let newest = store.records()?.into_iter().rfind(|r| r.app == app);
    let Some(record) = newest else {
        return Err(UserError::new(
            format!(
                "no version of {} (the `app` of `{}`) is imported on this site",
                appmodel_model::bundle::quoted(&app),
                args.config.display()
            ),
            "give the model with `-f FILE`, or import the app's bundle first",
        )
        .into());
    };
    let file = args
        .state
        .state_dir
        .join(format!("store/records/{}/{}", record.app, record.version));
    eprintln!(
        "checking against the model of {} {}, imported on this site",
        record.app, record.version
    );
    Ok(Some(parse_model(file, record.model_text)?))
}

pub fn check(args: &ConfigCheckArgs) -> Result<()> {
    // Read once (regular file, capped); the model is found and the file parsed from it.
    let text =
        read_text(&args.config, cap::CONFIG, Links::Follow).map_err(|source| ModelError::Read {
            path: args.config.clone(),
            source,
        })?;
    let loaded = model_to_check(args, &text)?;
    match parse_site_config(args.config.clone(), text, &loaded.model) {
        Ok(config) => {
            if args.json {
                // Secret values stay in the file: the output shows only that they are set.
                print_json(&CheckReport::valid(&args.config, &loaded.model, &config))?;
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
            print_json(&CheckReport::invalid(&loaded.model, &report))?;
            Err(Reported(format!("{} errors", report.diagnostics.len())).into())
        }
        Err(e) => Err(e.into()),
    }
}
