//! `/preflight`: every check of a version on this host (`appmodel preflight [VERSION]`).

use appmodel_importer::lifecycle::{self, ChangeOptions};
use appmodel_importer::preflight::Check;

use super::PageError;
use crate::html::{esc, page, table};
use crate::http::Resp;
use crate::Ctx;

/// The checks as a table: check, result, found, needed, fix.
pub fn checks_table(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                esc(&c.name),
                format!(
                    r#"<span class="verdict-{0}">{0}</span>"#,
                    esc(c.result.as_str())
                ),
                esc(&c.found),
                esc(&c.needed),
                esc(c.fix.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    table(
        "preflight checks",
        &["Check", "Result", "Found", "Needed", "Fix"],
        &rows,
    )
}

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    // The configuration page's draft, when there is one (an install needs a configuration).
    let draft = super::config::draft_path(&site, &lifecycle::resolve_app(&site, ctx.app())?);
    let opts = ChangeOptions {
        app: ctx.app(),
        version: ctx.req.arg("version"),
        config: draft.is_file().then_some(draft.as_path()),
        keep: lifecycle::DEFAULT_KEEP,
        dry_run: true,
        allow_downgrade: false,
        ignore_checks: &[],
        preflight_only: true,
    };
    let body = match lifecycle::preflight(&site, &opts)? {
        None => "<p>Nothing to check: the newest imported version runs already. Name a version (<code>/preflight?version=X</code>) to check it again.</p>".to_string(),
        Some(plan) => format!(
            "<p>{} {} ({} form) on this host:</p>{}",
            esc(&plan.app),
            esc(plan.to_version.as_ref()),
            esc(plan.form.as_str()),
            checks_table(&plan.preflight)
        ),
    };
    Ok(Resp::html(200, page("Preflight", "/preflight", &body)))
}
