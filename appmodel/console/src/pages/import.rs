//! `/import`: bundles, ISO images and volumes found under the operator's media paths,
//! imported on the server (`appmodel import PATH`) with the job's progress; never a browser
//! upload of gigabytes.

use std::path::{Path, PathBuf};

use appmodel_importer::{import, ImportError, ImportOptions, Site};
use appmodel_model::bundle::MANIFEST_FILE;
use appmodel_model::volume::VOLUME_FILE;

use super::{chain, start_job, PageError};
use crate::html::{esc, form, page, table};
use crate::http::Resp;
use crate::Ctx;

/// How deep under a media path the page looks, and how many entries it reads at most.
const DEPTH: usize = 3;
const MAX_ENTRIES: usize = 5_000;

/// What a path holds, for `appmodel import`.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Bundle,
    Volume,
    VolumeSet,
    Iso,
    Archive,
}

impl Found {
    fn label(&self) -> &'static str {
        match self {
            Found::Bundle => "bundle directory",
            Found::Volume => "one volume of a set",
            Found::VolumeSet => "directory of volumes",
            Found::Iso => "ISO image",
            Found::Archive => "bundle archive (tar)",
        }
    }
}

fn kind(path: &Path) -> Option<Found> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.is_file() {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        return match ext.to_ascii_lowercase().as_str() {
            "iso" => Some(Found::Iso),
            "tar" => Some(Found::Archive),
            _ => None,
        };
    }
    if !meta.is_dir() {
        return None;
    }
    if path.join(VOLUME_FILE).is_file() {
        return Some(Found::Volume);
    }
    if path.join(MANIFEST_FILE).is_file() {
        return Some(Found::Bundle);
    }
    None
}

/// Everything importable under `roots`, without following links, at most [`DEPTH`] deep.
pub fn scan(roots: &[PathBuf]) -> Vec<(PathBuf, Found)> {
    let mut out = Vec::new();
    let mut budget = MAX_ENTRIES;
    for root in roots {
        walk(root, 0, &mut budget, &mut out);
    }
    out
}

fn walk(dir: &Path, depth: usize, budget: &mut usize, out: &mut Vec<(PathBuf, Found)>) {
    if let Some(k) = kind(dir) {
        out.push((dir.to_path_buf(), k));
        return;
    }
    if depth >= DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = Vec::new();
    for e in entries.flatten() {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        if e.file_type().is_ok_and(|t| t.is_dir() || t.is_file()) {
            children.push(e.path());
        }
    }
    children.sort();
    let before = out.len();
    for c in children {
        walk(&c, depth + 1, budget, out);
    }
    // A directory whose children are volumes is a set: import it whole.
    let vols = out[before..]
        .iter()
        .filter(|(_, k)| *k == Found::Volume)
        .count();
    if vols > 1 && depth > 0 {
        out.truncate(before);
        out.push((dir.to_path_buf(), Found::VolumeSet));
    }
}

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let found = scan(&ctx.console.media);
    let roots: Vec<String> = ctx
        .console
        .media
        .iter()
        .map(|p| format!("<code>{}</code>", esc(&p.display().to_string())))
        .collect();
    let mut body = format!(
        "<p>Looked in {} (give others with <code>appmodel console --media DIR</code>). Importing verifies every file against the signed manifest before anything becomes visible.</p>",
        if roots.is_empty() { "no path".to_string() } else { roots.join(", ") }
    );
    if found.is_empty() {
        body.push_str("<p>No bundle, ISO image or volume was found there.</p>");
    } else {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|(p, k)| {
                let p = p.display().to_string();
                vec![
                    format!("<code>{}</code>", esc(&p)),
                    k.label().to_string(),
                    form(
                        "/import",
                        ctx.session,
                        &format!(
                            r#"<input type="hidden" name="path" value="{}"><button type="submit" aria-label="Import {}">Import</button>"#,
                            esc(&p),
                            esc(&p)
                        ),
                    ),
                ]
            })
            .collect();
        body.push_str(&table("found media", &["Path", "What", ""], &rows));
    }
    body.push_str("<h2>Another path</h2>");
    body.push_str(&form(
        "/import",
        ctx.session,
        r#"<label for="path">Path on this host (a bundle directory or archive, an ISO file, a volume or a directory of volumes)</label>
<input id="path" name="path" type="text" required spellcheck="false">
<button type="submit">Import</button>"#,
    ));
    Ok(Resp::html(200, page("Import", "/import", &body)))
}

pub fn post(ctx: &Ctx) -> Result<Resp, PageError> {
    let given = ctx.req.field("path").trim();
    let path = PathBuf::from(given);
    if given.is_empty() || !path.is_absolute() {
        return Err(PageError::bad(format!(
            "the path `{given}` is not an absolute path on this host; nothing was imported"
        )));
    }
    if !path.exists() {
        return Err(PageError::bad(format!(
            "`{given}` does not exist on this host; nothing was imported"
        )));
    }
    let root = ctx.console.site_root.clone();
    start_job(ctx, format!("import {given}"), move || {
        let site = Site::open(&root).map_err(|e| chain(&e))?;
        run(&site, &path)
    })
}

fn run(site: &Site, path: &Path) -> Result<serde_json::Value, String> {
    match import(site, path, &ImportOptions::default()) {
        Ok(r) => Ok(serde_json::json!({
            "app": r.app, "version": r.version, "form": r.form.as_str(), "files": r.files,
            "verified_files": r.verified_files, "verified_bytes": r.verified_bytes,
            "new_blobs": r.new_blobs, "new_bytes": r.new_bytes, "present_blobs": r.present_blobs,
            "signed_by": r.signed_by, "delta_base": r.delta_base,
            "volumes": r.volumes, "of_volumes": r.of_volumes,
        })),
        Err(e @ ImportError::VolumesMissing { .. }) => Err(format!(
            "{}: put the missing volumes under a media path (or insert the next disc) and import again; the volumes read are kept",
            chain(&e)
        )),
        Err(e) => Err(chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bundles_isos_and_sets_without_following_links() {
        let d = tempfile::tempdir().expect("tmp");
        let b = d.path().join("disc/im-1.1.0");
        std::fs::create_dir_all(&b).expect("dir");
        std::fs::write(b.join(MANIFEST_FILE), "{}").expect("write");
        std::fs::write(d.path().join("disc/im.iso"), "").expect("write");
        std::fs::write(d.path().join("disc/im-1.2.0.tar"), "").expect("write");
        std::fs::write(d.path().join("disc/notes.txt"), "").expect("write");
        for v in ["vol01", "vol02"] {
            let v = d.path().join("sticks/set").join(v);
            std::fs::create_dir_all(&v).expect("dir");
            std::fs::write(v.join(VOLUME_FILE), "{}").expect("write");
        }
        std::os::unix::fs::symlink("/", d.path().join("root-link")).expect("link");
        // A FIFO named like an image is not a file to import (and is never opened).
        let fifo = d.path().join("disc/pipe.iso");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let found = scan(&[d.path().to_path_buf()]);
        let rel: Vec<(String, &Found)> = found
            .iter()
            .map(|(p, k)| {
                let p = p.strip_prefix(d.path()).expect("under the root");
                (p.display().to_string(), k)
            })
            .collect();
        assert_eq!(
            rel,
            [
                ("disc/im-1.1.0".to_string(), &Found::Bundle),
                ("disc/im-1.2.0.tar".to_string(), &Found::Archive),
                ("disc/im.iso".to_string(), &Found::Iso),
                ("sticks/set".to_string(), &Found::VolumeSet),
            ]
        );
    }
}
