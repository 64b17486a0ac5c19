//! Crash points for tests: with the `fault-injection` feature (never in a shipped build),
//! `APPMODEL_CRASH_AT=NAME` kills the process at the point called NAME, as a power cut
//! or `kill -9` would: no destructor runs, no file is flushed, the lock is freed by the
//! kernel. Points are named `<action>-<step>` (`upgrade-stopping`) at every journal step,
//! and a few between steps (see `crate::lifecycle`).

/// A crash point. Does nothing unless built with `fault-injection` and asked for.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("APPMODEL_CRASH_AT").is_ok_and(|want| want.eq_ignore_ascii_case(name)) {
        eprintln!("fault-injection: crashing at `{name}`");
        std::process::abort();
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}
