//! im-store: see the library docs and samples/im-stack/README.md.

use std::process::ExitCode;
use std::sync::Arc;

use im_common::cli::{finish, standard_flags, Failure};
use im_common::log;
use im_common::server::{HttpServer, Shutdown};
use im_common::settings::{self, process_env, Args};
use im_store::api::StoreApi;
use im_store::store::Store;
use im_store::{MAX_FORMAT, VERSION};

const USAGE: &str = "usage: im-store [--listen HOST:PORT] [--data-dir DIR] [--version]

settings (flags override the environment):
  --listen,   STORE_LISTEN     address to serve on (default 127.0.0.1:7070)
  --data-dir, STORE_DATA_DIR   data directory, created if missing (required)";

fn main() -> ExitCode {
    let program = format!("im-store {VERSION}");
    finish(&program, run(&program))
}

fn run(program: &str) -> Result<(), Failure> {
    let args = Args::parse(std::env::args().skip(1), &["listen", "data-dir"])?;
    if standard_flags(&args, program, USAGE)? {
        return Ok(());
    }
    let env = &process_env;
    let listen = settings::or_default(
        Some(&args),
        Some("listen"),
        "STORE_LISTEN",
        env,
        "127.0.0.1:7070",
    );
    let data_dir = settings::required(Some(&args), Some("data-dir"), "STORE_DATA_DIR", env)?;
    let data_dir = std::path::PathBuf::from(data_dir.value);
    let shutdown = Shutdown::on_signals()?;

    let (store, report) = match Store::open(&data_dir, MAX_FORMAT) {
        Ok(opened) => opened,
        Err(e) if e.is_too_new() => {
            return Err(Failure::new(
                3,
                format!("{e}; restore the data from before the upgrade"),
            ));
        }
        Err(e) => return Err(Failure::runtime(&e)),
    };
    let prepared = &report.prepared;
    if prepared.initialized {
        log::line(
            program,
            format_args!(
                "initialised {} with format {}",
                data_dir.display(),
                prepared.format
            ),
        );
    }
    for m in &prepared.migrations {
        log::line(program, format_args!("{m} in {}", data_dir.display()));
    }
    log::line(
        program,
        format_args!(
            "recovered {} conversations, {} messages; {} bytes of torn records cut off; {} indexes repaired",
            report.conversations, report.messages, report.truncated_bytes, report.reindexed
        ),
    );

    let server = HttpServer::bind(&listen.value, program)?;
    log::line(
        program,
        format_args!(
            "listening on {} (data dir {}, format {})",
            server.url(),
            data_dir.display(),
            store.format()
        ),
    );
    server.run(Arc::new(StoreApi::new(store, VERSION)), &shutdown, 4);
    log::line(
        program,
        "stopped: signal received, requests in flight finished",
    );
    Ok(())
}
