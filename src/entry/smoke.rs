//! `apikeys smoke`: a check, over HTTP(S), that a served API answers as its contract says. It
//! walks one key through its life (create, get, list, verify, patch, roll, verify both secrets,
//! delete, verify and get again), prints one line per request with its status and latency,
//! stops at the first answer that breaks the contract, and deletes the key it made either way,
//! so nothing active is left behind. It prints key ids, never a secret or the root key.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, LOCATION};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// No request may take longer; a Lambda cold start is well within it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Larger answers are refused unread: no answer of the steps comes near.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The permission the smoke key carries, and asks for when it verifies.
const PERMISSION: &str = "smoke:check";
/// How often the list step asks for a page that shows the new key.
const LIST_TRIES: u32 = 5;

/// What a run prints, with whatever may be a secret taken out: the root key it was given, any
/// word holding `sk_` or `pk_` (a key, or something that looks like one) and any word holding
/// 40 or more hex digits in a row (a hash). Every line goes through it, values a served API
/// answered included, so a broken API (or shifted arguments) cannot get a secret printed.
pub fn redacted(text: &str, root_key: &str) -> String {
    const HIDDEN: &str = "[redacted]";
    let text = if root_key.is_empty() { text.to_owned() } else { text.replace(root_key, HIDDEN) };
    let secret_like = |word: &str| {
        let mut hex_run = 0;
        word.contains("sk_")
            || word.contains("pk_")
            || word.chars().any(|c| {
                hex_run = if c.is_ascii_hexdigit() { hex_run + 1 } else { 0 };
                hex_run >= 40
            })
    };
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        out.push_str(if secret_like(&word) { HIDDEN } else { &word });
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// An answer as the checks see it.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: hyper::header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The error code of a JSON error answer, for a failure line (an error carries no secret).
    fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("-")
    }
}

/// A request's latency, what its check made of it, and its answer if one came.
struct Outcome {
    millis: u128,
    verdict: Result<String, String>,
    reply: Option<Reply>,
}

/// What a check makes of an answer: a note for its line, or what broke the contract.
type Check<'a> = Box<dyn FnOnce(&Reply) -> Result<String, String> + 'a>;

/// The API at `base`, called with the root key.
struct Api {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    root_key: String,
}

impl Api {
    fn new(base: &Uri, root_key: String) -> Result<Self, String> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        // The system's roots for https; a plain http URL needs none (and a CI container may have none).
        let connector = if base.scheme_str() == Some("https") {
            builder
                .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| format!("TLS roots: {e}"))?
                .https_or_http()
                .enable_http1()
                .build()
        } else {
            let config = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder.with_tls_config(config).https_or_http().enable_http1().build()
        };
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self { client, base: base.to_string().trim_end_matches('/').to_owned(), root_key })
    }

    async fn send(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, String> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {}", self.root_key));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(etag) = if_match {
            request = request.header(IF_MATCH, etag);
        }
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = request.body(Full::new(bytes)).map_err(|e| format!("request: {e}"))?;
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request)).await {
            Err(_) => return Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(e)) => return Err(format!("cannot reach the API: {e}")),
            Ok(Ok(response)) => response,
        };
        let (parts, body) = response.into_parts();
        let read = tokio::time::timeout(REQUEST_TIMEOUT, Limited::new(body, MAX_ANSWER_BYTES).collect()).await;
        let bytes = match read {
            Err(_) => return Err(format!("no whole answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(e)) => return Err(format!("reading the answer: {e}")),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| format!("{} with an answer that is not JSON", parts.status))?
        };
        Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body })
    }
}

/// One run: the API, where its lines go, and the key it made (to delete at the end).
struct Run<'a, W: Write> {
    api: Api,
    out: &'a mut W,
    created: Option<String>,
    deleted: bool,
    steps: usize,
}

impl<W: Write> Run<'_, W> {
    /// Sends one request, prints its line, and answers the reply if it kept the contract.
    async fn step(
        &mut self,
        name: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
        check: Check<'_>,
    ) -> Option<Reply> {
        let outcome = self.attempt(&method, path, body.as_ref(), if_match, check).await;
        self.report(name, &method, path, outcome)
    }

    /// Sends one request and checks its answer, printing nothing.
    async fn attempt(
        &mut self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        check: Check<'_>,
    ) -> Outcome {
        let started = Instant::now();
        let sent = self.api.send(method, path, body, if_match).await;
        let millis = started.elapsed().as_millis();
        self.steps += 1;
        match sent {
            Err(problem) => Outcome { millis, verdict: Err(problem), reply: None },
            Ok(reply) => Outcome { millis, verdict: check(&reply), reply: Some(reply) },
        }
    }

    /// Prints a request's line, and answers its reply if it kept the contract.
    fn report(&mut self, name: &str, method: &Method, path: &str, outcome: Outcome) -> Option<Reply> {
        let Outcome { millis, verdict, reply } = outcome;
        let status = reply.as_ref().map_or_else(|| "---".to_owned(), |r| r.status.to_string());
        let (word, note) = match &verdict {
            Ok(note) => ("ok", note.as_str()),
            Err(problem) => ("FAIL", problem.as_str()),
        };
        let mut line = format!("{name:<15} {status:>3} {millis:>6} ms  {word:<4}  {method} {path}");
        if !note.is_empty() {
            let _ = write!(line, "  {note}");
        }
        let _ = writeln!(self.out, "{}", redacted(&line, &self.api.root_key));
        verdict.ok().and(reply)
    }

    /// The first page of active keys must show the new one. Lists read a global secondary index,
    /// which DynamoDB fills a moment after the write, so a page without it is asked again, up
    /// to `LIST_TRIES` times a second apart (the line shows the last answer).
    async fn list(&mut self, id: &str) -> Option<Reply> {
        let path = "/keys?status=active&limit=100";
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            let check: Check<'_> = Box::new(|r| {
                expect_status(r, 200)?;
                let data = r.body["data"].as_array().ok_or("no `data` list")?;
                if !r.body["total"].is_u64() {
                    return Err("no `total`".into());
                }
                // Newest first: the key just made is on the first page unless a hundred were made since.
                if !data.iter().any(|k| k["id"] == id) {
                    return Err(format!("key {id} is not on the first page of active keys ({tries} tries)"));
                }
                Ok(if tries > 1 { format!("listed at try {tries}") } else { String::new() })
            });
            let outcome = self.attempt(&Method::GET, path, None, None, check).await;
            let unlisted = outcome.verdict.is_err() && outcome.reply.as_ref().is_some_and(|r| r.status == 200);
            if !unlisted || tries >= LIST_TRIES {
                break outcome;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        self.report("list", &Method::GET, path, outcome)
    }

    /// Every step in order; `None` at the first that broke the contract.
    async fn steps(&mut self, description: &str) -> Option<()> {
        let body = json!({ "userId": "smoke", "description": description, "acl": [{ "permissions": [PERMISSION] }] });
        let check: Check<'_> = Box::new(|r| {
            expect_status(r, 201)?;
            expect_text(r, "description", description)?;
            let id = r.body["id"].as_str().filter(|id| !id.is_empty()).ok_or("no `id`")?;
            secret_of(r)?;
            if r.header(LOCATION).is_empty() {
                return Err("no Location header".into());
            }
            Ok(format!("key {id}"))
        });
        let outcome = self.attempt(&Method::POST, "/keys", Some(&body), None, check).await;
        // A key made is deleted at the end even when its answer broke the contract (no Location
        // header, a wrong field): it exists, and is active, all the same.
        if let Some(reply) = outcome.reply.as_ref().filter(|r| r.status == 201) {
            self.created = reply.body["id"].as_str().filter(|id| is_key_id(id)).map(str::to_owned);
        }
        let created = self.report("create", &Method::POST, "/keys", outcome)?;
        let id = self.created.clone()?;
        let first_secret = secret_of(&created).ok()?;
        let key_path = format!("/keys/{id}");

        let read = self.get("get", &id, "active").await?;
        let etag = read.header(ETAG).to_owned();

        self.list(&id).await?;

        self.verify("verify", &first_secret, &["VALID"], &id).await?;

        self.step(
            "patch",
            Method::PATCH,
            &key_path,
            Some(json!({ "tags": ["smoke"], "metadata": { "smoke": true } })),
            Some(&etag),
            Box::new(|r| {
                expect_status(r, 200)?;
                if r.body["tags"] != json!(["smoke"]) || r.body["metadata"] != json!({ "smoke": true }) {
                    return Err("the answer does not show the change".into());
                }
                Ok(String::new())
            }),
        )
        .await?;

        let rolled = self
            .step(
                "roll",
                Method::POST,
                &format!("{key_path}/roll"),
                Some(json!({ "gracePeriodSeconds": 3600 })),
                None,
                Box::new(|r| {
                    expect_status(r, 200)?;
                    expect_text(r, "id", &id)?;
                    if secret_of(r)? == first_secret {
                        return Err("the new secret is the old one".into());
                    }
                    Ok(String::new())
                }),
            )
            .await?;
        let new_secret = secret_of(&rolled).ok()?;
        self.verify("verify old", &first_secret, &["VALID"], &id).await?;
        self.verify("verify new", &new_secret, &["VALID"], &id).await?;

        self.step(
            "delete",
            Method::DELETE,
            &key_path,
            None,
            None,
            Box::new(|r| expect_status(r, 204).map(|()| String::new())),
        )
        .await?;
        self.deleted = true;
        self.verify("verify new gone", &new_secret, &["INACTIVE"], &id).await?;
        // The contract says only that an old secret stops verifying with its deleted key.
        self.verify("verify old gone", &first_secret, &["INACTIVE", "NOT_FOUND"], &id).await?;
        self.get("get deleted", &id, "inactive").await?;
        Some(())
    }

    /// A read of the key that must show it with `status`, its ETag and no secret.
    async fn get(&mut self, name: &str, id: &str, status: &'static str) -> Option<Reply> {
        let check: Check<'_> = Box::new(move |r| {
            expect_status(r, 200)?;
            expect_text(r, "id", id)?;
            expect_text(r, "status", status)?;
            if r.body.get("key").is_some() {
                return Err("a read shows the secret".into());
            }
            if r.header(ETAG).is_empty() {
                return Err("no ETag header".into());
            }
            Ok(String::new())
        });
        self.step(name, Method::GET, &format!("/keys/{id}"), None, None, check).await
    }

    /// A verify of `secret` that must answer one of `codes` (and name the key when it is valid).
    async fn verify(&mut self, name: &str, secret: &str, codes: &'static [&'static str], id: &str) -> Option<Reply> {
        let body = json!({ "key": secret, "permissions": [PERMISSION] });
        let check: Check<'_> = Box::new(move |r| {
            expect_status(r, 200)?;
            let code = r.body["code"].as_str().unwrap_or_default();
            if !codes.contains(&code) {
                return Err(format!("`code` is {code:?}, expected {}", codes.join(" or ")));
            }
            if r.body["valid"] != (code == "VALID") {
                return Err(format!("`valid` is {} with code {code}", r.body["valid"]));
            }
            if code == "VALID" {
                expect_text(r, "keyId", id)?;
            }
            Ok(code.to_owned())
        });
        self.step(name, Method::POST, "/keys/verify", Some(body), None, check).await
    }
}

/// Whether `id` can be a key id (the alphabet of ids, 1 to 64 characters), so that the path
/// the cleanup deletes is `/keys/<that key>` and nothing else, whatever an API answered.
fn is_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn expect_status(reply: &Reply, status: u16) -> Result<(), String> {
    if reply.status == status {
        Ok(())
    } else {
        Err(format!("expected {status}, got {} {}", reply.status, reply.error_code()))
    }
}

fn expect_text(reply: &Reply, field: &str, expected: &str) -> Result<(), String> {
    match reply.body[field].as_str() {
        Some(value) if value == expected => Ok(()),
        // Only fields that hold no secret are compared, so the value may be shown.
        Some(value) => Err(format!("`{field}` is {value:?}, expected {expected:?}")),
        None => Err(format!("no `{field}`, expected {expected:?}")),
    }
}

/// The plaintext secret of a create or roll answer.
fn secret_of(reply: &Reply) -> Result<String, String> {
    match reply.body["key"].as_str() {
        Some(key) if key.starts_with("sk_") => Ok(key.to_owned()),
        Some(_) => Err("`key` is not a secret key (sk_…)".into()),
        None => Err("no `key` in the answer".into()),
    }
}

/// Whether `host` (a URL's, IPv6 in brackets) is this machine.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Runs the check against the API at `url`, writing its lines to `out`: true if every answer
/// kept the contract. The key it made is deleted whether or not a step failed.
pub async fn run(url: &str, root_key: &str, out: &mut impl Write) -> Result<bool, String> {
    let base: Uri = url.parse().map_err(|_| format!("--url {url:?} is not a URL"))?;
    // No user info: the URL is printed, and credentials go in the root key alone.
    let user_info = base.authority().is_some_and(|a| a.as_str().contains('@'));
    if !matches!(base.scheme_str(), Some("http" | "https"))
        || base.host().is_none()
        || base.query().is_some()
        || user_info
    {
        return Err(format!("--url {url:?} is not an http(s) URL of an API"));
    }
    // The root key goes in every request: in clear only to this machine.
    if base.scheme_str() == Some("http") && !is_loopback(base.host().unwrap_or_default()) {
        return Err(format!(
            "--url {url:?} is plain http to another machine, which would send the root key in clear: use https"
        ));
    }
    let api = Api::new(&base, root_key.to_owned())?;
    let description = format!("smoke {}", chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let started = Instant::now();
    let mut run = Run { api, out, created: None, deleted: false, steps: 0 };
    let passed = run.steps(&description).await.is_some();
    if let Some(id) = run.created.clone().filter(|_| !run.deleted) {
        let cleaned = run
            .step(
                "cleanup",
                Method::DELETE,
                &format!("/keys/{id}"),
                None,
                None,
                Box::new(|r| expect_status(r, 204).map(|()| String::new())),
            )
            .await;
        if cleaned.is_none() {
            let line = format!("smoke: key {id} ({description}) could not be deleted: delete it by hand");
            let _ = writeln!(run.out, "{}", redacted(&line, root_key));
        }
    }
    let millis = started.elapsed().as_millis();
    let summary = if passed { "ok" } else { "FAILED" };
    let line = format!("smoke: {summary}, {} requests in {millis} ms against {}", run.steps, run.api.base);
    let _ = writeln!(run.out, "{}", redacted(&line, root_key));
    Ok(passed)
}
