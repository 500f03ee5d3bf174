//! Reading a request: its body, its parameters and its credential.

use std::net::IpAddr;

use lambda_http::http::header;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

use crate::domain::{Credential, DomainError};
use crate::model::{FieldError, IdempotencyKey, IdentityId, KeyId};

use super::error::{ApiError, MAX_BODY_BYTES};

/// What the caller presents: the key from `Authorization: Bearer <key>`, else from
/// `x-api-key`, and the client's address for IP allowlists.
pub fn credential(req: &Request) -> Credential<'_> {
    let bearer = header(req, "authorization").and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let key = bearer.or_else(|| header(req, "x-api-key").map(str::trim)).filter(|k| !k.is_empty());
    Credential { key, ip: source_ip(req) }
}

/// The client's address as API Gateway (or the local server) saw it.
fn source_ip(req: &Request) -> Option<IpAddr> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
        _ => None,
    }
}

/// A route that takes no query parameters: any is a 400 naming it.
/// The largest body a route reads: a secret scanner's report may hold hundreds of matches with
/// long URLs; every other body fits the common cap.
pub fn max_body_bytes(endpoint: Option<super::routes::Endpoint>) -> usize {
    match endpoint {
        Some(super::routes::Endpoint::SecretScanningGithub) => crate::model::secret_scanning::MAX_REPORT_BYTES,
        _ => MAX_BODY_BYTES,
    }
}

pub fn no_query(req: &Request) -> Result<(), ApiError> {
    match query_pairs(req).into_iter().next() {
        Some((name, _)) => Err(FieldError::unknown(name).into()),
        None => Ok(()),
    }
}

/// `Idempotency-Key`, as openapi.yaml documents it: 1 to 255 visible ASCII characters. A header
/// that is present but empty, not text, or too long is a 400 naming it, never ignored.
pub fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else { return Ok(None) };
    let text = std::str::from_utf8(raw.as_bytes()).unwrap_or("\u{fffd}");
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// `?force=true` on a write that may remove the company's last admin key; any other query
/// parameter is a 400 naming it.
pub fn force_flag(req: &Request) -> Result<bool, ApiError> {
    let mut force = None;
    for (name, value) in query_pairs(req) {
        match (name.as_str(), value.as_str(), force) {
            ("force", _, Some(_)) => return Err(FieldError::invalid("force", "force is given more than once").into()),
            ("force", "true", None) => force = Some(true),
            ("force", "false", None) => force = Some(false),
            ("force", _, None) => return Err(FieldError::invalid("force", "force must be true or false").into()),
            _ => return Err(FieldError::unknown(name).into()),
        }
    }
    Ok(force.unwrap_or(false))
}

/// The JSON body, if any. Over 64 KiB is 413, a type other than JSON 415, bad JSON 400.
pub fn json_body(req: &Request) -> Result<Option<Value>, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media_type != "application/json" && !media_type.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

/// A body that must be there.
pub fn required_body(req: &Request) -> Result<Value, ApiError> {
    json_body(req)?.ok_or_else(|| FieldError::invalid("body", "a JSON object body is required").into())
}

/// The `keyId` path parameter of an existing key: an impossible id cannot exist, so 404.
pub fn existing_key_id(req: &Request) -> Result<KeyId, ApiError> {
    path_key_id(req).map_err(|_| DomainError::NotFound.into())
}

/// The `keyId` path parameter of a key to create: an impossible id is a 400 naming it.
pub fn path_key_id(req: &Request) -> Result<KeyId, ApiError> {
    let params = req.path_parameters();
    Ok(KeyId::parse(params.first("keyId").unwrap_or_default(), "keyId")?)
}

/// The `identityId` path parameter: an impossible id cannot be an identity, so 404.
pub fn existing_identity_id(req: &Request) -> Result<IdentityId, ApiError> {
    let params = req.path_parameters();
    IdentityId::parse(params.first("identityId").unwrap_or_default(), "identityId")
        .map_err(|_| DomainError::NoIdentity.into())
}

/// Query parameters, decoded, in order.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `If-Match: "3"` (also `W/"3"` or `3`): the version the caller last saw. `*` matches any
/// version of an existing key, so it pins nothing.
pub fn if_match(req: &Request) -> Result<Option<u64>, ApiError> {
    let Some(raw) = req.headers().get("if-match") else { return Ok(None) };
    Ok(crate::model::input::if_match(raw.as_bytes())?)
}
