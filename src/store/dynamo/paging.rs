//! How the DynamoDB adapter reads a page window with `Query`: its context and cursor in one
//! read, the offset only counted, over small listing entries rather than the items, the 1 MB
//! pages of `Query` followed.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::Select;

use crate::store::StoreError;
use crate::store::items::{self, Item, s};
use crate::store::paging::PageWindow;
use crate::store::table::{Index, PARTITION_KEY, SORT_KEY};

use super::{DynamoStore, unavailable};

impl DynamoStore {
    /// Reads a page's context (counters or owner item) and its cursor item in one call:
    /// `(context, cursor)`, each `None` if absent.
    pub(super) async fn page_context(
        &self,
        operation: &'static str,
        context: Item,
        cursor: Option<Item>,
    ) -> Result<(Option<Item>, Option<Item>), StoreError> {
        let context_sk = items::string(&context, SORT_KEY);
        let mut found = self.batch_get(operation, std::iter::once(context).chain(cursor).collect()).await?;
        let context = found.iter().position(|i| items::string(i, SORT_KEY) == context_sk).map(|i| found.remove(i));
        Ok((context, found.pop()))
    }

    /// Queries `listing` from its position on until the window is read or the partition ends
    /// (`Query` pages at 1 MB, so a page of large items can take more than one call), each item
    /// decoded by `decode`. An offset is only counted (`skip_past`), over the listing entries
    /// (a few bytes each) rather than the items, and the page read from where the count
    /// stopped: whatever the offset, no more than the window's `take` items are ever held, and
    /// skipping an item reads its entry, not the item. Without an offset, the page is read from
    /// the cursor alone.
    pub(super) async fn query_pages<T>(
        &self,
        operation: &'static str,
        listing: Listing<'_>,
        window: PageWindow<'_>,
        decode: fn(Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let query = |index: Option<&str>, partition: (&str, &str)| {
            self.client()
                .query()
                .table_name(self.table())
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", partition.0)
                .expression_attribute_values(":p", s(partition.1))
                .scan_index_forward(!window.newest_first)
        };
        let mut position = listing.position;
        if window.skip > 0 {
            let Some(counted) = listing.entries else {
                return Err(StoreError::Corrupt(format!(
                    "{operation}: this list has no entries to count an offset over"
                )));
            };
            let entries = || query(None, (PARTITION_KEY, &counted.partition));
            let Some(entry) = skip_past(operation, entries, window.skip, counted.position).await? else {
                return Ok(Vec::new());
            };
            position = entry.as_ref().map(counted.after_entry).transpose()?;
        }
        let index = listing.index.map(|i| i.name);
        let partition_key = listing.index.map_or(PARTITION_KEY, |i| i.partition_key);
        let wanted = window.take as usize;
        let mut found: Vec<T> = Vec::with_capacity(wanted);
        loop {
            let out = query(index, (partition_key, &listing.partition))
                .limit((wanted - found.len()) as i32)
                .set_exclusive_start_key(position.take())
                .send()
                .await
                .map_err(|e| unavailable(operation, &e))?;
            for item in out.items.unwrap_or_default() {
                found.push(decode(item)?);
            }
            position = out.last_evaluated_key;
            if position.is_none() || found.len() >= wanted {
                return Ok(found);
            }
        }
    }
}

/// A list as `query_pages` reads it: the items (in an index or the table), and the listing
/// entries in the same order that an offset is counted over.
pub(super) struct Listing<'a> {
    /// The index the items are read from; `None`: the table.
    pub index: Option<Index>,
    /// The items' partition, in that index or the table.
    pub partition: String,
    /// The item the page continues after (the cursor's), as a position in that index or table.
    pub position: Option<Item>,
    /// The listing entries an offset is counted over; `None` for a list read by cursor only.
    pub entries: Option<Entries<'a>>,
}

/// A list's listing entries, in the list's order: what an offset is counted over.
pub(super) struct Entries<'a> {
    /// The partition of the listing entries.
    pub partition: String,
    /// The cursor's listing entry, where counting starts.
    pub position: Option<Item>,
    /// The position of the item an entry stands for, where the page continues after the count.
    pub after_entry: &'a (dyn Fn(&Item) -> Result<Item, StoreError> + Sync),
}

/// Where a page starts once `skip` entries after `position` are passed: counted by DynamoDB
/// (`Select=COUNT` answers no items, only how many it passed and the key of the last), so
/// an offset costs no memory; over listing entries of about 100 bytes, 1,000 skipped items are
/// one call reading about 100 KB (a `Query` stops at 1 MB read, some 8,000 entries).
/// `Some(None)`: from the start of the partition; `None`: the partition ends within the
/// skipped part, so the page is empty.
async fn skip_past<F: Fn() -> QueryFluentBuilder>(
    operation: &'static str,
    query: F,
    skip: u32,
    mut position: Option<Item>,
) -> Result<Option<Option<Item>>, StoreError> {
    let mut left = skip as i64;
    while left > 0 {
        let out = query()
            .select(Select::Count)
            .limit(left as i32)
            .set_exclusive_start_key(position.take())
            .send()
            .await
            .map_err(|e| unavailable(operation, &e))?;
        left -= out.count as i64;
        position = out.last_evaluated_key;
        if position.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(position))
}
