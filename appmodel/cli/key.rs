use anyhow::{Context, Result};

use crate::args::KeyGenerateArgs;

pub fn generate(args: &KeyGenerateArgs) -> Result<()> {
    let secret = args.output.with_extension("key");
    let public = args.output.with_extension("pub");
    let pair = appmodel_signing::KeyPair::generate(&args.comment)?;
    pair.write(&secret, &public, args.password.as_deref())
        .with_context(|| format!("cannot write the key pair `{}`", args.output.display()))?;
    println!(
        "wrote `{}` (secret: keep it off the bundle and off the site) and `{}` (public: give it to sites for `appmodel trust add`); key id {}",
        secret.display(),
        public.display(),
        pair.public_key().key_id()
    );
    Ok(())
}
