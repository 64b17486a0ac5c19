//! push-service: see the library docs and samples/im-stack/README.md.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use im_common::cli::{finish, standard_flags, Failure};
use im_common::log;
use im_common::server::{HttpServer, Shutdown};
use im_common::settings::{self, process_env, Args};
use push_service::api::PushApi;
use push_service::queue::Queue;
use push_service::{worker, RetryPolicy, VERSION};

const USAGE: &str = "usage: push-service [--listen HOST:PORT] [--data-dir DIR] [--version]

settings (flags override the environment):
  --listen,   PUSH_LISTEN        address to serve on (default 127.0.0.1:7080)
  --data-dir, PUSH_DATA_DIR      data directory, created if missing (required)
              PUSH_MAX_ATTEMPTS  attempts per delivery before giving up (default 10)
              PUSH_RETRY_MIN_MS  delay after the first failed attempt, doubling (default 1000)
              PUSH_RETRY_MAX_MS  longest delay between attempts (default 60000)";

fn main() -> ExitCode {
    let program = format!("push-service {VERSION}");
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
        "PUSH_LISTEN",
        env,
        "127.0.0.1:7080",
    );
    let data_dir = settings::required(Some(&args), Some("data-dir"), "PUSH_DATA_DIR", env)?;
    let policy = RetryPolicy {
        max_attempts: settings::or_default(None, None, "PUSH_MAX_ATTEMPTS", env, "10").parse()?,
        min_delay: Duration::from_millis(
            settings::or_default(None, None, "PUSH_RETRY_MIN_MS", env, "1000").parse()?,
        ),
        max_delay: Duration::from_millis(
            settings::or_default(None, None, "PUSH_RETRY_MAX_MS", env, "60000").parse()?,
        ),
    };
    if policy.max_attempts == 0 {
        return Err(Failure::usage(
            "setting `PUSH_MAX_ATTEMPTS` must be at least 1",
        ));
    }
    let data_dir = std::path::PathBuf::from(data_dir.value);
    let shutdown = Shutdown::on_signals()?;

    let (queue, report) = Queue::open(&data_dir, policy).map_err(|e| Failure::runtime(&e))?;
    log::line(
        program,
        format_args!(
            "opened {}: {} devices, {} deliveries pending, {} bytes of torn records cut off",
            data_dir.display(),
            report.devices,
            report.pending,
            report.truncated_bytes
        ),
    );
    let queue = Arc::new(queue);
    let server = HttpServer::bind(&listen.value, program)?;
    log::line(
        program,
        format_args!(
            "listening on {} (data dir {}, {} attempts, backoff {}ms..{}ms)",
            server.url(),
            data_dir.display(),
            policy.max_attempts,
            policy.min_delay.as_millis(),
            policy.max_delay.as_millis()
        ),
    );
    let worker = {
        let (queue, shutdown, program) =
            (Arc::clone(&queue), shutdown.clone(), program.to_string());
        std::thread::spawn(move || worker::run(queue, shutdown, program))
    };
    server.run(Arc::new(PushApi::new(queue, VERSION)), &shutdown, 4);
    if worker.join().is_err() {
        log::line(program, "the delivery worker panicked");
    }
    log::line(
        program,
        "stopped: signal received, requests and deliveries in flight finished",
    );
    Ok(())
}
