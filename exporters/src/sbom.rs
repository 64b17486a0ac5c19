//! The bill of materials every bundle carries: `sbom.cdx.json`, CycloneDX 1.6 JSON, listed
//! and signed in the bundle manifest like every other file.
//!
//! It names the app and version, each component with what the bundle ships of it (its
//! container images by digest as `pkg:oci` package URLs, its static binaries by sha256),
//! the crates a binary was built from when it was built with `cargo auditable` (read from
//! its `.dep-v0` section: [`auditable_packages`]), the form's own files (the chart, the
//! units, the compose project) by sha256, the dependency edges of the model, and the
//! appmodel that wrote it. Everything in it comes from the version record and the bundle's
//! planned files, so re-exporting the same version gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use appmodel_model::bundle::Form;
use appmodel_model::record::{BlobRef, VersionRecord};
use appmodel_model::Digest;
use appmodel_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::forms::Ships;
use crate::ExportError;

/// The CycloneDX document of `record` as a bundle of `form` ships it (every artifact of the
/// record when `form` is `None`). `files` are the form's own files (path and sha256);
/// `tool` the appmodel the bundle ships.
pub fn cyclonedx(
    store: &Store,
    record: &VersionRecord,
    form: Option<Form>,
    files: &[(String, Digest)],
    tool: Option<&Digest>,
) -> Result<Value, ExportError> {
    let app_ref = format!("app/{}", record.app);
    let ships = match form {
        Some(f) => Some(crate::forms::exporter(f)?.ships()),
        None => None,
    };
    let ships_images = ships.is_none_or(|s| s == Ships::Images);
    let ships_binaries = ships.is_none_or(|s| s == Ships::Binaries);
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    for c in &record.model.components {
        let c_ref = format!("component/{}", c.name);
        let mut parts = Vec::new();
        let art = record.components.get(&c.name);
        if ships_images {
            for (platform, img) in art.map(|a| &a.images).into_iter().flatten() {
                let (os, arch) = platform.split_once('/').unwrap_or((platform, ""));
                parts.push(json!({
                    "type": "container",
                    "bom-ref": format!("{c_ref}/image/{platform}"),
                    "name": format!("{}/{}", record.app, c.name),
                    "version": img.manifest.digest.to_string(),
                    "purl": format!(
                        "pkg:oci/{}@sha256%3A{}?arch={arch}&os={os}",
                        c.name,
                        img.manifest.digest.hex()
                    ),
                    "hashes": [sha256(&img.manifest.digest)],
                    "properties": [{"name": "dev.appmodel:platform", "value": platform}],
                }));
            }
        }
        // A binary is in the bundle itself (systemd) or inside the image built from it.
        for (platform, bin) in art.map(|a| &a.binaries).into_iter().flatten() {
            let b_ref = format!("{c_ref}/binary/{platform}");
            let name = c.binary_file_name();
            let crates = auditable_packages(store, bin)?;
            let nested: Vec<Value> = crates
                .iter()
                .map(|p| {
                    json!({
                        "type": "library",
                        "bom-ref": format!("{b_ref}/crate/{}@{}", p.name, p.version),
                        "name": p.name,
                        "version": p.version,
                        "purl": format!("pkg:cargo/{}@{}", p.name, p.version),
                    })
                })
                .collect();
            let mut binary = json!({
                "type": "file",
                "bom-ref": b_ref,
                "name": name,
                "hashes": [sha256(&bin.digest)],
                "properties": [
                    {"name": "dev.appmodel:platform", "value": platform},
                    {"name": "dev.appmodel:in-bundle", "value": if ships_binaries { "file" } else { "in its image" }},
                ],
            });
            if !nested.is_empty() {
                binary["components"] = Value::Array(nested);
            }
            parts.push(binary);
        }
        let mut component = json!({
            "type": "application",
            "bom-ref": c_ref,
            "name": c.name,
            "version": record.version.as_str(),
        });
        if let Some(d) = &c.description {
            component["description"] = json!(d);
        }
        if let Some(sbom) = art.and_then(|a| a.sbom.as_ref()) {
            // The vendor's own, in the bundle as a blob.
            component["externalReferences"] = json!([{
                "type": "bom",
                "url": format!("blobs/sha256/{}", sbom.digest.hex()),
                "comment": format!("the vendor's bill of materials of {} ({})", c.name, sbom.media_type),
                "hashes": [sha256(&sbom.digest)],
            }]);
        }
        if !parts.is_empty() {
            component["components"] = Value::Array(parts);
        }
        components.push(component);
        let on: BTreeSet<String> = c
            .depends_on
            .iter()
            .map(|d| format!("component/{d}"))
            .collect();
        dependencies.push(json!({"ref": c_ref, "dependsOn": on}));
    }
    for (path, digest) in files {
        components.push(json!({
            "type": "file",
            "bom-ref": format!("file/{path}"),
            "name": path,
            "hashes": [sha256(digest)],
        }));
    }
    let all: Vec<String> = record
        .model
        .components
        .iter()
        .map(|c| format!("component/{}", c.name))
        .collect();
    dependencies.insert(0, json!({"ref": app_ref, "dependsOn": all}));

    let mut tool_entry = json!({
        "type": "application",
        "name": "appmodel",
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(t) = tool {
        tool_entry["hashes"] = json!([sha256(t)]);
    }
    let mut app = json!({
        "type": "application",
        "bom-ref": app_ref,
        "name": record.app,
        "version": record.version.as_str(),
    });
    if let Some(d) = &record.model.app.description {
        app["description"] = json!(d);
    }
    if let Some(v) = &record.model.app.vendor {
        app["supplier"] = json!({"name": v});
    }
    let mut metadata = json!({
        "tools": {"components": [tool_entry]},
        "component": app,
    });
    if !record.published_at.is_empty() {
        metadata["timestamp"] = json!(record.published_at);
    }
    if let Some(f) = form {
        metadata["properties"] = json!([{"name": "dev.appmodel:form", "value": f.as_str()}]);
    }
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(record, form),
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    }))
}

/// The same bill of materials as SPDX 2.3 JSON: every CycloneDX component a package (the
/// app, the components, their images, binaries and crates, the form's files), `CONTAINS`
/// for nesting and `DEPENDS_ON` for the model's edges. Made from the CycloneDX document,
/// so both say the same.
pub fn spdx(cdx: &Value) -> Value {
    let id = |bom_ref: &str| {
        let clean: String = bom_ref
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("SPDXRef-{clean}")
    };
    let meta = &cdx["metadata"];
    let app = &meta["component"];
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    let package = |c: &Value| {
        let mut p = json!({
            "SPDXID": id(c["bom-ref"].as_str().unwrap_or_default()),
            "name": c["name"],
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": match c["type"].as_str() {
                Some("container") => "CONTAINER",
                Some("library") => "LIBRARY",
                Some("file") => "FILE",
                _ => "APPLICATION",
            },
        });
        if let Some(v) = c["version"].as_str() {
            p["versionInfo"] = json!(v);
        }
        if let Some(hashes) = c["hashes"].as_array() {
            p["checksums"] = Value::Array(
                hashes
                    .iter()
                    .map(|h| json!({"algorithm": "SHA256", "checksumValue": h["content"]}))
                    .collect(),
            );
        }
        if let Some(purl) = c["purl"].as_str() {
            p["externalRefs"] = json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }]);
        }
        if let Some(s) = c["supplier"]["name"].as_str() {
            p["supplier"] = json!(format!("Organization: {s}"));
        }
        if let Some(d) = c["description"].as_str() {
            p["description"] = json!(d);
        }
        p
    };
    fn walk(
        parent: &str,
        list: &Value,
        package: &dyn Fn(&Value) -> Value,
        packages: &mut Vec<Value>,
        relationships: &mut Vec<Value>,
        id: &dyn Fn(&str) -> String,
    ) {
        for c in list.as_array().into_iter().flatten() {
            let me = id(c["bom-ref"].as_str().unwrap_or_default());
            packages.push(package(c));
            relationships.push(json!({
                "spdxElementId": parent,
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": me,
            }));
            walk(&me, &c["components"], package, packages, relationships, id);
        }
    }
    let app_id = id(app["bom-ref"].as_str().unwrap_or_default());
    packages.push(package(app));
    relationships.push(json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": app_id,
    }));
    walk(
        &app_id,
        &cdx["components"],
        &package,
        &mut packages,
        &mut relationships,
        &id,
    );
    for d in cdx["dependencies"].as_array().into_iter().flatten() {
        let from = d["ref"].as_str().unwrap_or_default();
        if id(from) == app_id {
            continue; // the app CONTAINS its components already
        }
        for to in d["dependsOn"].as_array().into_iter().flatten() {
            relationships.push(json!({
                "spdxElementId": id(from),
                "relationshipType": "DEPENDS_ON",
                "relatedSpdxElement": id(to.as_str().unwrap_or_default()),
            }));
        }
    }
    let serial = cdx["serialNumber"].as_str().unwrap_or_default();
    let name = format!(
        "{}-{}",
        app["name"].as_str().unwrap_or_default(),
        app["version"].as_str().unwrap_or_default()
    );
    let tool = &meta["tools"]["components"][0];
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!(
            "https://spdx.appmodel.invalid/{name}/{}",
            serial.trim_start_matches("urn:uuid:")
        ),
        "creationInfo": {
            // SPDX requires a creation time: the version's publication (fixed), else the epoch.
            "created": meta["timestamp"].as_str().map_or("1970-01-01T00:00:00Z".to_string(), spdx_time),
            "creators": [format!("Tool: appmodel-{}", tool["version"].as_str().unwrap_or_default())],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// SPDX wants `YYYY-MM-DDThh:mm:ssZ`, which is what publish writes.
fn spdx_time(rfc3339: &str) -> String {
    appmodel_model::record::parse_rfc3339(rfc3339).map_or(
        "1970-01-01T00:00:00Z".into(),
        appmodel_model::record::rfc3339,
    )
}

fn sha256(d: &Digest) -> Value {
    json!({"alg": "SHA-256", "content": d.hex()})
}

/// A UUID (version 5 layout) from the app, version and form: the same for every export of
/// them, different between them.
fn serial_number(record: &VersionRecord, form: Option<Form>) -> String {
    let mut h = Sha256::new();
    h.update(b"appmodel sbom\0");
    h.update(record.app.as_bytes());
    h.update(b"\0");
    h.update(record.version.as_str().as_bytes());
    h.update(b"\0");
    h.update(form.map_or("", |f| f.as_str()).as_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One crate a binary was built from, as `cargo auditable` records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    kind: Option<String>,
}

/// Larger audit data than this (compressed, and inflated) is not read: a real one is a few
/// KiB for hundreds of crates.
const MAX_AUDIT_COMPRESSED: u64 = 4 << 20;
const MAX_AUDIT_JSON: u64 = 16 << 20;
/// The most section headers an executable's ELF header may claim that are read.
const MAX_SECTIONS: u64 = 4096;

/// The runtime crates recorded in the binary's `.dep-v0` section by `cargo auditable`
/// (build-only crates left out), sorted; none when it has no such section or is not a
/// 64-bit little-endian ELF file. A section that is there but unreadable is an error
/// naming the blob.
pub fn auditable_packages(store: &Store, bin: &BlobRef) -> Result<Vec<Package>, ExportError> {
    let path = store.blob_path(&bin.digest);
    let bad = |reason: &str| ExportError::BadBinary {
        digest: bin.digest.clone(),
        reason: reason.to_string(),
    };
    let mut f = std::fs::File::open(&path).map_err(crate::io_err("read", &path))?;
    let Some((offset, size)) =
        find_section(&mut f, b".dep-v0").map_err(crate::io_err("read", &path))?
    else {
        return Ok(Vec::new());
    };
    if size > MAX_AUDIT_COMPRESSED {
        return Err(bad("its .dep-v0 section is larger than 4 MiB"));
    }
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))
        .map_err(crate::io_err("read", &path))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(f.take(size))
        .take(MAX_AUDIT_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| bad(&format!("its .dep-v0 section does not inflate: {e}")))?;
    if json.len() as u64 > MAX_AUDIT_JSON {
        return Err(bad("its .dep-v0 section inflates to more than 16 MiB"));
    }
    let data: AuditData = serde_json::from_slice(&json).map_err(|e| {
        bad(&format!(
            "its .dep-v0 section is not cargo auditable's JSON: {e}"
        ))
    })?;
    let set: BTreeSet<Package> = data
        .packages
        .into_iter()
        .filter(|p| p.kind.as_deref() != Some("build"))
        .map(|p| Package {
            name: p.name,
            version: p.version,
        })
        .collect();
    Ok(set.into_iter().collect())
}

/// The file offset and size of the ELF section called `name`, if the file is a 64-bit
/// little-endian ELF file that has one. Every offset read is checked against the file.
fn find_section(
    f: &mut (impl std::io::Read + std::io::Seek),
    name: &[u8],
) -> std::io::Result<Option<(u64, u64)>> {
    use std::io::SeekFrom;
    let len = f.seek(SeekFrom::End(0))?;
    let mut at = |offset: u64, n: usize| -> std::io::Result<Option<Vec<u8>>> {
        if offset.checked_add(n as u64).is_none_or(|end| end > len) {
            return Ok(None);
        }
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; n];
        f.read_exact(&mut buf)?;
        Ok(Some(buf))
    };
    let Some(h) = at(0, 64)? else {
        return Ok(None);
    };
    // \x7fELF, 64-bit, little-endian.
    if h[0..4] != *b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return Ok(None);
    }
    let u16le = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as u64;
    let u32le =
        |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default()) as u64;
    let u64le = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    let shoff = u64le(&h, 0x28);
    let shentsize = u16le(&h, 0x3a);
    let shnum = u16le(&h, 0x3c);
    let shstrndx = u16le(&h, 0x3e);
    // ELF64 section headers are 64 bytes: a header claiming more is not read (nor its
    // table allocated).
    if shentsize != 64 || shnum == 0 || shnum > MAX_SECTIONS || shstrndx >= shnum {
        return Ok(None);
    }
    let Some(table) = at(shoff, (shentsize * shnum) as usize)? else {
        return Ok(None);
    };
    let section = |i: u64| {
        let s = &table[(i * shentsize) as usize..];
        // sh_name, sh_offset, sh_size
        (u32le(s, 0), u64le(s, 0x18), u64le(s, 0x20))
    };
    let (_, str_off, str_size) = section(shstrndx);
    if str_size > 1 << 20 {
        return Ok(None);
    }
    let Some(names) = at(str_off, str_size as usize)? else {
        return Ok(None);
    };
    for i in 0..shnum {
        let (name_at, offset, size) = section(i);
        let Some(rest) = names.get(name_at as usize..) else {
            continue;
        };
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        if &rest[..end] == name {
            if offset.checked_add(size).is_none_or(|e| e > len) {
                return Ok(None);
            }
            return Ok(Some((offset, size)));
        }
    }
    Ok(None)
}

/// The form's own files of a planned bundle that the SBOM lists: what is not the record,
/// the model, the README, the tool, the OCI layout or a blob.
pub fn form_files<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a Digest)>,
) -> Vec<(String, Digest)> {
    let listed: BTreeMap<String, Digest> = files
        .into_iter()
        .filter(|(p, _)| {
            p.starts_with("compose/") || p.starts_with("helm/") || p.starts_with("systemd/")
        })
        .map(|(p, d)| (p.to_string(), d.clone()))
        .collect();
    listed.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal 64-bit little-endian ELF file with the sections given.
    fn elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut name_at = Vec::new();
        for (n, _) in sections.iter().chain([(".shstrtab", &[][..])].iter()) {
            name_at.push(names.len() as u32);
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        let mut body = vec![0u8; 64];
        let mut placed = Vec::new();
        for (_, data) in sections {
            placed.push((body.len() as u64, data.len() as u64));
            body.extend_from_slice(data);
        }
        placed.push((body.len() as u64, names.len() as u64));
        body.extend_from_slice(&names);
        let shoff = body.len() as u64;
        // Section 0 is the null section.
        body.extend_from_slice(&[0u8; 64]);
        for (i, (off, size)) in placed.iter().enumerate() {
            let mut s = [0u8; 64];
            s[0..4].copy_from_slice(&name_at[i].to_le_bytes());
            s[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            s[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            body.extend_from_slice(&s);
        }
        body[0..4].copy_from_slice(b"\x7fELF");
        body[4] = 2;
        body[5] = 1;
        body[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        body[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        let n = placed.len() as u16 + 1;
        body[0x3c..0x3e].copy_from_slice(&n.to_le_bytes());
        body[0x3e..0x40].copy_from_slice(&(n - 1).to_le_bytes());
        body
    }

    #[test]
    fn a_section_is_found_by_name_and_damaged_headers_find_none() {
        let file = elf(&[(".text", b"code"), (".dep-v0", b"zzz")]);
        let (off, size) = find_section(&mut Cursor::new(&file), b".dep-v0")
            .unwrap()
            .unwrap();
        assert_eq!(&file[off as usize..(off + size) as usize], b"zzz");
        assert_eq!(
            find_section(&mut Cursor::new(&file), b".nope").unwrap(),
            None
        );
        // Not ELF, truncated, or section headers pointing past the end: no section.
        assert_eq!(
            find_section(&mut Cursor::new(b"#!/bin/sh\n"), b".dep-v0").unwrap(),
            None
        );
        let mut cut = file.clone();
        cut.truncate(cut.len() - 10);
        assert_eq!(
            find_section(&mut Cursor::new(&cut), b".dep-v0").unwrap(),
            None
        );
        let mut wild = file.clone();
        wild[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            find_section(&mut Cursor::new(&wild), b".dep-v0").unwrap(),
            None
        );
        let mut many = file;
        many[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            find_section(&mut Cursor::new(&many), b".dep-v0").unwrap(),
            None
        );
    }

    #[test]
    fn the_serial_number_is_a_version_5_uuid_fixed_by_app_version_and_form() {
        let model = appmodel_model::parse_model(
            "m.yaml".into(),
            "apiVersion: appmodel/v1\napp: {name: a, version: 1.0.0}\ncomponents:\n  - {name: c, image: {registry: r.example/c:1}}\n".into(),
        )
        .unwrap()
        .model;
        let r = VersionRecord::unpublished("m.yaml", String::new(), model);
        let s = serial_number(&r, Some(Form::Compose));
        assert_eq!(s, serial_number(&r, Some(Form::Compose)));
        assert_ne!(s, serial_number(&r, Some(Form::Helm)));
        let uuid = s.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }
}
