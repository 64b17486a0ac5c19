//! Opening the store and finding versions in it, shared by the store commands.

use anyhow::{bail, Context, Result};
use appmodel_model::VersionRecord;
use appmodel_store::Store;

use crate::args::StoreArgs;
use crate::output::UserError;

pub fn open(args: &StoreArgs) -> Result<Store> {
    let root = args.store.clone().unwrap_or_else(Store::default_location);
    Store::open(&root).with_context(|| format!("cannot open the store at `{}`", root.display()))
}

/// The app a command means: the one named, else the only app in the store.
pub fn app(store: &Store, named: Option<&str>) -> Result<String> {
    if let Some(a) = named {
        return Ok(a.to_string());
    }
    let mut apps: Vec<String> = store.records()?.into_iter().map(|r| r.app).collect();
    apps.dedup();
    match apps.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(UserError::new(
            "the store holds no published version",
            "publish one with `appmodel publish VERSION -f appmodel.yaml`",
        )
        .into()),
        _ => bail!(UserError::new(
            format!("the store holds several apps ({})", apps.join(", ")),
            "name one with `--app NAME`"
        )),
    }
}

/// The published version of `app` that `asked` means ([`appmodel_model::version::pick`]:
/// exactly, else the newest of its series; with nothing asked, the newest).
pub fn record(store: &Store, app: &str, asked: Option<&str>) -> Result<VersionRecord> {
    let mut records: Vec<VersionRecord> = store
        .records()?
        .into_iter()
        .filter(|r| r.app == app)
        .collect();
    let picked = appmodel_model::version::pick(asked, records.iter().map(|r| &r.version)).cloned();
    if let Some(v) = picked {
        records.retain(|r| r.version == v);
        return Ok(records.pop().expect("the picked version is one of them"));
    }
    let known: Vec<String> = records.iter().map(|r| r.version.to_string()).collect();
    let hint = if known.is_empty() {
        "publish it with `appmodel publish`".to_string()
    } else {
        format!("published versions: {}", known.join(", "))
    };
    Err(match asked {
        Some(v) => UserError::new(format!("version {v} of `{app}` is not published"), hint),
        None => UserError::new(format!("`{app}` has no published version"), hint),
    }
    .into())
}
