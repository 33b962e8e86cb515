//! Table operators: a table read from a topic, materialization, filter and map_values on
//! changes, and the conversion back to a stream.

use std::sync::Arc;

use crate::dsl::change::Change;
use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;
use crate::state::record_cache::{forward_or_cache, forward_through_cache};

/// Reads a topic as a table: stores each value (a null value deletes the key) and
/// forwards the change with the value it replaced (held back in the store's record cache
/// until commit when the store is cached).
pub(crate) struct TableSource {
    pub store: String,
}

impl<K: Data, V: Data> Processor<K, Option<V>, K, Change<V>> for TableSource {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<(), ProcessError> {
        forward_through_cache::<K, V>(ctx, &self.store).map(|_| ())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Option<V>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<K, V>(&self.store)?;
        let old = match &record.value {
            Some(v) => {
                let old = store.get(&record.key)?;
                store.put(&record.key, v)?;
                old
            }
            None => store.delete(&record.key)?,
        };
        if old.is_none() && record.value.is_none() {
            return Ok(());
        }
        let new = record.value.clone();
        let store = self.store.as_str();
        forward_or_cache(ctx, store, record.with_value(Change::new(new, old)))
    }
}

/// Keeps the latest new value per key in a store, so that a derived table can be read
/// by joins; forwards changes unchanged (held back in the store's record cache until
/// commit when the store is cached, then with the stored value as the old one).
pub(crate) struct TableMaterialize {
    pub store: String,
}

impl<K: Data, V: Data> Processor<K, Change<V>, K, Change<V>> for TableMaterialize {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<(), ProcessError> {
        forward_through_cache::<K, V>(ctx, &self.store).map(|_| ())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<K, V>(&self.store)?;
        match &record.value.new {
            Some(v) => store.put(&record.key, v)?,
            None => {
                store.delete(&record.key)?;
            }
        }
        let store = self.store.as_str();
        forward_or_cache(ctx, store, record)
    }
}

/// A predicate over table rows.
pub(crate) type RowPredicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// Filters both sides of a change: a row that stops matching becomes a delete.
pub(crate) struct TableFilter<K, V> {
    pub predicate: RowPredicate<K, V>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Processor<K, Change<V>, K, Change<V>>
    for TableFilter<K, V>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let keep = |v: Option<V>| v.filter(|v| (self.predicate)(&record.key, v));
        let change = Change::new(
            keep(record.value.new.clone()),
            keep(record.value.old.clone()),
        );
        if change.new.is_none() && change.old.is_none() {
            return Ok(());
        }
        ctx.forward(record.with_value(change))
    }
}

/// A value mapper over table rows.
pub(crate) type RowMapper<K, V, V2> = Arc<dyn Fn(&K, &V) -> V2 + Send + Sync>;

/// Maps both sides of a change.
pub(crate) struct TableMapValues<K, V, V2> {
    pub mapper: RowMapper<K, V, V2>,
}

impl<K: Clone + Send + 'static, V: Clone + Send + 'static, V2: Clone + Send + 'static>
    Processor<K, Change<V>, K, Change<V2>> for TableMapValues<K, V, V2>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V2>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let key = record.key.clone();
        let change = record.value.clone().map(|v| (self.mapper)(&key, &v));
        ctx.forward(record.with_value(change))
    }
}

/// Emits the new value of every change (`None` for deletes).
pub(crate) struct TableToStream;

impl<K: Data, V: Data> Processor<K, Change<V>, K, Option<V>> for TableToStream {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Option<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let new = record.value.new.clone();
        ctx.forward(record.with_value(new))
    }
}
