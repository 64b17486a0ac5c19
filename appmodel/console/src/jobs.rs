//! Long operations (import, install, upgrade, rollback, licence activation) run on a thread
//! of their own, one at a time, as a [`Job`]. The importer's change events and the store's
//! byte progress, the same ones the CLI renders, are collected into the running job; its
//! page follows them (`/jobs/N.json`).

use std::sync::{Arc, Mutex, MutexGuard};

use appmodel_importer::events::{ChangeEvent, EventSink};
use appmodel_store::progress::{Reporter, Task};
use serde::Serialize;

/// How many finished jobs are kept for their pages.
const KEEP: usize = 50;
/// The most lines one job keeps (a change has tens).
const MAX_LINES: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub label: String,
    pub total: Option<u64>,
    pub done: u64,
}

/// What a job did: its result as the CLI's `--json` prints it, or the error's text.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Finished {
    Ok { value: serde_json::Value },
    Failed { error: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: u64,
    pub title: String,
    /// Each step as the CLI prints it.
    pub lines: Vec<String>,
    /// Each step as data (the `--events` JSON lines).
    pub events: Vec<serde_json::Value>,
    pub progress: Option<Progress>,
    pub finished: Option<Finished>,
}

pub struct Job {
    view: Mutex<JobView>,
}

impl Job {
    fn lock(&self) -> MutexGuard<'_, JobView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn view(&self) -> JobView {
        self.lock().clone()
    }

    fn line(&self, line: String, event: Option<serde_json::Value>) {
        let mut v = self.lock();
        if v.lines.len() < MAX_LINES {
            v.lines.push(line);
            v.events.extend(event);
        }
    }
}

#[derive(Default)]
struct Inner {
    next: u64,
    jobs: Vec<Arc<Job>>,
    running: Option<Arc<Job>>,
}

/// The console's jobs; also its event sink and progress reporter.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<Inner>,
}

/// A job was asked for while another runs.
#[derive(Debug)]
pub struct Busy {
    pub id: u64,
    pub title: String,
}

impl Jobs {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on a thread of its own, unless a job runs already.
    pub fn start(
        self: &Arc<Self>,
        title: String,
        work: impl FnOnce() -> Result<serde_json::Value, String> + Send + 'static,
    ) -> Result<u64, Busy> {
        let job = {
            let mut inner = self.lock();
            if let Some(r) = &inner.running {
                let v = r.lock();
                return Err(Busy {
                    id: v.id,
                    title: v.title.clone(),
                });
            }
            inner.next += 1;
            let job = Arc::new(Job {
                view: Mutex::new(JobView {
                    id: inner.next,
                    title,
                    lines: Vec::new(),
                    events: Vec::new(),
                    progress: None,
                    finished: None,
                }),
            });
            inner.jobs.push(job.clone());
            let excess = inner.jobs.len().saturating_sub(KEEP);
            inner.jobs.drain(..excess);
            inner.running = Some(job.clone());
            job
        };
        let id = job.lock().id;
        let jobs = self.clone();
        std::thread::spawn(move || {
            // A panic in the library must not leave the console refusing every change.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| {
                    Err("the operation failed unexpectedly (a bug: see the console's log)".into())
                });
            let finished = match result {
                Ok(value) => Finished::Ok { value },
                Err(error) => Finished::Failed { error },
            };
            job.lock().finished = Some(finished);
            jobs.lock().running = None;
        });
        Ok(id)
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.lock().jobs.iter().find(|j| j.lock().id == id).cloned()
    }

    /// The newest jobs first.
    pub fn recent(&self) -> Vec<JobView> {
        self.lock().jobs.iter().rev().map(|j| j.view()).collect()
    }

    fn running(&self) -> Option<Arc<Job>> {
        self.lock().running.clone()
    }

    /// Waits until no job runs (the tests, and a console shutting down).
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        while self.running().is_some() {
            if std::time::Instant::now() > end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }
}

impl EventSink for Jobs {
    fn event(&self, event: &ChangeEvent) {
        if let Some(job) = self.running() {
            job.line(event.message(), serde_json::to_value(event).ok());
        }
    }
}

struct JobTask(Arc<Job>);

impl Task for JobTask {
    fn advance(&self, bytes: u64) {
        if let Some(p) = self.0.lock().progress.as_mut() {
            p.done += bytes;
        }
    }
}

/// The store's progress reporter, feeding the running job.
pub struct JobsReporter(pub Arc<Jobs>);

struct NoTask;

impl Task for NoTask {
    fn advance(&self, _: u64) {}
}

impl Reporter for JobsReporter {
    fn begin(&self, label: &str, total: Option<u64>) -> Box<dyn Task> {
        let Some(job) = self.0.running() else {
            return Box::new(NoTask);
        };
        job.line(label.to_string(), None);
        job.lock().progress = Some(Progress {
            label: label.to_string(),
            total,
            done: 0,
        });
        Box::new(JobTask(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_job_at_a_time_and_its_result_kept() {
        let jobs = Arc::new(Jobs::default());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let id = jobs
            .start("first".into(), move || {
                rx.recv().ok();
                Ok(serde_json::json!({"done": true}))
            })
            .expect("nothing runs yet");
        let busy = jobs
            .start("second".into(), || Ok(serde_json::Value::Null))
            .expect_err("one runs");
        assert_eq!((busy.id, busy.title.as_str()), (id, "first"));
        JobsReporter(jobs.clone())
            .begin("reading blobs", Some(10))
            .advance(4);
        tx.send(()).expect("the job waits");
        assert!(jobs.wait_idle(Duration::from_secs(5)));
        let v = jobs.get(id).expect("kept").view();
        assert_eq!(v.lines, ["reading blobs"]);
        assert_eq!(v.progress.map(|p| p.done), Some(4));
        assert!(matches!(v.finished, Some(Finished::Ok { .. })));
        let failed = jobs
            .start("third".into(), || Err("no".into()))
            .expect("the first is over");
        assert!(jobs.wait_idle(Duration::from_secs(5)));
        let v = jobs.get(failed).expect("kept").view();
        assert!(matches!(v.finished, Some(Finished::Failed { ref error }) if error == "no"));
    }
}
