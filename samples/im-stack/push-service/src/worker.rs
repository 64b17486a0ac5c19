//! The delivery loop: takes due jobs from the [`Queue`], POSTs them to their endpoint and
//! records the outcome.
//!
//! The webhook receives `{"id":N,"recipient":"bob","payload":{...}}`; any 2xx status
//! counts as delivered. Delivery is at least once: a crash between the POST and the
//! recording of its outcome repeats the POST after the restart.

use std::sync::Arc;
use std::time::Duration;

use im_common::server::Shutdown;
use im_common::{client, error_chain, log};
use serde_json::json;

use crate::queue::{Job, Outcome, Queue};

/// Timeout of one delivery attempt (connect, and each read or write).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Delivers until `shutdown` is requested; the attempt in flight is finished first.
pub fn run(queue: Arc<Queue>, shutdown: Shutdown, program: String) {
    while let Some(job) = queue.next_due(&shutdown) {
        let result = deliver(&job);
        match queue.record(job.id, result.clone()) {
            Ok(outcome) => log::line(&program, describe(&job, &outcome, result.err())),
            Err(e) => {
                log::line(
                    &program,
                    format_args!(
                        "cannot record the outcome of push {}: {}",
                        job.id,
                        error_chain(&e)
                    ),
                );
                queue.release(job.id);
                shutdown.sleep(Duration::from_secs(1));
            }
        }
    }
}

/// One attempt: POST the job to its endpoint.
pub fn deliver(job: &Job) -> Result<(), String> {
    let body = json!({"id": job.id, "recipient": job.recipient, "payload": job.payload});
    match client::post_json(&job.endpoint, &body, DELIVERY_TIMEOUT) {
        Ok(r) if r.is_success() => Ok(()),
        Ok(r) => Err(format!("status {}: {}", r.status, r.message())),
        Err(e) => Err(error_chain(&e)),
    }
}

fn describe(job: &Job, outcome: &Outcome, error: Option<String>) -> String {
    let error = error.unwrap_or_default();
    match outcome {
        Outcome::Delivered => format!(
            "delivered push {} for {} to {} (attempt {})",
            job.id,
            job.recipient,
            job.endpoint,
            job.attempts + 1
        ),
        Outcome::Retry { attempts, delay } => format!(
            "push {} to {} failed (attempt {attempts}): {error}; retrying in {}ms",
            job.id,
            job.endpoint,
            delay.as_millis()
        ),
        Outcome::Failed { attempts } => format!(
            "push {} to {} failed (attempt {attempts}): {error}; giving up",
            job.id, job.endpoint
        ),
    }
}
