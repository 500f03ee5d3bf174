//! Counting verifies: the rate window, named limits and the quota, and `lastUsedAt`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{ApiKey, Quota, RateLimit, SecretHash, Window};
use crate::store::items::{self, Item, address, n, s, timestamp};
use crate::store::records::{KeyRecord, QuotaUsageRecord, RateWindowRecord};
use crate::store::table::{PARTITION_KEY, TTL_ATTRIBUTE};
use crate::store::{NamedTake, StoreError, UsageOutcome, UsageRecorder, UsageRequest};

use super::{DynamoStore, LAST_USED_BUDGET, MAX_TRANSACTION_ATTEMPTS, Transaction, Writes, backoff, unavailable};

impl UsageRecorder for DynamoStore {
    /// A use with named limits is counted in one transaction over every limit it applies
    /// (`consume_together`), unless a single named limit is all it counts: then one conditional
    /// update, as for the rate window alone. Without named limits, `consume_rate_and_quota`.
    async fn consume(&self, request: UsageRequest<'_>) -> Result<UsageOutcome, StoreError> {
        match (request.named, request.rate, request.quota) {
            // Each boxed: at most one runs, and a verify's future stays small.
            ([], _, _) => Box::pin(self.consume_rate_and_quota(request)).await,
            ([take], None, None) => {
                let pk = named_pk(request.key, take);
                Ok(match Box::pin(self.take_window(pk, take.limit.limit, take.cost, take.window)).await? {
                    Counted::Taken(used) => UsageOutcome::Admitted {
                        rate_used: None,
                        named_used: vec![used],
                        quota_used: None,
                        last_used_written: false,
                    },
                    Counted::Refused(used) => UsageOutcome::RateLimited { refused: Some(0), named_used: vec![used] },
                })
            }
            _ => Box::pin(self.consume_together(request)).await,
        }
    }

    async fn touch_last_used(&self, key: &ApiKey, now: DateTime<Utc>) {
        // Best effort, on the answer's path: it may not hold the answer up by more than a
        // moment, so a database that stops answering mid-request still gets its 503 within the
        // configured operation timeout. Boxed: three SDK calls' futures would otherwise sit
        // inline in every caller's future.
        if tokio::time::timeout(LAST_USED_BUDGET, Box::pin(self.write_last_used(key, now))).await.is_err() {
            tracing::warn!("lastUsedAt not recorded within its budget");
        }
    }
}

/// What `take_quota_use` did.
enum QuotaTake {
    /// Counted, in `period`; `used` is the period's count with this use.
    Taken { used: u64, period: i64 },
    /// Not counted: what is left is less than the use costs. `used` as the refusal found it.
    Refused { used: u64 },
}

impl DynamoStore {
    /// The quota first, then the rate window, each a conditional update of its own item. The
    /// window is taken only for a use the quota admitted and never given back, so it counts
    /// admitted uses exactly; a rate refusal gives the quota use back, and a quota refusal reads
    /// the window to answer in the documented order. A refused use counts against neither.
    async fn consume_rate_and_quota(&self, request: UsageRequest<'_>) -> Result<UsageOutcome, StoreError> {
        let key = request.key;
        // With a rate limit still to pass, the quota write does not set `lastUsedAt`: the use
        // may yet be refused.
        let touch = request.rate.is_none();
        let quota_taken = match request.quota {
            Some((quota, period)) => {
                match self.take_quota_use(key, quota, period, request.now, touch, request.cost).await? {
                    QuotaTake::Taken { used, period } => Some((used, period)),
                    QuotaTake::Refused { used } => {
                        if let Some((limit, window)) = request.rate
                            && self.rate_window_full(key, limit, window).await?
                        {
                            return Ok(UsageOutcome::RateLimited { refused: None, named_used: Vec::new() });
                        }
                        return Ok(UsageOutcome::QuotaExceeded { quota_used: used, named_used: Vec::new() });
                    }
                }
            }
            None => None,
        };
        let rate_used = match request.rate {
            Some((limit, window)) => match self.take_rate_slot(key, limit, window).await? {
                Some(used) => Some(used),
                None => {
                    if let Some((_, period)) = quota_taken {
                        self.give_back_quota_use(key, period, request.cost).await?;
                    }
                    return Ok(UsageOutcome::RateLimited { refused: None, named_used: Vec::new() });
                }
            },
            None => None,
        };
        Ok(UsageOutcome::Admitted {
            rate_used,
            named_used: Vec::new(),
            quota_used: quota_taken.map(|(used, _)| used),
            last_used_written: quota_taken.is_some() && touch,
        })
    }

    async fn take_rate_slot(&self, key: &ApiKey, limit: RateLimit, window: Window) -> Result<Option<u64>, StoreError> {
        let pk = items::rate_pk(&key.company_id, &key.id, window.number);
        Ok(match self.take_window(pk, limit.limit, 1, window).await? {
            Counted::Taken(used) => Some(used),
            Counted::Refused(_) => None,
        })
    }

    /// Counts a use costing `cost` in a window's counter item, if it fits `limit`.
    async fn take_window(&self, pk: String, limit: u64, cost: u64, window: Window) -> Result<Counted, StoreError> {
        let result = send_update(Counting::window(pk, limit, cost, window).alone(self)).await;
        let used = |item: Option<&Item>| {
            item.and_then(|i| items::number(i, RateWindowRecord::USED)).unwrap_or(0).max(0) as u64
        };
        match result {
            Ok(out) => Ok(Counted::Taken(used(out.attributes()))),
            Err(err) if is_condition_failure(&err) => Ok(Counted::Refused(used(condition_failure_item(&err).as_ref()))),
            Err(err) => Err(unavailable("rate limit", &err)),
        }
    }

    /// Every limit of a use in one transaction: each window's counter and the quota, each
    /// conditioned on the use fitting, so the use counts against all or none, exactly, under
    /// any concurrency. Then one strongly consistent read of the counters, for what is left
    /// (a refusal names the first limit in check order whose condition failed). A quota that
    /// still counts an earlier period is renewed in the next attempt, as `take_quota_use` does.
    async fn consume_together(&self, request: UsageRequest<'_>) -> Result<UsageOutcome, StoreError> {
        let key = request.key;
        let rate = request.rate.map(|(limit, window)| {
            (Refusal::Rate, items::rate_pk(&key.company_id, &key.id, window.number), limit.limit, 1, window)
        });
        let named = request
            .named
            .iter()
            .enumerate()
            .map(|(i, take)| (Refusal::Named(i), named_pk(key, take), take.limit.limit, take.cost, take.window));
        let windows: Vec<_> = rate.into_iter().chain(named).collect();
        let key_address = address(items::key_pk(&key.company_id, &key.id), items::KEY_SK);
        let mut reads: Vec<Item> = windows.iter().map(|(_, pk, ..)| address(pk.clone(), items::RATE_SK)).collect();
        if request.quota.is_some() {
            reads.push(key_address.clone());
        }
        let mut quota = request.quota.map(|(quota, period)| (quota, period, QuotaForm::SamePeriod));
        for _ in 0..QUOTA_ATTEMPTS {
            let mut writes = Writes::new();
            for (refusal, pk, limit, cost, window) in &windows {
                writes.guarded(Counting::window(pk.clone(), *limit, *cost, *window).in_transaction(self), *refusal);
            }
            if let Some((limits, period, form)) = quota {
                let count = Counting::quota(key_address.clone(), limits, period, form, request.cost, None);
                writes.guarded(count.in_transaction(self), Refusal::Quota);
            }
            let outcome = self.transact("count usage", writes).await?;
            let committed = matches!(outcome, Transaction::Committed);
            let counted = [RateWindowRecord::USED, KeyRecord::QUOTA_USAGE];
            let found = match self.batch_get_only("count usage", reads.clone(), &counted).await {
                Ok(found) => found,
                // Counted: the answer stands, each counter told as holding at least this use
                // (so `remaining` is at most the limit less its cost).
                Err(_) if committed => Vec::new(),
                Err(err) => return Err(err),
            };
            let item_of =
                |wanted: &Item| found.iter().find(|item| item.get(PARTITION_KEY) == wanted.get(PARTITION_KEY));
            let used_in = |pk: &str, at_least: u64| {
                item_of(&address(pk.to_owned(), items::RATE_SK))
                    .and_then(|item| items::number(item, RateWindowRecord::USED))
                    .map_or(at_least, |used| used.max(0) as u64)
            };
            let named_used: Vec<u64> = windows
                .iter()
                .filter(|(r, ..)| *r != Refusal::Rate)
                .map(|(_, pk, _, cost, _)| used_in(pk, if committed { *cost } else { 0 }))
                .collect();
            let stored_quota = item_of(&key_address).map(stored_quota_usage);
            match outcome {
                Transaction::Committed => {
                    return Ok(UsageOutcome::Admitted {
                        rate_used: windows.iter().find(|(r, ..)| *r == Refusal::Rate).map(|(_, pk, ..)| used_in(pk, 1)),
                        named_used,
                        quota_used: quota.map(|_| stored_quota.map_or(request.cost, |(_, used)| used)),
                        last_used_written: false,
                    });
                }
                Transaction::Refused(Some(Refusal::Rate)) => {
                    return Ok(UsageOutcome::RateLimited { refused: None, named_used });
                }
                Transaction::Refused(Some(Refusal::Named(i))) => {
                    return Ok(UsageOutcome::RateLimited { refused: Some(i), named_used });
                }
                Transaction::Refused(Some(Refusal::Quota)) => {
                    let Some((limits, period, form)) = quota else {
                        return Err(StoreError::Unavailable("count usage: a quota refusal without a quota".into()));
                    };
                    match after_quota_refusal(stored_quota, limits, period, form, request.cost) {
                        QuotaNext::Refused { used } => {
                            return Ok(UsageOutcome::QuotaExceeded { quota_used: used, named_used });
                        }
                        QuotaNext::Retry { period, form } => quota = Some((limits, period, form)),
                    }
                }
                Transaction::Refused(None) => {
                    return Err(StoreError::Unavailable("count usage: unexpected condition failure".into()));
                }
            }
        }
        // The period kept moving under this use (clocks far apart): refused, as `take_quota_use`
        // refuses it, with nothing counted.
        let max = request.quota.map_or(0, |(quota, _)| quota.max);
        Ok(UsageOutcome::QuotaExceeded { quota_used: max, named_used: Vec::new() })
    }

    /// Whether the rate window is full, read strongly consistent: asked only when the quota
    /// refused a use, to answer what the documented order puts first.
    async fn rate_window_full(&self, key: &ApiKey, limit: RateLimit, window: Window) -> Result<bool, StoreError> {
        let address = address(items::rate_pk(&key.company_id, &key.id, window.number), items::RATE_SK);
        let item = self.get_item("rate limit", address).await?;
        let used = item.as_ref().and_then(|i| items::number(i, RateWindowRecord::USED)).unwrap_or(0);
        Ok(used.max(0) as u64 >= limit.limit)
    }

    /// Counts a use costing `cost` in the quota's current period on the key item, renewing the
    /// period if the item still counts an earlier one; with `touch`, the same write sets
    /// `lastUsedAt`. The uses counted and the period they count in, or a refusal: what is left
    /// is less than the cost (or the key is gone).
    async fn take_quota_use(
        &self,
        key: &ApiKey,
        quota: Quota,
        period: i64,
        now: DateTime<Utc>,
        touch: bool,
        cost: u64,
    ) -> Result<QuotaTake, StoreError> {
        let key_address = address(items::key_pk(&key.company_id, &key.id), items::KEY_SK);
        let (mut period, mut form) = (period, QuotaForm::SamePeriod);
        for _ in 0..QUOTA_ATTEMPTS {
            let count = Counting::quota(key_address.clone(), quota, period, form, cost, touch.then_some(now));
            let stored = match send_update(count.alone(self)).await {
                Ok(out) => {
                    let used = out.attributes().and_then(|a| quota_field(a, QuotaUsageRecord::USED));
                    let used = used.map_or(cost, |used| used.max(0) as u64);
                    return Ok(QuotaTake::Taken { used, period });
                }
                Err(err) if is_condition_failure(&err) => condition_failure_item(&err).as_ref().map(stored_quota_usage),
                Err(err) => return Err(unavailable("quota", &err)),
            };
            match after_quota_refusal(stored, quota, period, form, cost) {
                QuotaNext::Refused { used } => return Ok(QuotaTake::Refused { used }),
                QuotaNext::Retry { period: next, form: next_form } => (period, form) = (next, next_form),
            }
        }
        Ok(QuotaTake::Refused { used: quota.max })
    }

    /// Gives back a use `take_quota_use` counted in `period`, for a verify the rate limit then
    /// refused. Nothing to give back once the period has moved on or the key is gone.
    async fn give_back_quota_use(&self, key: &ApiKey, period: i64, cost: u64) -> Result<(), StoreError> {
        if cost == 0 {
            return Ok(());
        }
        let key_address = address(items::key_pk(&key.company_id, &key.id), items::KEY_SK);
        send_update(Counting::refund(key_address, period, cost).alone(self))
            .await
            .map(|_| ())
            .or_else(|err| if is_condition_failure(&err) { Ok(()) } else { Err(unavailable("quota refund", &err)) })
    }

    /// `lastUsedAt` on the key item, only if it is older than the granularity (so concurrent
    /// uses of one key write it once), then on its lookup items, which verify reads. Plain
    /// conditional updates, not a transaction: a refused condition is cheap and locks nothing,
    /// where forty concurrent transactions on one hot key would hold each other up. Best
    /// effort: a failure is logged by its code and the answer stands.
    async fn write_last_used(&self, key: &ApiKey, now: DateTime<Utc>) {
        let cutoff = now - crate::model::LAST_USED_GRANULARITY;
        let stale_only = "attribute_exists(pk) AND (attribute_not_exists(#last) OR attribute_type(#last, :null) OR #last <= :cutoff)";
        let key_update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(address(items::key_pk(&key.company_id, &key.id), items::KEY_SK)))
            .update_expression("SET #last = :now")
            .condition_expression(stale_only)
            .expression_attribute_names("#last", KeyRecord::LAST_USED_AT)
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":cutoff", timestamp(cutoff))
            .expression_attribute_values(":null", s("NULL"));
        // The key item is also a verify transaction's (its quota): a conflict is tried again.
        let key_update = send_update(key_update).await;
        if let Err(err) = key_update {
            if !is_condition_failure(&err) {
                unavailable("last used", &err);
            }
            return;
        }
        let lookup = |hash: &SecretHash| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(address(items::secret_pk(hash), items::SECRET_SK)))
                .update_expression("SET #last = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#last", KeyRecord::LAST_USED_AT)
                .expression_attribute_values(":now", timestamp(now))
                .send()
        };
        let (current, previous) = tokio::join!(lookup(&key.secret_hash), async {
            match &key.previous_secret {
                Some(old) => Some(lookup(&old.hash).await),
                None => None,
            }
        });
        for result in std::iter::once(current).chain(previous) {
            if let Err(err) = result
                && !is_condition_failure(&err)
            {
                unavailable("last used", &err);
            }
        }
    }
}

fn fresh_usage(period: i64, cost: u64) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (QuotaUsageRecord::PERIOD.to_owned(), n(period)),
        (QuotaUsageRecord::USED.to_owned(), n(cost)),
    ]))
}

/// How a quota's use is written: in the period the key item counts, or as a new period's first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuotaForm {
    SamePeriod,
    Renewal,
}

/// Which limit's condition refused a transaction of `consume_together`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Rate,
    Named(usize),
    Quota,
}

/// What `take_window` did: counted, with the window's count after; or refused, with the count
/// as the refusal found it.
enum Counted {
    Taken(u64),
    Refused(u64),
}

/// One conditional update of a counter (a window's, or the quota on the key item): its item,
/// expressions, names and values, sent alone (`alone`) or as one write of a transaction
/// (`in_transaction`), so the two paths of a verify write the same conditions.
struct Counting {
    key: Item,
    update: String,
    condition: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Counting {
    /// A use costing `cost` added to a window's counter, if it fits `limit`: below the limit
    /// with room for the cost (a cost above the limit never fits, nor does anything in a full
    /// window; a window not counted yet takes any use that fits).
    fn window(pk: String, limit: u64, cost: u64, window: Window) -> Self {
        let room = room(limit, cost);
        let condition = if room >= 0 {
            "attribute_not_exists(#used) OR (#used < :limit AND #used <= :room)"
        } else {
            "#used < :limit AND #used <= :room"
        };
        let names = HashMap::from([
            ("#used".to_owned(), RateWindowRecord::USED.to_owned()),
            ("#ttl".to_owned(), TTL_ATTRIBUTE.to_owned()),
            ("#schema".to_owned(), items::SCHEMA_VERSION_ATTRIBUTE.to_owned()),
        ]);
        let values = HashMap::from([
            (":cost".to_owned(), n(cost)),
            (":limit".to_owned(), n(limit)),
            (":room".to_owned(), n(room)),
            (":ttl".to_owned(), n((window.ends_at + TimeDelta::hours(1)).timestamp())),
            (":schema".to_owned(), n(items::SCHEMA_VERSION)),
        ]);
        let update = "ADD #used :cost SET #ttl = :ttl, #schema = :schema".to_owned();
        Self { key: address(pk, items::RATE_SK), update, condition, names, values }
    }

    /// A use costing `cost` of the quota on the key item `key`: counted in `period` if the item
    /// counts it and it fits (`SamePeriod`), or as the first use of `period` if the item still
    /// counts an earlier one (`Renewal`); with `touch`, the same write sets `lastUsedAt`.
    fn quota(key: Item, quota: Quota, period: i64, form: QuotaForm, cost: u64, touch: Option<DateTime<Utc>>) -> Self {
        let mut names = HashMap::from([
            ("#usage".to_owned(), KeyRecord::QUOTA_USAGE.to_owned()),
            ("#period".to_owned(), QuotaUsageRecord::PERIOD.to_owned()),
        ]);
        let mut values = HashMap::from([(":period".to_owned(), n(period))]);
        let (update, condition) = match form {
            QuotaForm::SamePeriod => {
                names.insert("#used".to_owned(), QuotaUsageRecord::USED.to_owned());
                values.extend([
                    (":cost".to_owned(), n(cost)),
                    (":max".to_owned(), n(quota.max)),
                    (":room".to_owned(), n(room(quota.max, cost))),
                ]);
                (
                    "SET #usage.#used = #usage.#used + :cost",
                    "attribute_exists(pk) AND #usage.#period = :period AND #usage.#used < :max AND #usage.#used <= :room",
                )
            }
            QuotaForm::Renewal => {
                values.insert(":fresh".to_owned(), fresh_usage(period, cost));
                ("SET #usage = :fresh", "attribute_exists(pk) AND #usage.#period < :period")
            }
        };
        let update = match touch {
            Some(now) => {
                names.insert("#last".to_owned(), KeyRecord::LAST_USED_AT.to_owned());
                values.insert(":now".to_owned(), timestamp(now));
                format!("{update}, #last = :now")
            }
            None => update.to_owned(),
        };
        Self { key, update, condition, names, values }
    }

    /// A use of `cost` given back to the quota on the key item `key`, if it still counts `period`.
    fn refund(key: Item, period: i64, cost: u64) -> Self {
        let names = HashMap::from([
            ("#usage".to_owned(), KeyRecord::QUOTA_USAGE.to_owned()),
            ("#period".to_owned(), QuotaUsageRecord::PERIOD.to_owned()),
            ("#used".to_owned(), QuotaUsageRecord::USED.to_owned()),
        ]);
        let values = HashMap::from([(":period".to_owned(), n(period)), (":cost".to_owned(), n(cost))]);
        let update = "SET #usage.#used = #usage.#used - :cost".to_owned();
        let condition = "attribute_exists(pk) AND #usage.#period = :period AND #usage.#used >= :cost";
        Self { key, update, condition, names, values }
    }

    /// The update alone: answering the counter as it is after it, or as the refusal found it.
    fn alone(self, store: &DynamoStore) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        store
            .client
            .update_item()
            .table_name(&store.table)
            .set_key(Some(self.key))
            .update_expression(self.update)
            .condition_expression(self.condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// The update as one write of a transaction.
    fn in_transaction(self, store: &DynamoStore) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(&store.table)
            .set_key(Some(self.key))
            .update_expression(self.update)
            .condition_expression(self.condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }
}

/// What a limit of `max` leaves for a use costing `cost`; negative (a cost above the limit),
/// no use fits.
fn room(max: u64, cost: u64) -> i128 {
    i128::from(max) - i128::from(cost)
}

/// Tries of a quota write: its period may move (a renewal, a clock ahead) between them.
const QUOTA_ATTEMPTS: usize = 4;

/// The quota usage a key item holds: the period it counts and the uses counted in it.
fn stored_quota_usage(item: &Item) -> (i64, u64) {
    let period = quota_field(item, QuotaUsageRecord::PERIOD).unwrap_or(0);
    (period, quota_field(item, QuotaUsageRecord::USED).unwrap_or(0).max(0) as u64)
}

/// One field of a key item's quota usage, if the item holds it.
fn quota_field(item: &Item, field: &str) -> Option<i64> {
    item.get(KeyRecord::QUOTA_USAGE).and_then(|u| u.as_m().ok()).and_then(|m| items::number(m, field))
}

/// What follows a quota write whose condition refused it.
enum QuotaNext {
    /// No use fits: `used` as the refusal found it.
    Refused { used: u64 },
    /// Write again, in this period and form.
    Retry { period: i64, form: QuotaForm },
}

/// The one rule for a refused quota write, alone or in a transaction, from the key item's usage
/// as the refusal found it (`None`: the key is gone, nothing left to use).
fn after_quota_refusal(stored: Option<(i64, u64)>, quota: Quota, period: i64, form: QuotaForm, cost: u64) -> QuotaNext {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let Some((stored_period, stored_used)) = stored else { return QuotaNext::Refused { used: quota.max } };
    match (stored_period.cmp(&period), form) {
        (Equal, QuotaForm::SamePeriod) => QuotaNext::Refused { used: stored_used },
        // Another instance's clock is ahead: count in its period.
        (Greater, _) => QuotaNext::Retry { period: stored_period, form: QuotaForm::SamePeriod },
        // Renewed by a concurrent use meanwhile: count in it.
        (Equal, QuotaForm::Renewal) => QuotaNext::Retry { period, form: QuotaForm::SamePeriod },
        (Less, _) if !quota.admits(0, cost) => QuotaNext::Refused { used: 0 },
        (Less, _) => QuotaNext::Retry { period, form: QuotaForm::Renewal },
    }
}

/// The window item of a named limit a use takes.
fn named_pk(key: &ApiKey, take: &NamedTake<'_>) -> String {
    items::named_limit_pk(&key.company_id, &key.id, take.owner, &take.limit.name, take.window.number)
}

/// Sends a conditional update, again (with backoff) while a transaction holds its item: AWS
/// refuses such an update with `TransactionConflictException`, having written nothing, and
/// verify's single updates and its transactions count in the same items.
async fn send_update(
    update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
> {
    let mut attempt = 0;
    loop {
        let result = update.clone().send().await;
        let conflicted = matches!(&result, Err(err) if err.as_service_error().is_some_and(|e| e.is_transaction_conflict_exception()));
        if !conflicted || attempt + 1 >= MAX_TRANSACTION_ATTEMPTS {
            return result;
        }
        tracing::info!(attempt, "update conflicted with a transaction; retrying");
        backoff(attempt).await;
        attempt += 1;
    }
}

fn is_condition_failure<R>(err: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>) -> bool {
    err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
}

fn condition_failure_item<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>,
) -> Option<Item> {
    match err.as_service_error() {
        Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e)) => {
            e.item().cloned()
        }
        _ => None,
    }
}
