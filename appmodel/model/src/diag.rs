//! Findings that point into a source file, and their rendering for people and for scripts.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};

use serde::Serialize;

use crate::yaml::{Path, Pos};

/// One problem in a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub pos: Pos,
    /// The field the problem is about, as a path into the document.
    pub path: Path,
    /// One lowercase sentence, values in backticks.
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(pos: Pos, path: Path, message: String) -> Diagnostic {
        Diagnostic {
            pos,
            path,
            message,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, with the file's text so each can be shown in context.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: PathBuf,
    text: String,
    pub diagnostics: Vec<Diagnostic>,
}

/// The machine-readable form of one finding (`--json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a FsPath,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: &'a str,
    pub hint: Option<&'a str>,
}

impl Report {
    pub fn new(file: PathBuf, text: String, mut diagnostics: Vec<Diagnostic>) -> Report {
        diagnostics.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.message.cmp(&b.message)));
        diagnostics.dedup();
        Report {
            file,
            text,
            diagnostics,
        }
    }

    pub fn json(&self) -> Vec<JsonDiagnostic<'_>> {
        self.diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                file: &self.file,
                line: d.pos.line,
                column: d.pos.col,
                field: d.path.to_string(),
                message: &d.message,
                hint: d.hint.as_deref(),
            })
            .collect()
    }

    fn render_one(&self, d: &Diagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", d.message)?;
        let gutter = d.pos.line.to_string().len();
        let pad = " ".repeat(gutter);
        write!(
            f,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            d.pos.line,
            d.pos.col
        )?;
        if d.path.0.is_empty() {
            writeln!(f)?;
        } else {
            writeln!(f, " ({})", d.path)?;
        }
        if let Some(line) = self.text.lines().nth(d.pos.line.saturating_sub(1)) {
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {}", d.pos.line, line.trim_end())?;
            let caret_at = line
                .chars()
                .take(d.pos.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect::<String>();
            writeln!(f, "{pad} | {caret_at}^")?;
        }
        if let Some(hint) = &d.hint {
            writeln!(f, "{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            self.render_one(d, f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}

/// The known name closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_norm = normalize(word);
    known
        .into_iter()
        .map(|k| (distance(&word_norm, &normalize(k)), k))
        .filter(|(d, k)| *d <= (k.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn normalize(s: &str) -> String {
    s.to_ascii_lowercase().replace(['-', '_'], "")
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_ignores_strangers() {
        let known = ["depends_on", "ports", "volumes", "health"];
        assert_eq!(closest("dependson", known), Some("depends_on"));
        assert_eq!(closest("depends-on", known), Some("depends_on"));
        assert_eq!(closest("port", known), Some("ports"));
        assert_eq!(closest("healthcheck", known), None);
        assert_eq!(closest("xyz", known), None);
    }

    #[test]
    fn a_report_shows_the_line_and_a_caret() {
        let text = "app:\n  nmae: x\n".to_string();
        let d = Diagnostic::new(
            Pos { line: 2, col: 3 },
            Path::parse("app.nmae"),
            "unknown field `nmae`".into(),
        )
        .with_hint("did you mean `name`?");
        let report = Report::new("m.yaml".into(), text, vec![d]);
        assert_eq!(
            report.to_string(),
            "error: unknown field `nmae`\n --> m.yaml:2:3 (app.nmae)\n  |\n2 |   nmae: x\n  |   ^\n  = hint: did you mean `name`?\n"
        );
    }
}
