//! The deployment side: template.yaml must match the route table and the table definition,
//! carry what an operator needs (log retention, throttling, tracing, alarms, the stream's failure
//! handling, DYNAMODB_ENDPOINT), grant each function exactly the actions it uses, and every
//! sample event in events/ must work through the same handlers the Lambda functions run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use apikeys::entry::http::console;
use apikeys::entry::http::routes::{
    API_KEY_FUNCTION, CONSOLE_FUNCTION, EVENTS_FUNCTION, Endpoint, LambdaFunction, ROOT_KEY_FUNCTION, Route,
    STATIC_ROUTES, STREAM_FUNCTION, USAGE_AGGREGATOR_FUNCTION,
};
use apikeys::entry::http::{ROUTES, handlers};
use apikeys::entry::root_key_resource::{self, Answer, ResponseUrl, ResponseUrlPolicy, RootKeyResource, SecretStore};
use apikeys::model::CompanyId;
use apikeys::store::table::{COMPANY_INDEX, INDEXES, PARTITION_KEY, SORT_KEY, STREAM_VIEW, TTL_ATTRIBUTE};
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const FUNCTION: &str = "AWS::Serverless::Function";
/// The one binary every function runs (src/bin/lambda.rs), built once by `sam build`.
const LAMBDA_BINARY: &str = "lambda";
/// Environment variables every function reads (src/settings.rs).
const FUNCTION_ENVIRONMENT: [&str; 5] =
    ["TABLE_NAME", "RETENTION_DAYS", "CALLER_CACHE_SECONDS", "VERIFY_CACHE_SECONDS", "DYNAMODB_ENDPOINT"];

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

/// Every function of the template: (logical id, what it serves (its `FUNCTION`), resource).
fn functions(template: &Value) -> Vec<(&str, &str, &Value)> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == FUNCTION)
        .map(|(id, r)| (id.as_str(), text(&r["Properties"]["Environment"]["Variables"]["FUNCTION"]), r))
        .collect()
}

/// The function whose `FUNCTION` is `function`: (logical id, resource).
fn function_of<'t>(template: &'t Value, function: &str) -> (&'t str, &'t Value) {
    functions(template)
        .into_iter()
        .find(|(_, f, _)| *f == function)
        .map(|(id, _, r)| (id, r))
        .unwrap_or_else(|| panic!("no function has FUNCTION {function}"))
}

/// (method, path) → function, for every function's HttpApi events; and the `FUNCTION`s of all
/// functions.
fn template_routes(template: &Value) -> (BTreeMap<(String, String), String>, BTreeSet<String>, String) {
    let (mut routes, mut binaries) = (BTreeMap::new(), BTreeSet::new());
    let api = resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::HttpApi")
        .map(|(id, _)| id.clone())
        .collect::<Vec<_>>();
    assert_eq!(api.len(), 1, "one HTTP API: {api:?}");
    let api = api.into_iter().next().unwrap();
    for (id, function, resource) in functions(template) {
        assert_eq!(resource["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}: Metadata.BuildMethod");
        assert_eq!(resource["Metadata"]["BuildProperties"]["Binary"], LAMBDA_BINARY, "{id}: the one binary");
        let binary = function.to_owned();
        assert!(binaries.insert(binary.clone()), "{id}: FUNCTION {binary} is served by two functions");
        let events = resource["Properties"]["Events"].as_object().cloned().unwrap_or_default();
        for (name, event) in events {
            if event["Type"] == "DynamoDB" {
                assert!(
                    [STREAM_FUNCTION, EVENTS_FUNCTION].contains(&binary.as_str()),
                    "{id}.{name}: only the stream functions read the stream"
                );
                continue;
            }
            assert_eq!(event["Type"], "HttpApi", "{id}.{name}: only HttpApi events");
            let props = &event["Properties"];
            assert!(names_resource(&props["ApiId"], &api), "{id}.{name}: ApiId must be Ref {api}");
            assert!(props.get("Auth").is_none(), "{id}.{name}: the function authenticates its caller itself");
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

    let expected: BTreeMap<(String, String), String> = ROUTES
        .iter()
        .map(|r| (&r.method, r.path, r.function))
        .chain(STATIC_ROUTES.iter().map(|r| (&r.method, r.path, r.function)))
        .map(|(method, path, function)| ((method.to_string(), path.to_owned()), function.to_owned()))
        .collect();
    assert_eq!(
        routes, expected,
        "template.yaml's HttpApi events differ from apikeys::entry::http::ROUTES and STATIC_ROUTES"
    );

    let expected_binaries: BTreeSet<String> = LambdaFunction::all().map(|f| f.name().to_owned()).collect();
    assert_eq!(
        binaries, expected_binaries,
        "template.yaml's functions (their FUNCTION) differ from LambdaFunction::all: the routes, console, stream and custom resource"
    );
    for binary in &binaries {
        assert!(LambdaFunction::from_name(binary).is_some(), "FUNCTION {binary} is no function of the service");
    }
    assert!(
        project_file(&format!("src/bin/{LAMBDA_BINARY}.rs")).exists(),
        "src/bin/{LAMBDA_BINARY}.rs, built by template.yaml, is missing"
    );
    // One build for all: SAM shares a build among functions whose code, runtime and Metadata are
    // equal, so every function's are.
    let builds: BTreeSet<String> = functions(&template)
        .iter()
        .map(|(_, _, r)| {
            json!([r["Metadata"], r["Properties"].get("CodeUri"), r["Properties"].get("Runtime")]).to_string()
        })
        .collect();
    assert_eq!(builds.len(), 1, "every function's Metadata, CodeUri and Runtime are the same: {builds:#?}");

    // No authorizer anywhere: every route function authenticates its caller in one invocation.
    let api_props = &resources(&template)[&api]["Properties"];
    assert!(api_props.get("Auth").is_none() && api_props.get("DefinitionBody").is_none(), "no authorizer: {api_props}");
    // The one hand-made invoke permission: verify's log group's, for the usage aggregator.
    let permissions: Vec<&Value> =
        resources(&template).values().filter(|r| r["Type"] == "AWS::Lambda::Permission").collect();
    assert_eq!(permissions.len(), 1, "no other invoke permission (an authorizer's) is left");
    let permission = &permissions[0]["Properties"];
    assert_eq!(permission["Principal"], "logs.amazonaws.com");
    assert_eq!(permission["FunctionName"], json!({ "Fn::GetAtt": ["UsageAggregatorFunction", "Arn"] }));
    assert_eq!(permission["SourceArn"], json!({ "Fn::GetAtt": ["VerifyKeyLogGroup", "Arn"] }));
    let subscriptions: Vec<&Value> = resources(&template)
        .values()
        .filter(|r| r["Type"] == "AWS::Logs::SubscriptionFilter")
        .map(|r| &r["Properties"])
        .collect();
    assert_eq!(subscriptions.len(), 1, "verify's usage subscription");
    assert_eq!(subscriptions[0]["LogGroupName"], json!({ "Ref": "VerifyKeyLogGroup" }));
    assert_eq!(subscriptions[0]["DestinationArn"], permission["FunctionName"]);
    assert_eq!(subscriptions[0]["FilterPattern"], "{ $.usage.outcome = \"*\" }", "verify lines with a usage only");

    // Expiry schedules refused for good are counted from the lifecycle function's batch line
    // (its field is checked in operations::events) and alarmed on.
    let metric_filters: Vec<&Value> = resources(&template)
        .values()
        .filter(|r| r["Type"] == "AWS::Logs::MetricFilter")
        .map(|r| &r["Properties"])
        .collect();
    assert_eq!(metric_filters.len(), 1);
    assert_eq!(metric_filters[0]["LogGroupName"], json!({ "Ref": "LifecycleEventsLogGroup" }));
    assert_eq!(metric_filters[0]["FilterPattern"], "{ $.schedules_refused > 0 }");
    let metric = &metric_filters[0]["MetricTransformations"][0];
    assert_eq!(metric["MetricValue"], "$.schedules_refused");
    let alarm = &resources(&template)["ExpirySchedulesRefusedAlarm"]["Properties"];
    assert_eq!((&alarm["Namespace"], &alarm["MetricName"]), (&metric["MetricNamespace"], &metric["MetricName"]));

    // The stream function reads the table's stream, and only TTL removals (what it acts on).
    let (_, stream_function) = function_of(&template, STREAM_FUNCTION);
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
fn every_function_declares_its_environment_and_dynamodb_endpoint_defaults_to_aws() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    for (id, _, resource) in functions(&template) {
        let own = &resource["Properties"]["Environment"]["Variables"];
        for name in FUNCTION_ENVIRONMENT {
            assert!(globals.get(name).is_some() || own.get(name).is_some(), "{id}: {name} is not declared");
        }
    }
    // The caches' parameters allow what the settings accept, and default as they do.
    use apikeys::settings::{DEFAULT_CALLER_CACHE_SECONDS, MAX_CALLER_CACHE_SECONDS};
    for (variable, parameter, default) in [
        ("CALLER_CACHE_SECONDS", "CallerCacheSeconds", DEFAULT_CALLER_CACHE_SECONDS),
        ("VERIFY_CACHE_SECONDS", "VerifyCacheSeconds", 0),
    ] {
        assert_eq!(globals[variable], json!({ "Ref": parameter }));
        let cache = &template["Parameters"][parameter];
        assert_eq!((&cache["Default"], &cache["MinValue"]), (&json!(default), &json!(0)), "{parameter}");
        assert_eq!(cache["MaxValue"], json!(MAX_CALLER_CACHE_SECONDS), "{parameter}");
    }
    // Declared from a parameter that is empty by default: empty means DynamoDB in AWS.
    assert_eq!(globals["DYNAMODB_ENDPOINT"], json!({ "Ref": "DynamoDbEndpoint" }));
    assert_eq!(template["Parameters"]["DynamoDbEndpoint"]["Default"], "");
    // SAM passes `--env-vars` only for variables the template declares: events/env.json must set
    // no other, and must set the two that point a function at DynamoDB Local.
    let env: Value = serde_json::from_str(&std::fs::read_to_string(project_file("events/env.json")).unwrap()).unwrap();
    let set = env["Parameters"].as_object().expect("events/env.json sets Parameters (every function)");
    for name in set.keys() {
        assert!(globals.get(name).is_some(), "events/env.json sets {name}, which the template does not declare");
    }
    assert!(set.contains_key("TABLE_NAME") && set.contains_key("DYNAMODB_ENDPOINT"), "{env}");
}

#[test]
fn template_keeps_logs_for_the_retention_period_and_traces() {
    let template = template();
    let retention = json!({ "Ref": "LogRetentionDays" });
    assert_eq!(template["Parameters"]["LogRetentionDays"]["Default"], 30);
    assert_eq!(template["Globals"]["Function"]["Tracing"], "Active");
    assert_eq!(template["Globals"]["Function"]["LoggingConfig"]["LogFormat"], "JSON");
    // One log group per function, created by the stack (so its retention applies from the first
    // line) and named in the function's LoggingConfig.
    for (id, binary, resource) in functions(&template) {
        let group_ref = &resource["Properties"]["LoggingConfig"]["LogGroup"];
        let group_id = group_ref["Ref"].as_str().unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is a Ref"));
        let group = &resources(&template)[group_id];
        assert_eq!(group["Type"], "AWS::Logs::LogGroup", "{id}: {group_id}");
        assert_eq!(group["Properties"]["RetentionInDays"], retention, "{group_id}: retention");
        assert!(text(&group["Properties"]["LogGroupName"]["Fn::Sub"]).ends_with(&format!("/{binary}")));
        assert_eq!(group.get("Condition"), resource.get("Condition"), "{group_id} exists with {id}");
    }
    // The API's access log, with the same retention.
    let access = &resources(&template)["HttpApi"]["Properties"]["AccessLogSettings"];
    let group_id = access["DestinationArn"]["Fn::GetAtt"][0].as_str().expect("AccessLogSettings.DestinationArn");
    assert_eq!(resources(&template)[group_id]["Properties"]["RetentionInDays"], retention);
    let format: Value = serde_json::from_str(text(&access["Format"])).expect("the access log format is JSON");
    assert_eq!(format["requestId"], "$context.requestId");
    assert_eq!(format["status"], "$context.status");
    assert!(format.as_object().unwrap().values().all(|v| !text(v).contains("header")), "no header is logged");
}

#[test]
fn template_throttles_the_api_and_caps_concurrency() {
    let template = template();
    let route_settings = &resources(&template)["HttpApi"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(route_settings["ThrottlingRateLimit"], json!({ "Ref": "ThrottlingRateLimit" }));
    assert_eq!(route_settings["ThrottlingBurstLimit"], json!({ "Ref": "ThrottlingBurstLimit" }));
    for name in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
        assert!(template["Parameters"][name]["Default"].as_u64().is_some_and(|d| d > 0), "{name}");
    }
    // Reserved concurrency from a parameter; 0 (the default) reserves none rather than stopping
    // every function.
    let reserved = list(&template["Globals"]["Function"]["ReservedConcurrentExecutions"]["Fn::If"]);
    assert_eq!(reserved[0], "ReserveConcurrency");
    assert_eq!(reserved[1], json!({ "Ref": "ReservedConcurrency" }));
    assert_eq!(reserved[2], json!({ "Ref": "AWS::NoValue" }));
    assert_eq!(template["Parameters"]["ReservedConcurrency"]["Default"], 0);
}

/// The alarms whose description starts with `about`.
fn alarms<'t>(template: &'t Value, about: &str) -> Vec<&'t Value> {
    resources(template)
        .values()
        .filter(|r| {
            r["Type"] == "AWS::CloudWatch::Alarm" && text(&r["Properties"]["AlarmDescription"]).starts_with(about)
        })
        .map(|r| &r["Properties"])
        .collect()
}

/// The alarm whose description starts with `about`.
fn alarm<'t>(template: &'t Value, about: &str) -> &'t Value {
    alarms(template, about).into_iter().next().unwrap_or_else(|| panic!("no alarm about {about}"))
}

#[test]
fn template_alarms_on_5xx_throttles_and_failed_stream_records() {
    let template = template();
    let errors = alarm(&template, "The HTTP API answered 5xx");
    assert_eq!((&errors["Namespace"], &errors["MetricName"]), (&json!("AWS/ApiGateway"), &json!("5xx")));
    assert!(names_resource(&errors["Dimensions"][0]["Value"], "HttpApi"));

    // Throttles of every function that serves traffic (the routes, the console and the stream;
    // not the custom resources', which CloudFormation calls now and then),
    // split over alarms of at most 10 metrics each.
    let mut counted = BTreeSet::new();
    for throttles in alarms(&template, "Lambda throttled") {
        let metrics: Vec<&str> = list(&throttles["Metrics"])
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .map(|s| {
                assert_eq!(s["Metric"]["MetricName"], "Throttles");
                text(&s["Metric"]["Dimensions"][0]["Value"]["Ref"])
            })
            .collect();
        assert!(metrics.len() <= 10, "an alarm's metric math reads at most 10 metrics: split the alarm");
        for function in metrics {
            assert!(counted.insert(function), "{function}'s throttles are counted twice");
        }
    }
    let serving: BTreeSet<&str> =
        functions(&template).into_iter().filter(|(_, b, _)| !b.ends_with("_resource")).map(|(id, _, _)| id).collect();
    assert_eq!(counted, serving, "the throttles alarms count every serving function");

    let queue = alarm(&template, "Stream records failed");
    assert_eq!(queue["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(queue["Dimensions"][0]["Value"], json!({ "Fn::GetAtt": ["StreamFailureQueue", "QueueName"] }));
}

#[test]
fn the_stream_reports_failed_records_retries_a_bounded_number_of_times_and_keeps_what_fails() {
    let template = template();
    let (_, stream_function) = function_of(&template, STREAM_FUNCTION);
    let source = &stream_function["Properties"]["Events"]["TtlRemovals"]["Properties"];
    assert_eq!(source["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    assert_eq!(source["BisectBatchOnFunctionError"], true);
    let retries = source["MaximumRetryAttempts"].as_u64().expect("MaximumRetryAttempts");
    assert!((1..=10).contains(&retries), "a bounded number of retries: {retries}");
    let on_failure = &source["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"], "SQS");
    assert!(names_resource(&on_failure["Destination"], "StreamFailureQueue"));
    let queue = &resources(&template)["StreamFailureQueue"];
    assert_eq!(queue["Type"], "AWS::SQS::Queue");
    assert_eq!(queue["Properties"]["SqsManagedSseEnabled"], true, "the queue is encrypted");
}

#[test]
fn the_root_key_is_minted_only_when_a_company_is_given_and_kept_in_secrets_manager() {
    let template = template();
    assert_eq!(template["Parameters"]["RootKeyCompany"]["Default"], "");
    let (function_id, function) = function_of(&template, ROOT_KEY_FUNCTION);
    let resource = resources(&template).values().find(|r| r["Type"] == "Custom::RootKey").expect("a Custom::RootKey");
    let secret = &resources(&template)["RootKeySecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    for r in [function, resource, secret] {
        assert_eq!(r["Condition"], "MintRootKey");
    }
    let props = &resource["Properties"];
    assert!(names_resource(&props["ServiceToken"], function_id));
    assert_eq!(props["Company"], json!({ "Ref": "RootKeyCompany" }));
    // The company minted comes from the function's environment, not from a request; and no
    // setting of the deployed template lets it answer anywhere but a presigned S3 URL.
    let environment = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(environment["ROOT_KEY_COMPANY"], json!({ "Ref": "RootKeyCompany" }));
    assert!(!serde_json::to_string(&template).unwrap().contains("ROOT_KEY_LOCAL_RESPONSE_HOST"));
    assert!(names_resource(&props["SecretId"], "RootKeySecret"));
    let output = &template["Outputs"]["RootKeySecretArn"];
    assert_eq!(output["Condition"], "MintRootKey");
    assert_eq!(output["Value"], json!({ "Ref": "RootKeySecret" }));
}

#[test]
fn other_stacks_declare_keys_only_for_the_companies_the_parameter_names() {
    let template = template();
    let parameters = &template["Parameters"];
    assert_eq!(parameters["ApiKeyResourceCompanies"]["Default"], "", "no company by default");
    assert_eq!(parameters["ApiKeyResourceManagementKeys"]["Default"], "false", "no keys: permission by default");
    let condition = json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": "ApiKeyResourceCompanies" }, ""] }] });
    assert_eq!(template["Conditions"]["ServeApiKeys"], condition, "no company, no function");
    let (function_id, function) = function_of(&template, API_KEY_FUNCTION);
    assert_eq!(function["Condition"], "ServeApiKeys");
    let environment = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(environment["API_KEY_RESOURCE_COMPANIES"], json!({ "Ref": "ApiKeyResourceCompanies" }));
    assert_eq!(environment["API_KEY_RESOURCE_MANAGEMENT_KEYS"], json!({ "Ref": "ApiKeyResourceManagementKeys" }));
    // The secrets' names start where the function's policy allows it to write.
    let prefix = text(&environment["API_KEY_RESOURCE_SECRET_PREFIX"]["Fn::Sub"]);
    assert!(API_KEY_SECRETS.ends_with(&format!(":secret:{prefix}*")), "{prefix}");
    // Its ServiceToken is exported for other stacks.
    let output = &template["Outputs"]["ApiKeyServiceToken"];
    assert_eq!(output["Condition"], "ServeApiKeys");
    assert!(names_resource(&output["Value"], function_id));
    assert_eq!(output["Export"]["Name"], json!({ "Fn::Sub": "${AWS::StackName}-ApiKeyServiceToken" }));
    // The template declares no Custom::ApiKey itself: other stacks do.
    assert!(!resources(&template).values().any(|r| r["Type"] == "Custom::ApiKey"));
}

#[test]
fn only_the_lifecycle_events_function_publishes_on_the_parameters_bus_from_audit_and_identity_records() {
    use apikeys::model::events::{DEFAULT_KEY_EXPIRING_DAYS, MAX_KEY_EXPIRING_DAYS};
    let template = template();
    let parameters = &template["Parameters"];
    assert_eq!(parameters["EventBusName"]["Default"], "default", "the account's default bus");
    let days = &parameters["KeyExpiringDays"];
    assert_eq!((&days["Default"], &days["MinValue"]), (&json!(DEFAULT_KEY_EXPIRING_DAYS), &json!(1)));
    assert_eq!(days["MaxValue"], json!(MAX_KEY_EXPIRING_DAYS), "what the setting accepts");

    let (function_id, function) = function_of(&template, EVENTS_FUNCTION);
    let environment = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(environment["EVENT_BUS_ARN"], json!({ "Fn::Sub": EVENT_BUS }));
    assert_eq!(environment["KEY_EXPIRING_DAYS"], json!({ "Ref": "KeyExpiringDays" }));
    assert_eq!(environment["SCHEDULE_GROUP_NAME"], json!({ "Ref": "KeyExpiryScheduleGroup" }));
    assert_eq!(environment["SCHEDULER_ROLE_ARN"], json!({ "Fn::GetAtt": ["KeyExpirySchedulerRole", "Arn"] }));
    assert_eq!(environment["SCHEDULER_DEAD_LETTER_ARN"], json!({ "Fn::GetAtt": ["StreamFailureQueue", "Arn"] }));
    for local in ["EVENTBRIDGE_ENDPOINT", "SCHEDULER_ENDPOINT"] {
        assert!(!serde_json::to_string(&template).unwrap().contains(local), "{local} is for tests only");
    }

    // Its own event source mapping: audit inserts and identity items only, failures reported
    // per record, bounded retries, what keeps failing kept.
    let events: Vec<&Value> = function["Properties"]["Events"].as_object().unwrap().values().collect();
    assert_eq!(events.len(), 1, "{function_id}: one event source");
    let source = &events[0]["Properties"];
    assert_eq!(events[0]["Type"], "DynamoDB");
    assert_eq!(source["Stream"], json!({ "Fn::GetAtt": ["KeysTable", "StreamArn"] }));
    assert_eq!(source["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    assert_eq!(source["BisectBatchOnFunctionError"], true);
    let retries = source["MaximumRetryAttempts"].as_u64().expect("MaximumRetryAttempts");
    assert!((1..=10).contains(&retries), "a bounded number of retries: {retries}");
    // A batch ends inside the function's Timeout even when every call takes the SDK's whole
    // operation timeout: each record's Scheduler calls, then its events 10 a PutEvents call.
    {
        use apikeys::entry::config::OPERATION_TIMEOUT;
        use apikeys::entry::events::{MAX_ENTRIES_PER_CALL, MAX_EVENTS_PER_RECORD, MAX_SCHEDULER_CALLS_PER_RECORD};
        let batch = source["BatchSize"].as_u64().expect("BatchSize");
        let calls = batch * MAX_SCHEDULER_CALLS_PER_RECORD
            + (batch * MAX_EVENTS_PER_RECORD).div_ceil(MAX_ENTRIES_PER_CALL as u64);
        let timeout = function["Properties"]["Timeout"].as_u64().expect("Timeout");
        assert!(
            calls * OPERATION_TIMEOUT.as_secs() < timeout,
            "{calls} calls of 8 s in a batch of {batch}: Timeout {timeout}"
        );
        assert!(timeout <= 900, "Lambda's most");
    }
    assert!(names_resource(&source["DestinationConfig"]["OnFailure"]["Destination"], "StreamFailureQueue"));
    let patterns: Vec<Value> = list(&source["FilterCriteria"]["Filters"])
        .iter()
        .map(|f| serde_json::from_str(text(&f["Pattern"])).unwrap())
        .collect();
    assert_eq!(
        patterns,
        [
            json!({ "eventName": ["INSERT"], "dynamodb": { "Keys": { "pk": { "S": [{ "prefix": "EVENTS#" }] } } } }),
            json!({ "dynamodb": { "Keys": { "pk": { "S": [{ "prefix": "IDENTITY#" }] }, "sk": { "S": ["IDENTITY"] } } } }),
        ]
    );

    // PutEvents, the schedules and the scheduler's role: granted to this function alone
    // (`each_function_is_granted_exactly_the_actions_it_uses` holds every other to its own).
    for (id, binary, resource) in functions(&template) {
        let policies = serde_json::to_string(&resource["Properties"].get("Policies")).unwrap();
        let publishes = ["events:", "scheduler:", "iam:PassRole"].iter().any(|a| policies.contains(a));
        assert_eq!(publishes, binary == EVENTS_FUNCTION, "{id}");
    }
    let pass_role = list(&function["Properties"]["Policies"][0]["Statement"])
        .iter()
        .find(|s| s["Action"] == json!(["iam:PassRole"]))
        .unwrap();
    assert_eq!(pass_role["Condition"]["StringEquals"]["iam:PassedToService"], "scheduler.amazonaws.com");

    // The schedules publish through a role that may only put events on that bus.
    assert_eq!(resources(&template)["KeyExpiryScheduleGroup"]["Type"], "AWS::Scheduler::ScheduleGroup");
    let role = &resources(&template)["KeyExpirySchedulerRole"]["Properties"];
    let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"], json!({ "Service": "scheduler.amazonaws.com" }));
    assert_eq!(trust["Condition"]["StringEquals"]["aws:SourceAccount"], json!({ "Ref": "AWS::AccountId" }));
    assert_eq!(
        trust["Condition"]["StringEquals"]["aws:SourceArn"],
        json!({ "Fn::GetAtt": ["KeyExpiryScheduleGroup", "Arn"] }),
        "assumed for this stack's schedules only"
    );
    // PutEvents on the bus, and the dead letters of what Scheduler could not publish to the
    // alarmed queue: nothing else.
    let mut grants = BTreeSet::new();
    for policy in list(&role["Policies"]) {
        for statement in list(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"], "Allow");
            assert!(statement.get("Condition").is_none());
            for action in list(&statement["Action"]).iter().map(text) {
                for target in list(&statement["Resource"]) {
                    grants.insert((action.to_owned(), grant_target(target)));
                }
            }
        }
    }
    assert_eq!(
        grants,
        BTreeSet::from([
            ("events:PutEvents".to_owned(), EVENT_BUS.to_owned()),
            ("sqs:SendMessage".to_owned(), "StreamFailureQueue".to_owned()),
        ])
    );
    assert!(role.get("ManagedPolicyArns").is_none());
    let queue = alarm(&template, "Stream records failed");
    assert!(text(&queue["AlarmDescription"]).contains("Scheduler could not publish"), "the dead letters alarm too");
}

/// The DynamoDB actions each function's code uses on the table (`*` for the table, an index
/// name for an index), and its other grants. Every route function first authenticates its caller
/// (GetItem of the lookup item, UpdateItem of rate window, quota and lastUsedAt).
fn expected_grants(binary: &str) -> BTreeSet<(String, String)> {
    const AUTHENTICATE: [&str; 2] = ["GetItem", "UpdateItem"];
    const WRITE_KEY: [&str; 4] = ["GetItem", "PutItem", "UpdateItem", "DeleteItem"];
    let on_table: &[&str] = match binary {
        "create_key" | "create_custom_key" | "import_keys" => &["GetItem", "PutItem", "UpdateItem"],
        // An offset's count is a Query of the listing entries on the table.
        "list_keys" => &["GetItem", "UpdateItem", "BatchGetItem", "Query"],
        "verify_key" => &["GetItem", "UpdateItem", "BatchGetItem"],
        "get_key" | "me" => &AUTHENTICATE,
        CONSOLE_FUNCTION => &[],
        "update_key" | "delete_key" | "roll_key" => &WRITE_KEY,
        "create_identity" => &["GetItem", "PutItem", "UpdateItem"],
        "list_identities" => &["GetItem", "UpdateItem", "BatchGetItem", "Query"],
        "get_identity" => &AUTHENTICATE,
        "update_identity" | "delete_identity" => &WRITE_KEY,
        "list_key_events" => &["GetItem", "UpdateItem", "BatchGetItem", "Query"],
        // The key's or identity's read, then one Query of its usage items.
        "key_usage" | "identity_usage" => &["GetItem", "UpdateItem", "Query"],
        "get_company" => &AUTHENTICATE,
        // The counters (its total) and the cursor's record, then a Query of its COMPANYEVENTS#.
        "list_company_events" => &["GetItem", "UpdateItem", "BatchGetItem", "Query"],
        // The settings, the prefix's claim (put, the old one deleted), the audit record.
        "update_company" => &WRITE_KEY,
        // Per token: the lookup, the settings, the key's revoking write (its lookups deleted).
        "secret_scanning_github" => &WRITE_KEY,
        // A batch's transactions: the marker's conditional put, the counts' updates.
        USAGE_AGGREGATOR_FUNCTION => &["PutItem", "UpdateItem"],
        STREAM_FUNCTION => &["PutItem", "UpdateItem"],
        ROOT_KEY_FUNCTION => &["GetItem", "PutItem", "UpdateItem"],
        API_KEY_FUNCTION => &WRITE_KEY,
        // It reads the stream only (SAM's managed stream policy), never the table.
        EVENTS_FUNCTION => &[],
        other => panic!("no expected grants for {other}"),
    };
    let mut grants: BTreeSet<(String, String)> =
        on_table.iter().map(|a| (format!("dynamodb:{a}"), "KeysTable".to_owned())).collect();
    match binary {
        "list_keys" => {
            grants.extend(INDEXES.iter().map(|i| ("dynamodb:Query".to_owned(), format!("KeysTable/index/{}", i.name))))
        }
        "list_identities" => {
            _ = grants.insert(("dynamodb:Query".into(), format!("KeysTable/index/{}", COMPANY_INDEX.name)))
        }
        ROOT_KEY_FUNCTION => _ = grants.insert(("secretsmanager:PutSecretValue".into(), "RootKeySecret".into())),
        EVENTS_FUNCTION => {
            grants.insert(("events:PutEvents".into(), EVENT_BUS.into()));
            grants.extend(
                ["CreateSchedule", "UpdateSchedule", "DeleteSchedule"]
                    .map(|action| (format!("scheduler:{action}"), EXPIRY_SCHEDULES.to_owned())),
            );
            grants.insert(("iam:PassRole".into(), "KeyExpirySchedulerRole".into()));
        }
        API_KEY_FUNCTION => grants.extend(
            ["CreateSecret", "PutSecretValue", "DescribeSecret", "DeleteSecret"]
                .map(|action| (format!("secretsmanager:{action}"), API_KEY_SECRETS.to_owned())),
        ),
        _ => {}
    }
    grants
}

/// The bus the lifecycle events go to: the `EventBusName` parameter's, in this account and region.
const EVENT_BUS: &str = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}";
/// The keys' expiry schedules: those of the stack's own group only.
const EXPIRY_SCHEDULES: &str =
    "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${KeyExpiryScheduleGroup}/*";

/// The secrets the `Custom::ApiKey` function makes: those named under this stack's prefix only.
const API_KEY_SECRETS: &str =
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/api-keys/*";

/// A policy statement's resource as `expected_grants` writes it.
fn grant_target(resource: &Value) -> String {
    if let Some(sub) = resource.get("Fn::Sub").and_then(Value::as_str) {
        return sub.replace("${KeysTable.Arn}", "KeysTable");
    }
    let id = resource.get("Ref").or_else(|| resource.get("Fn::GetAtt").and_then(|a| a.get(0)));
    let id = id.and_then(Value::as_str).unwrap_or_else(|| panic!("resource {resource}"));
    if resource.get("Fn::GetAtt").is_some() {
        assert_eq!(resource["Fn::GetAtt"][1], "Arn", "{resource}");
    }
    id.to_owned()
}

#[test]
fn each_function_is_granted_exactly_the_actions_it_uses() {
    let template = template();
    for (id, binary, resource) in functions(&template) {
        let mut granted = BTreeSet::new();
        // A function with no table access (the console) declares no policy at all.
        let policies = resource["Properties"].get("Policies").map_or(&[][..], |p| list(p).as_slice());
        for policy in policies {
            let statements =
                policy.get("Statement").unwrap_or_else(|| panic!("{id}: only inline statements, not {policy}"));
            for statement in list(statements) {
                assert_eq!(statement["Effect"], "Allow");
                for action in list(&statement["Action"]).iter().map(text) {
                    for target in list(&statement["Resource"]) {
                        assert!(granted.insert((action.to_owned(), grant_target(target))), "{id}: {action} twice");
                    }
                }
            }
        }
        assert_eq!(granted, expected_grants(binary), "{id}: its policy");
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

/// The event as the test app's company would send it, through the endpoint's handler: its
/// Authorization header holds the app's root key (the committed events hold a placeholder).
async fn run_event(app: &TestApp, event: Value) -> TestResponse {
    let route = route_of(&event);
    send_event(app, route, with_root_key(event, &app.root_key)).await
}

#[tokio::test]
async fn an_authorizer_context_in_an_event_grants_nothing() {
    // Each function authenticates its caller itself: a context claiming a company and `keys:*`
    // (as API Gateway would pass from a Lambda authorizer) is ignored.
    let app = spawn_app().await;
    let mut event = read_event("get_key");
    event["requestContext"]["authorizer"] = json!({ "lambda": { "authenticated": true, "companyId": app.company.to_string(), "permissions": "[\"keys:*\"]" } });
    event["headers"].as_object_mut().unwrap().remove("authorization");
    let response = send_event(&app, route_of(&event), event).await;
    assert_eq!((response.status, response.error_code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
}

async fn send_event(app: &TestApp, route: &Route, event: Value) -> TestResponse {
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
fn every_function_has_an_event() {
    for route in &ROUTES {
        let event = read_event(route.function);
        assert_eq!(route_of(&event).endpoint, route.endpoint, "events/{}.json", route.function);
        assert!(lambda_http::request::from_str(&event.to_string()).is_ok(), "events/{}.json", route.function);
        assert!(event["requestContext"].get("authorizer").is_none(), "events/{}.json: no authorizer", route.function);
    }
    serde_json::from_value::<aws_lambda_events::event::dynamodb::Event>(read_event(STREAM_FUNCTION))
        .expect("events/retention_stream.json");
    // As the runtime reads it: from the bytes (its data is decoded borrowing them).
    let logs = read_event(USAGE_AGGREGATOR_FUNCTION).to_string();
    serde_json::from_str::<aws_lambda_events::event::cloudwatch_logs::LogsEvent>(&logs)
        .expect("events/usage_aggregator.json");
    serde_json::from_value::<aws_lambda_events::event::dynamodb::Event>(read_event(EVENTS_FUNCTION))
        .expect("events/lifecycle_events.json");
    assert_eq!(read_event(ROOT_KEY_FUNCTION)["RequestType"], "Create");
    assert_eq!(read_event(API_KEY_FUNCTION)["ResourceType"], "Custom::ApiKey");
    let mut names: Vec<String> = std::fs::read_dir(project_file("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".json").to_owned())
        .filter(|name| name != "env")
        .collect();
    names.sort();
    let mut expected: Vec<String> = LambdaFunction::all().map(|f| f.name().to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected, "events/ has one event per function (and env.json)");
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
async fn import_keys_event() {
    let app = spawn_app().await;
    let event = read_event("import_keys");
    let response = run_event(&app, event.clone()).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let id = text(&response.body["keys"][0]["id"]).to_owned();
    assert_eq!(app.get_key(&id).await.body["keyPrefix"], "");
    // Sent again (its Idempotency-Key): the same id, nothing imported twice.
    let again = run_event(&app, event).await;
    assert_eq!(again.body, response.body);
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
async fn me_event() {
    let app = spawn_app().await;
    let response = run_event(&app, read_event("me")).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["companyId"], json!(app.company.to_string()));
    assert_eq!(response.body["permissions"], json!(["keys:*"]));
}

#[test]
fn console_event() {
    // The console's event, as the `console` function answers it: an asset, with no credential.
    let event = read_event(CONSOLE_FUNCTION);
    let route = STATIC_ROUTES.iter().find(|r| format!("{} {}", r.method, r.path) == text(&event["routeKey"]));
    assert!(route.is_some(), "events/console.json's routeKey is a console route");
    let request = lambda_http::request::from_str(&event.to_string()).expect("lambda_http reads the event");
    let response = console::answer(request.method(), request.uri().path());
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(response.headers()["content-security-policy"], console::CONTENT_SECURITY_POLICY);
}

#[tokio::test]
async fn a_committed_event_as_it_is_answers_a_json_401() {
    // Its Authorization header holds a well-formed key that is in no table.
    let app = spawn_app().await;
    let event = read_event("get_key");
    let response = send_event(&app, route_of(&event), event).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{:?}", response.body);
    assert!(response.body["error"]["code"].is_string(), "{:?}", response.body);
}

/// The event pointed at `id`: the committed identity events name a made-up identity.
fn at_identity(mut event: Value, id: &str) -> Value {
    let path = format!("/identities/{id}");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["identityId"] = json!(id);
    event
}

/// Creates an identity through the API; its id.
async fn identity_of(app: &TestApp, external_id: &str) -> String {
    let body = json!({ "externalId": external_id });
    let response = app.send(Method::POST, "/identities", Some(&app.root_key), Some(&body), &[]).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    text(&response.body["id"]).to_owned()
}

#[tokio::test]
async fn identity_events() {
    let app = spawn_app().await;
    let event = read_event("create_identity");
    let sent = event_body(&event);
    let created = run_event(&app, event.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["externalId"], sent["externalId"]);
    assert_eq!(created.body["ratelimits"][0]["autoApply"], true);
    assert_eq!(run_event(&app, event).await.status, StatusCode::CONFLICT, "its externalId is taken now");
    let id = text(&created.body["id"]).to_owned();

    let listed = run_event(&app, read_event("list_identities")).await;
    assert_eq!((listed.status, listed.body["total"].clone()), (StatusCode::OK, json!(1)), "{:?}", listed.body);
    let got = run_event(&app, at_identity(read_event("get_identity"), &id)).await;
    assert_eq!((got.status, got.body["id"].clone()), (StatusCode::OK, json!(id)));
    let update = read_event("update_identity");
    let patched = run_event(&app, at_identity(update.clone(), &id)).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["meta"], event_body(&update)["meta"]);
    assert_eq!(patched.header("etag"), "\"2\"");
    let other = identity_of(&app, "cust_43").await;
    let deleted = run_event(&app, at_identity(read_event("delete_identity"), &other)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    // As committed, the events name an identity of no company.
    assert_eq!(run_event(&app, read_event("get_identity")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn usage_events() {
    let app = spawn_app().await;
    let event = read_event("key_usage");
    assert_eq!(run_event(&app, event.clone()).await.status, StatusCode::NOT_FOUND, "no such key yet");
    // The key made before the sample lines were logged (2025-12-01), so they are its usage.
    let made = chrono::DateTime::parse_from_rfc3339("2025-11-20T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    app.clock.advance(made - app.app.clock.now());
    create_key_of(&app, &event).await;
    let usage = run_event(&app, event).await;
    assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.body);
    assert_eq!((&usage.body["granularity"], &usage.body["totals"]), (&json!("day"), &json!({})));
    // events/usage_aggregator.json's lines (2 VALID and 1 RATE_LIMITED of that key, in that
    // range), for this test's company.
    let sample = read_event(USAGE_AGGREGATOR_FUNCTION).to_string();
    let sample: aws_lambda_events::event::cloudwatch_logs::LogsEvent = serde_json::from_str(&sample).unwrap();
    let ours = format!("\"company\":\"{}\"", app.company);
    let lines: Vec<String> =
        sample.aws_logs.data.log_events.iter().map(|e| e.message.replace("\"company\":\"acme\"", &ours)).collect();
    let logged = chrono::DateTime::from_timestamp_millis(sample.aws_logs.data.log_events[0].timestamp).unwrap();
    let batch = crate::helpers::log_batch(&lines.iter().map(String::as_str).collect::<Vec<_>>(), logged);
    let batch = serde_json::from_str(&batch.to_string()).unwrap();
    let added = apikeys::entry::usage_aggregator::handle_logs(&app.app.store, &batch).await.unwrap();
    assert_eq!(added.written, 2, "the key's day and hour");
    let usage = run_event(&app, read_event("key_usage")).await;
    assert_eq!(usage.body["totals"], json!({ "VALID": 2, "RATE_LIMITED": 1 }), "{:?}", usage.body);
    let id = identity_of(&app, "cust_42").await;
    let usage = run_event(&app, at_identity(read_event("identity_usage"), &id)).await;
    assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.body);
    assert_eq!((&usage.body["granularity"], &usage.body["buckets"]), (&json!("day"), &json!([])));
}

#[tokio::test]
async fn company_events() {
    let mut app = spawn_app().await;
    let got = run_event(&app, read_event("get_company")).await;
    assert_eq!((got.status, &got.body["leakPolicy"]), (StatusCode::OK, &json!("revoke")), "{:?}", got.body);
    // The committed prefix may be another test's company's by now: this one takes its own.
    let mut event = read_event("update_company");
    assert_eq!(event_body(&event)["keyPrefix"], "acmeco");
    let own = format!("p{}", &uuid::Uuid::now_v7().simple().to_string()[20..32]);
    event["body"] = json!({ "keyPrefix": own, "leakPolicy": "revoke" }).to_string().into();
    let patched = run_event(&app, event).await;
    assert_eq!((patched.status, &patched.body["keyPrefix"]), (StatusCode::OK, &json!(own)), "{:?}", patched.body);
    let trail = run_event(&app, read_event("list_company_events")).await;
    assert_eq!(trail.status, StatusCode::OK, "{:?}", trail.body);
    assert_eq!((&trail.body["total"], &trail.body["count"]), (&json!(1), &json!(1)), "{:?}", trail.body);
    assert_eq!(trail.body["data"][0]["changes"], json!({ "keyPrefix": own }), "the policy stayed revoke");

    // GitHub's documented sample report, signed with GitHub's documented key: a token of no key.
    let github = r#"{"public_keys":[{"key_identifier":"bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c","key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd\nAjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==\n-----END PUBLIC KEY-----\n","is_current":true}]}"#;
    let untrusting = run_event(&app, read_event("secret_scanning_github")).await;
    assert_eq!(untrusting.status, StatusCode::UNAUTHORIZED, "no scanner trusted: {:?}", untrusting.body);
    app.app.scanning_keys =
        Some(std::sync::Arc::new(apikeys::model::secret_scanning::TrustedKeys::parse(github).unwrap()));
    let answered = run_event(&app, read_event("secret_scanning_github")).await;
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
    assert_eq!(answered.body[0]["label"], "false_positive");
    assert_eq!(answered.body[0]["token_type"], "some_type");
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
        Endpoint::ImportKeys,
        Endpoint::ListKeyEvents,
        Endpoint::Me,
        // identity_events
        Endpoint::CreateIdentity,
        Endpoint::ListIdentities,
        Endpoint::GetIdentity,
        Endpoint::UpdateIdentity,
        Endpoint::DeleteIdentity,
        // usage_events
        Endpoint::KeyUsage,
        Endpoint::IdentityUsage,
        // company_events
        Endpoint::GetCompany,
        Endpoint::UpdateCompany,
        Endpoint::ListCompanyEvents,
        Endpoint::SecretScanningGithub,
    ];
    for route in &ROUTES {
        assert!(
            covered.contains(&route.endpoint),
            "{:?} has no event test in tests/api/operations/deploy.rs",
            route.endpoint
        );
    }
}

// --- The root key custom resource (Custom::RootKey) ------------------------------------------

/// Secrets Manager's place: what the function wrote, or a refusal like an IAM denial.
#[derive(Default)]
struct Secrets {
    written: std::sync::Mutex<Vec<(String, Value)>>,
    refuse: bool,
}

impl SecretStore for Secrets {
    async fn put_secret(&self, secret_id: &str, value: String) -> Result<(), String> {
        if self.refuse {
            return Err("AccessDeniedException: not authorized to perform secretsmanager:PutSecretValue".into());
        }
        let value = serde_json::from_str(&value).expect("the secret is JSON");
        self.written.lock().unwrap().push((secret_id.to_owned(), value));
        Ok(())
    }
}

impl Secrets {
    fn written(&self) -> Vec<(String, Value)> {
        self.written.lock().unwrap().clone()
    }
}

/// The resource's answer to `request`, from a stack of `company`, on the test's table.
async fn answer_of(app: &TestApp, company: &str, secrets: &impl SecretStore, request: Value) -> Answer {
    let now = app.app.clock.now();
    root_key_resource::handle(&stack_of(company), &app.app.store, secrets, now, request).await.unwrap()
}

/// The function of a stack whose `RootKeyCompany` is `company`, answering on S3 only.
fn stack_of(company: &str) -> RootKeyResource {
    RootKeyResource::new(CompanyId::parse(company, "company").unwrap(), ResponseUrlPolicy::s3_only())
}

/// events/root_key_resource.json as `request_type`, for `company`.
fn resource_request(request_type: &str, company: &str) -> Value {
    let mut event = read_event(ROOT_KEY_FUNCTION);
    event["RequestType"] = json!(request_type);
    event["ResourceProperties"]["Company"] = json!(company);
    event
}

/// CloudFormation's request fields every answer repeats.
pub(crate) fn assert_answers(answer: &Answer, request: &Value, status: &str) {
    assert_eq!(answer.response_url.as_str(), text(&request["ResponseURL"]));
    let body = &answer.body;
    assert_eq!(body["Status"], status, "{body}");
    for field in ["StackId", "RequestId", "LogicalResourceId"] {
        assert_eq!(body[field], request[field], "{field}");
    }
    assert!(body["PhysicalResourceId"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    assert!(body["NoEcho"].is_boolean());
    assert!(body["Reason"].is_string());
}

#[tokio::test]
async fn the_root_key_resource_mints_a_working_root_key_kept_only_in_the_secret() {
    let app = spawn_app().await;
    let company = unique("acme");
    let secrets = Secrets::default();
    let request = resource_request("Create", &company);
    let answer = answer_of(&app, &company, &secrets, request.clone()).await;
    assert_answers(&answer, &request, "SUCCESS");
    assert_eq!(answer.body["NoEcho"], true);

    let written = secrets.written();
    assert_eq!(written.len(), 1, "one secret value");
    let (secret_id, secret) = &written[0];
    assert_eq!(secret_id, text(&request["ResourceProperties"]["SecretId"]));
    assert_eq!(secret["companyId"], json!(company));
    let (key, key_id) = (text(&secret["key"]), text(&secret["keyId"]));
    assert!(key.starts_with("sk_"), "{secret}");
    assert_eq!(answer.body["PhysicalResourceId"], json!(format!("{company}/{key_id}")));
    assert_eq!(answer.body["Data"], json!({ "KeyId": key_id, "CompanyId": company }));
    assert!(!answer.body.to_string().contains(key), "the key is never in the answer");

    // The key is a root key of that company.
    let listed = app.send(Method::GET, "/keys?status=all", Some(key), None, &[]).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["data"][0]["id"], json!(key_id));
    assert_eq!(listed.body["data"][0]["companyId"], json!(company));
}

#[tokio::test]
async fn the_root_key_resource_mints_again_only_when_its_properties_change_and_delete_keeps_the_key() {
    let app = spawn_app().await;
    let secrets = Secrets::default();
    let company = unique("acme");
    let created = answer_of(&app, &company, &secrets, resource_request("Create", &company)).await;
    let physical_id = created.body["PhysicalResourceId"].clone();
    let key = secrets.written()[0].1["key"].as_str().unwrap().to_owned();

    // An update that changes nothing the resource reads (e.g. the function's code) mints nothing.
    let mut same = resource_request("Update", &company);
    same["PhysicalResourceId"] = physical_id.clone();
    same["OldResourceProperties"] = same["ResourceProperties"].clone();
    let answer = answer_of(&app, &company, &secrets, same.clone()).await;
    assert_answers(&answer, &same, "SUCCESS");
    assert_eq!(answer.body["PhysicalResourceId"], physical_id);
    assert_eq!(secrets.written().len(), 1);

    // Another company: a new key, a new physical id (CloudFormation then deletes the old one).
    let other = unique("globex");
    let mut moved = resource_request("Update", &other);
    moved["PhysicalResourceId"] = physical_id.clone();
    moved["OldResourceProperties"] = same["ResourceProperties"].clone();
    let answer = answer_of(&app, &other, &secrets, moved.clone()).await;
    assert_answers(&answer, &moved, "SUCCESS");
    assert_ne!(answer.body["PhysicalResourceId"], physical_id);
    assert_eq!(secrets.written().len(), 2);
    assert_eq!(secrets.written()[1].1["companyId"], json!(other));

    // Delete answers at once and leaves the key (and the secret) alone.
    let mut delete = resource_request("Delete", &company);
    delete["PhysicalResourceId"] = physical_id.clone();
    let answer = answer_of(&app, &company, &secrets, delete.clone()).await;
    assert_answers(&answer, &delete, "SUCCESS");
    assert_eq!(answer.body["PhysicalResourceId"], physical_id);
    assert_eq!(secrets.written().len(), 2);
    assert_eq!(app.send(Method::GET, "/keys", Some(&key), None, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_create_delivered_twice_mints_one_root_key() {
    // Lambda retries an asynchronous invocation whose answer failed, and CloudFormation may send
    // a request again: the same RequestId must not leave a second root key behind.
    let app = spawn_app().await;
    let secrets = Secrets::default();
    let company = unique("acme");
    let request = resource_request("Create", &company);
    for _ in 0..2 {
        let answer = answer_of(&app, &company, &secrets, request.clone()).await;
        assert_answers(&answer, &request, "SUCCESS");
    }
    let written = secrets.written();
    assert_eq!(written.len(), 2, "the secret is written again, with the same value");
    assert_eq!(written[0].1, written[1].1, "the same key both times");
    let key = text(&written[0].1["key"]);
    let listed = app.send(Method::GET, "/keys?status=all", Some(key), None, &[]).await;
    assert_eq!(listed.body["total"], 1, "one root key: {:?}", listed.body);
}

#[tokio::test]
async fn the_root_key_resource_answers_failures_too_without_the_key() {
    let app = spawn_app().await;
    // A company id the API would refuse.
    let request = resource_request("Create", "not a company!");
    let answer = answer_of(&app, "acme", &Secrets::default(), request.clone()).await;
    assert_answers(&answer, &request, "FAILED");
    assert!(text(&answer.body["Reason"]).contains("Company"), "{}", answer.body);

    // Properties missing.
    let mut bare = resource_request("Create", "acme");
    bare["ResourceProperties"] = json!({ "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:f" });
    let answer = answer_of(&app, "acme", &Secrets::default(), bare.clone()).await;
    assert_answers(&answer, &bare, "FAILED");
    // …but deleting such a resource succeeds, so a failed stack can roll back.
    bare["RequestType"] = json!("Delete");
    let answer = answer_of(&app, "acme", &Secrets::default(), bare.clone()).await;
    assert_answers(&answer, &bare, "SUCCESS");

    // Secrets Manager refuses: FAILED, naming the key to delete, never its secret.
    let refusing = Secrets { refuse: true, ..Secrets::default() };
    let company = unique("acme");
    let request = resource_request("Create", &company);
    let answer = answer_of(&app, &company, &refusing, request.clone()).await;
    assert_answers(&answer, &request, "FAILED");
    let reason = text(&answer.body["Reason"]);
    assert!(reason.contains("AccessDeniedException") && reason.contains("delete that key"), "{reason}");
    assert!(!answer.body.to_string().contains("sk_"), "{}", answer.body);

    // Not a custom resource request: there is nowhere to answer.
    assert!(
        root_key_resource::handle(
            &stack_of("acme"),
            &app.app.store,
            &Secrets::default(),
            app.app.clock.now(),
            json!({})
        )
        .await
        .is_err()
    );
}

/// No key item of `company` in the table.
async fn nothing_minted_for(app: &TestApp, company: &str) -> bool {
    crate::table_reads::scan_prefix(&app.client, &app.table, &format!("KEY#{company}#")).await.is_empty()
}

/// A request cannot choose whose root key is minted: a `Company` property naming another
/// company than the stack's (`ROOT_KEY_COMPANY`) is answered FAILED with nothing minted, on
/// Create as on Update; without a `Company` property the stack's own company's key is minted.
#[tokio::test]
async fn the_root_key_resource_mints_only_the_stacks_company() {
    let app = spawn_app().await;
    let (ours, theirs) = (unique("acme"), unique("globex"));
    let stack = stack_of(&ours);
    let secrets = Secrets::default();
    for request_type in ["Create", "Update"] {
        let mut request = resource_request(request_type, &theirs);
        if request_type == "Update" {
            request["PhysicalResourceId"] = json!(format!("{ours}/earlier"));
            request["OldResourceProperties"] = resource_request("Create", &ours)["ResourceProperties"].clone();
        }
        let answer = root_key_resource::handle(&stack, &app.app.store, &secrets, app.app.clock.now(), request.clone())
            .await
            .unwrap();
        assert_answers(&answer, &request, "FAILED");
        assert!(text(&answer.body["Reason"]).contains("ROOT_KEY_COMPANY"), "{}", answer.body);
    }
    assert!(secrets.written().is_empty(), "no secret written");
    assert!(nothing_minted_for(&app, &theirs).await && nothing_minted_for(&app, &ours).await);

    let mut request = resource_request("Create", &ours);
    request["ResourceProperties"].as_object_mut().unwrap().remove("Company");
    let answer = root_key_resource::handle(&stack, &app.app.store, &secrets, app.app.clock.now(), request.clone())
        .await
        .unwrap();
    assert_answers(&answer, &request, "SUCCESS");
    assert_eq!(secrets.written()[0].1["companyId"], json!(ours));
}

/// The answer goes only to a presigned https S3 URL. To any other (plain http, another host,
/// no signature) no answer can be sent: the handler fails, nothing is minted, and the error
/// shows the URL without its query string.
#[tokio::test]
async fn the_root_key_resource_answers_only_on_a_presigned_s3_url() {
    let app = spawn_app().await;
    let company = unique("acme");
    let secrets = Secrets::default();
    for url in [
        "http://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/stack?X-Amz-Signature=c0ffee",
        "https://attacker.example.com/stack?X-Amz-Signature=c0ffee",
        "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com.attacker.example/s?Signature=c0ffee",
        "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/stack",
        "http://127.0.0.1:9/stack?X-Amz-Signature=c0ffee",
    ] {
        let mut request = resource_request("Create", &company);
        request["ResponseURL"] = json!(url);
        let error =
            root_key_resource::handle(&stack_of(&company), &app.app.store, &secrets, app.app.clock.now(), request)
                .await
                .unwrap_err();
        assert!(error.contains("ResponseURL") && !error.contains("c0ffee"), "{url}: {error}");
    }
    assert!(secrets.written().is_empty(), "no secret written");
    assert!(nothing_minted_for(&app, &company).await);
}

/// One HTTP request received on 127.0.0.1, answered `status`: (request line and headers, body).
pub(crate) async fn receive_one(listener: tokio::net::TcpListener, status: u16) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                socket.write_all(format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n").as_bytes()).await.unwrap();
                return (head.to_owned(), body.to_owned());
            }
        }
        assert!(n > 0, "the connection closed early");
    }
}

#[tokio::test]
async fn the_answer_is_put_on_the_response_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = ResponseUrlPolicy::allowing_local_http(&listener.local_addr().unwrap().to_string());
    let url = format!("http://{}/stack/RootKey?X-Amz-Signature=example", listener.local_addr().unwrap());
    let body = json!({ "Status": "SUCCESS", "PhysicalResourceId": "acme/1", "NoEcho": true });
    let answer = Answer { response_url: ResponseUrl::parse(&url, &local).unwrap(), body: body.clone() };
    let (received, sent) = tokio::join!(receive_one(listener, 200), root_key_resource::send_answer(&answer));
    sent.unwrap();
    let (head, received_body) = received;
    assert!(head.starts_with("PUT /stack/RootKey?X-Amz-Signature=example HTTP/1.1"), "{head}");
    // The presigned URL signs no content type: the request must send an empty one.
    assert!(head.lines().any(|l| l.eq_ignore_ascii_case("content-type: ")), "{head}");
    assert_eq!(serde_json::from_str::<Value>(&received_body).unwrap(), body);

    // A refusal from the URL is an error for the runner to report.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = ResponseUrlPolicy::allowing_local_http(&listener.local_addr().unwrap().to_string());
    let url = format!("http://{}/x?X-Amz-Signature=example", listener.local_addr().unwrap());
    let answer = Answer { response_url: ResponseUrl::parse(&url, &local).unwrap(), body };
    let server = async {
        for _ in 0..3 {
            let listener = &listener;
            let (mut socket, _) = listener.accept().await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            socket.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        }
    };
    let (_, sent) = tokio::join!(server, root_key_resource::send_answer(&answer));
    assert!(sent.unwrap_err().contains("403"));
}
