//! The bundle contract: each form's file layout and names, declared once and used by both
//! the exporter that writes a bundle and the importer that installs it (see the "Per-form
//! layout" section of docs/bundle-format.md).

use crate::types::Component;

/// The variable a parameter is passed in (compose `.env`, systemd environment file); a
/// licence entitlement (`licence.NAME`, see [`crate::expr::licence_key`]) is `LICENCE_NAME`.
pub fn param_var(name: &str) -> String {
    match name.strip_prefix("licence.") {
        Some(entitlement) => format!("LICENCE_{entitlement}"),
        None => format!("PARAM_{name}"),
    }
}

/// The compose form.
pub mod compose {
    /// The compose project file inside the bundle.
    pub const COMPOSE_FILE: &str = "compose/docker-compose.yaml";
    /// Its name in the project directory on site.
    pub const PROJECT_FILE: &str = "docker-compose.yaml";
    /// An example `.env`, documenting the variables install fills in.
    pub const ENV_EXAMPLE: &str = "compose/env.example";
    /// The docker-archive manifest that makes the bundle's OCI layout `docker load`-able.
    pub const DOCKER_MANIFEST: &str = "manifest.json";
    /// Where the appmodel executable is mounted in every container (for health probes).
    pub const TOOL_IN_CONTAINER: &str = "/.appmodel/appmodel";
    /// The `.env` variable holding the host path of the appmodel executable.
    pub const TOOL_VAR: &str = "APPMODEL_TOOL";
    /// Where the licence gate's directory (the host's `gate.json`) is mounted, read-only,
    /// in every container of a licensed app.
    pub const GATE_IN_CONTAINER: &str = "/.appmodel/licence";
    /// The `.env` variable holding that directory's host path.
    pub const GATE_VAR: &str = "APPMODEL_LICENCE_GATE";
    /// The registry part of every local image name.
    const IMAGE_HOST: &str = "appmodel.local";

    /// The local image name a component's image is loaded under: unique per content.
    pub fn image_name(app: &str, component: &str, version: &str, manifest_hex: &str) -> String {
        format!(
            "{IMAGE_HOST}/{app}/{component}:{version}-{}",
            &manifest_hex[..12.min(manifest_hex.len())]
        )
    }

    /// The component an image name of [`image_name`] belongs to.
    pub fn image_component(name: &str) -> Option<&str> {
        let rest = name.strip_prefix(IMAGE_HOST)?.strip_prefix('/')?;
        let (_app, rest) = rest.split_once('/')?;
        rest.split(':').next()
    }

    /// The named volume of a data volume, as the project file names it.
    pub fn volume_name(component: &str, volume: &str) -> String {
        format!("{component}-{volume}")
    }

    /// The engine's name for that volume: compose prefixes the project's (the app's).
    pub fn engine_volume_name(app: &str, component: &str, volume: &str) -> String {
        format!("{app}_{}", volume_name(component, volume))
    }

    /// The bind-mount source of a config file, relative to the project directory.
    pub fn config_file_path(component: &str, volume: &str) -> String {
        format!("config/{component}/{volume}")
    }
}

/// The systemd form.
pub mod systemd {
    use super::Component;

    /// The directory of the bundle that holds the units.
    pub const UNIT_DIR: &str = "systemd";
    /// Where releases live on site.
    pub const OPT_ROOT: &str = "/opt/appmodel";
    /// The host every component is reached on.
    pub const HOST: &str = "127.0.0.1";
    /// The first line of every unit appmodel writes, followed by the app's name; the
    /// importer recognises its own units by it.
    pub const MARKER: &str = "# appmodel-app:";

    /// The service unit of a component: `<app>-<component>.service`.
    pub fn service_name(app: &str, component: &str) -> String {
        format!("{app}-{component}.service")
    }

    /// The target grouping the app's services.
    pub fn target_name(app: &str) -> String {
        format!("{app}.target")
    }

    /// The `StateDirectory=` of a data volume, relative to `/var/lib`.
    pub fn state_dir(app: &str, component: &str, volume: &str) -> String {
        format!("{app}/{component}-{volume}")
    }

    /// A component's binary inside a release: `bin/<component>/<file name>`; it keeps its
    /// name (see [`Component::binary_file_name`]); a directory per component keeps equal
    /// names apart.
    pub fn binary_in_release(c: &Component) -> String {
        format!("bin/{}/{}", c.name, c.binary_file_name())
    }

    /// The binary as the units name it, under the `current` release.
    pub fn binary_path(app: &str, c: &Component) -> String {
        format!("{OPT_ROOT}/{app}/current/{}", binary_in_release(c))
    }

    pub fn env_file_path(app: &str, component: &str) -> String {
        format!("{OPT_ROOT}/{app}/current/env/{component}.env")
    }

    pub fn config_file_path(app: &str, component: &str, volume: &str) -> String {
        format!("{OPT_ROOT}/{app}/current/config/{component}/{volume}")
    }

    pub use crate::bundle::systemd_secret_group as secret_group;
}

/// The helm form.
pub mod helm {
    /// Where the chart and its notes sit in the bundle.
    pub const HELM_DIR: &str = "helm";
    /// Install notes for a site, with or without the `helm` program.
    pub const INSTALL_FILE: &str = "helm/INSTALL.txt";
    /// The site's values file: the registry the images were pushed to
    /// (`global.imageRegistry`, which every image reference of the chart starts with) and
    /// the parameters (`params`, checked by the chart's values.schema.json).
    pub fn site_values(
        registry: &str,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Value {
        serde_json::json!({"global": {"imageRegistry": registry}, "params": params})
    }

    /// The packaged chart's path in the bundle: `helm/APP-VERSION.tgz`.
    pub fn chart_path(app: &str, version: &str) -> String {
        format!("{HELM_DIR}/{app}-{version}.tgz")
    }

    /// The repository a component's image is pushed to, below the site's registry.
    pub fn image_repository(app: &str, component: &str) -> String {
        format!("{app}/{component}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_name_says_its_component() {
        let name = compose::image_name("im-stack", "im-server", "1.1.0", &"ab".repeat(32));
        assert_eq!(name, "appmodel.local/im-stack/im-server:1.1.0-abababababab");
        assert_eq!(compose::image_component(&name), Some("im-server"));
        assert_eq!(compose::image_component("docker.io/x/y:1"), None);
    }
}
