//! A tiny HTTP/1.1 client for plain `http://` URLs: one connection per request
//! (`Connection: close`), bounded by a timeout, JSON bodies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Largest response body read.
const MAX_RESPONSE: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text, for messages (the `error` field of a JSON error body if there is one).
    pub fn message(&self) -> String {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&self.body) {
            if let Some(serde_json::Value::String(e)) = map.get("error") {
                return e.clone();
            }
        }
        String::from_utf8_lossy(&self.body)
            .trim()
            .chars()
            .take(300)
            .collect()
    }
}

/// `GET url`.
pub fn get(url: &str, timeout: Duration) -> Result<Response> {
    request("GET", url, &[], None, timeout)
}

/// `POST url` with `body` as JSON.
pub fn post_json(url: &str, body: &impl Serialize, timeout: Duration) -> Result<Response> {
    post_json_with(url, &[], body, timeout)
}

/// `POST url` with `body` as JSON and extra headers.
pub fn post_json_with(
    url: &str,
    headers: &[(&str, &str)],
    body: &impl Serialize,
    timeout: Duration,
) -> Result<Response> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| Error::Usage(format!("cannot encode request body: {e}")))?;
    request("POST", url, headers, Some(&bytes), timeout)
}

/// Sends one request and reads the whole response; `timeout` bounds the connect and
/// each read or write.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response> {
    let (host_port, path) = split_url(url)?;
    let fail = |source| Error::Request {
        method: method.to_string(),
        url: url.to_string(),
        source,
    };
    let stream = connect(&host_port, timeout).map_err(fail)?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut raw = Vec::new();
    (|| {
        let mut stream = stream;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut out = head.into_bytes();
        out.extend_from_slice(body.unwrap_or_default());
        stream.write_all(&out)?;
        stream.flush()?;
        (&mut stream).take(MAX_RESPONSE).read_to_end(&mut raw)?;
        Ok(())
    })()
    .map_err(fail)?;
    parse_response(&raw).map_err(|reason| Error::Response {
        method: method.to_string(),
        url: url.to_string(),
        reason,
    })
}

fn connect(host_port: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in host_port.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "host has no address")
    }))
}

/// Splits `http://host[:port][/path]` into `host:port` and `/path`.
pub fn split_url(url: &str) -> Result<(String, String)> {
    let bad = |reason| Error::Url {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad("the host is missing"));
    }
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    let host_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((host_port, path.to_string()))
}

fn parse_response(raw: &[u8]) -> std::result::Result<Response, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("the response ended inside its head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad content-length `{value}`"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = content_length {
        rest.get(..len)
            .ok_or_else(|| format!("the body has {} of {len} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("a chunk header is cut off")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk header")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("a chunk is cut off")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("a chunk is cut off")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:7070/a/b?x=1").unwrap(),
            ("127.0.0.1:7070".into(), "/a/b?x=1".into())
        );
        assert_eq!(
            split_url("http://example").unwrap(),
            ("example:80".into(), "/".into())
        );
        assert_eq!(
            split_url("http://[::1]:80/").unwrap(),
            ("[::1]:80".into(), "/".into())
        );
        assert_eq!(
            split_url("http://[::1]").unwrap(),
            ("[::1]:80".into(), "/".into())
        );
        assert_eq!(
            split_url("https://x").unwrap_err().to_string(),
            "invalid url `https://x`: only http:// URLs are supported"
        );
    }

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, b"{}".as_slice()));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").is_err());
    }

    #[test]
    fn connection_refused_names_the_request() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let err = get(&url, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.to_string(), format!("request `GET {url}` failed"));
    }
}
