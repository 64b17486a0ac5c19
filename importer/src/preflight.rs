//! Preflight: what must hold on the host before a change touches anything, checked
//! cheapest first, each check giving pass, warn or fail with what it found, what is needed
//! and how to fix it (docs/preflight.md).
//!
//! The checks are one table, [`CHECKS`]: the bundle's signature, the licence, the host's
//! architecture, the model's minimums (cores, memory, kernel, free disk where the engine
//! keeps its data), the form's own checks (the engine answers, host ports are free, room
//! for the images), then the vendor's checks (a file on the host, a service on the site's
//! network). Nothing here starts a container or reaches beyond the site's network, so a
//! preflight cannot hang on an image the air-gapped site does not have: the one network
//! check, a vendor's `tcp`, gives up after 3 s.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use appmodel_model::bundle::Form;
use appmodel_model::expr::render_for_target;
use appmodel_model::record::{human_bytes, VersionRecord};
use appmodel_model::types::{Component, Measure, Minimum, Severity, VendorCheck};
use serde::Serialize;

use crate::deploy::Params;
use crate::licensing::LicenceGate;
use crate::ImportError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    /// Failed, and waived with `--ignore-check` (recorded in history as such).
    Ignored,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Ignored => "ignored",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub result: Verdict,
    /// What the host has.
    pub found: String,
    /// What the version needs.
    pub needed: String,
    /// What to do about a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// A failure cannot be waived.
    pub strict: bool,
}

impl Check {
    fn new(name: &str, result: Verdict, found: String, needed: String) -> Check {
        Check {
            name: name.to_string(),
            result,
            found,
            needed,
            fix: None,
            strict: false,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        if self.result != Verdict::Pass {
            self.fix = Some(fix.into());
        }
        self
    }

    fn strict(mut self) -> Check {
        self.strict = true;
        self
    }

    /// The line a failure or a warning is told with.
    pub fn line(&self) -> String {
        let mut s = format!(
            "`{}`: found {}; needs {}",
            self.name, self.found, self.needed
        );
        if let Some(f) = &self.fix {
            s.push_str(&format!(" ({f})"));
        }
        s
    }
}

/// What the checks look at.
pub struct Inputs<'a> {
    pub record: &'a VersionRecord,
    pub form: Form,
    pub params: &'a Params,
    pub licence: Option<&'a LicenceGate>,
    /// The bundle was imported unsigned, with `--allow-unsigned`.
    pub unsigned: bool,
    /// Why a bundle not imported yet would be refused for its signature (no pinned key
    /// signed it), if it would.
    pub untrusted: Option<String>,
    /// Where the engine keeps images and data, if the form has such a place on this host.
    pub data_root: Option<PathBuf>,
    /// The app runs on this host (a host engine), not elsewhere (helm's cluster nodes).
    pub runs_here: bool,
    /// The engine's and the compose tool's versions.
    pub versions: crate::target::EngineVersions,
    /// The form's own problems (engine, ports, room for images), from its engine; `None`
    /// when they cannot be asked (a tar or ISO file not imported yet).
    pub engine_problems: Option<Vec<String>>,
}

type CheckFn = fn(&Inputs<'_>) -> Option<Check>;

/// Every built-in check, cheapest first; a check that does not apply gives `None`.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("signature", signature),
    ("licence", licence),
    ("architecture", architecture),
    ("cpus", cpus),
    ("memory", memory),
    ("kernel", kernel),
    ("engine", engine),
    ("compose", compose),
    ("disk", disk),
    ("host", host),
];

/// Runs every check, then waives the failures `ignore` names. Naming a strict check, or a
/// check there is not, is refused before anything is checked further.
pub fn run(inputs: &Inputs<'_>, ignore: &[String]) -> Result<Vec<Check>, ImportError> {
    let mut out: Vec<Check> = CHECKS.iter().filter_map(|(_, f)| f(inputs)).collect();
    if let Some(req) = &inputs.record.model.requirements {
        let mut vendor: Vec<&VendorCheck> = req.checks.iter().collect();
        // Files before the network.
        vendor.sort_by_key(|c| c.tcp.is_some());
        out.extend(vendor.into_iter().map(|c| vendor_check(inputs, c)));
    }
    for name in ignore {
        let Some(check) = out.iter_mut().find(|c| &c.name == name) else {
            let known: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
            return Err(ImportError::IgnoreCheck(format!(
                "`--ignore-check {name}` names no check of this change (its checks: {})",
                known.join(", ")
            )));
        };
        if check.strict {
            return Err(ImportError::IgnoreCheck(format!(
                "preflight check `{name}` is strict: it cannot be ignored"
            )));
        }
        if check.result == Verdict::Fail {
            check.result = Verdict::Ignored;
        }
    }
    Ok(out)
}

fn signature(i: &Inputs<'_>) -> Option<Check> {
    if let Some(why) = &i.untrusted {
        return Some(
            Check::new(
                "signature",
                Verdict::Fail,
                why.clone(),
                "a bundle signed by a pinned vendor key".into(),
            )
            .fix("pin the vendor's key (`appmodel trust add KEY.pub`), or import with --allow-unsigned")
            .strict(),
        );
    }
    Some(if i.unsigned {
        Check::new(
            "signature",
            Verdict::Warn,
            "imported unsigned, with --allow-unsigned".into(),
            "a bundle signed by a pinned vendor key".into(),
        )
        .fix("import the vendor's signed bundle")
    } else {
        Check::new(
            "signature",
            Verdict::Pass,
            "signed by a pinned key".into(),
            "a bundle signed by a pinned vendor key".into(),
        )
    })
}

fn licence(i: &Inputs<'_>) -> Option<Check> {
    let l = i.licence?;
    let stage = format!("{:?}", l.stage).to_lowercase();
    let found = match l.days_left {
        Some(d) => format!("{stage}, {d} days left ({})", l.reason),
        None => format!("{stage} ({})", l.reason),
    };
    let result = match (&l.refused, l.stage) {
        (Some(_), _) => Verdict::Fail,
        (None, appmodel_licence::Stage::Warn | appmodel_licence::Stage::Grace) => Verdict::Warn,
        (None, _) => Verdict::Pass,
    };
    let needed = match &l.refused {
        Some(why) => format!("a licence that covers this change ({why})"),
        None => "a licence or trial that lets the app run".into(),
    };
    Some(
        Check::new("licence", result, found, needed)
            .fix("ask the vendor for a licence: `appmodel license request`, then `appmodel license activate FILE`")
            .strict(),
    )
}

fn architecture(i: &Inputs<'_>) -> Option<Check> {
    let host = appmodel_model::bundle::host_platform();
    let platforms = i.record.model.app.platforms();
    // A release engine's app (helm) runs on the cluster's nodes, not on this host.
    if !i.runs_here {
        return None;
    }
    let ok = platforms.contains(&host);
    Some(
        Check::new(
            "architecture",
            if ok { Verdict::Pass } else { Verdict::Fail },
            host,
            format!("one of {}", platforms.join(", ")),
        )
        .fix("install the bundle built for this host's platform")
        .strict(),
    )
}

/// A minimum of the model against what the host has (`found`, comparable as `measure`
/// reads the model's values), told with `show`.
fn minimum(
    name: &str,
    min: &Minimum,
    measure: Measure,
    found: Option<Vec<u64>>,
    show: impl Fn(&[u64]) -> String,
    fix: &str,
) -> Check {
    let bound =
        |v: &Option<appmodel_model::types::Scalar>| v.as_ref().and_then(|v| measure.read(v));
    let (warn, fail) = (bound(&min.warn), bound(&min.fail));
    let needed = match (&warn, &fail) {
        (Some(w), Some(f)) => format!("at least {}, {} to run without a warning", show(f), show(w)),
        (None, Some(f)) => format!("at least {}", show(f)),
        (Some(w), None) => format!("{} to run without a warning", show(w)),
        (None, None) => "nothing".into(),
    };
    let Some(found) = found else {
        let mut c = Check::new(
            name,
            Verdict::Warn,
            "cannot be read on this host".into(),
            needed,
        );
        c.fix = Some(format!("check it by hand: {fix}"));
        c.strict = min.strict;
        return c;
    };
    let result = if fail.as_ref().is_some_and(|f| &found < f) {
        Verdict::Fail
    } else if warn.as_ref().is_some_and(|w| &found < w) {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let mut c = Check::new(name, result, show(&found), needed).fix(fix);
    c.strict = min.strict;
    c
}

fn requirement<'a>(
    i: &'a Inputs<'_>,
    pick: fn(&appmodel_model::types::Requirements) -> &Option<Minimum>,
) -> Option<&'a Minimum> {
    i.record
        .model
        .requirements
        .as_ref()
        .and_then(|r| pick(r).as_ref())
}

fn cpus(i: &Inputs<'_>) -> Option<Check> {
    let min = requirement(i, |r| &r.cpus)?;
    let found = std::thread::available_parallelism()
        .ok()
        .map(|n| vec![n.get() as u64]);
    Some(minimum(
        "cpus",
        min,
        Measure::Count,
        found,
        |n| format!("{} cores", n[0]),
        "give the host (or its VM, or its cgroup) more CPU cores",
    ))
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total() -> Option<u64> {
    let path = crate::fault::host_root().join("proc/meminfo");
    let text =
        appmodel_model::input::read_capped(std::fs::File::open(path).ok()?, 64 << 10).ok()?;
    let text = String::from_utf8(text).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

fn memory(i: &Inputs<'_>) -> Option<Check> {
    let min = requirement(i, |r| &r.memory)?;
    Some(minimum(
        "memory",
        min,
        Measure::Bytes,
        mem_total().map(|b| vec![b]),
        |n| human_bytes(n[0]),
        "give the host more memory",
    ))
}

fn kernel(i: &Inputs<'_>) -> Option<Check> {
    let min = requirement(i, |r| &r.kernel)?;
    let path = crate::fault::host_root().join("proc/sys/kernel/osrelease");
    let release = std::fs::File::open(path)
        .ok()
        .and_then(|f| appmodel_model::input::read_capped(f, 4096).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.trim().to_string());
    let found = release
        .as_deref()
        .and_then(appmodel_model::types::version_parts);
    let mut c = minimum(
        "kernel",
        min,
        Measure::Version,
        found,
        |n| n.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        "run the app on a host with a newer kernel",
    );
    if let Some(r) = release {
        c.found = r;
    }
    Some(c)
}

/// A version minimum against what answers (`Docker 20.10.24`).
fn version_of(name: &str, min: &Minimum, found: Option<&(String, String)>, fix: &str) -> Check {
    let parts = found.and_then(|(_, v)| appmodel_model::types::version_parts(v));
    let mut c = minimum(
        name,
        min,
        Measure::Version,
        parts,
        |n| n.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        fix,
    );
    if let Some((what, v)) = found {
        c.found = format!("{what} {v}");
    }
    c
}

fn engine(i: &Inputs<'_>) -> Option<Check> {
    let min = requirement(i, |r| &r.engine)?;
    Some(version_of(
        "engine",
        min,
        i.versions.engine.as_ref(),
        "upgrade the engine (Docker, Podman, systemd or Helm) the form runs on",
    ))
}

fn compose(i: &Inputs<'_>) -> Option<Check> {
    let min = requirement(i, |r| &r.compose)?;
    // A compose tool is what the compose form runs on; other forms have none.
    if i.form != Form::Compose {
        return None;
    }
    Some(version_of(
        "compose",
        min,
        i.versions.compose.as_ref(),
        "install a newer compose tool (`docker compose` v2 is preferred)",
    ))
}

/// What the version takes where the engine keeps its data: its artifacts (every blob of the
/// record, an upper bound) and the sizes its data volumes declare.
fn version_bytes(record: &VersionRecord) -> u64 {
    let volumes: u64 = record
        .model
        .components
        .iter()
        .flat_map(|c| c.volumes.iter())
        .filter(|v| v.kind == appmodel_model::types::VolumeKind::Data)
        .filter_map(|v| {
            v.size
                .as_deref()
                .and_then(appmodel_model::units::parse_quantity)
        })
        .sum();
    volumes.saturating_add(record.unique_bytes())
}

/// Free disk where the engine keeps its data: the model's minimum on top of what the
/// version itself takes (or that alone, when the model says nothing but its volumes have
/// sizes).
fn disk(i: &Inputs<'_>) -> Option<Check> {
    // A release engine's data lives on the cluster's volumes.
    if !i.runs_here {
        return None;
    }
    let need = version_bytes(i.record);
    let declared = requirement(i, |r| &r.disk);
    if declared.is_none() && need == 0 {
        return None;
    }
    let plus = |v: &Option<appmodel_model::types::Scalar>| {
        v.as_ref()
            .and_then(|v| Measure::Bytes.read(v))
            .map(|b| appmodel_model::types::Scalar::Int(b[0].saturating_add(need).min(i64::MAX as u64) as i64))
    };
    let min = match declared {
        Some(m) => Minimum {
            warn: plus(&m.warn),
            fail: plus(&m.fail),
            strict: m.strict,
        },
        None => Minimum {
            warn: None,
            fail: Some(appmodel_model::types::Scalar::Int(
                need.min(i64::MAX as u64) as i64,
            )),
            strict: false,
        },
    };
    let min = &min;
    let (at, free) = match &i.data_root {
        Some(root) => match crate::host::free_at(root) {
            Some((p, free)) => (p.display().to_string(), Some(vec![free])),
            None => (root.display().to_string(), None),
        },
        None => ("-".into(), None),
    };
    let mut c = minimum(
        "disk",
        min,
        Measure::Bytes,
        free,
        |n| format!("{} free", human_bytes(n[0])),
        "free space on the filesystem where the engine keeps its data",
    );
    c.found = format!("{} at `{at}`", c.found);
    c.needed = format!(
        "{} (with {} for the version's artifacts and data volumes)",
        c.needed,
        human_bytes(need)
    );
    Some(c)
}

fn host(i: &Inputs<'_>) -> Option<Check> {
    let problems = i.engine_problems.as_ref()?;
    let (result, found) = if problems.is_empty() {
        (
            Verdict::Pass,
            "the engine answers; ports and room are free".to_string(),
        )
    } else {
        (Verdict::Fail, problems.join("; "))
    };
    Some(
        Check::new(
            "host",
            result,
            found,
            format!("what the {} form needs of the host", i.form),
        )
        .fix("mend each problem found")
        // The change cannot go ahead on a host its engine refuses.
        .strict(),
    )
}

/// A vendor check's text with the site's values in it.
fn rendered(i: &Inputs<'_>, text: &str) -> Result<String, String> {
    render_for_target(
        &i.record.model,
        text,
        &|c: &Component| c.name.clone(),
        &|p: &str| i.params.get(p).map(|v| v.to_string()),
        &|s: &str| s.to_string(),
    )
    .map_err(|e| e.message)
}

fn vendor_check(i: &Inputs<'_>, c: &VendorCheck) -> Check {
    let failed = match c.severity {
        Severity::Warn => Verdict::Warn,
        Severity::Fail => Verdict::Fail,
    };
    let (needed, found, ok) = if let Some(file) = &c.file {
        match rendered(i, file) {
            Ok(path) => {
                let there = std::fs::symlink_metadata(&path).is_ok();
                (
                    format!("`{path}` on the host"),
                    if there {
                        "it is there".into()
                    } else {
                        "it is not there".into()
                    },
                    there,
                )
            }
            Err(e) => ("a file".into(), e, false),
        }
    } else {
        let target = c.tcp.as_deref().unwrap_or_default();
        match rendered(i, target) {
            Ok(addr) => {
                let (found, ok) = tcp_answers(&addr);
                (format!("`{addr}` to accept a TCP connection"), found, ok)
            }
            Err(e) => ("a TCP service".into(), e, false),
        }
    };
    let mut check = Check::new(
        &c.name,
        if ok { Verdict::Pass } else { failed },
        found,
        match &c.description {
            Some(d) => format!("{needed}: {d}"),
            None => needed,
        },
    );
    if !ok {
        check.fix = c.fix.clone();
    }
    check.strict = c.strict;
    check
}

/// Whether `HOST:PORT` accepts a connection within 3 s, trying the first 4 addresses it
/// resolves to (so a name with many addresses cannot hold preflight for long).
fn tcp_answers(addr: &str) -> (String, bool) {
    let addrs: Vec<_> = match addr.to_socket_addrs() {
        Ok(a) => a.take(4).collect(),
        Err(e) => return (format!("the name does not resolve ({e})"), false),
    };
    let mut last = String::from("no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)) {
            Ok(_) => return (format!("{a} accepted a connection"), true),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    (last, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(requirements: &str, platforms: &str) -> VersionRecord {
        let text = format!(
            "apiVersion: appmodel/v1\napp: {{name: a, version: 1.0.0, platforms: [{platforms}]}}\ncomponents:\n  - {{name: c, image: {{registry: r.example/c:1}}}}\nrequirements:\n{requirements}"
        );
        let loaded = appmodel_model::parse_model("m.yaml".into(), text.clone());
        let model = match loaded {
            Ok(l) => l.model,
            Err(e) => panic!("{e:?}"),
        };
        VersionRecord::unpublished("m.yaml", text, model)
    }

    fn inputs<'a>(r: &'a VersionRecord, params: &'a Params) -> Inputs<'a> {
        Inputs {
            record: r,
            form: Form::Compose,
            params,
            licence: None,
            unsigned: false,
            data_root: Some(std::env::temp_dir()),
            runs_here: true,
            untrusted: None,
            versions: crate::target::EngineVersions {
                engine: Some(("Docker".into(), "20.10.24+dfsg1".into())),
                compose: Some(("docker compose".into(), "2.40.3".into())),
            },
            engine_problems: Some(Vec::new()),
        }
    }

    fn verdict(checks: &[Check], name: &str) -> Verdict {
        checks.iter().find(|c| c.name == name).unwrap().result
    }

    #[test]
    fn a_platform_the_host_lacks_fails_and_cannot_be_ignored() {
        let r = record("  cpus: {fail: 1}\n", "linux/riscv64");
        let p = Params::new();
        let checks = run(&inputs(&r, &p), &[]).unwrap();
        assert_eq!(verdict(&checks, "architecture"), Verdict::Fail);
        let e = run(&inputs(&r, &p), &["architecture".into()]).unwrap_err();
        assert!(e.to_string().contains("is strict"), "{e}");
        let e = run(&inputs(&r, &p), &["nope".into()]).unwrap_err();
        assert!(e.to_string().contains("names no check"), "{e}");
    }

    #[test]
    fn minimums_pass_warn_and_fail_against_this_host() {
        let p = Params::new();
        let host = appmodel_model::bundle::host_platform();
        for (req, name, expected) in [
            ("  cpus: {fail: 1}\n", "cpus", Verdict::Pass),
            ("  cpus: {warn: 100000, fail: 1}\n", "cpus", Verdict::Warn),
            ("  cpus: {fail: 100000}\n", "cpus", Verdict::Fail),
            ("  memory: {fail: 1Mi}\n", "memory", Verdict::Pass),
            ("  memory: {warn: 1000Ti}\n", "memory", Verdict::Warn),
            ("  memory: {fail: 1000Ti}\n", "memory", Verdict::Fail),
            ("  kernel: {fail: '2.6'}\n", "kernel", Verdict::Pass),
            ("  kernel: {warn: '999.1'}\n", "kernel", Verdict::Warn),
            ("  kernel: {fail: '999.1'}\n", "kernel", Verdict::Fail),
            ("  disk: {fail: 1Ki}\n", "disk", Verdict::Pass),
            ("  engine: {fail: '20.10'}\n", "engine", Verdict::Pass),
            (
                "  engine: {warn: '24.0', fail: '20.10'}\n",
                "engine",
                Verdict::Warn,
            ),
            ("  engine: {fail: '20.10.25'}\n", "engine", Verdict::Fail),
            ("  compose: {fail: '2.20'}\n", "compose", Verdict::Pass),
            ("  compose: {fail: '2.41'}\n", "compose", Verdict::Fail),
            ("  disk: {fail: 1000Ti}\n", "disk", Verdict::Fail),
        ] {
            let r = record(req, &host);
            let checks = run(&inputs(&r, &p), &[]).unwrap();
            assert_eq!(verdict(&checks, name), expected, "{req}: {checks:?}");
        }
        // A failure waived is recorded as ignored, not as passed.
        let r = record("  cpus: {fail: 100000}\n", &host);
        let checks = run(&inputs(&r, &p), &["cpus".into()]).unwrap();
        assert_eq!(verdict(&checks, "cpus"), Verdict::Ignored);
        let r = record("  cpus: {fail: 100000, strict: true}\n", &host);
        assert!(run(&inputs(&r, &p), &["cpus".into()]).is_err());
    }

    #[test]
    fn the_data_volumes_sizes_count_against_the_free_disk() {
        let host = appmodel_model::bundle::host_platform();
        let text = format!(
            "apiVersion: appmodel/v1\napp: {{name: a, version: 1.0.0, platforms: [{host}]}}\ncomponents:\n  - name: c\n    image: {{registry: r.example/c:1}}\n    volumes: [{{name: d, kind: data, path: /d, size: 1000Ti}}]\n"
        );
        let model = appmodel_model::parse_model("m.yaml".into(), text.clone())
            .unwrap()
            .model;
        let r = VersionRecord::unpublished("m.yaml", text, model);
        let p = Params::new();
        let checks = run(&inputs(&r, &p), &[]).unwrap();
        let disk = checks.iter().find(|c| c.name == "disk").unwrap();
        assert_eq!(disk.result, Verdict::Fail, "{disk:?}");
        assert!(
            disk.needed
                .contains("for the version's artifacts and data volumes"),
            "{disk:?}"
        );
    }

    #[test]
    fn vendor_checks_see_the_host_and_the_network() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let host = appmodel_model::bundle::host_platform();
        let r = record(
            &format!("  checks:\n    - {{name: up, tcp: '127.0.0.1:{open}'}}\n    - {{name: down, tcp: '127.0.0.1:{closed}', fix: start it}}\n    - {{name: soft, tcp: '127.0.0.1:{closed}', severity: warn}}\n    - {{name: here, file: /proc/self}}\n    - {{name: gone, file: /nonexistent/x}}\n"),
            &host,
        );
        let p = Params::new();
        let checks = run(&inputs(&r, &p), &[]).unwrap();
        assert_eq!(verdict(&checks, "up"), Verdict::Pass);
        assert_eq!(verdict(&checks, "down"), Verdict::Fail);
        assert_eq!(verdict(&checks, "soft"), Verdict::Warn);
        assert_eq!(verdict(&checks, "here"), Verdict::Pass);
        assert_eq!(verdict(&checks, "gone"), Verdict::Fail);
        let down = checks.iter().find(|c| c.name == "down").unwrap();
        assert_eq!(down.fix.as_deref(), Some("start it"));
        // Cheapest first: the built-in checks, the files, then the network.
        let order: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "signature",
                "architecture",
                "host",
                "here",
                "gone",
                "up",
                "down",
                "soft"
            ]
        );
        drop(listener);
    }
}
