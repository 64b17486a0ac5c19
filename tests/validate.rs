//! `appmodel validate` and `appmodel graph` on the sample and on one bad model per error
//! class. Each snapshot holds the exact message, file:line:column and hint a user sees.
#![allow(clippy::unwrap_used)]

mod common;

use common::{appmodel, fixtures, root};

fn validate_fixture(name: &str) -> String {
    let run = appmodel(
        &fixtures().join("models"),
        &["validate", "-f", &format!("{name}.yaml")],
    );
    assert_eq!(
        run.code,
        1,
        "a bad model must exit 1:\n{}",
        run.transcript()
    );
    assert!(run.stdout.is_empty());
    run.transcript()
}

macro_rules! bad_model {
    ($($test:ident => $file:literal,)*) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!(validate_fixture($file));
        }
    )*};
}

bad_model! {
    unknown_field_suggests_the_closest_name => "unknown-field",
    wrong_types_are_all_reported => "wrong-type",
    dangling_dependencies_and_references => "dangling-reference",
    duplicate_component_port_and_volume_names => "duplicate-names",
    a_port_used_twice_on_the_host => "host-port-twice",
    dependency_cycles_print_the_chain => "cycle",
    bad_semver => "bad-semver",
    reference_to_an_undeclared_parameter => "undeclared-parameter",
    defaults_that_fail_their_own_type => "bad-default",
    yaml_syntax_error => "yaml-syntax",
    duplicate_yaml_key => "duplicate-key",
    missing_required_fields => "missing-field",
    unsupported_api_version => "bad-api-version",
    health_check_and_image_source_rules => "bad-health-and-image",
    // Regression: site trust defect 6, alias bomb (ran out of memory).
    an_alias_bomb_is_refused_at_the_alias => "alias-bomb",
    // Regression: site trust defect 6, nesting deep enough to overflow a stack.
    nesting_too_deep_is_refused => "deep-nesting",
    // Regression: site trust defects 7a and 10: `2.0` for an integer was "cannot read the
    // document" at 1:1; `.inf`, `.nan` and `1e309` were silently dropped.
    floats_for_integers_and_numbers_that_are_not_numbers => "not-numbers",
    // `app.upgrade_from` is a semver requirement.
    an_upgrade_from_that_is_not_a_requirement => "bad-upgrade-from",
    // The `licence` section: key, plans, entitlements, trial, `${licence.NAME}`.
    every_licence_problem_with_its_position => "bad-licence",
    // The `requirements` section: minimums, their units, the vendor's checks.
    every_requirements_problem_with_its_position => "bad-requirements",
}

#[test]
fn errors_as_json_carry_line_column_and_field() {
    let run = appmodel(
        &fixtures().join("models"),
        &["validate", "-f", "cycle.yaml", "--json"],
    );
    assert_eq!(run.code, 1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors[0]["message"],
        "dependency cycle: web -> api -> db -> web"
    );
    assert_eq!(errors[0]["line"], 8);
    assert_eq!(errors[0]["column"], 5);
    assert_eq!(errors[0]["field"], "components[0].depends_on");
}

#[test]
fn both_sample_versions_validate() {
    for version in ["1.0.0", "1.1.0"] {
        let file = format!("samples/im-stack/versions/{version}/appmodel.yaml");
        let run = appmodel(&root(), &["validate", "-f", &file]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert_eq!(
            run.stdout,
            format!(
                "ok: `{file}` is a valid model of im-stack {version} (3 components, {} parameters)\n",
                if version == "1.0.0" { 3 } else { 4 }
            )
        );
    }
}

#[test]
fn the_sample_graph_in_every_format() {
    let file = "samples/im-stack/versions/1.1.0/appmodel.yaml";
    let text = appmodel(&root(), &["graph", "-f", file]);
    let dot = appmodel(&root(), &["graph", "-f", file, "--format", "dot"]);
    let json = appmodel(&root(), &["graph", "-f", file, "--format", "json"]);
    insta::assert_snapshot!("sample_graph_text", text.transcript());
    insta::assert_snapshot!("sample_graph_dot", dot.transcript());
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        v["levels"],
        serde_json::json!([["im-store", "push-service"], ["im-server"]])
    );
    assert_eq!(
        v["start_order"],
        serde_json::json!(["im-store", "push-service", "im-server"])
    );
    assert_eq!(
        v["stop_order"],
        serde_json::json!(["im-server", "push-service", "im-store"])
    );
}

#[test]
fn a_missing_model_file_is_a_user_error_with_a_hint() {
    let run = appmodel(&fixtures(), &["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: cannot read `appmodel.yaml`: it does not exist\n\
         hint: give the file with `-f FILE`, or run appmodel in the directory that holds it\n"
    );
}

#[test]
fn a_bad_flag_is_a_user_error() {
    let run = appmodel(&fixtures(), &["validate", "--nope"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unexpected argument '--nope'"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["graph", "--help"],
        vec!["config", "--help"],
        vec!["config", "init", "--help"],
        vec!["config", "check", "--help"],
        vec!["schema", "--help"],
    ] {
        let run = appmodel(&root(), &args);
        assert_eq!(run.code, 0, "{args:?}");
        assert!(
            run.stdout.contains("Usage: appmodel"),
            "{args:?}: {}",
            run.stdout
        );
    }
}

/// Regression: site trust defect 6. `-f` naming a FIFO hung, `/dev/zero` ran out of memory,
/// a directory was an I/O error (exit 2); a 100 MB model was read whole.
#[test]
fn a_model_file_that_is_not_a_regular_file_or_too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = common::hostile_files(dir.path(), 100 << 20, 4 << 20);
    for (file, why) in &cases {
        for command in [
            &["validate"][..],
            &["graph"],
            &["config", "init", "-o", "-"],
        ] {
            let mut args = command.to_vec();
            args.extend(["-f", file]);
            appmodel(dir.path(), &args)
                .assert_refused(&format!("error: cannot read `{file}`: {why}\n"));
        }
    }
}
