//! Every environment variable the binaries read, read once at start-up into typed values. A
//! value that does not parse is an error naming the variable, never a silent default: a
//! function with `RETENTION_DAYS=abc` fails its init rather than keeping keys 30 days.

use crate::model::CompanyId;
use crate::model::secret_scanning::TrustedKeys;

/// The table's name when `TABLE_NAME` is not set.
pub const DEFAULT_TABLE_NAME: &str = "apikeys";
/// How long a deleted key (and its lookup items) stays before TTL removes it when
/// `RETENTION_DAYS` is not set.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;
/// How long usage counts stay after their hour or day when `USAGE_RETENTION_DAYS` is not set.
pub const DEFAULT_USAGE_RETENTION_DAYS: i64 = 90;
/// The local server's port when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 3000;
/// How long an instance keeps a caller it authenticated when `CALLER_CACHE_SECONDS` is not
/// set: a revoked root key stops verify and the read calls within this (writes at once), and a
/// caller making at least one call a second per instance is read once in ten calls or fewer.
pub const DEFAULT_CALLER_CACHE_SECONDS: u64 = 10;
/// The longest caller or verify cache accepted: a revocation must take effect within a minute.
pub const MAX_CALLER_CACHE_SECONDS: u64 = 60;
/// The longest retention accepted: ten years.
const MAX_RETENTION_DAYS: i64 = 3650;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `RETENTION_DAYS`: 1 to 3650.
    pub retention_days: i64,
    /// `USAGE_RETENTION_DAYS`: 1 to 3650, how long usage counts stay after their hour or day.
    pub usage_retention_days: i64,
    /// `CALLER_CACHE_SECONDS`: 0 (off) to 60, how long an instance keeps a caller it
    /// authenticated for verify and the read calls.
    pub caller_cache_seconds: u64,
    /// `VERIFY_CACHE_SECONDS`: 0 (off, the default) to 60, how long an instance keeps a key it
    /// read and verified `VALID` that has neither a rate limit nor a quota, to verify it again
    /// from memory: any change to the key made through another process (in AWS, every change:
    /// each route is its own function) may take this long to reach this instance's verify.
    pub verify_cache_seconds: u64,
    pub database: DatabaseSettings,
    pub logging: LogSettings,
    /// `AWS_LAMBDA_FUNCTION_NAME`: set by Lambda, so `Some` exactly when running there.
    pub lambda_function: Option<String>,
    /// `FUNCTION`: what the `lambda` binary serves (a route's function, the console, the stream
    /// or the root-key resource), as template.yaml sets it per function. Required, and checked
    /// against the function list, by that binary only (`entry::lambda`), so a stray value stops
    /// no other binary.
    pub function: Option<String>,
    /// `PORT`, for the local server.
    pub port: u16,
    /// `DEMO_COMPANY`: `make run` prints a root key of this company.
    pub demo_company: Option<CompanyId>,
    /// `ROOT_KEY_COMPANY`: the one company whose root key the root-key resource function mints
    /// (template.yaml sets it from the stack's `RootKeyCompany`); required by that function
    /// only, see `root_key_company`.
    pub root_key_company: Option<CompanyId>,
    /// `ROOT_KEY_LOCAL_RESPONSE_HOST`: for `make sam-local` only, a `host:port` the root-key
    /// resource may answer on over plain http (its local listener). Unset (the default and
    /// every deployment: template.yaml does not declare it) means presigned https S3 URLs only.
    /// Refused unless `DYNAMODB_ENDPOINT` is set too, so it can only be on beside DynamoDB Local.
    pub root_key_local_response_host: Option<String>,
    /// What the `Custom::ApiKey` resource's function may mint (template.yaml sets it from the
    /// stack's parameters).
    pub api_key_resource: ApiKeyResourceSettings,
    /// The lifecycle events' function: where it publishes and schedules (`event_settings`).
    pub events: EventSettings,
    /// `SECRET_SCANNING_PUBLIC_KEYS`: the JSON document GitHub's secret-scanning public-keys
    /// endpoint serves (`{"public_keys": [{"key_identifier", "key", "is_current"}]}`), the
    /// keys a report to `POST /secret-scanning/github` may be signed with. Unset or empty:
    /// `None`, no key is trusted; a document that does not parse stops the binary.
    pub secret_scanning_public_keys: Option<TrustedKeys>,
}

/// The `Custom::ApiKey` resource's function: for which companies other stacks may mint keys,
/// whether those keys may hold `keys:` permissions, and where their secrets go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiKeyResourceSettings {
    /// `API_KEY_RESOURCE_COMPANIES`: company ids, comma-separated; unset or empty: none.
    pub companies: Vec<CompanyId>,
    /// `API_KEY_RESOURCE_MANAGEMENT_KEYS`: `true` lets a minted key hold `keys:` permissions;
    /// `false` (the default) refuses such a key.
    pub management_keys: bool,
    /// `API_KEY_RESOURCE_SECRET_PREFIX`: the start of every secret's name (1 to 256 of
    /// `A-Z a-z 0-9 / _ + = . @ -`), which the function's policy is limited to; required by
    /// that function only, see `api_key_secret_prefix`.
    pub secret_prefix: Option<String>,
}

/// Where DynamoDB is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseSettings {
    /// `DYNAMODB_ENDPOINT`: DynamoDB Local's URL; empty or unset means AWS.
    pub endpoint: Option<String>,
    /// Whether `AWS_REGION` or `AWS_DEFAULT_REGION` is set (else DynamoDB Local gets a dummy one).
    pub region_set: bool,
    /// Whether `AWS_ACCESS_KEY_ID` is set (else DynamoDB Local gets dummy credentials).
    pub credentials_set: bool,
}

/// How to log, as Lambda's own variables say, else `RUST_LOG`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// `AWS_LAMBDA_LOG_LEVEL` as a filter directive (`FATAL` is `error`); wins over `rust_log`.
    pub lambda_level: Option<&'static str>,
    /// `RUST_LOG`, a tracing filter (checked when logging starts).
    pub rust_log: Option<String>,
    /// `AWS_LAMBDA_LOG_FORMAT`: `Some(true)` for JSON, `Some(false)` for Text.
    pub json: Option<bool>,
    /// Running in Lambda: JSON by default, and no timestamps of our own in text.
    pub in_lambda: bool,
}

/// A variable whose value the service cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub problem: String,
}

impl Settings {
    /// From the process environment. The one place the environment is read.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any source of variables (the environment, or a test's map). An empty value is the
    /// same as an unset one.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bad = |variable: &'static str, problem: String| SettingsError { variable, problem };
        let days = |variable: &'static str, default: i64| match get(variable) {
            None => Ok(default),
            Some(raw) => {
                raw.trim().parse::<i64>().ok().filter(|d| (1..=MAX_RETENTION_DAYS).contains(d)).ok_or_else(|| {
                    bad(variable, format!("must be whole days from 1 to {MAX_RETENTION_DAYS}, not '{raw}'"))
                })
            }
        };
        let retention_days = days("RETENTION_DAYS", DEFAULT_RETENTION_DAYS)?;
        let usage_retention_days = days("USAGE_RETENTION_DAYS", DEFAULT_USAGE_RETENTION_DAYS)?;
        let cache_seconds = |variable: &'static str, default: u64| match get(variable) {
            None => Ok(default),
            Some(raw) => raw.trim().parse::<u64>().ok().filter(|s| *s <= MAX_CALLER_CACHE_SECONDS).ok_or_else(|| {
                bad(variable, format!("must be whole seconds from 0 (off) to {MAX_CALLER_CACHE_SECONDS}, not '{raw}'"))
            }),
        };
        let caller_cache_seconds = cache_seconds("CALLER_CACHE_SECONDS", DEFAULT_CALLER_CACHE_SECONDS)?;
        let verify_cache_seconds = cache_seconds("VERIFY_CACHE_SECONDS", 0)?;
        let port = match get("PORT") {
            None => DEFAULT_PORT,
            Some(raw) => raw
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("PORT", format!("must be a TCP port from 1 to 65535, not '{raw}'")))?,
        };
        let lambda_level = get("AWS_LAMBDA_LOG_LEVEL")
            .map(|raw| {
                lambda_log_level(&raw).ok_or_else(|| {
                    bad(
                        "AWS_LAMBDA_LOG_LEVEL",
                        format!("must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL, not '{raw}'"),
                    )
                })
            })
            .transpose()?;
        let json = get("AWS_LAMBDA_LOG_FORMAT")
            .map(|raw| match raw.trim().to_ascii_lowercase().as_str() {
                "json" => Ok(true),
                "text" => Ok(false),
                _ => Err(bad("AWS_LAMBDA_LOG_FORMAT", format!("must be JSON or Text, not '{raw}'"))),
            })
            .transpose()?;
        let demo_company = get("DEMO_COMPANY")
            .map(|raw| CompanyId::parse(raw.trim(), "DEMO_COMPANY").map_err(|e| bad("DEMO_COMPANY", e.message)))
            .transpose()?;
        let root_key_company = get("ROOT_KEY_COMPANY")
            .map(|raw| CompanyId::parse(raw.trim(), "ROOT_KEY_COMPANY").map_err(|e| bad("ROOT_KEY_COMPANY", e.message)))
            .transpose()?;
        let endpoint = get("DYNAMODB_ENDPOINT").map(|e| e.trim().to_owned());
        let root_key_local_response_host = get("ROOT_KEY_LOCAL_RESPONSE_HOST")
            .map(|raw| {
                let host = raw.trim().to_owned();
                let authority = host.rsplit_once(':').filter(|(name, port)| {
                    !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                        && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                match (authority, &endpoint) {
                    (None, _) => Err(bad("ROOT_KEY_LOCAL_RESPONSE_HOST", format!("must be host:port, not '{raw}'"))),
                    (Some(_), None) => Err(bad(
                        "ROOT_KEY_LOCAL_RESPONSE_HOST",
                        "is for local testing beside DynamoDB Local only: DYNAMODB_ENDPOINT is not set".into(),
                    )),
                    (Some(_), Some(_)) => Ok(host),
                }
            })
            .transpose()?;
        let companies = get("API_KEY_RESOURCE_COMPANIES")
            .map(|raw| {
                raw.split(',')
                    .map(|company| {
                        CompanyId::parse(company.trim(), "API_KEY_RESOURCE_COMPANIES").map_err(|e| {
                            bad(
                                "API_KEY_RESOURCE_COMPANIES",
                                format!("must be company ids separated by commas: '{}' {}", company.trim(), e.message),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let management_keys = match get("API_KEY_RESOURCE_MANAGEMENT_KEYS").map(|raw| raw.trim().to_ascii_lowercase()) {
            None => false,
            Some(flag) if flag == "false" => false,
            Some(flag) if flag == "true" => true,
            Some(flag) => {
                return Err(bad("API_KEY_RESOURCE_MANAGEMENT_KEYS", format!("must be true or false, not '{flag}'")));
            }
        };
        let secret_prefix = get("API_KEY_RESOURCE_SECRET_PREFIX")
            .map(|raw| {
                let prefix = raw.trim().to_owned();
                let allowed = |b: u8| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b);
                if prefix.len() <= 256 && prefix.bytes().all(allowed) {
                    Ok(prefix)
                } else {
                    Err(bad(
                        "API_KEY_RESOURCE_SECRET_PREFIX",
                        format!("must be 1 to 256 of A-Z a-z 0-9 / _ + = . @ -, not '{raw}'"),
                    ))
                }
            })
            .transpose()?;
        let events = event_settings(&get, endpoint.is_some())?;
        // The document is long and holds nothing secret, but the error names what in it is
        // wrong rather than repeating it.
        let secret_scanning_public_keys = get("SECRET_SCANNING_PUBLIC_KEYS")
            .map(|raw| {
                TrustedKeys::parse(raw.trim()).map_err(|problem| {
                    bad(
                        "SECRET_SCANNING_PUBLIC_KEYS",
                        format!("must be the document of GitHub's secret-scanning public keys: {problem}"),
                    )
                })
            })
            .transpose()?;
        let table_name = get("TABLE_NAME").map_or_else(|| DEFAULT_TABLE_NAME.to_owned(), |t| t.trim().to_owned());
        if !(3..=255).contains(&table_name.len())
            || !table_name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(bad("TABLE_NAME", format!("'{table_name}' is not a DynamoDB table name")));
        }
        let function = get("FUNCTION").map(|raw| raw.trim().to_owned());
        let lambda_function = get("AWS_LAMBDA_FUNCTION_NAME");
        Ok(Self {
            table_name,
            retention_days,
            usage_retention_days,
            caller_cache_seconds,
            verify_cache_seconds,
            database: DatabaseSettings {
                endpoint,
                region_set: get("AWS_REGION").is_some() || get("AWS_DEFAULT_REGION").is_some(),
                credentials_set: get("AWS_ACCESS_KEY_ID").is_some(),
            },
            logging: LogSettings {
                lambda_level,
                rust_log: get("RUST_LOG"),
                json,
                in_lambda: lambda_function.is_some(),
            },
            lambda_function,
            function,
            port,
            demo_company,
            root_key_company,
            root_key_local_response_host,
            api_key_resource: ApiKeyResourceSettings { companies, management_keys, secret_prefix },
            events,
            secret_scanning_public_keys,
        })
    }

    /// `API_KEY_RESOURCE_SECRET_PREFIX`, which the `Custom::ApiKey` function cannot start without.
    pub fn api_key_secret_prefix(&self) -> Result<String, SettingsError> {
        self.api_key_resource.secret_prefix.clone().ok_or_else(|| SettingsError {
            variable: "API_KEY_RESOURCE_SECRET_PREFIX",
            problem: "must be set for the Custom::ApiKey function (where its secrets are named)".into(),
        })
    }

    /// `ROOT_KEY_COMPANY`, which the root-key resource function cannot start without.
    pub fn root_key_company(&self) -> Result<CompanyId, SettingsError> {
        self.root_key_company.clone().ok_or_else(|| SettingsError {
            variable: "ROOT_KEY_COMPANY",
            problem: "must be set for the root-key resource function (the company whose root key it mints)".into(),
        })
    }
}

/// The lifecycle events' function (`entry::events`): the bus it publishes on, how early
/// `key.expiring` comes, and where the expiry schedules live. Required by that function only
/// (`lifecycle_events`), so they stop no other.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventSettings {
    /// `EVENT_BUS_ARN`: the bus's ARN (PutEvents takes it as the bus's name; the schedules'
    /// target needs the ARN).
    pub bus_arn: Option<String>,
    /// `KEY_EXPIRING_DAYS`: 1 to 365 (default 7), how many days before `expiresAt`
    /// `key.expiring` comes.
    pub expiring_days: u32,
    /// `SCHEDULE_GROUP_NAME`: the EventBridge Scheduler group of the expiry schedules.
    pub schedule_group: Option<String>,
    /// `SCHEDULER_ROLE_ARN`: the role the schedules publish through.
    pub scheduler_role_arn: Option<String>,
    /// `SCHEDULER_DEAD_LETTER_ARN`: the SQS queue a schedule's event goes to when Scheduler
    /// could not publish it after its retries.
    pub scheduler_dead_letter_arn: Option<String>,
    /// `EVENTBRIDGE_ENDPOINT`, `SCHEDULER_ENDPOINT`: a test's stand-ins; refused without
    /// `DYNAMODB_ENDPOINT`, never set by template.yaml.
    pub eventbridge_endpoint: Option<String>,
    /// See `eventbridge_endpoint`.
    pub scheduler_endpoint: Option<String>,
}

/// What the lifecycle events' function cannot start without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvents {
    /// `EVENT_BUS_ARN`.
    pub bus_arn: String,
    /// `SCHEDULE_GROUP_NAME`.
    pub schedule_group: String,
    /// `SCHEDULER_ROLE_ARN`.
    pub scheduler_role_arn: String,
    /// `SCHEDULER_DEAD_LETTER_ARN`.
    pub scheduler_dead_letter_arn: String,
}

impl Settings {
    /// `EVENT_BUS_ARN`, `SCHEDULE_GROUP_NAME`, `SCHEDULER_ROLE_ARN` and
    /// `SCHEDULER_DEAD_LETTER_ARN`, which the lifecycle
    /// events' function cannot start without; an error names the first one missing.
    pub fn lifecycle_events(&self) -> Result<LifecycleEvents, SettingsError> {
        let required = |value: &Option<String>, variable: &'static str| {
            value.clone().ok_or_else(|| SettingsError {
                variable,
                problem: "must be set for the lifecycle events' function".into(),
            })
        };
        Ok(LifecycleEvents {
            bus_arn: required(&self.events.bus_arn, "EVENT_BUS_ARN")?,
            schedule_group: required(&self.events.schedule_group, "SCHEDULE_GROUP_NAME")?,
            scheduler_role_arn: required(&self.events.scheduler_role_arn, "SCHEDULER_ROLE_ARN")?,
            scheduler_dead_letter_arn: required(&self.events.scheduler_dead_letter_arn, "SCHEDULER_DEAD_LETTER_ARN")?,
        })
    }
}

/// The `EventSettings` from the variables `get` reads (`local`: DYNAMODB_ENDPOINT is set).
fn event_settings(get: &dyn Fn(&str) -> Option<String>, local: bool) -> Result<EventSettings, SettingsError> {
    use crate::model::events::{DEFAULT_KEY_EXPIRING_DAYS, MAX_KEY_EXPIRING_DAYS};
    let bad = |variable: &'static str, problem: String| SettingsError { variable, problem };
    let arn = |variable: &'static str, kind: &str| {
        get(variable)
            .map(|raw| {
                let value = raw.trim().to_owned();
                let fits = value.starts_with("arn:")
                    && value.contains(kind)
                    && value.len() <= 1600
                    && !value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
                if fits { Ok(value) } else { Err(bad(variable, format!("must be an ARN of {kind}…, not '{raw}'"))) }
            })
            .transpose()
    };
    let expiring_days = match get("KEY_EXPIRING_DAYS") {
        None => DEFAULT_KEY_EXPIRING_DAYS,
        Some(raw) => {
            raw.trim().parse::<u32>().ok().filter(|d| (1..=MAX_KEY_EXPIRING_DAYS).contains(d)).ok_or_else(|| {
                bad("KEY_EXPIRING_DAYS", format!("must be whole days from 1 to {MAX_KEY_EXPIRING_DAYS}, not '{raw}'"))
            })?
        }
    };
    let schedule_group = get("SCHEDULE_GROUP_NAME")
        .map(|raw| {
            let name = raw.trim().to_owned();
            let fits = (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if fits {
                Ok(name)
            } else {
                Err(bad("SCHEDULE_GROUP_NAME", format!("must be 1 to 64 of 0-9 a-z A-Z - _ ., not '{raw}'")))
            }
        })
        .transpose()?;
    let endpoint = |variable: &'static str| {
        get(variable)
            .map(|raw| {
                let url = raw.trim().to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    Err(bad(variable, format!("must be an http(s) URL, not '{raw}'")))
                } else if !local {
                    Err(bad(
                        variable,
                        "is for local testing beside DynamoDB Local only: DYNAMODB_ENDPOINT is not set".into(),
                    ))
                } else {
                    Ok(url)
                }
            })
            .transpose()
    };
    Ok(EventSettings {
        bus_arn: arn("EVENT_BUS_ARN", ":event-bus/")?,
        expiring_days,
        schedule_group,
        scheduler_role_arn: arn("SCHEDULER_ROLE_ARN", ":role/")?,
        scheduler_dead_letter_arn: arn("SCHEDULER_DEAD_LETTER_ARN", ":sqs:")?,
        eventbridge_endpoint: endpoint("EVENTBRIDGE_ENDPOINT")?,
        scheduler_endpoint: endpoint("SCHEDULER_ENDPOINT")?,
    })
}

/// Lambda's application log level (what the template's LoggingConfig sets) as a filter
/// directive; `FATAL` is `error`, the highest tracing has.
fn lambda_log_level(value: &str) -> Option<&'static str> {
    Some(match value.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.table_name.as_str(), s.retention_days, s.port), ("apikeys", 30, 3000));
        assert_eq!(s.usage_retention_days, 90);
        assert_eq!(s.caller_cache_seconds, DEFAULT_CALLER_CACHE_SECONDS);
        assert_eq!(s.verify_cache_seconds, 0, "verify answers from memory only when asked");
        assert_eq!(s.database, DatabaseSettings::default());
        assert_eq!(s.logging, LogSettings::default());
        assert_eq!(s.root_key_company().unwrap_err().variable, "ROOT_KEY_COMPANY", "required by its function");
        assert_eq!(s.api_key_resource, ApiKeyResourceSettings::default(), "no company, no keys: permissions");
        assert_eq!(s.api_key_secret_prefix().unwrap_err().variable, "API_KEY_RESOURCE_SECRET_PREFIX");
        assert_eq!(s.function, None);
        assert_eq!(s.events, EventSettings { expiring_days: 7, ..EventSettings::default() });
        assert_eq!(s.lifecycle_events().unwrap_err().variable, "EVENT_BUS_ARN", "required by its function");
        assert_eq!((s.lambda_function, s.demo_company), (None, None));
        assert_eq!((s.root_key_company, s.root_key_local_response_host), (None, None));
        assert_eq!(s.secret_scanning_public_keys, None, "no key trusted");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_its_variable() {
        for (variable, value) in [
            ("RETENTION_DAYS", "abc"),
            ("RETENTION_DAYS", "0"),
            ("RETENTION_DAYS", "99999"),
            ("USAGE_RETENTION_DAYS", "0"),
            ("USAGE_RETENTION_DAYS", "ninety"),
            ("CALLER_CACHE_SECONDS", "61"),
            ("CALLER_CACHE_SECONDS", "-1"),
            ("CALLER_CACHE_SECONDS", "ten"),
            ("VERIFY_CACHE_SECONDS", "61"),
            ("VERIFY_CACHE_SECONDS", "5s"),
            ("PORT", "abc"),
            ("PORT", "70000"),
            ("AWS_LAMBDA_LOG_LEVEL", "verbose"),
            ("AWS_LAMBDA_LOG_FORMAT", "xml"),
            ("DEMO_COMPANY", "a b"),
            ("TABLE_NAME", "no spaces"),
            ("ROOT_KEY_COMPANY", "not a company!"),
            ("ROOT_KEY_LOCAL_RESPONSE_HOST", "http://listener:8080"),
            // Without DYNAMODB_ENDPOINT: never beside DynamoDB in AWS.
            ("ROOT_KEY_LOCAL_RESPONSE_HOST", "host.docker.internal:8080"),
            ("API_KEY_RESOURCE_COMPANIES", "acme,not a company"),
            ("API_KEY_RESOURCE_COMPANIES", "acme,,globex"),
            ("API_KEY_RESOURCE_MANAGEMENT_KEYS", "yes"),
            ("API_KEY_RESOURCE_SECRET_PREFIX", "stack/api keys/"),
            ("KEY_EXPIRING_DAYS", "0"),
            ("KEY_EXPIRING_DAYS", "366"),
            ("KEY_EXPIRING_DAYS", "a week"),
            ("EVENT_BUS_ARN", "default"),
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::1:user/x"),
            ("SCHEDULER_DEAD_LETTER_ARN", "arn:aws:sns:eu-west-1:1:topic"),
            ("SCHEDULE_GROUP_NAME", "no spaces"),
            // Without DYNAMODB_ENDPOINT: never beside AWS.
            ("EVENTBRIDGE_ENDPOINT", "http://127.0.0.1:9"),
            ("SCHEDULER_ENDPOINT", "http://127.0.0.1:9"),
            ("SECRET_SCANNING_PUBLIC_KEYS", "not json"),
            ("SECRET_SCANNING_PUBLIC_KEYS", r#"{"public_keys": []}"#),
            ("SECRET_SCANNING_PUBLIC_KEYS", r#"{"public_keys": [{"key_identifier": "k", "key": "not a PEM key"}]}"#),
        ] {
            let error = settings(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
            assert!(error.to_string().starts_with(variable), "{error}");
        }
    }

    #[test]
    fn set_values_are_read_and_empty_ones_are_unset() {
        let s = settings(&[
            ("RETENTION_DAYS", "7"),
            ("CALLER_CACHE_SECONDS", "0"),
            ("VERIFY_CACHE_SECONDS", "30"),
            ("PORT", "8080"),
            ("TABLE_NAME", "keys-prod"),
            ("DYNAMODB_ENDPOINT", ""),
            ("AWS_LAMBDA_LOG_LEVEL", "fatal"),
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
            ("AWS_LAMBDA_FUNCTION_NAME", "verify"),
            ("DEMO_COMPANY", "demo"),
            ("ROOT_KEY_COMPANY", "acme"),
            ("FUNCTION", "get_key"),
            ("API_KEY_RESOURCE_COMPANIES", "acme, globex"),
            ("API_KEY_RESOURCE_MANAGEMENT_KEYS", "TRUE"),
            ("API_KEY_RESOURCE_SECRET_PREFIX", "apikeys/api-keys/"),
        ])
        .unwrap();
        let companies: Vec<&str> = s.api_key_resource.companies.iter().map(CompanyId::as_str).collect();
        assert_eq!(companies, ["acme", "globex"]);
        assert!(s.api_key_resource.management_keys);
        assert_eq!(s.api_key_secret_prefix().as_deref(), Ok("apikeys/api-keys/"));
        assert_eq!(s.function.as_deref(), Some("get_key"));
        assert_eq!(s.root_key_company().map(|c| c.to_string()), Ok("acme".to_owned()));
        assert_eq!((s.retention_days, s.port, s.table_name.as_str()), (7, 8080, "keys-prod"));
        assert_eq!((s.caller_cache_seconds, s.verify_cache_seconds), (0, 30), "0 turns the cache off");
        assert_eq!(s.database.endpoint, None, "empty means AWS");
        assert_eq!((s.logging.lambda_level, s.logging.json, s.logging.in_lambda), (Some("error"), Some(false), true));
        assert_eq!(s.demo_company.map(|c| c.to_string()), Some("demo".to_owned()));
        let local = settings(&[
            ("DYNAMODB_ENDPOINT", "http://host.docker.internal:8000"),
            ("ROOT_KEY_LOCAL_RESPONSE_HOST", "host.docker.internal:8080"),
        ])
        .unwrap();
        assert_eq!(local.root_key_local_response_host.as_deref(), Some("host.docker.internal:8080"));
        let events = settings(&[
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"),
            ("EVENTBRIDGE_ENDPOINT", "http://127.0.0.1:9001"),
            ("EVENT_BUS_ARN", "arn:aws:events:eu-west-1:123456789012:event-bus/default"),
            ("KEY_EXPIRING_DAYS", "30"),
            ("SCHEDULE_GROUP_NAME", "apikeys-KeyExpiry-1"),
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler"),
            ("SCHEDULER_DEAD_LETTER_ARN", "arn:aws:sqs:eu-west-1:123456789012:failures"),
        ])
        .unwrap();
        assert_eq!(
            (events.events.expiring_days, events.events.eventbridge_endpoint.as_deref()),
            (30, Some("http://127.0.0.1:9001"))
        );
        let target = events.lifecycle_events().unwrap();
        assert_eq!(target.schedule_group, "apikeys-KeyExpiry-1");
        assert_eq!(target.scheduler_dead_letter_arn, "arn:aws:sqs:eu-west-1:123456789012:failures");
    }

    #[test]
    fn secret_scanning_public_keys_are_githubs_document_read_once() {
        // GitHub's document as its public-keys endpoint serves it (two keys, one current).
        let document = r#"{"public_keys": [
            {"key_identifier": "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a", "key": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n", "is_current": false},
            {"key_identifier": "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c", "key": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd\nAjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==\n-----END PUBLIC KEY-----\n", "is_current": true}
        ]}"#;
        let s = settings(&[("SECRET_SCANNING_PUBLIC_KEYS", &format!("\n{document}\n"))]).unwrap();
        let keys = s.secret_scanning_public_keys.expect("the document is read");
        let identifiers: Vec<&str> = keys.identifiers().map(|id| &id[..8]).collect();
        assert_eq!(identifiers, ["90a42116", "bcb53661"]);
        assert_eq!(settings(&[("SECRET_SCANNING_PUBLIC_KEYS", " ")]).unwrap().secret_scanning_public_keys, None);
        let error = settings(&[("SECRET_SCANNING_PUBLIC_KEYS", &document.replace("MFkw", "AAAA"))]).unwrap_err();
        assert_eq!(error.variable, "SECRET_SCANNING_PUBLIC_KEYS");
        assert!(error.problem.contains("public_keys[0].key must be an ECDSA P-256 public key"), "{error}");
    }
}
