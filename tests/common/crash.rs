//! The crash-point matrix, the same for every form: install, upgrade and rollback are
//! killed (abort, as a power cut leaves them) at every crash point of the `fault-injection`
//! build; the next command must finish or revert the change, leave exactly one revision
//! deployed, tell the truth in history and keep every acknowledged message.

use super::Run;

/// What the matrix needs of a site with the sample's 1.0.0 and 1.1.0 imported.
pub trait CrashSite {
    /// Runs `appmodel ARGS` built with crash points, asking it to crash at `point`, and
    /// checks it died there.
    fn crash(&self, point: &str, args: &[&str]);
    /// Runs the shipped `appmodel ARGS`.
    fn run(&self, args: &[&str]) -> Run;
    /// The running version; every component must be healthy.
    fn running_version(&self) -> String;
    fn journal_exists(&self) -> bool;
    /// Runs the sample's probe (`write N`, `verify`) and returns its output.
    fn probe(&self, args: &[&str]) -> String;
    /// The site configuration file for `install`.
    fn config(&self) -> String;
}

pub const INSTALL_POINTS: [&str; 4] = [
    "install-prepared",
    "install-starting",
    "install-started",
    "install-deployed",
];
pub const UPGRADE_POINTS: [&str; 8] = [
    "upgrade-prepared",
    "upgrade-stopping",
    "upgrade-stopped",
    "upgrade-snapshotted",
    "upgrade-starting",
    "upgrade-started",
    "upgrade-superseded",
    "upgrade-deployed",
];
pub const ROLLBACK_POINTS: [&str; 9] = [
    "rollback-prepared",
    "rollback-stopping",
    "rollback-stopped",
    "rollback-snapshotted",
    "rollback-starting",
    "rollback-restored",
    "rollback-started",
    "rollback-superseded",
    "rollback-deployed",
];
/// The points after which the new revision is recorded as deployed: finished, not reverted.
const FINISHED: [&str; 3] = ["install-deployed", "upgrade-deployed", "rollback-deployed"];

fn ok(site: &dyn CrashSite, args: &[&str]) -> Run {
    let run = site.run(args);
    assert_eq!(run.code, 0, "appmodel {args:?}:\n{}", run.transcript());
    run
}

fn history(site: &dyn CrashSite) -> Vec<serde_json::Value> {
    let run = ok(site, &["history", "--json"]);
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Exactly one revision is deployed, it is `version` and healthy, no change is pending.
fn one_deployed(site: &dyn CrashSite, version: &str, after: &str) {
    let h = history(site);
    let deployed: Vec<_> = h.iter().filter(|r| r["status"] == "deployed").collect();
    assert_eq!(deployed.len(), 1, "after {after}: {h:?}");
    assert_eq!(deployed[0]["version"], version, "after {after}: {h:?}");
    assert_eq!(site.running_version(), version, "after {after}");
    assert!(!site.journal_exists(), "after {after}");
}

fn interrupted(site: &dyn CrashSite, point: &str, action: &str) {
    let status = ok(site, &["status"]);
    assert!(
        status.stdout.contains(&format!("interrupted: {action}")),
        "`status` after a crash at {point}: {}",
        status.stdout
    );
}

fn verified(site: &dyn CrashSite, acked: usize, after: &str) {
    let out = site.probe(&["verify"]);
    assert!(
        out.contains(&format!("verified {acked} messages, 0 missing")),
        "after {after}: {out}"
    );
}

/// Runs the whole matrix; returns the number of crash points covered (21).
pub fn every_crash_point(site: &dyn CrashSite) -> usize {
    let config = site.config();
    let install = ["install", "--version", "1.0.0", "--config", config.as_str()];
    let mut covered = 0;
    let mut acked = 0;
    for point in INSTALL_POINTS {
        site.crash(point, &install);
        interrupted(site, point, "Install");
        let run = site.run(&install);
        if FINISHED.contains(&point) {
            run.assert_refused("is installed already");
        } else {
            assert_eq!(run.code, 0, "{point}: {}", run.transcript());
        }
        one_deployed(site, "1.0.0", point);
        site.probe(&["write", "5"]);
        acked += 5;
        ok(site, &["uninstall", "--keep-data"]);
        covered += 1;
    }
    ok(site, &install);
    verified(site, acked, "the install points");

    for (i, rollback_point) in ROLLBACK_POINTS.iter().enumerate() {
        // 1.0.0 -> 1.1.0, crashing at the next upgrade point (the last round plainly).
        if let Some(point) = UPGRADE_POINTS.get(i) {
            site.crash(point, &["upgrade"]);
            interrupted(site, point, "Upgrade");
            covered += 1;
        }
        ok(site, &["upgrade"]);
        let after = UPGRADE_POINTS.get(i).copied().unwrap_or("a plain upgrade");
        one_deployed(site, "1.1.0", after);
        verified(site, acked, after);

        // 1.1.0 -> 1.0.0 with its data, crashing at the next rollback point.
        site.crash(rollback_point, &["rollback"]);
        interrupted(site, rollback_point, "Rollback");
        covered += 1;
        if FINISHED.contains(rollback_point) {
            // The rollback was complete; any changing command finishes it.
            ok(site, &["uninstall", "--keep-data"]);
            ok(site, &install);
        } else {
            ok(site, &["rollback"]);
        }
        one_deployed(site, "1.0.0", rollback_point);
        verified(site, acked, rollback_point);
        site.probe(&["write", "2"]);
        acked += 2;
    }

    // No replay: once 1.1.0 ran, the old, validly signed 1.0.0 is not brought back by
    // `upgrade`; `rollback` is the way back.
    ok(site, &["upgrade"]);
    site.run(&["upgrade", "1.0.0"])
        .assert_refused("im-stack 1.0.0 is older than 1.1.0, which this site has run (revision ");
    one_deployed(site, "1.1.0", "a refused downgrade");
    verified(site, acked, "a refused downgrade");

    // History tells the truth: every crashed change that was not finished is failed, with
    // the step it was interrupted at.
    let failed = history(site)
        .iter()
        .filter(|r| {
            r["status"] == "failed"
                && r["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("interrupted during "))
        })
        .count();
    let points = INSTALL_POINTS.len() + UPGRADE_POINTS.len() + ROLLBACK_POINTS.len();
    assert_eq!(failed, points - FINISHED.len());
    let run = ok(site, &["history"]);
    assert!(
        run.stdout.contains(
            "interrupted during upgrade (step snapshotted); reverted by the next command"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(covered, points);
    covered
}
