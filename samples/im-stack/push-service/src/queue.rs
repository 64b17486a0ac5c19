//! Devices and the delivery queue, durable in the data directory:
//!
//! ```text
//! DATA_DIR/devices.log   record log of {"user","endpoint"} registrations
//! DATA_DIR/queue.log     record log of queue events (see `Event`)
//! ```
//!
//! A push creates one delivery job per endpoint of the recipient; its `enqueue` event is
//! fsync'd before the push is acknowledged. Failed attempts, deliveries and give-ups are
//! appended as events too, so a restart resumes each job with its attempt count. At every
//! start the queue log is compacted: rewritten atomically with the totals and the jobs
//! still pending.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use im_common::fsutil::{atomic_write, create_dir_durable};
use im_common::recordlog::{encode_record, RecordLog};
use im_common::server::Shutdown;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{PushError, RetryPolicy};

pub const DEVICES_LOG: &str = "devices.log";
pub const QUEUE_LOG: &str = "queue.log";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Event {
    Totals {
        delivered: u64,
        failed: u64,
        next_id: u64,
    },
    Enqueue {
        id: u64,
        recipient: String,
        endpoint: String,
        payload: Value,
        attempts: u32,
    },
    Attempt {
        id: u64,
        attempts: u32,
        error: String,
    },
    Delivered {
        id: u64,
    },
    Failed {
        id: u64,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Device {
    user: String,
    endpoint: String,
}

/// One delivery: a push to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u64,
    pub recipient: String,
    pub endpoint: String,
    pub payload: Value,
    /// Failed attempts so far.
    pub attempts: u32,
    next_at: Instant,
    in_flight: bool,
}

/// `GET /stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Deliveries waiting or in flight.
    pub queued: u64,
    pub delivered: u64,
    /// Deliveries given up after the maximum number of attempts.
    pub failed: u64,
}

/// What happened to a delivery attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Will be retried after the delay.
    Retry {
        attempts: u32,
        delay: Duration,
    },
    /// Given up after `attempts`.
    Failed {
        attempts: u32,
    },
}

/// What opening the queue found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub devices: usize,
    pub pending: u64,
    pub truncated_bytes: u64,
}

struct Inner {
    devices_log: RecordLog,
    devices: BTreeMap<String, Vec<String>>,
    queue_log: RecordLog,
    jobs: BTreeMap<u64, Job>,
    next_id: u64,
    delivered: u64,
    failed: u64,
}

pub struct Queue {
    dir: PathBuf,
    policy: RetryPolicy,
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Queue {
    /// Opens the data directory (created if missing), replays both logs and compacts the
    /// queue log.
    pub fn open(dir: &Path, policy: RetryPolicy) -> Result<(Queue, OpenReport), PushError> {
        create_dir_durable(dir)?;
        let devices_path = dir.join(DEVICES_LOG);
        let mut registrations = Vec::new();
        let (devices_log, dev_recovery) = RecordLog::open(&devices_path, 0, |_, payload| {
            registrations.push(payload.to_vec())
        })?;
        let mut devices: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (index, payload) in registrations.iter().enumerate() {
            let d: Device = parse(&devices_path, index, payload)?;
            let endpoints = devices.entry(d.user).or_default();
            if !endpoints.contains(&d.endpoint) {
                endpoints.push(d.endpoint);
            }
        }

        let queue_path = dir.join(QUEUE_LOG);
        let mut events = Vec::new();
        let (queue_log, queue_recovery) =
            RecordLog::open(&queue_path, 0, |_, p| events.push(p.to_vec()))?;
        drop(queue_log);
        let now = Instant::now();
        let (mut jobs, mut next_id, mut delivered, mut failed) = (BTreeMap::new(), 0, 0, 0);
        for (index, payload) in events.iter().enumerate() {
            match parse(&queue_path, index, payload)? {
                Event::Totals {
                    delivered: d,
                    failed: f,
                    next_id: n,
                } => {
                    (delivered, failed, next_id) = (d, f, n);
                }
                Event::Enqueue {
                    id,
                    recipient,
                    endpoint,
                    payload,
                    attempts,
                } => {
                    next_id = next_id.max(id + 1);
                    let job = Job {
                        id,
                        recipient,
                        endpoint,
                        payload,
                        attempts,
                        next_at: now,
                        in_flight: false,
                    };
                    jobs.insert(id, job);
                }
                Event::Attempt { id, attempts, .. } => {
                    if let Some(job) = jobs.get_mut(&id) {
                        job.attempts = attempts;
                    }
                }
                Event::Delivered { id } => {
                    if jobs.remove(&id).is_some() {
                        delivered += 1;
                    }
                }
                Event::Failed { id, .. } => {
                    if jobs.remove(&id).is_some() {
                        failed += 1;
                    }
                }
            }
        }

        // Compact: the totals and the pending jobs, nothing else.
        let mut compacted = encode(&Event::Totals {
            delivered,
            failed,
            next_id,
        })?;
        for job in jobs.values() {
            compacted.extend(encode(&Event::Enqueue {
                id: job.id,
                recipient: job.recipient.clone(),
                endpoint: job.endpoint.clone(),
                payload: job.payload.clone(),
                attempts: job.attempts,
            })?);
        }
        atomic_write(&queue_path, &compacted)?;
        let (queue_log, _) = RecordLog::open(&queue_path, 0, |_, _| {})?;

        let report = OpenReport {
            devices: devices.values().map(Vec::len).sum(),
            pending: jobs.len() as u64,
            truncated_bytes: dev_recovery.truncated_bytes + queue_recovery.truncated_bytes,
        };
        let inner = Inner {
            devices_log,
            devices,
            queue_log,
            jobs,
            next_id,
            delivered,
            failed,
        };
        let queue = Queue {
            dir: dir.to_path_buf(),
            policy,
            inner: Mutex::new(inner),
            changed: Condvar::new(),
        };
        Ok((queue, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Registers `endpoint` for `user`; returns false if it already was.
    pub fn register(&self, user: &str, endpoint: &str) -> Result<bool, PushError> {
        check_name("user", user)?;
        im_common::client::split_url(endpoint).map_err(|e| PushError::Invalid {
            field: "endpoint",
            reason: format!("must be an http:// URL ({e})"),
        })?;
        let mut inner = self.lock();
        if inner
            .devices
            .get(user)
            .is_some_and(|e| e.iter().any(|x| x == endpoint))
        {
            return Ok(false);
        }
        let record = Device {
            user: user.to_string(),
            endpoint: endpoint.to_string(),
        };
        inner.devices_log.append(&to_json(&record)?)?;
        inner
            .devices
            .entry(user.to_string())
            .or_default()
            .push(endpoint.to_string());
        Ok(true)
    }

    pub fn endpoints(&self, user: &str) -> Vec<String> {
        self.lock().devices.get(user).cloned().unwrap_or_default()
    }

    /// Queues `payload` for every endpoint of `recipient`, durably; returns the job ids.
    pub fn enqueue(&self, recipient: &str, payload: Value) -> Result<Vec<u64>, PushError> {
        check_name("recipient", recipient)?;
        let mut inner = self.lock();
        let endpoints = inner.devices.get(recipient).cloned().unwrap_or_default();
        let mut ids = Vec::new();
        for endpoint in endpoints {
            let id = inner.next_id;
            let event = Event::Enqueue {
                id,
                recipient: recipient.to_string(),
                endpoint: endpoint.clone(),
                payload: payload.clone(),
                attempts: 0,
            };
            inner.queue_log.append(&to_json(&event)?)?;
            inner.next_id += 1;
            let job = Job {
                id,
                recipient: recipient.to_string(),
                endpoint,
                payload: payload.clone(),
                attempts: 0,
                next_at: Instant::now(),
                in_flight: false,
            };
            inner.jobs.insert(id, job);
            ids.push(id);
        }
        drop(inner);
        self.changed.notify_all();
        Ok(ids)
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            queued: inner.jobs.len() as u64,
            delivered: inner.delivered,
            failed: inner.failed,
        }
    }

    /// Waits for the next job that is due and marks it in flight; `None` once `shutdown`
    /// is requested.
    pub fn next_due(&self, shutdown: &Shutdown) -> Option<Job> {
        let mut inner = self.lock();
        loop {
            if shutdown.is_requested() {
                return None;
            }
            let now = Instant::now();
            let next = inner
                .jobs
                .values()
                .filter(|j| !j.in_flight)
                .min_by_key(|j| (j.next_at, j.id));
            let wait = match next {
                Some(job) if job.next_at <= now => {
                    let id = job.id;
                    let job = inner.jobs.get_mut(&id)?;
                    job.in_flight = true;
                    return Some(job.clone());
                }
                Some(job) => job.next_at - now,
                None => Duration::from_secs(1),
            };
            // Wake at least every 100ms to notice a shutdown request.
            let wait = wait.min(Duration::from_millis(100));
            inner = self
                .changed
                .wait_timeout(inner, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Records the result of an attempt at job `id` durably and schedules a retry if one
    /// is due.
    pub fn record(&self, id: u64, result: Result<(), String>) -> Result<Outcome, PushError> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.get(&id) else {
            return Err(PushError::Invalid {
                field: "id",
                reason: format!("no job {id} is queued"),
            });
        };
        let outcome = match result {
            Ok(()) => {
                inner
                    .queue_log
                    .append(&to_json(&Event::Delivered { id })?)?;
                inner.jobs.remove(&id);
                inner.delivered += 1;
                Outcome::Delivered
            }
            Err(error) => {
                let attempts = job.attempts + 1;
                if attempts >= self.policy.max_attempts {
                    inner
                        .queue_log
                        .append(&to_json(&Event::Failed { id, error })?)?;
                    inner.jobs.remove(&id);
                    inner.failed += 1;
                    Outcome::Failed { attempts }
                } else {
                    inner.queue_log.append(&to_json(&Event::Attempt {
                        id,
                        attempts,
                        error,
                    })?)?;
                    let delay = self.policy.delay_after(attempts);
                    if let Some(job) = inner.jobs.get_mut(&id) {
                        job.attempts = attempts;
                        job.next_at = Instant::now() + delay;
                        job.in_flight = false;
                    }
                    Outcome::Retry { attempts, delay }
                }
            }
        };
        drop(inner);
        self.changed.notify_all();
        Ok(outcome)
    }

    /// Puts a job taken by [`Queue::next_due`] back without recording an attempt (the
    /// worker stopped before trying it).
    pub fn release(&self, id: u64) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.in_flight = false;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is applied after its log append succeeded, so the state behind a
        // poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), PushError> {
    if value.is_empty() || value.len() > 128 {
        return Err(PushError::Invalid {
            field,
            reason: "must have 1 to 128 bytes".to_string(),
        });
    }
    Ok(())
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, PushError> {
    serde_json::to_vec(value).map_err(|e| PushError::Invalid {
        field: "payload",
        reason: e.to_string(),
    })
}

fn encode(event: &Event) -> Result<Vec<u8>, PushError> {
    Ok(encode_record(&to_json(event)?)?)
}

fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    index: usize,
    payload: &[u8],
) -> Result<T, PushError> {
    serde_json::from_slice(payload).map_err(|source| PushError::BadRecord {
        path: path.to_path_buf(),
        index: index as u64,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn pushes_fan_out_to_each_endpoint_of_the_recipient() {
        let tmp = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(tmp.path(), fast()).unwrap();
        assert!(q.register("bob", "http://127.0.0.1:1/a").unwrap());
        assert!(q.register("bob", "http://127.0.0.1:1/b").unwrap());
        assert!(!q.register("bob", "http://127.0.0.1:1/a").unwrap());
        assert_eq!(q.enqueue("bob", json!({"n": 1})).unwrap(), vec![0, 1]);
        assert_eq!(q.enqueue("nobody", json!({})).unwrap(), Vec::<u64>::new());
        assert_eq!(
            q.stats(),
            Stats {
                queued: 2,
                delivered: 0,
                failed: 0
            }
        );
        let err = q.register("bob", "https://x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `endpoint` must be an http:// URL (invalid url `https://x`: only http:// URLs are supported)"
        );
    }

    #[test]
    fn attempts_retry_then_fail_and_everything_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let stop = Shutdown::new();
        let (q, _) = Queue::open(tmp.path(), fast()).unwrap();
        q.register("bob", "http://127.0.0.1:1/hook").unwrap();
        q.enqueue("bob", json!({"n": 1})).unwrap();
        q.enqueue("bob", json!({"n": 2})).unwrap();

        let job = q.next_due(&stop).unwrap();
        assert_eq!((job.id, job.attempts), (0, 0));
        assert_eq!(q.record(0, Ok(())).unwrap(), Outcome::Delivered);
        let job = q.next_due(&stop).unwrap();
        assert_eq!(job.id, 1);
        assert_eq!(
            q.record(1, Err("refused".into())).unwrap(),
            Outcome::Retry {
                attempts: 1,
                delay: Duration::from_millis(1)
            }
        );
        drop(q);

        // Restart: the job keeps its attempt count; totals are kept across compaction.
        let (q, report) = Queue::open(tmp.path(), fast()).unwrap();
        assert_eq!(
            report,
            OpenReport {
                devices: 1,
                pending: 1,
                truncated_bytes: 0
            }
        );
        assert_eq!(
            q.stats(),
            Stats {
                queued: 1,
                delivered: 1,
                failed: 0
            }
        );
        let job = q.next_due(&stop).unwrap();
        assert_eq!(
            (job.id, job.attempts, job.payload.clone()),
            (1, 1, json!({"n": 2}))
        );
        assert!(matches!(
            q.record(1, Err("x".into())).unwrap(),
            Outcome::Retry { attempts: 2, .. }
        ));
        let job = q.next_due(&stop).unwrap();
        assert_eq!(
            q.record(job.id, Err("x".into())).unwrap(),
            Outcome::Failed { attempts: 3 }
        );
        assert_eq!(
            q.stats(),
            Stats {
                queued: 0,
                delivered: 1,
                failed: 1
            }
        );
        drop(q);

        let (q, report) = Queue::open(tmp.path(), fast()).unwrap();
        assert_eq!(report.pending, 0);
        assert_eq!(
            q.stats(),
            Stats {
                queued: 0,
                delivered: 1,
                failed: 1
            }
        );
        // Ids are not reused after compaction.
        assert_eq!(q.enqueue("bob", json!({})).unwrap(), vec![2]);
    }

    #[test]
    fn next_due_returns_none_on_shutdown() {
        let tmp = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(tmp.path(), fast()).unwrap();
        let stop = Shutdown::new();
        stop.request();
        assert!(q.next_due(&stop).is_none());
    }
}
