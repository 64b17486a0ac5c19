//! The gate file: the host's licence decision, as the containers of a compose install see it.
//!
//! The host-side appmodel writes `gate.json` whenever it checks the licence (install,
//! upgrade, activation, the scheduled check); the directory holding it is mounted read-only
//! into every container of a licensed app, where `appmodel license gate` starts the
//! component only while the file says it may run, and stops it when the file says so or
//! when the time it gives has passed (docs/licence.md, "Enforcement"). The file holds no
//! secret: the stage, its reason and two times.
//!
//! Like every input, the file may be anything: it is read as a regular file with a size cap,
//! and [`decide`] is pure, so every verdict is unit-tested with times given.

use std::path::Path;

use appmodel_model::input::{self, Links};
use appmodel_model::record::rfc3339;
use serde::{Deserialize, Serialize};

use crate::clock::TOLERANCE;
use crate::{LicenceError, Result, Standing};

/// The gate file's name in its directory.
pub const GATE_FILE: &str = "gate.json";
/// The largest gate file read (a real one is a few hundred bytes).
pub const MAX_GATE_FILE: u64 = 16 * 1024;

/// What the host decided, for the containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    pub app: String,
    /// The licence lets the app run now.
    pub runs: bool,
    /// The stage (`trial`, `valid`, `warn`, `grace`, `stopped`) and why.
    pub stage: String,
    pub reason: String,
    /// When the app must stop unless the host writes a newer file (seconds since the epoch).
    pub stops_at: Option<u64>,
    /// When the host wrote it: a container clock more than the tolerance behind it was set
    /// back.
    pub checked_at: u64,
}

impl GateFile {
    /// The file for `standing`, written at `now`.
    pub fn of(app: &str, standing: &Standing, now: u64) -> GateFile {
        let runs = standing.stage.runs();
        GateFile {
            app: app.to_string(),
            runs,
            stage: standing.stage.as_str().to_string(),
            reason: standing.reason.clone(),
            stops_at: if runs { standing.stops_at } else { None },
            checked_at: now,
        }
    }

    /// Reads `path`: a regular file of at most [`MAX_GATE_FILE`] bytes holding one.
    pub fn load(path: &Path) -> Result<GateFile> {
        let text = input::read_text(path, MAX_GATE_FILE, Links::Follow).map_err(|source| {
            LicenceError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        serde_json::from_str(&text).map_err(|e| LicenceError::BadGate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// What a gate does at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run, for at most this many seconds (none: until the file changes).
    Run(Option<u64>),
    /// Do not run, and why (one sentence).
    Stop(String),
}

/// The gate's verdict on `file` when the clock says `now`.
pub fn decide(file: &GateFile, now: u64) -> Verdict {
    if !file.runs {
        return Verdict::Stop(format!(
            "the licence of {} keeps it stopped: {}",
            file.app, file.reason
        ));
    }
    if now.saturating_add(TOLERANCE) < file.checked_at {
        return Verdict::Stop(format!(
            "the clock ({}) is behind the last licence check ({}); {} counts as stopped until the clock is right",
            rfc3339(now),
            rfc3339(file.checked_at),
            file.app
        ));
    }
    match file.stops_at {
        Some(end) if now >= end => Verdict::Stop(format!(
            "the licence of {} ended at {} ({})",
            file.app,
            rfc3339(end),
            file.reason
        )),
        Some(end) => Verdict::Run(Some(end - now)),
        None => Verdict::Run(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(runs: bool, stops_at: Option<u64>) -> GateFile {
        GateFile {
            app: "im-stack".into(),
            runs,
            stage: if runs { "valid" } else { "stopped" }.into(),
            reason: "licensed to ACME to 2027-12-31".into(),
            stops_at,
            checked_at: 1_000_000,
        }
    }

    #[test]
    fn a_gate_runs_until_the_end_the_host_gave_and_never_past_it() {
        let f = file(true, Some(1_000_500));
        assert_eq!(decide(&f, 1_000_000), Verdict::Run(Some(500)));
        assert_eq!(decide(&f, 1_000_499), Verdict::Run(Some(1)));
        let Verdict::Stop(why) = decide(&f, 1_000_500) else {
            panic!("runs at its end")
        };
        assert!(why.contains("ended at 1970-01-12T13:55:00Z"), "{why}");
        assert_eq!(decide(&file(true, None), 5_000_000), Verdict::Run(None));
        // Any times a file may hold: no overflow.
        assert!(matches!(decide(&f, u64::MAX), Verdict::Stop(_)));
        assert_eq!(
            decide(&file(true, Some(u64::MAX)), 0),
            Verdict::Stop(
                "the clock (1970-01-01T00:00:00Z) is behind the last licence check (1970-01-12T13:46:40Z); im-stack counts as stopped until the clock is right".into()
            )
        );
    }

    #[test]
    fn a_stopped_file_or_a_clock_set_back_stops_it() {
        let Verdict::Stop(why) = decide(&file(false, None), 1_000_000) else {
            panic!()
        };
        assert!(why.contains("keeps it stopped: licensed"), "{why}");
        let f = file(true, Some(9_000_000));
        // Within the tolerance: runs; more than that behind the host's check: stops.
        assert!(matches!(decide(&f, 1_000_000 - TOLERANCE), Verdict::Run(_)));
        let Verdict::Stop(why) = decide(&f, 1_000_000 - TOLERANCE - 1) else {
            panic!()
        };
        assert!(why.contains("is behind the last licence check"), "{why}");
    }

    #[test]
    fn a_gate_file_that_is_not_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(GATE_FILE);
        for (text, expected) in [
            ("", "EOF while parsing"),
            ("{\"app\":\"x\"}", "missing field"),
            (
                "{\"app\":\"x\",\"runs\":true,\"stage\":\"v\",\"reason\":\"r\",\"stops_at\":null,\"checked_at\":1,\"extra\":1}",
                "unknown field",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = GateFile::load(&p).unwrap_err().to_string();
            assert!(e.contains(&p.display().to_string()) && e.contains(expected), "{e}");
        }
        std::fs::write(&p, vec![b' '; MAX_GATE_FILE as usize + 1]).unwrap();
        assert!(GateFile::load(&p).is_err());
        let f = file(true, Some(7));
        std::fs::write(&p, f.to_bytes()).unwrap();
        assert_eq!(GateFile::load(&p).unwrap(), f);
    }
}
