//! One handler per endpoint, all behind `handle`: caller from the authorizer's context, the
//! route's permission, then the operation. Each turns a `lambda_http::Request` into a response.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::config::App;
use crate::domain::Caller;
use crate::domain::keys::{self, NewKey, Page};
use crate::domain::verify::{self, Verdict, VerifyCode, VerifyRequest};
use crate::model::{CreateKeyInput, Cursor, IdempotencyKey, PageRequest, RollInput, UpdateKeyInput, VerifyInput};

use super::error::{ApiError, json_response};
use super::request::{self, caller, existing_key_id, json_body, path_key_id, required_body};
use super::routes::Endpoint;

/// The API's own path for keys, for `Location` and paging links.
const KEYS_PATH: &str = "/keys";

pub async fn handle(app: &App, endpoint: Endpoint, req: Request) -> Response<Body> {
    let result = async {
        let caller = caller(&req)?;
        caller.require(endpoint.route().need)?;
        match endpoint {
            Endpoint::CreateKey => create_key(app, &caller, &req, false).await,
            Endpoint::CreateCustomKey => create_key(app, &caller, &req, true).await,
            Endpoint::GetKey => get_key(app, &caller, &req).await,
            Endpoint::ListKeys => list_keys(app, &caller, &req).await,
            Endpoint::UpdateKey => update_key(app, &caller, &req).await,
            Endpoint::DeleteKey => delete_key(app, &caller, &req).await,
            Endpoint::RollKey => roll_key(app, &caller, &req).await,
            Endpoint::VerifyKey => verify_key(app, &caller, &req).await,
            Endpoint::ListKeyEvents => list_key_events(app, &caller, &req).await,
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

fn with_header(mut response: Response<Body>, name: header::HeaderName, value: &str) -> Response<Body> {
    if let Ok(value) = value.parse() {
        response.headers_mut().insert(name, value);
    }
    response
}

fn key_response(status: StatusCode, view: &impl serde::Serialize, etag: String) -> Response<Body> {
    with_header(json_response(status, view), header::ETAG, &etag)
}

async fn create_key(app: &App, caller: &Caller, req: &Request, custom_id: bool) -> Result<Response<Body>, ApiError> {
    let id = if custom_id { Some(path_key_id(req)?) } else { None };
    let body = required_body(req)?;
    let idempotency = request::header(req, "idempotency-key").map(IdempotencyKey::parse).transpose()?;
    let now = app.clock.now();
    let input = CreateKeyInput::parse(body.clone(), now)?;
    let new_key = NewKey { id, input, idempotency: idempotency.map(|key| (key, body)) };
    let created = keys::create_key(&app.store, caller, now, new_key).await?;
    let response = json_response(StatusCode::CREATED, &created.body);
    Ok(with_header(response, header::LOCATION, &format!("{KEYS_PATH}/{}", created.id)))
}

async fn get_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let key = keys::get_key(&app.store, caller, &existing_key_id(req)?).await?;
    Ok(key_response(StatusCode::OK, &key.view(app.clock.now()), key.etag()))
}

async fn list_keys(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let pairs = request::query_pairs(req);
    let page = PageRequest::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let listed = keys::list_keys(&app.store, caller, &page).await?;
    let now = app.clock.now();
    let views: Vec<_> = listed.items.iter().map(|k| k.view(now)).collect();
    Ok(page_response(&page, KEYS_PATH, &listed, &views))
}

async fn list_key_events(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_key_id(req)?;
    let pairs = request::query_pairs(req);
    let page = PageRequest::parse_without_status(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let listed = keys::list_events(&app.store, caller, &id, &page).await?;
    Ok(page_response(&page, &format!("{KEYS_PATH}/{id}/events"), &listed, &listed.items))
}

/// The list envelope: `{status, total, count, nextUrl, previousUrl, data}`, links relative to
/// the API root.
fn page_response<T>(page: &PageRequest, path: &str, listed: &Page<T>, data: &impl serde::Serialize) -> Response<Body> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope<'a, D> {
        status: u16,
        total: u64,
        count: usize,
        next_url: Option<String>,
        previous_url: Option<String>,
        data: &'a D,
    }
    let link = |cursor: &Cursor| page.link(path, cursor);
    let body = Envelope {
        status: 200,
        total: listed.total,
        count: listed.items.len(),
        next_url: listed.next.as_ref().map(link),
        previous_url: listed.previous.as_ref().map(|p| match p {
            Ok(cursor) => link(cursor),
            Err(offset) => page.offset_link(path, *offset),
        }),
        data,
    };
    json_response(StatusCode::OK, &body)
}

async fn update_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_key_id(req)?;
    let now = app.clock.now();
    let input = UpdateKeyInput::parse(required_body(req)?, now)?;
    let key = keys::update_key(&app.store, caller, now, &id, &input, request::if_match(req)?).await?;
    Ok(key_response(StatusCode::OK, &key.view(now), key.etag()))
}

async fn delete_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    keys::delete_key(&app.store, caller, app.clock.now(), &existing_key_id(req)?).await?;
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

async fn roll_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_key_id(req)?;
    let input = RollInput::parse(json_body(req)?)?;
    let now = app.clock.now();
    let (key, plaintext) = keys::roll_key(&app.store, caller, now, &id, input).await?;
    Ok(key_response(StatusCode::OK, &key.view(now).with_plaintext(&plaintext), key.etag()))
}

async fn verify_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let input = VerifyInput::parse(required_body(req)?)?;
    let request = VerifyRequest {
        key: &input.key,
        company: Some(&caller.company),
        ip: input.ip,
        permissions: &input.permissions,
        scope: Some(&input.scope),
    };
    let now = app.clock.now();
    let verdict = verify::verify(&app.store, now, request).await?;
    super::metrics::record_verify_outcome(verdict.code, now);
    Ok(json_response(StatusCode::OK, &verdict_json(&verdict)))
}

/// `{valid, code, …}`: a found key adds its id and user; a valid one its permissions, expiry
/// and what remains of its limits.
pub fn verdict_json(verdict: &Verdict) -> Value {
    let mut body = json!({ "valid": verdict.is_valid(), "code": verdict.code });
    if let Some(key) = &verdict.key {
        body["keyId"] = json!(key.id);
        body["userId"] = json!(key.user_id);
        if verdict.code == VerifyCode::Valid {
            let mut permissions: Vec<&str> = key
                .acl
                .iter()
                .flat_map(|acl| acl.entries())
                .flat_map(|e| e.permissions.iter())
                .map(|p| p.as_str())
                .collect();
            permissions.sort_unstable();
            permissions.dedup();
            body["permissions"] = json!(permissions);
            body["expiresAt"] = json!(key.expires_at);
        }
    }
    if let Some(rate) = &verdict.rate {
        body["rateLimit"] = json!(rate);
    }
    if let Some(remaining) = verdict.quota_remaining {
        body["quota"] = json!({ "remaining": remaining });
    }
    body
}
