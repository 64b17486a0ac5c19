use anyhow::{Context, Result};
use appmodel_importer::Site;

use crate::args::{TrustAddArgs, TrustListArgs};

pub fn add(args: &TrustAddArgs) -> Result<()> {
    use appmodel_model::input::{cap, read_text, Links};
    let text = read_text(&args.key, cap::SIGNATURE, Links::Follow)
        .with_context(|| format!("cannot read the key `{}`", args.key.display()))?;
    let site = Site::open(&args.state.state_dir)?;
    let _lock = site.lock()?;
    let id = site
        .add_trusted_key(&text)
        .with_context(|| format!("cannot pin `{}`", args.key.display()))?;
    println!("pinned key {id}: this site imports bundles signed with a pinned key");
    Ok(())
}

pub fn list(args: &TrustListArgs) -> Result<()> {
    let site = Site::open(&args.state.state_dir)?;
    let keys = site.trusted_keys()?;
    if keys.is_empty() {
        println!("no pinned keys: no bundle can be imported without --allow-unsigned or --trust-key (pin one with `appmodel trust add KEY.pub`)");
    }
    for (name, _) in keys {
        println!("{}", name.trim_end_matches(".pub"));
    }
    Ok(())
}
