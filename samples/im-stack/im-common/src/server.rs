//! HTTP/JSON serving: a [`Handler`] turns a [`Request`] into a [`Response`] (so services
//! can be tested in-process without sockets); [`HttpServer`] runs it on worker threads
//! until [`Shutdown`] is requested, letting requests in flight finish.

use std::fmt::Display;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{log, Error, Result};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// An HTTP request, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, still percent-encoded (see [`Request::segments`]).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request for `target` (`/path?query`), as used by tests and by the server.
    pub fn new(method: &str, target: &str, body: impl Into<Vec<u8>>) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
            .collect();
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A request with a JSON body.
    pub fn json_body(method: &str, target: &str, body: &serde_json::Value) -> Request {
        Request::new(method, target, body.to_string())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Path segments, percent-decoded, empty ones dropped: `/a/b%20c/` -> `["a", "b c"]`.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false))
            .collect()
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An unsigned query parameter, `default` when absent; a 400 response when malformed.
    pub fn query_u64(&self, name: &str, default: u64) -> Result<u64, Response> {
        match self.query(name) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Response::error(
                    400,
                    format!("query parameter `{name}` must be an unsigned integer, got `{v}`"),
                )
            }),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`; a 400 response naming the problem otherwise.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Response> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Response::error(400, format!("invalid request body: {e}")))
    }
}

/// An HTTP response with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &impl Serialize) -> Response {
        match serde_json::to_vec(body) {
            Ok(body) => Response { status, body },
            Err(e) => Response::error(500, format!("cannot encode response: {e}")),
        }
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: impl Display) -> Response {
        let body = serde_json::json!({ "error": message.to_string() });
        Response {
            status,
            body: body.to_string().into_bytes(),
        }
    }

    pub fn not_found(req: &Request) -> Response {
        Response::error(404, format!("no route for `{} {}`", req.method, req.path))
    }

    /// The body parsed as JSON (`null` if it is not JSON), for tests and callers.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The logic of a service.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Response;
}

/// A stop request: set by SIGTERM/SIGINT (see [`Shutdown::on_signals`]) or by code.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A stop request set by the first SIGTERM or SIGINT; a second one exits at once
    /// with status 1.
    pub fn on_signals() -> Result<Shutdown> {
        let shutdown = Shutdown::new();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&shutdown.flag))
                .map_err(Error::Signals)?;
            signal_hook::flag::register(sig, Arc::clone(&shutdown.flag)).map_err(Error::Signals)?;
        }
        Ok(shutdown)
    }

    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, waking early when a stop is requested; returns whether it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while !self.is_requested() {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
        true
    }
}

/// A listening HTTP server.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    program: Arc<str>,
}

impl HttpServer {
    /// Listens on `addr` (`host:port`; port 0 picks a free port). `program` prefixes the
    /// request log lines, e.g. `im-store 1.0.0`.
    pub fn bind(addr: &str, program: &str) -> Result<HttpServer> {
        let listen_err = |reason: String| Error::Listen {
            addr: addr.to_string(),
            reason,
        };
        let server = tiny_http::Server::http(addr).map_err(|e| listen_err(e.to_string()))?;
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| listen_err("not an IP socket".to_string()))?;
        Ok(HttpServer {
            server: Arc::new(server),
            addr: local,
            program: program.into(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `shutdown` is requested, then lets the requests in flight finish.
    pub fn run(self, handler: Arc<dyn Handler>, shutdown: &Shutdown, workers: usize) {
        for t in self.start(handler, shutdown, workers) {
            let _ = t.join();
        }
    }

    /// Serves on background threads; stops when the returned guard is dropped (tests).
    pub fn spawn(self, handler: Arc<dyn Handler>, workers: usize) -> RunningServer {
        let shutdown = Shutdown::new();
        let url = self.url();
        let threads = self.start(handler, &shutdown, workers);
        RunningServer {
            url,
            shutdown,
            threads,
        }
    }

    fn start(
        self,
        handler: Arc<dyn Handler>,
        shutdown: &Shutdown,
        workers: usize,
    ) -> Vec<JoinHandle<()>> {
        (0..workers.max(1))
            .map(|_| {
                let server = Arc::clone(&self.server);
                let handler = Arc::clone(&handler);
                let program = Arc::clone(&self.program);
                let shutdown = shutdown.clone();
                std::thread::spawn(move || {
                    while !shutdown.is_requested() {
                        match server.recv_timeout(Duration::from_millis(100)) {
                            Ok(Some(rq)) => serve_one(rq, handler.as_ref(), &program),
                            Ok(None) => {}
                            Err(e) => {
                                log::line(&program, format_args!("accept failed: {e}"));
                                shutdown.sleep(Duration::from_millis(100));
                            }
                        }
                    }
                })
            })
            .collect()
    }
}

/// A server running on background threads; dropping it stops it.
pub struct RunningServer {
    pub url: String,
    shutdown: Shutdown,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.request();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_one(mut rq: tiny_http::Request, handler: &dyn Handler, program: &str) {
    let started = Instant::now();
    let method = rq.method().as_str().to_string();
    let target = rq.url().to_string();
    let mut body = Vec::new();
    let read = rq
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    let response = match read {
        Err(e) => Response::error(400, format!("cannot read request body: {e}")),
        Ok(_) if body.len() > MAX_BODY => {
            Response::error(413, format!("request body is larger than {MAX_BODY} bytes"))
        }
        Ok(_) => {
            let mut req = Request::new(&method, &target, body);
            req.headers = rq
                .headers()
                .iter()
                .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                .collect();
            catch_unwind(AssertUnwindSafe(|| handler.handle(&req)))
                .unwrap_or_else(|_| Response::error(500, "internal error (handler panicked)"))
        }
    };
    let status = response.status;
    let len = response.body.len();
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        out.add_header(h);
    }
    let sent = rq.respond(out);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match sent {
        Ok(()) => log::line(
            program,
            format_args!("{method} {target} {status} {len}B {ms:.1}ms"),
        ),
        Err(e) => log::line(
            program,
            format_args!("{method} {target} {status} not sent: {e}"),
        ),
    }
}

/// Decodes `%XX` escapes (and `+` as space in query strings); invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client;

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, req: &Request) -> Response {
            match req.segments().as_slice() {
                [p] if p == "panic" => panic!("boom"),
                _ => Response::json(
                    200,
                    &serde_json::json!({
                        "method": req.method,
                        "segments": req.segments(),
                        "from": req.query("from"),
                        "auth": req.header("authorization"),
                        "body": String::from_utf8_lossy(&req.body),
                    }),
                ),
            }
        }
    }

    #[test]
    fn decodes_targets() {
        let r = Request::new("GET", "/conversations/a%2Fb/messages?from=3&x=a+b%21", "");
        assert_eq!(r.segments(), vec!["conversations", "a/b", "messages"]);
        assert_eq!(r.query("from"), Some("3"));
        assert_eq!(r.query("x"), Some("a b!"));
        assert_eq!(r.query_u64("from", 0), Ok(3));
        assert_eq!(r.query_u64("limit", 100), Ok(100));
        let bad = Request::new("GET", "/?from=x", "")
            .query_u64("from", 0)
            .unwrap_err();
        assert_eq!(bad.status, 400);
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%4", false), "%4");
    }

    #[test]
    fn serves_over_loopback_and_survives_a_panicking_handler() {
        let server = HttpServer::bind("127.0.0.1:0", "test")
            .unwrap()
            .spawn(Arc::new(Echo), 2);
        let r = client::post_json_with(
            &format!("{}/a/b?from=7", server.url),
            &[("Authorization", "Bearer s")],
            &serde_json::json!({"k": 1}),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["segments"], serde_json::json!(["a", "b"]));
        assert_eq!(v["from"], "7");
        assert_eq!(v["auth"], "Bearer s");
        assert_eq!(v["body"], r#"{"k":1}"#);
        let r = client::get(&format!("{}/panic", server.url), Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.message(), "internal error (handler panicked)");
    }
}
