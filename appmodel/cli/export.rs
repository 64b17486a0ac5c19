use anyhow::{Context, Result};
use appmodel_exporters::{export, ExportOptions, Output};
use appmodel_model::record::human_bytes;
use serde_json::json;

use crate::args::ExportArgs;
use crate::output::print_json;

pub fn run(args: &ExportArgs) -> Result<()> {
    let store = crate::store::open(&args.store)?;
    let app = crate::store::app(&store, args.app.app.as_deref())?;
    let version = crate::store::record(&store, &app, args.version.as_deref())?
        .version
        .to_string();
    let since = match &args.since {
        Some(v) => Some(
            crate::store::record(&store, &app, Some(v))?
                .version
                .to_string(),
        ),
        None => None,
    };
    let form = args.format;
    let output = match (&args.dir, &args.archive, &args.iso) {
        (Some(d), _, _) if args.media.is_some() => Output::Volumes {
            dir: d.clone(),
            capacity: args.media.as_ref().map_or(0, |m| m.capacity),
            iso: match args.volumes_as.as_deref() {
                Some(kind) => kind == "iso",
                None => args
                    .media
                    .as_ref()
                    .is_some_and(|m| appmodel_model::volume::is_optical(&m.name)),
            },
        },
        (Some(d), _, _) => Output::Dir(d.clone()),
        (None, Some(f), _) => Output::Archive(f.clone()),
        (None, None, Some(f)) => Output::Iso(f.clone()),
        (None, None, None) => unreachable!("clap requires one of --output, --archive, --iso"),
    };
    let tool = match &args.tool {
        Some(t) => t.clone(),
        None => std::env::current_exe().context("cannot find the appmodel executable to ship")?,
    };
    let mut tools_for = std::collections::BTreeMap::new();
    for (platform, path) in &args.tool_for {
        appmodel_publish::binary::check("appmodel", platform, path)?;
        if tools_for.insert(platform.clone(), path.clone()).is_some() {
            anyhow::bail!("--tool-for names {platform} twice");
        }
    }
    let secret = match &args.sign {
        Some(path) => Some(
            appmodel_signing::SecretKey::load(path, args.key_password.as_deref())
                .with_context(|| format!("cannot use the signing key `{}`", path.display()))?,
        ),
        None => None,
    };
    let trusted_comment = format!("{app} {version} {form} bundle");
    let sign = |bytes: &[u8]| -> Result<String, String> {
        match &secret {
            Some(key) => appmodel_signing::sign(key, &mut &bytes[..], &trusted_comment)
                .map(|s| s.to_text())
                .map_err(|e| e.to_string()),
            None => Err("no key".into()),
        }
    };
    let opts = ExportOptions {
        app: app.clone(),
        version: version.clone(),
        form,
        since,
        output,
        tool,
        tools_for,
        with_tool: args.with_tool,
        signer: secret
            .as_ref()
            .map(|_| &sign as appmodel_exporters::Signer<'_>),
    };
    let report = export(&store, &opts)?;
    if args.json {
        return print_json(&json!({
            "path": report.path, "app": app, "version": version, "form": form.as_str(),
            "files": report.manifest.files.len(), "bytes": report.bytes, "linked_bytes": report.linked_bytes,
            "signed": report.signed, "base": report.manifest.base.as_ref().map(|b| &b.version),
            "tool_left_out": report.manifest.base.as_ref().and_then(|b| b.tool.as_ref()),
            "volumes": report.volumes,
        }));
    }
    if !report.volumes.is_empty() {
        println!(
            "exported {app} {version} ({form} form) to `{}` as {} volumes: {} files, {}{}",
            report.path.display(),
            report.volumes.len(),
            report.manifest.files.len(),
            human_bytes(report.bytes),
            if report.signed { ", signed" } else { "" }
        );
        for v in &report.volumes {
            println!("  {}", v.display());
        }
        return Ok(());
    }
    println!(
        "exported {app} {version} ({form} form{}) to `{}`: {} files, {}{}",
        report
            .manifest
            .base
            .as_ref()
            .map(|b| format!(
                ", delta since {}{}",
                b.version,
                if b.tool.is_some() {
                    format!(", without appmodel: the site has {}'s", b.version)
                } else {
                    String::new()
                }
            ))
            .unwrap_or_default(),
        report.path.display(),
        report.manifest.files.len(),
        human_bytes(report.bytes),
        if report.signed { ", signed" } else { "" }
    );
    Ok(())
}
