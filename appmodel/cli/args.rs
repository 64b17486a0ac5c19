//! Command-line types (clap only; no logic here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deliver on-premise software to sites with no internet.
///
/// A vendor describes an application in `appmodel.yaml`, publishes versions and exports them
/// as offline bundles (compose, Helm or systemd). A site imports a bundle from a disc or USB
/// stick and installs, upgrades or rolls back with no network at all.
#[derive(Debug, Parser)]
#[command(name = "appmodel", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an app model and report every problem with file:line:column.
    Validate(ValidateArgs),
    /// Show the dependency graph: start order, parallel levels, stop order.
    Graph(GraphArgs),
    /// Write or check a site configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the JSON Schema of an app model or of a site configuration file.
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub struct ModelFile {
    /// The app model.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "appmodel.yaml",
        value_name = "FILE"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub model: ModelFile,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub model: ModelFile,
    #[arg(long, value_enum, default_value = "text")]
    pub format: GraphFormat,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented template holding every parameter of the model.
    Init(ConfigInitArgs),
    /// Check a site configuration file against the model's parameters.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigInitArgs {
    #[command(flatten)]
    pub model: ModelFile,
    /// Where to write the template; `-` for stdout.
    #[arg(
        short = 'o',
        long = "output",
        default_value = "site-config.yaml",
        value_name = "FILE"
    )]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    #[command(flatten)]
    pub model: ModelFile,
    /// The site configuration file.
    #[arg(value_name = "SITE_CONFIG")]
    pub config: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// `appmodel.yaml`.
    Model,
    /// A site configuration file.
    SiteConfig,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum)]
    pub kind: SchemaKind,
}
