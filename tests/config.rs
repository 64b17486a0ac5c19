//! `appmodel config init` and `appmodel config check` against the sample's parameters.
#![allow(clippy::unwrap_used)]

mod common;

use common::{appmodel, fixtures, root};

const MODEL: &str = "samples/im-stack/versions/1.1.0/appmodel.yaml";

fn check(config: &str) -> common::Run {
    let file = fixtures().join("site-configs").join(config);
    appmodel(
        &root(),
        &["config", "check", "-f", MODEL, file.to_str().unwrap()],
    )
}

#[test]
fn init_writes_a_commented_template_with_every_parameter() {
    let run = appmodel(&root(), &["config", "init", "-f", MODEL, "-o", "-"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn the_template_fails_check_until_the_required_values_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join(MODEL);
    let out = dir.path().join("site-config.yaml");
    let run = appmodel(
        dir.path(),
        &["config", "init", "-f", model.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run
        .stdout
        .starts_with("wrote `site-config.yaml`: 4 parameters of im-stack 1.1.0"));

    let run = appmodel(
        dir.path(),
        &[
            "config",
            "check",
            "-f",
            model.to_str().unwrap(),
            "site-config.yaml",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: required parameter `domain` has no value\n --> site-config.yaml:9:9 (params.domain)\n"), "{}", run.stderr);

    let text = std::fs::read_to_string(&out)
        .unwrap()
        .replace("  domain:\n", "  domain: chat.plant.example\n");
    std::fs::write(&out, text).unwrap();
    let run = appmodel(
        dir.path(),
        &[
            "config",
            "check",
            "-f",
            model.to_str().unwrap(),
            "site-config.yaml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.stdout, "ok: `site-config.yaml` is a valid configuration of im-stack 1.1.0 (3 of 4 parameters set)\n");
}

#[test]
fn init_does_not_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join(MODEL);
    std::fs::write(dir.path().join("site-config.yaml"), "keep me\n").unwrap();
    let run = appmodel(
        dir.path(),
        &["config", "init", "-f", model.to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: `site-config.yaml` exists already; pass `--force` to replace it\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("site-config.yaml")).unwrap(),
        "keep me\n"
    );
    let run = appmodel(
        dir.path(),
        &["config", "init", "--force", "-f", model.to_str().unwrap()],
    );
    assert_eq!(run.code, 0);
}

#[test]
fn a_good_config_passes() {
    let run = check("good.yaml");
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn every_problem_in_a_config_is_reported_with_its_line() {
    insta::assert_snapshot!(check("bad.yaml")
        .transcript()
        .replace(&fixtures().display().to_string(), "FIXTURES"));
}

#[test]
fn an_empty_required_value_and_a_wrong_type() {
    insta::assert_snapshot!(check("empty-required.yaml")
        .transcript()
        .replace(&fixtures().display().to_string(), "FIXTURES"));
}

#[test]
fn a_config_for_another_app_and_an_unknown_section() {
    insta::assert_snapshot!(check("wrong-app.yaml")
        .transcript()
        .replace(&fixtures().display().to_string(), "FIXTURES"));
}

#[test]
fn config_errors_as_json() {
    let file = fixtures().join("site-configs/bad.yaml");
    let run = appmodel(
        &root(),
        &[
            "config",
            "check",
            "--json",
            "-f",
            MODEL,
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "params.domain",
            "params.domian",
            "params.max_users",
            "params.read_receipts",
            "params.admin_secret"
        ]
    );
}

/// Regression: site trust defect 6. A billion laughs in a site configuration ran
/// `config check` (and `install --config`, same parser) out of memory.
#[test]
fn an_alias_bomb_in_a_config_is_refused_at_the_alias() {
    let run = check("alias-bomb.yaml");
    run.assert_refused("error: this alias makes the document expand to more than 250000 values\n");
    assert!(run.stderr.contains("alias-bomb.yaml:7:"), "{}", run.stderr);
}

/// Regression: site trust defect 10: `.inf` for an integer parameter was reported valid and
/// then dropped (the default was used).
#[test]
fn a_number_that_is_not_a_number_is_refused_with_its_line() {
    insta::assert_snapshot!(check("not-numbers.yaml")
        .transcript()
        .replace(&fixtures().display().to_string(), "FIXTURES"));
    for v in ["-.inf", ".NaN", "1e309", "2.5"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            format!("params:\n  domain: a.example\n  max_users: {v}\n"),
        )
        .unwrap();
        let run = appmodel(
            &root(),
            &["config", "check", "-f", MODEL, file.to_str().unwrap()],
        );
        run.assert_refused("c.yaml:3:14 (params.max_users)");
    }
}

/// Regression: site trust defect 6. A config file that is a FIFO hung, `/dev/zero` ran out
/// of memory, a 50 MB one was read whole.
#[test]
fn a_config_file_that_is_not_a_regular_file_or_too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = common::hostile_files(dir.path(), 50 << 20, 1 << 20);
    for (file, why) in &cases {
        appmodel(&root(), &["config", "check", "-f", MODEL, file])
            .assert_refused(&format!("error: cannot read `{file}`: {why}\n"));
        // Without `-f`, where the model is looked up on the site by the file's `app`: the
        // file is read the same way, first.
        let state = dir.path().join("state");
        appmodel(
            dir.path(),
            &[
                "config",
                "check",
                file,
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
        .assert_refused(&format!("error: cannot read `{file}`: {why}\n"));
    }
}

/// Regression: site trust defect 9. The message hid a bad secret but the source excerpt under
/// it printed it in clear. No output, human or `--json`, failing or not, shows the value.
#[test]
fn a_secret_never_appears_in_the_output() {
    let dir = fixtures().join("secret-model");
    let secret = "Tr0ub4dor&3-horse";
    let good = "0123456789abcdef0123456789abcdef";
    for json in [false, true] {
        let mut args = vec!["config", "check", "bad-secret.yaml"];
        if json {
            args.push("--json");
        }
        let run = appmodel(&dir, &args);
        assert_eq!(run.code, 1, "{}", run.transcript());
        assert!(
            run.stderr.contains(
                "the value does not match the pattern `[a-f0-9]{32}` of parameter `api_token`"
            ) || run.stdout.contains("the value does not match the pattern"),
            "{}",
            run.transcript()
        );
        assert!(!run.transcript().contains(secret), "{}", run.transcript());
        assert!(!run.transcript().contains("Tr0ub"), "{}", run.transcript());
        if !json {
            insta::assert_snapshot!("a_bad_secret_masked", run.transcript());
        }
        let mut args = vec!["config", "check", "good-secret.yaml"];
        if json {
            args.push("--json");
        }
        let run = appmodel(&dir, &args);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(!run.transcript().contains(good), "{}", run.transcript());
    }
}

/// On a site, `config check` without `-f` finds the model of the newest imported version of
/// the file's `app`; an app the site does not hold is a clear error, exit 1.
#[test]
fn on_a_site_the_check_uses_the_imported_model_of_the_files_app() {
    if !common::engines::sample_built(&root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = root().join(MODEL);
    let run = common::publish(&d.join("store"), &model, "1.1.0", &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let store = d.join("store");
    let run = appmodel(
        d,
        &[
            "export",
            "--version",
            "1.1.0",
            "--format",
            "systemd",
            "--store",
            store.to_str().unwrap(),
            "-o",
            "bundle",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let run = appmodel(
        d,
        &[
            "import",
            "bundle",
            "--allow-unsigned",
            "--state-dir",
            "state",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let run = appmodel(
        d,
        &[
            "config",
            "init",
            "-f",
            model.to_str().unwrap(),
            "-o",
            "site.yaml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let text = std::fs::read_to_string(d.join("site.yaml")).unwrap();
    std::fs::write(
        d.join("site.yaml"),
        text.replace("  domain:\n", "  domain: chat.example\n"),
    )
    .unwrap();

    let run = appmodel(d, &["config", "check", "site.yaml", "--state-dir", "state"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        run.stderr,
        "checking against the model of im-stack 1.1.0, imported on this site\n"
    );
    assert!(
        run.stdout
            .starts_with("ok: `site.yaml` is a valid configuration of im-stack 1.1.0"),
        "{}",
        run.stdout
    );

    std::fs::write(
        d.join("other.yaml"),
        text.replace("app: im-stack", "app: other"),
    )
    .unwrap();
    let run = appmodel(
        d,
        &["config", "check", "other.yaml", "--state-dir", "state"],
    );
    run.assert_refused(
        "error: no version of `other` (the `app` of `other.yaml`) is imported on this site",
    );
}
