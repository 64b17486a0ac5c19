//! Structural checking of a YAML tree against the JSON Schema generated from the Rust types.
//!
//! The committed schema and the checks a user sees come from the same source, so they cannot
//! drift apart. Only the subset of JSON Schema that `schemars` produces for our types is
//! interpreted: `$ref`, `type`, `properties`, `required`, `additionalProperties`, `items`,
//! `enum`/`const`, `anyOf`/`oneOf` of alternatives, `minimum`/`maximum`.
//!
//! Unlike a generic validator it reports every problem with a position and a hint, descends
//! into the one alternative that fits (so an error inside an optional struct is not hidden
//! behind "no alternative matched"), and returns the document with unknown fields removed, so
//! the typed model can still be built and checked for deeper problems in the same run.

use serde_json::{Map, Value as J};

use crate::diag::{closest, Diagnostic};
use crate::yaml::{Node, Path, Value};

pub struct SchemaChecker<'s> {
    root: &'s J,
}

impl<'s> SchemaChecker<'s> {
    pub fn new(root: &'s J) -> Self {
        SchemaChecker { root }
    }

    /// Checks `node` and returns the cleaned value, or `None` when a type error makes the
    /// document unusable for typed deserialization. Unknown fields are reported but removed,
    /// which keeps the value usable.
    pub fn check(&self, node: &Node, out: &mut Vec<Diagnostic>) -> Option<J> {
        self.check_at(self.root, node, &Path::root(), out)
    }

    fn resolve(&self, mut schema: &'s J) -> &'s J {
        while let Some(r) = schema.get("$ref").and_then(J::as_str) {
            let Some(name) = r.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.get("$defs").and_then(|d| d.get(name)) {
                Some(s) => schema = s,
                None => break,
            }
        }
        schema
    }

    fn check_at(
        &self,
        schema: &'s J,
        node: &Node,
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) -> Option<J> {
        // YAML has `.inf`, `.nan` and `1e309`; JSON and every field of ours have no such
        // number, and turning it into JSON would silently make it null.
        if let Value::Float(f) = node.value {
            if !f.is_finite() {
                let shown = if f.is_nan() { "NaN" } else { "infinite" };
                out.push(
                    Diagnostic::new(
                        node.pos,
                        path.clone(),
                        format!("the number is {shown}: only finite numbers are allowed"),
                    )
                    .with_hint("`.inf`, `.nan` and numbers beyond about 1.8e308 (like `1e309`) are not values appmodel can use"),
                );
                return None;
            }
        }
        // A field's own description sits beside its `$ref`; keep it for hints.
        let field_doc = schema.get("description").and_then(J::as_str);
        let schema = self.resolve(schema);
        if let Some(alts) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(J::as_array)
        {
            return self.check_alternatives(alts, node, path, out);
        }
        if let Some(types) = schema.get("type") {
            if !type_accepts(types, node) {
                let mut d = Diagnostic::new(
                    node.pos,
                    path.clone(),
                    format!("expected {}, found {}", describe(schema), found(node)),
                );
                d.hint = field_hint(field_doc, path);
                out.push(d);
                return None;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(J::as_array) {
            return self.check_enum(allowed, node, path, out);
        }
        if let Some(c) = schema.get("const") {
            return self.check_enum(std::slice::from_ref(c), node, path, out);
        }
        match &node.value {
            Value::Map(entries) => self.check_object(schema, node, entries, path, out),
            Value::Seq(items) => {
                let item_schema = schema.get("items");
                let mut ok = true;
                let mut cleaned = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let checked = match item_schema {
                        Some(s) => self.check_at(s, item, &path.index(i), out),
                        None => Some(item.to_json()),
                    };
                    match checked {
                        Some(v) => cleaned.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(J::Array(cleaned))
            }
            Value::Int(i) => {
                let min = schema.get("minimum").and_then(J::as_f64);
                let max = schema.get("maximum").and_then(J::as_f64);
                let v = *i as f64;
                if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                    let range = match (min, max) {
                        (Some(a), Some(b)) => format!("between {a} and {b}"),
                        (Some(a), None) => format!("at least {a}"),
                        (None, Some(b)) => format!("at most {b}"),
                        (None, None) => String::new(),
                    };
                    out.push(Diagnostic::new(
                        node.pos,
                        path.clone(),
                        format!("`{i}` is out of range: must be {range}"),
                    ));
                    return None;
                }
                Some(node.to_json())
            }
            _ => Some(node.to_json()),
        }
    }

    fn check_object(
        &self,
        schema: &'s J,
        node: &Node,
        entries: &[crate::yaml::Entry],
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) -> Option<J> {
        let props = schema.get("properties").and_then(J::as_object);
        let additional = schema.get("additionalProperties");
        let mut ok = true;
        let mut cleaned = Map::new();
        for entry in entries {
            let child = path.key(&entry.key);
            let prop_schema = props.and_then(|p| p.get(&entry.key));
            let value_schema = match (prop_schema, additional) {
                (Some(s), _) => Some(s),
                (None, Some(J::Bool(false))) => {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let hint = match closest(&entry.key, known.iter().copied()) {
                        Some(k) => format!("did you mean `{k}`?"),
                        None => format!("known fields here: {}", known.join(", ")),
                    };
                    out.push(
                        Diagnostic::new(
                            entry.key_pos,
                            child,
                            format!("unknown field `{}`", entry.key),
                        )
                        .with_hint(hint),
                    );
                    continue;
                }
                (None, Some(s)) if s.is_object() => Some(s),
                (None, _) => None,
            };
            let checked = match value_schema {
                Some(s) => self.check_at(s, &entry.value, &child, out),
                None => Some(entry.value.to_json()),
            };
            match checked {
                Some(v) => {
                    cleaned.insert(entry.key.clone(), v);
                }
                None => ok = false,
            }
        }
        for req in schema
            .get("required")
            .and_then(J::as_array)
            .into_iter()
            .flatten()
            .filter_map(J::as_str)
        {
            if !entries.iter().any(|e| e.key == req) {
                let mut d =
                    Diagnostic::new(node.pos, path.key(req), format!("missing field `{req}`"));
                if let Some(desc) = props
                    .and_then(|p| p.get(req))
                    .and_then(|s| self.resolve(s).get("description"))
                    .and_then(J::as_str)
                {
                    d = d.with_hint(format!("`{req}`: {}", first_sentence(desc)));
                }
                out.push(d);
                ok = false;
            }
        }
        ok.then_some(J::Object(cleaned))
    }

    fn check_enum(
        &self,
        allowed: &[J],
        node: &Node,
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) -> Option<J> {
        let value = node.to_json();
        if allowed.contains(&value) {
            return Some(value);
        }
        let names: Vec<String> = allowed.iter().map(|a| format!("`{}`", show(a))).collect();
        let mut d = Diagnostic::new(
            node.pos,
            path.clone(),
            format!("`{}` is not one of {}", show(&value), names.join(", ")),
        );
        if let Value::Str(s) = &node.value {
            let plain: Vec<&str> = allowed.iter().filter_map(J::as_str).collect();
            if let Some(k) = closest(s, plain) {
                d = d.with_hint(format!("did you mean `{k}`?"));
            }
        }
        out.push(d);
        None
    }

    fn check_alternatives(
        &self,
        alts: &'s [J],
        node: &Node,
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) -> Option<J> {
        let alts: Vec<&J> = alts.iter().map(|a| self.resolve(a)).collect();
        // An enum whose variants carry docs is a oneOf of consts.
        if alts.iter().all(|a| a.get("const").is_some()) {
            let allowed: Vec<J> = alts
                .iter()
                .filter_map(|a| a.get("const").cloned())
                .collect();
            return self.check_enum(&allowed, node, path, out);
        }
        let fitting = alts
            .iter()
            .find(|a| a.get("type").is_some_and(|t| type_accepts(t, node)))
            .or_else(|| alts.iter().find(|a| a.get("type").is_none()));
        match fitting {
            Some(alt) => self.check_at(alt, node, path, out),
            None => {
                let expected: Vec<String> = alts
                    .iter()
                    .filter(|a| a.get("type") != Some(&J::from("null")))
                    .map(|a| describe(a))
                    .collect();
                out.push(Diagnostic::new(
                    node.pos,
                    path.clone(),
                    format!("expected {}, found {}", expected.join(" or "), found(node)),
                ));
                None
            }
        }
    }
}

fn type_accepts(types: &J, node: &Node) -> bool {
    let one = |t: &str| {
        matches!(
            (t, &node.value),
            ("null", Value::Null)
                | ("boolean", Value::Bool(_))
                | ("integer", Value::Int(_))
                | ("number", Value::Int(_) | Value::Float(_))
                | ("string", Value::Str(_))
                | ("array", Value::Seq(_))
                | ("object", Value::Map(_))
        )
    };
    match types {
        J::String(t) => one(t),
        J::Array(ts) => ts.iter().filter_map(J::as_str).any(one),
        _ => true,
    }
}

/// What a schema expects, in words: "a string", "a list of strings", "a mapping".
fn describe(schema: &J) -> String {
    let types: Vec<&str> = match schema.get("type") {
        Some(J::String(t)) => vec![t.as_str()],
        Some(J::Array(ts)) => ts
            .iter()
            .filter_map(J::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    let words: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "string" => "a string".to_string(),
            "integer" => "an integer".to_string(),
            "number" => "a number".to_string(),
            "boolean" => "a boolean (`true` or `false`)".to_string(),
            "array" => match schema
                .get("items")
                .and_then(|i| i.get("type"))
                .and_then(J::as_str)
            {
                Some("string") => "a list of strings".to_string(),
                _ => "a list".to_string(),
            },
            "object" => "a mapping".to_string(),
            other => other.to_string(),
        })
        .collect();
    if words.is_empty() {
        "a value".to_string()
    } else {
        words.join(" or ")
    }
}

fn found(node: &Node) -> String {
    match &node.value {
        Value::Float(f) => format!("the number `{f:?}`"),
        Value::Str(s) if s.len() <= 40 => format!("the string `{s}`"),
        Value::Int(i) => format!("the integer `{i}`"),
        Value::Bool(b) => format!("the boolean `{b}`"),
        _ => node.kind().to_string(),
    }
}

fn show(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "`interval`: time between checks (`10s`)" from the field's doc comment.
fn field_hint(doc: Option<&str>, path: &Path) -> Option<String> {
    let doc = doc?;
    let name = match path.0.last() {
        Some(crate::yaml::Seg::Key(k)) => k.clone(),
        _ => return None,
    };
    Some(format!("`{name}`: {}", first_sentence(doc)))
}

fn first_sentence(text: &str) -> &str {
    text.split(". ")
        .next()
        .unwrap_or(text)
        .trim_end_matches('.')
}
