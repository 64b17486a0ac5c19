//! Real engines for tests: a Docker registry on loopback, skopeo. Under `CI=true` a missing
//! engine fails the test; elsewhere the test is skipped with a printed reason.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The one gate for "this test needs WHAT": true when `found`. Under `CI=true` a missing
/// one fails the test; elsewhere the test is skipped loudly, and counted: each skip is a
/// line in `$APPMODEL_SKIP_LOG`, which scripts/test.sh reports at the end.
pub fn needs(found: bool, what: &str, fix: &str) -> bool {
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is required under CI=true: {fix}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    eprintln!("SKIPPED {test}: {what} is missing ({fix})");
    if let Some(log) = std::env::var_os("APPMODEL_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
        {
            let _ = writeln!(f, "{test}: {what}");
        }
    }
    false
}

/// Whether `tool` is on PATH ([`needs`]).
pub fn require(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    needs(found, &format!("`{tool}`"), "scripts/setup.sh installs it")
}

/// The compose tool appmodel picks here (`APPMODEL_COMPOSE=v1|v2`, else v2 when `docker
/// compose` answers), for a test that drives the project by hand as a site engineer would.
pub fn compose_tool() -> Command {
    let v2 = || {
        Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    match std::env::var("APPMODEL_COMPOSE").as_deref() {
        Ok("v1") => Command::new("docker-compose"),
        Ok("v2") => compose_v2(),
        Ok("podman") => Command::new("podman-compose"),
        _ if v2() => compose_v2(),
        _ => Command::new("docker-compose"),
    }
}

/// The container engine's command the compose tests look at the host with: `podman` under
/// `APPMODEL_COMPOSE=podman`, `docker` otherwise.
pub fn container_engine() -> &'static str {
    match std::env::var("APPMODEL_COMPOSE").as_deref() {
        Ok("podman") => "podman",
        _ => "docker",
    }
}

/// `docker compose` (the v2 plugin).
pub fn compose_v2() -> Command {
    let mut c = Command::new("docker");
    c.arg("compose");
    c
}

/// Whether the compose tool the tests are to use is there: `docker-compose` (v1) for
/// `APPMODEL_COMPOSE=v1`, `docker compose` (v2) for `v2`, either otherwise ([`needs`]).
pub fn require_compose() -> bool {
    let answers = |mut c: Command| {
        c.arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let (found, what) = match std::env::var("APPMODEL_COMPOSE").as_deref() {
        Ok("v1") => (
            answers(Command::new("docker-compose")),
            "`docker-compose` (v1)",
        ),
        Ok("v2") => (answers(compose_v2()), "`docker compose` (v2)"),
        Ok("podman") => (answers(Command::new("podman-compose")), "`podman-compose`"),
        _ => (
            answers(compose_v2()) || answers(Command::new("docker-compose")),
            "`docker compose` or `docker-compose`",
        ),
    };
    needs(found, what, "scripts/setup.sh installs both")
}

/// Whether python3 can import `module` ([`needs`]).
pub fn require_python_module(module: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    needs(
        found,
        &format!("python3 module `{module}`"),
        "scripts/setup.sh installs it",
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to set up a test registry beyond plain http and no auth.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistrySetup<'a> {
    /// Basic auth from an htpasswd file with this user and password.
    pub creds: Option<(&'a str, &'a str)>,
    /// Serve https with a server certificate for 127.0.0.1 signed by a fresh test CA
    /// ([`Registry::ca_file`]).
    pub tls: bool,
    /// Bearer-token auth: a token server (tests/registry_token_server.py) on another port
    /// that hands out tokens to this user and password.
    pub token: Option<(&'a str, &'a str)>,
}

/// The token server of a registry with token auth.
pub struct TokenServer {
    child: Child,
    pub port: u16,
    pub service: String,
}

/// Debian's `docker-registry` serving a temp dir on a free loopback port.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// What skopeo pushes with (htpasswd or token-server credentials).
    pub creds: Option<(String, String)>,
    /// The CA that signed the server certificate, when serving https.
    pub ca_file: Option<std::path::PathBuf>,
    pub token_server: Option<TokenServer>,
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 (IP SAN) in `dir`: ca.crt, server.crt/.key.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_ok(
        Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"])
            .args(["-subj", "/CN=appmodel test CA"]),
    );
    run_ok(
        Command::new("openssl")
            .current_dir(dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=127.0.0.1"]),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]));
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl TokenServer {
    const ISSUER: &'static str = "appmodel-test-issuer";

    fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        let port = free_port();
        let cert = dir.join("token-signer.crt");
        let child = Command::new("python3")
            .arg(super::root().join("tests/registry_token_server.py"))
            .arg(port.to_string())
            .args([Self::ISSUER, user, pass])
            .arg(&cert)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = TokenServer {
            child,
            port,
            service: "appmodel-test-registry".to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cert.is_file() {
            assert!(
                Instant::now() < deadline,
                "the token server did not start (python3 with `cryptography`?)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        wait_for_port(port, "the token server");
        server
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// A token for `scope` (`repository:NAME:pull`), asked for as a client would.
    pub fn fetch(&self, user: &str, pass: &str, scope: &str) -> String {
        let script = "import base64, json, sys, urllib.parse, urllib.request\n\
realm, service, scope, user, pw = sys.argv[1:]\n\
q = urllib.parse.urlencode({'service': service, 'scope': scope})\n\
r = urllib.request.Request(realm + '?' + q)\n\
r.add_header('Authorization', 'Basic ' + base64.b64encode((user + ':' + pw).encode()).decode())\n\
print(json.load(urllib.request.urlopen(r))['token'])\n";
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &self.realm(),
                &self.service,
                scope,
                user,
                pass,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fetching a token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Plain http; basic auth when `creds` are given.
    pub fn start(creds: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(RegistrySetup {
            creds,
            ..RegistrySetup::default()
        })
    }

    pub fn start_with(setup: RegistrySetup<'_>) -> Option<Registry> {
        if !require("docker-registry") || !require("skopeo") {
            return None;
        }
        if setup.tls && !require("openssl") {
            return None;
        }
        if setup.token.is_some() && !(require("python3") && require_python_module("cryptography")) {
            return None;
        }
        let creds = setup.creds;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut auth = String::new();
        let mut token_server = None;
        if let Some((user, pass)) = setup.token {
            let server = TokenServer::start(dir.path(), user, pass);
            auth = format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm(),
                server.service,
                TokenServer::ISSUER,
                dir.path().join("token-signer.crt").display()
            );
            token_server = Some(server);
        }
        let mut tls = String::new();
        let mut ca_file = None;
        if setup.tls {
            make_certificates(dir.path());
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            );
            ca_file = Some(dir.path().join("ca.crt"));
        }
        if let Some((user, pass)) = creds {
            assert!(require("htpasswd"), "htpasswd is needed for auth tests");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap();
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n{auth}http:\n  addr: 127.0.0.1:{port}\n{tls}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            port,
            dir,
            creds: creds
                .or(setup.token)
                .map(|(u, p)| (u.to_string(), p.to_string())),
            ca_file,
            token_server,
        };
        wait_for_port(port, "docker-registry");
        Some(registry)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy SRC docker://HOST/REPO`, e.g. `oci:STORE:app/comp:1.0.0`.
    pub fn push(&self, src: &str, repo: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        cmd.args(extra);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        let out = cmd
            .arg(src)
            .arg(format!("docker://{}/{repo}", self.host()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The registry's own file for a blob (to corrupt it on purpose).
    pub fn blob_file(&self, hex: &str) -> std::path::PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample's programs, built by samples/im-stack/build.sh.
pub fn sample_built(root: &Path) -> bool {
    let ok = root
        .join("samples/im-stack/dist/1.1.0/linux-amd64/im-server")
        .is_file();
    needs(
        ok,
        "the built sample",
        "bash samples/im-stack/build.sh builds it; scripts/test.sh runs it first",
    )
}

/// The static appmodel that ships in bundles (scripts/build-static.sh builds it; health
/// probes and site hosts run it). `APPMODEL_STATIC_BIN` overrides the path.
pub fn static_tool() -> Option<std::path::PathBuf> {
    static_tool_for("x86_64-unknown-linux-musl", "APPMODEL_STATIC_BIN")
}

/// The static appmodel for arm64 sites (`APPMODEL_TARGET=aarch64-unknown-linux-musl
/// scripts/build-static.sh`), run here under qemu-aarch64-static. `APPMODEL_STATIC_BIN_ARM64`
/// overrides the path.
pub fn static_tool_arm64() -> Option<std::path::PathBuf> {
    static_tool_for("aarch64-unknown-linux-musl", "APPMODEL_STATIC_BIN_ARM64")
}

fn static_tool_for(target: &str, var: &str) -> Option<std::path::PathBuf> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = std::env::var_os(var)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(format!("target/static/{target}/appmodel")));
    let found = p.is_file();
    let what = format!("the static appmodel for {target} at {}", p.display());
    needs(found, &what, "scripts/build-static.sh builds it").then_some(p)
}

/// The static appmodel built WITH crash points (scripts/build-crash-tool.sh), for the
/// crash-point tests inside a site host. `APPMODEL_CRASH_BIN` overrides the path.
pub fn crash_tool() -> Option<std::path::PathBuf> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = std::env::var_os("APPMODEL_CRASH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/x86_64-unknown-linux-gnu/debug/appmodel"));
    let found = p.is_file();
    let what = format!("the static appmodel with crash points at {}", p.display());
    needs(found, &what, "scripts/build-crash-tool.sh builds it").then_some(p)
}
