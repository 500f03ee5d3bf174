//! Verify outcomes as CloudWatch metrics, in the embedded metric format (EMF): in Lambda, each
//! `POST /keys/verify` prints one JSON line to stdout, which CloudWatch Logs turns into a count
//! of 1 for the metric named after the outcome code (`VALID`, `NOT_FOUND`, …) in namespace
//! `ApiKeys/Verify`, with the function's name as the only dimension. No key id, company or user
//! is ever a dimension: metrics stay few.
//!
//! The same line carries, for a found key, its `usage`: company, key id, identity id and
//! outcome (never a secret or a hash). CloudWatch ignores it for metrics; the log group's
//! subscription filter sends it to the usage aggregator (`entry::usage_aggregator`).

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::verify::VerifyCode;
use crate::model::usage::Verification;

pub const NAMESPACE: &str = "ApiKeys/Verify";
pub const DIMENSION: &str = "FunctionName";

/// The member of a verify line that the usage subscription filter selects.
pub const USAGE_MEMBER: &str = "usage";

/// The EMF document of one verify outcome, with its usage when a key answered.
pub fn verify_outcome(function: &str, code: VerifyCode, usage: Option<&Verification>, at: DateTime<Utc>) -> Value {
    // The metric name of an outcome: its code as the API writes it.
    let name = code.as_str();
    let mut document = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        },
        DIMENSION: function,
    });
    document[name] = json!(1);
    if let Some(usage) = usage {
        document[USAGE_MEMBER] = json!({
            "company": usage.company,
            "keyId": usage.key_id,
            "identityId": usage.identity_id,
            "outcome": usage.outcome,
        });
    }
    document
}

/// In Lambda, prints the outcome's EMF line to stdout (the logs go to stderr); elsewhere
/// nothing. A closed stdout loses the metric, never the answer.
pub fn record_verify_outcome(
    lambda_function: Option<&str>,
    code: VerifyCode,
    usage: Option<&Verification>,
    at: DateTime<Utc>,
) {
    let Some(function) = lambda_function else { return };
    let line = verify_outcome(function, code, usage, at).to_string();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_count_named_after_the_code_with_the_function_as_only_dimension() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let document = verify_outcome("apikeys-verify", VerifyCode::QuotaExceeded, None, at);
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(directive["Metrics"], json!([{ "Name": "QUOTA_EXCEEDED", "Unit": "Count" }]));
        assert_eq!(document["_aws"]["Timestamp"], 1_893_456_000_000i64);
        assert_eq!(document["FunctionName"], "apikeys-verify");
        assert_eq!(document["QUOTA_EXCEEDED"], 1);
        assert_eq!(document.as_object().unwrap().len(), 3, "nothing but the directive, the dimension, the count");
    }

    #[test]
    fn a_found_key_adds_its_usage_and_nothing_secret() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let usage = Verification {
            company: crate::model::CompanyId::parse("acme", "company").unwrap(),
            key_id: crate::model::KeyId::parse("k1", "keyId").unwrap(),
            identity_id: None,
            outcome: crate::model::usage::Outcome::RateLimited,
            at,
        };
        let document = verify_outcome("apikeys-verify", VerifyCode::RateLimited, Some(&usage), at);
        assert_eq!(
            document[USAGE_MEMBER],
            json!({"company": "acme", "keyId": "k1", "identityId": null, "outcome": "RATE_LIMITED"})
        );
        assert_eq!(document["RATE_LIMITED"], 1);
    }
}
