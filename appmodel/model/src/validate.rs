//! Semantic checks of a structurally valid model: names, references, ports, cycles, versions,
//! parameters. Every finding is collected; nothing stops at the first.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;

use crate::diag::{closest, Diagnostic};
use crate::expr::{referenced_port, Reference, Template};
use crate::graph::DependencyGraph;
use crate::params::{check_value, compiled_pattern};
use crate::types::{AppModel, Component, ParamType, Scalar, VolumeKind, API_VERSION};
use crate::units::{parse_duration, parse_quantity};
use crate::yaml::{Node, Path};

struct Checker<'a> {
    root: &'a Node,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&mut self, path: Path, message: String, hint: Option<String>) {
        let pos = self.root.locate(&path);
        let mut d = Diagnostic::new(pos, path, message);
        d.hint = hint;
        self.out.push(d);
    }

    fn at_key(&mut self, path: Path, message: String, hint: Option<String>) {
        let pos = self.root.locate_key(&path);
        let mut d = Diagnostic::new(pos, path, message);
        d.hint = hint;
        self.out.push(d);
    }

    fn line_of(&self, path: &Path) -> usize {
        self.root.locate(path).line
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static pattern compiles"))
}

pub(crate) fn dns_name(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && re(&R, "^[a-z]([a-z0-9-]*[a-z0-9])?$").is_match(s)
}

/// Whether `s` is a valid app, component or plan name (lowercase DNS label).
pub fn is_name(s: &str) -> bool {
    dns_name(s)
}

pub(crate) fn ident(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, "^[A-Za-z_][A-Za-z0-9_]*$").is_match(s)
}

pub(crate) fn platform(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, "^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$").is_match(s)
}

const NAME_RULE: &str =
    "use lowercase letters, digits and `-`, starting with a letter (at most 63)";

/// Runs every semantic check; `root` gives positions.
pub fn check(model: &AppModel, root: &Node) -> Vec<Diagnostic> {
    let mut c = Checker {
        root,
        out: Vec::new(),
    };
    if model.api_version != API_VERSION {
        c.at(
            Path::parse("apiVersion"),
            format!("unsupported apiVersion `{}`", model.api_version),
            Some(format!("this appmodel reads `{API_VERSION}`")),
        );
    }
    check_app(model, &mut c);
    check_parameters(model, &mut c);
    check_components(model, &mut c);
    check_ports(model, &mut c);
    check_dependencies(model, &mut c);
    check_expressions(model, &mut c);
    check_licence(model, &mut c);
    check_requirements(model, &mut c);
    c.out
}

fn check_requirements(model: &AppModel, c: &mut Checker<'_>) {
    use crate::types::Measure;
    let Some(req) = &model.requirements else {
        return;
    };
    let base = Path::parse("requirements");
    let minimums = [
        (
            "cpus",
            &req.cpus,
            Measure::Count,
            "a whole number of cores: `4`",
        ),
        (
            "memory",
            &req.memory,
            Measure::Bytes,
            "a size: `8Gi`, `512Mi`",
        ),
        ("disk", &req.disk, Measure::Bytes, "a size: `20Gi`"),
        (
            "kernel",
            &req.kernel,
            Measure::Version,
            "a quoted version: `\"5.10\"`",
        ),
        (
            "engine",
            &req.engine,
            Measure::Version,
            "a quoted version: `\"20.10\"`",
        ),
        (
            "compose",
            &req.compose,
            Measure::Version,
            "a quoted version: `\"2.20\"`",
        ),
    ];
    for (name, min, measure, rule) in minimums {
        let Some(min) = min else { continue };
        let path = base.key(name);
        if min.warn.is_none() && min.fail.is_none() {
            c.at(
                path.clone(),
                format!("`{name}` gives neither `warn` nor `fail`"),
                None,
            );
        }
        let mut read = BTreeMap::new();
        for (which, v) in [("warn", &min.warn), ("fail", &min.fail)] {
            let Some(v) = v else { continue };
            match measure.read(v) {
                Some(n) => {
                    read.insert(which, n);
                }
                None => {
                    let hint = match (measure, v) {
                        (Measure::Version, Scalar::Float(_)) => {
                            format!("quote it: YAML reads `{v}` as a number (`5.10` would be 5.1)")
                        }
                        _ => format!("write {rule}"),
                    };
                    c.at(
                        path.key(which),
                        format!("`{name}.{which}` is `{v}`, not {rule}"),
                        Some(hint),
                    );
                }
            }
        }
        if let (Some(w), Some(f)) = (read.get("warn"), read.get("fail")) {
            if w < f {
                c.at(
                    path.key("warn"),
                    format!("`{name}.warn` is below `{name}.fail`: a host between them would fail, never warn"),
                    Some("warn at the higher value, fail at the lower one".into()),
                );
            }
        }
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, check) in req.checks.iter().enumerate() {
        let path = base.key("checks").index(i);
        if !dns_name(&check.name) {
            c.at(
                path.key("name"),
                format!("invalid check name `{}`", check.name),
                Some(NAME_RULE.into()),
            );
        }
        let builtin = [
            "signature",
            "licence",
            "architecture",
            "cpus",
            "memory",
            "kernel",
            "engine",
            "compose",
            "disk",
            "host",
        ];
        if builtin.contains(&check.name.as_str()) {
            c.at(
                path.key("name"),
                format!("`{}` is the name of a built-in check", check.name),
                Some("give the vendor check its own name".into()),
            );
        }
        if let Some(first) = names.insert(&check.name, i) {
            let line = c.line_of(&base.key("checks").index(first));
            c.at(
                path.key("name"),
                format!(
                    "check `{}` is declared twice (first on line {line})",
                    check.name
                ),
                None,
            );
        }
        match (&check.tcp, &check.file) {
            (Some(_), Some(_)) | (None, None) => c.at(
                path.clone(),
                format!(
                    "check `{}` must have exactly one of `tcp` and `file`",
                    check.name
                ),
                None,
            ),
            (Some(tcp), None) => {
                check_template(model, tcp, path.key("tcp"), c);
                if !tcp.contains("${") {
                    let port = tcp.rsplit_once(':').and_then(|(h, p)| {
                        (!h.is_empty()).then_some(())?;
                        p.parse::<u16>().ok().filter(|p| *p > 0)
                    });
                    if port.is_none() {
                        c.at(
                            path.key("tcp"),
                            format!("`tcp` is `{tcp}`, not HOST:PORT"),
                            Some("write `ldap.plant.example:389`".into()),
                        );
                    }
                }
            }
            (None, Some(file)) => {
                check_template(model, file, path.key("file"), c);
                if !file.starts_with('/') && !file.starts_with("${") {
                    c.at(
                        path.key("file"),
                        format!("`file` is `{file}`, not an absolute path"),
                        None,
                    );
                }
            }
        }
    }
}

/// The base64 line of a minisign public key: "Ed", an 8-byte key number, 32 key bytes.
fn minisign_public_key(text: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .is_ok_and(|b| b.len() == 42 && b.starts_with(b"Ed"))
}

fn check_licence(model: &AppModel, c: &mut Checker<'_>) {
    let Some(policy) = &model.licence else {
        return;
    };
    let base = Path::parse("licence");
    if !minisign_public_key(&policy.public_key) {
        c.at(
            base.key("public_key"),
            "`public_key` is not a minisign public key".into(),
            Some(
                "copy the second line of the `.pub` file `appmodel license key generate` wrote"
                    .into(),
            ),
        );
    }
    if policy.plans.is_empty() {
        c.at(
            base.key("plans"),
            "a licence needs at least one plan".into(),
            None,
        );
    }
    // Each entitlement with the first plan (by name) that gives it.
    let mut union: BTreeMap<&str, (&str, &Scalar)> = BTreeMap::new();
    for (plan, entitlements) in &policy.plans {
        for (name, value) in entitlements {
            union.entry(name).or_insert((plan, value));
        }
    }
    for (plan, entitlements) in &policy.plans {
        let path = base.key("plans").key(plan);
        if !dns_name(plan) {
            c.at_key(
                path.clone(),
                format!("invalid plan name `{plan}`"),
                Some(NAME_RULE.into()),
            );
        }
        for (name, (other, value)) in &union {
            match entitlements.get(*name) {
                None => c.at_key(
                    path.clone(),
                    format!("plan `{plan}` lacks entitlement `{name}`, which plan `{other}` has"),
                    Some("every plan lists the same entitlements".into()),
                ),
                Some(v) if std::mem::discriminant(v) != std::mem::discriminant(*value) => c.at(
                    path.key(name),
                    format!("entitlement `{name}` has another type than in plan `{other}`"),
                    Some("every plan gives an entitlement the same type".into()),
                ),
                Some(_) => {}
            }
        }
        for (name, value) in entitlements {
            if !ident(name) || name == "plan" {
                c.at_key(
                    path.key(name),
                    format!("invalid entitlement name `{name}`"),
                    Some("use letters, digits and `_`, not starting with a digit; `plan` is the plan's name".into()),
                );
            }
            if matches!(value, Scalar::Float(_)) {
                c.at(
                    path.key(name),
                    format!("entitlement `{name}` is a number with a fraction"),
                    Some("entitlements are integers, booleans or strings".into()),
                );
            }
        }
    }
    if let Some(trial) = &policy.trial {
        if !policy.plans.contains_key(&trial.plan) {
            let hint = closest(&trial.plan, policy.plans.keys().map(String::as_str))
                .map(|k| format!("did you mean `{k}`?"));
            c.at(
                base.key("trial").key("plan"),
                format!("trial plan `{}` is not one of the plans", trial.plan),
                hint,
            );
        }
        if trial.days == 0 {
            c.at(
                base.key("trial").key("days"),
                "a trial of 0 days: remove `trial` to require a licence".into(),
                None,
            );
        }
    }
}

fn check_app(model: &AppModel, c: &mut Checker<'_>) {
    if !dns_name(&model.app.name) {
        c.at(
            Path::parse("app.name"),
            format!("invalid app name `{}`", model.app.name),
            Some(NAME_RULE.into()),
        );
    }
    if let Err(e) = semver::Version::parse(&model.app.version) {
        c.at(
            Path::parse("app.version"),
            format!("`{}` is not a semantic version: {e}", model.app.version),
            Some("write MAJOR.MINOR.PATCH, e.g. `1.1.0`".into()),
        );
    }
    if let Some(req) = &model.app.upgrade_from {
        if let Err(e) = semver::VersionReq::parse(req) {
            c.at(
                Path::parse("app.upgrade_from"),
                format!("`{req}` is not a version requirement: {e}"),
                Some("write a semver requirement, e.g. `>=1.0.0` or `>=1.0.0, <2.0.0`".into()),
            );
        }
    }
    for (i, p) in model.app.platforms.iter().enumerate() {
        if !platform(p) {
            c.at(
                Path::parse("app.platforms").index(i),
                format!("invalid platform `{p}`"),
                Some("write `os/arch`, e.g. `linux/amd64` or `linux/arm64`".into()),
            );
        }
    }
}

fn check_parameters(model: &AppModel, c: &mut Checker<'_>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, p) in model.parameters.iter().enumerate() {
        let path = Path::parse("parameters").index(i);
        if !ident(&p.name) {
            c.at(
                path.key("name"),
                format!("invalid parameter name `{}`", p.name),
                Some("use letters, digits and `_`, not starting with a digit".into()),
            );
        }
        if let Some(first) = seen.insert(&p.name, i) {
            let line = c.line_of(&Path::parse("parameters").index(first).key("name"));
            c.at(
                path.key("name"),
                format!(
                    "duplicate parameter name `{}` (first declared at line {line})",
                    p.name
                ),
                None,
            );
        }
        let is = |k: ParamType| p.kind == k;
        let only_for = |c: &mut Checker<'_>, field: &str, present: bool, ok: bool, kinds: &str| {
            if present && !ok {
                c.at_key(
                    path.key(field),
                    format!(
                        "`{field}` does not apply to a parameter of type `{}`",
                        p.kind.as_str()
                    ),
                    Some(format!("`{field}` is for {kinds} parameters")),
                );
            }
        };
        only_for(
            c,
            "pattern",
            p.pattern.is_some(),
            is(ParamType::String) || is(ParamType::Secret),
            "string and secret",
        );
        only_for(
            c,
            "minimum",
            p.minimum.is_some(),
            is(ParamType::Integer),
            "integer",
        );
        only_for(
            c,
            "maximum",
            p.maximum.is_some(),
            is(ParamType::Integer),
            "integer",
        );
        only_for(
            c,
            "values",
            !p.values.is_empty(),
            is(ParamType::Enum),
            "enum",
        );
        only_for(c, "generate", p.generate, is(ParamType::Secret), "secret");
        only_for(
            c,
            "length",
            p.length.is_some(),
            p.generate,
            "generated secret",
        );
        if is(ParamType::Enum) && p.values.is_empty() {
            c.at(
                path.key("type"),
                format!("enum parameter `{}` lists no `values`", p.name),
                Some("add `values: [a, b]`".into()),
            );
        }
        if let (Some(min), Some(max)) = (p.minimum, p.maximum) {
            if min > max {
                c.at(
                    path.key("minimum"),
                    format!("`minimum` {min} is greater than `maximum` {max}"),
                    None,
                );
            }
        }
        if let Some(Err(e)) = compiled_pattern(p) {
            c.at(
                path.key("pattern"),
                format!(
                    "invalid regular expression in `pattern`: {}",
                    e.to_string().lines().last().unwrap_or_default().trim()
                ),
                None,
            );
        }
        if is(ParamType::Secret) && p.default.is_some() {
            c.at(
                path.key("default"),
                format!("secret parameter `{}` must not have a default", p.name),
                Some("a default would ship in every bundle; use `generate: true` or `required: true`".into()),
            );
        } else if let Some(default) = &p.default {
            if p.required {
                c.at_key(
                    path.key("required"),
                    format!("parameter `{}` is `required` but has a `default`", p.name),
                    Some(
                        "remove `required: true`: a parameter with a default need not be set"
                            .into(),
                    ),
                );
            }
            if let Err(e) = check_value(p, default) {
                c.at(
                    path.key("default"),
                    format!("default does not fit: {}", e.message),
                    e.hint,
                );
            }
        }
        if p.generate && p.required {
            c.at_key(
                path.key("required"),
                format!("parameter `{}` is both `required` and `generate`d", p.name),
                Some("a generated secret need not be set by the site; remove one of them".into()),
            );
        }
        if let Some(len) = p.length {
            if !(16..=256).contains(&len) {
                c.at(
                    path.key("length"),
                    format!(
                        "generated secret length {len} is out of range: must be between 16 and 256"
                    ),
                    None,
                );
            }
        }
    }
}

fn check_components(model: &AppModel, c: &mut Checker<'_>) {
    let platforms = model.app.platforms();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, comp) in model.components.iter().enumerate() {
        let path = Path::parse("components").index(i);
        if !dns_name(&comp.name) {
            c.at(
                path.key("name"),
                format!("invalid component name `{}`", comp.name),
                Some(NAME_RULE.into()),
            );
        }
        if let Some(first) = seen.insert(&comp.name, i) {
            let line = c.line_of(&Path::parse("components").index(first).key("name"));
            c.at(
                path.key("name"),
                format!(
                    "duplicate component name `{}` (first declared at line {line})",
                    comp.name
                ),
                None,
            );
        }
        check_image(comp, &path, c);
        for platform in comp.binaries.keys() {
            if !platforms.contains(platform) {
                c.at_key(
                    path.key("binaries").key(platform),
                    format!("binary for platform `{platform}`, which the app does not declare"),
                    Some(format!(
                        "the app's platforms: {} (set `app.platforms`)",
                        platforms.join(", ")
                    )),
                );
            }
        }
        for name in comp.env.keys() {
            if !ident(name) {
                c.at_key(
                    path.key("env").key(name),
                    format!("invalid environment variable name `{name}`"),
                    Some("use letters, digits and `_`, not starting with a digit".into()),
                );
            }
        }
        check_volumes(comp, &path, c);
        check_health(comp, &path, c);
        if let Some(res) = &comp.resources {
            if res.cpu.is_some_and(|cpu| cpu <= 0.0) {
                c.at(
                    path.key("resources").key("cpu"),
                    "`cpu` must be greater than 0".into(),
                    None,
                );
            }
            if let Some(mem) = &res.memory {
                if parse_quantity(mem).is_none() {
                    c.at(
                        path.key("resources").key("memory"),
                        format!("invalid memory size `{mem}`"),
                        Some("write bytes with an optional suffix: `512Mi`, `2Gi`, `100M`".into()),
                    );
                }
            }
        }
        if comp.replicas == Some(0) {
            c.at(
                path.key("replicas"),
                "`replicas` must be at least 1".into(),
                None,
            );
        }
    }
}

fn check_image(comp: &Component, path: &Path, c: &mut Checker<'_>) {
    let Some(img) = &comp.image else {
        if comp.binaries.is_empty() {
            c.at(
                path.key("name"),
                format!(
                    "component `{}` has neither an `image` nor `binaries`",
                    comp.name
                ),
                Some("give a container image, static binaries, or both".into()),
            );
        }
        return;
    };
    let sources = [
        ("registry", img.registry.is_some()),
        ("oci_layout", img.oci_layout.is_some()),
        ("archive", img.archive.is_some()),
        ("from_binary", img.from_binary),
    ];
    let given: Vec<&str> = sources.iter().filter(|s| s.1).map(|s| s.0).collect();
    let image_path = path.key("image");
    match given.as_slice() {
        [] => c.at(
            image_path,
            format!("component `{}` has an `image` with no source", comp.name),
            Some("set one of `registry`, `oci_layout`, `archive`, `from_binary`".into()),
        ),
        [_] => {}
        [first, second, ..] => c.at_key(
            image_path.key(second),
            format!("`image` gives both `{first}` and `{second}`"),
            Some("an image has exactly one source".into()),
        ),
    }
    if img.tag.is_some() && img.oci_layout.is_none() && img.archive.is_none() {
        c.at_key(
            path.key("image").key("tag"),
            "`tag` applies only to `oci_layout` and `archive` images".into(),
            Some("put the tag into the `registry` reference itself".into()),
        );
    }
    if img.from_binary && comp.binaries.is_empty() {
        c.at(
            path.key("image").key("from_binary"),
            format!(
                "`from_binary` needs a static binary, but component `{}` lists no `binaries`",
                comp.name
            ),
            Some("add `binaries: {linux/amd64: path/to/binary}`".into()),
        );
    }
}

fn check_volumes(comp: &Component, path: &Path, c: &mut Checker<'_>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut paths: HashMap<&str, usize> = HashMap::new();
    for (j, v) in comp.volumes.iter().enumerate() {
        let vpath = path.key("volumes").index(j);
        if !dns_name(&v.name) {
            c.at(
                vpath.key("name"),
                format!("invalid volume name `{}`", v.name),
                Some(NAME_RULE.into()),
            );
        }
        if let Some(first) = names.insert(&v.name, j) {
            let line = c.line_of(&path.key("volumes").index(first).key("name"));
            c.at(
                vpath.key("name"),
                format!(
                    "duplicate volume name `{}` in component `{}` (first declared at line {line})",
                    v.name, comp.name
                ),
                None,
            );
        }
        if !v.path.starts_with('/') {
            c.at(
                vpath.key("path"),
                format!("volume path `{}` is not absolute", v.path),
                None,
            );
        } else if let Some(first) = paths.insert(&v.path, j) {
            let line = c.line_of(&path.key("volumes").index(first).key("path"));
            c.at(
                vpath.key("path"),
                format!(
                    "volume path `{}` is mounted twice in component `{}` (first at line {line})",
                    v.path, comp.name
                ),
                None,
            );
        }
        match v.kind {
            VolumeKind::Config if v.content.is_none() => c.at(
                vpath.key("kind"),
                format!("config volume `{}` has no `content`", v.name),
                Some("give the file's text in `content: |`".into()),
            ),
            VolumeKind::Data if v.content.is_some() => c.at_key(
                vpath.key("content"),
                format!("data volume `{}` cannot have `content`", v.name),
                Some("use `kind: config` for a file with content".into()),
            ),
            VolumeKind::Config if v.size.is_some() => c.at_key(
                vpath.key("size"),
                format!("config volume `{}` cannot have a `size`", v.name),
                None,
            ),
            _ => {}
        }
        if let Some(size) = &v.size {
            if parse_quantity(size).is_none() {
                c.at(
                    vpath.key("size"),
                    format!("invalid size `{size}`"),
                    Some("write bytes with an optional suffix: `512Mi`, `10Gi`".into()),
                );
            }
        }
    }
}

fn check_health(comp: &Component, path: &Path, c: &mut Checker<'_>) {
    let Some(h) = &comp.health else { return };
    let hpath = path.key("health");
    let kinds = [
        ("http", h.http.is_some()),
        ("tcp", h.tcp.is_some()),
        ("exec", h.exec.is_some()),
    ];
    let given: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0).collect();
    match given.as_slice() {
        [] => c.at(
            hpath.clone(),
            format!(
                "health check of `{}` says neither `http`, `tcp` nor `exec`",
                comp.name
            ),
            Some("e.g. `http: {path: /healthz, port: http}`".into()),
        ),
        [_] => {}
        [first, second, ..] => c.at_key(
            hpath.key(second),
            format!("health check gives both `{first}` and `{second}`"),
            Some("a health check has exactly one kind".into()),
        ),
    }
    let port_ref = h
        .http
        .as_ref()
        .map(|x| ("http", &x.port))
        .or(h.tcp.as_ref().map(|x| ("tcp", &x.port)));
    if let Some((kind, port)) = port_ref {
        if comp.port(port).is_none() {
            let names: Vec<&str> = comp.ports.iter().map(|p| p.name.as_str()).collect();
            let hint = match closest(port, names.iter().copied()) {
                Some(k) => format!("did you mean `{k}`?"),
                None if names.is_empty() => format!("`{}` declares no ports", comp.name),
                None => format!("ports of `{}`: {}", comp.name, names.join(", ")),
            };
            c.at(
                hpath.key(kind).key("port"),
                format!(
                    "health check refers to port `{port}`, which `{}` does not declare",
                    comp.name
                ),
                Some(hint),
            );
        }
    }
    if h.exec.as_ref().is_some_and(|e| e.command.is_empty()) {
        c.at(
            hpath.key("exec").key("command"),
            "exec health check has an empty `command`".into(),
            None,
        );
    }
    for (field, value) in [
        ("interval", &h.interval),
        ("timeout", &h.timeout),
        ("start_period", &h.start_period),
    ] {
        if let Some(v) = value {
            if parse_duration(v).is_none() {
                c.at(
                    hpath.key(field),
                    format!("invalid duration `{v}`"),
                    Some("write a number with a unit: `500ms`, `5s`, `2m`, `1m30s`".into()),
                );
            }
        }
    }
}

fn check_ports(model: &AppModel, c: &mut Checker<'_>) {
    // Under systemd every component listens on the host itself, so a port number may be used
    // by one component only; published host ports must be unique too.
    let mut listen: HashMap<u16, (usize, usize)> = HashMap::new();
    let mut host: HashMap<u16, (usize, usize)> = HashMap::new();
    for (i, comp) in model.components.iter().enumerate() {
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (j, port) in comp.ports.iter().enumerate() {
            let ppath = Path::parse("components").index(i).key("ports").index(j);
            if !dns_name(&port.name) {
                c.at(
                    ppath.key("name"),
                    format!("invalid port name `{}`", port.name),
                    Some(NAME_RULE.into()),
                );
            }
            if let Some(first) = names.insert(&port.name, j) {
                let line = c.line_of(
                    &Path::parse("components")
                        .index(i)
                        .key("ports")
                        .index(first)
                        .key("name"),
                );
                c.at(
                    ppath.key("name"),
                    format!("duplicate port name `{}` in component `{}` (first declared at line {line})", port.name, comp.name),
                    None,
                );
            }
            if port.port == 0 {
                c.at(
                    ppath.key("port"),
                    "port 0 is not a port a program can be reached on".into(),
                    None,
                );
            }
            if let Some((fi, fj)) = listen.insert(port.port, (i, j)) {
                let other = &model.components[fi];
                let line = c.line_of(
                    &Path::parse("components")
                        .index(fi)
                        .key("ports")
                        .index(fj)
                        .key("port"),
                );
                c.at(
                    ppath.key("port"),
                    format!(
                        "port {} is used twice on the host: by `{}` (line {line}) and `{}`",
                        port.port, other.name, comp.name
                    ),
                    Some(
                        "under systemd all components share the host's ports; give each its own"
                            .into(),
                    ),
                );
            }
            if port.host_port.is_some() && !port.expose {
                c.at_key(
                    ppath.key("host_port"),
                    format!("port `{}` has a `host_port` but is not exposed", port.name),
                    Some("add `expose: true`".into()),
                );
            }
            if let Some(published) = port.published() {
                if let Some((fi, fj)) = host.insert(published, (i, j)) {
                    if (fi, fj) != (i, j) {
                        let line =
                            c.line_of(&Path::parse("components").index(fi).key("ports").index(fj));
                        c.at(
                            ppath.clone(),
                            format!(
                                "host port {published} is published twice: by `{}` (line {line}) and `{}`",
                                model.components[fi].name, comp.name
                            ),
                            Some("set a different `host_port`".into()),
                        );
                    }
                }
            }
        }
    }
}

fn check_dependencies(model: &AppModel, c: &mut Checker<'_>) {
    let names: Vec<&str> = model.components.iter().map(|c| c.name.as_str()).collect();
    for (i, comp) in model.components.iter().enumerate() {
        let mut seen = Vec::new();
        for (j, dep) in comp.depends_on.iter().enumerate() {
            let dpath = Path::parse("components")
                .index(i)
                .key("depends_on")
                .index(j);
            if !names.contains(&dep.as_str()) {
                let hint = match closest(dep, names.iter().copied()) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!("components: {}", names.join(", ")),
                };
                c.at(
                    dpath,
                    format!("`{}` depends on unknown component `{dep}`", comp.name),
                    Some(hint),
                );
            } else if seen.contains(&dep) {
                c.at(
                    dpath,
                    format!("`{}` lists dependency `{dep}` twice", comp.name),
                    None,
                );
            }
            seen.push(dep);
        }
    }
    if let Err(cycles) = DependencyGraph::from_model(model) {
        for cycle in cycles {
            let first = cycle.0.first().cloned().unwrap_or_default();
            let i = model
                .components
                .iter()
                .position(|c| c.name == first)
                .unwrap_or(0);
            c.at_key(
                Path::parse("components").index(i).key("depends_on"),
                format!("dependency cycle: {cycle}"),
                Some("components cannot wait for each other; remove one `depends_on` edge".into()),
            );
        }
    }
}

fn check_expressions(model: &AppModel, c: &mut Checker<'_>) {
    for (i, comp) in model.components.iter().enumerate() {
        let base = Path::parse("components").index(i);
        let mut texts: Vec<(Path, &str)> = Vec::new();
        for (k, v) in &comp.env {
            if let Scalar::Str(s) = v {
                texts.push((base.key("env").key(k), s));
            }
        }
        for (j, a) in comp.command.iter().enumerate() {
            texts.push((base.key("command").index(j), a));
        }
        for (j, a) in comp.args.iter().enumerate() {
            texts.push((base.key("args").index(j), a));
        }
        for (j, v) in comp.volumes.iter().enumerate() {
            if let Some(content) = &v.content {
                texts.push((base.key("volumes").index(j).key("content"), content));
            }
        }
        for (path, text) in texts {
            check_template(model, text, path, c);
        }
    }
}

fn check_template(model: &AppModel, text: &str, path: Path, c: &mut Checker<'_>) {
    let template = match Template::parse(text) {
        Ok(t) => t,
        Err(e) => return c.at(path, e.message, e.hint),
    };
    for r in template.references() {
        match r {
            Reference::Param(name) if model.parameter(name).is_none() => {
                let names = model.parameters.iter().map(|p| p.name.as_str());
                let hint = match closest(name, names) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => "declare it under `parameters`".into(),
                };
                c.at(
                    path.clone(),
                    format!("`{r}` refers to undeclared parameter `{name}`"),
                    Some(hint),
                );
            }
            Reference::Licence(name) => {
                let known = model
                    .licence
                    .as_ref()
                    .is_some_and(|l| name == "plan" || l.entitlements().any(|e| e == name));
                if !known {
                    let hint = match &model.licence {
                        None => "declare a `licence` section with plans".to_string(),
                        Some(l) => match closest(name, l.entitlements().chain(["plan"])) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => "add it to every plan's entitlements".into(),
                        },
                    };
                    c.at(
                        path.clone(),
                        format!("`{r}` refers to no licence entitlement"),
                        Some(hint),
                    );
                }
            }
            Reference::Component { .. } => {
                if let Err(e) = referenced_port(model, r) {
                    c.at(path.clone(), e.message, e.hint);
                }
            }
            _ => {}
        }
    }
}
