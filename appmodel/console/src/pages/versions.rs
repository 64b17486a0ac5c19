//! `/versions`: the imported versions and the revision history (`appmodel versions`,
//! `appmodel history`), each change a link to its plan.

use appmodel_importer::deploy::{Deployment, Status};
use appmodel_importer::lifecycle;

use super::{word, PageError};
use crate::html::{esc, page, table};
use crate::http::{encode, Resp};
use crate::Ctx;

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    let app = lifecycle::resolve_app(&site, ctx.app())?;
    let dep = Deployment::new(&site, &app);
    let current = dep.current()?;
    let records: Vec<_> = site
        .store()
        .records()
        .map_err(appmodel_importer::ImportError::from)?
        .into_iter()
        .filter(|r| r.app == app)
        .collect();
    let mut body = String::new();
    let rows: Vec<Vec<String>> = records
        .iter()
        .rev()
        .map(|r| {
            let v = r.version.to_string();
            let q = encode(&v);
            let action = match &current {
                None => format!(r#"<a href="/plan?action=install&amp;version={q}">Plan install</a>"#),
                Some(c) if c.version == r.version => "runs now".to_string(),
                Some(c) if c.version < r.version => format!(
                    r#"<a href="/plan?action=upgrade&amp;version={q}">Plan upgrade to {}</a>"#,
                    esc(&v)
                ),
                Some(_) => format!(
                    r#"<a href="/plan?action=upgrade&amp;version={q}&amp;allow_downgrade=yes">Plan downgrade to {}</a>"#,
                    esc(&v)
                ),
            };
            vec![
                esc(&v),
                esc(&r.published_at),
                format!("{}", r.model.components.len()),
                format!(r#"{action} · <a href="/config?version={q}">Configure</a>"#),
            ]
        })
        .collect();
    body.push_str("<h2>Imported versions</h2>");
    body.push_str(&table(
        "imported versions",
        &["Version", "Published", "Components", "Change"],
        &rows,
    ));
    let history = dep.history()?;
    if !history.is_empty() {
        let rows: Vec<Vec<String>> = history
            .iter()
            .rev()
            .map(|r| {
                let mut note = match (r.rollback_to, &r.message) {
                    (_, Some(m)) => m.clone(),
                    (Some(to), None) => format!("back to revision {to}"),
                    (None, None) => String::new(),
                };
                for w in r.waivers.iter().chain(&r.warnings) {
                    if !note.is_empty() {
                        note.push_str("; ");
                    }
                    note.push_str(w);
                }
                let can_return = current.as_ref().is_some_and(|c| c.number != r.number)
                    && matches!(r.status, Status::Superseded | Status::RolledBack);
                let change = if can_return {
                    format!(
                        r#"<a href="/plan?action=rollback&amp;revision={0}">Plan rollback to revision {0}</a>"#,
                        r.number
                    )
                } else {
                    String::new()
                };
                vec![
                    r.number.to_string(),
                    esc(r.version.as_ref()),
                    esc(&word(&r.action)),
                    format!(r#"<span class="status-{0}">{0}</span>"#, esc(r.status.as_str())),
                    esc(&r.created_at),
                    esc(&note),
                    change,
                ]
            })
            .collect();
        body.push_str("<h2>History</h2>");
        body.push_str(&table(
            "revision history",
            &[
                "Revision", "Version", "Action", "Status", "Created", "Note", "Change",
            ],
            &rows,
        ));
    }
    Ok(Resp::html(200, page("Versions", "/versions", &body)))
}
