//! Pulling images from an OCI registry with oci-client (rustls; no OpenSSL).

use std::io::{self, Read};
use std::path::PathBuf;

use base64::Engine as _;
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use oci_client::{Client, Reference};
use tokio::runtime::Runtime;

use appmodel_model::record::media;
use appmodel_model::Digest;

use crate::oci::{Descriptor, ACCEPTED};
use crate::source::BlobSource;
use crate::PublishError;

/// How to reach registries: credentials, trusted CAs and plain-http hosts.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Hosts (`host:port`) spoken to over plain http.
    pub insecure: Vec<String>,
    /// A PEM file of CA certificates trusted for https, besides the system's.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A bearer token used as is.
    pub token: Option<String>,
    /// A docker config file with `auths` (default: `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
}

impl RegistryOptions {
    fn auth_for(&self, registry: &str) -> RegistryAuth {
        if let Some(t) = &self.token {
            return RegistryAuth::Bearer(t.clone());
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return RegistryAuth::Basic(u.clone(), p.clone());
        }
        let path = self.docker_config.clone().or_else(|| {
            std::env::var_os("DOCKER_CONFIG")
                .map(|d| PathBuf::from(d).join("config.json"))
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
                })
        });
        let creds = path
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                let auth = v
                    .get("auths")?
                    .get(registry)?
                    .get("auth")?
                    .as_str()?
                    .to_string();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .ok()?;
                let text = String::from_utf8(decoded).ok()?;
                let (u, p) = text.split_once(':')?;
                Some((u.to_string(), p.to_string()))
            });
        match creds {
            Some((u, p)) => RegistryAuth::Basic(u, p),
            None => RegistryAuth::Anonymous,
        }
    }
}

/// An image in a registry, resolved to a digest.
pub struct RegistrySource {
    rt: Runtime,
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    top: Option<(Descriptor, Vec<u8>)>,
}

fn registry_error(reference: &str, e: impl std::fmt::Display) -> PublishError {
    PublishError::Registry {
        reference: reference.to_string(),
        message: e.to_string(),
    }
}

/// Like [`registry_error`], with the error's causes: reqwest's own text hides them, and the
/// cause is what a person needs ("invalid peer certificate: UnknownIssuer").
fn registry_error_chain(reference: &str, e: &(dyn std::error::Error + 'static)) -> PublishError {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    registry_error(reference, message)
}

/// The CA certificates of a PEM file, for oci-client.
pub fn read_ca_file(path: &std::path::Path) -> Result<Certificate, PublishError> {
    let data = std::fs::read(path).map_err(|source| PublishError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !data
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(PublishError::source(
            &format!("`{}`", path.display()),
            "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".to_string(),
        ));
    }
    Ok(Certificate {
        encoding: CertificateEncoding::Pem,
        data,
    })
}

impl RegistrySource {
    pub fn new(reference: &str, options: &RegistryOptions) -> Result<RegistrySource, PublishError> {
        let parsed: Reference = reference
            .parse()
            .map_err(|e| registry_error(reference, format!("invalid reference: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PublishError::Internal(e.to_string()))?;
        let extra_root_certificates = match &options.ca_file {
            Some(path) => vec![read_ca_file(path)?],
            None => Vec::new(),
        };
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(options.insecure.clone()),
            extra_root_certificates,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        // Not `Client::new`: it drops a config it cannot use (a bad certificate) and goes on
        // with the defaults, silently.
        let client = Client::try_from(config).map_err(|e| registry_error_chain(reference, &e))?;
        let auth = options.auth_for(parsed.resolve_registry());
        Ok(RegistrySource {
            rt,
            client,
            reference: parsed,
            auth,
            top: None,
        })
    }

    /// Resolves the tag (or digest) to the top manifest or index and pins it.
    pub fn resolve(&mut self) -> Result<Descriptor, PublishError> {
        if !matches!(self.auth, RegistryAuth::Anonymous) {
            // Up front, so a token server's refusal is reported as such: left to the pull,
            // oci-client drops it and goes on unauthenticated ("unauthorized").
            self.rt
                .block_on(
                    self.client
                        .auth(&self.reference, &self.auth, RegistryOperation::Pull),
                )
                .map_err(|e| registry_error_chain(&self.reference.whole(), &e))?;
        }
        let (bytes, digest) = self
            .rt
            .block_on(
                self.client
                    .pull_manifest_raw(&self.reference, &self.auth, ACCEPTED),
            )
            .map_err(|e| registry_error_chain(&self.reference.whole(), &e))?;
        let actual = Digest::from_sha256(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if let Ok(claimed) = digest.parse::<Digest>() {
            if claimed != actual {
                return Err(PublishError::Store(
                    appmodel_store::StoreError::DigestMismatch {
                        what: format!("manifest of `{}`", self.reference.whole()),
                        expected: claimed,
                        actual,
                    },
                ));
            }
        }
        if let Some(pinned) = self.reference.digest() {
            if pinned != actual.to_string() {
                return Err(PublishError::Store(
                    appmodel_store::StoreError::DigestMismatch {
                        what: format!("manifest of `{}`", self.reference.whole()),
                        expected: pinned
                            .parse()
                            .map_err(|e| registry_error(&self.reference.whole(), e))?,
                        actual,
                    },
                ));
            }
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        let desc = Descriptor {
            media_type,
            digest: actual,
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
        };
        self.top = Some((desc.clone(), bytes.to_vec()));
        Ok(desc)
    }

    /// `registry/repo:tag@sha256:...` once resolved.
    pub fn pinned(&self) -> String {
        let base = format!(
            "{}/{}",
            self.reference.resolve_registry(),
            self.reference.repository()
        );
        let tag = self
            .reference
            .tag()
            .map(|t| format!(":{t}"))
            .unwrap_or_default();
        match &self.top {
            Some((d, _)) => format!("{base}{tag}@{}", d.digest),
            None => format!("{base}{tag}"),
        }
    }
}

impl BlobSource for RegistrySource {
    fn describe(&self) -> String {
        format!("registry image `{}`", self.reference.whole())
    }

    fn open(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>, PublishError> {
        if let Some((top, bytes)) = &self.top {
            if top.digest == desc.digest {
                return Ok(Box::new(io::Cursor::new(bytes.clone())));
            }
        }
        let whole = self.reference.whole();
        let is_manifest = [
            media::OCI_MANIFEST,
            media::OCI_INDEX,
            media::DOCKER_MANIFEST,
            media::DOCKER_LIST,
        ]
        .contains(&desc.media_type.as_str());
        if is_manifest {
            let by_digest = self.reference.clone_with_digest(desc.digest.to_string());
            let (bytes, _) = self
                .rt
                .block_on(
                    self.client
                        .pull_manifest_raw(&by_digest, &self.auth, ACCEPTED),
                )
                .map_err(|e| registry_error_chain(&whole, &e))?;
            return Ok(Box::new(io::Cursor::new(bytes.to_vec())));
        }
        let digest = desc.digest.to_string();
        let stream = self
            .rt
            .block_on(
                self.client
                    .pull_blob_stream(&self.reference, digest.as_str()),
            )
            .map_err(|e| registry_error_chain(&whole, &e))?;
        Ok(Box::new(StreamReader {
            rt: &self.rt,
            stream: Box::pin(stream),
            buf: bytes::Bytes::new(),
        }))
    }
}

/// Blocking `Read` over the async byte stream of a blob download.
struct StreamReader<'a, S> {
    rt: &'a Runtime,
    stream: std::pin::Pin<Box<S>>,
    buf: bytes::Bytes,
}

impl<S, E> Read for StreamReader<'_, S>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>>,
    E: std::fmt::Display,
{
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.buf = chunk,
                Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}
