//! The company's audit trail (`GET /company/events`): one entry per `PATCH /company` that
//! changed something, newest first, with only what it changed and the key that changed it;
//! read with `keys:read`, paged like a key's events, never across companies.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, spawn_app};

const EVENTS: &str = "/company/events";

impl TestApp {
    async fn company_events(&self, key: &str, query: &str) -> TestResponse {
        self.send(Method::GET, &format!("{EVENTS}{query}"), Some(key), None, &[]).await
    }

    async fn change_company(&self, key: &str, body: Value, headers: &[(&str, &str)]) -> TestResponse {
        let patched = self.send(Method::PATCH, "/company", Some(key), Some(&body), headers).await;
        assert_eq!(patched.status, StatusCode::OK, "{body}: {:?}", patched.body);
        patched
    }

    /// The id of the key `key`, as `GET /me` names it.
    async fn key_id_of(&self, key: &str) -> String {
        self.send(Method::GET, "/me", Some(key), None, &[]).await.body["keyId"].as_str().unwrap().to_owned()
    }
}

/// The `changes` of each entry of a page, in its order.
fn changes(page: &TestResponse) -> Vec<Value> {
    page.body["data"].as_array().unwrap().iter().map(|e| e["changes"].clone()).collect()
}

fn prefix() -> String {
    format!("p{}", &uuid::Uuid::now_v7().simple().to_string()[20..32])
}

#[tokio::test]
async fn each_change_is_listed_newest_first_with_what_it_changed_and_who() {
    let app = spawn_app().await;
    let none = app.company_events(&app.root_key, "").await;
    assert_eq!(none.status, StatusCode::OK, "{:?}", none.body);
    assert_eq!(
        none.body,
        json!({ "status": 200, "total": 0, "count": 0, "nextUrl": null, "previousUrl": null, "data": [] })
    );

    let prefix = prefix();
    app.change_company(&app.root_key, json!({ "keyPrefix": prefix }), &[]).await;
    app.advance(60);
    app.change_company(&app.root_key, json!({ "leakPolicy": "notify" }), &[]).await;
    app.settle_calls().await;
    let listed = app.company_events(&app.root_key, "").await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    // The caller is kept from its PATCH: a page is one BatchGetItem and one Query.
    assert_eq!(app.calls_made().await, ["BatchGetItem", "Query"]);
    assert_eq!((&listed.body["total"], &listed.body["count"]), (&json!(2), &json!(2)));
    assert_eq!(changes(&listed), [json!({ "leakPolicy": "notify" }), json!({ "keyPrefix": prefix })]);
    let actor = app.key_id_of(&app.root_key).await;
    let newest = &listed.body["data"][0];
    let mut fields: Vec<&str> = newest.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["action", "actor", "at", "changes", "id"], "nothing more: {newest}");
    assert_eq!((&newest["action"], &newest["actor"]), (&json!("settings_changed"), &json!(actor)));
    assert_eq!(newest["at"], "2030-01-01T00:01:00Z", "{newest}");
    assert_eq!(listed.body["data"][1]["at"], "2030-01-01T00:00:00Z");

    // The prefix back to none shows as null; total follows the settings' version.
    app.change_company(&app.root_key, json!({ "keyPrefix": null }), &[]).await;
    let etag = app.send(Method::GET, "/company", Some(&app.root_key), None, &[]).await.header("etag").to_owned();
    let listed = app.company_events(&app.root_key, "").await;
    assert_eq!((listed.body["total"].to_string(), etag), ("3".to_owned(), "\"3\"".to_owned()));
    assert_eq!(changes(&listed)[0], json!({ "keyPrefix": null }));
}

#[tokio::test]
async fn a_page_of_one_walks_the_trail_by_cursor_and_by_offset() {
    let app = spawn_app().await;
    app.change_company(&app.root_key, json!({ "keyPrefix": prefix() }), &[]).await;
    app.change_company(&app.root_key, json!({ "leakPolicy": "notify" }), &[]).await;
    let all = app.company_events(&app.root_key, "").await;
    let ids: Vec<&str> = all.body["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();

    let first = app.company_events(&app.root_key, "?limit=1").await;
    assert_eq!((&first.body["count"], &first.body["total"]), (&json!(1), &json!(2)));
    assert_eq!(first.body["data"][0], all.body["data"][0]);
    assert_eq!(first.body["nextUrl"], format!("{EVENTS}?limit=1&startingAfter={}", ids[0]));
    assert_eq!(first.body["previousUrl"], Value::Null);
    let second = app.send(Method::GET, first.body["nextUrl"].as_str().unwrap(), Some(&app.root_key), None, &[]).await;
    assert_eq!(second.body["data"][0], all.body["data"][1]);
    assert_eq!(second.body["nextUrl"], Value::Null, "the oldest: no page after it");
    assert_eq!(second.body["previousUrl"], format!("{EVENTS}?limit=1&endingBefore={}", ids[1]));
    let back =
        app.send(Method::GET, second.body["previousUrl"].as_str().unwrap(), Some(&app.root_key), None, &[]).await;
    assert_eq!(back.body["data"], first.body["data"]);
    let skipped = app.company_events(&app.root_key, "?limit=1&offset=1").await;
    assert_eq!(skipped.body["data"], second.body["data"]);
    assert_eq!(skipped.body["previousUrl"], format!("{EVENTS}?limit=1"));
    let past = app.company_events(&app.root_key, "?offset=5").await;
    assert_eq!((&past.body["count"], &past.body["total"]), (&json!(0), &json!(2)));

    // The key events' errors: a cursor that is no event of the company, no status, bounds.
    for (query, field) in [
        ("?startingAfter=no-such-event", "startingAfter"),
        ("?endingBefore=no-such-event", "endingBefore"),
        ("?status=all", "status"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?offset=1001", "offset"),
        ("?limit=1&limit=2", "limit"),
    ] {
        let refused = app.company_events(&app.root_key, query).await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::BAD_REQUEST, field), "{query}");
    }
    let unknown = app.company_events(&app.root_key, "?startingAfter=no-such-event").await;
    assert_eq!(unknown.body["error"]["message"], "startingAfter is not an event of this company");
}

#[tokio::test]
async fn keys_read_reads_the_trail_and_a_caller_without_it_is_refused_and_pays_nothing() {
    let app = spawn_app().await;
    app.change_company(&app.root_key, json!({ "leakPolicy": "notify" }), &[]).await;
    // A scope narrows what a key grants when verified, not the management calls it may make.
    let scoped = json!({ "userId": "r", "acl": [{ "permissions": ["keys:read"], "scope": { "productId": ["p1"] } }] });
    let (_, reader) = app.create_key_pair(&scoped).await;
    let read = app.company_events(&reader, "").await;
    assert_eq!((read.status, &read.body["total"]), (StatusCode::OK, &json!(1)), "{:?}", read.body);
    let settings = app.send(Method::GET, "/company", Some(&reader), None, &[]).await;
    assert_eq!((settings.status, &settings.body["leakPolicy"]), (StatusCode::OK, &json!("notify")));

    // A writer limited to one call an hour: refused here (with no write), its one call left.
    let limited = json!({
        "userId": "w",
        "acl": [{ "permissions": ["keys:write", "keys:verify"] }],
        "rateLimit": { "limit": 1, "periodSeconds": 3600 },
    });
    let (_, writer) = app.create_key_pair(&limited).await;
    let items = app.item_count().await;
    for _ in 0..2 {
        let refused = app.company_events(&writer, "").await;
        assert_eq!((refused.status, refused.error_code()), (StatusCode::FORBIDDEN, "forbidden"), "{:?}", refused.body);
    }
    assert_eq!(app.item_count().await, items, "a refused read writes nothing, its rate window neither");
    let made = app.send(Method::POST, "/keys", Some(&writer), Some(&json!({ "userId": "u" })), &[]).await;
    assert_eq!(made.status, StatusCode::CREATED, "the refused calls cost nothing: {:?}", made.body);
    let over = app.send(Method::POST, "/keys", Some(&writer), Some(&json!({ "userId": "u" })), &[]).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "its limit of one is what let the first through");
    let (_, verifier) =
        app.create_key_pair(&json!({ "userId": "v", "acl": [{ "permissions": ["keys:verify"] }] })).await;
    assert_eq!(app.company_events(&verifier, "").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.company_events("sk_nope", "").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_company_sees_only_its_own_trail() {
    let app = spawn_app().await;
    let ours = prefix();
    app.change_company(&app.root_key, json!({ "keyPrefix": ours, "leakPolicy": "notify" }), &[]).await;
    let our_trail = app.company_events(&app.root_key, "").await;
    let our_event = our_trail.body["data"][0]["id"].as_str().unwrap().to_owned();

    let (rival_company, rival) = app.other_company_root_key().await;
    let theirs = app.company_events(&rival, "").await;
    assert_eq!((theirs.status, &theirs.body["total"], &theirs.body["data"]), (StatusCode::OK, &json!(0), &json!([])));
    let probe = app.company_events(&rival, &format!("?startingAfter={our_event}")).await;
    assert_eq!(
        (probe.status, probe.error_field()),
        (StatusCode::BAD_REQUEST, "startingAfter"),
        "another company's event is no event of theirs: {:?}",
        probe.body
    );

    app.change_company(&rival, json!({ "leakPolicy": "notify" }), &[]).await;
    let theirs = app.company_events(&rival, "").await;
    assert_eq!((&theirs.body["total"], changes(&theirs)), (&json!(1), vec![json!({ "leakPolicy": "notify" })]));
    assert_eq!(theirs.body["data"][0]["actor"], app.key_id_of(&rival).await);
    let text = theirs.body.to_string();
    let our_actor = app.key_id_of(&app.root_key).await;
    for ours in [ours.as_str(), our_event.as_str(), our_actor.as_str(), app.company.as_str()] {
        assert!(!text.contains(ours), "{ours} shown to another company: {text}");
    }
    let again = app.company_events(&app.root_key, "").await;
    assert_eq!(again.body, our_trail.body, "theirs is not in ours either");
    assert!(!again.body.to_string().contains(rival_company.as_str()));
}

#[tokio::test]
async fn a_replayed_patch_or_one_that_changes_nothing_records_nothing() {
    let app = spawn_app().await;
    let once = [("idempotency-key", "company-events-1")];
    let first = app.change_company(&app.root_key, json!({ "leakPolicy": "notify" }), &once).await;
    let replay = app.change_company(&app.root_key, json!({ "leakPolicy": "notify" }), &once).await;
    assert_eq!(replay.body, first.body);
    assert_eq!(app.company_events(&app.root_key, "").await.body["total"], 1, "one entry for the two requests");

    // The values the settings already hold: answered 200 as they are, no write at all.
    let items = app.item_count().await;
    for same in [json!({ "leakPolicy": "notify" }), json!({ "keyPrefix": null }), json!({})] {
        let unchanged = app.change_company(&app.root_key, same.clone(), &[]).await;
        assert_eq!(unchanged.header("etag"), "\"1\"", "{same}");
    }
    assert_eq!(app.item_count().await, items, "no event, no settings version");
    let listed = app.company_events(&app.root_key, "").await;
    assert_eq!((&listed.body["total"], changes(&listed)), (&json!(1), vec![json!({ "leakPolicy": "notify" })]));
    // A PATCH that sets one field to its value and changes the other records the other only.
    let prefix = prefix();
    app.change_company(&app.root_key, json!({ "keyPrefix": prefix, "leakPolicy": "notify" }), &[]).await;
    assert_eq!(changes(&app.company_events(&app.root_key, "?limit=1").await), [json!({ "keyPrefix": prefix })]);
}

#[tokio::test]
async fn a_record_written_before_only_the_changes_were_kept_shows_the_whole_settings() {
    let app = spawn_app().await;
    app.change_company(&app.root_key, json!({ "leakPolicy": "notify" }), &[]).await;
    // Two records as the first layout wrote them, older than the one above: the settings after
    // the change, a prefix left out when there was none.
    let older = |id: &str, prefix: Option<&str>, version: i64| {
        let mut item = std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("COMPANYEVENTS#{}", app.company))),
            ("sk".to_owned(), AttributeValue::S(format!("EVENT#{id}"))),
            ("action".to_owned(), AttributeValue::S("settings_changed".into())),
            ("actor".to_owned(), AttributeValue::S("root-before".into())),
            ("at".to_owned(), AttributeValue::S("2029-12-31T00:00:00Z".into())),
            ("leakPolicy".to_owned(), AttributeValue::S("revoke".into())),
            ("settingsVersion".to_owned(), AttributeValue::N(version.to_string())),
            ("schemaVersion".to_owned(), AttributeValue::N("1".into())),
        ]);
        if let Some(prefix) = prefix {
            item.insert("keyPrefix".to_owned(), AttributeValue::S(prefix.into()));
        }
        app.client.put_item().table_name(&app.table).set_item(Some(item)).send()
    };
    older("0190a1b2-0000-7000-8000-000000000001", Some("oldco"), 1).await.unwrap();
    older("0190a1b2-0000-7000-8000-000000000002", None, 2).await.unwrap();
    let listed = app.company_events(&app.root_key, "").await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(
        changes(&listed),
        [
            json!({ "leakPolicy": "notify" }),
            json!({ "keyPrefix": null, "leakPolicy": "revoke" }),
            json!({ "keyPrefix": "oldco", "leakPolicy": "revoke" }),
        ]
    );
    assert_eq!(listed.body["data"][2]["actor"], "root-before");
}

#[tokio::test]
async fn the_trail_matches_its_schema_and_stays_readable_when_the_settings_do_not_parse() {
    let app = spawn_app().await;
    app.change_company(&app.root_key, json!({ "keyPrefix": prefix(), "leakPolicy": "notify" }), &[]).await;
    app.change_company(&app.root_key, json!({ "keyPrefix": null }), &[]).await;
    let listed = app.company_events(&app.root_key, "").await;
    let schema = crate::contract::openapi::spec().pointer("/components/schemas/CompanyEventList").unwrap();
    let errors =
        crate::contract::openapi::conforms(schema, &listed.body, crate::contract::openapi::Direction::Response);
    assert_eq!(errors, Vec::<String>::new(), "{:?}", listed.body);

    // Settings spoiled in the table (a hand edit): GET /company fails, the trail that shows
    // who changed them does not.
    let counters = [
        ("pk".to_owned(), AttributeValue::S(format!("COMPANY#{}", app.company))),
        ("sk".to_owned(), AttributeValue::S("COUNTERS".into())),
    ];
    app.client
        .update_item()
        .table_name(&app.table)
        .set_key(Some(counters.into_iter().collect()))
        .update_expression("SET leakPolicy = :bogus")
        .expression_attribute_values(":bogus", AttributeValue::S("bogus".into()))
        .send()
        .await
        .unwrap();
    let settings = app.send(Method::GET, "/company", Some(&app.root_key), None, &[]).await;
    assert_eq!(settings.status, StatusCode::INTERNAL_SERVER_ERROR);
    let listed = app.company_events(&app.root_key, "").await;
    assert_eq!((listed.status, &listed.body["total"]), (StatusCode::OK, &json!(2)), "{:?}", listed.body);
}
