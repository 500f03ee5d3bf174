//! What an offset costs: `offset=1000` against `offset=0`, over 1,010 keys of each status and an
//! audit trail of 1,010 events, every key and event at the caps. The skipped items are counted
//! over their listing entries (a few bytes each), so skipping 1,000 of them is at most two more
//! DynamoDB calls and at most 1 MB more read capacity (128 units: the count and the pages are
//! eventually consistent reads, 8 KB a unit; strongly consistent, 1 MB would be 256) whatever
//! the items weigh; counting the items themselves would read about 28 MB, in some 50 calls.
//! The seeded copies are written through the store's own items, entries included, as a create
//! writes them. Writing some 200 MB (with the indexes' copies) into DynamoDB Local while the
//! other tests run starves them into timeouts, so these tests are `#[ignore]`d and `make test`
//! runs them after the rest, on their own (`cargo test --test api offset_cost:: -- --ignored
//! --skip bench`).

use apikeys::entry::config::App;
use apikeys::entry::local::dispatch;
use apikeys::model::page::{DEFAULT_LIMIT, MAX_LIMIT};
use apikeys::model::{ApiKey, AuditEvent, KeyId, KeyStatus, PageRequest};
use apikeys::store::calls::{CallCounter, CapacityMeter};
use apikeys::store::items::{self, Item};
use apikeys::store::{AuditReader, DynamoStore, KeyReader, PageOutcome, PageWindow};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::TimeDelta;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{CLIENT_IP, TestApp, ids, spawn_app};
use crate::security::bounds::maximal_key;

/// Items of each list: enough that `offset=1000` still shows some.
const ITEMS: usize = 1_010;
const OFFSET: usize = 1_000;
/// The most DynamoDB calls an offset may add to a page.
const EXTRA_CALLS: isize = 2;
/// The most read capacity an offset may add to a page: 1 MB read eventually consistently.
const EXTRA_UNITS: f64 = 128.0;

/// What one request cost: its DynamoDB calls and the read capacity units they consumed.
#[derive(Debug)]
struct Cost {
    calls: Vec<String>,
    units: f64,
}

/// The app on `app`'s table and clock, through a client that counts calls and capacity.
async fn metered(app: &TestApp) -> (App, CallCounter, CapacityMeter) {
    let (calls, meter) = (CallCounter::default(), CapacityMeter::default());
    let client = crate::helpers::test_client(|b| b.interceptor(calls.clone()).interceptor(meter.clone())).await;
    (App::new(DynamoStore::new(client, &app.table), app.clock.clone()), calls, meter)
}

async fn get_costed(app: &TestApp, metered: &(App, CallCounter, CapacityMeter), path: &str) -> (Value, Cost) {
    let (service, calls, meter) = metered;
    calls.take();
    meter.take();
    let request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("authorization", format!("Bearer {}", app.root_key))
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = dispatch(service, CLIENT_IP, request).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let units = meter.take().iter().map(|(_, units)| units).sum();
    (serde_json::from_slice(response.body()).unwrap(), Cost { calls: calls.take(), units })
}

/// Writes `all` in batches of 10 (about 0.5 MB of items at the caps), each batch tried up to
/// three times: a batch of puts is safe to repeat, and DynamoDB Local under the whole suite's
/// load can take longer than the client's timeout over a large one.
async fn write_items(app: &TestApp, all: Vec<Item>) {
    for batch in all.chunks(10) {
        let writes: Vec<WriteRequest> = batch
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build().unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            match app.client.batch_write_item().request_items(&app.table, writes.clone()).send().await {
                Ok(out) => break out,
                Err(e) if attempt < 3 => eprintln!("seeding batch failed ({e}); again"),
                Err(e) => panic!("seeding batch failed three times: {e:?}"),
            }
        };
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()), "DynamoDB Local took the whole batch");
    }
}

/// Drops the test's table: the keys and events at the caps are some 150 MB that DynamoDB Local
/// would otherwise hold in memory for the rest of the run.
async fn drop_table(app: &TestApp) {
    app.client.delete_table().table_name(&app.table).send().await.expect("drop the table");
}

/// Compares `offset=1000` with `offset=0` on `path` (which holds `expected`, newest first, and
/// ends without `&`), at the default and the largest limit.
async fn check_offset_cost(app: &TestApp, path: &str, expected: &[String]) {
    let metered = metered(app).await;
    for limit in [DEFAULT_LIMIT as usize, MAX_LIMIT as usize] {
        let (first, at_zero) = get_costed(app, &metered, &format!("{path}limit={limit}")).await;
        let (page, at_offset) = get_costed(app, &metered, &format!("{path}limit={limit}&offset={OFFSET}")).await;
        assert_eq!(ids(&first)[..limit.min(expected.len())], expected[..limit.min(expected.len())], "{path}");
        let shown = limit.min(expected.len() - OFFSET);
        assert_eq!(ids(&page), expected[OFFSET..OFFSET + shown], "{path}limit={limit}&offset={OFFSET}");
        let extra_calls = at_offset.calls.len() as isize - at_zero.calls.len() as isize;
        let extra_units = at_offset.units - at_zero.units;
        eprintln!(
            "{path}limit={limit}: offset=0 {} calls, {:.1} RCU; offset={OFFSET} {} calls, {:.1} RCU",
            at_zero.calls.len(),
            at_zero.units,
            at_offset.calls.len(),
            at_offset.units
        );
        assert!(extra_calls <= EXTRA_CALLS, "{path}limit={limit}: {at_zero:?} then {at_offset:?}");
        assert!(
            extra_units <= EXTRA_UNITS,
            "{path}limit={limit}: {extra_units} more RCU: {at_zero:?} then {at_offset:?}"
        );
        assert!(at_offset.units > 0.0, "DynamoDB reported the capacity it consumed");
    }
}

/// Writes 2,020 copies of a key at every cap, newer than it and alternately active and
/// inactive, and counts them; answers the ids of each list (`None`: all), newest first.
async fn seed_keys_at_caps(app: &TestApp) -> impl Fn(Option<KeyStatus>) -> Vec<String> {
    let template = app.create_key(&maximal_key()).await;
    let template_id = template["id"].as_str().unwrap().to_owned();
    let key: ApiKey =
        app.app.store.get_key(&app.company, &KeyId::parse(&template_id, "id").unwrap()).await.unwrap().unwrap();
    let root = app.list_keys("?limit=2").await.body;
    assert_eq!(ids(&root)[0], template_id);
    let root_id = ids(&root)[1].clone();

    let status = |i: usize| if i.is_multiple_of(2) { KeyStatus::Active } else { KeyStatus::Inactive };
    let copies: Vec<ApiKey> = (0..2 * ITEMS)
        .map(|i| ApiKey {
            id: KeyId::parse(&format!("seed-{i:05}"), "id").unwrap(),
            created_at: key.created_at + TimeDelta::seconds(1 + i as i64),
            status: status(i),
            ..key.clone()
        })
        .collect();
    let written = copies
        .iter()
        .flat_map(|k| [items::key_item(k, None).unwrap()].into_iter().chain(items::key_listing_entries(k, None)));
    write_items(app, written.collect()).await;
    app.client
        .update_item()
        .table_name(&app.table)
        .key("pk", AttributeValue::S(items::counters_pk(&app.company)))
        .key("sk", AttributeValue::S(items::COUNTERS_SK.into()))
        .update_expression("ADD active :n, inactive :n")
        .expression_attribute_values(":n", AttributeValue::N(ITEMS.to_string()))
        .send()
        .await
        .unwrap();

    move |wanted: Option<KeyStatus>| {
        let mut list: Vec<String> = (0..2 * ITEMS)
            .rev()
            .filter(|&i| wanted.is_none_or(|s| s == status(i)))
            .map(|i| format!("seed-{i:05}"))
            .collect();
        if wanted != Some(KeyStatus::Inactive) {
            list.extend([template_id.clone(), root_id.clone()]);
        }
        list
    }
}

/// A key at every cap whose trail holds its create, the largest change, and 1,010 copies of
/// that change: the key's id and its events' ids, newest first.
async fn seed_events_at_caps(app: &TestApp) -> (String, Vec<String>) {
    let id = app.create_key(&maximal_key()).await["id"].as_str().unwrap().to_owned();
    // The largest event: a change of every field a change can hold.
    let mut changed = maximal_key();
    for field in ["userId", "type"] {
        changed.as_object_mut().unwrap().remove(field);
    }
    changed["tags"] = json!(vec!["\u{1D11E}".repeat(127); 50]);
    changed["status"] = json!("inactive");
    assert_eq!(app.patch_key(&id, &changed, &[]).await.status, StatusCode::OK);
    let key_id = KeyId::parse(&id, "id").unwrap();
    let page = PageRequest { limit: 10, ..PageRequest::default() };
    let PageOutcome::Listed { items: trail, .. } =
        app.app.store.list_events(&app.company, &key_id, PageWindow::of(&page)).await.unwrap()
    else {
        panic!("the key's trail");
    };
    let largest: AuditEvent =
        trail.iter().max_by_key(|e| serde_json::to_string(&e.changes).unwrap().len()).unwrap().clone();
    let copies: Vec<AuditEvent> = (0..ITEMS)
        .map(|_| AuditEvent { id: KeyId::parse(&uuid::Uuid::now_v7().to_string(), "id").unwrap(), ..largest.clone() })
        .collect();
    let written = copies.iter().flat_map(|e| [items::audit_item(e).unwrap(), items::event_listing_entry(e)]);
    write_items(app, written.collect()).await;
    let mut expected: Vec<String> = trail.iter().chain(&copies).map(|e| e.id.as_str().to_owned()).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    (id, expected)
}

#[tokio::test]
#[ignore = "heavy (about 150 MB into DynamoDB Local): make test runs it after the other tests, alone"]
async fn an_offset_of_1000_keys_at_every_cap_costs_at_most_two_calls_and_1_mb_more() {
    let app = spawn_app().await;
    let listed = seed_keys_at_caps(&app).await;
    check_offset_cost(&app, "/keys?status=active&", &listed(Some(KeyStatus::Active))).await;
    check_offset_cost(&app, "/keys?status=inactive&", &listed(Some(KeyStatus::Inactive))).await;
    check_offset_cost(&app, "/keys?status=all&", &listed(None)).await;
    drop_table(&app).await;
}

#[tokio::test]
#[ignore = "heavy (about 55 MB into DynamoDB Local): make test runs it after the other tests, alone"]
async fn an_offset_of_1000_events_at_every_cap_costs_at_most_two_calls_and_1_mb_more() {
    let app = spawn_app().await;
    let (id, expected) = seed_events_at_caps(&app).await;
    check_offset_cost(&app, &format!("/keys/{id}/events?"), &expected).await;
    drop_table(&app).await;
}

/// `make bench-offset` (and `make bench`): `offset=1000` against `offset=0` over the same 1,010
/// keys of each status and 1,010 events at the caps, each request `BENCH_OFFSET_RUNS` times
/// (default 30) after one warm-up: calls, read capacity and p50, written to
/// `$BENCH_OUT/offset.json` for bench/report.py. Timings are of this test build (debug) in
/// process against DynamoDB Local.
#[tokio::test]
#[ignore = "a benchmark, run by make bench-offset"]
async fn bench_offset_1000_against_offset_0() {
    let runs: usize = std::env::var("BENCH_OFFSET_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(30);
    let app = spawn_app().await;
    let _listed = seed_keys_at_caps(&app).await;
    let (id, _) = seed_events_at_caps(&app).await;
    let metered = metered(&app).await;
    let mut rows = Vec::new();
    for list in ["/keys?status=all&", "/keys?status=active&", &format!("/keys/{id}/events?")] {
        for limit in [DEFAULT_LIMIT, MAX_LIMIT] {
            for offset in [0, OFFSET] {
                let path = format!("{list}limit={limit}&offset={offset}");
                let (_, cost) = get_costed(&app, &metered, &path).await;
                let mut times = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let started = std::time::Instant::now();
                    get_costed(&app, &metered, &path).await;
                    times.push(started.elapsed());
                }
                times.sort();
                let p50 = times[times.len() / 2].as_secs_f64() * 1000.0;
                let list_name =
                    if list.starts_with("/keys?") { list.trim_end_matches('&') } else { "/keys/{id}/events?" };
                eprintln!("{path}: {} calls, {:.1} RCU, p50 {p50:.2} ms", cost.calls.len(), cost.units);
                rows.push(json!({
                    "list": list_name, "limit": limit, "offset": offset, "calls": cost.calls,
                    "units": cost.units, "p50_ms": p50, "runs": runs,
                }));
            }
        }
    }
    let out = std::env::var("BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-out"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("offset.json"),
        serde_json::to_string_pretty(&json!({ "items": ITEMS, "rows": rows })).unwrap(),
    )
    .unwrap();
    drop_table(&app).await;
}
