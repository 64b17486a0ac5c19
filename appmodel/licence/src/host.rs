//! The host fingerprint and the site code that carries it to the vendor.
//!
//! A fingerprint is an install id (12 random bytes made at the first install, kept in the
//! site state) and keyed hashes of identifiers the host-side appmodel reads: `/etc/machine-id`,
//! the DMI `product_uuid` (when readable and not a known placeholder), the MAC of each
//! physical NIC (one with a `device` link in sysfs; bridges, veths and tunnels have none),
//! and the root filesystem's UUID. Only 6-byte keyed hashes leave the host; the key is the
//! install id, so the same machine gives unrelated hashes to two installs.
//!
//! A licence matches a host when the install id is the same **and** a quorum of the bound
//! identifiers is unchanged: a strict majority (one of one, two of two or three, three of
//! four or five, …). A changed NIC on a host with three or more identifiers passes; a copy
//! of the site state on another machine has the install id but not the identifiers. Two
//! identifiers both count, so two containers on one machine (same `product_uuid`, their own
//! machine-ids) do not share a licence.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::{framed_hash, hex, unhex, LicenceError, Result};

/// Bytes of an install id.
pub const INSTALL_ID_LEN: usize = 12;
/// Bytes of each keyed identifier hash.
pub const HASH_LEN: usize = 6;
/// Most identifiers a site code may carry (a host with many NICs keeps the first ones).
pub const MAX_IDS: usize = 12;
const MAX_NICS: usize = 8;
const CODE_VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 4;
/// Longest site code text accepted.
const MAX_CODE_TEXT: usize = 512;

/// A kind of host identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    MachineId = 1,
    ProductUuid = 2,
    RootFs = 3,
    Nic = 4,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::MachineId, Kind::ProductUuid, Kind::RootFs, Kind::Nic];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MachineId => "machine-id",
            Kind::ProductUuid => "product_uuid",
            Kind::RootFs => "root filesystem",
            Kind::Nic => "network card",
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == b)
    }
}

/// The raw identifiers of a host, read from a root directory (`/` on a real host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIds {
    pub machine_id: Option<String>,
    pub product_uuid: Option<String>,
    pub root_fs: Option<String>,
    /// MACs of physical NICs, lower-case, sorted.
    pub nics: Vec<String>,
}

/// DMI UUIDs that firmware vendors ship in many machines at once.
const PLACEHOLDER_UUIDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
    "12345678-1234-5678-90ab-cddeefaabbcc",
];

/// A small file under a host root, trimmed; `None` if unreadable, not regular or large.
fn small_file(path: &Path) -> Option<String> {
    let bytes =
        appmodel_model::input::read_regular(path, 4096, appmodel_model::input::Links::Follow)
            .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_ascii_lowercase())
}

impl HostIds {
    /// Reads the identifiers under `root`. Nothing here fails: an identifier that cannot be
    /// read is absent.
    pub fn read(root: &Path) -> HostIds {
        let machine_id = small_file(&root.join("etc/machine-id"))
            .filter(|m| m.len() == 32 && m.bytes().all(|c| c.is_ascii_hexdigit()))
            .filter(|m| m.bytes().any(|c| c != b'0'));
        let product_uuid = small_file(&root.join("sys/class/dmi/id/product_uuid"))
            .filter(|u| u.len() == 36 && !PLACEHOLDER_UUIDS.contains(&u.as_str()));
        HostIds {
            machine_id,
            product_uuid,
            root_fs: root_fs_uuid(root),
            nics: physical_nics(root),
        }
    }

    /// Each identifier with its kind.
    fn values(&self) -> Vec<(Kind, &str)> {
        let mut out = Vec::new();
        if let Some(v) = &self.machine_id {
            out.push((Kind::MachineId, v.as_str()));
        }
        if let Some(v) = &self.product_uuid {
            out.push((Kind::ProductUuid, v.as_str()));
        }
        if let Some(v) = &self.root_fs {
            out.push((Kind::RootFs, v.as_str()));
        }
        out.extend(
            self.nics
                .iter()
                .take(MAX_NICS)
                .map(|m| (Kind::Nic, m.as_str())),
        );
        out
    }

    /// The fingerprint of these identifiers for one install.
    pub fn fingerprint(&self, install_id: &[u8; INSTALL_ID_LEN]) -> Fingerprint {
        Fingerprint {
            install_id: *install_id,
            ids: self
                .values()
                .into_iter()
                .map(|(kind, value)| (kind, keyed(install_id, kind, value)))
                .collect(),
        }
    }
}

fn keyed(install_id: &[u8; INSTALL_ID_LEN], kind: Kind, value: &str) -> [u8; HASH_LEN] {
    let h = framed_hash(&[
        b"appmodel host fingerprint v1",
        install_id,
        &[kind as u8],
        value.as_bytes(),
    ]);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&h[..HASH_LEN]);
    out
}

/// MACs of NICs backed by a device (not virtual), sorted.
fn physical_nics(root: &Path) -> Vec<String> {
    let dir = root.join("sys/class/net");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| {
            let device = e.path().join("device");
            // sysfs: `device` is a link into the bus the card sits on; virtual devices have
            // none, or one under /sys/devices/virtual.
            device.exists()
                && fs::read_link(&device)
                    .map(|t| !t.to_string_lossy().contains("/virtual/"))
                    .unwrap_or(true)
        })
        .filter_map(|e| small_file(&e.path().join("address")))
        .filter(|mac| mac.len() == 17 && mac != "00:00:00:00:00:00")
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The UUID of the filesystem mounted at `/`: from `/dev/disk/by-uuid`, else read from the
/// device's superblock (ext2/3/4, XFS, Btrfs).
fn root_fs_uuid(root: &Path) -> Option<String> {
    let mountinfo = small_file_capped(&root.join("proc/self/mountinfo"), 1 << 20)?;
    let source = mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&"/")).then(|| fields.get(sep + 2).map(|s| s.to_string()))?
    })?;
    let device = source.strip_prefix("/dev/")?;
    let device_path = root.join("dev").join(device);
    let real = fs::canonicalize(&device_path).ok();
    if let Ok(links) = fs::read_dir(root.join("dev/disk/by-uuid")) {
        for link in links.flatten() {
            if real.is_some() && fs::canonicalize(link.path()).ok() == real {
                return Some(link.file_name().to_string_lossy().to_ascii_lowercase());
            }
        }
    }
    superblock_uuid(&device_path)
}

fn small_file_capped(path: &Path, cap: u64) -> Option<String> {
    let bytes =
        appmodel_model::input::read_regular(path, cap, appmodel_model::input::Links::Follow)
            .ok()?;
    String::from_utf8(bytes).ok()
}

fn superblock_uuid(device: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = fs::metadata(device).ok()?;
    if !meta.file_type().is_block_device() && !meta.is_file() {
        return None;
    }
    let mut buf = vec![0u8; 0x10000 + 0x1000];
    let mut f = fs::File::open(device).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let buf = &buf[..n];
    let uuid = |at: usize| -> Option<String> {
        let b = buf.get(at..at + 16)?;
        let h = hex(b);
        (b.iter().any(|x| *x != 0)).then(|| {
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        })
    };
    if buf.get(1024 + 0x38..1024 + 0x3a) == Some(&[0x53, 0xef]) {
        return uuid(1024 + 0x68);
    }
    if buf.get(..4) == Some(b"XFSB") {
        return uuid(32);
    }
    if buf.get(0x10000 + 0x40..0x10000 + 0x48) == Some(b"_BHRfS_M") {
        return uuid(0x10000 + 0x20);
    }
    None
}

/// An install id and the keyed hashes of a host's identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub install_id: [u8; INSTALL_ID_LEN],
    pub ids: Vec<(Kind, [u8; HASH_LEN])>,
}

/// How a fingerprint compares with the one a licence is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub same_install: bool,
    /// Kinds bound in the licence that no longer match (a kind with several values, such as
    /// NICs, matches when any of its values does).
    pub changed: Vec<Kind>,
    pub matched: usize,
    pub needed: usize,
}

impl Match {
    pub fn holds(&self) -> bool {
        self.same_install && self.matched >= self.needed
    }

    /// What differs, for a person: "the install id" or "machine-id and network card".
    pub fn describe(&self) -> String {
        if !self.same_install {
            return "the install id (this is another installation)".into();
        }
        let names: Vec<&str> = self.changed.iter().map(|k| k.as_str()).collect();
        names.join(", ")
    }
}

impl Fingerprint {
    /// Compares this host's fingerprint (`self`) with the one a licence is `bound` to.
    pub fn compare(&self, bound: &Fingerprint) -> Match {
        let mut kinds: Vec<Kind> = bound.ids.iter().map(|(k, _)| *k).collect();
        kinds.sort();
        kinds.dedup();
        let changed: Vec<Kind> = kinds
            .iter()
            .copied()
            .filter(|k| {
                !bound
                    .ids
                    .iter()
                    .filter(|(bk, _)| bk == k)
                    .any(|b| self.ids.contains(b))
            })
            .collect();
        let n = kinds.len();
        let needed = if n == 0 { 0 } else { n / 2 + 1 };
        Match {
            same_install: self.install_id == bound.install_id,
            matched: n - changed.len(),
            changed,
            needed,
        }
    }
}

/// What the site sends the vendor: the app's name and its fingerprint, as short text.
///
/// Text: `APP:` then Crockford base32 of `1 | install id | (kind | hash)* | checksum`, in
/// groups of five joined by `-`. The 4-byte checksum (BLAKE2b of the rest) catches a typo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCode {
    pub app: String,
    pub fingerprint: Fingerprint,
}

const BASE32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let c = match c.to_ascii_uppercase() {
            b'O' => b'0',
            b'I' | b'L' => b'1',
            c => c,
        };
        let v = BASE32.iter().position(|x| *x == c)? as u32;
        acc = ((acc << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

impl SiteCode {
    pub fn to_text(&self) -> String {
        let mut bytes = vec![CODE_VERSION];
        bytes.extend_from_slice(&self.fingerprint.install_id);
        for (kind, hash) in self.fingerprint.ids.iter().take(MAX_IDS) {
            bytes.push(*kind as u8);
            bytes.extend_from_slice(hash);
        }
        let sum = framed_hash(&[b"appmodel site code", self.app.as_bytes(), &bytes]);
        bytes.extend_from_slice(&sum[..CHECKSUM_LEN]);
        let code = base32(&bytes);
        let groups: Vec<&str> = code
            .as_bytes()
            .chunks(5)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!("{}:{}", self.app, groups.join("-"))
    }

    /// Parses a site code; `origin` names where it came from in errors.
    pub fn parse(text: &str, origin: &str) -> Result<SiteCode> {
        let bad = |reason: &str| LicenceError::BadSiteCode {
            origin: origin.to_string(),
            reason: reason.to_string(),
        };
        let text = text.trim();
        if text.len() > MAX_CODE_TEXT {
            return Err(bad("it is too long"));
        }
        let (app, code) = text
            .split_once(':')
            .ok_or_else(|| bad("it has no `APP:` prefix"))?;
        // Any case: a QR code carries it upper-case (its compact alphanumeric mode).
        let app = &app.to_ascii_lowercase();
        if !appmodel_model::validate::is_name(app) {
            return Err(bad("the app name before `:` is not a valid name"));
        }
        let digits: String = code.chars().filter(|c| *c != '-' && *c != ' ').collect();
        let bytes = unbase32(&digits)
            .ok_or_else(|| bad("it has a character that is not a site code digit"))?;
        let body_len = bytes
            .len()
            .checked_sub(CHECKSUM_LEN)
            .filter(|n| *n > INSTALL_ID_LEN)
            .ok_or_else(|| bad("it is too short"))?;
        let (body, sum) = bytes.split_at(body_len);
        if framed_hash(&[b"appmodel site code", app.as_bytes(), body])[..CHECKSUM_LEN] != *sum {
            return Err(bad("its checksum does not match: a character was mistyped"));
        }
        if body[0] != CODE_VERSION {
            return Err(bad(&format!(
                "it is version {} (this appmodel reads version {CODE_VERSION})",
                body[0]
            )));
        }
        let mut install_id = [0u8; INSTALL_ID_LEN];
        install_id.copy_from_slice(&body[1..1 + INSTALL_ID_LEN]);
        let rest = &body[1 + INSTALL_ID_LEN..];
        if !rest.len().is_multiple_of(1 + HASH_LEN) || rest.len() / (1 + HASH_LEN) > MAX_IDS {
            return Err(bad("its identifier list has the wrong length"));
        }
        let mut ids = Vec::new();
        for chunk in rest.chunks(1 + HASH_LEN) {
            let kind = Kind::from_byte(chunk[0])
                .ok_or_else(|| bad("it names an unknown kind of identifier"))?;
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(&chunk[1..]);
            ids.push((kind, h));
        }
        Ok(SiteCode {
            app: app.to_string(),
            fingerprint: Fingerprint { install_id, ids },
        })
    }
}

/// Makes a new random install id.
pub fn new_install_id() -> Result<[u8; INSTALL_ID_LEN]> {
    let mut id = [0u8; INSTALL_ID_LEN];
    getrandom::fill(&mut id).map_err(LicenceError::Random)?;
    Ok(id)
}

/// The install id as stored (hex) and back.
pub fn install_id_hex(id: &[u8; INSTALL_ID_LEN]) -> String {
    hex(id)
}

pub fn parse_install_id(text: &str) -> Option<[u8; INSTALL_ID_LEN]> {
    unhex(text.trim())?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(root: &Path, machine: &str, nics: &[(&str, &str)]) {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/machine-id"), format!("{machine}\n")).unwrap();
        for (name, mac) in nics {
            let dir = root.join("sys/class/net").join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
            let bus = root.join("sys/devices/pci0000:00").join(name);
            fs::create_dir_all(&bus).unwrap();
            std::os::unix::fs::symlink(&bus, dir.join("device")).unwrap();
        }
        let virt = root.join("sys/class/net/docker0");
        fs::create_dir_all(&virt).unwrap();
        fs::write(virt.join("address"), "02:42:00:00:00:01\n").unwrap();
    }

    const ID: [u8; INSTALL_ID_LEN] = [7; INSTALL_ID_LEN];

    #[test]
    fn identifiers_are_read_and_virtual_nics_and_placeholders_are_left_out() {
        let t = tempfile::tempdir().unwrap();
        host(
            t.path(),
            "3D1219C7C4C5404AAA1F6D2A48ADFDA4",
            &[("eth1", "AA:BB:CC:00:00:02"), ("eth0", "aa:bb:cc:00:00:01")],
        );
        fs::create_dir_all(t.path().join("sys/class/dmi/id")).unwrap();
        fs::write(
            t.path().join("sys/class/dmi/id/product_uuid"),
            "03000200-0400-0500-0006-000700080009\n",
        )
        .unwrap();
        let ids = HostIds::read(t.path());
        assert_eq!(
            ids.machine_id.as_deref(),
            Some("3d1219c7c4c5404aaa1f6d2a48adfda4")
        );
        assert_eq!(ids.product_uuid, None);
        assert_eq!(ids.nics, ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"]);
        assert_eq!(HostIds::read(&t.path().join("nowhere")), HostIds::default());
    }

    #[test]
    fn an_ext4_superblock_gives_the_root_filesystem_uuid() {
        let t = tempfile::tempdir().unwrap();
        let mut sb = vec![0u8; 4096];
        sb[1024 + 0x38] = 0x53;
        sb[1024 + 0x39] = 0xef;
        sb[1024 + 0x68..1024 + 0x78].copy_from_slice(&[0x12; 16]);
        fs::create_dir_all(t.path().join("dev")).unwrap();
        fs::write(t.path().join("dev/vda"), &sb).unwrap();
        fs::create_dir_all(t.path().join("proc/self")).unwrap();
        fs::write(
            t.path().join("proc/self/mountinfo"),
            "1 0 0:5 / /proc rw - proc proc rw\n27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n",
        )
        .unwrap();
        assert_eq!(
            root_fs_uuid(t.path()).as_deref(),
            Some("12121212-1212-1212-1212-121212121212")
        );
    }

    #[test]
    fn one_changed_nic_still_matches_and_a_copy_on_another_host_does_not() {
        let a = tempfile::tempdir().unwrap();
        host(
            a.path(),
            "11111111111111111111111111111111",
            &[("eth0", "aa:bb:cc:00:00:01")],
        );
        // All three on one machine: one product_uuid.
        let dmi = |root: &Path| {
            let dir = root.join("sys/class/dmi/id");
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                dir.join("product_uuid"),
                "4c4c4544-0042-3510-8052-b4c04f4e3232\n",
            )
            .unwrap();
        };
        dmi(a.path());
        let bound = HostIds::read(a.path()).fingerprint(&ID);
        assert_eq!(bound.ids.len(), 3);
        assert!(HostIds::read(a.path())
            .fingerprint(&ID)
            .compare(&bound)
            .holds());

        let nic_changed = tempfile::tempdir().unwrap();
        host(
            nic_changed.path(),
            "11111111111111111111111111111111",
            &[("eth0", "aa:bb:cc:00:00:99")],
        );
        dmi(nic_changed.path());
        let m = HostIds::read(nic_changed.path())
            .fingerprint(&ID)
            .compare(&bound);
        assert!(m.holds(), "{m:?}");
        assert_eq!(m.changed, [Kind::Nic]);

        let other = tempfile::tempdir().unwrap();
        host(
            other.path(),
            "22222222222222222222222222222222",
            &[("eth0", "aa:bb:cc:00:00:98")],
        );
        dmi(other.path());
        let m = HostIds::read(other.path()).fingerprint(&ID).compare(&bound);
        assert!(!m.holds());
        assert_eq!(m.describe(), "machine-id, network card");

        // Same machine, another install (a reinstall without the state): refused.
        let m = HostIds::read(a.path())
            .fingerprint(&[8; INSTALL_ID_LEN])
            .compare(&bound);
        assert!(!m.holds());
        assert!(m.describe().contains("install id"));
    }

    #[test]
    fn the_quorum_is_a_strict_majority() {
        let fp = |ids: &[(Kind, u8)]| Fingerprint {
            install_id: ID,
            ids: ids.iter().map(|(k, b)| (*k, [*b; HASH_LEN])).collect(),
        };
        let bound = fp(&[
            (Kind::MachineId, 1),
            (Kind::ProductUuid, 2),
            (Kind::RootFs, 3),
            (Kind::Nic, 4),
        ]);
        assert!(fp(&[
            (Kind::MachineId, 1),
            (Kind::ProductUuid, 2),
            (Kind::RootFs, 3),
            (Kind::Nic, 9)
        ])
        .compare(&bound)
        .holds());
        assert!(!fp(&[
            (Kind::MachineId, 1),
            (Kind::ProductUuid, 2),
            (Kind::RootFs, 9),
            (Kind::Nic, 9)
        ])
        .compare(&bound)
        .holds());
        // Two containers on one machine: the same product_uuid, another machine-id.
        let two = fp(&[(Kind::MachineId, 1), (Kind::ProductUuid, 2)]);
        assert!(!fp(&[(Kind::MachineId, 7), (Kind::ProductUuid, 2)])
            .compare(&two)
            .holds());
        let one = fp(&[(Kind::MachineId, 1)]);
        assert!(one.compare(&one).holds());
        assert!(!fp(&[(Kind::MachineId, 2)]).compare(&one).holds());
    }

    #[test]
    fn a_site_code_round_trips_and_a_typo_is_caught() {
        let code = SiteCode {
            app: "im-stack".into(),
            fingerprint: Fingerprint {
                install_id: ID,
                ids: vec![(Kind::MachineId, [1; HASH_LEN]), (Kind::Nic, [2; HASH_LEN])],
            },
        };
        let text = code.to_text();
        assert!(text.starts_with("im-stack:"), "{text}");
        assert!(text.len() < 80, "{text}");
        assert_eq!(SiteCode::parse(&text, "t").unwrap(), code);
        assert_eq!(SiteCode::parse(&text.to_lowercase(), "t").unwrap(), code);
        assert_eq!(SiteCode::parse(&text.to_uppercase(), "t").unwrap(), code);
        let mut typo = text.clone().into_bytes();
        let i = typo.len() - 3;
        typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
        let e = SiteCode::parse(std::str::from_utf8(&typo).unwrap(), "the code").unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        for bad in [
            "",
            "im-stack",
            "Bad App:0000",
            "im-stack:!!!!",
            "im-stack:0000",
            &"x".repeat(600),
        ] {
            assert!(SiteCode::parse(bad, "t").is_err(), "{bad}");
        }
    }
}
