//! The authorizer: verifies the root key of a management call and tells the handlers who
//! called. API Gateway runs it as a Lambda REQUEST authorizer; the local server runs the same
//! code in front of the same handlers.
//!
//! It always answers `isAuthorized: true` and puts its verdict in the context, so that a refused
//! credential gets the contract's JSON 401 (or 429, 503) from the handler instead of API
//! Gateway's bare 403. Handlers accept a call only when the context says `authenticated`.

use std::net::IpAddr;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::config::App;
use crate::domain::verify::{self, VerifyCode, VerifyRequest};
use crate::model::KeyType;

use super::request::context;

/// The key from `Authorization: Bearer <key>`, else from `x-api-key`.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)).filter(|k| !k.is_empty())
}

/// The context for the handlers: who called, or why the call is refused.
pub async fn authorize(app: &App, headers: &HeaderMap, source_ip: Option<IpAddr>) -> Map<String, Value> {
    let Some(key) = credential(headers) else {
        return refused(401, "send a root key as Authorization: Bearer <key> or x-api-key");
    };
    let request = VerifyRequest { key, ip: source_ip, ..Default::default() };
    let verdict = match verify::verify(&app.store, app.clock.now(), request).await {
        Ok(verdict) => verdict,
        Err(_) => return refused(503, "the database is unavailable"),
    };
    let key = match (verdict.code, verdict.key) {
        (VerifyCode::Valid, Some(key)) => key,
        (VerifyCode::RateLimited, _) => return refused(429, "this root key is over its rate limit"),
        (VerifyCode::QuotaExceeded, _) => return refused(429, "this root key has used up its quota"),
        (code, _) => return refused(401, &format!("the credential was refused ({})", code_name(code))),
    };
    // Publishable keys are shown again and meant for browsers and apps: never a root key.
    if key.key_type != KeyType::Secret {
        return refused(401, "a publishable key cannot call the management API; use a secret root key");
    }
    let permissions = key.acl.as_ref().map(|acl| acl.permissions_in("keys:")).unwrap_or_default();
    let mut ctx = Map::new();
    ctx.insert(context::AUTHENTICATED.into(), json!(true));
    ctx.insert(context::COMPANY_ID.into(), json!(key.company_id));
    ctx.insert(context::KEY_ID.into(), json!(key.id));
    ctx.insert(context::USER_ID.into(), json!(key.user_id));
    ctx.insert(context::PERMISSIONS.into(), json!(permissions.join(",")));
    ctx
}

fn code_name(code: VerifyCode) -> String {
    serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn refused(status: u16, message: &str) -> Map<String, Value> {
    let mut ctx = Map::new();
    ctx.insert(context::AUTHENTICATED.into(), json!(false));
    ctx.insert(context::ERROR_STATUS.into(), json!(status));
    ctx.insert(context::ERROR_MESSAGE.into(), json!(message));
    ctx
}

/// API Gateway's simple response for one authorizer event (payload 2.0).
pub async fn respond(app: &App, event: &ApiGatewayV2CustomAuthorizerV2Request) -> Value {
    let source_ip = event.request_context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
    let ctx = authorize(app, &event.headers, source_ip).await;
    json!({ "isAuthorized": true, "context": ctx })
}
