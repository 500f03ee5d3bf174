//! openapi.yaml against the code, so the document cannot drift from the service:
//! (a) its paths and operationIds are exactly the route table's;
//! (b) every request-body example is accepted by the real service with the documented status;
//! (c) every example conforms to its schema (a small structural checker below, no new crates);
//! (d) real answers of every endpoint, and of the errors, conform to the documented schemas.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use apikeys::entry::http::ROUTES;
use apikeys::model::{KeyId, Permission, PlaintextKey, RESERVED_KEY_IDS};
use lambda_http::Body;
use lambda_http::http::{Method, Request as HttpRequest, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::*;

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
        let text = std::fs::read_to_string(path).expect("read openapi.yaml at the repository root");
        serde_norway::from_str(&text).expect("openapi.yaml is valid YAML")
    })
}

// ---------------------------------------------------------------------------------------------
// The structural checker (OpenAPI 3.1 schemas): $ref, type (one or a list, 'null' included), enum, allOf/oneOf/anyOf/not, required,
// properties, additionalProperties, readOnly/writeOnly, items, min/max (length, items, value),
// pattern (read as a Rust regex: the document keeps to the subset ECMA-262 and Rust agree on),
// format date-time.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A body sent to the service: readOnly properties must be absent and are not required.
    Request,
    /// An answer of the service: writeOnly properties must be absent and are not required.
    Response,
}

/// Follows local `$ref`s (`#/components/...`) until a schema, example, response… is reached.
pub fn deref(mut value: &'static Value) -> &'static Value {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs: {reference}"));
                value = spec().pointer(pointer).unwrap_or_else(|| panic!("unresolved $ref {reference}"));
            }
            None => return value,
        }
    }
    panic!("$ref loop")
}

pub fn conforms(schema: &'static Value, value: &Value, direction: Direction) -> Vec<String> {
    let mut errors = Vec::new();
    walk(schema, value, "$", direction, &mut errors);
    errors
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        other => panic!("unknown schema type {other}"),
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn number(schema: &Value, name: &str) -> Option<f64> {
    schema.get(name).and_then(Value::as_f64)
}

fn walk(schema: &'static Value, value: &Value, at: &str, direction: Direction, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        service_rules(reference, value, at, direction, errors);
    }
    let schema = deref(schema);
    assert!(schema.is_object(), "{at}: a schema must be an object, found {schema}");
    // OpenAPI 3.1: `type` is one name or a list of names (`[string, 'null']`).
    let types: Vec<&str> = match schema.get("type") {
        None => Vec::new(),
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().map(|t| t.as_str().expect("type names are strings")).collect(),
        Some(other) => panic!("{at}: bad type {other}"),
    };
    if !types.is_empty() && !types.iter().any(|ty| type_matches(ty, value)) {
        errors.push(format!("{at}: expected {}, found {value}", types.join(" or ")));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {}", Value::Array(options.clone())));
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            walk(sub, value, at, direction, errors);
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one.iter().filter(|sub| conforms_at(sub, value, at, direction)).count();
        if matching != 1 {
            errors.push(format!("{at}: {value} matches {matching} schemas of oneOf, not exactly one"));
        }
    }
    if let Some(not) = schema.get("not")
        && conforms_at(not, value, at, direction)
    {
        errors.push(format!("{at}: {value} is one of what `not` excludes: {not}"));
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|sub| conforms_at(sub, value, at, direction))
    {
        errors.push(format!("{at}: {value} matches no schema of anyOf"));
    }
    match value {
        Value::String(text) => {
            let chars = text.chars().count() as f64;
            if number(schema, "minLength").is_some_and(|min| chars < min) {
                errors.push(format!("{at}: '{text}' is shorter than minLength"));
            }
            if number(schema, "maxLength").is_some_and(|max| chars > max) {
                errors.push(format!("{at}: '{text}' is longer than maxLength"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !compiled(pattern).is_match(text)
            {
                errors.push(format!("{at}: '{text}' does not match the pattern {pattern}"));
            }
            if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && chrono::DateTime::parse_from_rfc3339(text).is_err()
            {
                errors.push(format!("{at}: '{text}' is not an RFC 3339 date-time"));
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if number(schema, "minimum").is_some_and(|min| n < min) {
                errors.push(format!("{at}: {n} is below the minimum"));
            }
            if number(schema, "maximum").is_some_and(|max| n > max) {
                errors.push(format!("{at}: {n} is above the maximum"));
            }
        }
        Value::Array(items) => {
            let len = items.len() as f64;
            if number(schema, "minItems").is_some_and(|min| len < min) {
                errors.push(format!("{at}: fewer items than minItems"));
            }
            if number(schema, "maxItems").is_some_and(|max| len > max) {
                errors.push(format!("{at}: more items than maxItems"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{at}[{i}]"), direction, errors);
                }
            }
        }
        Value::Object(map) => walk_object(schema, map, at, direction, errors),
        _ => {}
    }
}

/// Where `pattern` would be needed, the service's own parsers judge instead: ids in answers,
/// permissions, and a key's plaintext (well formed, of its type, starting with its keyPrefix).
/// An id a request names is judged by the document alone (`RequestKeyId`).
fn service_rules(reference: &str, value: &Value, at: &str, direction: Direction, errors: &mut Vec<String>) {
    match (reference.rsplit('/').next(), value) {
        (Some("KeyId"), Value::String(id)) if direction == Direction::Response => {
            if let Err(e) = KeyId::parse(id, at) {
                errors.push(format!("{at}: '{id}' is not a key id: {}", e.message));
            }
        }
        (Some("Permission"), Value::String(permission)) => {
            if let Err(e) = Permission::parse(permission, at) {
                errors.push(format!("{at}: '{permission}' is not a permission: {}", e.message));
            }
        }
        (Some("Key"), Value::Object(key)) => {
            if let Some(plaintext) = key.get("key").and_then(Value::as_str) {
                match PlaintextKey::parse(plaintext) {
                    None => errors.push(format!("{at}.key: '{plaintext}' is not a well-formed key")),
                    Some((kind, _)) => {
                        if Some(&json!(kind)) != key.get("type") {
                            errors.push(format!("{at}.key: a {kind:?} key in a key of type {}", key["type"]));
                        }
                    }
                }
                if !key.get("keyPrefix").and_then(Value::as_str).is_some_and(|prefix| plaintext.starts_with(prefix)) {
                    errors.push(format!("{at}.key: does not start with keyPrefix {}", key["keyPrefix"]));
                }
            }
        }
        _ => {}
    }
}

/// Each pattern of the document, compiled once.
pub fn compiled(pattern: &str) -> regex::Regex {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, regex::Regex>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| regex::Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern}: {e}")))
        .clone()
}

fn conforms_at(schema: &'static Value, value: &Value, at: &str, direction: Direction) -> bool {
    let mut errors = Vec::new();
    walk(schema, value, at, direction, &mut errors);
    errors.is_empty()
}

fn walk_object(
    schema: &'static Value,
    map: &Map<String, Value>,
    at: &str,
    direction: Direction,
    errors: &mut Vec<String>,
) {
    static EMPTY: OnceLock<Value> = OnceLock::new();
    let empty = EMPTY.get_or_init(|| json!({}));
    let properties = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let not_sent = |property: &'static Value| match direction {
        Direction::Request => flag(deref(property), "readOnly"),
        Direction::Response => flag(deref(property), "writeOnly"),
    };
    for name in &required {
        let property = properties.and_then(|p| p.get(*name)).unwrap_or(empty);
        if !map.contains_key(*name) && !not_sent(property) {
            errors.push(format!("{at}: required property '{name}' is missing"));
        }
    }
    for (name, value) in map {
        let here = format!("{at}.{name}");
        match properties.and_then(|p| p.get(name)) {
            Some(property) if not_sent(property) => {
                errors.push(format!(
                    "{here}: is {} and may not appear in a {direction:?}",
                    match direction {
                        Direction::Request => "readOnly",
                        Direction::Response => "writeOnly",
                    }
                ));
            }
            Some(property) => walk(property, value, &here, direction, errors),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => errors.push(format!("{here}: not a property of this schema")),
                Some(extra @ Value::Object(_)) => walk(extra, value, &here, direction, errors),
                _ => {}
            },
        }
    }
}

fn assert_conforms(schema: &'static Value, value: &Value, direction: Direction, what: &str) {
    let errors = conforms(schema, value, direction);
    assert!(errors.is_empty(), "{what} does not conform to its schema:\n  {}\nvalue: {value:#}", errors.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// Reading the document.

/// Every operation: (METHOD, path, operation object).
fn operations() -> Vec<(String, String, &'static Value)> {
    let paths = spec()["paths"].as_object().expect("paths");
    let mut ops = Vec::new();
    for (path, item) in paths {
        for (key, op) in item.as_object().expect("a path item is an object") {
            if HTTP_METHODS.contains(&key.as_str()) {
                ops.push((key.to_uppercase(), path.clone(), op));
            }
        }
    }
    ops
}

fn operation(method: &str, path: &str) -> &'static Value {
    let op = &spec()["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not in openapi.yaml");
    op
}

/// The named examples (`examples`, each resolved, its `value`) and the unnamed `example` of a
/// media type, parameter or header object.
fn examples_of(holder: &'static Value) -> Vec<(String, &'static Value)> {
    let mut found: Vec<(String, &'static Value)> = Vec::new();
    if let Some(example) = holder.get("example") {
        found.push(("example".into(), example));
    }
    if let Some(examples) = holder.get("examples").and_then(Value::as_object) {
        for (name, example) in examples {
            let example = deref(example);
            let value = example
                .get("value")
                .unwrap_or_else(|| panic!("example {name} has no value (externalValue is not used here)"));
            found.push((name.clone(), value));
        }
    }
    found
}

fn json_media(holder: &'static Value) -> Option<&'static Value> {
    holder.get("content").and_then(|c| c.get("application/json"))
}

fn request_examples(method: &str, path: &str) -> Vec<(String, Value)> {
    let body = deref(
        operation(method, path).get("requestBody").unwrap_or_else(|| panic!("{method} {path} has no requestBody")),
    );
    let media = json_media(body).unwrap_or_else(|| panic!("{method} {path}: no application/json request body"));
    let examples: Vec<(String, Value)> = examples_of(media).into_iter().map(|(n, v)| (n, v.clone())).collect();
    assert!(!examples.is_empty(), "{method} {path}: the request body has no example");
    examples
}

fn request_example(method: &str, path: &str, name: &str) -> Value {
    request_examples(method, path)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{method} {path}: no request example named {name}"))
        .1
}

/// The one 2xx status the operation documents.
fn documented_success(method: &str, path: &str) -> StatusCode {
    let responses = operation(method, path)["responses"].as_object().expect("responses");
    let success: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
    assert_eq!(success.len(), 1, "{method} {path} documents one success status");
    StatusCode::from_u16(success[0].parse().expect("a numeric status")).unwrap()
}

fn parameter_example(method: &str, path: &str, name: &str) -> String {
    let parameters = operation(method, path)["parameters"].as_array().expect("parameters");
    let parameter = parameters
        .iter()
        .map(deref)
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"));
    parameter["example"]
        .as_str()
        .unwrap_or_else(|| panic!("parameter {name} of {method} {path} has no string example"))
        .to_owned()
}

/// A real answer must be documented for its operation and conform to that response.
fn assert_documented(method: &str, path: &str, response: &TestResponse) {
    let status = response.status.as_str();
    let documented = operation(method, path)["responses"].get(status).unwrap_or_else(|| {
        panic!("{method} {path} answered {status}, which openapi.yaml does not document: {:?}", response.body)
    });
    assert_response(deref(documented), response, &format!("{status} of {method} {path}"));
}

fn assert_response(documented: &'static Value, response: &TestResponse, what: &str) {
    match json_media(documented) {
        Some(media) => {
            assert_eq!(response.header("content-type"), "application/json", "{what}");
            assert_conforms(&media["schema"], &response.body, Direction::Response, &format!("the real {what}"));
        }
        None => assert!(response.body.is_null(), "{what} documents no body, but has {}", response.body),
    }
    for (name, header) in documented.get("headers").and_then(Value::as_object).into_iter().flatten() {
        if flag(deref(header), "required") {
            assert!(!response.header(name).is_empty(), "{what} must carry the header {name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (a) routes

#[test]
fn every_route_is_documented_with_its_operation_id_and_permission_and_nothing_else() {
    let documented: BTreeSet<(String, String, String, String)> = operations()
        .into_iter()
        .map(|(method, path, op)| {
            let id =
                op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId")).to_owned();
            let permission = op["x-required-permission"].as_str().unwrap_or_default().to_owned();
            (method, path, id, permission)
        })
        .collect();
    let routed: BTreeSet<(String, String, String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned(), r.function.to_owned(), r.need.as_str().to_owned()))
        .collect();
    let only_documented: Vec<_> = documented.difference(&routed).collect();
    let only_routed: Vec<_> = routed.difference(&documented).collect();
    assert!(
        only_documented.is_empty() && only_routed.is_empty(),
        "openapi.yaml and ROUTES differ.\nonly in openapi.yaml: {only_documented:#?}\nonly in ROUTES: {only_routed:#?}"
    );
    assert_eq!(documented.len(), ROUTES.len());

    for route in &ROUTES {
        let op = operation(route.method.as_str(), route.path);
        let description = op["description"].as_str().unwrap_or_default();
        // A signed route takes no key: it must say so, and names no permission.
        if route.need == apikeys::domain::Need::Signature {
            assert_eq!(op["security"], json!([]), "{} takes no key", route.function);
            assert!(description.contains("No root key"), "{} must say it takes no key", route.function);
            continue;
        }
        assert!(
            description.contains(route.need.as_str()),
            "{} must name the permission {}",
            route.function,
            route.need.as_str()
        );
        assert!(
            description.contains("keys:*") && description.contains('*'),
            "{} must say that keys:* and * grant it",
            route.function
        );
    }

    // Both ways of sending the root key, as every function reads them.
    let schemes = &spec()["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyHeader"]["type"], "apiKey");
    assert_eq!(schemes["apiKeyHeader"]["in"], "header");
    assert_eq!(schemes["apiKeyHeader"]["name"], "x-api-key");
    let security: BTreeSet<&str> = spec()["security"]
        .as_array()
        .expect("global security")
        .iter()
        .flat_map(|s| s.as_object().expect("a security requirement").keys().map(String::as_str))
        .collect();
    assert_eq!(security, BTreeSet::from(["bearerAuth", "apiKeyHeader"]));
}

#[test]
fn the_error_codes_are_those_the_service_uses() {
    let codes: BTreeSet<&str> = spec()["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // src/entry/http/error.rs, status_and_code.
    let expected = BTreeSet::from([
        "invalid_field",
        "missing_field",
        "unknown_field",
        "read_only_field",
        "too_many_entries",
        "invalid_json",
        "unauthenticated",
        "forbidden",
        "secret_retiring",
        "not_found",
        "method_not_allowed",
        "key_exists",
        "identity_exists",
        "conflict",
        "precondition_failed",
        "payload_too_large",
        "unsupported_media_type",
        "idempotency_key_reused",
        "request_in_progress",
        "rate_limited",
        "service_unavailable",
        "internal_error",
    ]);
    assert_eq!(codes, expected);
    let verify_codes: Vec<&str> = spec()["components"]["schemas"]["VerifyCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        verify_codes,
        ["VALID", "NOT_FOUND", "INACTIVE", "EXPIRED", "IP_NOT_ALLOWED", "FORBIDDEN", "RATE_LIMITED", "QUOTA_EXCEEDED"],
        "the verify codes, in the order of their checks"
    );
}

/// The ids no request may name are the service's reserved words, no more and no fewer.
#[test]
fn the_reserved_ids_are_those_the_service_reserves() {
    let listed: Vec<&str> = spec()["components"]["schemas"]["RequestKeyId"]["not"]["enum"]
        .as_array()
        .expect("RequestKeyId excludes the reserved words with not: enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listed, RESERVED_KEY_IDS);
}

// ---------------------------------------------------------------------------------------------
// (c) examples against schemas

#[test]
fn every_example_conforms_to_its_schema() {
    let mut checked = 0;
    for (method, path, op) in operations() {
        for parameter in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
            let parameter = deref(parameter);
            for (name, example) in examples_of(parameter) {
                let what = format!("{method} {path} parameter {} example {name}", parameter["name"]);
                assert_conforms(&parameter["schema"], example, Direction::Request, &what);
                checked += 1;
            }
        }
        if let Some(body) = op.get("requestBody").map(deref) {
            let media = json_media(body).unwrap_or_else(|| panic!("{method} {path}: the body is application/json"));
            let examples = examples_of(media);
            assert!(!examples.is_empty(), "{method} {path}: the request body needs an example");
            for (name, example) in examples {
                assert_conforms(
                    &media["schema"],
                    example,
                    Direction::Request,
                    &format!("{method} {path} request example {name}"),
                );
                checked += 1;
            }
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            let response = deref(response);
            if let Some(media) = json_media(response) {
                let examples = examples_of(media);
                assert!(!examples.is_empty(), "{method} {path} {status}: the answer needs an example");
                for (name, example) in examples {
                    let what = format!("{method} {path} {status} example {name}");
                    assert_conforms(&media["schema"], example, Direction::Response, &what);
                    checked += 1;
                }
            }
            for (header_name, header) in response.get("headers").and_then(Value::as_object).into_iter().flatten() {
                let header = deref(header);
                for (name, example) in examples_of(header) {
                    assert_conforms(
                        &header["schema"],
                        example,
                        Direction::Response,
                        &format!("{method} {path} {status} {header_name} {name}"),
                    );
                    checked += 1;
                }
            }
        }
    }
    // Responses only reachable through a path's description (405).
    for (name, response) in spec()["components"]["responses"].as_object().unwrap() {
        if let Some(media) = json_media(response) {
            for (example_name, example) in examples_of(media) {
                assert_conforms(
                    &media["schema"],
                    example,
                    Direction::Response,
                    &format!("response {name} example {example_name}"),
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} examples were found: is the document read right?");
}

/// The checker itself must catch what it claims to.
#[test]
fn the_checker_refuses_what_does_not_conform() {
    let schemas = &spec()["components"]["schemas"];
    let key = json!({"$ref": "#/components/schemas/Key"});
    let key: &'static Value = Box::leak(Box::new(key));
    let good = request_example_value_of_component("SecretKey");
    assert!(conforms(key, &good, Direction::Response).is_empty());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("deletedAt");
    assert!(!conforms(key, &missing, Direction::Response).is_empty(), "a required property is missing");
    let mut extra = good.clone();
    extra["secretHash"] = json!("abc");
    assert!(!conforms(key, &extra, Direction::Response).is_empty(), "additionalProperties: false");
    let mut wrong_type = good.clone();
    wrong_type["tags"] = json!("billing");
    assert!(!conforms(key, &wrong_type, Direction::Response).is_empty(), "type");
    let mut not_nullable = good.clone();
    not_nullable["createdAt"] = Value::Null;
    assert!(!conforms(key, &not_nullable, Direction::Response).is_empty(), "nullable");
    let mut nullable = good.clone();
    nullable["quota"] = Value::Null;
    assert!(conforms(key, &nullable, Direction::Response).is_empty(), "quota is nullable");
    let mut bad_enum = good.clone();
    bad_enum["status"] = json!("deleted");
    assert!(!conforms(key, &bad_enum, Direction::Response).is_empty(), "enum");
    let mut bad_date = good.clone();
    bad_date["createdAt"] = json!("yesterday");
    assert!(!conforms(key, &bad_date, Direction::Response).is_empty(), "date-time");
    let mut nested = good.clone();
    nested["quota"]["remaining"] = json!("many");
    assert!(!conforms(key, &nested, Direction::Response).is_empty(), "nested, through oneOf");
    let mut bad_key = good.clone();
    bad_key["key"] = json!("sk_B948notAKey");
    assert!(!conforms(key, &bad_key, Direction::Response).is_empty(), "a malformed plaintext key");
    let mut bad_id = good.clone();
    bad_id["id"] = json!("verify");
    assert!(!conforms(key, &bad_id, Direction::Response).is_empty(), "a reserved id");
    let create = &schemas["KeyCreate"];
    assert!(
        !conforms(create, &json!({"userId": "u", "acl": [{"permissions": ["a*b"]}]}), Direction::Request).is_empty(),
        "a star inside a permission"
    );
    assert!(conforms(create, &json!({"userId": "u", "quota": {"max": 3}}), Direction::Request).is_empty());
    assert!(
        !conforms(create, &json!({"userId": "u", "quota": {"max": 3, "remaining": 1}}), Direction::Request).is_empty(),
        "a readOnly property in a request"
    );
    let request_id = &schemas["RequestKeyId"];
    assert!(conforms(request_id, &json!("customer-42"), Direction::Request).is_empty());
    assert!(!conforms(request_id, &json!("roll"), Direction::Request).is_empty(), "not: a reserved word");
    let scope = &schemas["VerifyScope"];
    assert!(conforms(scope, &json!({"productId": "p1", "planId": ["a", "b"]}), Direction::Request).is_empty());
    assert!(!conforms(scope, &json!({"productId": 3}), Direction::Request).is_empty(), "oneOf");
}

fn request_example_value_of_component(name: &str) -> Value {
    spec()["components"]["examples"][name]["value"].clone()
}

// ---------------------------------------------------------------------------------------------
// (b) request examples against the real service

/// Every request example of every operation with a body, sent as documented: each answer is the
/// operation's documented success and conforms to its schema. Examples that need a key get one
/// of their own at the version the If-Match example names; custom ids are per company, so each
/// custom-id example gets a company of its own.
#[tokio::test]
async fn every_request_example_is_accepted() {
    let app = spawn_app().await;
    let full = request_example("POST", "/keys", "full");
    let if_match = parameter_example("PATCH", "/keys/{keyId}", "If-Match");
    let custom_id = parameter_example("POST", "/keys/{keyId}", "keyId");
    // The verify examples are written for the key of the `full` create example.
    let full_key = app.create_key(&full).await["key"].as_str().unwrap().to_owned();
    let operations = [
        ("POST", "/keys"),
        ("POST", "/keys/{keyId}"),
        ("PATCH", "/keys/{keyId}"),
        ("POST", "/keys/{keyId}/roll"),
        ("POST", "/keys/verify"),
        ("POST", "/keys/import"),
    ];
    for (method, path) in operations {
        let status = documented_success(method, path);
        for (name, mut example) in request_examples(method, path) {
            let response = match path {
                "/keys" => app.post_keys(&example).await,
                "/keys/{keyId}" if method == "POST" => {
                    let own = spawn_app().await;
                    let response = own
                        .send(Method::POST, &format!("/keys/{custom_id}"), Some(&own.root_key), Some(&example), &[])
                        .await;
                    assert_eq!(response.header("location"), format!("/keys/{custom_id}"), "example {name}");
                    response
                }
                "/keys/{keyId}" => {
                    let id = app.create_key(&full).await["id"].as_str().unwrap().to_owned();
                    app.patch_key(&id, &example, &[("if-match", &if_match)]).await
                }
                "/keys/import" => {
                    let response = app.send(Method::POST, path, Some(&app.root_key), Some(&example), &[]).await;
                    let first = &response.body["keys"][0];
                    assert!(first["id"].is_string(), "import example {name}: {}", response.body);
                    response
                }
                "/keys/{keyId}/roll" => {
                    let id = app.create_key(&full).await["id"].as_str().unwrap().to_owned();
                    app.roll_key(&id, Some(&example)).await
                }
                _ => {
                    example["key"] = json!(full_key);
                    let response = app.send(Method::POST, path, Some(&app.root_key), Some(&example), &[]).await;
                    let expected = if name == "keyOnly" { "IP_NOT_ALLOWED" } else { "VALID" };
                    assert_eq!(response.body["code"], expected, "verify example {name}: {}", response.body);
                    response
                }
            };
            assert_eq!(response.status, status, "{method} {path} example {name}: {:?}", response.body);
            assert_documented(method, path, &response);
        }
    }
    // The roll's body is documented as optional.
    assert_eq!(operation("POST", "/keys/{keyId}/roll")["requestBody"]["required"], false);
    let id = app.create_key(&full).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.roll_key(&id, None).await.status, documented_success("POST", "/keys/{keyId}/roll"));
}

// ---------------------------------------------------------------------------------------------
// (d) real answers against the documented responses

#[tokio::test]
async fn real_answers_of_create_get_list_patch_roll_delete_conform() {
    let app = spawn_app().await;
    let full = request_example("POST", "/keys", "full");
    let idempotency = parameter_example("POST", "/keys", "Idempotency-Key");
    let headers = [("idempotency-key", idempotency.as_str())];

    // create, its idempotent replay, and the same Idempotency-Key with another body
    let created = app.send(Method::POST, "/keys", Some(&app.root_key), Some(&full), &headers).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_documented("POST", "/keys", &created);
    let replay = app.send(Method::POST, "/keys", Some(&app.root_key), Some(&full), &headers).await;
    assert_eq!((replay.status, &replay.body), (StatusCode::CREATED, &created.body));
    assert_documented("POST", "/keys", &replay);
    let other = json!({"userId": "someone-else"});
    let reused = app.send(Method::POST, "/keys", Some(&app.root_key), Some(&other), &headers).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_documented("POST", "/keys", &reused);
    let id = created.body["id"].as_str().unwrap().to_owned();

    // create with a custom id, twice
    let custom = app
        .send(
            Method::POST,
            "/keys/customer-42",
            Some(&app.root_key),
            Some(&json!({"userId": "u", "type": "publishable"})),
            &[],
        )
        .await;
    assert_eq!(custom.status, StatusCode::CREATED);
    assert_documented("POST", "/keys/{keyId}", &custom);
    let taken =
        app.send(Method::POST, "/keys/customer-42", Some(&app.root_key), Some(&json!({"userId": "u"})), &[]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_documented("POST", "/keys/{keyId}", &taken);
    let bad_id = app.send(Method::POST, "/keys/bad.id", Some(&app.root_key), Some(&json!({"userId": "u"})), &[]).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert_documented("POST", "/keys/{keyId}", &bad_id);

    // get: a secret key (no plaintext), a publishable one (with it), an absent one
    let got = app.get_key(&id).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_documented("GET", "/keys/{keyId}", &got);
    assert!(got.body.get("key").is_none());
    let publishable = app.get_key("customer-42").await;
    assert_documented("GET", "/keys/{keyId}", &publishable);
    assert!(publishable.body["key"].is_string());
    let absent = app.get_key("no-such-key").await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_documented("GET", "/keys/{keyId}", &absent);

    // list: pages both ways, an offset page, bad parameters
    for query in ["", "?limit=1", "?limit=1&status=all", "?limit=1&offset=1", "?status=inactive"] {
        let listed = app.list_keys(query).await;
        assert_eq!(listed.status, StatusCode::OK, "{query}: {:?}", listed.body);
        assert_documented("GET", "/keys", &listed);
    }
    let first = app.list_keys("?limit=1").await;
    let next = first.body["nextUrl"].as_str().expect("a next page").to_owned();
    let second = app.list_keys(next.strip_prefix("/keys").unwrap()).await;
    assert_documented("GET", "/keys", &second);
    assert!(second.body["previousUrl"].is_string());
    for query in ["?limit=0", "?sort=asc", "?startingAfter=no-such-key", "?startingAfter=a&endingBefore=b"] {
        let refused = app.list_keys(query).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert_documented("GET", "/keys", &refused);
    }

    // patch: with the ETag, with a stale one, with a bad one, with a bad body
    let etag = got.header("etag").to_owned();
    let patched =
        app.patch_key(&id, &json!({"description": "changed", "whitelistedIPs": []}), &[("if-match", &etag)]).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_documented("PATCH", "/keys/{keyId}", &patched);
    assert_eq!(patched.body["whitelistedIPs"], Value::Null, "[] is stored as no restriction");
    let stale = app.patch_key(&id, &json!({"description": "again"}), &[("if-match", &etag)]).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_documented("PATCH", "/keys/{keyId}", &stale);
    let star = app.patch_key(&id, &json!({}), &[("if-match", "*")]).await;
    assert_eq!(star.status, StatusCode::OK);
    assert_documented("PATCH", "/keys/{keyId}", &star);
    let read_only = app.patch_key(&id, &json!({"userId": "other"}), &[]).await;
    assert_eq!(read_only.status, StatusCode::BAD_REQUEST);
    assert_documented("PATCH", "/keys/{keyId}", &read_only);
    let absent = app.patch_key("no-such-key", &json!({}), &[]).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_documented("PATCH", "/keys/{keyId}", &absent);

    // roll
    let rolled = app.roll_key(&id, Some(&json!({"gracePeriodSeconds": 60}))).await;
    assert_eq!(rolled.status, StatusCode::OK);
    assert_documented("POST", "/keys/{keyId}/roll", &rolled);
    assert!(rolled.body["key"].is_string());
    let too_long = app.roll_key(&id, Some(&json!({"gracePeriodSeconds": 86_401}))).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert_documented("POST", "/keys/{keyId}/roll", &too_long);

    // delete, twice; then a deleted key cannot be changed or rolled
    for _ in 0..2 {
        let deleted = app.delete_key(&id).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert_documented("DELETE", "/keys/{keyId}", &deleted);
    }
    let deleted = app.get_key(&id).await;
    assert_documented("GET", "/keys/{keyId}", &deleted);
    assert_eq!(deleted.body["status"], "inactive");
    for response in [
        ("PATCH", "/keys/{keyId}", app.patch_key(&id, &json!({"status": "active"}), &[]).await),
        ("POST", "/keys/{keyId}/roll", app.roll_key(&id, None).await),
    ] {
        assert_eq!(response.2.status, StatusCode::CONFLICT);
        assert_documented(response.0, response.1, &response.2);
    }
    let absent = app.delete_key("no-such-key").await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_documented("DELETE", "/keys/{keyId}", &absent);

    // the audit events of the (deleted) key: created, updated, rolled, deleted
    let events_path = "/keys/{keyId}/events";
    let app = &app;
    let events = |query: String| {
        let path = format!("/keys/{id}/events{query}");
        async move { app.send(Method::GET, &path, Some(&app.root_key), None, &[]).await }
    };
    let page = events(String::new()).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    assert_documented("GET", events_path, &page);
    assert_eq!(page.body["total"], 4, "{}", page.body);
    let first = events("?limit=2".into()).await;
    assert_documented("GET", events_path, &first);
    let next = first.body["nextUrl"].as_str().expect("a next page").to_owned();
    let second = app.send(Method::GET, &next, Some(&app.root_key), None, &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{next}: {:?}", second.body);
    assert_documented("GET", events_path, &second);
    assert!(second.body["previousUrl"].is_string());
    for query in ["?status=all", "?startingAfter=no-such-event", "?limit=101"] {
        let refused = events(query.into()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert_documented("GET", events_path, &refused);
    }
    let absent = app.send(Method::GET, "/keys/no-such-key/events", Some(&app.root_key), None, &[]).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_documented("GET", events_path, &absent);
}

#[tokio::test]
async fn real_verify_answers_conform() {
    let app = spawn_app().await;
    let full = app.create_key(&request_example("POST", "/keys", "full")).await;
    let key = full["key"].as_str().unwrap();
    let limited = app.create_key(&json!({"userId": "u", "rateLimit": {"limit": 1, "periodSeconds": 60}})).await;
    let quota = app.create_key(&json!({"userId": "u", "quota": {"max": 1}, "acl": null})).await;
    let inactive = app.create_key(&json!({"userId": "u"})).await;
    app.patch_key(inactive["id"].as_str().unwrap(), &json!({"status": "inactive"}), &[]).await;
    let cases = [
        (
            json!({"key": key, "ip": "10.1.9.9", "permissions": ["customers:read"], "scope": {"productId": "prod_basic"}}),
            "VALID",
        ),
        (json!({"key": "sk_not-a-key"}), "NOT_FOUND"),
        (json!({"key": inactive["key"]}), "INACTIVE"),
        (json!({"key": key}), "IP_NOT_ALLOWED"),
        (json!({"key": key, "ip": "203.0.113.10", "permissions": ["refunds:create"]}), "FORBIDDEN"),
        (json!({"key": limited["key"]}), "VALID"),
        (json!({"key": limited["key"]}), "RATE_LIMITED"),
        (json!({"key": quota["key"]}), "VALID"),
        (json!({"key": quota["key"]}), "QUOTA_EXCEEDED"),
    ];
    for (body, code) in cases {
        let response = app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&body), &[]).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body["code"], code, "{body}: {}", response.body);
        assert_documented("POST", "/keys/verify", &response);
    }
    let bad = app
        .send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&json!({"key": key, "ip": "1.2.3"})), &[])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_documented("POST", "/keys/verify", &bad);
}

#[tokio::test]
async fn real_refusals_conform() {
    let app = spawn_app().await;

    // 401: no credential, a key that does not verify
    let none = app.send(Method::GET, "/keys", None, None, &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_documented("GET", "/keys", &none);
    let request = HttpRequest::builder()
        .method(Method::GET)
        .uri("/keys/x")
        .header("x-api-key", "sk_nope")
        .body(Body::Empty)
        .unwrap();
    let refused = app.send_request(request).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_documented("GET", "/keys/{keyId}", &refused);

    // 403: the rootKey example may read and verify, not write
    let reader = app.create_key(&request_example("POST", "/keys", "rootKey")).await;
    let reader_key = reader["key"].as_str().unwrap();
    let listed = app.send(Method::GET, "/keys", Some(reader_key), None, &[]).await;
    assert_eq!(listed.status, StatusCode::OK);
    let forbidden = app.send(Method::POST, "/keys", Some(reader_key), Some(&json!({"userId": "u"})), &[]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_documented("POST", "/keys", &forbidden);

    // 429: a root key over its own rate limit
    let limited = app.create_key(&json!({"userId": "bot", "acl": [{"permissions": ["keys:*"]}], "rateLimit": {"limit": 1, "periodSeconds": 60}})).await;
    let limited_key = limited["key"].as_str().unwrap();
    assert_eq!(app.send(Method::GET, "/keys", Some(limited_key), None, &[]).await.status, StatusCode::OK);
    let over = app.send(Method::GET, "/keys", Some(limited_key), None, &[]).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_documented("GET", "/keys", &over);

    // 400 bodies: not JSON, not an object, unknown and read-only fields, a bad CIDR, missing body
    let raw = |method: Method, path: &str, content_type: &str, body: String| {
        HttpRequest::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", app.root_key))
            .header("content-type", content_type)
            .body(Body::Text(body))
            .unwrap()
    };
    let not_json = app.send_request(raw(Method::POST, "/keys", "application/json", "{nope".into())).await;
    assert_eq!((not_json.status, not_json.error_code()), (StatusCode::BAD_REQUEST, "invalid_json"));
    assert_documented("POST", "/keys", &not_json);
    for body in [
        json!([1]),
        json!({"userId": "u", "colour": "red"}),
        json!({"userId": "u", "companyId": "other"}),
        json!({"userId": "u", "whitelistedIPs": ["10.0.0.1", "10.0.0.0/33"]}),
        json!({"userId": "u", "tags": vec!["t"; 51]}),
        json!({}),
    ] {
        let response = app.post_keys(&body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!response.error_field().is_empty(), "{body}: a field error names its field");
        assert_documented("POST", "/keys", &response);
    }
    let no_body = app.send(Method::POST, "/keys", Some(&app.root_key), None, &[]).await;
    assert_eq!(no_body.status, StatusCode::BAD_REQUEST);
    assert_documented("POST", "/keys", &no_body);

    // 415 and 413
    let text = app.send_request(raw(Method::POST, "/keys/verify", "text/plain", "key=sk_x".into())).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_documented("POST", "/keys/verify", &text);
    let huge = json!({"userId": "u", "metadata": {"blob": "x".repeat(70_000)}}).to_string();
    let too_large = app.send_request(raw(Method::POST, "/keys", "application/json", huge)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_documented("POST", "/keys", &too_large);

    // 405, local only: documented as a component response named in the paths' descriptions
    let put = app.send(Method::PUT, "/keys/abc", Some(&app.root_key), Some(&json!({})), &[]).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_response(&spec()["components"]["responses"]["MethodNotAllowed"], &put, "405 of PUT /keys/abc");
    let allowed: BTreeSet<&str> = put.header("allow").split(", ").collect();
    let routed: BTreeSet<&str> =
        ROUTES.iter().filter(|r| r.path == "/keys/{keyId}").map(|r| r.method.as_str()).collect();
    assert_eq!(allowed, routed);
}

/// Every status an operation documents is one the service can give: the statuses named in
/// the contract, 204/200/201 for success, 500 for the unexpected.
#[test]
fn documented_statuses_are_the_contract_ones() {
    let known: BTreeSet<&str> =
        ["200", "201", "204", "400", "401", "403", "404", "409", "412", "413", "415", "422", "429", "500", "503"]
            .into();
    let mut by_op: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (method, path, op) in operations() {
        let statuses: Vec<String> = op["responses"].as_object().unwrap().keys().cloned().collect();
        for status in &statuses {
            assert!(known.contains(status.as_str()), "{method} {path} documents {status}");
        }
        // A signed operation (`security: []`) has no key: no permission to miss, no key's limits.
        let signed = op.get("security").is_some_and(|s| s.as_array().is_some_and(Vec::is_empty));
        for always in ["401", "403", "429", "503"] {
            // 403 is a missing permission: an operation that needs none (`GET /me`) cannot answer it.
            if always == "403" && op.get("x-required-permission").is_none() {
                continue;
            }
            if signed && always == "429" {
                continue;
            }
            assert!(
                statuses.iter().any(|s| s == always),
                "{method} {path} must document {always} (authorizer, permission)"
            );
        }
        by_op.insert(format!("{method} {path}"), statuses);
    }
    for (op, status) in [
        ("POST /keys", "422"),
        ("POST /keys/{keyId}", "409"),
        ("POST /keys/{keyId}", "422"),
        ("PATCH /keys/{keyId}", "412"),
        ("PATCH /keys/{keyId}", "409"),
        ("GET /keys/{keyId}", "404"),
        ("POST /keys/{keyId}/roll", "409"),
        ("POST /keys/verify", "415"),
        ("POST /keys", "413"),
    ] {
        assert!(by_op[op].iter().any(|s| s == status), "{op} must document {status}");
    }
}
