//! Calls to im-store and push-service.

use std::collections::BTreeMap;
use std::time::Duration;

use im_common::client::{self, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ServerError;

/// Timeout of one call to a backend.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Page size used when reading a whole conversation.
const PAGE: u64 = 1000;

const STORE: &str = "im-store";
const PUSH: &str = "push-service";

/// A message as im-store returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Message {
    pub offset: u64,
    pub from: String,
    pub body: String,
    pub ts: u64,
}

#[derive(Debug, Clone)]
pub struct Backends {
    pub store_url: String,
    pub push_url: String,
}

impl Backends {
    /// Appends a message; returns its offset.
    pub fn append(&self, conversation: &str, from: &str, body: &str) -> Result<u64, ServerError> {
        #[derive(Deserialize)]
        struct Appended {
            offset: u64,
        }
        let url = format!("{}/conversations/{conversation}/messages", self.store_url);
        let r = call(
            STORE,
            &url,
            client::post_json(&url, &json!({"from": from, "body": body}), TIMEOUT),
        )?;
        Ok(parse::<Appended>(STORE, &r)?.offset)
    }

    /// Up to `limit` messages from offset `from`.
    pub fn read(
        &self,
        conversation: &str,
        from: u64,
        limit: u64,
    ) -> Result<Vec<Message>, ServerError> {
        #[derive(Deserialize)]
        struct Page {
            messages: Vec<Message>,
        }
        let url = format!(
            "{}/conversations/{conversation}/messages?from={from}&limit={limit}",
            self.store_url
        );
        let r = call(STORE, &url, client::get(&url, TIMEOUT))?;
        Ok(parse::<Page>(STORE, &r)?.messages)
    }

    /// Every message of a conversation.
    pub fn read_all(&self, conversation: &str) -> Result<Vec<Message>, ServerError> {
        let mut all = Vec::new();
        loop {
            let page = self.read(conversation, all.len() as u64, PAGE)?;
            let done = (page.len() as u64) < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    pub fn mark_read(
        &self,
        conversation: &str,
        user: &str,
        offset: u64,
    ) -> Result<u64, ServerError> {
        #[derive(Deserialize)]
        struct Marked {
            offset: u64,
        }
        let url = format!("{}/conversations/{conversation}/read", self.store_url);
        let r = call(
            STORE,
            &url,
            client::post_json(&url, &json!({"user": user, "offset": offset}), TIMEOUT),
        )?;
        Ok(parse::<Marked>(STORE, &r)?.offset)
    }

    pub fn receipts(&self, conversation: &str) -> Result<BTreeMap<String, u64>, ServerError> {
        #[derive(Deserialize)]
        struct Receipts {
            receipts: BTreeMap<String, u64>,
        }
        let url = format!("{}/conversations/{conversation}/read", self.store_url);
        let r = call(STORE, &url, client::get(&url, TIMEOUT))?;
        Ok(parse::<Receipts>(STORE, &r)?.receipts)
    }

    /// Queues a notification for `recipient`.
    pub fn push(&self, recipient: &str, payload: &Value) -> Result<(), ServerError> {
        let url = format!("{}/push", self.push_url);
        call(
            PUSH,
            &url,
            client::post_json(
                &url,
                &json!({"recipient": recipient, "payload": payload}),
                TIMEOUT,
            ),
        )?;
        Ok(())
    }

    /// Readiness of both backends: `Err` names the first that is not ready.
    pub fn ready(&self) -> Result<(), ServerError> {
        for (service, base) in [(STORE, &self.store_url), (PUSH, &self.push_url)] {
            let url = format!("{base}/readyz");
            call(service, &url, client::get(&url, Duration::from_secs(2)))?;
        }
        Ok(())
    }
}

fn call(
    service: &'static str,
    url: &str,
    result: Result<Response, im_common::Error>,
) -> Result<Response, ServerError> {
    let r = result.map_err(|source| ServerError::Unreachable {
        service,
        url: url.to_string(),
        source,
    })?;
    if !r.is_success() {
        return Err(ServerError::Backend {
            service,
            status: r.status,
            message: r.message(),
        });
    }
    Ok(r)
}

fn parse<T: DeserializeOwned>(service: &'static str, r: &Response) -> Result<T, ServerError> {
    r.json().map_err(|e| ServerError::BadResponse {
        service,
        reason: e.to_string(),
    })
}
