//! `/licence`: the licence's state (`appmodel license status`), the site code to send the
//! vendor as text and as a QR code, and a licence pasted in (`appmodel license activate`).

use appmodel_importer::{licensing, Site};

use super::{chain, start_job, PageError};
use crate::html::{esc, facts, form, page};
use crate::http::Resp;
use crate::Ctx;

/// The site code as an SVG QR code (upper case: the compact alphanumeric mode).
fn qr_svg(text: &str) -> Option<String> {
    use qrcode::render::svg;
    let code =
        qrcode::QrCode::with_error_correction_level(text.to_ascii_uppercase(), qrcode::EcLevel::M)
            .ok()?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].replacen(
        "<svg",
        r#"<svg role="img" aria-label="site code as a QR code""#,
        1,
    ))
}

fn date(secs: Option<u64>) -> String {
    secs.map(appmodel_licence::file::Licence::date)
        .unwrap_or_else(|| "-".into())
}

pub fn get(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    let r = match licensing::status(&site, ctx.app()) {
        Ok(r) => r,
        // A version that takes no licence, or nothing imported: said, not an error page.
        Err(e) if e.is_user_error() => {
            let body = format!(r#"<p role="status">{}</p>"#, esc(&chain(&e)));
            return Ok(Resp::html(200, page("Licence", "/licence", &body)));
        }
        Err(e) => return Err(e.into()),
    };
    let s = &r.standing;
    let mut body = facts(&[
        (
            "State",
            format!(
                r#"<span id="licence-stage">{}</span>"#,
                esc(s.stage.as_str())
            ),
        ),
        ("Why", esc(&s.reason)),
        (
            "Days left",
            s.days_left
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("Plan", esc(s.plan.as_deref().unwrap_or("-"))),
        ("Customer", esc(r.customer.as_deref().unwrap_or("-"))),
        ("Licence", esc(r.licence_id.as_deref().unwrap_or("none"))),
        ("Expires", esc(&date(r.expires))),
        (
            "App stopped by the licence",
            if r.stopped { "yes".into() } else { "no".into() },
        ),
        ("Bound to", esc(&r.bound.join(", "))),
    ]);
    if !r.changed.is_empty() {
        body.push_str(&format!(
            r#"<p class="error" role="alert">This host no longer matches the licence: {} changed. Send the vendor the new site code.</p>"#,
            esc(&r.changed.join(", "))
        ));
    }
    for p in &r.clock_problems {
        body.push_str(&format!(r#"<p class="warning">{}</p>"#, esc(p)));
    }
    body.push_str("<h2>Site code</h2>");
    match &r.site_code {
        Some(code) => {
            body.push_str(&format!(
                r#"<p>Send this to the vendor; the licence they return works on this install only.</p><pre id="site-code">{}</pre>"#,
                esc(code)
            ));
            if let Some(svg) = qr_svg(code) {
                body.push_str(&format!(r#"<figure class="qr">{svg}</figure>"#));
            }
        }
        None => body.push_str(&form(
            "/licence",
            ctx.session,
            r#"<input type="hidden" name="do" value="code"><p>This install has no site code yet.</p><button type="submit">Make the site code</button>"#,
        )),
    }
    body.push_str("<h2>Activate a licence</h2>");
    body.push_str(&form(
        "/licence",
        ctx.session,
        r#"<input type="hidden" name="do" value="activate">
<label for="licence">The licence file's text</label>
<textarea id="licence" name="licence" rows="10" spellcheck="false" required></textarea>
<label for="licence-file">or read it from a file</label>
<input id="licence-file" type="file" accept=".lic,.txt,text/plain" data-fills="licence">
<button type="submit">Activate</button>"#,
    ));
    Ok(Resp::html(200, page("Licence", "/licence", &body)))
}

pub fn post(ctx: &Ctx) -> Result<Resp, PageError> {
    let site = ctx.site()?;
    match ctx.req.field("do") {
        "code" => {
            licensing::site_code(&site, ctx.app())?;
            Ok(Resp::redirect("/licence"))
        }
        "activate" => {
            let text = ctx.req.field("licence").replace("\r\n", "\n");
            if text.trim().is_empty() {
                return Err(PageError::bad(
                    "paste the licence's text first; nothing changed",
                ));
            }
            let root = ctx.console.site_root.clone();
            let app = ctx.console.app.clone();
            start_job(ctx, "activate a licence".into(), move || {
                let site = Site::open(&root).map_err(|e| chain(&e))?;
                let a =
                    licensing::activate_text(&site, app.as_deref(), &text, "the pasted licence")
                        .map_err(|e| chain(&e))?;
                serde_json::to_value(&a).map_err(|e| e.to_string())
            })
        }
        other => Err(PageError::bad(format!("`{other}` is not a licence action"))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_site_code_is_an_svg_qr_code() {
        assert_eq!(super::date(None), "-");
        assert!(super::qr_svg("IM:ABCDE-12345").is_some_and(|s| s.starts_with("<svg role=\"img\"")));
    }
}
