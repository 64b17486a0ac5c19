//! Crash points for tests: with the `fault-injection` feature (never in a shipped build),
//! `APPMODEL_CRASH_AT=NAME` kills the process at the point called NAME, as a power cut
//! or `kill -9` would: no destructor runs, no file is flushed, the lock is freed by the
//! kernel. Points are named `<action>-<step>` (`upgrade-stopping`) at every journal step,
//! and a few between steps (see `crate::lifecycle`).

/// A crash point. Does nothing unless built with `fault-injection` and asked for.
/// `APPMODEL_PAUSE_AT=NAME` stops there for good instead (holding what the process holds,
/// e.g. the state lock), for tests of what a second command sees.
#[inline]
pub fn point(name: &str) {
    // Unit tests crash in-process: a panic at the point, caught by the test (the state
    // machine's table test in crate::machine_tests).
    #[cfg(test)]
    if TEST_CRASH.with(|c| {
        c.borrow()
            .as_deref()
            .is_some_and(|w| w.eq_ignore_ascii_case(name))
    }) {
        panic!("crash at `{}`", name.to_lowercase());
    }
    #[cfg(feature = "fault-injection")]
    {
        let asked = |var: &str| std::env::var(var).is_ok_and(|w| w.eq_ignore_ascii_case(name));
        if asked("APPMODEL_CRASH_AT") {
            eprintln!("fault-injection: crashing at `{}`", name.to_lowercase());
            std::process::abort();
        }
        if asked("APPMODEL_PAUSE_AT") {
            eprintln!("fault-injection: pausing at `{}`", name.to_lowercase());
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

#[cfg(test)]
thread_local! {
    /// The point at which this test thread's next change "crashes" (panics).
    pub(crate) static TEST_CRASH: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// The time licence checks take as now: the real clock, or `APPMODEL_TEST_NOW` (seconds
/// since the epoch) in a `fault-injection` build, so tests move time without touching the
/// machine's clock.
pub fn now() -> u64 {
    #[cfg(feature = "fault-injection")]
    if let Some(t) = std::env::var("APPMODEL_TEST_NOW")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        return t;
    }
    appmodel_licence::now()
}

/// `t` of [`now`]'s clock on the real clock: itself, except under `APPMODEL_TEST_NOW`,
/// for what processes that do not see the test's clock read (the containers' licence gate).
pub fn real_time(t: u64) -> u64 {
    (t + appmodel_licence::now()).saturating_sub(now())
}

/// The root host identifiers are read under: `/`, or `APPMODEL_HOST_ROOT` in a
/// `fault-injection` build (a fake sysfs for tests of a changed NIC).
pub fn host_root() -> std::path::PathBuf {
    #[cfg(feature = "fault-injection")]
    if let Some(root) = std::env::var_os("APPMODEL_HOST_ROOT") {
        return root.into();
    }
    std::path::PathBuf::from("/")
}
