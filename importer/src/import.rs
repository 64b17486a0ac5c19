//! `appmodel import PATH`: verify a bundle and bring it into the site's state.
//!
//! Order of checks: the manifest and its signature first; for a delta, that the site holds
//! the base's blobs; then every entry, streamed: only plain relative paths of regular files
//! (and directories), each listed once, each of the listed size and sha256. Blobs stream
//! straight into the site store (skipped when already there, which makes an interrupted
//! import resumable); other files go to a staging directory. Only when all is verified do
//! the version record and the bundle's files become visible. On any failure the state
//! directory is left as it was.
//!
//! [`verify`] runs the same checks and writes nothing: for the disc after it is burnt, or
//! on site before an import.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use appmodel_model::bundle::{
    check_manifest_names, is_safe_path, quoted, BundleFile, BundleManifest, Form, BUNDLE_FORMAT,
    MANIFEST_FILE, RECORD_FILE, SIGNATURE_FILE, TOOL_FILE,
};
use appmodel_model::input::{self, cap, InputError, Links};
use appmodel_model::record::VersionRecord;
use appmodel_model::Digest;
use appmodel_store::pipe::PipeWriter;
use appmodel_store::{
    copy_stream, progress, write_synced, CopyError, HashingReader, Store, StoreError, StoreLock,
};

use crate::site::Site;
use crate::{io_err, ImportError};

const MAX_MANIFEST: u64 = cap::MANIFEST;
/// The caps of bundle.json and of a signature, for the volume reader.
pub(crate) const MANIFEST_CAP: u64 = MAX_MANIFEST;
pub(crate) const SIGNATURE_CAP: u64 = cap::SIGNATURE;
const CHUNK: usize = 1 << 20;
/// The largest tar extension entry (GNU long name or link, PAX header) read: bundles use
/// paths of a few dozen bytes; a larger one is refused before it is read.
pub const MAX_TAR_EXTENSION: u64 = 64 << 10;
/// What `imported.json` beside an imported bundle's files is called.
pub const IMPORT_NOTE_FILE: &str = "imported.json";

/// What an import did.
#[derive(Debug)]
pub struct ImportReport {
    pub app: String,
    pub version: String,
    pub form: Form,
    pub files: usize,
    pub new_blobs: usize,
    pub new_bytes: u64,
    /// Blobs the site already held (skipped).
    pub present_blobs: usize,
    /// The key id that signed the bundle, when a pinned key verified it.
    pub signed_by: Option<String>,
    /// The bundle carried a signature but no key is pinned, so it was not checked.
    pub signature_unchecked: bool,
    pub delta_base: Option<String>,
    /// Blobs a delta bundle expects the site to hold already.
    pub base_blobs: usize,
    /// Bytes read and checked against bundle.json.
    pub verified_bytes: u64,
    /// Files read and checked against bundle.json (blobs already in the site store are not
    /// read again: they were checked when they came in, and count as `present_blobs`).
    pub verified_files: usize,
    /// The bundle is unsigned and the operator allowed it (`--allow-unsigned`).
    pub unsigned_allowed: bool,
    /// The volumes of a set read (all of them, for an import), of `of_volumes`; empty for
    /// one bundle.
    pub volumes: Vec<u32>,
    pub of_volumes: u32,
    /// The verified version record (one bundle; none for volumes of a set).
    pub record: Option<VersionRecord>,
}

/// How an import treats signatures.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Accept a bundle without a signature (recorded with the imported version).
    pub allow_unsigned: bool,
    /// Keys trusted for this import besides the pinned ones, as `(name, .pub text)`.
    pub extra_keys: Vec<(String, String)>,
}

/// What the site keeps about an import beside the bundle's files (`imported.json`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ImportNote {
    /// The key id whose signature was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// Imported unsigned, by the operator's `--allow-unsigned`.
    #[serde(default)]
    pub unsigned_allowed: bool,
}

impl ImportNote {
    /// The note of an imported bundle directory; a bundle imported before notes existed
    /// has none.
    pub fn read(bundle_dir: &Path) -> ImportNote {
        input::read_regular(&bundle_dir.join(IMPORT_NOTE_FILE), 64 << 10, Links::Refuse)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Imports the bundle at `path` (a directory or a tar file). The bundle must be signed by a
/// pinned key (or one of `opts.extra_keys`) unless `opts.allow_unsigned`.
///
/// `path` may also be a volume of a set (`export --media`), or a directory of volumes: each
/// is checked and kept, and the set is imported once every volume has been given
/// ([`crate::volumes`]); until then the error names the volumes still missing.
pub fn import(site: &Site, path: &Path, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let _site_lock = site.lock()?;
    let mut keys = site.trusted_keys()?;
    keys.extend(opts.extra_keys.iter().cloned());
    let policy = Policy::Site {
        allow_unsigned: opts.allow_unsigned,
    };
    let media = crate::volumes::media_at(path)?;
    let mut set = None;
    let assembled;
    let mut kept = crate::volumes::Kept::new();
    let path = if media.is_empty() {
        path
    } else {
        let (gathered, checked) = crate::volumes::gather(site, &media, &keys, policy)?;
        let v = &checked.volume;
        match gathered {
            crate::volumes::Gathered::Missing { missing, of } => {
                return Err(ImportError::VolumesMissing {
                    app: v.app.clone(),
                    version: v.version.clone(),
                    missing,
                    of,
                })
            }
            crate::volumes::Gathered::Complete(dir, parts) => {
                set = Some((v.set.clone(), v.volumes));
                assembled = dir;
                kept = parts;
                assembled.as_path()
            }
        }
    };
    let store_lock = site.store().lock()?;
    let before = site.store().blob_digests()?;
    let staging = site
        .staging()
        .join(format!("import-{}", std::process::id()));
    fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
    let sink = Sink::Site(SiteSink {
        site,
        lock: &store_lock,
        staging: &staging,
    });
    let mut importer = Importer::new(sink, keys, policy);
    importer.kept = kept;
    let mut result = importer.run(path);
    let _ = fs::remove_dir_all(&staging);
    if result.is_err() {
        site.store().remove_blobs_not_in(&store_lock, &before);
    }
    if let Some((id, volumes)) = set {
        // Imported, or refused as a whole bundle: the kept parts are done with either way.
        crate::volumes::forget(site, &id);
        if let Ok(r) = &mut result {
            r.volumes = (1..=volumes).collect();
            r.of_volumes = volumes;
        }
    }
    if let Ok(r) = &result {
        // Parts kept of other sets of this version (split for other media, or given up).
        crate::volumes::forget_version(site, &r.app, &r.version);
    }
    result
}

/// Verifies the bundle at `path` and writes nothing: the signature (required when `keys`,
/// as `(name, .pub text)`, is not empty), every listed file's size and sha256, no unlisted,
/// duplicate or unsafe entry, and that record.json is the manifest's version. Works on
/// read-only media and needs no site. With a site's store, a delta bundle's base blobs
/// must be there too, as for [`import`].
///
/// A volume of a set (or a directory of volumes) is verified on its own: its volume.json
/// and bundle.json against their signatures and each other, every file and part on it.
pub fn verify(
    path: &Path,
    keys: Vec<(String, String)>,
    site_store: Option<&Store>,
) -> Result<ImportReport, ImportError> {
    let media = crate::volumes::media_at(path)?;
    if media.is_empty() {
        let sink = Sink::Check { store: site_store };
        return Importer::new(sink, keys, Policy::Check).run(path);
    }
    let mut report: Option<ImportReport> = None;
    for m in &media {
        let c = crate::volumes::check_medium(m, &keys, Policy::Check)?;
        let bytes = crate::volumes::verify_medium(m, &c)?;
        let here = c.volume.here().count();
        let r = report.get_or_insert_with(|| ImportReport {
            app: c.bundle.app.clone(),
            version: c.bundle.version.clone(),
            form: c.bundle.form,
            files: c.bundle.files.len(),
            new_blobs: 0,
            new_bytes: 0,
            present_blobs: 0,
            signed_by: c.signed_by.clone(),
            signature_unchecked: c.signed_by.is_none() && c.bundle_signature.is_some(),
            delta_base: c.bundle.base.as_ref().map(|b| b.version.clone()),
            base_blobs: 0,
            verified_bytes: 0,
            verified_files: 0,
            unsigned_allowed: false,
            volumes: Vec::new(),
            of_volumes: c.volume.volumes,
            record: None,
        });
        r.verified_bytes += bytes;
        r.verified_files += here
            + c.bundle
                .files
                .iter()
                .filter(|f| !f.path.starts_with("blobs/"))
                .count();
        r.volumes.push(c.volume.volume);
    }
    report.ok_or_else(|| ImportError::Internal("no volume verified".into()))
}

/// Which signatures are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Importing: signed by a trusted key, or unsigned when the operator allows it.
    Site { allow_unsigned: bool },
    /// Verifying: checked against the given or pinned keys; without keys, reported only.
    Check,
}

/// Where verified files go.
enum Sink<'a> {
    /// Into the site.
    Site(SiteSink<'a>),
    /// Nowhere. The site's store, if given, is only looked at for a delta's base.
    Check { store: Option<&'a Store> },
}

impl<'a> Sink<'a> {
    /// The site being written into; none when only checking.
    fn site(&self) -> Option<SiteSink<'a>> {
        match self {
            Sink::Site(into) => Some(*into),
            Sink::Check { .. } => None,
        }
    }

    /// The site store a delta's base blobs must be in, if there is one.
    fn store(&self) -> Option<&'a Store> {
        match self {
            Sink::Site(into) => Some(into.site.store()),
            Sink::Check { store } => *store,
        }
    }
}

/// Blobs into the site's store, other files into a staging directory.
#[derive(Clone, Copy)]
struct SiteSink<'a> {
    site: &'a Site,
    lock: &'a StoreLock,
    staging: &'a Path,
}

impl SiteSink<'_> {
    /// Everything checked: records the version (its blobs, and a delta's base blobs, are in
    /// the store) and moves the staged files to the bundle's place on the site.
    fn keep(
        self,
        manifest: &BundleManifest,
        record: &VersionRecord,
        note: &ImportNote,
    ) -> Result<(), ImportError> {
        let SiteSink {
            site,
            lock,
            staging,
        } = self;
        let mut needed: Vec<Digest> = manifest
            .files
            .iter()
            .filter(|f| f.path.starts_with("blobs/"))
            .map(|f| f.sha256.clone())
            .collect();
        needed.extend(manifest.base.iter().flat_map(|b| b.blobs.iter().cloned()));
        site.store().put_record(lock, record, &needed)?;
        let dest = site.bundle_dir(&manifest.app, &manifest.version, manifest.form);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        // Keep only non-blob files (blobs live in the store).
        let _ = fs::remove_dir_all(staging.join("blobs"));
        let note_bytes = crate::state_json(note)?;
        write_synced(&staging.join(IMPORT_NOTE_FILE), &note_bytes)?;
        replace_dir(staging, &dest)
    }
}

/// Where [`replace_dir`] keeps the old directory for a moment on a filesystem that cannot
/// exchange two names: `Site::lock` puts it back if a crash left `dest` missing.
pub fn replaced_path(dest: &Path) -> std::path::PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".replaced-{name}"))
}

/// Puts the directory `new` at `dest`, replacing what is there in one step: a crash leaves
/// either the old or the new bundle in place, never none. The old one ends up at `new`'s
/// path (under staging, removed with it).
fn replace_dir(new: &Path, dest: &Path) -> Result<(), ImportError> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        new,
        rustix::fs::CWD,
        dest,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {
            if let Some(parent) = dest.parent() {
                appmodel_store::sync_dir(parent)?;
            }
            let _ = fs::remove_dir_all(new);
            return Ok(());
        }
        Err(rustix::io::Errno::NOENT) => {} // nothing there yet
        Err(e @ (rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS)) if dest.exists() => {
            // A filesystem that cannot exchange: move the old one aside first. A crash in
            // between is what the lock's recovery of `replaced-*` directories is for.
            tracing::debug!(error = %e, "RENAME_EXCHANGE unsupported");
            let old = replaced_path(dest);
            let _ = fs::remove_dir_all(&old);
            fs::rename(dest, &old).map_err(io_err("replace", dest))?;
            fs::rename(new, dest).map_err(io_err("rename into", dest))?;
            let _ = fs::remove_dir_all(&old);
            return Ok(());
        }
        Err(e) if dest.exists() => {
            return Err(io_err("replace", dest)(io::Error::from_raw_os_error(
                e.raw_os_error(),
            )))
        }
        Err(_) => {}
    }
    fs::rename(new, dest).map_err(io_err("rename into", dest))?;
    if let Some(parent) = dest.parent() {
        appmodel_store::sync_dir(parent)?;
    }
    Ok(())
}

struct Importer<'a> {
    sink: Sink<'a>,
    policy: Policy,
    /// record.json, once read and checked against bundle.json.
    record: Option<Vec<u8>>,
    keys: Vec<(String, String)>,
    seen: BTreeSet<String>,
    report: Option<ImportReport>,
    /// A volume set's blobs, already kept on the site in parts (empty otherwise).
    kept: crate::volumes::Kept,
}

/// A bundle file that cannot be read as a regular file: the input's fault, unless the
/// machine failed to read it.
fn refused(name: &str, path: &Path, e: InputError) -> ImportError {
    match e {
        InputError::Io(source) => ImportError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        },
        other => ImportError::UnsafeEntry {
            path: name.to_string(),
            reason: other.to_string().trim_start_matches("it is ").to_string(),
        },
    }
}

/// A store's refusal of a blob, as the bundle file's.
fn blob_err(f: &BundleFile, e: StoreError) -> ImportError {
    match e {
        StoreError::DigestMismatch {
            expected, actual, ..
        } => ImportError::DigestMismatch {
            path: f.path.clone(),
            expected,
            actual,
        },
        e => e.into(),
    }
}

/// No appmodel executable is larger (it is streamed, never held in memory).
const TOOL_CAP: u64 = 1 << 30;

/// Copies the appmodel executable `tool` (sha256) from a bundle of `app` kept on this site
/// to `dest` (executable, synced), hashing it as it streams; false when no kept bundle
/// carries it.
fn copy_site_tool(site: &Site, app: &str, tool: &Digest, dest: &Path) -> Result<bool, ImportError> {
    let dir = site.root().join("bundles").join(app);
    let Ok(versions) = fs::read_dir(&dir) else {
        return Ok(false);
    };
    let forms = versions
        .flatten()
        .filter_map(|v| fs::read_dir(v.path()).ok())
        .flat_map(|forms| forms.flatten());
    // Every appmodel a bundle of the app holds, whatever its platform; those of the wanted
    // name first, so the usual match is the first file hashed.
    let want = dest.file_name();
    let mut candidates: Vec<std::path::PathBuf> = forms
        .flat_map(|form| {
            fs::read_dir(form.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| f.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n == TOOL_FILE || appmodel_model::bundle::tool_platform(n).is_some()
                    })
                })
        })
        .collect();
    candidates.sort_by_key(|p| p.file_name() != want);
    for path in candidates {
        let Ok((file, _)) = input::open_regular(&path, Links::Refuse) else {
            continue;
        };
        let mut out = PipeWriter::new(File::create(dest).map_err(io_err("create", dest))?);
        let mut hashing = HashingReader::new(file.take(TOOL_CAP));
        let copied = copy_stream(&mut hashing, &mut out);
        let synced = out.finish();
        if copied.is_ok() && &hashing.finish().0 == tool {
            synced.map_err(io_err("write", dest))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dest, fs::Permissions::from_mode(0o755))
                .map_err(io_err("set permissions of", dest))?;
            return Ok(true);
        }
    }
    let _ = fs::remove_file(dest);
    Ok(false)
}

pub(crate) fn not_a_bundle(path: &Path, reason: &str) -> ImportError {
    ImportError::NotABundle {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl<'a> Importer<'a> {
    fn new(sink: Sink<'a>, keys: Vec<(String, String)>, policy: Policy) -> Self {
        Importer {
            sink,
            policy,
            record: None,
            keys,
            seen: BTreeSet::new(),
            report: None,
            kept: crate::volumes::Kept::new(),
        }
    }

    fn run(mut self, path: &Path) -> Result<ImportReport, ImportError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_a_bundle(path, "it does not exist"))
            }
            Err(e) => return Err(io_err("read", path)(e)),
        };
        let manifest = if meta.is_dir() {
            self.read_dir_bundle(path)?
        } else if appmodel_media::iso::is_iso(path) {
            self.read_iso_bundle(path)?
        } else {
            self.read_tar_bundle(path)?
        };
        for f in &manifest.files {
            if !self.seen.contains(&f.path) {
                return Err(ImportError::MissingFile {
                    path: f.path.clone(),
                });
            }
        }
        self.commit(&manifest)
    }

    /// Parses and checks the manifest and its signature, and the delta base.
    fn accept_manifest(
        &mut self,
        bytes: &[u8],
        signature: Option<&str>,
    ) -> Result<BundleManifest, ImportError> {
        let manifest: BundleManifest =
            serde_json::from_slice(bytes).map_err(|e| ImportError::BadManifest(e.to_string()))?;
        if manifest.format > BUNDLE_FORMAT {
            return Err(ImportError::UnsupportedFormat {
                found: manifest.format,
                supported: BUNDLE_FORMAT,
            });
        }
        check_manifest_names(&manifest).map_err(ImportError::BadManifest)?;
        let mut paths = BTreeSet::new();
        for f in &manifest.files {
            if !is_safe_path(&f.path) || f.path == MANIFEST_FILE || f.path == SIGNATURE_FILE {
                return Err(ImportError::BadManifest(format!(
                    "it lists the path `{}`",
                    f.path
                )));
            }
            if !paths.insert(f.path.as_str()) {
                return Err(ImportError::BadManifest(format!(
                    "it lists `{}` twice",
                    f.path
                )));
            }
            if let Some(hex) = f.path.strip_prefix("blobs/sha256/") {
                if hex != f.sha256.hex() {
                    return Err(ImportError::BadManifest(format!(
                        "blob `{}` is listed with sha256 `{}`",
                        f.path, f.sha256
                    )));
                }
            }
        }
        if manifest.file(RECORD_FILE).is_none() {
            return Err(ImportError::BadManifest(format!(
                "it does not list `{RECORD_FILE}`"
            )));
        }
        let (signed_by, unchecked) = check_signature(&self.keys, bytes, signature, self.policy)?;
        let mut base = None;
        if let Some(b) = &manifest.base {
            let missing = self
                .sink
                .store()
                .map_or(0, |st| b.blobs.iter().filter(|d| !st.has_blob(d)).count());
            if missing > 0 {
                return Err(ImportError::MissingBase {
                    app: manifest.app.clone(),
                    base: b.version.clone(),
                    missing,
                });
            }
            base = Some(b.version.clone());
            // A delta that leaves out the appmodel: the site's copy goes with its bundle
            // (containers mount it, units run it).
            // (The names of `base.tools` were checked with the manifest's names.)
            let left_out = b
                .tool
                .iter()
                .map(|t| (TOOL_FILE, t))
                .chain(b.tools.iter().map(|(n, t)| (n.as_str(), t)))
                .filter(|(name, _)| manifest.file(name).is_none());
            if let Some(SiteSink { site, staging, .. }) = self.sink.site() {
                for (name, tool) in left_out {
                    if !copy_site_tool(site, &manifest.app, tool, &staging.join(name))? {
                        return Err(ImportError::MissingTool {
                            app: manifest.app.clone(),
                            base: b.version.clone(),
                            tool: tool.clone(),
                        });
                    }
                }
            }
        }
        let unsigned_allowed = signed_by.is_none()
            && self.policy
                == (Policy::Site {
                    allow_unsigned: true,
                });
        self.report = Some(ImportReport {
            app: manifest.app.clone(),
            version: manifest.version.clone(),
            form: manifest.form,
            files: manifest.files.len(),
            new_blobs: 0,
            new_bytes: 0,
            present_blobs: 0,
            signed_by,
            signature_unchecked: unchecked,
            delta_base: base,
            base_blobs: manifest.base.as_ref().map_or(0, |b| b.blobs.len()),
            verified_bytes: 0,
            verified_files: 0,
            unsigned_allowed,
            volumes: Vec::new(),
            of_volumes: 0,
            record: None,
        });
        if let Some(SiteSink { site, staging, .. }) = self.sink.site() {
            // Room for what is not there yet, before a byte is written.
            let needed: u64 = manifest
                .files
                .iter()
                .filter(|f| !(f.path.starts_with("blobs/") && site.store().has_blob(&f.sha256)))
                // A volume set's blobs are on the site already: they are linked into the store.
                .filter(|f| !self.kept.contains_key(&f.sha256))
                .map(|f| f.size)
                .sum();
            if let Some(free) = crate::site::free_bytes(site.root()) {
                if needed > free {
                    return Err(ImportError::NoSpace {
                        what: format!("{} {}", manifest.app, manifest.version),
                        path: site.root().to_path_buf(),
                        needed,
                        free,
                    });
                }
            }
            write_synced(&staging.join(MANIFEST_FILE), bytes)?;
            if let Some(sig) = signature {
                write_synced(&staging.join(SIGNATURE_FILE), sig.as_bytes())?;
            }
        }
        Ok(manifest)
    }

    fn read_dir_bundle(&mut self, dir: &Path) -> Result<BundleManifest, ImportError> {
        // Every file is opened without following a link, without blocking (a FIFO), checked
        // to be a regular file on the open handle, and read no further than its cap.
        let mpath = dir.join(MANIFEST_FILE);
        let bytes = match input::read_regular(&mpath, MAX_MANIFEST, Links::Refuse) {
            Ok(b) => b,
            Err(InputError::NotFound) => return Err(not_a_bundle(dir, "it has no bundle.json")),
            Err(e) => return Err(refused(MANIFEST_FILE, &mpath, e)),
        };
        let spath = dir.join(SIGNATURE_FILE);
        let signature = match input::read_text(&spath, cap::SIGNATURE, Links::Refuse) {
            Ok(s) => Some(s),
            Err(InputError::NotFound) => None,
            Err(e) => return Err(refused(SIGNATURE_FILE, &spath, e)),
        };
        let manifest = self.accept_manifest(&bytes, signature.as_deref())?;
        let listed: BTreeMap<&str, &BundleFile> = manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f))
            .collect();
        // Nothing but the listed files may be there.
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).map_err(io_err("read", &d))? {
                let entry = entry.map_err(io_err("read", &d))?;
                let p = entry.path();
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                let kind = entry.file_type().map_err(io_err("read", &p))?;
                if kind.is_symlink() {
                    return Err(ImportError::UnsafeEntry {
                        path: rel,
                        reason: "a symbolic link".into(),
                    });
                } else if kind.is_dir() {
                    stack.push(p);
                } else if !kind.is_file() {
                    return Err(ImportError::UnsafeEntry {
                        path: rel,
                        reason: "not a regular file".into(),
                    });
                } else if rel != MANIFEST_FILE
                    && rel != SIGNATURE_FILE
                    && !listed.contains_key(rel.as_str())
                {
                    return Err(ImportError::UnlistedFile { path: rel });
                }
            }
        }
        for f in &manifest.files {
            if f.path.starts_with("blobs/") && self.kept.contains_key(&f.sha256) {
                self.take_kept(f)?;
                continue;
            }
            let p = dir.join(&f.path);
            let (mut file, meta) = match input::open_regular(&p, Links::Refuse) {
                Ok(opened) => opened,
                Err(InputError::NotFound) => {
                    return Err(ImportError::MissingFile {
                        path: f.path.clone(),
                    })
                }
                Err(e) => return Err(refused(&f.path, &p, e)),
            };
            // Read no more than the manifest says: a file that grows is caught by its size.
            let mut limited = (&mut file).take(f.size.saturating_add(1));
            self.take(f, meta.len(), &mut limited)?;
        }
        Ok(manifest)
    }

    /// An ISO 9660 image (`export --iso`), read as a file: no mount, no root.
    fn read_iso_bundle(&mut self, path: &Path) -> Result<BundleManifest, ImportError> {
        use appmodel_media::{IsoError, IsoImage};
        let iso_err = |e: IsoError| match e {
            IsoError::Io { source, .. } => io_err("read", path)(source),
            other => not_a_bundle(path, &other.to_string()),
        };
        let img = IsoImage::open(path).map_err(iso_err)?;
        for pair in img.entries.windows(2) {
            if pair[0].path == pair[1].path {
                return Err(ImportError::DuplicateEntry {
                    path: pair[0].path.clone(),
                });
            }
        }
        let find = |name: &str| img.entries.iter().find(|e| e.path == name);
        let read_small = |name: &str, cap: u64| -> Result<Option<Vec<u8>>, ImportError> {
            let Some(e) = find(name) else {
                return Ok(None);
            };
            if e.size > cap {
                return Err(ImportError::UnsafeEntry {
                    path: name.to_string(),
                    reason: format!("it is {} bytes, more than the {cap} bytes allowed", e.size),
                });
            }
            let mut r = img.open_file(e).map_err(iso_err)?;
            input::read_capped(&mut r, cap)
                .map(Some)
                .map_err(|e| not_a_bundle(path, &format!("cannot read `{name}`: {e}")))
        };
        let bytes = read_small(MANIFEST_FILE, MAX_MANIFEST)?
            .ok_or_else(|| not_a_bundle(path, "the image has no bundle.json"))?;
        let signature = read_small(SIGNATURE_FILE, cap::SIGNATURE)?
            .map(|s| String::from_utf8_lossy(&s).into_owned());
        let manifest = self.accept_manifest(&bytes, signature.as_deref())?;
        let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        for e in &img.entries {
            if !is_safe_path(&e.path) {
                return Err(ImportError::UnsafeEntry {
                    path: e.path.clone(),
                    reason: "not a plain relative path".into(),
                });
            }
            if e.path != MANIFEST_FILE
                && e.path != SIGNATURE_FILE
                && !listed.contains(e.path.as_str())
            {
                return Err(ImportError::UnlistedFile {
                    path: e.path.clone(),
                });
            }
        }
        for f in &manifest.files {
            let Some(e) = find(&f.path) else {
                return Err(ImportError::MissingFile {
                    path: f.path.clone(),
                });
            };
            let mut r = img.open_file(e).map_err(iso_err)?;
            let mut limited = (&mut r).take(f.size.saturating_add(1));
            self.take(f, e.size, &mut limited)?;
        }
        Ok(manifest)
    }

    fn read_tar_bundle(&mut self, path: &Path) -> Result<BundleManifest, ImportError> {
        let mut file = File::open(path).map_err(io_err("read", path))?;
        if !starts_with_tar_header(&mut file).map_err(io_err("read", path))? {
            return Err(not_a_bundle(
                path,
                "it is neither a directory, an ISO image nor a tar file (its first 512 bytes are not a tar header)",
            ));
        }
        let mut archive = tar::Archive::new(io::BufReader::with_capacity(CHUNK, file));
        // Raw entries: GNU long names and PAX headers come to us as entries of their own, so
        // their size is checked before a byte of them is read (the tar crate would read any
        // size into memory).
        let entries = archive.entries().map_err(io_err("read", path))?.raw(true);
        let mut manifest: Option<BundleManifest> = None;
        let mut pending_manifest: Option<Vec<u8>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| not_a_bundle(path, &format!("unreadable tar: {}", brief(&e))))?;
            let kind = entry.header().entry_type();
            if let Some(ext) = extension(kind) {
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > MAX_TAR_EXTENSION {
                    return Err(ImportError::UnsafeEntry {
                        path: format!("{ext} header at byte {}", entry.raw_header_position()),
                        reason: format!(
                            "it is {size} bytes, more than the {MAX_TAR_EXTENSION} bytes allowed"
                        ),
                    });
                }
                let data = input::read_capped(&mut entry, MAX_TAR_EXTENSION)
                    .map_err(|e| not_a_bundle(path, &format!("unreadable tar: {}", brief(&e))))?;
                match kind {
                    tar::EntryType::GNULongName => long_name = Some(trim_nul(data)),
                    tar::EntryType::XHeader => {
                        if let Some(name) = pax_path(&data, path)? {
                            long_name = Some(name);
                        }
                    }
                    _ => {} // a long link name (links are refused anyway), global PAX
                }
                continue;
            }
            let raw_bytes = long_name
                .take()
                .unwrap_or_else(|| entry.path_bytes().into_owned());
            let raw = String::from_utf8_lossy(&raw_bytes).into_owned();
            let name = raw
                .strip_prefix("./")
                .unwrap_or(&raw)
                .trim_end_matches('/')
                .to_string();
            if kind.is_dir() && (name.is_empty() || is_safe_path(&name)) {
                continue;
            }
            if !is_safe_path(&name) {
                let reason = if raw.starts_with('/') {
                    "an absolute path"
                } else {
                    "not a plain relative path"
                };
                return Err(ImportError::UnsafeEntry {
                    path: raw,
                    reason: reason.into(),
                });
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                let what = match kind {
                    tar::EntryType::Symlink => "a symbolic link",
                    tar::EntryType::Link => "a hard link",
                    tar::EntryType::Char | tar::EntryType::Block => "a device",
                    tar::EntryType::Fifo => "a FIFO",
                    _ => "not a regular file",
                };
                return Err(ImportError::UnsafeEntry {
                    path: name,
                    reason: what.into(),
                });
            }
            match (&manifest, name.as_str()) {
                (None, MANIFEST_FILE) if pending_manifest.is_none() => {
                    pending_manifest =
                        Some(read_tar_member(&mut entry, path, &name, MAX_MANIFEST)?);
                }
                (None, SIGNATURE_FILE) if pending_manifest.is_some() => {
                    let sig = read_tar_member(&mut entry, path, &name, cap::SIGNATURE)?;
                    let sig = String::from_utf8_lossy(&sig).into_owned();
                    manifest = Some(self.accept_manifest(
                        &pending_manifest.take().unwrap_or_default(),
                        Some(&sig),
                    )?);
                }
                (None, _) => {
                    let Some(bytes) = pending_manifest.take() else {
                        return Err(not_a_bundle(path, "its first entry is not bundle.json"));
                    };
                    let m = self.accept_manifest(&bytes, None)?;
                    self.tar_entry(&m, &name, &mut entry)?;
                    manifest = Some(m);
                }
                (Some(m), _) => self.tar_entry(m, &name, &mut entry)?,
            }
        }
        match (manifest, pending_manifest) {
            (Some(m), _) => Ok(m),
            (None, Some(bytes)) => self.accept_manifest(&bytes, None),
            (None, None) => Err(not_a_bundle(path, "it has no bundle.json")),
        }
    }

    fn tar_entry(
        &mut self,
        manifest: &BundleManifest,
        name: &str,
        entry: &mut tar::Entry<'_, impl Read>,
    ) -> Result<(), ImportError> {
        if name == MANIFEST_FILE || name == SIGNATURE_FILE {
            return Err(ImportError::DuplicateEntry {
                path: name.to_string(),
            });
        }
        let Some(f) = manifest.file(name) else {
            return Err(ImportError::UnlistedFile {
                path: name.to_string(),
            });
        };
        let size = entry
            .header()
            .size()
            .map_err(|e| ImportError::UnsafeEntry {
                path: name.to_string(),
                reason: e.to_string(),
            })?;
        let f = f.clone();
        self.take(&f, size, entry)
    }

    /// Verifies one listed file while streaming it to its place.
    fn take(
        &mut self,
        f: &BundleFile,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), ImportError> {
        if !self.seen.insert(f.path.clone()) {
            return Err(ImportError::DuplicateEntry {
                path: f.path.clone(),
            });
        }
        if size != f.size {
            return Err(ImportError::SizeMismatch {
                path: f.path.clone(),
                expected: f.size,
                actual: size,
            });
        }
        if f.path == RECORD_FILE {
            // Kept in memory for the commit (and written to staging on a site).
            if f.size > MAX_MANIFEST {
                return Err(ImportError::BadManifest(format!(
                    "{RECORD_FILE} is larger than 64 MiB"
                )));
            }
            let mut bytes = Vec::new();
            let (digest, total) =
                hash_copy(reader, &mut bytes, (&f.path, f.size), Path::new("memory"))?;
            self.checked(f, digest, total)?;
            if let Some(SiteSink { staging, .. }) = self.sink.site() {
                write_synced(&staging.join(RECORD_FILE), &bytes)?;
            }
            self.record = Some(bytes);
            return Ok(());
        }
        let Some(SiteSink {
            site,
            lock,
            staging,
        }) = self.sink.site()
        else {
            let (digest, total) = hash_copy(
                reader,
                &mut io::sink(),
                (&f.path, f.size),
                Path::new("nowhere"),
            )?;
            return self.checked(f, digest, total);
        };
        let store = site.store();
        if f.path.starts_with("blobs/sha256/") {
            return self.put_blob(store, f, |store| {
                store
                    .put_reader(
                        lock,
                        &format!("`{}`", f.path),
                        reader,
                        Some(f.sha256.clone()),
                        Some(f.size),
                    )
                    .map(|_| ())
                    .map_err(|e| blob_err(f, e))
            });
        }
        let dest = staging.join(&f.path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        let mut out = PipeWriter::new(File::create(&dest).map_err(io_err("create", &dest))?);
        let (digest, total) = hash_copy(reader, &mut out, (&f.path, f.size), &dest)?;
        self.checked(f, digest, total)?;
        out.finish().map_err(io_err("write", &dest))?;
        #[cfg(unix)]
        if f.executable {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
                .map_err(io_err("set permissions of", &dest))?;
        }
        Ok(())
    }

    /// Puts the blob `f` into the site's store with `write`, unless it is there already,
    /// and counts it.
    fn put_blob(
        &mut self,
        store: &Store,
        f: &BundleFile,
        write: impl FnOnce(&Store) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        if store.has_blob(&f.sha256) {
            if let Some(r) = self.report.as_mut() {
                r.present_blobs += 1;
            }
            return Ok(());
        }
        write(store)?;
        if let Some(r) = self.report.as_mut() {
            r.new_blobs += 1;
            r.new_bytes += f.size;
            r.verified_bytes += f.size;
            r.verified_files += 1;
        }
        Ok(())
    }

    /// A blob of a volume set, kept on the site whole ([`crate::volumes::KeptBlob`]): it is
    /// hashed unless it already was, checked against bundle.json, and linked into the store.
    fn take_kept(&mut self, f: &BundleFile) -> Result<(), ImportError> {
        let Some(SiteSink { site, lock, .. }) = self.sink.site() else {
            return Err(ImportError::Internal("kept parts outside a site".into()));
        };
        if !self.seen.insert(f.path.clone()) {
            return Err(ImportError::DuplicateEntry {
                path: f.path.clone(),
            });
        }
        let kept = &self.kept[&f.sha256];
        let (path, hashed) = (kept.path.clone(), kept.hashed.clone());
        let (actual, size) = match hashed {
            Some(d) => {
                let meta = fs::metadata(&path).map_err(io_err("read", &path))?;
                (d, meta.len())
            }
            None => {
                let file = File::open(&path).map_err(io_err("read", &path))?;
                let mut hashing = HashingReader::new(file.take(f.size.saturating_add(1)));
                copy_stream(&mut hashing, &mut io::sink()).map_err(|e| match e {
                    CopyError::Read(e) | CopyError::Write(e) => io_err("read", &path)(e),
                })?;
                hashing.finish()
            }
        };
        if size != f.size {
            return Err(ImportError::SizeMismatch {
                path: f.path.clone(),
                expected: f.size,
                actual: size,
            });
        }
        if actual != f.sha256 {
            return Err(ImportError::DigestMismatch {
                path: f.path.clone(),
                expected: f.sha256.clone(),
                actual,
            });
        }
        self.put_blob(site.store(), f, |store| {
            store.adopt(lock, &path, &f.sha256)?;
            Ok(())
        })
    }

    /// Compares what was read with bundle.json.
    fn checked(&mut self, f: &BundleFile, actual: Digest, total: u64) -> Result<(), ImportError> {
        if total != f.size {
            return Err(ImportError::SizeMismatch {
                path: f.path.clone(),
                expected: f.size,
                actual: total,
            });
        }
        if actual != f.sha256 {
            return Err(ImportError::DigestMismatch {
                path: f.path.clone(),
                expected: f.sha256.clone(),
                actual,
            });
        }
        if let Some(r) = self.report.as_mut() {
            r.verified_bytes += total;
            r.verified_files += 1;
        }
        Ok(())
    }

    /// Everything checked: on a site, record the version and keep the bundle's files.
    fn commit(mut self, manifest: &BundleManifest) -> Result<ImportReport, ImportError> {
        let record = check_record(manifest, &self.record.take().unwrap_or_default())?;
        let mut report = self
            .report
            .take()
            .ok_or_else(|| ImportError::BadManifest("no manifest was read".into()))?;
        if let Some(into) = self.sink.site() {
            crate::fault::point("import-verified");
            check_host_platform(manifest)?;
            let note = ImportNote {
                signed_by: report.signed_by.clone(),
                unsigned_allowed: report.unsigned_allowed,
            };
            into.keep(manifest, &record, &note)?;
        }
        report.record = Some(record);
        Ok(report)
    }
}

/// The kind of a tar extension entry (one that describes the next entry), if it is one.
fn extension(kind: tar::EntryType) -> Option<&'static str> {
    match kind {
        tar::EntryType::GNULongName => Some("GNU long-name"),
        tar::EntryType::GNULongLink => Some("GNU long-link"),
        tar::EntryType::XHeader => Some("PAX"),
        tar::EntryType::XGlobalHeader => Some("PAX global"),
        _ => None,
    }
}

fn trim_nul(mut name: Vec<u8>) -> Vec<u8> {
    while name.last() == Some(&0) {
        name.pop();
    }
    name
}

/// The `path` record of a PAX header, if any. A `size` record is refused: bundles never
/// need one (GNU headers carry any size), and honouring it would change where the next
/// header is.
fn pax_path(data: &[u8], tar_path: &Path) -> Result<Option<Vec<u8>>, ImportError> {
    let mut name = None;
    for ext in tar::PaxExtensions::new(data) {
        let ext =
            ext.map_err(|e| not_a_bundle(tar_path, &format!("bad PAX header: {}", brief(&e))))?;
        match ext.key_bytes() {
            b"path" => name = Some(ext.value_bytes().to_vec()),
            b"size" | b"GNU.sparse.size" | b"GNU.sparse.realsize" => {
                return Err(not_a_bundle(
                    tar_path,
                    "a PAX header overrides an entry's size, which bundles never do",
                ))
            }
            _ => {}
        }
    }
    Ok(name)
}

/// Whether the file begins with a tar header (its checksum is right), and rewinds it. The
/// tar reader's own error for, say, a text file quotes the file's bytes.
fn starts_with_tar_header(file: &mut File) -> io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match file.read(&mut block[got..])? {
            0 => break,
            n => got += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    if got < block.len() {
        return Ok(false);
    }
    if block.iter().all(|b| *b == 0) {
        return Ok(true); // an empty archive: "no bundle.json" says it better
    }
    let field = String::from_utf8_lossy(&block[148..156]);
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return Ok(false);
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    Ok(sum == stored)
}

/// An error's first line, at most 120 characters: tar errors can quote raw bytes.
fn brief(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// Parses record.json and checks it is the manifest's version.
fn check_record(manifest: &BundleManifest, bytes: &[u8]) -> Result<VersionRecord, ImportError> {
    let record: VersionRecord = serde_json::from_slice(bytes)
        .map_err(|e| ImportError::BadManifest(format!("{RECORD_FILE}: {e}")))?;
    if record.app != manifest.app || record.version != manifest.version.as_str() {
        return Err(ImportError::RecordMismatch {
            expected: format!("{} {}", manifest.app, manifest.version),
            found: format!("{} {}", quoted(&record.app), quoted(&record.version)),
        });
    }
    if record.model.app.name != record.app || record.version != record.model.app.version.as_str() {
        return Err(ImportError::BadManifest(format!(
            "{RECORD_FILE}: its model is {} {}, the record {} {}",
            quoted(&record.model.app.name),
            quoted(&record.model.app.version),
            record.app,
            record.version
        )));
    }
    let mut platforms = record.model.app.platforms();
    let mut listed = manifest.platforms.clone();
    platforms.sort();
    listed.sort();
    if platforms != listed {
        return Err(ImportError::BadManifest(format!(
            "bundle.json lists the platforms {}, {RECORD_FILE} {}",
            listed.join(", "),
            platforms.join(", ")
        )));
    }
    check_model(&record)?;
    Ok(record)
}

/// Checks the model inside a record by every rule `appmodel validate` applies (names that
/// reach paths, volume paths, references), as if the vendor's file were read again.
fn check_model(record: &VersionRecord) -> Result<(), ImportError> {
    let text = serde_json::to_string_pretty(&record.model)
        .map_err(|e| ImportError::BadManifest(format!("{RECORD_FILE}: {e}")))?;
    match appmodel_model::parse_model(format!("{RECORD_FILE} (model)").into(), text) {
        Ok(_) => Ok(()),
        Err(appmodel_model::ModelError::Invalid(report)) => {
            let first = report
                .diagnostics
                .first()
                .map(|d| format!("{}: {}", d.path, d.message))
                .unwrap_or_default();
            Err(ImportError::BadManifest(format!(
                "{RECORD_FILE}: its model is not valid ({} problems; first: {first})",
                report.diagnostics.len()
            )))
        }
        Err(e) => Err(ImportError::BadManifest(format!("{RECORD_FILE}: {e}"))),
    }
}

/// A compose or systemd bundle must carry this host's platform (a helm bundle's images run
/// on the cluster's nodes, not here).
pub fn check_host_platform(manifest: &BundleManifest) -> Result<(), ImportError> {
    runs_on_host(
        &manifest.app,
        &manifest.version,
        manifest.form,
        &manifest.platforms,
    )
}

/// Whether a version of `form` built for `platforms` can run on this host (a helm form's
/// images run on the cluster's nodes, so any platform will do).
pub fn runs_on_host(
    app: &str,
    version: &str,
    form: Form,
    platforms: &[String],
) -> Result<(), ImportError> {
    let host = appmodel_model::bundle::host_platform();
    if form == Form::Helm || platforms.contains(&host) {
        return Ok(());
    }
    Err(ImportError::WrongPlatform {
        app: app.to_string(),
        version: version.to_string(),
        form,
        bundle: platforms.to_vec(),
        host,
    })
}

/// Streams the bundle file `path` (`size` bytes expected) from `reader` into `out`
/// (written at `out_path`), hashing, with progress on a terminal. Returns the digest and
/// the byte count.
fn hash_copy(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    (path, size): (&str, u64),
    out_path: &Path,
) -> Result<(Digest, u64), ImportError> {
    let task = progress::sized_task(&format!("checking `{path}`"), Some(size));
    let mut hashing = HashingReader::new(progress::Reading::new(reader, task));
    copy_stream(&mut hashing, out).map_err(|e| match e {
        CopyError::Read(e) => io_err("read", Path::new(path))(e),
        CopyError::Write(e) => io_err("write", out_path)(e),
    })?;
    Ok(hashing.finish())
}

/// Reads a tar member that is kept in memory (bundle.json, its signature), refusing one
/// over `cap` bytes.
fn read_tar_member(
    reader: &mut dyn Read,
    tar_path: &Path,
    name: &str,
    cap: u64,
) -> Result<Vec<u8>, ImportError> {
    input::read_capped(reader, cap).map_err(|e| refused(name, tar_path, e))
}

/// Checks the signature against the trusted keys. Returns the signing key id, and whether a
/// signature was present but not checked (verifying with no key given or pinned).
pub(crate) fn check_signature(
    keys: &[(String, String)],
    manifest: &[u8],
    signature: Option<&str>,
    policy: Policy,
) -> Result<(Option<String>, bool), ImportError> {
    let pinned = || {
        keys.iter()
            .map(|(n, _)| n.trim_end_matches(".pub").to_string())
            .collect::<Vec<_>>()
    };
    let Some(sig) = signature else {
        return match policy {
            Policy::Site {
                allow_unsigned: true,
            } => Ok((None, false)),
            Policy::Check if keys.is_empty() => Ok((None, false)),
            _ => Err(ImportError::Unsigned { keys: pinned() }),
        };
    };
    let parsed = appmodel_signing::Signature::from_text(sig)
        .map_err(|e| ImportError::BadSignature(e.to_string()))?;
    // A signature from a key nobody trusts proves nothing: it is treated as no signature
    // where that is acceptable (verifying without keys, or `--allow-unsigned`).
    let unverifiable = || match policy {
        Policy::Check if keys.is_empty() => Ok((None, true)),
        Policy::Site {
            allow_unsigned: true,
        } => Ok((None, true)),
        _ => Err(ImportError::UntrustedKey {
            key_id: parsed.key_id(),
            pinned: pinned(),
        }),
    };
    let mut last = String::new();
    let mut known = false;
    for (name, text) in keys {
        let key = match appmodel_signing::PublicKey::from_text(text) {
            Ok(k) => k,
            Err(e) => {
                last = format!("trusted key `{name}`: {e}");
                continue;
            }
        };
        if key.key_id() != parsed.key_id() {
            continue;
        }
        known = true;
        match parsed.verify(&key, &mut &manifest[..]) {
            Ok(v) => return Ok((Some(v.key_id), false)),
            Err(e) => last = e.to_string(),
        }
    }
    if !known {
        return unverifiable();
    }
    Err(ImportError::BadSignature(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the signature policy: (signature, trusted keys, policy) -> outcome.
    #[test]
    fn the_signature_policy_is_strict_by_default() {
        let vendor = appmodel_signing::KeyPair::generate("vendor").unwrap();
        let other = appmodel_signing::KeyPair::generate("other").unwrap();
        let manifest = b"{\"app\": \"demo\"}";
        let sig = appmodel_signing::sign(vendor.secret_key(), &mut &manifest[..], "t")
            .unwrap()
            .to_text();
        let key = |k: &appmodel_signing::KeyPair| {
            let p = k.secret_key().public_key();
            (format!("{}.pub", p.key_id()), p.to_text())
        };
        let id = vendor.secret_key().key_id();
        let strict = Policy::Site {
            allow_unsigned: false,
        };
        let lax = Policy::Site {
            allow_unsigned: true,
        };
        let check = |sig: Option<&str>, keys: &[(String, String)], policy| {
            check_signature(keys, manifest, sig, policy).map_err(|e| e.to_string())
        };
        let mine = [key(&vendor)];
        let theirs = [key(&other)];
        // Unsigned.
        assert!(check(None, &[], strict)
            .unwrap_err()
            .starts_with("the bundle is unsigned"));
        assert_eq!(check(None, &[], lax), Ok((None, false)));
        assert_eq!(check(None, &[], Policy::Check), Ok((None, false)));
        assert!(check(None, &mine, Policy::Check).is_err());
        // Signed by a trusted key.
        for policy in [strict, lax, Policy::Check] {
            assert_eq!(
                check(Some(&sig), &mine, policy),
                Ok((Some(id.clone()), false))
            );
        }
        // Signed by a key nobody here trusts.
        let refused = check(Some(&sig), &theirs, strict).unwrap_err();
        assert!(
            refused.contains(&format!(
                "signed by key `{id}`, which this site does not trust"
            )),
            "{refused}"
        );
        assert!(check(Some(&sig), &[], strict)
            .unwrap_err()
            .contains("(no key is pinned)"));
        assert_eq!(check(Some(&sig), &theirs, lax), Ok((None, true)));
        assert_eq!(check(Some(&sig), &[], Policy::Check), Ok((None, true)));
        assert!(check(Some(&sig), &theirs, Policy::Check).is_err());
        // A trusted key's signature over other bytes is refused whatever the policy.
        let forged = appmodel_signing::sign(vendor.secret_key(), &mut &b"other"[..], "t")
            .unwrap()
            .to_text();
        for policy in [strict, lax, Policy::Check] {
            let e = check(Some(&forged), &mine, policy).unwrap_err();
            assert!(e.starts_with("the bundle's signature is not valid"), "{e}");
        }
    }

    /// Regression: site trust defect 5 — the old bundle directory was moved away before the
    /// new one was renamed in, so a kill in between lost it.
    #[test]
    fn a_bundle_directory_is_replaced_in_one_step_or_put_back_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("bundles/demo/1.0.0/compose");
        let new = dir.path().join("staging/import-1");
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&new).unwrap();
        fs::write(dest.join("bundle.json"), "old").unwrap();
        fs::write(new.join("bundle.json"), "new").unwrap();
        replace_dir(&new, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("bundle.json")).unwrap(), "new");
        assert!(
            !new.exists(),
            "the old bundle went with the staging directory"
        );
        // Into a place that is empty.
        let fresh = dir.path().join("bundles/demo/1.1.0/compose");
        fs::create_dir_all(fresh.parent().unwrap()).unwrap();
        fs::create_dir_all(&new).unwrap();
        replace_dir(&new, &fresh).unwrap();
        assert!(fresh.is_dir());

        // The fallback's crash window (old moved aside, new not yet in): the lock puts the
        // old one back.
        let site = Site::open(dir.path()).unwrap();
        fs::rename(&dest, replaced_path(&dest)).unwrap();
        drop(site.lock().unwrap());
        assert_eq!(fs::read_to_string(dest.join("bundle.json")).unwrap(), "new");
        assert!(!replaced_path(&dest).exists());
        // Both there (the crash came after the rename in): the aside copy goes.
        copy_dir(&dest, &replaced_path(&dest));
        drop(site.lock().unwrap());
        assert!(dest.is_dir() && !replaced_path(&dest).exists());
    }

    fn copy_dir(src: &Path, dst: &Path) {
        fs::create_dir_all(dst).unwrap();
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }

    #[test]
    fn brief_keeps_the_first_line_and_at_most_120_characters() {
        assert_eq!(brief(&"short"), "short");
        assert_eq!(
            brief(&"numeric field was not a number: login\nroot:x:0:0"),
            "numeric field was not a number: login"
        );
        let long = "é".repeat(200);
        assert_eq!(brief(&long), format!("{}...", "é".repeat(120)));
    }

    #[test]
    fn a_tar_header_is_recognised_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let tar_path = dir.path().join("a.tar");
        let mut b = tar::Builder::new(File::create(&tar_path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_cksum();
        b.append_data(&mut h, "x", &b"abc"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let mut f = File::open(&tar_path).unwrap();
        assert!(starts_with_tar_header(&mut f).unwrap());
        // Rewound: the archive still reads from the start.
        assert_eq!(tar::Archive::new(f).entries().unwrap().count(), 1);

        let mut bytes = std::fs::read(&tar_path).unwrap();
        bytes[0] ^= 1; // the name changes, the checksum does not
        let bad = dir.path().join("bad.tar");
        File::create(&bad).unwrap().write_all(&bytes).unwrap();
        assert!(!starts_with_tar_header(&mut File::open(&bad).unwrap()).unwrap());
        let short = dir.path().join("short");
        std::fs::write(&short, b"not 512 bytes").unwrap();
        assert!(!starts_with_tar_header(&mut File::open(&short).unwrap()).unwrap());
    }
}
