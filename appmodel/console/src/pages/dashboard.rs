//! `/`: what runs (`appmodel status`), the licence, the recent jobs.

use appmodel_importer::{lifecycle, ImportError};

use super::{word, PageError};
use crate::html::{esc, facts, form, page, table};
use crate::http::Resp;
use crate::Ctx;

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    let mut body = String::new();
    match lifecycle::status(&site, ctx.app()) {
        Err(ImportError::NothingImported) => body.push_str(
            r#"<p>Nothing is imported on this site yet. <a href="/import">Import a bundle</a> from a disc, a stick or a directory.</p>"#,
        ),
        Err(e) => return Err(e.into()),
        Ok(s) => {
            if let Some(j) = &s.interrupted {
                body.push_str(&format!(
                    r#"<p class="warning" role="status">A {} to revision {} stopped at step {}: the next change finishes or reverts it.</p>"#,
                    esc(&word(&j.action)),
                    j.revision,
                    esc(&format!("{:?}", j.step))
                ));
            }
            match &s.revision {
                None => body.push_str(&format!(
                    r#"<p>{} is imported but not installed. <a href="/versions">Choose a version to install</a>.</p>"#,
                    esc(&s.app)
                )),
                Some(r) => {
                    body.push_str(&facts(&[
                        ("App", esc(&s.app)),
                        ("Version", esc(r.version.as_ref())),
                        ("Revision", format!("{} ({})", r.number, esc(r.status.as_str()))),
                        ("Form", esc(r.form.as_str())),
                        ("Since", esc(&r.created_at)),
                    ]));
                    let rows: Vec<Vec<String>> = s
                        .components
                        .iter()
                        .map(|c| {
                            let health = word(&c.health);
                            vec![
                                esc(&c.component),
                                esc(&c.state),
                                format!(r#"<span class="health-{0}">{0}</span>"#, esc(&health)),
                                esc(c.image.as_deref().unwrap_or("-")),
                            ]
                        })
                        .collect();
                    body.push_str("<h2>Components</h2>");
                    body.push_str(&table(
                        "components",
                        &["Component", "State", "Health", "Image or binary"],
                        &rows,
                    ));
                }
            }
            if let Some(l) = &s.licence {
                body.push_str(&format!(
                    r#"<h2>Licence</h2><p id="licence-state">{}. <a href="/licence">Licence page</a></p>"#,
                    esc(&l.standing.summary())
                ));
            }
        }
    }
    let jobs = ctx.console.jobs.recent();
    if !jobs.is_empty() {
        let rows: Vec<Vec<String>> = jobs
            .iter()
            .take(10)
            .map(|j| {
                let state = match &j.finished {
                    None => "running",
                    Some(crate::jobs::Finished::Ok { .. }) => "done",
                    Some(crate::jobs::Finished::Failed { .. }) => "failed",
                };
                vec![
                    format!(r#"<a href="/jobs/{}">{}</a>"#, j.id, j.id),
                    esc(&j.title),
                    state.to_string(),
                ]
            })
            .collect();
        body.push_str("<h2>Recent operations</h2>");
        body.push_str(&table(
            "recent operations",
            &["Job", "What", "State"],
            &rows,
        ));
    }
    body.push_str(&form(
        "/logout",
        ctx.session,
        r#"<button type="submit" class="secondary">Log out</button>"#,
    ));
    Ok(Resp::html(200, page("Dashboard", "/", &body)))
}
