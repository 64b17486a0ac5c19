//! The compose target: a Docker engine driven through `docker compose` (v2) or
//! `docker-compose` (v1), or Podman through `podman-compose`: the tools sites have.
//!
//! Podman differs from Docker in four places this target handles: `podman info` has other
//! field names; `podman image inspect` gives an image id without `sha256:`; podman-compose
//! takes the project directory from the project file's (it has no `--project-directory`);
//! and Podman runs health checks from systemd timers, so where it has no systemd (a
//! container, a minimal host) nothing runs them: this target runs each check itself
//! (`podman healthcheck run`) whenever it asks for a container's health.
//!
//! Images are streamed from the site store into `docker load` as a docker-archive (the
//! bundle's `manifest.json`, its OCI layout files, the blobs); nothing is written to disk
//! twice. Parameters reach compose as environment variables of the compose process (and a
//! `.env` file, mode 0600, for a person running compose by hand).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use appmodel_model::bundle::Form;
use appmodel_model::expr::render_for_target;
use appmodel_model::types::{Component, VolumeKind};
use appmodel_model::Digest;
use serde::Deserialize;

use crate::deploy::write_private;
use crate::site::Site;
use crate::target::{ComponentStatus, DataDir, Health, RevisionCtx, Target};
use crate::{io_err, ImportError};

use appmodel_model::layout::compose::{
    engine_volume_name, image_component, COMPOSE_FILE, DOCKER_MANIFEST, GATE_VAR, PROJECT_FILE,
    TOOL_VAR,
};
use appmodel_model::layout::param_var;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `docker compose` (the v2 plugin).
    V2,
    /// `docker-compose` (v1).
    V1,
    /// `podman-compose`, driving Podman.
    Podman,
}

impl Tool {
    /// The name `APPMODEL_COMPOSE` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::V2 => "v2",
            Tool::V1 => "v1",
            Tool::Podman => "podman",
        }
    }

    /// The command that runs it, for messages.
    fn command(self, docker: &str) -> String {
        match self {
            Tool::V2 => format!("{docker} compose"),
            Tool::V1 => "docker-compose".into(),
            Tool::Podman => "podman-compose".into(),
        }
    }
}

pub struct Compose<'s> {
    site: &'s Site,
    tool: Tool,
    docker: String,
    /// `docker info`'s answer, asked once: preflight, the data root and the versions read it.
    info: std::cell::OnceCell<Result<std::process::Output, String>>,
}

#[derive(Clone, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    /// In a bundle for several platforms, the one this image is for.
    #[serde(rename = "Platform", default)]
    platform: Option<String>,
}

use crate::host::{failed as engine_err, run};

impl<'s> Compose<'s> {
    /// Finds a compose tool: `docker compose` (v2) first, then `docker-compose` (v1), then
    /// `podman-compose`; `APPMODEL_COMPOSE=v1|v2|podman` takes that one only (a site that
    /// must keep v1 beside v2; the tests run the compose scenarios under each).
    /// `APPMODEL_DOCKER` names the engine's command (`docker`, or `podman` for podman-compose).
    pub fn detect(site: &'s Site) -> Result<Compose<'s>, ImportError> {
        let engine = |tool: Tool| {
            std::env::var("APPMODEL_DOCKER").unwrap_or_else(|_| {
                if tool == Tool::Podman {
                    "podman"
                } else {
                    "docker"
                }
                .into()
            })
        };
        let answers = |tool: Tool| {
            let mut cmd = match tool {
                Tool::V2 => {
                    let mut c = Command::new(engine(tool));
                    c.arg("compose");
                    c
                }
                Tool::V1 => Command::new("docker-compose"),
                Tool::Podman => Command::new("podman-compose"),
            };
            cmd.arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let wanted = std::env::var("APPMODEL_COMPOSE").unwrap_or_default();
        let all = [Tool::V2, Tool::V1, Tool::Podman];
        let tool = match all.iter().find(|t| t.as_str() == wanted) {
            Some(&t) if answers(t) => t,
            Some(&t) => {
                let command = t.command(&engine(t));
                return Err(ImportError::EngineUnavailable {
                    reason: format!(
                        "APPMODEL_COMPOSE={wanted} asks for `{command}`, which does not answer"
                    ),
                    command,
                });
            }
            None if !wanted.is_empty() => {
                return Err(ImportError::EngineUnavailable {
                    command: "docker compose".into(),
                    reason: format!(
                        "APPMODEL_COMPOSE is `{wanted}`; it may be `v1`, `v2` or `podman`"
                    ),
                })
            }
            None => match all.into_iter().find(|t| answers(*t)) {
                Some(t) => t,
                None => {
                    return Err(ImportError::EngineUnavailable {
                        command: "docker compose".into(),
                        reason: "none of `docker compose` (v2), `docker-compose` (v1) and `podman-compose` is installed"
                            .into(),
                    })
                }
            },
        };
        Ok(Compose {
            site,
            tool,
            docker: engine(tool),
            info: std::cell::OnceCell::new(),
        })
    }

    pub fn tool(&self) -> Tool {
        self.tool
    }

    fn docker(&self) -> Command {
        Command::new(&self.docker)
    }

    /// `docker info` (or `podman info`): the engine's version and where it keeps its data;
    /// the error of a command that could not run.
    fn info(&self) -> Result<&std::process::Output, &str> {
        self.info
            .get_or_init(|| {
                let format = match self.tool {
                    Tool::Podman => "{{.Version.Version}} {{.Store.GraphRoot}}",
                    _ => "{{.ServerVersion}} {{.DockerRootDir}}",
                };
                self.docker()
                    .args(["info", "--format", format])
                    .output()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// `docker compose -p APP --project-directory DIR -f DIR/docker-compose.yaml`, with the
    /// revision's variables in its environment.
    fn compose(&self, rev: &RevisionCtx<'_>) -> Command {
        let mut cmd = match self.tool {
            Tool::V2 => {
                let mut c = self.docker();
                c.arg("compose");
                c
            }
            Tool::V1 => Command::new("docker-compose"),
            Tool::Podman => Command::new("podman-compose"),
        };
        cmd.arg("-p").arg(rev.app);
        // podman-compose has no such option; the project file's directory is the same one.
        if self.tool != Tool::Podman {
            cmd.arg("--project-directory").arg(&rev.project_dir);
        }
        cmd.arg("-f").arg(rev.project_dir.join(PROJECT_FILE));
        for (k, v) in env_vars(rev) {
            cmd.env(k, v);
        }
        cmd
    }

    fn archive_entries(&self, rev: &RevisionCtx<'_>) -> Result<Vec<ArchiveEntry>, ImportError> {
        let p = rev.bundle_dir.join(DOCKER_MANIFEST);
        let bytes = fs::read(&p).map_err(io_err("read", &p))?;
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(&bytes).map_err(crate::damaged(&p))?;
        Ok(for_platform(
            entries,
            &appmodel_model::bundle::host_platform(),
        ))
    }

    /// An image's id as `sha256:HEX` (Podman prints the hex alone).
    fn image_id(&self, name: &str) -> Option<String> {
        let out = self
            .docker()
            .args(["image", "inspect", "--format", "{{.Id}}", name])
            .output()
            .ok()?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match id.strip_prefix("sha256:") {
            _ if !out.status.success() => None,
            Some(_) => Some(id),
            None => Some(format!("sha256:{id}")),
        }
    }

    fn containers(&self, app: &str, service: &str) -> Result<Vec<String>, ImportError> {
        let out = run(
            self.docker().args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.docker.compose.project={app}"),
                "--filter",
                &format!("label=com.docker.compose.service={service}"),
            ]),
            "docker ps",
        )?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// The user a component's container runs as (`user:` in the model, else the image's
    /// for this host's platform), numeric; root when neither says. A user given by name
    /// cannot be told without the image's /etc/passwd: that is an error naming it.
    fn container_user(&self, rev: &RevisionCtx<'_>, c: &Component) -> Result<(u32, u32), String> {
        let from_image = || {
            let art = rev.record.components.get(&c.name)?;
            let img = art
                .images
                .get(&appmodel_model::bundle::host_platform())
                .or_else(|| art.images.values().next())?;
            // An image config is a few KiB; one claiming more is not read into memory.
            if img.config.size > 1 << 20 {
                return None;
            }
            let bytes = self.site.store().read_blob(&img.config.digest).ok()?;
            let config: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            config["config"]["User"].as_str().map(str::to_string)
        };
        let user = c.user.clone().or_else(from_image).unwrap_or_default();
        if user.is_empty() {
            return Ok((0, 0));
        }
        let mut parts = user.splitn(2, ':');
        let uid: Option<u32> = parts.next().and_then(|u| u.parse().ok());
        let gid: Option<Option<u32>> = parts.next().map(|g| g.parse().ok());
        match (uid, gid) {
            (Some(u), None) => Ok((u, u)),
            (Some(u), Some(Some(g))) => Ok((u, g)),
            _ => Err(format!(
                "component `{}` runs as user {}, a name appmodel cannot map to the numeric id its config file holding a secret must be owned by; set `user: UID[:GID]` in the model",
                c.name,
                appmodel_model::bundle::quoted(&user)
            )),
        }
    }
}

fn env_vars(rev: &RevisionCtx<'_>) -> Vec<(String, String)> {
    let mut vars = vec![(
        TOOL_VAR.to_string(),
        appmodel_model::bundle::host_tool(&rev.bundle_dir)
            .display()
            .to_string(),
    )];
    if rev.record.model.licence.is_some() {
        vars.push((GATE_VAR.to_string(), rev.gate_dir.display().to_string()));
    }
    for (k, v) in rev.params {
        vars.push((param_var(k), v.to_string()));
    }
    vars
}

/// The images of an archive manifest that run on `platform` (an entry naming none is for
/// every platform: a bundle of one).
fn for_platform(entries: Vec<ArchiveEntry>, platform: &str) -> Vec<ArchiveEntry> {
    entries
        .into_iter()
        .filter(|e| e.platform.as_deref().is_none_or(|p| p == platform))
        .collect()
}

fn blob_path(entry: &str) -> Option<Digest> {
    entry
        .strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok())
}

impl Target for Compose<'_> {
    fn form(&self) -> Form {
        Form::Compose
    }

    fn preflight(
        &self,
        new: &RevisionCtx<'_>,
        current: Option<&RevisionCtx<'_>>,
    ) -> Result<Vec<String>, ImportError> {
        let mut problems = Vec::new();
        let docker_root = match self.info() {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
                text.split_once(' ').map(|(_, root)| PathBuf::from(root))
            }
            Ok(o) => {
                problems.push(format!(
                    "the {} engine does not answer: {}",
                    if self.tool == Tool::Podman {
                        "Podman"
                    } else {
                        "Docker"
                    },
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                problems.push(format!("cannot run `{}`: {e}", self.docker));
                None
            }
        };
        // The owner of each config file holding a secret must be known before anything starts.
        for c in &new.record.model.components {
            if new.record.model.config_holds_secret(c) {
                if let Err(e) = self.container_user(new, c) {
                    problems.push(e);
                }
            }
        }
        // Host ports the new revision publishes that the running one does not hold already.
        problems.extend(crate::host::busy_ports(new, current, |p| p.published()));
        // Room for the images not loaded yet (compressed size, twice, for unpacking).
        if let Some(root) = docker_root {
            let mut need: u64 = 0;
            for entry in self.archive_entries(new)? {
                let loaded = entry.repo_tags.first().and_then(|t| self.image_id(t));
                if loaded.as_deref() == blob_path(&entry.config).map(|d| d.to_string()).as_deref() {
                    continue;
                }
                for layer in entry.layers.iter().filter_map(|l| blob_path(l)) {
                    need += fs::metadata(self.site.store().blob_path(&layer))
                        .map(|m| m.len())
                        .unwrap_or(0)
                        * 2;
                }
            }
            problems.extend(crate::host::space_problem(
                &root,
                need + (64 << 20),
                "the images",
            ));
        }
        Ok(problems)
    }

    fn versions(&self) -> crate::target::EngineVersions {
        let engine = self
            .info()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string();
                text.split_whitespace().next().map(str::to_string)
            });
        let name = if self.tool == Tool::Podman {
            "Podman"
        } else {
            "Docker"
        };
        let compose = match self.tool {
            Tool::V2 => self
                .docker()
                .args(["compose", "version", "--short"])
                .output(),
            Tool::V1 => Command::new("docker-compose")
                .args(["version", "--short"])
                .output(),
            Tool::Podman => Command::new("podman-compose").arg("version").output(),
        }
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            // `2.40.3`, `1.29.2`, or `podman-compose version 1.6.0` on the first line.
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let first = text.lines().next()?.trim().to_string();
            Some(
                first
                    .rsplit(' ')
                    .next()?
                    .trim_start_matches('v')
                    .to_string(),
            )
        });
        crate::target::EngineVersions {
            engine: engine.map(|v| (name.to_string(), v)),
            compose: compose.map(|v| (self.tool.command(&self.docker), v)),
        }
    }

    fn data_root(&self, _rev: &RevisionCtx<'_>) -> Option<PathBuf> {
        let out = self.info().ok().filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        text.split_once(' ').map(|(_, root)| PathBuf::from(root))
    }

    fn prepare(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let entries = self.archive_entries(rev)?;
        let missing: Vec<&ArchiveEntry> = entries
            .iter()
            .filter(|e| {
                let want = blob_path(&e.config).map(|d| d.to_string());
                e.repo_tags.first().and_then(|t| self.image_id(t)) != want
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        tracing::info!(
            images = missing.len(),
            "loading images into the container engine"
        );
        let mut child = self
            .docker()
            .args(["load", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ImportError::EngineUnavailable {
                command: "docker load".into(),
                reason: e.to_string(),
            })?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| load_err("it has no standard input"))?;
        let write_result = (|| -> Result<(), ImportError> {
            let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, stdin));
            let manifest: Vec<serde_json::Value> = missing
                .iter()
                .map(|e| serde_json::json!({"Config": e.config, "RepoTags": e.repo_tags, "Layers": e.layers}))
                .collect();
            let bytes = serde_json::to_vec(&manifest)
                .map_err(|e| ImportError::Internal(format!("cannot write JSON: {e}")))?;
            append(&mut tar, DOCKER_MANIFEST, &bytes)?;
            let mut blobs: Vec<Digest> = missing
                .iter()
                .flat_map(|e| std::iter::once(&e.config).chain(e.layers.iter()))
                .filter_map(|p| blob_path(p))
                .collect();
            blobs.sort();
            blobs.dedup();
            for d in blobs {
                let path = self.site.store().blob_path(&d);
                let mut f = fs::File::open(&path).map_err(io_err("read", &path))?;
                let size = f.metadata().map_err(io_err("read", &path))?.len();
                let mut h = tar::Header::new_gnu();
                h.set_size(size);
                h.set_mode(0o644);
                tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f)
                    .map_err(load_err)?;
            }
            tar.into_inner()
                .map_err(load_err)?
                .flush()
                .map_err(load_err)?;
            Ok(())
        })();
        let out = child.wait_with_output().map_err(load_err)?;
        if !out.status.success() {
            return Err(engine_err("docker load", &out));
        }
        write_result?;
        for e in &missing {
            let want = blob_path(&e.config).map(|d| d.to_string());
            let name = e.repo_tags.first().cloned().unwrap_or_default();
            let got = self.image_id(&name);
            if got != want {
                return Err(load_err(format!(
                    "image `{name}` loaded as `{}`, expected `{}`",
                    got.unwrap_or_default(),
                    want.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    fn write_project(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let dir = &rev.project_dir;
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let src = rev.bundle_dir.join(COMPOSE_FILE);
        fs::copy(&src, dir.join(PROJECT_FILE)).map_err(io_err("copy", &src))?;
        let env: String = env_vars(rev)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let env_path = dir.join(".env");
        write_private(&env_path, env.as_bytes())?;
        let model = &rev.record.model;
        for c in &model.components {
            for v in c.volumes.iter().filter(|v| v.kind == VolumeKind::Config) {
                let text = render_for_target(
                    model,
                    v.content.as_deref().unwrap_or_default(),
                    &|x: &Component| x.name.clone(),
                    &|p: &str| rev.params.get(p).map(|v| v.to_string()),
                    &|s: &str| s.to_string(),
                )
                .map_err(|e| ImportError::Render {
                    component: c.name.clone(),
                    what: format!("config file `{}`", v.name),
                    reason: e.message,
                })?;
                let p = dir.join("config").join(&c.name).join(&v.name);
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
                }
                if model.holds_secret(v.content.as_deref().unwrap_or_default()) {
                    // Readable by the container's user only, from the first byte.
                    write_private(&p, text.as_bytes())?;
                    let (uid, gid) = self
                        .container_user(rev, c)
                        .map_err(ImportError::Inconsistent)?;
                    std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                        .map_err(io_err("set the owner of", &p))?;
                } else {
                    fs::write(&p, text).map_err(io_err("write", &p))?;
                }
            }
        }
        Ok(())
    }

    fn start(&self, rev: &RevisionCtx<'_>, components: &[&str]) -> Result<(), ImportError> {
        let mut cmd = self.compose(rev);
        cmd.args(["up", "-d", "--no-deps", "--remove-orphans"])
            .args(components);
        run(&mut cmd, &format!("starting {}", components.join(", "))).map(|_| ())
    }

    fn health(&self, rev: &RevisionCtx<'_>, component: &str) -> Result<Health, ImportError> {
        let ids = self.containers(rev.app, component)?;
        let Some(id) = ids.first() else {
            return Ok(Health::Missing);
        };
        if self.tool == Tool::Podman {
            // Runs the check and records its result, as the timer Podman lacks here would;
            // its exit status says nothing the inspect below does not (and a container with
            // no check, or one not running, makes it fail).
            let _ = self.docker().args(["healthcheck", "run", id]).output();
        }
        let out = run(
            self.docker().args([
                "inspect",
                "--format",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                id,
            ]),
            "docker inspect",
        )?;
        let mut parts = out.split_whitespace();
        let state = parts.next().unwrap_or_default();
        Ok(match (state, parts.next()) {
            ("running", Some("healthy")) => Health::Healthy,
            ("running", Some("unhealthy")) => Health::Unhealthy,
            ("running", Some(_)) => Health::Starting,
            ("running", None) => Health::Running,
            ("restarting" | "created", _) => Health::Starting,
            _ => Health::Stopped,
        })
    }

    fn stop(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        let mut cmd = self.compose(rev);
        cmd.args(["down", "--remove-orphans"]);
        run(&mut cmd, "stopping the stack").map(|_| ())
    }

    fn data_dirs(&self, rev: &RevisionCtx<'_>, create: bool) -> Result<Vec<DataDir>, ImportError> {
        let mut out = Vec::new();
        for c in &rev.record.model.components {
            for v in c.volumes.iter().filter(|v| v.kind == VolumeKind::Data) {
                let name = engine_volume_name(rev.app, &c.name, &v.name);
                let inspect = self
                    .docker()
                    .args(["volume", "inspect", "--format", "{{.Mountpoint}}", &name])
                    .output();
                let exists = inspect.as_ref().is_ok_and(|o| o.status.success());
                if !exists {
                    if !create {
                        continue;
                    }
                    run(
                        self.docker().args([
                            "volume",
                            "create",
                            "--label",
                            &format!("com.docker.compose.project={}", rev.app),
                            "--label",
                            &format!("com.docker.compose.volume={}-{}", c.name, v.name),
                            &name,
                        ]),
                        "docker volume create",
                    )?;
                }
                let path = run(
                    self.docker()
                        .args(["volume", "inspect", "--format", "{{.Mountpoint}}", &name]),
                    "docker volume inspect",
                )?;
                out.push(DataDir {
                    name: format!("{}-{}", c.name, v.name),
                    path: PathBuf::from(path),
                });
            }
        }
        Ok(out)
    }

    fn remove_data(&self, rev: &RevisionCtx<'_>) -> Result<(), ImportError> {
        for c in &rev.record.model.components {
            for v in c.volumes.iter().filter(|v| v.kind == VolumeKind::Data) {
                let name = engine_volume_name(rev.app, &c.name, &v.name);
                let _ = self.docker().args(["volume", "rm", "-f", &name]).output();
            }
        }
        Ok(())
    }

    fn status(&self, rev: &RevisionCtx<'_>) -> Result<Vec<ComponentStatus>, ImportError> {
        let mut out = Vec::new();
        let images: BTreeMap<String, String> = self
            .archive_entries(rev)?
            .into_iter()
            .filter_map(|e| {
                let tag = e.repo_tags.first()?.clone();
                let component = image_component(tag.as_str())?.to_string();
                Some((component, blob_path(&e.config)?.to_string()))
            })
            .collect();
        for c in &rev.record.model.components {
            out.push(ComponentStatus::new(
                &c.name,
                self.health(rev, &c.name)?,
                images.get(&c.name).cloned(),
            ));
        }
        Ok(out)
    }
}

fn append(tar: &mut tar::Builder<impl Write>, path: &str, bytes: &[u8]) -> Result<(), ImportError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, path, bytes).map_err(load_err)
}

/// `docker load` ran but failed midway or loaded something else.
fn load_err(problem: impl std::fmt::Display) -> ImportError {
    ImportError::EngineOutput {
        command: "docker load".into(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_loads_the_images_of_its_own_platform_only() {
        let entries: Vec<ArchiveEntry> = serde_json::from_str(
            r#"[{"Config": "blobs/sha256/a", "RepoTags": ["x:1"], "Layers": [], "Platform": "linux/amd64"},
                {"Config": "blobs/sha256/b", "RepoTags": ["x:1"], "Layers": [], "Platform": "linux/arm64"},
                {"Config": "blobs/sha256/c", "RepoTags": ["y:1"], "Layers": []}]"#,
        )
        .unwrap();
        let configs = |p: &str| {
            for_platform(entries.clone(), p)
                .into_iter()
                .map(|e| e.config)
                .collect::<Vec<_>>()
        };
        assert_eq!(configs("linux/arm64"), ["blobs/sha256/b", "blobs/sha256/c"]);
        assert_eq!(configs("linux/amd64"), ["blobs/sha256/a", "blobs/sha256/c"]);
        assert_eq!(configs("linux/s390x"), ["blobs/sha256/c"]);
    }

    /// A component's container user is numeric, or a clear refusal: before, a user given by
    /// name became root, and its secret config file (0600, root) was unreadable to it.
    #[test]
    fn the_owner_of_a_secret_config_file_is_a_numeric_user_or_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::open(&dir.path().join("state")).unwrap();
        let compose = Compose {
            site: &site,
            tool: Tool::V2,
            docker: "docker".into(),
            info: std::cell::OnceCell::new(),
        };
        let user_of = |user: Option<&str>| {
            let text = format!(
                "apiVersion: appmodel/v1\napp: {{name: a, version: 1.0.0}}\ncomponents:\n  - name: c\n    image: {{registry: r.example/c:1}}\n{}",
                user.map(|u| format!("    user: \"{u}\"\n")).unwrap_or_default()
            );
            let model = appmodel_model::parse_model("m.yaml".into(), text.clone())
                .unwrap()
                .model;
            let record = appmodel_model::record::VersionRecord::unpublished("m.yaml", text, model);
            let params = BTreeMap::new();
            let rev = RevisionCtx {
                app: "a",
                number: 1,
                record: &record,
                bundle_dir: dir.path().join("b"),
                project_dir: dir.path().join("p"),
                gate_dir: dir.path().join("g"),
                params: &params,
            };
            compose.container_user(&rev, &record.model.components[0])
        };
        assert_eq!(user_of(None), Ok((0, 0)));
        assert_eq!(user_of(Some("1000")), Ok((1000, 1000)));
        assert_eq!(user_of(Some("1000:2000")), Ok((1000, 2000)));
        for named in ["nginx", "1000:staff"] {
            let e = user_of(Some(named)).unwrap_err();
            assert!(e.contains(&format!("runs as user `{named}`")), "{e}");
        }
    }
}
