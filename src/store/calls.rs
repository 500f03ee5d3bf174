//! Counts DynamoDB calls by operation, and the read capacity they consume, as SDK interceptors:
//! how tests and benchmarks check what each API operation costs.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// The DynamoDB operations a client sent, shared by its clones; registered on the client's
/// config as an interceptor.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<Vec<String>>>);

impl CallCounter {
    /// Operation names (`GetItem`, `TransactWriteItems`, …) in call order, clearing the record.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg.load::<Metadata>().map_or("unknown", |m| m.name()).to_owned();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(name);
        Ok(())
    }
}

/// The read capacity each read call of a client consumed, as DynamoDB bills it: an interceptor
/// that asks every `GetItem`, `BatchGetItem` and `Query` for its `ConsumedCapacity` (`TOTAL`)
/// and records the units of each, shared by its clones. DynamoDB bills a strongly consistent
/// read 1 unit per started 4 KB of an item (1 MB: 256 units) and an eventually consistent one
/// (every index query) half that (1 MB: 128 units); a `Query` or a `Select=COUNT` sums the sizes
/// of the items it passes before rounding, so skipping costs what the skipped items weigh.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter(Arc<Mutex<Vec<(String, f64)>>>);

impl CapacityMeter {
    /// Each read call's operation name and capacity units, in call order, clearing the record.
    pub fn take(&self) -> Vec<(String, f64)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let total = Some(ReturnConsumedCapacity::Total);
        if let Some(query) = input.downcast_mut::<QueryInput>() {
            query.return_consumed_capacity = total;
        } else if let Some(batch) = input.downcast_mut::<BatchGetItemInput>() {
            batch.return_consumed_capacity = total;
        } else if let Some(get) = input.downcast_mut::<GetItemInput>() {
            get.return_consumed_capacity = total;
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error() else { return Ok(()) };
        let units = |c: Option<&ConsumedCapacity>| c.and_then(ConsumedCapacity::capacity_units).unwrap_or(0.0);
        let consumed = if let Some(query) = output.downcast_ref::<QueryOutput>() {
            units(query.consumed_capacity())
        } else if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
            batch.consumed_capacity().iter().map(|c| units(Some(c))).sum()
        } else if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            units(get.consumed_capacity())
        } else {
            return Ok(());
        };
        let name = cfg.load::<Metadata>().map_or("unknown", |m| m.name()).to_owned();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((name, consumed));
        Ok(())
    }
}
