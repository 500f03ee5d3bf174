//! Soak: 20,000 mixed operations (create, custom create, idempotent create and its replay, get,
//! list, patch, roll, delete, verify with and without limits) from 8 concurrent clients over 4
//! companies, with faults injected between the service and DynamoDB Local:
//! - a TCP proxy that now and then cuts a connection instead of forwarding a chunk, either way:
//!   a request that never arrives, or an answer lost after DynamoDB acted on it;
//! - an SDK interceptor that fails some calls before they are sent (nothing happens) and some
//!   after the answer came back (the write committed, the service never learns it).
//!
//! The clients are careful: every write carries an `Idempotency-Key` and is sent again under
//! it until its answer is definitive (2xx, or a 4xx other than `request_in_progress`). Every
//! answer must be one the operation may give, within a bound, never a panic. Afterwards,
//! through a client without faults, four figures, each of which must be 0: keys stored that no
//! client knows, keys whose current secret reached no client, company counters that differ
//! from a recount (gsi2 per status, gsi1 all), and plaintexts that verify otherwise than their
//! key's stored state says. Besides: every key has the lookup items of its live secrets and
//! every lookup item belongs to a live secret, and every key version has its audit event.
//!
//! Not part of `make test`: run with `make soak` (it starts its own DynamoDB Local).
//! `SOAK_OPS`, `SOAK_CLIENTS` and `SOAK_FAULT_RATE` (per chunk / per call) tune it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys::domain::SystemClock;
use apikeys::domain::keys::create_root_key;
use apikeys::entry::config::{App, sdk_config};
use apikeys::entry::local::dispatch;
use apikeys::model::{ApiKey, CompanyId, KeyStatus};
use apikeys::store::DynamoStore;
use apikeys::store::table::create_table;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::Body;
use lambda_http::http::{Method, Request};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "api/table_reads.rs"]
mod table_reads;
use table_reads::{consistency_problems, scan_prefix, text};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
/// No answer may take longer: one DynamoDB call gives up within the 8 s operation timeout,
/// and a request makes a few, some of them retried on conflicts.
const ANSWER_BOUND: Duration = Duration::from_secs(30);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Counts of what was injected and what came back.
#[derive(Default)]
struct Stats {
    cut_requests: AtomicU64,
    cut_answers: AtomicU64,
    failed_before_send: AtomicU64,
    failed_after_answer: AtomicU64,
    /// Writes sent again under their `Idempotency-Key` after a 503 or `request_in_progress`.
    retries: AtomicU64,
    answers: Mutex<HashMap<String, u64>>,
}

impl Stats {
    fn count(&self, op: &str, status: u16) {
        *self.answers.lock().unwrap().entry(format!("{op} {status}")).or_default() += 1;
    }
}

// ---- the faulty proxy ------------------------------------------------------------------------

fn upstream() -> SocketAddr {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("the soak needs DynamoDB Local: run it with `make soak`");
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1")
        .parse()
        .expect("http://<ip>:<port>")
}

async fn start_proxy(upstream: SocketAddr, rate: f64, stats: Arc<Stats>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { continue };
            let stats = stats.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                // Whichever direction cuts, both halves close when this returns.
                tokio::select! {
                    _ = pump(client_read, server_write, rate, &stats.cut_requests) => {}
                    _ = pump(server_read, client_write, rate, &stats.cut_answers) => {}
                }
            });
        }
    });
    addr
}

/// Forwards chunks, but with probability `rate` per chunk cuts the connection instead.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    rate: f64,
    cuts: &AtomicU64,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if rand::random_bool(rate) {
            cuts.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

// ---- the faulty interceptor ------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FailSome {
    rate: f64,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stats")
    }
}

impl Intercept for FailSome {
    fn name(&self) -> &'static str {
        "FailSome"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if rand::random_bool(self.rate) {
            self.stats.failed_before_send.fetch_add(1, Ordering::Relaxed);
            return Err("injected: failed before sending".into());
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if rand::random_bool(self.rate) {
            self.stats.failed_after_answer.fetch_add(1, Ordering::Relaxed);
            return Err("injected: answer lost after DynamoDB acted".into());
        }
        Ok(())
    }
}

// ---- the clients -----------------------------------------------------------------------------

struct Company {
    id: CompanyId,
    root: String,
    root_id: String,
    /// Keys the clients know, by id: every plaintext they were given for each.
    keys: Mutex<HashMap<String, Vec<String>>>,
}

impl Company {
    fn pick(&self) -> Option<(String, Vec<String>)> {
        let keys = self.keys.lock().unwrap();
        if keys.is_empty() {
            return None;
        }
        let i = rand::random_range(0..keys.len());
        keys.iter().nth(i).map(|(id, secrets)| (id.clone(), secrets.clone()))
    }

    fn learn(&self, id: &str, plaintext: Option<&str>) {
        let mut keys = self.keys.lock().unwrap();
        let secrets = keys.entry(id.to_owned()).or_default();
        if let Some(p) = plaintext
            && !secrets.iter().any(|s| s == p)
        {
            secrets.push(p.to_owned());
        }
    }
}

struct Answer {
    status: u16,
    body: Value,
}

async fn call(
    app: &App,
    method: Method,
    path: &str,
    root: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
) -> Result<Answer, String> {
    let mut builder =
        Request::builder().method(method.clone()).uri(path).header("authorization", format!("Bearer {root}"));
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let request = builder.body(body.map_or(Body::Empty, |b| Body::Text(b.to_string()))).unwrap();
    let app = app.clone();
    let response =
        match tokio::spawn(async move { tokio::time::timeout(ANSWER_BOUND, dispatch(&app, CLIENT_IP, request)).await })
            .await
        {
            Err(e) => return Err(format!("{method} {path} panicked: {e}")),
            Ok(Err(_)) => return Err(format!("{method} {path}: no answer within {ANSWER_BOUND:?}")),
            Ok(Ok(response)) => response,
        };
    let status = response.status().as_u16();
    let body = if response.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(response.body()).map_err(|e| format!("{method} {path}: {status} not JSON: {e}"))?
    };
    if status >= 400 && body["error"]["code"].as_str().is_none_or(str::is_empty) {
        return Err(format!("{method} {path}: {status} without an error code: {body}"));
    }
    if status == 503 && body["error"]["code"] != "service_unavailable" {
        return Err(format!("{method} {path}: 503 with {body}"));
    }
    Ok(Answer { status, body })
}

fn create_body() -> Value {
    let mut body = json!({ "userId": format!("user-{}", rand::random_range(0..50)) });
    if rand::random_bool(0.3) {
        body["rateLimit"] = json!({ "limit": 3, "periodSeconds": 1 });
    }
    if rand::random_bool(0.3) {
        body["quota"] = json!({ "max": rand::random_range(1..8) });
    }
    if rand::random_bool(0.2) {
        // Far enough ahead that a retry is not refused as in the past: a create's body is validated
        // before its replay is looked up.
        let at = Utc::now() + TimeDelta::seconds(rand::random_range(10..40));
        body["expiresAt"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    if rand::random_bool(0.2) {
        body["type"] = json!("publishable");
    }
    if rand::random_bool(0.3) {
        body["acl"] = json!([{ "permissions": ["orders:read"] }]);
    }
    body
}

/// Attempts a careful client makes before it gives up on a write (and the soak fails).
const WRITE_ATTEMPTS: u32 = 20;

/// A write as a careful client sends it: with an `Idempotency-Key`, sent again under that key
/// until the answer is definitive (2xx, or a 4xx other than `request_in_progress`), so a write
/// whose answer was lost is answered by its replay instead of being lost with it.
async fn write(
    app: &App,
    method: Method,
    path: &str,
    root: &str,
    body: Option<Value>,
    idempotency_key: &str,
    stats: &Stats,
) -> Result<Answer, String> {
    let header = [("idempotency-key", idempotency_key.to_owned())];
    for attempt in 1..=WRITE_ATTEMPTS {
        let answer = call(app, method.clone(), path, root, body.clone(), &header).await?;
        let in_progress = answer.status == 409 && answer.body["error"]["code"] == "request_in_progress";
        if answer.status != 503 && !in_progress {
            return Ok(answer);
        }
        stats.retries.fetch_add(1, Ordering::Relaxed);
        // A client's backoff: short, as the faults are per call and not a state that lasts.
        tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
    }
    Err(format!("{method} {path}: no definitive answer in {WRITE_ATTEMPTS} attempts"))
}

/// One random operation; `Err` for an answer the operation may never give.
async fn one_op(app: &App, company: &Company, stats: &Stats, sequence: usize) -> Result<(), String> {
    let root = company.root.as_str();
    let picked = company.pick();
    let roll = rand::random_range(0..100);
    let idempotency_key = format!("soak-{sequence}");
    let write = |method: Method, path: String, body: Option<Value>| {
        let idempotency_key = idempotency_key.clone();
        async move { write(app, method, &path, root, body, &idempotency_key, stats).await }
    };
    let (op, allowed, answer): (&str, &[u16], Answer) = match (roll, &picked) {
        (0..15, _) | (_, None) => ("create", &[201], write(Method::POST, "/keys".into(), Some(create_body())).await?),
        (15..18, _) => {
            let path = format!("/keys/soak-{sequence}");
            ("custom create", &[201], write(Method::POST, path, Some(create_body())).await?)
        }
        (18..22, _) => {
            // The same Idempotency-Key twice: the second is the first's answer.
            let body = create_body();
            let first = write(Method::POST, "/keys".into(), Some(body.clone())).await?;
            if first.status == 201 {
                company.learn(first.body["id"].as_str().unwrap_or_default(), first.body["key"].as_str());
            }
            let again = write(Method::POST, "/keys".into(), Some(body)).await?;
            if first.status == 201 && again.status == 201 && first.body != again.body {
                return Err(format!("an idempotent replay differs: {} then {}", first.body, again.body));
            }
            ("idempotent create", &[201], again)
        }
        (22..32, Some((id, _))) => {
            ("get", &[200], call(app, Method::GET, &format!("/keys/{id}"), root, None, &[]).await?)
        }
        (32..40, _) => {
            let status = ["active", "inactive", "all"][rand::random_range(0..3)];
            let path = format!("/keys?status={status}&limit={}", rand::random_range(1..30));
            ("list", &[200], call(app, Method::GET, &path, root, None, &[]).await?)
        }
        (40..52, Some((id, _))) => {
            let body = match rand::random_range(0..3) {
                0 => json!({ "status": "inactive" }),
                1 => json!({ "status": "active" }),
                _ => json!({ "description": format!("d{sequence}"), "tags": ["soak"] }),
            };
            ("patch", &[200, 409], write(Method::PATCH, format!("/keys/{id}"), Some(body)).await?)
        }
        (52..60, Some((id, _))) => {
            let grace = [0, 0, 5, 600][rand::random_range(0..4)];
            let body = json!({ "gracePeriodSeconds": grace });
            ("roll", &[200, 409], write(Method::POST, format!("/keys/{id}/roll"), Some(body)).await?)
        }
        (60..65, Some((id, _))) => ("delete", &[204], write(Method::DELETE, format!("/keys/{id}"), None).await?),
        (_, Some((_, secrets))) => {
            let Some(secret) = secrets.get(rand::random_range(0..secrets.len().max(1))) else { return Ok(()) };
            let mut body = json!({ "key": secret });
            if rand::random_bool(0.3) {
                body["permissions"] = json!(["orders:read"]);
            }
            let answer = call(app, Method::POST, "/keys/verify", root, Some(body), &[]).await?;
            if answer.status == 200 && !answer.body["code"].is_string() {
                return Err(format!("verify: {}", answer.body));
            }
            ("verify", &[200], answer)
        }
    };
    stats.count(op, answer.status);
    if answer.status != 503 && !allowed.contains(&answer.status) {
        return Err(format!("{op}: {} {}", answer.status, answer.body));
    }
    if matches!(answer.status, 200 | 201)
        && let Some(id) = answer.body["id"].as_str()
    {
        company.learn(id, answer.body["key"].as_str());
    }
    Ok(())
}

// ---- the checks afterwards -------------------------------------------------------------------

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The code a plaintext must get from the key's stored state, or `None` too close to a
/// time boundary (expiry, end of grace) to say.
fn expected_code(key: &ApiKey, plaintext: &str, now: DateTime<Utc>) -> Option<&'static str> {
    let margin = TimeDelta::seconds(2);
    let hash = sha256_hex(plaintext);
    let current = key.secret_hash.as_str() == hash;
    let previous = key.previous_secret.as_ref().filter(|p| p.hash.as_str() == hash);
    if let Some(p) = previous
        && (p.valid_until - now).abs() < margin
    {
        return None;
    }
    if !current && previous.is_none_or(|p| p.valid_until <= now) {
        return Some("NOT_FOUND");
    }
    if key.status != KeyStatus::Active || key.deleted_at.is_some() {
        return Some("INACTIVE");
    }
    if let Some(at) = key.policy.expires_at {
        if (at - now).abs() < margin {
            return None;
        }
        if at <= now {
            return Some("EXPIRED");
        }
    }
    if let Some(quota) = &key.policy.quota
        && quota.remaining(key.quota_usage, now) == 0
    {
        return Some("QUOTA_EXCEEDED");
    }
    Some("VALID")
}

async fn read_key(client: &Client, table: &str, company: &CompanyId, id: &str) -> Option<ApiKey> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("KEY#{company}#{id}")))
        .key("sk", AttributeValue::S("KEY".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item");
    out.item.map(|item| apikeys::store::items::key_from_item(item).expect("a key item reads as ApiKey"))
}

/// Verifies every plaintext the clients hold for the company's keys against the key's stored
/// state: `(checked, skipped at a time boundary, wrong)`.
async fn verify_company(clean: &App, client: &Client, table: &str, company: &Company) -> (usize, usize, Vec<String>) {
    let (mut checked, mut skipped) = (0, 0);
    let mut wrong = Vec::new();
    let known = company.keys.lock().unwrap().clone();
    for (id, plaintexts) in known {
        if read_key(client, table, &company.id, &id).await.is_none() {
            wrong.push(format!("{}/{id}: a key a client was given is gone", company.id));
            continue;
        }
        for plaintext in plaintexts {
            // Read again: a verify before may have used up a quota.
            let key = read_key(client, table, &company.id, &id).await.unwrap();
            let Some(expected) = expected_code(&key, &plaintext, Utc::now()) else {
                skipped += 1;
                continue;
            };
            let answer =
                call(clean, Method::POST, "/keys/verify", &company.root, Some(json!({ "key": plaintext })), &[])
                    .await
                    .unwrap();
            checked += 1;
            if answer.body["code"] != expected {
                wrong.push(format!(
                    "{}/{id} ({}…): expected {expected}, got {} (status {:?}, deleted {}, expires {:?}, quota {:?} used {:?})",
                    company.id,
                    &plaintext[..7],
                    answer.body,
                    key.status,
                    key.deleted_at.is_some(),
                    key.policy.expires_at,
                    key.policy.quota,
                    key.quota_usage
                ));
            }
        }
    }
    (checked, skipped, wrong)
}

/// What the clients missed, from every stored key but the root keys: `(unknown keys, lost
/// secrets)`, a key no client was told of, and a key whose current secret no client holds.
fn missed_by_clients(
    stored: &[HashMap<String, AttributeValue>],
    companies: &[Arc<Company>],
) -> (Vec<String>, Vec<String>) {
    let (mut unknown, mut lost) = (Vec::new(), Vec::new());
    for item in stored {
        let (company_id, id) = (text(item, "companyId"), text(item, "id"));
        let Some(company) = companies.iter().find(|c| c.id.as_str() == company_id) else { continue };
        if company.root_id == id {
            continue;
        }
        let known = company.keys.lock().unwrap();
        let Some(plaintexts) = known.get(&id) else {
            unknown.push(format!("{company_id}/{id}"));
            lost.push(format!("{company_id}/{id}"));
            continue;
        };
        if !plaintexts.iter().any(|p| sha256_hex(p) == text(item, "secretHash")) {
            lost.push(format!("{company_id}/{id}"));
        }
    }
    (unknown, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: minutes long; run with `make soak`"]
async fn soak_with_faults_leaves_counters_lookups_and_verification_exact() {
    let ops: usize = env_or("SOAK_OPS", 20_000);
    let clients: usize = env_or("SOAK_CLIENTS", 8);
    let rate: f64 = env_or("SOAK_FAULT_RATE", 0.01);
    let stats = Arc::new(Stats::default());

    // The checks afterwards scan the whole table, page by page, on a DynamoDB Local that a
    // busy machine slows down: more patience per call than the service's 8 s.
    let clean_config = aws_sdk_dynamodb::config::Builder::from(
        &sdk_config(&apikeys::settings::Settings::from_env().expect("settings").database).await,
    )
    .timeout_config(
        aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(300))
            .build(),
    )
    .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(5))
    .build();
    let clean_client = Client::from_conf(clean_config);
    let table = format!("soak-{}", uuid::Uuid::now_v7().simple());
    create_table(&clean_client, &table).await.expect("create the soak table");
    let clean = App::new(DynamoStore::new(clean_client.clone(), &table), Arc::new(SystemClock));

    let proxy = start_proxy(upstream(), rate, stats.clone()).await;
    let config = aws_sdk_dynamodb::config::Builder::from(
        &sdk_config(&apikeys::settings::Settings::from_env().expect("settings").database).await,
    )
    .endpoint_url(format!("http://{proxy}"))
    .interceptor(FailSome { rate, stats: stats.clone() })
    // The SDK's standard retries, with a shorter first backoff than its 1 s so that
    // thousands of injected faults cost seconds, not minutes.
    .retry_config(
        aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_initial_backoff(Duration::from_millis(50)),
    )
    .build();
    let faulty = App::new(DynamoStore::new(Client::from_conf(config), &table), Arc::new(SystemClock));

    let mut companies = Vec::new();
    for i in 0..4 {
        let id = CompanyId::parse(&format!("soak{i}-{}", uuid::Uuid::now_v7().simple()), "company").unwrap();
        let created = create_root_key(&clean.store, id.clone(), None, Utc::now()).await.expect("root key");
        let root_id = created.key.id.to_string();
        let root = created.plaintext.expect("a new key's secret").expose().to_owned();
        companies.push(Arc::new(Company { id, root, root_id, keys: Mutex::new(HashMap::new()) }));
    }

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (faulty, companies, stats, next) = (faulty.clone(), companies.clone(), stats.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let sequence = next.fetch_add(1, Ordering::Relaxed);
                if sequence >= ops {
                    return failures;
                }
                if sequence > 0 && sequence % 2000 == 0 {
                    eprintln!("{sequence} operations in {:?}", started.elapsed());
                }
                let company = &companies[rand::random_range(0..companies.len())];
                if let Err(e) = one_op(&faulty, company, &stats, sequence).await {
                    failures.push(e);
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.expect("no client panicked"));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{ops} operations from {clients} clients in {elapsed:?}; injected: {} requests cut, {} answers cut, {} calls failed before sending, {} after the answer; {} writes sent again",
        stats.cut_requests.load(Ordering::Relaxed),
        stats.cut_answers.load(Ordering::Relaxed),
        stats.failed_before_send.load(Ordering::Relaxed),
        stats.failed_after_answer.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
    );
    let mut answers: Vec<_> = stats.answers.lock().unwrap().iter().map(|(k, v)| format!("{k}: {v}")).collect();
    answers.sort();
    eprintln!("answers: {}", answers.join(", "));

    // Counters against their recounts, apart from the other consistency checks.
    let (counters_off, problems): (Vec<String>, Vec<String>) =
        consistency_problems(&clean_client, &table).await.into_iter().partition(|p| p.starts_with("company "));

    // Every plaintext the clients hold verifies as its key's state says. Rate windows are one
    // second: wait out the soak's, and each key is verified at most twice within one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut checks = Vec::new();
    for company in companies.clone() {
        let (clean, clean_client, table) = (clean.clone(), clean_client.clone(), table.clone());
        checks.push(tokio::spawn(async move { verify_company(&clean, &clean_client, &table, &company).await }));
    }
    let (mut checked, mut skipped, mut wrong) = (0, 0, Vec::new());
    for check in checks {
        let (c, s, w) = check.await.expect("no check panicked");
        (checked, skipped) = (checked + c, skipped + s);
        wrong.extend(w);
    }
    let stored_keys = scan_prefix(&clean_client, &table, "KEY#").await;
    let (unknown, lost) = missed_by_clients(&stored_keys, &companies);
    let stored = stored_keys.len() - companies.len();

    eprintln!("unknown keys: {} (of {stored} stored: keys no client was told of)", unknown.len());
    eprintln!("lost secrets: {} (stored keys whose current secret no client holds)", lost.len());
    eprintln!("counters off their recount: {} (of {} companies)", counters_off.len(), companies.len());
    eprintln!(
        "plaintexts verifying otherwise than their key's state says: {} (of {checked}; {skipped} skipped at a time boundary)",
        wrong.len()
    );
    let show = |list: &[String]| list.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
    assert!(failures.is_empty(), "{} unexpected answers, e.g.:\n{}", failures.len(), show(&failures));
    assert!(unknown.is_empty(), "{} keys stored that no client knows:\n{}", unknown.len(), show(&unknown));
    assert!(lost.is_empty(), "{} current secrets never reached a client:\n{}", lost.len(), show(&lost));
    assert!(counters_off.is_empty(), "counters off their recount:\n{}", show(&counters_off));
    assert!(wrong.is_empty(), "{} plaintexts verify wrongly:\n{}", wrong.len(), show(&wrong));
    assert!(problems.is_empty(), "{} consistency problems:\n{}", problems.len(), show(&problems));
}
