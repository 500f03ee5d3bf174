//! A small Lambda Runtime API on 127.0.0.1 that runs the real function binary (the one `lambda`
//! of `src/bin`, as `bootstrap` runs in AWS, `FUNCTION` naming the function as template.yaml
//! sets it) with the environment Lambda gives it, against
//! DynamoDB Local. Like Lambda, it freezes the process (SIGSTOP) once it asks for the next event
//! and thaws it (SIGCONT) when one arrives, so work left running after an answer does not run.
//!
//! Implemented: `GET /2018-06-01/runtime/invocation/next` (with the `Lambda-Runtime-*` headers),
//! `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error`, `POST …/runtime/init/error`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apikeys::entry::http::routes::LambdaFunction;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};

const API: &str = "/2018-06-01/runtime";
/// Long enough for a debug build's first DynamoDB call on a busy machine; a hung function fails.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Added to every DynamoDB answer, so that a call left running after the function's answer is
/// still in flight when the function asks for the next event.
const DYNAMODB_LATENCY: Duration = Duration::from_millis(25);

/// The one binary every Lambda function runs, as cargo built it for this test run; `FUNCTION`
/// says which function it serves.
pub const LAMBDA_BINARY: &str = env!("CARGO_BIN_EXE_lambda");

/// `name`, checked against the service's functions (`LambdaFunction::all`, which template.yaml
/// is checked against too).
pub fn known_function(name: &str) -> &'static str {
    LambdaFunction::from_name(name).unwrap_or_else(|| panic!("the service has no function {name}")).name()
}

/// What the function posted for one invocation: `/response` (Ok) or `/error` (Err).
pub type Outcome = Result<Value, Value>;

struct Invocation {
    id: String,
    event: Value,
}

#[derive(Default)]
struct Shared {
    answers: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
    pid: Mutex<Option<u32>>,
    /// DynamoDB requests sent and not yet answered.
    in_flight: AtomicUsize,
    /// For each ask for the next event, how many DynamoDB requests were in flight.
    in_flight_at_next: Mutex<Vec<usize>>,
}

/// One function process under its own Runtime API. Dropping it kills the process.
pub struct Function {
    pub name: String,
    child: Child,
    invocations: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    /// How many times the function has asked for the next event.
    nexts: watch::Receiver<u64>,
    output: Arc<Mutex<Output>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<()>,
    proxy: tokio::task::JoinHandle<()>,
}

/// Everything the process printed, line by line.
#[derive(Default, Debug, Clone)]
pub struct Output {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Output {
    pub fn all(&self) -> String {
        self.stdout.iter().chain(&self.stderr).cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.server.abort();
        self.proxy.abort();
    }
}

impl Function {
    /// Starts function `name` as Lambda would: the one binary with `FUNCTION`, `AWS_LAMBDA_*`,
    /// `TABLE_NAME`, `DYNAMODB_ENDPOINT`, and nothing else from this process's environment but
    /// `extra`.
    pub async fn start(name: &str, table: &str, extra: &[(&str, &str)]) -> Function {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the Runtime API");
        let addr = listener.local_addr().unwrap();
        let (invocations, queue) = mpsc::unbounded_channel();
        let (next_count, nexts) = watch::channel(0u64);
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(serve(
            listener,
            name.to_owned(),
            Arc::new(tokio::sync::Mutex::new(queue)),
            next_count,
            shared.clone(),
        ));

        let proxy_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the DynamoDB proxy");
        let endpoint = format!("http://{}", proxy_listener.local_addr().unwrap());
        let proxy = tokio::spawn(proxy(proxy_listener, crate::security::faults::upstream(), shared.clone()));
        let function_name = format!("apikeys-{name}");
        let mut command = Command::new(LAMBDA_BINARY);
        command
            .env_clear()
            .env("FUNCTION", known_function(name))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2030/01/01/[$LATEST]0123456789abcdef")
            .env("AWS_REGION", "us-east-1")
            .env("TABLE_NAME", table)
            .env("DYNAMODB_ENDPOINT", endpoint)
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        *shared.pid.lock().unwrap() = child.id();
        let output = Arc::new(Mutex::new(Output::default()));
        let readers = vec![
            tokio::spawn(collect(child.stdout.take().unwrap(), output.clone(), true)),
            tokio::spawn(collect(child.stderr.take().unwrap(), output.clone(), false)),
        ];
        Function { name: name.to_owned(), child, invocations, shared, nexts, output, readers, server, proxy }
    }

    /// Hands `event` to the function and waits for what it posts back.
    pub async fn invoke(&mut self, event: Value) -> Outcome {
        let id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.answers.lock().unwrap().insert(id.clone(), tx);
        self.invocations.send(Invocation { id, event }).expect("the Runtime API is up");
        let outcome = tokio::select! {
            answered = tokio::time::timeout(INVOKE_TIMEOUT, rx) => answered.ok().and_then(Result::ok),
            exited = self.child.wait() => panic!("{} exited ({exited:?}):\n{}", self.name, self.output().all()),
        };
        if let Some(error) = self.shared.init_error.lock().unwrap().take() {
            panic!("{} reported an init error {error}:\n{}", self.name, self.output().all());
        }
        outcome.unwrap_or_else(|| panic!("{} did not answer:\n{}", self.name, self.output().all()))
    }

    /// An API Gateway event: the function's answer as `(status, body)`.
    pub async fn call(&mut self, event: Value) -> (u16, Value) {
        let answer = self.invoke(event).await.unwrap_or_else(|e| panic!("{} failed: {e}", self.name));
        let status = answer["statusCode"].as_u64().unwrap_or_default() as u16;
        let body = match answer["body"].as_str() {
            Some(text) if !text.is_empty() => serde_json::from_str(text).expect("every answer body is JSON"),
            _ => Value::Null,
        };
        (status, body)
    }

    /// Waits until the function has asked for its next event (and so is frozen): `count` asks
    /// since it started, the first one included.
    pub async fn wait_for_next(&mut self, count: u64) {
        let waited = tokio::time::timeout(INVOKE_TIMEOUT, self.nexts.wait_for(|n| *n >= count)).await;
        assert!(matches!(waited, Ok(Ok(_))), "{} never asked for event {count}", self.name);
    }

    /// The DynamoDB requests that were still in flight when the function asked for an event,
    /// for every ask so far that found any: work an invocation left running after its answer.
    pub fn left_running(&self) -> Vec<usize> {
        self.shared.in_flight_at_next.lock().unwrap().iter().copied().filter(|n| *n > 0).collect()
    }

    /// What the process printed so far.
    pub fn output(&self) -> Output {
        self.output.lock().unwrap().clone()
    }

    /// Stops the process and returns everything it printed.
    pub async fn stop(mut self) -> Output {
        thaw(&self.shared);
        *self.shared.pid.lock().unwrap() = None;
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        // The pipes close with the process: the readers end once they have every line.
        for reader in std::mem::take(&mut self.readers) {
            let _ = tokio::time::timeout(INVOKE_TIMEOUT, reader).await;
        }
        self.output()
    }
}

async fn collect(stream: impl AsyncRead + Unpin, output: Arc<Mutex<Output>>, stdout: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut output = output.lock().unwrap();
        if stdout { output.stdout.push(line) } else { output.stderr.push(line) }
    }
}

/// Signals the process while holding its pid, which `stop` clears before killing it: a signal
/// never reaches a pid the system has reused.
fn signal(shared: &Shared, signal: &str) {
    let pid = shared.pid.lock().unwrap();
    if let Some(pid) = *pid {
        let _ = std::process::Command::new("kill").args([signal, &pid.to_string()]).stderr(Stdio::null()).status();
    }
}

fn freeze(shared: &Shared) {
    signal(shared, "-STOP");
}

fn thaw(shared: &Shared) {
    signal(shared, "-CONT");
}

async fn serve(
    listener: TcpListener,
    name: String,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    nexts: watch::Sender<u64>,
    shared: Arc<Shared>,
) {
    let nexts = Arc::new(nexts);
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let (name, queue, nexts, shared) = (name.clone(), queue.clone(), nexts.clone(), shared.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (name, queue, nexts, shared) = (name.clone(), queue.clone(), nexts.clone(), shared.clone());
                async move { Ok::<_, Infallible>(route(req, &name, &queue, &nexts, &shared).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

async fn route(
    req: Request<Incoming>,
    name: &str,
    queue: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    nexts: &watch::Sender<u64>,
    shared: &Shared,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let parsed =
        || serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    let Some(rest) = path.strip_prefix(API) else { return reply(StatusCode::NOT_FOUND, "{}") };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["invocation", "next"]) => {
            let in_flight = shared.in_flight.load(Ordering::SeqCst);
            shared.in_flight_at_next.lock().unwrap().push(in_flight);
            nexts.send_modify(|n| *n += 1);
            // Lambda freezes the environment while no invocation is running.
            freeze(shared);
            let Some(invocation) = queue.lock().await.recv().await else {
                return reply(StatusCode::GONE, "{}");
            };
            thaw(shared);
            let deadline = chrono::Utc::now().timestamp_millis() + INVOKE_TIMEOUT.as_millis() as i64;
            let mut response = reply(StatusCode::OK, &invocation.event.to_string());
            let headers = response.headers_mut();
            let mut set = |header: &'static str, value: String| {
                headers.insert(header, value.parse().expect("a header value"));
            };
            set("content-type", "application/json".into());
            set("lambda-runtime-aws-request-id", invocation.id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set(
                "lambda-runtime-invoked-function-arn",
                format!("arn:aws:lambda:us-east-1:123456789012:function:apikeys-{name}"),
            );
            set(
                "lambda-runtime-trace-id",
                "Root=1-674c1f2a-3b8e5d0c9a7f41e26b1d0001;Parent=53995c3f42cd8ad8;Sampled=0".into(),
            );
            response
        }
        ("POST", ["invocation", id, kind @ ("response" | "error")]) => {
            let Some(answer) = shared.answers.lock().unwrap().remove(*id) else {
                return reply(StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID"}"#);
            };
            let _ = answer.send(if *kind == "response" { Ok(parsed()) } else { Err(parsed()) });
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        ("POST", ["init", "error"]) => {
            *shared.init_error.lock().unwrap() = Some(parsed());
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, "{}"),
    }
}

/// Forwards the function's connections to DynamoDB Local. HTTP/1.1 sends one request at a time
/// on a connection: a request is in flight from its first bytes to its answer's first bytes,
/// which are held back `DYNAMODB_LATENCY`.
async fn proxy(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { return };
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let busy = Arc::new(AtomicBool::new(false));
            let requests = {
                let (busy, shared) = (busy.clone(), shared.clone());
                async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        if !busy.swap(true, Ordering::SeqCst) {
                            shared.in_flight.fetch_add(1, Ordering::SeqCst);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let answers = async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                    if busy.load(Ordering::SeqCst) {
                        tokio::time::sleep(DYNAMODB_LATENCY).await;
                        busy.store(false, Ordering::SeqCst);
                        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            };
            tokio::join!(requests, answers);
        });
    }
}
