//! An HTTP client for the SDK that records DynamoDB's answers once and can then replay them with
//! no network, so a handler runs its whole path (routing, parsing, domain, SDK serialization and
//! deserialization) with the store's round trip taken out.
//!
//! Answers are keyed by operation (`x-amz-target`) and, for single-item operations, by the
//! item's `pk`, for `BatchGetItem` by every `pk` it asks (sorted), so the caller's `GetItem` of
//! its root key and a handler's `GetItem` of another item replay different answers, and so do
//! verify's `BatchGetItem` of two lookup items and a list page's of its keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::BodyExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Straight to DynamoDB, nothing kept.
    Pass = 0,
    /// To DynamoDB, keeping each answer (the last one per key wins).
    Record = 1,
    /// No network: the recorded answer, or an error if there is none.
    Replay = 2,
}

#[derive(Debug, Clone)]
struct Recorded {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

#[derive(Debug, Default)]
struct TapeInner {
    mode: AtomicU8,
    records: RwLock<HashMap<String, Recorded>>,
}

/// The recorded answers and the current mode, shared by every connector of one client.
#[derive(Debug, Clone, Default)]
pub struct Tape(Arc<TapeInner>);

impl Tape {
    pub fn set_mode(&self, mode: Mode) {
        self.0.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn mode(&self) -> Mode {
        match self.0.mode.load(Ordering::Relaxed) {
            1 => Mode::Record,
            2 => Mode::Replay,
            _ => Mode::Pass,
        }
    }

    /// The keys recorded so far, for a look at what a scenario called.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.0.records.read().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }
}

/// `GetItem SECRET#…`, `BatchGetItem SECRET#…,SECRET#…`, `TransactWriteItems`, …: the operation,
/// and the `pk` of a single-item call or every `pk` of a batch read, sorted.
fn tape_key(request: &HttpRequest) -> String {
    let target = request.headers().get("x-amz-target").unwrap_or("unknown");
    let operation = target.rsplit('.').next().unwrap_or(target);
    let single_item = matches!(operation, "GetItem" | "UpdateItem" | "PutItem" | "DeleteItem");
    let body = request.body().bytes();
    if operation == "BatchGetItem" {
        // Every pk asked, sorted: a batch's order need not be the same from one call to the next.
        let mut pks = body.map(all_pks).unwrap_or_default();
        pks.sort();
        return format!("{operation} {}", pks.join(","));
    }
    match body.filter(|_| single_item).and_then(pk_of) {
        Some(pk) => format!("{operation} {pk}"),
        None => operation.to_owned(),
    }
}

/// Every `"pk":{"S":"…"}` of a request body, in order.
fn all_pks(mut body: &[u8]) -> Vec<String> {
    let mut pks = Vec::new();
    while let Some((pk, end)) = next_pk(body) {
        body = &body[end..];
        pks.push(pk);
    }
    pks
}

/// The first `"pk":{"S":"…"}` of a request body, found without parsing the JSON.
fn pk_of(body: &[u8]) -> Option<String> {
    next_pk(body).map(|(pk, _)| pk)
}

/// The first `"pk":{"S":"…"}` of a request body and where its value ends.
fn next_pk(body: &[u8]) -> Option<(String, usize)> {
    const NEEDLE: &[u8] = b"\"pk\":{\"S\":\"";
    let start = body.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    Some((String::from_utf8_lossy(&body[start..start + len]).into_owned(), start + len))
}

fn response_of(recorded: &Recorded) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(recorded.status).expect("recorded status is valid"),
        SdkBody::from(recorded.body.clone()),
    );
    for (name, value) in &recorded.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// The SDK's HTTP client, wrapped: pass, record or replay as the tape's mode says.
#[derive(Debug, Clone)]
pub struct TapeClient {
    real: SharedHttpClient,
    tape: Tape,
}

impl TapeClient {
    pub fn new(real: SharedHttpClient, tape: Tape) -> Self {
        Self { real, tape }
    }
}

impl HttpClient for TapeClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let real = self.real.http_connector(settings, components);
        SharedHttpConnector::new(TapeConnector { real, tape: self.tape.clone() })
    }
}

#[derive(Debug)]
struct TapeConnector {
    real: SharedHttpConnector,
    tape: Tape,
}

impl HttpConnector for TapeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match self.tape.mode() {
            Mode::Pass => self.real.call(request),
            Mode::Replay => {
                let key = tape_key(&request);
                let found = self.tape.0.records.read().unwrap().get(&key).map(response_of);
                HttpConnectorFuture::ready(
                    found.ok_or_else(|| ConnectorError::other(format!("nothing recorded for {key}").into(), None)),
                )
            }
            Mode::Record => {
                let key = tape_key(&request);
                let real = self.real.clone();
                let tape = self.tape.clone();
                HttpConnectorFuture::new(async move {
                    let response = real.call(request).await?;
                    let status = response.status().as_u16();
                    let headers: Vec<(String, String)> =
                        response.headers().iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
                    let body = response.into_body().collect().await.map_err(ConnectorError::io)?.to_bytes();
                    let recorded = Recorded { status, headers, body };
                    let answer = response_of(&recorded);
                    tape.0.records.write().unwrap().insert(key, recorded);
                    Ok(answer)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{all_pks, pk_of};

    #[test]
    fn finds_the_partition_key() {
        let body = br#"{"TableName":"t","Key":{"pk":{"S":"SECRET#ab12"},"sk":{"S":"SECRET"}},"ConsistentRead":true}"#;
        assert_eq!(pk_of(body).as_deref(), Some("SECRET#ab12"));
        assert_eq!(pk_of(b"{}"), None);
    }

    #[test]
    fn finds_every_partition_key_of_a_batch_in_order() {
        let body = br#"{"RequestItems":{"t":{"Keys":[{"pk":{"S":"SECRET#b"},"sk":{"S":"SECRET"}},{"pk":{"S":"SECRET#a"},"sk":{"S":"SECRET"}}]}}}"#;
        assert_eq!(all_pks(body), ["SECRET#b", "SECRET#a"]);
        assert!(all_pks(b"{}").is_empty());
    }
}
