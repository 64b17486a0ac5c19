//! `/plan`: the plan of an install, upgrade or rollback (the CLI's `--dry-run`), read
//! before a confirm button applies exactly that plan. The button carries the plan's digest;
//! when the site changed in between, the plan is shown again instead of applied.

use appmodel_importer::lifecycle::{self, ChangeOptions, Outcome};
use appmodel_importer::preflight::Verdict;
use appmodel_importer::{ImportError, Site};
use sha2::{Digest, Sha256};

use super::{chain, start_job, PageError};
use crate::html::{esc, form, page};
use crate::http::Resp;
use crate::Ctx;

/// What the person asked for, from the query (GET) or the confirm form (POST).
#[derive(Debug, Clone)]
struct Asked {
    action: String,
    version: Option<String>,
    revision: Option<u32>,
    draft: bool,
    allow_downgrade: bool,
}

impl Asked {
    fn read(get: impl Fn(&str) -> Option<String>) -> Result<Asked, PageError> {
        let action = get("action").unwrap_or_default();
        if !["install", "upgrade", "rollback"].contains(&action.as_str()) {
            return Err(PageError::bad(format!(
                "`{action}` is not a change: install, upgrade or rollback"
            )));
        }
        let revision = match get("revision") {
            None => None,
            Some(r) => Some(r.parse::<u32>().map_err(|_| {
                PageError::bad(format!("the revision `{r}` is not a revision number"))
            })?),
        };
        Ok(Asked {
            action,
            version: get("version"),
            revision,
            draft: get("config").as_deref() == Some("draft"),
            allow_downgrade: get("allow_downgrade").as_deref() == Some("yes"),
        })
    }

    /// Runs the change: a dry run unless `apply`.
    fn run(&self, site: &Site, app: Option<&str>, apply: bool) -> Result<Outcome, ImportError> {
        let draft = if self.draft {
            let app = lifecycle::resolve_app(site, app)?;
            Some(super::config::draft_path(site, &app))
        } else {
            None
        };
        let opts = ChangeOptions {
            app,
            version: self.version.as_deref(),
            config: draft.as_deref(),
            keep: lifecycle::DEFAULT_KEEP,
            dry_run: !apply,
            allow_downgrade: self.allow_downgrade,
            ignore_checks: &[],
            preflight_only: false,
        };
        match self.action.as_str() {
            "install" => lifecycle::install(site, &opts),
            "upgrade" => lifecycle::upgrade(site, &opts),
            _ => lifecycle::rollback(site, app, self.revision, &opts),
        }
    }

    fn hidden(&self) -> String {
        let mut out = format!(
            r#"<input type="hidden" name="action" value="{}">"#,
            esc(&self.action)
        );
        if let Some(v) = &self.version {
            out.push_str(&format!(
                r#"<input type="hidden" name="version" value="{}">"#,
                esc(v)
            ));
        }
        if let Some(r) = self.revision {
            out.push_str(&format!(
                r#"<input type="hidden" name="revision" value="{r}">"#
            ));
        }
        if self.draft {
            out.push_str(r#"<input type="hidden" name="config" value="draft">"#);
        }
        if self.allow_downgrade {
            out.push_str(r#"<input type="hidden" name="allow_downgrade" value="yes">"#);
        }
        out
    }
}

/// The digest of what the plan changes (its checks' measurements, which move by the
/// second, left out).
fn digest(outcome: &Outcome) -> String {
    let mut v = serde_json::to_value(&outcome.plan).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("preflight");
    }
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn render(ctx: &Ctx, asked: &Asked, outcome: &Outcome, note: &str) -> String {
    let Some(plan) = &outcome.plan else {
        return format!(
            r#"<p role="status">{} {} is the newest imported version and runs already (revision {}): there is nothing to change.</p><p><a href="/versions">Versions</a></p>"#,
            esc(&outcome.revision.app),
            esc(outcome.revision.version.as_ref()),
            outcome.revision.number
        );
    };
    let mut body = String::new();
    if !note.is_empty() {
        body.push_str(&format!(
            r#"<p class="warning" role="alert">{}</p>"#,
            esc(note)
        ));
    }
    body.push_str(&format!(
        r#"<p class="headline" id="plan-headline">{}: {}</p>"#,
        esc(&asked.action),
        esc(&plan.headline())
    ));
    let items: String = plan
        .lines()
        .iter()
        .map(|(label, text)| format!("<dt>{}</dt><dd>{}</dd>", esc(label), esc(text)))
        .collect();
    if items.is_empty() {
        body.push_str("<p>Nothing else changes.</p>");
    } else {
        body.push_str(&format!(r#"<dl id="plan">{items}</dl>"#));
    }
    let failed = plan.preflight.iter().any(|c| c.result == Verdict::Fail);
    if !plan.preflight.is_empty() {
        body.push_str("<h2>Preflight</h2>");
        body.push_str(&super::preflight::checks_table(&plan.preflight));
    }
    if failed {
        body.push_str(r#"<p class="error" role="alert">A preflight check failed: the change would stop there. Fix what it says, then read the plan again (or waive a check that is not strict with <code>--ignore-check</code> on the CLI).</p>"#);
    } else {
        let inner = format!(
            r#"{}<input type="hidden" name="plan" value="{}"><button type="submit" id="apply">Apply this plan</button>"#,
            asked.hidden(),
            digest(outcome)
        );
        body.push_str(&form("/plan", ctx.session, &inner));
    }
    body
}

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let asked = Asked::read(|k| ctx.req.arg(k).map(str::to_string))?;
    let site = ctx.site()?;
    let outcome = asked.run(&site, ctx.app(), false)?;
    let body = render(ctx, &asked, &outcome, "");
    Ok(Resp::html(200, page("Plan", "/versions", &body)))
}

pub fn post(ctx: &Ctx) -> Result<Resp, PageError> {
    let field = |k: &str| Some(ctx.req.field(k).to_string()).filter(|v| !v.is_empty());
    let asked = Asked::read(field)?;
    let site = ctx.site()?;
    let now = asked.run(&site, ctx.app(), false)?;
    if now.plan.is_none() || digest(&now) != ctx.req.field("plan") {
        let body = render(
            ctx,
            &asked,
            &now,
            "the site changed since this plan was read: here is the plan as it is now; nothing was applied",
        );
        return Ok(Resp::html(409, page("Plan", "/versions", &body)));
    }
    let root = ctx.console.site_root.clone();
    let app = ctx.console.app.clone();
    let title = now
        .plan
        .as_ref()
        .map(|p| format!("{} {}", asked.action, p.headline()))
        .unwrap_or_default();
    start_job(ctx, title, move || {
        let site = Site::open(&root).map_err(|e| chain(&e))?;
        let outcome = asked
            .run(&site, app.as_deref(), true)
            .map_err(|e| chain(&e))?;
        serde_json::to_value(&outcome).map_err(|e| e.to_string())
    })
}
