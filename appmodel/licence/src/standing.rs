//! Where a site stands: the ladder trial | valid → warn → grace → stopped, from the licence,
//! the host, the model's policy and the guarded clock. Pure: the same inputs give the same
//! standing, so every rung is unit-tested with times given, not waited for.

use std::collections::BTreeMap;

use appmodel_model::record::rfc3339;
use appmodel_model::types::{LicencePolicy, Scalar};
use serde::Serialize;

use crate::clock::TOLERANCE;
use crate::host::Match;
use crate::{Licence, DAY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// No licence, within the model's trial.
    Trial,
    Valid,
    /// Valid, expiry near.
    Warn,
    /// Expired, within grace: the app runs, upgrades to versions published after the
    /// expiry are refused.
    Grace,
    /// The app must not run.
    Stopped,
}

impl Stage {
    pub fn runs(self) -> bool {
        self != Stage::Stopped
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Trial => "trial",
            Stage::Valid => "valid",
            Stage::Warn => "warn",
            Stage::Grace => "grace",
            Stage::Stopped => "stopped",
        }
    }
}

/// The standing, for the importer to act on and for a person to read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    pub stage: Stage,
    /// One sentence: why this stage.
    pub reason: String,
    /// The plan whose entitlements apply (the licence's, or the trial's).
    pub plan: Option<String>,
    pub entitlements: BTreeMap<String, Scalar>,
    /// When the current stage ends (the next rung), seconds since the epoch.
    pub until: Option<u64>,
    /// Whole days until `until`.
    pub days_left: Option<u64>,
    /// Versions published after this time are not covered (the licence's expiry).
    pub covers_until: Option<u64>,
    /// When the app stops unless a licence is activated: the end of the trial or of the
    /// licence's grace; none when it is stopped already.
    pub stops_at: Option<u64>,
}

/// The line a person reads: `warn, 12 days left — the licence expires on 2026-12-20`.
pub fn summary(stage: Stage, days_left: Option<u64>, reason: &str) -> String {
    let days = days_left
        .map(|d| format!(", {d} days left"))
        .unwrap_or_default();
    format!("{}{days} — {reason}", stage.as_str())
}

impl Standing {
    /// [`summary`] of this standing.
    pub fn summary(&self) -> String {
        summary(self.stage, self.days_left, &self.reason)
    }
}

/// What [`evaluate`] needs.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub policy: &'a LicencePolicy,
    /// The active licence, already verified against the vendor key and the app.
    pub licence: Option<&'a Licence>,
    /// How this host compares with the licence's binding.
    pub host: Option<Match>,
    pub now: u64,
    /// The newest trusted time: the clock record, the licence's issue time, the version's
    /// publication, timesyncd's clock file.
    pub trusted: u64,
    /// Both clock records are missing or forged.
    pub clock_lost: bool,
    /// When the app was first installed here (the trial's start).
    pub installed_at: u64,
}

fn date(secs: u64) -> String {
    rfc3339(secs)[..10].to_string()
}

/// The last day before an end instant: a licence to 2027-12-31 ends at 2028-01-01T00:00Z.
fn last_day(end: u64) -> String {
    date(end.saturating_sub(1))
}

fn hours(secs: u64) -> String {
    if secs >= 2 * DAY {
        format!("{} days", secs / DAY)
    } else {
        format!("{} hours", secs.div_ceil(3600))
    }
}

pub fn evaluate(i: &Inputs<'_>) -> Standing {
    let trial_plan = i.policy.trial.as_ref().map(|t| t.plan.clone());
    let (plan, entitlements) = match (i.licence, &trial_plan) {
        (Some(l), _) => (Some(l.plan.clone()), l.entitlements.clone()),
        (None, Some(p)) => (
            Some(p.clone()),
            i.policy.plans.get(p).cloned().unwrap_or_default(),
        ),
        (None, None) => (None, BTreeMap::new()),
    };
    let standing = |stage: Stage, reason: String, until: Option<u64>| Standing {
        stage,
        reason,
        plan: plan.clone(),
        entitlements: entitlements.clone(),
        until,
        days_left: until.map(|u| u.saturating_sub(i.now) / DAY),
        covers_until: i.licence.map(|l| l.expires),
        stops_at: match stage {
            Stage::Stopped => None,
            Stage::Trial => until,
            _ => i.licence.map(|l| l.stops),
        },
    };
    if i.now + TOLERANCE < i.trusted {
        return standing(
            Stage::Stopped,
            format!(
                "the clock is {} behind the last trusted time ({}); the licence counts as expired until the clock is right",
                hours(i.trusted - i.now),
                rfc3339(i.trusted)
            ),
            None,
        );
    }
    if i.clock_lost {
        return standing(
            Stage::Stopped,
            "the licence's clock record is missing or was changed; activate the licence again"
                .into(),
            None,
        );
    }
    if let Some(l) = i.licence {
        if let Some(m) = i.host.as_ref().filter(|m| !m.holds()) {
            return standing(
                Stage::Stopped,
                format!(
                    "the licence is bound to another host (changed: {}); ask the vendor to move it",
                    m.describe()
                ),
                None,
            );
        }
        if i.now >= l.not_before {
            let (stage, reason, until) = if i.now < l.warn_from {
                (
                    Stage::Valid,
                    format!("licensed to {} to {}", l.customer, last_day(l.expires)),
                    l.expires,
                )
            } else if i.now < l.expires {
                (
                    Stage::Warn,
                    format!("the licence ends after {}", last_day(l.expires)),
                    l.expires,
                )
            } else if i.now < l.stops {
                (
                    Stage::Grace,
                    format!(
                        "the licence ended after {}; the app stops after {} unless a renewed licence is activated",
                        last_day(l.expires),
                        last_day(l.stops)
                    ),
                    l.stops,
                )
            } else {
                return standing(
                    Stage::Stopped,
                    format!(
                        "the licence ended after {} and its grace after {}",
                        last_day(l.expires),
                        last_day(l.stops)
                    ),
                    None,
                );
            };
            return standing(stage, reason, Some(until));
        }
    }
    let not_yet = i
        .licence
        .map(|l| format!(" (the licence starts on {})", date(l.not_before)))
        .unwrap_or_default();
    match &i.policy.trial {
        Some(t) => {
            let end = i.installed_at + u64::from(t.days) * DAY;
            if i.now < end {
                standing(
                    Stage::Trial,
                    format!("trial to {}{not_yet}", last_day(end)),
                    Some(end),
                )
            } else {
                standing(
                    Stage::Stopped,
                    format!("the trial ended after {}{not_yet}", last_day(end)),
                    None,
                )
            }
        }
        None => standing(
            Stage::Stopped,
            format!("no licence is active{not_yet}"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::tests::{code, policy, terms};
    use crate::host::Kind;
    use appmodel_model::types::Trial;
    use appmodel_signing::KeyPair;

    fn licence() -> (LicencePolicy, Licence) {
        let pair = KeyPair::generate("t").unwrap();
        let p = policy(&pair);
        let text = crate::issue(&p, &code(), &terms(1), pair.secret_key()).unwrap();
        let l = Licence::verify(&text, "t", &pair.public_key(), "im-stack").unwrap();
        (p, l)
    }

    fn at<'a>(p: &'a LicencePolicy, l: Option<&'a Licence>, now: u64) -> Inputs<'a> {
        Inputs {
            policy: p,
            licence: l,
            host: None,
            now,
            trusted: 0,
            clock_lost: false,
            installed_at: 900 * DAY,
        }
    }

    #[test]
    fn the_ladder_from_valid_to_stopped() {
        let (p, l) = licence();
        let stage = |now| evaluate(&at(&p, Some(&l), now)).stage;
        assert_eq!(stage(1_500 * DAY), Stage::Valid);
        assert_eq!(stage(1_980 * DAY), Stage::Warn);
        assert_eq!(stage(2_005 * DAY), Stage::Grace);
        assert_eq!(stage(2_014 * DAY), Stage::Stopped);
        // Before not_before and no trial: nothing is active.
        let s = evaluate(&at(&p, Some(&l), 999 * DAY));
        assert_eq!(s.stage, Stage::Stopped);
        assert!(s.reason.contains("starts on"), "{}", s.reason);
        let s = evaluate(&at(&p, Some(&l), 1_990 * DAY));
        assert_eq!((s.days_left, s.plan.as_deref()), (Some(10), Some("pro")));
        assert_eq!(s.entitlements["max_users"], Scalar::Int(1000));
    }

    #[test]
    fn a_trial_runs_for_its_days_with_its_plan() {
        let (mut p, _) = licence();
        p.trial = Some(Trial {
            days: 30,
            plan: "standard".into(),
        });
        let s = evaluate(&at(&p, None, 910 * DAY));
        assert_eq!((s.stage, s.days_left), (Stage::Trial, Some(20)));
        assert_eq!(s.entitlements["max_users"], Scalar::Int(100));
        assert_eq!(evaluate(&at(&p, None, 930 * DAY)).stage, Stage::Stopped);
        p.trial = None;
        assert_eq!(evaluate(&at(&p, None, 910 * DAY)).stage, Stage::Stopped);
    }

    #[test]
    fn a_clock_set_back_or_a_lost_record_stops_and_heals_when_the_clock_catches_up() {
        let (p, l) = licence();
        let mut i = at(&p, Some(&l), 1_500 * DAY);
        i.trusted = 1_500 * DAY + 2 * 3600;
        let s = evaluate(&i);
        assert_eq!(s.stage, Stage::Stopped);
        assert!(s.reason.contains("2 hours behind"), "{}", s.reason);
        i.trusted = 1_500 * DAY + 3000;
        assert_eq!(
            evaluate(&i).stage,
            Stage::Valid,
            "within the hour's tolerance"
        );
        i.now = 0;
        i.trusted = 1_500 * DAY;
        assert!(evaluate(&i).reason.contains("1500 days behind"));
        let mut i = at(&p, Some(&l), 1_500 * DAY);
        i.clock_lost = true;
        assert_eq!(evaluate(&i).stage, Stage::Stopped);
    }

    #[test]
    fn another_host_stops_and_names_what_changed() {
        let (p, l) = licence();
        let mut i = at(&p, Some(&l), 1_500 * DAY);
        let mut here = l.host.fingerprint().unwrap();
        here.ids = vec![(Kind::MachineId, [0; crate::host::HASH_LEN])];
        i.host = Some(here.compare(&l.host.fingerprint().unwrap()));
        let s = evaluate(&i);
        assert_eq!(s.stage, Stage::Stopped);
        assert!(s.reason.contains("changed: machine-id"), "{}", s.reason);
    }
}
