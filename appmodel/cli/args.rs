//! Command-line types (clap only; no logic here).

use std::path::PathBuf;

use appmodel_model::bundle::Form;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
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
    /// Write each step of a change (install, upgrade, rollback, a revert, a recovery, the
    /// licence check) as a JSON line to FILE, appending; `-` writes them to standard error.
    #[arg(long, global = true, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// Where the vendor's store (the local app market) lives.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store directory [default: $APPMODEL_STORE, else ~/.local/share/appmodel/store].
    #[arg(long = "store", value_name = "DIR", global = true)]
    pub store: Option<PathBuf>,
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
    /// Pin every artifact of the model by digest and record an immutable version in the store.
    Publish(PublishArgs),
    /// List the published versions in the store.
    Versions(VersionsArgs),
    /// Show one published version: components, digests, sizes.
    Show(ShowArgs),
    /// Compare two published versions.
    Diff(DiffArgs),
    /// Print the bill of materials (CycloneDX 1.6 JSON) of a bundle or a published version.
    Sbom(SbomArgs),
    /// Remove blobs no published version references.
    Gc(GcArgs),
    /// Write a published version as an offline bundle (a directory or one tar file).
    Export(ExportArgs),
    /// On site: verify a bundle (directory, mounted disc or tar) and import it.
    Import(ImportArgs),
    /// Check a bundle against its manifest and signature without importing or writing anything.
    Verify(VerifyArgs),
    /// Make a signing key pair for bundles (minisign format).
    #[command(subcommand)]
    Key(KeyCommand),
    /// On site: pin the vendor keys whose signatures this site accepts.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Licences: the vendor's key and issuing; on site the site code, activation, status
    /// and the scheduled check (docs/licence.md).
    #[command(subcommand, alias = "licence")]
    License(LicenseCommand),
    /// On site: check the host before an install or upgrade (cores, memory, kernel, disk,
    /// ports, the engine, the licence, the vendor's checks); changes nothing.
    Preflight(PreflightArgs),
    /// On site: install an imported version (checks, loads, starts in dependency order).
    Install(InstallArgs),
    /// On site: upgrade to an imported version; reverts by itself if it is not healthy.
    Upgrade(UpgradeArgs),
    /// On site: go back to an earlier revision, with its data.
    Rollback(RollbackArgs),
    /// On site: per component state, health, image and revision.
    Status(SiteArgs),
    /// On site: every revision, oldest first.
    History(SiteArgs),
    /// On site: stop and remove the app.
    Uninstall(UninstallArgs),
    /// On site: push the imported version's images to the site's registry (Helm form).
    PushImages(PushImagesArgs),
    /// On site: the web console (dashboard, import, configuration, plans, licence) on loopback.
    Console(ConsoleArgs),
    /// Health probe used inside containers: exit 0 when `http://…` answers 2xx/3xx or `tcp://…` connects.
    #[command(hide = true)]
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
pub struct SiteArgs {
    /// The app [default: the only one imported].
    #[arg(long = "app", value_name = "NAME")]
    pub app: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print the result as JSON (the command's result type, serialized).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct InstallArgs {
    /// The version [default: the newest imported].
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// What install and upgrade share.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The site configuration file (`appmodel config init` writes a template). Install
    /// needs one; upgrade keeps the one in use unless given one, and with it alone
    /// reconfigures the running version.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the plan and stop: nothing changes, not even a change a crash left unfinished.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Data snapshots to keep.
    #[arg(long = "keep", default_value_t = 3, value_name = "N")]
    pub keep: usize,
    /// Go to a version older than the newest this site has run (recorded in history;
    /// `appmodel rollback` is the normal way back, with the data).
    #[arg(long = "allow-downgrade")]
    pub allow_downgrade: bool,
    /// Go ahead although this preflight check fails (recorded in history as ignored;
    /// never a strict check). Repeat for several.
    #[arg(long = "ignore-check", value_name = "NAME")]
    pub ignore_checks: Vec<String>,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// An imported version [default: the newest imported], or a bundle not imported yet: a
    /// directory, a mounted disc, a tar or an ISO file (verified first, writing nothing).
    #[arg(id = "preflight_version", value_name = "VERSION|BUNDLE")]
    pub version: Option<String>,
    /// The site configuration file (for an install; an upgrade keeps the one in use
    /// unless given one).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The version [default: the newest imported; with only `--config`, the running one].
    #[arg(id = "upgrade_version", value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The revision to go back to [default: the previous deployed one].
    #[arg(value_name = "REVISION")]
    pub revision: Option<u32>,
    /// Print the plan and stop: nothing changes, not even a change a crash left unfinished.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Data snapshots to keep.
    #[arg(long = "keep", default_value_t = 3, value_name = "N")]
    pub keep: usize,
    /// Go ahead although this preflight check fails (recorded in history as ignored;
    /// never a strict check). Repeat for several.
    #[arg(long = "ignore-check", value_name = "NAME")]
    pub ignore_checks: Vec<String>,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Keep the data volumes.
    #[arg(long = "keep-data")]
    pub keep_data: bool,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct PushImagesArgs {
    /// The site registry: `HOST[:PORT][/PREFIX]`; images go to PREFIX/APP/COMPONENT.
    #[arg(long = "registry", value_name = "HOST[/PREFIX]")]
    pub registry: String,
    /// Speak plain http to the registry.
    #[arg(long = "insecure")]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file for https, besides the system's.
    #[arg(
        long = "registry-ca",
        env = "APPMODEL_REGISTRY_CA",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// Registry user name (basic auth).
    #[arg(
        long = "registry-username",
        env = "APPMODEL_REGISTRY_USERNAME",
        value_name = "USER"
    )]
    pub username: Option<String>,
    /// Registry password.
    #[arg(
        long = "registry-password",
        env = "APPMODEL_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// The version [default: the newest imported].
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The address to listen on: loopback only (reach it through an SSH tunnel).
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:8800")]
    pub listen: std::net::SocketAddr,
    /// Where the import page looks for bundles, ISO images and volumes (repeatable).
    #[arg(long = "media", value_name = "DIR", default_values = ["/media", "/mnt", "/run/media"])]
    pub media: Vec<PathBuf>,
    /// The app [default: the only one imported].
    #[arg(long = "app", value_name = "NAME")]
    pub app: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// `http://HOST:PORT/PATH` or `tcp://HOST:PORT`.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Seconds before giving up.
    #[arg(long = "timeout", default_value_t = 3)]
    pub timeout: u64,
}

/// `--media` as given, and the bytes a volume of it holds.
#[derive(Debug, Clone)]
pub struct Media {
    pub name: String,
    pub capacity: u64,
}

/// `--media`: a media name or a size.
fn media_parser() -> impl TypedValueParser<Value = Media> {
    clap::builder::NonEmptyStringValueParser::new().try_map(|text: String| {
        match appmodel_model::volume::media_capacity(&text) {
            Some(capacity) => Ok(Media {
                name: text,
                capacity,
            }),
            None => Err({
                let names: Vec<&str> = appmodel_model::volume::MEDIA.iter().map(|m| m.0).collect();
                format!(
                    "`{text}` is neither a media name ({}) nor a size such as 650M or 4Gi",
                    names.join(", ")
                )
            }),
        }
    })
}

/// `--format`: every form by name, with its line of help, from [`Form::ALL`].
fn form_parser() -> impl TypedValueParser<Value = Form> {
    PossibleValuesParser::new(
        Form::ALL.map(|form| PossibleValue::new(form.as_str()).help(form.describe())),
    )
    .try_map(|name| name.parse::<Form>())
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true, group(clap::ArgGroup::new("output").required(true).args(["dir", "archive", "iso"])))]
pub struct ExportArgs {
    /// The form of the bundle.
    #[arg(long, value_parser = form_parser())]
    pub format: Form,
    /// The version to export [default: the newest published].
    #[arg(long = "version", id = "export_version", value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
    /// Write the bundle as a directory.
    #[arg(short = 'o', long = "output", id = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Write the bundle as one tar file.
    #[arg(long = "archive", value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// Write the bundle as an ISO 9660 image (Rock Ridge and Joliet): burn it, or give it
    /// to `appmodel import` / `verify` as a file.
    #[arg(long = "iso", value_name = "FILE.iso")]
    pub iso: Option<PathBuf>,
    /// Split the bundle into a set of volumes for this media, written into the `--output`
    /// directory: cd700, dvd5, dvd9, bd25 (ISO images to burn), usb-fat32 (directories to
    /// copy onto sticks), or a size (`650M`, `4Gi`). Every volume verifies and installs on
    /// its own; `appmodel import` takes them in any order.
    #[arg(long = "media", value_name = "MEDIA", requires = "dir", value_parser = media_parser())]
    pub media: Option<Media>,
    /// Write the volumes as ISO images or as directories [default: ISO images for discs,
    /// directories for sticks and sizes].
    #[arg(long = "volumes-as", value_name = "KIND", requires = "media", value_parser = ["iso", "dir"])]
    pub volumes_as: Option<String>,
    /// Delta bundle: leave out every blob this earlier version already had, and the
    /// appmodel executable when this store's exports of that version shipped the same one.
    #[arg(long = "since", value_name = "VERSION")]
    pub since: Option<String>,
    /// With `--since`: put the appmodel executable in the delta all the same (for a site
    /// that got the earlier version from another store or with another appmodel).
    #[arg(long = "with-tool", requires = "since")]
    pub with_tool: bool,
    /// Sign the bundle's manifest with this secret key (from `appmodel key generate`).
    #[arg(long = "sign", value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// Password of the secret key, if it has one.
    #[arg(
        long = "key-password",
        env = "APPMODEL_KEY_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub key_password: Option<String>,
    /// The appmodel executable to ship in the bundle [default: this one]. Ship a static build.
    #[arg(long = "tool", value_name = "FILE")]
    pub tool: Option<PathBuf>,
    /// Also ship an appmodel executable for another of the app's platforms, as
    /// `appmodel-<os>-<arch>` (e.g. `--tool-for linux/arm64=appmodel-arm64`); a site of
    /// that platform runs it, and its containers' health checks use it. Repeatable.
    #[arg(long = "tool-for", value_name = "PLATFORM=FILE", value_parser = tool_for_parser)]
    pub tool_for: Vec<(String, PathBuf)>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub json: bool,
}

/// Where the site's state lives.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The site state directory.
    #[arg(
        long = "state-dir",
        env = "APPMODEL_STATE_DIR",
        value_name = "DIR",
        default_value = "/var/lib/appmodel"
    )]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle: a directory, a mounted disc, or a tar file.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Pin this vendor key (.pub) and import in one step; the key is pinned only if the
    /// bundle's signature verifies with it. Repeat for several.
    #[arg(long = "trust-key", value_name = "KEY.pub")]
    pub trust_keys: Vec<PathBuf>,
    /// Accept a bundle without a signature (recorded with the version and in history).
    #[arg(long = "allow-unsigned")]
    pub allow_unsigned: bool,
    #[command(flatten)]
    pub state: StateArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle: a directory, a mounted disc, or a tar file.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// A public key (.pub) the bundle must be signed with; repeat for several. Without
    /// it, the keys pinned in the site state directory are used, if there are any.
    #[arg(long = "key", value_name = "KEY.pub")]
    pub keys: Vec<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write NAME.key (secret) and NAME.pub (public).
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Path prefix of the key files.
    #[arg(
        short = 'o',
        long = "output",
        default_value = "appmodel-signing",
        value_name = "NAME"
    )]
    pub output: PathBuf,
    /// Protect the secret key with this password.
    #[arg(
        long = "password",
        env = "APPMODEL_KEY_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// A comment stored with the keys (e.g. the vendor's name).
    #[arg(long = "comment", default_value = "appmodel bundle signing key")]
    pub comment: String,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Pin a vendor's public key: from now on only bundles it signed are imported.
    Add(TrustAddArgs),
    /// List the pinned keys.
    List(TrustListArgs),
}

#[derive(Debug, Args)]
pub struct TrustAddArgs {
    /// The public key file (`.pub`).
    #[arg(value_name = "KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct TrustListArgs {
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The version to publish (`v1.1` means 1.1.0); wins over the model's `app.version`.
    #[arg(id = "publish_version", value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub model: ModelFile,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Speak plain http to this registry (`host:port`); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Trust the CA certificates in this PEM file for https, besides the system's.
    #[arg(
        long = "registry-ca",
        env = "APPMODEL_REGISTRY_CA",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// Registry user name (basic auth, or for a token exchange).
    #[arg(
        long = "registry-username",
        env = "APPMODEL_REGISTRY_USERNAME",
        value_name = "USER"
    )]
    pub username: Option<String>,
    /// Registry password.
    #[arg(
        long = "registry-password",
        env = "APPMODEL_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// A registry bearer token, used as is.
    #[arg(
        long = "registry-token",
        env = "APPMODEL_REGISTRY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A docker config file holding `auths` [default: ~/.docker/config.json].
    #[arg(long = "docker-config", value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
}

/// Which app, when the store holds several.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// The app [default: the only app in the store].
    #[arg(long = "app", value_name = "NAME")]
    pub app: Option<String>,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this app.
    #[arg(long = "app", value_name = "NAME")]
    pub app: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(id = "show_version", value_name = "VERSION")]
    pub version: String,
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// A bundle directory (or a mounted disc), or a version in the store.
    #[arg(value_name = "BUNDLE|VERSION")]
    pub target: String,
    /// For a version: the form whose bundle it describes [default: every artifact].
    #[arg(long = "form", value_parser = form_parser())]
    pub form: Option<Form>,
    /// CycloneDX 1.6 (what bundles carry) or SPDX 2.3, made from it.
    #[arg(long = "format", value_name = "FORMAT", default_value = "cyclonedx", value_parser = ["cyclonedx", "spdx"])]
    pub format: String,
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "FROM")]
    pub from: String,
    #[arg(value_name = "TO")]
    pub to: String,
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub json: bool,
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
    /// The app model [default: `appmodel.yaml` here, else on a site the newest imported
    /// version of the file's `app`].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The site configuration file.
    #[arg(value_name = "SITE_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    fn export_args(format: &str) -> Result<super::ExportArgs, clap::Error> {
        use clap::Parser;
        let cli =
            super::Cli::try_parse_from(["appmodel", "export", "--format", format, "-o", "b"])?;
        match cli.command {
            super::Command::Export(args) => Ok(args),
            other => panic!("not export: {other:?}"),
        }
    }

    #[test]
    fn format_takes_every_form_by_name_and_lists_them_on_a_wrong_one() {
        for form in super::Form::ALL {
            assert_eq!(export_args(form.as_str()).unwrap().format, form);
        }
        let e = export_args("docker").unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(
            e.to_string()
                .contains("[possible values: compose, helm, systemd]"),
            "{e}"
        );
    }

    /// Every form `--format` offers has its row in the exporter's form table and in the
    /// importer's (the two crates do not depend on each other, so the check is here).
    #[test]
    fn every_form_is_exported_and_deployed() {
        for form in super::Form::ALL {
            let rows = |forms: &[_]| forms.iter().filter(|f| **f == form).count();
            let exported: Vec<_> = appmodel_exporters::forms::FORMS
                .iter()
                .map(|r| r.form)
                .collect();
            let deployed: Vec<_> = appmodel_importer::engine::FORMS
                .iter()
                .map(|r| r.form)
                .collect();
            assert_eq!(rows(&exported), 1, "{form} in exporters/src/forms.rs");
            assert_eq!(rows(&deployed), 1, "{form} in importer/src/engine.rs");
        }
        assert_eq!(
            appmodel_exporters::forms::FORMS.len(),
            appmodel_importer::engine::FORMS.len()
        );
    }
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Vendor: make the licence signing key pair (NAME.key, NAME.pub).
    #[command(subcommand)]
    Key(LicenseKeyCommand),
    /// On site: print this install's site code for the vendor and write it to a request file.
    Request(LicenseRequestArgs),
    /// Vendor: sign a licence for a site code (or for each request in a directory).
    Issue(Box<LicenseIssueArgs>),
    /// On site: verify a licence offline and make it the active one; starts the app again if
    /// the licence had stopped it.
    Activate(LicenseActivateArgs),
    /// On site: plan, expiry, stage, days left and what the licence is bound to.
    Status(SiteArgs),
    /// On site: the scheduled check: stops the app when its licence ends, starts it again when
    /// a valid one is active (run by a systemd timer every 10 minutes).
    Check(SiteArgs),
    /// Inside a container of a licensed compose app: start COMMAND only while the host's
    /// licence decision lets it run, and stop it when that ends (docs/licence.md).
    #[command(hide = true)]
    Gate(LicenseGateArgs),
}

#[derive(Debug, Args)]
pub struct LicenseGateArgs {
    /// The directory holding the host's `gate.json`.
    #[arg(long = "dir", value_name = "DIR", default_value = appmodel_model::layout::compose::GATE_IN_CONTAINER)]
    pub dir: PathBuf,
    /// The component's command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum LicenseKeyCommand {
    /// Write NAME.key (secret) and NAME.pub (public; its key line goes in the model).
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct LicenseRequestArgs {
    #[command(flatten)]
    pub site: SiteArgs,
    /// Write the request to this file too.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "site.req"
    )]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true, group(clap::ArgGroup::new("from").required(true).args(["request", "requests", "site_code"])))]
pub struct LicenseIssueArgs {
    /// The site's request file (`appmodel license request` wrote it).
    #[arg(long = "request", value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Every `*.req` file in this directory: one licence each, written beside it as `*.lic`.
    #[arg(long = "requests", value_name = "DIR")]
    pub requests: Option<PathBuf>,
    /// The site code, as the site read it out.
    #[arg(long = "site-code", value_name = "CODE")]
    pub site_code: Option<String>,
    /// The plan (one of the model's `licence.plans`).
    #[arg(long = "plan", value_name = "PLAN")]
    pub plan: String,
    /// The last day of the licence (`YYYY-MM-DD`, UTC, licensed to its end), or the instant
    /// it ends (`YYYY-MM-DDTHH:MM:SSZ`).
    #[arg(long = "expires", value_name = "DATE")]
    pub expires: String,
    /// The first day [default: today].
    #[arg(long = "starts", value_name = "DATE")]
    pub starts: Option<String>,
    /// Who the licence is for.
    #[arg(long = "customer", value_name = "NAME")]
    pub customer: String,
    /// The licence id, the same across renewals [default: from the site's install id].
    #[arg(long = "id", value_name = "ID")]
    pub id: Option<String>,
    /// The renewal's sequence number; a lower one never replaces a higher one on site
    /// [default: the issue time in seconds, so a later licence is always higher].
    #[arg(long = "sequence", value_name = "N")]
    pub sequence: Option<u64>,
    /// The licence secret key (`appmodel license key generate`).
    #[arg(long = "key", value_name = "FILE")]
    pub key: PathBuf,
    #[arg(
        long = "password",
        env = "APPMODEL_KEY_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// The version whose model gives the plans [default: the newest published].
    #[arg(long = "version", id = "licence_version", value_name = "VERSION")]
    pub version: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where to write the licence (with `--request` or `--site-code`).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "site.lic"
    )]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct LicenseActivateArgs {
    /// The licence file the vendor sent.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub site: SiteArgs,
}

fn tool_for_parser(text: &str) -> Result<(String, PathBuf), String> {
    let (platform, file) = text
        .split_once('=')
        .ok_or("write PLATFORM=FILE, e.g. linux/arm64=dist/appmodel-arm64")?;
    if !appmodel_model::bundle::is_platform(platform) {
        return Err(format!(
            "`{platform}` is not a platform such as `linux/arm64`"
        ));
    }
    Ok((platform.to_string(), PathBuf::from(file)))
}
