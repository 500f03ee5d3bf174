//! A plain HTTP/1.1 client (https too, for a deployed stack) and `Check`: one check's calls,
//! and the keys it made, deleted at its end.

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::differences::ServedBy;
use crate::target::{Target, target};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// An answer: its status, headers and body (JSON when it parses as JSON, else the text as a
/// JSON string, `null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of a contract error answer (`{"error": {"code", …}}`).
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// `body[field]` as a string.
    pub fn text(&self, field: &str) -> &str {
        self.body[field].as_str().unwrap_or_default()
    }

    /// Whether this is a contract error: the status, `error.code`, a message, JSON.
    pub fn is_error(&self, status: u16, code: &str) -> bool {
        self.status == status
            && self.error_code() == code
            && self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty())
            && self.header("content-type").starts_with("application/json")
    }
}

/// Which company a key the check made belongs to, so that its root key can delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Company {
    One,
    Other,
}

/// A key the check made: its id and its secret.
#[derive(Debug, Clone)]
pub struct Made {
    pub id: String,
    pub key: String,
    pub body: Value,
}

/// One check: a client, the target, and the keys to delete at the end (`done`).
pub struct Check {
    client: Client<Https, Full<Bytes>>,
    pub target: &'static Target,
    made: Mutex<Vec<(String, Company)>>,
}

impl Check {
    pub fn new() -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .expect("the system's TLS roots")
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            target: target(),
            made: Mutex::default(),
        }
    }

    pub fn root(&self) -> &'static str {
        &self.target.root_key
    }

    pub fn other_root(&self) -> &'static str {
        &self.target.other_root_key
    }

    pub fn served_by(&self) -> ServedBy {
        self.target.served_by
    }

    /// A request with the root key as `Authorization: Bearer`; the builder changes any of it.
    pub fn call(&self, method: &str, path: &str) -> Call<'_> {
        Call {
            check: self,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: vec![("authorization".into(), format!("Bearer {}", self.root()))],
            body: None,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path).send().await
    }

    /// Creates a key with the root key (201 asserted); deleted at the end of the check.
    pub async fn create(&self, body: Value) -> Made {
        self.create_with(self.root(), body).await
    }

    /// Creates a key with `key` as the caller (201 asserted); deleted at the end of the check.
    pub async fn create_with(&self, key: &str, body: Value) -> Made {
        let answer = self.call("POST", "/keys").key(key).json(&body).send().await;
        assert_eq!(answer.status, 201, "create {body}: {answer:?}");
        let company = if key == self.other_root() { Company::Other } else { Company::One };
        self.made_from(&answer, company)
    }

    /// A key with `acl` made by the root key: its id and secret.
    pub async fn key_with_acl(&self, permissions: &[&str]) -> Made {
        self.create(json!({ "userId": "blackbox", "acl": [{ "permissions": permissions }] })).await
    }

    /// Records a key made by a call of the check's own (for `done`) and answers it as made.
    pub fn made_from(&self, answer: &Answer, company: Company) -> Made {
        self.made.lock().unwrap().push((answer.text("id").to_owned(), company));
        Made { id: answer.text("id").to_owned(), key: answer.text("key").to_owned(), body: answer.body.clone() }
    }

    /// Verifies `body` with the root key; 200 asserted.
    pub async fn verify(&self, body: Value) -> Answer {
        let answer = self.call("POST", "/keys/verify").json(&body).send().await;
        assert_eq!(answer.status, 200, "verify {body}: {answer:?}");
        answer
    }

    /// The verify code of `key` (no ip, no permissions).
    pub async fn code_of(&self, key: &str) -> String {
        self.verify(json!({ "key": key })).await.text("code").to_owned()
    }

    /// Deletes every key the check made (soft, as a user would): nothing it made stays active.
    pub async fn done(self) {
        let made = std::mem::take(&mut *self.made.lock().unwrap());
        for (id, company) in made {
            let root = if company == Company::Other { self.other_root() } else { self.root() };
            let answer = self.call("DELETE", &format!("/keys/{id}")).key(root).send().await;
            assert!(matches!(answer.status, 204 | 404), "clean-up of {id}: {answer:?}");
        }
    }
}

/// One request being built.
pub struct Call<'a> {
    check: &'a Check,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Call<'_> {
    /// `key` as `Authorization: Bearer` instead of the root key.
    pub fn key(self, key: &str) -> Self {
        self.without("authorization").header("authorization", &format!("Bearer {key}"))
    }

    /// No `Authorization` header.
    pub fn no_auth(self) -> Self {
        self.without("authorization")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    /// A JSON body, sent as `application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.raw(body.to_string().as_bytes(), "application/json")
    }

    /// A JSON body when there is one.
    pub fn json_if(self, body: Option<&Value>) -> Self {
        match body {
            Some(body) => self.json(body),
            None => self,
        }
    }

    pub fn raw(mut self, body: &[u8], content_type: &str) -> Self {
        self.body = Some(body.to_vec());
        self.header("content-type", content_type)
    }

    pub async fn send(self) -> Answer {
        let url = format!("{}{}", self.check.target.base_url, self.path);
        let mut request = hyper::Request::builder().method(self.method.as_str()).uri(&url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(self.body.unwrap_or_default()))).expect("a request");
        let response =
            self.check.client.request(request).await.unwrap_or_else(|e| panic!("{} {url}: {e}", self.method));
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap_or_else(|e| panic!("{} {url}: the body: {e}", self.method)).to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
        };
        Answer { status: parts.status.as_u16(), headers: parts.headers, body }
    }
}

/// An id no other check uses (custom ids, user ids).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// The ids of a list page, in its order.
pub fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .map(|d| d.iter().map(|k| k["id"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

/// Collects the failures of a table-driven check, one line each, and fails with all of them.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    pub fn assert_none(self, rows: usize) {
        assert!(self.0.is_empty(), "{} of {rows} rows failed:\n{}", self.0.len(), self.0.join("\n"));
    }
}
