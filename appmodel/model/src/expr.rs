//! Connection-info expressions: `${params.domain}`, `${components.im-store.url}`.
//!
//! Env values, args and config file contents may refer to the app's parameters and to other
//! components' addresses. The model only parses and checks them; each target resolves them at
//! install time on site (compose: service names; systemd: 127.0.0.1 and the declared port;
//! Helm: cluster DNS), so one bundle serves every site.
//!
//! Grammar inside `${ }`:
//! - `params.NAME`
//! - `app.name`, `app.version`
//! - `licence.NAME` (an entitlement of the site's licence plan) and `licence.plan`; the
//!   target gets them from the `param` lookup as `licence.NAME` (no parameter name has a dot)
//! - `components.C.host`
//! - `components.C.port` (the only port) or `components.C.ports.P`
//! - `components.C.address` or `components.C.address.P` (`host:port`)
//! - `components.C.url` or `components.C.url.P` (`scheme://host:port`, for http/https/grpc)
//!
//! `$${` writes a literal `${`.

use std::fmt;

use crate::types::{AppModel, Component, Port};

/// What a `${...}` expression refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Param(String),
    AppName,
    AppVersion,
    /// An entitlement of the licence's plan, or `plan` (the plan's name).
    Licence(String),
    Component {
        component: String,
        field: ComponentField,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentField {
    Host,
    /// A port number; `None` means the component's only port.
    Port(Option<String>),
    Address(Option<String>),
    Url(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Ref(Reference),
}

/// A string with `${...}` references, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// A malformed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |p: &Option<String>| p.as_ref().map(|p| format!(".{p}")).unwrap_or_default();
        match self {
            Reference::Param(p) => write!(f, "${{params.{p}}}"),
            Reference::AppName => f.write_str("${app.name}"),
            Reference::AppVersion => f.write_str("${app.version}"),
            Reference::Licence(n) => write!(f, "${{licence.{n}}}"),
            Reference::Component { component, field } => match field {
                ComponentField::Host => write!(f, "${{components.{component}.host}}"),
                ComponentField::Port(None) => write!(f, "${{components.{component}.port}}"),
                ComponentField::Port(Some(p)) => {
                    write!(f, "${{components.{component}.ports.{p}}}")
                }
                ComponentField::Address(p) => {
                    write!(f, "${{components.{component}.address{}}}", opt(p))
                }
                ComponentField::Url(p) => write!(f, "${{components.{component}.url{}}}", opt(p)),
            },
        }
    }
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, ExprError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                literal.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let Some(end) = tail.find('}') else {
                    return Err(ExprError {
                        message: format!("unterminated expression `${{{tail}`"),
                        hint: Some("close it with `}`, or write `$${` for a literal `${`".into()),
                    });
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Ref(parse_reference(tail[..end].trim())?));
                rest = &tail[end + 1..];
            } else {
                literal.push('$');
                rest = &after[1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Literal(_) => None,
        })
    }

    /// Renders with `lookup` supplying each reference's value.
    pub fn render<E>(
        &self,
        mut lookup: impl FnMut(&Reference) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Ref(r) => out.push_str(&lookup(r)?),
            }
        }
        Ok(out)
    }
}

fn parse_reference(expr: &str) -> Result<Reference, ExprError> {
    let err = |message: String| {
        ExprError {
        message,
        hint: Some(
            "expressions are `params.NAME`, `app.name`, `app.version`, `licence.NAME` or `components.NAME.` \
             followed by `host`, `port`, `ports.P`, `address[.P]` or `url[.P]`"
                .into(),
        ),
    }
    };
    let parts: Vec<&str> = expr.split('.').collect();
    match parts.as_slice() {
        ["params", name] if !name.is_empty() => Ok(Reference::Param(name.to_string())),
        ["app", "name"] => Ok(Reference::AppName),
        ["app", "version"] => Ok(Reference::AppVersion),
        ["licence", name] if !name.is_empty() => Ok(Reference::Licence(name.to_string())),
        ["components", component, field @ ..] if !component.is_empty() => {
            let port = |p: &[&str]| p.first().map(|s| s.to_string());
            let field = match field {
                ["host"] => ComponentField::Host,
                ["port"] => ComponentField::Port(None),
                ["ports", p] => ComponentField::Port(Some(p.to_string())),
                ["address", rest @ ..] if rest.len() <= 1 => ComponentField::Address(port(rest)),
                ["url", rest @ ..] if rest.len() <= 1 => ComponentField::Url(port(rest)),
                _ => return Err(err(format!("unknown expression `${{{expr}}}`"))),
            };
            Ok(Reference::Component {
                component: component.to_string(),
                field,
            })
        }
        _ => Err(err(format!("unknown expression `${{{expr}}}`"))),
    }
}

/// A reference the model cannot satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    pub message: String,
    pub hint: Option<String>,
}

/// The port a component reference means, checked against the model.
pub fn referenced_port<'m>(
    model: &'m AppModel,
    reference: &Reference,
) -> Result<Option<(&'m Component, Option<&'m Port>)>, RefError> {
    let Reference::Component { component, field } = reference else {
        return Ok(None);
    };
    let Some(c) = model.component(component) else {
        let names: Vec<&str> = model.components.iter().map(|c| c.name.as_str()).collect();
        return Err(RefError {
            message: format!("`{reference}` refers to unknown component `{component}`"),
            hint: Some(
                match crate::diag::closest(component, names.iter().copied()) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!("components: {}", names.join(", ")),
                },
            ),
        });
    };
    let wanted = match field {
        ComponentField::Host => return Ok(Some((c, None))),
        ComponentField::Port(p) | ComponentField::Address(p) | ComponentField::Url(p) => p,
    };
    let port_names = || {
        c.ports
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let port = match wanted {
        Some(name) => c.port(name).ok_or_else(|| RefError {
            message: format!(
                "`{reference}` refers to port `{name}`, which `{component}` does not declare"
            ),
            hint: Some(format!("ports of `{component}`: {}", port_names())),
        })?,
        None => match c.ports.as_slice() {
            [only] => only,
            [] => {
                return Err(RefError {
                    message: format!("`{reference}` needs a port, but `{component}` declares none"),
                    hint: None,
                })
            }
            _ => {
                return Err(RefError {
                    message: format!("`{reference}` is ambiguous: `{component}` has several ports"),
                    hint: Some(format!("name the port, one of: {}", port_names())),
                })
            }
        },
    };
    if matches!(field, ComponentField::Url(_)) && port.protocol().scheme().is_none() {
        return Err(RefError {
            message: format!(
                "`{reference}` needs a URL scheme, but port `{}` has protocol `{}`",
                port.name,
                serde_json::to_value(port.protocol())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            hint: Some(
                "set `protocol: http` (or https, grpc) on the port, or use `address`".into(),
            ),
        });
    }
    Ok(Some((c, Some(port))))
}

/// The key under which a target's `param` lookup gives `${licence.NAME}`.
pub fn licence_key(name: &str) -> String {
    format!("licence.{name}")
}

/// Resolves one reference for a target: `host` names how a component is reached there,
/// `param` gives a parameter's value (or a placeholder the target fills in later).
pub fn resolve(
    model: &AppModel,
    reference: &Reference,
    host: &dyn Fn(&Component) -> String,
    param: &dyn Fn(&str) -> Option<String>,
) -> Result<String, RefError> {
    match reference {
        Reference::Param(name) => param(name).ok_or_else(|| RefError {
            message: format!("`{reference}` has no value"),
            hint: Some(format!("set `{name}` in the site configuration")),
        }),
        Reference::AppName => Ok(model.app.name.clone()),
        Reference::AppVersion => Ok(model.app.version.clone()),
        Reference::Licence(name) => param(&licence_key(name)).ok_or_else(|| RefError {
            message: format!("`{reference}` has no value"),
            hint: Some("a licence must be activated on the site first".into()),
        }),
        Reference::Component { field, .. } => {
            let Some((c, port)) = referenced_port(model, reference)? else {
                return Err(RefError {
                    message: format!("`{reference}` is not a component reference"),
                    hint: None,
                });
            };
            let h = host(c);
            Ok(match (field, port) {
                (ComponentField::Host, _) => h,
                (ComponentField::Port(_), Some(p)) => p.port.to_string(),
                (ComponentField::Address(_), Some(p)) => format!("{h}:{}", p.port),
                (ComponentField::Url(_), Some(p)) => {
                    format!(
                        "{}://{h}:{}",
                        p.protocol().scheme().unwrap_or("tcp"),
                        p.port
                    )
                }
                (_, None) => h,
            })
        }
    }
}

/// Renders a whole string: `literal` maps literal text (e.g. to escape it for the target).
pub fn render_for_target(
    model: &AppModel,
    text: &str,
    host: &dyn Fn(&Component) -> String,
    param: &dyn Fn(&str) -> Option<String>,
    literal: &dyn Fn(&str) -> String,
) -> Result<String, RefError> {
    let template = Template::parse(text).map_err(|e| RefError {
        message: e.message,
        hint: e.hint,
    })?;
    let mut out = String::new();
    for part in &template.parts {
        match part {
            Part::Literal(s) => out.push_str(&literal(s)),
            Part::Ref(r) => out.push_str(&resolve(model, r, host, param)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Reference> {
        Template::parse(text)
            .unwrap()
            .references()
            .cloned()
            .collect()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            refs("${params.domain}"),
            vec![Reference::Param("domain".into())]
        );
        assert_eq!(
            refs("http://${components.im-store.host}:${components.im-store.ports.http}/x"),
            vec![
                Reference::Component {
                    component: "im-store".into(),
                    field: ComponentField::Host
                },
                Reference::Component {
                    component: "im-store".into(),
                    field: ComponentField::Port(Some("http".into()))
                },
            ]
        );
        assert_eq!(
            refs("${components.a.url}${components.a.url.admin}${components.a.address}"),
            vec![
                Reference::Component {
                    component: "a".into(),
                    field: ComponentField::Url(None)
                },
                Reference::Component {
                    component: "a".into(),
                    field: ComponentField::Url(Some("admin".into()))
                },
                Reference::Component {
                    component: "a".into(),
                    field: ComponentField::Address(None)
                },
            ]
        );
        assert_eq!(
            refs("${app.name}-${app.version}"),
            vec![Reference::AppName, Reference::AppVersion]
        );
    }

    #[test]
    fn literals_and_escapes_survive() {
        let t = Template::parse("cost: $5, literal $${HOME}, ${params.x}!").unwrap();
        let out: Result<String, ()> = t.render(|_| Ok("X".into()));
        assert_eq!(out.unwrap(), "cost: $5, literal ${HOME}, X!");
    }

    #[test]
    fn malformed_expressions_are_errors() {
        assert_eq!(
            Template::parse("${params.x").unwrap_err().message,
            "unterminated expression `${params.x`"
        );
        assert_eq!(
            Template::parse("${components.a.nope}").unwrap_err().message,
            "unknown expression `${components.a.nope}`"
        );
        assert_eq!(
            Template::parse("${secrets.x}").unwrap_err().message,
            "unknown expression `${secrets.x}`"
        );
    }

    #[test]
    fn references_print_back_as_written() {
        for text in [
            "${params.a}",
            "${app.name}",
            "${components.c.host}",
            "${components.c.port}",
            "${components.c.ports.p}",
            "${components.c.address.p}",
            "${components.c.url}",
        ] {
            assert_eq!(refs(text)[0].to_string(), text);
        }
    }
}
