//! Printing errors: a model report in full, then the chain of context once.

use std::process::ExitCode;

use appmodel_model::ModelError;

/// The error was already shown in full (e.g. as JSON on stdout); only the exit code is left.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// Prints `err` for a person and picks the exit code: 1 for problems in the user's input,
/// 2 for everything else.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    if let Some(Reported(_)) = err.downcast_ref::<Reported>() {
        return ExitCode::from(1);
    }
    let model_error = err.chain().find_map(|e| e.downcast_ref::<ModelError>());
    if let Some(ModelError::Invalid(report)) = model_error {
        eprintln!("{report}");
    }
    let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    eprintln!("error: {}", chain.join(": "));
    if let Some(ModelError::Read { source, .. }) = model_error {
        if source.kind() == std::io::ErrorKind::NotFound {
            eprintln!("hint: give the file with `-f FILE`, or run appmodel in the directory that holds it");
        }
    }
    match model_error {
        Some(_) => ExitCode::from(1),
        None => ExitCode::from(2),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
