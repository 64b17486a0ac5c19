//! appmodel's application model: what a vendor writes in `appmodel.yaml` and what a site
//! writes in its configuration file.
//!
//! This crate reads, checks and explains; it never writes files or starts processes.
//!
//! - [`yaml`]: a YAML reader that keeps the line and column of every node.
//! - [`schema_check`]: structural checks against the JSON Schema generated from [`types`].
//! - [`types`]: the model (app, parameters, components, ports, volumes, health checks).
//! - [`validate`]: semantic checks (names, references, ports, cycles, versions, defaults).
//! - [`expr`]: `${...}` connection-info expressions, resolved per target at install time.
//! - [`graph`]: the dependency graph: start order, parallel levels, stop order.
//! - [`config`] and [`params`]: the site configuration and parameter value checks.
//! - [`digest`] and [`record`]: content digests and the published version record that
//!   pins every artifact (shared by the store, the exporters and the importer).
//! - [`bundle`]: the offline bundle's manifest, shared by the exporters and the importer.
//! - [`input`]: opening untrusted files: regular files only, no blocking, size caps.
//! - [`diag`]: findings with file:line:column, rendered for people or as JSON.
//!
//! [`load_model`] and [`load_site_config`] run all of it and return either a checked value
//! or a [`Report`] with every finding.

pub mod bundle;
pub mod config;
pub mod diag;
pub mod digest;
pub mod expr;
pub mod graph;
pub mod input;
pub mod params;
pub mod record;
pub mod schema_check;
pub mod types;
pub mod units;
pub mod validate;
pub mod yaml;

use std::path::{Path as FsPath, PathBuf};
use std::sync::OnceLock;

use serde::de::DeserializeOwned;

pub use config::SiteConfig;
pub use diag::{Diagnostic, Report};
pub use digest::Digest;
pub use graph::DependencyGraph;
pub use record::VersionRecord;
pub use types::AppModel;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` has {} {}", .0.file.display(), .0.diagnostics.len(), if .0.diagnostics.len() == 1 { "error" } else { "errors" })]
    Invalid(Report),
}

/// A model read from a file, with the text it came from.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub file: PathBuf,
    pub text: String,
    pub model: AppModel,
}

/// The JSON Schema of `appmodel.yaml`.
pub fn model_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schema_value(schemars::schema_for!(AppModel)))
}

/// The JSON Schema of a site configuration file.
pub fn site_config_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schema_value(schemars::schema_for!(SiteConfig)))
}

fn schema_value(schema: schemars::Schema) -> serde_json::Value {
    schema.to_value()
}

fn read(path: &FsPath) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub fn load_model(path: &FsPath) -> Result<LoadedModel, ModelError> {
    let text = read(path)?;
    parse_model(path.to_path_buf(), text)
}

/// Reads and checks a model: syntax, structure, then meaning, reporting every finding.
pub fn parse_model(file: PathBuf, text: String) -> Result<LoadedModel, ModelError> {
    let (model, root, mut diagnostics) = parse_document::<AppModel>(&text, model_schema());
    if let (Some(model), Some(root)) = (&model, &root) {
        diagnostics.extend(validate::check(model, root));
    }
    match model {
        Some(model) if diagnostics.is_empty() => Ok(LoadedModel { file, text, model }),
        _ => Err(ModelError::Invalid(Report::new(file, text, diagnostics))),
    }
}

pub fn load_site_config(path: &FsPath, model: &AppModel) -> Result<SiteConfig, ModelError> {
    let text = read(path)?;
    parse_site_config(path.to_path_buf(), text, model)
}

/// Reads a site configuration and checks it against `model`'s parameters.
pub fn parse_site_config(
    file: PathBuf,
    text: String,
    model: &AppModel,
) -> Result<SiteConfig, ModelError> {
    let (config, root, mut diagnostics) = parse_document::<SiteConfig>(&text, site_config_schema());
    if let (Some(config), Some(root)) = (&config, &root) {
        diagnostics.extend(config::check(model, config, root));
    }
    match config {
        Some(config) if diagnostics.is_empty() => Ok(config),
        _ => Err(ModelError::Invalid(Report::new(file, text, diagnostics))),
    }
}

/// Reads YAML, checks it against `schema` and builds `T` from what is usable. Returns the
/// value when the structure allows building it, the tree for positions, and the findings.
fn parse_document<T: DeserializeOwned>(
    text: &str,
    schema: &serde_json::Value,
) -> (Option<T>, Option<yaml::Node>, Vec<Diagnostic>) {
    let (root, mut diagnostics) = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(d) => return (None, None, vec![d]),
    };
    let cleaned = schema_check::SchemaChecker::new(schema).check(&root, &mut diagnostics);
    let value = cleaned.and_then(|json| match serde_json::from_value::<T>(json) {
        Ok(v) => Some(v),
        Err(e) => {
            diagnostics.push(Diagnostic::new(
                root.pos,
                yaml::Path::root(),
                format!("cannot read the document: {e}"),
            ));
            None
        }
    });
    (value, Some(root), diagnostics)
}
