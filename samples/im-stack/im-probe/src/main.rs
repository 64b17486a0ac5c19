//! im-probe: proves that acknowledged messages survive, through im-server's public API.
//!
//! `write N` registers two users (if needed) and sends N messages between them; after
//! each acknowledged send it appends `{"conversation","offset","from","to","body"}` as one
//! JSON line to the state file and fsyncs it, so the file holds exactly what the stack
//! acknowledged. `verify` reads every recorded message back and checks that it is there,
//! unchanged, and at the offset it was acknowledged with (so in order). Exit 1 on any loss.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use im_common::cli::{finish, Failure};
use im_common::client;
use im_common::settings::{self, process_env, Args};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const USAGE: &str = "usage: im-probe [options] write N | verify

options:
  --server URL          im-server base URL (default http://127.0.0.1:8080)
  --admin-secret S      admin secret to register the users (or IM_ADMIN_SECRET; needed by `write`)
  --state FILE          where acknowledged messages are recorded (required)
  --users A,B           the two users (default probe-a,probe-b)
  --wait-ready SECS     first wait up to SECS seconds for im-server's /readyz";

const PAGE: u64 = 1000;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Acked {
    conversation: String,
    offset: u64,
    from: String,
    to: String,
    body: String,
}

struct Options {
    server: String,
    admin_secret: Option<String>,
    state: PathBuf,
    users: (String, String),
    wait_ready: Option<u64>,
}

fn main() -> ExitCode {
    let program = format!("im-probe {}", env!("CARGO_PKG_VERSION"));
    finish("im-probe", run(&program))
}

fn run(program: &str) -> Result<(), Failure> {
    let args = Args::parse(
        std::env::args().skip(1),
        &["server", "admin-secret", "state", "users", "wait-ready"],
    )?;
    if args.version {
        println!("{program}");
        return Ok(());
    }
    if args.help {
        println!("{USAGE}");
        return Ok(());
    }
    let env = &process_env;
    let users = args.flag("users").unwrap_or("probe-a,probe-b");
    let users = match users.split_once(',') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && a != b => (a.to_string(), b.to_string()),
        _ => {
            return Err(Failure::usage(format!(
                "`--users` needs two different names like `a,b`, got `{users}`"
            )))
        }
    };
    let opts = Options {
        server: args
            .flag("server")
            .unwrap_or("http://127.0.0.1:8080")
            .trim_end_matches('/')
            .to_string(),
        admin_secret: settings::lookup(Some(&args), Some("admin-secret"), "IM_ADMIN_SECRET", env)
            .map(|s| s.value),
        state: PathBuf::from(
            args.flag("state")
                .ok_or_else(|| Failure::usage(format!("`--state FILE` is required\n{USAGE}")))?,
        ),
        users,
        wait_ready: match args.flag("wait-ready") {
            Some(v) => Some(
                settings::Setting {
                    name: "--wait-ready".into(),
                    value: v.into(),
                }
                .parse()?,
            ),
            None => None,
        },
    };
    let words: Vec<&str> = args.positionals.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["write", n] => {
            let n: u64 = settings::Setting {
                name: "N".into(),
                value: n.to_string(),
            }
            .parse()?;
            wait_ready(&opts)?;
            write(&opts, n)
        }
        ["verify"] => {
            wait_ready(&opts)?;
            verify(&opts)
        }
        _ => Err(Failure::usage(USAGE)),
    }
}

fn wait_ready(opts: &Options) -> Result<(), Failure> {
    let Some(secs) = opts.wait_ready else {
        return Ok(());
    };
    let url = format!("{}/readyz", opts.server);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match client::get(&url, Duration::from_secs(2)) {
            Ok(r) if r.is_success() => return Ok(()),
            Ok(r) => format!("status {}: {}", r.status, r.message()),
            Err(e) => im_common::error_chain(&e),
        };
        if Instant::now() >= deadline {
            return Err(Failure::new(
                1,
                format!("{url} not ready after {secs}s: {last}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write(opts: &Options, n: u64) -> Result<(), Failure> {
    let secret = opts.admin_secret.as_deref().ok_or_else(|| {
        Failure::usage("`write` needs `--admin-secret` (or IM_ADMIN_SECRET) to register the users")
    })?;
    for user in [&opts.users.0, &opts.users.1] {
        let r = client::post_json_with(
            &format!("{}/users", opts.server),
            &[("Authorization", &format!("Bearer {secret}"))],
            &json!({ "name": user }),
            TIMEOUT,
        )
        .map_err(|e| Failure::runtime(&e))?;
        if r.status != 201 && r.status != 409 {
            return Err(Failure::new(
                1,
                format!(
                    "cannot register `{user}`: status {}: {}",
                    r.status,
                    r.message()
                ),
            ));
        }
    }
    let mut state = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.state)
        .map_err(|e| Failure::new(1, format!("cannot open `{}`: {e}", opts.state.display())))?;
    let run = im_common::now_millis();
    let mut offsets = Vec::new();
    for i in 0..n {
        let (from, to) = if i % 2 == 0 {
            (&opts.users.0, &opts.users.1)
        } else {
            (&opts.users.1, &opts.users.0)
        };
        let body = format!("probe run {run} message {i}");
        let sent = client::post_json(
            &format!("{}/messages", opts.server),
            &json!({"from": from, "to": to, "body": body}),
            TIMEOUT,
        );
        let r = match sent {
            Ok(r) if r.status == 201 => r,
            Ok(r) => {
                return Err(Failure::new(
                    1,
                    format!(
                        "wrote {i} of {n} messages; message {i} refused: status {}: {}",
                        r.status,
                        r.message()
                    ),
                ))
            }
            Err(e) => {
                return Err(Failure::new(
                    1,
                    format!(
                        "wrote {i} of {n} messages; message {i} failed: {}",
                        im_common::error_chain(&e)
                    ),
                ))
            }
        };
        let ack: Value = r
            .json()
            .map_err(|e| Failure::new(1, format!("bad response to message {i}: {e}")))?;
        let (Some(conversation), Some(offset)) =
            (ack["conversation"].as_str(), ack["offset"].as_u64())
        else {
            return Err(Failure::new(
                1,
                format!("bad response to message {i}: {ack}"),
            ));
        };
        let record = Acked {
            conversation: conversation.to_string(),
            offset,
            from: from.clone(),
            to: to.clone(),
            body,
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| Failure::new(1, e.to_string()))?;
        line.push(b'\n');
        state
            .write_all(&line)
            .and_then(|()| state.sync_data())
            .map_err(|e| {
                Failure::new(
                    1,
                    format!(
                        "cannot record message {i} in `{}`: {e}",
                        opts.state.display()
                    ),
                )
            })?;
        offsets.push(offset);
    }
    let range = match (offsets.first(), offsets.last()) {
        (Some(a), Some(b)) => format!(" (offsets {a}..={b})"),
        _ => String::new(),
    };
    println!(
        "wrote {n} messages between {} and {}{range}, recorded in {}",
        opts.users.0,
        opts.users.1,
        opts.state.display()
    );
    Ok(())
}

/// Reads the state file; a torn last line (the probe died while recording) is skipped.
fn read_state(path: &Path) -> Result<Vec<Acked>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(1, format!("cannot read `{}`: {e}", path.display())))?;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Acked>(line) {
            Ok(a) => out.push(a),
            Err(_) if i + 1 == lines.len() && !complete => {
                eprintln!(
                    "im-probe: skipping the torn last line of {}",
                    path.display()
                );
            }
            Err(e) => {
                return Err(Failure::new(
                    1,
                    format!(
                        "line {} of `{}` is not a record: {e}",
                        i + 1,
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn verify(opts: &Options) -> Result<(), Failure> {
    let acked = read_state(&opts.state)?;
    let mut by_conversation: BTreeMap<&str, Vec<&Acked>> = BTreeMap::new();
    for a in &acked {
        by_conversation.entry(&a.conversation).or_default().push(a);
    }
    let (mut missing, mut changed, mut disordered) = (0u64, 0u64, 0u64);
    let mut problems = Vec::new();
    for (conversation, records) in &by_conversation {
        let first = records[0];
        let stored = history(opts, &first.from, &first.to)?;
        let mut last_offset = None;
        for a in records {
            if last_offset.is_some_and(|l| a.offset <= l) {
                disordered += 1;
                problems.push(format!(
                    "{conversation}@{}: acknowledged after offset {:?}",
                    a.offset, last_offset
                ));
            }
            last_offset = Some(a.offset);
            match stored.get(a.offset as usize) {
                None => {
                    missing += 1;
                    problems.push(format!(
                        "{conversation}@{}: missing (\"{}\")",
                        a.offset, a.body
                    ));
                }
                Some(m)
                    if m["body"] != a.body.as_str()
                        || m["from"] != a.from.as_str()
                        || m["offset"] != a.offset =>
                {
                    changed += 1;
                    problems.push(format!(
                        "{conversation}@{}: expected \"{}\", found {m}",
                        a.offset, a.body
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let mut summary = format!("verified {} messages, {missing} missing", acked.len());
    if changed > 0 {
        summary.push_str(&format!(", {changed} changed"));
    }
    if disordered > 0 {
        summary.push_str(&format!(", {disordered} out of order"));
    }
    println!("{summary}");
    for p in problems.iter().take(20) {
        eprintln!("im-probe: {p}");
    }
    if missing + changed + disordered > 0 {
        return Err(Failure::new(1, "acknowledged messages were lost"));
    }
    Ok(())
}

/// Every message of the conversation between `a` and `b`, indexed by offset.
fn history(opts: &Options, a: &str, b: &str) -> Result<Vec<Value>, Failure> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let url = format!(
            "{}/conversations/{a}/{b}?from={}&limit={PAGE}",
            opts.server,
            all.len()
        );
        let r = client::get(&url, TIMEOUT).map_err(|e| Failure::runtime(&e))?;
        if !r.is_success() {
            return Err(Failure::new(
                1,
                format!("GET {url}: status {}: {}", r.status, r.message()),
            ));
        }
        let page: Value = r
            .json()
            .map_err(|e| Failure::new(1, format!("GET {url}: {e}")))?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        let done = (messages.len() as u64) < PAGE;
        all.extend(messages);
        if done {
            return Ok(all);
        }
    }
}
