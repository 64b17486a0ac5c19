//! The plan of a change: what an install, upgrade or rollback will do, worked out before
//! anything on the host or in the site state is touched. `--dry-run` prints it; the
//! change itself carries out exactly this plan.

use std::collections::BTreeSet;

use appmodel_model::bundle::Form;
use appmodel_model::expr::{Reference, Template};
use appmodel_model::record::{VersionDiff, VersionRecord};
use appmodel_model::types::{AppModel, Component};
use appmodel_model::version::Version;
use serde::Serialize;

use crate::deploy::{Action, Journal};

/// What a change will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub app: String,
    pub action: Action,
    pub form: Form,
    /// The revision running now (none for an install).
    pub from_revision: Option<u32>,
    pub from_version: Option<Version>,
    pub to_version: Version,
    /// For a rollback: the revision whose version, configuration and data come back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u32>,
    /// How the versions' models differ (upgrade and rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<VersionDiff>,
    /// Components whose image changes.
    pub images: Vec<String>,
    pub parameters_added: Vec<String>,
    /// Every component whose rendered definition changes: its model, an artifact, a
    /// parameter value or the app version it uses, a component it connects to. On an
    /// install, every component.
    pub components_changed: Vec<String>,
    /// Parameters whose value changes (names only: a secret's value is never shown).
    pub values_changed: Vec<String>,
    /// What happens to the data, when it is more than "kept as it is".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Safety checks waived for this change (`--allow-downgrade`, an unsigned bundle).
    pub waivers: Vec<String>,
    /// A change a crash left unfinished: the change itself finishes or reverts it first;
    /// a dry run only reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_recovery: Option<Journal>,
    /// The licence check (models with a `licence` section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence: Option<crate::licensing::LicenceGate>,
    /// Every preflight check, cheapest first (docs/preflight.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preflight: Vec<crate::preflight::Check>,
}

impl Plan {
    /// The plan's first line: what changes to what.
    pub fn headline(&self) -> String {
        match (&self.from_version, self.from_revision) {
            (Some(from), Some(n)) => {
                format!("{} {from} (revision {n}) -> {}", self.app, self.to_version)
            }
            _ => format!("install {} {}", self.app, self.to_version),
        }
    }

    /// What the change does, as labelled lines in the order a person reads them; the CLI
    /// prints them and the console shows them. Preflight checks are apart.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        fn list(out: &mut Vec<(&'static str, String)>, label: &'static str, items: &[String]) {
            if !items.is_empty() {
                out.push((label, items.join(", ")));
            }
        }
        let mut out = Vec::new();
        if let Some(j) = &self.pending_recovery {
            out.push((
                "first",
                format!(
                    "{:?} to revision {} was interrupted at step {:?}; the change finishes or reverts it before anything else",
                    j.action, j.revision, j.step
                ),
            ));
        }
        if let Some(d) = &self.diff {
            list(&mut out, "components added", &d.components_added);
            list(&mut out, "components removed", &d.components_removed);
            for (c, what) in &d.components_changed {
                out.push(("component changed", format!("{c} ({})", what.join(", "))));
            }
        }
        list(&mut out, "new images", &self.images);
        list(&mut out, "parameters added", &self.parameters_added);
        if let Some(d) = &self.diff {
            list(&mut out, "parameters removed", &d.parameters_removed);
        }
        list(&mut out, "values changed", &self.values_changed);
        list(&mut out, "definition changes", &self.components_changed);
        if let Some(data) = &self.data {
            out.push(("data", data.clone()));
        }
        list(&mut out, "waived", &self.waivers);
        if let Some(l) = &self.licence {
            out.push(("licence", format!("{} — {}", l.stage.as_str(), l.reason)));
        }
        out
    }
}

/// One side of a change: a version with its parameter values.
pub struct Side<'a> {
    pub record: &'a VersionRecord,
    pub params: &'a crate::deploy::Params,
}

/// The components of `new` whose rendered definition differs from `old`'s (all of them
/// when there is no `old`), and the parameters whose value differs.
pub fn changes(old: Option<&Side<'_>>, new: &Side<'_>) -> (Vec<String>, Vec<String>) {
    let Some(old) = old else {
        let all = new
            .record
            .model
            .components
            .iter()
            .map(|c| c.name.clone())
            .collect();
        return (all, Vec::new());
    };
    let diff = VersionDiff::between(old.record, new.record);
    let mut changed: BTreeSet<String> = diff.components_changed.keys().cloned().collect();
    changed.extend(diff.components_added.iter().cloned());
    for c in &new.record.model.components {
        if fingerprint(new, c)
            != old
                .record
                .model
                .component(&c.name)
                .and_then(|o| fingerprint(old, o))
        {
            changed.insert(c.name.clone());
        }
    }
    let names: BTreeSet<&String> = old.params.keys().chain(new.params.keys()).collect();
    let values = names
        .into_iter()
        .filter(|n| old.params.get(*n) != new.params.get(*n))
        .cloned()
        .collect();
    // In the model's order, as every other list of components.
    let ordered = new
        .record
        .model
        .components
        .iter()
        .map(|c| c.name.clone())
        .filter(|n| changed.contains(n))
        .collect();
    (ordered, values)
}

/// A component's definition with every value its templates resolve to: equal
/// fingerprints render equal definitions in every form.
fn fingerprint(side: &Side<'_>, c: &Component) -> Option<String> {
    let model = &side.record.model;
    // Binary paths are where the vendor kept the files; the artifacts say what changed.
    let mut c = c.clone();
    c.binaries.clear();
    let definition = serde_json::to_value(&c).ok()?;
    let mut refs = Vec::new();
    collect_references(&definition, &mut refs);
    let resolved: Vec<String> = refs
        .iter()
        .map(|r| resolve(model, side.params, &side.record.version, r))
        .collect();
    let artifacts = serde_json::to_string(&side.record.components.get(&c.name)).ok()?;
    Some(format!("{definition}\n{resolved:?}\n{artifacts}"))
}

/// Every `${...}` reference in any string of `v`, each once, in the order met.
fn collect_references(v: &serde_json::Value, out: &mut Vec<Reference>) {
    match v {
        serde_json::Value::String(s) => {
            for r in Template::parse(s).iter().flat_map(|t| t.references()) {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}

/// What a reference stands for on this side (a component's by its ports).
fn resolve(
    model: &AppModel,
    params: &crate::deploy::Params,
    version: &str,
    reference: &Reference,
) -> String {
    let value = match reference {
        Reference::Param(name) => params.get(name).map(|v| v.to_string()).unwrap_or_default(),
        Reference::Licence(name) => params
            .get(&appmodel_model::expr::licence_key(name))
            .map(|v| v.to_string())
            .unwrap_or_default(),
        Reference::AppVersion => version.to_string(),
        Reference::AppName => model.app.name.clone(),
        Reference::Component { component, .. } => model
            .component(component)
            .map(|c| format!("{:?}", c.ports))
            .unwrap_or_default(),
    };
    format!("{reference:?}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use appmodel_model::types::Scalar;

    fn record(version: &str, extra: &str) -> VersionRecord {
        let text = format!(
            "apiVersion: appmodel/v1\napp: {{name: a, version: {version}}}\nparameters:\n  - {{name: domain, type: string, default: x}}\n  - {{name: n, type: integer, default: 1}}\ncomponents:\n  - name: web\n    image: {{registry: r.example/web:1}}\n    env: {{DOMAIN: '${{params.domain}}'}}\n    ports: [{{name: http, port: 8080, protocol: http}}]\n  - name: worker\n    image: {{registry: r.example/worker:1}}\n    env: {{WEB: '${{components.web.url}}'{extra}}}\n"
        );
        let model = appmodel_model::parse_model("m.yaml".into(), text)
            .unwrap()
            .model;
        VersionRecord::unpublished("m.yaml", String::new(), model)
    }

    fn params(pairs: &[(&str, &str)]) -> crate::deploy::Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Scalar::Str(v.to_string())))
            .collect()
    }

    #[test]
    fn a_new_value_changes_exactly_the_components_that_use_it() {
        let r = record("1.0.0", "");
        let (p1, p2) = (
            params(&[("domain", "a"), ("n", "1")]),
            params(&[("domain", "b"), ("n", "1")]),
        );
        let old = Side {
            record: &r,
            params: &p1,
        };
        let new = Side {
            record: &r,
            params: &p2,
        };
        assert_eq!(
            changes(Some(&old), &new),
            (vec!["web".to_string()], vec!["domain".to_string()])
        );
        let same = Side {
            record: &r,
            params: &p1,
        };
        assert_eq!(changes(Some(&old), &same), (vec![], vec![]));
        assert_eq!(changes(None, &new).0, ["web", "worker"]);
    }

    #[test]
    fn the_app_version_and_a_connected_components_port_count() {
        let (r1, r2) = (
            record("1.0.0", ", V: '${app.version}'"),
            record("1.0.1", ", V: '${app.version}'"),
        );
        let p = params(&[("domain", "a"), ("n", "1")]);
        let (old, new) = (
            Side {
                record: &r1,
                params: &p,
            },
            Side {
                record: &r2,
                params: &p,
            },
        );
        assert_eq!(changes(Some(&old), &new).0, ["worker"]);
        let mut r3 = record("1.0.0", ", V: '${app.version}'");
        r3.model.components[0].ports[0].port = 9090;
        let moved = Side {
            record: &r3,
            params: &p,
        };
        assert_eq!(changes(Some(&old), &moved).0, ["web", "worker"]);
    }
}
