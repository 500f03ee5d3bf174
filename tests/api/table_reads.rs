//! Reading a test table back, for the checks that nothing was half-written (the fault test
//! here and the soak, tests/soak.rs, which includes this file too).

use std::collections::{HashMap, HashSet};

use apikeys::store::table::{COMPANY_INDEX, STATUS_INDEX};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

/// How many items a query on the index for `partition` finds.
pub async fn count_in_index(client: &Client, table: &str, index: apikeys::store::table::Index, partition: &str) -> i64 {
    let mut count = 0;
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(index.name)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", index.partition_key)
            .expression_attribute_values(":p", AttributeValue::S(partition.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query");
        count += out.items.unwrap_or_default().len() as i64;
        start = out.last_evaluated_key;
        if start.is_none() {
            return count;
        }
    }
}

/// Every item of the table whose `pk` starts with `prefix`.
pub async fn scan_prefix(client: &Client, table: &str, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

pub fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

pub fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// A key item as `ApiKey::is_company_admin` sees it: active, not deleted, secret, and an ACL
/// permission that reaches all of `keys:`.
fn is_admin(key: &HashMap<String, AttributeValue>) -> bool {
    let reaches_keys = |p: &AttributeValue| {
        p.as_s().ok().and_then(|p| p.strip_suffix('*')).is_some_and(|prefix| "keys:".starts_with(prefix))
    };
    let acl = key.get("acl").and_then(|a| a.as_l().ok()).map(Vec::as_slice).unwrap_or_default();
    text(key, "status") == "active"
        && key.get("deletedAt").is_none_or(|v| v.is_null())
        && text(key, "type") == "secret"
        && acl.iter().filter_map(|e| e.as_m().ok()).any(|entry| {
            entry.get("permissions").and_then(|p| p.as_l().ok()).is_some_and(|ps| ps.iter().any(reaches_keys))
        })
}

/// What would show a half-written write: counters (admin keys included) that differ from a recount through both
/// indexes or from the listing entries, a key's audit events without their listing entries, a key without the lookup items of its live secrets, a lookup item of no live
/// secret or out of step with its key, a key version without its audit event.
pub async fn consistency_problems(client: &Client, table: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let keys = scan_prefix(client, table, "KEY#").await;
    let lookups = scan_prefix(client, table, "SECRET#").await;
    let events = scan_prefix(client, table, "EVENTS#").await;
    let counters = scan_prefix(client, table, "COMPANY#").await;
    let listed = scan_prefix(client, table, "LISTING#").await;
    let events_listed = scan_prefix(client, table, "EVENTLISTING#").await;
    let entries_in = |pk: String| listed.iter().filter(|e| text(e, "pk") == pk).count() as i64;

    let mut companies: HashSet<String> =
        counters.iter().map(|c| text(c, "pk").trim_start_matches("COMPANY#").to_owned()).collect();
    companies.extend(keys.iter().map(|k| text(k, "companyId")));
    for company in &companies {
        let counter = counters.iter().find(|c| text(c, "pk") == format!("COMPANY#{company}"));
        let (active, inactive) = counter.map_or((0, 0), |c| (number(c, "active"), number(c, "inactive")));
        let admins = counter.map_or(0, |c| number(c, "activeAdmins"));
        let admin_items = keys.iter().filter(|k| text(k, "companyId") == *company && is_admin(k)).count() as i64;
        if admins != admin_items {
            problems.push(format!("company {company}: activeAdmins {admins}, but {admin_items} active admin keys"));
        }
        let recount_active =
            count_in_index(client, table, STATUS_INDEX, &format!("COMPANY#{company}#STATUS#active")).await;
        let recount_inactive =
            count_in_index(client, table, STATUS_INDEX, &format!("COMPANY#{company}#STATUS#inactive")).await;
        let recount_all = count_in_index(client, table, COMPANY_INDEX, &format!("COMPANY#{company}")).await;
        let by_status = (
            keys.iter().filter(|k| text(k, "companyId") == *company && text(k, "status") == "active").count() as i64,
            keys.iter().filter(|k| text(k, "companyId") == *company && text(k, "status") == "inactive").count() as i64,
        );
        let entries = (
            entries_in(format!("LISTING#{company}#STATUS#active")),
            entries_in(format!("LISTING#{company}#STATUS#inactive")),
            entries_in(format!("LISTING#{company}")),
        );
        if entries != (active, inactive, active + inactive) {
            problems.push(format!(
                "company {company}: counters {active}/{inactive}, listing entries {}/{}, {} in all",
                entries.0, entries.1, entries.2
            ));
        }
        if (active, inactive) != (recount_active, recount_inactive)
            || recount_all != active + inactive
            || by_status != (active, inactive)
        {
            problems.push(format!(
                "company {company}: counters {active}/{inactive}, gsi2 {recount_active}/{recount_inactive}, gsi1 {recount_all}, items {}/{}",
                by_status.0, by_status.1
            ));
        }
    }

    let lookup_by_pk: HashMap<String, &HashMap<String, AttributeValue>> =
        lookups.iter().map(|l| (text(l, "pk"), l)).collect();
    // Items per partition, counted once: a soak's thousands of keys each look theirs up.
    let mut events_of: HashMap<String, i64> = HashMap::new();
    for item in events.iter().chain(&events_listed) {
        *events_of.entry(text(item, "pk")).or_default() += 1;
    }
    let mut live: HashSet<String> = HashSet::new();
    for key in &keys {
        let id = format!("{}/{}", text(key, "companyId"), text(key, "id"));
        let deleted = key.get("deletedAt").is_some_and(|v| !v.is_null());
        if deleted && text(key, "status") != "inactive" {
            problems.push(format!("key {id}: deleted but {}", text(key, "status")));
        }
        let mut secrets = vec![text(key, "secretHash")];
        if let Some(AttributeValue::M(previous)) = key.get("previousSecret") {
            secrets.push(text(previous, "hash"));
        }
        for hash in secrets {
            let pk = format!("SECRET#{hash}");
            match lookup_by_pk.get(&pk) {
                None => problems.push(format!("key {id}: no lookup item for a live secret")),
                Some(lookup) => {
                    if text(lookup, "id") != text(key, "id") || text(lookup, "companyId") != text(key, "companyId") {
                        problems.push(format!("key {id}: its lookup item names another key"));
                    } else if number(lookup, "version") != number(key, "version")
                        || text(lookup, "status") != text(key, "status")
                    {
                        problems.push(format!(
                            "key {id}: lookup item at version {} / {}, key at {} / {}",
                            number(lookup, "version"),
                            text(lookup, "status"),
                            number(key, "version"),
                            text(key, "status")
                        ));
                    }
                }
            }
            live.insert(pk);
        }
        let trail =
            events_of.get(&format!("EVENTS#{}#{}", text(key, "companyId"), text(key, "id"))).copied().unwrap_or(0);
        if trail != number(key, "version") {
            problems.push(format!("key {id}: version {} but {trail} audit events", number(key, "version")));
        }
        let trail_entries = events_of
            .get(&format!("EVENTLISTING#{}#{}", text(key, "companyId"), text(key, "id")))
            .copied()
            .unwrap_or(0);
        if trail_entries != trail {
            problems.push(format!("key {id}: {trail} audit events but {trail_entries} listing entries"));
        }
    }
    for lookup in &lookups {
        if !live.contains(&text(lookup, "pk")) {
            problems.push(format!(
                "lookup item of key {}/{} is no live secret of it",
                text(lookup, "companyId"),
                text(lookup, "id")
            ));
        }
    }
    problems
}
