//! Usage counts: a batch of verifications added to hourly and daily items exactly once, and an
//! owner's buckets read back by one query.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use crate::model::CompanyId;
use crate::model::usage::{Outcome, OutcomeCounts, UsageBucket, UsageIncrement, UsageOwner, UsageRange};
use crate::store::items::{self, Item, address, n, number};
use crate::store::table::{SORT_KEY, TTL_ATTRIBUTE};
use crate::store::{StoreError, UsageAdded, UsageHistory};

use super::{DynamoStore, Transaction, Writes, unavailable};

/// Increments per transaction: DynamoDB's 100 items, less the part's marker.
const INCREMENTS_PER_PART: usize = 99;

/// A part's marker already existed: that part was added by an earlier delivery.
#[derive(Debug, Clone, Copy)]
struct AlreadyAdded;

impl DynamoStore {
    /// The `ADD` of one increment's counts, setting the item's TTL.
    fn usage_update(&self, increment: &UsageIncrement) -> TransactWriteItem {
        let key = address(
            items::usage_pk(&increment.company, &increment.owner),
            &items::usage_sk(increment.granularity, increment.start),
        );
        let expires = increment.start + increment.granularity.length() + self.usage_retention;
        let mut names = HashMap::from([("#ttl".to_owned(), TTL_ATTRIBUTE.to_owned())]);
        let mut values = HashMap::from([(":ttl".to_owned(), n(expires.timestamp()))]);
        let mut adds = Vec::new();
        for (i, (outcome, count)) in increment.counts.iter().enumerate() {
            names.insert(format!("#c{i}"), outcome.as_str().to_owned());
            values.insert(format!(":c{i}"), n(count));
            adds.push(format!("#c{i} :c{i}"));
        }
        let (version_name, version) = items::schema_version();
        names.insert("#v".to_owned(), version_name);
        values.insert(":v".to_owned(), version);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET #ttl = :ttl, #v = :v ADD {}", adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }
}

impl UsageHistory for DynamoStore {
    /// In parts of at most 99 increments, each one transaction with a marker put only if absent:
    /// a part whose marker exists was added before, and is skipped whole. The parts follow the
    /// increments' order, so a redelivered batch names the same parts.
    async fn add_usage(&self, batch: &str, increments: &[UsageIncrement]) -> Result<UsageAdded, StoreError> {
        let mut added = UsageAdded { written: 0, already_added: 0 };
        for (part, chunk) in increments.chunks(INCREMENTS_PER_PART).enumerate() {
            let last_hour = chunk.iter().map(|i| i.start).max().unwrap_or_default();
            let mut writes = Writes::new();
            writes.guarded(
                self.put(items::usage_batch_marker(batch, part, last_hour), Some("attribute_not_exists(pk)")),
                AlreadyAdded,
            );
            for increment in chunk {
                writes.push(self.usage_update(increment));
            }
            match self.transact("AddUsage", writes).await? {
                Transaction::Committed => added.written += chunk.len(),
                Transaction::Refused(_) => added.already_added += chunk.len(),
            }
        }
        Ok(added)
    }

    async fn read_usage(
        &self,
        company: &CompanyId,
        owner: &UsageOwner,
        range: &UsageRange,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let granularity = range.granularity;
        let mut buckets = Vec::new();
        let mut start_key = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", AttributeValue::S(items::usage_pk(company, owner)))
                .expression_attribute_values(":from", items::s(items::usage_sk(granularity, range.first_bucket())))
                .expression_attribute_values(":to", items::s(items::usage_sk(granularity, range.to)))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| unavailable("ReadUsage", &e))?;
            for item in out.items() {
                if let Some(bucket) = bucket_of(item, granularity).filter(|b| range.holds(b.start)) {
                    buckets.push(bucket);
                }
            }
            start_key = out.last_evaluated_key().cloned();
            if start_key.is_none() {
                return Ok(buckets);
            }
        }
    }
}

/// A usage item as a bucket; `None` if it counts nothing (or is not one).
fn bucket_of(item: &Item, granularity: crate::model::usage::Granularity) -> Option<UsageBucket> {
    let start: DateTime<Utc> = items::usage_bucket_start(&items::string(item, SORT_KEY)?, granularity)?;
    let counts: OutcomeCounts = Outcome::ALL
        .into_iter()
        .filter_map(|outcome| {
            let count = u64::try_from(number(item, outcome.as_str())?).ok()?;
            (count > 0).then_some((outcome, count))
        })
        .collect();
    (!counts.is_empty()).then_some(UsageBucket { start, counts })
}
