//! No secret in a log line: every event and span of a full run, from every crate (the service,
//! the AWS SDK, hyper) at TRACE, is captured and searched for every plaintext key and every
//! SHA-256 hash the run involved. The subscriber is set for this test's thread only
//! (`set_default` on a current-thread runtime), so parallel tests neither add to nor see it.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use apikeys::entry::local::dispatch;
use lambda_http::Body;
use lambda_http::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::helpers::{CLIENT_IP, TestApp, mistyped, spawn_app};

/// One captured event: its level, target and everything it printed, its spans' fields included.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    text: String,
}

#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<Line>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(format!("{}{{", attrs.metadata().name()));
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let mut text = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    let _ = write!(text, "{}}}:", span_fields.0);
                }
            }
        }
        text.push_str(&fields.0);
        let line = Line { level: *event.metadata().level(), target: event.metadata().target().to_owned(), text };
        self.0.lock().unwrap().push(line);
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Collects every plaintext key an answer shows.
fn keep_key(secrets: &mut Vec<String>, body: &Value) {
    if let Some(key) = body["key"].as_str() {
        secrets.push(key.to_owned());
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> crate::helpers::TestResponse {
    app.send(method, path, Some(key), body.as_ref(), headers).await
}

/// A full lifecycle: the root key, secret and publishable keys, an idempotent create and its
/// replay and misuse, verify passing and failing, roll with grace, patch, delete, lists, the
/// audit trail, bad and missing credentials and a 503; returns every secret it saw.
/// A key imported by its hash, then verified with its plaintext (neither may be logged): the
/// plaintext.
async fn imported_key(app: &TestApp) -> String {
    let root = app.root_key.clone();
    let imported = "legacy_live_00c0ffee00c0ffee".to_owned();
    let hash = json!({ "algorithm": "sha256", "encoding": "hex", "value": sha256_hex(&imported) });
    let body = json!({ "keys": [{ "hash": hash, "userId": "u" }] });
    let import = send(app, Method::POST, "/keys/import", &root, Some(body.clone()), &[]).await;
    assert!(import.body["keys"][0]["id"].is_string(), "{:?}", import.body);
    let again = send(app, Method::POST, "/keys/import", &root, Some(body), &[]).await;
    assert_eq!(again.body["keys"][0]["error"]["code"], "key_exists");
    let verified = send(app, Method::POST, "/keys/verify", &root, Some(json!({ "key": imported })), &[]).await;
    assert_eq!(verified.body["code"], "VALID");
    imported
}

async fn lifecycle(app: &TestApp) -> Vec<String> {
    let root = app.root_key.clone();
    let mut secrets = vec![root.clone()];
    let created = send(
        app,
        Method::POST,
        "/keys",
        &root,
        Some(json!({
            "userId": "user-1", "description": "billing", "rateLimit": { "limit": 5, "periodSeconds": 60 },
            "quota": { "max": 10 }, "whitelistedIPs": ["203.0.113.0/24"], "acl": [{ "permissions": ["orders:read"] }]
        })),
        &[],
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    keep_key(&mut secrets, &created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["key"].as_str().unwrap().to_owned();

    let publishable =
        send(app, Method::POST, "/keys/pub-1", &root, Some(json!({ "userId": "user-2", "type": "publishable" })), &[])
            .await;
    assert_eq!(publishable.status, StatusCode::CREATED);
    keep_key(&mut secrets, &publishable.body);
    let again = send(app, Method::GET, "/keys/pub-1", &root, None, &[]).await;
    keep_key(&mut secrets, &again.body);

    let idempotency = [("idempotency-key", "order-4711-create")];
    let first = send(app, Method::POST, "/keys", &root, Some(json!({ "userId": "user-3" })), &idempotency).await;
    let replay = send(app, Method::POST, "/keys", &root, Some(json!({ "userId": "user-3" })), &idempotency).await;
    assert_eq!((first.status, replay.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first.body["key"], replay.body["key"]);
    keep_key(&mut secrets, &first.body);
    let misuse = send(app, Method::POST, "/keys", &root, Some(json!({ "userId": "user-4" })), &idempotency).await;
    assert_eq!(misuse.status, StatusCode::UNPROCESSABLE_ENTITY);

    let verify = |body: Value| send(app, Method::POST, "/keys/verify", &root, Some(body), &[]);
    assert_eq!(
        verify(json!({ "key": secret, "ip": "203.0.113.9", "permissions": ["orders:read"] })).await.body["code"],
        "VALID"
    );
    assert_eq!(verify(json!({ "key": secret, "ip": "198.51.100.1" })).await.body["code"], "IP_NOT_ALLOWED");
    assert_eq!(
        verify(json!({ "key": secret, "ip": "203.0.113.9", "permissions": ["orders:write"] })).await.body["code"],
        "FORBIDDEN"
    );
    let mistyped = mistyped(&secret);
    secrets.push(mistyped.clone());
    assert_eq!(verify(json!({ "key": mistyped })).await.body["code"], "NOT_FOUND");
    let unknown = apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret).expose().to_owned();
    secrets.push(unknown.clone());
    assert_eq!(verify(json!({ "key": unknown })).await.body["code"], "NOT_FOUND");
    for _ in 0..5 {
        verify(json!({ "key": secret, "ip": "203.0.113.9" })).await;
    }
    assert_eq!(verify(json!({ "key": secret, "ip": "203.0.113.9" })).await.body["code"], "RATE_LIMITED");

    // Its own future, boxed: the test's is large enough at TRACE in a debug build.
    secrets.push(Box::pin(imported_key(app)).await);

    let rolled =
        send(app, Method::POST, &format!("/keys/{id}/roll"), &root, Some(json!({ "gracePeriodSeconds": 600 })), &[])
            .await;
    assert_eq!(rolled.status, StatusCode::OK);
    keep_key(&mut secrets, &rolled.body);
    app.advance(120);
    assert_eq!(verify(json!({ "key": secret, "ip": "203.0.113.9" })).await.body["code"], "VALID", "in grace");
    let patched = send(
        app,
        Method::PATCH,
        &format!("/keys/{id}"),
        &root,
        Some(json!({ "description": "renamed", "status": "inactive" })),
        &[],
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(verify(json!({ "key": rolled.body["key"], "ip": "203.0.113.9" })).await.body["code"], "INACTIVE");
    let stale = send(
        app,
        Method::PATCH,
        &format!("/keys/{id}"),
        &root,
        Some(json!({ "description": "x" })),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        send(app, Method::DELETE, &format!("/keys/{id}"), &root, None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(app, Method::DELETE, &format!("/keys/{id}"), &root, None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(verify(json!({ "key": secret })).await.body["code"], "NOT_FOUND");
    for query in ["", "?status=inactive", "?status=all&limit=1", "?startingAfter=nope"] {
        send(app, Method::GET, &format!("/keys{query}"), &root, None, &[]).await;
    }
    send(app, Method::GET, &format!("/keys/{id}/events"), &root, None, &[]).await;
    assert_eq!(send(app, Method::GET, "/keys/missing", &root, None, &[]).await.status, StatusCode::NOT_FOUND);

    // Credentials that fail: a deleted key, a mistyped root key, a publishable key, none.
    for bad in [secret.as_str(), mistyped.as_str(), publishable.body["key"].as_str().unwrap()] {
        let refused = [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN];
        assert!(refused.contains(&send(app, Method::GET, "/keys", bad, None, &[]).await.status));
        let x_api_key =
            Request::builder().method(Method::GET).uri("/keys").header("x-api-key", bad).body(Body::Empty).unwrap();
        assert!(refused.contains(&app.send_request(x_api_key).await.status));
    }
    assert_eq!(app.send(Method::GET, "/keys", None, None, &[]).await.status, StatusCode::UNAUTHORIZED);

    // The database unreachable: a 503, logged.
    let down = crate::helpers::app_with_unreachable_database(&app.table).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/keys/verify")
        .header("authorization", format!("Bearer {root}"))
        .header("content-type", "application/json")
        .body(Body::Text(json!({ "key": secret }).to_string()))
        .unwrap();
    assert_eq!(dispatch(&down, CLIENT_IP, request).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    secrets
}

/// Where each secret (or its hash) shows up: `(level, target, which, excerpt)`.
fn leaks(lines: &[Line], secrets: &[String]) -> Vec<(Level, String, String, String)> {
    let mut needles: Vec<(String, String)> = Vec::new();
    for secret in secrets {
        needles.push((secret.clone(), format!("key {}…", &secret[..7])));
        needles.push((sha256_hex(secret), format!("hash of key {}…", &secret[..7])));
    }
    needles.push(("order-4711-create".to_owned(), "Idempotency-Key header".to_owned()));
    let mut found = Vec::new();
    for line in lines {
        for (needle, what) in &needles {
            if let Some(at) = line.text.find(needle.as_str()) {
                let start = line.text.floor_char_boundary(at.saturating_sub(80));
                let end = line.text.ceil_char_boundary((at + needle.len() + 40).min(line.text.len()));
                found.push((line.level, line.target.clone(), what.clone(), line.text[start..end].to_owned()));
            }
        }
    }
    found
}

/// Runs the lifecycle with every event of this thread, at TRACE, captured.
/// Everything logged during a lifecycle: from every crate at TRACE, or (`as_deployed`) through
/// the filter the service installs in front of any `RUST_LOG`.
async fn captured_run(as_deployed: bool) -> (Vec<Line>, Vec<String>) {
    let app = spawn_app().await;
    let capture = Capture::default();
    let layer = capture.clone().with_filter(tracing_subscriber::filter::filter_fn(move |meta| {
        !(as_deployed && apikeys::entry::config::is_sdk_body_dump(meta))
    }));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    tracing::info!(target: "apikeys::secrets_test", "capture started");
    let secrets = lifecycle(&app).await;
    drop(guard);
    let lines = capture.0.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.target == "apikeys::secrets_test"), "the capture works");
    assert!(
        lines.iter().any(|l| l.target.starts_with("apikeys::") && l.target != "apikeys::secrets_test"),
        "the service logged"
    );
    let sdk_traced = lines.iter().any(|l| l.target.starts_with("aws_smithy") && l.level == Level::TRACE);
    assert_eq!(sdk_traced, !as_deployed, "the SDK logs at TRACE unless the service's filter stops it");
    assert!(secrets.len() >= 8);
    (lines, secrets)
}

fn describe(found: &[(Level, String, String, String)]) -> String {
    found.iter().map(|l| format!("{} {} ({}): …{}…", l.0, l.1, l.2, l.3)).collect::<Vec<_>>().join("\n")
}

/// Where the AWS SDK puts whole request and response bodies (items with `secretHash`,
/// `lookupHash`, `SECRET#<hash>` keys and publishable keys), at TRACE only.
const SDK_BODY_TARGETS: [&str; 2] =
    ["aws_smithy_runtime::client::orchestrator", "aws_smithy_runtime::client::orchestrator::http"];

#[tokio::test(flavor = "current_thread")]
async fn no_secret_key_or_hash_reaches_a_log_line() {
    let (lines, secrets) = captured_run(false).await;
    let found = leaks(&lines, &secrets);
    // The service's own lines, at every level, never hold a secret, a hash or the Idempotency-Key.
    let own: Vec<_> = found.iter().filter(|l| !l.1.starts_with("aws_") && !l.1.starts_with("hyper")).cloned().collect();
    assert!(own.is_empty(), "the service logged secrets:\n{}", describe(&own));
    // Nothing at DEBUG or above from any crate: Lambda runs with `RUST_LOG` unset, i.e. `info`
    // (config::init_logging), and even `RUST_LOG=debug` writes no secret.
    let at_debug: Vec<_> = found.iter().filter(|l| l.0 <= Level::DEBUG).cloned().collect();
    assert!(at_debug.is_empty(), "secrets at DEBUG or above:\n{}", describe(&at_debug));
    // At TRACE only the SDK's body dumps hold them (the service's filter drops those, see
    // below); any other
    // source is new and fails here.
    let other: Vec<_> = found.iter().filter(|l| !SDK_BODY_TARGETS.contains(&l.1.as_str())).cloned().collect();
    assert!(other.is_empty(), "secrets at TRACE outside the SDK's body dumps:\n{}", describe(&other));
    eprintln!(
        "{} lines captured at TRACE, {} secrets searched for: none at DEBUG or above; {} TRACE lines of {SDK_BODY_TARGETS:?} hold one",
        lines.len(),
        secrets.len(),
        found.len()
    );
}

/// At TRACE the AWS SDK logs every DynamoDB request and response body, and with them the
/// SHA-256 of secret keys (lookup items are addressed by it) and publishable keys in the clear;
/// the service's log filter drops those lines whatever `RUST_LOG` asks.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_hash_even_at_trace() {
    let (lines, secrets) = captured_run(true).await;
    let found = leaks(&lines, &secrets);
    assert!(found.is_empty(), "secrets at TRACE:\n{}", describe(&found));
}
