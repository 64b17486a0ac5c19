//! The HTTP/JSON routes of im-store.
//!
//! ```text
//! GET  /healthz                          200 {"status":"alive"}
//! GET  /readyz                           200 {"status":"ready"} when the data dir is writable, else 503
//! GET  /version                          {"version":"1.0.0","format":1}
//! POST /conversations/{id}/messages      {"from","body"} -> 201 {"offset":N}, fsync'd before the response
//! GET  /conversations/{id}/messages?from=N&limit=M   {"messages":[{"offset","from","body","ts"}]}
//! POST /conversations/{id}/read          {"user","offset"} -> {"user","offset"}      (format 2)
//! GET  /conversations/{id}/read          {"receipts":{"bob":3}}                     (format 2)
//! ```

use im_common::error_chain;
use im_common::fsutil::check_writable;
use im_common::log;
use im_common::server::{Handler, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::format::CONVERSATIONS_DIR;
use crate::store::Store;
use crate::StoreError;

/// Default and largest page size of message reads.
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

pub struct StoreApi {
    store: Store,
    version: &'static str,
    program: String,
}

#[derive(Deserialize)]
struct AppendBody {
    from: String,
    body: String,
}

#[derive(Deserialize)]
struct ReadBody {
    user: String,
    offset: u64,
}

impl StoreApi {
    /// Serves `store`, reporting `version` (e.g. [`crate::VERSION`]).
    pub fn new(store: Store, version: &'static str) -> StoreApi {
        StoreApi {
            store,
            version,
            program: format!("im-store {version}"),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn route(&self, req: &Request) -> Result<Response, Response> {
        let segments = req.segments();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["healthz"]) => Ok(Response::json(200, &json!({"status": "alive"}))),
            ("GET", ["readyz"]) => Ok(self.readyz()),
            ("GET", ["version"]) => Ok(Response::json(
                200,
                &json!({"version": self.version, "format": self.store.format()}),
            )),
            ("POST", ["conversations", id, "messages"]) => {
                let body: AppendBody = req.json()?;
                let offset = self
                    .store
                    .append(id, &body.from, &body.body)
                    .map_err(|e| self.fail(e))?;
                Ok(Response::json(201, &json!({"offset": offset})))
            }
            ("GET", ["conversations", id, "messages"]) => {
                let from = req.query_u64("from", 0)?;
                let limit = req.query_u64("limit", DEFAULT_LIMIT)?.min(MAX_LIMIT);
                let messages = self.store.read(id, from, limit).map_err(|e| self.fail(e))?;
                Ok(Response::json(200, &json!({"messages": messages})))
            }
            ("POST", ["conversations", id, "read"]) => {
                let body: ReadBody = req.json()?;
                let offset = self
                    .store
                    .mark_read(id, &body.user, body.offset)
                    .map_err(|e| self.fail(e))?;
                Ok(Response::json(
                    200,
                    &json!({"user": body.user, "offset": offset}),
                ))
            }
            ("GET", ["conversations", id, "read"]) => {
                let receipts = self.store.receipts(id).map_err(|e| self.fail(e))?;
                Ok(Response::json(200, &json!({"receipts": receipts})))
            }
            _ => Err(Response::not_found(req)),
        }
    }

    fn readyz(&self) -> Response {
        let dir = self.store.dir().join(CONVERSATIONS_DIR);
        match check_writable(&dir) {
            Ok(()) => Response::json(200, &json!({"status": "ready"})),
            Err(e) => Response::error(503, error_chain(&e)),
        }
    }

    /// Maps a store error to a response; server-side failures are logged.
    fn fail(&self, err: StoreError) -> Response {
        match err {
            StoreError::BadId { .. }
            | StoreError::Invalid { .. }
            | StoreError::OffsetPastEnd { .. } => Response::error(400, err),
            StoreError::NoReceipts { .. } => Response::error(404, err),
            _ => {
                let text = error_chain(&err);
                log::line(&self.program, format_args!("error: {text}"));
                Response::error(500, text)
            }
        }
    }
}

impl Handler for StoreApi {
    fn handle(&self, req: &Request) -> Response {
        self.route(req).unwrap_or_else(|r| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(format: u32) -> (tempfile::TempDir, StoreApi) {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(tmp.path(), format).unwrap();
        let version = if format == 2 { "1.1.0" } else { "1.0.0" };
        (tmp, StoreApi::new(store, version))
    }

    fn call(
        api: &StoreApi,
        method: &str,
        target: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = api.handle(&Request::new(method, target, body));
        (r.status, r.value())
    }

    #[test]
    fn append_and_read_messages() {
        let (_tmp, api) = api(1);
        for (i, text) in ["hi", "hello", "bye"].iter().enumerate() {
            let (status, v) = call(
                &api,
                "POST",
                "/conversations/dm.a.b/messages",
                json!({"from": "a", "body": text}),
            );
            assert_eq!((status, v), (201, json!({"offset": i})));
        }
        let (status, v) = call(
            &api,
            "GET",
            "/conversations/dm.a.b/messages?from=1&limit=5",
            json!(null),
        );
        assert_eq!(status, 200);
        let msgs = v["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0]["offset"].as_u64(), msgs[0]["body"].as_str()),
            (Some(1), Some("hello"))
        );
        assert!(msgs[0]["ts"].as_u64().unwrap() > 1_600_000_000_000);
        let (_, v) = call(&api, "GET", "/conversations/other/messages", json!(null));
        assert_eq!(v, json!({"messages": []}));
    }

    #[test]
    fn bad_requests_get_400_with_a_reason() {
        let (_tmp, api) = api(1);
        let (status, v) = call(
            &api,
            "POST",
            "/conversations/c/messages",
            json!({"from": "a"}),
        );
        assert_eq!(status, 400);
        assert_eq!(
            v["error"],
            "invalid request body: missing field `body` at line 1 column 12"
        );
        let (status, v) = call(
            &api,
            "POST",
            "/conversations/.x/messages",
            json!({"from": "a", "body": "b"}),
        );
        assert_eq!(status, 400);
        assert!(v["error"]
            .as_str()
            .unwrap()
            .starts_with("conversation id `.x` is invalid"));
        let (status, _) = call(
            &api,
            "GET",
            "/conversations/c/messages?from=-1",
            json!(null),
        );
        assert_eq!(status, 400);
        let (status, v) = call(&api, "DELETE", "/conversations/c", json!(null));
        assert_eq!(
            (status, v),
            (
                404,
                json!({"error": "no route for `DELETE /conversations/c`"})
            )
        );
    }

    #[test]
    fn receipts_exist_only_with_format_2() {
        let (_tmp, v10) = api(1);
        let (status, v) = call(&v10, "GET", "/conversations/c/read", json!(null));
        assert_eq!(status, 404);
        assert_eq!(
            v["error"],
            "read receipts need data format 2 (im-store 1.1.0); this data directory has format 1"
        );

        let (_tmp, v11) = api(2);
        for _ in 0..4 {
            call(
                &v11,
                "POST",
                "/conversations/c/messages",
                json!({"from": "a", "body": "x"}),
            );
        }
        let (status, v) = call(
            &v11,
            "POST",
            "/conversations/c/read",
            json!({"user": "bob", "offset": 3}),
        );
        assert_eq!((status, v), (200, json!({"user": "bob", "offset": 3})));
        let (status, v) = call(&v11, "GET", "/conversations/c/read", json!(null));
        assert_eq!((status, v), (200, json!({"receipts": {"bob": 3}})));
        let (status, _) = call(
            &v11,
            "POST",
            "/conversations/c/read",
            json!({"user": "bob", "offset": 9}),
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn health_readiness_and_version() {
        let (tmp, api) = api(2);
        assert_eq!(
            call(&api, "GET", "/healthz", json!(null)),
            (200, json!({"status": "alive"}))
        );
        assert_eq!(
            call(&api, "GET", "/readyz", json!(null)),
            (200, json!({"status": "ready"}))
        );
        assert_eq!(
            call(&api, "GET", "/version", json!(null)),
            (200, json!({"version": "1.1.0", "format": 2}))
        );
        std::fs::remove_dir_all(tmp.path().join(CONVERSATIONS_DIR)).unwrap();
        let (status, v) = call(&api, "GET", "/readyz", json!(null));
        assert_eq!(status, 503);
        assert!(
            v["error"].as_str().unwrap().starts_with("cannot write `"),
            "{v}"
        );
    }
}
