//! Opening files that may come from anyone: a bundle on a disc, a config file, a licence.
//!
//! Every input is opened without blocking (a FIFO would hang `open` and `read`), checked to
//! be a regular file on the open handle (not a device, FIFO or socket), optionally without
//! following a symbolic link, and read with a size cap, so no input can hang appmodel or
//! make it run out of memory. Reading only: this crate writes nothing.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// Size caps for the files appmodel reads whole.
pub mod cap {
    /// An app model (`appmodel.yaml`).
    pub const MODEL: u64 = 4 << 20;
    /// A site configuration file.
    pub const CONFIG: u64 = 1 << 20;
    /// `bundle.json` and `record.json`.
    pub const MANIFEST: u64 = 64 << 20;
    /// A detached minisign signature or a public key.
    pub const SIGNATURE: u64 = 64 << 10;
}

/// Whether a symbolic link at the path itself is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A file named on the command line: a link to a regular file is fine.
    Follow,
    /// A file inside a bundle or the site state: a link is refused.
    Refuse,
}

/// Why an input file was refused.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("it does not exist")]
    NotFound,
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {size} bytes, more than the {cap} bytes allowed")]
    TooLarge { size: u64, cap: u64 },
    #[error("it is not UTF-8 text")]
    NotText,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl InputError {
    /// The refusal is about the input (exit 1), not a failure of the machine (exit 2).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, InputError::Io(_))
    }
}

/// Opens `path` for reading as a regular file, without blocking on a FIFO. Returns the
/// handle and its metadata (from the handle, so a swap after the check does not matter).
pub fn open_regular(path: &Path, links: Links) -> Result<(File, Metadata), InputError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match File::options().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(InputError::NotFound),
        // O_NOFOLLOW on a link: ELOOP.
        Err(e) if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(InputError::Symlink)
        }
        Err(e) => return Err(InputError::Io(e)),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(InputError::NotRegular(kind_of(&meta)));
    }
    Ok((file, meta))
}

/// Reads a regular file whole, refusing one larger than `cap` bytes (checked before
/// reading, and again while reading, in case it grows).
pub fn read_regular(path: &Path, cap: u64, links: Links) -> Result<Vec<u8>, InputError> {
    let (file, meta) = open_regular(path, links)?;
    if meta.len() > cap {
        return Err(InputError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    read_capped(file, cap)
}

/// [`read_regular`] for text.
pub fn read_text(path: &Path, cap: u64, links: Links) -> Result<String, InputError> {
    String::from_utf8(read_regular(path, cap, links)?).map_err(|_| InputError::NotText)
}

/// Reads at most `cap` bytes of `reader`; more is an error, not a truncation.
pub fn read_capped(reader: impl Read, cap: u64) -> Result<Vec<u8>, InputError> {
    let mut buf = Vec::new();
    reader.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(InputError::TooLarge {
            size: buf.len() as u64,
            cap,
        });
    }
    Ok(buf)
}

/// What a non-regular file is, for messages.
pub fn kind_of(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_within_their_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular(&p, 5, Links::Refuse).unwrap(), b"hello");
        let e = read_regular(&p, 4, Links::Refuse).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is 5 bytes, more than the 4 bytes allowed"
        );
        assert!(matches!(
            read_regular(&dir.path().join("nope"), 9, Links::Follow),
            Err(InputError::NotFound)
        ));
    }

    #[test]
    fn fifos_devices_directories_and_links_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Would block forever in open(2) without O_NONBLOCK.
        let e = read_regular(&fifo, 10, Links::Follow).unwrap_err();
        assert_eq!(e.to_string(), "it is a FIFO, not a regular file");
        let e = read_regular(Path::new("/dev/zero"), 10, Links::Follow).unwrap_err();
        assert_eq!(e.to_string(), "it is a device, not a regular file");
        let e = read_regular(dir.path(), 10, Links::Follow).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory, not a regular file");

        let target = dir.path().join("t");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_regular(&link, 10, Links::Follow).unwrap(), b"x");
        assert!(matches!(
            read_regular(&link, 10, Links::Refuse),
            Err(InputError::Symlink)
        ));
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_regular(&zero, 10, Links::Follow),
            Err(InputError::NotRegular("a device"))
        ));
    }

    #[test]
    fn a_reader_longer_than_the_cap_is_an_error_not_a_truncation() {
        let e = read_capped(io::repeat(0), 1000).unwrap_err();
        assert!(matches!(e, InputError::TooLarge { cap: 1000, .. }));
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), b"abc");
    }
}
