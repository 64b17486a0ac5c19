//! The little HTTP the console needs, apart from the server: a request as the pages see it
//! (decoded query and form, cookies), a response with the security headers every page
//! carries, and the caps that keep a hostile client from making the console hang or grow.

use std::collections::BTreeMap;
use std::io::Read;

/// The largest form body read: a licence or a configuration pasted is a few KiB.
pub const MAX_BODY: u64 = 256 << 10;
/// The most fields one form may have.
const MAX_FIELDS: usize = 512;

/// Every page's content security policy: nothing from anywhere but the console itself, no
/// inline script or style, no frames, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request, decoded.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub form: BTreeMap<String, String>,
    pub cookies: BTreeMap<String, String>,
    /// `Host`, `Origin` and `Sec-Fetch-Site`, as sent.
    pub host: Option<String>,
    pub origin: Option<String>,
}

impl Req {
    /// A GET of `url` (path and query), for the pages' tests and the server alike.
    pub fn get(url: &str) -> Req {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Req {
            method: Method::Get,
            path: path.to_string(),
            query: parse_urlencoded(query).unwrap_or_default(),
            form: BTreeMap::new(),
            cookies: BTreeMap::new(),
            host: None,
            origin: None,
        }
    }

    /// A form field, or the empty string.
    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).map(String::as_str).unwrap_or("")
    }

    /// A query parameter, when given and not empty.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the request body is not UTF-8 form data")]
    NotForm,
    #[error("the form has more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("the request body could not be read: {0}")]
    Read(std::io::Error),
}

/// Reads a form body, at most [`MAX_BODY`] bytes.
pub fn read_form(body: &mut dyn Read) -> Result<BTreeMap<String, String>, BadRequest> {
    let mut bytes = Vec::new();
    body.take(MAX_BODY + 1)
        .read_to_end(&mut bytes)
        .map_err(BadRequest::Read)?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(BadRequest::TooLarge);
    }
    let text = String::from_utf8(bytes).map_err(|_| BadRequest::NotForm)?;
    parse_urlencoded(&text)
}

/// `application/x-www-form-urlencoded`: `a=1&b=x+y%21`. A name given twice keeps the first.
pub fn parse_urlencoded(text: &str) -> Result<BTreeMap<String, String>, BadRequest> {
    let mut out = BTreeMap::new();
    for (i, pair) in text.split('&').filter(|p| !p.is_empty()).enumerate() {
        if i >= MAX_FIELDS {
            return Err(BadRequest::TooManyFields);
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        out.entry(k).or_insert(v);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, BadRequest> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(BadRequest::NotForm)?;
                let hex = std::str::from_utf8(hex).map_err(|_| BadRequest::NotForm)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| BadRequest::NotForm)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BadRequest::NotForm)
}

/// Percent-encodes a value for a URL's query.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Cookie: a=1; b=2`.
pub fn parse_cookies(header: &str) -> BTreeMap<String, String> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A response: status, content type, extra headers, body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn html(status: u16, body: String) -> Resp {
        Resp {
            status,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn json(value: &serde_json::Value) -> Resp {
        Resp {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec_pretty(value).unwrap_or_default(),
        }
    }

    pub fn asset(content_type: &'static str, body: &'static [u8]) -> Resp {
        Resp {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    /// 303: after a POST, the browser GETs `to`.
    pub fn redirect(to: &str) -> Resp {
        Resp {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            headers: vec![("Location".into(), to.to_string())],
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: String) -> Resp {
        self.headers.push((name.to_string(), value));
        self
    }

    /// The headers every response carries, then its own.
    pub fn all_headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("Content-Type".to_string(), self.content_type.to_string()),
            ("Content-Security-Policy".to_string(), CSP.to_string()),
            ("X-Content-Type-Options".to_string(), "nosniff".to_string()),
            ("X-Frame-Options".to_string(), "DENY".to_string()),
            ("Referrer-Policy".to_string(), "no-referrer".to_string()),
            ("Cache-Control".to_string(), "no-store".to_string()),
        ];
        h.extend(self.headers.iter().cloned());
        h
    }
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_refuse_what_is_not_a_form() {
        let f = parse_urlencoded("a=1&b=x+y%21&a=2&c").expect("a form");
        assert_eq!(f["a"], "1");
        assert_eq!(f["b"], "x y!");
        assert_eq!(f["c"], "");
        assert!(matches!(
            parse_urlencoded("a=%zz"),
            Err(BadRequest::NotForm)
        ));
        assert!(matches!(parse_urlencoded("a=%"), Err(BadRequest::NotForm)));
        assert!(matches!(
            parse_urlencoded("a=%ff"),
            Err(BadRequest::NotForm)
        ));
        let many = vec!["x=1"; MAX_FIELDS + 1].join("&");
        assert!(matches!(
            parse_urlencoded(&many),
            Err(BadRequest::TooManyFields)
        ));
        let mut big = std::io::repeat(b'a').take(MAX_BODY + 10);
        assert!(matches!(read_form(&mut big), Err(BadRequest::TooLarge)));
        assert_eq!(encode("1.1.0 a&b"), "1.1.0%20a%26b");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        let c = parse_cookies("a=1; appmodel_session=xyz");
        assert_eq!(c["appmodel_session"], "xyz");
    }
}
