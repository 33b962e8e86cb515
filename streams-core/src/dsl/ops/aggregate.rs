//! Aggregation operators: of grouped streams (initializer + aggregator) and of grouped
//! tables (initializer + adder + subtractor), and the re-keying of table rows that
//! precedes a table grouping.

use std::sync::Arc;

use crate::dsl::change::Change;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;
use crate::state::record_cache::{forward_or_cache, forward_through_cache};

/// Creates the aggregate of a key not seen before.
pub(crate) type Initializer<VA> = Arc<dyn Fn() -> VA + Send + Sync>;
/// Folds one value into an aggregate: `(key, value, aggregate) -> aggregate`.
pub(crate) type Aggregator<K, V, VA> = Arc<dyn Fn(&K, V, VA) -> VA + Send + Sync>;

/// Folds a value into a key's aggregate, `None` before the key's first value:
/// `(key, value, aggregate) -> aggregate`. Aggregations and reductions are both this.
pub(crate) type Combine<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;

/// An aggregation: the initializer starts a key's aggregate, the aggregator folds in values.
pub(crate) fn aggregating<K: 'static, V: 'static, VA: 'static>(
    initializer: Initializer<VA>,
    aggregator: Aggregator<K, V, VA>,
) -> Combine<K, V, VA> {
    Arc::new(move |k, v, aggregate| aggregator(k, v, aggregate.unwrap_or_else(|| initializer())))
}

/// A reduction: a key's first value is its aggregate, later ones are combined into it.
pub(crate) fn reducing<K: 'static, V: 'static>(reducer: Reducer<V>) -> Combine<K, V, V> {
    Arc::new(move |_, v, aggregate| match aggregate {
        Some(current) => reducer(current, v),
        None => v,
    })
}

/// A key's previous aggregate, and the timestamp of its next one: the later of the
/// record's and the previous aggregate's, as Kafka Streams' aggregations do.
fn previous<K, V, VA>(
    stored: Option<(VA, Option<i64>)>,
    record: &Record<K, V>,
) -> (Option<VA>, i64) {
    match stored {
        Some((aggregate, stored_at)) => (
            Some(aggregate),
            stored_at.map_or(record.timestamp, |t| t.max(record.timestamp)),
        ),
        None => (None, record.timestamp),
    }
}

/// Aggregates a grouped stream per key in a store and emits each new aggregate (held
/// back in the store's record cache until commit when the store is cached).
pub(crate) struct StreamAggregate<K, V, VA> {
    pub store: String,
    pub combine: Combine<K, V, VA>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static, VA: Clone + Send + 'static>
    Processor<K, V, K, Change<VA>> for StreamAggregate<K, V, VA>
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<(), ProcessError> {
        forward_through_cache::<K, VA>(ctx, &self.store).map(|_| ())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<K, VA>(&self.store)?;
        let (old, timestamp) = previous(store.get_with_timestamp(&record.key)?, &record);
        let new = (self.combine)(&record.key, record.value.clone(), old.clone());
        store.put_with_timestamp(&record.key, &new, timestamp)?;
        let update = record
            .with_value(Change::new(Some(new), old))
            .with_timestamp(timestamp);
        forward_or_cache(ctx, self.store.as_str(), update)
    }
}

/// Picks the grouping key and value of a table row.
pub(crate) type RowSelector<K, V, K2, V2> = Arc<dyn Fn(&K, &V) -> (K2, V2) + Send + Sync>;

/// Re-keys table changes for a grouping: the old row is subtracted from its old group and
/// the new row added to its new group, as two records; when both rows fall into the same
/// group, one record carries both, so the aggregation emits one result and never the
/// intermediate one (KIP-904).
pub(crate) struct TableRegroup<K, V, K2, V2> {
    pub selector: RowSelector<K, V, K2, V2>,
}

impl<K, V, K2, V2> Processor<K, Change<V>, K2, Change<V2>> for TableRegroup<K, V, K2, V2>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    K2: Clone + PartialEq + Send + 'static,
    V2: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K2, Change<V2>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let old = record
            .value
            .old
            .as_ref()
            .map(|old| (self.selector)(&record.key, old));
        let new = record
            .value
            .new
            .as_ref()
            .map(|new| (self.selector)(&record.key, new));
        match (old, new) {
            (Some((old_key, old)), Some((new_key, new))) if old_key == new_key => ctx.forward(
                record
                    .with_key(new_key)
                    .with_value(Change::new(Some(new), Some(old))),
            ),
            (old, new) => {
                if let Some((key, value)) = old {
                    ctx.forward(
                        record
                            .clone()
                            .with_key(key)
                            .with_value(Change::new(None, Some(value))),
                    )?;
                }
                if let Some((key, value)) = new {
                    ctx.forward(
                        record
                            .with_key(key)
                            .with_value(Change::new(Some(value), None)),
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Combines two values of a key: `(aggregate, value) -> aggregate`.
pub(crate) type Reducer<V> = Arc<dyn Fn(V, V) -> V + Send + Sync>;

/// Removes a row from a key's aggregate (`None` when the key has none yet).
pub(crate) type Retract<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> Option<VA> + Send + Sync>;

/// Aggregates a grouped table: an old row is retracted from its key's aggregate, a new
/// row combined into it (both in one step when a change carries both, so one result is
/// emitted). Aggregations and reductions of tables are both this; results are held back
/// in the store's record cache until commit when the store is cached.
pub(crate) struct TableAggregate<K, V, VA> {
    pub store: String,
    pub add: Combine<K, V, VA>,
    pub retract: Retract<K, V, VA>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static, VA: Clone + Send + 'static>
    Processor<K, Change<V>, K, Change<VA>> for TableAggregate<K, V, VA>
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<(), ProcessError> {
        forward_through_cache::<K, VA>(ctx, &self.store).map(|_| ())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<K, VA>(&self.store)?;
        let (old, timestamp) = previous(store.get_with_timestamp(&record.key)?, &record);
        let mut aggregate = old.clone();
        if let Some(row) = record.value.old.clone() {
            aggregate = (self.retract)(&record.key, row, aggregate);
        }
        if let Some(row) = record.value.new.clone() {
            aggregate = Some((self.add)(&record.key, row, aggregate));
        }
        let Some(value) = &aggregate else {
            return Ok(());
        };
        store.put_with_timestamp(&record.key, value, timestamp)?;
        let update = record
            .with_value(Change::new(aggregate, old))
            .with_timestamp(timestamp);
        forward_or_cache(ctx, self.store.as_str(), update)
    }
}
