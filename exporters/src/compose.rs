//! The docker-compose form: a Compose Specification project (accepted by `docker compose`
//! v2 and `docker-compose` v1 >= 1.27) plus a `docker load`-able image archive layout.
//!
//! Connection info is resolved for compose (service names on the project network, declared
//! ports). Parameters stay symbolic as `${PARAM_<name>}` and are filled in at install from
//! the site's configuration through a generated `.env`, so one bundle serves every site.
//! Health checks run `appmodel probe` inside the container: the static appmodel from the
//! bundle is mounted read-only at `/.appmodel/appmodel`, so images need no shell or curl.

use serde_json::{json, Map, Value};

use appmodel_model::expr::render_for_target;
use appmodel_model::record::VersionRecord;
use appmodel_model::types::{AppModel, Component, HealthCheck, Protocol, VolumeKind};

use crate::forms::{FormExporter, ImageProcess, Needs, Ships};
use crate::plan::json_bytes;
use crate::yaml_out::to_yaml;
use crate::ExportError;

// The form's layout and names are the bundle contract, shared with the importer.
pub use appmodel_model::layout::compose::{
    config_file_path, image_name, volume_name, COMPOSE_FILE, DOCKER_MANIFEST, ENV_EXAMPLE,
    GATE_IN_CONTAINER, GATE_VAR, TOOL_IN_CONTAINER, TOOL_VAR,
};
pub use appmodel_model::layout::param_var;

/// The compose form in the form table ([`crate::forms::FORMS`]).
pub struct Compose;

impl FormExporter for Compose {
    fn ships(&self) -> Ships {
        Ships::Images
    }

    /// The compose project, its variables, and the docker-archive manifest for `docker load`.
    fn files(
        &self,
        record: &VersionRecord,
        needs: &Needs<'_>,
    ) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
        let mut names = std::collections::BTreeMap::new();
        let mut processes = std::collections::BTreeMap::new();
        let mut docker = Vec::new();
        // Every platform's images are in the archive manifest, each entry naming its
        // platform; the site loads its own. A component's name is the same on every
        // platform (its index's digest when it has more than one), so one compose file
        // serves them all.
        let platforms = record.model.app.platforms();
        let first = platforms.first().cloned().unwrap_or_default();
        let multi = platforms.len() > 1;
        for (component, p, img) in &needs.images {
            let id = needs
                .indexes
                .get(component)
                .map_or(&img.manifest.digest, |i| &i.digest);
            let name = image_name(&record.app, component, &record.version, id.hex());
            let mut entry = json!({
                "Config": format!("blobs/sha256/{}", img.config.digest.hex()),
                "RepoTags": [name],
                "Layers": img.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
            });
            if multi {
                entry["Platform"] = json!(p);
            }
            docker.push(entry);
            if *p != first {
                continue;
            }
            names.insert(component.to_string(), name);
            if let Some(p) = needs.processes.get(&img.config.digest) {
                processes.insert(component.to_string(), p.clone());
            }
        }
        Ok(vec![
            (
                COMPOSE_FILE.to_string(),
                compose_file(record, &names, &processes)?.into_bytes(),
            ),
            (ENV_EXAMPLE.to_string(), env_example(record).into_bytes()),
            (DOCKER_MANIFEST.to_string(), json_bytes(&docker)),
        ])
    }

    fn readme_files(&self) -> &'static str {
        "compose/ (the docker-compose project), oci-layout, index.json and\n\
         manifest.json: the images, also loadable by hand with\n\
         `tar -c manifest.json oci-layout index.json blobs | docker load`."
    }
}

fn escape_dollars(s: &str) -> String {
    s.replace('$', "$$")
}

/// Renders a model string for compose: literal `$` escaped, parameters as variables.
fn render(model: &AppModel, text: &str) -> Result<String, ExportError> {
    render_for_target(
        model,
        text,
        &|c: &Component| c.name.clone(),
        &|p: &str| Some(format!("${{{}}}", param_var(p))),
        &escape_dollars,
    )
    .map_err(|e| ExportError::Render(e.message))
}

fn health(c: &Component, h: &HealthCheck) -> Value {
    let port_of = |name: &str| c.port(name).map(|p| p.port).unwrap_or_default();
    let test: Vec<String> = if let Some(http) = &h.http {
        vec![
            "CMD".into(),
            TOOL_IN_CONTAINER.into(),
            "probe".into(),
            format!("http://127.0.0.1:{}{}", port_of(&http.port), http.path),
        ]
    } else if let Some(tcp) = &h.tcp {
        vec![
            "CMD".into(),
            TOOL_IN_CONTAINER.into(),
            "probe".into(),
            format!("tcp://127.0.0.1:{}", port_of(&tcp.port)),
        ]
    } else if let Some(exec) = &h.exec {
        std::iter::once("CMD".to_string())
            .chain(exec.command.iter().cloned())
            .collect()
    } else {
        vec!["NONE".into()]
    };
    let mut m = Map::new();
    m.insert("test".into(), json!(test));
    m.insert("interval".into(), json!(h.interval_or_default()));
    m.insert("timeout".into(), json!(h.timeout_or_default()));
    m.insert("retries".into(), json!(h.retries_or_default()));
    m.insert("start_period".into(), json!(h.start_period_or_default()));
    Value::Object(m)
}

/// A service's `entrypoint` and `command`, each when set.
type ServiceProcess = (Option<Vec<String>>, Option<Vec<String>>);

/// The entrypoint and command of a component's service. A licensed app's components start
/// behind the licence gate (`appmodel license gate -- COMMAND…`, docs/licence.md): setting
/// the entrypoint clears the image's own command in compose, so both are given whole, from
/// the model or else from the image.
fn process(
    model: &AppModel,
    c: &Component,
    image: Option<&ImageProcess>,
) -> Result<ServiceProcess, ExportError> {
    let rendered = |list: &[String]| -> Result<Vec<String>, ExportError> {
        list.iter().map(|a| render(model, a)).collect()
    };
    let command = (!c.command.is_empty())
        .then(|| rendered(&c.command))
        .transpose()?;
    let args = (!c.args.is_empty())
        .then(|| rendered(&c.args))
        .transpose()?;
    if model.licence.is_none() {
        return Ok((command, args));
    }
    let image = image.cloned().unwrap_or_default();
    let (entry, args) = match command {
        Some(command) => (command, args.unwrap_or_default()),
        None => (
            image.entrypoint.iter().map(|a| escape_dollars(a)).collect(),
            args.unwrap_or_else(|| image.cmd.iter().map(|a| escape_dollars(a)).collect()),
        ),
    };
    if entry.is_empty() && args.is_empty() {
        return Err(ExportError::NotExportable {
            component: c.name.clone(),
            form: appmodel_model::bundle::Form::Compose,
            reason: "its image names no command and the model gives none, so the licence gate has nothing to start; set `command`".into(),
        });
    }
    let gate = [TOOL_IN_CONTAINER, "license", "gate", "--"].map(String::from);
    Ok((
        Some(gate.into_iter().chain(entry).collect()),
        (!args.is_empty()).then_some(args),
    ))
}

/// The compose project for `record`. `images` maps component -> local image name, and
/// `processes` component -> what its image runs (used for a licensed app only).
pub fn compose_file(
    record: &VersionRecord,
    images: &std::collections::BTreeMap<String, String>,
    processes: &std::collections::BTreeMap<String, ImageProcess>,
) -> Result<String, ExportError> {
    let model = &record.model;
    let licensed = model.licence.is_some();
    let mut services = Map::new();
    let mut volumes = Map::new();
    for c in &model.components {
        let mut s = Map::new();
        s.insert(
            "image".into(),
            json!(images.get(&c.name).cloned().unwrap_or_default()),
        );
        let (entrypoint, command) = process(model, c, processes.get(&c.name))?;
        if let Some(e) = entrypoint {
            s.insert("entrypoint".into(), json!(e));
        }
        if let Some(a) = command {
            s.insert("command".into(), json!(a));
        }
        if let Some(user) = &c.user {
            s.insert("user".into(), json!(user));
        }
        if !c.env.is_empty() {
            let mut env = Map::new();
            for (k, v) in &c.env {
                env.insert(k.clone(), json!(render(model, &v.to_string())?));
            }
            s.insert("environment".into(), Value::Object(env));
        }
        let ports: Vec<Value> = c
            .ports
            .iter()
            .filter_map(|p| {
                p.published().map(|host| {
                    let proto = if p.protocol() == Protocol::Udp {
                        "/udp"
                    } else {
                        ""
                    };
                    json!(format!("{host}:{}{proto}", p.port))
                })
            })
            .collect();
        if !ports.is_empty() {
            s.insert("ports".into(), json!(ports));
        }
        let mut mounts = Vec::new();
        for v in &c.volumes {
            match v.kind {
                VolumeKind::Data => {
                    let name = volume_name(&c.name, &v.name);
                    volumes.insert(name.clone(), json!({}));
                    mounts.push(json!(format!("{name}:{}", v.path)));
                }
                VolumeKind::Config => mounts.push(json!(format!(
                    "./{}:{}:ro",
                    config_file_path(&c.name, &v.name),
                    v.path
                ))),
            }
        }
        if licensed
            || c.health
                .as_ref()
                .is_some_and(|h| h.http.is_some() || h.tcp.is_some())
        {
            mounts.push(json!(format!("${{{TOOL_VAR}}}:{TOOL_IN_CONTAINER}:ro")));
        }
        if licensed {
            mounts.push(json!(format!("${{{GATE_VAR}}}:{GATE_IN_CONTAINER}:ro")));
        }
        if !mounts.is_empty() {
            s.insert("volumes".into(), json!(mounts));
        }
        if let Some(h) = &c.health {
            s.insert("healthcheck".into(), health(c, h));
        }
        if !c.depends_on.is_empty() {
            let mut deps = Map::new();
            for d in &c.depends_on {
                let healthy = model.component(d).is_some_and(|x| x.health.is_some());
                deps.insert(d.clone(), json!({"condition": if healthy { "service_healthy" } else { "service_started" }}));
            }
            s.insert("depends_on".into(), Value::Object(deps));
        }
        s.insert("restart".into(), json!("unless-stopped"));
        if let Some(r) = &c.resources {
            if let Some(cpu) = r.cpu {
                s.insert("cpus".into(), json!(cpu));
            }
            if let Some(mem) = &r.memory {
                let bytes = appmodel_model::units::parse_quantity(mem).unwrap_or_default();
                s.insert("mem_limit".into(), json!(bytes.to_string()));
            }
        }
        s.insert(
            "labels".into(),
            json!({"dev.appmodel.app": model.app.name, "dev.appmodel.version": model.app.version, "dev.appmodel.component": c.name}),
        );
        services.insert(c.name.clone(), Value::Object(s));
    }
    let mut doc = Map::new();
    doc.insert("services".into(), Value::Object(services));
    if !volumes.is_empty() {
        doc.insert("volumes".into(), Value::Object(volumes));
    }
    let header = format!(
        "# {} {}: docker-compose project written by appmodel.\n\
         # Parameters are ${{PARAM_<name>}} variables; `appmodel install` writes them to .env\n\
         # from the site configuration. Run it with `docker compose` v2 or `docker-compose` v1.\n",
        model.app.name, model.app.version
    );
    Ok(header + &to_yaml(&Value::Object(doc)))
}

/// The `.env` example: every variable, with defaults where the model has them.
pub fn env_example(record: &VersionRecord) -> String {
    let mut out = format!(
        "# Variables of the {} {} compose project. `appmodel install` writes the real .env\n\
         # from the site configuration; this file documents them.\n{TOOL_VAR}=/var/lib/appmodel/bundles/{}/{}/compose/appmodel\n",
        record.app, record.version, record.app, record.version
    );
    if record.model.licence.is_some() {
        out.push_str(&format!(
            "# the licence gate's directory (docs/licence.md), written by appmodel\n{GATE_VAR}=/var/lib/appmodel/deploy/{}/gate\n",
            record.app
        ));
    }
    for p in &record.model.parameters {
        let value = p
            .default
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        if p.generate {
            out.push_str("# generated at install and kept across upgrades\n");
        } else if value.is_empty() {
            out.push_str("# required: set it in the site configuration\n");
        }
        out.push_str(&format!("{}={value}\n", param_var(&p.name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_record(version: &str) -> VersionRecord {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = root.join(format!("samples/im-stack/versions/{version}/appmodel.yaml"));
        let text = std::fs::read_to_string(&file).unwrap();
        let loaded = appmodel_model::parse_model(file, text).unwrap();
        VersionRecord {
            version: appmodel_model::version::Version::parse(version).unwrap(),
            published_by: "test".into(),
            published_at: "2026-01-01T00:00:00Z".into(),
            ..VersionRecord::unpublished("appmodel.yaml", loaded.text, loaded.model)
        }
    }

    /// Every component's image name, all with the same (made-up) manifest digest.
    fn sample_images(
        record: &VersionRecord,
        digest_hex: &str,
    ) -> std::collections::BTreeMap<String, String> {
        record
            .model
            .components
            .iter()
            .map(|c| {
                let name = image_name(&record.app, &c.name, &record.version, digest_hex);
                (c.name.clone(), name)
            })
            .collect()
    }

    #[test]
    fn the_sample_compose_project() {
        let record = sample_record("1.1.0");
        let images = sample_images(&record, &"0".repeat(64));
        let file = compose_file(&record, &images, &Default::default()).unwrap();
        // Our own reader reads it back, and the service graph survives.
        let (node, dups) = appmodel_model::yaml::parse(&file).unwrap();
        assert!(dups.is_empty());
        let json = node.to_json();
        assert_eq!(
            json["services"]["im-server"]["depends_on"]["im-store"]["condition"],
            "service_healthy"
        );
        assert_eq!(
            json["services"]["im-server"]["environment"]["IM_DOMAIN"],
            "${PARAM_domain}"
        );
        insta::assert_snapshot!(file);
        insta::assert_snapshot!("the_sample_env_example", env_example(&record));
    }

    /// An independent implementation of the Compose Specification (the one `docker compose`
    /// v2 reads) accepts the project, with parameters filled in as compose would.
    #[test]
    fn the_compose_specification_accepts_the_sample_project() {
        for version in ["1.0.0", "1.1.0"] {
            let record = sample_record(version);
            let images = sample_images(&record, &"ab".repeat(32));
            let file = compose_file(&record, &images, &Default::default()).unwrap();
            let filled = file
                .replace("${PARAM_max_users}", "100")
                .replace("${PARAM_read_receipts}", "true")
                .replace(
                    "${APPMODEL_TOOL}",
                    "/var/lib/appmodel/bundles/im-stack/1.1.0/compose/appmodel",
                )
                .replace("${PARAM_domain}", "chat.plant.example")
                .replace("${PARAM_admin_secret}", "s3cret");
            let compose = compose_spec::Compose::options()
                .from_yaml_str(&filled)
                .unwrap_or_else(|e| panic!("{version}: {e}\n{filled}"));
            compose.validate_all().unwrap();
            assert_eq!(compose.services.len(), 3);
        }
    }

    /// A licensed app's components start behind the licence gate, with the image's own
    /// command after `--` (compose clears it when the entrypoint is set), and the gate's
    /// directory mounted read-only.
    #[test]
    fn a_licensed_apps_components_start_behind_the_licence_gate() {
        let record = sample_record("1.2.0");
        let images = sample_images(&record, &"cd".repeat(32));
        let process = |entry: &[&str], cmd: &[&str]| ImageProcess {
            entrypoint: entry.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
        };
        let mut processes: std::collections::BTreeMap<String, ImageProcess> = record
            .model
            .components
            .iter()
            .map(|c| (c.name.clone(), process(&[&format!("/{}", c.name)], &[])))
            .collect();
        processes.insert(
            "push-service".into(),
            process(&["/bin/push", "--price=$5"], &["serve"]),
        );
        let file = compose_file(&record, &images, &processes).unwrap();
        let json = appmodel_model::yaml::parse(&file).unwrap().0.to_json();
        let service = |name: &str| json["services"][name].clone();
        assert_eq!(
            service("im-server")["entrypoint"],
            json!(["/.appmodel/appmodel", "license", "gate", "--", "/im-server"])
        );
        assert!(service("im-server").get("command").is_none(), "{file}");
        assert_eq!(
            service("push-service")["entrypoint"],
            json!([
                "/.appmodel/appmodel",
                "license",
                "gate",
                "--",
                "/bin/push",
                "--price=$$5"
            ])
        );
        assert_eq!(service("push-service")["command"], json!(["serve"]));
        for c in &record.model.components {
            let mounts = service(&c.name)["volumes"].clone();
            for m in [
                "${APPMODEL_TOOL}:/.appmodel/appmodel:ro",
                "${APPMODEL_LICENCE_GATE}:/.appmodel/licence:ro",
            ] {
                assert!(
                    mounts.as_array().unwrap().contains(&json!(m)),
                    "{}: {mounts}",
                    c.name
                );
            }
        }
        assert!(env_example(&record)
            .contains("APPMODEL_LICENCE_GATE=/var/lib/appmodel/deploy/im-stack/gate\n"));
        // The Compose Specification accepts it.
        let filled = file
            .replace("${APPMODEL_TOOL}", "/tool")
            .replace("${APPMODEL_LICENCE_GATE}", "/gate")
            .replace("${PARAM_read_receipts}", "true")
            .replace("${PARAM_domain}", "chat.plant.example")
            .replace("${PARAM_admin_secret}", "s3cret");
        compose_spec::Compose::options()
            .from_yaml_str(&filled)
            .unwrap_or_else(|e| panic!("{e}\n{filled}"))
            .validate_all()
            .unwrap();
        // An image that names no command, and a model that gives none: nothing to gate.
        processes.insert("im-store".into(), ImageProcess::default());
        let e = compose_file(&record, &images, &processes).unwrap_err();
        assert!(e.to_string().contains("im-store"), "{e}");
        assert!(e.to_string().contains("set `command`"), "{e}");
        // An unlicensed app keeps the image's command untouched.
        let plain = compose_file(&sample_record("1.1.0"), &images, &processes).unwrap();
        assert!(!plain.contains("license"), "{plain}");
    }

    #[test]
    fn literal_dollars_are_escaped_and_parameters_stay_symbolic() {
        let mut record = sample_record("1.0.0");
        record.model.components[0].env.insert(
            "PRICE".into(),
            appmodel_model::types::Scalar::Str("$5 for $${HOME} at ${params.domain}".into()),
        );
        let file = compose_file(&record, &Default::default(), &Default::default()).unwrap();
        assert!(
            file.contains("PRICE: \"$$5 for $${HOME} at ${PARAM_domain}\""),
            "{file}"
        );
    }
}
