//! The site's offline configuration file (`site-config.yaml`): its type, its checks against a
//! model's parameters, and the commented template `appmodel config init` writes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{closest, Diagnostic};
use crate::params::check_value;
use crate::types::{AppModel, ParamType, Parameter, Scalar, DEFAULT_SECRET_LENGTH};
use crate::yaml::{Document, Node, Path, Pos, Value};

/// A site's configuration of one application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "appmodel site configuration")]
pub struct SiteConfig {
    /// The application this file configures; checked against the model when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Parameter values by name. An empty value means "not set".
    #[serde(default)]
    pub params: BTreeMap<String, Option<Scalar>>,
}

impl SiteConfig {
    /// The value the site set for `name`, if any.
    pub fn value(&self, name: &str) -> Option<&Scalar> {
        self.params.get(name).and_then(Option::as_ref)
    }
}

/// Checks a site configuration against the model's parameters; every finding at once.
pub fn check(model: &AppModel, config: &SiteConfig, root: &Node) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let params = Path::parse("params");
    if let Some(app) = &config.app {
        if app != &model.app.name {
            out.push(
                Diagnostic::new(
                    root.locate(&Path::parse("app")),
                    Path::parse("app"),
                    format!(
                        "this configuration is for app `{app}`, not `{}`",
                        model.app.name
                    ),
                )
                .with_hint("check that you picked the right file"),
            );
        }
    }
    for (name, value) in &config.params {
        let path = params.key(name);
        let Some(param) = model.parameter(name) else {
            let names = model.parameters.iter().map(|p| p.name.as_str());
            let hint = match closest(name, names) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!(
                    "parameters of {} {}: {}",
                    model.app.name,
                    model.app.version,
                    model
                        .parameters
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            out.push(
                Diagnostic::new(
                    root.locate_key(&path),
                    path,
                    format!("unknown parameter `{name}`"),
                )
                .with_hint(hint),
            );
            continue;
        };
        if let Some(value) = value {
            if let Err(e) = check_value(param, value) {
                let mut d = Diagnostic::new(root.locate(&path), path, e.message);
                d.hint = e.hint;
                out.push(d);
            }
        }
    }
    for param in &model.parameters {
        if needs_value(param) && config.value(&param.name).is_none() {
            let path = params.key(&param.name);
            let (pos, message) = match config.params.contains_key(&param.name) {
                true => (
                    root.locate(&path),
                    format!("required parameter `{}` has no value", param.name),
                ),
                false => (
                    root.locate_key(&params),
                    format!("required parameter `{}` is missing", param.name),
                ),
            };
            let mut d = Diagnostic::new(pos, path, message);
            d.hint = param.description.clone();
            out.push(d);
        }
    }
    out
}

/// What stands in for a secret value in a source excerpt.
pub const MASK: &str = "********";

/// A value as a check's result shows it: a secret's is [`MASK`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Shown {
    Value(Scalar),
    Masked(&'static str),
}

/// What checking a site configuration found (`config check --json` prints it).
#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    pub ok: bool,
    pub file: &'a std::path::Path,
    /// The model it was checked against.
    pub app: &'a str,
    pub version: &'a str,
    /// The values the file sets (none: empty), secrets masked; absent when it has errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, Option<Shown>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::diag::JsonDiagnostic<'a>>,
}

impl<'a> CheckReport<'a> {
    /// A valid configuration: its values, the secret ones masked.
    pub fn valid(file: &'a std::path::Path, model: &'a AppModel, config: &SiteConfig) -> Self {
        let params = config
            .params
            .iter()
            .map(|(name, value)| {
                let secret = model
                    .parameter(name)
                    .is_none_or(|p| p.kind == ParamType::Secret);
                let shown = value.as_ref().map(|v| match secret {
                    true => Shown::Masked(MASK),
                    false => Shown::Value(v.clone()),
                });
                (name.clone(), shown)
            })
            .collect();
        CheckReport {
            ok: true,
            file,
            app: &model.app.name,
            version: &model.app.version,
            params: Some(params),
            errors: Vec::new(),
        }
    }

    /// A configuration with errors.
    pub fn invalid(model: &'a AppModel, report: &'a crate::diag::Report) -> Self {
        CheckReport {
            ok: false,
            file: &report.file,
            app: &model.app.name,
            version: &model.app.version,
            params: None,
            errors: report.json(),
        }
    }
}

/// `text` with the values that may be secret replaced by [`MASK`], for showing excerpts of
/// a configuration in errors: the values of secret parameters, of unknown parameters (a
/// misspelt secret is still a secret) and of unknown top-level fields (a secret put beside
/// `params`), and of repeated keys the reader dropped. Lines keep their numbers; a
/// multi-line value keeps its lines, emptied.
pub fn mask_secrets(text: &str, model: &AppModel, document: &Document) -> String {
    let root = &document.root;
    let mut spans: Vec<(Pos, Pos)> = document.dropped.clone();
    for entry in root.entries() {
        match entry.key.as_str() {
            "app" => {}
            "params" if matches!(entry.value.value, Value::Map(_)) => {
                for e in entry.value.entries() {
                    let secret = model
                        .parameter(&e.key)
                        .is_none_or(|p| p.kind == ParamType::Secret);
                    if secret {
                        spans.push((e.value.pos, e.value.end));
                    }
                }
            }
            _ => spans.push((entry.value.pos, entry.value.end)),
        }
    }
    if !matches!(root.value, Value::Map(_) | Value::Null) {
        spans.push((root.pos, root.end));
    }
    mask_spans(text, spans)
}

/// Replaces each span (start inclusive, end exclusive, 1-based line and character column)
/// with [`MASK`] on its first line and blanks on the lines after.
fn mask_spans(text: &str, mut spans: Vec<(Pos, Pos)>) -> String {
    // Lines as YAML counts them: `\r\n`, a lone `\r` and `\n` each end one, so the spans'
    // line numbers fall on the right line (a lone `\r` must not hide a secret's line).
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(Vec::new());
            }
            '\n' => lines.push(Vec::new()),
            c => lines.last_mut().map_or((), |l| l.push(c)),
        }
    }
    // Right to left, so a replacement does not move the columns of the spans still to do.
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (start, end) in spans {
        if end <= start {
            continue;
        }
        for line_no in start.line..=end.line {
            let Some(line) = lines.get_mut(line_no.wrapping_sub(1)) else {
                continue;
            };
            let from = if line_no == start.line {
                start.col.saturating_sub(1)
            } else {
                0
            };
            let to = if line_no == end.line {
                end.col.saturating_sub(1)
            } else {
                line.len()
            };
            let from = from.min(line.len());
            let to = to.min(line.len()).max(from);
            if line_no == start.line {
                line.splice(from..to, MASK.chars());
            } else if line[to..].iter().all(|c| c.is_whitespace()) {
                line.truncate(from);
            } else {
                // What follows on the line keeps its column.
                line[from..to].fill(' ');
            }
        }
    }
    lines
        .iter()
        .map(|l| l.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the site must give a value: required, or a secret that is not generated.
pub fn needs_value(param: &Parameter) -> bool {
    param.required
        || (param.kind == ParamType::Secret && !param.generate && param.default.is_none())
}

/// The values in effect: the site's value, else the default. Generated secrets the site did
/// not set are absent; the importer generates and keeps them.
pub fn effective_values(model: &AppModel, config: &SiteConfig) -> BTreeMap<String, Scalar> {
    model
        .parameters
        .iter()
        .filter_map(|p| {
            config
                .value(&p.name)
                .or(p.default.as_ref())
                .map(|v| (p.name.clone(), v.clone()))
        })
        .collect()
}

/// A commented configuration file with every parameter, for the site to fill in.
pub fn template(model: &AppModel) -> String {
    let mut out = format!(
        "# Site configuration for {} {}, written by `appmodel config init`.\n\
         # Set every value marked REQUIRED, review the others, then check the file with:\n\
         #   appmodel config check <this file>\n\
         # Keep it with the site's records: upgrades read it again.\n\
         app: {}\n",
        model.app.name, model.app.version, model.app.name
    );
    if model.parameters.is_empty() {
        out.push_str("params: {}\n");
        return out;
    }
    out.push_str("params:\n");
    for (i, p) in model.parameters.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(desc) = &p.description {
            for line in desc.lines() {
                out.push_str(&format!("  # {}\n", line.trim_end()));
            }
        }
        out.push_str(&format!("  # {}\n", describe(p)));
        if p.kind == ParamType::Secret && p.generate {
            out.push_str(&format!(
                "  # Generated on site at install ({} characters) and kept across upgrades.\n  \
                 # Set a value only to choose it yourself.\n  # {}: \"\"\n",
                p.length.unwrap_or(DEFAULT_SECRET_LENGTH),
                p.name
            ));
        } else if let Some(default) = &p.default {
            out.push_str(&format!("  {}: {}\n", p.name, yaml_scalar(default)));
        } else if needs_value(p) {
            out.push_str(&format!("  {}:\n", p.name));
        } else {
            out.push_str(&format!("  # {}:\n", p.name));
        }
    }
    out
}

/// One line on what a parameter takes: its type, pattern, range, values, whether required.
pub fn describe(p: &Parameter) -> String {
    let mut parts = vec![p.kind.as_str().to_string()];
    if let Some(pattern) = &p.pattern {
        parts.push(format!("must match {pattern}"));
    }
    match (p.minimum, p.maximum) {
        (Some(a), Some(b)) => parts.push(format!("from {a} to {b}")),
        (Some(a), None) => parts.push(format!("at least {a}")),
        (None, Some(b)) => parts.push(format!("at most {b}")),
        (None, None) => {}
    }
    if !p.values.is_empty() {
        parts.push(format!("one of: {}", p.values.join(", ")));
    }
    let mut text = parts.join(", ");
    if needs_value(p) {
        text.push_str(". REQUIRED: no default, set a value");
    } else if let Some(d) = &p.default {
        text.push_str(&format!(". Default: {d}"));
    } else if !p.generate {
        text.push_str(". Optional");
    }
    text.push('.');
    text
}

/// A scalar written so that YAML reads it back as the same type.
fn yaml_scalar(value: &Scalar) -> String {
    match value {
        Scalar::Str(s) => serde_json::to_string(s).unwrap_or_default(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;

    /// Regression, found by the `site_config` fuzz target: a span past the end of a line
    /// (after a lone `\r`, which YAML counts as a line break) panicked on a slice index.
    #[test]
    fn masking_follows_yaml_line_breaks_and_never_panics() {
        let start = Pos { line: 2, col: 17 };
        let end = Pos { line: 3, col: 1 };
        assert_eq!(mask_spans("a\r\n", vec![(start, end)]), "a\n********");
        let secret = Pos { line: 2, col: 4 };
        let after = Pos { line: 2, col: 8 };
        let masked = mask_spans("a: 1\rb: s3cr\nc: 2", vec![(secret, after)]);
        assert!(!masked.contains("s3cr"), "{masked}");
        assert_eq!(masked.lines().nth(1), Some("b: ********"));
    }
}
