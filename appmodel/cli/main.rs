//! The `appmodel` command. Each command turns its flags into a call of a library function
//! and prints the result; the logic lives in the library crates.
//!
//! Exit codes: 0 success, 1 the user's input is wrong (bad model, bad config, bad flags),
//! 2 anything else (an internal error).

mod args;
mod config;
mod console;
mod diff;
mod events;
mod export;
mod gc;
mod graph;
mod import;
mod key;
mod license;
mod output;
mod progress;
mod publish;
mod push_images;
mod sbom;
mod schema;
mod show;
mod site;
mod store;
mod trust;
mod validate;
mod verify;
mod versions;

use std::process::ExitCode;

use clap::Parser;

use args::{
    Cli, Command, ConfigCommand, KeyCommand, LicenseCommand, LicenseKeyCommand, TrustCommand,
};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APPMODEL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The console follows progress in its pages, not on the terminal.
    if !matches!(cli.command, Command::Console(_)) {
        progress::install();
    }
    if let Some(path) = &cli.events {
        if let Err(e) = events::install(path) {
            return output::report_error(&e);
        }
    }
    let result = match cli.command {
        Command::Validate(a) => validate::run(&a),
        Command::Graph(a) => graph::run(&a),
        Command::Config(ConfigCommand::Init(a)) => config::init(&a),
        Command::Config(ConfigCommand::Check(a)) => config::check(&a),
        Command::Schema(a) => schema::run(&a),
        Command::Publish(a) => publish::run(&a),
        Command::Versions(a) => versions::run(&a),
        Command::Show(a) => show::run(&a),
        Command::Sbom(a) => sbom::run(&a),
        Command::Diff(a) => diff::run(&a),
        Command::Gc(a) => gc::run(&a),
        Command::Export(a) => export::run(&a),
        Command::Import(a) => import::run(&a),
        Command::Verify(a) => verify::run(&a),
        Command::Key(KeyCommand::Generate(a)) => key::generate(&a),
        Command::Trust(TrustCommand::Add(a)) => trust::add(&a),
        Command::Trust(TrustCommand::List(a)) => trust::list(&a),
        Command::License(LicenseCommand::Key(LicenseKeyCommand::Generate(a))) => {
            license::key_generate(&a)
        }
        Command::License(LicenseCommand::Request(a)) => license::request(&a),
        Command::License(LicenseCommand::Issue(a)) => license::issue(&a),
        Command::License(LicenseCommand::Activate(a)) => license::activate(&a),
        Command::License(LicenseCommand::Status(a)) => license::status(&a),
        Command::License(LicenseCommand::Check(a)) => license::check(&a),
        // The component's exit status is the container's: not an appmodel result.
        Command::License(LicenseCommand::Gate(a)) => {
            let code = appmodel_importer::gate::run(&a.dir, &a.command);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        Command::Preflight(a) => site::preflight(&a),
        Command::Install(a) => site::install(&a),
        Command::Upgrade(a) => site::upgrade(&a),
        Command::Rollback(a) => site::rollback(&a),
        Command::Status(a) => site::status(&a),
        Command::History(a) => site::history(&a),
        Command::Uninstall(a) => site::uninstall(&a),
        Command::PushImages(a) => push_images::run(&a),
        Command::Console(a) => console::run(&a),
        Command::Probe(a) => site::probe(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::report_error(&e),
    }
}
