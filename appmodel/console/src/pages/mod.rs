//! The pages: one module each, one row each in [`ROUTES`]. A page is a thin view over the
//! library: it calls what the CLI's command calls and renders the result.

use appmodel_importer::ImportError;
use serde::Serialize;

use crate::html;
use crate::http::{Method, Resp};
use crate::Ctx;

mod config;
mod dashboard;
mod import;
mod job;
mod licence;
mod plan;
mod preflight;
mod versions;

pub type Handler = fn(&Ctx) -> Result<Resp, PageError>;

pub struct Route {
    pub path: &'static str,
    /// The label in the navigation, for pages listed there.
    pub nav: Option<&'static str>,
    pub get: Option<Handler>,
    pub post: Option<Handler>,
}

/// Every page. `/jobs/N` and `/jobs/N.json` go to the job page.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/",
        nav: Some("Dashboard"),
        get: Some(dashboard::get),
        post: None,
    },
    Route {
        path: "/import",
        nav: Some("Import"),
        get: Some(import::get),
        post: Some(import::post),
    },
    Route {
        path: "/config",
        nav: Some("Configuration"),
        get: Some(config::get),
        post: Some(config::post),
    },
    Route {
        path: "/versions",
        nav: Some("Versions"),
        get: Some(versions::get),
        post: None,
    },
    Route {
        path: "/plan",
        nav: None,
        get: Some(plan::get),
        post: Some(plan::post),
    },
    Route {
        path: "/licence",
        nav: Some("Licence"),
        get: Some(licence::get),
        post: Some(licence::post),
    },
    Route {
        path: "/preflight",
        nav: Some("Preflight"),
        get: Some(preflight::get),
        post: None,
    },
    Route {
        path: "/jobs/",
        nav: None,
        get: Some(job::get),
        post: None,
    },
];

/// A page could not be made: its status and one sentence for the person.
#[derive(Debug)]
pub struct PageError {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub fn bad(message: impl Into<String>) -> PageError {
        PageError {
            status: 400,
            title: "Refused",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError {
            status: 404,
            title: "Not found",
            message: message.into(),
        }
    }
}

/// An error and each of its causes, as one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl From<ImportError> for PageError {
    fn from(e: ImportError) -> PageError {
        PageError {
            status: if e.is_user_error() { 400 } else { 500 },
            title: if e.is_user_error() {
                "Refused"
            } else {
                "Failed"
            },
            message: chain(&e),
        }
    }
}

/// Finds the page for the request and runs it.
pub fn route(ctx: &Ctx) -> Resp {
    let path = ctx.req.path.as_str();
    let row = ROUTES.iter().find(|r| {
        if r.path.ends_with('/') && r.path.len() > 1 {
            path.starts_with(r.path)
        } else {
            r.path == path
        }
    });
    let handler = row.and_then(|r| match ctx.req.method {
        Method::Get => r.get,
        Method::Post => r.post,
    });
    let result = match (row, handler) {
        (Some(_), Some(h)) => h(ctx),
        (Some(_), None) => Err(PageError {
            status: 405,
            title: "Not allowed",
            message: "this page is only read, not posted to".into(),
        }),
        (None, _) => Err(PageError::not_found(format!("there is no page `{path}`"))),
    };
    result.unwrap_or_else(|e| Resp::html(e.status, html::error_page(e.title, &e.message)))
}

const CSS: &[u8] = include_bytes!("../../assets/console.css");
const JS: &[u8] = include_bytes!("../../assets/console.js");

/// The embedded stylesheet and script, served without a session.
pub fn assets(path: &str) -> Option<Resp> {
    match path {
        "/assets/console.css" => Some(Resp::asset("text/css; charset=utf-8", CSS)),
        "/assets/console.js" => Some(Resp::asset("text/javascript; charset=utf-8", JS)),
        _ => None,
    }
}

/// A value's name as its JSON spells it (`healthy`, `upgrade`).
pub fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Starts `work` as a job and sends the browser to its page; a job running already is
/// said, with a link to it.
pub fn start_job(
    ctx: &Ctx,
    title: String,
    work: impl FnOnce() -> Result<serde_json::Value, String> + Send + 'static,
) -> Result<Resp, PageError> {
    match ctx.console.jobs.start(title, work) {
        Ok(id) => Ok(Resp::redirect(&format!("/jobs/{id}"))),
        Err(busy) => Err(PageError {
            status: 409,
            title: "Busy",
            message: format!(
                "`{}` runs now (job {}): wait for it to finish, then send this again; nothing changed",
                busy.title, busy.id
            ),
        }),
    }
}
