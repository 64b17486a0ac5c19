//! im-server: see the library docs and samples/im-stack/README.md.

use std::process::ExitCode;
use std::sync::Arc;

use im_common::cli::{finish, standard_flags, Failure};
use im_common::log;
use im_common::server::{HttpServer, Shutdown};
use im_common::settings::{process_env, Args};
use im_server::app::App;
use im_server::{Config, Edition};

const USAGE: &str = "usage: im-server [--version]

im-server is configured by the environment only:
  IM_LISTEN         address to serve on (default 127.0.0.1:8080)
  IM_DOMAIN         the domain users belong to (required)
  IM_MAX_USERS      most users that can be registered (default 100)
  IM_ADMIN_SECRET   bearer token for POST /users (required)
  IM_STORE_URL      im-store base URL (default http://127.0.0.1:7070)
  IM_PUSH_URL       push-service base URL (default http://127.0.0.1:7080)";

const USAGE_1_1: &str =
    "  IM_READ_RECEIPTS  `true` or `false`: the read-receipt feature (default true)";

fn main() -> ExitCode {
    let edition = Edition::CURRENT;
    let program = format!("im-server {}", edition.version());
    finish(&program, run(&program, edition))
}

fn run(program: &str, edition: Edition) -> Result<(), Failure> {
    let args = Args::parse(std::env::args().skip(1), &[])?;
    let usage = match edition {
        Edition::V1_1 => format!("{USAGE}\n{USAGE_1_1}"),
        _ => USAGE.to_string(),
    };
    if standard_flags(&args, program, &usage)? {
        return Ok(());
    }
    let config = Config::from_env(&process_env, edition)?;
    let shutdown = Shutdown::on_signals()?;
    let server = HttpServer::bind(&config.listen, program)?;
    let receipts = match edition {
        Edition::V1_0 => String::new(),
        Edition::V1_1 => format!(
            ", read receipts {}",
            if config.read_receipts { "on" } else { "off" }
        ),
    };
    log::line(
        program,
        format_args!(
            "listening on {} (domain {}, max {} users, store {}, push {}{receipts})",
            server.url(),
            config.domain,
            config.max_users,
            config.store_url,
            config.push_url
        ),
    );
    server.run(Arc::new(App::new(config, edition)), &shutdown, 8);
    log::line(
        program,
        "stopped: signal received, requests in flight finished",
    );
    Ok(())
}
