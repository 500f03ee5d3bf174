//! The one place errors become HTTP answers: `{"error": {"code", "message", "field"?}}`.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::domain::DomainError;
use crate::model::{FieldError, FieldProblem};

/// The service's own 64 KiB body limit (API Gateway alone would allow 10 MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be sent as application/json")]
    UnsupportedMediaType,
    /// The body is over the route's limit, in bytes.
    #[error("the body is larger than {} KiB", .0 / 1024)]
    PayloadTooLarge(usize),
    #[error("{method} is not allowed on this path; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: String },
    #[error("no route for this path")]
    NoRoute,
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Domain(DomainError::Invalid(e))
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use DomainError as D;
        match self {
            ApiError::Domain(D::Invalid(e)) => (
                StatusCode::BAD_REQUEST,
                match e.problem {
                    FieldProblem::Invalid => "invalid_field",
                    FieldProblem::Missing => "missing_field",
                    FieldProblem::Unknown => "unknown_field",
                    FieldProblem::ReadOnly => "read_only_field",
                    FieldProblem::TooMany => "too_many_entries",
                },
            ),
            ApiError::Domain(D::Unauthenticated(_)) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Domain(D::Forbidden(_) | D::OutOfBounds { .. }) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Domain(D::SecretRetiring(_)) => (StatusCode::FORBIDDEN, "secret_retiring"),
            ApiError::Domain(D::NotFound | D::NoIdentity) | ApiError::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Domain(D::IdentityExists(_)) => (StatusCode::CONFLICT, "identity_exists"),
            ApiError::Domain(D::AlreadyExists(_) | D::HashExists) => (StatusCode::CONFLICT, "key_exists"),
            ApiError::Domain(D::Conflict(_)) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Domain(D::StaleVersion) => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            ApiError::Domain(D::RequestInProgress) => (StatusCode::CONFLICT, "request_in_progress"),
            ApiError::Domain(D::IdempotencyMismatch) => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::Domain(D::RateLimited(_)) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Domain(D::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            ApiError::Domain(D::Internal(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The error as the contract writes it: `{code, message, field?}`, with the status too
    /// when it stands inside another answer (an import's entry).
    pub fn body(&self, with_status: bool) -> serde_json::Value {
        let (status, code) = self.status_and_code();
        let mut error = json!({ "code": code, "message": self.to_string() });
        if with_status {
            error["status"] = json!(status.as_u16());
        }
        if let ApiError::Domain(DomainError::Invalid(e)) = self {
            error["field"] = json!(e.field);
            error["message"] = json!(e.message);
        }
        if let ApiError::Domain(DomainError::OutOfBounds { field, .. }) = self {
            error["field"] = json!(field);
        }
        error
    }

    /// Logs the error by its code and status (an internal one with its detail, which is never
    /// shown), once per answer it makes: a whole response, or an entry of an import's.
    pub fn log(&self) {
        let (status, code) = self.status_and_code();
        match self {
            ApiError::Domain(DomainError::Internal(detail)) => tracing::error!(detail, "internal error"),
            _ if status.is_server_error() => tracing::warn!(code, "request failed"),
            _ => tracing::info!(code, status = status.as_u16(), "request refused"),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let (status, _) = self.status_and_code();
        self.log();
        let mut response = json_response(status, &json!({ "error": self.body(false) }));
        if let ApiError::MethodNotAllowed { allowed, .. } = &self
            && let Ok(value) = allowed.parse()
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        response
    }
}

/// Serializes straight to text: no intermediate JSON tree.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}
