//! Volume sets on site: `appmodel import` and `verify` of one volume, several, or a
//! directory of them, as directories (a mounted disc or stick) or ISO images read as files
//! ([`appmodel_model::volume`], docs/bundle-format.md "Volume sets").
//!
//! Each volume is checked on its own before a byte of it is kept: its `volume.json` and the
//! bundle.json it carries against their signatures, that volume.json is for that
//! bundle.json and this set, nothing unlisted on it, and every file and part against its
//! sha256. Verified parts wait in `STATE/volume-sets/<set>/` (removed once the set is
//! imported), so volumes come in any order, a volume given twice is read once, and a
//! pulled stick or a bad disc costs only that volume: the next import goes on from what is
//! kept. A blob cut in several parts is put together as its parts are kept, each written
//! at its offset into one file. When every part is there, the result is imported as one
//! bundle directory, each blob checked once more as a whole against bundle.json by the
//! ordinary import, so nothing becomes visible before the whole bundle verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use appmodel_media::{IsoError, IsoImage};
use appmodel_model::bundle::{BundleManifest, MANIFEST_FILE, SIGNATURE_FILE};
use appmodel_model::input::{self, InputError, Links};
use appmodel_model::volume::{
    Part, VolumeManifest, MAX_VOLUME_MANIFEST, VOLUME_FILE, VOLUME_SIGNATURE_FILE,
};
use appmodel_model::Digest;
use appmodel_store::pipe::PipeWriter;
use appmodel_store::{copy_stream, write_synced, CopyError, HashingReader};
use sha2::{Digest as _, Sha256};

use crate::import::Policy;
use crate::{io_err, ImportError};

/// A file opened on a volume, and its size.
type Opened<'a> = (Box<dyn Read + 'a>, u64);

/// One volume: a directory, or an ISO image read as a file.
pub enum Medium {
    Dir(PathBuf),
    Iso(PathBuf, Box<IsoImage>),
}

fn not_a_volume(path: &Path, reason: &str) -> ImportError {
    ImportError::NotABundle {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Medium {
    /// The volume at `path`, if it is one (it has `volume.json` at its root).
    fn at(path: &Path) -> Result<Option<Medium>, ImportError> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
        if meta.is_dir() {
            return Ok(fs::symlink_metadata(path.join(VOLUME_FILE))
                .is_ok()
                .then(|| Medium::Dir(path.to_path_buf())));
        }
        if meta.is_file() && appmodel_media::iso::is_iso(path) {
            let img = IsoImage::open(path).map_err(|e| iso_err(path, e))?;
            if img.entries.iter().any(|e| e.path == VOLUME_FILE) {
                return Ok(Some(Medium::Iso(path.to_path_buf(), Box::new(img))));
            }
        }
        Ok(None)
    }

    pub fn path(&self) -> &Path {
        match self {
            Medium::Dir(p) | Medium::Iso(p, _) => p,
        }
    }

    /// Every file on it, by path.
    fn names(&self) -> Result<BTreeMap<String, u64>, ImportError> {
        match self {
            Medium::Iso(_, img) => Ok(img
                .entries
                .iter()
                .map(|e| (e.path.clone(), e.size))
                .collect()),
            Medium::Dir(root) => {
                let mut out = BTreeMap::new();
                let mut stack = vec![root.clone()];
                while let Some(d) = stack.pop() {
                    for entry in fs::read_dir(&d).map_err(io_err("read", &d))? {
                        let entry = entry.map_err(io_err("read", &d))?;
                        let p = entry.path();
                        let rel = p
                            .strip_prefix(root)
                            .unwrap_or(&p)
                            .to_string_lossy()
                            .into_owned();
                        let kind = entry.file_type().map_err(io_err("read", &p))?;
                        if kind.is_dir() {
                            stack.push(p);
                        } else if kind.is_file() {
                            let len = entry.metadata().map_err(io_err("read", &p))?.len();
                            out.insert(rel, len);
                        } else {
                            return Err(ImportError::UnsafeEntry {
                                path: rel,
                                reason: "not a regular file".into(),
                            });
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// A reader of the file `name` and its size; none when it is not there.
    fn open(&self, name: &str) -> Result<Option<Opened<'_>>, ImportError> {
        match self {
            Medium::Iso(path, img) => {
                let Some(e) = img.entries.iter().find(|e| e.path == name) else {
                    return Ok(None);
                };
                let r = img.open_file(e).map_err(|e| iso_err(path, e))?;
                Ok(Some((Box::new(r), e.size)))
            }
            Medium::Dir(root) => {
                let p = root.join(name);
                match input::open_regular(&p, Links::Refuse) {
                    Ok((f, meta)) => Ok(Some((Box::new(f), meta.len()))),
                    Err(InputError::NotFound) => Ok(None),
                    Err(InputError::Io(source)) => Err(ImportError::Io {
                        action: "read",
                        path: p,
                        source,
                    }),
                    Err(other) => Err(ImportError::UnsafeEntry {
                        path: name.to_string(),
                        reason: other.to_string(),
                    }),
                }
            }
        }
    }

    /// A small file read whole, refused over `cap` bytes.
    fn read_small(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>, ImportError> {
        let Some((r, size)) = self.open(name)? else {
            return Ok(None);
        };
        if size > cap {
            return Err(ImportError::UnsafeEntry {
                path: name.to_string(),
                reason: format!("it is {size} bytes, more than the {cap} bytes allowed"),
            });
        }
        input::read_capped(r, cap)
            .map(Some)
            .map_err(|e| not_a_volume(self.path(), &format!("cannot read `{name}`: {e}")))
    }
}

fn iso_err(path: &Path, e: IsoError) -> ImportError {
    match e {
        IsoError::Io { source, .. } => io_err("read", path)(source),
        other => not_a_volume(path, &other.to_string()),
    }
}

/// The volumes at `path`: the volume it is, or the volumes in the directory it is (each a
/// directory or an ISO image, in name order); none when it holds no volume.
pub fn media_at(path: &Path) -> Result<Vec<Medium>, ImportError> {
    if let Some(m) = Medium::at(path)? {
        return Ok(vec![m]);
    }
    let Ok(entries) = fs::read_dir(path) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        if let Some(m) = Medium::at(&p)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// One volume, checked: its manifest and the bundle's.
pub struct Checked {
    pub volume: VolumeManifest,
    pub bundle: BundleManifest,
    pub bundle_bytes: Vec<u8>,
    pub bundle_signature: Option<String>,
    pub signed_by: Option<String>,
}

/// Reads and checks `m`'s volume.json and bundle.json (signatures, that they belong
/// together, that nothing unlisted is on it). Reads no part.
pub(crate) fn check_medium(
    m: &Medium,
    keys: &[(String, String)],
    policy: Policy,
) -> Result<Checked, ImportError> {
    let bad = |reason: String| not_a_volume(m.path(), &reason);
    let vbytes = m
        .read_small(VOLUME_FILE, MAX_VOLUME_MANIFEST)?
        .ok_or_else(|| bad("it has no volume.json".into()))?;
    let vsig = m
        .read_small(VOLUME_SIGNATURE_FILE, crate::import::SIGNATURE_CAP)?
        .map(|s| String::from_utf8_lossy(&s).into_owned());
    let (signed_by, _) = crate::import::check_signature(keys, &vbytes, vsig.as_deref(), policy)
        .map_err(|e| bad(format!("{VOLUME_FILE}: {e}")))?;
    let volume: VolumeManifest = serde_json::from_slice(&vbytes)
        .map_err(|e| bad(format!("{VOLUME_FILE} is not a volume manifest: {e}")))?;
    let bundle_bytes = m
        .read_small(MANIFEST_FILE, crate::import::MANIFEST_CAP)?
        .ok_or_else(|| bad("it has no bundle.json".into()))?;
    let bundle_signature = m
        .read_small(SIGNATURE_FILE, crate::import::SIGNATURE_CAP)?
        .map(|s| String::from_utf8_lossy(&s).into_owned());
    crate::import::check_signature(keys, &bundle_bytes, bundle_signature.as_deref(), policy)?;
    if Digest::from_sha256(&Sha256::digest(&bundle_bytes)) != volume.bundle {
        return Err(bad(format!(
            "its {VOLUME_FILE} is for another bundle.json than the one on it"
        )));
    }
    let bundle: BundleManifest = serde_json::from_slice(&bundle_bytes)
        .map_err(|e| ImportError::BadManifest(e.to_string()))?;
    volume
        .check(&bundle)
        .map_err(|e| bad(format!("{VOLUME_FILE}: {e}")))?;
    // Nothing but its own files may be on it.
    let mut allowed: BTreeSet<String> = [
        MANIFEST_FILE,
        SIGNATURE_FILE,
        VOLUME_FILE,
        VOLUME_SIGNATURE_FILE,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    allowed.extend(
        bundle
            .files
            .iter()
            .filter(|f| !f.path.starts_with("blobs/"))
            .map(|f| f.path.clone()),
    );
    allowed.extend(volume.here().map(Part::path));
    for name in m.names()?.keys() {
        if !allowed.contains(name) {
            return Err(ImportError::UnlistedFile { path: name.clone() });
        }
    }
    Ok(Checked {
        volume,
        bundle,
        bundle_bytes,
        bundle_signature,
        signed_by,
    })
}

fn damaged(m: &Medium, name: &str, reason: String) -> ImportError {
    ImportError::VolumeDamaged {
        volume: m.path().to_path_buf(),
        file: name.to_string(),
        reason,
    }
}

/// Fails unless what was read of `name` is `size` bytes hashing to `sha256`.
fn check_read(
    m: &Medium,
    name: &str,
    (size, sha256): (u64, &Digest),
    (actual, n): (Digest, u64),
) -> Result<(), ImportError> {
    if n != size {
        return Err(damaged(
            m,
            name,
            format!("{n} bytes could be read, the manifest says {size}"),
        ));
    }
    if &actual != sha256 {
        return Err(damaged(
            m,
            name,
            format!("its sha256 is `{actual}`, the manifest says `{sha256}`"),
        ));
    }
    Ok(())
}

/// Streams `name` from `m` into `dest` (through a temporary name, synced), checking it is
/// `size` bytes hashing to `sha256`. Nothing is left at `dest` when it is not.
fn take(
    m: &Medium,
    name: &str,
    (size, sha256): (u64, &Digest),
    dest: &Path,
) -> Result<u64, ImportError> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    let tmp = dest.with_extension("partial");
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let n = stream(m, name, (size, sha256), (file, &tmp, 0), None)?;
        fs::rename(&tmp, dest).map_err(io_err("rename into", dest))?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Streams `name` from `m` into `file` (at `path`) from `offset` on, synced, checking it is
/// `size` bytes hashing to `sha256` and handing what it writes to `tap`. What it wrote is
/// not to be trusted when it fails.
fn stream(
    m: &Medium,
    name: &str,
    (size, sha256): (u64, &Digest),
    (file, path, offset): (File, &Path, u64),
    tap: Option<appmodel_store::pipe::Tap>,
) -> Result<u64, ImportError> {
    let Some((reader, found)) = m.open(name)? else {
        return Err(damaged(m, name, "it is not on the volume".into()));
    };
    if found != size {
        return Err(damaged(
            m,
            name,
            format!("it is {found} bytes, the manifest says {size}"),
        ));
    }
    // Hashing here while a thread writes behind (and the kernel flushes behind it).
    let mut out = PipeWriter::at(file, offset, tap);
    let mut hashing = HashingReader::new(reader.take(size.saturating_add(1)));
    copy_stream(&mut hashing, &mut out).map_err(|e| match e {
        CopyError::Read(e) => io_err("read", &m.path().join(name))(e),
        CopyError::Write(e) => io_err("write", path)(e),
    })?;
    let (actual, n) = hashing.finish();
    check_read(m, name, (size, sha256), (actual, n))?;
    out.finish().map_err(io_err("write", path))?;
    Ok(n)
}

/// Reads every file and part of `m` (already [`check_medium`]ed) and checks it, keeping
/// nothing. Returns the bytes read.
pub(crate) fn verify_medium(m: &Medium, c: &Checked) -> Result<u64, ImportError> {
    let mut read = 0;
    let mut check = |name: &str, size: u64, sha256: &Digest| -> Result<(), ImportError> {
        let Some((reader, _)) = m.open(name)? else {
            return Err(damaged(m, name, "it is not on the volume".into()));
        };
        let mut hashing = HashingReader::new(reader.take(size.saturating_add(1)));
        copy_stream(&mut hashing, &mut io::sink()).map_err(|e| match e {
            CopyError::Read(e) | CopyError::Write(e) => io_err("read", &m.path().join(name))(e),
        })?;
        let (actual, n) = hashing.finish();
        check_read(m, name, (size, sha256), (actual, n))?;
        read += n;
        Ok(())
    };
    for f in c
        .bundle
        .files
        .iter()
        .filter(|f| !f.path.starts_with("blobs/"))
    {
        check(&f.path, f.size, &f.sha256)?;
    }
    let mut seen = BTreeSet::new();
    for p in c.volume.here().filter(|p| seen.insert(p.sha256.clone())) {
        check(&p.path(), p.size, &p.sha256)?;
    }
    Ok(read)
}

/// What [`gather`] found.
pub enum Gathered {
    /// Every part is there: the bundle directory (every file but the blobs) and where
    /// each blob's parts are, to import.
    Complete(PathBuf, Kept),
    /// These volumes (numbers) are still needed, of `of`.
    Missing { missing: Vec<u32>, of: u32 },
}

/// The staging directory of a set.
fn set_dir(site: &crate::Site, set: &str) -> PathBuf {
    site.volume_sets().join(&set[..16.min(set.len())])
}

/// Checks each of `media` and keeps its files and parts in the set's directory; when the
/// set is complete, puts the bundle together there. Every volume's manifests are checked
/// before any part is read, and a volume's parts are kept only once all of them verified:
/// a refused volume leaves nothing behind.
pub(crate) fn gather(
    site: &crate::Site,
    media: &[Medium],
    keys: &[(String, String)],
    policy: Policy,
) -> Result<(Gathered, Checked), ImportError> {
    let mut checked = Vec::new();
    for m in media {
        let c = check_medium(m, keys, policy)?;
        if let Some(f) = checked.first().map(|(_, f): &(&Medium, Checked)| f) {
            if c.volume.set != f.volume.set {
                return Err(not_a_volume(
                    m.path(),
                    &format!(
                        "it is volume {} of another set ({} {} split for {} media), not of the {} {} set of `{}`",
                        c.volume.volume,
                        c.volume.app,
                        c.volume.version,
                        appmodel_model::record::human_bytes(c.volume.capacity),
                        f.volume.app,
                        f.volume.version,
                        checked[0].0.path().display()
                    ),
                ));
            }
        }
        checked.push((m, c));
    }
    let Some((_, first)) = checked.first() else {
        return Err(ImportError::Internal("no volume to gather".into()));
    };
    let dir = set_dir(site, &first.volume.set);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let incoming = dir.join(format!("incoming-{}", std::process::id()));
    let _ = fs::remove_dir_all(&incoming);
    let cut = cut_blobs(first);
    let mut whole = Whole::new();
    for (m, c) in &checked {
        // (path in the set's directory, path while it is checked)
        let mut taken: Vec<(PathBuf, PathBuf)> = Vec::new();
        // The pieces written in place, marked once all of this volume verified, and the
        // assembling files this volume began (removed if it is refused).
        let mut marks: Vec<PathBuf> = Vec::new();
        let mut begun: Vec<PathBuf> = Vec::new();
        let result = (|| {
            for f in c
                .bundle
                .files
                .iter()
                .filter(|f| !f.path.starts_with("blobs/"))
            {
                let name = format!("files/{}", f.path);
                if !dir.join(&name).exists() {
                    take(m, &f.path, (f.size, &f.sha256), &incoming.join(&name))?;
                    taken.push((dir.join(&name), incoming.join(&name)));
                }
            }
            let mut seen = BTreeSet::new();
            for p in c.volume.here() {
                if let Some((blob, _)) = cut.get(&p.file) {
                    let mark = placed(&dir, blob, p.offset);
                    if !mark.exists() && !marks.contains(&mark) {
                        place(m, p, (&dir, blob), (&mut whole, &mut begun))?;
                        marks.push(mark);
                    }
                } else if seen.insert(p.sha256.clone()) && !dir.join(p.path()).exists() {
                    take(m, &p.path(), (p.size, &p.sha256), &incoming.join(p.path()))?;
                    taken.push((dir.join(p.path()), incoming.join(p.path())));
                }
            }
            Ok::<(), ImportError>(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&incoming);
            for file in begun {
                let _ = fs::remove_file(file);
            }
            return Err(e);
        }
        for (keep, from) in taken {
            if let Some(parent) = keep.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            fs::rename(&from, &keep).map_err(io_err("rename into", &keep))?;
        }
        if !marks.is_empty() {
            // The blobs' files are named for good before any piece of them is marked.
            appmodel_store::sync_dir(&dir.join("assembling"))?;
        }
        for mark in marks {
            if let Some(parent) = mark.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            write_synced(&mark, b"")?;
        }
        let _ = fs::remove_dir_all(&incoming);
    }
    write_synced(&dir.join(MANIFEST_FILE), &first.bundle_bytes)?;
    if let Some(sig) = &first.bundle_signature {
        write_synced(&dir.join(SIGNATURE_FILE), sig.as_bytes())?;
    }
    let missing = first.volume.volumes_of(
        first
            .volume
            .parts
            .iter()
            .filter(|p| !is_kept(&dir, &cut, p)),
    );
    let (_, c) = checked.swap_remove(0);
    if !missing.is_empty() {
        let of = c.volume.volumes;
        return Ok((Gathered::Missing { missing, of }, c));
    }
    let (bundle, kept) = assemble(&dir, &c, &cut, whole)?;
    Ok((Gathered::Complete(bundle, kept), c))
}

/// The blobs of `c`'s bundle that are cut in several parts, by path: their sha256 and size.
/// A set keeps each of them as one file, `assembling/<sha256>`, its parts written in
/// place at their offsets (and each marked in `placed/` once verified and synced), so the
/// blob is put together where it is written, with no second copy.
fn cut_blobs(c: &Checked) -> BTreeMap<String, (Digest, u64)> {
    let mut parts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &c.volume.parts {
        *parts.entry(p.file.as_str()).or_default() += 1;
    }
    c.bundle
        .files
        .iter()
        .filter(|f| parts.get(f.path.as_str()).is_some_and(|n| *n > 1))
        .map(|f| (f.path.clone(), (f.sha256.clone(), f.size)))
        .collect()
}

fn assembling(dir: &Path, blob: &Digest) -> PathBuf {
    dir.join("assembling").join(blob.hex())
}

/// The mark that the part of `blob` at `offset` is in its assembling file, verified.
fn placed(dir: &Path, blob: &Digest, offset: u64) -> PathBuf {
    dir.join("placed").join(format!("{}-{offset}", blob.hex()))
}

fn is_kept(dir: &Path, cut: &BTreeMap<String, (Digest, u64)>, p: &Part) -> bool {
    match cut.get(&p.file) {
        Some((blob, _)) => placed(dir, blob, p.offset).exists(),
        None => dir.join(p.path()).exists(),
    }
}

/// For each cut blob this import wrote from its start on: the hash of what it wrote so far
/// and where that ends. A blob whose parts all came in order, in one import, is hashed
/// whole as it is written (on the writer's thread), so it is not read again.
type Whole = BTreeMap<Digest, (Arc<Mutex<Sha256>>, u64)>;

/// Writes the part `p` of the cut blob `blob` into its assembling file at its offset,
/// checking it against its sha256; adds the file to `begun` when it creates it.
fn place(
    m: &Medium,
    p: &Part,
    (dir, blob): (&Path, &Digest),
    (whole, begun): (&mut Whole, &mut Vec<PathBuf>),
) -> Result<(), ImportError> {
    let target = assembling(dir, blob);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    let file = match File::options().create_new(true).write(true).open(&target) {
        Ok(f) => {
            begun.push(target.clone());
            f
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => File::options()
            .write(true)
            .open(&target)
            .map_err(io_err("open", &target))?,
        Err(e) => return Err(io_err("create", &target)(e)),
    };
    let (hash, at) = whole
        .entry(blob.clone())
        .or_insert_with(|| (Arc::new(Mutex::new(Sha256::new())), 0));
    let in_order = *at == p.offset;
    let tap = in_order.then(|| {
        let hash = hash.clone();
        Box::new(move |bytes: &[u8]| {
            hash.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .update(bytes)
        }) as appmodel_store::pipe::Tap
    });
    stream(
        m,
        &p.path(),
        (p.size, &p.sha256),
        (file, &target, p.offset),
        tap,
    )?;
    if in_order {
        *at += p.size;
    }
    Ok(())
}

/// A blob of an assembled set, kept on the site: the import makes it the store's blob
/// where it is (a hard link), after checking it is the blob.
pub struct KeptBlob {
    pub path: PathBuf,
    /// Its sha256, when it is already known: a blob of one part was hashed as the blob when
    /// it was kept, a cut blob whose parts came in order was hashed as they were written.
    /// Else the import reads it once to hash it.
    pub hashed: Option<Digest>,
}

/// The blobs of an assembled set, by sha256. The import takes them from here instead of
/// the bundle directory (which holds every other file).
pub type Kept = BTreeMap<Digest, KeptBlob>;

/// Puts the bundle directory together in `dir/bundle` from the kept files (hard links),
/// and lists where each blob is.
fn assemble(
    dir: &Path,
    c: &Checked,
    cut: &BTreeMap<String, (Digest, u64)>,
    whole: Whole,
) -> Result<(PathBuf, Kept), ImportError> {
    let out = dir.join("bundle");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(io_err("create", &out))?;
    let link = |src: &Path, dest: &Path| {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::hard_link(src, dest)
            .or_else(|_| fs::copy(src, dest).map(|_| ()))
            .map_err(io_err("copy", src))
    };
    link(&dir.join(MANIFEST_FILE), &out.join(MANIFEST_FILE))?;
    if dir.join(SIGNATURE_FILE).exists() {
        link(&dir.join(SIGNATURE_FILE), &out.join(SIGNATURE_FILE))?;
    }
    let mut kept = Kept::new();
    for f in &c.bundle.files {
        if f.path.starts_with("blobs/") {
            let blob = if let Some((sha256, size)) = cut.get(&f.path) {
                let hashed = whole
                    .get(sha256)
                    .filter(|(_, at)| at == size)
                    .map(|(h, _)| {
                        let h = h.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        Digest::from_sha256(&h.clone().finalize())
                    });
                KeptBlob {
                    path: assembling(dir, sha256),
                    hashed,
                }
            } else if let Some(p) = c.volume.parts.iter().find(|p| p.file == f.path) {
                KeptBlob {
                    path: dir.join(p.path()),
                    hashed: Some(p.sha256.clone()),
                }
            } else {
                // An empty blob has no part.
                let path = dir.join("empty");
                write_synced(&path, b"")?;
                KeptBlob { path, hashed: None }
            };
            kept.insert(f.sha256.clone(), blob);
            continue;
        }
        let dest = out.join(&f.path);
        link(&dir.join("files").join(&f.path), &dest)?;
        if f.executable {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
                .map_err(io_err("set permissions of", &dest))?;
        }
    }
    Ok((out, kept))
}

/// Removes a set's staging directory (after its import, or when it cannot be imported).
pub(crate) fn forget(site: &crate::Site, set: &str) {
    let _ = fs::remove_dir_all(set_dir(site, set));
}

/// Removes the staging directory of every set of `app` `version`: once that version is
/// imported (from a set, a tar, a disc), the parts kept of any of its sets are done with.
pub(crate) fn forget_version(site: &crate::Site, app: &str, version: &str) {
    let Ok(sets) = fs::read_dir(site.volume_sets()) else {
        return;
    };
    for set in sets.flatten() {
        let manifest = set.path().join(MANIFEST_FILE);
        let Ok(bytes) = input::read_regular(&manifest, crate::import::MANIFEST_CAP, Links::Refuse)
        else {
            continue;
        };
        if let Ok(m) = serde_json::from_slice::<BundleManifest>(&bytes) {
            if m.app == app && m.version == version {
                let _ = fs::remove_dir_all(set.path());
            }
        }
    }
}
