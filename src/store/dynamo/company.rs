//! A company's settings on its counters item, its prefix's claim and its audit records.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use crate::model::CompanyId;
use crate::model::company::{CompanyEvent, CompanySettings};
use crate::store::items::{self, Item, address, n, s};
use crate::store::records::CompanySettingsRecord;
use crate::store::{
    CompanyAuditReader, CompanySettingsReader, CompanySettingsWriter, PageOutcome, PageWindow, SettingsChange,
    SettingsOutcome, StoreError,
};

use super::paging::{Entries, Listing};
use super::{DynamoStore, Transaction, Writes};

impl CompanySettingsReader for DynamoStore {
    async fn company_settings(&self, company: &CompanyId) -> Result<CompanySettings, StoreError> {
        let item =
            self.get_item("read company settings", address(items::counters_pk(company), items::COUNTERS_SK)).await?;
        CompanySettingsRecord::from_item(item.as_ref())
    }
}

impl DynamoStore {
    /// The settings set on the counters item, at `before`'s version only.
    fn settings_update(&self, change: &SettingsChange<'_>) -> TransactWriteItem {
        let after = change.after;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(address(items::counters_pk(change.company), items::COUNTERS_SK)))
            .expression_attribute_names("#policy", CompanySettingsRecord::LEAK_POLICY)
            .expression_attribute_names("#version", CompanySettingsRecord::VERSION)
            .expression_attribute_names("#prefix", CompanySettingsRecord::KEY_PREFIX)
            .expression_attribute_names("#schema", items::SCHEMA_VERSION_ATTRIBUTE)
            .expression_attribute_values(":policy", s(CompanySettingsRecord::policy(after.leak_policy)))
            .expression_attribute_values(":version", n(after.version))
            .expression_attribute_values(":schema", n(items::SCHEMA_VERSION));
        let set = "SET #policy = :policy, #version = :version, #schema = :schema";
        update = match &after.key_prefix {
            Some(prefix) => update
                .update_expression(format!("{set}, #prefix = :prefix"))
                .expression_attribute_values(":prefix", s(prefix.as_str())),
            None => update.update_expression(format!("{set} REMOVE #prefix")),
        };
        update = if change.before.version == 0 {
            update.condition_expression("attribute_not_exists(#version)")
        } else {
            update
                .condition_expression("#version = :before")
                .expression_attribute_values(":before", n(change.before.version))
        };
        TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
    }
}

impl CompanySettingsWriter for DynamoStore {
    async fn save_company_settings(&self, change: SettingsChange<'_>) -> Result<SettingsOutcome, StoreError> {
        let mut writes = Writes::new();
        writes.guarded(self.settings_update(&change), SettingsOutcome::VersionConflict);
        // A prefix once claimed stays the company's, even after it moves to another: its older
        // keys still carry it, and no other company's patterns may match them.
        let (old, new) = (change.before.key_prefix.as_ref(), change.after.key_prefix.as_ref());
        if let Some(new) = new.filter(|new| old != Some(*new)) {
            let claim = items::key_prefix_claim(new.as_str(), change.company);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(claim))
                .condition_expression(format!(
                    "attribute_not_exists(pk) OR {} = :company",
                    CompanySettingsRecord::COMPANY
                ))
                .expression_attribute_values(":company", s(change.company.to_string()))
                .build()
                .expect("table and item are set");
            writes.guarded(TransactWriteItem::builder().put(put).build(), SettingsOutcome::PrefixTaken);
        }
        writes.push(self.put(items::company_event_item(&change)?, None));
        if let Some(record) = change.idempotency {
            writes.guarded(self.idempotency_put(record, change.now), SettingsOutcome::IdempotencyKeyTaken);
        }
        Ok(match self.transact("SaveCompanySettings", writes).await? {
            Transaction::Committed => SettingsOutcome::Saved,
            Transaction::Refused(meaning) => meaning.unwrap_or(SettingsOutcome::VersionConflict),
        })
    }
}

impl CompanyAuditReader for DynamoStore {
    /// One BatchGetItem (the counters item, whose settings' version is `total`, and the cursor's
    /// record), then a Query of the company's own partition in the window's direction. An offset
    /// is counted over the records themselves: each is a few hundred bytes, as small as a
    /// listing entry, so they need none.
    async fn list_company_events(
        &self,
        company: &CompanyId,
        window: PageWindow<'_>,
    ) -> Result<PageOutcome<CompanyEvent>, StoreError> {
        let pk = items::company_events_pk(company);
        let cursor = window.start.map(|id| address(pk.clone(), &items::event_sk(id)));
        let counters = address(items::counters_pk(company), items::COUNTERS_SK);
        let (counters, start) = self.page_context("list company events", counters, cursor.clone()).await?;
        if window.start.is_some() && start.is_none() {
            return Ok(PageOutcome::UnknownStart);
        }
        let itself = |record: &Item| Ok(record.clone());
        let entries = Entries { partition: pk.clone(), position: cursor.clone(), after_entry: &itself };
        let listing = Listing { index: None, partition: pk, position: cursor, entries: Some(entries) };
        let items = self.query_pages("list company events", listing, window, items::company_event_from_item).await?;
        // The number alone: settings that no longer parse must not hide their own audit trail.
        let version =
            counters.as_ref().and_then(|c| crate::store::attributes::number(c, CompanySettingsRecord::VERSION));
        let total = version.unwrap_or(0).max(0) as u64;
        Ok(PageOutcome::Listed { total, items })
    }
}

impl crate::store::LeakLedger for DynamoStore {
    async fn leak_handled(&self, report: &str) -> Result<bool, StoreError> {
        Ok(self.get_item("read leak report", items::leak_report_key(report)).await?.is_some())
    }

    async fn record_leak_handled(&self, report: &str, now: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::leak_report_item(report, now)))
            .send()
            .await
            .map_err(|e| super::unavailable("RecordLeakReport", &e))?;
        Ok(())
    }
}
