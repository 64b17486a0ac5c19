//! `/config`: the site's configuration as a form made from the version's parameters,
//! checked by the code `appmodel config check` runs, saved as the draft the next install or
//! upgrade plan reads. A secret's value is never put into a page.

use std::collections::BTreeMap;
use std::path::PathBuf;

use appmodel_importer::deploy::Deployment;
use appmodel_importer::{lifecycle, Site};
use appmodel_model::config::{describe, needs_value};
use appmodel_model::types::{ParamType, Parameter, Scalar};
use appmodel_model::{parse_site_config, ModelError, SiteConfig, VersionRecord};

use super::PageError;
use crate::html::{esc, form, page};
use crate::http::{encode, Resp};
use crate::Ctx;

/// The draft configuration of `app` the console keeps (mode 0600: it may hold secrets).
pub fn draft_path(site: &Site, app: &str) -> PathBuf {
    site.root()
        .join("console")
        .join(format!("{app}.site-config.yaml"))
}

/// The version the form is for: the one asked, else the newest imported.
fn target(ctx: &Ctx, site: &Site) -> Result<(String, VersionRecord), PageError> {
    let app = lifecycle::resolve_app(site, ctx.app())?;
    let record = lifecycle::pick_version(site, &app, None, ctx.req.arg("version"))?;
    Ok((app, record))
}

/// The values in effect now: the draft, else the running revision's configuration.
fn current(site: &Site, app: &str, record: &VersionRecord) -> SiteConfig {
    let dep = Deployment::new(site, app);
    let mut files = vec![draft_path(site, app)];
    if let Ok(Some(r)) = dep.current() {
        files.push(dep.revision_dir(r.number).join("site-config.yaml"));
    }
    for f in files {
        let Ok(text) = appmodel_model::input::read_text(
            &f,
            appmodel_model::input::cap::CONFIG,
            appmodel_model::input::Links::Refuse,
        ) else {
            continue;
        };
        let (text, _) = appmodel_model::drop_retired_params(&text, &record.model);
        if let Ok(c) = parse_site_config(f, text, &record.model) {
            return c;
        }
    }
    SiteConfig::default()
}

fn shown(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One parameter's field: label, hint, input, and its error if it has one.
fn field(p: &Parameter, value: Option<String>, secret_set: bool, error: Option<&str>) -> String {
    let id = format!("p-{}", p.name);
    let name = format!("p.{}", p.name);
    let hint_id = format!("{id}-hint");
    let err_id = format!("{id}-error");
    let mut described = hint_id.clone();
    let err = match error {
        Some(e) => {
            described.push(' ');
            described.push_str(&err_id);
            format!(r#"<p class="error" id="{err_id}">{}</p>"#, esc(e))
        }
        None => String::new(),
    };
    let invalid = if error.is_some() {
        r#" aria-invalid="true""#
    } else {
        ""
    };
    let required = if needs_value(p) {
        r#" aria-required="true""#
    } else {
        ""
    };
    let common = format!(
        r#"id="{id}" name="{}" aria-describedby="{described}"{invalid}{required}"#,
        esc(&name)
    );
    let value = value.unwrap_or_default();
    let input = match p.kind {
        ParamType::Enum | ParamType::Boolean => {
            let choices: Vec<String> = match p.kind {
                ParamType::Enum => p.values.clone(),
                _ => vec!["true".into(), "false".into()],
            };
            let default = p.default.as_ref().map(shown);
            let mut opts = format!(
                r#"<option value=""{}>(default{})</option>"#,
                if value.is_empty() { " selected" } else { "" },
                default
                    .map(|d| format!(": {}", esc(&d)))
                    .unwrap_or_default()
            );
            for c in choices {
                let sel = if c == value { " selected" } else { "" };
                opts.push_str(&format!(
                    r#"<option value="{0}"{sel}>{0}</option>"#,
                    esc(&c)
                ));
            }
            format!("<select {common}>{opts}</select>")
        }
        ParamType::Secret => {
            let placeholder = match (secret_set, p.generate) {
                (true, _) => "set: leave empty to keep it",
                (false, true) => "generated at install: leave empty",
                (false, false) => "not set",
            };
            format!(
                r#"<input type="password" autocomplete="new-password" {common} placeholder="{placeholder}">"#
            )
        }
        ParamType::Integer => format!(
            r#"<input type="text" inputmode="numeric" {common} value="{}" placeholder="{}">"#,
            esc(&value),
            esc(&p.default.as_ref().map(shown).unwrap_or_default())
        ),
        ParamType::String => format!(
            r#"<input type="text" spellcheck="false" {common} value="{}" placeholder="{}">"#,
            esc(&value),
            esc(&p.default.as_ref().map(shown).unwrap_or_default())
        ),
    };
    let desc = p
        .description
        .as_deref()
        .map(|d| format!("{} — ", esc(d)))
        .unwrap_or_default();
    format!(
        r#"<div class="field"><label for="{id}">{}</label><p class="hint" id="{hint_id}">{desc}{}</p>{input}{err}</div>"#,
        esc(&p.name),
        esc(&describe(p))
    )
}

fn render(
    ctx: &Ctx,
    record: &VersionRecord,
    values: &BTreeMap<String, String>,
    secrets_set: &[String],
    errors: &BTreeMap<String, String>,
    general: &[String],
) -> String {
    let mut inner = format!(
        r#"<input type="hidden" name="version" value="{}">"#,
        esc(record.version.as_ref())
    );
    if !general.is_empty() || !errors.is_empty() {
        let items: String = general
            .iter()
            .map(|g| format!("<li>{}</li>", esc(g)))
            .collect();
        inner.push_str(&format!(
            r#"<div class="error" role="alert"><p>{} problem(s): nothing was saved.</p><ul>{items}</ul></div>"#,
            errors.len() + general.len()
        ));
    }
    for p in &record.model.parameters {
        inner.push_str(&field(
            p,
            values.get(&p.name).cloned(),
            secrets_set.contains(&p.name),
            errors.get(&p.name).map(String::as_str),
        ));
    }
    inner.push_str(r#"<button type="submit">Check and save</button>"#);
    format!(
        "<p>The configuration of {} {}, checked as <code>appmodel config check</code> checks it. Saving keeps it as this console's draft; the plan of the next install or upgrade uses it.</p>{}",
        esc(&record.app),
        esc(record.version.as_ref()),
        form("/config", ctx.session, &inner)
    )
}

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    let (app, record) = target(ctx, &site)?;
    let config = current(&site, &app, &record);
    let (values, secrets) = split(&record, &config);
    let body = render(ctx, &record, &values, &secrets, &BTreeMap::new(), &[]);
    Ok(Resp::html(200, page("Configuration", "/config", &body)))
}

/// A configuration's values as the form shows them, and the secrets it sets (names only).
fn split(record: &VersionRecord, config: &SiteConfig) -> (BTreeMap<String, String>, Vec<String>) {
    let mut values = BTreeMap::new();
    let mut secrets = Vec::new();
    for p in &record.model.parameters {
        if let Some(v) = config.value(&p.name) {
            if p.kind == ParamType::Secret {
                secrets.push(p.name.clone());
            } else {
                values.insert(p.name.clone(), shown(v));
            }
        }
    }
    (values, secrets)
}

/// A form value as YAML: integers and booleans bare when they read as such, everything
/// else a double-quoted string (JSON's escapes are YAML's), so the checks see the type.
fn yaml_value(p: &Parameter, v: &str) -> String {
    let bare = match p.kind {
        ParamType::Integer => v.parse::<i64>().is_ok(),
        ParamType::Boolean => v == "true" || v == "false",
        _ => false,
    };
    if bare {
        v.to_string()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

pub fn post(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    let (app, record) = {
        let asked = ctx.req.field("version");
        let app = lifecycle::resolve_app(&site, ctx.app())?;
        let record =
            lifecycle::pick_version(&site, &app, None, (!asked.is_empty()).then_some(asked))?;
        (app, record)
    };
    let before = current(&site, &app, &record);
    let mut text = format!("app: {}\nparams:\n", record.app);
    let mut values = BTreeMap::new();
    let mut secrets_set = Vec::new();
    let mut unusable = Vec::new();
    for p in &record.model.parameters {
        let given = ctx.req.field(&format!("p.{}", p.name));
        let value = if p.kind == ParamType::Secret && given.is_empty() {
            // Kept from the configuration in effect, never sent to the browser and back.
            before.value(&p.name).map(shown)
        } else if given.is_empty() {
            None
        } else {
            Some(given.to_string())
        };
        let Some(v) = value else { continue };
        if v.contains(['\r', '\0']) {
            unusable.push(format!(
                "`{}` holds a carriage return or a NUL byte",
                p.name
            ));
            continue;
        }
        if p.kind == ParamType::Secret {
            secrets_set.push(p.name.clone());
        } else {
            values.insert(p.name.clone(), v.clone());
        }
        text.push_str(&format!("  {}: {}\n", p.name, yaml_value(p, &v)));
    }
    let unknown: Vec<String> = ctx
        .req
        .form
        .keys()
        .filter_map(|k| k.strip_prefix("p."))
        .filter(|k| record.model.parameter(k).is_none())
        .map(|k| {
            format!(
                "`{k}` is not a parameter of {} {}",
                record.app, record.version
            )
        })
        .chain(unusable)
        .collect();
    let file = draft_path(&site, &app);
    match parse_site_config(file.clone(), text.clone(), &record.model) {
        Ok(_) if unknown.is_empty() => {
            let dir = file
                .parent()
                .expect("the draft is in the console directory");
            std::fs::create_dir_all(dir)
                .map_err(|e| PageError::bad(format!("cannot create `{}`: {e}", dir.display())))?;
            appmodel_store::write_atomic_mode(&file, text.as_bytes(), 0o600)
                .map_err(|e| PageError::bad(format!("cannot save `{}`: {e}", file.display())))?;
            let installed = Deployment::new(&site, &app).current()?.is_some();
            let action = if installed { "upgrade" } else { "install" };
            let body = format!(
                r#"<p role="status" id="saved">Saved: a valid configuration of {} {}.</p><p><a href="/plan?action={action}&amp;version={}&amp;config=draft">Read the plan of the {action} with it</a></p>"#,
                esc(&record.app),
                esc(record.version.as_ref()),
                encode(record.version.as_ref())
            );
            Ok(Resp::html(200, page("Configuration", "/config", &body)))
        }
        result => {
            let mut errors = BTreeMap::new();
            let mut general = unknown;
            if let Err(ModelError::Invalid(report)) = result {
                for d in &report.diagnostics {
                    let path = d.path.to_string();
                    let text = match &d.hint {
                        Some(h) => format!("{} ({h})", d.message),
                        None => d.message.clone(),
                    };
                    match path.strip_prefix("params.") {
                        Some(name) if record.model.parameter(name).is_some() => {
                            errors.entry(name.to_string()).or_insert(text);
                        }
                        _ => general.push(text),
                    }
                }
            } else if let Err(e) = result {
                general.push(super::chain(&e));
            }
            let body = render(ctx, &record, &values, &secrets_set, &errors, &general);
            Ok(Resp::html(400, page("Configuration", "/config", &body)))
        }
    }
}
