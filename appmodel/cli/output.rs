//! Printing errors: a model report in full, then the chain of context once, then a hint.

use std::process::ExitCode;

use appmodel_model::ModelError;
use appmodel_publish::PublishError;
use appmodel_store::StoreError;

/// The error was already shown in full (e.g. as JSON on stdout); only the exit code is left.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// A mistake in the user's input or request, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UserError {
    pub message: String,
    pub hint: String,
}

impl UserError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> UserError {
        UserError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UserError>()
            || e.is::<ModelError>()
            || e.downcast_ref::<PublishError>()
                .is_some_and(PublishError::is_user_error)
            || e.downcast_ref::<appmodel_importer::ImportError>()
                .is_some_and(appmodel_importer::ImportError::is_user_error)
            || e.downcast_ref::<appmodel_exporters::ExportError>()
                .is_some_and(appmodel_exporters::ExportError::is_user_error)
            || e.is::<appmodel_signing::SignError>()
            || matches!(
                e.downcast_ref::<appmodel_licence::LicenceError>(),
                Some(
                    appmodel_licence::LicenceError::BadLicence { .. }
                        | appmodel_licence::LicenceError::BadSiteCode { .. }
                        | appmodel_licence::LicenceError::Issue(_)
                        | appmodel_licence::LicenceError::Read { .. }
                )
            )
            || e.downcast_ref::<appmodel_model::input::InputError>()
                .is_some_and(appmodel_model::input::InputError::is_user_error)
            || matches!(
                e.downcast_ref::<StoreError>(),
                Some(
                    StoreError::VersionExists { .. }
                        | StoreError::DigestMismatch { .. }
                        | StoreError::SizeMismatch { .. }
                )
            )
    })
}

/// Prints `err` for a person and picks the exit code: 1 for problems in the user's input,
/// 2 for everything else.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    if err.is::<Reported>() {
        return ExitCode::from(1);
    }
    let model_error = err.chain().find_map(|e| e.downcast_ref::<ModelError>());
    if let Some(ModelError::Invalid(report)) = model_error {
        eprintln!("{report}");
    }
    // `transparent` wrappers repeat their source's text; print each distinct message once.
    let mut chain: Vec<String> = Vec::new();
    for e in err.chain() {
        let text = e.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
    }
    eprintln!("error: {}", chain.join(": "));
    if let Some(ModelError::Read { source, .. }) = model_error {
        if matches!(source, appmodel_model::input::InputError::NotFound) {
            eprintln!("hint: give the file with `-f FILE`, or run appmodel in the directory that holds it");
        }
    }
    if let Some(u) = err.chain().find_map(|e| e.downcast_ref::<UserError>()) {
        eprintln!("hint: {}", u.hint);
    }
    if let Some(hint) = err
        .chain()
        .find_map(|e| e.downcast_ref::<appmodel_importer::ImportError>())
        .and_then(import_hint)
    {
        eprintln!("hint: {hint}");
    }
    if is_user_error(err) {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    }
}

/// What to do about a site error, where the CLI knows it (libraries name no commands).
fn import_hint(e: &appmodel_importer::ImportError) -> Option<String> {
    use appmodel_importer::ImportError as E;
    Some(match e {
        E::Unsigned { .. } => "pin the vendor's key with `appmodel trust add VENDOR.pub` (or `appmodel import --trust-key VENDOR.pub BUNDLE`); to accept an unsigned bundle anyway, add `--allow-unsigned`".into(),
        E::UntrustedKey { key_id, .. } => format!("if key `{key_id}` is your vendor's, pin it: `appmodel trust add VENDOR.pub`, or `appmodel import --trust-key VENDOR.pub BUNDLE`"),
        E::WrongPlatform { .. } => "import the bundle exported for this host's platform".into(),
        E::NotInstalled(_) => "install it first: `appmodel install --config site-config.yaml`".into(),
        E::AlreadyInstalled { .. } => "to change the running version or its configuration, use `appmodel upgrade`".into(),
        E::NothingImported | E::NotImported { .. } => "import the bundle first: `appmodel import BUNDLE`".into(),
        E::NoSuchRevision(_) => "`appmodel history` lists the revisions".into(),
        E::ConfigNeeded { .. } => "write one with `appmodel config init -f appmodel.yaml` (the model is in the bundle) and pass it with `--config FILE`".into(),
        E::Preflight(problems) if problems.iter().any(|p| p.contains("not in a site registry")) => "push the images first: `appmodel push-images --registry HOST[/PREFIX]`".into(),
        E::NotSupported { .. } => "see README.md for what each form supports".into(),
        E::Licence(_) => "`appmodel license status` shows where the licence stands and this host's site code; the vendor issues a licence for that code, `appmodel license activate FILE` activates it".into(),
        E::Downgrade { .. } => "to go back to a revision this site ran, with its data, use `appmodel rollback`; to install the older version anyway, add `--allow-downgrade`".into(),
        _ => return None,
    })
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
