//! A small YAML writer for generated files (compose projects, charts): block style, keys in
//! the order given, every string double-quoted (JSON escaping is valid YAML), so no value
//! can change type or meaning when read back.

use serde_json::Value;

/// Writes `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    out
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !k.starts_with(['-', '.'])
        // YAML 1.1 readers (PyYAML in docker-compose v1) take these as booleans or null.
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn emit(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if is_block(v) {
                    out.push_str(&format!("{pad}{}:\n", key(k)));
                    let child = if matches!(v, Value::Array(_)) {
                        indent
                    } else {
                        indent + 2
                    };
                    emit(v, child, out);
                } else {
                    out.push_str(&format!("{pad}{}: {}\n", key(k), scalar(v)));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    // First line of the item goes after the dash.
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    let trimmed = inner.trim_start_matches(' ');
                    out.push_str(&format!("{pad}- {trimmed}"));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_with_quoted_strings() {
        let v = json!({
            "services": {"a": {"image": "x:1", "ports": ["80:80"], "environment": {"Y": "yes", "N": "1"}, "healthcheck": {"test": ["CMD", "true"], "retries": 3}}},
            "volumes": {"data": {}},
            "list": [{"k": "v", "n": 1}, "plain"]
        });
        assert_eq!(
            to_yaml(&v),
            "services:\n  a:\n    image: \"x:1\"\n    ports:\n    - \"80:80\"\n    environment:\n      \"Y\": \"yes\"\n      \"N\": \"1\"\n    healthcheck:\n      test:\n      - \"CMD\"\n      - \"true\"\n      retries: 3\nvolumes:\n  data: {}\nlist:\n- k: \"v\"\n  \"n\": 1\n- \"plain\"\n"
        );
        // Our own YAML reader reads it back to the same value.
        let (node, _) = appmodel_model::yaml::parse(&to_yaml(&v)).unwrap();
        assert_eq!(node.to_json(), v);
    }
}
