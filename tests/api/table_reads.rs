//! Reading a test table back, for the checks that nothing was half-written (the fault test
//! here and the soak, tests/soak.rs, which includes this file too).

use std::collections::HashMap;

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
