use anyhow::Result;
use appmodel_console::{bind, Options};

use crate::args::ConsoleArgs;

pub fn run(args: &ConsoleArgs) -> Result<()> {
    let bound = bind(&Options {
        listen: args.listen,
        state_dir: args.state.state_dir.clone(),
        app: args.app.clone(),
        media: args.media.clone(),
    })?;
    println!("appmodel console on http://{}/ (loopback: from another machine, `ssh -L {}:127.0.0.1:{} THIS-HOST`)", bound.addr, bound.addr.port(), bound.addr.port());
    println!("one-time login token: {}", bound.token);
    use std::io::Write;
    std::io::stdout().flush()?;
    bound.run();
    Ok(())
}
