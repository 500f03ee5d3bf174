//! One handler per endpoint, all behind `handle`: the caller authenticated from its credential
//! with the route's permission, then the operation. Each turns a `lambda_http::Request` into a
//! response, in one invocation: there is no separate authorizer.

use chrono::{DateTime, Utc};
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::domain::company::{self, SettingsTarget};
use crate::domain::identities::{self, IdentityTarget};
use crate::domain::import::{self, KeysImport};
use crate::domain::keys::LeakReport;
use crate::domain::keys::{self, NewKey, Target, WrittenKey};
use crate::domain::leaks;
use crate::domain::usage::{self, UsageReport};
use crate::domain::verify::{LimitState, RateState, Verdict, VerifyCode, VerifyRequest};
use crate::domain::verify_key;
use crate::domain::{Caller, Credential, DomainError, Freshness, authenticate_as};
use crate::entry::config::App;
use crate::model::company::{CompanySettings, CompanySettingsChange};
use crate::model::secret_scanning::{Feedback, Label, ScanReport};
use crate::model::usage::{Granularity, OutcomeCounts, UsageRange};
use crate::model::{
    CreateIdentityInput, CreateKeyInput, IdempotencyKey, Identity, IdentityId, ImportInput, KeyId, PageRequest,
    RollInput, UpdateIdentityInput, UpdateKeyInput, VerifyInput,
};

use super::error::{ApiError, json_response};
use super::paging::page_response;
use super::request::{self, existing_identity_id, existing_key_id, json_body, path_key_id, required_body};
use super::routes::Endpoint;

/// The API's own path for keys, for `Location` and paging links.
const KEYS_PATH: &str = "/keys";
/// The API's own path for identities, likewise.
const IDENTITIES_PATH: &str = "/identities";
/// The API's own path for the company's audit trail, for its paging links.
const COMPANY_EVENTS_PATH: &str = "/company/events";

pub async fn handle(app: &App, endpoint: Endpoint, req: Request) -> Response<Body> {
    let result = async {
        let credential = request::credential(&req);
        // Every route but verify authenticates its caller first; verify does it in the same
        // read as the key it verifies. Reads may use the caller this instance keeps; writes
        // read it afresh, so a revoked root key writes nothing from the moment it is revoked.
        let need = endpoint.route().need;
        let caller = |fresh| authenticate_as(&app.store, &app.callers, app.clock.now(), credential, need, fresh);
        let (reader, writer) = (|| caller(Freshness::Kept), || caller(Freshness::Table));
        // Each route's future is boxed, so the one future every request awaits is no larger than
        // the largest of them on the stack (the writes': a read, a plan and a transaction,
        // retried; a list's paging).
        match endpoint {
            Endpoint::CreateKey => written(app, writer().await?, async |c| create_key(app, c, &req, false).await).await,
            Endpoint::CreateCustomKey => {
                written(app, writer().await?, async |c| create_key(app, c, &req, true).await).await
            }
            Endpoint::GetKey => Box::pin(get_key(app, &reader().await?, &req)).await,
            Endpoint::ListKeys => Box::pin(list_keys(app, &reader().await?, &req)).await,
            Endpoint::UpdateKey => written(app, writer().await?, async |c| update_key(app, c, &req).await).await,
            Endpoint::DeleteKey => written(app, writer().await?, async |c| delete_key(app, c, &req).await).await,
            Endpoint::RollKey => written(app, writer().await?, async |c| roll_key(app, c, &req).await).await,
            Endpoint::ListKeyEvents => Box::pin(list_key_events(app, &reader().await?, &req)).await,
            Endpoint::KeyUsage => Box::pin(key_usage(app, &reader().await?, &req)).await,
            Endpoint::IdentityUsage => Box::pin(identity_usage(app, &reader().await?, &req)).await,
            Endpoint::SecretScanningGithub => Box::pin(secret_scanning_github(app, &req)).await,
            Endpoint::GetCompany => Box::pin(get_company(app, &reader().await?, &req)).await,
            Endpoint::ListCompanyEvents => Box::pin(list_company_events(app, &reader().await?, &req)).await,
            Endpoint::UpdateCompany => {
                written(app, writer().await?, async |c| update_company(app, c, &req).await).await
            }
            Endpoint::Me => Box::pin(me(app, &reader().await?, &req)).await,
            Endpoint::VerifyKey => Box::pin(verify_key(app, credential, &req)).await,
            Endpoint::ImportKeys => written(app, writer().await?, async |c| import_keys(app, c, &req).await).await,
            Endpoint::CreateIdentity => {
                written(app, writer().await?, async |c| create_identity(app, c, &req).await).await
            }
            Endpoint::ListIdentities => Box::pin(list_identities(app, &reader().await?, &req)).await,
            Endpoint::GetIdentity => Box::pin(get_identity(app, &reader().await?, &req)).await,
            Endpoint::UpdateIdentity => {
                written(app, writer().await?, async |c| update_identity(app, c, &req).await).await
            }
            Endpoint::DeleteIdentity => {
                written(app, writer().await?, async |c| delete_identity(app, c, &req).await).await
            }
        }
    }
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

/// A write by a caller read afresh. The caller was kept as if this call refreshed its
/// `lastUsedAt`; a write refused after its caller passed refreshed nothing, so the caller is
/// forgotten and read afresh next time.
async fn written(
    app: &App,
    caller: Caller,
    write: impl AsyncFnOnce(&Caller) -> Result<Response<Body>, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let answer = Box::pin(write(&caller)).await;
    if answer.is_err()
        && let Some(key) = &caller.key
    {
        app.forget_key(&caller.company, &key.id);
    }
    answer
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

/// A written key as HTTP: the key as the write shows it, and its version as the `ETag`. A
/// replay is shown as the first answer was, from the same typed answer.
fn written_response(status: StatusCode, written: &WrittenKey) -> Response<Body> {
    // Write answers have always left as a JSON tree, so with their fields in alphabetical order
    // (a GET's follow the view's): kept, so that not a byte of them changes.
    let body = serde_json::to_value(written.view()).unwrap_or_default();
    key_response(status, &body, written.key.etag())
}

/// An answer with a status and no body: a delete's.
fn empty_response(status: StatusCode) -> Response<Body> {
    let mut empty = Response::new(Body::Empty);
    *empty.status_mut() = status;
    empty
}

async fn create_key(app: &App, caller: &Caller, req: &Request, custom_id: bool) -> Result<Response<Body>, ApiError> {
    let id = if custom_id { Some(path_key_id(req)?) } else { None };
    request::no_query(req)?;
    let retry = request::idempotency_key(req)?;
    let body = required_body(req)?;
    let now = app.clock.now();
    let input = CreateKeyInput::parse(body, now)?;
    let created = keys::create_key(&app.store, caller, now, NewKey { id, input, retry }).await?;
    let location = format!("{KEYS_PATH}/{}", created.key.id);
    Ok(with_header(written_response(StatusCode::CREATED, &created), header::LOCATION, &location))
}

/// `{"keys": [{"id"} | {"error": {status, code, message, field?}}]}`, one per entry in the
/// body's order: each entry is imported or refused on its own, so the call answers 200 unless
/// the caller itself is refused (401, 403 without `keys:write`) or the body is no import.
async fn import_keys(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    request::no_query(req)?;
    let retry = request::idempotency_key(req)?;
    let body = required_body(req)?;
    let now = app.clock.now();
    let input = ImportInput::parse(body, now)?;
    let answers = import::import_keys(&app.store, caller, now, KeysImport { input, retry }).await;
    if answers.iter().any(Result::is_ok) {
        app.imports.imported(&caller.company, now);
    }
    let keys: Vec<serde_json::Value> = answers
        .into_iter()
        .enumerate()
        .map(|(index, answer)| match answer {
            Ok(id) => serde_json::json!({ "id": id }),
            Err(refused) => {
                let refused = ApiError::from(refused);
                refused.log();
                let mut error = refused.body(true);
                // Every field an entry's error names is the entry's own.
                if let Some(field) = error["field"].as_str().filter(|f| !f.starts_with("keys[")) {
                    error["field"] = serde_json::json!(format!("keys[{index}].{field}"));
                }
                serde_json::json!({ "error": error })
            }
        })
        .collect();
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "keys": keys })))
}

/// Who the calling root key is: its company, id, user, description and management permissions.
async fn me(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    request::no_query(req)?;
    let me = caller.me(&app.store, app.clock.now()).await?;
    Ok(json_response(StatusCode::OK, &me))
}

async fn get_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let key = keys::get_key(&app.store, caller, now, &existing_key_id(req)?).await?;
    Ok(key_response(StatusCode::OK, &key.view(now), key.etag()))
}

async fn list_keys(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let pairs = request::query_pairs(req);
    let page = PageRequest::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let now = app.clock.now();
    let listed = keys::list_keys(&app.store, caller, now, &page).await?;
    let views: Vec<_> = listed.items.iter().map(|k| k.view(now)).collect();
    Ok(page_response(&page, KEYS_PATH, &listed, &views))
}

/// An audit trail's paging (a key's or the company's): the key list's, without `status`.
fn events_page(req: &Request) -> Result<PageRequest, ApiError> {
    let pairs = request::query_pairs(req);
    Ok(PageRequest::parse_without_status(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?)
}

async fn list_key_events(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_key_id(req)?;
    let page = events_page(req)?;
    let listed = keys::list_events(&app.store, caller, app.clock.now(), &id, &page).await?;
    Ok(page_response(&page, &format!("{KEYS_PATH}/{id}/events"), &listed, &listed.items))
}

/// `{status, total, count, nextUrl, previousUrl, data: [{id, action, actor, at, changes}]}`:
/// the caller's company's settings changes, newest first.
async fn list_company_events(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let page = events_page(req)?;
    let listed = company::list_company_events(&app.store, caller, app.clock.now(), &page).await?;
    Ok(page_response(&page, COMPANY_EVENTS_PATH, &listed, &listed.items))
}

async fn get_company(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    request::no_query(req)?;
    let settings = company::company_settings(&app.store, caller, app.clock.now()).await?;
    Ok(company_response(&settings))
}

async fn update_company(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    request::no_query(req)?;
    let retry = request::idempotency_key(req)?;
    let target = SettingsTarget { if_match: request::if_match(req)?, retry: retry.as_ref() };
    let change = CompanySettingsChange::parse(required_body(req)?)?;
    let settings = company::update_company_settings(&app.store, caller, app.clock.now(), target, &change).await?;
    Ok(company_response(&settings))
}

/// `{keyPrefix, leakPolicy, keyPatterns: {secret, publishable}}`, with the settings' version as
/// the `ETag`.
fn company_response(settings: &CompanySettings) -> Response<Body> {
    let [(secret_name, secret), (publishable_name, publishable)] = settings.key_patterns();
    let body = serde_json::json!({
        "keyPrefix": settings.key_prefix,
        "leakPolicy": settings.leak_policy,
        "keyPatterns": { secret_name: secret, publishable_name: publishable },
    });
    key_response(StatusCode::OK, &body, settings.etag())
}

/// A secret scanner's report (GitHub's partner program): the signature checked against the
/// trusted keys before anything is read or looked up (401 otherwise), then each token judged
/// (its company's leak policy applied to a live key) and answered in GitHub's feedback shape.
async fn secret_scanning_github(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let deadline = judging_deadline(req);
    let body: &[u8] = req.body().as_ref();
    let limit = request::max_body_bytes(Some(Endpoint::SecretScanningGithub));
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let unsigned = |why: String| ApiError::Domain(DomainError::Unauthenticated(why));
    let keys = app.scanning_keys.as_ref().ok_or_else(|| unsigned("no secret scanner is trusted here".into()))?;
    keys.verify(header("github-public-key-identifier"), header("github-public-key-signature"), body)
        .map_err(|refusal| unsigned(refusal.to_string()))?;
    let reported = ScanReport::parse(body)?;
    let now = app.clock.now();
    let matches: Vec<(&str, LeakReport)> = reported
        .iter()
        .map(|token| (token.token.as_str(), LeakReport { url: token.url.clone(), source: token.source.clone() }))
        .collect();
    let mut feedback = Vec::with_capacity(reported.len());
    // Every token is judged even if one fails; a failure (or a token not started by the
    // deadline) then fails the report, which GitHub delivers again (the tokens judged already
    // are answered the same, writing nothing).
    let mut failed = None;
    for (token, verdict) in reported.iter().zip(leaks::judge_report(&app.store, &matches, now, deadline).await) {
        match verdict {
            Ok(leaks::Verdict::TruePositive) => feedback.push(Feedback::new(token, Label::TruePositive)),
            Ok(leaks::Verdict::FalsePositive) => feedback.push(Feedback::new(token, Label::FalsePositive)),
            Err(e) => failed = Some(e),
        }
    }
    tracing::info!(
        tokens = reported.len(),
        true_positives = feedback.iter().filter(|f| f.label == Label::TruePositive).count(),
        failed = reported.len() - feedback.len(),
        "secret scanning report handled"
    );
    match failed {
        // A match that failed is this service's trouble, never the report's: a 5xx whatever
        // the cause (a conflict retried out too), so that GitHub delivers the report again.
        Some(DomainError::Internal(why)) => Err(DomainError::Internal(why).into()),
        Some(_) => Err(DomainError::Unavailable.into()),
        None => Ok(json_response(StatusCode::OK, &feedback)),
    }
}

/// When a scanning report stops starting matches: its Lambda invocation's deadline less
/// `leaks::JUDGING_MARGIN`; none outside Lambda (the local server), whose requests have no
/// deadline.
fn judging_deadline(req: &Request) -> Option<tokio::time::Instant> {
    use lambda_http::RequestExt;
    let context = req.lambda_context_ref().filter(|context| context.deadline > 0)?;
    let left = context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
    Some(tokio::time::Instant::now() + left.saturating_sub(leaks::JUDGING_MARGIN))
}

/// The range a usage request asks for, from its query.
fn usage_range(app: &App, req: &Request) -> Result<UsageRange, ApiError> {
    let pairs = request::query_pairs(req);
    Ok(UsageRange::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), app.clock.now())?)
}

async fn key_usage(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_key_id(req)?;
    let range = usage_range(app, req)?;
    let report = usage::key_usage(&app.store, caller, app.clock.now(), &id, range).await?;
    Ok(json_response(StatusCode::OK, &UsageBody::of(&report)))
}

async fn identity_usage(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_identity_id(req)?;
    let range = usage_range(app, req)?;
    let report = usage::identity_usage(&app.store, caller, app.clock.now(), &id, range).await?;
    Ok(json_response(StatusCode::OK, &UsageBody::of(&report)))
}

/// `{granularity, from, to, totals, buckets}`: the range as asked, the buckets that counted
/// something in time order, and their totals.
#[derive(Serialize)]
struct UsageBody<'a> {
    granularity: Granularity,
    from: String,
    to: String,
    totals: &'a OutcomeCounts,
    buckets: Vec<BucketBody<'a>>,
}

#[derive(Serialize)]
struct BucketBody<'a> {
    start: String,
    counts: &'a OutcomeCounts,
}

/// A time as usage answers write it: RFC 3339, UTC, whole seconds.
fn usage_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl<'a> UsageBody<'a> {
    fn of(report: &'a UsageReport) -> Self {
        Self {
            granularity: report.range.granularity,
            from: usage_time(report.range.from),
            to: usage_time(report.range.to),
            totals: &report.totals,
            buckets: report
                .buckets
                .iter()
                .map(|b| BucketBody { start: usage_time(b.start), counts: &b.counts })
                .collect(),
        }
    }
}

/// Everything a write to an existing key reads from its request, validated before any of it
/// is acted on: path, query (`force`), `If-Match`, `Idempotency-Key`, then the body.
struct KeyWrite {
    id: KeyId,
    force: bool,
    if_match: Option<u64>,
    retry_header: Option<IdempotencyKey>,
}

impl KeyWrite {
    fn parse(req: &Request, force_allowed: bool) -> Result<Self, ApiError> {
        let id = existing_key_id(req)?;
        let force = if force_allowed { request::force_flag(req)? } else { request::no_query(req).map(|()| false)? };
        Ok(Self { id, force, if_match: request::if_match(req)?, retry_header: request::idempotency_key(req)? })
    }

    fn target(&self) -> Target<'_> {
        Target { id: &self.id, if_match: self.if_match, force: self.force, retry: self.retry_header.as_ref() }
    }
}

async fn update_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let write = KeyWrite::parse(req, true)?;
    let now = app.clock.now();
    let input = UpdateKeyInput::parse(required_body(req)?, now)?;
    let updated = keys::update_key(&app.store, caller, now, write.target(), &input).await;
    // Whatever the outcome (an answer lost after its commit included), this instance reads the
    // written key afresh the next time it calls.
    app.forget_key(&caller.company, &write.id);
    let updated = updated?;
    Ok(written_response(StatusCode::OK, &updated))
}

async fn delete_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let write = KeyWrite::parse(req, true)?;
    let deleted = keys::delete_key(&app.store, caller, app.clock.now(), write.target()).await;
    app.forget_key(&caller.company, &write.id);
    deleted?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

async fn roll_key(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let write = KeyWrite::parse(req, false)?;
    let input = RollInput::parse(json_body(req)?)?;
    let rolled = keys::roll_key(&app.store, caller, app.clock.now(), write.target(), input).await;
    app.forget_key(&caller.company, &write.id);
    let rolled = rolled?;
    Ok(written_response(StatusCode::OK, &rolled))
}

/// An identity as HTTP: its view, and its version as the `ETag`.
fn identity_response(status: StatusCode, identity: &Identity) -> Response<Body> {
    key_response(status, &identity.view(), identity.etag())
}

async fn create_identity(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    request::no_query(req)?;
    let retry = request::idempotency_key(req)?;
    let now = app.clock.now();
    let input = CreateIdentityInput::parse(required_body(req)?, now)?;
    let created = identities::create_identity(&app.store, caller, now, input, retry.as_ref()).await?;
    let location = format!("{IDENTITIES_PATH}/{}", created.id);
    Ok(with_header(identity_response(StatusCode::CREATED, &created), header::LOCATION, &location))
}

async fn get_identity(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let id = existing_identity_id(req)?;
    request::no_query(req)?;
    let identity = identities::get_identity(&app.store, caller, app.clock.now(), &id).await?;
    Ok(identity_response(StatusCode::OK, &identity))
}

async fn list_identities(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let pairs = request::query_pairs(req);
    let page = PageRequest::parse_identities(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let listed = identities::list_identities(&app.store, caller, app.clock.now(), &page).await?;
    let views: Vec<_> = listed.items.iter().map(Identity::view).collect();
    Ok(page_response(&page, IDENTITIES_PATH, &listed, &views))
}

/// Everything a write to an existing identity reads from its request, validated before any of
/// it is acted on: path, query (none), `If-Match`, `Idempotency-Key`; the body after.
struct IdentityWrite {
    id: IdentityId,
    if_match: Option<u64>,
    retry_header: Option<IdempotencyKey>,
}

impl IdentityWrite {
    fn parse(req: &Request) -> Result<Self, ApiError> {
        let id = existing_identity_id(req)?;
        request::no_query(req)?;
        Ok(Self { id, if_match: request::if_match(req)?, retry_header: request::idempotency_key(req)? })
    }

    fn target(&self) -> IdentityTarget<'_> {
        IdentityTarget { id: &self.id, if_match: self.if_match, retry: self.retry_header.as_ref() }
    }
}

async fn update_identity(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let write = IdentityWrite::parse(req)?;
    let now = app.clock.now();
    let input = UpdateIdentityInput::parse(required_body(req)?, now)?;
    let updated = identities::update_identity(&app.store, caller, now, write.target(), &input).await?;
    Ok(identity_response(StatusCode::OK, &updated))
}

async fn delete_identity(app: &App, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
    let write = IdentityWrite::parse(req)?;
    identities::delete_identity(&app.store, caller, app.clock.now(), write.target()).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// A missing or malformed credential is refused before the body is read; a well-formed one is
/// read together with the key to verify, so a bad body is a 400 before that read.
async fn verify_key(app: &App, credential: Credential<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    credential.hash()?;
    let input = VerifyInput::parse(required_body(req)?)?;
    let request = VerifyRequest {
        key: &input.key,
        company: None,
        ip: input.ip,
        permissions: &input.permissions,
        scope: Some(&input.scope),
        cost: input.cost,
        limits: &input.ratelimits,
    };
    let now = app.clock.now();
    let verdict = verify_key::verify_for_caller(&app.store, app.kept(), now, credential, request).await?;
    let usage = verdict.verification(now);
    super::metrics::record_verify_outcome(app.lambda_function.as_deref(), verdict.code, usage.as_ref(), now);
    if let (Some(feed), Some(usage)) = (&app.usage_feed, usage) {
        feed.send(usage);
    }
    Ok(json_response(StatusCode::OK, &verdict_body(&verdict)))
}

/// `{valid, code, …}`: a found key adds its id and user; a valid one its permissions, expiry
/// and what remains of its limits. Serialized straight from the verdict, with no JSON tree in
/// between (verify is the hot path).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerdictBody<'a> {
    valid: bool,
    code: VerifyCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a KeyId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<&'a str>>,
    /// Present (possibly `null`) on a valid key only.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<&'a RateState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaLeft>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<IdentityBrief<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ratelimits: &'a [LimitState],
}

/// The key's identity as verify names it: who the key belongs to, not its limits.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityBrief<'a> {
    id: &'a IdentityId,
    external_id: &'a str,
    meta: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct QuotaLeft {
    remaining: u64,
}

fn verdict_body(verdict: &Verdict) -> VerdictBody<'_> {
    let valid_key = verdict.key.as_ref().filter(|_| verdict.code == VerifyCode::Valid);
    let permissions = valid_key.map(|key| {
        let mut permissions: Vec<&str> = key
            .policy
            .acl
            .iter()
            .flat_map(|acl| acl.entries())
            .flat_map(|e| e.permissions.iter())
            .map(|p| p.as_str())
            .collect();
        permissions.sort_unstable();
        permissions.dedup();
        permissions
    });
    VerdictBody {
        valid: verdict.is_valid(),
        code: verdict.code,
        key_id: verdict.key.as_ref().map(|key| &key.id),
        user_id: verdict.key.as_ref().map(|key| key.user_id.as_str()),
        permissions,
        expires_at: valid_key.map(|key| key.policy.expires_at),
        rate_limit: verdict.rate.as_ref(),
        quota: verdict.quota_remaining.map(|remaining| QuotaLeft { remaining }),
        identity: verdict.identity.as_ref().map(|identity| IdentityBrief {
            id: &identity.id,
            external_id: &identity.external_id,
            meta: &identity.parts.meta,
        }),
        ratelimits: &verdict.limits,
    }
}
