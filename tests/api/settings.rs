//! Settings are read once at start-up: a function or the CLI given a value it cannot use stops
//! at once with a message naming the variable, instead of running on a silent default.

use std::process::Command;

#[test]
fn a_bad_setting_stops_a_function_and_the_cli_naming_the_variable() {
    let binaries =
        [env!("CARGO_BIN_EXE_get_key"), env!("CARGO_BIN_EXE_retention_stream"), env!("CARGO_BIN_EXE_apikeys")];
    for (variable, value) in [("RETENTION_DAYS", "abc"), ("AWS_LAMBDA_LOG_LEVEL", "loud"), ("TABLE_NAME", "a b")] {
        for binary in binaries {
            let output = Command::new(binary)
                .args(["root-key", "create", "--company", "acme"])
                .env(variable, value)
                .env("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
                .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
                .output()
                .expect("run the binary");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{binary} with {variable}={value} must not start");
            assert!(stderr.contains(variable), "{binary} with {variable}={value}: {stderr}");
        }
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
        let output = Command::new(env!("CARGO_BIN_EXE_root_key_resource"))
            .env_remove("ROOT_KEY_COMPANY")
            .env_remove("ROOT_KEY_LOCAL_RESPONSE_HOST")
            .env_remove("DYNAMODB_ENDPOINT")
            .envs(vars.iter().copied())
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{vars:?} must not start");
        assert!(stderr.contains(variable), "{vars:?}: {stderr}");
    }
}
