//! Exit codes and error output shared by the programs' `main`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad settings or usage, 3 data this
//! version refuses to open (see im-store).

use std::process::ExitCode;

use crate::{error_chain, Error};

/// Why a program stops with a non-zero exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(2, message)
    }

    pub fn runtime(err: &dyn std::error::Error) -> Failure {
        Failure::new(1, error_chain(err))
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        let code = match err {
            Error::Usage(_) | Error::Missing { .. } | Error::Invalid { .. } => 2,
            _ => 1,
        };
        Failure::new(code, error_chain(&err))
    }
}

/// Prints a failure as `program: message` on stderr and turns the result into an exit code.
pub fn finish(program: &str, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{program}: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `--version`, `--help` and stray arguments, handled alike by every program. `Ok(true)`
/// means the program printed what was asked and should stop.
pub fn standard_flags(
    args: &crate::settings::Args,
    program: &str,
    usage: &str,
) -> Result<bool, Failure> {
    if args.version {
        println!("{program}");
        return Ok(true);
    }
    if args.help {
        println!("{usage}");
        return Ok(true);
    }
    if let Some(extra) = args.positionals.first() {
        return Err(Failure::usage(format!(
            "unexpected argument `{extra}`\n{usage}"
        )));
    }
    Ok(false)
}
