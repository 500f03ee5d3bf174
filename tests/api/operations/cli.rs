//! The operator CLI: `apikeys root-key create`.

use std::process::Command;

use lambda_http::http::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{spawn_app, unique};

#[tokio::test]
async fn root_key_create_prints_only_json_and_the_key_works() {
    let app = spawn_app().await;
    let company = unique("cli");
    let output = Command::new(env!("CARGO_BIN_EXE_apikeys"))
        .args(["root-key", "create", "--company", &company, "--description", "first root key"])
        .env("TABLE_NAME", &app.table)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(printed["companyId"], company.as_str());
    assert_eq!(printed["description"], "first root key");
    assert_eq!(printed["acl"], serde_json::json!([{ "scope": {}, "permissions": ["keys:*"] }]));
    let key = printed["key"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains(key), "the secret goes to stdout only");

    let listed = app.send(Method::GET, "/keys", Some(key), None, &[]).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["data"][0]["companyId"], company.as_str());
}

#[test]
fn bad_arguments_exit_2_with_usage_on_stderr() {
    for args in [vec!["root-key", "create"], vec!["root-key", "create", "--company", "bad id"], vec!["keys", "list"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_apikeys")).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty());
        assert!(String::from_utf8_lossy(&output.stderr).contains("usage: apikeys root-key create"));
    }
}
