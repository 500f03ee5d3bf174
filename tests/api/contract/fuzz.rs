//! Property tests of everything a caller controls: bodies of create, custom create, PATCH, roll
//! and verify, the list's query string, path ids and header values. Whatever arrives, the
//! answer is never a panic and never a 5xx; an error is always JSON `{"error": {"code",
//! "message"}}` with a 4xx. The pure decoders (body, query, input parsers) get many cases
//! without a database; the full stack against DynamoDB Local gets fewer, so the file runs in
//! seconds. (Key parsing, the checksum and CIDR matching have their own properties in
//! src/model/secret.rs and src/model/ip.rs.)

use apikeys::entry::http::error::ApiError;
use apikeys::entry::http::request::json_body;
use apikeys::model::{CreateKeyInput, Dimension, PageRequest, RollInput, UpdateKeyInput, VerifyInput};
use lambda_http::Body;
use lambda_http::http::{HeaderValue, Method, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::helpers::{BlockingApp, spawn_app, start_time};

/// Cases per property that goes through DynamoDB Local.
const STACK_CASES: u32 = 96;
/// Cases per property of a pure decoder.
const PURE_CASES: u32 = 2048;

/// Names the decoders know, beyond a create body's own (`CreateKeyInput::FIELDS`): other bodies',
/// nested objects', read-only ones and odd ones.
const MORE_FIELD_NAMES: &[&str] = &[
    "status",
    "gracePeriodSeconds",
    "key",
    "ip",
    "permissions",
    "scope",
    "limit",
    "periodSeconds",
    "max",
    "renewalSeconds",
    "remaining",
    "renewsAt",
    "companyId",
    "id",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "lastUsedAt",
    "keyPrefix",
    "__proto__",
    "",
];

fn field_names() -> Vec<&'static str> {
    CreateKeyInput::FIELDS.iter().chain(MORE_FIELD_NAMES).chain(&Dimension::NAMES).copied().collect()
}

/// Strings a parser is likely to treat specially.
fn tricky_string() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "",
        " ",
        "\t",
        "\u{0}",
        "\u{7f}",
        "é",
        "👍",
        "null",
        "true",
        "0",
        "-1",
        "1e400",
        "NaN",
        "active",
        "inactive",
        "all",
        "secret",
        "publishable",
        "*",
        "keys:*",
        "a*b",
        "keys:read",
        "10.0.0.1",
        "10.0.0.0/8",
        "10.0.0.0/33",
        "0.0.0.0/0",
        "::1",
        "::/0",
        "2001:db8::/129",
        "::ffff:10.0.0.1",
        "256.1.1.1",
        " 10.0.0.1 ",
        "1.2.3.4/-1",
        "2030-01-01T00:00:00Z",
        "2031-06-01T12:00:00+02:00",
        "9999-12-31T23:59:59Z",
        "+275760-09-13T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "2031-02-30T00:00:00Z",
        "sk_",
        "pk_",
        "sk_1111111111111111111111111111111111111111111111111",
        "verify",
        "%00",
        "../..",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "a".repeat(255),
        "a".repeat(256),
        "é".repeat(200),
        apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret).expose().to_owned(),
    ])
    .collect();
    prop_oneof![2 => prop::sample::select(fixed), 1 => ".{0,24}", 1 => "[ -~]{0,24}"]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..100_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0u64, 1, 86_400, 86_401, u32::MAX as u64, u64::MAX, i64::MAX as u64 + 1])
            .prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(field_names()).prop_map(str::to_owned), 1 => ".{0,12}"]
}

/// Any JSON value, its object keys mostly the API's own field names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        tricky_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6).prop_map(|f| Value::Object(f.into_iter().collect())),
        ]
    })
}

/// An object with a few of `fields` (plus now and then another name), each any value: gets
/// past "must be an object" and "unknown field" to the field rules.
fn body_with(fields: &'static [&'static str], base: Value) -> impl Strategy<Value = Value> {
    let entry =
        (prop_oneof![6 => prop::sample::select(fields).prop_map(str::to_owned), 1 => field_name()], json_value());
    prop_oneof![
        4 => prop::collection::vec(entry, 0..4).prop_map(move |entries| {
            let mut body = base.clone();
            for (name, value) in entries {
                body[name] = value;
            }
            body
        }),
        1 => json_value(),
    ]
}

const CREATE_FIELDS: &[&str] = apikeys::model::CreateKeyInput::FIELDS;
const UPDATE_FIELDS: &[&str] = apikeys::model::UpdateKeyInput::FIELDS;
const VERIFY_FIELDS: &[&str] = &["ip", "permissions", "scope", "key"];

/// Checks one answer of the stack: never 5xx, JSON, a coded error when 4xx.
fn check_answer(what: &str, status: u16, body: &[u8]) -> Result<Value, TestCaseError> {
    prop_assert!(status < 500, "{what}: {status} {}", String::from_utf8_lossy(body));
    if body.is_empty() {
        prop_assert_eq!(status, 204, "{}: an empty answer", what);
        return Ok(Value::Null);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(body))))?;
    if status >= 400 {
        let code = value["error"]["code"].as_str().unwrap_or_default();
        prop_assert!(
            !code.is_empty() && value["error"]["message"].is_string(),
            "{what}: {status} without a coded error: {value}"
        );
    }
    Ok(value)
}

/// The app under the generated requests.
struct Stack(BlockingApp);

impl std::ops::Deref for Stack {
    type Target = BlockingApp;
    fn deref(&self) -> &BlockingApp {
        &self.0
    }
}

impl Stack {
    fn new() -> Self {
        Self(BlockingApp::new("fuzz"))
    }

    /// One request through the whole stack; `headers` may hold any bytes a header can carry.
    fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, HeaderValue)],
        body: Body,
    ) -> Result<(u16, Value), TestCaseError> {
        let mut builder = Request::builder().method(method.clone()).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, value.clone());
        }
        let request = builder.body(body).map_err(|e| TestCaseError::reject(format!("not a request: {e}")))?;
        let response = self.dispatch(request);
        let status = response.status().as_u16();
        let value = check_answer(&format!("{method} {path}"), status, response.body())?;
        Ok((status, value))
    }

    fn send_json(&self, method: Method, path: &str, body: &Value) -> Result<(u16, Value), TestCaseError> {
        let headers = [
            ("authorization", HeaderValue::from_str(&format!("Bearer {}", self.app.root_key)).unwrap()),
            ("content-type", HeaderValue::from_static("application/json")),
        ];
        self.send(method, path, &headers, Body::Text(body.to_string()))
    }

    fn run<S: Strategy>(&self, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
        let mut runner = TestRunner::new(Config { cases: STACK_CASES, failure_persistence: None, ..Config::default() });
        if let Err(e) = runner.run(&strategy, test) {
            panic!("{e}");
        }
    }
}

fn pure_runner() -> TestRunner {
    TestRunner::new(Config { cases: PURE_CASES, failure_persistence: None, ..Config::default() })
}

/// Metadata DynamoDB refuses to store (ValidationException): an empty object key, a number
/// outside DynamoDB's range (magnitude 1e-130 to 1e126), nesting deeper than 32 levels. The
/// parser refuses it with a 400 rather than letting the write fail as a 503.
#[tokio::test]
async fn metadata_dynamodb_cannot_store_is_a_400() {
    let app = spawn_app().await;
    let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "a": deep });
    }
    for metadata in
        [json!({ "": 1 }), json!({ "x": { "": null } }), json!({ "f": 1e300 }), json!({ "f": 1e-200 }), deep]
    {
        let created = app.post_keys(&json!({ "userId": "u", "metadata": metadata })).await;
        assert_eq!(
            (created.status.as_u16(), created.error_field()),
            (400, "metadata"),
            "create {metadata}: {}",
            created.body
        );
        let patched = app.patch_key(&id, &json!({ "metadata": metadata }), &[]).await;
        assert_eq!(
            (patched.status.as_u16(), patched.error_field()),
            (400, "metadata"),
            "patch {metadata}: {}",
            patched.body
        );
    }
}

#[test]
fn create_bodies_are_201_or_a_json_400() {
    let stack = Stack::new();
    stack.run(body_with(CREATE_FIELDS, json!({ "userId": "u" })), |body| {
        let (status, answer) = stack.send_json(Method::POST, "/keys", &body)?;
        prop_assert!(status == 201 || status == 400, "{status} for {body}: {answer}");
        Ok(())
    });
}

#[test]
fn custom_create_ids_and_bodies_are_201_or_a_json_4xx() {
    let stack = Stack::new();
    let id = prop_oneof!["[A-Za-z0-9_-]{1,64}", "[A-Za-z0-9_%.~-]{0,70}", Just("verify".to_owned())];
    stack.run((id, body_with(CREATE_FIELDS, json!({ "userId": "u" }))), |(id, body)| {
        let (status, answer) = stack.send_json(Method::POST, &format!("/keys/{id}"), &body)?;
        prop_assert!([201, 400, 404, 405, 409].contains(&status), "{status} for {id} {body}: {answer}");
        Ok(())
    });
}

#[test]
fn patch_bodies_are_200_or_a_json_4xx() {
    let stack = Stack::new();
    let path = format!("/keys/{}", stack.key_id);
    stack.run(body_with(UPDATE_FIELDS, json!({})), |body| {
        let (status, answer) = stack.send_json(Method::PATCH, &path, &body)?;
        prop_assert!(status == 200 || status == 400, "{status} for {body}: {answer}");
        Ok(())
    });
}

#[test]
fn roll_bodies_are_200_or_a_json_400() {
    let stack = Stack::new();
    let path = format!("/keys/{}/roll", stack.key_id);
    stack.run(body_with(&["gracePeriodSeconds"], json!({})), |body| {
        let (status, answer) = stack.send_json(Method::POST, &path, &body)?;
        prop_assert!(status == 200 || status == 400, "{status} for {body}: {answer}");
        Ok(())
    });
}

#[test]
fn verify_bodies_are_an_answer_or_a_json_400() {
    let stack = Stack::new();
    stack.run(body_with(VERIFY_FIELDS, json!({ "key": "sk_x" })), |body| {
        let (status, answer) = stack.send_json(Method::POST, "/keys/verify", &body)?;
        prop_assert!(status == 200 || status == 400, "{status} for {body}: {answer}");
        if status == 200 {
            prop_assert!(answer["valid"].is_boolean() && answer["code"].is_string(), "{answer}");
        }
        Ok(())
    });
}

/// Query strings: the list's parameters (and others) with any values, percent-encoded or raw.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => prop::sample::select(vec!["status", "limit", "offset", "startingAfter", "endingBefore"]).prop_map(str::to_owned),
        1 => "[a-zA-Z%]{0,8}",
    ];
    let value = prop_oneof![
        tricky_string(),
        (-5i64..200).prop_map(|n| n.to_string()),
        "[A-Za-z0-9_-]{1,70}",
        "(%[0-9a-fA-F]{2}){0,6}",
        "[%+=&;a-z0-9]{0,12}",
    ];
    prop::collection::vec((name, value, any::<bool>()), 0..5).prop_map(|pairs| {
        let mut query = String::new();
        for (name, value, encode) in pairs {
            if !query.is_empty() {
                query.push('&');
            }
            if encode {
                query.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair(&name, &value).finish());
            } else {
                query.push_str(&format!("{name}={value}"));
            }
        }
        query
    })
}

#[test]
fn list_query_strings_are_200_or_a_json_400() {
    let stack = Stack::new();
    let headers = [("x-api-key", HeaderValue::from_str(&stack.app.root_key).unwrap())];
    stack.run(query_string(), |query| {
        let (status, answer) = stack.send(Method::GET, &format!("/keys?{query}"), &headers, Body::Empty)?;
        prop_assert!(status == 200 || status == 400, "{status} for ?{query}: {answer}");
        if status == 200 {
            prop_assert!(answer["total"].is_u64() && answer["data"].is_array(), "{answer}");
        }
        Ok(())
    });
}

/// Any header value bytes (HTTP allows visible ASCII, space, tab and obs-text).
fn header_value() -> impl Strategy<Value = HeaderValue> {
    let bytes = prop_oneof![
        tricky_string().prop_map(String::into_bytes),
        prop::collection::vec(prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff], 0..80),
        Just(b"Bearer ".to_vec()),
        Just(b"bearer  sk_abc ".to_vec()),
        Just(b"application/json; charset=utf-8".to_vec()),
        Just(b"APPLICATION/merge-patch+json".to_vec()),
        Just(b"W/\"1\"".to_vec()),
    ];
    bytes.prop_filter_map("a header value", |b| HeaderValue::from_bytes(&b).ok())
}

#[test]
fn any_header_values_get_a_json_answer() {
    let stack = Stack::new();
    let root = format!("Bearer {}", stack.app.root_key);
    let routes = vec![
        (Method::POST, "/keys".to_owned()),
        (Method::GET, "/keys".to_owned()),
        (Method::POST, "/keys/verify".to_owned()),
        (Method::PATCH, format!("/keys/{}", stack.key_id)),
        (Method::GET, format!("/keys/{}", stack.key_id)),
        (Method::POST, format!("/keys/{}/roll", stack.key_id)),
        (Method::GET, format!("/keys/{}/events", stack.key_id)),
        (Method::PUT, "/keys".to_owned()),
    ];
    let headers = prop::collection::vec(
        (
            prop::sample::select(vec!["authorization", "x-api-key", "content-type", "idempotency-key", "if-match"]),
            header_value(),
        ),
        0..5,
    );
    let body = prop_oneof![
        Just(String::new()),
        Just("{\"userId\":\"u\"}".to_owned()),
        Just("{\"key\":\"sk_x\"}".to_owned()),
        ".{0,20}"
    ];
    stack.run(
        (prop::sample::select(routes), headers, any::<bool>(), body),
        |((method, path), headers, with_root, body)| {
            let mut all: Vec<(&str, HeaderValue)> = headers;
            if with_root {
                all.insert(0, ("authorization", HeaderValue::from_str(&root).unwrap()));
            }
            stack.send(method, &path, &all, if body.is_empty() { Body::Empty } else { Body::Text(body) })?;
            Ok(())
        },
    );
}

#[test]
fn any_path_gets_a_json_answer() {
    let stack = Stack::new();
    let headers = [("x-api-key", HeaderValue::from_str(&stack.app.root_key).unwrap())];
    let segment = prop_oneof![
        "[A-Za-z0-9_-]{0,70}",
        "[A-Za-z0-9_%.~!$'()*+,;=:@-]{0,30}",
        Just("verify".to_owned()),
        Just("..".to_owned())
    ];
    let method = prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
        Method::HEAD,
        Method::OPTIONS,
    ]);
    let tail = prop::sample::select(vec!["", "/", "/roll", "/events", "/roll/x", "//"]);
    stack.run((method, segment, tail), |(method, segment, tail)| {
        stack.send(method, &format!("/keys/{segment}{tail}"), &headers, Body::Empty)?;
        Ok(())
    });
}

/// The request decoder without the stack: any bytes under any content type give a body, none,
/// or an error whose status is a 4xx; and the body's value through every input parser gives a
/// value or a 400.
#[test]
fn body_decoder_and_input_parsers_never_panic() {
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/vnd.api+json; charset=utf-8".to_owned())),
        "[ -~]{0,30}".prop_map(Some),
    ];
    let bytes = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
        "[\\[\\]{}\",:0-9a-z .eE+-]{0,40}".prop_map(String::into_bytes),
    ];
    let mut runner = pure_runner();
    runner
        .run(&(content_type, bytes, any::<bool>()), |(content_type, bytes, binary)| {
            let mut builder = Request::builder().method(Method::POST).uri("/keys");
            if let Some(content_type) = &content_type {
                match HeaderValue::from_str(content_type) {
                    Ok(value) => builder = builder.header("content-type", value),
                    Err(_) => return Err(TestCaseError::reject("not a header value")),
                }
            }
            let body = match (binary, String::from_utf8(bytes.clone())) {
                (false, Ok(text)) => Body::Text(text),
                _ => Body::Binary(bytes),
            };
            match json_body(&builder.body(body).unwrap()) {
                Err(e) => prop_assert!(e.status().is_client_error(), "{e:?}"),
                Ok(None) => {}
                Ok(Some(value)) => parse_everywhere(value)?,
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

fn parse_everywhere(value: Value) -> Result<(), TestCaseError> {
    let now = start_time();
    let client_error = |e: apikeys::model::FieldError| ApiError::from(e).status().is_client_error();
    if let Err(e) = CreateKeyInput::parse(value.clone(), now) {
        prop_assert!(client_error(e));
    }
    if let Err(e) = UpdateKeyInput::parse(value.clone(), now) {
        prop_assert!(client_error(e));
    }
    if let Err(e) = RollInput::parse(Some(value.clone())) {
        prop_assert!(client_error(e));
    }
    if let Err(e) = VerifyInput::parse(value) {
        prop_assert!(client_error(e));
    }
    Ok(())
}

#[test]
fn input_parsers_take_any_json_value() {
    let mut runner = pure_runner();
    let bodies = prop_oneof![
        body_with(CREATE_FIELDS, json!({ "userId": "u" })),
        body_with(UPDATE_FIELDS, json!({})),
        body_with(VERIFY_FIELDS, json!({ "key": "k" })),
        json_value(),
    ];
    runner.run(&bodies, parse_everywhere).unwrap_or_else(|e| panic!("{e}"));
}

/// Decoded query pairs parse into a page or a 400; a page's own link parses back to it.
#[test]
fn page_requests_parse_or_fail_and_their_links_round_trip() {
    let mut runner = pure_runner();
    runner
        .run(&query_string(), |query| {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            match PageRequest::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                Err(e) => prop_assert!(ApiError::from(e).status().as_u16() == 400),
                Ok(page) => {
                    let link = page.link("/keys", &page.cursor);
                    let (_, link_query) = link.split_once('?').expect("a link has a query");
                    let again: Vec<(String, String)> =
                        form_urlencoded::parse(link_query.as_bytes()).into_owned().collect();
                    let reparsed = PageRequest::parse(again.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    prop_assert_eq!(reparsed.ok(), Some(PageRequest { offset: 0, ..page }), "link {}", link);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
