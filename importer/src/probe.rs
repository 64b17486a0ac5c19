//! `appmodel probe`: the health check that runs inside containers and on hosts.
//!
//! `http://HOST:PORT/PATH` is healthy on a 2xx or 3xx answer; `tcp://HOST:PORT` when a
//! connection opens. No shell, curl or wget is needed in the image: the static appmodel
//! from the bundle is mounted in and runs this.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Probes `target` once. `Err` says why it is not healthy.
pub fn probe(target: &str, timeout: Duration) -> Result<String, String> {
    if let Some(rest) = target.strip_prefix("tcp://") {
        connect(rest, timeout)?;
        return Ok(format!("{rest} accepts connections"));
    }
    let Some(rest) = target.strip_prefix("http://") else {
        return Err(format!("`{target}` is not an http:// or tcp:// target"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = connect(authority, timeout)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: appmodel-probe\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send to {authority}: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|e| format!("no answer from {authority}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{authority} did not answer HTTP"))?;
    if (200..400).contains(&status) {
        Ok(format!("GET {path}: {status}"))
    } else {
        Err(format!("GET {path}: {status}"))
    }
}

fn connect(authority: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{authority}`: {e}"))?
        .collect();
    let mut last = format!("`{authority}` has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(status: &'static str) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
            }
        });
        addr.to_string()
    }

    #[test]
    fn http_status_decides() {
        let ok = serve_once("200 OK");
        assert_eq!(
            probe(&format!("http://{ok}/readyz"), Duration::from_secs(2)),
            Ok("GET /readyz: 200".into())
        );
        let bad = serve_once("503 Service Unavailable");
        assert_eq!(
            probe(&format!("http://{bad}/readyz"), Duration::from_secs(2)),
            Err("GET /readyz: 503".into())
        );
    }

    #[test]
    fn closed_ports_and_bad_targets_fail() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(
            probe(&format!("tcp://127.0.0.1:{port}"), Duration::from_secs(1))
                .unwrap_err()
                .starts_with("cannot connect to 127.0.0.1:")
        );
        assert_eq!(
            probe("ftp://x", Duration::from_secs(1)),
            Err("`ftp://x` is not an http:// or tcp:// target".into())
        );
    }
}
