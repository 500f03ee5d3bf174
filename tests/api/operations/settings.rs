//! Settings are read once at start-up: a function or the CLI given a value it cannot use stops
//! at once with a message naming the variable, instead of running on a silent default.

use std::process::Command;

use crate::lambda_harness::LAMBDA_BINARY;

#[test]
fn a_bad_setting_stops_a_function_and_the_cli_naming_the_variable() {
    // The Lambda binary as the get_key and retention_stream functions run it, and the CLI.
    let binaries = [
        (LAMBDA_BINARY, Some("get_key")),
        (LAMBDA_BINARY, Some("retention_stream")),
        (env!("CARGO_BIN_EXE_apikeys"), None),
    ];
    for (variable, value) in [("RETENTION_DAYS", "abc"), ("AWS_LAMBDA_LOG_LEVEL", "loud"), ("TABLE_NAME", "a b")] {
        for (binary, function) in binaries {
            let output = Command::new(binary)
                .args(["root-key", "create", "--company", "acme"])
                .env_remove("FUNCTION")
                .envs(function.map(|f| ("FUNCTION", f)))
                .env(variable, value)
                .env("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
                .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
                .output()
                .expect("run the binary");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{binary} {function:?} with {variable}={value} must not start");
            assert!(stderr.contains(variable), "{binary} {function:?} with {variable}={value}: {stderr}");
        }
    }
}

/// The Lambda binary serves what `FUNCTION` names and nothing by default: unset, empty or not a
/// function of the service, it does not start, and says which variable is wrong.
#[test]
fn the_lambda_binary_needs_a_function_it_knows() {
    for value in [None, Some(""), Some("lambda"), Some("getKey"), Some("get_key ,me")] {
        let output = Command::new(LAMBDA_BINARY)
            .env_remove("FUNCTION")
            .envs(value.map(|v| ("FUNCTION", v)))
            .env("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "FUNCTION={value:?} must not start");
        assert!(stderr.contains("FUNCTION"), "FUNCTION={value:?}: {stderr}");
    }
}

/// The root-key resource function mints only its stack's company: without `ROOT_KEY_COMPANY`,
/// or with one that is no company id, it does not start; a local-testing allowance beside
/// DynamoDB in AWS (no `DYNAMODB_ENDPOINT`) stops it too.
#[test]
fn the_root_key_function_needs_its_company_and_no_local_allowance_in_aws() {
    let cases: [&[(&str, &str)]; 3] = [
        &[("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")],
        &[("DYNAMODB_ENDPOINT", "http://127.0.0.1:9"), ("ROOT_KEY_COMPANY", "not a company!")],
        &[("ROOT_KEY_COMPANY", "acme"), ("ROOT_KEY_LOCAL_RESPONSE_HOST", "127.0.0.1:9000")],
    ];
    for (vars, variable) in
        cases.into_iter().zip(["ROOT_KEY_COMPANY", "ROOT_KEY_COMPANY", "ROOT_KEY_LOCAL_RESPONSE_HOST"])
    {
        let unset = ["ROOT_KEY_COMPANY", "ROOT_KEY_LOCAL_RESPONSE_HOST", "DYNAMODB_ENDPOINT"];
        assert_does_not_start("root_key_resource", &unset, vars, variable);
    }
}

/// The `Custom::ApiKey` function does not start without the prefix its secrets are named under
/// (its policy allows no other names), nor with companies that are no company ids.
#[test]
fn the_api_key_function_needs_its_secret_prefix_and_company_ids() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("API_KEY_RESOURCE_COMPANIES", "acme")], "API_KEY_RESOURCE_SECRET_PREFIX"),
        (
            &[("API_KEY_RESOURCE_COMPANIES", "acme;globex"), ("API_KEY_RESOURCE_SECRET_PREFIX", "apikeys/api-keys/")],
            "API_KEY_RESOURCE_COMPANIES",
        ),
        (
            &[("API_KEY_RESOURCE_MANAGEMENT_KEYS", "1"), ("API_KEY_RESOURCE_SECRET_PREFIX", "apikeys/api-keys/")],
            "API_KEY_RESOURCE_MANAGEMENT_KEYS",
        ),
    ];
    for (vars, variable) in cases {
        let unset =
            ["API_KEY_RESOURCE_COMPANIES", "API_KEY_RESOURCE_MANAGEMENT_KEYS", "API_KEY_RESOURCE_SECRET_PREFIX"];
        let vars: Vec<(&str, &str)> =
            [("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")].into_iter().chain(vars.iter().copied()).collect();
        assert_does_not_start("api_key_resource", &unset, &vars, variable);
    }
}

/// The Lambda binary serving `function`, with `unset` removed and `vars` set, stops at start-up
/// naming `variable`.
fn assert_does_not_start(function: &str, unset: &[&str], vars: &[(&str, &str)], variable: &str) {
    let mut command = Command::new(LAMBDA_BINARY);
    command.env("FUNCTION", function);
    for name in unset {
        command.env_remove(name);
    }
    let output = command
        .envs(vars.iter().copied())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{function} with {vars:?} must not start");
    assert!(stderr.contains(variable), "{function} with {vars:?}: {stderr}");
}
