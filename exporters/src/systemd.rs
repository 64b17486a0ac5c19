//! The systemd form: one hardened service unit per component plus `<app>.target`, for hosts
//! without a container runtime. The components' static binaries travel as blobs.
//!
//! On site the importer lays each version out as a release
//! (`/opt/appmodel/<app>/releases/<version>/{bin,env,config}`) and switches the `current`
//! symlink; the units only ever name paths under `current`, so they are the same on every
//! site. Everything site-specific is rendered at install into an `EnvironmentFile`:
//! the component's env (parameters filled in, other components reached on 127.0.0.1 and their
//! declared port) and a `PARAM_<name>` variable for each parameter the arguments use, which
//! `ExecStart` refers to as `${PARAM_<name>}`. Parameters therefore stay symbolic in the bundle.
//!
//! Data volumes are `StateDirectory=<app>/<component>-<volume>` (a dynamic user owns them),
//! bind-mounted at the path the model declares, so a program sees the same paths as in its
//! container image and its env needs no rewriting. Config files are bind-mounted read-only.

use std::fmt::Write as _;

use appmodel_model::expr::render_for_target;
use appmodel_model::layout::systemd::secret_group as systemd_secret_group;
use appmodel_model::record::VersionRecord;
use appmodel_model::types::{AppModel, Component, VolumeKind};

use crate::forms::{FormExporter, Needs, Ships};
use crate::ExportError;

// The form's layout and names are the bundle contract, shared with the importer.
pub use appmodel_model::layout::param_var;
pub use appmodel_model::layout::systemd::{
    binary_path, config_file_path, env_file_path, service_name, state_dir, target_name, HOST,
    MARKER, OPT_ROOT, UNIT_DIR,
};

/// Hardening every unit gets. `PrivateUsers=` is left out on purpose: it cannot be set up
/// inside a container host (no user namespaces), and it would void `CAP_NET_BIND_SERVICE`.
const HARDENING: &[&str] = &[
    "DynamicUser=yes",
    "UMask=0077",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "DevicePolicy=closed",
    "NoNewPrivileges=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "KeyringMode=private",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
];

/// Escapes text for a unit file value: `%` specifiers and `$` expansion off.
fn unit_literal(s: &str) -> String {
    s.replace('%', "%%").replace('$', "$$")
}

/// One `ExecStart=` word, quoted when it has to be.
fn exec_word(word: &str) -> String {
    if !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return word.to_string();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders an argument: literals escaped, components on 127.0.0.1, parameters as
/// `${PARAM_<name>}` from the environment file.
fn render_arg(model: &AppModel, c: &Component, text: &str) -> Result<String, ExportError> {
    render_for_target(
        model,
        text,
        &|_: &Component| HOST.to_string(),
        &|p: &str| Some(format!("${{{}}}", param_var(p))),
        &unit_literal,
    )
    .map(|s| exec_word(&s))
    .map_err(|e| ExportError::Render(format!("argument of `{}`: {}", c.name, e.message)))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The unit of one component.
pub fn service_unit(model: &AppModel, c: &Component) -> Result<String, ExportError> {
    let app = &model.app.name;
    let mut u = String::new();
    let w = &mut u;
    // Writing to a String cannot fail.
    let _ = writeln!(w, "{MARKER} {app}");
    let _ = writeln!(
        w,
        "# {app} {}: component `{}`, written by appmodel. Paths name the `current` release;\n\
         # the environment file is rendered at install from the site configuration.",
        model.app.version, c.name
    );
    let _ = writeln!(w, "[Unit]");
    let desc = match &c.description {
        Some(d) => format!("{app} {}: {}", c.name, one_line(d)),
        None => format!("{app} {}", c.name),
    };
    let _ = writeln!(w, "Description={}", unit_literal(&desc));
    let _ = writeln!(w, "PartOf={}", target_name(app));
    let mut after = vec!["network.target".to_string()];
    after.extend(c.depends_on.iter().map(|d| service_name(app, d)));
    let _ = writeln!(w, "After={}", after.join(" "));
    if !c.depends_on.is_empty() {
        let deps: Vec<String> = c.depends_on.iter().map(|d| service_name(app, d)).collect();
        let _ = writeln!(w, "Requires={}", deps.join(" "));
    }

    let _ = writeln!(w, "\n[Service]");
    let _ = writeln!(w, "Type=exec");
    let mut exec = vec![binary_path(app, c)];
    // `command[0]` names the program inside an image; here the component's binary runs.
    for a in c.command.iter().skip(1).chain(c.args.iter()) {
        exec.push(render_arg(model, c, a)?);
    }
    let _ = writeln!(w, "ExecStart={}", exec.join(" "));
    let _ = writeln!(w, "EnvironmentFile={}", env_file_path(app, &c.name));
    let _ = writeln!(w, "Restart=on-failure");
    let _ = writeln!(w, "RestartSec=1s");
    let _ = writeln!(w, "TimeoutStopSec=30s");
    for h in HARDENING {
        let _ = writeln!(w, "{h}");
    }
    if c.ports.iter().any(|p| p.port < 1024) {
        let _ = writeln!(w, "CapabilityBoundingSet=CAP_NET_BIND_SERVICE");
        let _ = writeln!(w, "AmbientCapabilities=CAP_NET_BIND_SERVICE");
    } else {
        let _ = writeln!(w, "CapabilityBoundingSet=");
        let _ = writeln!(w, "AmbientCapabilities=");
    }
    let data: Vec<_> = c
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeKind::Data)
        .collect();
    if !data.is_empty() {
        let dirs: Vec<String> = data
            .iter()
            .map(|v| state_dir(app, &c.name, &v.name))
            .collect();
        let _ = writeln!(w, "StateDirectory={}", dirs.join(" "));
        let _ = writeln!(w, "StateDirectoryMode=0700");
        for v in &data {
            let dir = format!("/var/lib/{}", state_dir(app, &c.name, &v.name));
            if v.path.trim_end_matches('/') != dir {
                let _ = writeln!(
                    w,
                    "BindPaths=%S/{}:{}",
                    state_dir(app, &c.name, &v.name),
                    unit_literal(&v.path)
                );
            }
        }
    }
    if model.config_holds_secret(c) {
        // The config file is 0640 root:<group>; the dynamic user reads it through the group.
        let _ = writeln!(
            w,
            "SupplementaryGroups={}",
            systemd_secret_group(app, &c.name)
        );
    }
    for v in c.volumes.iter().filter(|v| v.kind == VolumeKind::Config) {
        let _ = writeln!(
            w,
            "BindReadOnlyPaths={}:{}",
            config_file_path(app, &c.name, &v.name),
            unit_literal(&v.path)
        );
    }
    if let Some(r) = &c.resources {
        if let Some(cpu) = r.cpu {
            let _ = writeln!(w, "CPUQuota={}%", (cpu * 100.0).round() as u64);
        }
        if let Some(mem) = r.memory.as_deref() {
            if let Some(bytes) = appmodel_model::units::parse_quantity(mem) {
                let _ = writeln!(w, "MemoryMax={bytes}");
            }
        }
    }

    let _ = writeln!(w, "\n[Install]");
    let _ = writeln!(w, "WantedBy={}", target_name(app));
    Ok(u)
}

/// `<app>.target`: wants every service, so the whole app starts at boot once enabled.
pub fn target_unit(model: &AppModel) -> String {
    let app = &model.app.name;
    let services: Vec<String> = model
        .components
        .iter()
        .map(|c| service_name(app, &c.name))
        .collect();
    format!(
        "{MARKER} {app}\n\
         # {app} {}: the app's services, written by appmodel.\n\
         [Unit]\n\
         Description={}\n\
         Wants={}\n\
         After={}\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        model.app.version,
        unit_literal(&format!("{app} {} (appmodel)", model.app.version)),
        services.join(" "),
        services.join(" "),
    )
}

/// Every unit of the form: (file name, text), the target last.
pub fn units(model: &AppModel) -> Result<Vec<(String, String)>, ExportError> {
    let mut out = Vec::new();
    for c in &model.components {
        out.push((
            service_name(&model.app.name, &c.name),
            service_unit(model, c)?,
        ));
    }
    out.push((target_name(&model.app.name), target_unit(model)));
    Ok(out)
}

/// The systemd form in the form table ([`crate::forms::FORMS`]).
pub struct Systemd;

impl FormExporter for Systemd {
    fn ships(&self) -> Ships {
        Ships::Binaries
    }

    /// The units; the binaries travel as blobs and are laid out at install.
    fn files(
        &self,
        record: &VersionRecord,
        _needs: &Needs<'_>,
    ) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
        unit_files(record)
    }

    fn readme_files(&self) -> &'static str {
        "systemd/ (the units and the app's target)."
    }
}

/// The bundle files of the form: `systemd/<unit>`.
pub fn unit_files(record: &VersionRecord) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    Ok(units(&record.model)?
        .into_iter()
        .map(|(name, text)| (format!("{UNIT_DIR}/{name}"), text.into_bytes()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn sample(version: &str) -> AppModel {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = root.join(format!("samples/im-stack/versions/{version}/appmodel.yaml"));
        let text = std::fs::read_to_string(&file).unwrap();
        appmodel_model::parse_model(file, text).unwrap().model
    }

    fn tool(name: &str) -> bool {
        let ok = Command::new(name).arg("--version").output().is_ok();
        if !ok {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("`{name}` is required under CI=true");
            }
            eprintln!("SKIPPED: `{name}` is not installed");
            // Counted by scripts/test.sh, as the end-to-end tests' skips are.
            if let Some(log) = std::env::var_os("APPMODEL_SKIP_LOG") {
                use std::io::Write;
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(log);
                let _ = f.and_then(|mut f| writeln!(f, "exporters systemd: `{name}`"));
            }
        }
        ok
    }

    /// Writes the units into `root/etc/systemd/system` and an executable at every binary path.
    fn install(root: &Path, model: &AppModel) -> Vec<PathBuf> {
        let unit_dir = root.join("etc/systemd/system");
        std::fs::create_dir_all(&unit_dir).unwrap();
        let mut files = Vec::new();
        for (name, text) in units(model).unwrap() {
            let p = unit_dir.join(&name);
            std::fs::write(&p, text).unwrap();
            files.push(p);
        }
        for c in &model.components {
            let bin = root.join(binary_path(&model.app.name, c).trim_start_matches('/'));
            std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
            std::fs::write(&bin, "#!/bin/sh\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        files
    }

    #[test]
    fn the_sample_units() {
        let model = sample("1.1.0");
        let all: String = units(&model)
            .unwrap()
            .into_iter()
            .map(|(name, text)| format!("=== {name}\n{text}"))
            .collect();
        insta::assert_snapshot!(all);
    }

    #[test]
    fn every_sample_unit_passes_systemd_analyze_verify() {
        if !tool("systemd-analyze") {
            return;
        }
        for version in ["1.0.0", "1.1.0"] {
            let dir = tempfile::tempdir().unwrap();
            let files = install(dir.path(), &sample(version));
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(format!("--root={}", dir.path().display()))
                .arg("--man=no")
                .arg("--recursive-errors=no")
                .args(&files)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{version}: {stderr}");
            assert!(stderr.trim().is_empty(), "{version}: {stderr}");
        }
    }

    /// `systemd-analyze security --offline=yes` rates every sample unit 2.5 or better.
    #[test]
    fn every_sample_service_is_exposed_at_most_2_5() {
        if !tool("systemd-analyze") {
            return;
        }
        let model = sample("1.1.0");
        let dir = tempfile::tempdir().unwrap();
        let files = install(dir.path(), &model);
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "service"))
        {
            let out = Command::new("systemd-analyze")
                .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
                .arg(format!("--root={}", dir.path().display()))
                .arg(f)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let exposure: f64 = text
                .lines()
                .find_map(|l| l.split("Overall exposure level for ").nth(1))
                .and_then(|l| l.split(": ").nth(1))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: {text}{}",
                        f.display(),
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            eprintln!("{}: exposure {exposure}", f.display());
            assert!(
                exposure <= 2.5,
                "{}: exposure {exposure}\n{text}",
                f.display()
            );
            assert!(out.status.success(), "{}: {text}", f.display());
        }
    }

    #[test]
    fn arguments_keep_parameters_symbolic_and_escape_literals() {
        let mut model = sample("1.1.0");
        let c = &mut model.components[0];
        c.args = vec![
            "--domain=${params.domain}".into(),
            "100%".into(),
            "a b".into(),
            "$HOME".into(),
            "--store=${components.im-store.url}".into(),
        ];
        let c = model.components[0].clone();
        let unit = service_unit(&model, &c).unwrap();
        let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert_eq!(
            exec,
            "ExecStart=/opt/appmodel/im-stack/current/bin/im-store/im-store --domain=${PARAM_domain} 100%% \"a b\" $$HOME --store=http://127.0.0.1:7070"
        );
        assert_eq!(c.params_in_args(), ["domain"]);
    }

    #[test]
    fn a_low_port_gets_only_the_bind_capability() {
        let mut model = sample("1.1.0");
        model.components[2].ports[0].port = 443;
        let c = model.components[2].clone();
        let unit = service_unit(&model, &c).unwrap();
        assert!(unit.contains("\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
        let c = model.components[0].clone();
        let unit = service_unit(&model, &c).unwrap();
        assert!(unit.contains("\nCapabilityBoundingSet=\nAmbientCapabilities=\n"));
    }

    #[test]
    fn a_config_file_with_a_secret_is_read_through_the_components_group() {
        let mut model = sample("1.1.0");
        let i = model
            .components
            .iter()
            .position(|c| c.name == "im-server")
            .unwrap();
        let volume = |content: &str| appmodel_model::types::Volume {
            name: "gateway".into(),
            kind: VolumeKind::Config,
            path: "/etc/im/gateway.conf".into(),
            content: Some(content.into()),
            size: None,
        };
        model.components[i].volumes = vec![volume("domain=${params.domain}\n")];
        let plain = service_unit(&model, &model.components[i]).unwrap();
        assert!(!plain.contains("SupplementaryGroups="), "{plain}");
        model.components[i].volumes = vec![volume("key=${params.admin_secret}\n")];
        let unit = service_unit(&model, &model.components[i]).unwrap();
        assert!(
            unit.contains("\nSupplementaryGroups=appmodel-im-stack-im-server\nBindReadOnlyPaths="),
            "{unit}"
        );
    }

    #[test]
    fn a_binary_keeps_its_file_name_so_a_multi_call_program_finds_itself() {
        let mut model = sample("1.1.0");
        let c = &mut model.components[0];
        c.binaries = [("linux/amd64".to_string(), "../bin/busybox".to_string())].into();
        let c = model.components[0].clone();
        let unit = service_unit(&model, &c).unwrap();
        assert!(
            unit.contains(&format!(
                "\nExecStart=/opt/appmodel/im-stack/current/bin/{}/busybox",
                c.name
            )),
            "{unit}"
        );
        let mut odd = c.clone();
        odd.binaries = [("linux/amd64".to_string(), "../bin/a b".to_string())].into();
        assert_eq!(odd.binary_file_name(), c.name);
    }
}
