//! The programs as child processes, for the integration tests: start one with its
//! environment, wait for its `listening on` log line, stop it with SIGTERM or SIGKILL.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::client;

/// A running program whose stdout and stderr go to `<log_dir>/<name>.out` and `.err`.
pub struct Program {
    pub name: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Program {
    pub fn start(
        exe: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> Program {
        let out = log_dir.join(format!("{name}.out"));
        let err = log_dir.join(format!("{name}.err"));
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(open_log(&out))
            .stderr(open_log(&err));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        Program {
            name: name.to_string(),
            child,
            out,
            err,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the program printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits for the `listening on http://...` line and returns the URL.
    pub fn wait_listening(&mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if let Some(url) = out.lines().find_map(|l| {
                l.split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
            }) {
                return url.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before listening:\n{out}\n{}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < end,
                "{} did not start listening:\n{out}\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(20))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the program to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= end {
                self.kill();
                panic!("{} did not exit in time:\n{}", self.name, self.stdout());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Polls `url` until it answers 2xx.
pub fn wait_ok(url: &str, timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        let last = match client::get(url, Duration::from_secs(2)) {
            Ok(r) if r.is_success() => return,
            Ok(r) => format!("status {}: {}", r.status, r.message()),
            Err(e) => crate::error_chain(&e),
        };
        assert!(Instant::now() < end, "{url} not ready: {last}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_log(path: &Path) -> File {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}
