//! Windowed aggregations: fixed time windows (tumbling, hopping) and session windows,
//! with late records (beyond the grace period) dropped and counted.

use std::sync::Arc;

use super::aggregate::{Aggregator, Combine, Initializer};
use crate::dsl::change::Change;
use crate::dsl::windows::{SessionWindows, TimeWindows};
use crate::graph::Data;
use crate::processor::{ProcessError, Processor, ProcessorContext};
use crate::record::Record;
use crate::state::Windowed;

fn drop_late<K, V>(ctx: &ProcessorContext<'_, K, V>, record_time: i64) {
    tracing::debug!(
        node = ctx.node_name(),
        record_time,
        stream_time = ctx.stream_time(),
        "dropping a late record"
    );
    crate::runtime::metrics::record_dropped_late(&ctx.task_id(), ctx.node_name());
}

/// Aggregates records into every time window they fall in.
pub(crate) struct TimeWindowAggregate<K, V, VA> {
    pub store: String,
    pub windows: TimeWindows,
    pub combine: Combine<K, V, VA>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for TimeWindowAggregate<K, V, VA>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let store = ctx.window_store::<K, VA>(&self.store)?;
        let close_time = ctx.stream_time().saturating_sub(self.windows.grace_ms);
        let mut accepted = false;
        for start in self.windows.windows_for(record.timestamp) {
            let end = start + self.windows.size_ms;
            if end <= close_time {
                continue;
            }
            accepted = true;
            let old = store.fetch(&record.key, start)?;
            let new = (self.combine)(&record.key, record.value.clone(), old.clone());
            store.put(&record.key, &new, start)?;
            let out = Record {
                key: Windowed::new(record.key.clone(), start, end),
                value: Change::new(Some(new), old),
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            };
            ctx.forward(out)?;
        }
        if !accepted {
            drop_late(ctx, record.timestamp);
        }
        Ok(())
    }
}

/// Merges two session aggregates of a key.
pub(crate) type Merger<K, VA> = Arc<dyn Fn(&K, VA, VA) -> VA + Send + Sync>;

/// Aggregates records into sessions, merging the sessions a record bridges.
pub(crate) struct SessionWindowAggregate<K, V, VA> {
    pub store: String,
    pub windows: SessionWindows,
    pub initializer: Initializer<VA>,
    pub aggregator: Aggregator<K, V, VA>,
    pub merger: Merger<K, VA>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for SessionWindowAggregate<K, V, VA>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let store = ctx.session_store::<K, VA>(&self.store)?;
        let ts = record.timestamp;
        let gap = self.windows.gap_ms;
        let close_time = ctx.stream_time().saturating_sub(self.windows.grace_ms);
        let overlapping =
            store.find_sessions(&record.key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
        let (mut start, mut end) = (ts, ts);
        let mut aggregate = (self.initializer)();
        for (session, value) in &overlapping {
            start = start.min(session.window.start);
            end = end.max(session.window.end);
            aggregate = (self.merger)(&record.key, aggregate, value.clone());
        }
        if end < close_time {
            drop_late(ctx, ts);
            return Ok(());
        }
        let merged = Windowed::new(record.key.clone(), start, end);
        // Sessions absorbed into a larger one are deleted downstream; a session that
        // keeps its window is updated in place.
        let mut previous = None;
        for (session, value) in overlapping {
            if session.window == merged.window {
                previous = Some(value);
                continue;
            }
            store.remove(&session)?;
            ctx.forward(Record {
                key: session,
                value: Change::new(None, Some(value)),
                timestamp: ts,
                headers: record.headers.clone(),
            })?;
        }
        let aggregate = (self.aggregator)(&record.key, record.value.clone(), aggregate);
        store.put(&merged, &aggregate)?;
        ctx.forward(Record {
            key: merged,
            value: Change::new(Some(aggregate), previous),
            timestamp: ts,
            headers: record.headers,
        })
    }
}

/// Aggregates records into sliding windows. Each record's value is kept (in a window
/// store with duplicates) and every window a record touches is recomputed from the
/// records it holds: the window ending at the record, the windows ending at later records
/// within reach, the windows starting right after earlier records that now hold this one,
/// and the window starting right after this record when later records fall in it.
/// Windows start at zero at the earliest, as in Kafka Streams.
pub(crate) struct SlidingWindowAggregate<K, V, VA> {
    pub records_store: String,
    pub store: String,
    pub windows: crate::dsl::windows::SlidingWindows,
    pub combine: Combine<K, V, VA>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>>
    for SlidingWindowAggregate<K, V, VA>
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<(), ProcessError> {
        let d = self.windows.difference_ms;
        let ts = record.timestamp;
        let close_time = ctx.stream_time().saturating_sub(self.windows.grace_ms);
        // A window [s, s + d] takes records while its end has not fallen behind.
        let open = |start: i64| start.saturating_add(d) >= close_time;
        let left_start = |t: i64| (t - d).max(0);
        if !open(left_start(ts)) {
            drop_late(ctx, ts);
            return Ok(());
        }
        let records = ctx.window_store::<K, V>(&self.records_store)?;
        records.put(&record.key, &record.value, ts)?;
        let nearby = records.fetch_time_range(
            &record.key,
            ts.saturating_sub(d + 1).max(0),
            ts.saturating_add(d + 1),
        )?;

        let mut starts = vec![left_start(ts)];
        for &(other, _) in &nearby {
            if other > ts && left_start(other) <= ts {
                starts.push(left_start(other)); // a later record's window now holds this one
            }
            if other < ts && ts <= other + 1 + d {
                starts.push(other + 1); // an earlier record's right window holds this one
            }
        }
        let own_right = ts + 1;
        if nearby.iter().any(|&(t, _)| t > ts && t <= own_right + d) {
            starts.push(own_right);
        }
        starts.sort_unstable();
        starts.dedup();

        let aggregates = ctx.window_store::<K, VA>(&self.store)?;
        for start in starts {
            if !open(start) {
                continue;
            }
            let end = start + d;
            let mut aggregate = None;
            for (_, value) in nearby.iter().filter(|(t, _)| (start..=end).contains(t)) {
                aggregate = Some((self.combine)(&record.key, value.clone(), aggregate));
            }
            let Some(aggregate) = aggregate else { continue };
            let old = aggregates.fetch(&record.key, start)?;
            // This record's own right window changes only when it is created.
            if start == own_right && old.is_some() {
                continue;
            }
            aggregates.put(&record.key, &aggregate, start)?;
            ctx.forward(Record {
                key: Windowed::new(record.key.clone(), start, end),
                value: Change::new(Some(aggregate), old),
                timestamp: ts,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}
