//! The HTTP/JSON routes of im-server.
//!
//! ```text
//! GET  /healthz                     200 {"status":"alive"}
//! GET  /readyz                      200 {"status":"ready"} when im-store and push-service are ready, else 503
//! GET  /version                     {"version":"1.0.0","domain":"example.org"}   (1.1.0 adds "read_receipts")
//! POST /users                       {"name"} + `Authorization: Bearer <IM_ADMIN_SECRET>` -> 201 {"name","address"}
//! GET  /users                       (admin) {"users":[...],"max_users":N}
//! POST /messages                    {"from","to","body"} -> 201 {"conversation","offset"}
//! GET  /conversations/{a}/{b}?from=N&limit=M   {"conversation","messages":[...]} (1.1.0: + "receipts")
//! POST /conversations/{a}/{b}/read  {"user","offset"} -> {"conversation","user","offset"}      (1.1.0)
//! ```
//!
//! Users are messages in the reserved im-store conversation `_users` (sender `im-server`,
//! body the user name); a conversation between two users is `dm.<a>.<b>` with the names
//! sorted. User names are 1 to 32 of `a-z 0-9 _ -`.

use std::sync::Mutex;

use im_common::server::{Handler, Request, Response};
use im_common::{error_chain, log};
use serde::Deserialize;
use serde_json::json;

use crate::backend::Backends;
use crate::{Config, Edition, ServerError};

/// The im-store conversation that holds the registered users.
pub const USERS_CONVERSATION: &str = "_users";
const DEFAULT_LIMIT: u64 = 100;

pub struct App {
    config: Config,
    edition: Edition,
    backends: Backends,
    program: String,
    /// Serialises user registration so two requests cannot pass the limit together.
    registering: Mutex<()>,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
}

#[derive(Deserialize)]
struct Send {
    from: String,
    to: String,
    body: String,
}

#[derive(Deserialize)]
struct MarkRead {
    user: String,
    offset: u64,
}

/// The conversation id of two users: `dm.<a>.<b>`, names sorted.
pub fn conversation_id(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("dm.{x}.{y}")
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn check_name(field: &str, name: &str) -> Result<(), Response> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Response::error(
            400,
            format!(
                "`{field}` must be a user name of 1 to 32 characters a-z 0-9 _ -, got `{name}`"
            ),
        ))
    }
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl App {
    pub fn new(config: Config, edition: Edition) -> App {
        let backends = Backends {
            store_url: config.store_url.clone(),
            push_url: config.push_url.clone(),
        };
        App {
            program: format!("im-server {}", edition.version()),
            config,
            edition,
            backends,
            registering: Mutex::new(()),
        }
    }

    fn route(&self, req: &Request) -> Result<Response, Response> {
        let segments = req.segments();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let receipts_route = self.edition == Edition::V1_1;
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["healthz"]) => Ok(Response::json(200, &json!({"status": "alive"}))),
            ("GET", ["readyz"]) => Ok(match self.backends.ready() {
                Ok(()) => Response::json(200, &json!({"status": "ready"})),
                Err(e) => Response::error(503, error_chain(&e)),
            }),
            ("GET", ["version"]) => Ok(self.version()),
            ("POST", ["users"]) => self.create_user(req),
            ("GET", ["users"]) => {
                self.authorize(req)?;
                let users = self.users().map_err(|e| self.fail(e))?;
                Ok(Response::json(
                    200,
                    &json!({"users": users, "max_users": self.config.max_users}),
                ))
            }
            ("POST", ["messages"]) => self.send(req),
            ("GET", ["conversations", a, b]) => self.history(req, a, b),
            ("POST", ["conversations", a, b, "read"]) if receipts_route => {
                self.mark_read(req, a, b)
            }
            _ => Err(Response::not_found(req)),
        }
    }

    fn version(&self) -> Response {
        let mut body = json!({"version": self.edition.version(), "domain": self.config.domain});
        if self.edition == Edition::V1_1 {
            body["read_receipts"] = json!(self.config.read_receipts);
        }
        Response::json(200, &body)
    }

    fn authorize(&self, req: &Request) -> Result<(), Response> {
        let given = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        if same_secret(given.as_bytes(), self.config.admin_secret.as_bytes()) {
            Ok(())
        } else {
            Err(Response::error(
                401,
                "this needs `Authorization: Bearer <admin secret>`",
            ))
        }
    }

    /// Registered users in registration order.
    fn users(&self) -> Result<Vec<String>, ServerError> {
        let mut users: Vec<String> = Vec::new();
        for m in self.backends.read_all(USERS_CONVERSATION)? {
            if valid_name(&m.body) && !users.contains(&m.body) {
                users.push(m.body);
            }
        }
        Ok(users)
    }

    fn create_user(&self, req: &Request) -> Result<Response, Response> {
        self.authorize(req)?;
        let body: NewUser = req.json()?;
        check_name("name", &body.name)?;
        let _guard = self.registering.lock().unwrap_or_else(|e| e.into_inner());
        let users = self.users().map_err(|e| self.fail(e))?;
        if users.contains(&body.name) {
            return Err(Response::error(
                409,
                format!("user `{}` already exists", body.name),
            ));
        }
        if users.len() as u64 >= u64::from(self.config.max_users) {
            return Err(Response::error(
                403,
                format!(
                    "the user limit of {} is reached (IM_MAX_USERS)",
                    self.config.max_users
                ),
            ));
        }
        self.backends
            .append(USERS_CONVERSATION, "im-server", &body.name)
            .map_err(|e| self.fail(e))?;
        log::line(&self.program, format_args!("registered user {}", body.name));
        let address = format!("{}@{}", body.name, self.config.domain);
        Ok(Response::json(
            201,
            &json!({"name": body.name, "address": address}),
        ))
    }

    fn send(&self, req: &Request) -> Result<Response, Response> {
        let msg: Send = req.json()?;
        check_name("from", &msg.from)?;
        check_name("to", &msg.to)?;
        let users = self.users().map_err(|e| self.fail(e))?;
        for name in [&msg.from, &msg.to] {
            if !users.contains(name) {
                return Err(Response::error(
                    404,
                    format!("user `{name}` is not registered"),
                ));
            }
        }
        let conversation = conversation_id(&msg.from, &msg.to);
        let offset = self
            .backends
            .append(&conversation, &msg.from, &msg.body)
            .map_err(|e| self.fail(e))?;
        let payload = json!({
            "type": "message",
            "domain": self.config.domain,
            "conversation": conversation,
            "offset": offset,
            "from": msg.from,
            "body": msg.body,
        });
        // The message is stored; a notification that cannot be queued must not fail the send.
        if let Err(e) = self.backends.push(&msg.to, &payload) {
            log::line(
                &self.program,
                format_args!(
                    "push for {conversation}@{offset} to {} not queued: {}",
                    msg.to,
                    error_chain(&e)
                ),
            );
        }
        Ok(Response::json(
            201,
            &json!({"conversation": conversation, "offset": offset}),
        ))
    }

    fn history(&self, req: &Request, a: &str, b: &str) -> Result<Response, Response> {
        check_name("a", a)?;
        check_name("b", b)?;
        let from = req.query_u64("from", 0)?;
        let limit = req.query_u64("limit", DEFAULT_LIMIT)?;
        let conversation = conversation_id(a, b);
        let messages = self
            .backends
            .read(&conversation, from, limit)
            .map_err(|e| self.fail(e))?;
        let mut body = json!({"conversation": conversation, "messages": messages});
        if self.config.read_receipts {
            match self.backends.receipts(&conversation) {
                Ok(r) => body["receipts"] = json!(r),
                // An im-store 1.0.0 behind a 1.1.0 server: history still works.
                Err(e) => log::line(
                    &self.program,
                    format_args!(
                        "read receipts of {conversation} unavailable: {}",
                        error_chain(&e)
                    ),
                ),
            }
        }
        Ok(Response::json(200, &body))
    }

    fn mark_read(&self, req: &Request, a: &str, b: &str) -> Result<Response, Response> {
        if !self.config.read_receipts {
            return Err(Response::error(
                404,
                "read receipts are disabled (IM_READ_RECEIPTS=false)",
            ));
        }
        check_name("a", a)?;
        check_name("b", b)?;
        let mark: MarkRead = req.json()?;
        if mark.user != a && mark.user != b {
            return Err(Response::error(
                400,
                format!(
                    "`{}` is not part of the conversation of `{a}` and `{b}`",
                    mark.user
                ),
            ));
        }
        let conversation = conversation_id(a, b);
        let offset = self
            .backends
            .mark_read(&conversation, &mark.user, mark.offset)
            .map_err(|e| self.fail(e))?;
        Ok(Response::json(
            200,
            &json!({"conversation": conversation, "user": mark.user, "offset": offset}),
        ))
    }

    /// A backend failure as a response: the backend's 4xx pass through, the rest is 502.
    fn fail(&self, err: ServerError) -> Response {
        if let ServerError::Backend {
            status, message, ..
        } = &err
        {
            if (400..500).contains(status) {
                return Response::error(*status, message);
            }
        }
        let text = error_chain(&err);
        log::line(&self.program, format_args!("error: {text}"));
        Response::error(502, text)
    }
}

impl Handler for App {
    fn handle(&self, req: &Request) -> Response {
        self.route(req).unwrap_or_else(|r| r)
    }
}

#[cfg(test)]
mod tests {
    //! The routes against real im-store and push-service instances on loopback.

    use super::*;
    use im_common::server::{HttpServer, RunningServer, Shutdown};
    use push_service::queue::Queue;
    use push_service::RetryPolicy;
    use serde_json::Value;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const SECRET: &str = "s3cret";

    struct Hook {
        got: std::sync::Mutex<Vec<Value>>,
    }

    impl Handler for Hook {
        fn handle(&self, req: &Request) -> Response {
            self.got
                .lock()
                .unwrap()
                .push(req.json::<Value>().unwrap_or(Value::Null));
            Response::json(200, &json!({}))
        }
    }

    struct Stack {
        app: App,
        hook: Arc<Hook>,
        hook_url: String,
        push_url: String,
        stop: Shutdown,
        worker: Option<std::thread::JoinHandle<()>>,
        _servers: Vec<RunningServer>,
        _tmp: tempfile::TempDir,
    }

    impl Drop for Stack {
        fn drop(&mut self) {
            self.stop.request();
            if let Some(w) = self.worker.take() {
                w.join().unwrap();
            }
        }
    }

    fn stack(edition: Edition, read_receipts: bool, max_users: u32) -> Stack {
        let tmp = tempfile::tempdir().unwrap();
        let format = if edition == Edition::V1_1 { 2 } else { 1 };
        let (store, _) = im_store::store::Store::open(&tmp.path().join("store"), format).unwrap();
        let store_api = im_store::api::StoreApi::new(store, edition.version());
        let store = HttpServer::bind("127.0.0.1:0", "im-store test")
            .unwrap()
            .spawn(Arc::new(store_api), 2);

        let policy = RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        };
        let (queue, _) = Queue::open(&tmp.path().join("push"), policy).unwrap();
        let queue = Arc::new(queue);
        let push_api = push_service::api::PushApi::new(queue.clone(), edition.version());
        let push = HttpServer::bind("127.0.0.1:0", "push test")
            .unwrap()
            .spawn(Arc::new(push_api), 2);
        let stop = Shutdown::new();
        let worker = {
            let stop = stop.clone();
            std::thread::spawn(move || push_service::worker::run(queue, stop, "push test".into()))
        };

        let hook = Arc::new(Hook {
            got: std::sync::Mutex::new(Vec::new()),
        });
        let hook_server = HttpServer::bind("127.0.0.1:0", "hook")
            .unwrap()
            .spawn(hook.clone(), 1);
        let config = Config {
            listen: "127.0.0.1:0".into(),
            domain: "example.org".into(),
            max_users,
            admin_secret: SECRET.into(),
            store_url: store.url.clone(),
            push_url: push.url.clone(),
            read_receipts,
        };
        Stack {
            app: App::new(config, edition),
            hook_url: format!("{}/hook", hook_server.url),
            push_url: push.url.clone(),
            hook,
            stop,
            worker: Some(worker),
            _servers: vec![store, push, hook_server],
            _tmp: tmp,
        }
    }

    fn call(app: &App, method: &str, target: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let req = Request::new(method, target, body)
            .with_header("Authorization", &format!("Bearer {SECRET}"));
        let r = app.handle(&req);
        (r.status, r.value())
    }

    fn register(app: &App, names: &[&str]) {
        for name in names {
            let (status, v) = call(app, "POST", "/users", json!({ "name": name }));
            assert_eq!(status, 201, "{v}");
        }
    }

    #[test]
    fn user_registration_needs_the_secret_and_respects_the_limit() {
        let s = stack(Edition::V1_0, false, 2);
        let anonymous = Request::json_body("POST", "/users", &json!({"name": "alice"}));
        let r = s.app.handle(&anonymous);
        assert_eq!(
            (r.status, r.value()),
            (
                401,
                json!({"error": "this needs `Authorization: Bearer <admin secret>`"})
            )
        );
        let wrong = anonymous
            .clone()
            .with_header("Authorization", "Bearer nope");
        assert_eq!(s.app.handle(&wrong).status, 401);

        assert_eq!(
            call(&s.app, "POST", "/users", json!({"name": "alice"})),
            (
                201,
                json!({"name": "alice", "address": "alice@example.org"})
            )
        );
        assert_eq!(
            call(&s.app, "POST", "/users", json!({"name": "alice"})),
            (409, json!({"error": "user `alice` already exists"}))
        );
        register(&s.app, &["bob"]);
        assert_eq!(
            call(&s.app, "POST", "/users", json!({"name": "carol"})),
            (
                403,
                json!({"error": "the user limit of 2 is reached (IM_MAX_USERS)"})
            )
        );
        let (status, v) = call(&s.app, "POST", "/users", json!({"name": "Bad Name"}));
        assert_eq!(status, 400, "{v}");
        assert_eq!(
            call(&s.app, "GET", "/users", Value::Null),
            (200, json!({"users": ["alice", "bob"], "max_users": 2}))
        );
    }

    #[test]
    fn messages_are_stored_pushed_and_read_back() {
        let s = stack(Edition::V1_0, false, 10);
        register(&s.app, &["alice", "bob"]);
        let r = im_common::client::post_json(
            &format!("{}/devices", s.push_url),
            &json!({"user": "bob", "endpoint": s.hook_url}),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.status, 201);

        for (i, text) in ["hi bob", "are you there?", "bye"].iter().enumerate() {
            let (status, v) = call(
                &s.app,
                "POST",
                "/messages",
                json!({"from": "alice", "to": "bob", "body": text}),
            );
            assert_eq!(
                (status, v),
                (201, json!({"conversation": "dm.alice.bob", "offset": i}))
            );
        }
        let (status, v) = call(
            &s.app,
            "POST",
            "/messages",
            json!({"from": "bob", "to": "alice", "body": "hey"}),
        );
        assert_eq!(
            (status, v),
            (201, json!({"conversation": "dm.alice.bob", "offset": 3}))
        );
        assert_eq!(
            call(
                &s.app,
                "POST",
                "/messages",
                json!({"from": "alice", "to": "zed", "body": "x"})
            ),
            (404, json!({"error": "user `zed` is not registered"}))
        );

        let (status, v) = call(
            &s.app,
            "GET",
            "/conversations/bob/alice?from=1&limit=2",
            Value::Null,
        );
        assert_eq!(status, 200);
        assert_eq!(v["conversation"], "dm.alice.bob");
        let bodies: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["are you there?", "bye"]);
        assert!(v.get("receipts").is_none());

        let end = Instant::now() + Duration::from_secs(10);
        while s.hook.got.lock().unwrap().len() < 3 {
            assert!(Instant::now() < end, "pushes not delivered");
            std::thread::sleep(Duration::from_millis(10));
        }
        let first = s.hook.got.lock().unwrap()[0].clone();
        assert_eq!(first["recipient"], "bob");
        assert_eq!(
            first["payload"],
            json!({"type": "message", "domain": "example.org", "conversation": "dm.alice.bob",
                   "offset": 0, "from": "alice", "body": "hi bob"})
        );
    }

    #[test]
    fn a_push_failure_does_not_fail_the_send() {
        let mut s = stack(Edition::V1_0, false, 10);
        register(&s.app, &["alice", "bob"]);
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut config = s.app.config.clone();
        config.push_url = format!("http://{closed}");
        s.app = App::new(config, Edition::V1_0);
        let (status, v) = call(
            &s.app,
            "POST",
            "/messages",
            json!({"from": "alice", "to": "bob", "body": "x"}),
        );
        assert_eq!(
            (status, v),
            (201, json!({"conversation": "dm.alice.bob", "offset": 0}))
        );
        let (status, v) = call(&s.app, "GET", "/readyz", Value::Null);
        assert_eq!(status, 503);
        assert_eq!(
            v["error"].as_str().unwrap(),
            format!("push-service at `http://{closed}/readyz` is unreachable: request `GET http://{closed}/readyz` failed: Connection refused (os error 111)")
        );
    }

    #[test]
    fn read_receipts_in_1_1() {
        let s = stack(Edition::V1_1, true, 10);
        register(&s.app, &["alice", "bob"]);
        for _ in 0..3 {
            call(
                &s.app,
                "POST",
                "/messages",
                json!({"from": "alice", "to": "bob", "body": "x"}),
            );
        }
        assert_eq!(
            call(
                &s.app,
                "POST",
                "/conversations/alice/bob/read",
                json!({"user": "bob", "offset": 2})
            ),
            (
                200,
                json!({"conversation": "dm.alice.bob", "user": "bob", "offset": 2})
            )
        );
        let (status, v) = call(
            &s.app,
            "POST",
            "/conversations/alice/bob/read",
            json!({"user": "carol", "offset": 0}),
        );
        assert_eq!(status, 400, "{v}");
        let (status, v) = call(
            &s.app,
            "POST",
            "/conversations/alice/bob/read",
            json!({"user": "bob", "offset": 7}),
        );
        assert_eq!(
            (status, v),
            (
                400,
                json!({"error": "offset 7 is past the end of conversation `dm.alice.bob`, which has 3 messages"})
            )
        );
        let (_, v) = call(&s.app, "GET", "/conversations/alice/bob", Value::Null);
        assert_eq!(v["receipts"], json!({"bob": 2}));
        assert_eq!(v["messages"].as_array().unwrap().len(), 3);
        assert_eq!(
            call(&s.app, "GET", "/version", Value::Null),
            (
                200,
                json!({"version": "1.1.0", "domain": "example.org", "read_receipts": true})
            )
        );
        assert_eq!(
            call(&s.app, "GET", "/readyz", Value::Null),
            (200, json!({"status": "ready"}))
        );
    }

    #[test]
    fn read_receipts_switched_off_or_absent() {
        let off = stack(Edition::V1_1, false, 10);
        register(&off.app, &["alice", "bob"]);
        call(
            &off.app,
            "POST",
            "/messages",
            json!({"from": "alice", "to": "bob", "body": "x"}),
        );
        assert_eq!(
            call(
                &off.app,
                "POST",
                "/conversations/alice/bob/read",
                json!({"user": "bob", "offset": 0})
            ),
            (
                404,
                json!({"error": "read receipts are disabled (IM_READ_RECEIPTS=false)"})
            )
        );
        let (_, v) = call(&off.app, "GET", "/conversations/alice/bob", Value::Null);
        assert!(v.get("receipts").is_none());

        let v10 = stack(Edition::V1_0, false, 10);
        let (status, _) = call(
            &v10.app,
            "POST",
            "/conversations/alice/bob/read",
            json!({"user": "bob", "offset": 0}),
        );
        assert_eq!(status, 404);
        assert_eq!(
            call(&v10.app, "GET", "/version", Value::Null),
            (200, json!({"version": "1.0.0", "domain": "example.org"}))
        );
    }

    #[test]
    fn conversation_ids_sort_the_pair() {
        assert_eq!(conversation_id("bob", "alice"), "dm.alice.bob");
        assert_eq!(conversation_id("alice", "bob"), "dm.alice.bob");
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
