use anyhow::{Context, Result};
use appmodel_importer::Site;

use crate::args::{TrustAddArgs, TrustListArgs};

pub fn add(args: &TrustAddArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read `{}`", args.key.display()))?;
    let site = Site::open(&args.state.state_dir)?;
    let _lock = site.lock()?;
    let id = site
        .add_trusted_key(&text)
        .with_context(|| format!("cannot pin `{}`", args.key.display()))?;
    println!(
        "pinned key {id}: from now on this site imports only bundles signed with a pinned key"
    );
    Ok(())
}

pub fn list(args: &TrustListArgs) -> Result<()> {
    let site = Site::open(&args.state.state_dir)?;
    let keys = site.trusted_keys()?;
    if keys.is_empty() {
        println!("no pinned keys: unsigned bundles are accepted (pin one with `appmodel trust add KEY.pub`)");
    }
    for (name, _) in keys {
        println!("{}", name.trim_end_matches(".pub"));
    }
    Ok(())
}
