//! The Helm form: one chart per app, packaged as a deterministic `.tgz`.
//!
//! - `Chart.yaml`: version and appVersion are the published version.
//! - `values.yaml`: the parameters with their defaults (`params`), the images by repository
//!   and digest (`images`), `global.imageRegistry` and per-image `registry` overrides that
//!   relocate every image to the site's registry, and replicas per component.
//! - `values.schema.json`: generated from the parameter types, so Helm itself refuses bad
//!   site values (wrong type, pattern, range, enum value, unknown parameter).
//! - `templates/`: per component a Deployment (a StatefulSet with volumeClaimTemplates when it
//!   has data volumes), a Service, a ConfigMap for its config files (a Secret when they use a
//!   secret parameter); one Secret for the secret parameters, where a generated secret is
//!   created once and then read back with `lookup`, so upgrades keep it.
//!
//! Model strings become template text through [`render_for_target`]: a component's host is
//! the release's Service name, a parameter is `{{ .Values.params.NAME }}`. Literal `{{` in the
//! model is escaped; in env values and args a literal `$` is doubled for Kubernetes' own
//! `$(VAR)` expansion. A string with template expressions is evaluated with `tpl` and quoted
//! with `toJson`, so no value can break the YAML around it.
//!
//! Manifests are built as JSON values and written with [`crate::yaml_out`]; template
//! expressions go in as markers that are replaced by raw template text afterwards.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Map, Value};

use appmodel_model::bundle::Form;
use appmodel_model::expr::{render_for_target, Reference, Template};
use appmodel_model::record::VersionRecord;
use appmodel_model::types::{
    AppModel, Component, HealthCheck, ParamType, Parameter, Protocol, Scalar, VolumeKind,
    DEFAULT_SECRET_LENGTH,
};
use appmodel_model::units::parse_duration;

use crate::forms::{FormExporter, Needs, Ships};
use crate::yaml_out::to_yaml;
use crate::ExportError;

// The form's layout and names are the bundle contract, shared with the importer.
pub use appmodel_model::layout::helm::{image_repository, HELM_DIR, INSTALL_FILE};

/// Size of a data volume's claim when the model gives none.
pub const DEFAULT_VOLUME_SIZE: &str = "1Gi";
/// The Secret holding the secret parameters: `<release>-<PARAMS_OBJECT>`.
pub const PARAMS_OBJECT: &str = "params";

/// The packaged chart's path in the bundle: `helm/APP-VERSION.tgz`.
pub fn chart_archive_path(record: &VersionRecord) -> String {
    appmodel_model::layout::helm::chart_path(&record.app, &record.version)
}

/// The helm form in the form table ([`crate::forms::FORMS`]).
pub struct Helm;

impl FormExporter for Helm {
    fn ships(&self) -> Ships {
        Ships::Images
    }

    fn files(
        &self,
        record: &VersionRecord,
        needs: &Needs<'_>,
    ) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
        bundle_files(record, needs)
    }

    fn readme_files(&self) -> &'static str {
        "oci-layout and index.json (the images, see `appmodel push-images`) and the chart."
    }
}

/// The bundle files of the Helm form: the packaged chart and the install notes.
pub fn bundle_files(
    record: &VersionRecord,
    needs: &Needs<'_>,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    let chart = chart_files(record, needs)?;
    Ok(vec![
        (chart_archive_path(record), package(&record.app, &chart)?),
        (INSTALL_FILE.to_string(), install_text(record).into_bytes()),
    ])
}

/// The chart's files, by path relative to the chart directory, in path order.
pub fn chart_files(
    record: &VersionRecord,
    needs: &Needs<'_>,
) -> Result<BTreeMap<String, String>, ExportError> {
    let model = &record.model;
    let mut images = Map::new();
    // An app of several platforms pins each component's index: the cluster's nodes pull
    // the image of their own platform from it.
    for (component, _, img) in &needs.images {
        let digest = needs
            .indexes
            .get(component)
            .map_or(&img.manifest.digest, |i| &i.digest);
        images.insert(
            component.to_string(),
            json!({
                "registry": "",
                "repository": image_repository(&record.app, component),
                "digest": digest.to_string(),
            }),
        );
    }
    let mut files = BTreeMap::new();
    files.insert("Chart.yaml".to_string(), chart_yaml(record));
    files.insert("values.yaml".to_string(), values_yaml(model, &images));
    files.insert("values.schema.json".to_string(), values_schema(model));
    files.insert("templates/_helpers.tpl".to_string(), helpers(model));
    files.insert("templates/NOTES.txt".to_string(), notes(model));
    if model.parameters.iter().any(|p| p.kind == ParamType::Secret) {
        files.insert(
            "templates/params-secret.yaml".to_string(),
            params_secret(model),
        );
    }
    for c in &model.components {
        files.insert(
            format!("templates/{}-workload.yaml", c.name),
            workload(model, c)?,
        );
        if !c.ports.is_empty() {
            files.insert(format!("templates/{}-service.yaml", c.name), service(c));
        }
        if let Some(cfg) = config_object(model, c)? {
            files.insert(format!("templates/{}-config.yaml", c.name), cfg);
        }
    }
    Ok(files)
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn chart_yaml(record: &VersionRecord) -> String {
    let model = &record.model;
    let mut v = Map::new();
    v.insert("apiVersion".into(), json!("v2"));
    v.insert("name".into(), json!(record.app));
    v.insert(
        "description".into(),
        json!(model
            .app
            .description
            .clone()
            .unwrap_or_else(|| format!("{} (written by appmodel)", record.app))),
    );
    v.insert("type".into(), json!("application"));
    v.insert("version".into(), json!(record.version));
    v.insert("appVersion".into(), json!(record.version));
    if let Some(vendor) = &model.app.vendor {
        v.insert("maintainers".into(), json!([{"name": vendor}]));
    }
    v.insert(
        "annotations".into(),
        json!({"dev.appmodel/written-by": format!("appmodel {}", env!("CARGO_PKG_VERSION"))}),
    );
    to_yaml(&Value::Object(v))
}

fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => json!(b),
        Scalar::Int(i) => json!(i),
        Scalar::Float(f) => json!(f),
        Scalar::Str(s) => json!(s),
    }
}

fn values_yaml(model: &AppModel, images: &Map<String, Value>) -> String {
    let mut out = format!(
        "# Values of the {app} {version} chart, written by appmodel.\n\
         # Site settings go in a values file of your own (`helm upgrade --install -f site.yaml`);\n\
         # values.schema.json checks them.\n\n\
         # The site's registry (`HOST[:PORT][/PREFIX]`) that `appmodel push-images` filled;\n\
         # every image is pulled from there by digest. Required at install.\n",
        app = model.app.name,
        version = model.app.version
    );
    out.push_str(&to_yaml(&json!({"global": {"imageRegistry": ""}})));
    out.push_str(
        "\n# Images by repository and digest (set `registry` to override the global one).\n",
    );
    out.push_str(&to_yaml(&json!({ "images": images })));
    out.push_str("\n# Copies per component.\n");
    let mut comps = Map::new();
    for c in &model.components {
        comps.insert(c.name.clone(), json!({"replicas": c.replicas.unwrap_or(1)}));
    }
    out.push_str(&to_yaml(&json!({ "components": comps })));
    let mut entries = String::new();
    let mut any = false;
    for p in &model.parameters {
        if let Some(d) = &p.description {
            entries.push_str(&format!("  # {}\n", d.replace('\n', " ")));
        }
        match (&p.default, p.kind, p.generate) {
            (Some(d), _, _) => {
                any = true;
                entries.push_str(&format!("  {}: {}\n", p.name, scalar_json(d)));
            }
            (None, ParamType::Secret, true) => {
                any = true;
                entries.push_str(&format!(
                    "  # empty: generated at the first install and kept across upgrades\n  {}: \"\"\n",
                    p.name
                ));
            }
            (None, _, _) if p.required => {
                entries.push_str(&format!("  # required: {}: ...\n", p.name));
            }
            (None, _, _) => {
                entries.push_str(&format!("  # optional: {}: ...\n", p.name));
            }
        }
    }
    out.push_str("\n# The app's parameters.\n");
    out.push_str(if any { "params:\n" } else { "params: {}\n" });
    out.push_str(&entries);
    out
}

fn param_schema(p: &Parameter) -> Value {
    let mut s = Map::new();
    if let Some(d) = &p.description {
        s.insert("description".into(), json!(d));
    }
    match p.kind {
        ParamType::String | ParamType::Secret => {
            s.insert("type".into(), json!("string"));
            if let Some(pattern) = &p.pattern {
                let anchored = format!("^(?:{pattern})$");
                if p.generate {
                    // Empty means "generate one".
                    s.insert(
                        "anyOf".into(),
                        json!([{"maxLength": 0}, {"pattern": anchored}]),
                    );
                } else {
                    s.insert("pattern".into(), json!(anchored));
                }
            }
        }
        ParamType::Integer => {
            s.insert("type".into(), json!("integer"));
            if let Some(m) = p.minimum {
                s.insert("minimum".into(), json!(m));
            }
            if let Some(m) = p.maximum {
                s.insert("maximum".into(), json!(m));
            }
        }
        ParamType::Boolean => {
            s.insert("type".into(), json!("boolean"));
        }
        ParamType::Enum => {
            s.insert("type".into(), json!("string"));
            s.insert("enum".into(), json!(p.values));
        }
    }
    Value::Object(s)
}

/// The `licence` values appmodel sets from the site's licence: each entitlement and `plan`.
fn licence_schema(model: &AppModel) -> Option<Value> {
    let policy = model.licence.as_ref()?;
    let mut props = Map::new();
    props.insert("plan".into(), json!({"type": "string"}));
    props.insert(
        "stopped".into(),
        json!({"type": "boolean", "description": "Set by `appmodel license check` when the licence stops the app: every workload runs 0 replicas, data kept."}),
    );
    for plan in policy.plans.values() {
        for (name, value) in plan {
            let kind = match value {
                appmodel_model::types::Scalar::Bool(_) => "boolean",
                appmodel_model::types::Scalar::Int(_) => "integer",
                _ => "string",
            };
            props.insert(name.clone(), json!({"type": kind}));
        }
    }
    Some(json!({"type": "object", "properties": props, "additionalProperties": false}))
}

fn values_schema(model: &AppModel) -> String {
    let params: Map<String, Value> = model
        .parameters
        .iter()
        .map(|p| (p.name.clone(), param_schema(p)))
        .collect();
    let image = json!({
        "type": "object",
        "properties": {
            "registry": {"type": "string"},
            "repository": {"type": "string", "minLength": 1},
            "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
        },
        "required": ["repository", "digest"],
        "additionalProperties": false
    });
    let images: Map<String, Value> = model
        .components
        .iter()
        .map(|c| (c.name.clone(), image.clone()))
        .collect();
    let comps: Map<String, Value> = model
        .components
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                json!({
                    "type": "object",
                    "properties": {"replicas": {"type": "integer", "minimum": 0}},
                    "additionalProperties": false
                }),
            )
        })
        .collect();
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": format!("values of the {} chart", model.app.name),
        "type": "object",
        "properties": {
            "global": {
                "type": "object",
                "properties": {
                    "imageRegistry": {
                        "type": "string",
                        "description": "The site registry, HOST[:PORT][/PREFIX], holding the images pushed by `appmodel push-images`.",
                        "pattern": "^([^/\\s@]+(/[^\\s@]+)*)?$"
                    }
                }
            },
            "images": {"type": "object", "properties": images, "additionalProperties": false},
            "components": {"type": "object", "properties": comps, "additionalProperties": false},
            "params": {"type": "object", "properties": params, "additionalProperties": false}
        }
    });
    let mut schema = schema;
    if let Some(licence) = licence_schema(model) {
        schema["properties"]["licence"] = licence;
    }
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

fn helpers(model: &AppModel) -> String {
    let mut required = String::new();
    for p in &model.parameters {
        if p.required && p.default.is_none() && !p.generate {
            required.push_str(&format!(
                "{{{{- $_ := required {} $root.Values.params.{} }}}}\n",
                quoted(&format!(
                    "parameter `{}` is required: set params.{} in the site values",
                    p.name, p.name
                )),
                p.name
            ));
        }
    }
    format!(
        r#"{{{{/* Written by appmodel. (list $ "NAME") is the calling convention: root context, name. */}}}}

{{{{/* An object's name: RELEASE-NAME, at most 63 characters (a DNS label). */}}}}
{{{{- define "appmodel.fullname" -}}}}
{{{{- printf "%s-%s" (index . 0).Release.Name (index . 1) | trunc 63 | trimSuffix "-" -}}}}
{{{{- end -}}}}

{{{{/* Labels recommended by Kubernetes (app.kubernetes.io/*). */}}}}
{{{{- define "appmodel.labels" -}}}}
{{{{- $root := index . 0 -}}}}
helm.sh/chart: {{{{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}}}
app.kubernetes.io/name: {{{{ $root.Chart.Name | quote }}}}
app.kubernetes.io/instance: {{{{ $root.Release.Name | quote }}}}
app.kubernetes.io/version: {{{{ $root.Chart.AppVersion | quote }}}}
app.kubernetes.io/component: {{{{ index . 1 | quote }}}}
app.kubernetes.io/part-of: {{{{ $root.Chart.Name | quote }}}}
app.kubernetes.io/managed-by: {{{{ $root.Release.Service | quote }}}}
{{{{- end -}}}}

{{{{/* The labels a component's Service and workload select on. */}}}}
{{{{- define "appmodel.selectorLabels" -}}}}
app.kubernetes.io/name: {{{{ (index . 0).Chart.Name | quote }}}}
app.kubernetes.io/instance: {{{{ (index . 0).Release.Name | quote }}}}
app.kubernetes.io/component: {{{{ index . 1 | quote }}}}
{{{{- end -}}}}

{{{{/* A component's image: REGISTRY/REPOSITORY@DIGEST, the registry from images.NAME.registry
     or global.imageRegistry (where `appmodel push-images` put the images). */}}}}
{{{{- define "appmodel.image" -}}}}
{{{{- $root := index . 0 -}}}}
{{{{- $img := index $root.Values.images (index . 1) -}}}}
{{{{- $registry := $img.registry | default $root.Values.global.imageRegistry -}}}}
{{{{- $registry = required "set global.imageRegistry to the site registry the images were pushed to (appmodel push-images --registry HOST[/PREFIX])" $registry -}}}}
{{{{- printf "%s/%s@%s" (trimSuffix "/" $registry) $img.repository $img.digest -}}}}
{{{{- end -}}}}

{{{{/* Fails the render when a required parameter has no value. */}}}}
{{{{- define "appmodel.required" -}}}}
{{{{- $root := . -}}}}
{required}{{{{- end -}}}}
"#
    )
}

fn notes(model: &AppModel) -> String {
    let mut out = format!(
        "{} {{{{ .Chart.AppVersion }}}} is installed as release {{{{ .Release.Name }}}} in namespace {{{{ .Release.Namespace }}}}.\n\nServices:\n",
        model.app.name
    );
    for c in &model.components {
        for p in &c.ports {
            out.push_str(&format!(
                "  {}: {{{{ include \"appmodel.fullname\" (list $ {}) }}}}:{} ({})\n",
                c.name,
                quoted(&c.name),
                p.port,
                p.name
            ));
        }
    }
    out
}

/// Marks template text inside a value that [`to_yaml`] writes; replaced after writing.
#[derive(Default)]
struct Raw {
    texts: Vec<String>,
}

impl Raw {
    fn mark(&mut self, template: String) -> Value {
        self.texts.push(template);
        json!(format!("\u{0}raw{}\u{0}", self.texts.len() - 1))
    }

    /// A model string as a YAML value: plain when it has no template text, else evaluated.
    fn text(&mut self, template_text: String) -> Value {
        if template_text.contains("{{") {
            self.mark(format!(
                "{{{{ tpl {} $ | toJson }}}}",
                quoted(&template_text)
            ))
        } else {
            json!(template_text)
        }
    }

    fn yaml(&self, v: &Value) -> String {
        let mut out = to_yaml(v);
        for (i, t) in self.texts.iter().enumerate() {
            out = out.replace(&quoted(&format!("\u{0}raw{i}\u{0}")), t);
        }
        out
    }
}

/// Where a rendered string goes: Kubernetes expands `$(VAR)` in env values and args.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    EnvOrArgs,
    File,
}

/// The env variable that carries a secret parameter inside a container.
fn secret_var(name: &str) -> String {
    format!("APPMODEL_SECRET_{name}")
}

fn fullname(component: &str) -> String {
    format!(
        "{{{{ include \"appmodel.fullname\" (list $ {}) }}}}",
        quoted(component)
    )
}

/// Renders a model string to Helm template text.
fn render(model: &AppModel, text: &str, ctx: Context) -> Result<String, ExportError> {
    let param = |name: &str| -> Option<String> {
        if let Some(entitlement) = name.strip_prefix("licence.") {
            // Set by appmodel from the site's licence (`licence:` in the values).
            return Some(match ctx {
                Context::EnvOrArgs => format!(
                    "{{{{ .Values.licence.{entitlement} | toString | replace \"$\" \"$$\" }}}}"
                ),
                Context::File => format!("{{{{ .Values.licence.{entitlement} }}}}"),
            });
        }
        let p = model.parameter(name)?;
        Some(match (p.kind, ctx) {
            (ParamType::Secret, Context::EnvOrArgs) => format!("$({})", secret_var(name)),
            (ParamType::Integer, _) => format!("{{{{ .Values.params.{name} | int64 }}}}"),
            (ParamType::String | ParamType::Enum, Context::EnvOrArgs) => {
                format!("{{{{ .Values.params.{name} | toString | replace \"$\" \"$$\" }}}}")
            }
            _ => format!("{{{{ .Values.params.{name} }}}}"),
        })
    };
    let literal = |s: &str| {
        let s = if ctx == Context::EnvOrArgs {
            s.replace('$', "$$")
        } else {
            s.to_string()
        };
        s.replace("{{", "{{ \"{{\" }}")
    };
    render_for_target(
        model,
        text,
        &|c: &Component| fullname(&c.name),
        &param,
        &literal,
    )
    .map_err(|e| ExportError::Render(e.message))
}

/// The secret parameters a string refers to.
fn secret_refs<'m>(model: &'m AppModel, text: &str) -> Vec<&'m Parameter> {
    Template::parse(text)
        .map(|t| {
            t.references()
                .filter_map(|r| match r {
                    Reference::Param(n) => model.parameter(n),
                    _ => None,
                })
                .filter(|p| p.kind == ParamType::Secret)
                .collect()
        })
        .unwrap_or_default()
}

/// A literal string (no `${...}`) as a YAML value that Helm leaves as it is.
fn literal_value(raw: &mut Raw, s: &str) -> Value {
    if s.contains("{{") {
        raw.mark(format!("{{{{ {} | toJson }}}}", quoted(s)))
    } else {
        json!(s)
    }
}

/// Whole seconds, at least 1 (what Kubernetes probes take).
fn secs(d: std::time::Duration) -> u64 {
    (d.as_secs_f64().ceil() as u64).max(1)
}

fn probe(c: &Component, h: &HealthCheck, raw: &mut Raw) -> Option<Value> {
    let port_of = |name: &str| c.port(name).map(|p| p.port).unwrap_or_default();
    let mut m = Map::new();
    if let Some(http) = &h.http {
        let path = literal_value(raw, &http.path);
        m.insert(
            "httpGet".into(),
            json!({"path": path, "port": port_of(&http.port)}),
        );
    } else if let Some(tcp) = &h.tcp {
        m.insert("tcpSocket".into(), json!({"port": port_of(&tcp.port)}));
    } else if let Some(exec) = &h.exec {
        let cmd: Vec<Value> = exec.command.iter().map(|a| literal_value(raw, a)).collect();
        m.insert("exec".into(), json!({"command": cmd}));
    } else {
        return None;
    }
    let timing = h.durations();
    m.insert("periodSeconds".into(), json!(secs(timing.interval)));
    m.insert("timeoutSeconds".into(), json!(secs(timing.timeout)));
    m.insert("failureThreshold".into(), json!(timing.retries.max(1)));
    Some(Value::Object(m))
}

/// The numeric user and group a component runs as, when known.
fn run_as(c: &Component) -> Option<(u64, u64)> {
    match &c.user {
        Some(u) => {
            let (user, group) = u.split_once(':').unwrap_or((u.as_str(), u.as_str()));
            Some((user.parse().ok()?, group.parse().ok()?))
        }
        // Images built from a static binary run as nobody.
        None if c.image.as_ref().is_some_and(|i| i.from_binary) => Some((65534, 65534)),
        None => None,
    }
}

/// A block of labels for `component`: `helper` is `appmodel.labels` or
/// `appmodel.selectorLabels`; the indentation is filled in when the document is written.
fn labels(helper: &str, component: &str) -> Value {
    json!(format!("{BLOCK_MARK}{helper} {component}\u{0}"))
}

/// Whether a component's config files go in a Secret (they use a secret parameter).
fn config_is_secret(model: &AppModel, c: &Component) -> bool {
    c.volumes.iter().any(|v| {
        v.kind == VolumeKind::Config
            && !secret_refs(model, v.content.as_deref().unwrap_or_default()).is_empty()
    })
}

fn workload(model: &AppModel, c: &Component) -> Result<String, ExportError> {
    let mut raw = Raw::default();
    let name = &c.name;
    let stateful = c.volumes.iter().any(|v| v.kind == VolumeKind::Data);

    // Container.
    let mut ctr = Map::new();
    ctr.insert("name".into(), json!(name));
    ctr.insert(
        "image".into(),
        raw.mark(format!(
            "{{{{ include \"appmodel.image\" (list $ {}) | quote }}}}",
            quoted(name)
        )),
    );
    ctr.insert("imagePullPolicy".into(), json!("IfNotPresent"));
    if !c.command.is_empty() {
        let cmd = c
            .command
            .iter()
            .map(|a| Ok(raw.text(render(model, a, Context::EnvOrArgs)?)))
            .collect::<Result<Vec<_>, ExportError>>()?;
        ctr.insert("command".into(), json!(cmd));
    }
    if !c.args.is_empty() {
        let args = c
            .args
            .iter()
            .map(|a| Ok(raw.text(render(model, a, Context::EnvOrArgs)?)))
            .collect::<Result<Vec<_>, ExportError>>()?;
        ctr.insert("args".into(), json!(args));
    }

    // Env: secret parameters first (from the Secret), so later values can use $(VAR).
    let mut env = Vec::new();
    let mut direct = BTreeMap::new();
    let mut secrets_used = BTreeMap::new();
    for (k, v) in &c.env {
        let text = v.to_string();
        let refs = secret_refs(model, &text);
        let only = Template::parse(&text)
            .ok()
            .and_then(|t| match t.parts.as_slice() {
                [appmodel_model::expr::Part::Ref(Reference::Param(p))] => Some(p.clone()),
                _ => None,
            });
        match only {
            Some(p) if refs.iter().any(|r| r.name == p) => {
                direct.insert(k.clone(), p);
            }
            _ => {
                for r in refs {
                    secrets_used.insert(r.name.clone(), ());
                }
            }
        }
    }
    for a in c.args.iter().chain(c.command.iter()) {
        for r in secret_refs(model, a) {
            secrets_used.insert(r.name.clone(), ());
        }
    }
    let secret_ref = |param: &str| {
        json!({"secretKeyRef": {
            "name": raw_fullname_marker(PARAMS_OBJECT),
            "key": param,
        }})
    };
    for p in secrets_used.keys() {
        env.push(json!({"name": secret_var(p), "valueFrom": secret_ref(p)}));
    }
    for (k, v) in &c.env {
        if let Some(p) = direct.get(k) {
            env.push(json!({"name": k, "valueFrom": secret_ref(p)}));
        } else {
            let value = raw.text(render(model, &v.to_string(), Context::EnvOrArgs)?);
            env.push(json!({"name": k, "value": value}));
        }
    }
    if !env.is_empty() {
        ctr.insert("env".into(), json!(env));
    }

    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            let mut m = Map::new();
            // Container port names are IANA service names: at most 15 characters.
            if p.name.len() <= 15 {
                m.insert("name".into(), json!(p.name));
            }
            m.insert("containerPort".into(), json!(p.port));
            m.insert(
                "protocol".into(),
                json!(if p.protocol() == Protocol::Udp {
                    "UDP"
                } else {
                    "TCP"
                }),
            );
            Value::Object(m)
        })
        .collect();
    if !ports.is_empty() {
        ctr.insert("ports".into(), json!(ports));
    }

    let mut mounts = Vec::new();
    for v in &c.volumes {
        match v.kind {
            VolumeKind::Data => mounts.push(json!({"name": v.name, "mountPath": v.path})),
            VolumeKind::Config => mounts.push(json!({
                "name": "appmodel-config",
                "mountPath": v.path,
                "subPath": v.name,
                "readOnly": true,
            })),
        }
    }
    if !mounts.is_empty() {
        ctr.insert("volumeMounts".into(), json!(mounts));
    }
    if let Some(h) = &c.health {
        if let Some(p) = probe(c, h, &mut raw) {
            ctr.insert("readinessProbe".into(), p.clone());
            let mut live = p;
            if let Some(m) = live.as_object_mut() {
                let grace = h.start_period.as_deref().and_then(parse_duration);
                if let Some(g) = grace.filter(|g| !g.is_zero()) {
                    m.insert(
                        "initialDelaySeconds".into(),
                        json!(g.as_secs_f64().ceil() as u64),
                    );
                }
            }
            ctr.insert("livenessProbe".into(), live);
        }
    }
    if let Some(r) = &c.resources {
        let mut q = Map::new();
        if let Some(cpu) = r.cpu {
            q.insert(
                "cpu".into(),
                json!(format!("{}m", (cpu * 1000.0).round() as u64)),
            );
        }
        if let Some(mem) = &r.memory {
            q.insert("memory".into(), json!(mem));
        }
        if !q.is_empty() {
            ctr.insert(
                "resources".into(),
                json!({"limits": q.clone(), "requests": q}),
            );
        }
    }
    let mut sc = Map::new();
    sc.insert("allowPrivilegeEscalation".into(), json!(false));
    ctr.insert("securityContext".into(), Value::Object(sc));

    // Pod.
    let mut pod = Map::new();
    if let Some((uid, gid)) = run_as(c) {
        pod.insert(
            "securityContext".into(),
            json!({"runAsUser": uid, "runAsGroup": gid, "fsGroup": gid}),
        );
    }
    pod.insert("containers".into(), json!([Value::Object(ctr)]));
    if c.volumes.iter().any(|v| v.kind == VolumeKind::Config) {
        let source = if config_is_secret(model, c) {
            json!({"secret": {"secretName": raw_fullname_marker(&format!("{name}-config"))}})
        } else {
            json!({"configMap": {"name": raw_fullname_marker(&format!("{name}-config"))}})
        };
        let mut vol = Map::new();
        vol.insert("name".into(), json!("appmodel-config"));
        if let Value::Object(s) = source {
            vol.extend(s);
        }
        pod.insert("volumes".into(), json!([Value::Object(vol)]));
    }
    let mut template_meta = Map::new();
    template_meta.insert("labels".into(), labels("appmodel.labels", name));
    if c.volumes.iter().any(|v| v.kind == VolumeKind::Config) {
        template_meta.insert(
            "annotations".into(),
            json!({"checksum/config": raw.mark(format!(
                "{{{{ include (print $.Template.BasePath \"/{name}-config.yaml\") $ | sha256sum | quote }}}}"
            ))}),
        );
    }

    let mut spec = Map::new();
    let replicas = format!(
        "(index .Values.components {}).replicas | int64",
        quoted(name)
    );
    spec.insert(
        "replicas".into(),
        raw.mark(if model.licence.is_some() {
            // A licence that stops the app scales every workload to zero (data kept).
            format!(
                "{{{{ if (.Values.licence | default dict).stopped }}}}0{{{{ else }}}}{{{{ {replicas} }}}}{{{{ end }}}}"
            )
        } else {
            format!("{{{{ {replicas} }}}}")
        }),
    );
    if stateful {
        spec.insert("serviceName".into(), raw_fullname_marker(name));
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": labels("appmodel.selectorLabels", name)}),
    );
    spec.insert(
        "template".into(),
        json!({"metadata": Value::Object(template_meta), "spec": Value::Object(pod)}),
    );
    if stateful {
        let claims: Vec<Value> = c
            .volumes
            .iter()
            .filter(|v| v.kind == VolumeKind::Data)
            .map(|v| {
                json!({
                    "metadata": {"name": v.name},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": v.size.clone().unwrap_or_else(|| DEFAULT_VOLUME_SIZE.into())}}
                    }
                })
            })
            .collect();
        spec.insert("volumeClaimTemplates".into(), json!(claims));
    }
    let doc = json!({
        "apiVersion": "apps/v1",
        "kind": if stateful { "StatefulSet" } else { "Deployment" },
        "metadata": {"name": raw_fullname_marker(name), "labels": labels("appmodel.labels", name)},
        "spec": Value::Object(spec),
    });
    Ok(format!(
        "{{{{- include \"appmodel.required\" $ }}}}\n{}",
        finish(&raw, &doc)
    ))
}

/// Markers shared by every document: an object's full name, a block of labels.
const FULLNAME_MARK: &str = "\u{0}fullname:";
const BLOCK_MARK: &str = "\u{0}block:";

fn raw_fullname_marker(component: &str) -> Value {
    json!(format!("{FULLNAME_MARK}{component}\u{0}"))
}

/// Writes `doc` and swaps every marker for its template text.
fn finish(raw: &Raw, doc: &Value) -> String {
    let text = raw.yaml(doc);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(&swap_markers(line));
        out.push('\n');
    }
    out
}

fn swap_markers(line: &str) -> String {
    let quoted_fullname = quoted(FULLNAME_MARK);
    let prefix = &quoted_fullname[..quoted_fullname.len() - 1];
    if let Some(start) = line.find(prefix) {
        let rest = &line[start + prefix.len()..];
        if let Some(end) = rest.find("\\u0000\"") {
            let component = &rest[..end];
            return format!(
                "{}{} | quote }}}}{}",
                &line[..start],
                fullname(component).trim_end_matches(" }}"),
                &rest[end + "\\u0000\"".len()..]
            );
        }
    }
    let quoted_block = quoted(BLOCK_MARK);
    let prefix = &quoted_block[..quoted_block.len() - 1];
    if let Some(start) = line.find(prefix) {
        let rest = &line[start + prefix.len()..];
        if let Some(end) = rest.find("\\u0000\"") {
            // `key: MARK` -> `key:` and the helper's output indented below it.
            let (helper, component) = rest[..end].split_once(' ').unwrap_or((&rest[..end], ""));
            let indent = indent_of(line) + 2;
            let head = line[..start].trim_end();
            return format!(
                "{head}\n{}{{{{- include {} (list $ {}) | nindent {indent} }}}}",
                " ".repeat(indent),
                quoted(helper),
                quoted(component)
            );
        }
    }
    line.to_string()
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn service(c: &Component) -> String {
    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "port": p.port,
                "targetPort": p.port,
                "protocol": if p.protocol() == Protocol::Udp { "UDP" } else { "TCP" },
            })
        })
        .collect();
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": raw_fullname_marker(&c.name), "labels": labels("appmodel.labels", &c.name)},
        "spec": {
            "type": "ClusterIP",
            "selector": labels("appmodel.selectorLabels", &c.name),
            "ports": ports,
        }
    });
    finish(&Raw::default(), &doc)
}

/// A component's config files: a ConfigMap, or a Secret when they use a secret parameter.
fn config_object(model: &AppModel, c: &Component) -> Result<Option<String>, ExportError> {
    let files: Vec<_> = c
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Config)
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let mut raw = Raw::default();
    let mut data = Map::new();
    for v in files {
        let content = v.content.as_deref().unwrap_or_default();
        if let Some(p) = secret_refs(model, content).into_iter().find(|p| p.generate) {
            return Err(ExportError::NotExportable {
                component: c.name.clone(),
                form: Form::Helm,
                reason: format!(
                    "config file `{}` uses the generated secret `{}`; in the helm form a generated secret reaches a component through its environment only",
                    v.name, p.name
                ),
            });
        }
        data.insert(
            v.name.clone(),
            raw.text(render(model, content, Context::File)?),
        );
    }
    let secret = config_is_secret(model, c);
    let name = format!("{}-config", c.name);
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!("v1"));
    doc.insert(
        "kind".into(),
        json!(if secret { "Secret" } else { "ConfigMap" }),
    );
    doc.insert(
        "metadata".into(),
        json!({"name": raw_fullname_marker(&name), "labels": labels("appmodel.labels", &c.name)}),
    );
    if secret {
        doc.insert("type".into(), json!("Opaque"));
        doc.insert("stringData".into(), Value::Object(data));
    } else {
        doc.insert("data".into(), Value::Object(data));
    }
    Ok(Some(finish(&raw, &Value::Object(doc))))
}

/// The Secret of the secret parameters. A generated secret is made once (`randAlphaNum`)
/// and read back from the cluster (`lookup`) on every later upgrade.
fn params_secret(model: &AppModel) -> String {
    let mut out = format!(
        "{{{{- $name := include \"appmodel.fullname\" (list $ {obj}) }}}}\n\
         {{{{- $existing := (lookup \"v1\" \"Secret\" .Release.Namespace $name).data | default dict }}}}\n\
         apiVersion: v1\n\
         kind: Secret\n\
         metadata:\n\
         \x20 name: {{{{ $name | quote }}}}\n\
         \x20 labels:\n\
         \x20   {{{{- include \"appmodel.labels\" (list $ {obj}) | nindent 4 }}}}\n\
         type: Opaque\n\
         data:\n",
        obj = quoted(PARAMS_OBJECT)
    );
    for p in model
        .parameters
        .iter()
        .filter(|p| p.kind == ParamType::Secret)
    {
        let n = &p.name;
        if p.generate {
            let len = p.length.unwrap_or(DEFAULT_SECRET_LENGTH);
            out.push_str(&format!(
                "  {{{{- if .Values.params.{n} }}}}\n\
                 \x20 {n}: {{{{ .Values.params.{n} | b64enc | quote }}}}\n\
                 \x20 {{{{- else if hasKey $existing {q} }}}}\n\
                 \x20 {n}: {{{{ index $existing {q} | quote }}}}\n\
                 \x20 {{{{- else }}}}\n\
                 \x20 {n}: {{{{ randAlphaNum {len} | b64enc | quote }}}}\n\
                 \x20 {{{{- end }}}}\n",
                q = quoted(n)
            ));
        } else {
            out.push_str(&format!(
                "  {n}: {{{{ .Values.params.{n} | default \"\" | toString | b64enc | quote }}}}\n"
            ));
        }
    }
    out
}

fn install_text(record: &VersionRecord) -> String {
    let app = &record.app;
    let version = &record.version;
    format!(
        "{app} {version} — Helm chart\n\
         {line}\n\n\
         {chart} is the chart. Its images are in this bundle's OCI layout; they must be in a\n\
         registry the cluster can pull from before the chart is installed. Every image is\n\
         referenced by digest: REGISTRY/{app}/COMPONENT@sha256:...\n\n\
         With appmodel (after `./appmodel import .`):\n\n\
         \x20   ./appmodel push-images --registry registry.site.example:5000[/prefix] [--insecure]\n\
         \x20   ./appmodel install --config site-config.yaml   # uses the registry push-images recorded\n\
         \x20   ./appmodel upgrade; ./appmodel rollback; ./appmodel status; ./appmodel history\n\
         \x20   ./appmodel uninstall                           # helm uninstall; the cluster keeps PVCs\n\n\
         `install`, `upgrade` and `rollback` run the site's `helm` (on PATH) with\n\
         `upgrade --install --wait --rollback-on-failure` (`--atomic` before Helm 4).\n\n\
         By hand, on a host with no helm for appmodel to drive:\n\n\
         1. Push the images (any host that reaches the registry, with this bundle imported):\n\n\
         \x20   ./appmodel push-images --registry registry.site.example:5000\n\n\
         2. Write a values file with the site's settings (see values.yaml and\n\
         \x20  values.schema.json inside the chart: `tar xzf {chart}`):\n\n\
         \x20   global:\n\
         \x20     imageRegistry: registry.site.example:5000\n\
         \x20   params:\n\
         \x20     ...\n\n\
         3. Install or upgrade it with helm from any machine that reaches the cluster:\n\n\
         \x20   helm upgrade --install {app} {chart} -f site-values.yaml --wait\n\n\
         \x20  Helm checks the values against values.schema.json before anything changes.\n\
         \x20  Generated secrets are created at the first install and kept across upgrades.\n",
        line = "=".repeat(60),
        chart = chart_archive_path(record).trim_start_matches("helm/"),
    )
}

/// Packs the chart as Helm does (`NAME/` prefix), deterministically: files in path order,
/// mtime 0, root owner, mode 0644, gzip header without a time or name.
pub fn package(name: &str, files: &BTreeMap<String, String>) -> Result<Vec<u8>, ExportError> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let err = |e: std::io::Error| ExportError::Render(format!("cannot pack the chart: {e}"));
    for (path, text) in files {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_data(&mut h, format!("{name}/{path}"), text.as_bytes())
            .map_err(err)?;
    }
    let mut gz = tar.into_inner().map_err(err)?;
    gz.flush().map_err(err)?;
    gz.finish().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(yaml: &str) -> AppModel {
        appmodel_model::parse_model("m.yaml".into(), yaml.to_string())
            .map_err(|e| format!("{e:?}"))
            .unwrap()
            .model
    }

    const MODEL: &str = r#"apiVersion: appmodel/v1
app: {name: demo, version: 1.2.0}
parameters:
  - {name: domain, type: string, required: true, pattern: '[a-z.]+'}
  - {name: n, type: integer, default: 5, minimum: 1}
  - {name: token, type: secret, generate: true}
components:
  - name: db
    image: {from_binary: true}
    binaries: {linux/amd64: db}
    ports: [{name: http, port: 7070, protocol: http}]
    volumes:
      - {name: data, kind: data, path: /data, size: 2Gi}
      - {name: conf, kind: config, path: /etc/db.conf, content: "domain={{x}} ${params.domain} $5"}
    health: {tcp: {port: http}}
  - name: web
    image: {from_binary: true}
    binaries: {linux/amd64: web}
    env:
      DB: ${components.db.url}
      TOKEN: ${params.token}
      AUTH: Bearer ${params.token} $${HOME}
      N: ${params.n}
    ports: [{name: http, port: 8080, protocol: http}]
    health: {http: {path: /readyz, port: http}, start_period: 10s}
    depends_on: [db]
"#;

    /// The sample's 1.1.0 chart, every file, with made-up image digests: a change in what
    /// the helm form renders shows up here, as in the compose and systemd forms' snapshots.
    #[test]
    fn the_sample_chart() {
        use appmodel_model::record::{BlobRef, ImageArtifact};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = root.join("samples/im-stack/versions/1.1.0/appmodel.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let loaded = appmodel_model::parse_model(file, text).unwrap();
        let record = VersionRecord::unpublished("appmodel.yaml", loaded.text, loaded.model);
        let blob = |n: usize| BlobRef {
            digest: appmodel_model::Digest::from_hex(&format!("{n:064x}")).unwrap(),
            size: 1,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        };
        let images: Vec<ImageArtifact> = (0..record.model.components.len())
            .map(|i| ImageArtifact {
                manifest: blob(i + 1),
                config: blob(100 + i),
                layers: vec![],
            })
            .collect();
        let needs = Needs {
            images: record
                .model
                .components
                .iter()
                .zip(&images)
                .map(|(c, img)| (c.name.as_str(), "linux/amd64".to_string(), img))
                .collect(),
            ..Default::default()
        };
        let all: String = chart_files(&record, &needs)
            .unwrap()
            .into_iter()
            .map(|(name, text)| format!("=== {name}\n{text}"))
            .collect();
        insta::assert_snapshot!(all);
    }

    #[test]
    fn env_values_resolve_to_services_params_and_secrets() {
        let m = model(MODEL);
        let c = m.component("web").unwrap();
        let text = workload(&m, c).unwrap();
        assert!(text.contains(
            "value: {{ tpl \"http://{{ include \\\"appmodel.fullname\\\" (list $ \\\"db\\\") }}:7070\" $ | toJson }}"
        ), "{text}");
        // A whole-value secret comes straight from the Secret; a partial one through $(VAR).
        assert!(text.contains("- name: \"TOKEN\"\n          valueFrom:\n            secretKeyRef:\n              name: {{ include \"appmodel.fullname\" (list $ \"params\") | quote }}\n              key: \"token\""), "{text}");
        assert!(
            text.contains("value: \"Bearer $(APPMODEL_SECRET_token) $${HOME}\""),
            "{text}"
        );
        assert!(text.contains("value: {{ tpl \"{{ .Values.params.n | int64 }}\" $ | toJson }}"));
        assert!(text.contains("kind: \"Deployment\""));
        assert!(text.contains("initialDelaySeconds: 10"));
    }

    #[test]
    fn data_volumes_make_a_statefulset_and_literal_braces_are_escaped() {
        let m = model(MODEL);
        let c = m.component("db").unwrap();
        let text = workload(&m, c).unwrap();
        assert!(text.contains("kind: \"StatefulSet\""));
        assert!(text.contains("storage: \"2Gi\""));
        assert!(
            text.contains("tcpSocket:\n            port: 7070"),
            "{text}"
        );
        let cfg = config_object(&m, c).unwrap().unwrap();
        assert!(
            cfg.contains(
                "conf: {{ tpl \"domain={{ \\\"{{\\\" }}x}} {{ .Values.params.domain }} $5\" $ | toJson }}"
            ),
            "{cfg}"
        );
    }

    #[test]
    fn the_schema_follows_the_parameter_types() {
        let m = model(MODEL);
        let s: Value = serde_json::from_str(&values_schema(&m)).unwrap();
        let p = &s["properties"]["params"];
        assert_eq!(p["additionalProperties"], json!(false));
        assert_eq!(p["properties"]["domain"]["pattern"], json!("^(?:[a-z.]+)$"));
        assert_eq!(p["properties"]["n"]["minimum"], json!(1));
        assert_eq!(p["properties"]["token"]["type"], json!("string"));
    }

    #[test]
    fn packing_is_deterministic() {
        let mut files = BTreeMap::new();
        files.insert("Chart.yaml".to_string(), "name: x\n".to_string());
        files.insert("values.yaml".to_string(), "{}\n".to_string());
        let a = package("x", &files).unwrap();
        assert_eq!(a, package("x", &files).unwrap());
        // gzip header: no mtime.
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
    }
}
