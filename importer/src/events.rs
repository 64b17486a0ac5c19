//! What a change does, as data: each step of install, upgrade, rollback, a revert, a
//! recovery and the licence check is a [`ChangeEvent`]. Every event is logged (the lines
//! the CLI prints) and handed to the process's [`EventSink`], if one is set: the CLI's
//! `--events FILE` writes them as JSON lines, and a console streams them.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::deploy::{Action, Status};

/// One step of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ChangeEvent {
    /// A change passed its plan's checks and begins changing the site.
    Begin {
        app: String,
        action: Action,
        version: String,
        revision: u32,
        previous: Option<u32>,
    },
    /// The running revision is being stopped.
    Stopping { revision: u32 },
    /// The stopped revision's data was copied into its snapshot.
    Snapshotted { revision: u32, bytes: u64 },
    /// A rollback's (or a revert's) data came back from revision `from`'s snapshot.
    Restored { from: u32 },
    /// One level of the dependency graph is starting.
    Starting {
        revision: u32,
        components: Vec<String>,
    },
    /// A component passed its health check (or, having none, runs).
    Healthy { revision: u32, component: String },
    /// The new revision failed; the previous one is being brought back.
    Reverting { revision: u32, reason: String },
    /// The revert is over: `restored` runs again (none after a failed install).
    Reverted {
        revision: u32,
        restored: Option<u32>,
    },
    /// The change is over and `revision` has `status`.
    Done { revision: u32, status: Status },
    /// A change a crash interrupted was finished or reverted.
    Recovered { revision: u32, note: String },
    /// The licence check stopped the app (its data kept).
    LicenceStopped { app: String, reason: String },
    /// The licence check started the app again.
    LicenceStarted { app: String },
}

impl ChangeEvent {
    /// The line a person reads.
    pub fn message(&self) -> String {
        match self {
            ChangeEvent::Begin {
                app,
                action,
                version,
                revision,
                ..
            } => format!("{action:?} of {app} {version} as revision {revision}").to_lowercase(),
            ChangeEvent::Stopping { revision } => {
                format!("stopping the running revision {revision}")
            }
            ChangeEvent::Snapshotted { revision, bytes } => {
                format!("data of revision {revision} snapshotted ({bytes} bytes)")
            }
            ChangeEvent::Restored { from } => {
                format!("data restored from the snapshot of revision {from}")
            }
            ChangeEvent::Starting { components, .. } => {
                format!("starting {}", components.join(", "))
            }
            ChangeEvent::Healthy { component, .. } => format!("{component} is healthy"),
            ChangeEvent::Reverting { revision, reason } => {
                format!("revision {revision} failed ({reason}); restoring the previous one")
            }
            ChangeEvent::Reverted { revision, restored } => match restored {
                Some(r) => format!("revision {revision} reverted: revision {r} runs again"),
                None => format!("revision {revision} reverted: nothing runs"),
            },
            ChangeEvent::Done { revision, status } => {
                format!("revision {revision} is {}", status.as_str())
            }
            ChangeEvent::Recovered { note, .. } => note.clone(),
            ChangeEvent::LicenceStopped { app, reason } => {
                format!("licence: {app} was stopped: {reason}")
            }
            ChangeEvent::LicenceStarted { app } => format!("licence: {app} was started again"),
        }
    }

    fn is_warning(&self) -> bool {
        matches!(
            self,
            ChangeEvent::Reverting { .. }
                | ChangeEvent::Reverted { .. }
                | ChangeEvent::Recovered { .. }
                | ChangeEvent::LicenceStopped { .. }
        )
    }
}

/// Where events go besides the log.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &ChangeEvent);
}

static SINK: RwLock<Option<Arc<dyn EventSink>>> = RwLock::new(None);

/// Sets the process's sink (the CLI does, once, before any command runs).
pub fn set_sink(sink: Arc<dyn EventSink>) {
    if let Ok(mut s) = SINK.write() {
        *s = Some(sink);
    }
}

#[cfg(test)]
thread_local! {
    /// Events of this thread, when a unit test records them.
    static RECORDED: std::cell::RefCell<Option<Vec<ChangeEvent>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, returning what it returned and the events it emitted on this thread.
#[cfg(test)]
pub fn record<T>(f: impl FnOnce() -> T) -> (T, Vec<ChangeEvent>) {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = f();
    let events = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
    (out, events)
}

/// Logs `event` and hands it to the sink.
pub(crate) fn emit(event: ChangeEvent) {
    if event.is_warning() {
        tracing::warn!("{}", event.message());
    } else {
        tracing::info!("{}", event.message());
    }
    #[cfg(test)]
    RECORDED.with(|r| {
        if let Some(v) = r.borrow_mut().as_mut() {
            v.push(event.clone());
        }
    });
    let sink = SINK.read().ok().and_then(|s| s.clone());
    if let Some(sink) = sink {
        sink.event(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_name_and_read_as_a_line() {
        let e = ChangeEvent::Snapshotted {
            revision: 3,
            bytes: 9080,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"snapshotted","revision":3,"bytes":9080}"#
        );
        assert_eq!(e.message(), "data of revision 3 snapshotted (9080 bytes)");
        let e = ChangeEvent::Done {
            revision: 4,
            status: Status::Deployed,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"done","revision":4,"status":"deployed"}"#
        );
        assert_eq!(e.message(), "revision 4 is deployed");
    }
}
