//! Reading a request: its body, its parameters and the caller the authorizer vouched for.

use lambda_http::http::header;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

use crate::domain::{Caller, DomainError};
use crate::model::{CompanyId, FieldError, KeyId, Permission};

use super::error::{ApiError, MAX_BODY_BYTES};

/// Names of the values the authorizer passes to the handlers (API Gateway allows only
/// strings, numbers and booleans there, so permissions travel comma-joined).
pub mod context {
    pub const AUTHENTICATED: &str = "authenticated";
    pub const COMPANY_ID: &str = "companyId";
    pub const KEY_ID: &str = "keyId";
    pub const USER_ID: &str = "userId";
    pub const PERMISSIONS: &str = "permissions";
    /// Set instead when the credential was refused: the answer's status and message.
    pub const ERROR_STATUS: &str = "errorStatus";
    pub const ERROR_MESSAGE: &str = "errorMessage";
}

/// The caller, only from the authorizer's context: never from the body, query or path.
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let fields = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().map(|a| &a.fields),
        _ => None,
    };
    let unauthenticated =
        || DomainError::Unauthenticated("send a root key as Authorization: Bearer <key> or x-api-key".into());
    let Some(fields) = fields else { return Err(unauthenticated().into()) };
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    if fields.get(context::AUTHENTICATED).and_then(Value::as_bool) != Some(true) {
        let message = text(context::ERROR_MESSAGE).unwrap_or("the credential was refused").to_owned();
        return Err(match fields.get(context::ERROR_STATUS).and_then(Value::as_u64) {
            Some(429) => DomainError::RateLimited(message),
            Some(503) => DomainError::Unavailable,
            _ => DomainError::Unauthenticated(message),
        }
        .into());
    }
    let company =
        text(context::COMPANY_ID).and_then(|c| CompanyId::parse(c, "companyId").ok()).ok_or_else(unauthenticated)?;
    let permissions = text(context::PERMISSIONS)
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| Permission::parse(p.trim(), "permissions").ok())
        .collect();
    Ok(Caller { company, actor: text(context::KEY_ID).unwrap_or_default().to_owned(), permissions })
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
        return Err(ApiError::PayloadTooLarge);
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

/// Query parameters, decoded, in order.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect()
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `If-Match: "3"` (also `W/"3"` or `3`): the version the caller last saw. `*` matches any
/// version of an existing key, so it pins nothing.
pub fn if_match(req: &Request) -> Result<Option<u64>, ApiError> {
    let Some(raw) = header(req, "if-match").filter(|v| v.trim() != "*") else { return Ok(None) };
    let version = raw.trim().trim_start_matches("W/").trim_matches('"');
    version
        .parse()
        .map(Some)
        .map_err(|_| FieldError::invalid("If-Match", "If-Match must be an ETag this API returned").into())
}
