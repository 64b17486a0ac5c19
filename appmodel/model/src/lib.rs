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
pub mod layout;
pub mod params;
pub mod record;
pub mod schema_check;
pub mod types;
pub mod units;
pub mod validate;
pub mod version;
pub mod volume;
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
        source: input::InputError,
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

/// Reads a file named on the command line: a regular file (a link to one is fine), UTF-8,
/// at most `cap` bytes. A FIFO or device is refused without blocking.
fn read(path: &FsPath, cap: u64) -> Result<String, ModelError> {
    input::read_text(path, cap, input::Links::Follow).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks the model in `path` (at most [`input::cap::MODEL`] bytes).
pub fn load_model(path: &FsPath) -> Result<LoadedModel, ModelError> {
    let text = read(path, input::cap::MODEL)?;
    parse_model(path.to_path_buf(), text)
}

/// Reads and checks a model: syntax, structure, then meaning, reporting every finding.
pub fn parse_model(file: PathBuf, text: String) -> Result<LoadedModel, ModelError> {
    let (model, document, mut diagnostics) =
        parse_document::<AppModel>(&text, model_schema(), input::cap::MODEL);
    if let (Some(model), Some(document)) = (&model, &document) {
        diagnostics.extend(validate::check(model, &document.root));
    }
    match model {
        Some(model) if diagnostics.is_empty() => Ok(LoadedModel { file, text, model }),
        _ => Err(ModelError::Invalid(Report::new(file, text, diagnostics))),
    }
}

/// A site configuration carried over from a revision of an older version, without the
/// parameters `model` no longer declares: the text with their lines removed (comments and
/// the rest kept), and their names. An upgrade that reuses the running revision's
/// configuration calls this; a file the site gives is checked as it is. A retired parameter
/// that shares a line with anything else (flow style, `params: {a: 1}`) stays, and the
/// check reports it.
pub fn drop_retired_params(text: &str, model: &AppModel) -> (String, Vec<String>) {
    let unchanged = (text.to_string(), Vec::new());
    if text.contains('\r') {
        return unchanged;
    }
    let (_, document, _) =
        parse_document::<SiteConfig>(text, site_config_schema(), input::cap::CONFIG);
    let Some(document) = document else {
        return unchanged;
    };
    let root = &document.root;
    let Some(params) = root.entries().iter().find(|e| e.key == "params") else {
        return unchanged;
    };
    // The first line of every key, to tell whether a retired entry's lines are its own.
    let mut starts: Vec<usize> = root.entries().iter().map(|e| e.key_pos.line).collect();
    starts.extend(params.value.entries().iter().map(|e| e.key_pos.line));
    let mut drop: Vec<(usize, usize)> = Vec::new();
    let mut names = Vec::new();
    for e in params.value.entries() {
        if model.parameter(&e.key).is_some() {
            continue;
        }
        let first = e.key_pos.line;
        let end = e.value.end;
        let mut last = if end.col <= 1 { end.line - 1 } else { end.line }.max(first);
        // A block scalar ends where the next key starts.
        if let Some(next) = starts.iter().copied().filter(|l| *l > first).min() {
            last = last.min(next - 1);
        }
        let shared =
            starts.iter().filter(|l| **l == first).count() > 1 || params.key_pos.line == first;
        if shared {
            return unchanged;
        }
        drop.push((first, last));
        names.push(e.key.clone());
    }
    if names.is_empty() {
        return unchanged;
    }
    let kept: Vec<&str> = text
        .split('\n')
        .enumerate()
        .filter(|(i, _)| !drop.iter().any(|(a, b)| (*a..=*b).contains(&(i + 1))))
        .map(|(_, l)| l)
        .collect();
    (kept.join("\n"), names)
}

/// Reads and checks the site configuration in `path` (at most [`input::cap::CONFIG`] bytes).
pub fn load_site_config(path: &FsPath, model: &AppModel) -> Result<SiteConfig, ModelError> {
    let text = read(path, input::cap::CONFIG)?;
    parse_site_config(path.to_path_buf(), text, model)
}

/// Reads a site configuration and checks it against `model`'s parameters. In the report of
/// a bad configuration, the values of secret (and unknown) parameters are masked in the
/// source excerpts: no secret leaves this function in an error.
pub fn parse_site_config(
    file: PathBuf,
    text: String,
    model: &AppModel,
) -> Result<SiteConfig, ModelError> {
    let (config, document, mut diagnostics) =
        parse_document::<SiteConfig>(&text, site_config_schema(), input::cap::CONFIG);
    if let (Some(config), Some(document)) = (&config, &document) {
        diagnostics.extend(config::check(model, config, &document.root));
    }
    match config {
        Some(config) if diagnostics.is_empty() => Ok(config),
        _ => {
            let shown = match &document {
                Some(document) => config::mask_secrets(&text, model, document),
                // Unreadable YAML: no value can be told from another, show no line at all.
                None => String::new(),
            };
            Err(ModelError::Invalid(Report::new(file, shown, diagnostics)))
        }
    }
}

/// Reads YAML, checks it against `schema` and builds `T` from what is usable. Returns the
/// value when the structure allows building it, the tree for positions, and the findings.
fn parse_document<T: DeserializeOwned>(
    text: &str,
    schema: &serde_json::Value,
    cap: u64,
) -> (Option<T>, Option<yaml::Document>, Vec<Diagnostic>) {
    // Text handed over by a caller that read it itself gets the same cap as a file.
    if text.len() as u64 > cap {
        let d = Diagnostic::new(
            yaml::Pos { line: 1, col: 1 },
            yaml::Path::root(),
            format!(
                "the document is {} bytes, more than the {cap} bytes allowed",
                text.len()
            ),
        );
        return (None, None, vec![d]);
    }
    let document = match yaml::read(text) {
        Ok(document) => document,
        Err(d) => return (None, None, vec![d]),
    };
    let root = &document.root;
    let mut diagnostics = document.duplicates.clone();
    let cleaned = schema_check::SchemaChecker::new(schema).check(root, &mut diagnostics);
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
    (value, Some(document), diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "apiVersion: appmodel/v1
app: {name: x, version: 1.1.0}
parameters:
  - {name: n, type: integer, default: 3}
  - {name: token, type: secret, pattern: '[a-z]{12}', generate: true}
components:
  - name: a
    image: {registry: 'r.example/a:1'}
";

    fn model() -> AppModel {
        parse_model("m.yaml".into(), MODEL.into()).unwrap().model
    }

    #[test]
    fn a_check_report_shows_values_and_masks_secrets() {
        let m = model();
        let config = parse_site_config(
            "c.yaml".into(),
            "params:\n  n: 5\n  token: abcdefghijkl\n".into(),
            &m,
        )
        .unwrap();
        let r = config::CheckReport::valid(FsPath::new("c.yaml"), &m, &config);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ok":true,"file":"c.yaml","app":"x","version":"1.1.0","params":{"n":5,"token":"********"}}"#
        );
        let report = config_report("params:\n  n: many\n");
        let r = config::CheckReport::invalid(&m, &report);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!((v["ok"].as_bool(), v.get("params")), (Some(false), None));
        assert_eq!(v["errors"][0]["field"], "params.n");
    }

    #[test]
    fn a_carried_configuration_loses_only_the_retired_parameters() {
        let text = "app: x\nparams:\n  # the limit\n  n: 5\n  max_users: 100\n  motd: |\n    two\n    lines\n  token: abcdefghijkl\n";
        let (kept, names) = drop_retired_params(text, &model());
        assert_eq!(names, ["max_users", "motd"]);
        assert_eq!(
            kept,
            "app: x\nparams:\n  # the limit\n  n: 5\n  token: abcdefghijkl\n"
        );
        assert!(parse_site_config("c.yaml".into(), kept, &model()).is_ok());
        // Nothing retired, or written in flow style: unchanged (the check reports the latter).
        let (same, none) = drop_retired_params("params:\n  n: 5\n", &model());
        assert_eq!((same.as_str(), none.len()), ("params:\n  n: 5\n", 0));
        let flow = "params: {n: 5, max_users: 100}\n";
        assert_eq!(
            drop_retired_params(flow, &model()),
            (flow.to_string(), vec![])
        );
        assert_eq!(drop_retired_params("[", &model()).0, "[");
    }

    fn model_report(text: &str) -> String {
        match parse_model("m.yaml".into(), text.into()) {
            Err(ModelError::Invalid(r)) => r.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    fn config_report(text: &str) -> Report {
        match parse_site_config("c.yaml".into(), text.into(), &model()) {
            Err(ModelError::Invalid(r)) => r,
            other => panic!("not refused: {other:?}"),
        }
    }

    /// Regression: site trust defect 10. `.inf`, `.nan` and `1e309` became null on the way
    /// to JSON, so `config check` said ok and the default was used instead.
    #[test]
    fn numbers_that_are_not_finite_are_refused_with_their_position() {
        for v in [".inf", "-.inf", "+.INF", ".nan", ".NaN", "1e309", "-1e309"] {
            let r = config_report(&format!("params:\n  n: {v}\n"));
            assert_eq!(r.diagnostics.len(), 1, "{v}: {r}");
            let d = &r.diagnostics[0];
            assert_eq!((d.pos.line, d.pos.col), (2, 6), "{v}");
            assert_eq!(d.path.to_string(), "params.n");
            let kind = if v.to_lowercase().contains("nan") {
                "NaN"
            } else {
                "infinite"
            };
            assert_eq!(
                d.message,
                format!("the number is {kind}: only finite numbers are allowed")
            );
        }
        let text = MODEL.replace("default: 3", "default: .inf");
        insta::assert_snapshot!(model_report(&text), @r"
        error: the number is infinite: only finite numbers are allowed
         --> m.yaml:4:39 (parameters[0].default)
          |
        4 |   - {name: n, type: integer, default: .inf}
          |                                       ^
          = hint: `.inf`, `.nan` and numbers beyond about 1.8e308 (like `1e309`) are not values appmodel can use
        ");
    }

    /// Regression: site trust defect 7a, a float for an integer: `2.5` for an integer
    /// parameter is refused in a site config and as a default, and `2.0` for an integer
    /// field of the model points at the field (it was "cannot read the document" at 1:1).
    #[test]
    fn a_float_for_an_integer_is_refused_with_its_position() {
        let r = config_report("params:\n  n: 2.5\n");
        assert_eq!(r.diagnostics.len(), 1, "{r}");
        assert_eq!(r.diagnostics[0].pos, yaml::Pos { line: 2, col: 6 });
        assert_eq!(
            r.diagnostics[0].message,
            "parameter `n` is an integer, but the value is a number"
        );
        let text = MODEL.replace("default: 3", "default: 2.5");
        assert!(model_report(&text).contains(
            "error: default does not fit: parameter `n` is an integer, but the value is a number\n --> m.yaml:4:39 (parameters[0].default)"
        ));
        let text = MODEL.replace("    image:", "    replicas: 2.0\n    image:");
        insta::assert_snapshot!(model_report(&text), @r"
        error: expected an integer, found the number `2.0`
         --> m.yaml:8:15 (components[0].replicas)
          |
        8 |     replicas: 2.0
          |               ^
          = hint: `replicas`: Number of copies (Helm form)
        ");
    }

    /// Regression: site trust defect 9. The message hid a bad secret, the excerpt under it
    /// showed it in clear.
    #[test]
    fn a_bad_secret_is_masked_in_the_excerpt() {
        let r = config_report("params:\n  token: hunter2hunter2 # mine\n  n: 7.5\n");
        let shown = r.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        insta::assert_snapshot!(shown, @r"
        error: the value does not match the pattern `[a-z]{12}` of parameter `token`
         --> c.yaml:2:10 (params.token)
          |
        2 |   token: ******** # mine
          |          ^

        error: parameter `n` is an integer, but the value is a number
         --> c.yaml:3:6 (params.n)
          |
        3 |   n: 7.5
          |      ^
        ");
        let json = serde_json::to_string(&r.json()).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
    }

    /// Regression: site trust defect 9: a secret in a flow mapping, in a multi-line string,
    /// under a misspelt name, outside `params`, or in a file that is not YAML.
    #[test]
    fn secrets_are_masked_wherever_they_stand() {
        let cases = [
            "params: {n: 1.5, token: \"hunter2 x\"}\n",
            "params:\n  token: |\n    hunter2\n    hunter2 again\n  n: x\n",
            "params:\n  tokne: hunter2\n",
            "token: hunter2\n",
            "params:\n  token: [hunter2]\n",
            "params:\n  token: \"hunter2\n",
            "params:\n  token: hunter2\n  token: hunter2hunter2\n",
        ];
        for text in cases {
            let r = config_report(text);
            assert!(!r.diagnostics.is_empty());
            let shown = r.to_string();
            assert!(!shown.contains("hunter2"), "{text:?}:\n{shown}");
            let json = serde_json::to_string(&r.json()).unwrap();
            assert!(!json.contains("hunter2"), "{json}");
        }
        // Lines keep their numbers: the multi-line secret's lines are emptied, not removed.
        let r = config_report(cases[1]);
        assert!(r.to_string().contains("5 |   n: x\n"), "{r}");
    }

    /// Regression: site trust defect 6. `--config /dev/zero` read until memory ran out, a
    /// FIFO hung, a directory was an I/O error.
    #[test]
    fn files_that_are_not_regular_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let m = model();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (FsPath::new("/dev/zero"), "a device"),
            (dir.path(), "a directory"),
        ] {
            let e = load_site_config(path, &m).unwrap_err();
            assert!(matches!(&e, ModelError::Read { source, .. } if source.is_user_error()));
            let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert_eq!(
                chain,
                format!(
                    "cannot read `{}`: it is {kind}, not a regular file",
                    path.display()
                )
            );
            assert!(load_model(path).is_err());
        }
    }

    /// Regression: site trust defect 6: a 50 MB configuration or a 100 MB model was read whole.
    #[test]
    fn files_and_texts_beyond_their_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(input::cap::MODEL + 1).unwrap();
        let e = load_model(&big).unwrap_err();
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(
            source,
            format!(
                "it is {} bytes, more than the {} bytes allowed",
                input::cap::MODEL + 1,
                input::cap::MODEL
            )
        );
        assert!(load_site_config(&big, &model()).is_err());
        // Text read by a caller gets the same cap.
        let text = format!(
            "params: {{}}\n#{}\n",
            "x".repeat(input::cap::CONFIG as usize)
        );
        let r = config_report(&text);
        assert!(r.diagnostics[0].message.starts_with("the document is "));
    }

    /// Regression: site trust defect 6: a billion laughs in a site configuration.
    #[test]
    fn an_alias_bomb_in_a_config_is_a_finding_with_a_position() {
        let mut text = String::from("x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!("x{i}: &x{i} [*x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}]\n"));
        }
        text.push_str("params: {n: *x11}\n");
        let r = config_report(&text);
        assert_eq!(r.diagnostics.len(), 1);
        assert!(r.diagnostics[0]
            .message
            .starts_with("this alias makes the document expand"));
        assert_eq!(r.diagnostics[0].pos.line, 6);
    }

    /// `upgrade_from` (from "no replay, no silent downgrade"): a semver requirement.
    #[test]
    fn upgrade_from_is_a_version_requirement() {
        let with = |req: &str| {
            MODEL.replace(
                "version: 1.1.0}",
                &format!("version: 1.1.0, upgrade_from: '{req}'}}"),
            )
        };
        let m = parse_model("m.yaml".into(), with(">=1.0.0, <1.1.0"))
            .unwrap()
            .model;
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(m.allows_upgrade_from(&v("1.0.0")));
        assert!(m.allows_upgrade_from(&v("1.0.9")));
        assert!(!m.allows_upgrade_from(&v("0.9.0")));
        assert!(!m.allows_upgrade_from(&v("1.1.0")));
        assert!(!m.allows_upgrade_from(&v("1.0.1-rc.1")));
        assert!(
            model().allows_upgrade_from(&v("0.0.1")),
            "absent: any version"
        );
        insta::assert_snapshot!(model_report(&with("since 1.0")), @r"
        error: `since 1.0` is not a version requirement: unexpected character 's' while parsing major version number
         --> m.yaml:2:46 (app.upgrade_from)
          |
        2 | app: {name: x, version: 1.1.0, upgrade_from: 'since 1.0'}
          |                                              ^
          = hint: write a semver requirement, e.g. `>=1.0.0` or `>=1.0.0, <2.0.0`
        ");
    }
}
