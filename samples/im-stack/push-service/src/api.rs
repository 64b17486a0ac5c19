//! The HTTP/JSON routes of push-service.
//!
//! ```text
//! GET  /healthz         200 {"status":"alive"}
//! GET  /readyz          200 {"status":"ready"} when the data dir is writable, else 503
//! GET  /version         {"version":"1.0.0"}
//! POST /devices         {"user","endpoint"} -> 201 (new) or 200 (known) {"user","endpoint"}
//! GET  /devices/{user}  {"user","endpoints":[...]}
//! POST /push            {"recipient","payload"} -> 202 {"queued":N,"ids":[...]}, durable first
//! GET  /stats           {"queued","delivered","failed"}
//! ```

use std::sync::Arc;

use im_common::fsutil::check_writable;
use im_common::server::{Handler, Request, Response};
use im_common::{error_chain, log};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::queue::Queue;
use crate::PushError;

pub struct PushApi {
    queue: Arc<Queue>,
    version: &'static str,
    program: String,
}

#[derive(Deserialize)]
struct DeviceBody {
    user: String,
    endpoint: String,
}

#[derive(Deserialize)]
struct PushBody {
    recipient: String,
    payload: Value,
}

impl PushApi {
    pub fn new(queue: Arc<Queue>, version: &'static str) -> PushApi {
        PushApi {
            queue,
            version,
            program: format!("push-service {version}"),
        }
    }

    fn route(&self, req: &Request) -> Result<Response, Response> {
        let segments = req.segments();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["healthz"]) => Ok(Response::json(200, &json!({"status": "alive"}))),
            ("GET", ["readyz"]) => Ok(match check_writable(self.queue.dir()) {
                Ok(()) => Response::json(200, &json!({"status": "ready"})),
                Err(e) => Response::error(503, error_chain(&e)),
            }),
            ("GET", ["version"]) => Ok(Response::json(200, &json!({"version": self.version}))),
            ("POST", ["devices"]) => {
                let body: DeviceBody = req.json()?;
                let new = self
                    .queue
                    .register(&body.user, &body.endpoint)
                    .map_err(|e| self.fail(e))?;
                let status = if new { 201 } else { 200 };
                Ok(Response::json(
                    status,
                    &json!({"user": body.user, "endpoint": body.endpoint}),
                ))
            }
            ("GET", ["devices", user]) => Ok(Response::json(
                200,
                &json!({"user": user, "endpoints": self.queue.endpoints(user)}),
            )),
            ("POST", ["push"]) => {
                let body: PushBody = req.json()?;
                let ids = self
                    .queue
                    .enqueue(&body.recipient, body.payload)
                    .map_err(|e| self.fail(e))?;
                Ok(Response::json(
                    202,
                    &json!({"queued": ids.len(), "ids": ids}),
                ))
            }
            ("GET", ["stats"]) => Ok(Response::json(200, &self.queue.stats())),
            _ => Err(Response::not_found(req)),
        }
    }

    fn fail(&self, err: PushError) -> Response {
        match err {
            PushError::Invalid { .. } => Response::error(400, err),
            _ => {
                let text = error_chain(&err);
                log::line(&self.program, format_args!("error: {text}"));
                Response::error(500, text)
            }
        }
    }
}

impl Handler for PushApi {
    fn handle(&self, req: &Request) -> Response {
        self.route(req).unwrap_or_else(|r| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Queue;
    use crate::{worker, RetryPolicy};
    use im_common::server::{HttpServer, Shutdown};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// A webhook receiver on loopback that records what it gets and answers with the
    /// statuses it is given, then 200.
    struct Receiver {
        got: Mutex<Vec<Value>>,
        statuses: Mutex<Vec<u16>>,
    }

    impl Handler for Receiver {
        fn handle(&self, req: &Request) -> Response {
            self.got
                .lock()
                .unwrap()
                .push(req.json::<Value>().unwrap_or(Value::Null));
            let mut statuses = self.statuses.lock().unwrap();
            let status = if statuses.is_empty() {
                200
            } else {
                statuses.remove(0)
            };
            Response::json(status, &json!({}))
        }
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn call(api: &PushApi, method: &str, target: &str, body: Value) -> (u16, Value) {
        let r = api.handle(&Request::json_body(method, target, &body));
        (r.status, r.value())
    }

    #[test]
    fn pushes_are_delivered_to_a_webhook_with_retries() {
        let receiver = Arc::new(Receiver {
            got: Mutex::new(Vec::new()),
            statuses: Mutex::new(vec![503, 500]),
        });
        let hook = HttpServer::bind("127.0.0.1:0", "hook").unwrap();
        let hook_url = format!("{}/hook", hook.url());
        let _hook = hook.spawn(receiver.clone(), 1);

        let tmp = tempfile::tempdir().unwrap();
        let policy = RetryPolicy {
            max_attempts: 5,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        let (queue, _) = Queue::open(tmp.path(), policy).unwrap();
        let queue = Arc::new(queue);
        let api = PushApi::new(queue.clone(), "1.0.0");
        let stop = Shutdown::new();
        let worker = {
            let (q, s) = (queue.clone(), stop.clone());
            std::thread::spawn(move || worker::run(q, s, "push-service test".into()))
        };

        let (status, _) = call(
            &api,
            "POST",
            "/devices",
            json!({"user": "bob", "endpoint": hook_url}),
        );
        assert_eq!(status, 201);
        let (status, _) = call(
            &api,
            "POST",
            "/devices",
            json!({"user": "bob", "endpoint": hook_url}),
        );
        assert_eq!(status, 200);
        let (status, v) = call(
            &api,
            "POST",
            "/push",
            json!({"recipient": "bob", "payload": {"text": "hi"}}),
        );
        assert_eq!((status, v), (202, json!({"queued": 1, "ids": [0]})));

        wait_for("delivery", || {
            call(&api, "GET", "/stats", Value::Null).1["delivered"] == 1
        });
        assert_eq!(
            call(&api, "GET", "/stats", Value::Null),
            (200, json!({"queued": 0, "delivered": 1, "failed": 0}))
        );
        let got = receiver.got.lock().unwrap().clone();
        assert_eq!(got.len(), 3, "two failures, then success: {got:?}");
        assert_eq!(
            got[2],
            json!({"id": 0, "recipient": "bob", "payload": {"text": "hi"}})
        );

        stop.request();
        worker.join().unwrap();
    }

    #[test]
    fn unreachable_endpoint_fails_after_max_attempts() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tmp = tempfile::tempdir().unwrap();
        let policy = RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(10),
        };
        let (queue, _) = Queue::open(tmp.path(), policy).unwrap();
        let queue = Arc::new(queue);
        queue
            .register("bob", &format!("http://127.0.0.1:{port}/hook"))
            .unwrap();
        queue.enqueue("bob", json!(1)).unwrap();
        let stop = Shutdown::new();
        let worker = {
            let (q, s) = (queue.clone(), stop.clone());
            std::thread::spawn(move || worker::run(q, s, "push-service test".into()))
        };
        wait_for("give-up", || queue.stats().failed == 1);
        assert_eq!(queue.stats().queued, 0);
        stop.request();
        worker.join().unwrap();
    }

    #[test]
    fn bad_requests_and_health() {
        let tmp = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(tmp.path(), RetryPolicy::default()).unwrap();
        let api = PushApi::new(Arc::new(queue), "1.1.0");
        assert_eq!(
            call(&api, "GET", "/healthz", Value::Null),
            (200, json!({"status": "alive"}))
        );
        assert_eq!(
            call(&api, "GET", "/readyz", Value::Null),
            (200, json!({"status": "ready"}))
        );
        assert_eq!(
            call(&api, "GET", "/version", Value::Null),
            (200, json!({"version": "1.1.0"}))
        );
        let (status, v) = call(&api, "POST", "/push", json!({"recipient": "bob"}));
        assert_eq!(status, 400);
        assert_eq!(
            v["error"],
            "invalid request body: missing field `payload` at line 1 column 19"
        );
        let (status, v) = call(
            &api,
            "POST",
            "/devices",
            json!({"user": "", "endpoint": "http://x"}),
        );
        assert_eq!(
            (status, v),
            (
                400,
                json!({"error": "field `user` must have 1 to 128 bytes"})
            )
        );
        let (status, v) = call(&api, "GET", "/devices/bob", Value::Null);
        assert_eq!((status, v), (200, json!({"user": "bob", "endpoints": []})));
    }
}
