//! `appmodel console`: a web console over the site's libraries, served from the one
//! executable on loopback.
//!
//! - [`http`]: requests and responses as the pages see them; caps and security headers.
//! - [`html`]: escaping and the page frame.
//! - [`jobs`]: long operations on a thread of their own, streaming the importer's events.
//! - [`pages`]: one module per page and the table of routes.
//!
//! Access: a one-time token printed at start logs one browser in (a session cookie,
//! `HttpOnly`, `SameSite=Strict`); every POST carries the session's CSRF token and, when the
//! browser sends one, a matching `Origin`; a `Host` other than the console's own is refused
//! (DNS rebinding). The console listens on loopback only: reach it through an SSH tunnel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use appmodel_importer::{ImportError, Site};

pub mod html;
pub mod http;
pub mod jobs;
pub mod pages;

use http::{Method, Req, Resp};

/// The session cookie's name.
pub const COOKIE: &str = "appmodel_session";

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    /// The app, when the site has several.
    pub app: Option<String>,
    /// Where the import page looks for bundles, ISO images and volumes.
    pub media: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the console listens on loopback only, not on `{0}`: reach it through an SSH tunnel (`ssh -L 8800:127.0.0.1:8800 HOST`)")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on `{addr}`: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Site(#[from] ImportError),
    #[error("cannot draw a random token: {0}")]
    Random(String),
}

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
}

pub struct Console {
    pub site_root: PathBuf,
    pub app: Option<String>,
    pub media: Vec<PathBuf>,
    addr: SocketAddr,
    token: Mutex<Option<String>>,
    sessions: Mutex<HashMap<String, Session>>,
    pub jobs: Arc<jobs::Jobs>,
}

/// What a page handler sees.
pub struct Ctx<'a> {
    pub console: &'a Console,
    pub session: &'a Session,
    pub req: &'a Req,
}

impl Ctx<'_> {
    pub fn site(&self) -> Result<Site, pages::PageError> {
        Ok(Site::open(&self.console.site_root)?)
    }

    pub fn app(&self) -> Option<&str> {
        self.console.app.as_deref()
    }
}

/// 32 random bytes as hex.
fn random_token() -> Result<String, ConsoleError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| ConsoleError::Random(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Console {
    /// A console over `opts.state_dir`, with its login token.
    pub fn new(opts: &Options) -> Result<(Console, String), ConsoleError> {
        if !opts.listen.ip().is_loopback() {
            return Err(ConsoleError::NotLoopback(opts.listen));
        }
        Site::open(&opts.state_dir)?;
        let token = random_token()?;
        let console = Console {
            site_root: opts.state_dir.clone(),
            app: opts.app.clone(),
            media: opts.media.clone(),
            addr: opts.listen,
            token: Mutex::new(Some(token.clone())),
            sessions: Mutex::new(HashMap::new()),
            jobs: Arc::new(jobs::Jobs::default()),
        };
        Ok((console, token))
    }

    fn session(&self, req: &Req) -> Option<Session> {
        let id = req.cookies.get(COOKIE)?;
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(id).cloned()
    }

    /// The token, once: the first right one starts a session and is spent.
    fn log_in(&self, given: &str) -> Option<String> {
        // Drawn first: a failure to draw must not spend the token.
        let (id, csrf) = (random_token().ok()?, random_token().ok()?);
        let mut token = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let right = token
            .as_deref()
            .is_some_and(|t| http::same_secret(t, given.trim()));
        if !right {
            return None;
        }
        *token = None;
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), Session { csrf });
        Some(id)
    }

    fn log_out(&self, req: &Req) {
        if let Some(id) = req.cookies.get(COOKIE) {
            self.sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
    }

    /// The hosts a browser may name: this address, and `localhost` at its port.
    fn host_allowed(&self, host: &str) -> bool {
        let port = self.addr.port();
        host == self.addr.to_string()
            || host == format!("localhost:{port}")
            || (port == 80 && (host == "localhost" || host == self.addr.ip().to_string()))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|h| self.host_allowed(h))
    }

    /// Answers one request.
    pub fn handle(&self, req: &Req) -> Resp {
        if let Some(host) = &req.host {
            if !self.host_allowed(host) {
                return Resp::html(
                    421,
                    html::error_page(
                        "Wrong address",
                        &format!(
                            "the console answers at http://{} only, not at `{host}`",
                            self.addr
                        ),
                    ),
                );
            }
        }
        if let Some(r) = pages::assets(&req.path) {
            return r;
        }
        if req.path == "/login" {
            return self.login(req);
        }
        let Some(session) = self.session(req) else {
            return match req.method {
                Method::Get => Resp::redirect("/login"),
                Method::Post => Resp::html(
                    403,
                    html::error_page(
                        "Not logged in",
                        "log in with the console's token first; nothing changed",
                    ),
                ),
            };
        };
        if req.method == Method::Post {
            let csrf_ok = http::same_secret(req.field("csrf"), &session.csrf);
            let origin_ok = req.origin.as_deref().is_none_or(|o| self.origin_allowed(o));
            if !csrf_ok || !origin_ok {
                return Resp::html(
                    403,
                    html::error_page(
                        "Refused",
                        "the form's CSRF token is missing or wrong, or it came from another site: reload the page and send it again; nothing changed",
                    ),
                );
            }
            if req.path == "/logout" {
                self.log_out(req);
                return Resp::redirect("/login")
                    .with_header("Set-Cookie", format!("{COOKIE}=; Max-Age=0; Path=/"));
            }
        }
        let ctx = Ctx {
            console: self,
            session: &session,
            req,
        };
        pages::route(&ctx)
    }

    fn login(&self, req: &Req) -> Resp {
        let form = |status: u16, error: &str| {
            let error = if error.is_empty() {
                String::new()
            } else {
                format!(
                    r#"<p class="error" role="alert" id="token-error">{}</p>"#,
                    html::esc(error)
                )
            };
            Resp::html(
                status,
                html::page(
                    "Log in",
                    "/login",
                    &format!(
                        r#"<p>Paste the token <code>appmodel console</code> printed when it started. It works once: a new one comes with the next start.</p>{error}
<form method="post" action="/login"><label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required aria-describedby="token-error">
<button type="submit">Log in</button></form>"#
                    ),
                ),
            )
        };
        match req.method {
            Method::Get => form(200, ""),
            Method::Post => {
                if req
                    .origin
                    .as_deref()
                    .is_some_and(|o| !self.origin_allowed(o))
                {
                    return form(403, "this login came from another site: refused");
                }
                match self.log_in(req.field("token")) {
                    Some(id) => Resp::redirect("/").with_header(
                        "Set-Cookie",
                        format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"),
                    ),
                    None => form(
                        403,
                        "that token is wrong or was used already: restart `appmodel console` for a new one",
                    ),
                }
            }
        }
    }
}

/// A console bound to its address, ready to serve.
pub struct Bound {
    pub console: Arc<Console>,
    server: Arc<tiny_http::Server>,
    pub addr: SocketAddr,
    pub token: String,
}

/// Binds the console's address and installs its event sink and progress reporter.
pub fn bind(opts: &Options) -> Result<Bound, ConsoleError> {
    let (mut console, token) = Console::new(opts)?;
    let server = tiny_http::Server::http(opts.listen).map_err(|e| ConsoleError::Listen {
        addr: opts.listen,
        reason: e.to_string(),
    })?;
    let addr = server.server_addr().to_ip().unwrap_or(opts.listen);
    console.addr = addr;
    let console = Arc::new(console);
    appmodel_importer::events::set_sink(console.jobs.clone());
    appmodel_store::progress::set_reporter(Box::new(jobs::JobsReporter(console.jobs.clone())));
    Ok(Bound {
        console,
        server: Arc::new(server),
        addr,
        token,
    })
}

/// Worker threads answering requests.
const WORKERS: usize = 4;

impl Bound {
    /// Serves until the process ends.
    pub fn run(self) {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let server = self.server.clone();
                let console = self.console.clone();
                std::thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        serve_one(&console, request);
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
    }
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn serve_one(console: &Console, mut request: tiny_http::Request) {
    let method = match request.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => Some(Method::Get),
        tiny_http::Method::Post => Some(Method::Post),
        _ => None,
    };
    let resp = match method {
        None => Resp::html(
            405,
            html::error_page("Not allowed", "only GET and POST are answered"),
        ),
        Some(method) => {
            let mut req = Req::get(request.url());
            req.method = method;
            req.host = header(&request, "Host");
            req.origin = header(&request, "Origin");
            req.cookies = header(&request, "Cookie")
                .map(|c| http::parse_cookies(&c))
                .unwrap_or_default();
            let body = if method == Method::Post {
                http::read_form(request.as_reader()).map(|f| req.form = f)
            } else {
                Ok(())
            };
            match body {
                Ok(()) => console.handle(&req),
                Err(e) => Resp::html(400, html::error_page("Bad request", &e.to_string())),
            }
        }
    };
    let status = resp.status;
    let mut out = tiny_http::Response::from_data(resp.body.clone()).with_status_code(status);
    for (k, v) in resp.all_headers() {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            out.add_header(h);
        }
    }
    if let Err(e) = request.respond(out) {
        tracing::debug!("a browser went away before its answer: {e}");
    }
}

#[cfg(test)]
mod tests;
