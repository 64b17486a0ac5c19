//! Plumbing the host engines (compose, systemd) share: running the engine's programs,
//! preflight's port and disk checks, and one status vocabulary.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use appmodel_model::record::human_bytes;

use crate::target::RevisionCtx;
use crate::ImportError;

/// An engine command's failure, from its output: command, exit status, stderr.
pub fn failed(command: &str, out: &Output) -> ImportError {
    ImportError::EngineFailed {
        command: command.to_string(),
        status: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// An engine command that could not be started at all.
pub fn unavailable(command: &str, e: &std::io::Error) -> ImportError {
    ImportError::EngineUnavailable {
        command: command.to_string(),
        reason: e.to_string(),
    }
}

/// Runs an engine command; its trimmed stdout, or a typed failure naming it.
pub fn run(cmd: &mut Command, command: &str) -> Result<String, ImportError> {
    let out = cmd.output().map_err(|e| unavailable(command, &e))?;
    if !out.status.success() {
        return Err(failed(command, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Host ports the new revision needs that another program holds. `ports` picks a
/// component's host ports (compose: the published ones; systemd: all); the running
/// revision's own are not busy for the new one.
pub fn busy_ports(
    new: &RevisionCtx<'_>,
    current: Option<&RevisionCtx<'_>>,
    ports: impl Fn(&appmodel_model::types::Port) -> Option<u16>,
) -> Vec<String> {
    let held: Vec<u16> = current
        .iter()
        .flat_map(|c| c.record.model.components.iter())
        .flat_map(|x| x.ports.iter().filter_map(&ports))
        .collect();
    let mut problems = Vec::new();
    for c in &new.record.model.components {
        for p in &c.ports {
            let Some(port) = ports(p) else { continue };
            if !held.contains(&port) && TcpListener::bind(("0.0.0.0", port)).is_err() {
                problems.push(format!(
                    "host port {port} (component `{}`, port `{}`) is in use by another program",
                    c.name, p.name
                ));
            }
        }
    }
    problems
}

/// The nearest existing directory of `path` (itself or a parent) and the bytes free on its
/// filesystem, for what is about to be written there.
pub fn free_at(path: &Path) -> Option<(&Path, u64)> {
    let existing = path.ancestors().find(|p| p.exists())?;
    Some((existing, crate::site::free_bytes(existing)?))
}

/// A problem when the filesystem of `path` (or of its nearest existing parent) has less
/// than `need` bytes free for `what`.
pub fn space_problem(path: &Path, need: u64, what: &str) -> Option<String> {
    let (existing, free) = free_at(path)?;
    (free < need).then(|| {
        format!(
            "`{}` has {} free; {what} need about {}",
            existing.display(),
            human_bytes(free),
            human_bytes(need)
        )
    })
}
