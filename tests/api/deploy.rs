//! The deployment side: template.yaml must match the route table and the table definition,
//! and every sample event in events/ must work, as it is, through the same handlers and
//! authorizer the Lambda functions run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use apikeys::http::routes::{Endpoint, Route};
use apikeys::http::{ROUTES, handlers};
use apikeys::store::table::{INDEXES, PARTITION_KEY, SORT_KEY, STREAM_VIEW, TTL_ATTRIBUTE};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const FUNCTION: &str = "AWS::Serverless::Function";
/// Interim: the template still declares the retired authorizer until it is rewritten without it.
const AUTHORIZER_FUNCTION: &str = "authorizer";
/// The name of the authorizer in the HTTP API's OpenAPI body.
const AUTHORIZER_SCHEME: &str = "RootKeyAuthorizer";
/// The function on the table's stream (src/bin/retention_stream.rs, `apikeys::stream`).
const STREAM_FUNCTION: &str = "retention_stream";

fn project_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn template() -> Value {
    let text = std::fs::read_to_string(project_file("template.yaml")).expect("read template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is plain YAML (long-form intrinsics, no !Ref tags)")
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("expected a string, found {value}"))
}

fn list(value: &Value) -> &Vec<Value> {
    value.as_array().unwrap_or_else(|| panic!("expected a list, found {value}"))
}

/// `Ref: X` (or `Fn::GetAtt: [X, Arn]`) names resource X.
fn names_resource(value: &Value, logical_id: &str) -> bool {
    value.get("Ref").and_then(Value::as_str) == Some(logical_id)
        || value.get("Fn::GetAtt").and_then(|a| a.get(0)).and_then(Value::as_str) == Some(logical_id)
}

/// (method, path) → binary, for every function's HttpApi events; and the binaries of all functions.
fn template_routes(template: &Value) -> (BTreeMap<(String, String), String>, BTreeSet<String>, String) {
    let (mut routes, mut binaries) = (BTreeMap::new(), BTreeSet::new());
    let api = resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::HttpApi")
        .map(|(id, _)| id.clone())
        .collect::<Vec<_>>();
    assert_eq!(api.len(), 1, "one HTTP API: {api:?}");
    let api = api.into_iter().next().unwrap();
    for (id, resource) in resources(template).iter().filter(|(_, r)| r["Type"] == FUNCTION) {
        assert_eq!(resource["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}: Metadata.BuildMethod");
        let binary = text(&resource["Metadata"]["BuildProperties"]["Binary"]).to_owned();
        assert!(binaries.insert(binary.clone()), "{id}: binary {binary} is built by two functions");
        let events = resource["Properties"]["Events"].as_object().cloned().unwrap_or_default();
        for (name, event) in events {
            if event["Type"] == "DynamoDB" {
                assert_eq!(binary, STREAM_FUNCTION, "{id}.{name}: only the stream function reads the stream");
                continue;
            }
            assert_eq!(event["Type"], "HttpApi", "{id}.{name}: only HttpApi events");
            let props = &event["Properties"];
            assert!(names_resource(&props["ApiId"], &api), "{id}.{name}: ApiId must be Ref {api}");
            let key = (text(&props["Method"]).to_ascii_uppercase(), text(&props["Path"]).to_owned());
            assert!(routes.insert(key.clone(), binary.clone()).is_none(), "{key:?} is routed twice");
        }
    }
    (routes, binaries, api)
}

#[test]
fn template_functions_and_routes_match_the_route_table() {
    let template = template();
    let (routes, binaries, api) = template_routes(&template);

    let expected: BTreeMap<(String, String), String> =
        ROUTES.iter().map(|r| ((r.method.to_string(), r.path.to_owned()), r.function.to_owned())).collect();
    assert_eq!(routes, expected, "template.yaml's HttpApi events differ from apikeys::http::ROUTES");

    let mut expected_binaries: BTreeSet<String> = ROUTES.iter().map(|r| r.function.to_owned()).collect();
    expected_binaries.insert(AUTHORIZER_FUNCTION.to_owned());
    expected_binaries.insert(STREAM_FUNCTION.to_owned());
    assert_eq!(binaries, expected_binaries, "template.yaml's functions differ from the routes, authorizer and stream");
    for binary in binaries.iter().filter(|b| *b != AUTHORIZER_FUNCTION) {
        assert!(
            project_file(&format!("src/bin/{binary}.rs")).exists(),
            "src/bin/{binary}.rs, built by template.yaml, is missing"
        );
    }

    // Every route is behind the authorizer, in the OpenAPI body (where its identity source can
    // depend on the cache setting).
    let body = &resources(&template)[&api]["Properties"]["DefinitionBody"];
    let mut secured = BTreeSet::new();
    for (path, methods) in body["paths"].as_object().expect("DefinitionBody.paths") {
        for (method, operation) in methods.as_object().expect("path item") {
            assert_eq!(operation["security"], json!([{ AUTHORIZER_SCHEME: [] }]), "{method} {path}: security");
            secured.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert_eq!(secured, expected.keys().cloned().collect::<BTreeSet<_>>(), "DefinitionBody.paths differ from ROUTES");

    let authorizer = &body["components"]["securitySchemes"][AUTHORIZER_SCHEME]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["type"], "request");
    assert_eq!(authorizer["authorizerPayloadFormatVersion"], "2.0");
    assert_eq!(authorizer["enableSimpleResponses"], true);
    assert!(text(&authorizer["authorizerUri"]["Fn::Sub"]).contains("${AuthorizerFunction.Arn}"));
    let authorizer_function = &resources(&template)["AuthorizerFunction"];
    assert_eq!(authorizer_function["Metadata"]["BuildProperties"]["Binary"], AUTHORIZER_FUNCTION);
    assert!(authorizer_function["Properties"]["Events"].is_null(), "the authorizer has no route of its own");
    assert_eq!(authorizer["authorizerResultTtlInSeconds"], json!({ "Ref": "AuthorizerCacheTtl" }));
    assert_eq!(template["Parameters"]["AuthorizerCacheTtl"]["Default"], 0);
    // Cache off: no identity source, so a key in either Authorization or x-api-key reaches the
    // authorizer. Cache on: one header (API Gateway demands every listed source).
    let identity = list(&authorizer["identitySource"]["Fn::If"]);
    assert_eq!(identity[0], "AuthorizerCacheOn");
    assert_eq!(identity[1], json!(["$request.header.Authorization"]));
    assert_eq!(identity[2], json!({ "Ref": "AWS::NoValue" }));
    let permission = resources(&template)
        .values()
        .find(|r| {
            r["Type"] == "AWS::Lambda::Permission"
                && names_resource(&r["Properties"]["FunctionName"], "AuthorizerFunction")
        })
        .expect("a permission for API Gateway to invoke the authorizer");
    assert_eq!(permission["Properties"]["Principal"], "apigateway.amazonaws.com");

    // The stream function reads the table's stream, and only TTL removals (what it acts on).
    let (_, stream_function) = resources(&template)
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == STREAM_FUNCTION)
        .expect("the stream function");
    let stream_events: Vec<&Value> = stream_function["Properties"]["Events"].as_object().unwrap().values().collect();
    assert_eq!(stream_events.len(), 1);
    let stream = &stream_events[0]["Properties"];
    assert_eq!(stream["Stream"], json!({ "Fn::GetAtt": ["KeysTable", "StreamArn"] }));
    let pattern: Value = serde_json::from_str(text(&stream["FilterCriteria"]["Filters"][0]["Pattern"])).unwrap();
    assert_eq!(pattern["eventName"], json!(["REMOVE"]));
    assert_eq!(pattern["userIdentity"]["principalId"], json!(["dynamodb.amazonaws.com"]));

    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], json!(["arm64"]));
    assert_eq!(globals["Handler"], "bootstrap");
    assert!(names_resource(&globals["Environment"]["Variables"]["TABLE_NAME"], "KeysTable"));
}

#[test]
fn template_policies_are_least_privilege() {
    let template = template();
    let table_arn = json!({ "Fn::GetAtt": ["KeysTable", "Arn"] });
    let index_arns: Vec<Value> =
        INDEXES.iter().map(|i| json!({ "Fn::Sub": format!("${{KeysTable.Arn}}/index/{}", i.name) })).collect();
    for (id, resource) in resources(&template).iter().filter(|(_, r)| r["Type"] == FUNCTION) {
        let policies = list(&resource["Properties"]["Policies"]);
        assert!(!policies.is_empty(), "{id}: no policy");
        for policy in policies {
            let statements =
                policy.get("Statement").unwrap_or_else(|| panic!("{id}: only inline statements, not {policy}"));
            for statement in list(statements) {
                assert_eq!(statement["Effect"], "Allow");
                for action in list(&statement["Action"]).iter().map(text) {
                    let allowed = [
                        "GetItem",
                        "PutItem",
                        "UpdateItem",
                        "DeleteItem",
                        "ConditionCheckItem",
                        "BatchGetItem",
                        "Query",
                    ];
                    assert!(
                        action.strip_prefix("dynamodb:").is_some_and(|a| allowed.contains(&a)),
                        "{id}: action {action} is not one the store uses"
                    );
                }
                for resource in list(&statement["Resource"]) {
                    assert!(*resource == table_arn || index_arns.contains(resource), "{id}: resource {resource}");
                }
            }
        }
    }
}

/// An index as the template declares it: name, key schema (attribute, key type), projection.
type IndexShape = (String, Vec<(String, String)>, String);

#[test]
fn template_table_matches_the_table_definition() {
    let template = template();
    let table = &resources(&template)["KeysTable"];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    let props = &table["Properties"];
    let schema = |value: &Value| -> Vec<(String, String)> {
        list(value).iter().map(|k| (text(&k["AttributeName"]).to_owned(), text(&k["KeyType"]).to_owned())).collect()
    };
    assert_eq!(
        schema(&props["KeySchema"]),
        vec![(PARTITION_KEY.into(), "HASH".into()), (SORT_KEY.into(), "RANGE".into())]
    );

    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    for a in list(&props["AttributeDefinitions"]) {
        attributes.insert(text(&a["AttributeName"]).into(), text(&a["AttributeType"]).into());
    }
    let mut expected_attributes =
        BTreeMap::from([(PARTITION_KEY.to_owned(), "S".to_owned()), (SORT_KEY.to_owned(), "S".to_owned())]);
    for index in INDEXES {
        expected_attributes.insert(index.partition_key.into(), "S".into());
        expected_attributes.insert(index.sort_key.into(), "S".into());
    }
    assert_eq!(attributes, expected_attributes, "AttributeDefinitions");

    let indexes: Vec<IndexShape> = list(&props["GlobalSecondaryIndexes"])
        .iter()
        .map(|i| {
            (
                text(&i["IndexName"]).to_owned(),
                schema(&i["KeySchema"]),
                text(&i["Projection"]["ProjectionType"]).to_owned(),
            )
        })
        .collect();
    let expected_indexes: Vec<IndexShape> = INDEXES
        .iter()
        .map(|i| {
            let keys =
                vec![(i.partition_key.to_owned(), "HASH".to_owned()), (i.sort_key.to_owned(), "RANGE".to_owned())];
            (i.name.to_owned(), keys, "ALL".to_owned())
        })
        .collect();
    assert_eq!(indexes, expected_indexes, "GlobalSecondaryIndexes");

    assert_eq!(props["TimeToLiveSpecification"], json!({ "AttributeName": TTL_ATTRIBUTE, "Enabled": true }));
    assert_eq!(props["StreamSpecification"]["StreamViewType"], STREAM_VIEW);
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(props["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(props["DeletionProtectionEnabled"], json!({ "Ref": "DeletionProtection" }));
}

// --- events/ --------------------------------------------------------------------------------

fn read_event(name: &str) -> Value {
    let path = project_file(&format!("events/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn route_of(event: &Value) -> &'static Route {
    let route_key = text(&event["routeKey"]);
    let route = ROUTES
        .iter()
        .find(|r| format!("{} {}", r.method, r.path) == route_key)
        .unwrap_or_else(|| panic!("routeKey {route_key} is not in ROUTES"));
    assert_eq!(event["requestContext"]["routeKey"], route_key);
    assert_eq!(event["requestContext"]["http"]["method"], route.method.as_str());
    assert_eq!(event["requestContext"]["http"]["path"], event["rawPath"]);
    route
}

/// The event's JSON body, parsed.
fn event_body(event: &Value) -> Value {
    serde_json::from_str(text(&event["body"])).expect("the event body is JSON")
}

fn set_event_body(event: &mut Value, body: &Value) {
    let body = body.to_string();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(body);
}

/// The event as the test app's company would send it, through the endpoint's handler.
async fn run_event(app: &TestApp, mut event: Value) -> TestResponse {
    let route = route_of(&event);
    event["headers"]["authorization"] = json!(format!("Bearer {}", app.root_key));
    let request = lambda_http::request::from_str(&event.to_string()).expect("lambda_http reads the event");
    let response = handlers::handle(&app.app, route.endpoint, request).await;
    let (parts, body) = response.into_parts();
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("every answer is JSON") };
    TestResponse { status: parts.status, headers: parts.headers, body }
}

/// Creates the key the event's path names (`/keys/{keyId}`), with a custom id.
async fn create_key_of(app: &TestApp, event: &Value) -> Value {
    let id = text(&event["pathParameters"]["keyId"]);
    let response = app
        .send(Method::POST, &format!("/keys/{id}"), Some(&app.root_key), Some(&json!({ "userId": "user_42" })), &[])
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body
}

#[test]
fn every_route_and_the_authorizer_have_an_event() {
    for route in &ROUTES {
        let event = read_event(route.function);
        assert_eq!(route_of(&event).endpoint, route.endpoint, "events/{}.json", route.function);
        assert!(lambda_http::request::from_str(&event.to_string()).is_ok(), "events/{}.json", route.function);
    }
    let authorizer = read_event(AUTHORIZER_FUNCTION);
    serde_json::from_value::<ApiGatewayV2CustomAuthorizerV2Request>(authorizer).expect("events/authorizer.json");
    serde_json::from_value::<aws_lambda_events::event::dynamodb::Event>(read_event(STREAM_FUNCTION))
        .expect("events/retention_stream.json");
    let mut names: Vec<String> = std::fs::read_dir(project_file("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".json").to_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = ROUTES
        .iter()
        .map(|r| r.function.to_owned())
        .chain([AUTHORIZER_FUNCTION.to_owned(), STREAM_FUNCTION.to_owned()])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "events/ has one event per function");
}

#[tokio::test]
async fn create_key_event() {
    let app = spawn_app().await;
    let event = read_event("create_key");
    let sent = event_body(&event);
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    assert!(response.body["key"].as_str().is_some_and(|k| k.starts_with("sk_")), "{:?}", response.body);
    assert_eq!(response.body["userId"], sent["userId"]);
    assert_eq!(response.body["companyId"], json!(app.company.to_string()));
    assert_eq!(response.body["tags"], sent["tags"]);
    assert_eq!(response.header("location"), format!("/keys/{}", text(&response.body["id"])));
}

#[tokio::test]
async fn create_custom_key_event() {
    let app = spawn_app().await;
    let event = read_event("create_custom_key");
    let id = text(&event["pathParameters"]["keyId"]).to_owned();
    let response = run_event(&app, event.clone()).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    assert_eq!(response.body["id"], json!(id));
    assert!(response.body["key"].is_string());
    // The same event again: that id is taken.
    assert_eq!(run_event(&app, event).await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn list_keys_event() {
    let app = spawn_app().await;
    let created = app.create_key(&json!({ "userId": "user_42" })).await;
    let event = read_event("list_keys");
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    // The root key and the one just created.
    assert_eq!(response.body["total"], 2, "{:?}", response.body);
    assert_eq!(response.body["count"], 2);
    assert_eq!(response.body["data"][0]["id"], created["id"], "newest first");
}

#[tokio::test]
async fn get_key_event() {
    let app = spawn_app().await;
    let event = read_event("get_key");
    assert_eq!(run_event(&app, event.clone()).await.status, StatusCode::NOT_FOUND);
    let created = create_key_of(&app, &event).await;
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["id"], created["id"]);
    assert!(response.body.get("key").is_none(), "a secret is never shown again");
}

#[tokio::test]
async fn list_key_events_event() {
    let app = spawn_app().await;
    let event = read_event("list_key_events");
    assert_eq!(run_event(&app, event.clone()).await.status, StatusCode::NOT_FOUND, "no such key yet");
    let created = create_key_of(&app, &event).await;
    app.patch_key(text(&created["id"]), &json!({ "description": "changed" }), &[]).await;
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["total"], 2, "created, then updated: {:?}", response.body);
    assert_eq!(response.body["count"], 2);
    assert_eq!(response.body["data"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn update_key_event() {
    let app = spawn_app().await;
    let event = read_event("update_key");
    create_key_of(&app, &event).await;
    let sent = event_body(&event);
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["description"], sent["description"]);
    assert_eq!(response.body["tags"], sent["tags"]);
}

#[tokio::test]
async fn delete_key_event() {
    let app = spawn_app().await;
    let event = read_event("delete_key");
    let created = create_key_of(&app, &event).await;
    let response = run_event(&app, event.clone()).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{:?}", response.body);
    assert_eq!(response.body, Value::Null);
    let after = app.get_key(text(&created["id"])).await;
    assert_eq!(after.body["status"], "inactive", "{:?}", after.body);
    assert!(after.body["deletedAt"].is_string());
    assert_eq!(run_event(&app, event).await.status, StatusCode::NO_CONTENT, "deleting again is 204 again");
}

#[tokio::test]
async fn roll_key_event() {
    let app = spawn_app().await;
    let event = read_event("roll_key");
    let created = create_key_of(&app, &event).await;
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["id"], created["id"]);
    let new_key = text(&response.body["key"]);
    assert_ne!(new_key, text(&created["key"]));
    let verified = app.verify(&json!({ "key": new_key })).await;
    assert_eq!(verified.body["code"], "VALID");
}

#[tokio::test]
async fn verify_key_event() {
    let app = spawn_app().await;
    // The key that events/create_key.json creates (its ACL, allowlist and scope fit the
    // verify event's permissions, ip and scope).
    let created = app.create_key(&event_body(&read_event("create_key"))).await;
    let mut event = read_event("verify_key");
    let sent = event_body(&event);
    // As it is, the event's key is well-formed but is no key of this company.
    let unknown = run_event(&app, event.clone()).await;
    assert_eq!(unknown.status, StatusCode::OK, "{:?}", unknown.body);
    assert_eq!(unknown.body["valid"], false);
    assert_eq!(unknown.body["code"], "NOT_FOUND");

    let mut body = sent.clone();
    body["key"] = created["key"].clone();
    set_event_body(&mut event, &body);
    let response = run_event(&app, event).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["valid"], true, "{:?}", response.body);
    assert_eq!(response.body["code"], "VALID");
    assert_eq!(response.body["keyId"], created["id"]);
    assert_eq!(response.body["userId"], created["userId"]);
}

#[tokio::test]
async fn an_authorizer_context_in_an_event_grants_nothing() {
    // Each function authenticates its caller itself: a context claiming a company and `keys:*`
    // (as API Gateway would pass from a Lambda authorizer) is ignored.
    let app = spawn_app().await;
    let mut event = read_event("get_key");
    event["requestContext"]["authorizer"]["lambda"] =
        json!({ "authenticated": true, "companyId": app.company.to_string(), "permissions": "[\"keys:*\"]" });
    event["headers"].as_object_mut().unwrap().remove("authorization");
    let route = route_of(&event);
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handlers::handle(&app.app, route.endpoint, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
}

#[test]
fn endpoints_are_all_covered() {
    // A new endpoint needs a case above and an event in events/.
    let covered = [
        Endpoint::CreateKey,
        Endpoint::CreateCustomKey,
        Endpoint::ListKeys,
        Endpoint::GetKey,
        Endpoint::UpdateKey,
        Endpoint::DeleteKey,
        Endpoint::RollKey,
        Endpoint::VerifyKey,
        Endpoint::ListKeyEvents,
    ];
    for route in &ROUTES {
        assert!(covered.contains(&route.endpoint), "{:?} has no event test in tests/api/deploy.rs", route.endpoint);
    }
}
