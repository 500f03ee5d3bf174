//! The request decoder: whatever bytes arrive as a body (under whatever content type) or as a
//! query string, decoding never panics; it gives a value, or an error whose status is a 4xx.
//! The first byte picks the content type, the second how the rest is split into body and query.

#![no_main]

use apikeys::entry::http::error::ApiError;
use apikeys::entry::http::request::json_body;
use apikeys::model::{CreateKeyInput, FieldError, PageRequest, PlaintextKey, RollInput, UpdateKeyInput, VerifyInput};
use chrono::{DateTime, Utc};
use lambda_http::http::Request;
use lambda_http::Body;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/merge-patch+json"),
    Some("text/plain"),
    Some(""),
    None,
];

fn client_error(e: FieldError) {
    let status = ApiError::from(e).status();
    assert!(status.is_client_error(), "a field error became {status}");
}

fuzz_target!(|data: &[u8]| {
    let [kind, split, rest @ ..] = data else { return };
    let split = (*split as usize).min(rest.len());
    let (query, body) = rest.split_at(split);

    // The list's query string, as the handler decodes it.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query).into_owned().collect();
    let borrowed = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if let Err(e) = PageRequest::parse(borrowed()) {
        client_error(e);
    }
    if let Err(e) = PageRequest::parse_without_status(borrowed()) {
        client_error(e);
    }

    // A key as verify reads it: never a panic, whatever the text.
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = PlaintextKey::parse(text);
    }

    // The body, then every parser that reads a body.
    let mut builder = Request::builder().method("POST").uri("/keys");
    if let Some(content_type) = CONTENT_TYPES[*kind as usize % CONTENT_TYPES.len()] {
        builder = builder.header("content-type", content_type);
    }
    let body = match (kind & 0x80 == 0, std::str::from_utf8(body)) {
        (true, Ok(text)) => Body::Text(text.to_owned()),
        _ => Body::Binary(body.to_vec()),
    };
    let request = builder.body(body).expect("a request");
    match json_body(&request) {
        Err(e) => assert!(e.status().is_client_error(), "a body error became {}", e.status()),
        Ok(None) => {
            let _ = RollInput::parse(None);
        }
        Ok(Some(value)) => {
            let now: DateTime<Utc> = DateTime::from_timestamp(1_893_456_000, 0).expect("a time");
            if let Err(e) = CreateKeyInput::parse(value.clone(), now) {
                client_error(e);
            }
            if let Err(e) = UpdateKeyInput::parse(value.clone(), now) {
                client_error(e);
            }
            if let Err(e) = RollInput::parse(Some(value.clone())) {
                client_error(e);
            }
            if let Err(e) = VerifyInput::parse(value) {
                client_error(e);
            }
        }
    }
});
