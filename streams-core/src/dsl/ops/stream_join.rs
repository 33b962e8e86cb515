//! Windowed stream-stream joins: each side keeps its recent records in a window store and
//! looks up the other side's records within the join window.

use std::sync::Arc;

use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;

/// Joins a record of this side with one of the other side, or with nothing (`None`).
pub(crate) type SideJoiner<VThis, VOther, VR> =
    Arc<dyn Fn(&VThis, Option<&VOther>) -> VR + Send + Sync>;

/// Joins a left and a right record, either of which may be missing in left and outer joins.
pub(crate) type PairJoiner<VL, VR, VO> = Arc<dyn Fn(Option<&VL>, Option<&VR>) -> VO + Send + Sync>;

/// One side of a stream-stream join.
pub(crate) struct StreamJoinSide<VThis, VOther, VR> {
    pub this_store: String,
    pub other_store: String,
    /// Other-side records may be this much earlier...
    pub before_ms: i64,
    /// ...or this much later than this side's record.
    pub after_ms: i64,
    pub grace_ms: i64,
    pub joiner: SideJoiner<VThis, VOther, VR>,
    /// Whether a record without a match is emitted alone (left side of a left join, both
    /// sides of an outer join). It is emitted when it arrives, not when its window closes.
    pub emit_unmatched: bool,
}

impl<K: Data, VThis: Data, VOther: Data, VR: Data> Processor<K, VThis, K, VR>
    for StreamJoinSide<VThis, VOther, VR>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        record: Record<K, VThis>,
    ) -> Result<(), ProcessError> {
        let ts = record.timestamp;
        let span = self.before_ms + self.after_ms + self.grace_ms;
        if ts.saturating_add(span) < ctx.stream_time() {
            tracing::debug!(
                node = ctx.node_name(),
                ts,
                "dropping a record too late to join"
            );
            crate::runtime::metrics::record_dropped_late(&ctx.task_id(), ctx.node_name());
            return Ok(());
        }
        let this = ctx.window_store::<K, VThis>(&self.this_store)?;
        this.put(&record.key, &record.value, ts)?;
        let other = ctx.window_store::<K, VOther>(&self.other_store)?;
        let matches = other.fetch_time_range(
            &record.key,
            ts.saturating_sub(self.before_ms),
            ts.saturating_add(self.after_ms),
        )?;
        if matches.is_empty() {
            if self.emit_unmatched {
                let joined = (self.joiner)(&record.value, None);
                ctx.forward(record.with_value(joined))?;
            }
            return Ok(());
        }
        for (other_ts, other_value) in matches {
            let joined = (self.joiner)(&record.value, Some(&other_value));
            ctx.forward(
                record
                    .clone()
                    .with_value(joined)
                    .with_timestamp(ts.max(other_ts)),
            )?;
        }
        Ok(())
    }
}
