//! `appmodel push-images`: copies an imported version's images from the site store to the
//! site's registry, so a cluster can pull them (the Helm form).
//!
//! Each image goes to `HOST[/PREFIX]/APP/COMPONENT`: every blob the registry does not hold
//! yet (a HEAD request asks), then the manifest by digest; for an app of several platforms
//! each platform's image so, then the OCI index over them. The version's tag names the
//! index, or the one manifest. Manifests and indexes are pushed as stored, so their digests
//! — the ones the chart pins — do not change. No blob is sent twice: a second push asks.

use std::io::Read;

use futures_util::stream;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;

use appmodel_model::record::BlobRef;
use appmodel_model::Digest;

use crate::site::Site;
use crate::ImportError;

/// Where and how to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions<'a> {
    pub app: Option<&'a str>,
    /// The version [default: the newest imported].
    pub version: Option<&'a str>,
    /// `HOST[:PORT][/PREFIX]`.
    pub registry: &'a str,
    /// Speak plain http.
    pub insecure: bool,
    /// A PEM file of CA certificates trusted for https, besides the system's.
    pub ca_file: Option<&'a std::path::Path>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

/// One pushed image.
#[derive(Debug, Clone, Serialize)]
pub struct PushedImage {
    pub component: String,
    /// `HOST/PREFIX/APP/COMPONENT@sha256:…`, what the chart pulls.
    pub reference: String,
    pub tag: String,
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub app: String,
    pub version: String,
    pub registry: String,
    pub images: Vec<PushedImage>,
    pub blobs_pushed: usize,
    /// Blobs the registry held already (not sent).
    pub blobs_skipped: usize,
    pub bytes_pushed: u64,
}

/// `HOST[:PORT][/PREFIX]` -> (host, prefix).
pub fn split_registry(registry: &str) -> Result<(String, String), ImportError> {
    let r = registry.trim_end_matches('/');
    let r = r
        .strip_prefix("http://")
        .or_else(|| r.strip_prefix("https://"))
        .unwrap_or(r);
    let (host, prefix) = r.split_once('/').unwrap_or((r, ""));
    if host.is_empty() || host.contains(char::is_whitespace) || prefix.contains("//") {
        return Err(ImportError::BadRegistry(registry.to_string()));
    }
    Ok((host.to_string(), prefix.to_string()))
}

/// The repository of a component's image below `HOST`.
pub fn repository(prefix: &str, app: &str, component: &str) -> String {
    let repo = appmodel_model::layout::helm::image_repository(app, component);
    if prefix.is_empty() {
        repo
    } else {
        format!("{prefix}/{repo}")
    }
}

fn registry_err(what: &str, e: impl std::fmt::Display) -> ImportError {
    ImportError::Registry {
        action: what.to_string(),
        reason: e.to_string(),
    }
}

fn parse(reference: &str) -> Result<Reference, ImportError> {
    reference
        .parse()
        .map_err(|e| registry_err(&format!("use `{reference}`"), e))
}

/// Pushes every image of one imported version.
pub fn push_images(site: &Site, opts: &PushOptions<'_>) -> Result<PushReport, ImportError> {
    let app = crate::lifecycle::resolve_app(site, opts.app)?;
    let record = crate::lifecycle::pick_version(site, &app, None, opts.version)?;
    let (host, prefix) = split_registry(opts.registry)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| registry_err("start the network runtime", e))?;
    let protocol = if opts.insecure {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let extra_root_certificates = match opts.ca_file {
        Some(path) => vec![Certificate {
            encoding: CertificateEncoding::Pem,
            data: std::fs::read(path).map_err(|source| ImportError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?,
        }],
        None => Vec::new(),
    };
    // Not `Client::new`: it drops a config it cannot use and goes on with the defaults.
    let client = Client::try_from(ClientConfig {
        protocol,
        extra_root_certificates,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    })
    .map_err(|e| registry_err("set up the https client", e))?;
    let auth = match (opts.username, opts.password) {
        (Some(u), Some(p)) => RegistryAuth::Basic(u.to_string(), p.to_string()),
        _ => RegistryAuth::Anonymous,
    };
    rt.block_on(client.store_auth_if_needed(&host, &auth));

    let mut report = PushReport {
        app: app.clone(),
        version: record.version.to_string(),
        registry: opts.registry.to_string(),
        images: Vec::new(),
        blobs_pushed: 0,
        blobs_skipped: 0,
        bytes_pushed: 0,
    };
    for c in &record.model.components {
        let Some(art) = record.components.get(&c.name) else {
            continue;
        };
        let repo = repository(&prefix, &app, &c.name);
        let mut last = None;
        for img in art.images.values() {
            let by_digest = parse(&format!("{host}/{repo}@{}", img.manifest.digest))?;
            for blob in std::iter::once(&img.config).chain(img.layers.iter()) {
                let exists = rt
                    .block_on(client.blob_exists(&by_digest, &blob.digest.to_string()))
                    .map_err(|e| registry_err(&format!("ask `{host}/{repo}` for a blob"), e))?;
                if exists {
                    report.blobs_skipped += 1;
                    continue;
                }
                push_blob(site, &rt, &client, &by_digest, blob)?;
                report.blobs_pushed += 1;
                report.bytes_pushed += blob.size;
            }
            let manifest = read_blob(site, &img.manifest)?;
            push_manifest(&rt, &client, &by_digest, &img.manifest, manifest.clone())?;
            last = Some((&img.manifest, manifest));
        }
        // The one reference of the component: its index over the platforms (pushed after
        // the manifests it names), or its image's manifest; the version's tag names it.
        let (top, bytes) = match (&art.index, last) {
            (Some(index), _) => {
                let bytes = read_blob(site, index)?;
                let by_digest = parse(&format!("{host}/{repo}@{}", index.digest))?;
                push_manifest(&rt, &client, &by_digest, index, bytes.clone())?;
                (index, bytes)
            }
            (None, Some(one)) => one,
            (None, None) => continue,
        };
        let tagged = parse(&format!("{host}/{repo}:{}", tag(&record.version)))?;
        push_manifest(&rt, &client, &tagged, top, bytes)?;
        report.images.push(PushedImage {
            component: c.name.clone(),
            reference: format!("{host}/{repo}@{}", top.digest),
            tag: tag(&record.version),
        });
        tracing::info!(component = %c.name, "pushed {host}/{repo}@{}", top.digest);
    }
    // install/upgrade (helm form) read where the images are from here.
    let registry = if prefix.is_empty() {
        host.clone()
    } else {
        format!("{host}/{prefix}")
    };
    crate::helm::record_pushed(
        &crate::deploy::Deployment::new(site, &app),
        &registry,
        &record.version,
    )?;
    Ok(report)
}

/// Puts a manifest or index, as stored (so its digest stays the one pinned), at `to`.
fn push_manifest(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    to: &Reference,
    blob: &BlobRef,
    bytes: Vec<u8>,
) -> Result<(), ImportError> {
    let content_type = http::HeaderValue::from_str(&blob.media_type)
        .map_err(|e| registry_err("name the manifest's media type", e))?;
    rt.block_on(client.push_manifest_raw(to, bytes, content_type))
        .map_err(|e| registry_err(&format!("push the manifest `{}` to `{to}`", blob.digest), e))?;
    Ok(())
}

/// A version as an OCI tag (`+` is not allowed in tags).
fn tag(version: &str) -> String {
    version.replace('+', "_")
}

fn read_blob(site: &Site, blob: &BlobRef) -> Result<Vec<u8>, ImportError> {
    let mut bytes = Vec::with_capacity(blob.size as usize);
    site.store()
        .open_blob(&blob.digest)?
        .read_to_end(&mut bytes)
        .map_err(crate::io_err("read", &site.store().blob_path(&blob.digest)))?;
    let actual = Digest::from_sha256(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    if actual != blob.digest {
        return Err(ImportError::DigestMismatch {
            path: site.store().blob_path(&blob.digest).display().to_string(),
            expected: blob.digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// Streams one blob from the store in chunks; the registry checks the digest at the end.
fn push_blob(
    site: &Site,
    rt: &tokio::runtime::Runtime,
    client: &Client,
    image: &Reference,
    blob: &BlobRef,
) -> Result<(), ImportError> {
    const CHUNK: usize = 4 << 20;
    let mut file = site.store().open_blob(&blob.digest)?;
    let chunks = std::iter::from_fn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => {
                    return Some(Err(oci_client::errors::OciDistributionError::IoError(e)));
                }
            }
        }
        (filled > 0).then(|| {
            buf.truncate(filled);
            Ok(bytes::Bytes::from(buf))
        })
    });
    rt.block_on(client.push_blob_stream(
        image,
        stream::iter(chunks),
        &blob.digest.to_string(),
        Some(blob.size),
    ))
    .map_err(|e| registry_err(&format!("push blob `{}`", blob.digest), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_split_into_host_and_prefix() {
        assert_eq!(
            split_registry("reg.site:5000/apps/prod/").unwrap(),
            ("reg.site:5000".into(), "apps/prod".into())
        );
        assert_eq!(
            split_registry("127.0.0.1:5000").unwrap(),
            ("127.0.0.1:5000".into(), String::new())
        );
        // A bad address is the user's input (exit 1); a registry that fails is not.
        let e = split_registry("reg site//x").unwrap_err();
        assert!(
            matches!(e, ImportError::BadRegistry(_)) && e.is_user_error(),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "`reg site//x` is not a registry: write HOST[:PORT][/PREFIX]"
        );
        assert!(split_registry("").is_err());
        assert!(!registry_err("push blob `x`", "connection refused").is_user_error());
        assert_eq!(repository("", "a", "c"), "a/c");
        assert_eq!(repository("p/q", "a", "c"), "p/q/a/c");
    }
}
