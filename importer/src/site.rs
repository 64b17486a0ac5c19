//! The site's state directory.
//!
//! ```text
//! STATE/lock                                    one command at a time
//! STATE/store/                                  blobs and version records (appmodel-store)
//! STATE/bundles/<app>/<version>/<form>/         the imported bundle's files, blobs aside
//! STATE/trust/<key id>.pub                      pinned vendor keys
//! STATE/staging/                                files of an import in progress
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use appmodel_model::bundle::Form;
use appmodel_store::Store;

use crate::{io_err, ImportError};

/// Where the site state lives when no `--state-dir` is given.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/appmodel";

#[derive(Debug)]
pub struct Site {
    root: PathBuf,
    store: Store,
}

/// Held while a command changes the site.
#[derive(Debug)]
pub struct SiteLock {
    _file: File,
}

impl Site {
    pub fn open(root: &Path) -> Result<Site, ImportError> {
        for dir in ["bundles", "trust", "staging"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let store = Store::open(&root.join("store"))?;
        let lock = root.join("lock");
        if !lock.exists() {
            File::create(&lock).map_err(io_err("create", &lock))?;
        }
        Ok(Site {
            root: root.to_path_buf(),
            store,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn lock(&self) -> Result<SiteLock, ImportError> {
        let file = appmodel_store::lock_file(&self.root.join("lock"))?;
        let staging = self.root.join("staging");
        for entry in fs::read_dir(&staging)
            .map_err(io_err("read", &staging))?
            .flatten()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
        self.finish_replacements()?;
        Ok(SiteLock { _file: file })
    }

    /// An import on a filesystem that cannot exchange two names moves the old bundle
    /// directory aside before renaming the new one in; after a crash in between, the old
    /// one goes back. Runs under the lock.
    fn finish_replacements(&self) -> Result<(), ImportError> {
        let bundles = self.root.join("bundles");
        for app in read_dirs(&bundles)? {
            for version in read_dirs(&app)? {
                for entry in read_dirs(&version)? {
                    let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    let Some(form) = name.strip_prefix(".replaced-") else {
                        continue;
                    };
                    let dest = version.join(form);
                    if dest.exists() {
                        let _ = fs::remove_dir_all(&entry);
                    } else {
                        fs::rename(&entry, &dest).map_err(io_err("restore", &dest))?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn bundle_dir(&self, app: &str, version: &str, form: Form) -> PathBuf {
        self.root
            .join("bundles")
            .join(app)
            .join(version)
            .join(form.as_str())
    }

    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// The verified parts of volume sets being imported, kept across imports (the lock
    /// empties `staging`, not this).
    pub fn volume_sets(&self) -> PathBuf {
        self.root.join("volume-sets")
    }

    pub fn trust_dir(&self) -> PathBuf {
        self.root.join("trust")
    }

    /// Pins a vendor public key (the text of a minisign `.pub` file). Returns its key id.
    pub fn add_trusted_key(&self, text: &str) -> Result<String, ImportError> {
        let key = appmodel_signing::PublicKey::from_text(text)
            .map_err(|e| ImportError::BadKey(e.to_string()))?;
        let id = key.key_id();
        let path = self.trust_dir().join(format!("{id}.pub"));
        appmodel_store::write_atomic(&path, text.as_bytes())?;
        Ok(id)
    }

    /// The pinned public keys' texts, by file name.
    pub fn trusted_keys(&self) -> Result<Vec<(String, String)>, ImportError> {
        trusted_keys_in(&self.trust_dir())
    }
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("read", dir)(e)),
    }
}

/// The `.pub` keys pinned in a trust directory, by file name (none when it does not exist).
/// Reads only: `appmodel verify` uses it on a site without changing anything.
pub fn trusted_keys_in(dir: &Path) -> Result<Vec<(String, String)>, ImportError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", dir)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "pub") {
            use appmodel_model::input::{cap, read_text, Links};
            let text = read_text(&p, cap::SIGNATURE, Links::Refuse).map_err(|source| {
                ImportError::Input {
                    path: p.clone(),
                    source,
                }
            })?;
            keys.push((entry.file_name().to_string_lossy().into_owned(), text));
        }
    }
    keys.sort();
    Ok(keys)
}

/// Bytes free for an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
