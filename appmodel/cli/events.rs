//! `--events FILE`: each step of a change as a JSON line (importer::events), for a script
//! or a console to follow. `-` is standard error; a file is appended to.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use appmodel_importer::events::{set_sink, ChangeEvent, EventSink};

struct JsonLines(Mutex<Box<dyn Write + Send>>);

impl EventSink for JsonLines {
    fn event(&self, event: &ChangeEvent) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        if let Ok(mut w) = self.0.lock() {
            // A reader that went away must not fail the change.
            let _ = writeln!(w, "{line}").and_then(|()| w.flush());
        }
    }
}

pub fn install(path: &Path) -> Result<()> {
    let out: Box<dyn Write + Send> = if path == Path::new("-") {
        Box::new(std::io::stderr())
    } else {
        Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open `{}` for --events", path.display()))?,
        )
    };
    set_sink(Arc::new(JsonLines(Mutex::new(out))));
    Ok(())
}
