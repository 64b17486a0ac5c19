//! `appmodel license gate -- COMMAND…`: the licence gate at the start of every container of
//! a licensed compose app, and its first process for as long as it runs.
//!
//! The static appmodel from the bundle is mounted into the container (it is the health
//! probe too) and the compose project makes it the entrypoint, with the component's own
//! command after `--`. The gate reads the host's decision ([`GateFile`], mounted read-only
//! from the deployment) and
//! - does not start the component when the licence keeps the app stopped, its end has
//!   passed, or the clock is behind the host's last check (exit [`REFUSED`]);
//! - otherwise starts it as a child, forwards the signals a container gets (`docker stop`'s
//!   SIGTERM among them), reaps orphans as a container's first process must, and exits as
//!   the child did;
//! - stops it (SIGTERM, SIGKILL after [`STOP_GRACE`]) within [`POLL`] of the host writing a
//!   stopped decision or of the end the file gave. That end is counted on the monotonic
//!   clock from when the file was read, so setting the wall clock back does not extend it.
//!
//! This is the enforcement on hosts where no systemd runs the scheduled check; with one, the
//! timer stops the containers and the gate keeps a hand-started one from running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use appmodel_licence::gate::{decide, GateFile, Verdict, GATE_FILE};
use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions, WaitStatus};

/// The exit status of a component the gate does not let run (EX_CONFIG).
pub const REFUSED: i32 = 78;
/// How often the gate looks at the file and the time.
pub const POLL: Duration = Duration::from_secs(2);
/// How long a component has to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The signals forwarded to the component, as a container's first process gets them.
const FORWARDED: [(i32, Signal); 6] = [
    (signal_hook::consts::SIGTERM, Signal::TERM),
    (signal_hook::consts::SIGINT, Signal::INT),
    (signal_hook::consts::SIGHUP, Signal::HUP),
    (signal_hook::consts::SIGQUIT, Signal::QUIT),
    (signal_hook::consts::SIGUSR1, Signal::USR1),
    (signal_hook::consts::SIGUSR2, Signal::USR2),
];

fn say(text: &str) {
    eprintln!("appmodel license gate: {text}");
}

/// The file's verdict now; an unreadable file is a refusal naming it.
fn verdict(file: &Path) -> (Verdict, Option<String>) {
    match GateFile::load(file) {
        Ok(g) => (decide(&g, appmodel_licence::now()), Some(g.app)),
        Err(e) => (
            Verdict::Stop(format!(
                "{}; the host's appmodel writes it when it checks the licence",
                chain(&e)
            )),
            None,
        ),
    }
}

/// An error and its causes, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// What identifies a version of the file: a rewrite is a rename onto it.
fn stamp(file: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file).ok()?;
    Some((m.modified().ok()?, m.ino(), m.len()))
}

/// Runs `command` under the gate of `dir`; returns the exit status for the container.
pub fn run(dir: &Path, command: &[String]) -> i32 {
    supervise(dir, command, STOP_GRACE)
}

fn supervise(dir: &Path, command: &[String], grace: Duration) -> i32 {
    let file: PathBuf = dir.join(GATE_FILE);
    let Some((program, args)) = command.split_first() else {
        say("no command to run after `--`");
        return REFUSED;
    };
    let (first, _) = verdict(&file);
    let mut deadline = match first {
        Verdict::Stop(why) => {
            say(&format!("{program} does not start: {why}"));
            return REFUSED;
        }
        Verdict::Run(left) => left.and_then(|s| Instant::now().checked_add(Duration::from_secs(s))),
    };
    let flags: Vec<(Arc<AtomicBool>, Signal)> = FORWARDED
        .iter()
        .filter_map(|&(raw, sig)| {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(raw, Arc::clone(&flag))
                .ok()
                .map(|_| (flag, sig))
        })
        .collect();
    let child = match Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            say(&format!("cannot start `{program}`: {e}"));
            return 127;
        }
    };
    let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        say("the component has no process id");
        return REFUSED;
    };
    let mut seen = stamp(&file);
    let mut looked = Instant::now();
    let mut stopping: Option<Instant> = None;
    loop {
        for (flag, sig) in &flags {
            if flag.swap(false, Ordering::SeqCst) {
                let _ = kill_process(pid, *sig);
            }
        }
        if let Some(code) = reap(pid) {
            return if stopping.is_some() { REFUSED } else { code };
        }
        match stopping {
            Some(since) if since.elapsed() >= grace => {
                let _ = kill_process(pid, Signal::KILL);
            }
            Some(_) => {}
            None if looked.elapsed() >= POLL => {
                looked = Instant::now();
                let now = stamp(&file);
                let mut why = None;
                if now != seen {
                    seen = now;
                    match verdict(&file).0 {
                        Verdict::Stop(w) => why = Some(w),
                        Verdict::Run(left) => {
                            deadline = left
                                .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)))
                        }
                    }
                }
                if why.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
                    why = Some(match verdict(&file).0 {
                        Verdict::Stop(w) => w,
                        Verdict::Run(_) => {
                            "the licence's end has passed on this container's clock".into()
                        }
                    });
                }
                if let Some(why) = why {
                    say(&format!("stopping {program}: {why}"));
                    let _ = kill_process(pid, Signal::TERM);
                    stopping = Some(Instant::now());
                }
            }
            None => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The component's exit status once it has exited. As a container's first process the
/// gate inherits orphans, and reaps every exited one; elsewhere it waits for its own child
/// only.
fn reap(component: Pid) -> Option<i32> {
    let init = rustix::process::getpid() == Pid::INIT;
    loop {
        match waitpid((!init).then_some(component), WaitOptions::NOHANG) {
            Ok(Some((pid, status))) if pid == component => return Some(exit_code(status)),
            Ok(Some(_)) => continue,
            // No child left (ECHILD) or none exited yet.
            Ok(None) | Err(_) => return None,
        }
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_dir(runs: bool, stops_in: Option<u64>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let now = appmodel_licence::now();
        write(dir.path(), runs, stops_in.map(|s| now + s));
        dir
    }

    fn write(dir: &Path, runs: bool, stops_at: Option<u64>) {
        let g = GateFile {
            app: "im-stack".into(),
            runs,
            stage: "valid".into(),
            reason: "test".into(),
            stops_at,
            checked_at: appmodel_licence::now(),
        };
        let tmp = dir.join("gate.tmp");
        std::fs::write(&tmp, g.to_bytes()).unwrap();
        std::fs::rename(tmp, dir.join(GATE_FILE)).unwrap();
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn the_component_runs_and_its_exit_status_is_the_gates() {
        let dir = gate_dir(true, Some(3600));
        assert_eq!(run(dir.path(), &sh("exit 0")), 0);
        assert_eq!(run(dir.path(), &sh("exit 3")), 3);
        assert_eq!(run(dir.path(), &sh("kill -9 $$")), 128 + 9);
    }

    #[test]
    fn a_stopped_ended_missing_or_empty_gate_does_not_start_it() {
        let marker = tempfile::tempdir().unwrap();
        let ran = marker.path().join("ran");
        let touch = sh(&format!("touch {}", ran.display()));
        for dir in [gate_dir(false, None), gate_dir(true, Some(0))] {
            assert_eq!(run(dir.path(), &touch), REFUSED);
        }
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(run(empty.path(), &touch), REFUSED);
        std::fs::write(empty.path().join(GATE_FILE), "").unwrap();
        assert_eq!(run(empty.path(), &touch), REFUSED);
        assert_eq!(run(empty.path(), &[]), REFUSED);
        assert!(!ran.exists(), "a refused component ran");
    }

    #[test]
    fn the_gate_stops_the_component_at_its_end_and_when_the_host_says_so() {
        // The end given in the file: reached while the component runs.
        let dir = gate_dir(true, Some(1));
        let t = Instant::now();
        assert_eq!(run(dir.path(), &sh("sleep 60")), REFUSED);
        assert!(
            t.elapsed() < Duration::from_secs(1) + POLL * 2,
            "{:?}",
            t.elapsed()
        );
        // The host rewrites the file as stopped.
        let dir = gate_dir(true, Some(3600));
        let path = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            write(&path, false, None);
        });
        let t = Instant::now();
        assert_eq!(run(dir.path(), &sh("sleep 60")), REFUSED);
        assert!(t.elapsed() < POLL * 3, "{:?}", t.elapsed());
        writer.join().unwrap();
        // A component that ignores SIGTERM is killed after the grace.
        let dir = gate_dir(true, Some(1));
        let t = Instant::now();
        let grace = Duration::from_secs(1);
        assert_eq!(
            supervise(
                dir.path(),
                &sh("trap '' TERM; while :; do sleep 0.1; done"),
                grace
            ),
            REFUSED
        );
        assert!(
            t.elapsed() >= Duration::from_secs(1) + grace,
            "{:?}",
            t.elapsed()
        );
    }
}
