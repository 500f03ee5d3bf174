//! Against DynamoDB Local (`make bench` starts one and sets DYNAMODB_ENDPOINT):
//!   calls  DynamoDB calls per operation, counted by the SDK interceptor (CallCounter)
//!   floor  verify of a key without limits (the domain call, the verify_key function in process,
//!          and a release-built local server over HTTP with keep-alive, BENCH_LOCAL_SERVER, with
//!          and without VERIFY_CACHE_SECONDS)
//!          against a raw GetItem of the verified key's lookup item and a raw BatchGetItem of the
//!          two lookup items verify reads, at concurrency 1 and 4, p50 and p99, in one run
//!   cold   process start to first answered request of the function binary (BENCH_COLD_BIN, as
//!          the get_key function runs it: FUNCTION=get_key) under a fake Lambda Runtime API on
//!          127.0.0.1
//! `cargo bench --bench store -- calls floor cold` runs those named (all when none is).
//! Each writes its figures as JSON to target/bench-out/ for bench/report.py.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys::domain::verify::VerifyRequest;
use apikeys::domain::verify_key::verify_for_caller;
use apikeys::domain::{Credential, ManualClock, SystemClock};
use apikeys::entry::http::routes::Endpoint;
use apikeys::entry::local::dispatch;
use apikeys::model::{PlaintextKey, Scope};
use apikeys_bench::{
    CLIENT_IP, Fixture, body_of, endpoint_service, event, fixture, invoke, micros, percentile, status_of, write_json,
};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lambda_http::Body;
use lambda_http::http::{Method, Request as HttpRequest};
use serde_json::{Value, json};
use tokio::sync::mpsc;

// ---------------------------------------------------------------------------------------------
// calls

async fn run(
    fx: &Fixture,
    endpoint: Endpoint,
    route: &str,
    path: &str,
    query: &str,
    id: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Vec<String>) {
    fx.calls.take();
    let answer = invoke(
        endpoint_service(fx.app.clone(), endpoint),
        &event(route, path, query, id, body.as_ref(), &fx.authorization),
    )
    .await;
    (status_of(&answer), body_of(&answer), fx.calls.take())
}

async fn calls() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let fx = fixture(clock.clone()).await;
    let mut rows: Vec<Value> = Vec::new();
    let mut row = |operation: &str, note: &str, status: u16, calls: Vec<String>| {
        eprintln!("{operation:<40} {status} {calls:?}");
        rows.push(json!({ "operation": operation, "note": note, "status": status, "calls": calls }));
    };
    let user = json!({ "userId": "user-1" });
    let mut created = Vec::new();
    for _ in 0..30 {
        let (status, body, _) =
            run(&fx, Endpoint::CreateKey, "POST /keys", "/keys", "", None, Some(user.clone())).await;
        assert_eq!(status, 201);
        created.push(body);
    }
    let (status, _, calls) = run(&fx, Endpoint::CreateKey, "POST /keys", "/keys", "", None, Some(user.clone())).await;
    row("create", "POST /keys", status, calls);
    let id = |i: usize| created[i]["id"].as_str().unwrap().to_owned();
    let key = |i: usize| created[i]["key"].as_str().unwrap().to_owned();
    let (status, _, calls) =
        run(&fx, Endpoint::GetKey, "GET /keys/{keyId}", &format!("/keys/{}", id(0)), "", Some(&id(0)), None).await;
    row("get", "GET /keys/{keyId}", status, calls);
    let (status, page, calls) = run(&fx, Endpoint::ListKeys, "GET /keys", "/keys", "limit=25", None, None).await;
    row("list page (first)", "GET /keys?limit=25, of 32 keys", status, calls);
    let next = page["nextUrl"].as_str().unwrap_or_default().to_owned();
    let query = next.split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default();
    let (status, _, calls) = run(&fx, Endpoint::ListKeys, "GET /keys", "/keys", &query, None, None).await;
    row("list page (next, by cursor)", "GET /keys?limit=25&startingAfter=…", status, calls);
    let (status, _, calls) =
        run(&fx, Endpoint::ListKeys, "GET /keys", "/keys", "status=all&limit=25", None, None).await;
    row("list page (status=all)", "GET /keys?status=all&limit=25 (gsi1)", status, calls);
    let (status, _, calls) =
        run(&fx, Endpoint::DeleteKey, "DELETE /keys/{keyId}", &format!("/keys/{}", id(1)), "", Some(&id(1)), None)
            .await;
    row("delete", "DELETE /keys/{keyId}", status, calls);
    let verify_body = |k: String| Some(json!({ "key": k }));
    let (status, _, calls) =
        run(&fx, Endpoint::VerifyKey, "POST /keys/verify", "/keys/verify", "", None, verify_body(key(2))).await;
    row("verify, first in the minute", "no limits; lastUsedAt written before the answer", status, calls);
    let (status, _, calls) =
        run(&fx, Endpoint::VerifyKey, "POST /keys/verify", "/keys/verify", "", None, verify_body(key(2))).await;
    row("verify", "no limits, lastUsedAt fresh, caller kept by the instance", status, calls);
    let uncached = Fixture {
        app: Arc::new((*fx.app).clone().with_caller_cache(0)),
        calls: fx.calls.clone(),
        tape: fx.tape.clone(),
        client: fx.client.clone(),
        table: fx.table.clone(),
        company: fx.company.clone(),
        root_key: fx.root_key.clone(),
        authorization: fx.authorization.clone(),
    };
    let (status, _, calls) =
        run(&uncached, Endpoint::VerifyKey, "POST /keys/verify", "/keys/verify", "", None, verify_body(key(2))).await;
    row("verify, caller not kept", "no limits, lastUsedAt fresh, CALLER_CACHE_SECONDS=0", status, calls);
    for (name, limits) in [
        ("verify with rate limit", json!({ "rateLimit": { "limit": 1000, "periodSeconds": 60 } })),
        ("verify with quota", json!({ "quota": { "max": 1000 } })),
        (
            "verify with rate limit and quota",
            json!({ "rateLimit": { "limit": 1000, "periodSeconds": 60 }, "quota": { "max": 1000 } }),
        ),
    ] {
        let mut body = limits;
        body["userId"] = json!("user-2");
        let (_, limited, _) = run(&fx, Endpoint::CreateKey, "POST /keys", "/keys", "", None, Some(body)).await;
        let k = limited["key"].as_str().unwrap().to_owned();
        run(&fx, Endpoint::VerifyKey, "POST /keys/verify", "/keys/verify", "", None, verify_body(k.clone())).await;
        let (status, answer, calls) =
            run(&fx, Endpoint::VerifyKey, "POST /keys/verify", "/keys/verify", "", None, verify_body(k)).await;
        assert_eq!(answer["code"], json!("VALID"), "{answer}");
        row(name, "lastUsedAt fresh", status, calls);
    }
    let (status, _, calls) = run(
        &fx,
        Endpoint::UpdateKey,
        "PATCH /keys/{keyId}",
        &format!("/keys/{}", id(3)),
        "",
        Some(&id(3)),
        Some(json!({ "description": "patched" })),
    )
    .await;
    row("patch", "PATCH /keys/{keyId}", status, calls);
    let (status, _, calls) = run(
        &fx,
        Endpoint::RollKey,
        "POST /keys/{keyId}/roll",
        &format!("/keys/{}/roll", id(4)),
        "",
        Some(&id(4)),
        Some(json!({ "gracePeriodSeconds": 60 })),
    )
    .await;
    row("roll", "POST /keys/{keyId}/roll, 60 s grace", status, calls);
    let (status, _, calls) = run(
        &fx,
        Endpoint::ListKeyEvents,
        "GET /keys/{keyId}/events",
        &format!("/keys/{}/events", id(3)),
        "",
        Some(&id(3)),
        None,
    )
    .await;
    row("events", "GET /keys/{keyId}/events (a key's audit events)", status, calls);
    // The local server routes each call to the same handler, which authenticates its caller
    // itself: no separate authorizer read. Two minutes on, so the root key's and the verified
    // key's lastUsedAt are due again on the first call.
    clock.advance(chrono::TimeDelta::minutes(2));
    fx.calls.take();
    let local = |method: Method, uri: String, body: Option<Value>| {
        let builder = HttpRequest::builder().method(method).uri(uri).header("x-api-key", &fx.root_key);
        match body {
            Some(body) => builder.header("content-type", "application/json").body(Body::Text(body.to_string())),
            None => builder.body(Body::Empty),
        }
        .unwrap()
    };
    let verify = || local(Method::POST, "/keys/verify".into(), verify_body(key(2)));
    let status = dispatch(&fx.app, CLIENT_IP, verify()).await.status().as_u16();
    row(
        "local server: verify, first in the minute",
        "lastUsedAt of the root key and of the verified key",
        status,
        fx.calls.take(),
    );
    let status = dispatch(&fx.app, CLIENT_IP, verify()).await.status().as_u16();
    row("local server: verify", "POST /keys/verify, lastUsedAt fresh", status, fx.calls.take());
    let status = dispatch(&fx.app, CLIENT_IP, local(Method::GET, format!("/keys/{}", id(0)), None)).await.status();
    row("local server: get", "GET /keys/{keyId}, lastUsedAt fresh", status.as_u16(), fx.calls.take());
    write_json("calls.json", &Value::Array(rows));
}

// ---------------------------------------------------------------------------------------------
// floor

type Op = Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// Runs `total` calls of `op` from `concurrency` tasks, each timing its own calls.
async fn timed(op: &Op, concurrency: usize, total: usize) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(total / concurrency);
            for _ in 0..total / concurrency {
                let t = Instant::now();
                op().await;
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all, started.elapsed())
}

/// A release-built local server (`BENCH_LOCAL_SERVER`, default target/release/local_server) on
/// the fixture's own table of DynamoDB Local, so it verifies the very items the raw reads read.
struct LocalServer {
    child: tokio::process::Child,
    base: String,
}

async fn local_server(table: &str, settings: &[(&str, &str)]) -> LocalServer {
    use tokio::io::AsyncBufReadExt;
    let bin = std::env::var("BENCH_LOCAL_SERVER")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/local_server").to_owned());
    assert!(std::path::Path::new(&bin).exists(), "{bin} is missing: cargo build --release --bin local_server");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(&bin)
        .env("DYNAMODB_ENDPOINT", std::env::var("DYNAMODB_ENDPOINT").unwrap())
        .env("TABLE_NAME", table)
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied())
        .env_remove("DEMO_COMPANY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the local server");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Serving the API") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "the local server ({bin}) did not start");
    // Keep draining its stdout, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    LocalServer { child, base: format!("http://127.0.0.1:{port}") }
}

/// `POST /keys/verify` of `key` to `server` over HTTP/1.1, through hyper's pooling client: each
/// concurrent task keeps its connection alive between calls.
fn http_verify(server: &LocalServer, key: &str, authorization: &str) -> Op {
    let client: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(8).build_http();
    let uri: hyper::Uri = format!("{}/keys/verify", server.base).parse().unwrap();
    let body = Bytes::from(json!({ "key": key }).to_string());
    let authorization = authorization.to_owned();
    Arc::new(move || {
        let request = hyper::Request::post(uri.clone())
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .unwrap();
        let client = client.clone();
        Box::pin(async move {
            let answer = client.request(request).await.expect("the local server answers");
            let status = answer.status();
            let body = answer.into_body().collect().await.expect("the answer's body").to_bytes();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        })
    })
}

async fn floor() {
    let fx = Arc::new(fixture(Arc::new(SystemClock)).await);
    let body = invoke(
        endpoint_service(fx.app.clone(), Endpoint::CreateKey),
        &event("POST /keys", "/keys", "", None, Some(&json!({ "userId": "user-1" })), &fx.authorization),
    )
    .await;
    let key = body_of(&body)["key"].as_str().unwrap().to_owned();
    // Keys whose limits never refuse in a run: one named limit (a single conditional update
    // more), and a rate limit, a named limit and a quota (one transaction and one read more).
    let roomy = json!({ "name": "tokens", "limit": 4_294_967_295u64, "periodSeconds": 31_622_400 });
    let limited_key = async |body: Value| {
        let event = event("POST /keys", "/keys", "", None, Some(&body), &fx.authorization);
        let made = invoke(endpoint_service(fx.app.clone(), Endpoint::CreateKey), &event).await;
        body_of(&made)["key"].as_str().unwrap().to_owned()
    };
    let named_key = limited_key(json!({ "userId": "user-2", "ratelimits": [roomy] })).await;
    let every_limit = json!({
        "userId": "user-3",
        "ratelimits": [roomy],
        "rateLimit": { "limit": 4_294_967_295u64, "periodSeconds": 31_622_400 },
        "quota": { "max": 4_294_967_295u64 },
    });
    let limits_key = limited_key(every_limit).await;
    let lookup_pk = |key: &str| format!("SECRET#{}", PlaintextKey::parse(key).unwrap().1.hash().as_str());
    let (target_pk, caller_pk) = (lookup_pk(&key), lookup_pk(&fx.root_key));
    let mut server = local_server(&fx.table, &[]).await;
    let mut cached_server = local_server(&fx.table, &[("VERIFY_CACHE_SECONDS", "60")]).await;

    let get_item: Op = {
        let fx = fx.clone();
        let pk = target_pk.clone();
        Arc::new(move || {
            let (client, table, pk) = (fx.client.clone(), fx.table.clone(), pk.clone());
            Box::pin(async move {
                let out = client
                    .get_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(pk))
                    .key("sk", AttributeValue::S("SECRET".into()))
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("GetItem");
                assert!(out.item.is_some());
            })
        })
    };
    let batch_get_item: Op = {
        let fx = fx.clone();
        let pks = [caller_pk.clone(), target_pk.clone()];
        Arc::new(move || {
            let (client, table, pks) = (fx.client.clone(), fx.table.clone(), pks.clone());
            Box::pin(async move {
                let keys = pks
                    .into_iter()
                    .map(|pk| {
                        std::collections::HashMap::from([
                            ("pk".to_owned(), AttributeValue::S(pk)),
                            ("sk".to_owned(), AttributeValue::S("SECRET".into())),
                        ])
                    })
                    .collect();
                let wanted = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().unwrap();
                let out =
                    client.batch_get_item().request_items(table.clone(), wanted).send().await.expect("BatchGetItem");
                let found = out.responses.and_then(|mut r| r.remove(&table)).map(|items| items.len());
                assert_eq!(found, Some(2));
            })
        })
    };
    let domain_verify: Op = {
        let fx = fx.clone();
        let key = key.clone();
        Arc::new(move || {
            let (fx, key) = (fx.clone(), key.clone());
            Box::pin(async move {
                let scope = Scope::default();
                let caller = Credential { key: Some(&fx.root_key), ip: Some(CLIENT_IP) };
                let request = VerifyRequest {
                    key: &key,
                    company: None,
                    ip: Some(CLIENT_IP),
                    permissions: &[],
                    scope: Some(&scope),
                    cost: 1,
                    limits: &[],
                };
                let verdict = verify_for_caller(&fx.app.store, fx.app.kept(), fx.app.clock.now(), caller, request)
                    .await
                    .expect("verify");
                assert!(verdict.is_valid());
            })
        })
    };
    let function_verify: Op = {
        let fx = fx.clone();
        let event = Arc::new(event(
            "POST /keys/verify",
            "/keys/verify",
            "",
            None,
            Some(&json!({ "key": key })),
            &fx.authorization,
        ));
        let service = endpoint_service(fx.app.clone(), Endpoint::VerifyKey);
        Arc::new(move || {
            let (event, service) = (event.clone(), service.clone());
            Box::pin(async move {
                let answer = invoke(service, &event).await;
                assert_eq!(status_of(&answer), 200);
            })
        })
    };
    let (http_verify_named, http_verify_limits) =
        (http_verify(&server, &named_key, &fx.authorization), http_verify(&server, &limits_key, &fx.authorization));
    let (http_verify, http_verify_cached) =
        (http_verify(&server, &key, &fx.authorization), http_verify(&cached_server, &key, &fx.authorization));
    let variants: Vec<(&str, &str, Op)> = vec![
        ("get_item", "raw GetItem of the verified key's lookup item (consistent), SDK, same client", get_item),
        (
            "batch_get_item",
            "raw BatchGetItem of the two lookup items verify reads (caller's root key, verified key; consistent)",
            batch_get_item,
        ),
        (
            "verify_domain",
            "apikeys::domain::verify_key::verify_for_caller (the caller's check included)",
            domain_verify,
        ),
        (
            "verify_function",
            "the verify_key function: event JSON → lambda_http → handler (caller's check included) → answer JSON",
            function_verify,
        ),
        (
            "verify_http",
            "the local server (release build, own process) over HTTP/1.1 with keep-alive: POST /keys/verify",
            http_verify,
        ),
        (
            "verify_http_cached",
            "the same with VERIFY_CACHE_SECONDS=60: the key verified from the instance's memory, no read",
            http_verify_cached,
        ),
        (
            "verify_http_named",
            "the local server, a key with one named limit: one conditional UpdateItem more",
            http_verify_named,
        ),
        (
            "verify_http_limits",
            "the local server, a key with a rate limit, a named limit and a quota: one TransactWriteItems and one BatchGetItem more",
            http_verify_limits,
        ),
    ];
    let rounds: usize = std::env::var("FLOOR_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(6);
    let per_round: usize = std::env::var("FLOOR_PER_ROUND").ok().and_then(|r| r.parse().ok()).unwrap_or(400);
    let mut results = Vec::new();
    for concurrency in [1usize, 4] {
        for (_, _, op) in &variants {
            timed(op, concurrency, 200).await;
        }
        let mut samples: BTreeMap<&str, (Vec<Duration>, Duration, usize)> = BTreeMap::new();
        for round in 0..rounds {
            // Interleaved, the order turning each round, so drift on a busy machine falls on all.
            for i in 0..variants.len() {
                let (name, _, op) = &variants[(i + round) % variants.len()];
                let (s, wall) = timed(op, concurrency, per_round).await;
                let entry = samples.entry(name).or_default();
                entry.2 += s.len();
                entry.0.extend(s);
                entry.1 += wall;
            }
        }
        for (name, what, _) in &variants {
            let (mut s, wall, n) = samples.remove(name).unwrap();
            s.sort();
            let (p50, p99) = (percentile(&s, 50.0), percentile(&s, 99.0));
            eprintln!(
                "c={concurrency} {name:<20} p50 {:>8.1} µs  p99 {:>8.1} µs  {:>7.0}/s",
                micros(p50),
                micros(p99),
                n as f64 / wall.as_secs_f64()
            );
            results.push(json!({
                "concurrency": concurrency, "variant": name, "what": what, "n": n,
                "p50_us": micros(p50), "p99_us": micros(p99), "mean_us": micros(s.iter().sum::<Duration>() / n as u32),
                "per_second": n as f64 / wall.as_secs_f64(),
            }));
        }
    }
    let _ = server.child.kill().await;
    let _ = cached_server.child.kill().await;
    write_json("floor.json", &json!({ "rounds": rounds, "per_round": per_round, "results": results }));
}

// ---------------------------------------------------------------------------------------------
// cold

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

#[derive(Default)]
struct RuntimeApi {
    event: Vec<u8>,
    served: Mutex<bool>,
}

/// A fake Lambda Runtime API: one invocation, then `next` never answers; the function's
/// response (or error) is reported on `done`.
async fn runtime_api(
    api: Arc<RuntimeApi>,
    done: mpsc::UnboundedSender<(Instant, String, Bytes)>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() == hyper::Method::GET && path == NEXT {
        let first = !std::mem::replace(&mut *api.served.lock().unwrap(), true);
        if !first {
            std::future::pending::<()>().await;
        }
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        return Ok(hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd")
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:get_key")
            .header(
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            )
            .body(Full::new(Bytes::from(api.event.clone())))
            .unwrap());
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let _ = done.send((Instant::now(), path, body));
    Ok(hyper::Response::builder().status(202).body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}"))).unwrap())
}

async fn cold() {
    let bin = std::env::var("BENCH_COLD_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/lambda").to_owned());
    assert!(std::path::Path::new(&bin).exists(), "{bin} is missing: cargo build --release --bin lambda");
    let fx = fixture(Arc::new(SystemClock)).await;
    let created = invoke(
        endpoint_service(fx.app.clone(), Endpoint::CreateKey),
        &event("POST /keys", "/keys", "", None, Some(&json!({ "userId": "user-1" })), &fx.authorization),
    )
    .await;
    let id = body_of(&created)["id"].as_str().unwrap().to_owned();
    let get_event = event("GET /keys/{keyId}", &format!("/keys/{id}"), "", Some(&id), None, &fx.authorization);
    let runs: usize = std::env::var("COLD_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let mut times = Vec::new();
    for run in 0..=runs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let api = Arc::new(RuntimeApi { event: get_event.clone(), ..Default::default() });
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (api, done) = (api.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| runtime_api(api.clone(), done.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap();
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&bin)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("FUNCTION", "get_key")
            .env("AWS_LAMBDA_FUNCTION_NAME", "get_key")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2025/01/01/[$LATEST]bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/get_key")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_SESSION_TOKEN", "local")
            .env("DYNAMODB_ENDPOINT", &endpoint)
            .env("TABLE_NAME", &fx.table)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the function");
        let answered = tokio::time::timeout(Duration::from_secs(20), done_rx.recv()).await;
        let _ = child.kill().await;
        server.abort();
        let (at, path, body) = answered.expect("the function answers within 20 s").expect("an answer");
        assert!(
            path.ends_with("/response"),
            "the function reported an error at {path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(status_of(&body), 200, "{}", String::from_utf8_lossy(&body));
        let took = at - started;
        if run == 0 {
            eprintln!("cold run 0 (page cache warm-up, not counted): {:.1} ms", took.as_secs_f64() * 1e3);
        } else {
            times.push(took);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "cold start → first answer of {bin}: median {:.1} ms, min {:.1}, max {:.1} ({} runs)",
        ms(percentile(&times, 50.0)),
        ms(times[0]),
        ms(*times.last().unwrap()),
        times.len()
    );
    write_json(
        "cold.json",
        &json!({
            "binary": bin, "runs": times.len(),
            "median_ms": ms(percentile(&times, 50.0)), "min_ms": ms(times[0]), "max_ms": ms(*times.last().unwrap()),
            "p90_ms": ms(percentile(&times, 90.0)), "all_ms": times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        }),
    );
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let all = wanted.is_empty();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        if all || wanted.iter().any(|w| w == "calls") {
            calls().await;
        }
        if all || wanted.iter().any(|w| w == "floor") {
            floor().await;
        }
        if all || wanted.iter().any(|w| w == "cold") {
            cold().await;
        }
    });
}
