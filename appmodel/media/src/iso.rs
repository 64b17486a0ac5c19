//! ISO 9660 images, written and read by appmodel itself: no mount, no root, no xorriso on
//! the site.
//!
//! The writer lays out the whole image first (sizes come from the files' metadata), then
//! streams it in one pass: system area, the primary volume descriptor, a Joliet
//! supplementary descriptor, the terminator, the four path tables, the ISO 9660
//! directories, the Joliet directories, a continuation sector for the Rock Ridge `ER`
//! entry, then each file's bytes. Memory holds the directory tree, never file contents.
//!
//! - ISO 9660 names are mangled 8.3 upper-case names, unique per directory; Rock Ridge
//!   (`SP`, `CE`→`ER` `RRIP_1991A`, `PX`, `TF`, `NM`) carries the real name, the mode (the
//!   executable bit) and the time for POSIX readers; Joliet carries the real name for
//!   Windows.
//! - Every date is the one given (a version's publication time), so the same input gives
//!   the same bytes.
//! - A file must be under 4 GiB (ISO 9660 keeps one extent's size in 32 bits); names are at
//!   most [`MAX_NAME`] bytes.
//!
//! The reader finds the Rock Ridge tree (else Joliet, else plain ISO 9660 names) and lists
//! each file with its extent, size and mode; [`IsoImage::open_file`] reads one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes in a logical sector.
pub const SECTOR: u64 = 2048;
/// Longest name of a file or directory: a Joliet name (UCS-2) in one directory record.
pub const MAX_NAME: usize = 103;
/// Longest path.
pub const MAX_PATH: usize = 1024;
/// Largest file an image holds: one extent.
pub const MAX_FILE: u64 = u32::MAX as u64;
/// Deepest directory nesting the reader follows.
const MAX_DEPTH: usize = 16;
/// Most entries the reader lists.
const MAX_ENTRIES: usize = 1 << 20;
/// Most directories the reader reads.
const MAX_DIRS: usize = 1 << 16;
/// Most directory bytes the reader reads in all (a million entries take about 64 MiB).
const MAX_DIR_BYTES: u64 = 64 << 20;

const SYSTEM_AREA: u64 = 16;
const ISO_ID: &[u8; 5] = b"CD001";
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DESC: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("cannot {action} `{}`: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the image: {0}")]
    Write(#[source] io::Error),
    #[error("`{path}` cannot go into an ISO image: {reason}")]
    Unfit { path: String, reason: String },
    #[error("`{}` is not a usable ISO 9660 image: {reason}", .path.display())]
    BadImage { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, IsoError>;

/// One file to put into an image.
#[derive(Debug, Clone)]
pub struct IsoFile {
    /// Where it goes, relative, `/`-separated.
    pub path: String,
    pub size: u64,
    pub executable: bool,
}

/// The image's label and date.
#[derive(Debug, Clone)]
pub struct IsoOptions {
    /// At most 32 characters of `A-Z 0-9 _` (others become `_`): `IM_STACK_1_2_0_COMPOSE`.
    pub volume_id: String,
    /// Seconds since the epoch, UTC: every date in the image.
    pub time: u64,
}

/// A directory of the tree being written.
#[derive(Debug, Default)]
struct Dir {
    /// Child directories and files by their real name.
    dirs: BTreeMap<String, usize>,
    files: BTreeMap<String, usize>,
    parent: usize,
    name: String,
    /// Sector of its ISO 9660 extent, and of its Joliet one; their sizes in bytes.
    iso_at: u64,
    iso_len: u64,
    joliet_at: u64,
    joliet_len: u64,
}

/// What a record in a directory points to.
struct Record<'a> {
    name: &'a str,
    /// ISO 9660 identifier (`.` and `..` are `\0` and `\1`).
    id: Vec<u8>,
    at: u64,
    len: u64,
    dir: bool,
    mode: u32,
    nlink: u32,
    ino: u32,
}

fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

use appmodel_model::record::civil;

/// The 7-byte date of directory records and Rock Ridge `TF`.
fn date7(secs: u64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(secs);
    [
        (y.saturating_sub(1900)).min(255) as u8,
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
        0,
    ]
}

/// The 17-byte date of volume descriptors.
fn date17(secs: u64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(secs);
    let text = format!("{:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00", y.min(9999));
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

/// `text` in d-characters, upper-case, padded with spaces to `len`.
fn d_chars(text: &str, len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = text
        .bytes()
        .map(|b| match b.to_ascii_uppercase() {
            c @ (b'A'..=b'Z' | b'0'..=b'9' | b'_') => c,
            _ => b'_',
        })
        .take(len)
        .collect();
    out.resize(len, b' ');
    out
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// 8.3 name (files, with `;1`) or 8-character name (directories), unique in `taken`.
fn mangle(name: &str, dir: bool, taken: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let clean = |s: &str, n: usize| -> String {
        s.bytes()
            .map(|b| match b.to_ascii_uppercase() {
                c @ (b'A'..=b'Z' | b'0'..=b'9' | b'_') => c as char,
                _ => '_',
            })
            .take(n)
            .collect()
    };
    let (stem, ext) = match (dir, name.rsplit_once('.')) {
        (false, Some((s, e))) if !s.is_empty() => (s, e),
        _ => (name, ""),
    };
    let ext = clean(ext, 3);
    let make = |stem: &str| -> Vec<u8> {
        if dir {
            stem.as_bytes().to_vec()
        } else {
            format!("{stem}.{ext};1").into_bytes()
        }
    };
    let mut id = make(&clean(stem, 8));
    let mut n = 1u32;
    while taken.contains(&id) {
        let tail = format!("~{n}");
        id = make(&format!("{}{tail}", clean(stem, 8 - tail.len())));
        n += 1;
    }
    taken.push(id.clone());
    id
}

/// One directory record: the ISO 9660 part and, for the Rock Ridge tree, its entries.
fn record(r: &Record<'_>, time: u64, rock: bool, extra: &[u8]) -> Vec<u8> {
    let mut su = Vec::new();
    if rock {
        su.extend_from_slice(extra);
        su.extend_from_slice(b"PX");
        su.push(44);
        su.push(1);
        su.extend_from_slice(&both32(r.mode));
        su.extend_from_slice(&both32(r.nlink));
        su.extend_from_slice(&both32(0));
        su.extend_from_slice(&both32(0));
        su.extend_from_slice(&both32(r.ino));
        su.extend_from_slice(b"TF");
        su.push(12);
        su.push(1);
        su.push(0x02); // modify time, short form
        su.extend_from_slice(&date7(time));
        if r.id != [0] && r.id != [1] {
            su.extend_from_slice(b"NM");
            su.push(5 + r.name.len() as u8);
            su.push(1);
            su.push(0);
            su.extend_from_slice(r.name.as_bytes());
        }
    }
    let id_len = r.id.len();
    let pad = usize::from(id_len.is_multiple_of(2));
    let mut len = 33 + id_len + pad + su.len();
    len += len % 2;
    let mut out = Vec::with_capacity(len);
    out.push(len as u8);
    out.push(0);
    out.extend_from_slice(&both32(r.at as u32));
    out.extend_from_slice(&both32(r.len as u32));
    out.extend_from_slice(&date7(time));
    out.push(if r.dir { 0x02 } else { 0 });
    out.push(0);
    out.push(0);
    out.extend_from_slice(&both16(1));
    out.push(id_len as u8);
    out.extend_from_slice(&r.id);
    out.resize(out.len() + pad, 0);
    out.extend_from_slice(&su);
    out.resize(len, 0);
    out
}

/// Records laid into sectors: none crosses a sector boundary.
fn pack(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for r in records {
        let used = out.len() as u64 % SECTOR;
        if used + r.len() as u64 > SECTOR {
            out.resize(out.len() + (SECTOR - used) as usize, 0);
        }
        out.extend_from_slice(r);
    }
    let rem = out.len() as u64 % SECTOR;
    if rem != 0 || out.is_empty() {
        out.resize(out.len() + (SECTOR - rem) as usize % SECTOR as usize, 0);
    }
    if out.is_empty() {
        out.resize(SECTOR as usize, 0);
    }
    out
}

fn sectors(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR)
}

/// The image being planned: the tree, and where everything goes.
struct Plan<'a> {
    files: &'a [IsoFile],
    dirs: Vec<Dir>,
    /// Directory indexes, breadth first (path table order).
    order: Vec<usize>,
    /// Each file's sector.
    file_at: Vec<u64>,
    ce_at: u64,
    path_tables: [(u64, Vec<u8>); 4],
    total: u64,
    opts: &'a IsoOptions,
}

fn unfit(path: &str, reason: impl Into<String>) -> IsoError {
    IsoError::Unfit {
        path: path.to_string(),
        reason: reason.into(),
    }
}

impl<'a> Plan<'a> {
    fn new(files: &'a [IsoFile], opts: &'a IsoOptions) -> Result<Plan<'a>> {
        let mut dirs = vec![Dir::default()];
        for (i, f) in files.iter().enumerate() {
            if f.path.len() > MAX_PATH {
                return Err(unfit(
                    &f.path,
                    format!("the path is longer than {MAX_PATH} bytes"),
                ));
            }
            if f.size > MAX_FILE {
                return Err(unfit(
                    &f.path,
                    format!(
                        "it is {} bytes; a file in an ISO image is under 4 GiB",
                        f.size
                    ),
                ));
            }
            let parts: Vec<&str> = f.path.split('/').collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == ".." || p.len() > MAX_NAME)
            {
                return Err(unfit(
                    &f.path,
                    format!("every name must be 1 to {MAX_NAME} bytes, not `.` or `..`"),
                ));
            }
            let mut at = 0;
            for d in &parts[..parts.len() - 1] {
                at = match dirs[at].dirs.get(*d) {
                    Some(&n) => n,
                    None => {
                        let n = dirs.len();
                        dirs.push(Dir {
                            parent: at,
                            name: d.to_string(),
                            ..Dir::default()
                        });
                        dirs[at].dirs.insert(d.to_string(), n);
                        n
                    }
                };
            }
            let name = parts[parts.len() - 1].to_string();
            if dirs[at].dirs.contains_key(&name) || dirs[at].files.insert(name.clone(), i).is_some()
            {
                return Err(unfit(&f.path, "it is given twice"));
            }
        }
        // Breadth first, children by name: the path table's order.
        let mut order = vec![0];
        let mut k = 0;
        while k < order.len() {
            let d = order[k];
            order.extend(dirs[d].dirs.values().copied());
            k += 1;
        }
        let mut plan = Plan {
            files,
            dirs,
            order,
            file_at: vec![0; files.len()],
            ce_at: 0,
            path_tables: Default::default(),
            total: 0,
            opts,
        };
        // Directory sizes do not depend on where things are: lay out with zero positions.
        for &d in &plan.order.clone() {
            plan.dirs[d].iso_len = plan.dir_bytes(d, true).len() as u64;
            plan.dirs[d].joliet_len = plan.dir_bytes(d, false).len() as u64;
        }
        let table_len = plan.path_table(true, true).len() as u64;
        let joliet_table_len = plan.path_table(false, true).len() as u64;
        let mut next = SYSTEM_AREA + 3;
        let mut tables: Vec<u64> = Vec::new();
        for len in [table_len, table_len, joliet_table_len, joliet_table_len] {
            tables.push(next);
            next += sectors(len);
        }
        for &d in &plan.order.clone() {
            plan.dirs[d].iso_at = next;
            next += sectors(plan.dirs[d].iso_len);
        }
        for &d in &plan.order.clone() {
            plan.dirs[d].joliet_at = next;
            next += sectors(plan.dirs[d].joliet_len);
        }
        // After the directories: sequential readers (libarchive) follow a continuation
        // only forwards.
        plan.ce_at = next;
        next += 1;
        for (i, f) in files.iter().enumerate() {
            plan.file_at[i] = next;
            next += sectors(f.size);
        }
        plan.total = next;
        plan.path_tables = [
            (tables[0], plan.path_table(true, true)),
            (tables[1], plan.path_table(true, false)),
            (tables[2], plan.path_table(false, true)),
            (tables[3], plan.path_table(false, false)),
        ];
        Ok(plan)
    }

    fn nlink(&self, d: usize) -> u32 {
        2 + self.dirs[d].dirs.len() as u32
    }

    /// The records of directory `d` in the ISO 9660 + Rock Ridge tree (`iso`) or the
    /// Joliet one, packed into sectors.
    fn dir_bytes(&self, d: usize, iso: bool) -> Vec<u8> {
        let dir = &self.dirs[d];
        let place = |n: usize| {
            if iso {
                (self.dirs[n].iso_at, self.dirs[n].iso_len)
            } else {
                (self.dirs[n].joliet_at, self.dirs[n].joliet_len)
            }
        };
        let time = self.opts.time;
        let mut records = Vec::new();
        let (at, len) = place(d);
        let this = Record {
            name: "",
            id: vec![0],
            at,
            len,
            dir: true,
            mode: 0o40755,
            nlink: self.nlink(d),
            ino: d as u32 + 1,
        };
        let mut extra = Vec::new();
        if iso && d == 0 {
            extra.extend_from_slice(&[b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
            extra.extend_from_slice(b"CE");
            extra.push(28);
            extra.push(1);
            extra.extend_from_slice(&both32(self.ce_at as u32));
            extra.extend_from_slice(&both32(0));
            extra.extend_from_slice(&both32(er_entry().len() as u32));
        }
        records.push(record(&this, time, iso, &extra));
        let (pat, plen) = place(dir.parent);
        let parent = Record {
            name: "",
            id: vec![1],
            at: pat,
            len: plen,
            dir: true,
            mode: 0o40755,
            nlink: self.nlink(dir.parent),
            ino: dir.parent as u32 + 1,
        };
        records.push(record(&parent, time, iso, &[]));
        // Children: directories and files together, sorted by their identifier.
        let mut taken = Vec::new();
        let mut children: Vec<(Vec<u8>, Record<'_>)> = Vec::new();
        for (name, &n) in &dir.dirs {
            let id = if iso {
                mangle(name, true, &mut taken)
            } else {
                ucs2(name)
            };
            let (at, len) = place(n);
            children.push((
                id.clone(),
                Record {
                    name,
                    id,
                    at,
                    len,
                    dir: true,
                    mode: 0o40755,
                    nlink: self.nlink(n),
                    ino: n as u32 + 1,
                },
            ));
        }
        for (name, &i) in &dir.files {
            let f = &self.files[i];
            let id = if iso {
                mangle(name, false, &mut taken)
            } else {
                ucs2(name)
            };
            children.push((
                id.clone(),
                Record {
                    name,
                    id,
                    at: if f.size == 0 { 0 } else { self.file_at[i] },
                    len: f.size,
                    dir: false,
                    mode: if f.executable { 0o100755 } else { 0o100644 },
                    nlink: 1,
                    ino: (self.dirs.len() + i) as u32 + 1,
                },
            ));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, r) in &children {
            records.push(record(r, time, iso, &[]));
        }
        pack(&records)
    }

    /// A path table: little-endian (`le`) or big-endian, of either tree.
    fn path_table(&self, iso: bool, le: bool) -> Vec<u8> {
        let mut number = vec![0u16; self.dirs.len()];
        for (k, &d) in self.order.iter().enumerate() {
            number[d] = k as u16 + 1;
        }
        let mut out = Vec::new();
        for &d in &self.order {
            let dir = &self.dirs[d];
            let id = match (d, iso) {
                (0, _) => vec![0],
                (_, true) => {
                    // The same mangled name the parent's records give it.
                    let mut taken = Vec::new();
                    let parent = &self.dirs[dir.parent];
                    let mut id = Vec::new();
                    for name in parent.dirs.keys() {
                        let m = mangle(name, true, &mut taken);
                        if *name == dir.name {
                            id = m;
                        }
                    }
                    id
                }
                (_, false) => ucs2(&dir.name),
            };
            let at = if iso { dir.iso_at } else { dir.joliet_at } as u32;
            let parent = number[dir.parent];
            out.push(id.len() as u8);
            out.push(0);
            if le {
                out.extend_from_slice(&at.to_le_bytes());
                out.extend_from_slice(&parent.to_le_bytes());
            } else {
                out.extend_from_slice(&at.to_be_bytes());
                out.extend_from_slice(&parent.to_be_bytes());
            }
            out.extend_from_slice(&id);
            if id.len() % 2 == 1 {
                out.push(0);
            }
        }
        out
    }

    fn descriptor(&self, joliet: bool) -> Vec<u8> {
        let mut v = vec![0u8; SECTOR as usize];
        v[0] = if joliet { 2 } else { 1 };
        v[1..6].copy_from_slice(ISO_ID);
        v[6] = 1;
        let text = |s: &str, len: usize| -> Vec<u8> {
            if joliet {
                let mut u = ucs2(s);
                u.truncate(len & !1);
                while u.len() < len {
                    u.extend_from_slice(&[0, b' ']);
                }
                u.truncate(len);
                u
            } else {
                d_chars(s, len)
            }
        };
        v[8..40].copy_from_slice(&text("LINUX", 32));
        v[40..72].copy_from_slice(&text(&self.opts.volume_id, 32));
        v[80..88].copy_from_slice(&both32(self.total as u32));
        if joliet {
            v[88..91].copy_from_slice(b"%/E");
        }
        v[120..124].copy_from_slice(&both16(1));
        v[124..128].copy_from_slice(&both16(1));
        v[128..132].copy_from_slice(&both16(SECTOR as u16));
        let (l, m) = if joliet { (2, 3) } else { (0, 1) };
        let table_len = self.path_tables[l].1.len() as u32;
        v[132..140].copy_from_slice(&both32(table_len));
        v[140..144].copy_from_slice(&(self.path_tables[l].0 as u32).to_le_bytes());
        v[148..152].copy_from_slice(&(self.path_tables[m].0 as u32).to_be_bytes());
        let root = &self.dirs[0];
        let (at, len) = if joliet {
            (root.joliet_at, root.joliet_len)
        } else {
            (root.iso_at, root.iso_len)
        };
        let r = record(
            &Record {
                name: "",
                id: vec![0],
                at,
                len,
                dir: true,
                mode: 0o40755,
                nlink: 2,
                ino: 1,
            },
            self.opts.time,
            false,
            &[],
        );
        v[156..156 + 34].copy_from_slice(&r[..34]);
        for (at, len) in [(190, 128), (318, 128), (446, 128), (574, 128)] {
            v[at..at + len].copy_from_slice(&text("", len));
        }
        v[574..574 + 128].copy_from_slice(&text("APPMODEL", 128));
        for (at, len) in [(702, 37), (739, 37), (776, 37)] {
            v[at..at + len].copy_from_slice(&text("", len));
        }
        let date = date17(self.opts.time);
        v[813..830].copy_from_slice(&date);
        v[830..847].copy_from_slice(&date);
        let none = *b"0000000000000000\0";
        v[847..864].copy_from_slice(&none);
        v[864..881].copy_from_slice(&date);
        v[881] = 1;
        v
    }
}

fn er_entry() -> Vec<u8> {
    let mut e = vec![
        b'E',
        b'R',
        (8 + ER_ID.len() + ER_DESC.len() + ER_SRC.len()) as u8,
        1,
        ER_ID.len() as u8,
        ER_DESC.len() as u8,
        ER_SRC.len() as u8,
        1,
    ];
    e.extend_from_slice(ER_ID);
    e.extend_from_slice(ER_DESC);
    e.extend_from_slice(ER_SRC);
    e
}

/// Writes the image of `files` to `out`; returns its size in bytes. `contents(i, out)`
/// writes file `i`'s bytes (exactly its `size`) when its turn comes, so the caller streams
/// them from wherever they are and checks them on the way.
pub fn write<W: Write>(
    files: &[IsoFile],
    opts: &IsoOptions,
    out: &mut W,
    contents: &mut dyn FnMut(usize, &mut dyn Write) -> io::Result<()>,
) -> Result<u64> {
    let plan = Plan::new(files, opts)?;
    let w = |out: &mut dyn Write, bytes: &[u8]| out.write_all(bytes).map_err(IsoError::Write);
    w(out, &vec![0u8; (SYSTEM_AREA * SECTOR) as usize])?;
    w(out, &plan.descriptor(false))?;
    w(out, &plan.descriptor(true))?;
    let mut end = vec![0u8; SECTOR as usize];
    end[0] = 255;
    end[1..6].copy_from_slice(ISO_ID);
    end[6] = 1;
    w(out, &end)?;
    for (_, table) in &plan.path_tables {
        let mut t = table.clone();
        t.resize((sectors(t.len() as u64).max(1) * SECTOR) as usize, 0);
        w(out, &t)?;
    }
    for iso in [true, false] {
        for &d in &plan.order {
            w(out, &plan.dir_bytes(d, iso))?;
        }
    }
    let mut ce = er_entry();
    ce.resize(SECTOR as usize, 0);
    w(out, &ce)?;
    for (i, f) in files.iter().enumerate() {
        let mut counted = Counted {
            inner: &mut *out,
            bytes: 0,
        };
        contents(i, &mut counted).map_err(IsoError::Write)?;
        if counted.bytes != f.size {
            return Err(unfit(
                &f.path,
                format!(
                    "{} bytes were given for it, not the {} planned",
                    counted.bytes, f.size
                ),
            ));
        }
        let pad = (sectors(f.size) * SECTOR - f.size) as usize;
        w(out, &vec![0u8; pad])?;
    }
    Ok(plan.total * SECTOR)
}

/// A writer that counts what passes.
struct Counted<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write + ?Sized> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file listed in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoEntry {
    pub path: String,
    pub at: u64,
    pub size: u64,
    pub executable: bool,
}

/// An image opened for reading.
pub struct IsoImage {
    file: File,
    path: PathBuf,
    /// Directories read so far, and their bytes (a loop of directories pointing at each
    /// other, or at one huge extent, is cut).
    walked: usize,
    walked_bytes: u64,
    pub volume_id: String,
    pub entries: Vec<IsoEntry>,
}

/// Whether the file at `path` starts like an ISO 9660 image.
pub fn is_iso(path: &Path) -> bool {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(_) => return false,
    };
    let mut id = [0u8; 6];
    f.seek(SeekFrom::Start(SYSTEM_AREA * SECTOR)).is_ok()
        && f.read_exact(&mut id).is_ok()
        && &id[1..6] == ISO_ID
}

impl IsoImage {
    /// Opens `path` and lists its files: from the Rock Ridge names when the image has them,
    /// else Joliet's, else ISO 9660's (without `;1`).
    pub fn open(path: &Path) -> Result<IsoImage> {
        let bad = |reason: &str| IsoError::BadImage {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let io = |source| IsoError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let image_len = file.metadata().map_err(io)?.len();
        let mut primary = None;
        let mut joliet = None;
        for n in 0..32 {
            let mut v = vec![0u8; SECTOR as usize];
            file.seek(SeekFrom::Start((SYSTEM_AREA + n) * SECTOR))
                .map_err(io)?;
            if file.read_exact(&mut v).is_err() {
                return Err(bad("it ends inside its volume descriptors"));
            }
            if &v[1..6] != ISO_ID {
                return Err(bad("a volume descriptor lacks `CD001`"));
            }
            match v[0] {
                1 if primary.is_none() => primary = Some(v),
                2 if v[88..91] == *b"%/E" || v[88..91] == *b"%/C" || v[88..91] == *b"%/@" => {
                    joliet = Some(v)
                }
                255 => break,
                _ => {}
            }
        }
        let primary = primary.ok_or_else(|| bad("it has no primary volume descriptor"))?;
        let volume_id = String::from_utf8_lossy(&primary[40..72]).trim().to_string();
        let root = |v: &[u8]| -> (u64, u64) {
            let r = &v[156..190];
            (
                u32::from_le_bytes([r[2], r[3], r[4], r[5]]) as u64,
                u32::from_le_bytes([r[10], r[11], r[12], r[13]]) as u64,
            )
        };
        let mut img = IsoImage {
            file,
            path: path.to_path_buf(),
            volume_id,
            entries: Vec::new(),
            walked: 0,
            walked_bytes: 0,
        };
        let (at, len) = root(&primary);
        let rock = img.has_rock_ridge(at, len, image_len)?;
        let (tree, (at, len)) = match (&joliet, rock) {
            (_, true) => (Tree::Rock, (at, len)),
            (Some(j), false) => (Tree::Joliet, root(j)),
            (None, false) => (Tree::Plain, (at, len)),
        };
        let mut entries = Vec::new();
        img.walk(tree, at, len, "", 0, image_len, &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        img.entries = entries;
        Ok(img)
    }

    fn bad(&self, reason: impl Into<String>) -> IsoError {
        IsoError::BadImage {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn read_at(&mut self, at: u64, len: u64, image_len: u64) -> Result<Vec<u8>> {
        if len > 64 << 20 || at.saturating_mul(SECTOR).saturating_add(len) > image_len {
            return Err(self.bad(format!(
                "a directory at sector {at} of {len} bytes lies outside the image"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.file
            .seek(SeekFrom::Start(at * SECTOR))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|source| IsoError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            })?;
        Ok(buf)
    }

    fn has_rock_ridge(&mut self, at: u64, len: u64, image_len: u64) -> Result<bool> {
        let dir = self.read_at(at, len.min(SECTOR), image_len)?;
        let Some((rec, _)) = records(&dir).next() else {
            return Ok(false);
        };
        Ok(system_use(rec).starts_with(&[b'S', b'P', 7, 1, 0xBE, 0xEF]))
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        tree: Tree,
        at: u64,
        len: u64,
        prefix: &str,
        depth: usize,
        image_len: u64,
        out: &mut Vec<IsoEntry>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.bad(format!("directories nest deeper than {MAX_DEPTH}")));
        }
        self.walked += 1;
        self.walked_bytes += len;
        if self.walked > MAX_DIRS || self.walked_bytes > MAX_DIR_BYTES {
            return Err(self.bad(format!(
                "its directories are more than {MAX_DIRS} or {} MiB",
                MAX_DIR_BYTES >> 20
            )));
        }
        let bytes = self.read_at(at, len, image_len)?;
        let mut subdirs = Vec::new();
        for (rec, _) in records(&bytes) {
            let id_len = rec[32] as usize;
            let id = &rec[33..33 + id_len];
            if id == [0] || id == [1] {
                continue;
            }
            let su = system_use(rec);
            let name = match tree {
                Tree::Rock => rock_name(su).unwrap_or_else(|| plain_name(id)),
                Tree::Joliet => {
                    let units: Vec<u16> = id
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    let n = String::from_utf16_lossy(&units);
                    n.strip_suffix(";1").map(str::to_string).unwrap_or(n)
                }
                Tree::Plain => plain_name(id),
            };
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains('/')
                || name.contains('\0')
            {
                return Err(self.bad(format!("it holds an entry named {name:?}")));
            }
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if path.len() > MAX_PATH {
                return Err(self.bad("it holds a path longer than 1024 bytes"));
            }
            let extent = u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]]) as u64;
            let size = u32::from_le_bytes([rec[10], rec[11], rec[12], rec[13]]) as u64;
            if rec[25] & 0x02 != 0 {
                subdirs.push((extent, size, path));
            } else {
                if extent.saturating_mul(SECTOR).saturating_add(size) > image_len && size > 0 {
                    return Err(self.bad(format!("`{path}` lies outside the image")));
                }
                let executable = match tree {
                    Tree::Rock => rock_mode(su).is_some_and(|m| m & 0o111 != 0),
                    _ => false,
                };
                out.push(IsoEntry {
                    path,
                    at: extent,
                    size,
                    executable,
                });
                if out.len() > MAX_ENTRIES {
                    return Err(self.bad("it lists more than a million files"));
                }
            }
        }
        for (extent, size, path) in subdirs {
            self.walk(tree, extent, size, &path, depth + 1, image_len, out)?;
        }
        Ok(())
    }

    /// A reader of one listed file's bytes (positioned reads: several may be open at
    /// once). An image cut short ends the file early, which its size check catches.
    pub fn open_file(&self, entry: &IsoEntry) -> Result<EntryReader<'_>> {
        Ok(EntryReader {
            file: &self.file,
            pos: entry.at * SECTOR,
            end: entry.at * SECTOR + entry.size,
        })
    }
}

/// The bytes of one file of an image.
pub struct EntryReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

#[derive(Debug, Clone, Copy)]
enum Tree {
    Rock,
    Joliet,
    Plain,
}

/// The records of a directory's bytes (skipping the zero padding at sector ends).
fn records(bytes: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    let mut at = 0usize;
    std::iter::from_fn(move || loop {
        if at >= bytes.len() {
            return None;
        }
        let len = bytes[at] as usize;
        if len == 0 {
            at = (at / SECTOR as usize + 1) * SECTOR as usize;
            continue;
        }
        if len < 34 || at + len > bytes.len() || 33 + bytes[at + 32] as usize > len {
            return None;
        }
        let rec = &bytes[at..at + len];
        let here = at;
        at += len;
        return Some((rec, here));
    })
}

fn system_use(rec: &[u8]) -> &[u8] {
    let id_len = rec[32] as usize;
    let start = 33 + id_len + usize::from(id_len.is_multiple_of(2));
    rec.get(start..).unwrap_or(&[])
}

/// The SUSP entries of a system use area: (signature, data).
fn susp(su: &[u8]) -> impl Iterator<Item = ([u8; 2], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at + 4 > su.len() {
            return None;
        }
        let len = su[at + 2] as usize;
        if len < 4 || at + len > su.len() {
            return None;
        }
        let e = ([su[at], su[at + 1]], &su[at + 4..at + len]);
        at += len;
        Some(e)
    })
}

fn rock_name(su: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    let mut found = false;
    for (sig, data) in susp(su) {
        if &sig == b"NM" && !data.is_empty() {
            name.extend_from_slice(&data[1..]);
            found = true;
        }
    }
    found.then(|| String::from_utf8_lossy(&name).into_owned())
}

fn rock_mode(su: &[u8]) -> Option<u32> {
    susp(su)
        .find(|(sig, _)| sig == b"PX")
        .and_then(|(_, d)| Some(u32::from_le_bytes(d.get(..4)?.try_into().ok()?)))
}

fn plain_name(id: &[u8]) -> String {
    let n = String::from_utf8_lossy(id).into_owned();
    let n = n.split(';').next().unwrap_or_default().to_string();
    n.strip_suffix('.').map(str::to_string).unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files and where their bytes are.
    fn sample(dir: &Path) -> (Vec<IsoFile>, Vec<PathBuf>) {
        let (mut files, mut sources) = (Vec::new(), Vec::new());
        for (path, bytes, exec) in [
            ("bundle.json", b"{}".to_vec(), false),
            ("appmodel", vec![0x7f; 5000], true),
            (
                "blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                vec![7; 4096],
                false,
            ),
            ("blobs/sha256/ffff", vec![], false),
            ("docker-compose.yaml", b"services: {}\n".to_vec(), false),
            ("docker-compose.yml", b"x".to_vec(), false),
        ] {
            let src = dir.join(path.replace('/', "_"));
            std::fs::write(&src, &bytes).unwrap();
            files.push(IsoFile {
                path: path.to_string(),
                size: bytes.len() as u64,
                executable: exec,
            });
            sources.push(src);
        }
        (files, sources)
    }

    /// Writes the image of the sample files into `out`.
    fn image(
        files: &[IsoFile],
        sources: &[PathBuf],
        opts: &IsoOptions,
        out: &mut impl Write,
    ) -> u64 {
        write(files, opts, out, &mut |i, w| {
            io::copy(&mut File::open(&sources[i])?, w).map(|_| ())
        })
        .unwrap()
    }

    #[test]
    fn an_image_reads_back_with_its_names_sizes_and_modes_and_is_reproducible() {
        let t = tempfile::tempdir().unwrap();
        let (files, sources) = sample(t.path());
        let opts = IsoOptions {
            volume_id: "im-stack 1.2.0 compose".into(),
            time: 1_796_225_019,
        };
        let iso = t.path().join("a.iso");
        let mut out = std::io::BufWriter::new(File::create(&iso).unwrap());
        let size = image(&files, &sources, &opts, &mut out);
        drop(out);
        assert_eq!(std::fs::metadata(&iso).unwrap().len(), size);
        assert_eq!(size % SECTOR, 0);
        let img = IsoImage::open(&iso).unwrap();
        assert_eq!(img.volume_id, "IM_STACK_1_2_0_COMPOSE");
        let mut want: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        want.sort();
        let got: Vec<&str> = img.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got, want);
        for e in &img.entries {
            let i = files.iter().position(|f| f.path == e.path).unwrap();
            let f = &files[i];
            let mut bytes = Vec::new();
            img.open_file(e).unwrap().read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes, std::fs::read(&sources[i]).unwrap(), "{}", e.path);
            assert_eq!(e.executable, f.executable, "{}", e.path);
        }
        let mut again = Vec::new();
        image(&files, &sources, &opts, &mut again);
        assert_eq!(again, std::fs::read(&iso).unwrap());
        // Bytes that are not the planned size are refused, naming the file.
        let e = write(&files, &opts, &mut Vec::new(), &mut |_, w| {
            w.write_all(b"x")
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("1 bytes were given for it, not the"), "{e}");
    }

    #[test]
    fn names_mangle_uniquely_and_unfit_files_are_refused() {
        let mut taken = Vec::new();
        assert_eq!(
            mangle("docker-compose.yaml", false, &mut taken),
            b"DOCKER_C.YAM;1"
        );
        assert_eq!(
            mangle("docker-compose.yml", false, &mut taken),
            b"DOCKER_C.YML;1"
        );
        assert_eq!(
            mangle("docker-compose.yaml", false, &mut taken),
            b"DOCKER~1.YAM;1"
        );
        assert_eq!(mangle("sha256", true, &mut taken), b"SHA256");
        let f = |path: &str, size: u64| IsoFile {
            path: path.into(),
            size,
            executable: false,
        };
        let opts = IsoOptions {
            volume_id: "x".into(),
            time: 0,
        };
        for (files, reason) in [
            (vec![f("big", 5 << 30)], "under 4 GiB"),
            (vec![f(&"n".repeat(200), 1)], "1 to 103 bytes"),
            (vec![f("a/../b", 1)], "not `.` or `..`"),
            (vec![f("a", 1), f("a", 1)], "given twice"),
        ] {
            let e = write(&files, &opts, &mut Vec::new(), &mut |_, _| Ok(())).unwrap_err();
            assert!(e.to_string().contains(reason), "{e}");
        }
    }

    #[test]
    fn a_damaged_image_is_refused_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let (files, sources) = sample(t.path());
        let opts = IsoOptions {
            volume_id: "x".into(),
            time: 0,
        };
        let mut bytes = Vec::new();
        image(&files, &sources, &opts, &mut bytes);
        let p = t.path().join("d.iso");
        // Cut inside the descriptors; a root directory pointing past the end.
        std::fs::write(&p, &bytes[..17 * SECTOR as usize]).unwrap();
        assert!(IsoImage::open(&p).is_err());
        let mut far = bytes.clone();
        let root = 16 * SECTOR as usize + 156;
        far[root + 2..root + 6].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
        std::fs::write(&p, &far).unwrap();
        let e = IsoImage::open(&p).err().unwrap().to_string();
        assert!(e.contains("outside the image"), "{e}");
        // A directory whose record points back at the root: cut, not followed forever.
        let img = IsoImage::open(&{
            std::fs::write(&p, &bytes).unwrap();
            p.clone()
        })
        .unwrap();
        drop(img);
        let root_at = u32::from_le_bytes(bytes[root + 2..root + 6].try_into().unwrap());
        let blobs_at = (root_at as usize) * SECTOR as usize;
        let dir = &bytes[blobs_at..blobs_at + SECTOR as usize];
        let (_, off) = records(dir)
            .find(|(r, _)| rock_name(system_use(r)).as_deref() == Some("blobs"))
            .unwrap();
        let mut looped = bytes.clone();
        let rec = blobs_at + off;
        looped[rec + 2..rec + 6].copy_from_slice(&root_at.to_le_bytes());
        looped[rec + 6..rec + 10].copy_from_slice(&root_at.to_be_bytes());
        std::fs::write(&p, &looped).unwrap();
        let e = IsoImage::open(&p).err().unwrap().to_string();
        assert!(e.contains("nest deeper than 16"), "{e}");
        std::fs::write(&p, b"not an image").unwrap();
        assert!(!is_iso(&p));
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_796_225_019), (2026, 12, 2, 15, 23, 39));
        assert_eq!(&date17(951_782_400)[..16], b"2000022900000000");
    }
}
