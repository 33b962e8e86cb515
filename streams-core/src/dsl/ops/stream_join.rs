//! Windowed stream-stream joins: each side keeps its recent records in a window store and
//! looks up the other side's records within the join window.

use std::sync::Arc;

use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;
use crate::serde::Serde;

/// Joins a record of this side with one of the other side, or with nothing (`None`).
pub(crate) type SideJoiner<VThis, VOther, VR> =
    Arc<dyn Fn(&VThis, Option<&VOther>) -> VR + Send + Sync>;

/// Joins a left and a right record, either of which may be missing in left and outer joins.
pub(crate) type PairJoiner<VL, VR, VO> = Arc<dyn Fn(Option<&VL>, Option<&VR>) -> VO + Send + Sync>;

/// Unmatched records of a left or outer join, held until their join window closes so
/// that a record matched later is never emitted alone (as Kafka Streams 3.x). Kept in a
/// logged key-value store shared by both sides: key `[close time][side][seq][key]`,
/// value `[timestamp][value]`, so a scan up to stream time finds what is due.
pub(crate) struct Unmatched<K, VThis, VOther, VR> {
    pub store: String,
    /// 0 for the left side, 1 for the right.
    pub side: u8,
    /// Whether this side's unmatched records are emitted (left of a left join, both of
    /// an outer join), and the other side's.
    pub track_this: bool,
    pub track_other: bool,
    pub key_serde: Arc<dyn Serde<K>>,
    pub this_serde: Arc<dyn Serde<VThis>>,
    pub other_serde: Arc<dyn Serde<VOther>>,
    /// Emits an other-side record alone.
    pub other_joiner: SideJoiner<VOther, VThis, VR>,
    pub seq: u32,
}

fn serde_error(what: &str, e: crate::serde::SerdeError) -> ProcessError {
    ProcessError::user(format!("stream-stream join {what}: {e}"))
}

impl<K: Data, VThis: Data, VOther: Data, VR: Data> Unmatched<K, VThis, VOther, VR> {
    fn key_bytes(&self, topic: &str, key: &K) -> Result<Vec<u8>, ProcessError> {
        self.key_serde
            .serialize(topic, key)
            .map_err(|e| serde_error("key", e))?
            .ok_or_else(|| ProcessError::user("stream-stream join keys must not serialize to null"))
    }

    /// Holds an unmatched record of this side until `close`.
    fn hold(
        &mut self,
        ctx: &ProcessorContext<'_, K, VR>,
        close: i64,
        record: &Record<K, VThis>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<Vec<u8>, Vec<u8>>(&self.store)?;
        let mut key = close.to_be_bytes().to_vec();
        key.push(self.side);
        key.extend_from_slice(&self.seq.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        key.extend_from_slice(&self.key_bytes(&self.store, &record.key)?);
        let mut value = record.timestamp.to_be_bytes().to_vec();
        value.extend_from_slice(
            &self
                .this_serde
                .serialize(&self.store, &record.value)
                .map_err(|e| serde_error("value", e))?
                .unwrap_or_default(),
        );
        store.put(&key, &value)
    }

    /// Forgets held other-side records of `key` that closed at `close`: they matched.
    fn matched(
        &self,
        ctx: &ProcessorContext<'_, K, VR>,
        close: i64,
        key: &K,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<Vec<u8>, Vec<u8>>(&self.store)?;
        let key = self.key_bytes(&self.store, key)?;
        let mut prefix = close.to_be_bytes().to_vec();
        prefix.push(1 - self.side);
        for (held, _) in store.prefix_scan(&prefix)? {
            if held.get(13..) == Some(key.as_slice()) {
                store.delete(&held)?;
            }
        }
        Ok(())
    }

    /// Emits (alone) and forgets every held record whose window closed before `now`.
    fn emit_closed(
        &self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        this_joiner: &SideJoiner<VThis, VOther, VR>,
        now: i64,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<Vec<u8>, Vec<u8>>(&self.store)?;
        for (held, value) in store.range(None, Some(&now.to_be_bytes().to_vec()))? {
            store.delete(&held)?;
            let (Some(&side), Some(key), Some(ts), Some(bytes)) =
                (held.get(8), held.get(13..), value.get(..8), value.get(8..))
            else {
                continue;
            };
            let key = self
                .key_serde
                .deserialize(&self.store, Some(key))
                .map_err(|e| serde_error("key", e))?;
            let ts = i64::from_be_bytes(ts.try_into().expect("8 bytes"));
            let joined = if side == self.side {
                let v = self
                    .this_serde
                    .deserialize(&self.store, Some(bytes))
                    .map_err(|e| serde_error("value", e))?;
                this_joiner(&v, None)
            } else {
                let v = self
                    .other_serde
                    .deserialize(&self.store, Some(bytes))
                    .map_err(|e| serde_error("value", e))?;
                (self.other_joiner)(&v, None)
            };
            ctx.forward(Record::new(key, joined, ts))?;
        }
        Ok(())
    }
}

/// One side of a stream-stream join.
pub(crate) struct StreamJoinSide<K, VThis, VOther, VR> {
    pub this_store: String,
    pub other_store: String,
    /// Other-side records may be this much earlier...
    pub before_ms: i64,
    /// ...or this much later than this side's record.
    pub after_ms: i64,
    pub grace_ms: i64,
    pub joiner: SideJoiner<VThis, VOther, VR>,
    /// Left and outer joins: records without a match, emitted alone once their window
    /// closes.
    pub unmatched: Option<Unmatched<K, VThis, VOther, VR>>,
}

impl<K: Data, VThis: Data, VOther: Data, VR: Data> Processor<K, VThis, K, VR>
    for StreamJoinSide<K, VThis, VOther, VR>
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
        if let Some(unmatched) = &mut self.unmatched {
            if matches.is_empty() && unmatched.track_this {
                // Other-side records may still arrive until `after` past this one.
                unmatched.hold(
                    ctx,
                    ts.saturating_add(self.after_ms + self.grace_ms),
                    &record,
                )?;
            } else if unmatched.track_other {
                for (other_ts, _) in &matches {
                    // The other side held its record until `before` (its `after`) past it.
                    unmatched.matched(
                        ctx,
                        other_ts.saturating_add(self.before_ms + self.grace_ms),
                        &record.key,
                    )?;
                }
            }
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
        if let Some(unmatched) = &self.unmatched {
            unmatched.emit_closed(ctx, &self.joiner, ctx.stream_time())?;
        }
        Ok(())
    }
}
