//! Where the servers the suite runs against answer differently, in this one place: every check
//! that meets a difference asks here what its server answers, and nowhere else is a server
//! named.
//!
//! - An unknown route, or a method a path does not have: the local server answers 404
//!   `not_found` or 405 `method_not_allowed` (JSON errors of the contract); a deployed HTTP API
//!   answers both itself with 404 `{"message":"Not Found"}`; SAM's emulator (`sam local
//!   start-api`) answers both with 403 `{"message":"Missing Authentication Token"}`.
//! - A body that is not UTF-8: the function answers 400 `invalid_json`; SAM's emulator fails
//!   to decode it before invoking anything and answers 502 `{"message":"Internal server
//!   error"}`.

use serde_json::json;

use crate::client::Answer;

/// Which server the suite talks to (`APIKEYS_SERVED_BY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    /// The local server (`make run`, or the suite's own in-process one).
    Local,
    /// SAM's API Gateway emulator in front of every function (`make sam-api`).
    Sam,
    /// A deployed stack's HTTP API.
    Deployed,
}

impl ServedBy {
    pub fn parse(name: &str) -> Self {
        match name {
            "local" => Self::Local,
            "sam" => Self::Sam,
            "deployed" => Self::Deployed,
            other => panic!("APIKEYS_SERVED_BY must be local, sam or deployed, not {other:?}"),
        }
    }

    /// Whether `answer` is what this server answers to a path no route has
    /// (`method_on_path`: false) or to a method its path does not have (true).
    pub fn is_route_miss(self, method_on_path: bool, answer: &Answer) -> bool {
        match (self, method_on_path) {
            (Self::Local, false) => answer.status == 404 && answer.error_code() == "not_found",
            (Self::Local, true) => answer.status == 405 && answer.error_code() == "method_not_allowed",
            (Self::Deployed, _) => answer.status == 404 && answer.body == json!({ "message": "Not Found" }),
            (Self::Sam, _) => {
                answer.status == 403 && answer.body == json!({ "message": "Missing Authentication Token" })
            }
        }
    }

    /// How long a verification may take to show in usage; `None`: it never does here.
    pub fn usage_lag(self) -> Option<std::time::Duration> {
        match self {
            Self::Local => Some(std::time::Duration::from_secs(10)),
            Self::Deployed => Some(std::time::Duration::from_secs(300)),
            Self::Sam => None,
        }
    }

    /// Whether `answer` is this server's refusal of a `application/json` body that is not UTF-8.
    pub fn is_non_utf8_refusal(self, answer: &Answer) -> bool {
        match self {
            Self::Local | Self::Deployed => answer.is_error(400, "invalid_json"),
            Self::Sam => answer.status == 502 && answer.body == json!({ "message": "Internal server error" }),
        }
    }
}
