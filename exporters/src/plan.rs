//! Planning a bundle: every file, its size and digest, before anything is written.

use std::fs::File;
use std::path::{Path, PathBuf};

use appmodel_model::bundle::{
    tool_file_for, BundleFile, BundleManifest, DeltaBase, Form, RECORD_FILE, SBOM_FILE, TOOL_FILE,
};
use appmodel_model::record::{media, VersionRecord};
use appmodel_model::Digest;
use appmodel_store::{copy_stream, CopyError, HashingReader, Store};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::forms::{exporter, needs, Ships};
use crate::{io_err, ExportError, ExportOptions};

/// Where a planned file's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    Bytes(Vec<u8>),
    /// A blob in the store.
    Blob(Digest),
    /// A file on disk (the appmodel tool).
    File(PathBuf),
    /// A piece of a store blob: `size` bytes (the entry's) from `offset` (a volume's part).
    Part {
        blob: Digest,
        offset: u64,
    },
}

#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub entry: BundleFile,
    pub source: Source,
}

/// A bundle, decided.
#[derive(Debug)]
pub struct Plan {
    pub manifest: BundleManifest,
    pub manifest_bytes: Vec<u8>,
    pub files: Vec<PlannedFile>,
    /// The appmodel executable the bundle ships, or leaves out for the base's.
    pub tool: Digest,
    /// The other platforms' appmodel executables, shipped or left out.
    pub other_tools: Vec<Digest>,
}

fn bytes_file(path: &str, bytes: Vec<u8>) -> PlannedFile {
    PlannedFile {
        entry: BundleFile {
            path: path.to_string(),
            size: bytes.len() as u64,
            sha256: Digest::from_sha256(&Sha256::digest(&bytes)),
            executable: false,
        },
        source: Source::Bytes(bytes),
    }
}

/// Pretty JSON with a final newline, as every JSON file of a bundle is written.
pub(crate) fn json_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).unwrap_or_default();
    v.push(b'\n');
    v
}

pub fn plan(store: &Store, opts: &ExportOptions<'_>) -> Result<Plan, ExportError> {
    let not_published = |v: &str| ExportError::NotPublished {
        app: opts.app.clone(),
        version: v.to_string(),
    };
    let record = store
        .record(&opts.app, &opts.version)?
        .ok_or_else(|| not_published(&opts.version))?;
    let base = match &opts.since {
        Some(v) => Some(
            store
                .record(&opts.app, v)?
                .ok_or_else(|| not_published(v))?,
        ),
        None => None,
    };
    let exporter = exporter(opts.form)?;
    let mut needs = needs(&record, opts.form)?;
    if record.model.licence.is_some() {
        needs.read_processes(store, opts.form)?;
    }
    // A delta leaves out an appmodel executable when this store's exports of its base
    // shipped the same one: the site has it (docs/bundle-format.md "Delta bundles").
    let exported = base
        .as_ref()
        .filter(|_| !opts.with_tool)
        .map(|b| store.exported_tools(&b.app, &b.version))
        .unwrap_or_default();
    let tool = tool_file(&opts.tool, TOOL_FILE)?;
    let tool_left_out = exported.contains(&tool.entry.sha256);
    let tool_digest = tool.entry.sha256.clone();
    let mut other_tools = Vec::new();
    let platforms = record.model.app.platforms();
    for (platform, path) in &opts.tools_for {
        if !platforms.contains(platform) {
            return Err(ExportError::ToolPlatform {
                app: record.app.clone(),
                version: record.version.to_string(),
                platform: platform.clone(),
                platforms,
            });
        }
        other_tools.push(tool_file(path, &tool_file_for(platform))?);
    }
    let other_digests = other_tools.iter().map(|t| t.entry.sha256.clone()).collect();
    let (others_left_out, others_shipped): (Vec<_>, Vec<_>) = other_tools
        .into_iter()
        .partition(|t| exported.contains(&t.entry.sha256));
    let mut files = vec![
        bytes_file(RECORD_FILE, json_bytes(&record)),
        // The model as written, so the site can run `appmodel config init -f appmodel.yaml`.
        bytes_file("appmodel.yaml", record.model_text.clone().into_bytes()),
        bytes_file(
            "README.txt",
            (readme(
                &record,
                opts.form,
                exporter.readme_files(),
                base.as_ref(),
                tool_left_out,
            ) + &other_tools_note(&others_shipped))
                .into_bytes(),
        ),
    ];
    if !tool_left_out {
        files.push(tool);
    }
    files.extend(others_shipped);

    if exporter.ships() == Ships::Images {
        files.push(bytes_file(
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        let manifests: Vec<_> = needs
            .images
            .iter()
            .map(|(component, platform, img)| {
                let (os, arch) = platform.split_once('/').unwrap_or((platform.as_str(), ""));
                json!({
                    "mediaType": media::OCI_MANIFEST,
                    "digest": img.manifest.digest,
                    "size": img.manifest.size,
                    "platform": {"os": os, "architecture": arch},
                    "annotations": {
                        "org.opencontainers.image.ref.name": format!("{}/{component}:{}", record.app, record.version),
                        "dev.appmodel.component": component,
                    }
                })
            })
            .collect();
        files.push(bytes_file(
            "index.json",
            json_bytes(
                &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests}),
            ),
        ));
    }

    for (path, bytes) in exporter.files(&record, &needs)? {
        files.push(bytes_file(&path, bytes));
    }
    {
        let form_files = crate::sbom::form_files(
            files
                .iter()
                .map(|f| (f.entry.path.as_str(), &f.entry.sha256)),
        );
        let sbom = crate::sbom::cyclonedx(
            store,
            &record,
            Some(opts.form),
            &form_files,
            Some(&tool_digest),
        )?;
        files.push(bytes_file(SBOM_FILE, json_bytes(&sbom)));
    }

    let base_blobs = base.as_ref().map(|b| {
        b.blobs()
            .into_keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    });
    let mut held_by_site = Vec::new();
    for (digest, blob) in needs.blobs() {
        if base_blobs.as_ref().is_some_and(|b| b.contains(digest)) {
            held_by_site.push(digest.clone());
            continue;
        }
        files.push(PlannedFile {
            entry: BundleFile {
                path: format!("blobs/sha256/{}", digest.hex()),
                size: blob.size,
                sha256: digest.clone(),
                executable: false,
            },
            source: Source::Blob(digest.clone()),
        });
    }
    files.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));

    let manifest = BundleManifest {
        format: appmodel_model::bundle::format_for(&platforms),
        app: record.app.clone(),
        version: record.version.to_string(),
        form: opts.form,
        platforms,
        written_by: format!("appmodel {}", env!("CARGO_PKG_VERSION")),
        base: base.map(|b| DeltaBase {
            version: b.version.to_string(),
            blobs: held_by_site,
            tool: tool_left_out.then(|| tool_digest.clone()),
            tools: others_left_out
                .into_iter()
                .map(|t| (t.entry.path, t.entry.sha256))
                .collect(),
        }),
        files: files.iter().map(|f| f.entry.clone()).collect(),
    };
    let manifest_bytes = json_bytes(&manifest);
    Ok(Plan {
        manifest,
        manifest_bytes,
        files,
        tool: tool_digest,
        other_tools: other_digests,
    })
}

/// An appmodel executable shipped as bundle file `name`, hashed.
fn tool_file(path: &Path, name: &str) -> Result<PlannedFile, ExportError> {
    let f = File::open(path).map_err(io_err("read", path))?;
    let mut hashing = HashingReader::new(f);
    copy_stream(&mut hashing, &mut std::io::sink()).map_err(|e| match e {
        CopyError::Read(e) | CopyError::Write(e) => io_err("read", path)(e),
    })?;
    let (sha256, size) = hashing.finish();
    Ok(PlannedFile {
        entry: BundleFile {
            path: name.to_string(),
            size,
            sha256,
            executable: true,
        },
        source: Source::File(path.to_path_buf()),
    })
}

/// The README's lines on the appmodel of each other platform the medium carries.
fn other_tools_note(shipped: &[PlannedFile]) -> String {
    shipped
        .iter()
        .filter_map(|t| {
            let platform = appmodel_model::bundle::tool_platform(&t.entry.path)?;
            Some(format!(
                "On a {platform} host, run ./{} wherever this note says ./appmodel.\n",
                t.entry.path
            ))
        })
        .collect()
}

/// The note for the person on site; `form_files` ends its list of files.
fn readme(
    record: &VersionRecord,
    form: Form,
    form_files: &str,
    base: Option<&VersionRecord>,
    tool_left_out: bool,
) -> String {
    let delta = match base {
        Some(b) => format!(
            "\nThis is a DELTA bundle: it holds only what changed since {} {}.\nThe site must have imported {} first; `appmodel import` says so if not.\n{}",
            b.app,
            b.version,
            b.version,
            if tool_left_out {
                format!(
                    "The appmodel program is NOT on this medium: it is the same as {}'s.\nRun the one installed with {} (`appmodel import .`), not `./appmodel`.\n",
                    b.version, b.version
                )
            } else {
                String::new()
            }
        ),
        None => String::new(),
    };
    format!(
        "{app} {version} — offline bundle ({form} form)\n\
         {line}\n\
         {desc}\n\
         {delta}\n\
         Everything needed is on this medium, including the `appmodel` program itself.\n\
         No network access is needed.\n\n\
         1. Pin the vendor's public key (once per site; it comes to you apart from this\n\
         \x20  medium), then check and import the bundle into this host's store (as root):\n\n\
         \x20     ./appmodel trust add VENDOR.pub\n\
         \x20     ./appmodel import .            # or: /media/disc/appmodel import /media/disc\n\n\
         \x20  (`./appmodel import --trust-key VENDOR.pub .` does both in one step.)\n\
         \x20  Every file is checked against bundle.json (size and sha256) before anything\n\
         \x20  changes, and the signature (bundle.json.minisig) against the pinned keys: an\n\
         \x20  unsigned bundle, or one signed by a key the site has not pinned, is refused\n\
         \x20  (`--allow-unsigned` accepts it, and history records that). An older version\n\
         \x20  than the site has run is not installed unless `--allow-downgrade` is given.\n\
         \x20  Stock minisign can check the signature too:\n\n\
         \x20     minisign -Vm bundle.json -p VENDOR.pub\n\n\
         \x20  To only check a disc or stick (nothing is written, root not needed):\n\n\
         \x20     ./appmodel verify . --key VENDOR.pub\n\n\
         \x20  A medium with a volume.json is one volume of a set: import every volume the\n\
         \x20  same way, in any order (`/media/disc/appmodel import /media/disc`; on a\n\
         \x20  terminal it then asks for the next disc there), or all at once from a\n\
         \x20  directory holding them. Each volume is checked alone and kept; the set is\n\
         \x20  imported when the last one is read, and the error names those still missing.\n\n\
         2. Write the site configuration from the model in this bundle and check it:\n\n\
         \x20     ./appmodel config init -f appmodel.yaml -o site-config.yaml\n\
         \x20     ./appmodel config check -f appmodel.yaml site-config.yaml\n\n\
         3. Install, and later upgrade or roll back:\n\n\
         \x20     ./appmodel install --config site-config.yaml\n\
         \x20     ./appmodel upgrade            # to the newest imported version\n\
         \x20     ./appmodel rollback           # back to the previous revision, with its data\n\
         \x20     ./appmodel status; ./appmodel history\n\n\
         Files: bundle.json (manifest), record.json (the published version), appmodel.yaml\n\
         (the model), appmodel (the tool, static linux/amd64), blobs/ (content by sha256),\n\
         {files}\n",
        files = form_files,
        app = record.app,
        version = record.version,
        line = "=".repeat(60),
        desc = record.model.app.description.clone().unwrap_or_default(),
    )
}
