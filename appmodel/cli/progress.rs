//! Progress bars on a terminal (indicatif); nothing otherwise: log lines say what happens.

use std::io::IsTerminal;

use appmodel_store::progress::{set_reporter, Reporter, Task};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

struct Bars {
    multi: MultiProgress,
}

struct Bar(ProgressBar);

impl Task for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Reporter for Bars {
    fn begin(&self, label: &str, total: Option<u64>) -> Box<dyn Task> {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg:40!} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg:40!} {bytes:>10} {bytes_per_sec:>12}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(label.to_string());
        Box::new(Bar(self.multi.add(bar)))
    }
}

/// Draws progress bars for long streams when stderr is a terminal.
pub fn install() {
    if std::io::stderr().is_terminal() {
        set_reporter(Box::new(Bars {
            multi: MultiProgress::new(),
        }));
    }
}
