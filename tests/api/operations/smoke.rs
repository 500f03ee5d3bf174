//! `apikeys smoke`, run as a pipeline runs it, against the local server served in process on a
//! free port: its exit status, its lines (one per request, with status and latency) and what it
//! leaves in the table.

use std::process::{Command, Output};

use lambda_http::http::{Method, StatusCode};
use regex::Regex;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// What a run printed, as (step, status, ok) per request line, and its last line.
struct Run {
    code: Option<i32>,
    steps: Vec<(String, String, bool)>,
    summary: String,
    printed: String,
}

async fn smoke(url: &str, root_key: &str) -> Run {
    smoke_with(url, root_key, false).await
}

/// `apikeys smoke`, its root key in `APIKEYS_ROOT_KEY`, or with `as_argument` in `--root-key`.
async fn smoke_with(url: &str, root_key: &str, as_argument: bool) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_apikeys"));
    command.args(["smoke", "--url", url]).env_remove("APIKEYS_ROOT_KEY");
    if as_argument {
        command.args(["--root-key", root_key]);
    } else {
        command.env("APIKEYS_ROOT_KEY", root_key);
    }
    let output: Output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run apikeys");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = Regex::new(r"^(?<step>.{15}) (?<status>\d{3}|---) +\d+ ms  (?<word>ok|FAIL) +[A-Z]+ /\S*").unwrap();
    let mut steps = Vec::new();
    let mut summary = String::new();
    for text in stdout.lines() {
        if let Some(found) = line.captures(text) {
            steps.push((found["step"].trim().to_owned(), found["status"].to_owned(), &found["word"] == "ok"));
        } else {
            assert!(text.starts_with("smoke: "), "a line that is neither a step nor the summary: {text:?}");
            summary = text.to_owned();
        }
    }
    let printed = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    Run { code: output.status.code(), steps, summary, printed }
}

/// The company's keys of a status, as the API lists them.
async fn listed(app: &TestApp, status: &str) -> Vec<Value> {
    let page = app.send(Method::GET, &format!("/keys?status={status}&limit=100"), Some(&app.root_key), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    page.body["data"].as_array().unwrap().clone()
}

/// The key a smoke run made (found by its description), which must be deleted.
async fn the_smoke_key_is_deleted(app: &TestApp) {
    let smoke_keys: Vec<Value> = listed(app, "all")
        .await
        .into_iter()
        .filter(|k| k["description"].as_str().is_some_and(|d| d.starts_with("smoke ")))
        .collect();
    assert_eq!(smoke_keys.len(), 1, "{smoke_keys:?}");
    assert_eq!(smoke_keys[0]["status"], "inactive");
    assert!(smoke_keys[0]["deletedAt"].is_string(), "{:?}", smoke_keys[0]);
}

#[tokio::test]
async fn smoke_walks_a_key_through_its_life_and_leaves_nothing_active() {
    let app = spawn_app().await;
    let served = app.serve().await;

    let run = smoke(&served.base, &app.root_key).await;

    assert_eq!(run.code, Some(0), "{}", run.printed);
    let expected = [
        ("create", "201"),
        ("get", "200"),
        ("list", "200"),
        ("verify", "200"),
        ("patch", "200"),
        ("roll", "200"),
        ("verify old", "200"),
        ("verify new", "200"),
        ("delete", "204"),
        ("verify new gone", "200"),
        ("verify old gone", "200"),
        ("get deleted", "200"),
    ]
    .map(|(step, status)| (step.to_owned(), status.to_owned(), true));
    assert_eq!(run.steps, expected, "{}", run.printed);
    assert!(run.summary.starts_with("smoke: ok, 12 requests"), "{}", run.printed);
    assert!(!run.printed.contains("sk_") && !run.printed.contains("pk_"), "no secret is printed:\n{}", run.printed);

    let active = listed(&app, "active").await;
    assert_eq!(active.len(), 1, "only the root key stays active: {active:?}");
    assert_eq!(active[0]["acl"], json!([{ "scope": {}, "permissions": ["keys:*"] }]));
    the_smoke_key_is_deleted(&app).await;
}

#[tokio::test]
async fn a_wrong_root_key_fails_the_first_step_and_creates_nothing() {
    let app = spawn_app().await;
    let served = app.serve().await;
    let (_, other_secret) = app.create_key_pair(&json!({ "userId": "u" })).await;
    // Its last character changed (to one it is not), so the checksum no longer matches.
    let (kept, last) = other_secret.split_at(other_secret.len() - 1);
    let wrong = format!("{kept}{}", if last == "x" { 'y' } else { 'x' });

    let run = smoke(&served.base, &wrong).await;

    assert_eq!(run.code, Some(1), "{}", run.printed);
    assert_eq!(run.steps, [("create".to_owned(), "401".to_owned(), false)], "{}", run.printed);
    assert!(run.summary.starts_with("smoke: FAILED, 1 requests"), "{}", run.printed);
    assert!(!run.printed.contains("sk_"), "the key given is not printed:\n{}", run.printed);
    assert_eq!(listed(&app, "all").await.len(), 2, "the root key and the one made here, nothing else");
}

#[tokio::test]
async fn a_step_that_breaks_the_contract_midway_stops_the_run_and_deletes_the_key() {
    let app = spawn_app().await;
    let served = app.serve().await;
    // A key that manages keys but may not verify them: the verify step answers 403.
    let (_, no_verify) =
        app.create_key_pair(&json!({ "userId": "ops", "acl": [{ "permissions": ["keys:read", "keys:write"] }] })).await;

    let run = smoke(&served.base, &no_verify).await;

    assert_eq!(run.code, Some(1), "{}", run.printed);
    let steps: Vec<(&str, &str, bool)> = run.steps.iter().map(|(s, c, ok)| (s.as_str(), c.as_str(), *ok)).collect();
    assert_eq!(
        steps,
        [
            ("create", "201", true),
            ("get", "200", true),
            ("list", "200", true),
            ("verify", "403", false),
            ("cleanup", "204", true)
        ],
        "{}",
        run.printed
    );
    assert!(run.summary.starts_with("smoke: FAILED, 5 requests"), "{}", run.printed);
    assert_eq!(listed(&app, "active").await.len(), 2, "the root key and the one made here stay active");
    the_smoke_key_is_deleted(&app).await;
}

#[test]
fn a_url_that_is_no_http_api_exits_2_before_any_request() {
    // Plain http to another machine would send the root key in clear.
    let urls = [
        "ftp://example.com",
        "not a url",
        "http://127.0.0.1:9/?x=1",
        "http://user:pw@127.0.0.1:9",
        "http://example.com",
        "http://10.0.0.1:3000",
        "http://[2001:db8::1]:3000",
    ];
    for url in urls {
        let output = Command::new(env!("CARGO_BIN_EXE_apikeys"))
            .args(["smoke", "--url", url, "--root-key", "sk_x"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{url}");
        assert!(output.stdout.is_empty(), "{url}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--url"), "{url}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_apikeys"))
        .args(["smoke", "--url", "http://127.0.0.1:9"])
        .env_remove("APIKEYS_ROOT_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("APIKEYS_ROOT_KEY (or --root-key) is required"));
}

#[tokio::test]
async fn the_root_key_may_come_from_the_environment_or_an_argument_and_localhost_is_plain_http() {
    let app = spawn_app().await;
    let served = app.serve().await;
    let port = served.base.rsplit(':').next().unwrap().to_owned();
    for (url, as_argument) in [(served.base.clone(), true), (format!("http://localhost:{port}"), false)] {
        let run = smoke_with(&url, &app.root_key, as_argument).await;
        assert_eq!(run.code, Some(0), "{url}: {}", run.printed);
    }
}

/// A served API that answers every request with `status` and `body`: a broken deploy.
async fn answering(status: u16, body: Value) -> String {
    answering_recorded(status, body).await.0
}

/// `answering`, and the request lines it was sent (`DELETE /keys/k1`), in order.
async fn answering_recorded(status: u16, body: Value) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.to_string();
            let record = record.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0; 65536];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                let line = text.lines().next().unwrap_or_default().trim_end_matches(" HTTP/1.1").to_owned();
                record.lock().unwrap().push(line);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: \
                     close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

/// What smoke prints must hold no secret, root key or hash, even when a broken API answers
/// one where smoke shows a value (a field it compares, an error code), and even when the
/// pipeline's arguments are shifted (an empty `$URL` unquoted) or swapped.
#[tokio::test]
async fn smoke_prints_no_secret_root_key_or_hash_whatever_it_is_given() {
    let app = spawn_app().await;
    let (_, secret) = app.create_key_pair(&json!({ "userId": "u" })).await;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
    let leaked =
        |printed: &str| [&secret, &app.root_key, &hash].into_iter().find(|s| printed.contains(s.as_str())).cloned();

    let echo_secret = answering(201, json!({ "id": "k1", "key": secret, "description": secret })).await;
    let echo_hash = answering(401, json!({ "error": { "code": hash, "message": "m" } })).await;
    for base in [echo_secret, echo_hash] {
        let run = smoke(&base, &app.root_key).await;
        assert_eq!(run.code, Some(1), "{}", run.printed);
        assert_eq!(leaked(&run.printed), None, "printed:\n{}", run.printed);
    }

    let root = app.root_key.as_str();
    for args in [
        vec!["smoke", "--url", "--root-key", root],
        vec!["smoke", "--url", root, "--root-key", "http://127.0.0.1:9"],
        vec!["smoke", "--root-key", root, "http://127.0.0.1:9"],
        vec!["smoke", "--url", "http://127.0.0.1:9", root],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_apikeys")).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(leaked(&printed), None, "{args:?} printed:\n{printed}");
    }
}

/// A create answered 201 whose answer breaks the contract (here: no Location header, no
/// description) still made a key: smoke deletes it, as it promises to leave nothing active.
#[tokio::test]
async fn a_key_made_by_a_create_whose_answer_broke_the_contract_is_deleted() {
    let secret = apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret);
    let (base, seen) = answering_recorded(201, json!({ "id": "k1", "key": secret.expose() })).await;
    let run = smoke(&base, "sk_root").await;
    assert_eq!(run.code, Some(1), "{}", run.printed);
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent, ["POST /keys", "DELETE /keys/k1"], "{}", run.printed);

    // An id that is no key id is never put in the path the cleanup deletes.
    let (base, seen) = answering_recorded(201, json!({ "id": "k1?force=true", "key": secret.expose() })).await;
    let run = smoke(&base, "sk_root").await;
    assert_eq!(seen.lock().unwrap().clone(), ["POST /keys"], "{}", run.printed);
}
