//! `/jobs/N`: one operation's steps as they happen and its outcome; `/jobs/N.json` the same
//! as data, which the page's script follows.

use super::PageError;
use crate::html::{esc, page};
use crate::http::Resp;
use crate::jobs::{Finished, JobView};
use crate::Ctx;

/// The outcome in a sentence, from the result the CLI's `--json` would print.
fn outcome(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    if let Some(r) = v.get("revision") {
        // Strings as they are, numbers as digits.
        let rs = |k: &str| match r.get(k) {
            Some(serde_json::Value::String(x)) => x.clone(),
            Some(x) => x.to_string(),
            None => String::new(),
        };
        return format!(
            "{} {}: revision {} is {}",
            rs("app"),
            rs("version"),
            rs("number"),
            rs("status")
        );
    }
    if v.get("verified_files").is_some() {
        return format!(
            "imported {} {} ({} form): {} files verified, {} new blobs",
            s("app"),
            s("version"),
            s("form"),
            v["verified_files"],
            v["new_blobs"]
        );
    }
    if let Some(stage) = v.get("stage").and_then(|x| x.as_str()) {
        return format!("licence: {stage} — {}", s("reason"));
    }
    "done".into()
}

fn render(j: &JobView) -> String {
    let lines: String = j
        .lines
        .iter()
        .map(|l| format!("<li>{}</li>", esc(l)))
        .collect();
    let (state, result) = match &j.finished {
        None => ("running", String::new()),
        Some(Finished::Ok { value }) => (
            "done",
            format!(
                r#"<p class="ok" role="status" id="outcome">{}</p><details><summary>The result as JSON (what <code>--json</code> prints)</summary><pre>{}</pre></details>"#,
                esc(&outcome(value)),
                esc(&serde_json::to_string_pretty(value).unwrap_or_default())
            ),
        ),
        Some(Finished::Failed { error }) => (
            "failed",
            format!(
                r#"<p class="error" role="alert" id="outcome">{}</p>"#,
                esc(error)
            ),
        ),
    };
    let progress = match &j.progress {
        Some(p) if j.finished.is_none() => match p.total {
            Some(t) => format!(
                r#"<p><label for="bytes">{}</label> <progress id="bytes" max="{t}" value="{}"></progress></p>"#,
                esc(&p.label),
                p.done
            ),
            None => format!(r#"<p>{}: {} bytes</p>"#, esc(&p.label), p.done),
        },
        _ => String::new(),
    };
    format!(
        r#"<div id="job" data-job="{id}" data-state="{state}"><p>{title}: <strong id="job-state">{state}</strong></p>{progress}<ol id="steps" aria-live="polite">{lines}</ol>{result}<noscript><p>Reload the page to follow it.</p></noscript></div><p><a href="/">Dashboard</a> · <a href="/versions">Versions</a></p>"#,
        id = j.id,
        title = esc(&j.title),
    )
}

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let rest = ctx.req.path.trim_start_matches("/jobs/");
    let (id, json) = match rest.strip_suffix(".json") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let job = id
        .parse::<u64>()
        .ok()
        .and_then(|id| ctx.console.jobs.get(id))
        .ok_or_else(|| PageError::not_found(format!("there is no job `{id}`")))?;
    let view = job.view();
    if json {
        let mut v = serde_json::to_value(&view).unwrap_or_default();
        v["html"] = serde_json::Value::String(render(&view));
        return Ok(Resp::json(&v));
    }
    Ok(Resp::html(
        200,
        page(&format!("Job {}", view.id), "", &render(&view)),
    ))
}
