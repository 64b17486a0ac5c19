//! The site commands: install, upgrade, rollback, status, history, uninstall, probe.

use std::time::Duration;

use anyhow::Result;
use appmodel_importer::lifecycle::{self, ChangeOptions, Outcome};
use appmodel_importer::plan::Plan;
use appmodel_importer::preflight::{Check, Verdict};
use appmodel_importer::Site;

use crate::args::{
    ChangeArgs, InstallArgs, PreflightArgs, ProbeArgs, RollbackArgs, SiteArgs, UninstallArgs,
    UpgradeArgs,
};
use crate::output::{print_json, Reported, UserError};

fn open(args: &SiteArgs) -> Result<Site> {
    Ok(Site::open(&args.state.state_dir)?)
}

/// Prints what a change did, or on a dry run its plan.
fn report(outcome: &Outcome, json: bool, verb: &str) -> Result<()> {
    if json {
        return print_json(outcome);
    }
    if outcome.dry_run {
        if let Some(plan) = &outcome.plan {
            print_plan(plan);
        }
        println!("dry run: nothing changed");
        return Ok(());
    }
    let r = &outcome.revision;
    println!(
        "{verb} {} {}: revision {} ({}) is running",
        r.app,
        r.version,
        r.number,
        r.status.as_str()
    );
    if let Some(l) = outcome.plan.as_ref().and_then(|p| p.licence.as_ref()) {
        println!(
            "licence: {}",
            appmodel_licence::standing::summary(l.stage, l.days_left, &l.reason)
        );
    }
    Ok(())
}

fn print_plan(plan: &Plan) {
    println!("plan: {}", plan.headline());
    for (label, text) in plan.lines() {
        println!("  {label}: {text}");
    }
    // Said only when a check did not pass (`appmodel preflight` prints them all).
    if plan.preflight.iter().any(|c| c.result != Verdict::Pass) {
        let passed = plan
            .preflight
            .iter()
            .filter(|c| c.result == Verdict::Pass)
            .count();
        println!(
            "  preflight: {passed} of {} checks pass",
            plan.preflight.len()
        );
        for c in plan.preflight.iter().filter(|c| c.result != Verdict::Pass) {
            println!("    {}: {}", c.result.as_str(), c.line());
        }
    }
}

fn change_options<'a>(version: Option<&'a str>, c: &'a ChangeArgs) -> ChangeOptions<'a> {
    ChangeOptions {
        app: c.site.app.as_deref(),
        version,
        config: c.config.as_deref(),
        keep: c.keep,
        dry_run: c.dry_run,
        allow_downgrade: c.allow_downgrade,
        ignore_checks: &c.ignore_checks,
        preflight_only: false,
    }
}

/// The preflight checks as a table a person can act on: check, result, found, needed, fix.
fn print_checks(checks: &[Check]) {
    println!("{:<14} {:<8} {:<44} NEEDED", "CHECK", "RESULT", "FOUND");
    for c in checks {
        println!(
            "{:<14} {:<8} {:<44} {}",
            c.name,
            c.result.as_str(),
            c.found,
            c.needed
        );
        if let Some(fix) = &c.fix {
            println!("{:<14} {:<8} fix: {fix}", "", "");
        }
    }
}

pub fn preflight(args: &PreflightArgs) -> Result<()> {
    let site = open(&args.site)?;
    if let Some(path) = args.version.as_deref().map(std::path::Path::new) {
        if path.exists() {
            let r = lifecycle::preflight_bundle(&site, path, args.config.as_deref())?;
            if args.site.json {
                print_json(&r)?;
            } else {
                println!(
                    "preflight of {} {} ({} form, from `{}`, not imported) on this host:",
                    r.app,
                    r.version,
                    r.form,
                    path.display()
                );
                print_checks(&r.checks);
            }
            return checks_passed(&r.checks);
        }
    }
    let opts = ChangeOptions {
        app: args.site.app.as_deref(),
        version: args.version.as_deref(),
        config: args.config.as_deref(),
        keep: lifecycle::DEFAULT_KEEP,
        dry_run: true,
        allow_downgrade: false,
        ignore_checks: &[],
        preflight_only: true,
    };
    let Some(plan) = lifecycle::preflight(&site, &opts)? else {
        println!("nothing to check: the newest imported version runs already (name a version, or give --config)");
        return Ok(());
    };
    if args.site.json {
        print_json(&plan.preflight)?;
    } else {
        println!(
            "preflight of {} {} ({} form) on this host:",
            plan.app, plan.to_version, plan.form
        );
        print_checks(&plan.preflight);
    }
    checks_passed(&plan.preflight)
}

/// Exit 1 when a check failed.
fn checks_passed(checks: &[Check]) -> Result<()> {
    if checks.iter().any(|c| c.result == Verdict::Fail) {
        return Err(UserError::new(
            "a preflight check failed: install and upgrade would stop here",
            "fix what the failed checks say; `--ignore-check NAME` on install or upgrade waives one that is not strict",
        )
        .into());
    }
    Ok(())
}

pub fn install(args: &InstallArgs) -> Result<()> {
    let c = &args.change;
    let opts = change_options(args.version.as_deref(), c);
    let outcome = lifecycle::install(&open(&c.site)?, &opts)?;
    report(&outcome, c.site.json, "installed")
}

pub fn upgrade(args: &UpgradeArgs) -> Result<()> {
    let c = &args.change;
    let opts = change_options(args.version.as_deref(), c);
    let outcome = lifecycle::upgrade(&open(&c.site)?, &opts)?;
    if c.site.json {
        return print_json(&outcome);
    }
    if outcome.unchanged {
        let r = &outcome.revision;
        println!(
            "{} {} is the newest imported version and runs already (revision {}); nothing changed",
            r.app, r.version, r.number
        );
        return Ok(());
    }
    if !outcome.dry_run {
        if let Some(plan) = &outcome.plan {
            print_plan(plan);
        }
    }
    report(&outcome, false, "upgraded")
}

pub fn rollback(args: &RollbackArgs) -> Result<()> {
    let site = open(&args.site)?;
    let opts = ChangeOptions {
        app: args.site.app.as_deref(),
        version: None,
        config: None,
        keep: args.keep,
        dry_run: args.dry_run,
        allow_downgrade: false,
        ignore_checks: &args.ignore_checks,
        preflight_only: false,
    };
    let outcome = lifecycle::rollback(&site, args.site.app.as_deref(), args.revision, &opts)?;
    report(&outcome, args.site.json, "rolled back")
}

pub fn status(args: &SiteArgs) -> Result<()> {
    let site = open(args)?;
    let s = lifecycle::status(&site, args.app.as_deref())?;
    if args.json {
        return print_json(&s);
    }
    if let Some(j) = &s.interrupted {
        println!(
            "interrupted: {:?} to revision {} stopped at step {:?}; the next install, upgrade, rollback or uninstall finishes or reverts it",
            j.action, j.revision, j.step
        );
    }
    match &s.revision {
        None => println!("{} is not installed", s.app),
        Some(r) => {
            println!(
                "{} {} — revision {} ({}, {} form)",
                s.app,
                r.version,
                r.number,
                r.status.as_str(),
                r.form
            );
            println!("{:<20} {:<10} {:<10} IMAGE", "COMPONENT", "STATE", "HEALTH");
            for c in &s.components {
                let health = serde_json::to_value(c.health)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                println!(
                    "{:<20} {:<10} {:<10} {}",
                    c.component,
                    c.state,
                    health,
                    c.image.as_deref().unwrap_or("-")
                );
            }
        }
    }
    if let Some(l) = &s.licence {
        println!("licence: {}", l.standing.summary());
    }
    Ok(())
}

pub fn history(args: &SiteArgs) -> Result<()> {
    let site = open(args)?;
    let revisions = lifecycle::history(&site, args.app.as_deref())?;
    if args.json {
        return print_json(&revisions);
    }
    println!(
        "{:<9} {:<10} {:<9} {:<12} {:<21} NOTE",
        "REVISION", "VERSION", "ACTION", "STATUS", "CREATED"
    );
    for r in revisions {
        let action = serde_json::to_value(r.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut note = match (r.rollback_to, &r.message) {
            (_, Some(m)) => m.clone(),
            (Some(to), None) => format!("back to revision {to}"),
            (None, None) => String::new(),
        };
        for w in &r.waivers {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(w);
        }
        println!(
            "{:<9} {:<10} {:<9} {:<12} {:<21} {note}",
            r.number,
            r.version,
            action,
            r.status.as_str(),
            r.created_at
        );
    }
    Ok(())
}

pub fn uninstall(args: &UninstallArgs) -> Result<()> {
    let site = open(&args.site)?;
    let r = lifecycle::uninstall(&site, args.site.app.as_deref(), args.keep_data)?;
    if args.site.json {
        return print_json(&r);
    }
    println!(
        "uninstalled {} {} (revision {}){}{}",
        r.app,
        r.version,
        r.number,
        if args.keep_data {
            "; data, snapshots and generated secrets kept"
        } else {
            "; data, snapshots and generated secrets removed"
        },
        if r.form == appmodel_model::bundle::Form::Helm {
            " (the cluster keeps the release's persistent volume claims: `kubectl delete pvc` removes them)"
        } else {
            ""
        }
    );
    Ok(())
}

pub fn probe(args: &ProbeArgs) -> Result<()> {
    match appmodel_importer::probe::probe(&args.target, Duration::from_secs(args.timeout)) {
        Ok(msg) => {
            println!("{msg}");
            Ok(())
        }
        Err(msg) => Err(Reported(msg).into()),
    }
}
