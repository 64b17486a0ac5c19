//! Exporters: one published version -> one offline bundle.
//!
//! - [`plan`]: decides the bundle's content (record, tool, OCI layout, blobs, form files)
//!   and builds its manifest before a single byte is written;
//! - [`write`]: writes the planned bundle as a directory or a tar, deterministically;
//! - [`forms`]: the form table: per form (compose, helm, systemd) what it ships (images or
//!   binaries) and which module renders its files;
//! - [`compose`], [`helm`], [`systemd`]: each form's rendered files.
//!
//! The manifest, with every file's size and sha256, is written first and is the bundle's
//! root of trust; a signature over its bytes may follow. Exporting the same version twice
//! gives byte-identical output.

pub mod compose;
pub mod forms;
pub mod helm;
pub mod plan;
pub mod sbom;
pub mod systemd;
pub mod volumes;
pub mod write;
pub mod yaml_out;

use std::path::PathBuf;

use appmodel_model::bundle::Form;
use appmodel_model::Digest;
use appmodel_store::{Store, StoreError};

pub use plan::Plan;

/// Errors of exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("version {version} of `{app}` is not published")]
    NotPublished { app: String, version: String },
    #[error("component `{component}` cannot be exported to the {form} form: {reason}")]
    NotExportable {
        component: String,
        form: Form,
        reason: String,
    },
    #[error("the {0} form cannot be exported by this appmodel")]
    UnsupportedForm(Form),
    #[error(transparent)]
    Iso(#[from] appmodel_media::IsoError),
    #[error("`{}` exists already", .0.display())]
    OutputExists(PathBuf),
    #[error("cannot {action} `{}`", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob `{digest}` in the store is corrupt: its content hashes to `{actual}`")]
    CorruptBlob { digest: Digest, actual: Digest },
    #[error("binary blob `{digest}`: {reason}")]
    BadBinary { digest: Digest, reason: String },
    #[error("cannot sign the bundle: {0}")]
    Sign(String),
    #[error("cannot render the form's files: {0}")]
    Render(String),
    #[error("a volume of {} cannot hold what it must: {} (every volume carries the manifest, the appmodel executable and the form's files, and at least 1 MiB of blobs); choose larger media", appmodel_model::record::human_bytes(*.capacity), appmodel_model::record::human_bytes(*.needed))]
    MediaTooSmall { capacity: u64, needed: u64 },
    #[error("an appmodel for {platform} was given, but {app} {version} is for {}", .platforms.join(", "))]
    ToolPlatform {
        app: String,
        version: String,
        platform: String,
        platforms: Vec<String>,
    },
}

impl ExportError {
    /// A problem with the request, as opposed to the machine or the store.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            ExportError::NotPublished { .. }
                | ExportError::NotExportable { .. }
                | ExportError::UnsupportedForm(_)
                | ExportError::OutputExists(_)
                | ExportError::Sign(_)
                | ExportError::MediaTooSmall { .. }
                | ExportError::BadBinary { .. }
                | ExportError::ToolPlatform { .. }
        )
    }
}

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ExportError {
    let path = path.to_path_buf();
    move |source| ExportError::Io {
        action,
        path,
        source,
    }
}

/// Where the bundle goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// A directory (for a USB stick, or to burn as is).
    Dir(PathBuf),
    /// One tar file with the same content.
    Archive(PathBuf),
    /// An ISO 9660 image (Rock Ridge and Joliet) with the same content, to burn or to
    /// import as a file.
    Iso(PathBuf),
    /// A volume set in this directory: `capacity` bytes a volume, ISO images or directories.
    Volumes {
        dir: PathBuf,
        capacity: u64,
        iso: bool,
    },
}

/// Signs the manifest's bytes, returning the signature file's text.
pub type Signer<'a> = &'a dyn Fn(&[u8]) -> Result<String, String>;

/// What to export.
pub struct ExportOptions<'a> {
    pub app: String,
    pub version: String,
    pub form: Form,
    /// Make a delta bundle: leave out every blob this version already had.
    pub since: Option<String>,
    pub output: Output,
    /// The appmodel executable to ship in the bundle (static, for the site).
    pub tool: PathBuf,
    /// The appmodel executables for the app's other platforms, shipped as
    /// `appmodel-<os>-<arch>` (docs/bundle-format.md).
    pub tools_for: std::collections::BTreeMap<String, PathBuf>,
    /// A delta carries the appmodel executable even when its base's exports shipped the
    /// same one.
    pub with_tool: bool,
    pub signer: Option<Signer<'a>>,
}

/// What an export wrote.
#[derive(Debug)]
pub struct ExportReport {
    pub manifest: appmodel_model::bundle::BundleManifest,
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes reflinked or hard-linked from the store instead of copied.
    pub linked_bytes: u64,
    pub signed: bool,
    /// A volume set's volumes, in order (empty for one bundle).
    pub volumes: Vec<PathBuf>,
}

/// An image's label and dates: dated with the version's publication, so the same version
/// gives the same image.
fn iso_options(
    store: &Store,
    opts: &ExportOptions<'_>,
) -> Result<appmodel_media::IsoOptions, ExportError> {
    let time = store
        .record(&opts.app, &opts.version)?
        .and_then(|r| appmodel_model::record::parse_rfc3339(&r.published_at))
        .unwrap_or(0);
    Ok(appmodel_media::IsoOptions {
        volume_id: format!("{} {} {}", opts.app, opts.version, opts.form),
        time,
    })
}

/// Exports one version.
pub fn export(store: &Store, opts: &ExportOptions<'_>) -> Result<ExportReport, ExportError> {
    let plan = plan::plan(store, opts)?;
    let signature = match opts.signer {
        Some(sign) => Some(sign(&plan.manifest_bytes).map_err(ExportError::Sign)?),
        None => None,
    };
    let mut volumes = Vec::new();
    let (path, linked_bytes) = match &opts.output {
        Output::Dir(dir) => (
            dir.clone(),
            write::write_dir(store, &plan, signature.as_deref(), dir)?,
        ),
        Output::Archive(file) => (
            file.clone(),
            write::write_tar(store, &plan, signature.as_deref(), file)?,
        ),
        Output::Iso(file) => {
            write::write_iso(
                store,
                &plan,
                signature.as_deref(),
                file,
                &iso_options(store, opts)?,
            )?;
            (file.clone(), 0)
        }
        Output::Volumes { dir, capacity, iso } => {
            let set = volumes::VolumeSet {
                dir: dir.clone(),
                capacity: *capacity,
                iso: if *iso {
                    Some(iso_options(store, opts)?)
                } else {
                    None
                },
            };
            volumes =
                volumes::write_volumes(store, &plan, signature.as_deref(), opts.signer, &set)?;
            (dir.clone(), 0)
        }
    };
    for tool in std::iter::once(&plan.tool).chain(&plan.other_tools) {
        store.note_exported_tool(&opts.app, &opts.version, tool)?;
    }
    Ok(ExportReport {
        bytes: plan.manifest.total_bytes(),
        manifest: plan.manifest,
        path,
        linked_bytes,
        signed: signature.is_some(),
        volumes,
    })
}
