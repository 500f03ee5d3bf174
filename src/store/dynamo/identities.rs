//! Identities on the table: the identity item, its `externalId`'s uniqueness item, its listing
//! entry and the company's count of them, written together in one transaction.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use crate::model::{CompanyId, Identity, IdentityId};
use crate::store::items::{self, Item, address, n, timestamp};
use crate::store::records::{CountersRecord, IdentityRecord};
use crate::store::table::COMPANY_INDEX;
use crate::store::{
    IdentityLister, IdentityOutcome, IdentityReader, IdentityWrite, IdentityWriter, PageOutcome, PageWindow, StoreError,
};

use super::paging::{Entries, Listing};
use super::{DynamoStore, Transaction, Writes};

impl DynamoStore {
    /// An item's removal, whatever it holds.
    fn delete(&self, key: Item) -> TransactWriteItem {
        let delete = Delete::builder().table_name(self.table()).set_key(Some(key)).build().expect("table and key");
        TransactWriteItem::builder().delete(delete).build()
    }

    /// Moves the company's count of identities.
    fn identities_count(&self, company: &CompanyId, by: i64) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(address(items::counters_pk(company), items::COUNTERS_SK)))
            .update_expression("ADD #identities :by SET #schema = :schema")
            .expression_attribute_names("#identities", CountersRecord::IDENTITIES)
            .expression_attribute_names("#schema", items::SCHEMA_VERSION_ATTRIBUTE)
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":schema", n(items::SCHEMA_VERSION))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    /// The identity's own attributes set anew, only at the version read and while it is live;
    /// its keys' counts are left as the keys' writes moved them.
    fn identity_update(&self, before: &Identity, after: &Identity) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(items::identity_address(&after.company_id, &after.id)))
            .condition_expression("#version = :expected AND attribute_not_exists(#deleted)")
            .expression_attribute_names("#version", IdentityRecord::VERSION)
            .expression_attribute_names("#deleted", IdentityRecord::DELETED_AT)
            .expression_attribute_values(":expected", n(before.version));
        let mut assignments = Vec::new();
        for (i, (name, value)) in items::identity_attributes(after)?.into_iter().enumerate() {
            assignments.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let update = update
            .update_expression(format!("SET {}", assignments.join(", ")))
            .build()
            .expect("table, key and expression are set");
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The identity's removal, only at the version read and while no active key names it: the
    /// item itself if no key names it either, else a tombstone that keeps counting its inactive
    /// keys (so they can leave it) and reads as absent.
    fn identity_removal(&self, before: &Identity, now: DateTime<Utc>) -> TransactWriteItem {
        let key = items::identity_address(&before.company_id, &before.id);
        let no_active = "(attribute_not_exists(#active) OR #active = :zero)";
        if before.keys.inactive == 0 {
            let delete = Delete::builder()
                .table_name(self.table())
                .set_key(Some(key))
                // Not a tombstone: another delete may have made one since this one's read (a
                // tombstone keeps the version), and it is not removed twice.
                .condition_expression(format!(
                    "#version = :expected AND attribute_not_exists(#deleted) AND {no_active} AND \
                     (attribute_not_exists(#inactive) OR #inactive = :zero)"
                ))
                .expression_attribute_names("#version", IdentityRecord::VERSION)
                .expression_attribute_names("#deleted", IdentityRecord::DELETED_AT)
                .expression_attribute_names("#active", IdentityRecord::ACTIVE_KEYS)
                .expression_attribute_names("#inactive", IdentityRecord::INACTIVE_KEYS)
                .expression_attribute_values(":expected", n(before.version))
                .expression_attribute_values(":zero", n(0))
                .build()
                .expect("table and key are set");
            return TransactWriteItem::builder().delete(delete).build();
        }
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression("SET #deleted = :now REMOVE #listed, #order")
            .condition_expression(format!("#version = :expected AND attribute_not_exists(#deleted) AND {no_active}"))
            .expression_attribute_names("#version", IdentityRecord::VERSION)
            .expression_attribute_names("#deleted", IdentityRecord::DELETED_AT)
            .expression_attribute_names("#active", IdentityRecord::ACTIVE_KEYS)
            .expression_attribute_names("#listed", COMPANY_INDEX.partition_key)
            .expression_attribute_names("#order", COMPANY_INDEX.sort_key)
            .expression_attribute_values(":expected", n(before.version))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", timestamp(now))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }
}

impl IdentityReader for DynamoStore {
    async fn get_identity(&self, company: &CompanyId, id: &IdentityId) -> Result<Option<Identity>, StoreError> {
        let found = self.get_item("get identity", items::identity_address(company, id)).await?;
        Ok(found.map(items::identity_from_item).transpose()?.flatten())
    }

    async fn find_identity(&self, company: &CompanyId, external_id: &str) -> Result<Option<Identity>, StoreError> {
        let holder = self.get_item("find identity", items::external_id_address(company, external_id)).await?;
        let Some(id) = holder.as_ref().and_then(items::identity_of_external) else { return Ok(None) };
        let identity = self.get_identity(company, &id).await?;
        Ok(identity.filter(|i| i.external_id == external_id))
    }
}

impl IdentityWriter for DynamoStore {
    async fn write_identity(&self, write: IdentityWrite<'_>) -> Result<IdentityOutcome, StoreError> {
        let mut writes = Writes::new();
        // A twin request with the same header (whose externalId is then taken too) must read as
        // that, so its record comes first.
        if let Some(record) = write.idempotency {
            writes.guarded(self.idempotency_put(record, write.now), IdentityOutcome::IdempotencyKeyTaken);
        }
        let new = Some("attribute_not_exists(pk)");
        match (write.before, write.after) {
            (None, Some(identity)) => {
                // An id is a fresh UUID v7: a taken one is a collision, not an outcome.
                writes.push(self.put(items::identity_item(identity)?, new));
                writes.guarded(self.put(items::external_id_item(identity), new), IdentityOutcome::ExternalIdTaken);
                writes.push(self.put(items::identity_listing_entry(identity), None));
                writes.push(self.identities_count(&identity.company_id, 1));
            }
            (Some(before), Some(after)) => {
                writes.guarded(self.identity_update(before, after)?, IdentityOutcome::Changed);
                if before.external_id != after.external_id {
                    let old = items::external_id_address(&before.company_id, &before.external_id);
                    writes.push(self.delete(old));
                    writes.guarded(self.put(items::external_id_item(after), new), IdentityOutcome::ExternalIdTaken);
                }
            }
            (Some(before), None) => {
                writes.guarded(self.identity_removal(before, write.now), IdentityOutcome::Changed);
                writes.push(self.delete(items::external_id_address(&before.company_id, &before.external_id)));
                let entry =
                    address(items::identity_listing_pk(&before.company_id), &items::identity_listing_sk(before));
                writes.push(self.delete(entry));
                writes.push(self.identities_count(&before.company_id, -1));
            }
            (None, None) => return Ok(IdentityOutcome::Written),
        }
        match self.transact("write identity", writes).await? {
            Transaction::Committed => Ok(IdentityOutcome::Written),
            Transaction::Refused(Some(outcome)) => Ok(outcome),
            Transaction::Refused(None) => {
                Err(StoreError::Unavailable("write identity: identity id collision; retry".into()))
            }
        }
    }
}

impl IdentityLister for DynamoStore {
    async fn list_identities(
        &self,
        company: &CompanyId,
        window: PageWindow<'_>,
    ) -> Result<PageOutcome<Identity>, StoreError> {
        let counters_address = address(items::counters_pk(company), items::COUNTERS_SK);
        // A cursor that is no identity id cannot be one of the company's identities.
        let start_id = match window.start.map(|id| IdentityId::parse(id.as_str(), "startingAfter")).transpose() {
            Ok(id) => id,
            Err(_) => return Ok(PageOutcome::UnknownStart),
        };
        let start_address = start_id.as_ref().map(|id| items::identity_address(company, id));
        let (counters, start) = self.page_context("list identities", counters_address, start_address).await?;
        let start = start.map(items::identity_from_item).transpose()?.flatten();
        if window.start.is_some() && start.is_none() {
            return Ok(PageOutcome::UnknownStart);
        }
        let total = CountersRecord::count(counters.as_ref(), CountersRecord::IDENTITIES);
        let entries = items::identity_listing_pk(company);
        let entries_position = start.as_ref().map(|i| address(entries.clone(), &items::identity_listing_sk(i)));
        let after_entry = |entry: &Item| items::identity_position_of_entry(entry, company);
        let listing = Listing {
            index: Some(COMPANY_INDEX),
            partition: items::identities_index_pk(company),
            position: start.as_ref().map(items::identity_position),
            entries: Some(Entries { partition: entries, position: entries_position, after_entry: &after_entry }),
        };
        let items = self.query_pages("list identities", listing, window, items::listed_identity_from_item).await?;
        Ok(PageOutcome::Listed { total, items })
    }
}
