//! `appmodel console` over real HTTP: the binary started on a free loopback port, its
//! access rules checked with a plain TCP client (the browser scenario is not written yet:
//! see docs/console.md).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Console {
    child: Child,
    addr: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Console {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_appmodel"))
        .args(["console", "--listen", "127.0.0.1:0", "--media"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    let token = lines.next().unwrap().unwrap();
    let token = token.rsplit(' ').next().unwrap().to_string();
    Console {
        child,
        addr,
        token,
        _dir: dir,
    }
}

/// One request; the answer's status, headers and body.
fn send(c: &Console, head: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(&c.addr).unwrap();
    let req = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (headers, body) = out.split_once("\r\n\r\n").unwrap();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    (status, headers.to_string(), body.to_string())
}

fn get(c: &Console, path: &str, cookie: &str) -> (u16, String, String) {
    send(
        c,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}",
            c.addr
        ),
        "",
    )
}

fn post(c: &Console, path: &str, cookie: &str, body: &str) -> (u16, String, String) {
    send(
        c,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded",
            c.addr
        ),
        body,
    )
}

#[test]
fn the_console_lets_one_browser_in_and_refuses_forged_or_oversized_requests() {
    let c = start();
    // No session: pages redirect to the login, posts are refused.
    let (status, headers, _) = get(&c, "/", "");
    assert_eq!(status, 303);
    assert!(headers.contains("Location: /login"), "{headers}");
    assert!(
        headers.contains("Content-Security-Policy: default-src 'none'"),
        "{headers}"
    );
    assert_eq!(post(&c, "/import", "", "path=/tmp").0, 403);
    // The token, once.
    assert_eq!(post(&c, "/login", "", "token=0000").0, 403);
    let (status, headers, _) = post(&c, "/login", "", &format!("token={}", c.token));
    assert_eq!(status, 303, "{headers}");
    let cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(
        post(&c, "/login", "", &format!("token={}", c.token)).0,
        403,
        "a token works once"
    );
    // Every page of the navigation answers; nothing is imported on this site.
    let (status, _, body) = get(&c, "/", &cookie);
    assert_eq!(status, 200);
    assert!(
        body.contains("Nothing is imported on this site yet"),
        "{body}"
    );
    assert_eq!(get(&c, "/import", &cookie).0, 200);
    assert_eq!(get(&c, "/nowhere", &cookie).0, 404);
    // A post without the form's CSRF token changes nothing.
    let (status, _, body) = post(&c, "/import", &cookie, "path=%2Ftmp");
    assert_eq!(status, 403);
    assert!(body.contains("CSRF"), "{body}");
    // A browser sent here under another name (DNS rebinding) is refused.
    let (status, _, _) = send(
        &c,
        &format!("GET / HTTP/1.1\r\nHost: attacker.example\r\nCookie: {cookie}"),
        "",
    );
    assert_eq!(status, 421);
    // A body over the cap, and one that is not form data.
    let big = "a=".to_string() + &"x".repeat((256 << 10) + 10);
    assert_eq!(post(&c, "/import", &cookie, &big).0, 400);
    assert_eq!(post(&c, "/import", &cookie, "a=%zz").0, 400);
    let (status, _, _) = send(&c, &format!("DELETE / HTTP/1.1\r\nHost: {}", c.addr), "");
    assert_eq!(status, 405);
    assert!(
        !c._dir.path().join("state/console").exists(),
        "nothing written"
    );
}
