//! Joins that look up a materialized table: stream-table joins, and each side of a
//! table-table join.

use std::sync::Arc;

use crate::dsl::change::Change;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;

/// Joins a stream value with the table's current value for its key; `None` drops the
/// record (inner join without a match).
pub(crate) type StreamTableJoiner<V, VT, VR> =
    Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// Looks every stream record up in the table's store.
pub(crate) struct StreamTableJoin<V, VT, VR> {
    pub table_store: String,
    pub joiner: StreamTableJoiner<V, VT, VR>,
}

impl<K, V, VT, VR> Processor<K, V, K, VR> for StreamTableJoin<V, VT, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VT: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let table = ctx.key_value_store::<K, VT>(&self.table_store)?;
        let current = table.get(&record.key)?;
        match (self.joiner)(&record.value, current.as_ref()) {
            Some(joined) => ctx.forward(record.with_value(joined)),
            None => Ok(()),
        }
    }
}

/// Joins a left and a right row of one key; `None` means no result row.
pub(crate) type RowJoiner<VL, VR, VO> =
    Arc<dyn Fn(Option<&VL>, Option<&VR>) -> Option<VO> + Send + Sync>;

/// One side of a table-table join: a change on this side is joined with the other
/// side's current value, for both the new and the old row. The joiner is oriented from
/// this side (`(this, other)`); the right side's swaps the user's `(left, right)`.
///
/// Each side records the timestamp of its rows' latest changes (`this_times`), so that a
/// result carries the larger of the timestamps involved, as in Kafka Streams: the
/// change's, and the other side's row's when there is one.
pub(crate) struct TableJoinSide<VThis, VOther, VO> {
    pub other_store: String,
    /// Timestamps of this side's rows, by key.
    pub this_times: String,
    /// Timestamps of the other side's rows, by key.
    pub other_times: String,
    pub joiner: RowJoiner<VThis, VOther, VO>,
}

impl<K, VThis, VOther, VO> Processor<K, Change<VThis>, K, Change<VO>>
    for TableJoinSide<VThis, VOther, VO>
where
    K: Clone + Send + 'static,
    VThis: Clone + Send + 'static,
    VOther: Clone + Send + 'static,
    VO: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VO>>,
        record: Record<K, Change<VThis>>,
    ) -> Result<(), ProcessError> {
        let this_times = ctx.key_value_store::<K, i64>(&self.this_times)?;
        if record.value.new.is_some() {
            this_times.put(&record.key, &record.timestamp)?;
        } else {
            this_times.delete(&record.key)?;
        }
        let other = ctx
            .key_value_store::<K, VOther>(&self.other_store)?
            .get(&record.key)?;
        let other_time = match other {
            Some(_) => ctx
                .key_value_store::<K, i64>(&self.other_times)?
                .get(&record.key)?,
            None => None,
        };
        let join = |this: Option<&VThis>| {
            if this.is_none() && other.is_none() {
                None
            } else {
                (self.joiner)(this, other.as_ref())
            }
        };
        let new = join(record.value.new.as_ref());
        let old = join(record.value.old.as_ref());
        if new.is_none() && old.is_none() {
            return Ok(());
        }
        let timestamp = record.timestamp.max(other_time.unwrap_or(i64::MIN));
        ctx.forward(
            record
                .with_value(Change::new(new, old))
                .with_timestamp(timestamp),
        )
    }
}

/// Picks the global table key a stream record joins with.
pub(crate) type GlobalKeySelector<K, V, GK> = Arc<dyn Fn(&K, &V) -> GK + Send + Sync>;

/// Looks every stream record up in a global store by a key computed from the record.
pub(crate) struct StreamGlobalJoin<K, V, GK, GV, VR> {
    pub global_store: String,
    pub key_selector: GlobalKeySelector<K, V, GK>,
    pub joiner: StreamTableJoiner<V, GV, VR>,
}

impl<K, V, GK, GV, VR> Processor<K, V, K, VR> for StreamGlobalJoin<K, V, GK, GV, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    GK: Clone + Send + 'static,
    GV: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let global = ctx.global_store::<GK, GV>(&self.global_store)?;
        let current = global.get(&(self.key_selector)(&record.key, &record.value))?;
        match (self.joiner)(&record.value, current.as_ref()) {
            Some(joined) => ctx.forward(record.with_value(joined)),
            None => Ok(()),
        }
    }
}
