//! HTML the pages share: escaping (every value from a file or a form goes through [`esc`]),
//! the page frame with its navigation, forms that carry the CSRF token, tables.

use crate::Session;

/// Escapes text for an element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: title, navigation (the current page marked), body.
pub fn page(title: &str, current: &str, body: &str) -> String {
    let nav: String = crate::pages::ROUTES
        .iter()
        .filter_map(|r| Some((r.path, r.nav?)))
        .map(|(path, label)| {
            let here = if path == current {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(r#"<li><a href="{path}"{here}>{label}</a></li>"#)
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · appmodel console</title>
<link rel="stylesheet" href="/assets/console.css"><script src="/assets/console.js" defer></script></head>
<body>
<header><span class="brand">appmodel</span><nav aria-label="pages"><ul>{nav}</ul></nav></header>
<main id="main"><h1>{title}</h1>
{body}
</main>
</body></html>
"#,
        title = esc(title)
    )
}

/// A page of its own for a request refused (bad input, an error of the library).
pub fn error_page(title: &str, message: &str) -> String {
    page(
        title,
        "",
        &format!(
            r#"<p class="error" role="alert">{}</p><p><a href="/">Back to the dashboard</a></p>"#,
            esc(message)
        ),
    )
}

/// `<form method="post">` with the session's CSRF token.
pub fn form(action: &str, session: &Session, inner: &str) -> String {
    format!(
        r#"<form method="post" action="{}"><input type="hidden" name="csrf" value="{}">{inner}</form>"#,
        esc(action),
        esc(&session.csrf)
    )
}

/// A table with a header row; cells are escaped by the caller.
pub fn table(label: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let head: String = head
        .iter()
        .map(|h| format!("<th scope=\"col\">{h}</th>"))
        .collect();
    let rows: String = rows
        .iter()
        .map(|r| {
            let cells: String = r.iter().map(|c| format!("<td>{c}</td>")).collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!(
        r#"<table aria-label="{}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"#,
        esc(label)
    )
}

/// A definition list of (term, escaped value).
pub fn facts(items: &[(&str, String)]) -> String {
    let inner: String = items
        .iter()
        .map(|(k, v)| format!("<dt>{}</dt><dd>{v}</dd>", esc(k)))
        .collect();
    format!("<dl>{inner}</dl>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_open_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }
}
