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
        let count = WindowCount::new(pk, limit, cost, window);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(count.key))
            .update_expression(WindowCount::UPDATE)
            .condition_expression(count.condition)
            .set_expression_attribute_names(Some(count.names))
            .set_expression_attribute_values(Some(count.values))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let result = send_update(update).await;
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
        for _ in 0..3 {
            let mut writes = Writes::new();
            for (refusal, pk, limit, cost, window) in &windows {
                let count = WindowCount::new(pk.clone(), *limit, *cost, *window);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(count.key))
                    .update_expression(WindowCount::UPDATE)
                    .condition_expression(count.condition)
                    .set_expression_attribute_names(Some(count.names))
                    .set_expression_attribute_values(Some(count.values))
                    .build()
                    .expect("table, key and expression are set");
                writes.guarded(TransactWriteItem::builder().update(update).build(), *refusal);
            }
            if let Some((limits, period, form)) = quota {
                let update = self.quota_in_transaction(key_address.clone(), limits, period, form, request.cost);
                writes.guarded(TransactWriteItem::builder().update(update).build(), Refusal::Quota);
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
            let stored_quota = item_of(&key_address).map(|item| {
                let usage = item.get(KeyRecord::QUOTA_USAGE).and_then(|u| u.as_m().ok());
                let period = usage.and_then(|m| items::number(m, QuotaUsageRecord::PERIOD)).unwrap_or(0);
                let used = usage.and_then(|m| items::number(m, QuotaUsageRecord::USED)).unwrap_or(0).max(0) as u64;
                (period, used)
            });
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
                    // The key is gone: nothing left to use.
                    let Some((stored_period, stored_used)) = stored_quota else {
                        return Ok(UsageOutcome::QuotaExceeded { quota_used: limits.max, named_used });
                    };
                    quota = Some(match (stored_period.cmp(&period), form) {
                        (std::cmp::Ordering::Equal, QuotaForm::SamePeriod) => {
                            return Ok(UsageOutcome::QuotaExceeded { quota_used: stored_used, named_used });
                        }
                        // Another instance's clock is ahead: count in its period.
                        (std::cmp::Ordering::Greater, _) => (limits, stored_period, QuotaForm::SamePeriod),
                        // Renewed by a concurrent use meanwhile: count in it.
                        (std::cmp::Ordering::Equal, QuotaForm::Renewal) => (limits, period, QuotaForm::SamePeriod),
                        (std::cmp::Ordering::Less, _) if !limits.admits(0, request.cost) => {
                            return Ok(UsageOutcome::QuotaExceeded { quota_used: 0, named_used });
                        }
                        (std::cmp::Ordering::Less, _) => (limits, period, QuotaForm::Renewal),
                    });
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

    /// The quota's share of `consume_together`'s transaction: a use counted in the period the
    /// key item counts, or the period renewed with this use as its first.
    fn quota_in_transaction(&self, key: Item, quota: Quota, period: i64, form: QuotaForm, cost: u64) -> Update {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .expression_attribute_names("#usage", KeyRecord::QUOTA_USAGE)
            .expression_attribute_names("#period", QuotaUsageRecord::PERIOD)
            .expression_attribute_values(":period", n(period));
        let update = match form {
            QuotaForm::SamePeriod => update
                .update_expression(QUOTA_ADD)
                .condition_expression(QUOTA_FITS)
                .expression_attribute_names("#used", QuotaUsageRecord::USED)
                .expression_attribute_values(":cost", n(cost))
                .expression_attribute_values(":max", n(quota.max))
                .expression_attribute_values(":room", n(i128::from(quota.max) - i128::from(cost))),
            QuotaForm::Renewal => update
                .update_expression(QUOTA_RENEW)
                .condition_expression(QUOTA_OLDER_PERIOD)
                .expression_attribute_values(":fresh", fresh_usage(period, cost)),
        };
        update.build().expect("table, key and expression are set")
    }

    /// Whether the rate window is full, read strongly consistent: asked only when the quota
    /// refused a use, to answer what the documented order puts first.
    async fn rate_window_full(&self, key: &ApiKey, limit: RateLimit, window: Window) -> Result<bool, StoreError> {
        let address = address(items::rate_pk(&key.company_id, &key.id, window.number), items::RATE_SK);
        let item = self.get_item("rate limit", address).await?;
        let used = item.as_ref().and_then(|i| items::number(i, RateWindowRecord::USED)).unwrap_or(0);
        Ok(used.max(0) as u64 >= limit.limit)
    }

    /// Counts a use costing `cost` in the quota's current period on the key item, renewing the period if the
    /// item still counts an earlier one; with `touch`, the same write sets `lastUsedAt`. The
    /// uses counted and the period they count in; `Ok(None)`: quota reached (or key gone).
    async fn take_quota_use(
        &self,
        key: &ApiKey,
        quota: Quota,
        period: i64,
        now: DateTime<Utc>,
        touch: bool,
        cost: u64,
    ) -> Result<QuotaTake, StoreError> {
        let mut period = period;
        for _ in 0..3 {
            // `room` may be negative (a cost above the quota): then no use fits.
            let room = i128::from(quota.max) - i128::from(cost);
            let same_period = send_update(
                self.quota_update(key, touch.then_some(now), period)
                    .update_expression(with_touch(QUOTA_ADD, touch))
                    .condition_expression(QUOTA_FITS)
                    .expression_attribute_names("#used", QuotaUsageRecord::USED)
                    .expression_attribute_values(":cost", n(cost))
                    .expression_attribute_values(":max", n(quota.max))
                    .expression_attribute_values(":room", n(room)),
            )
            .await;
            let old = match same_period {
                Ok(out) => {
                    let used = out
                        .attributes()
                        .and_then(|a| a.get(KeyRecord::QUOTA_USAGE))
                        .and_then(|u| u.as_m().ok())
                        .and_then(|m| items::number(m, QuotaUsageRecord::USED));
                    return Ok(QuotaTake::Taken { used: used.map_or(cost, |u| u.max(0) as u64), period });
                }
                Err(err) if is_condition_failure(&err) => condition_failure_item(&err),
                Err(err) => return Err(unavailable("quota", &err)),
            };
            // The key is gone: nothing left to use.
            let Some(old) = old else { return Ok(QuotaTake::Refused { used: quota.max }) };
            let usage = old.get(KeyRecord::QUOTA_USAGE).and_then(|u| u.as_m().ok());
            let stored_period = usage.and_then(|m| items::number(m, QuotaUsageRecord::PERIOD)).unwrap_or(0);
            let stored_used = usage.and_then(|m| items::number(m, QuotaUsageRecord::USED)).unwrap_or(0).max(0) as u64;
            if stored_period == period {
                return Ok(QuotaTake::Refused { used: stored_used });
            }
            if stored_period > period {
                // Another instance's clock is ahead: count in its period.
                period = stored_period;
                continue;
            }
            if !quota.admits(0, cost) {
                return Ok(QuotaTake::Refused { used: 0 });
            }
            let renewed = send_update(
                self.quota_update(key, touch.then_some(now), period)
                    .update_expression(with_touch(QUOTA_RENEW, touch))
                    .condition_expression(QUOTA_OLDER_PERIOD)
                    .expression_attribute_values(":fresh", fresh_usage(period, cost)),
            )
            .await;
            match renewed {
                Ok(_) => return Ok(QuotaTake::Taken { used: cost, period }),
                Err(err) if is_condition_failure(&err) => continue,
                Err(err) => return Err(unavailable("quota renewal", &err)),
            }
        }
        Ok(QuotaTake::Refused { used: quota.max })
    }

    /// An update of the key item's quota usage; with `touch`, `#last` and `:now` for
    /// `with_touch`'s clause (DynamoDB refuses names and values an expression does not use).
    fn quota_update(
        &self,
        key: &ApiKey,
        touch: Option<DateTime<Utc>>,
        period: i64,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(address(items::key_pk(&key.company_id, &key.id), items::KEY_SK)))
            .expression_attribute_names("#usage", KeyRecord::QUOTA_USAGE)
            .expression_attribute_names("#period", QuotaUsageRecord::PERIOD)
            .expression_attribute_values(":period", n(period))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match touch {
            Some(now) => update
                .expression_attribute_names("#last", KeyRecord::LAST_USED_AT)
                .expression_attribute_values(":now", timestamp(now)),
            None => update,
        }
    }

    /// Gives back a use `take_quota_use` counted in `period`, for a verify the rate limit then
    /// refused. Nothing to give back once the period has moved on or the key is gone.
    async fn give_back_quota_use(&self, key: &ApiKey, period: i64, cost: u64) -> Result<(), StoreError> {
        if cost == 0 {
            return Ok(());
        }
        let refund = self
            .quota_update(key, None, period)
            .update_expression("SET #usage.#used = #usage.#used - :cost")
            .condition_expression("attribute_exists(pk) AND #usage.#period = :period AND #usage.#used >= :cost")
            .expression_attribute_names("#used", QuotaUsageRecord::USED)
            .expression_attribute_values(":cost", n(cost));
        send_update(refund)
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

/// A use counted in the quota period the key item counts in, if it fits.
const QUOTA_ADD: &str = "SET #usage.#used = #usage.#used + :cost";
/// `:room` is the quota less the use's cost; negative (a cost above the quota), nothing fits.
const QUOTA_FITS: &str =
    "attribute_exists(pk) AND #usage.#period = :period AND #usage.#used < :max AND #usage.#used <= :room";
/// A new period, with this use as its first.
const QUOTA_RENEW: &str = "SET #usage = :fresh";
const QUOTA_OLDER_PERIOD: &str = "attribute_exists(pk) AND #usage.#period < :period";

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

/// A window counter's conditional `ADD`, for an UpdateItem alone or in a transaction.
struct WindowCount {
    key: Item,
    condition: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl WindowCount {
    const UPDATE: &'static str = "ADD #used :cost SET #ttl = :ttl, #schema = :schema";

    /// `:room` is the limit less the use's cost: a use fits a window below its limit with room
    /// for it (a cost above the limit never fits, nor does anything in a full window).
    fn new(pk: String, limit: u64, cost: u64, window: Window) -> Self {
        let room = i128::from(limit) - i128::from(cost);
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
        Self { key: address(pk, items::RATE_SK), condition, names, values }
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

/// A quota update's expression, setting `lastUsedAt` too when `touch` (see `quota_update`).
fn with_touch(update: &str, touch: bool) -> String {
    if touch { format!("{update}, #last = :now") } else { update.to_owned() }
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
