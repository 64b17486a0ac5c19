//! Checking a value against a parameter's declaration.

use regex::Regex;

use crate::types::{ParamType, Parameter, Scalar};

/// Why a value does not fit its parameter: a message and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub message: String,
    pub hint: Option<String>,
}

fn err(message: String, hint: Option<String>) -> ValueError {
    ValueError { message, hint }
}

/// The parameter's pattern anchored to match a whole value, or the regex error.
pub fn compiled_pattern(param: &Parameter) -> Option<Result<Regex, regex::Error>> {
    param
        .pattern
        .as_ref()
        .map(|p| Regex::new(&format!("^(?:{p})$")))
}

fn kind_of(value: &Scalar) -> &'static str {
    match value {
        Scalar::Bool(_) => "a boolean",
        Scalar::Int(_) => "an integer",
        Scalar::Float(_) => "a number",
        Scalar::Str(_) => "a string",
    }
}

/// Checks `value` against the parameter's type, pattern, range and allowed values.
pub fn check_value(param: &Parameter, value: &Scalar) -> Result<(), ValueError> {
    let name = &param.name;
    match (param.kind, value) {
        (ParamType::String | ParamType::Secret, Scalar::Str(s)) => {
            if let Some(Ok(re)) = compiled_pattern(param) {
                if !re.is_match(s) {
                    let shown = if param.kind == ParamType::Secret {
                        "the value".to_string()
                    } else {
                        format!("`{s}`")
                    };
                    return Err(err(
                        format!(
                            "{shown} does not match the pattern `{}` of parameter `{name}`",
                            param.pattern.as_deref().unwrap_or_default()
                        ),
                        param.description.clone(),
                    ));
                }
            }
            Ok(())
        }
        (ParamType::String | ParamType::Secret, other) => Err(err(
            format!(
                "parameter `{name}` is a {}, but the value is {}",
                param.kind.as_str(),
                kind_of(other)
            ),
            Some(match param.kind {
                ParamType::Secret => "quote it to make it a string".to_string(),
                _ => format!("quote it to make it a string: '{other}'"),
            }),
        )),
        (ParamType::Integer, Scalar::Int(i)) => {
            let below = param.minimum.is_some_and(|m| *i < m);
            let above = param.maximum.is_some_and(|m| *i > m);
            if below || above {
                let range = match (param.minimum, param.maximum) {
                    (Some(a), Some(b)) => format!("between {a} and {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => String::new(),
                };
                return Err(err(
                    format!("`{i}` is out of range for parameter `{name}`: must be {range}"),
                    None,
                ));
            }
            Ok(())
        }
        (ParamType::Integer, other) => Err(err(
            format!(
                "parameter `{name}` is an integer, but the value is {}",
                kind_of(other)
            ),
            None,
        )),
        (ParamType::Boolean, Scalar::Bool(_)) => Ok(()),
        (ParamType::Boolean, other) => Err(err(
            format!(
                "parameter `{name}` is a boolean, but the value is {}",
                kind_of(other)
            ),
            Some("write `true` or `false`, unquoted".into()),
        )),
        (ParamType::Enum, Scalar::Str(s)) if param.values.contains(s) => Ok(()),
        (ParamType::Enum, other) => {
            let allowed: Vec<String> = param.values.iter().map(|v| format!("`{v}`")).collect();
            let hint = match other {
                Scalar::Str(s) => crate::diag::closest(s, param.values.iter().map(String::as_str))
                    .map(|k| format!("did you mean `{k}`?")),
                _ => None,
            };
            Err(err(
                format!(
                    "`{other}` is not an allowed value of parameter `{name}`: one of {}",
                    allowed.join(", ")
                ),
                hint,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(kind: ParamType) -> Parameter {
        Parameter {
            name: "p".into(),
            kind,
            description: None,
            default: None,
            required: false,
            pattern: None,
            minimum: None,
            maximum: None,
            values: vec![],
            generate: false,
            length: None,
        }
    }

    #[test]
    fn integers_respect_their_range() {
        let mut p = param(ParamType::Integer);
        p.minimum = Some(1);
        p.maximum = Some(10);
        assert!(check_value(&p, &Scalar::Int(5)).is_ok());
        assert_eq!(
            check_value(&p, &Scalar::Int(11)).unwrap_err().message,
            "`11` is out of range for parameter `p`: must be between 1 and 10"
        );
        assert_eq!(
            check_value(&p, &Scalar::Str("5".into()))
                .unwrap_err()
                .message,
            "parameter `p` is an integer, but the value is a string"
        );
    }

    #[test]
    fn patterns_match_the_whole_value_and_hide_secrets() {
        let mut p = param(ParamType::String);
        p.pattern = Some("[a-z]+".into());
        assert!(check_value(&p, &Scalar::Str("abc".into())).is_ok());
        assert_eq!(
            check_value(&p, &Scalar::Str("abc1".into()))
                .unwrap_err()
                .message,
            "`abc1` does not match the pattern `[a-z]+` of parameter `p`"
        );
        p.kind = ParamType::Secret;
        assert_eq!(
            check_value(&p, &Scalar::Str("s3cret".into()))
                .unwrap_err()
                .message,
            "the value does not match the pattern `[a-z]+` of parameter `p`"
        );
    }

    #[test]
    fn enums_suggest_the_closest_value() {
        let mut p = param(ParamType::Enum);
        p.values = vec!["info".into(), "debug".into()];
        let e = check_value(&p, &Scalar::Str("inf".into())).unwrap_err();
        assert_eq!(
            e.message,
            "`inf` is not an allowed value of parameter `p`: one of `info`, `debug`"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `info`?"));
    }

    #[test]
    fn booleans_and_strings_do_not_mix() {
        assert!(check_value(&param(ParamType::Boolean), &Scalar::Bool(true)).is_ok());
        assert!(check_value(&param(ParamType::Boolean), &Scalar::Str("yes".into())).is_err());
        let e = check_value(&param(ParamType::String), &Scalar::Int(8)).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("quote it to make it a string: '8'"));
    }
}
