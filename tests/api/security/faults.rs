//! DynamoDB going down mid-run: a TCP proxy between the app's client and DynamoDB Local stops
//! listening (connections refused, open ones cut) or swallows traffic (a hung database), while
//! eight clients keep sending mixed requests. Every answer must be JSON and come within the
//! configured timeout; once the database is down every request is a 503 `service_unavailable`;
//! nothing is half-written; and the service serves again when the database is back.
//! DynamoDB Local keeps its in-memory data throughout, since only the proxy goes down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys::entry::config::App;
use apikeys::entry::local::dispatch;
use apikeys::store::DynamoStore;
use lambda_http::Body;
use lambda_http::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{CLIENT_IP, TestApp, TransactionFault, spawn_app};
use crate::table_reads::consistency_problems;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Up,
    /// Not listening (connections refused) and every open connection cut: a stopped database.
    Refuse,
    /// Accepts and holds connections, forwarding nothing: a hung database or a network partition.
    Blackhole,
}

/// A TCP proxy in front of DynamoDB Local that can be switched off and on.
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Up);
        let task = tokio::spawn(accept_loop(listener, addr, upstream, watcher));
        Self { addr, mode, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
) {
    loop {
        if *mode.borrow_and_update() == Mode::Refuse {
            drop(listener);
            while *mode.borrow_and_update() == Mode::Refuse {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            listener = loop {
                match TcpListener::bind(addr).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            continue;
        }
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            accepted = listener.accept() => if let Ok((client, _)) = accepted {
                tokio::spawn(connection(client, upstream, mode.clone()));
            },
        }
    }
}

/// Holds a connection, forwarding nothing, until the mode leaves `Blackhole`; then closes it.
async fn hold(mode: &mut watch::Receiver<Mode>) {
    while *mode.borrow_and_update() == Mode::Blackhole {
        if mode.changed().await.is_err() {
            return;
        }
    }
}

async fn connection(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let now = *mode.borrow_and_update();
    match now {
        Mode::Refuse => return,
        Mode::Blackhole => return hold(&mut mode).await,
        Mode::Up => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let down = async {
        loop {
            if mode.changed().await.is_err() {
                return Mode::Refuse;
            }
            let now = *mode.borrow_and_update();
            if now != Mode::Up {
                return now;
            }
        }
    };
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        now = down => Some(now),
    };
    if cut == Some(Mode::Blackhole) {
        // The sockets stay open and silent, as with a hung peer.
        hold(&mut mode).await;
    }
}

/// `host:port` of `DYNAMODB_ENDPOINT`.
pub fn upstream() -> SocketAddr {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT");
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let authority = authority.replace("localhost", "127.0.0.1");
    authority.parse().expect("DYNAMODB_ENDPOINT is http://<ip>:<port>")
}

/// An app on the same table, whose DynamoDB client goes through `proxy`.
async fn app_behind(proxy: &Proxy, app: &TestApp) -> (App, Duration) {
    let client = crate::helpers::test_client(|b| b.endpoint_url(proxy.url())).await;
    let operation_timeout = client
        .config()
        .timeout_config()
        .and_then(|t| t.operation_timeout())
        .expect("an operation timeout is configured");
    (App::new(DynamoStore::new(client, &app.table), app.clock.clone()), operation_timeout)
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// One request through the whole local stack, bounded by `bound`; a panic inside fails the test.
async fn call(
    app: &App,
    bound: Duration,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Result<Answer, String> {
    let mut builder =
        Request::builder().method(method.clone()).uri(path).header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder.body(body.map_or(Body::Empty, |b| Body::Text(b.to_string()))).unwrap();
    let app = app.clone();
    let answer = tokio::spawn(async move { tokio::time::timeout(bound, dispatch(&app, CLIENT_IP, request)).await });
    let response = match answer.await {
        Err(join) => return Err(format!("{method} {path} panicked: {join}")),
        Ok(Err(_)) => return Err(format!("{method} {path}: no answer within {bound:?}")),
        Ok(Ok(response)) => response,
    };
    let (parts, body) = response.into_parts();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| format!("{method} {path}: answer is not JSON ({e}): {body:?}"))?
    };
    if (parts.status.is_client_error() || parts.status.is_server_error())
        && body["error"]["code"].as_str().is_none_or(str::is_empty)
    {
        return Err(format!("{method} {path}: {} without an error code: {body}", parts.status));
    }
    Ok(Answer { status: parts.status, body })
}

/// A key the test made.
#[derive(Debug, Clone)]
struct Known {
    id: String,
}

#[derive(Debug)]
struct Outcome {
    op: &'static str,
    started: Instant,
    finished: Instant,
    status: StatusCode,
    code: String,
}

/// One random operation against a key of the pool; adds created keys to it.
async fn random_op(
    app: &App,
    bound: Duration,
    root: &str,
    pool: &Mutex<Vec<Known>>,
    secrets: &Mutex<Vec<String>>,
) -> Result<(&'static str, Answer), String> {
    let pick = |pool: &Mutex<Vec<Known>>| {
        let pool = pool.lock().unwrap();
        pool[rand::random_range(0..pool.len())].clone()
    };
    let key = pick(pool);
    let secret = {
        let secrets = secrets.lock().unwrap();
        secrets[rand::random_range(0..secrets.len())].clone()
    };
    let (op, answer) = match rand::random_range(0..8) {
        0 | 1 => {
            let body = json!({ "userId": "u", "rateLimit": { "limit": 1000, "periodSeconds": 60 } });
            ("create", call(app, bound, Method::POST, "/keys", root, Some(body)).await?)
        }
        2 => ("get", call(app, bound, Method::GET, &format!("/keys/{}", key.id), root, None).await?),
        3 => ("list", call(app, bound, Method::GET, "/keys?limit=5&status=all", root, None).await?),
        4 => {
            let body = json!({ "description": format!("d{}", rand::random_range(0..1000)), "tags": ["x"] });
            ("patch", call(app, bound, Method::PATCH, &format!("/keys/{}", key.id), root, Some(body)).await?)
        }
        5 => {
            let body = json!({ "gracePeriodSeconds": 60 });
            ("roll", call(app, bound, Method::POST, &format!("/keys/{}/roll", key.id), root, Some(body)).await?)
        }
        6 => ("delete", call(app, bound, Method::DELETE, &format!("/keys/{}", key.id), root, None).await?),
        _ => ("verify", call(app, bound, Method::POST, "/keys/verify", root, Some(json!({ "key": secret }))).await?),
    };
    if answer.status.is_success() {
        if let Some(id) = answer.body["id"].as_str()
            && op == "create"
        {
            pool.lock().unwrap().push(Known { id: id.to_owned() });
        }
        if let Some(plaintext) = answer.body["key"].as_str() {
            secrets.lock().unwrap().push(plaintext.to_owned());
        }
    }
    Ok((op, answer))
}

/// Every answer the operation may give with the database up or going down.
fn acceptable(op: &str, answer: &Answer) -> bool {
    let status = answer.status.as_u16();
    status == 503 && answer.code() == "service_unavailable"
        || match op {
            "create" => status == 201,
            "get" | "list" | "verify" => status == 200,
            "patch" | "roll" => status == 200 || status == 409,
            "delete" => status == 204,
            _ => false,
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "bounded in time: make test runs it after the other tests, alone, so no other test starves it"]
async fn dynamodb_down_mid_run_is_503_within_the_timeout_half_writes_nothing_and_recovers() {
    let app = spawn_app().await;
    let proxy = Proxy::start(upstream()).await;
    let (proxied, operation_timeout) = app_behind(&proxy, &app).await;
    // A request stops at its first failed call, and one call gives up within the operation
    // timeout (attempt timeouts and retries included); the rest is local work.
    let bound = operation_timeout + Duration::from_secs(2);
    let root = app.root_key.clone();

    let pool = Arc::new(Mutex::new(Vec::new()));
    let secrets = Arc::new(Mutex::new(vec![root.clone()]));
    for _ in 0..4 {
        let answer =
            call(&proxied, bound, Method::POST, "/keys", &root, Some(json!({ "userId": "seed" }))).await.unwrap();
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        pool.lock().unwrap().push(Known { id: answer.body["id"].as_str().unwrap().to_owned() });
        secrets.lock().unwrap().push(answer.body["key"].as_str().unwrap().to_owned());
    }

    let one = {
        let (proxied, root, pool, secrets) = (proxied.clone(), root.clone(), pool.clone(), secrets.clone());
        move || {
            let (proxied, root, pool, secrets) = (proxied.clone(), root.clone(), pool.clone(), secrets.clone());
            async move {
                let started = Instant::now();
                let (op, answer) = random_op(&proxied, bound, &root, &pool, &secrets).await?;
                if !acceptable(op, &answer) {
                    return Err(format!("{op}: unexpected {} {}", answer.status, answer.body));
                }
                Ok(Outcome {
                    op,
                    started,
                    finished: Instant::now(),
                    status: answer.status,
                    code: answer.code().to_owned(),
                })
            }
        }
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (one, stop) = (one.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                outcomes.push(one().await?);
            }
            Ok::<_, String>(outcomes)
        }));
    }

    // Up, then stopped (refused), up, then hung (blackholed) for longer than the timeout, up.
    // Besides the eight clients, a burst of fresh requests starts just after each switch-off.
    let mut outages = Vec::new();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (mode, length) in [(Mode::Refuse, Duration::from_secs(4)), (Mode::Blackhole, bound + Duration::from_secs(1))] {
        let down_at = Instant::now();
        proxy.set(mode);
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..8 {
            let one = one.clone();
            workers.push(tokio::spawn(async move { one().await.map(|o| vec![o]) }));
        }
        tokio::time::sleep(length).await;
        let up_at = Instant::now();
        proxy.set(Mode::Up);
        outages.push((mode, down_at, up_at));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await.expect("no worker panicked").unwrap_or_else(|e| panic!("{e}")));
    }
    for (mode, down_at, up_at) in &outages {
        let inside: Vec<&Outcome> = outcomes.iter().filter(|o| o.started >= *down_at && o.finished <= *up_at).collect();
        assert!(inside.len() >= 8, "{mode:?}: requests ran while the database was down");
        for outcome in &inside {
            assert_eq!(
                (outcome.status, outcome.code.as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
                "{mode:?}: {} sent while the database was down",
                outcome.op
            );
        }
        let slowest = inside.iter().map(|o| o.finished - o.started).max().unwrap_or_default();
        eprintln!(
            "{mode:?}: {} requests while down, all 503, the slowest in {slowest:?} (bound {bound:?})",
            inside.len()
        );
    }
    let served = outcomes.iter().filter(|o| o.status.is_success()).count();
    let unavailable = outcomes.iter().filter(|o| o.status == StatusCode::SERVICE_UNAVAILABLE).count();
    eprintln!("{} requests: {served} served, {unavailable} answered 503", outcomes.len());
    assert!(served > 0 && unavailable > 0);

    // Back up: the service serves again through the same client.
    let created =
        call(&proxied, bound, Method::POST, "/keys", &root, Some(json!({ "userId": "after" }))).await.unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let secret = created.body["key"].as_str().unwrap();
    let got = call(&proxied, bound, Method::GET, &format!("/keys/{id}"), &root, None).await.unwrap();
    assert_eq!(got.status, StatusCode::OK);
    let verified =
        call(&proxied, bound, Method::POST, "/keys/verify", &root, Some(json!({ "key": secret }))).await.unwrap();
    assert_eq!(verified.body["code"], "VALID");
    let listed = call(&proxied, bound, Method::GET, "/keys?status=all&limit=1", &root, None).await.unwrap();
    assert_eq!(listed.status, StatusCode::OK);

    let problems = consistency_problems(&app.client, &app.table).await;
    assert!(problems.is_empty(), "half-written state:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn a_database_that_hangs_is_a_503_within_the_configured_timeout() {
    let app = spawn_app().await;
    let proxy = Proxy::start(upstream()).await;
    let (proxied, operation_timeout) = app_behind(&proxy, &app).await;
    let bound = operation_timeout + Duration::from_secs(2);
    let created =
        call(&proxied, bound, Method::POST, "/keys", &app.root_key, Some(json!({ "userId": "u" }))).await.unwrap();
    let id = created.body["id"].as_str().unwrap().to_owned();
    proxy.set(Mode::Blackhole);
    let requests = [
        (Method::POST, "/keys".to_owned(), Some(json!({ "userId": "v" }))),
        (Method::PATCH, format!("/keys/{id}"), Some(json!({ "description": "x" }))),
        (Method::POST, format!("/keys/{id}/roll"), None),
        (Method::DELETE, format!("/keys/{id}"), None),
        (Method::GET, "/keys".to_owned(), None),
    ];
    let started = Instant::now();
    let answers = futures::future::join_all(requests.into_iter().map(|(method, path, body)| {
        let (proxied, key) = (proxied.clone(), app.root_key.clone());
        async move { call(&proxied, bound, method, &path, &key, body).await }
    }))
    .await;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            "{}",
            answer.body
        );
    }
    assert!(started.elapsed() >= Duration::from_secs(1), "the answers waited for the database");
    proxy.set(Mode::Up);
    assert_eq!(app.counters().await, (2, 0), "nothing more was written");
    let again = call(&proxied, bound, Method::GET, &format!("/keys/{id}"), &app.root_key, None).await.unwrap();
    assert_eq!(again.status, StatusCode::OK);
    assert!(consistency_problems(&app.client, &app.table).await.is_empty());
}

/// From now on, `app`'s client loses the answer of its next committed `TransactWriteItems`:
/// DynamoDB applies the writes, then the connection breaks before the answer arrives. The SDK
/// retries the same request with the same `ClientRequestToken` (its own, or the store's), and
/// both of its remaining attempts (standard retry mode: 3 in all) are answered
/// `TransactionInProgressException`, as DynamoDB answers while the first attempt with that token
/// is still being applied. Then the SDK gives up and the store's own retry must carry the same
/// token: with a new one, DynamoDB evaluates the conditions again against the committed writes.
/// The root key's `lastUsedAt` is refreshed first, so that the next transaction is the
/// operation's own.
async fn lose_a_commit_answer(app: &mut TestApp) {
    assert_eq!(app.list_keys("").await.status, StatusCode::OK);
    let faults = vec![TransactionFault::LoseAnswer, TransactionFault::InProgress, TransactionFault::InProgress];
    app.script_transactions(faults).await;
}

#[tokio::test]
async fn a_create_whose_commit_answer_is_lost_answers_201_with_the_secret() {
    let mut app = spawn_app().await;
    lose_a_commit_answer(&mut app).await;
    let created = app.post_keys(&json!({ "userId": "u" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["key"].as_str().expect("the secret is shown");
    assert_eq!(app.counters().await, (2, 0), "the root key and this one, counted once");
    assert_eq!(app.verify(&json!({ "key": secret })).await.body["code"], "VALID");
    assert!(consistency_problems(&app.client, &app.table).await.is_empty());
}

#[tokio::test]
async fn a_roll_whose_commit_answer_is_lost_answers_the_new_secret() {
    let mut app = spawn_app().await;
    let created = app.create_key(&json!({ "userId": "u" })).await;
    let (id, old) = (created["id"].as_str().unwrap(), created["key"].as_str().unwrap());
    lose_a_commit_answer(&mut app).await;
    let rolled = app.roll_key(id, None).await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    let new = rolled.body["key"].as_str().expect("the new secret is shown");
    assert_ne!(new, old);
    assert_eq!(app.verify(&json!({ "key": new })).await.body["code"], "VALID");
    assert_eq!(app.get_key(id).await.header("etag"), "\"2\"", "rolled once");
    assert!(consistency_problems(&app.client, &app.table).await.is_empty());
}
