//! `/preflight`: every check of a version on this host (`appmodel preflight [VERSION]`).

use appmodel_importer::lifecycle::{self, ChangeOptions};

use super::PageError;
use crate::html::{esc, page, table};
use crate::http::Resp;
use crate::Ctx;

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    let opts = ChangeOptions {
        app: ctx.app(),
        version: ctx.req.arg("version"),
        config: None,
        keep: lifecycle::DEFAULT_KEEP,
        dry_run: true,
        allow_downgrade: false,
        ignore_checks: &[],
        preflight_only: true,
    };
    let body = match lifecycle::preflight(&site, &opts)? {
        None => "<p>Nothing to check: the newest imported version runs already. Name a version (<code>/preflight?version=X</code>) to check it again.</p>".to_string(),
        Some(plan) => {
            let rows: Vec<Vec<String>> = plan
                .preflight
                .iter()
                .map(|c| {
                    vec![
                        esc(&c.name),
                        format!(r#"<span class="verdict-{0}">{0}</span>"#, esc(c.result.as_str())),
                        esc(&c.found),
                        esc(&c.needed),
                        esc(c.fix.as_deref().unwrap_or("")),
                    ]
                })
                .collect();
            format!(
                "<p>{} {} ({} form) on this host:</p>{}",
                esc(&plan.app),
                esc(plan.to_version.as_ref()),
                esc(plan.form.as_str()),
                table("preflight checks", &["Check", "Result", "Found", "Needed", "Fix"], &rows)
            )
        }
    };
    Ok(Resp::html(200, page("Preflight", "/preflight", &body)))
}
