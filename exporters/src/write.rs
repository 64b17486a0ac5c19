//! Writing a planned bundle: the manifest (and signature) first, then every file in path
//! order. Store blobs are reflinked or hard-linked into a directory bundle when the
//! filesystem allows, copied otherwise; every copied byte is hashed and checked against the
//! plan. Output goes to a temporary name and is renamed into place when complete.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use appmodel_model::bundle::{MANIFEST_FILE, SIGNATURE_FILE};
use appmodel_model::Digest;
use appmodel_store::pipe::PipeWriter;
use appmodel_store::{copy_stream, progress, CopyError, HashingReader, Store};
use appmodel_store::{sync_dir, write_synced};

use crate::plan::{Plan, PlannedFile, Source};
use crate::{io_err, ExportError};

fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

pub(crate) fn open_source(store: &Store, f: &PlannedFile) -> Result<Box<dyn Read>, ExportError> {
    Ok(match &f.source {
        Source::Bytes(b) => Box::new(io::Cursor::new(b.clone())),
        Source::Blob(d) => Box::new(store.open_blob(d)?),
        Source::File(p) => Box::new(File::open(p).map_err(io_err("read", p))?),
        Source::Part { blob, offset } => {
            use std::io::Seek;
            let mut file = store.open_blob(blob)?;
            let at = io::SeekFrom::Start(*offset);
            file.seek(at)
                .map_err(io_err("read", &store.blob_path(blob)))?;
            Box::new(file.take(f.entry.size))
        }
    })
}

/// `reader` as it will be checked against the plan: hashed, with progress on a terminal.
fn checked_reader<'r>(
    reader: &'r mut dyn Read,
    f: &PlannedFile,
) -> HashingReader<progress::Reading<&'r mut dyn Read>> {
    let task = progress::sized_task(&format!("`{}`", f.entry.path), Some(f.entry.size));
    HashingReader::new(progress::Reading::new(reader, task))
}

/// Fails unless what was read is exactly the planned file.
fn expect_planned(f: &PlannedFile, (actual, size): (Digest, u64)) -> Result<(), ExportError> {
    if actual != f.entry.sha256 || size != f.entry.size {
        return Err(ExportError::CorruptBlob {
            digest: f.entry.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Writes a directory bundle. Returns the bytes reflinked or hard-linked from the store.
pub fn write_dir(
    store: &Store,
    plan: &Plan,
    signature: Option<&str>,
    out: &Path,
) -> Result<u64, ExportError> {
    if out.exists() {
        return Err(ExportError::OutputExists(out.to_path_buf()));
    }
    let tmp = partial_path(out);
    let _ = fs::remove_dir_all(&tmp);
    let result = write_dir_into(store, plan, signature, &tmp);
    match result {
        Ok(linked) => {
            fs::rename(&tmp, out).map_err(io_err("rename into", out))?;
            sync_dir(parent_dir(out))?;
            Ok(linked)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

pub(crate) fn write_dir_into(
    store: &Store,
    plan: &Plan,
    signature: Option<&str>,
    dir: &Path,
) -> Result<u64, ExportError> {
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    write_synced(&dir.join(MANIFEST_FILE), &plan.manifest_bytes)?;
    if let Some(sig) = signature {
        write_synced(&dir.join(SIGNATURE_FILE), sig.as_bytes())?;
    }
    let mut dirs = std::collections::BTreeSet::from([dir.to_path_buf()]);
    let mut linked = 0;
    for f in &plan.files {
        let dest = dir.join(&f.entry.path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            let mut d = parent;
            while d != dir && dirs.insert(d.to_path_buf()) {
                let Some(up) = d.parent() else { break };
                d = up;
            }
        }
        if let Source::Blob(d) = &f.source {
            // Store blobs are read-only and content-addressed: a reflink (an independent
            // file sharing the blob's extents) or a hard link is as good as a copy.
            if reflink(&store.blob_path(d), &dest)? {
                set_mode(&dest, if f.entry.executable { 0o755 } else { 0o644 })?;
                linked += f.entry.size;
                continue;
            }
            if fs::hard_link(store.blob_path(d), &dest).is_ok() {
                linked += f.entry.size;
                continue;
            }
        }
        expect_planned(f, copy_to(store, f, &dest)?)?;
        set_mode(&dest, if f.entry.executable { 0o755 } else { 0o644 })?;
    }
    // The names too, so a stick can be pulled as soon as export returns.
    for d in dirs.iter().rev() {
        sync_dir(d)?;
    }
    Ok(linked)
}

/// Streams `f`'s source into the new file `dest`, hashing it: what was read (its sha256 and
/// size). Written and flushed by a second thread while this one reads and hashes; synced,
/// so a stick can be pulled as soon as export returns.
pub(crate) fn copy_to(
    store: &Store,
    f: &PlannedFile,
    dest: &Path,
) -> Result<(Digest, u64), ExportError> {
    let mut reader = open_source(store, f)?;
    let file = File::create(dest).map_err(io_err("create", dest))?;
    let mut out = PipeWriter::new(file);
    let mut checked = checked_reader(&mut reader, f);
    copy_stream(&mut checked, &mut out).map_err(|e| match e {
        CopyError::Read(e) => io_err("read the source of", dest)(e),
        CopyError::Write(e) => io_err("write", dest)(e),
    })?;
    let read = checked.finish();
    out.finish().map_err(io_err("write", dest))?;
    Ok(read)
}

/// The directory `out` is created in.
fn parent_dir(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes `dest` share `src`'s extents (FICLONE: btrfs, XFS, bcachefs): a new, independent
/// file made without copying a byte. `false` where the filesystem cannot (ext4, tmpfs,
/// another filesystem), leaving no `dest` behind.
#[cfg(target_os = "linux")]
fn reflink(src: &Path, dest: &Path) -> Result<bool, ExportError> {
    let Ok(from) = File::open(src) else {
        return Ok(false);
    };
    let to = File::options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io_err("create", dest))?;
    if rustix::fs::ioctl_ficlone(&to, &from).is_ok() {
        to.sync_all().map_err(io_err("write", dest))?;
        return Ok(true);
    }
    drop(to);
    fs::remove_file(dest).map_err(io_err("remove", dest))?;
    Ok(false)
}

#[cfg(not(target_os = "linux"))]
fn reflink(_src: &Path, _dest: &Path) -> Result<bool, ExportError> {
    Ok(false)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), ExportError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err("set permissions of", path))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), ExportError> {
    Ok(())
}

fn header(size: u64, executable: bool) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(if executable { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes an ISO image of the bundle in one pass: the manifest and signature, then each
/// planned file streamed from the store (or the tool, or its bytes) and checked against the
/// plan on the way, as for a tar; fsync'd, then renamed into place.
pub fn write_iso(
    store: &Store,
    plan: &Plan,
    signature: Option<&str>,
    out: &Path,
    opts: &appmodel_media::IsoOptions,
) -> Result<(), ExportError> {
    use appmodel_media::IsoFile;
    if out.exists() {
        return Err(ExportError::OutputExists(out.to_path_buf()));
    }
    let tmp = partial_path(out);
    // The image's files in path order: the manifest, its signature, the planned files.
    let mut files = vec![(MANIFEST_FILE, plan.manifest_bytes.len() as u64, false, None)];
    if let Some(sig) = signature {
        files.push((SIGNATURE_FILE, sig.len() as u64, false, None));
    }
    files.extend(plan.files.iter().map(|f| {
        (
            f.entry.path.as_str(),
            f.entry.size,
            f.entry.executable,
            Some(f),
        )
    }));
    files.sort_by(|a, b| a.0.cmp(b.0));
    let listed: Vec<IsoFile> = files
        .iter()
        .map(|(path, size, executable, _)| IsoFile {
            path: path.to_string(),
            size: *size,
            executable: *executable,
        })
        .collect();
    // A failure of ours inside the image writer's callback, kept to be reported as it is.
    let mut failed: Option<ExportError> = None;
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        // Written and flushed by a second thread while this one hashes (as for a tar).
        let mut w = PipeWriter::new(file);
        let mut contents = |i: usize, out: &mut dyn io::Write| -> io::Result<()> {
            let planned = match files[i].3 {
                None if files[i].0 == MANIFEST_FILE => return out.write_all(&plan.manifest_bytes),
                None => return out.write_all(signature.unwrap_or_default().as_bytes()),
                Some(f) => f,
            };
            let copied = (|| {
                let mut reader = open_source(store, planned)?;
                let mut checked = checked_reader(&mut reader, planned);
                copy_stream(&mut checked, out).map_err(|e| match e {
                    CopyError::Read(e) => io_err("read the source of", &tmp)(e),
                    CopyError::Write(e) => io_err("write", &tmp)(e),
                })?;
                expect_planned(planned, checked.finish())
            })();
            copied.map_err(|e| {
                let message = e.to_string();
                failed = Some(e);
                io::Error::other(message)
            })
        };
        let written = appmodel_media::iso::write(&listed, opts, &mut w, &mut contents);
        if let Some(e) = failed.take() {
            return Err(e);
        }
        written?;
        w.finish().map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, out).map_err(io_err("rename into", out))?;
        Ok(sync_dir(parent_dir(out))?)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a tar bundle: same content, fixed headers (mtime 0, root owner), path order.
pub fn write_tar(
    store: &Store,
    plan: &Plan,
    signature: Option<&str>,
    out: &Path,
) -> Result<u64, ExportError> {
    if out.exists() {
        return Err(ExportError::OutputExists(out.to_path_buf()));
    }
    let tmp = partial_path(out);
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let mut tar = tar::Builder::new(PipeWriter::new(file));
        let add_bytes = |tar: &mut tar::Builder<_>, path: &str, bytes: &[u8]| {
            let mut h = header(bytes.len() as u64, false);
            tar.append_data(&mut h, path, bytes)
                .map_err(io_err("write", &tmp))
        };
        add_bytes(&mut tar, MANIFEST_FILE, &plan.manifest_bytes)?;
        if let Some(sig) = signature {
            add_bytes(&mut tar, SIGNATURE_FILE, sig.as_bytes())?;
        }
        for f in &plan.files {
            let mut h = header(f.entry.size, f.entry.executable);
            let mut reader = open_source(store, f)?;
            let mut checked = checked_reader(&mut reader, f);
            tar.append_data(&mut h, &f.entry.path, &mut checked)
                .map_err(io_err("write", &tmp))?;
            expect_planned(f, checked.finish())?;
        }
        let writer = tar.into_inner().map_err(io_err("write", &tmp))?;
        writer.finish().map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, out).map_err(io_err("rename into", out))?;
        Ok(sync_dir(parent_dir(out))?)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| 0)
}
